//! A request on the wire: its method, where it goes (origin and target, serialized
//! as WHATWG does, as node-fetch sends it) and its head, header order included.

use crate::error::TransportError;
use ::http::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use std::borrow::Cow;
use url::Url;

/// The two methods the Channels API uses. GET is the idempotent one (it may be
/// retried after any failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
  Get,
  Post,
}

impl Method {
  pub fn as_str(self) -> &'static str {
    match self {
      Method::Get => "GET",
      Method::Post => "POST",
    }
  }

  pub fn is_idempotent(self) -> bool {
    self == Method::Get
  }

  pub fn to_http(self) -> ::http::Method {
    match self {
      Method::Get => ::http::Method::GET,
      Method::Post => ::http::Method::POST,
    }
  }
}

/// Where requests for one base URL go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
  /// For connecting: the host without IPv6 brackets.
  pub host: String,
  pub port: u16,
  /// The `host` header: host, and `:port` unless it is the scheme's default.
  pub host_header: String,
  pub https: bool,
}

impl Origin {
  /// The origin of an http or https URL; `None` for any other scheme.
  pub fn of(url: &url::Url) -> Option<Self> {
    let https = match url.scheme() {
      "http" => false,
      "https" => true,
      _ => return None,
    };
    let host_str = url.host_str()?;
    let host_header = match url.port() {
      Some(port) => format!("{host_str}:{port}"),
      None => host_str.to_owned(),
    };
    let host = host_str
      .trim_start_matches('[')
      .trim_end_matches(']')
      .to_owned();
    Some(Self {
      host,
      port: url.port_or_known_default()?,
      host_header,
      https,
    })
  }
}

/// Parses as node-fetch 2 does before sending: WHATWG parsing, absolute http(s) only.
pub fn parse_url(url: &str) -> Result<Url, TransportError> {
  let parsed = Url::parse(url).map_err(|_| TransportError::invalid_url("Invalid URL"))?;
  match parsed.scheme() {
    "http" | "https" if parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(parsed),
    "http" | "https" => Err(TransportError::invalid_url(
      "Only absolute URLs are supported",
    )),
    _ => Err(TransportError::invalid_url(
      "Only HTTP(S) protocols are supported",
    )),
  }
}

/// The bytes WHATWG parsing leaves unchanged in a path or query.
const PLAIN: [bool; 256] = {
  let mut table = [false; 256];
  let mut b = 0;
  while b < 256 {
    let c = b as u8;
    table[b] = c.is_ascii_alphanumeric()
      || matches!(
        c,
        b'-'
          | b'.'
          | b'_'
          | b'~'
          | b'!'
          | b'$'
          | b'&'
          | b'('
          | b')'
          | b'*'
          | b'+'
          | b','
          | b';'
          | b'='
          | b':'
          | b'@'
          | b'/'
          | b'?'
          | b'%'
      );
    b += 1;
  }
  table
};

/// Whether `base + target` needs no parsing at all: only plain bytes, one `?` at most,
/// no dot segment. Three tight passes (a table lookup, a substring search, a count)
/// cost less than one pass that tracks state per byte.
fn is_plain_target(target: &str) -> bool {
  let bytes = target.as_bytes();
  bytes.first() == Some(&b'/')
    && bytes.iter().all(|&b| PLAIN[b as usize])
    && !target.contains("/.")
    && bytes.iter().filter(|&&b| b == b'?').count() <= 1
}

/// The request target (path and query) of `url`, which starts with a base URL of
/// `base_len` bytes (an http(s) origin): as WHATWG serialization gives it.
pub fn request_target(url: &str, base_len: usize) -> Result<Cow<'_, str>, TransportError> {
  match url.get(base_len..) {
    Some(target) if is_plain_target(target) => Ok(Cow::Borrowed(target)),
    _ => Ok(Cow::Owned(target_of(&parse_url(url)?))),
  }
}

/// `path?query` of a parsed URL.
pub fn target_of(url: &url::Url) -> String {
  let mut target = url.path().to_owned();
  if let Some(query) = url.query() {
    target.push('?');
    target.push_str(query);
  }
  target
}

