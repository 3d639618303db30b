//! The `ca` option, checked when a `Pusher` is constructed rather than at its first
//! request.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

/// Why `pem` cannot serve as the `ca` option (no certificate, a broken PEM block, a
/// certificate that cannot be read), or null when every certificate in it can.
#[napi(catch_unwind)]
pub fn ca_error(pem: Buffer) -> Option<String> {
  pusher_core::tls::parse_ca(&pem).err().map(|e| e.message)
}
