//! Handing replies to JS: one path for both transports. Each reply is one call of the
//! client's `onReply` with positional values (no property names to create per reply),
//! made with `napi_make_callback` in the async context of the call that started the
//! request, so AsyncLocalStorage and `diagnostics_channel` subscribers see the
//! caller's store; promise jobs run when it returns.
//!
//! The event loop delivers on the JS thread directly; tokio's threads leave replies
//! in a [`Mailbox`], which a threadsafe function drains on the JS thread in batches.

use crate::reply::{Body, Reply};
use napi::bindgen_prelude::ToNapiValue;
use napi::sys;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// The async context of the call that started a request, captured at its start.
pub struct RequestContext(sys::napi_async_context);

impl RequestContext {
  /// # Safety
  /// On the JS thread of `env`, inside a call from JS.
  pub unsafe fn capture(env: sys::napi_env) -> Self {
    let label = "pusher-native:request";
    let mut name = std::ptr::null_mut();
    let mut context = std::ptr::null_mut();
    if sys::napi_create_string_latin1(env, label.as_ptr().cast(), label.len() as isize, &mut name)
      == sys::Status::napi_ok
    {
      sys::napi_async_init(env, std::ptr::null_mut(), name, &mut context);
    }
    Self(context)
  }

  /// For a reply that crosses threads: only ever used again on the JS thread.
  pub fn into_raw(self) -> usize {
    self.0 as usize
  }

  /// # Safety
  /// `raw` came from [`RequestContext::into_raw`] on this env's thread.
  pub unsafe fn from_raw(raw: usize) -> Self {
    Self(raw as sys::napi_async_context)
  }
}

/// Calls `onReply(id, status, statusText, headers, body, url, finalUrl, retryable,
/// errorKind, errorCode, errorMessage, attempts)` and ends the request's async context.
/// A failed napi call (the env shutting down, a string over V8's limit) loses the reply,
/// never the process: each status is checked.
///
/// # Safety
/// On the JS thread of `env`, outside any JS call (a libuv or threadsafe-function
/// callback); `on_reply` is a live reference to a function in `env`.
pub unsafe fn deliver(
  env: sys::napi_env,
  on_reply: sys::napi_ref,
  context: RequestContext,
  reply: Reply,
) {
  let mut scope = std::ptr::null_mut();
  // SAFETY: on the JS thread (the caller's promise).
  if unsafe { sys::napi_open_handle_scope(env, &mut scope) } == sys::Status::napi_ok {
    // SAFETY: as this function's, inside the scope just opened.
    unsafe { call_on_reply(env, on_reply, &context, reply) };
    // SAFETY: the scope opened above, closed once; nothing to do if it fails.
    let _ = unsafe { sys::napi_close_handle_scope(env, scope) };
  }
  if !context.0.is_null() {
    // SAFETY: the context made in `capture`, destroyed once (the reply is delivered
    // once); a failure leaves nothing to undo.
    let _ = unsafe { sys::napi_async_destroy(env, context.0) };
  }
}

