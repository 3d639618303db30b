//! Opening a connection: name resolution (`uv_getaddrinfo`), then Happy Eyeballs as
//! Node's `autoSelectFamily` does it: addresses interleaved by family, the next attempt
//! started when one fails or after `HAPPY_EYEBALLS_DELAY`, the first connection to
//! succeed wins and the others are closed. Addresses keep their IPv6 scope id: a
//! link-local address cannot be reached without it.

use super::tcp::Tcp;
use super::timer::Timer;
use super::{callback, Loop};
use crate::uv::{self, Block, Req, Uv};
use pusher_core::http::limits::HAPPY_EYEBALLS_DELAY;
use std::cell::RefCell;
use std::ffi::{c_int, CString};
use std::future::{poll_fn, Future};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Completion of one libuv request (getaddrinfo or connect), shared with its callback.
#[derive(Default)]
struct Slot<T> {
  result: Option<T>,
  waker: Option<Waker>,
}

type Shared<T> = Rc<RefCell<Slot<T>>>;

fn complete<T>(slot: &Shared<T>, value: T) {
  let waker = {
    let mut s = slot.borrow_mut();
    s.result = Some(value);
    s.waker.take()
  };
  if let Some(waker) = waker {
    waker.wake();
  }
}

fn poll_slot<T>(slot: &Shared<T>, cx: &mut Context<'_>) -> Poll<T> {
  let mut s = slot.borrow_mut();
  match s.result.take() {
    Some(value) => Poll::Ready(value),
    None => {
      s.waker = Some(cx.waker().clone());
      Poll::Pending
    }
  }
}

// ---- name resolution ----

struct Resolving {
  slot: Shared<(c_int, Vec<SocketAddr>)>,
  host: CString,
  hints: libc::addrinfo,
}

/// The addresses of `host` (port 0, scope ids kept), or libuv's error code.
pub async fn resolve(uv: &'static Uv, loop_: Loop, host: &str) -> Result<Vec<SocketAddr>, c_int> {
  if let Ok(ip) = host.parse::<IpAddr>() {
    return Ok(vec![SocketAddr::new(ip, 0)]);
  }
  let host = CString::new(host).map_err(|_| -(libc::EINVAL))?;
  let slot: Shared<(c_int, Vec<SocketAddr>)> = Rc::default();
  // SAFETY: a zeroed addrinfo is "no hints"; the fields set are plain integers.
  let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
  hints.ai_family = libc::AF_UNSPEC;
  hints.ai_socktype = libc::SOCK_STREAM;
  let state = Box::into_raw(Box::new(Resolving {
    slot: Rc::clone(&slot),
    host,
    hints,
  }));
  // SAFETY: `req` is sized for a getaddrinfo request; `state` (which the strings
  // passed point into) lives until the callback frees it, even if this future is
  // dropped first.
  let rc = unsafe {
    let size = (uv.req_size)(uv::UV_GETADDRINFO);
    let req = Block::new(size).into_raw();
    uv::set_data(req, state);
    let rc = (uv.getaddrinfo)(
      loop_.0,
      req,
      on_resolved,
      (*state).host.as_ptr(),
      std::ptr::null(),
      &(*state).hints,
    );
    if rc != 0 {
      drop(Box::from_raw(state));
      Block::free(req, size);
    }
    rc
  };
  if rc != 0 {
    return Err(rc);
  }
  let (status, addrs) = poll_fn(|cx| poll_slot(&slot, cx)).await;
  match status {
    0 if !addrs.is_empty() => Ok(addrs),
    0 => Err(-3008), // UV_EAI_NONAME
    err => Err(err),
  }
}

/// # Safety
/// Called by libuv with the request made in `resolve`.
unsafe extern "C" fn on_resolved(req: *mut Req, status: c_int, res: *mut libc::addrinfo) {
  callback(|| {
    // SAFETY: the state set in `resolve`; the request block is ours again.
    let state = Box::from_raw(uv::data::<Resolving>(req));
    let Some(uv) = uv::get() else { return };
    Block::free(req, (uv.req_size)(uv::UV_GETADDRINFO));
    let mut addrs = Vec::new();
    let mut node = res;
    while !node.is_null() {
      if let Some(mut addr) = sockaddr_to_std((*node).ai_addr) {
        addr.set_port(0);
        if !addrs.contains(&addr) {
          addrs.push(addr);
        }
      }
      node = (*node).ai_next;
    }
    if !res.is_null() {
      (uv.freeaddrinfo)(res);
    }
    complete(&state.slot, (status, addrs));
  });
}

/// Node's error code for a failed lookup: `ENOTFOUND` for a name that does not exist,
/// libuv's own name otherwise (`EAI_AGAIN` stays retryable).
pub fn lookup_code(uv: &Uv, err: c_int) -> &'static str {
  match uv.name(err) {
    "EAI_NONAME" | "EAI_NODATA" => "ENOTFOUND",
    other => other,
  }
}

/// Addresses alternating between families, starting with the first one's.
pub fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
  let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
  let (mut same, mut other): (Vec<_>, Vec<_>) =
    addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
  let mut out = Vec::with_capacity(same.len() + other.len());
  same.reverse();
  other.reverse();
  while !same.is_empty() || !other.is_empty() {
    out.extend(same.pop());
    out.extend(other.pop());
  }
  out
}

// ---- connecting ----

struct Attempt {
  tcp: Tcp,
  slot: Shared<c_int>,
}

