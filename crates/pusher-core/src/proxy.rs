//! Failures on the way to a proxy, told as Node tells them: when the proxy cannot be
//! reached (refused, unknown name, timed out), the reason names the proxy's host and
//! port, not the target's, which was never contacted.

use crate::error::{FailureKind, TransportError};

/// `err` for a request to `url` sent through `proxy`, with the proxy named where the
/// connection that failed was the one to the proxy.
pub fn blame_proxy(err: TransportError, url: &str, proxy: Option<&str>) -> TransportError {
  let Some(proxy) = proxy.and_then(|p| url::Url::parse(p).ok()) else {
    return err;
  };
  // Through a proxy, the only connection this process opens is to the proxy.
  if err.kind != FailureKind::Network || !err.before_send {
    return err;
  }
  let host = proxy.host_str().unwrap_or_default();
  let host = host.trim_start_matches('[').trim_end_matches(']');
  let port = proxy.port_or_known_default().unwrap_or(0);
  let reason = match err.code {
    "ENOTFOUND" | "EAI_AGAIN" => format!("getaddrinfo {} {host}", err.code),
    "ECONNRESET" => return err,
    code if code.starts_with('E') => format!("connect {code} {host}:{port}"),
    _ => return err,
  };
  TransportError {
    message: format!("request to {url} failed, reason: {reason}"),
    ..err
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_refused_proxy_is_named() {
    let url = "http://api.example.com:8080/apps/1/events";
    let refused = TransportError::os("ECONNREFUSED", url, true);
    let blamed = blame_proxy(refused.clone(), url, Some("http://127.0.0.1:3128"));
    assert_eq!(
      blamed.message,
      format!("request to {url} failed, reason: connect ECONNREFUSED 127.0.0.1:3128")
    );
    assert_eq!(blamed.code, "ECONNREFUSED");
    // Without a proxy, or once the request was sent, nothing changes.
    assert_eq!(
      blame_proxy(refused.clone(), url, None).message,
      refused.message
    );
    let late = TransportError::os("ECONNREFUSED", url, false);
    assert_eq!(
      blame_proxy(late.clone(), url, Some("http://p:1")).message,
      late.message
    );
    let unknown = TransportError::not_found(url, "api.example.com");
    let blamed = blame_proxy(unknown, url, Some("http://proxy.invalid:3128"));
    assert!(blamed
      .message
      .ends_with("getaddrinfo ENOTFOUND proxy.invalid"));
  }
}