/// The values of one reply, then the call.
///
/// # Safety
/// As [`deliver`], inside an open handle scope.
unsafe fn call_on_reply(
  env: sys::napi_env,
  on_reply: sys::napi_ref,
  context: &RequestContext,
  reply: Reply,
) {
  let ok = |status: sys::napi_status| status == sys::Status::napi_ok;
  let mut undefined = std::ptr::null_mut();
  // SAFETY (this and each napi call below): on the JS thread with a scope open; every
  // out pointer is a live local.
  if !ok(unsafe { sys::napi_get_undefined(env, &mut undefined) }) {
    return;
  }
  let string = |value: Option<&str>| match value {
    Some(s) => {
      let mut out = std::ptr::null_mut();
      let status =
        unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut out) };
      (ok(status) && !out.is_null()).then_some(out)
    }
    None => Some(undefined),
  };
  let number = |value: f64| {
    let mut out = std::ptr::null_mut();
    ok(unsafe { sys::napi_create_double(env, value, &mut out) }).then_some(out)
  };
  let mut retryable = std::ptr::null_mut();
  let retryable =
    ok(unsafe { sys::napi_get_boolean(env, reply.retryable, &mut retryable) }).then_some(retryable);
  let body = match reply.body {
    // Longer than V8's string limit: the bytes instead (decoding them fails in JS,
    // where `text()` rejects as node-fetch's does).
    Some(Body::Text(text)) => string(Some(&text)).or_else(|| {
      unsafe { clear_exception(env) };
      unsafe { buffer(env, text.into_bytes()) }
    }),
    Some(Body::Bytes(bytes)) => unsafe { buffer(env, bytes) },
    None => Some(undefined),
  };
  let (kind, code, message) = match &reply.failure {
    Some(f) => (
      Some(f.kind.as_str()),
      Some(f.code),
      Some(f.message.as_str()),
    ),
    None => (None, None, None),
  };
  let args = [
    number(reply.id),
    number(reply.status.into()),
    string(reply.status_text.as_deref()),
    string(reply.headers.as_deref()),
    body,
    string(Some(&reply.url)),
    string(reply.final_url.as_deref()),
    retryable,
    string(kind),
    string(code),
    string(message),
    number(reply.attempts.into()),
  ];
  let args: Option<Vec<sys::napi_value>> = if args.iter().all(Option::is_some) {
    args.into_iter().collect()
  } else {
    unsafe { clear_exception(env) };
    let message = "the response could not be handed to JavaScript";
    [
      number(reply.id),
      number(0.0),
      Some(undefined),
      Some(undefined),
      Some(undefined),
      string(Some(&reply.url)).or(Some(undefined)),
      Some(undefined),
      retryable,
      string(Some("network")),
      string(Some("ERR_STRING_TOO_LONG")),
      string(Some(message)),
      number(reply.attempts.into()),
    ]
    .into_iter()
    .collect()
  };
  let Some(args) = args else {
    // Not even the short failure could be made: the env is going away.
    unsafe { clear_exception(env) };
    return;
  };
  let mut func = std::ptr::null_mut();
  let mut recv = std::ptr::null_mut();
  if !ok(unsafe { sys::napi_get_reference_value(env, on_reply, &mut func) })
    || func.is_null()
    || !ok(unsafe { sys::napi_get_global(env, &mut recv) })
  {
    return;
  }
  let mut result = std::ptr::null_mut();
  let status = unsafe {
    sys::napi_make_callback(
      env,
      context.0,
      recv,
      func,
      args.len(),
      args.as_ptr(),
      &mut result,
    )
  };
  if status == sys::Status::napi_pending_exception {
    // `onReply` threw: an uncaught exception, as from any callback.
    let mut error = std::ptr::null_mut();
    if ok(unsafe { sys::napi_get_and_clear_last_exception(env, &mut error) }) {
      let _ = unsafe { sys::napi_fatal_exception(env, error) };
    }
  }
}

/// # Safety
/// On the JS thread of `env`.
unsafe fn buffer(env: sys::napi_env, bytes: Vec<u8>) -> Option<sys::napi_value> {
  napi::bindgen_prelude::Buffer::to_napi_value(env, bytes.into()).ok()
}

/// # Safety
/// On the JS thread of `env`.
unsafe fn clear_exception(env: sys::napi_env) {
  let mut pending = false;
  // SAFETY: on the JS thread (the caller's promise); live out pointers.
  let status = unsafe { sys::napi_is_exception_pending(env, &mut pending) };
  if status == sys::Status::napi_ok && pending {
    let mut error = std::ptr::null_mut();
    // SAFETY: as above; the cleared exception is dropped.
    let _ = unsafe { sys::napi_get_and_clear_last_exception(env, &mut error) };
  }
}

// ---- from tokio's threads ----

/// Replies finished on tokio's threads, waiting for the JS thread. Shared by the
/// client, every request in flight and the threadsafe function, so no reply is lost
/// when the client is collected first; when the env goes away (a worker terminated),
/// the function is finalized and later replies are dropped.
pub struct Mailbox {
  /// One lock for everything, so that the client going (`orphan`, any thread) and the
  /// last reply coming in (`drain`, the JS thread) cannot miss each other.
  state: Mutex<MailboxState>,
  on_reply: usize,
}

struct MailboxState {
  replies: Vec<(usize, Reply)>,
  /// The threadsafe function, until it is released or finalized.
  tsfn: Option<usize>,
  inflight: Inflight,
}

/// Requests started and not yet delivered, and whether the client is gone: what
/// decides when the threadsafe function keeps the process up and when it is released.
#[derive(Debug, Default)]
struct Inflight {
  count: u64,
  orphaned: bool,
}

