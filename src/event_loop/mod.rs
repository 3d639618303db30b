//! HTTP(S) requests driven by Node's own event loop (libuv), on the JS thread: no hop
//! to another thread and back. hyper's HTTP/1 client runs over a libuv TCP handle
//! (`tcp`), with tokio-rustls for TLS, its futures polled by a small executor woken
//! from libuv callbacks (`executor`). Used on the main thread without a proxy (with
//! or without retries); the tokio transport carries the rest, and both keep the same wire
//! contract (`pusher_core::http`).
//!
//! Ownership: an exchange (one request) is an executor task. It owns its timeout
//! timer and, while it uses one, its connection's lease; a connection is driven by a
//! task of its own, which owns the socket (`pool` says who owns it when). Every libuv
//! callback goes through [`callback`]: panics stop there, then ready tasks run, then
//! finished replies go to JS. Replies that finish while JS is calling `start` wait for
//! the loop, so JS never re-enters itself.

mod connect;
mod exchange;
mod executor;
mod head_capture;
mod poll_clock;
mod pool;
mod retry;
mod stream;
mod tcp;
mod timer;

use crate::deliver::{self, RequestContext};
use crate::reply::{reply_of, Reply};
use crate::uv::{self, Uv};
use bytes::Bytes;
use napi::sys;
use pusher_core::error::TransportError;
use pusher_core::http::limits::timeout_ms;
use pusher_core::http::{Method, Origin};
use reqwest::header::HeaderValue;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;
use timer::Timer;

/// The loop of the JS thread.
#[derive(Clone, Copy)]
pub struct Loop(pub *mut uv::Loop);

/// The certificates a connection is verified against: part of the pool key, so a
/// connection verified with one `ca` is never reused by a client without it.
pub struct Trust {
  id: u64,
  ca: Option<Vec<u8>>,
  config: OnceCell<Result<Arc<rustls::ClientConfig>, TransportError>>,
}

/// Each distinct `ca` (none included) in use, and its trust.
type TrustById = HashMap<Option<Vec<u8>>, Weak<Trust>>;

// Never dropped: see the executor's thread-locals.
thread_local! {
  static TRUSTS: ManuallyDrop<RefCell<TrustById>> = ManuallyDrop::new(RefCell::new(HashMap::new()));
  static TRUST_IDS: Cell<u64> = const { Cell::new(0) };
}

impl Trust {
  /// The trust for `ca`, shared while any client or pool key holds it.
  fn of(ca: Option<Vec<u8>>) -> Rc<Trust> {
    TRUSTS.with(|k| {
      let mut known = k.borrow_mut();
      if let Some(trust) = known.get(&ca).and_then(Weak::upgrade) {
        return trust;
      }
      let id = TRUST_IDS.with(|n| n.replace(n.get() + 1));
      let trust = Rc::new(Trust {
        id,
        ca: ca.clone(),
        config: OnceCell::new(),
      });
      known.insert(ca, Rc::downgrade(&trust));
      trust
    })
  }

  fn config(&self) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    self
      .config
      .get_or_init(|| pusher_core::tls::config(self.ca.as_deref()).map(Arc::new))
      .clone()
  }
}

/// One client's requests on the event loop.
pub struct Client {
  uv: &'static Uv,
  env: sys::napi_env,
  loop_: Loop,
  on_reply: sys::napi_ref,
  key: Rc<pool::Key>,
  trust: Rc<Trust>,
  base_len: usize,
  timeout: Option<Duration>,
  /// Bytes of a response body past which the read stops and the call fails.
  max_response_size: u64,
  /// Connections per origin (open or opening).
  max_sockets: usize,
  /// Attempts after the first, within `timeout` (the whole call's deadline).
  retry: Option<pusher_core::retry::RetryPolicy>,
  library: HeaderValue,
  /// The request head's headers for `key`, without and with a body.
  heads: [hyper::HeaderMap; 2],
}

