//! Transport failures, classified the way Node reports them (`ECONNREFUSED`,
//! `ETIMEDOUT`, …) so that JS code written against `pusher` keeps working.
//! Messages name the URL and the cause; they never contain a secret.

use std::error::Error as StdError;
use std::fmt;
use std::io;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
  /// The whole-request deadline passed (`timeout` option).
  Timeout,
  /// A socket-level failure; `code` holds the OS-style code.
  Network,
  /// Certificate or handshake failure.
  Tls,
  /// The URL could not be parsed or uses an unsupported scheme.
  InvalidUrl,
  /// More than the allowed number of redirects.
  Redirect,
  /// Invalid options (a `ca` without certificates, a bad proxy URL).
  Config,
  /// The response body passed `maxResponseSize` (node-fetch's `max-size`).
  MaxSize,
}

#[derive(Debug, Clone)]
pub struct TransportError {
  pub kind: FailureKind,
  /// Node-style code: `ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, `ENOTFOUND`,
  /// `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `ERR_INVALID_URL`, …
  pub code: &'static str,
  pub message: String,
  /// True when the failure provably happened before any request byte was written
  /// (connect, DNS, TLS handshake): only then may a POST be retried safely.
  pub before_send: bool,
}

impl fmt::Display for TransportError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&self.message)
  }
}

impl StdError for TransportError {}

impl TransportError {
  pub fn invalid_url(message: &str) -> Self {
    Self {
      kind: FailureKind::InvalidUrl,
      code: "ERR_INVALID_URL",
      message: message.into(),
      before_send: true,
    }
  }

  pub fn config(message: String) -> Self {
    Self {
      kind: FailureKind::Config,
      code: "ERR_INVALID_ARG_VALUE",
      message,
      before_send: true,
    }
  }

  /// A socket-level failure named by its OS code (`ECONNREFUSED`, `EMFILE`, …), with
  /// the reason Node gives: `socket hang up` for a reset, `connect <code> host:port`.
  pub fn os(code: &'static str, url: &str, before_send: bool) -> Self {
    let reason = match code {
      "ECONNRESET" => "socket hang up".to_string(),
      _ => format!("connect {code} {}", host_port(url)),
    };
    Self {
      kind: FailureKind::Network,
      code,
      message: format!("request to {url} failed, reason: {reason}"),
      before_send,
    }
  }

  /// A name that did not resolve.
  pub fn not_found(url: &str, host: &str) -> Self {
    Self::lookup("ENOTFOUND", url, host)
  }

  /// A failed name lookup, with Node's code (`ENOTFOUND`, `EAI_AGAIN`, …).
  pub fn lookup(code: &'static str, url: &str, host: &str) -> Self {
    Self {
      kind: FailureKind::Network,
      code,
      message: format!("request to {url} failed, reason: getaddrinfo {code} {host}"),
      before_send: true,
    }
  }

  /// A response Node's parser would refuse (`HPE_*` code, Node's reason).
  pub fn parse(code: &'static str, reason: &str, url: &str) -> Self {
    Self {
      kind: FailureKind::Network,
      code,
      message: format!("request to {url} failed, reason: {reason}"),
      before_send: false,
    }
  }

