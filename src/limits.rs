//! The opt-in `limits` checks: each returns the error message, or null when the
//! request is within the limit.

use napi_derive::napi;
use pusher_core::validate::Limits;

fn limits(event_bytes: u32, batch_size: u32, channels: u32) -> Limits {
  Limits {
    event_bytes: event_bytes as usize,
    batch_size: batch_size as usize,
    channels: channels as usize,
  }
}

/// Checks an event's final `data` (after encryption) against `limit` bytes.
#[napi(catch_unwind)]
pub fn event_size_error(event: String, data: String, limit: u32) -> Option<String> {
  limits(limit, 0, 0)
    .check_event(&event, &data)
    .err()
    .map(|e| e.to_string())
}

#[napi(catch_unwind)]
pub fn batch_size_error(size: u32, limit: u32) -> Option<String> {
  limits(0, limit, 0)
    .check_batch(size as usize)
    .err()
    .map(|e| e.to_string())
}

#[napi(catch_unwind)]
pub fn channel_count_error(count: u32, limit: u32) -> Option<String> {
  limits(0, 0, limit)
    .check_channels(count as usize)
    .err()
    .map(|e| e.to_string())
}
