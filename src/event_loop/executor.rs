//! The event loop's task executor: futures (hyper's connection and request futures,
//! TLS handshakes, connects) are polled on the JS thread, woken from libuv callbacks.
//!
//! Every libuv callback of the transport ends with [`run`], which polls the tasks its
//! events woke until none is ready; a task that panics is dropped (its guards fail its
//! request) and never unwinds into C. Wakers are plain `(index, generation)` pairs: a
//! wake for a finished task is ignored. A wake from another thread (nothing here does
//! that, but `Waker` is `Send`) is queued and signalled with a `uv_async_t`.

use crate::uv::{self, Block, Handle, Uv};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread::ThreadId;

type Task = Pin<Box<dyn Future<Output = ()>>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskId {
  index: u32,
  generation: u32,
}

#[derive(Default)]
struct Slot {
  generation: u32,
  /// `None` while free, or while the task is being polled.
  future: Option<Task>,
  running: bool,
  /// Woken while running: polled again after the current poll.
  woken: bool,
  /// Aborted while running: dropped after the current poll.
  aborted: bool,
  /// In the ready queue: a wake adds nothing (one poll per wake, however many wakes).
  queued: bool,
  live: bool,
}

// Never dropped: at process exit, destructors of the tasks (and of the handles they
// own) would run after the other thread-locals they touch are gone.
thread_local! {
  static SLOTS: ManuallyDrop<RefCell<Vec<Slot>>> = const { ManuallyDrop::new(RefCell::new(Vec::new())) };
  static FREE: ManuallyDrop<RefCell<Vec<u32>>> = const { ManuallyDrop::new(RefCell::new(Vec::new())) };
  static ON_LOOP_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
  static READY: ManuallyDrop<RefCell<VecDeque<TaskId>>> = const { ManuallyDrop::new(RefCell::new(VecDeque::new())) };
}

/// The loop thread, and its async handle for wakes from elsewhere.
struct Owner {
  thread: ThreadId,
  handle: usize,
}
static OWNER: OnceLock<Owner> = OnceLock::new();
static REMOTE: Mutex<Vec<TaskId>> = Mutex::new(Vec::new());

/// Binds the executor to this thread's loop (once per process: the main thread).
/// Refuses any other loop: a worker's loop closes when the worker ends, and a handle
/// of ours left on it aborts Node.
pub fn init(uv: &Uv, loop_: *mut uv::Loop) -> bool {
  // SAFETY: libuv's default loop is made by the main thread before any JS runs;
  // reading its address from another thread takes no lock and creates nothing.
  if loop_.is_null() || loop_ != unsafe { (uv.default_loop)() } {
    return false;
  }
  let owner = OWNER.get_or_init(|| {
    // SAFETY: a handle sized by libuv, initialised on the loop's own thread; never
    // closed (it lives as long as the process) and unreferenced.
    let handle = unsafe {
      let handle = Block::new((uv.handle_size)(uv::UV_ASYNC)).into_raw();
      (uv.async_init)(loop_, handle, on_remote_wake);
      (uv.unref)(handle);
      handle
    };
    super::poll_clock::start(uv, loop_);
    Owner {
      thread: std::thread::current().id(),
      handle: handle as usize,
    }
  });
  let here = owner.thread == std::thread::current().id();
  ON_LOOP_THREAD.with(|o| o.set(here));
  here
}

/// # Safety
/// Called by libuv with the async handle made in `init`.
unsafe extern "C" fn on_remote_wake(_handle: *mut Handle) {
  crate::event_loop::callback(|| {
    let woken = std::mem::take(&mut *REMOTE.lock().unwrap_or_else(|p| p.into_inner()));
    woken.into_iter().for_each(schedule);
  });
}

/// Starts `future`; it is first polled by the next [`run`].
pub fn spawn(future: impl Future<Output = ()> + 'static) -> TaskId {
  let future: Task = Box::pin(future);
  let index = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_else(|| {
    SLOTS.with(|s| {
      let mut slots = s.borrow_mut();
      slots.push(Slot::default());
      (slots.len() - 1) as u32
    })
  });
  let id = SLOTS.with(|s| {
    let mut slots = s.borrow_mut();
    let slot = &mut slots[index as usize];
    slot.generation = slot.generation.wrapping_add(1);
    slot.future = Some(future);
    slot.live = true;
    slot.running = false;
    slot.woken = false;
    slot.aborted = false;
    slot.queued = true;
    TaskId {
      index,
      generation: slot.generation,
    }
  });
  READY.with(|r| r.borrow_mut().push_back(id));
  id
}

