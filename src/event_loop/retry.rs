//! `retry` on the event loop: the core's policy (`pusher_core::retry`) decides whether
//! and when to try again; the call's `timeout` bounds it all, back-off included (the
//! deadline timer of `start` fails the call when it passes, whatever attempt is under
//! way, and no attempt starts when its back-off would end past the deadline). Each
//! attempt may spend at most ¾ of the time left connecting, as on tokio, so a hung
//! connect is tried again.

use super::exchange::{self, Spec};
use super::timer::Timer;
use super::{Client, Slot};
use pusher_core::error::TransportError;
use pusher_core::http::response::Reply;
use pusher_core::http::limits::RETRY_CONNECT_TIMEOUT;
use pusher_core::retry::{connect_within, Deadline, Outcome, RetryPolicy};
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

/// Sends `spec` until it succeeds, the policy says stop, or the deadline is near; the
/// attempt under way is kept in `slot` for the reply.
pub async fn run(
  client: Rc<Client>,
  spec: Spec,
  policy: RetryPolicy,
  deadline: Deadline,
  slot: Slot,
) -> Result<Reply, TransportError> {
  let idempotent = spec.method.is_idempotent();
  let mut attempt = 1;
  loop {
    let attempt_spec = Spec {
      connect_within: Some(connect_within(RETRY_CONNECT_TIMEOUT, deadline.remaining())),
      ..spec.clone()
    };
    let result = exchange::run(Rc::clone(&client), attempt_spec).await;
    if matches!(&result, Ok(r) if r.status < 400) {
      return result;
    }
    let delay = {
      let outcome = match &result {
        Ok(r) => Outcome::Status {
          status: r.status,
          retry_after: r.retry_after.as_deref(),
        },
        Err(e) => Outcome::Failed(e),
      };
      policy.next_delay_within(attempt, idempotent, &outcome, jitter(), deadline.remaining())
    };
    match delay {
      Some(delay) => Timer::sleep(client.uv, client.loop_.0, delay).await,
      None => return result,
    }
    attempt += 1;
    if let Some(p) = slot.borrow_mut().as_mut() {
      p.attempts = attempt;
    }
  }
}

/// A uniform draw from [0, 1): back-off spread, not a secret (std's per-process random
/// hash keys, never the same twice).
fn jitter() -> f64 {
  let bits = std::collections::hash_map::RandomState::new()
    .build_hasher()
    .finish();
  (bits >> 11) as f64 / (1u64 << 53) as f64
}