impl Client {
  /// `None` when libuv is not available, this is not the loop's thread, or the base
  /// URL is not a plain `http(s)://host[:port]`.
  ///
  /// # Safety
  /// On the JS thread of `env`; `on_reply` is a function value in it.
  pub unsafe fn new(
    env: sys::napi_env,
    on_reply: sys::napi_value,
    base_url: &str,
    timeout: Option<Duration>,
    library: HeaderValue,
    ca: Option<Vec<u8>>,
    max_response_size: u64,
    max_sockets: usize,
    retry: Option<pusher_core::retry::RetryPolicy>,
  ) -> Option<Self> {
    let uv = uv::get()?;
    let parsed = url::Url::parse(base_url).ok()?;
    let origin = Origin::of(&parsed)?;
    // The signed URL is `base_url + path`: the target starts right after it. Userinfo
    // (reqwest turns it into an authorization header) is left to tokio.
    if parsed.path() != "/"
      || base_url.ends_with('/')
      || !parsed.username().is_empty()
      || parsed.password().is_some()
    {
      return None;
    }
    let mut loop_ = std::ptr::null_mut();
    if sys::napi_get_uv_event_loop(env, &mut loop_) != sys::Status::napi_ok || loop_.is_null() {
      return None;
    }
    if !executor::init(uv, loop_.cast()) {
      return None;
    }
    let mut on_ref = std::ptr::null_mut();
    if sys::napi_create_reference(env, on_reply, 1, &mut on_ref) != sys::Status::napi_ok {
      return None;
    }
    let trust = Trust::of(ca);
    let heads = [false, true]
      .map(|body| pusher_core::http::request::headers(&library, body, Some(&origin.host_header)));
    Some(Self {
      uv,
      env,
      loop_: Loop(loop_.cast()),
      on_reply: on_ref,
      key: pool::Key::new(origin, &trust),
      trust,
      base_len: base_url.len(),
      timeout,
      max_response_size,
      max_sockets: max_sockets.max(1),
      retry,
      library,
      heads,
    })
  }
}

impl Drop for Trust {
  fn drop(&mut self) {
    let me: *const Trust = self;
    let _ = TRUSTS.try_with(|k| {
      let Ok(mut known) = k.try_borrow_mut() else {
        return;
      };
      if known
        .get(&self.ca)
        .is_some_and(|w| std::ptr::eq(w.as_ptr(), me))
      {
        known.remove(&self.ca);
      }
    });
  }
}

impl Drop for Client {
  fn drop(&mut self) {
    // SAFETY: clients are dropped on their JS thread, while the env lives.
    unsafe { sys::napi_delete_reference(self.env, self.on_reply) };
  }
}

struct Finished {
  client: Rc<Client>,
  context: RequestContext,
  reply: Reply,
}

thread_local! {
  static OUTBOX: ManuallyDrop<RefCell<Vec<Finished>>> = const { ManuallyDrop::new(RefCell::new(Vec::new())) };
  static IN_START: Cell<bool> = const { Cell::new(false) };
  static DEFERRED: ManuallyDrop<RefCell<Option<Timer>>> = const { ManuallyDrop::new(RefCell::new(None)) };
}

/// Runs `work` so that a panic stops here, never unwinding into C.
pub(crate) fn no_unwind(work: impl FnOnce()) {
  let _ = catch_unwind(AssertUnwindSafe(work));
}

/// Runs a libuv callback's work: a panic stops here (the task or handle involved is
/// dropped, which fails its request), then the tasks it woke run, then replies go out.
pub(crate) fn callback(work: impl FnOnce()) {
  let _ = catch_unwind(AssertUnwindSafe(work));
  let _ = catch_unwind(executor::run);
  if !IN_START.with(Cell::get) {
    flush_replies();
  }
}

fn flush_replies() {
  loop {
    let mut batch = OUTBOX.with(|o| std::mem::take(&mut *o.borrow_mut()));
    if batch.is_empty() {
      return;
    }
    for f in batch.drain(..) {
      // SAFETY: on the JS thread, from a libuv callback (outside any JS call).
      let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        deliver::deliver(f.client.env, f.client.on_reply, f.context, f.reply)
      }));
      // JS may have started requests whose tasks are ready.
      let _ = catch_unwind(executor::run);
    }
    // The emptied buffer back, so the next replies need no allocation (it holds at
    // most what was in flight at once).
    OUTBOX.with(|o| {
      let mut outbox = o.borrow_mut();
      if outbox.is_empty() {
        *outbox = batch;
      }
    });
  }
}

