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
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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
  sys::napi_open_handle_scope(env, &mut scope);
  let mut undefined = std::ptr::null_mut();
  sys::napi_get_undefined(env, &mut undefined);
  let string = |value: Option<&str>| match value {
    Some(s) => {
      let mut out = std::ptr::null_mut();
      let status = sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut out);
      (status == sys::Status::napi_ok && !out.is_null()).then_some(out)
    }
    None => Some(undefined),
  };
  let number = |value: f64| {
    let mut out = undefined;
    sys::napi_create_double(env, value, &mut out);
    out
  };
  let mut retryable = undefined;
  sys::napi_get_boolean(env, reply.retryable, &mut retryable);
  let body = match reply.body {
    // Longer than V8's string limit: the bytes instead (decoding them fails in JS,
    // where `text()` rejects as node-fetch's does).
    Some(Body::Text(text)) => string(Some(&text)).or_else(|| {
      clear_exception(env);
      buffer(env, text.into_bytes())
    }),
    Some(Body::Bytes(bytes)) => buffer(env, bytes),
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
    Some(number(reply.id)),
    Some(number(reply.status.into())),
    string(reply.status_text.as_deref()),
    string(reply.headers.as_deref()),
    body,
    string(Some(&reply.url)),
    string(reply.final_url.as_deref()),
    Some(retryable),
    string(kind),
    string(code),
    string(message),
    Some(number(reply.attempts.into())),
  ];
  let args: Vec<sys::napi_value> = if args.iter().all(Option::is_some) {
    args.into_iter().flatten().collect()
  } else {
    clear_exception(env);
    let message = "the response could not be handed to JavaScript";
    vec![
      number(reply.id),
      number(0.0),
      undefined,
      undefined,
      undefined,
      string(Some(&reply.url)).unwrap_or(undefined),
      undefined,
      retryable,
      string(Some("network")).unwrap_or(undefined),
      string(Some("ERR_STRING_TOO_LONG")).unwrap_or(undefined),
      string(Some(message)).unwrap_or(undefined),
      number(reply.attempts.into()),
    ]
  };
  let mut func = std::ptr::null_mut();
  let mut recv = std::ptr::null_mut();
  sys::napi_get_reference_value(env, on_reply, &mut func);
  sys::napi_get_global(env, &mut recv);
  let mut result = std::ptr::null_mut();
  if !func.is_null() {
    let status = sys::napi_make_callback(
      env,
      context.0,
      recv,
      func,
      args.len(),
      args.as_ptr(),
      &mut result,
    );
    if status == sys::Status::napi_pending_exception {
      let mut error = std::ptr::null_mut();
      sys::napi_get_and_clear_last_exception(env, &mut error);
      sys::napi_fatal_exception(env, error);
    }
  }
  if !context.0.is_null() {
    sys::napi_async_destroy(env, context.0);
  }
  sys::napi_close_handle_scope(env, scope);
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
  sys::napi_is_exception_pending(env, &mut pending);
  if pending {
    let mut error = std::ptr::null_mut();
    sys::napi_get_and_clear_last_exception(env, &mut error);
  }
}

// ---- from tokio's threads ----

/// Replies finished on tokio's threads, waiting for the JS thread. Shared by the
/// client, every request in flight and the threadsafe function, so no reply is lost
/// when the client is collected first; when the env goes away (a worker terminated),
/// the function is finalized and later replies are dropped.
pub struct Mailbox {
  state: Mutex<MailboxState>,
  /// Requests started and not yet delivered; touched on the JS thread only.
  inflight: AtomicU32,
  /// The client was collected: release the function once the last reply is in.
  orphaned: AtomicBool,
  on_reply: usize,
}

struct MailboxState {
  replies: Vec<(usize, Reply)>,
  /// The threadsafe function, until it is released or finalized.
  tsfn: Option<usize>,
}

impl Mailbox {
  /// # Safety
  /// On the JS thread of `env`; `on_reply` is a live reference (owned from now on).
  pub unsafe fn new(env: sys::napi_env, on_reply: sys::napi_ref) -> Option<Arc<Mailbox>> {
    let label = "pusher-native:replies";
    let mut name = std::ptr::null_mut();
    sys::napi_create_string_latin1(env, label.as_ptr().cast(), label.len() as isize, &mut name);
    let mailbox = Arc::new(Mailbox {
      state: Mutex::new(MailboxState {
        replies: Vec::new(),
        tsfn: None,
      }),
      inflight: AtomicU32::new(0),
      orphaned: AtomicBool::new(false),
      on_reply: on_reply as usize,
    });
    let context = Arc::into_raw(Arc::clone(&mailbox)).cast_mut();
    let mut tsfn = std::ptr::null_mut();
    let status = sys::napi_create_threadsafe_function(
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
    );
    if status != sys::Status::napi_ok {
      drop(Arc::from_raw(context));
      sys::napi_delete_reference(env, on_reply);
      return None;
    }
    mailbox.lock().tsfn = Some(tsfn as usize);
    sys::napi_unref_threadsafe_function(env, tsfn);
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
    if self.inflight.fetch_add(1, Ordering::Relaxed) == 0 {
      if let Some(tsfn) = self.lock().tsfn {
        // SAFETY: on the JS thread; the function is live while `tsfn` is set.
        unsafe { sys::napi_ref_threadsafe_function(env, tsfn as _) };
      }
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
      // `finalize` takes to clear it).
      unsafe {
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
    self.orphaned.store(true, Ordering::Relaxed);
    if self.inflight.load(Ordering::Relaxed) == 0 {
      self.release();
    }
  }

  fn release(&self) {
    let mut state = self.lock();
    if let Some(tsfn) = state.tsfn.take() {
      // SAFETY: live (checked under the lock); released once.
      unsafe {
        sys::napi_release_threadsafe_function(
          tsfn as _,
          sys::ThreadsafeFunctionReleaseMode::release,
        )
      };
    }
  }
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
  let mailbox = &*(context as *const Mailbox);
  let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    let batch = std::mem::take(&mut mailbox.lock().replies);
    let n = batch.len() as u32;
    for (context, reply) in batch {
      deliver(
        env,
        mailbox.on_reply as _,
        RequestContext::from_raw(context),
        reply,
      );
    }
    if n > 0 && mailbox.inflight.fetch_sub(n, Ordering::Relaxed) == n {
      if mailbox.orphaned.load(Ordering::Relaxed) {
        mailbox.release();
      } else if let Some(tsfn) = mailbox.lock().tsfn {
        sys::napi_unref_threadsafe_function(env, tsfn as _);
      }
    }
  }));
}

/// # Safety
/// Called by Node once for the function made in `Mailbox::new`; `data` is its `Arc`.
unsafe extern "C" fn finalize(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  let mailbox = Arc::from_raw(data as *const Mailbox);
  mailbox.lock().tsfn = None;
  if !env.is_null() {
    sys::napi_delete_reference(env, mailbox.on_reply as _);
  }
}
