//! The connection pool, per thread: idle connections per key (origin and trust), at
//! most the client's `maxSockets` connections per key (open or opening) and at most
//! `MAX_CONNECTING` connects per key at once. Requests beyond that wait, in order, for
//! a connection, a socket or a connect slot to come free (or for their timeout).
//!
//! Ownership: a connection is its hyper `SendRequest` plus the executor task that
//! drives hyper's connection future (which owns the socket), plus its [`Socket`]
//! permit. While a request uses it, its [`Lease`] owns it; a lease dropped without a
//! clean release (an error, a timeout, an ambiguous response) aborts the task, which
//! closes the socket. Idle connections are owned by their key, unreferenced (they
//! never hold the process open), and closed after `POOL_IDLE`.
//!
//! Keys are interned weakly: a key (and its idle connections) goes when no client and
//! no request holds it, so origins named by redirects do not pile up.

use super::executor::{self, TaskId};
use super::head_capture::{HeadCapture, Shared as Head};
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
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

pub type Sender = SendRequest<Full<Bytes>>;

/// What decides whether a connection may be shared: where it goes and which
/// certificates verified it. Interned: one per (origin, trust) and thread while in use,
/// holding that key's connections, so no request hashes anything.
pub struct Key {
  pub origin: Origin,
  trust: Rc<Trust>,
  entry: RefCell<Entry>,
}

impl Key {
  pub fn new(origin: Origin, trust: &Rc<Trust>) -> Rc<Key> {
    KEYS.with(|k| {
      let mut keys = k.borrow_mut();
      let id = (origin, trust.id);
      if let Some(key) = keys.get(&id).and_then(Weak::upgrade) {
        return key;
      }
      let key = Rc::new(Key {
        origin: id.0.clone(),
        trust: Rc::clone(trust),
        entry: RefCell::default(),
      });
      keys.insert(id, Rc::downgrade(&key));
      key
    })
  }
}

impl Drop for Key {
  fn drop(&mut self) {
    let me: *const Key = self;
    let _ = KEYS.try_with(|k| {
      let Ok(mut keys) = k.try_borrow_mut() else {
        return;
      };
      let id = (self.origin.clone(), self.trust.id);
      if keys.get(&id).is_some_and(|w| std::ptr::eq(w.as_ptr(), me)) {
        keys.remove(&id);
      }
    });
  }
}

pub struct Conn {
  pub sender: Sender,
  pub tcp: tcp::Shared,
  pub task: TaskId,
  /// What its reads recorded of the current response head.
  pub head: Head,
}

/// A connection the pool counts: its socket permit goes with it.
struct Live {
  conn: Conn,
  _socket: Socket,
}

impl Drop for Live {
  fn drop(&mut self) {
    executor::abort(self.conn.task);
  }
}

/// One of a key's `maxSockets`: held by a connection from the start of its connect to
/// its close; dropped, it lets the next waiting request in.
pub struct Socket(Weak<Key>);

impl Drop for Socket {
  fn drop(&mut self) {
    if let Some(key) = self.0.upgrade() {
      {
        let mut entry = key.entry.borrow_mut();
        entry.sockets = entry.sockets.saturating_sub(1);
      }
      notify_next(&key);
    }
  }
}

struct Idle {
  conn: Live,
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
  /// Connections open or opening.
  sockets: usize,
  waiting: VecDeque<Rc<Waiter>>,
}

type Keys = HashMap<(Origin, u64), Weak<Key>>;

// Never dropped: see the executor's thread-locals.
thread_local! {
  static KEYS: ManuallyDrop<RefCell<Keys>> = ManuallyDrop::new(RefCell::new(HashMap::new()));
  static SWEEPING: Cell<bool> = const { Cell::new(false) };
}

/// A connection in use by one request.
pub struct Lease {
  key: Rc<Key>,
  conn: Option<Live>,
  loop_: Loop,
}

impl Lease {
  pub fn sender(&mut self) -> &mut Sender {
    &mut self.conn.as_mut().expect("a leased connection").conn.sender
  }

  pub fn head(&self) -> &HeadCapture {
    &self.conn.as_ref().expect("a leased connection").conn.head
  }

  /// The exchange ended cleanly: the connection may serve another request.
  pub fn release(mut self) {
    if let Some(conn) = self.conn.take() {
      checkin(&self.key, conn, self.loop_);
    }
  }
}

/// The right to open one connection for `key`, with the socket it will count as.
pub struct ConnectSlot {
  key: Rc<Key>,
  /// Taken by the connection once open.
  socket: Option<Socket>,
}

impl Drop for ConnectSlot {
  fn drop(&mut self) {
    {
      let mut entry = self.key.entry.borrow_mut();
      entry.connecting = entry.connecting.saturating_sub(1);
      // A failed connect frees its socket too: one turn for one request, not two.
      if let Some(mut socket) = self.socket.take() {
        socket.0 = Weak::new();
        entry.sockets = entry.sockets.saturating_sub(1);
      }
    }
    notify_next(&self.key);
  }
}

