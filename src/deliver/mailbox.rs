//! Replies from tokio's threads: a mailbox drained on the JS thread by a threadsafe
//! function, in batches.

use super::{deliver, RequestContext};
use crate::reply::Reply;
use napi::sys;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// Replies finished on tokio's threads, waiting for the JS thread. Shared by the
/// client, every request in flight and the threadsafe function, so no reply is lost
/// when the client is collected first; when the env goes away (a worker terminated),
/// the function is finalized and later replies are dropped.
pub struct Mailbox {
  /// One lock for everything, so that the client going (`orphan`, any thread) and the
  /// last reply coming in (`drain`, the JS thread) cannot miss each other.
  state: Mutex<MailboxState>,
  on_reply: usize,
}

struct MailboxState {
  replies: Vec<(usize, Reply)>,
  /// The threadsafe function, until it is released or finalized.
  tsfn: Option<usize>,
  inflight: Inflight,
}

/// Requests started and not yet delivered, and whether the client is gone: what
/// decides when the threadsafe function keeps the process up and when it is released.
#[derive(Debug, Default)]
struct Inflight {
  count: u64,
  orphaned: bool,
}

/// What the threadsafe function needs after a change of [`Inflight`].
#[derive(Debug, PartialEq, Eq)]
enum Next {
  Nothing,
  /// Keep the process up: a request is in flight.
  Ref,
  /// Let the process exit: nothing is in flight.
  Unref,
  /// Nothing is in flight and the client is gone: release the function.
  Release,
}

impl Inflight {
  fn started(&mut self) -> Next {
    self.count += 1;
    if self.count == 1 {
      Next::Ref
    } else {
      Next::Nothing
    }
  }

  fn delivered(&mut self, n: u64) -> Next {
    if n == 0 {
      return Next::Nothing;
    }
    self.count = self.count.saturating_sub(n);
    self.idle()
  }

  fn orphan(&mut self) -> Next {
    self.orphaned = true;
    self.idle()
  }

  fn idle(&self) -> Next {
    match (self.count, self.orphaned) {
      (0, true) => Next::Release,
      (0, false) => Next::Unref,
      _ => Next::Nothing,
    }
  }
}

impl Mailbox {
  /// # Safety
  /// On the JS thread of `env`; `on_reply` is a live reference (owned from now on).
  pub unsafe fn new(env: sys::napi_env, on_reply: sys::napi_ref) -> Option<Arc<Mailbox>> {
    let label = "pusher-native:replies";
    let mut name = std::ptr::null_mut();
    // SAFETY: on the JS thread; a latin-1 label of the given length.
    let named = unsafe {
      sys::napi_create_string_latin1(env, label.as_ptr().cast(), label.len() as isize, &mut name)
    };
    if named != sys::Status::napi_ok {
      // SAFETY: the reference handed to us, deleted once.
      let _ = unsafe { sys::napi_delete_reference(env, on_reply) };
      return None;
    }
    let mailbox = Arc::new(Mailbox {
      state: Mutex::new(MailboxState {
        replies: Vec::new(),
        tsfn: None,
        inflight: Inflight::default(),
      }),
      on_reply: on_reply as usize,
    });
    let context = Arc::into_raw(Arc::clone(&mailbox)).cast_mut();
    let mut tsfn = std::ptr::null_mut();
    // SAFETY: on the JS thread; `context` is an `Arc` that `finalize` takes back.
    let status = unsafe {
      sys::napi_create_threadsafe_function(
        env,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        name,
        0,
        1,
        context.cast(),
        Some(finalize),
        context.cast(),
        Some(drain),
        &mut tsfn,
      )
    };
    if status != sys::Status::napi_ok {
      // SAFETY: the `Arc` made above, never handed to Node; the reference, deleted once.
      unsafe {
        drop(Arc::from_raw(context));
        let _ = sys::napi_delete_reference(env, on_reply);
      }
      return None;
    }
    mailbox.lock().tsfn = Some(tsfn as usize);
    // SAFETY: on the JS thread, the function just made. Should this fail, the function
    // keeps the process up until the client is collected: nothing is lost.
    let _ = unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
    Some(mailbox)
  }