/// The request's reply, once: from the task, the timeout, or the guard of a task
/// that ended without one.
struct Pending {
  client: Rc<Client>,
  id: f64,
  url: String,
  idempotent: bool,
  context: RequestContext,
  /// The attempt under way (retries).
  attempts: u32,
}

type Slot = Rc<RefCell<Option<Pending>>>;

fn finish(slot: &Slot, result: Result<pusher_core::http::response::Reply, TransportError>) {
  let Some(p) = slot.borrow_mut().take() else {
    return;
  };
  let reply = reply_of(p.id, p.url, result, p.attempts, p.idempotent);
  OUTBOX.with(|o| {
    o.borrow_mut().push(Finished {
      client: p.client,
      context: p.context,
      reply,
    })
  });
}

/// Fails the request if its task ends without a reply (a panic inside it).
struct Guard(Slot);

impl Drop for Guard {
  fn drop(&mut self) {
    let url = self.0.borrow().as_ref().map(|p| p.url.clone());
    if let Some(url) = url {
      let error = TransportError::from_cause(&std::io::Error::other("internal error"), &url, false);
      finish(&self.0, Err(error));
    }
  }
}

/// Starts one request. `url` is the signed URL (`base_url` + target).
///
/// # Safety
/// Called from JS on the client's thread.
pub unsafe fn start(
  client: &Rc<Client>,
  id: f64,
  method: Method,
  url: String,
  body: Option<Bytes>,
) {
  let context = RequestContext::capture(client.env);
  let slot: Slot = Rc::new(RefCell::new(Some(Pending {
    client: Rc::clone(client),
    id,
    url: url.clone(),
    idempotent: method.is_idempotent(),
    context,
    attempts: 1,
  })));
  // Shared with the timer only: without a timeout, nothing to allocate.
  let task_id: Option<Rc<Cell<Option<executor::TaskId>>>> = client.timeout.map(|_| Rc::default());
  let timer = client
    .timeout
    .zip(task_id.as_ref())
    .map(|(timeout, task_id)| {
      let (slot, task_id, url) = (Rc::clone(&slot), Rc::clone(task_id), url.clone());
      Timer::deadline(
        client.uv,
        client.loop_.0,
        timeout,
        Box::new(move || {
          finish(
            &slot,
            Err(TransportError::timeout(&url, Some(timeout_ms(timeout)))),
          );
          if let Some(id) = task_id.get() {
            executor::abort(id);
          }
        }),
      )
    });
  let guard = Guard(Rc::clone(&slot));
  let spec = exchange::Spec {
    method,
    url,
    body,
    connect_within: None,
  };
  let id = match client.retry {
    None => {
      let task = exchange::run(Rc::clone(client), spec);
      executor::spawn(async move {
        let _timer = timer;
        let result = task.await;
        finish(&guard.0, result);
      })
    }
    Some(policy) => {
      let deadline = pusher_core::retry::Deadline::after(client.timeout);
      let task = retry::run(Rc::clone(client), spec, policy, deadline, Rc::clone(&slot));
      executor::spawn(async move {
        let _timer = timer;
        let result = task.await;
        finish(&guard.0, result);
      })
    }
  };
  if let Some(task_id) = task_id {
    task_id.set(Some(id));
  }
  let was_in_start = IN_START.with(|s| s.replace(true));
  let _ = catch_unwind(executor::run);
  IN_START.with(|s| s.set(was_in_start));
  if !was_in_start && OUTBOX.with(|o| !o.borrow().is_empty()) {
    defer_replies(client);
  }
}

/// Delivers replies that finished inside `start` from the loop, right after.
fn defer_replies(client: &Client) {
  let timer = Timer::deadline(
    client.uv,
    client.loop_.0,
    Duration::ZERO,
    Box::new(|| {
      DEFERRED.with(|d| d.borrow_mut().take());
    }),
  );
  DEFERRED.with(|d| {
    d.borrow_mut().get_or_insert(timer);
  });
}
