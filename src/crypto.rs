//! Digests, HMAC signatures and end-to-end encryption for the synchronous API.

use napi::bindgen_prelude::{Buffer, Either};
use napi::{Error, Result, Status};
use napi_derive::napi;
use pusher_core::{encryption, signature, webhook};

/// A JS string (as UTF-8) or the bytes of a Buffer.
pub type Bytes = Either<String, Buffer>;

pub fn bytes(value: &Bytes) -> &[u8] {
  match value {
    Either::A(s) => s.as_bytes(),
    Either::B(b) => b,
  }
}

/// Lowercase hex HMAC-SHA256 of `message` under `secret`.
#[napi(catch_unwind)]
pub fn hmac_sha256_hex(secret: Bytes, message: Bytes) -> String {
  signature::hmac_sha256_hex(bytes(&secret), bytes(&message))
}

/// Whether `signature` is the hex HMAC-SHA256 of `message`, compared in constant time.
#[napi(catch_unwind)]
pub fn verify_hmac_sha256_hex(secret: Bytes, message: Bytes, signature: String) -> bool {
  signature::verify_hex(bytes(&secret), bytes(&message), signature.as_bytes())
}

#[napi(catch_unwind)]
pub fn md5_hex(data: Bytes) -> String {
  signature::md5_hex(bytes(&data))
}

/// SHA-256(channel ‖ master key): the channel's `shared_secret`.
#[napi(catch_unwind)]
pub fn channel_shared_secret(channel: String, master_key: Buffer) -> Buffer {
  encryption::shared_secret(&channel, &master_key)
    .to_vec()
    .into()
}

/// Seals `plaintext` for `channel` with a fresh random nonce and returns the event
/// `data` string `{"nonce":…,"ciphertext":…}`.
#[napi(catch_unwind)]
pub fn encrypt_for_channel(
  channel: String,
  master_key: Buffer,
  plaintext: String,
) -> Result<String> {
  let nonce = encryption::random_nonce().map_err(|e| {
    Error::new(
      Status::GenericFailure,
      format!("no OS randomness for the nonce: {e}"),
    )
  })?;
  Ok(encryption::encrypt_with_nonce(
    &channel,
    &master_key,
    plaintext.as_bytes(),
    &nonce,
  ))
}

/// Opens an encrypted event's data; `null` when it is malformed or forged.
#[napi(catch_unwind)]
pub fn decrypt_for_channel(
  channel: String,
  master_key: Buffer,
  nonce: String,
  ciphertext: String,
) -> Option<String> {
  let plain = encryption::decrypt(&channel, &master_key, &nonce, &ciphertext).ok()?;
  String::from_utf8(plain).ok()
}

/// `application/json`, any case, parameters allowed.
#[napi(catch_unwind)]
pub fn is_json_media_type(content_type: String) -> bool {
  webhook::is_json_media_type(&content_type)
}
