//! A response head as a reply: the reason phrase as received, the headers as
//! `name\nvalue\n…` (lowercase names, latin-1 values, a repeated name's values together
//! at its first position, as `HeaderMap` iterates them), `Retry-After`, `Location`.

use super::limits;
use ::http::header::{HeaderMap, CONTENT_LENGTH, LOCATION, RETRY_AFTER, TRANSFER_ENCODING};
use ::http::{Extensions, StatusCode};

/// A response as both transports hand it on.
#[derive(Debug, Default)]
pub struct Reply {
  pub status: u16,
  /// The reason phrase as received (latin-1), as Node's `statusMessage`.
  pub status_text: String,
  /// Set only when a redirect was followed.
  pub final_url: Option<String>,
  /// Lowercase names and latin-1 values, `name\nvalue\n…`, parsed lazily in JS.
  pub headers: String,
  pub body: Vec<u8>,
  pub retry_after: Option<String>,
}

/// The reply for a response head; the body is filled in once read.
pub fn reply_head(status: StatusCode, headers: &HeaderMap, extensions: &Extensions) -> Reply {
  // hyper keeps the phrase only when it is not the canonical one.
  let status_text = match extensions.get::<hyper::ext::ReasonPhrase>() {
    Some(reason) => latin1(reason.as_bytes()),
    None => status.canonical_reason().unwrap_or("").to_owned(),
  };
  Reply {
    status: status.as_u16(),
    status_text,
    final_url: None,
    headers: header_string(headers),
    body: Vec::new(),
    retry_after: text(headers, RETRY_AFTER),
  }
}

/// hyper's HTTP/1 client settings, the same for both transports' parsers: the one
/// place that tells hyper to judge a response head as Node's parser (llhttp) does.
/// The event loop's connections are built with it; the tokio transport gives reqwest
/// the same values ([`MAX_HEAD_LINES`](limits::MAX_HEAD_LINES)).
pub fn configure_http1(
  builder: &mut hyper::client::conn::http1::Builder,
) -> &mut hyper::client::conn::http1::Builder {
  builder
    // A head over 16 KiB fails as Node's does (HPE_HEADER_OVERFLOW).
    .max_buf_size(limits::MAX_HEAD_BYTES)
    // llhttp counts no lines; hyper must (see MAX_HEAD_LINES).
    .max_headers(limits::MAX_HEAD_LINES)
}

/// What Node's parser refuses in a head hyper has read (its code and reason): the
/// framing rules of [`framing_error`], and a `101 Switching Protocols`, which answers
/// no request of ours (none asks for an upgrade; Node's client never settles on it).
pub fn head_error(status: StatusCode, headers: &HeaderMap) -> Option<(&'static str, &'static str)> {
  if status == StatusCode::SWITCHING_PROTOCOLS {
    return Some((
      "EPROTO",
      "Parse Error: 101 Switching Protocols, but no upgrade was asked for",
    ));
  }
  framing_error(headers)
}

/// A head whose framing a careful parser (Node's llhttp) refuses but hyper reads:
/// `Transfer-Encoding` beside `Content-Length`, a `Transfer-Encoding` line with an empty
/// value (hyper would then read the chunked body as raw bytes), more than one
/// `Content-Length` line, or one that is not plain digits (hyper reads `2, 2` as 2).
/// Node's error code and reason.
pub fn framing_error(headers: &HeaderMap) -> Option<(&'static str, &'static str)> {
  let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
  if let Some(length) = lengths.next() {
    if lengths.next().is_some() {
      return Some((
        "HPE_UNEXPECTED_CONTENT_LENGTH",
        "Parse Error: Duplicate Content-Length",
      ));
    }
    let digits = length.as_bytes().trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
      return Some((
        "HPE_INVALID_CONTENT_LENGTH",
        "Parse Error: Invalid character in Content-Length",
      ));
    }
  }
  let mut encodings = headers.get_all(TRANSFER_ENCODING).iter().peekable();
  encodings.peek()?;
  if headers.contains_key(CONTENT_LENGTH) {
    return Some((
      "HPE_INVALID_CONTENT_LENGTH",
      "Parse Error: Content-Length can't be present with Transfer-Encoding",
    ));
  }
  let empty = encodings.any(|v| {
    v.as_bytes()
      .split(|&b| b == b',')
      .any(|t| t.trim_ascii().is_empty())
  });
  empty.then_some((
    "HPE_INVALID_TRANSFER_ENCODING",
    "Parse Error: Invalid `Transfer-Encoding` header value",
  ))
}

