//! Opt-in retries that never risk delivering an event twice.
//!
//! The Channels API has no idempotency key, so a POST is retried only when the
//! failure provably happened before any request byte left (refused, DNS, a reset
//! during the TLS handshake, a connect timeout), or when the server said 429/503 with
//! `Retry-After`. GETs are retried on any network failure or timeout, 429 and 5xx.
//! Certificate and TLS protocol failures are never retried: they do not heal.

use crate::error::{FailureKind, TransportError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
  /// Total attempts, including the first.
  pub attempts: u32,
  pub min_delay: Duration,
  /// The longest wait between two attempts, `Retry-After` included: a server asking
  /// for a longer wait gets its answer handed back to the caller instead.
  pub max_delay: Duration,
}

impl Default for RetryPolicy {
  /// `retry: true`: three attempts, backoff from 100 ms up to 5 s.
  fn default() -> Self {
    Self {
      attempts: 3,
      min_delay: Duration::from_millis(100),
      max_delay: Duration::from_secs(5),
    }
  }
}

/// The most attempts a caller may ask for.
pub const MAX_ATTEMPTS: u32 = 100;

/// What one attempt produced, as far as retrying is concerned.
pub enum Outcome<'a> {
  Status {
    status: u16,
    retry_after: Option<&'a str>,
  },
  Failed(&'a TransportError),
}

/// Whether another attempt is both safe (it cannot deliver an event twice) and worth
/// making, whatever the attempts left. `idempotent` is true for GET. This is the
/// `retryable` flag of a `RequestError`.
pub fn is_retryable(idempotent: bool, outcome: &Outcome) -> bool {
  match outcome {
    Outcome::Failed(e) => match e.kind {
      FailureKind::Network | FailureKind::Timeout => idempotent || e.before_send,
      FailureKind::Tls
      | FailureKind::InvalidUrl
      | FailureKind::Redirect
      | FailureKind::Config
      | FailureKind::MaxSize => false,
    },
    Outcome::Status {
      status,
      retry_after,
    } => {
      if idempotent {
        *status == 429 || (500..600).contains(status)
      } else {
        // A 429/503 with Retry-After says the request was refused, not processed.
        matches!(status, 429 | 503) && retry_after.and_then(parse_retry_after).is_some()
      }
    }
  }
}

impl RetryPolicy {
  /// The delay before the next attempt, or `None` to stop. `attempt` counts from 1;
  /// `jitter` is a uniform draw from [0, 1).
  pub fn next_delay(
    &self,
    attempt: u32,
    idempotent: bool,
    outcome: &Outcome,
    jitter: f64,
  ) -> Option<Duration> {
    if attempt >= self.attempts || !is_retryable(idempotent, outcome) {
      return None;
    }
    let exp = self.min_delay.saturating_mul(1u32 << (attempt - 1).min(16));
    let capped = exp.min(self.max_delay);
    // "Equal jitter": half fixed, half random, so delays never collapse to zero.
    let backoff = capped.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0);
    let retry_after = match outcome {
      Outcome::Status { retry_after, .. } => retry_after.and_then(parse_retry_after),
      Outcome::Failed(_) => None,
    };
    match retry_after {
      // Never sooner than the server asked, never longer than the caller allows.
      Some(wait) if wait > self.max_delay => None,
      Some(wait) => Some(wait.max(backoff)),
      None => Some(backoff),
    }
  }
}

/// A whole call's deadline (`timeout`), retries and back-off included.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<Instant>);

impl Deadline {
  /// `timeout` from now; none without one.
  pub fn after(timeout: Option<Duration>) -> Self {
    Self(timeout.and_then(|t| Instant::now().checked_add(t)))
  }

  /// The time left (zero once passed); `None` without a deadline.
  pub fn remaining(&self) -> Option<Duration> {
    self
      .0
      .map(|at| at.saturating_duration_since(Instant::now()))
  }
}

/// With retries on, the most one attempt's connecting (DNS, TCP, TLS) may take: ¾ of
/// the call's time left (`remaining`), at most `bound`, so that a hung connect fails
/// before any byte left and can be tried again within the deadline.
pub fn connect_within(bound: Duration, remaining: Option<Duration>) -> Duration {
  remaining.map_or(bound, |left| bound.min(left.mul_f64(0.75)))
}