/// Drops the task's future (closing what it owns) unless it has finished already.
pub fn abort(id: TaskId) {
  let future = SLOTS.with(|s| {
    let mut slots = s.borrow_mut();
    let slot = live_slot(&mut slots, id)?;
    if slot.running {
      slot.aborted = true;
      return None;
    }
    slot.live = false;
    FREE.with(|f| f.borrow_mut().push(id.index));
    slot.future.take()
  });
  drop_quietly(future);
}

/// The task's slot, unless the task has finished (a stale id).
fn live_slot(slots: &mut [Slot], id: TaskId) -> Option<&mut Slot> {
  let slot = slots.get_mut(id.index as usize)?;
  (slot.live && slot.generation == id.generation).then_some(slot)
}

fn drop_quietly(future: Option<Task>) {
  if let Some(future) = future {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
  }
}

/// Polls every ready task until none is left. Re-entrant: a task being polled is out
/// of its slot, so a nested run (a pool check inside a task) skips it.
pub fn run() {
  while let Some(id) = READY.with(|r| r.borrow_mut().pop_front()) {
    poll(id);
  }
}

/// Polls the task now, woken or not (a task being polled or finished is left alone).
pub fn poll_now(id: TaskId) {
  poll(id);
}

fn poll(id: TaskId) {
  let future = SLOTS.with(|s| {
    let mut slots = s.borrow_mut();
    let slot = live_slot(&mut slots, id)?;
    slot.queued = false;
    if slot.running {
      slot.woken = true;
      return None;
    }
    let future = slot.future.take()?;
    slot.running = true;
    Some(future)
  });
  let Some(mut future) = future else {
    return;
  };
  let waker = waker(id);
  let mut cx = Context::from_waker(&waker);
  let finished = match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
    Ok(Poll::Ready(())) | Err(_) => true,
    Ok(Poll::Pending) => false,
  };
  let (keep, again) = SLOTS.with(|s| {
    let mut slots = s.borrow_mut();
    let slot = &mut slots[id.index as usize];
    slot.running = false;
    let keep = !finished && !slot.aborted;
    let again = keep && std::mem::take(&mut slot.woken);
    if !keep {
      slot.live = false;
      FREE.with(|f| f.borrow_mut().push(id.index));
    }
    (keep, again)
  });
  if keep {
    SLOTS.with(|s| s.borrow_mut()[id.index as usize].future = Some(future));
    if again {
      schedule(id);
    }
  } else {
    drop_quietly(Some(future));
  }
}

/// Queues a woken task on this thread, unless it is queued already, finished, or being
/// polled (then it is polled again right after).
fn schedule(id: TaskId) {
  let push = SLOTS.with(|s| match s.try_borrow_mut() {
    Ok(mut slots) => match live_slot(&mut slots, id) {
      Some(slot) if slot.running => {
        slot.woken = true;
        false
      }
      Some(slot) => !std::mem::replace(&mut slot.queued, true),
      None => false,
    },
    // Woken from inside the executor's own bookkeeping: queue it, `poll` sorts it out.
    Err(_) => true,
  });
  if push {
    READY.with(|r| r.borrow_mut().push_back(id));
  }
}

// ---- wakers: the task id packed into the data pointer ----

fn pack(id: TaskId) -> *const () {
  (((id.generation as usize) << 32) | id.index as usize) as *const ()
}

fn unpack(data: *const ()) -> TaskId {
  let bits = data as usize;
  TaskId {
    index: bits as u32,
    generation: (bits >> 32) as u32,
  }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop_waker);

fn waker(id: TaskId) -> Waker {
  // SAFETY: the vtable's functions only decode the data word; nothing is owned.
  unsafe { Waker::from_raw(RawWaker::new(pack(id), &VTABLE)) }
}