/// The bytes of a response head on the wire (status line, header lines, blank line),
/// give or take the reason phrase's own length.
pub fn head_size(status: StatusCode, headers: &HeaderMap) -> usize {
  let lines: usize = headers
    .iter()
    .map(|(name, value)| name.as_str().len() + value.len() + 4)
    .sum();
  "HTTP/1.1 200 \r\n".len() + status.canonical_reason().map_or(0, str::len) + lines + 2
}

/// Whether a response's framing was ambiguous (see [`framing_error`]): its connection
/// must not carry another request.
pub fn is_framing_code(code: &str) -> bool {
  matches!(
    code,
    "HPE_INVALID_CONTENT_LENGTH"
      | "HPE_UNEXPECTED_CONTENT_LENGTH"
      | "HPE_INVALID_TRANSFER_ENCODING"
  )
}

/// The `Location` of a redirect.
pub fn location(headers: &HeaderMap) -> Option<String> {
  text(headers, LOCATION)
}

fn text(headers: &HeaderMap, name: ::http::header::HeaderName) -> Option<String> {
  headers
    .get(name)
    .and_then(|v| v.to_str().ok())
    .map(str::to_owned)
}

/// Header bytes are latin-1, as Node's http parser reads them.
fn latin1(bytes: &[u8]) -> String {
  bytes.iter().map(|&b| b as char).collect()
}

pub fn header_string(headers: &HeaderMap) -> String {
  let mut out = String::with_capacity(headers.len() * 32);
  for (name, value) in headers {
    out.push_str(name.as_str());
    out.push('\n');
    match std::str::from_utf8(value.as_bytes()) {
      Ok(ascii) if ascii.is_ascii() => out.push_str(ascii),
      _ => out.extend(value.as_bytes().iter().map(|&b| b as char)),
    }
    out.push('\n');
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn ambiguous_framing() {
    let head = |lines: &[(&str, &str)]| {
      let mut h = HeaderMap::new();
      for (n, v) in lines {
        h.append(
          ::http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
          v.parse().unwrap(),
        );
      }
      framing_error(&h).map(|e| e.0)
    };
    assert_eq!(head(&[("content-length", "2")]), None);
    assert_eq!(head(&[("transfer-encoding", "chunked")]), None);
    assert_eq!(head(&[("transfer-encoding", "gzip, chunked")]), None);
    assert_eq!(
      head(&[("transfer-encoding", "chunked"), ("content-length", "2")]),
      Some("HPE_INVALID_CONTENT_LENGTH")
    );
    assert_eq!(
      head(&[("transfer-encoding", "chunked"), ("transfer-encoding", "")]),
      Some("HPE_INVALID_TRANSFER_ENCODING")
    );
    assert_eq!(
      head(&[("transfer-encoding", "chunked,")]),
      Some("HPE_INVALID_TRANSFER_ENCODING")
    );
    // Content-Length as llhttp reads it: one line of digits.
    assert_eq!(head(&[("content-length", " 2 ")]), None);
    assert_eq!(
      head(&[("content-length", "2"), ("content-length", "2")]),
      Some("HPE_UNEXPECTED_CONTENT_LENGTH")
    );
    for bad in ["2, 2", "+2", "1e20", ""] {
      assert_eq!(
        head(&[("content-length", bad)]),
        Some("HPE_INVALID_CONTENT_LENGTH"),
        "{bad:?}"
      );
    }
    let upgrade = head_error(StatusCode::SWITCHING_PROTOCOLS, &HeaderMap::new());
    assert_eq!(upgrade.map(|e| e.0), Some("EPROTO"));
    assert_eq!(head_error(StatusCode::OK, &HeaderMap::new()), None);
  }

  #[test]
  fn repeated_names_stand_together_and_values_are_latin1() {
    let mut headers = HeaderMap::new();
    headers.append("set-cookie", "a".parse().unwrap());
    headers.append("x", ::http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
    headers.append("set-cookie", "b".parse().unwrap());
    headers.append("retry-after", "3".parse().unwrap());
    let reply = reply_head(StatusCode::OK, &headers, &Extensions::new());
    assert_eq!(
      reply.headers,
      "set-cookie\na\nset-cookie\nb\nx\ncaf\u{e9}\nretry-after\n3\n"
    );
    assert_eq!(
      (reply.status_text.as_str(), reply.retry_after.as_deref()),
      ("OK", Some("3"))
    );
  }
}
