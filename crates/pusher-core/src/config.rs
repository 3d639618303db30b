//! Encryption master keys as `pusher` 5.3.4 accepts them, with its exact messages.
//! Messages state lengths only: a key never appears in an error.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;

pub const MASTER_KEY_LEN: usize = 32;
pub type MasterKey = [u8; MASTER_KEY_LEN];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeyError {
  InvalidBase64,
  Base64WrongLength(usize),
  RawWrongLength(usize),
}

impl fmt::Display for MasterKeyError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      Self::InvalidBase64 => f.write_str("encryptionMasterKeyBase64 must be valid base64"),
      Self::Base64WrongLength(n) => write!(
        f,
        "encryptionMasterKeyBase64 must decode to 32 bytes, but the provided key decodes to {n} bytes"
      ),
      Self::RawWrongLength(n) => write!(
        f,
        "encryptionMasterKey must be 32 bytes long, but the provided key is {n} bytes long"
      ),
    }
  }
}

impl std::error::Error for MasterKeyError {}

/// `is-base64` v1 with its defaults: the standard alphabet, padding required, and the
/// empty string allowed.
fn is_padded_base64(s: &str) -> bool {
  let b = s.as_bytes();
  if !b.len().is_multiple_of(4) {
    return false;
  }
  let alphabet = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
  let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
  pad <= 2 && b[..b.len() - pad].iter().all(|&c| alphabet(c))
}

/// Decodes `encryptionMasterKeyBase64`.
pub fn master_key_from_base64(encoded: &str) -> Result<MasterKey, MasterKeyError> {
  if !is_padded_base64(encoded) {
    return Err(MasterKeyError::InvalidBase64);
  }
  let decoded = STANDARD
    .decode(encoded)
    .map_err(|_| MasterKeyError::InvalidBase64)?;
  decoded
    .as_slice()
    .try_into()
    .map_err(|_| MasterKeyError::Base64WrongLength(decoded.len()))
}

/// The deprecated raw `encryptionMasterKey`: its length is counted in UTF-16 units, as
/// JS `string.length` does, and its bytes are its UTF-8 encoding (so 32 × "é" gives 64
/// bytes, exactly as upstream).
pub fn master_key_from_raw(raw: &str) -> Result<Vec<u8>, MasterKeyError> {
  let units = raw.encode_utf16().count();
  if units != MASTER_KEY_LEN {
    return Err(MasterKeyError::RawWrongLength(units));
  }
  Ok(raw.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn base64_keys() {
    let cases: &[(&str, Result<usize, MasterKeyError>)] = &[
      ("zyrm8pvV2C9fJcBfhyXzvxbJVN/H7QLmbe0xJi1GhPU=", Ok(32)),
      ("", Err(MasterKeyError::Base64WrongLength(0))),
      ("AAAA", Err(MasterKeyError::Base64WrongLength(3))),
      (
        "zyrm8pvV2C9fJcBfhyXzvxbJVN_H7QLmbe0xJi1GhPU=",
        Err(MasterKeyError::InvalidBase64),
      ),
      (
        "zyrm8pvV2C9fJcBfhyXzvxbJVN/H7QLmbe0xJi1GhPU",
        Err(MasterKeyError::InvalidBase64),
      ),
      ("A===", Err(MasterKeyError::InvalidBase64)),
      ("not base64!", Err(MasterKeyError::InvalidBase64)),
    ];
    for (input, want) in cases {
      assert_eq!(
        master_key_from_base64(input).map(|k| k.len()),
        *want,
        "{input:?}"
      );
    }
  }

  #[test]
  fn raw_keys_count_utf16_units() {
    assert_eq!(master_key_from_raw(&"a".repeat(32)).unwrap().len(), 32);
    assert_eq!(master_key_from_raw(&"é".repeat(32)).unwrap().len(), 64);
    assert_eq!(
      master_key_from_raw("short"),
      Err(MasterKeyError::RawWrongLength(5))
    );
    assert_eq!(master_key_from_raw(&"😀".repeat(16)).unwrap().len(), 64);
  }

  #[test]
  fn messages_never_echo_the_key() {
    let msg = master_key_from_raw("secret-key").unwrap_err().to_string();
    assert_eq!(
      msg,
      "encryptionMasterKey must be 32 bytes long, but the provided key is 10 bytes long"
    );
    let msg = master_key_from_base64("c2VjcmV0").unwrap_err().to_string();
    assert_eq!(
      msg,
      "encryptionMasterKeyBase64 must decode to 32 bytes, but the provided key decodes to 6 bytes"
    );
  }
}
