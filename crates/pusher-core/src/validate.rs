//! Channels API limits, checked before the wire when the `limits` option asks for it.
//! Names and ids are validated in JS, where `pusher`'s messages are built from
//! `String(value)` of whatever the caller passed.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
  /// Bytes of an event's final `data` (after encryption). Multi-tenant clusters: 10240.
  pub event_bytes: usize,
  /// Events in one `/batch_events` call. Multi-tenant clusters: 10.
  pub batch_size: usize,
  /// Channels in one `/events` call: 100.
  pub channels: usize,
}

impl Default for Limits {
  fn default() -> Self {
    Self {
      event_bytes: 10240,
      batch_size: 10,
      channels: 100,
    }
  }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
  EventTooLarge {
    event: String,
    bytes: usize,
    limit: usize,
  },
  BatchTooLong {
    size: usize,
    limit: usize,
  },
  TooManyChannels {
    count: usize,
    limit: usize,
  },
}

impl fmt::Display for LimitError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      Self::EventTooLarge {
        event,
        bytes,
        limit,
      } => write!(
        f,
        "Event '{event}' has {bytes} bytes of data, over the limit of {limit} bytes"
      ),
      Self::BatchTooLong { size, limit } => {
        write!(
          f,
          "Batch of {size} events is over the limit of {limit} events per request"
        )
      }
      Self::TooManyChannels { count, limit } => {
        write!(
          f,
          "Trigger to {count} channels is over the limit of {limit} channels per request"
        )
      }
    }
  }
}

impl std::error::Error for LimitError {}

impl Limits {
  pub fn check_event(&self, event: &str, data: &str) -> Result<(), LimitError> {
    if data.len() > self.event_bytes {
      return Err(LimitError::EventTooLarge {
        event: event.into(),
        bytes: data.len(),
        limit: self.event_bytes,
      });
    }
    Ok(())
  }

  pub fn check_batch(&self, size: usize) -> Result<(), LimitError> {
    if size > self.batch_size {
      return Err(LimitError::BatchTooLong {
        size,
        limit: self.batch_size,
      });
    }
    Ok(())
  }

  pub fn check_channels(&self, count: usize) -> Result<(), LimitError> {
    if count > self.channels {
      return Err(LimitError::TooManyChannels {
        count,
        limit: self.channels,
      });
    }
    Ok(())
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn limits_table() {
    let l = Limits::default();
    assert!(l.check_event("e", &"x".repeat(10240)).is_ok());
    assert_eq!(
      l.check_event("e", &"x".repeat(10241))
        .unwrap_err()
        .to_string(),
      "Event 'e' has 10241 bytes of data, over the limit of 10240 bytes"
    );
    // Bytes, not characters: 4000 × "é" is 8000 bytes.
    assert!(l.check_event("e", &"é".repeat(4000)).is_ok());
    assert!(l.check_event("e", &"é".repeat(6000)).is_err());
    assert!(l.check_batch(10).is_ok());
    assert!(l.check_batch(11).is_err());
    assert!(l.check_channels(100).is_ok());
    assert_eq!(
      l.check_channels(101).unwrap_err().to_string(),
      "Trigger to 101 channels is over the limit of 100 channels per request"
    );
  }
}
