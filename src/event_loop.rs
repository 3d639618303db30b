//! HTTP(S) requests driven by Node's own event loop (libuv), on the JS thread: no hop
//! to another thread and back, so a request costs about what a C client's does. TLS is
//! rustls over the socket, with the tokio transport's configuration. Connections are
//! pooled per thread and origin; idle ones do not hold the process open. Used on the
//! main thread without proxy or retries; everything else goes through the tokio
//! transport, whose behaviour this one reproduces (the same request bytes, Node's error
//! codes, node-fetch's redirects, the whole-request timeout).

use crate::client::{reply_of, Handoff, Reply};
use crate::uv::{self, Block, Buf, Handle, Req, Uv};
use napi::bindgen_prelude::ToNapiValue;
use napi::sys;
use pusher_core::error::TransportError;
use pusher_core::http1::{self, Origin, ResponseReader};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, CString};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

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
    self.tls.get_or_init(|| pusher_core::transport::tls_config(self.ca.as_deref()).map(Arc::new)).clone()
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
    if parsed.path() != "/" || base_url.ends_with('/') || !parsed.username().is_empty() || parsed.password().is_some() {
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
  connected: bool,
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
    http1::request_target(&ex.signed_url, route.base_len)
      .map(|(_, target)| http1::request_bytes(method, &target, &ex.origin.host_header, &route.library, ex.body.as_deref()))
  };
  match request {
    Ok(bytes) => dispatch(&exchange, bytes),
    Err(e) => fail(&exchange, e),
  }
  IN_START.with(|s| s.set(false));
}

/// Sends on an idle pooled connection, a new one, or (with enough connects under way)
/// the first one to come free.
fn dispatch(exchange: &Shared, request: Vec<u8>) {
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
      state.waiting.push_back((Rc::clone(exchange), request.take().unwrap_or_default()));
      false
    }
  });
  if let (true, Some(request)) = (connect_now, request) {
    connect(exchange, origin, request);
  }
}

/// The next live request waiting for a connection to `origin`.
fn next_waiting(origin: &Rc<Origin>) -> Option<(Shared, Vec<u8>)> {
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
fn connect_ended(origin: &Rc<Origin>) {
  POOL.with(|p| {
    if let Some(state) = p.borrow_mut().get_mut(origin) {
      state.connecting -= 1;
    }
  });
  if let Some((exchange, request)) = next_waiting(origin) {
    POOL.with(|p| p.borrow_mut().entry(Rc::clone(origin)).or_default().connecting += 1);
    connect(&exchange, Rc::clone(origin), request);
  }
}

fn checkout(uv: &Uv, origin: &Rc<Origin>) -> Option<*mut Conn> {
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
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Whether the peer has not closed (or reset) the connection, without consuming input.
unsafe fn still_open(uv: &Uv, conn: *mut Conn) -> bool {
  let mut fd: c_int = -1;
  if (uv.fileno)((*conn).tcp, &mut fd) != 0 {
    return false;
  }
  let mut byte = 0u8;
  let n = libc::recv(fd, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT);
  match n {
    // Plain HTTP has nothing to say to an idle client; TLS may (a session ticket).
    n if n > 0 => (*conn).tls.is_some(),
    0 => false,
    _ => matches!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)),
  }
}

