//! HTTP(S) requests driven by Node's own event loop (libuv), on the JS thread: no hop
//! to another thread and back, so a request costs about what a C client's does. TLS is
//! rustls over the socket, with the tokio transport's configuration. Connections are
//! pooled per thread and origin; idle ones do not hold the process open. Used on the
//! main thread without proxy or retries; everything else goes through the tokio
//! transport, whose behaviour this one reproduces (the same request bytes, Node's error
//! codes, node-fetch's redirects, the whole-request timeout).
//!
//! Here: the route (per client), an exchange's life from `start` to its reply, and
//! redirects. `pool` shares connections, `connect` opens them, `conn` carries bytes
//! (TLS included), `reply` ends exchanges (timeouts too) and calls into JS.

use crate::client::{reply_of, Handoff, Reply};
use crate::uv::{self, Block, Buf, Handle, Req, Uv};
use napi::bindgen_prelude::ToNapiValue;
use napi::sys;
use pusher_core::error::TransportError;
use pusher_core::http1::{self, Origin, ResponseReader};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, CString};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod conn;
mod connect;
mod pool;
mod reply;

use conn::*;
use connect::*;
use pool::*;
use reply::*;

const MAX_REDIRECTS: u32 = 20;
const POOL_IDLE: Duration = Duration::from_secs(15);
const READ_CHUNK: usize = 64 * 1024;
/// Connects in progress per origin; more requests wait for a connection to come free.
/// A burst of thousands of connects at once overflows the server's accept queue, and
/// some of those connections are then reset after the request was written.
const MAX_CONNECTING: usize = 64;

/// What a client sends its requests with, when the event loop can carry them.
pub struct Route {
  uv: &'static Uv,
  env: sys::napi_env,
  loop_: *mut uv::Loop,
  on_reply: sys::napi_ref,
  async_context: sys::napi_async_context,
  origin: Rc<Origin>,
  base_len: usize,
  timeout_ms: Option<u64>,
  library: String,
  /// Extra CA (PEM) for the TLS configuration, built on first use.
  ca: Option<Vec<u8>>,
  tls: std::cell::OnceCell<Result<Arc<rustls::ClientConfig>, TransportError>>,
  handoff: Handoff,
}

impl Route {
  fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    self
      .tls
      .get_or_init(|| pusher_core::transport::tls_config(self.ca.as_deref()).map(Arc::new))
      .clone()
  }

  /// `None` when libuv is not available or the URL is not plain `http://`.
  ///
  /// # Safety
  /// `env` is the current env and `on_reply` a function value in it.
  pub unsafe fn new(
    env: sys::napi_env,
    on_reply: sys::napi_value,
    base_url: &str,
    timeout: Option<Duration>,
    library: &str,
    ca: Option<Vec<u8>>,
    handoff: Handoff,
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
    let mut on_ref = std::ptr::null_mut();
    if sys::napi_create_reference(env, on_reply, 1, &mut on_ref) != sys::Status::napi_ok {
      return None;
    }
    let mut resource = std::ptr::null_mut();
    let mut name = std::ptr::null_mut();
    let mut async_context = std::ptr::null_mut();
    let label = "pusher-native:request";
    sys::napi_create_object(env, &mut resource);
    sys::napi_create_string_utf8(env, label.as_ptr().cast(), label.len() as isize, &mut name);
    if sys::napi_async_init(env, resource, name, &mut async_context) != sys::Status::napi_ok {
      sys::napi_delete_reference(env, on_ref);
      return None;
    }
    Some(Self {
      uv,
      env,
      loop_: loop_.cast(),
      on_reply: on_ref,
      async_context,
      origin: Rc::new(origin),
      base_len: base_url.len(),
      timeout_ms: timeout.map(|t| t.as_millis().max(1) as u64),
      library: library.to_owned(),
      ca,
      tls: std::cell::OnceCell::new(),
      handoff,
    })
  }
}

impl Drop for Route {
  fn drop(&mut self) {
    // SAFETY: routes are dropped on their JS thread, while the env lives.
    unsafe {
      sys::napi_async_destroy(self.env, self.async_context);
      sys::napi_delete_reference(self.env, self.on_reply);
    }
  }
}

/// One request, from `start` to its reply, across redirects.
struct Exchange {
  route: Rc<Route>,
  id: f64,
  /// The URL as signed: reported in replies and error messages.
  signed_url: String,
  /// After a redirect: where the request now goes.
  current: Option<url::Url>,
  origin: Rc<Origin>,
  method: &'static str,
  /// The first method's: what decides `retryable`, as in the tokio transport.
  idempotent: bool,
  body: Option<Vec<u8>>,
  redirects: u32,
  timer: *mut Handle,
  conn: *mut Conn,
  done: bool,
}

