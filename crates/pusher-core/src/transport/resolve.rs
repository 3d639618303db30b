//! Name lookups for the tokio transport through the system's `getaddrinfo`, as std and
//! Node do, but keeping its verdict as a value: std folds every failure into a message
//! ("Temporary failure in name resolution"), and a temporary failure (`EAI_AGAIN`,
//! worth retrying) must not be told from a missing name (`ENOTFOUND`) by its wording.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::ffi::CString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A lookup that failed, with Node's code for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupError {
  /// `ENOTFOUND` for a name that does not exist, getaddrinfo's own name otherwise.
  pub code: &'static str,
}

impl fmt::Display for LookupError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "getaddrinfo {}", self.code)
  }
}

impl std::error::Error for LookupError {}

/// The resolver reqwest is given: `getaddrinfo` on tokio's blocking pool.
pub struct SystemResolver;

impl Resolve for SystemResolver {
  fn resolve(&self, name: Name) -> Resolving {
    let host = name.as_str().to_owned();
    Box::pin(async move {
      let addrs = tokio::task::spawn_blocking(move || lookup(&host)).await??;
      Ok(Box::new(addrs.into_iter()) as Addrs)
    })
  }
}

#[cfg(unix)]
fn lookup(host: &str) -> Result<Vec<SocketAddr>, BoxError> {
  let not_found = || Box::new(LookupError { code: "ENOTFOUND" });
  let c_host = CString::new(host).map_err(|_| not_found())?;
  // SAFETY: `addrinfo` is a plain C struct; all-zero is its documented empty hints.
  let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
  hints.ai_socktype = libc::SOCK_STREAM;
  let mut res: *mut libc::addrinfo = std::ptr::null_mut();
  // SAFETY: a NUL-terminated host, no service, valid hints, and an out pointer.
  let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
  if rc == libc::EAI_SYSTEM {
    return Err(Box::new(std::io::Error::last_os_error()));
  }
  if rc != 0 {
    return Err(Box::new(LookupError { code: eai_code(rc) }));
  }
  let mut addrs = Vec::new();
  let mut node = res;
  while !node.is_null() {
    // SAFETY: a node of the list getaddrinfo returned, alive until freeaddrinfo below.
    let info = unsafe { &*node };
    // SAFETY: `ai_addr` points at `ai_addrlen` bytes of the family `ai_family` names.
    if let Some(addr) = unsafe { socket_addr(info) } {
      if !addrs.contains(&addr) {
        addrs.push(addr);
      }
    }
    node = info.ai_next;
  }
  // SAFETY: the list getaddrinfo returned, freed once.
  unsafe { libc::freeaddrinfo(res) };
  if addrs.is_empty() {
    return Err(not_found());
  }
  Ok(addrs)
}

#[cfg(not(unix))]
fn lookup(host: &str) -> Result<Vec<SocketAddr>, BoxError> {
  use std::net::ToSocketAddrs;
  Ok((host, 0).to_socket_addrs()?.collect())
}

/// # Safety
/// `info.ai_addr` is null or points at `info.ai_addrlen` valid bytes of a socket
/// address of the family `info.ai_family`.
#[cfg(unix)]
unsafe fn socket_addr(info: &libc::addrinfo) -> Option<SocketAddr> {
  if info.ai_addr.is_null() {
    return None;
  }
  let len = info.ai_addrlen as usize;
  match info.ai_family {
    libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
      // SAFETY: an AF_INET address of at least sockaddr_in's size (the caller's promise).
      let sin = unsafe { std::ptr::read_unaligned(info.ai_addr.cast::<libc::sockaddr_in>()) };
      let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
      Some(SocketAddr::new(IpAddr::V4(ip), 0))
    }
    libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
      // SAFETY: an AF_INET6 address of at least sockaddr_in6's size.
      let sin6 = unsafe { std::ptr::read_unaligned(info.ai_addr.cast::<libc::sockaddr_in6>()) };
      let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
      // The scope id stays: a link-local address cannot be reached without it.
      Some(SocketAddr::V6(SocketAddrV6::new(
        ip,
        0,
        sin6.sin6_flowinfo,
        sin6.sin6_scope_id,
      )))
    }
    _ => None,
  }
}

/// Node's code for a getaddrinfo status: as libuv names it, with `EAI_NONAME` and
/// `EAI_NODATA` reported as `ENOTFOUND` (Node's dns does the same).
#[cfg(unix)]
fn eai_code(rc: i32) -> &'static str {
  match rc {
    libc::EAI_AGAIN => "EAI_AGAIN",
    libc::EAI_FAIL => "EAI_FAIL",
    libc::EAI_MEMORY => "EAI_MEMORY",
    libc::EAI_FAMILY => "EAI_FAMILY",
    libc::EAI_SERVICE => "EAI_SERVICE",
    libc::EAI_SOCKTYPE => "EAI_SOCKTYPE",
    libc::EAI_BADFLAGS => "EAI_BADFLAGS",
    _ => "ENOTFOUND",
  }
}

#[cfg(all(test, unix))]
mod tests {
  use super::*;

  #[test]
  fn lookups_keep_their_verdict_as_a_value() {
    let local = lookup("127.0.0.1").unwrap();
    assert_eq!(local, vec!["127.0.0.1:0".parse::<SocketAddr>().unwrap()]);
    let missing = lookup("name-that-does-not-exist.invalid").unwrap_err();
    let missing = missing.downcast_ref::<LookupError>().map(|e| e.code);
    // Without a resolver at all (a sandbox), the lookup may fail temporarily instead.
    assert!(
      matches!(missing, Some("ENOTFOUND" | "EAI_AGAIN")),
      "{missing:?}"
    );
    assert_eq!(eai_code(libc::EAI_AGAIN), "EAI_AGAIN");
    assert_eq!(eai_code(libc::EAI_NONAME), "ENOTFOUND");
    let scoped = lookup("fe80::1%1").unwrap();
    assert!(
      matches!(scoped[0], SocketAddr::V6(a) if a.scope_id() == 1),
      "{scoped:?}"
    );
  }
}
