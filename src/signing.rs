//! Signing requests: the signed URL a client sends, and `createSignedQueryString`.

use napi_derive::napi;
use pusher_core::signature::{push_signed_query, signed_query, SigningInput};

/// What a client signs with.
pub struct Signer {
  /// `scheme://host[:port]`, as `config.getBaseURL()` builds it.
  pub base_url: String,
  pub key: String,
  pub secret: Vec<u8>,
}

impl Signer {
  /// `base_url + path + "?" + signed query`.
  pub fn signed_url(
    &self,
    method: &str,
    path: &str,
    params: Option<Vec<String>>,
    body: Option<&str>,
    timestamp: i64,
  ) -> String {
    let params = pairs(params);
    let mut url = String::with_capacity(self.base_url.len() + path.len() + 256);
    url.push_str(&self.base_url);
    url.push_str(path);
    url.push('?');
    push_signed_query(
      &mut url,
      &SigningInput {
        method,
        path,
        key: &self.key,
        timestamp,
        body: body.map(str::as_bytes),
        params: &params,
      },
      &self.secret,
    );
    url
  }
}

/// `[key, value, key, value, …]` as pairs.
fn pairs(params: Option<Vec<String>>) -> Vec<(String, String)> {
  let mut flat = params.unwrap_or_default().into_iter();
  let mut out = Vec::new();
  while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
    out.push((k, v));
  }
  out
}

/// The signed query string of `createSignedQueryString`, for any method and path.
#[napi(catch_unwind)]
pub fn signed_query_string(
  key: String,
  secret: crate::crypto::Bytes,
  method: String,
  path: String,
  params: Option<Vec<String>>,
  body: Option<crate::crypto::Bytes>,
  timestamp: i64,
) -> String {
  let params = pairs(params);
  let input = SigningInput {
    method: &method,
    path: &path,
    key: &key,
    timestamp,
    body: body.as_ref().map(crate::crypto::bytes),
    params: &params,
  };
  signed_query(&input, crate::crypto::bytes(&secret))
}