fn start_attempt(uv: &'static Uv, loop_: Loop, addr: SocketAddr) -> Result<Attempt, c_int> {
  let tcp = Tcp::new(uv, loop_.0)?;
  let slot: Shared<c_int> = Rc::default();
  let storage = std_to_sockaddr(addr);
  // SAFETY: the request carries a leaked `Rc` of the slot, reclaimed in `on_connect`
  // (which libuv calls even when the handle is closed first, with UV_ECANCELED).
  unsafe {
    let size = (uv.req_size)(uv::UV_CONNECT);
    let req = Block::new(size).into_raw();
    let data = Rc::into_raw(Rc::clone(&slot));
    uv::set_data(req, data.cast_mut());
    let rc = (uv.tcp_connect)(
      req,
      tcp.handle(),
      (&storage as *const libc::sockaddr_storage).cast(),
      on_connect,
    );
    if rc != 0 {
      drop(Rc::from_raw(data));
      Block::free(req, size);
      return Err(rc);
    }
  }
  Ok(Attempt { tcp, slot })
}

/// # Safety
/// Called by libuv with the request made in `start_attempt`.
unsafe extern "C" fn on_connect(req: *mut Req, status: c_int) {
  callback(|| {
    // SAFETY: the `Rc` leaked in `start_attempt`; the request block is ours again.
    let slot = Rc::from_raw(uv::data::<RefCell<Slot<c_int>>>(req).cast_const());
    if let Some(uv) = uv::get() {
      Block::free(req, (uv.req_size)(uv::UV_CONNECT));
    }
    complete(&slot, status);
  });
}

/// Connects to the first of `addrs` (on `port`) that answers (Happy Eyeballs); the last
/// error when none does.
pub async fn connect(
  uv: &'static Uv,
  loop_: Loop,
  addrs: Vec<SocketAddr>,
  port: u16,
) -> Result<Tcp, c_int> {
  let addrs: Vec<SocketAddr> = interleave(addrs)
    .into_iter()
    .map(|mut addr| {
      addr.set_port(port);
      addr
    })
    .collect();
  let mut next = 0;
  let mut attempts: Vec<Attempt> = Vec::new();
  let mut delay: Option<Timer> = None;
  let mut last_error = -(libc::ECONNREFUSED);
  // An attempt failed: the next starts now, not when the delay is up.
  let mut failed = false;
  poll_fn(move |cx| loop {
    let start_next = attempts.is_empty()
      || std::mem::take(&mut failed)
      || delay
        .as_mut()
        .is_some_and(|t| Pin::new(t).poll(cx).is_ready());
    if start_next && next < addrs.len() {
      let addr = addrs[next];
      next += 1;
      delay = (next < addrs.len()).then(|| Timer::sleep(uv, loop_.0, HAPPY_EYEBALLS_DELAY));
      match start_attempt(uv, loop_, addr) {
        Ok(attempt) => attempts.push(attempt),
        Err(err) => last_error = err,
      }
      continue;
    }
    let mut i = 0;
    let mut progressed = false;
    while i < attempts.len() {
      match poll_slot(&attempts[i].slot, cx) {
        Poll::Ready(0) => {
          let won = attempts.swap_remove(i);
          attempts.clear();
          return Poll::Ready(match won.tcp.start_reading() {
            Ok(()) => Ok(won.tcp),
            Err(err) => Err(err),
          });
        }
        Poll::Ready(err) => {
          last_error = err;
          attempts.swap_remove(i);
          progressed = true;
          failed = true;
        }
        Poll::Pending => i += 1,
      }
    }
    if attempts.is_empty() && next >= addrs.len() {
      return Poll::Ready(Err(last_error));
    }
    if !progressed {
      return Poll::Pending;
    }
  })
  .await
}

// ---- socket addresses ----

// Other platforms' sockaddr types have more fields (sin6_len): the update is needed there.
#[allow(clippy::needless_update)]
/// libuv reads the length from the family.
fn std_to_sockaddr(addr: SocketAddr) -> libc::sockaddr_storage {
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
      let port = u16::from_be(sin6.sin6_port);
      Some(SocketAddr::V6(SocketAddrV6::new(
        ip,
        port,
        sin6.sin6_flowinfo,
        sin6.sin6_scope_id,
      )))
    }
    _ => None,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn link_local_addresses_keep_their_scope_id() {
    let scoped: SocketAddr = "[fe80::1%7]:443".parse().unwrap();
    let storage = std_to_sockaddr(scoped);
    // SAFETY: a sockaddr_in6 written by `std_to_sockaddr`.
    let back = unsafe { sockaddr_to_std((&storage as *const libc::sockaddr_storage).cast()) };
    assert_eq!(back, Some(scoped));
    assert!(matches!(back, Some(SocketAddr::V6(a)) if a.scope_id() == 7));
  }

  #[test]
  fn families_alternate_from_the_first() {
    let v4 = |n| SocketAddr::new(IpAddr::from([127, 0, 0, n]), 0);
    let v6 = |n| SocketAddr::new(IpAddr::from([0, 0, 0, 0, 0, 0, 0, n]), 0);
    assert_eq!(
      interleave(vec![v6(1), v6(2), v4(1), v4(2), v4(3)]),
      vec![v6(1), v4(1), v6(2), v4(2), v4(3)]
    );
    assert_eq!(interleave(vec![v4(1), v4(2)]), vec![v4(1), v4(2)]);
  }
}
