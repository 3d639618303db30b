//! The bytes of each response head as they arrive (decrypted, over TLS): hyper only says
//! that it could not parse a head, and Node's parser names the rule it broke
//! (`HPE_INVALID_HEADER_TOKEN`, …). Given the bytes, the core's
//! [`refused_head`](pusher_core::http::head_verdict::refused_head) names it as llhttp does.
//!
//! One buffer per connection, reused by each of its requests: armed before a request is
//! written, it records what is read until the head is in (or `MAX_HEAD_BYTES`, past which
//! hyper refuses the head anyway), so it never holds more than that.

use pusher_core::http::head_verdict::refused_head;
use pusher_core::http::limits::MAX_HEAD_BYTES;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[derive(Default)]
pub struct HeadCapture {
  armed: Cell<bool>,
  bytes: RefCell<Vec<u8>>,
}

pub type Shared = Rc<HeadCapture>;

impl HeadCapture {
  pub fn shared() -> Shared {
    Rc::default()
  }

  /// A request is about to be written: what is read next is its response.
  pub fn arm(&self) {
    self.bytes.borrow_mut().clear();
    self.armed.set(true);
  }

  /// The head is in (or the exchange is over): nothing more to record.
  pub fn disarm(&self) {
    self.armed.set(false);
  }

  /// Bytes just read from the connection (plaintext).
  #[inline]
  pub fn record(&self, read: &[u8]) {
    if !self.armed.get() || read.is_empty() {
      return;
    }
    let mut bytes = self.bytes.borrow_mut();
    let room = MAX_HEAD_BYTES.saturating_sub(bytes.len());
    bytes.extend_from_slice(&read[..read.len().min(room)]);
    if bytes.len() >= MAX_HEAD_BYTES {
      self.armed.set(false);
    }
  }

  /// Node's code and reason for the head recorded, which hyper refused; `None` when
  /// the bytes do not explain the refusal.
  pub fn verdict(&self) -> Option<(&'static str, &'static str)> {
    refused_head(&self.bytes.borrow())
  }

  #[cfg(test)]
  pub fn recorded(&self) -> Vec<u8> {
    self.bytes.borrow().clone()
  }
}