/// # Safety
/// Called through `VTABLE` with a data word made by `pack`.
unsafe fn clone(data: *const ()) -> RawWaker {
  RawWaker::new(data, &VTABLE)
}

/// # Safety
/// Called through `VTABLE` with a data word made by `pack`.
unsafe fn wake(data: *const ()) {
  let id = unpack(data);
  if ON_LOOP_THREAD.try_with(|o| o.get()).unwrap_or(false) {
    return schedule(id);
  }
  match OWNER.get() {
    Some(owner) => {
      REMOTE.lock().unwrap_or_else(|p| p.into_inner()).push(id);
      if let Some(uv) = uv::get() {
        (uv.async_send)(owner.handle as *mut Handle);
      }
    }
    // Not bound to a loop (unit tests): run by the next `run` on this thread.
    None => schedule(id),
  }
}

/// # Safety
/// Called through `VTABLE`; nothing is owned.
unsafe fn drop_waker(_data: *const ()) {}

#[cfg(test)]
mod tests {
  use super::*;
  use std::cell::Cell;
  use std::rc::Rc;

  #[test]
  fn tasks_run_when_woken_and_stale_wakes_are_ignored() {
    let polls = Rc::new(Cell::new(0));
    let saved: Rc<RefCell<Option<Waker>>> = Rc::default();
    let (p, w) = (Rc::clone(&polls), Rc::clone(&saved));
    let id = spawn(std::future::poll_fn(move |cx| {
      p.set(p.get() + 1);
      *w.borrow_mut() = Some(cx.waker().clone());
      if p.get() == 2 {
        Poll::Ready(())
      } else {
        Poll::Pending
      }
    }));
    run();
    assert_eq!(polls.get(), 1);
    saved.borrow().as_ref().unwrap().wake_by_ref();
    run();
    assert_eq!(polls.get(), 2);
    // Finished: a late wake does nothing, and the slot is reused with a new generation.
    saved.borrow().as_ref().unwrap().wake_by_ref();
    run();
    assert_eq!(polls.get(), 2);
    let next = spawn(async {});
    assert_eq!(next.index, id.index);
    assert_ne!(next.generation, id.generation);
    run();
  }

  #[test]
  fn many_wakes_make_one_poll() {
    let polls = Rc::new(Cell::new(0));
    let saved: Rc<RefCell<Option<Waker>>> = Rc::default();
    let (p, w) = (Rc::clone(&polls), Rc::clone(&saved));
    let id = spawn(std::future::poll_fn(move |cx| {
      p.set(p.get() + 1);
      *w.borrow_mut() = Some(cx.waker().clone());
      // Woken from inside its own poll too: polled once more, not once per wake.
      cx.waker().wake_by_ref();
      cx.waker().wake_by_ref();
      Poll::<()>::Pending
    }));
    run_once_each();
    assert_eq!(polls.get(), 1);
    assert_eq!(READY.with(|r| r.borrow().len()), 1);
    for _ in 0..5 {
      saved.borrow().as_ref().unwrap().wake_by_ref();
    }
    assert_eq!(READY.with(|r| r.borrow().len()), 1);
    run_once_each();
    assert_eq!(polls.get(), 2);
    abort(id);
    READY.with(|r| r.borrow_mut().clear());
  }

  /// Polls what is ready now, once each (the task above re-wakes itself forever).
  fn run_once_each() {
    let ready: Vec<TaskId> = READY.with(|r| r.borrow_mut().drain(..).collect());
    ready.into_iter().for_each(poll);
  }

  #[test]
  fn a_panicking_task_is_dropped_and_aborts_drop_futures() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
      fn drop(&mut self) {
        self.0.set(true);
      }
    }
    let dropped = Rc::new(Cell::new(false));
    let flag = Flag(Rc::clone(&dropped));
    spawn(async move {
      let _flag = flag;
      panic!("boom");
    });
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    run();
    std::panic::set_hook(hook);
    assert!(dropped.get());
    let aborted = Rc::new(Cell::new(false));
    let flag = Flag(Rc::clone(&aborted));
    let id = spawn(async move {
      let _flag = flag;
      std::future::pending::<()>().await;
    });
    run();
    assert!(!aborted.get());
    abort(id);
    assert!(aborted.get());
  }
}
