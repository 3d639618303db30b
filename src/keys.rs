//! Encryption master keys, decoded and length-checked with `pusher`'s messages.

use napi::bindgen_prelude::Buffer;
use napi::{Error, Result, Status};
use napi_derive::napi;
use pusher_core::config;

fn invalid(e: config::MasterKeyError) -> Error {
  Error::new(Status::InvalidArg, e.to_string())
}

/// Decodes `encryptionMasterKeyBase64`; throws the upstream message when it is not
/// padded base64 of exactly 32 bytes.
#[napi(catch_unwind)]
pub fn master_key_from_base64(encoded: String) -> Result<Buffer> {
  config::master_key_from_base64(&encoded)
    .map(|k| k.to_vec().into())
    .map_err(invalid)
}

/// The deprecated raw `encryptionMasterKey`: 32 UTF-16 units, used as its UTF-8 bytes.
#[napi(catch_unwind)]
pub fn master_key_from_raw(raw: String) -> Result<Buffer> {
  config::master_key_from_raw(&raw)
    .map(Into::into)
    .map_err(invalid)
}