impl RetryPolicy {
  /// [`next_delay`](Self::next_delay), but only when the next attempt can start before
  /// the call's deadline (`remaining`: the time left, `None` without one). Otherwise the
  /// last outcome stands: the call settles by its deadline, back-off included.
  pub fn next_delay_within(
    &self,
    attempt: u32,
    idempotent: bool,
    outcome: &Outcome,
    jitter: f64,
    remaining: Option<Duration>,
  ) -> Option<Duration> {
    let delay = self.next_delay(attempt, idempotent, outcome, jitter)?;
    match remaining {
      Some(left) if delay >= left => None,
      _ => Some(delay),
    }
  }
}

/// `Retry-After`: delta-seconds, or an HTTP-date (IMF-fixdate) counted from now.
fn parse_retry_after(value: &str) -> Option<Duration> {
  let now = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .ok()?;
  retry_after_at(value, now.as_secs())
}

/// `Retry-After` as a wait from `now` (Unix seconds); a date in the past is no wait.
fn retry_after_at(value: &str, now: u64) -> Option<Duration> {
  let value = value.trim();
  if let Ok(seconds) = value.parse::<u64>() {
    return Some(Duration::from_secs(seconds));
  }
  let at = imf_fixdate(value)?;
  Some(Duration::from_secs(at.saturating_sub(now)))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as Unix seconds.
fn imf_fixdate(value: &str) -> Option<u64> {
  const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
  ];
  let parts: Vec<&str> = value.split_ascii_whitespace().collect();
  let [weekday, day, month, year, time, "GMT"] = parts[..] else {
    return None;
  };
  if !weekday.ends_with(',') {
    return None;
  }
  let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
  let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
  let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
  let mut hms = time.split(':').map(|n| n.parse::<u64>().ok());
  let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
  if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
    return None;
  }
  let days = days_from_civil(year, month, day);
  u64::try_from(days)
    .ok()
    .map(|d| d * 86400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
  let y = if month <= 2 { year - 1 } else { year };
  let era = y.div_euclid(400);
  let yoe = y - era * 400;
  let mp = i64::from((month + 9) % 12);
  let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
  let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn retry_after_seconds_and_http_dates() {
    let t = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
    let cases = [
      ("120", Some(120)),
      (" 0 ", Some(0)),
      ("Sun, 06 Nov 1994 08:49:37 GMT", Some(30)),
      ("Sun, 06 Nov 1994 08:48:37 GMT", Some(0)), // in the past
      (
        "Mon, 01 Jan 2024 00:00:00 GMT",
        Some(1_704_067_200 - (t - 30)),
      ),
      (
        "Tue, 29 Feb 2028 12:00:00 GMT",
        Some(1_835_438_400 - (t - 30)),
      ),
      ("Sunday, 06-Nov-94 08:49:37 GMT", None), // RFC 850: not accepted
      ("Sun, 06 Nov 1994 08:49:37 UTC", None),
      ("Sun, 32 Nov 1994 08:49:37 GMT", None),
      ("soon", None),
      ("-1", None),
    ];
    for (value, expected) in cases {
      assert_eq!(
        retry_after_at(value, t - 30),
        expected.map(Duration::from_secs),
        "{value}"
      );
    }
  }

  fn policy() -> RetryPolicy {
    RetryPolicy {
      attempts: 4,
      min_delay: Duration::from_millis(100),
      max_delay: Duration::from_millis(250),
    }
  }

  fn failure(kind: FailureKind, before_send: bool) -> TransportError {
    TransportError {
      kind,
      code: "X",
      message: String::new(),
      before_send,
    }
  }

  #[test]
  fn post_retries_only_before_bytes_leave() {
    let p = policy();
    let refused = failure(FailureKind::Network, true);
    let reset = failure(FailureKind::Network, false);
    let timeout = failure(FailureKind::Timeout, false);
    let connect_timeout = failure(FailureKind::Timeout, true);
    // (idempotent, failure, retried)
    let cases = [
      (false, &refused, true),
      (false, &reset, false),
      (false, &timeout, false),
      (false, &connect_timeout, true),
      (true, &reset, true),
      (true, &timeout, true),
    ];
    for (idempotent, failure, retried) in cases {
      let delay = p.next_delay(1, idempotent, &Outcome::Failed(failure), 0.0);
      assert_eq!(
        delay.is_some(),
        retried,
        "{failure:?}, idempotent: {idempotent}"
      );
    }
  }

  #[test]
  fn permanent_failures_are_never_retried() {
    let p = policy();
    for kind in [
      FailureKind::Tls,
      FailureKind::InvalidUrl,
      FailureKind::Redirect,
      FailureKind::Config,
      FailureKind::MaxSize,
    ] {
      for idempotent in [false, true] {
        let e = failure(kind, true);
        assert!(!is_retryable(idempotent, &Outcome::Failed(&e)), "{kind:?}");
        assert!(
          p.next_delay(1, idempotent, &Outcome::Failed(&e), 0.0)
            .is_none(),
          "{kind:?}"
        );
      }
    }
  }

  #[test]
  fn statuses() {
    let p = policy();
    let s = |status, retry_after| Outcome::Status {
      status,
      retry_after,
    };
    assert!(p.next_delay(1, true, &s(500, None), 0.0).is_some());
    assert!(p.next_delay(1, true, &s(429, None), 0.0).is_some());
    assert!(p.next_delay(1, true, &s(404, None), 0.0).is_none());
    assert!(p.next_delay(1, false, &s(500, None), 0.0).is_none());
    assert!(p.next_delay(1, false, &s(503, None), 0.0).is_none());
    assert!(p.next_delay(1, false, &s(503, Some("soon")), 0.0).is_none());
    assert!(p.next_delay(1, false, &s(500, Some("0")), 0.0).is_none());
    // Retry-After 0: no sooner than the backoff.
    assert_eq!(
      p.next_delay(1, false, &s(429, Some("0")), 0.0),
      Some(Duration::from_millis(50))
    );
    assert_eq!(
      p.next_delay(1, false, &s(503, Some(" 0 ")), 1.0),
      Some(Duration::from_millis(100))
    );
  }

  #[test]
  fn retry_after_is_honoured_up_to_max_delay() {
    let p = RetryPolicy {
      attempts: 3,
      min_delay: Duration::from_millis(10),
      max_delay: Duration::from_secs(5),
    };
    let s = |status, retry_after| Outcome::Status {
      status,
      retry_after,
    };
    assert_eq!(
      p.next_delay(1, false, &s(503, Some("2")), 0.0),
      Some(Duration::from_secs(2))
    );
    assert_eq!(
      p.next_delay(1, true, &s(500, Some("1")), 0.5),
      Some(Duration::from_secs(1))
    );
    assert_eq!(
      p.next_delay(1, true, &s(429, Some("5")), 0.0),
      Some(Duration::from_secs(5))
    );
    // Longer than allowed: stop, though the failure stays retryable for the caller.
    assert!(p.next_delay(1, false, &s(429, Some("6")), 0.0).is_none());
    assert!(is_retryable(false, &s(429, Some("6"))));
    assert!(p.next_delay(1, true, &s(503, Some("3600")), 0.0).is_none());
  }

  #[test]
  fn no_attempt_starts_past_the_deadline() {
    let p = policy();
    let e = failure(FailureKind::Network, true);
    let failed = Outcome::Failed(&e);
    let next = |left: Option<u64>| {
      p.next_delay_within(1, false, &failed, 1.0, left.map(Duration::from_millis))
    };
    assert_eq!(next(None), Some(Duration::from_millis(100)));
    assert_eq!(next(Some(101)), Some(Duration::from_millis(100)));
    assert_eq!(next(Some(100)), None);
    assert_eq!(next(Some(0)), None);
    // A Retry-After the deadline cannot wait out: the 503 is the answer now.
    let long = RetryPolicy {
      max_delay: Duration::from_secs(5),
      ..p
    };
    let busy = Outcome::Status {
      status: 503,
      retry_after: Some("1"),
    };
    let left = Some(Duration::from_millis(300));
    assert_eq!(long.next_delay_within(1, false, &busy, 0.0, left), None);
    assert!(Deadline::after(None).remaining().is_none());
    let d = Deadline::after(Some(Duration::from_secs(60)));
    assert!(d.remaining().unwrap() > Duration::from_secs(59));
  }

  #[test]
  fn backoff_is_exponential_capped_and_jittered() {
    let p = policy();
    let e = failure(FailureKind::Network, true);
    let d = |attempt, jitter| {
      p.next_delay(attempt, false, &Outcome::Failed(&e), jitter)
        .unwrap()
    };
    assert_eq!(d(1, 0.0), Duration::from_millis(50));
    assert_eq!(d(1, 1.0), Duration::from_millis(100));
    assert_eq!(d(2, 1.0), Duration::from_millis(200));
    assert_eq!(d(3, 1.0), Duration::from_millis(250));
    assert!(p.next_delay(4, false, &Outcome::Failed(&e), 0.0).is_none());
    let zero = RetryPolicy {
      attempts: 2,
      min_delay: Duration::ZERO,
      max_delay: Duration::ZERO,
    };
    assert_eq!(
      zero.next_delay(1, false, &Outcome::Failed(&e), 0.7),
      Some(Duration::ZERO)
    );
  }
}