/// A connection is free again: it serves the next waiting request, or goes idle.
fn checkin(uv: &Uv, conn: *mut Conn) {
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

const SWEEP_EVERY_MS: u64 = 1000;

fn start_sweep(uv: &Uv, loop_: *mut uv::Loop) {
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

unsafe extern "C" fn on_sweep(timer: *mut Handle) {
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

fn remove_from_pool(conn: *mut Conn) {
  // SAFETY: live connection.
  let origin = unsafe { Rc::clone(&(*conn).origin) };
  POOL.with(|p| {
    if let Some(state) = p.borrow_mut().get_mut(&origin) {
      state.idle.retain(|&c| c != conn);
    }
  });
}

// ---- connecting ----

struct Connecting {
  exchange: Shared,
  origin: Rc<Origin>,
  request: Vec<u8>,
  hints: libc::addrinfo,
  host: CString,
}

fn connect(exchange: &Shared, origin: Rc<Origin>, request: Vec<u8>) {
  if let Ok(ip) = origin.host.parse::<IpAddr>() {
    let addrs = vec![SocketAddr::new(ip, origin.port)];
    open(exchange, origin, addrs, request);
    return;
  }
  let route = Rc::clone(&exchange.borrow().route);
  let uv = route.uv;
  let Ok(host) = CString::new(origin.host.as_str()) else {
    let url = exchange.borrow().signed_url.clone();
    fail(exchange, TransportError::not_found(&url, &origin.host));
    return connect_ended(&origin);
  };
  // SAFETY: a zeroed addrinfo is a valid "no hints" value; the fields set are plain ints.
  let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
  hints.ai_family = libc::AF_UNSPEC;
  hints.ai_socktype = libc::SOCK_STREAM;
  let size = unsafe { (uv.req_size)(uv::UV_GETADDRINFO) };
  let req = Block::new(size).into_raw();
  let state = Box::new(Connecting { exchange: Rc::clone(exchange), origin, request, hints, host });
  let state = Box::into_raw(state);
  // SAFETY: `req` is sized for a getaddrinfo request; `state` outlives it (freed in the callback).
  let rc = unsafe {
    uv::set_data(req, state);
    (uv.getaddrinfo)(route.loop_, req, on_resolved, (*state).host.as_ptr(), std::ptr::null(), &(*state).hints)
  };
  if rc != 0 {
    // SAFETY: the request never started; both are ours again.
    let state = unsafe {
      Block::free(req, size);
      Box::from_raw(state)
    };
    let url = state.exchange.borrow().signed_url.clone();
    fail(&state.exchange, TransportError::not_found(&url, &state.origin.host));
    connect_ended(&state.origin);
  }
}

unsafe extern "C" fn on_resolved(req: *mut Req, status: c_int, res: *mut libc::addrinfo) {
  let state = Box::from_raw(uv::data::<Connecting>(req));
  let uv = state.exchange.borrow().route.uv;
  Block::free(req, (uv.req_size)(uv::UV_GETADDRINFO));
  let mut addrs = Vec::new();
  let mut node = res;
  while !node.is_null() {
    if let Some(addr) = sockaddr_to_std((*node).ai_addr) {
      addrs.push(SocketAddr::new(addr.ip(), state.origin.port));
    }
    node = (*node).ai_next;
  }
  if !res.is_null() {
    (uv.freeaddrinfo)(res);
  }
  let state = *state;
  if state.exchange.borrow().done {
    return connect_ended(&state.origin);
  }
  if status != 0 || addrs.is_empty() {
    let url = state.exchange.borrow().signed_url.clone();
    fail(&state.exchange, TransportError::not_found(&url, &state.origin.host));
    return connect_ended(&state.origin);
  }
  open(&state.exchange, state.origin, addrs, state.request);
}

/// Connects to the first of `addrs`, keeping the others for a failed connect.
fn open(exchange: &Shared, origin: Rc<Origin>, mut addrs: Vec<SocketAddr>, request: Vec<u8>) {
  let route = Rc::clone(&exchange.borrow().route);
  let uv = route.uv;
  let first = addrs.remove(0);
  let slot = Rc::clone(&origin);
  // SAFETY: sizes from libuv; the handle's data points to its boxed Conn until closed.
  unsafe {
    let tcp = Block::new((uv.handle_size)(uv::UV_TCP)).into_raw();
    (uv.tcp_init)(route.loop_, tcp);
    let conn = Box::into_raw(Box::new(Conn {
      tcp,
      loop_: route.loop_,
      origin,
      exchange: Some(Rc::clone(exchange)),
      reader: ResponseReader::default(),
      idle_since: Instant::now(),
      fallbacks: addrs,
      connected: false,
      tls: None,
    }));
    uv::set_data(tcp, conn);
    exchange.borrow_mut().conn = conn;
    (uv.tcp_nodelay)(tcp, 1);
    let req_size = (uv.req_size)(uv::UV_CONNECT);
    let req = Block::new(req_size).into_raw();
    let pending = Box::into_raw(Box::new((conn, request)));
    uv::set_data(req, pending);
    let (storage, len) = std_to_sockaddr(first);
    let _ = len;
    let rc = (uv.tcp_connect)(req, tcp, (&storage as *const libc::sockaddr_storage).cast(), on_connect);
    if rc != 0 {
      drop(Box::from_raw(pending));
      Block::free(req, req_size);
      let url = exchange.borrow().signed_url.clone();
      detach(exchange);
      close_conn(uv, conn);
      fail(exchange, TransportError::os(uv.name(rc), &url, true));
      connect_ended(&slot);
    }
  }
}

unsafe extern "C" fn on_connect(req: *mut Req, status: c_int) {
  let (conn, request) = *Box::from_raw(uv::data::<(*mut Conn, Vec<u8>)>(req));
  let uv = uv::get().expect("libuv");
  Block::free(req, (uv.req_size)(uv::UV_CONNECT));
  let origin = Rc::clone(&(*conn).origin);
  let Some(exchange) = (*conn).exchange.clone() else {
    // The exchange ended (timed out) while connecting; the connection was closed then.
    return connect_ended(&origin);
  };
  if status == 0 {
    (*conn).connected = true;
    if origin.https {
      let route = Rc::clone(&exchange.borrow().route);
      match start_tls(&route, &origin) {
        Ok(session) => (*conn).tls = Some(Box::new(session)),
        Err(e) => {
          detach(&exchange);
          close_conn(uv, conn);
          fail(&exchange, e);
          return connect_ended(&origin);
        }
      }
    }
    (uv.read_start)((*conn).tcp, on_alloc, on_read);
    send_bytes(uv, conn, &exchange, request);
    return connect_ended(&origin);
  }
  let fallbacks = std::mem::take(&mut (*conn).fallbacks);
  detach(&exchange);
  close_conn(uv, conn);
  if status != uv::UV_ECANCELED && !exchange.borrow().done && !fallbacks.is_empty() {
    return open(&exchange, origin, fallbacks, request);
  }
  if status != uv::UV_ECANCELED {
    let url = exchange.borrow().signed_url.clone();
    fail(&exchange, TransportError::os(uv.name(status), &url, true));
  }
  connect_ended(&origin);
}

// ---- sending and receiving ----

fn start_tls(route: &Route, origin: &Origin) -> Result<rustls::ClientConnection, TransportError> {
  let config = route.tls_config()?;
  let name = rustls_pki_types::ServerName::try_from(origin.host.clone())
    .map_err(|_| TransportError::config(format!("invalid TLS server name: {}", origin.host)))?;
  rustls::ClientConnection::new(config, name).map_err(|e| TransportError::config(format!("TLS setup failed: {e}")))
}

/// Sends request bytes: through the TLS session (sent once the handshake allows) or
/// straight to the socket.
unsafe fn send_bytes(uv: &Uv, conn: *mut Conn, exchange: &Shared, request: Vec<u8>) {
  match (*conn).tls.as_mut() {
    Some(tls) => {
      if tls.writer().write_all(&request).is_err() {
        return write_failed(uv, conn, exchange, -(libc::EPIPE));
      }
      flush_tls(uv, conn, Some(exchange));
    }
    None => write(uv, conn, exchange, request),
  }
}

/// Writes whatever the TLS session has to send (handshake, records, alerts).
unsafe fn flush_tls(uv: &Uv, conn: *mut Conn, exchange: Option<&Shared>) {
  let Some(tls) = (*conn).tls.as_mut() else { return };
  let mut out = Vec::new();
  while tls.wants_write() {
    if tls.write_tls(&mut out).is_err() {
      break;
    }
  }
  if out.is_empty() {
    return;
  }
  match exchange {
    Some(exchange) => write(uv, conn, exchange, out),
    None => {
      // Idle (a reply to a post-handshake message): best effort.
      let buf = Buf { base: out.as_ptr() as *mut _, len: out.len() };
      (uv.try_write)((*conn).tcp, &buf, 1);
    }
  }
}

/// Feeds received TLS records to the session; the plaintext, and whether the peer
/// closed the session.
unsafe fn decrypt(conn: *mut Conn, mut data: &[u8], handshaking: &mut bool) -> Result<(Vec<u8>, bool), rustls::Error> {
  let tls = (*conn).tls.as_mut().expect("a TLS connection");
  *handshaking = tls.is_handshaking();
  let mut plain = Vec::new();
  let mut closed = false;
  while !data.is_empty() {
    if tls.read_tls(&mut data).is_err() {
      break;
    }
    let state = tls.process_new_packets()?;
    if state.plaintext_bytes_to_read() > 0 {
      let start = plain.len();
      plain.resize(start + state.plaintext_bytes_to_read(), 0);
      let n = tls.reader().read(&mut plain[start..]).unwrap_or(0);
      plain.truncate(start + n);
    }
    closed |= state.peer_has_closed();
  }
  Ok((plain, closed))
}

fn send_on(conn: *mut Conn, exchange: &Shared, request: Vec<u8>) {
  let uv = exchange.borrow().route.uv;
  // SAFETY: a live, idle, connected connection just taken from the pool.
  unsafe {
    (uv.ref_)((*conn).tcp);
    (*conn).exchange = Some(Rc::clone(exchange));
    exchange.borrow_mut().conn = conn;
    send_bytes(uv, conn, exchange, request);
  }
}

unsafe fn write(uv: &Uv, conn: *mut Conn, exchange: &Shared, request: Vec<u8>) {
  let buf = Buf { base: request.as_ptr() as *mut _, len: request.len() };
  let written = (uv.try_write)((*conn).tcp, &buf, 1);
  let written = match written {
    n if n >= 0 => n as usize,
    uv::UV_EAGAIN => 0,
    err => return write_failed(uv, conn, exchange, err),
  };
  if written == request.len() {
    return;
  }
  let rest = request[written..].to_vec();
  let size = (uv.req_size)(uv::UV_WRITE);
  let req = Block::new(size).into_raw();
  let buf = Buf { base: rest.as_ptr() as *mut _, len: rest.len() };
  let pending = Box::into_raw(Box::new((conn, rest)));
  uv::set_data(req, pending);
  let rc = (uv.write)(req, (*conn).tcp, &buf, 1, on_written);
  if rc != 0 {
    drop(Box::from_raw(pending));
    Block::free(req, size);
    write_failed(uv, conn, exchange, rc);
  }
}

unsafe extern "C" fn on_written(req: *mut Req, status: c_int) {
  let (conn, _rest) = *Box::from_raw(uv::data::<(*mut Conn, Vec<u8>)>(req));
  let uv = uv::get().expect("libuv");
  Block::free(req, (uv.req_size)(uv::UV_WRITE));
  if status == 0 || status == uv::UV_ECANCELED {
    return;
  }
  if let Some(exchange) = (*conn).exchange.clone() {
    write_failed(uv, conn, &exchange, status);
  }
}

unsafe fn write_failed(uv: &Uv, conn: *mut Conn, exchange: &Shared, err: c_int) {
  detach(exchange);
  close_conn(uv, conn);
  let url = exchange.borrow().signed_url.clone();
  fail(exchange, TransportError::os(reset_name(uv.name(err)), &url, false));
}

/// A write to a closed peer reads as Node's hang-up.
fn reset_name(name: &'static str) -> &'static str {
  match name {
    "EPIPE" | "ECONNABORTED" | "EOF" => "ECONNRESET",
    other => other,
  }
}

unsafe extern "C" fn on_alloc(_handle: *mut Handle, _suggested: usize, buf: *mut Buf) {
  READ_BUF.with(|b| {
    let mut b = b.borrow_mut();
    (*buf).base = b.as_mut_ptr().cast();
    (*buf).len = b.len();
  });
}

unsafe extern "C" fn on_read(tcp: *mut Handle, nread: isize, buf: *const Buf) {
  if nread == 0 {
    return;
  }
  let conn = uv::data::<Conn>(tcp);
  let uv = uv::get().expect("libuv");
  let received = if nread > 0 { std::slice::from_raw_parts((*buf).base as *const u8, nread as usize) } else { &[] };
  // Over TLS: records in, plaintext out; a close_notify reads as the end of the stream.
  let mut tls_plain = None;
  let mut peer_closed = nread < 0;
  let mut tls_error = None;
  let mut handshaking = false;
  if (*conn).tls.is_some() && nread > 0 {
    match decrypt(conn, received, &mut handshaking) {
      Ok((plain, closed)) => {
        tls_plain = Some(plain);
        peer_closed |= closed;
      }
      Err(e) => tls_error = Some(e),
    }
    let exchange = (*conn).exchange.clone();
    flush_tls(uv, conn, exchange.as_ref());
  }
  let data: &[u8] = tls_plain.as_deref().unwrap_or(received);
  let Some(exchange) = (*conn).exchange.clone() else {
    // Idle: the server closed the connection, or sent bytes nobody asked for (TLS
    // session tickets and the like are fine).
    if peer_closed || tls_error.is_some() || !data.is_empty() {
      remove_from_pool(conn);
      close_conn(uv, conn);
    }
    return;
  };
  let outcome = if let Some(e) = &tls_error {
    Err(TransportError::tls(e, &exchange.borrow().signed_url, handshaking))
  } else {
    match (*conn).reader.feed(data) {
      Ok(None) if peer_closed => match (*conn).reader.eof() {
        Some(response) => Ok(Some(response)),
        None => Err(TransportError::os(reset_name(closed_name(uv, nread)), &exchange.borrow().signed_url, false)),
      },
      other => other,
    }
  };
  match outcome {
    Ok(None) => {}
    Ok(Some(response)) => {
      detach(&exchange);
      if response.reusable && !peer_closed {
        checkin(uv, conn);
      } else {
        close_conn(uv, conn);
      }
      answered(&exchange, response);
    }
    Err(e) => {
      detach(&exchange);
      close_conn(uv, conn);
      fail(&exchange, e);
    }
  }
}

fn closed_name(uv: &Uv, nread: isize) -> &'static str {
  if nread == uv::UV_EOF || nread >= 0 {
    "ECONNRESET"
  } else {
    uv.name(nread as c_int)
  }
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
      (ex.signed_url.clone(), ex.current.as_ref().map(url::Url::to_string), ex.idempotent)
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
      let request = http1::request_bytes(method, &http1::target_of(&target), &origin.host_header, &ex.route.library, ex.body.as_deref());
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
      route.handoff.send(route.env, id, signed, method, target.to_string(), body);
    }
  }
}

/// Unlinks the exchange and its connection.
fn detach(exchange: &Shared) {
  let conn = std::mem::replace(&mut exchange.borrow_mut().conn, std::ptr::null_mut());
  if !conn.is_null() {
    // SAFETY: the exchange's connection is live while linked.
    unsafe { (*conn).exchange = None };
  }
}

fn close_conn(uv: &Uv, conn: *mut Conn) {
  // SAFETY: live connection; freed in the close callback.
  unsafe {
    (*conn).exchange = None;
    if (uv.is_closing)((*conn).tcp) == 0 {
      (uv.close)((*conn).tcp, Some(on_conn_closed));
    }
  }
}

unsafe extern "C" fn on_conn_closed(tcp: *mut Handle) {
  let uv = uv::get().expect("libuv");
  let conn = Box::from_raw(uv::data::<Conn>(tcp));
  Block::free(conn.tcp, (uv.handle_size)(uv::UV_TCP));
}

// ---- the whole-request timeout ----

fn start_timer(uv: &Uv, loop_: *mut uv::Loop, exchange: &Shared, ms: u64) {
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

fn stop_timer(uv: &Uv, ex: &mut Exchange) {
  let timer = std::mem::replace(&mut ex.timer, std::ptr::null_mut());
  if !timer.is_null() {
    // SAFETY: the exchange's live timer.
    unsafe {
      (uv.timer_stop)(timer);
      (uv.close)(timer, Some(on_timer_closed));
    }
  }
}

unsafe extern "C" fn on_timer_closed(timer: *mut Handle) {
  let uv = uv::get().expect("libuv");
  drop(Box::from_raw(uv::data::<Shared>(timer)));
  Block::free(timer, (uv.handle_size)(uv::UV_TIMER));
}

unsafe extern "C" fn on_timeout(timer: *mut Handle) {
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

fn fail(exchange: &Shared, error: TransportError) {
  let (url, idempotent) = {
    let ex = exchange.borrow();
    (ex.signed_url.clone(), ex.idempotent)
  };
  finish(exchange, reply_of(url, Err(error), 1, idempotent));
}

fn finish(exchange: &Shared, mut reply: Reply) {
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

fn defer(route: Rc<Route>, reply: Reply) {
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

unsafe extern "C" fn on_deferred(_timer: *mut Handle) {
  let replies = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
  for (route, reply) in replies {
    deliver(&route, reply);
  }
}

/// Calls `onReply(id, status, statusText, headers, body, url, finalUrl, retryable,
/// errorKind, errorCode, errorMessage)` from the event loop, as a top-level callback
/// (promise jobs run when it returns). Positional values, not an object: no property
/// names to create per reply.
fn deliver(route: &Route, reply: Reply) {
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
      (None, Some(bytes)) => napi::bindgen_prelude::Buffer::to_napi_value(env, bytes).unwrap_or(undefined),
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
    let status = sys::napi_make_callback(env, route.async_context, recv, func, args.len(), args.as_ptr(), &mut result);
    if status == sys::Status::napi_pending_exception {
      let mut error = std::ptr::null_mut();
      sys::napi_get_and_clear_last_exception(env, &mut error);
      sys::napi_fatal_exception(env, error);
    }
    sys::napi_close_handle_scope(env, scope);
  }
}

// ---- addresses ----

// Other platforms' sockaddr types have more fields (sin6_len): the update is needed there.
#[allow(clippy::needless_update)]
fn std_to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
  // SAFETY: sockaddr_storage is plain data, large enough for either family.
  let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
  let len = match addr {
    SocketAddr::V4(a) => {
      let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
        ..unsafe { std::mem::zeroed() }
      };
      unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
      std::mem::size_of::<libc::sockaddr_in>()
    }
    SocketAddr::V6(a) => {
      let sin6 = libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: a.port().to_be(),
        sin6_flowinfo: a.flowinfo(),
        sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
        sin6_scope_id: a.scope_id(),
        ..unsafe { std::mem::zeroed() }
      };
      unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
      std::mem::size_of::<libc::sockaddr_in6>()
    }
  };
  (storage, len as libc::socklen_t)
}

/// # Safety
/// `addr` is null or points to a sockaddr of its declared family.
unsafe fn sockaddr_to_std(addr: *const libc::sockaddr) -> Option<SocketAddr> {
  if addr.is_null() {
    return None;
  }
  match (*addr).sa_family as c_int {
    libc::AF_INET => {
      let sin = &*(addr as *const libc::sockaddr_in);
      let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
      Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
    }
    libc::AF_INET6 => {
      let sin6 = &*(addr as *const libc::sockaddr_in6);
      let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
      Some(SocketAddr::new(ip.into(), u16::from_be(sin6.sin6_port)))
    }
    _ => None,
  }
}
