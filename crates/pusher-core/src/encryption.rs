//! End-to-end encryption for `private-encrypted-` channels: NaCl secretbox
//! (XSalsa20-Poly1305) under SHA-256(channel name ‖ master key).

use crate::signature::sha256;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};

pub const NONCE_LEN: usize = 24;
const ENCRYPTED_PREFIX: &str = "private-encrypted-";

pub fn is_encrypted_channel(channel: &str) -> bool {
  channel.starts_with(ENCRYPTED_PREFIX)
}

/// The per-channel key that clients receive as `shared_secret`.
pub fn shared_secret(channel: &str, master_key: &[u8]) -> [u8; 32] {
  let mut input = Vec::with_capacity(channel.len() + master_key.len());
  input.extend_from_slice(channel.as_bytes());
  input.extend_from_slice(master_key);
  sha256(&input)
}

pub fn random_nonce() -> Result<[u8; NONCE_LEN], getrandom::Error> {
  let mut nonce = [0u8; NONCE_LEN];
  getrandom::fill(&mut nonce)?;
  Ok(nonce)
}

/// Seals `plaintext` and returns the event `data` string
/// `{"nonce":"<base64>","ciphertext":"<base64>"}`.
pub fn encrypt_with_nonce(
  channel: &str,
  master_key: &[u8],
  plaintext: &[u8],
  nonce: &[u8; NONCE_LEN],
) -> String {
  let cipher = XSalsa20Poly1305::new(&shared_secret(channel, master_key).into());
  // Encryption with a fixed-size key and nonce has no failure case for in-memory input.
  let ciphertext = cipher
    .encrypt(Nonce::from_slice(nonce), plaintext)
    .unwrap_or_default();
  format!(
    r#"{{"nonce":"{}","ciphertext":"{}"}}"#,
    STANDARD.encode(nonce),
    STANDARD.encode(ciphertext)
  )
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecryptError {
  Malformed,
  Forged,
}

/// Opens a sealed payload given its base64 nonce and ciphertext.
pub fn decrypt(
  channel: &str,
  master_key: &[u8],
  nonce_b64: &str,
  ciphertext_b64: &str,
) -> Result<Vec<u8>, DecryptError> {
  let nonce = STANDARD
    .decode(nonce_b64)
    .map_err(|_| DecryptError::Malformed)?;
  let ciphertext = STANDARD
    .decode(ciphertext_b64)
    .map_err(|_| DecryptError::Malformed)?;
  if nonce.len() != NONCE_LEN {
    return Err(DecryptError::Malformed);
  }
  let cipher = XSalsa20Poly1305::new(&shared_secret(channel, master_key).into());
  cipher
    .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
    .map_err(|_| DecryptError::Forged)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn key() -> Vec<u8> {
    STANDARD
      .decode("zyrm8pvV2C9fJcBfhyXzvxbJVN/H7QLmbe0xJi1GhPU=")
      .unwrap()
  }

  #[test]
  fn shared_secret_matches_upstream_vector() {
    let secret = shared_secret("private-encrypted-bla", &key());
    assert_eq!(
      STANDARD.encode(secret),
      "nlr49ISQHz91yS3cy/yWmW8wFMNeTnNL5tNHnbPJcLQ="
    );
  }

  #[test]
  fn round_trip_and_tamper_detection() {
    let nonce = random_nonce().unwrap();
    let data = encrypt_with_nonce("private-encrypted-x", &key(), br#"{"a":1}"#, &nonce);
    let nonce_b64 = STANDARD.encode(nonce);
    assert!(data.starts_with(&format!(r#"{{"nonce":"{nonce_b64}","ciphertext":""#)));
    let ct = data
      .split(r#""ciphertext":""#)
      .nth(1)
      .unwrap()
      .trim_end_matches("\"}");
    assert_eq!(
      decrypt("private-encrypted-x", &key(), &nonce_b64, ct).unwrap(),
      br#"{"a":1}"#
    );
    assert_eq!(
      decrypt("private-encrypted-y", &key(), &nonce_b64, ct),
      Err(DecryptError::Forged)
    );
    assert_eq!(
      decrypt("private-encrypted-x", &key(), "AAAA", ct),
      Err(DecryptError::Malformed)
    );
  }

  #[test]
  fn known_answer_with_fixed_nonce() {
    // secretbox("hello", zero nonce, key=SHA-256("private-encrypted-bla" ‖ key)) is
    // 16 bytes of tag plus 5 bytes of ciphertext.
    let data = encrypt_with_nonce("private-encrypted-bla", &key(), b"hello", &[0; 24]);
    let ct = data
      .split(r#""ciphertext":""#)
      .nth(1)
      .unwrap()
      .trim_end_matches("\"}");
    assert_eq!(STANDARD.decode(ct).unwrap().len(), 21);
    assert_ne!(random_nonce().unwrap(), random_nonce().unwrap());
  }

  #[test]
  fn channel_prefix() {
    assert!(is_encrypted_channel("private-encrypted-a"));
    assert!(!is_encrypted_channel("private-a"));
  }
}