/// What the threadsafe function needs after a change of [`Inflight`].
#[derive(Debug, PartialEq, Eq)]
enum Next {
  Nothing,
  /// Keep the process up: a request is in flight.
  Ref,
  /// Let the process exit: nothing is in flight.
  Unref,
  /// Nothing is in flight and the client is gone: release the function.
  Release,
}

impl Inflight {
  fn started(&mut self) -> Next {
    self.count += 1;
    if self.count == 1 {
      Next::Ref
    } else {
      Next::Nothing
    }
  }

  fn delivered(&mut self, n: u64) -> Next {
    if n == 0 {
      return Next::Nothing;
    }
    self.count = self.count.saturating_sub(n);
    self.idle()
  }

  fn orphan(&mut self) -> Next {
    self.orphaned = true;
    self.idle()
  }

  fn idle(&self) -> Next {
    match (self.count, self.orphaned) {
      (0, true) => Next::Release,
      (0, false) => Next::Unref,
      _ => Next::Nothing,
    }
  }
}

impl Mailbox {
  /// # Safety
  /// On the JS thread of `env`; `on_reply` is a live reference (owned from now on).
  pub unsafe fn new(env: sys::napi_env, on_reply: sys::napi_ref) -> Option<Arc<Mailbox>> {
    let label = "pusher-native:replies";
    let mut name = std::ptr::null_mut();
    // SAFETY: on the JS thread; a latin-1 label of the given length.
    let named = unsafe {
      sys::napi_create_string_latin1(env, label.as_ptr().cast(), label.len() as isize, &mut name)
    };
    if named != sys::Status::napi_ok {
      // SAFETY: the reference handed to us, deleted once.
      let _ = unsafe { sys::napi_delete_reference(env, on_reply) };
      return None;
    }
    let mailbox = Arc::new(Mailbox {
      state: Mutex::new(MailboxState {
        replies: Vec::new(),
        tsfn: None,
        inflight: Inflight::default(),
      }),
      on_reply: on_reply as usize,
    });
    let context = Arc::into_raw(Arc::clone(&mailbox)).cast_mut();
    let mut tsfn = std::ptr::null_mut();
    // SAFETY: on the JS thread; `context` is an `Arc` that `finalize` takes back.
    let status = unsafe {
      sys::napi_create_threadsafe_function(
        env,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        name,
        0,
        1,
        context.cast(),
        Some(finalize),
        context.cast(),
        Some(drain),
        &mut tsfn,
      )
    };
    if status != sys::Status::napi_ok {
      // SAFETY: the `Arc` made above, never handed to Node; the reference, deleted once.
      unsafe {
        drop(Arc::from_raw(context));
        let _ = sys::napi_delete_reference(env, on_reply);
      }
      return None;
    }
    mailbox.lock().tsfn = Some(tsfn as usize);
    // SAFETY: on the JS thread, the function just made. Should this fail, the function
    // keeps the process up until the client is collected: nothing is lost.
    let _ = unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
    Some(mailbox)
  }

  fn lock(&self) -> std::sync::MutexGuard<'_, MailboxState> {
    self.state.lock().unwrap_or_else(|p| p.into_inner())
  }

  /// As a request starts: the process stays up until it is in.
  ///
  /// # Safety
  /// On the JS thread of `env`.
  pub unsafe fn started(&self, env: sys::napi_env) {
    let mut state = self.lock();
    if state.inflight.started() == Next::Ref {
      // SAFETY: on the JS thread; the function is live while `tsfn` is set (under the
      // lock `finalize` takes to clear it).
      unsafe { apply(env, &mut state, Next::Ref) };
    }
  }

  /// From any thread.
  pub fn post(&self, context: usize, reply: Reply) {
    let mut state = self.lock();
    let Some(tsfn) = state.tsfn else {
      return;
    };
    state.replies.push((context, reply));
    if state.replies.len() == 1 {
      // SAFETY: the function is live while `tsfn` is set (checked under the lock that
      // `finalize` takes to clear it). Should the call fail (the env is closing), the
      // reply goes with the mailbox.
      let _ = unsafe {
        sys::napi_call_threadsafe_function(
          tsfn as _,
          std::ptr::null_mut(),
          sys::ThreadsafeFunctionCallMode::nonblocking,
        )
      };
    }
  }

  /// When the client is dropped (from any thread).
  pub fn orphan(&self) {
    let mut state = self.lock();
    if state.inflight.orphan() == Next::Release {
      // SAFETY: releasing needs no env and may happen on any thread.
      unsafe { apply(std::ptr::null_mut(), &mut state, Next::Release) };
    }
  }
}