  fn lock(&self) -> std::sync::MutexGuard<'_, MailboxState> {
    self.state.lock().unwrap_or_else(|p| p.into_inner())
  }

  /// As a request starts: the process stays up until it is in.
  ///
  /// # Safety
  /// On the JS thread of `env`.
  pub unsafe fn started(&self, env: sys::napi_env) {
    let mut state = self.lock();
    if state.inflight.started() == Next::Ref {
      // SAFETY: on the JS thread; the function is live while `tsfn` is set (under the
      // lock `finalize` takes to clear it).
      unsafe { apply(env, &mut state, Next::Ref) };
    }
  }

  /// From any thread.
  pub fn post(&self, context: usize, reply: Reply) {
    let mut state = self.lock();
    let Some(tsfn) = state.tsfn else {
      return;
    };
    state.replies.push((context, reply));
    if state.replies.len() == 1 {
      // SAFETY: the function is live while `tsfn` is set (checked under the lock that
      // `finalize` takes to clear it). Should the call fail (the env is closing), the
      // reply goes with the mailbox.
      let _ = unsafe {
        sys::napi_call_threadsafe_function(
          tsfn as _,
          std::ptr::null_mut(),
          sys::ThreadsafeFunctionCallMode::nonblocking,
        )
      };
    }
  }

  /// When the client is dropped (from any thread).
  pub fn orphan(&self) {
    let mut state = self.lock();
    if state.inflight.orphan() == Next::Release {
      // SAFETY: releasing needs no env and may happen on any thread.
      unsafe { apply(std::ptr::null_mut(), &mut state, Next::Release) };
    }
  }
}

/// Applies `next` to the threadsafe function, if it is still live.
///
/// # Safety
/// `Ref` and `Unref` on the JS thread of `env`; `Release` from any thread.
unsafe fn apply(env: sys::napi_env, state: &mut MailboxState, next: Next) {
  let Some(tsfn) = state.tsfn else { return };
  // SAFETY: live while `tsfn` is set, under the caller's lock; released once (`take`).
  // A failed ref/unref changes only whether the process waits for this function.
  let _ = unsafe {
    match next {
      Next::Nothing => return,
      Next::Ref => sys::napi_ref_threadsafe_function(env, tsfn as _),
      Next::Unref => sys::napi_unref_threadsafe_function(env, tsfn as _),
      Next::Release => {
        state.tsfn = None;
        sys::napi_release_threadsafe_function(
          tsfn as _,
          sys::ThreadsafeFunctionReleaseMode::release,
        )
      }
    }
  };
}

/// # Safety
/// Called by Node on the JS thread for the function made in `Mailbox::new`.
unsafe extern "C" fn drain(
  env: sys::napi_env,
  _js_callback: sys::napi_value,
  context: *mut c_void,
  _data: *mut c_void,
) {
  if env.is_null() {
    return;
  }
  // SAFETY: the `Arc` given at creation, alive until `finalize`, which runs after the
  // last call of this function.
  let mailbox = unsafe { &*(context as *const Mailbox) };
  let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    let batch = std::mem::take(&mut mailbox.lock().replies);
    let n = batch.len() as u64;
    for (context, reply) in batch {
      // SAFETY: on the JS thread from a threadsafe-function callback; the reference
      // lives until `finalize`; each context is delivered once.
      unsafe {
        deliver(
          env,
          mailbox.on_reply as _,
          RequestContext::from_raw(context),
          reply,
        )
      };
    }
    let mut state = mailbox.lock();
    let next = state.inflight.delivered(n);
    // SAFETY: on the JS thread.
    unsafe { apply(env, &mut state, next) };
  }));
}

/// # Safety
/// Called by Node once for the function made in `Mailbox::new`; `data` is its `Arc`.
unsafe extern "C" fn finalize(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  // SAFETY: the `Arc` handed over in `Mailbox::new`, taken back once.
  let mailbox = unsafe { Arc::from_raw(data as *const Mailbox) };
  mailbox.lock().tsfn = None;
  if !env.is_null() {
    // SAFETY: on the JS thread; the reference owned by the mailbox, deleted once.
    let _ = unsafe { sys::napi_delete_reference(env, mailbox.on_reply as _) };
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_function_is_released_once_whichever_comes_last() {
    // The client goes before the last reply: the reply releases.
    let mut a = Inflight::default();
    assert_eq!(a.started(), Next::Ref);
    assert_eq!(a.started(), Next::Nothing);
    assert_eq!(a.orphan(), Next::Nothing);
    assert_eq!(a.delivered(1), Next::Nothing);
    assert_eq!(a.delivered(1), Next::Release);
    // The last reply before the client goes: the client releases.
    let mut b = Inflight::default();
    b.started();
    assert_eq!(b.delivered(1), Next::Unref);
    assert_eq!(b.orphan(), Next::Release);
    assert_eq!(b.delivered(0), Next::Nothing);
  }

  #[test]
  fn orphan_and_drain_on_two_threads_never_both_miss() {
    // The race of issue 20 item 8, under the one lock: exactly one side releases.
    for _ in 0..2000 {
      let state = Arc::new(Mutex::new(Inflight::default()));
      state.lock().unwrap().started();
      let other = Arc::clone(&state);
      let orphan = std::thread::spawn(move || other.lock().unwrap().orphan() == Next::Release);
      let drained = state.lock().unwrap().delivered(1) == Next::Release;
      let orphaned = orphan.join().unwrap();
      assert!(
        drained ^ orphaned,
        "released by drain: {drained}, by orphan: {orphaned}"
      );
    }
  }
}