pub enum Acquired {
  Pooled(Lease),
  Connect(ConnectSlot),
}

/// A pooled connection, or the right to open one (waiting, in order, for either when
/// `max_sockets` connections are open or `MAX_CONNECTING` connects under way).
pub async fn acquire(key: &Rc<Key>, loop_: Loop, max_sockets: usize) -> Acquired {
  let mut queued_before = false;
  loop {
    if let Some(conn) = checkout(key) {
      let mut lease = Lease {
        key: Rc::clone(key),
        conn: Some(conn),
        loop_,
      };
      // Closed since it went idle: never used, so another connection is safe.
      if poll_fn(|cx| lease.sender().poll_ready(cx)).await.is_ok() {
        pass_on(key, max_sockets);
        return Acquired::Pooled(lease);
      }
      continue;
    }
    let slot = {
      let mut entry = key.entry.borrow_mut();
      (entry.connecting < MAX_CONNECTING && entry.sockets < max_sockets).then(|| {
        entry.connecting += 1;
        entry.sockets += 1;
        ConnectSlot {
          key: Rc::clone(key),
          socket: Some(Socket(Rc::downgrade(key))),
        }
      })
    };
    if let Some(slot) = slot {
      pass_on(key, max_sockets);
      return Acquired::Connect(slot);
    }
    // Woken but beaten to it: back to the front, keeping the request's place.
    wait_turn(key, queued_before).await;
    queued_before = true;
  }
}

/// A connection just opened with `slot`, as a lease.
pub fn lease(mut slot: ConnectSlot, conn: Conn, loop_: Loop) -> Lease {
  let key = Rc::clone(&slot.key);
  let socket = slot.socket.take().expect("a connect slot's socket");
  // The connect is over (the next one may start); the socket stays with the connection.
  drop(slot);
  Lease {
    key,
    conn: Some(Live {
      conn,
      _socket: socket,
    }),
    loop_,
  }
}

fn checkout(key: &Rc<Key>) -> Option<Live> {
  loop {
    let idle = key.entry.borrow_mut().idle.pop()?;
    let idle_for = idle.since.elapsed();
    if idle_for >= POOL_IDLE || idle.conn.conn.sender.is_closed() {
      continue;
    }
    if may_have_unread() {
      tcp::read_pending(&idle.conn.conn.tcp);
    }
    // Let hyper (and rustls) take in what it has not looked at yet: what came while
    // JS was busy, or what arrived with the last response (a close_notify rustls holds
    // already). A close, a stray byte or a close_notify closes the connection; a
    // session ticket does not.
    executor::poll_now(idle.conn.conn.task);
    if idle.conn.conn.sender.is_closed() {
      continue;
    }
    tcp::set_ref(&idle.conn.conn.tcp, true);
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

fn checkin(key: &Rc<Key>, conn: Live, loop_: Loop) {
  if conn.conn.sender.is_closed() {
    return;
  }
  tcp::set_ref(&conn.conn.tcp, false);
  key.entry.borrow_mut().idle.push(Idle {
    conn,
    since: Instant::now(),
  });
  notify_next(key);
  start_sweep(loop_);
}

/// Waits until a connection or a connect slot may have come free for `key`; at the
/// front of the queue when `front` (a request that already had its turn and lost it).
async fn wait_turn(key: &Rc<Key>, front: bool) {
  let waiter = Rc::new(Waiter {
    notified: Cell::new(false),
    waker: RefCell::new(None),
  });
  {
    let mut entry = key.entry.borrow_mut();
    if front {
      entry.waiting.push_front(Rc::clone(&waiter));
    } else {
      entry.waiting.push_back(Rc::clone(&waiter));
    }
  }
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
fn pass_on(key: &Rc<Key>, max_sockets: usize) {
  let capacity = {
    let e = key.entry.borrow();
    !e.waiting.is_empty()
      && ((e.connecting < MAX_CONNECTING && e.sockets < max_sockets) || !e.idle.is_empty())
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

/// Closes expired idle connections; how many stay idle. Forgets keys no longer used.
fn sweep() -> usize {
  let keys: Vec<Rc<Key>> = KEYS.with(|k| {
    let mut keys = k.borrow_mut();
    keys.retain(|_, w| w.strong_count() > 0);
    let live = keys.len();
    keys.shrink_to(live * 2);
    keys.values().filter_map(Weak::upgrade).collect()
  });
  let mut remaining = 0;
  for key in &keys {
    let expired: Vec<Idle> = {
      let mut entry = key.entry.borrow_mut();
      let (old, young) = std::mem::take(&mut entry.idle)
        .into_iter()
        .partition(|i| i.since.elapsed() >= POOL_IDLE || i.conn.conn.sender.is_closed());
      entry.idle = young;
      remaining += entry.idle.len();
      old
    };
    drop(expired);
  }
  drop(keys);
  remaining
}

/// Keys interned now (live or not yet forgotten).
#[cfg(test)]
fn interned() -> usize {
  KEYS.with(|k| k.borrow().values().filter(|w| w.strong_count() > 0).count())
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
