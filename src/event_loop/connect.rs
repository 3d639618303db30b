//! Opening connections: name resolution (uv_getaddrinfo), connects with address
//! fallback, and socket-address conversion.

use super::*;

struct Connecting {
  exchange: Shared,
  origin: Rc<Origin>,
  request: Vec<u8>,
  hints: libc::addrinfo,
  host: CString,
}

pub(super) fn connect(exchange: &Shared, origin: Rc<Origin>, request: Vec<u8>) {
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
  let state = Box::new(Connecting {
    exchange: Rc::clone(exchange),
    origin,
    request,
    hints,
    host,
  });
  let state = Box::into_raw(state);
  // SAFETY: `req` is sized for a getaddrinfo request; `state` outlives it (freed in the callback).
  let rc = unsafe {
    uv::set_data(req, state);
    (uv.getaddrinfo)(
      route.loop_,
      req,
      on_resolved,
      (*state).host.as_ptr(),
      std::ptr::null(),
      &(*state).hints,
    )
  };
  if rc != 0 {
    // SAFETY: the request never started; both are ours again.
    let state = unsafe {
      Block::free(req, size);
      Box::from_raw(state)
    };
    let url = state.exchange.borrow().signed_url.clone();
    fail(
      &state.exchange,
      TransportError::not_found(&url, &state.origin.host),
    );
    connect_ended(&state.origin);
  }
}

pub(super) unsafe extern "C" fn on_resolved(
  req: *mut Req,
  status: c_int,
  res: *mut libc::addrinfo,
) {
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
    fail(
      &state.exchange,
      TransportError::not_found(&url, &state.origin.host),
    );
    return connect_ended(&state.origin);
  }
  open(&state.exchange, state.origin, addrs, state.request);
}

/// Connects to the first of `addrs`, keeping the others for a failed connect.
pub(super) fn open(
  exchange: &Shared,
  origin: Rc<Origin>,
  mut addrs: Vec<SocketAddr>,
  request: Vec<u8>,
) {
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
      tls: None,
    }));
    uv::set_data(tcp, conn);
    exchange.borrow_mut().conn = conn;
    (uv.tcp_nodelay)(tcp, 1);
    let req_size = (uv.req_size)(uv::UV_CONNECT);
    let req = Block::new(req_size).into_raw();
    let pending = Box::into_raw(Box::new((conn, request)));
    uv::set_data(req, pending);
    let storage = std_to_sockaddr(first);
    let rc = (uv.tcp_connect)(
      req,
      tcp,
      (&storage as *const libc::sockaddr_storage).cast(),
      on_connect,
    );
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

pub(super) unsafe extern "C" fn on_connect(req: *mut Req, status: c_int) {
  let (conn, request) = *Box::from_raw(uv::data::<(*mut Conn, Vec<u8>)>(req));
  let uv = uv::get().expect("libuv");
  Block::free(req, (uv.req_size)(uv::UV_CONNECT));
  let origin = Rc::clone(&(*conn).origin);
  let Some(exchange) = (*conn).exchange.clone() else {
    // The exchange ended (timed out) while connecting; the connection was closed then.
    return connect_ended(&origin);
  };
  if status == 0 {
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

// ---- addresses ----

// Other platforms' sockaddr types have more fields (sin6_len): the update is needed there.
#[allow(clippy::needless_update)]
/// libuv reads the length from the family.
pub(super) fn std_to_sockaddr(addr: SocketAddr) -> libc::sockaddr_storage {
  // SAFETY: sockaddr_storage is plain data, large enough for either family.
  let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
  match addr {
    SocketAddr::V4(a) => {
      let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
          s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        ..unsafe { std::mem::zeroed() }
      };
      unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
    }
    SocketAddr::V6(a) => {
      let sin6 = libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: a.port().to_be(),
        sin6_flowinfo: a.flowinfo(),
        sin6_addr: libc::in6_addr {
          s6_addr: a.ip().octets(),
        },
        sin6_scope_id: a.scope_id(),
        ..unsafe { std::mem::zeroed() }
      };
      unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
    }
  }
  storage
}

/// # Safety
/// `addr` is null or points to a sockaddr of its declared family.
pub(super) unsafe fn sockaddr_to_std(addr: *const libc::sockaddr) -> Option<SocketAddr> {
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
