//! The connection pool, per thread: idle connections per key (origin and trust), at
//! most `MAX_CONNECTING` connects per key at once (requests beyond that wait for a
//! connection or a connect slot to come free), and the idle sweep.
//!
//! Ownership: a connection is its hyper `SendRequest` plus the executor task that
//! drives hyper's connection future (which owns the socket). While a request uses it,
//! its [`Lease`] owns both; a lease dropped without a clean release (an error, a
//! timeout, an ambiguous response) aborts the task, which closes the socket. Idle
//! connections are owned by the pool, unreferenced (they never hold the process
//! open), and closed after `POOL_IDLE`.

use super::executor::{self, TaskId};
use super::tcp;
use super::timer::Timer;
use super::{Loop, Trust};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use pusher_core::http::limits::{MAX_CONNECTING, POOL_IDLE};
use pusher_core::http::Origin;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

pub type Sender = SendRequest<Full<Bytes>>;

/// What decides whether a connection may be shared: where it goes and which
/// certificates verified it. Interned: one per (origin, trust) and thread, holding that
/// key's connections, so no request hashes anything.
pub struct Key {
  pub origin: Origin,
  entry: RefCell<Entry>,
}

impl Key {
  pub fn new(origin: Origin, trust: &Trust) -> Rc<Key> {
    KEYS.with(|k| {
      Rc::clone(
        k.borrow_mut()
          .entry((origin.clone(), trust.id))
          .or_insert_with(|| {
            Rc::new(Key {
              origin,
              entry: RefCell::default(),
            })
          }),
      )
    })
  }
}

pub struct Conn {
  pub sender: Sender,
  pub tcp: tcp::Shared,
  pub task: TaskId,
}

struct Idle {
  conn: Conn,
  since: Instant,
}

struct Waiter {
  notified: Cell<bool>,
  waker: RefCell<Option<Waker>>,
}

#[derive(Default)]
struct Entry {
  idle: Vec<Idle>,
  connecting: usize,
  waiting: VecDeque<Rc<Waiter>>,
}

type Keys = HashMap<(Origin, u64), Rc<Key>>;

// Never dropped: see the executor's thread-locals.
thread_local! {
  static KEYS: ManuallyDrop<RefCell<Keys>> = ManuallyDrop::new(RefCell::new(HashMap::new()));
  static SWEEPING: Cell<bool> = const { Cell::new(false) };
}

/// A connection in use by one request.
pub struct Lease {
  key: Rc<Key>,
  conn: Option<Conn>,
  loop_: Loop,
}

impl Lease {
  pub fn sender(&mut self) -> &mut Sender {
    &mut self.conn.as_mut().expect("a leased connection").sender
  }

  /// The exchange ended cleanly: the connection may serve another request.
  pub fn release(mut self) {
    if let Some(conn) = self.conn.take() {
      checkin(&self.key, conn, self.loop_);
    }
  }
}

impl Drop for Lease {
  fn drop(&mut self) {
    if let Some(conn) = self.conn.take() {
      close(conn);
    }
  }
}

fn close(conn: Conn) {
  executor::abort(conn.task);
}

/// The right to open one connection for `key`.
pub struct ConnectSlot(Rc<Key>);

impl Drop for ConnectSlot {
  fn drop(&mut self) {
    {
      let mut entry = self.0.entry.borrow_mut();
      entry.connecting = entry.connecting.saturating_sub(1);
    }
    notify_next(&self.0);
  }
}

pub enum Acquired {
  Pooled(Lease),
  Connect(ConnectSlot),
}

/// A pooled connection, or the right to open one (waiting for either when
/// `MAX_CONNECTING` connects are under way).
pub async fn acquire(key: &Rc<Key>, loop_: Loop) -> Acquired {
  loop {
    if let Some(conn) = checkout(key) {
      let mut lease = Lease {
        key: Rc::clone(key),
        conn: Some(conn),
        loop_,
      };
      // Closed since it went idle: never used, so another connection is safe.
      if poll_fn(|cx| lease.sender().poll_ready(cx)).await.is_ok() {
        pass_on(key);
        return Acquired::Pooled(lease);
      }
      continue;
    }
    let slot = {
      let mut entry = key.entry.borrow_mut();
      (entry.connecting < MAX_CONNECTING).then(|| {
        entry.connecting += 1;
        ConnectSlot(Rc::clone(key))
      })
    };
    if let Some(slot) = slot {
      pass_on(key);
      return Acquired::Connect(slot);
    }
    wait_turn(key).await;
  }
}

/// A connection just opened with `slot`, as a lease.
pub fn lease(slot: ConnectSlot, conn: Conn, loop_: Loop) -> Lease {
  let key = Rc::clone(&slot.0);
  drop(slot);
  Lease {
    key,
    conn: Some(conn),
    loop_,
  }
}

