//! Webhook media types. The other webhook rules (which key signed, freshness) live in
//! `lib/webhook.js`, over `signature::verify_hex`.

/// `application/json`, case-insensitively, with or without parameters such as
/// `; charset=utf-8`.
pub fn is_json_media_type(content_type: &str) -> bool {
  let media = content_type.split(';').next().unwrap_or("").trim();
  media.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::signature::verify_hex;

  const BODY: &str =
    r#"{"time_ms":1403175510755,"events":[{"channel":"test_channel","name":"channel_vacated"}]}"#;
  const SIGNATURE: &str = "c17257e92037cd7de407ebc1ed174ceb7b2e518db127f44411b9ffc4f5b28cc5";

  #[test]
  fn upstream_webhook_vector() {
    assert!(verify_hex(b"tofu", BODY.as_bytes(), SIGNATURE.as_bytes()));
    assert!(!verify_hex(
      b"tofu",
      BODY.as_bytes(),
      SIGNATURE[1..].as_bytes()
    ));
    assert!(!verify_hex(b"tofv", BODY.as_bytes(), SIGNATURE.as_bytes()));
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
}
