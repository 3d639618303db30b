//! A response head as a reply: the reason phrase as received, the headers as
//! `name\nvalue\n…` (lowercase names, latin-1 values, a repeated name's values together
//! at its first position, as `HeaderMap` iterates them), `Retry-After`, `Location`.

use crate::transport::Reply;
use ::http::header::{HeaderMap, LOCATION, RETRY_AFTER};
use ::http::{Extensions, StatusCode};

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
    out.extend(value.as_bytes().iter().map(|&b| b as char));
    out.push('\n');
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;

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
