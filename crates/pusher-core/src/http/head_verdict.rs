//! Node's verdict on a response head hyper refused: hyper says only that it could not
//! parse it, llhttp names the rule (`HPE_INVALID_HEADER_TOKEN`, …). Given the head's raw
//! bytes, httparse (the parser inside hyper) says where it failed as a type, and the
//! parsed Content-Length lines say the rest. The event loop, which reads the bytes
//! itself, can hand them here; reqwest does not show them.

use super::limits;

/// The code and reason Node's parser gives for `head` (the bytes received up to the
/// blank line, or all of them), when hyper refused it. `None` when nothing here
/// explains the refusal.
pub fn refused_head(head: &[u8]) -> Option<(&'static str, &'static str)> {
  let mut headers = vec![httparse::EMPTY_HEADER; limits::MAX_HEAD_LINES];
  let mut response = httparse::Response::new(&mut headers);
  match response.parse(head) {
    Err(e) => Some(where_it_broke(head, e).unwrap_or_else(|| httparse_verdict(e))),
    Ok(_) => content_length_verdict(response.headers),
  }
}

/// Where llhttp's code depends on where httparse stopped, which it does not say: after
/// `HTTP/` (the version itself is wrong), at a CR with no LF after it in the status line,
/// at whitespace opening the first header line (a fold with nothing to fold into), or in
/// a value whose first bad byte is a CR with no LF after it.
fn where_it_broke(head: &[u8], e: httparse::Error) -> Option<(&'static str, &'static str)> {
  let lone_cr = |bytes: &[u8]| {
    let mut pairs = bytes.windows(2);
    pairs.any(|w| w[0] == b'\r' && w[1] != b'\n')
  };
  match e {
    httparse::Error::Version if head.starts_with(b"HTTP/") => {
      return Some(("HPE_INVALID_VERSION", "Parse Error: Invalid HTTP version"));
    }
    httparse::Error::Status => {
      let line = &head[..head.iter().position(|&b| b == b'\n').unwrap_or(head.len())];
      return lone_cr(line).then_some(("HPE_STRICT", "Parse Error: Expected LF after CR"));
    }
    _ => {}
  }
  let after_status = head.iter().position(|&b| b == b'\n')? + 1;
  let headers = &head[after_status..];
  match e {
    httparse::Error::HeaderName if matches!(headers.first(), Some(b' ' | b'\t')) => Some((
      "HPE_UNEXPECTED_SPACE",
      "Parse Error: Unexpected space after start line",
    )),
    httparse::Error::HeaderValue => {
      let bad = headers.iter().enumerate().find(|&(i, &b)| {
        (b.is_ascii_control() && b != b'\t' && b != b'\n' && b != b'\r')
          || (b == b'\r' && headers.get(i + 1) != Some(&b'\n'))
      })?;
      (*bad.1 == b'\r').then_some((
        "HPE_LF_EXPECTED",
        "Parse Error: Missing expected LF after header value",
      ))
    }
    _ => None,
  }
}

fn httparse_verdict(e: httparse::Error) -> (&'static str, &'static str) {
  use httparse::Error as E;
  match e {
    E::HeaderName => (
      "HPE_INVALID_HEADER_TOKEN",
      "Parse Error: Invalid header token",
    ),
    E::HeaderValue => (
      "HPE_INVALID_HEADER_TOKEN",
      "Parse Error: Invalid header value char",
    ),
    E::Version => (
      "HPE_INVALID_CONSTANT",
      "Parse Error: Expected HTTP/, RTSP/ or ICE/",
    ),
    E::Status => ("HPE_INVALID_STATUS", "Parse Error: Invalid status code"),
    E::NewLine => (
      "HPE_LF_EXPECTED",
      "Parse Error: Missing expected LF after header value",
    ),
    E::Token => (
      "HPE_INVALID_HEADER_TOKEN",
      "Parse Error: Invalid header token",
    ),
    E::TooManyHeaders => ("HPE_HEADER_OVERFLOW", "Parse Error: Header overflow"),
  }
}

/// Content-Length as llhttp reads it: one line, of digits, that fits in 64 bits.
fn content_length_verdict(headers: &[httparse::Header]) -> Option<(&'static str, &'static str)> {
  let mut lengths = headers
    .iter()
    .filter(|h| h.name.eq_ignore_ascii_case("content-length"));
  let length = lengths.next()?;
  // In llhttp's order: the first line's value, then a second line.
  let digits = length.value.trim_ascii();
  if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
    return Some((
      "HPE_INVALID_CONTENT_LENGTH",
      "Parse Error: Invalid character in Content-Length",
    ));
  }
  if lengths.next().is_some() {
    return Some((
      "HPE_UNEXPECTED_CONTENT_LENGTH",
      "Parse Error: Duplicate Content-Length",
    ));
  }
  let fits = digits
    .iter()
    .try_fold(0u64, |n, d| {
      n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
    .is_some();
  (!fits).then_some((
    "HPE_INVALID_CONTENT_LENGTH",
    "Parse Error: Content-Length overflow",
  ))
}

#[cfg(test)]
mod tests {
  use super::*;

  /// Node 20's codes for the same heads (see __test__/parser-parity.test.js, which
  /// measures them live).
  #[test]
  fn heads_hyper_refuses_get_llhttps_codes() {
    let cases: [(&str, Option<&str>); 18] = [
      ("HTTP/2 200 OK\r\n\r\n", Some("HPE_INVALID_VERSION")),
      ("HTTP/1. 200 OK\r\n\r\n", Some("HPE_INVALID_VERSION")),
      ("HTTP/1.1 200 O\rK\r\n\r\n", Some("HPE_STRICT")),
      (
        "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\nContent-Length: 2\r\n\r\n",
        Some("HPE_INVALID_CONTENT_LENGTH"),
      ),
      (
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 1e3\r\n\r\n",
        Some("HPE_UNEXPECTED_CONTENT_LENGTH"),
      ),
      (
        "HTTP/1.1 200 OK\r\n X-A: a\r\n\r\n",
        Some("HPE_UNEXPECTED_SPACE"),
      ),
      (
        "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
        Some("HPE_LF_EXPECTED"),
      ),
      (
        "HTTP/1.1 200 OK\r\nX-A: a\0b\rc\r\n\r\n",
        Some("HPE_INVALID_HEADER_TOKEN"),
      ),
      (
        "HTTP/1.1 200 OK\r\nContent-Length: 1e20\r\n\r\n",
        Some("HPE_INVALID_CONTENT_LENGTH"),
      ),
      (
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        Some("HPE_INVALID_CONTENT_LENGTH"),
      ),
      (
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
        Some("HPE_UNEXPECTED_CONTENT_LENGTH"),
      ),
      (
        "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n",
        Some("HPE_INVALID_HEADER_TOKEN"),
      ),
      (
        "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n",
        Some("HPE_INVALID_HEADER_TOKEN"),
      ),
      (
        "HTTP/1.1 200 OK\r\nX(A): 1\r\n\r\n",
        Some("HPE_INVALID_HEADER_TOKEN"),
      ),
      (
        "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n",
        Some("HPE_INVALID_HEADER_TOKEN"),
      ),
      ("{}\r\n", Some("HPE_INVALID_CONSTANT")),
      ("http/1.1 200 OK\r\n\r\n", Some("HPE_INVALID_CONSTANT")),
      ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", None),
    ];
    for (head, code) in cases {
      assert_eq!(refused_head(head.as_bytes()).map(|v| v.0), code, "{head:?}");
    }
  }
}
