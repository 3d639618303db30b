//! The connection pool: idle connections per origin, bounded connects, requests
//! waiting for a connection, the idle sweep.

use super::*;

/// Sends on an idle pooled connection, a new one, or (with enough connects under way)
/// the first one to come free.
pub(super) fn dispatch(exchange: &Shared, request: Vec<u8>) {
  let (uv, origin) = {
    let ex = exchange.borrow();
    (ex.route.uv, Rc::clone(&ex.origin))
  };
  if let Some(conn) = checkout(uv, &origin) {
    send_on(conn, exchange, request);
    return;
  }
  let mut request = Some(request);
  let connect_now = POOL.with(|p| {
    let mut pool = p.borrow_mut();
    let state = pool.entry(Rc::clone(&origin)).or_default();
    if state.connecting < MAX_CONNECTING {
      state.connecting += 1;
      true
    } else {
      state
        .waiting
        .push_back((Rc::clone(exchange), request.take().unwrap_or_default()));
      false
    }
  });
  if let (true, Some(request)) = (connect_now, request) {
    connect(exchange, origin, request);
  }
}

/// The next live request waiting for a connection to `origin`.
pub(super) fn next_waiting(origin: &Rc<Origin>) -> Option<(Shared, Vec<u8>)> {
  POOL.with(|p| {
    let mut pool = p.borrow_mut();
    let state = pool.get_mut(origin)?;
    while let Some((exchange, request)) = state.waiting.pop_front() {
      if !exchange.borrow().done {
        return Some((exchange, request));
      }
    }
    None
  })
}

/// A connect to `origin` ended (either way): its slot goes to a waiting request.
pub(super) fn connect_ended(origin: &Rc<Origin>) {
  POOL.with(|p| {
    if let Some(state) = p.borrow_mut().get_mut(origin) {
      state.connecting = state.connecting.saturating_sub(1);
    }
  });
  if let Some((exchange, request)) = next_waiting(origin) {
    POOL.with(|p| {
      p.borrow_mut()
        .entry(Rc::clone(origin))
        .or_default()
        .connecting += 1
    });
    connect(&exchange, Rc::clone(origin), request);
  }
}

pub(super) fn checkout(uv: &Uv, origin: &Rc<Origin>) -> Option<*mut Conn> {
  loop {
    let conn = POOL.with(|p| p.borrow_mut().get_mut(origin).and_then(|s| s.idle.pop()))?;
    // SAFETY: pooled connections are live until closed, and closing removes them.
    let idle = unsafe { (*conn).idle_since.elapsed() };
    if idle < POOL_IDLE && (idle < CHECK_AFTER_IDLE || unsafe { still_open(uv, conn) }) {
      return Some(conn);
    }
    close_conn(uv, conn);
  }
}

/// Past this idle time a pooled connection is checked before use: the server may have
/// closed it while JS kept the loop busy, before its close was read.
pub(super) const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Whether the peer has not closed (or reset) the connection, without consuming input.
pub(super) unsafe fn still_open(uv: &Uv, conn: *mut Conn) -> bool {
  let mut fd: c_int = -1;
  if (uv.fileno)((*conn).tcp, &mut fd) != 0 {
    return false;
  }
  let mut byte = 0u8;
  let n = libc::recv(
    fd,
    (&mut byte as *mut u8).cast(),
    1,
    libc::MSG_PEEK | libc::MSG_DONTWAIT,
  );
  match n {
    // Plain HTTP has nothing to say to an idle client; TLS may (a session ticket).
    n if n > 0 => (*conn).tls.is_some(),
    0 => false,
    _ => matches!(
      std::io::Error::last_os_error().raw_os_error(),
      Some(libc::EAGAIN) | Some(libc::EINTR)
    ),
  }
}

/// A connection is free again: it serves the next waiting request, or goes idle.
pub(super) fn checkin(uv: &Uv, conn: *mut Conn) {
  // SAFETY: a live connection without an exchange.
  unsafe {
    (*conn).reader = ResponseReader::default();
    let origin = Rc::clone(&(*conn).origin);
    if let Some((exchange, request)) = next_waiting(&origin) {
      return send_on(conn, &exchange, request);
    }
    (*conn).idle_since = Instant::now();
    (uv.unref)((*conn).tcp);
    POOL.with(|p| p.borrow_mut().entry(origin).or_default().idle.push(conn));
    start_sweep(uv, (*conn).loop_);
  }
}

pub(super) const SWEEP_EVERY_MS: u64 = 1000;

pub(super) fn start_sweep(uv: &Uv, loop_: *mut uv::Loop) {
  let mut timer = SWEEP_TIMER.with(Cell::get);
  // SAFETY: one timer per thread, never closed; unreferenced, so it never holds the
  // process open.
  unsafe {
    if timer.is_null() {
      timer = Block::new((uv.handle_size)(uv::UV_TIMER)).into_raw();
      (uv.timer_init)(loop_, timer);
      (uv.unref)(timer);
      SWEEP_TIMER.with(|t| t.set(timer));
    } else if (uv.is_active)(timer) != 0 {
      return;
    }
    (uv.timer_start)(timer, on_sweep, SWEEP_EVERY_MS, SWEEP_EVERY_MS);
  }
}

pub(super) unsafe extern "C" fn on_sweep(timer: *mut Handle) {
  let uv = uv::get().expect("libuv");
  let (stale, remaining) = POOL.with(|p| {
    let mut stale = Vec::new();
    let mut remaining = 0;
    for state in p.borrow_mut().values_mut() {
      state.idle.retain(|&conn| {
        let keep = (*conn).idle_since.elapsed() < POOL_IDLE;
        if !keep {
          stale.push(conn);
        }
        keep
      });
      remaining += state.idle.len();
    }
    (stale, remaining)
  });
  for conn in stale {
    close_conn(uv, conn);
  }
  if remaining == 0 {
    (uv.timer_stop)(timer);
  }
}

pub(super) fn remove_from_pool(conn: *mut Conn) {
  // SAFETY: live connection.
  let origin = unsafe { Rc::clone(&(*conn).origin) };
  POOL.with(|p| {
    if let Some(state) = p.borrow_mut().get_mut(&origin) {
      state.idle.retain(|&c| c != conn);
    }
  });
}
