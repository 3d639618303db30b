//! libuv timers measured on the real clock. libuv counts a timer from its cached loop
//! time, which is stale after JS kept the thread busy: a timer started then would fire
//! early. Each timer here keeps its deadline as an `Instant`, and a wake-up before it
//! re-arms for the time that is really left.
//!
//! Ownership: the `Timer` owns its handle (dropping it stops and closes the timer);
//! the close callback frees the handle and its reference to the state.

use super::{callback, no_unwind};
use crate::uv::{self, Block, Handle, Uv};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

struct State {
  uv: &'static Uv,
  deadline: Instant,
  fired: bool,
  waker: Option<Waker>,
  on_fire: Option<Box<dyn FnOnce()>>,
}

pub struct Timer {
  handle: *mut Handle,
  state: Rc<RefCell<State>>,
}

impl Timer {
  /// A future that completes after `after`.
  pub fn sleep(uv: &'static Uv, loop_: *mut uv::Loop, after: Duration) -> Self {
    Self::start(uv, loop_, after, None)
  }

  /// Calls `on_fire` once `after` has passed, unless the timer is dropped first.
  pub fn deadline(
    uv: &'static Uv,
    loop_: *mut uv::Loop,
    after: Duration,
    on_fire: Box<dyn FnOnce()>,
  ) -> Self {
    Self::start(uv, loop_, after, Some(on_fire))
  }

  fn start(
    uv: &'static Uv,
    loop_: *mut uv::Loop,
    after: Duration,
    on_fire: Option<Box<dyn FnOnce()>>,
  ) -> Self {
    let state = Rc::new(RefCell::new(State {
      uv,
      deadline: Instant::now().checked_add(after).unwrap_or_else(far_future),
      fired: false,
      waker: None,
      on_fire,
    }));
    // SAFETY: a block sized by libuv for a timer; its data is a leaked `Rc` of the
    // state, reclaimed in `on_closed`.
    let handle = unsafe {
      let handle = Block::new((uv.handle_size)(uv::UV_TIMER)).into_raw();
      (uv.timer_init)(loop_, handle);
      uv::set_data(handle, Rc::into_raw(Rc::clone(&state)).cast_mut());
      (uv.timer_start)(handle, on_timer, millis_ceil(after), 0);
      handle
    };
    Self { handle, state }
  }

  /// Makes the timer not keep the process alive on its own.
  pub fn unref(&self) {
    // SAFETY: the live handle.
    unsafe { (self.state.borrow().uv.unref)(self.handle) };
  }
}

fn far_future() -> Instant {
  Instant::now() + Duration::from_secs(86_400 * 365)
}

fn millis_ceil(d: Duration) -> u64 {
  let ms = d.as_nanos().div_ceil(1_000_000);
  u64::try_from(ms).unwrap_or(u64::MAX / 2).max(1)
}

/// # Safety
/// Called by libuv with a live timer made in `Timer::start`.
unsafe extern "C" fn on_timer(handle: *mut Handle) {
  // SAFETY: the data set in `start`; the timer is live while its callback runs.
  let raw = uv::data::<RefCell<State>>(handle).cast_const();
  Rc::increment_strong_count(raw);
  let state = Rc::from_raw(raw);
  callback(|| {
    let left = state
      .borrow()
      .deadline
      .saturating_duration_since(Instant::now());
    if !left.is_zero() {
      let uv = state.borrow().uv;
      (uv.timer_start)(handle, on_timer, millis_ceil(left), 0);
      return;
    }
    let (waker, on_fire) = {
      let mut s = state.borrow_mut();
      s.fired = true;
      (s.waker.take(), s.on_fire.take())
    };
    if let Some(waker) = waker {
      waker.wake();
    }
    if let Some(on_fire) = on_fire {
      on_fire();
    }
  });
}

impl Future for Timer {
  type Output = ();

  fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
    let mut s = self.state.borrow_mut();
    if s.fired {
      return Poll::Ready(());
    }
    s.waker = Some(cx.waker().clone());
    Poll::Pending
  }
}

impl Drop for Timer {
  fn drop(&mut self) {
    let uv = self.state.borrow().uv;
    self.state.borrow_mut().on_fire = None;
    // SAFETY: the live handle; `on_closed` frees it.
    unsafe {
      (uv.timer_stop)(self.handle);
      (uv.close)(self.handle, Some(on_closed));
    }
  }
}

/// # Safety
/// Called by libuv once the timer made in `Timer::start` is closed.
unsafe extern "C" fn on_closed(handle: *mut Handle) {
  no_unwind(|| {
    // SAFETY: the data is the `Rc` leaked in `start`; the block is ours.
    let state = Rc::from_raw(uv::data::<RefCell<State>>(handle).cast_const());
    let uv = state.borrow().uv;
    Block::free(handle, (uv.handle_size)(uv::UV_TIMER));
  });
}
