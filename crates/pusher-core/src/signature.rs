//! HMAC-SHA256 request signing, MD5 body digests and constant-time comparison.
//!
//! Signing is a pure function of its inputs: the timestamp is passed in, so the
//! golden vectors of the Channels documentation can be checked exactly.

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

thread_local! {
  /// The last secret this thread signed with, and HMAC's state keyed with it: an app
  /// signs with one secret, and keying costs two of a short message's ~six SHA-256
  /// compressions.
  static KEYED: std::cell::RefCell<Option<(Vec<u8>, HmacSha256)>> = const { std::cell::RefCell::new(None) };
}

/// HMAC-SHA256 keyed with `secret`, from the per-thread cache when it is the last one.
fn keyed(secret: &[u8]) -> HmacSha256 {
  KEYED.with(|cell| {
    let mut last = cell.borrow_mut();
    if let Some((key, mac)) = last.as_ref() {
      if secure_compare(key, secret) {
        return mac.clone();
      }
    }
    // HMAC accepts keys of any length, so this cannot fail.
    let mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    *last = Some((secret.to_vec(), mac.clone()));
    mac
  })
}

pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
  let mut mac = keyed(secret);
  mac.update(message);
  mac.finalize().into_bytes().into()
}

pub fn hmac_sha256_hex(secret: &[u8], message: &[u8]) -> String {
  to_hex(&hmac_sha256(secret, message))
}

pub fn md5_hex(data: &[u8]) -> String {
  to_hex(&Md5::digest(data))
}

/// Lowercase hex of a digest, written through a table into a stack buffer
/// (`hex::encode` builds its String one `char` at a time: measurably slower here).
fn to_hex(digest: &[u8]) -> String {
  let mut buf = [0u8; 128];
  let out = &mut buf[..digest.len() * 2];
  hex::encode_to_slice(digest, out).unwrap_or_else(|_| unreachable!());
  std::str::from_utf8(out)
    .unwrap_or_else(|_| unreachable!())
    .to_owned()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
  Sha256::digest(data).into()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn secure_compare(a: &[u8], b: &[u8]) -> bool {
  a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Checks a hex signature as `pusher` does: the lowercase hex HMAC of `message`
/// must equal `signature` exactly, compared in constant time.
pub fn verify_hex(secret: &[u8], message: &[u8], signature: &[u8]) -> bool {
  secure_compare(hmac_sha256_hex(secret, message).as_bytes(), signature)
}

/// What a signed Channels API request is made of.
pub struct SigningInput<'a> {
  /// Already uppercased by the caller (JS `toUpperCase` semantics).
  pub method: &'a str,
  pub path: &'a str,
  pub key: &'a str,
  pub timestamp: i64,
  /// The exact body bytes; `None` (or empty) means no `body_md5`.
  pub body: Option<&'a [u8]>,
  /// Caller parameters, already converted to strings, never one of the reserved keys.
  pub params: &'a [(String, String)],
}

/// Builds the query string `pusher` sends: every parameter sorted by key in UTF-16
/// order, joined raw (unescaped) as `k=v&…`, then `&auth_signature=<hex HMAC>` over
/// `METHOD\nPATH\nQUERY`.
pub fn signed_query(input: &SigningInput, secret: &[u8]) -> String {
  let mut query = String::new();
  push_signed_query(&mut query, input, secret);
  query
}

/// Appends [`signed_query`]'s string to `out` (a URL being built), reserving its exact
/// length once: no second buffer, no regrowth.
pub fn push_signed_query(out: &mut String, input: &SigningInput, secret: &[u8]) {
  let mut digits = [0u8; 20];
  let timestamp = decimal(input.timestamp, &mut digits);
  let mut md5_buf = [0u8; 32];
  let body_md5 = input
    .body
    .filter(|b| !b.is_empty())
    .map(|b| hex_into(&Md5::digest(b), &mut md5_buf));
  let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(4 + input.params.len());
  pairs.push(("auth_key", input.key));
  pairs.push(("auth_timestamp", timestamp));
  pairs.push(("auth_version", "1.0"));
  if let Some(md5) = body_md5 {
    pairs.push(("body_md5", md5));
  }
  pairs.extend(input.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
  // JS compares strings by UTF-16 code units; byte order differs only above U+FFFF.
  pairs.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));

  const SIGNATURE: &str = "&auth_signature=";
  let length = pairs
    .iter()
    .map(|(k, v)| k.len() + v.len() + 2)
    .sum::<usize>()
    + SIGNATURE.len()
    + 64;
  out.reserve(length);
  let start = out.len();
  for (i, (k, v)) in pairs.iter().enumerate() {
    if i > 0 {
      out.push('&');
    }
    out.push_str(k);
    out.push('=');
    out.push_str(v);
  }
  let mut mac = keyed(secret);
  for part in [input.method, "\n", input.path, "\n", &out[start..]] {
    mac.update(part.as_bytes());
  }
  out.push_str(SIGNATURE);
  let mut hex_buf = [0u8; 64];
  out.push_str(hex_into(&mac.finalize().into_bytes(), &mut hex_buf));
}

