//! HTTP/1.1 on the wire, without I/O: the request bytes pusher-native sends (the same
//! bytes, header order included, as the reqwest transport) and an incremental reader
//! for the response. The event-loop transport in the binding drives these.

use crate::error::{FailureKind, TransportError};
use crate::transport::{parse_url, Reply};
use std::borrow::Cow;

/// Where requests for one base URL go, worked out once per client.
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

/// What WHATWG parsing leaves unchanged in a path or query: with only these bytes (and
/// no dot segment), `base + target` needs no parsing at all.
fn is_plain_target(target: &str) -> bool {
  !target.contains("/.")
    && target.bytes().all(|b| {
      b.is_ascii_alphanumeric()
        || matches!(
          b,
          b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'(' | b')'
        )
        || matches!(
          b,
          b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@' | b'/' | b'?' | b'%'
        )
    })
    && target.starts_with('/')
    && target.matches('?').count() <= 1
}

/// The request target (path and query) of `url`, which starts with `base` (already
/// known to be an http(s) origin): as WHATWG serialization gives it.
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

/// The request as reqwest writes it: request line, `accept`, `x-pusher-library`,
/// `content-type` (with a body), `host`, `content-length` (with a body), body.
pub fn request_bytes(
  method: &str,
  target: &str,
  host_header: &str,
  library: &str,
  body: Option<&[u8]>,
) -> Vec<u8> {
  let body_len = body.map_or(0, <[u8]>::len);
  let mut out = Vec::with_capacity(160 + target.len() + library.len() + body_len);
  for part in [
    method,
    " ",
    target,
    " HTTP/1.1\r\naccept: */*\r\nx-pusher-library: ",
    library,
    "\r\n",
  ] {
    out.extend_from_slice(part.as_bytes());
  }
  if body.is_some() {
    out.extend_from_slice(b"content-type: application/json\r\n");
  }
  out.extend_from_slice(b"host: ");
  out.extend_from_slice(host_header.as_bytes());
  out.extend_from_slice(b"\r\n");
  if let Some(body) = body {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(body_len.to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
  } else {
    out.extend_from_slice(b"\r\n");
  }
  out
}

/// A complete response: what the transport replies, and what the connection and a
/// redirect need to know. In `reply.headers` the values of a repeated name stand
/// together at its first position, as reqwest's `HeaderMap` iterates them.
#[derive(Debug, Default)]
pub struct Response {
  pub reply: Reply,
  /// Whether the connection can carry another request.
  pub reusable: bool,
  pub location: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Framing {
  Length(usize),
  Chunked,
  UntilClose,
}

#[derive(Debug)]
enum Stage {
  Head,
  Body(Framing),
  /// Inside chunked framing: the bytes left of the current chunk (`None` between chunks).
  Chunk(Option<usize>),
  Trailers,
}

/// Reads one response from bytes as they arrive.
#[derive(Debug)]
pub struct ResponseReader {
  buf: Vec<u8>,
  stage: Stage,
  response: Response,
  /// Whether anything at all has arrived (a reset before that is a plain hang-up).
  pub started: bool,
}

const MAX_HEADERS: usize = 100;
const MAX_HEAD_BYTES: usize = 1 << 20;

fn malformed(reason: &str) -> TransportError {
  TransportError {
    kind: FailureKind::Network,
    code: "HPE_INVALID_RESPONSE",
    message: format!("malformed HTTP response: {reason}"),
    before_send: false,
  }
}

fn latin1(bytes: &[u8]) -> String {
  bytes.iter().map(|&b| b as char).collect()
}

/// Groups repeated names at their first position.
fn header_string(headers: &[(String, String)]) -> String {
  let mut out = String::with_capacity(headers.len() * 32);
  for (i, (name, _)) in headers.iter().enumerate() {
    if headers[..i].iter().any(|(n, _)| n == name) {
      continue;
    }
    for (n, value) in &headers[i..] {
      if n == name {
        out.push_str(n);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
      }
    }
  }
  out
}

impl Default for ResponseReader {
  fn default() -> Self {
    Self {
      buf: Vec::new(),
      stage: Stage::Head,
      response: Response::default(),
      started: false,
    }
  }
}

impl ResponseReader {
  /// Adds received bytes; the response once it is complete.
  pub fn feed(&mut self, data: &[u8]) -> Result<Option<Response>, TransportError> {
    self.started |= !data.is_empty();
    self.buf.extend_from_slice(data);
    self.advance()
  }

  /// The peer closed the connection: completes a response framed by the close.
  pub fn eof(&mut self) -> Option<Response> {
    match self.stage {
      Stage::Body(Framing::UntilClose) => {
        let mut response = std::mem::take(&mut self.response);
        response.reply.body = std::mem::take(&mut self.buf);
        response.reusable = false;
        Some(response)
      }
      _ => None,
    }
  }

  fn advance(&mut self) -> Result<Option<Response>, TransportError> {
    loop {
      match self.stage {
        Stage::Head => {
          if !self.parse_head()? {
            return Ok(None);
          }
        }
        Stage::Body(Framing::Length(n)) => {
          if self.buf.len() < n {
            return Ok(None);
          }
          if self.buf.len() > n {
            // Bytes after the response: the connection is not in a known state.
            self.response.reusable = false;
          }
          self.buf.truncate(n);
          let body = std::mem::take(&mut self.buf);
          return Ok(Some(self.finish(body)));
        }
        Stage::Body(Framing::UntilClose) => return Ok(None),
        Stage::Body(Framing::Chunked) => self.stage = Stage::Chunk(None),
        Stage::Chunk(None) => {
          let Some(end) = find_crlf(&self.buf) else {
            return if self.buf.len() > 4096 {
              Err(malformed("chunk size line too long"))
            } else {
              Ok(None)
            };
          };
          let line = &self.buf[..end];
          let digits = line.split(|&b| b == b';').next().unwrap_or_default();
          let digits = std::str::from_utf8(digits)
            .map_err(|_| malformed("invalid chunk size"))?
            .trim();
          let size =
            usize::from_str_radix(digits, 16).map_err(|_| malformed("invalid chunk size"))?;
          self.consume(end + 2);
          self.stage = if size == 0 {
            Stage::Trailers
          } else {
            Stage::Chunk(Some(size))
          };
        }
        Stage::Chunk(Some(size)) => {
          if self.buf.len() < size + 2 {
            return Ok(None);
          }
          if &self.buf[size..size + 2] != b"\r\n" {
            return Err(malformed("invalid chunk end"));
          }
          self
            .response
            .reply
            .body
            .extend_from_slice(&self.buf[..size]);
          self.consume(size + 2);
          self.stage = Stage::Chunk(None);
        }
        Stage::Trailers => {
          let Some(end) = find_crlf(&self.buf) else {
            return Ok(None);
          };
          self.consume(end + 2);
          if end == 0 {
            if !self.buf.is_empty() {
              self.response.reusable = false;
            }
            let body = std::mem::take(&mut self.response.reply.body);
            return Ok(Some(self.finish(body)));
          }
        }
      }
    }
  }

  fn consume(&mut self, n: usize) {
    self.buf.drain(..n);
  }

  fn finish(&mut self, body: Vec<u8>) -> Response {
    let mut response = std::mem::take(&mut self.response);
    response.reply.body = body;
    self.stage = Stage::Head;
    response
  }

  /// Parses the status line and headers when they are all here; skips 1xx responses.
  fn parse_head(&mut self) -> Result<bool, TransportError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(&self.buf) {
      Ok(httparse::Status::Complete(len)) => len,
      Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD_BYTES => {
        return Err(malformed("head too large"))
      }
      Ok(httparse::Status::Partial) => return Ok(false),
      Err(e) => return Err(malformed(&e.to_string())),
    };
    let status = parsed.code.unwrap_or(0);
    if (100..200).contains(&status) && status != 101 {
      self.consume(len);
      return Ok(true);
    }
    let http10 = parsed.version == Some(0);
    let mut list = Vec::with_capacity(parsed.headers.len());
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = http10;
    let mut response = Response::default();
    response.reply.status = status;
    response.reply.status_text = latin1(parsed.reason.unwrap_or("").as_bytes());
    for h in parsed.headers.iter() {
      let name = h.name.to_ascii_lowercase();
      let value = latin1(h.value);
      match name.as_str() {
        "content-length" => {
          let n = value
            .trim()
            .parse::<usize>()
            .map_err(|_| malformed("invalid content-length"))?;
          if length.is_some_and(|m| m != n) {
            return Err(malformed("conflicting content-length"));
          }
          length = Some(n);
        }
        "transfer-encoding" => chunked = value.to_ascii_lowercase().trim_end().ends_with("chunked"),
        "connection" => {
          let v = value.to_ascii_lowercase();
          if v.contains("close") {
            close = true;
          } else if http10 && v.contains("keep-alive") {
            close = false;
          }
        }
        "location" if response.location.is_none() => response.location = Some(value.clone()),
        "retry-after" if response.reply.retry_after.is_none() => {
          response.reply.retry_after = Some(value.clone())
        }
        _ => {}
      }
      list.push((name, value));
    }
    response.reply.headers = header_string(&list);
    let framing = if status == 204 || status == 304 {
      Framing::Length(0)
    } else if chunked {
      Framing::Chunked
    } else if let Some(n) = length {
      Framing::Length(n)
    } else {
      close = true;
      Framing::UntilClose
    };
    response.reusable = !close;
    self.response = response;
    self.consume(len);
    self.stage = Stage::Body(framing);
    Ok(true)
  }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
  buf.windows(2).position(|w| w == b"\r\n")
}

/// The method for following a redirect with `status`, as node-fetch 2 and reqwest do
/// (303, and 301/302 for a POST, become a GET without body); `None` when `status` is not
/// a redirect that is followed.
pub fn redirect_method(status: u16, method: &str) -> Option<&'static str> {
  match status {
    303 => Some("GET"),
    301 | 302 if method == "POST" => Some("GET"),
    301 | 302 | 307 | 308 => Some(if method == "GET" { "GET" } else { "POST" }),
    _ => None,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn read_all(chunks: &[&[u8]]) -> Result<Option<Response>, TransportError> {
    let mut reader = ResponseReader::default();
    let mut out = None;
    for chunk in chunks {
      if let Some(r) = reader.feed(chunk)? {
        out = Some(r);
      }
    }
    Ok(out)
  }

  #[test]
  fn request_bytes_match_the_reqwest_transport() {
    let post = request_bytes(
      "POST",
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
    let get = request_bytes("GET", "/x", "h", "lib", None);
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

  #[test]
  fn responses_in_pieces() {
    let whole: &[u8] =
      b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    for split in 1..whole.len() {
      let r = read_all(&[&whole[..split], &whole[split..]])
        .unwrap()
        .expect("complete");
      assert_eq!(
        (
          r.reply.status,
          r.reply.status_text.as_str(),
          r.reply.body.as_slice(),
          r.reusable
        ),
        (200, "OK", &b"{}"[..], true)
      );
      assert_eq!(
        r.reply.headers,
        "content-type\napplication/json\ncontent-length\n2\n"
      );
    }
  }

  #[test]
  fn chunked_bodies_and_repeated_headers() {
    let r = read_all(&[b"HTTP/1.1 201 Fine\r\nSet-Cookie: a\r\nX: 1\r\nset-cookie: b\r\nTransfer-Encoding: chunked\r\n\r\n",
      b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nT: x\r\n\r\n"])
    .unwrap()
    .unwrap();
    assert_eq!(
      (
        r.reply.status,
        r.reply.status_text.as_str(),
        r.reply.body.as_slice()
      ),
      (201, "Fine", &b"abcde"[..])
    );
    assert_eq!(
      r.reply.headers,
      "set-cookie\na\nset-cookie\nb\nx\n1\ntransfer-encoding\nchunked\n"
    );
    assert!(r.reusable);
  }

  #[test]
  fn framing_by_close_and_informational_responses() {
    let mut reader = ResponseReader::default();
    assert!(reader
      .feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nhello")
      .unwrap()
      .is_none());
    let r = reader.eof().unwrap();
    assert_eq!(
      (r.reply.status, r.reply.body.as_slice(), r.reusable),
      (200, &b"hello"[..], false)
    );
    let r = read_all(&[b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"])
      .unwrap()
      .unwrap();
    assert_eq!(
      (r.reply.status, r.reply.body.len(), r.reusable),
      (204, 0, false)
    );
    let r = read_all(&[
      b"HTTP/1.1 302 Found\r\nLocation: /final\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n",
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
      (r.location.as_deref(), r.reply.retry_after.as_deref()),
      (Some("/final"), Some("3"))
    );
  }

  #[test]
  fn malformed_responses() {
    for bad in [
      &b"HTTP/1.1 abc OK\r\n\r\n"[..],
      b"garbage\r\n\r\n",
      b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
      b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
      let err = read_all(&[bad]).unwrap_err();
      assert_eq!(
        err.code,
        "HPE_INVALID_RESPONSE",
        "{}",
        String::from_utf8_lossy(bad)
      );
    }
  }

  #[test]
  fn redirect_methods() {
    assert_eq!(redirect_method(303, "POST"), Some("GET"));
    assert_eq!(redirect_method(302, "POST"), Some("GET"));
    assert_eq!(redirect_method(302, "GET"), Some("GET"));
    assert_eq!(redirect_method(307, "POST"), Some("POST"));
    assert_eq!(redirect_method(308, "GET"), Some("GET"));
    assert_eq!(redirect_method(200, "GET"), None);
    assert_eq!(redirect_method(304, "GET"), None);
  }
}