  /// Any other failure (hyper's, an I/O error, TLS inside either), classified by its
  /// cause chain.
  pub fn from_cause(err: &(dyn StdError + 'static), url: &str, before_send: bool) -> Self {
    let (kind, code, reason) =
      cause_of(err, url).unwrap_or((FailureKind::Network, "ECONNRESET", "socket hang up".into()));
    Self {
      kind,
      code,
      message: format!("request to {url} failed, reason: {reason}"),
      before_send,
    }
  }

  /// The whole-request deadline passed.
  pub fn timeout(url: &str, timeout_ms: Option<u64>) -> Self {
    let after = timeout_ms
      .map(|ms| format!(" after {ms} ms"))
      .unwrap_or_default();
    Self {
      kind: FailureKind::Timeout,
      code: "ETIMEDOUT",
      message: format!("request to {url} timed out{after}"),
      before_send: false,
    }
  }

  /// A TLS failure (certificate, handshake or record layer).
  pub fn tls(e: &rustls::Error, url: &str, before_send: bool) -> Self {
    let (kind, code, reason) = tls_cause(e);
    Self {
      kind,
      code,
      message: format!("request to {url} failed, reason: {reason}"),
      before_send,
    }
  }

  /// The body of the response from `url` passed `limit` bytes: node-fetch's words.
  pub fn max_size(url: &str, limit: u64) -> Self {
    Self {
      kind: FailureKind::MaxSize,
      code: "ERR_MAX_SIZE",
      message: format!("content size at {url} over limit: {limit}"),
      before_send: false,
    }
  }

  pub fn too_many_redirects(url: &str) -> Self {
    Self {
      kind: FailureKind::Redirect,
      code: "ERR_TOO_MANY_REDIRECTS",
      message: format!("maximum redirect reached at: {url}"),
      before_send: false,
    }
  }

  /// Connecting (DNS, TCP, TLS) took longer than its bound: the retry client's own
  /// bound, or the kernel's. No request byte was sent, so it is safe to retry. Under a
  /// caller's `timeout` it is a timeout, as without retries; without one, a system
  /// error, as Node reports it.
  pub fn connect_timeout(url: &str, timeout_ms: Option<u64>) -> Self {
    if timeout_ms.is_some() {
      return Self {
        before_send: true,
        ..Self::timeout(url, timeout_ms)
      };
    }
    Self {
      kind: FailureKind::Network,
      code: "ETIMEDOUT",
      message: format!(
        "request to {url} failed, reason: connect ETIMEDOUT {}",
        host_port(url)
      ),
      before_send: true,
    }
  }

  /// Classifies a reqwest failure for the request to `url`.
  pub fn from_reqwest(err: &reqwest::Error, url: &str, timeout_ms: Option<u64>) -> Self {
    let connecting = err.is_connect();
    if err.is_timeout() && connecting {
      return Self::connect_timeout(url, timeout_ms);
    }
    if err.is_timeout() {
      return Self::timeout(url, timeout_ms);
    }
    if err.is_redirect() {
      return Self::too_many_redirects(url);
    }
    let (kind, code, reason) = root_cause(err, url);
    Self {
      kind,
      code,
      message: format!("request to {url} failed, reason: {reason}"),
      before_send: connecting,
    }
  }
}

fn host_port(url: &str) -> String {
  match url::Url::parse(url) {
    Ok(u) => format!(
      "{}:{}",
      u.host_str().unwrap_or(""),
      u.port_or_known_default().unwrap_or(0)
    ),
    Err(_) => String::new(),
  }
}

/// Walks the cause chain (including errors wrapped inside `io::Error`) for the most
/// specific explanation.
fn root_cause(err: &reqwest::Error, url: &str) -> (FailureKind, &'static str, String) {
  if let Some(found) = cause_of(err, url) {
    return found;
  }
  if err.is_connect() {
    // A connect failure with no cause found above (the resolver's own verdict, an OS
    // error): as node-fetch words a name that would not resolve.
    let code = "ENOTFOUND";
    return (
      FailureKind::Network,
      code,
      format!("getaddrinfo {code} {}", host_of(url)),
    );
  }
  if err.is_body() || err.is_request() {
    return (FailureKind::Network, "ECONNRESET", "socket hang up".into());
  }
  (FailureKind::Network, "EPROTO", err.to_string())
}

fn host_of(url: &str) -> String {
  url::Url::parse(url)
    .ok()
    .and_then(|u| u.host_str().map(str::to_owned))
    .unwrap_or_default()
}

/// The most specific explanation in the cause chain (including errors wrapped inside
/// `io::Error`), if any.
fn cause_of(
  err: &(dyn StdError + 'static),
  url: &str,
) -> Option<(FailureKind, &'static str, String)> {
  let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
  let mut from_hyper = false;
  while let Some(e) = cause {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
      return Some(tls_cause(tls));
    }
    if let Some(lookup) = e.downcast_ref::<crate::transport::resolve::LookupError>() {
      let reason = format!("getaddrinfo {} {}", lookup.code, host_of(url));
      return Some((FailureKind::Network, lookup.code, reason));
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
      // A head over hyper's `max_buf_size`.
      if h.is_parse_too_large() {
        let reason = "Parse Error: Header overflow".into();
        return Some((FailureKind::Network, "HPE_HEADER_OVERFLOW", reason));
      }
      if h.is_parse_status() {
        let reason = "Parse Error: Invalid status code".into();
        return Some((FailureKind::Network, "HPE_INVALID_STATUS", reason));
      }
      if h.is_parse() {
        return Some((
          FailureKind::Network,
          "HPE_INVALID_RESPONSE",
          format!("malformed HTTP response: {h}"),
        ));
      }
      if h.source().is_none() && (h.is_incomplete_message() || h.is_canceled() || h.is_closed()) {
        return Some((FailureKind::Network, "ECONNRESET", "socket hang up".into()));
      }
      from_hyper = true;
    }
    if let Some(io_err) = e.downcast_ref::<io::Error>() {
      if from_hyper && is_chunk_framing(io_err) {
        let reason = "Parse Error: Invalid character in chunk size".into();
        return Some((FailureKind::Network, "HPE_INVALID_CHUNK_SIZE", reason));
      }
    }
    cause = match e.downcast_ref::<io::Error>() {
      Some(io_err) => {
        if let Some(found) = io_cause(io_err, url) {
          return Some(found);
        }
        // `io::Error::source` skips the wrapped error itself; step into it instead.
        io_err
          .get_ref()
          .map(|inner| inner as &(dyn StdError + 'static))
      }
      None => e.source(),
    };
  }
  None
}

/// hyper's chunked-body decoder reports a malformed chunk (size line, CRLF, trailers)
/// as an `InvalidInput` or `InvalidData` I/O error of its own; a TLS failure on the same
/// path is `InvalidData` carrying the `rustls::Error`, and a socket's has an errno.
fn is_chunk_framing(e: &io::Error) -> bool {
  matches!(
    e.kind(),
    io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
  ) && e.raw_os_error().is_none()
    && !e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

fn io_cause(e: &io::Error, url: &str) -> Option<(FailureKind, &'static str, String)> {
  use io::ErrorKind::*;
  let code = match e.kind() {
    ConnectionRefused => "ECONNREFUSED",
    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => "ECONNRESET",
    TimedOut => "ETIMEDOUT",
    AddrNotAvailable => "EADDRNOTAVAIL",
    NotFound => "ENOTFOUND",
    // Otherwise the errno's own name (EMFILE, ENETUNREACH, …), as Node reports it;
    // without this a socket that could not even be created read as a DNS failure.
    _ => errno_name(e.raw_os_error()?)?,
  };
  let reason = match code {
    "ECONNRESET" => "socket hang up".to_string(),
    "ENOTFOUND" => format!("getaddrinfo ENOTFOUND {}", host_port(url)),
    _ => format!("connect {code} {}", host_port(url)),
  };
  Some((FailureKind::Network, code, reason))
}

/// Node's code and reason for the same TLS failure (see `crate::tls_verdict`).
fn tls_cause(e: &rustls::Error) -> (FailureKind, &'static str, String) {
  let (code, reason) = crate::tls_verdict::node_code(e);
  (FailureKind::Tls, code, reason)
}

#[cfg(unix)]
fn errno_name(errno: i32) -> Option<&'static str> {
  Some(match errno {
    libc::EMFILE => "EMFILE",
    libc::ENFILE => "ENFILE",
    libc::ENOBUFS => "ENOBUFS",
    libc::ENOMEM => "ENOMEM",
    libc::ENETUNREACH => "ENETUNREACH",
    libc::ENETDOWN => "ENETDOWN",
    libc::EHOSTUNREACH => "EHOSTUNREACH",
    libc::EHOSTDOWN => "EHOSTDOWN",
    libc::EADDRINUSE => "EADDRINUSE",
    libc::EACCES => "EACCES",
    libc::EPERM => "EPERM",
    libc::EPROTO => "EPROTO",
    _ => return None,
  })
}

#[cfg(not(unix))]
fn errno_name(_errno: i32) -> Option<&'static str> {
  None
}

#[cfg(test)]
mod tests {
  use super::*;

  #[cfg(unix)]
  #[test]
  fn os_errors_keep_their_errno_names() {
    let url = "http://127.0.0.1:8080/apps/1/events";
    let emfile = io::Error::from_raw_os_error(libc::EMFILE);
    assert_eq!(io_cause(&emfile, url).unwrap().1, "EMFILE");
    assert_eq!(
      io_cause(&emfile, url).unwrap().2,
      "connect EMFILE 127.0.0.1:8080"
    );
    let unreachable = io::Error::from_raw_os_error(libc::ENETUNREACH);
    assert_eq!(io_cause(&unreachable, url).unwrap().1, "ENETUNREACH");
    let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
    assert_eq!(io_cause(&refused, url).unwrap().1, "ECONNREFUSED");
    // A message-only error (a failed DNS lookup) is left to the caller.
    assert!(io_cause(
      &io::Error::other("failed to lookup address information"),
      url
    )
    .is_none());
  }

  #[test]
  fn lookup_failures_are_read_from_their_type_not_their_words() {
    use crate::transport::resolve::LookupError;
    let url = "http://api.example.com/apps/1/events";
    for code in ["EAI_AGAIN", "ENOTFOUND", "EAI_FAIL"] {
      // Wrapped as hyper-util and reqwest wrap it: found through the chain.
      let wrapped = io::Error::other(LookupError { code });
      let e = TransportError::from_cause(&wrapped, url, true);
      assert_eq!((e.kind, e.code), (FailureKind::Network, code));
      assert_eq!(
        e.message,
        format!("request to {url} failed, reason: getaddrinfo {code} api.example.com")
      );
    }
  }
}