/// `value` in decimal, as `to_string` writes it, in `buf`.
fn decimal(value: i64, buf: &mut [u8; 20]) -> &str {
  let mut n = value.unsigned_abs();
  let mut at = buf.len();
  loop {
    at -= 1;
    buf[at] = b'0' + (n % 10) as u8;
    n /= 10;
    if n == 0 {
      break;
    }
  }
  if value < 0 {
    at -= 1;
    buf[at] = b'-';
  }
  std::str::from_utf8(&buf[at..]).unwrap_or_else(|_| unreachable!())
}

/// Lowercase hex of `digest` in `buf` (twice its length).
fn hex_into<'a>(digest: &[u8], buf: &'a mut [u8]) -> &'a str {
  let out = &mut buf[..digest.len() * 2];
  hex::encode_to_slice(digest, out).unwrap_or_else(|_| unreachable!());
  std::str::from_utf8(out).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn timestamps_are_written_as_to_string_writes_them() {
    for n in [0, 7, -7, 10, 1353088179, i64::MAX, i64::MIN, -1] {
      assert_eq!(decimal(n, &mut [0; 20]), n.to_string());
    }
  }

  #[test]
  fn the_query_appended_to_a_url_is_the_signed_query() {
    let input = SigningInput {
      method: "POST",
      path: "/apps/3/events",
      key: "k",
      timestamp: 1353088179,
      body: Some(b"{}"),
      params: &[("z".into(), "1".into())],
    };
    let mut url = String::from("http://h/apps/3/events?");
    push_signed_query(&mut url, &input, b"s");
    assert_eq!(
      url,
      format!("http://h/apps/3/events?{}", signed_query(&input, b"s"))
    );
  }

  fn sig_of(query: &str) -> &str {
    query.rsplit("auth_signature=").next().unwrap()
  }

  #[test]
  fn rest_api_worked_example_from_the_docs() {
    let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    let q = signed_query(
      &SigningInput {
        method: "POST",
        path: "/apps/3/events",
        key: "278d425bdf160c739803",
        timestamp: 1353088179,
        body: Some(body),
        params: &[],
      },
      b"7ad3773142a6692b25b8",
    );
    assert!(q.contains("body_md5=ec365a775a4cd0599faeb73354201b6f"));
    assert_eq!(
      sig_of(&q),
      "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
    );
  }

  #[test]
  fn upstream_test_vector_with_a_get_body() {
    let q = signed_query(
      &SigningInput {
        method: "GET",
        path: "/event",
        key: "f00d",
        timestamp: 1234567890,
        body: Some(b"example body"),
        params: &[],
      },
      b"tofu",
    );
    assert_eq!(
      q,
      "auth_key=f00d&auth_timestamp=1234567890&auth_version=1.0\
       &body_md5=165d5e6d7ca8f73b3853ce45addf42fc\
       &auth_signature=a650196dc427ebe837226f8565ca9232198c6d1b9455eaa72374a9dc0b620e7b"
    );
  }

  #[test]
  fn params_sort_case_sensitively_and_stay_unescaped() {
    let params = vec![
      ("info".to_string(), "a b".to_string()),
      ("Zeta".to_string(), "1".to_string()),
      ("alpha".to_string(), "2".to_string()),
    ];
    let q = signed_query(
      &SigningInput {
        method: "GET",
        path: "/p",
        key: "k",
        timestamp: 7,
        body: None,
        params: &params,
      },
      b"s",
    );
    assert!(q.starts_with(
      "Zeta=1&alpha=2&auth_key=k&auth_timestamp=7&auth_version=1.0&info=a b&auth_signature="
    ));
    let signed = "GET\n/p\nZeta=1&alpha=2&auth_key=k&auth_timestamp=7&auth_version=1.0&info=a b";
    assert_eq!(sig_of(&q), hmac_sha256_hex(b"s", signed.as_bytes()));
  }

  #[test]
  fn keys_sort_by_utf16_units_like_javascript() {
    // U+FF5E sorts after U+1F600 in UTF-8 byte order but before it in UTF-16.
    let params = vec![
      ("\u{1F600}".to_string(), "x".to_string()),
      ("\u{FF5E}".to_string(), "y".to_string()),
    ];
    let q = signed_query(
      &SigningInput {
        method: "GET",
        path: "/",
        key: "k",
        timestamp: 1,
        body: None,
        params: &params,
      },
      b"s",
    );
    assert!(q.contains("auth_version=1.0&\u{1F600}=x&\u{FF5E}=y"), "{q}");
  }

  #[test]
  fn empty_body_gets_no_md5_and_negative_timestamps_are_not_clamped() {
    let q = signed_query(
      &SigningInput {
        method: "POST",
        path: "/",
        key: "k",
        timestamp: 2_147_483_648,
        body: Some(b""),
        params: &[],
      },
      b"s",
    );
    assert!(!q.contains("body_md5"));
    assert!(q.contains("auth_timestamp=2147483648"), "Y2038-safe: {q}");
  }

  #[test]
  fn digests_match_known_values() {
    assert_eq!(md5_hex(b"{}"), "99914b932bd37a50b983c5e7c90ae93b");
    assert_eq!(to_hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
    assert_eq!(
      hex::encode(sha256(b"abc")),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // RFC 4231 test case 2.
    assert_eq!(
      hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
  }

  #[test]
  fn the_keyed_state_cache_follows_the_secret() {
    let fresh = |secret: &[u8], message: &[u8]| {
      let mut mac = HmacSha256::new_from_slice(secret).unwrap();
      mac.update(message);
      hex::encode(mac.finalize().into_bytes())
    };
    for (secret, message) in [
      (&b"tofu"[..], &b"a"[..]),
      (b"tofu", b"b"),
      (b"tof", b"a"),
      (b"", b"a"),
      (b"tofu", b"a"),
    ] {
      assert_eq!(hmac_sha256_hex(secret, message), fresh(secret, message));
    }
    let long = [7u8; 100]; // longer than a block: hashed first
    assert_eq!(hmac_sha256_hex(&long, b"x"), fresh(&long, b"x"));
    assert_eq!(hmac_sha256_hex(&long, b"x"), fresh(&long, b"x"));
  }

  #[test]
  fn verification_is_exact() {
    let sig = hmac_sha256_hex(b"tofu", b"body");
    assert!(verify_hex(b"tofu", b"body", sig.as_bytes()));
    assert!(!verify_hex(b"tofu", b"body", sig.to_uppercase().as_bytes()));
    assert!(!verify_hex(b"tofu", b"body", &sig.as_bytes()[1..]));
    assert!(!verify_hex(b"tofu", b"body", b""));
    assert!(secure_compare(b"", b""));
  }
}
