//! Webhook checks: signatures over the raw body, media types and freshness.

use crate::signature::verify_hex;

/// A key and secret a webhook may be signed with (the app's own, or an extra one
/// during key rotation).
pub struct WebhookToken<'a> {
  pub key: &'a str,
  pub secret: &'a [u8],
}

/// True when a token whose key equals the `X-Pusher-Key` header signed `body` with
/// `signature` (checked in constant time).
pub fn signed_by_any(tokens: &[WebhookToken], key: &str, signature: &str, body: &[u8]) -> bool {
  tokens
    .iter()
    .any(|t| t.key == key && verify_hex(t.secret, body, signature.as_bytes()))
}

/// `application/json`, case-insensitively, with or without parameters such as
/// `; charset=utf-8`.
pub fn is_json_media_type(content_type: &str) -> bool {
  let media = content_type.split(';').next().unwrap_or("").trim();
  media.eq_ignore_ascii_case("application/json")
}

/// Whether a webhook sent at `time_ms` is within `max_age_ms` of `now_ms`, allowing the
/// same skew into the future.
pub fn is_fresh(time_ms: f64, now_ms: f64, max_age_ms: f64) -> bool {
  time_ms.is_finite() && (now_ms - time_ms).abs() <= max_age_ms
}

#[cfg(test)]
mod tests {
  use super::*;

  const BODY: &str =
    r#"{"time_ms":1403175510755,"events":[{"channel":"test_channel","name":"channel_vacated"}]}"#;
  const SIGNATURE: &str = "c17257e92037cd7de407ebc1ed174ceb7b2e518db127f44411b9ffc4f5b28cc5";

  #[test]
  fn upstream_webhook_vector() {
    let tokens = [WebhookToken {
      key: "123456789",
      secret: b"tofu",
    }];
    assert!(signed_by_any(
      &tokens,
      "123456789",
      SIGNATURE,
      BODY.as_bytes()
    ));
    assert!(!signed_by_any(&tokens, "other", SIGNATURE, BODY.as_bytes()));
    assert!(!signed_by_any(
      &tokens,
      "123456789",
      &SIGNATURE[1..],
      BODY.as_bytes()
    ));
    let rotated = [
      WebhookToken {
        key: "old",
        secret: b"x",
      },
      WebhookToken {
        key: "123456789",
        secret: b"tofu",
      },
    ];
    assert!(signed_by_any(
      &rotated,
      "123456789",
      SIGNATURE,
      BODY.as_bytes()
    ));
  }

  #[test]
  fn media_types() {
    for ok in [
      "application/json",
      "Application/JSON",
      "application/json; charset=utf-8",
      " application/json ;x=y",
    ] {
      assert!(is_json_media_type(ok), "{ok}");
    }
    for bad in ["", "text/plain", "application/jsonx", "application/json+x"] {
      assert!(!is_json_media_type(bad), "{bad}");
    }
  }

  #[test]
  fn freshness() {
    assert!(is_fresh(1000.0, 1500.0, 500.0));
    assert!(!is_fresh(1000.0, 1501.0, 500.0));
    assert!(is_fresh(1400.0, 1000.0, 500.0));
    assert!(!is_fresh(f64::NAN, 1000.0, 500.0));
  }
}
