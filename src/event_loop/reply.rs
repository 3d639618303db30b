//! Ending an exchange: the whole-request timeout, and handing the reply to JS (now,
//! or from the loop when JS is inside `start`).

use super::*;

// ---- the whole-request timeout ----

pub(super) fn start_timer(uv: &Uv, loop_: *mut uv::Loop, exchange: &Shared, ms: u64) {
  // SAFETY: a timer handle sized by libuv; its data holds a strong reference to the
  // exchange, released in the close callback.
  unsafe {
    let timer = Block::new((uv.handle_size)(uv::UV_TIMER)).into_raw();
    (uv.timer_init)(loop_, timer);
    uv::set_data(timer, Box::into_raw(Box::new(Rc::clone(exchange))));
    (uv.timer_start)(timer, on_timeout, ms, 0);
    exchange.borrow_mut().timer = timer;
  }
}

pub(super) fn stop_timer(uv: &Uv, ex: &mut Exchange) {
  let timer = std::mem::replace(&mut ex.timer, std::ptr::null_mut());
  if !timer.is_null() {
    // SAFETY: the exchange's live timer.
    unsafe {
      (uv.timer_stop)(timer);
      (uv.close)(timer, Some(on_timer_closed));
    }
  }
}

pub(super) unsafe extern "C" fn on_timer_closed(timer: *mut Handle) {
  let uv = uv::get().expect("libuv");
  drop(Box::from_raw(uv::data::<Shared>(timer)));
  Block::free(timer, (uv.handle_size)(uv::UV_TIMER));
}

pub(super) unsafe extern "C" fn on_timeout(timer: *mut Handle) {
  let exchange = Rc::clone(&*uv::data::<Shared>(timer));
  let uv = exchange.borrow().route.uv;
  let conn = exchange.borrow().conn;
  if !conn.is_null() {
    detach(&exchange);
    close_conn(uv, conn);
  }
  let (url, ms) = {
    let ex = exchange.borrow();
    (ex.signed_url.clone(), ex.route.timeout_ms)
  };
  fail(&exchange, TransportError::timeout(&url, ms));
}

// ---- replies ----

pub(super) fn fail(exchange: &Shared, error: TransportError) {
  let (url, idempotent) = {
    let ex = exchange.borrow();
    (ex.signed_url.clone(), ex.idempotent)
  };
  finish(exchange, reply_of(url, Err(error), 1, idempotent));
}

pub(super) fn finish(exchange: &Shared, mut reply: Reply) {
  let route = {
    let mut ex = exchange.borrow_mut();
    if ex.done {
      return;
    }
    ex.done = true;
    let route = Rc::clone(&ex.route);
    stop_timer(route.uv, &mut ex);
    reply.id = ex.id;
    route
  };
  if IN_START.with(Cell::get) {
    defer(route, reply);
  } else {
    deliver(&route, reply);
  }
}

pub(super) fn defer(route: Rc<Route>, reply: Reply) {
  DEFERRED.with(|d| d.borrow_mut().push((Rc::clone(&route), reply)));
  let uv = route.uv;
  let mut timer = DEFER_TIMER.with(Cell::get);
  // SAFETY: one timer per thread, never closed.
  unsafe {
    if timer.is_null() {
      timer = Block::new((uv.handle_size)(uv::UV_TIMER)).into_raw();
      (uv.timer_init)(route.loop_, timer);
      DEFER_TIMER.with(|t| t.set(timer));
    }
    (uv.timer_start)(timer, on_deferred, 0, 0);
  }
}

pub(super) unsafe extern "C" fn on_deferred(_timer: *mut Handle) {
  let replies = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
  for (route, reply) in replies {
    deliver(&route, reply);
  }
}

/// Calls `onReply(id, status, statusText, headers, body, url, finalUrl, retryable,
/// errorKind, errorCode, errorMessage)` from the event loop, as a top-level callback
/// (promise jobs run when it returns). Positional values, not an object: no property
/// names to create per reply.
pub(super) fn deliver(route: &Route, reply: Reply) {
  let env = route.env;
  // SAFETY: on the JS thread, outside any JS call (a libuv callback); every value is
  // created inside the handle scope opened here.
  unsafe {
    let mut scope = std::ptr::null_mut();
    sys::napi_open_handle_scope(env, &mut scope);
    let mut undefined = std::ptr::null_mut();
    sys::napi_get_undefined(env, &mut undefined);
    let string = |value: Option<&str>| match value {
      Some(s) => {
        let mut out = std::ptr::null_mut();
        sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut out);
        out
      }
      None => undefined,
    };
    let number = |value: f64| {
      let mut out = std::ptr::null_mut();
      sys::napi_create_double(env, value, &mut out);
      out
    };
    let mut retryable = std::ptr::null_mut();
    sys::napi_get_boolean(env, reply.retryable, &mut retryable);
    let body = match (&reply.text, reply.bytes) {
      (Some(text), _) => string(Some(text)),
      (None, Some(bytes)) => {
        napi::bindgen_prelude::Buffer::to_napi_value(env, bytes).unwrap_or(undefined)
      }
      (None, None) => undefined,
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
      string(reply.error_kind.as_deref()),
      string(reply.error_code.as_deref()),
      string(reply.error_message.as_deref()),
    ];
    let mut func = std::ptr::null_mut();
    let mut recv = std::ptr::null_mut();
    sys::napi_get_reference_value(env, route.on_reply, &mut func);
    sys::napi_get_global(env, &mut recv);
    let mut result = std::ptr::null_mut();
    let status = sys::napi_make_callback(
      env,
      route.async_context,
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
    sys::napi_close_handle_scope(env, scope);
  }
}