/// Applies `next` to the threadsafe function, if it is still live.
///
/// # Safety
/// `Ref` and `Unref` on the JS thread of `env`; `Release` from any thread.
unsafe fn apply(env: sys::napi_env, state: &mut MailboxState, next: Next) {
  let Some(tsfn) = state.tsfn else { return };
  // SAFETY: live while `tsfn` is set, under the caller's lock; released once (`take`).
  // A failed ref/unref changes only whether the process waits for this function.
  let _ = unsafe {
    match next {
      Next::Nothing => return,
      Next::Ref => sys::napi_ref_threadsafe_function(env, tsfn as _),
      Next::Unref => sys::napi_unref_threadsafe_function(env, tsfn as _),
      Next::Release => {
        state.tsfn = None;
        sys::napi_release_threadsafe_function(
          tsfn as _,
          sys::ThreadsafeFunctionReleaseMode::release,
        )
      }
    }
  };
}

/// # Safety
/// Called by Node on the JS thread for the function made in `Mailbox::new`.
unsafe extern "C" fn drain(
  env: sys::napi_env,
  _js_callback: sys::napi_value,
  context: *mut c_void,
  _data: *mut c_void,
) {
  if env.is_null() {
    return;
  }
  // SAFETY: the `Arc` given at creation, alive until `finalize`, which runs after the
  // last call of this function.
  let mailbox = unsafe { &*(context as *const Mailbox) };
  let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    let batch = std::mem::take(&mut mailbox.lock().replies);
    let n = batch.len() as u64;
    for (context, reply) in batch {
      // SAFETY: on the JS thread from a threadsafe-function callback; the reference
      // lives until `finalize`; each context is delivered once.
      unsafe {
        deliver(
          env,
          mailbox.on_reply as _,
          RequestContext::from_raw(context),
          reply,
        )
      };
    }
    let mut state = mailbox.lock();
    let next = state.inflight.delivered(n);
    // SAFETY: on the JS thread.
    unsafe { apply(env, &mut state, next) };
  }));
}

/// # Safety
/// Called by Node once for the function made in `Mailbox::new`; `data` is its `Arc`.
unsafe extern "C" fn finalize(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  // SAFETY: the `Arc` handed over in `Mailbox::new`, taken back once.
  let mailbox = unsafe { Arc::from_raw(data as *const Mailbox) };
  mailbox.lock().tsfn = None;
  if !env.is_null() {
    // SAFETY: on the JS thread; the reference owned by the mailbox, deleted once.
    let _ = unsafe { sys::napi_delete_reference(env, mailbox.on_reply as _) };
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_function_is_released_once_whichever_comes_last() {
    // The client goes before the last reply: the reply releases.
    let mut a = Inflight::default();
    assert_eq!(a.started(), Next::Ref);
    assert_eq!(a.started(), Next::Nothing);
    assert_eq!(a.orphan(), Next::Nothing);
    assert_eq!(a.delivered(1), Next::Nothing);
    assert_eq!(a.delivered(1), Next::Release);
    // The last reply before the client goes: the client releases.
    let mut b = Inflight::default();
    b.started();
    assert_eq!(b.delivered(1), Next::Unref);
    assert_eq!(b.orphan(), Next::Release);
    assert_eq!(b.delivered(0), Next::Nothing);
  }

  #[test]
  fn orphan_and_drain_on_two_threads_never_both_miss() {
    // The race of issue 20 item 8, under the one lock: exactly one side releases.
    for _ in 0..2000 {
      let state = Arc::new(Mutex::new(Inflight::default()));
      state.lock().unwrap().started();
      let other = Arc::clone(&state);
      let orphan = std::thread::spawn(move || other.lock().unwrap().orphan() == Next::Release);
      let drained = state.lock().unwrap().delivered(1) == Next::Release;
      let orphaned = orphan.join().unwrap();
      assert!(
        drained ^ orphaned,
        "released by drain: {drained}, by orphan: {orphaned}"
      );
    }
  }
}