/// The head's headers in wire order: `accept`, `x-pusher-library`, `content-type` (with
/// a body), then `host` when given (reqwest adds it itself); hyper appends
/// `content-length` for a body.
pub fn headers(library: &HeaderValue, has_body: bool, host: Option<&str>) -> HeaderMap {
  let mut headers = HeaderMap::with_capacity(5);
  headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
  headers.insert("x-pusher-library", library.clone());
  if has_body {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
  }
  if let Some(host) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
    headers.insert(HOST, host);
  }
  headers
}

/// The whole request as it goes on the wire: the contract that tests hold both
/// transports to.
pub fn wire_bytes(
  method: Method,
  target: &str,
  host_header: &str,
  library: &str,
  body: Option<&[u8]>,
) -> Vec<u8> {
  let mut out = format!("{} {target} HTTP/1.1\r\n", method.as_str()).into_bytes();
  let library = HeaderValue::from_str(library).expect("a valid header value");
  for (name, value) in &headers(&library, body.is_some(), Some(host_header)) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
  }
  if let Some(body) = body {
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
  } else {
    out.extend_from_slice(b"\r\n");
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_wire_format() {
    let post = wire_bytes(
      Method::Post,
      "/apps/1/events?a=b",
      "127.0.0.1:8080",
      "pusher-native 0.1.0",
      Some(b"{}"),
    );
    assert_eq!(
      String::from_utf8(post).unwrap(),
      "POST /apps/1/events?a=b HTTP/1.1\r\naccept: */*\r\nx-pusher-library: pusher-native 0.1.0\r\n\
       content-type: application/json\r\nhost: 127.0.0.1:8080\r\ncontent-length: 2\r\n\r\n{}"
    );
    let get = wire_bytes(Method::Get, "/x", "h", "lib", None);
    assert_eq!(
      String::from_utf8(get).unwrap(),
      "GET /x HTTP/1.1\r\naccept: */*\r\nx-pusher-library: lib\r\nhost: h\r\n\r\n"
    );
  }

  #[test]
  fn targets_are_serialized_as_whatwg_does() {
    let cases = [
      (
        "/apps/1/events?auth_key=k&auth_timestamp=1",
        "/apps/1/events?auth_key=k&auth_timestamp=1",
      ),
      ("/apps/1/channels?info=a b", "/apps/1/channels?info=a%20b"),
      ("/apps/1/../2/x", "/apps/2/x"),
      ("/apps/1/x?q=\"<>\"", "/apps/1/x?q=%22%3C%3E%22"),
      ("/apps/ü", "/apps/%C3%BC"),
    ];
    for (target, expected) in cases {
      let url = format!("http://h:1{target}");
      assert_eq!(
        request_target(&url, "http://h:1".len()).unwrap(),
        expected,
        "{target}"
      );
      assert_eq!(target_of(&url::Url::parse(&url).unwrap()), expected);
    }
  }

  #[test]
  fn every_printable_byte_in_path_and_query_matches_whatwg() {
    for b in 0x20u8..0x7f {
      let c = b as char;
      for target in [
        format!("/apps/1/a{c}b?x=1"),
        format!("/apps/1/x?k=a{c}b&z=1"),
        format!("/apps/1/{c}{c}/y"),
      ] {
        let url = format!("http://h:1{target}");
        let Ok(parsed) = url::Url::parse(&url) else {
          continue;
        };
        assert_eq!(
          request_target(&url, "http://h:1".len()).unwrap(),
          target_of(&parsed),
          "{target:?}"
        );
      }
    }
  }

  #[test]
  fn origins() {
    let o = Origin::of(&url::Url::parse("http://[::1]:99").unwrap()).unwrap();
    assert_eq!(
      (o.host.as_str(), o.port, o.host_header.as_str(), o.https),
      ("::1", 99, "[::1]:99", false)
    );
    let o = Origin::of(&url::Url::parse("http://API.Example.com:80").unwrap()).unwrap();
    assert_eq!(
      (o.host.as_str(), o.port, o.host_header.as_str()),
      ("api.example.com", 80, "api.example.com")
    );
    let o = Origin::of(&url::Url::parse("https://h:443").unwrap()).unwrap();
    assert_eq!(
      (o.host.as_str(), o.port, o.host_header.as_str(), o.https),
      ("h", 443, "h", true)
    );
    assert!(Origin::of(&url::Url::parse("ftp://h").unwrap()).is_none());
  }
}
