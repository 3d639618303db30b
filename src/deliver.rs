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

mod mailbox;
pub use mailbox::Mailbox;

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
      // ASCII (URLs, heads, the usual JSON body) is the same string read as Latin-1,
      // which V8 copies without decoding.
      let status = if s.is_ascii() {
        unsafe {
          sys::napi_create_string_latin1(env, s.as_ptr().cast(), s.len() as isize, &mut out)
        }
      } else {
        unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut out) }
      };
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
  // A fixed array, not a Vec: nothing allocated per reply.
  let args: [Option<sys::napi_value>; 12] = if args.iter().all(Option::is_some) {
    args
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
  };
  let args = args
    .iter()
    .all(Option::is_some)
    .then(|| args.map(|a| a.unwrap_or(undefined)));
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
