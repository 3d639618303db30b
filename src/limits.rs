//! The opt-in `limits` checks (each returns the error message, or null when the
//! request is within the limit), and the defaults of the opt-in extras, owned by the core.

use napi_derive::napi;
use pusher_core::validate::Limits;

/// The `limits: true` defaults (Pusher's multi-tenant cluster limits).
#[napi(object)]
pub struct DefaultLimits {
  pub event_bytes: u32,
  pub batch_size: u32,
  pub channels: u32,
}

#[napi(catch_unwind)]
pub fn default_limits() -> DefaultLimits {
  let d = Limits::default();
  DefaultLimits {
    event_bytes: d.event_bytes as u32,
    batch_size: d.batch_size as u32,
    channels: d.channels as u32,
  }
}

/// The `retry: true` defaults.
#[napi(object)]
pub struct DefaultRetry {
  pub attempts: u32,
  pub min_delay_ms: f64,
  pub max_delay_ms: f64,
  pub max_attempts: u32,
}

#[napi(catch_unwind)]
pub fn default_retry() -> DefaultRetry {
  let d = pusher_core::retry::RetryPolicy::default();
  DefaultRetry {
    attempts: d.attempts,
    min_delay_ms: d.min_delay.as_secs_f64() * 1000.0,
    max_delay_ms: d.max_delay.as_secs_f64() * 1000.0,
    max_attempts: pusher_core::retry::MAX_ATTEMPTS,
  }
}

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