type Shared = Rc<RefCell<Exchange>>;

struct Conn {
  tcp: *mut Handle,
  loop_: *mut uv::Loop,
  origin: Rc<Origin>,
  exchange: Option<Shared>,
  reader: ResponseReader,
  idle_since: Instant,
  /// Addresses still to try if this connect fails.
  fallbacks: Vec<SocketAddr>,
  /// For https: the TLS session over the socket.
  tls: Option<Box<rustls::ClientConnection>>,
}

/// Per origin: idle connections, connects in progress and requests waiting for either.
#[derive(Default)]
struct OriginState {
  idle: Vec<*mut Conn>,
  connecting: usize,
  waiting: VecDeque<(Shared, Vec<u8>)>,
}

thread_local! {
  static POOL: RefCell<HashMap<Rc<Origin>, OriginState>> = RefCell::new(HashMap::new());
  /// Replies finished while JS was calling `start` (a synchronous failure): delivered
  /// from the loop instead, after `start` has returned.
  static DEFERRED: RefCell<Vec<(Rc<Route>, Reply)>> = const { RefCell::new(Vec::new()) };
  static DEFER_TIMER: Cell<*mut Handle> = const { Cell::new(std::ptr::null_mut()) };
  static IN_START: Cell<bool> = const { Cell::new(false) };
  static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
  /// Closes connections idle for longer than `POOL_IDLE`; runs only while some are idle.
  static SWEEP_TIMER: Cell<*mut Handle> = const { Cell::new(std::ptr::null_mut()) };
}

/// Starts one request. `url` is the signed URL (`base_url` + target).
pub fn start(route: &Rc<Route>, id: f64, method: &'static str, url: String, body: Option<Vec<u8>>) {
  IN_START.with(|s| s.set(true));
  let exchange = Rc::new(RefCell::new(Exchange {
    route: Rc::clone(route),
    id,
    signed_url: url,
    current: None,
    origin: Rc::clone(&route.origin),
    method,
    idempotent: method == "GET",
    body,
    redirects: 0,
    timer: std::ptr::null_mut(),
    conn: std::ptr::null_mut(),
    done: false,
  }));
  if let Some(ms) = route.timeout_ms {
    start_timer(route.uv, route.loop_, &exchange, ms);
  }
  let request = {
    let ex = exchange.borrow();
    http1::request_target(&ex.signed_url, route.base_len).map(|target| {
      http1::request_bytes(
        method,
        &target,
        &ex.origin.host_header,
        &route.library,
        ex.body.as_deref(),
      )
    })
  };
  match request {
    Ok(bytes) => dispatch(&exchange, bytes),
    Err(e) => fail(&exchange, e),
  }
  IN_START.with(|s| s.set(false));
}

/// A response arrived: follow it if it redirects, otherwise reply.
fn answered(exchange: &Shared, response: http1::Response) {
  let next = {
    let ex = exchange.borrow();
    http1::redirect_method(response.reply.status, ex.method).and_then(|method| {
      let base = match &ex.current {
        Some(url) => url.clone(),
        None => url::Url::parse(&ex.signed_url).ok()?,
      };
      let target = base.join(response.location.as_deref()?).ok()?;
      Some((method, target))
    })
  };
  let Some((method, target)) = next else {
    let (url, current, idempotent) = {
      let ex = exchange.borrow();
      (
        ex.signed_url.clone(),
        ex.current.as_ref().map(url::Url::to_string),
        ex.idempotent,
      )
    };
    let mut reply = response.reply;
    reply.final_url = current;
    return finish(exchange, reply_of(url, Ok(reply), 1, idempotent));
  };
  let mut ex = exchange.borrow_mut();
  if ex.redirects >= MAX_REDIRECTS {
    let url = ex.signed_url.clone();
    drop(ex);
    return fail(exchange, TransportError::too_many_redirects(&url));
  }
  ex.redirects += 1;
  if method == "GET" {
    ex.body = None;
  }
  ex.method = method;
  match Origin::of(&target) {
    Some(origin) => {
      let request = http1::request_bytes(
        method,
        &http1::target_of(&target),
        &origin.host_header,
        &ex.route.library,
        ex.body.as_deref(),
      );
      ex.origin = Rc::new(origin);
      ex.current = Some(target);
      drop(ex);
      dispatch(exchange, request);
    }
    None => {
      // Neither http nor https: the tokio transport decides.
      ex.done = true;
      let route = Rc::clone(&ex.route);
      let (id, signed, body) = (ex.id, ex.signed_url.clone(), ex.body.take());
      stop_timer(route.uv, &mut ex);
      drop(ex);
      route
        .handoff
        .send(route.env, id, signed, method, target.to_string(), body);
    }
  }
}
