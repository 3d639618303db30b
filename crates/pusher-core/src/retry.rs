//! Opt-in retries that never risk delivering an event twice.
//!
//! The Channels API has no idempotency key, so a POST is retried only when the
//! failure provably happened before any request byte left (connect, DNS, TLS
//! handshake), or when the server said 429/503 with `Retry-After`. GETs are retried on
//! any network failure, 429 and 5xx.

use crate::error::{FailureKind, TransportError};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
  /// Total attempts, including the first.
  pub attempts: u32,
  pub min_delay: Duration,
  pub max_delay: Duration,
}

/// What one attempt produced, as far as retrying is concerned.
pub enum Outcome<'a> {
  Status { status: u16, retry_after: Option<&'a str> },
  Failed(&'a TransportError),
}

/// The longest `Retry-After` honoured; longer waits give the answer back instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl RetryPolicy {
  /// The delay before the next attempt, or `None` to stop. `attempt` counts from 1;
  /// `jitter` is a uniform draw from [0, 1).
  pub fn next_delay(&self, attempt: u32, idempotent: bool, outcome: &Outcome, jitter: f64) -> Option<Duration> {
    if attempt >= self.attempts {
      return None;
    }
    let retry_after = match outcome {
      Outcome::Failed(e) => {
        let safe = e.before_send || (idempotent && matches!(e.kind, FailureKind::Network | FailureKind::Timeout));
        if !safe || matches!(e.kind, FailureKind::Config | FailureKind::InvalidUrl | FailureKind::Redirect) {
          return None;
        }
        None
      }
      Outcome::Status { status, retry_after } => {
        let retry_after = retry_after.and_then(parse_retry_after);
        let allowed = if idempotent {
          *status == 429 || (500..600).contains(status)
        } else {
          matches!(status, 429 | 503) && retry_after.is_some()
        };
        if !allowed {
          return None;
        }
        retry_after
      }
    };
    if let Some(wait) = retry_after {
      return (wait <= MAX_RETRY_AFTER).then_some(wait);
    }
    let exp = self.min_delay.saturating_mul(1u32 << (attempt - 1).min(16));
    let capped = exp.min(self.max_delay);
    // "Equal jitter": half fixed, half random, so delays never collapse to zero.
    Some(capped.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0))
  }
}

/// `Retry-After` in delta-seconds (the HTTP-date form is not used by Pusher).
fn parse_retry_after(value: &str) -> Option<Duration> {
  value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn policy() -> RetryPolicy {
    RetryPolicy { attempts: 4, min_delay: Duration::from_millis(100), max_delay: Duration::from_millis(250) }
  }

  fn failure(kind: FailureKind, before_send: bool) -> TransportError {
    TransportError { kind, code: "X", message: String::new(), before_send }
  }

  #[test]
  fn post_retries_only_before_bytes_leave() {
    let p = policy();
    let refused = failure(FailureKind::Network, true);
    let reset = failure(FailureKind::Network, false);
    let timeout = failure(FailureKind::Timeout, false);
    assert!(p.next_delay(1, false, &Outcome::Failed(&refused), 0.0).is_some());
    assert!(p.next_delay(1, false, &Outcome::Failed(&reset), 0.0).is_none());
    assert!(p.next_delay(1, false, &Outcome::Failed(&timeout), 0.0).is_none());
    assert!(p.next_delay(1, true, &Outcome::Failed(&reset), 0.0).is_some());
    assert!(p.next_delay(1, true, &Outcome::Failed(&timeout), 0.0).is_some());
  }

  #[test]
  fn statuses() {
    let p = policy();
    let s = |status, retry_after| Outcome::Status { status, retry_after };
    assert!(p.next_delay(1, true, &s(500, None), 0.0).is_some());
    assert!(p.next_delay(1, true, &s(429, None), 0.0).is_some());
    assert!(p.next_delay(1, true, &s(404, None), 0.0).is_none());
    assert!(p.next_delay(1, false, &s(500, None), 0.0).is_none());
    assert!(p.next_delay(1, false, &s(503, None), 0.0).is_none());
    assert_eq!(p.next_delay(1, false, &s(503, Some("2")), 0.0), Some(Duration::from_secs(2)));
    assert_eq!(p.next_delay(1, false, &s(429, Some("0")), 0.0), Some(Duration::ZERO));
    assert!(p.next_delay(1, false, &s(429, Some("3600")), 0.0).is_none());
  }

  #[test]
  fn backoff_is_exponential_capped_and_jittered() {
    let p = policy();
    let e = failure(FailureKind::Network, true);
    let d = |attempt, jitter| p.next_delay(attempt, false, &Outcome::Failed(&e), jitter).unwrap();
    assert_eq!(d(1, 0.0), Duration::from_millis(50));
    assert_eq!(d(1, 1.0), Duration::from_millis(100));
    assert_eq!(d(2, 1.0), Duration::from_millis(200));
    assert_eq!(d(3, 1.0), Duration::from_millis(250));
    assert!(p.next_delay(4, false, &Outcome::Failed(&e), 0.0).is_none());
  }
}