fn checkout(key: &Rc<Key>) -> Option<Conn> {
  loop {
    let idle = key.entry.borrow_mut().idle.pop()?;
    let idle_for = idle.since.elapsed();
    if idle_for >= POOL_IDLE || idle.conn.sender.is_closed() {
      close(idle.conn);
      continue;
    }
    if may_have_unread() && tcp::read_pending(&idle.conn.tcp) {
      // Let hyper (and rustls) take in what came while JS was busy: a close, a stray
      // byte or a close_notify closes the connection; a session ticket does not.
      executor::run();
      if idle.conn.sender.is_closed() {
        close(idle.conn);
        continue;
      }
    }
    tcp::set_ref(&idle.conn.tcp, true);
    return Some(idle.conn);
  }
}

/// A loop poll this recent has seen (nearly) everything the server sent: a close in
/// the few microseconds since is the race every HTTP client has.
const FRESH_POLL: Duration = Duration::from_millis(1);

/// Whether the server may have closed an idle connection without the loop having read
/// it yet: the loop has not polled lately (JS kept it busy), however short the idle time.
fn may_have_unread() -> bool {
  super::poll_clock::since_last_poll().is_none_or(|since| since >= FRESH_POLL)
}

fn checkin(key: &Rc<Key>, conn: Conn, loop_: Loop) {
  if conn.sender.is_closed() {
    return close(conn);
  }
  tcp::set_ref(&conn.tcp, false);
  key.entry.borrow_mut().idle.push(Idle {
    conn,
    since: Instant::now(),
  });
  notify_next(key);
  start_sweep(loop_);
}

/// Waits until a connection or a connect slot may have come free for `key`.
async fn wait_turn(key: &Rc<Key>) {
  let waiter = Rc::new(Waiter {
    notified: Cell::new(false),
    waker: RefCell::new(None),
  });
  key.entry.borrow_mut().waiting.push_back(Rc::clone(&waiter));
  let mut turn = Turn {
    key: Rc::clone(key),
    waiter,
    taken: false,
  };
  poll_fn(|cx| {
    if turn.waiter.notified.get() {
      turn.taken = true;
      Poll::Ready(())
    } else {
      *turn.waiter.waker.borrow_mut() = Some(cx.waker().clone());
      Poll::Pending
    }
  })
  .await
}

/// A place in the queue; dropped after being notified but before taking its turn
/// (the request timed out), it passes the turn on.
struct Turn {
  key: Rc<Key>,
  waiter: Rc<Waiter>,
  taken: bool,
}

impl Drop for Turn {
  fn drop(&mut self) {
    if self.waiter.notified.get() && !self.taken {
      notify_next(&self.key);
    }
  }
}

/// A request woken for a connect slot may have taken an idle connection instead (or
/// the other way round): the next waiter gets the chance it did not use.
fn pass_on(key: &Rc<Key>) {
  let capacity = {
    let e = key.entry.borrow();
    !e.waiting.is_empty() && (e.connecting < MAX_CONNECTING || !e.idle.is_empty())
  };
  if capacity {
    notify_next(key);
  }
}

/// Wakes the first request still waiting for `key`.
fn notify_next(key: &Rc<Key>) {
  let waiter = {
    let mut entry = key.entry.borrow_mut();
    // A waiter whose request is gone holds the only reference.
    std::iter::from_fn(|| entry.waiting.pop_front()).find(|w| Rc::strong_count(w) > 1)
  };
  if let Some(waiter) = waiter {
    waiter.notified.set(true);
    if let Some(waker) = waiter.waker.borrow_mut().take() {
      waker.wake();
    }
  }
}

const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Closes connections idle for `POOL_IDLE`, every second while any is idle.
fn start_sweep(loop_: Loop) {
  if SWEEPING.with(|s| s.replace(true)) {
    return;
  }
  let Some(uv) = crate::uv::get() else { return };
  executor::spawn(async move {
    loop {
      let timer = Timer::sleep(uv, loop_.0, SWEEP_EVERY);
      timer.unref();
      timer.await;
      if sweep() == 0 {
        break;
      }
    }
    SWEEPING.with(|s| s.set(false));
  });
}

/// Closes expired idle connections; how many stay idle.
fn sweep() -> usize {
  let (expired, remaining) = KEYS.with(|k| {
    let mut expired = Vec::new();
    let mut remaining = 0;
    for key in k.borrow().values() {
      let mut entry = key.entry.borrow_mut();
      let (old, young) = std::mem::take(&mut entry.idle)
        .into_iter()
        .partition(|i| i.since.elapsed() >= POOL_IDLE || i.conn.sender.is_closed());
      entry.idle = young;
      remaining += entry.idle.len();
      expired.extend::<Vec<Idle>>(old);
    }
    (expired, remaining)
  });
  for idle in expired {
    close(idle.conn);
  }
  remaining
}
