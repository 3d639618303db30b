//! When the loop last polled for I/O. Anything a peer sent before that moment has
//! reached our read callbacks; what came since (while JS kept the thread busy) may
//! still sit unread in the kernel. A `uv_prepare` handle, which libuv runs right before
//! each poll, records the time.

use crate::uv::{self, Block, Handle, Uv};
use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
  static LAST_POLL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Starts recording on `loop_` (once, on the loop's thread). False when libuv refused.
pub fn start(uv: &Uv, loop_: *mut uv::Loop) -> bool {
  // SAFETY: a handle sized by libuv, initialised on the loop's own thread; never
  // closed (it lives as long as the process) and unreferenced, so it never keeps the
  // process alive.
  unsafe {
    let size = (uv.handle_size)(uv::UV_PREPARE);
    let handle = Block::new(size).into_raw();
    // A handle libuv failed to take is leaked, never freed: it may be on the loop's list.
    if (uv.prepare_init)(loop_, handle) != 0 {
      return false;
    }
    if (uv.prepare_start)(handle, before_poll) != 0 {
      return false;
    }
    (uv.unref)(handle);
  }
  true
}

/// # Safety
/// Called by libuv with the prepare handle made in `start`.
unsafe extern "C" fn before_poll(_handle: *mut Handle) {
  LAST_POLL.with(|l| l.set(Some(Instant::now())));
}

/// How long ago the loop last polled for I/O; `None` when unknown (treat as long ago).
pub fn since_last_poll() -> Option<Duration> {
  LAST_POLL.with(Cell::get).map(|t| t.elapsed())
}
