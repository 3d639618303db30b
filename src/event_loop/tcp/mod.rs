//! A libuv TCP handle as a tokio `AsyncRead`/`AsyncWrite` stream, so that rustls'
//! stream adapter (tokio-rustls) and hyper's HTTP/1 client run over Node's own loop.
//!
//! Ownership: the `Tcp` value owns the handle; dropping it closes the handle, and
//! the close callback frees the handle's memory and its reference to the state. The
//! state is shared (`Rc`) with the libuv callbacks and with the pool's liveness check,
//! so it outlives the handle. Reads run all the time (a close or a stray byte while
//! idle reaches hyper at once), up to `MAX_BUFFERED` unread bytes.

use super::{callback, no_unwind};
use crate::uv::{self, Block, Buf, Handle, Uv};
use std::cell::RefCell;
use std::ffi::c_int;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, ReadBuf};

/// Unread bytes past which reading pauses until the reader catches up.
const MAX_BUFFERED: usize = 256 * 1024;
const READ_CHUNK: usize = 64 * 1024;

pub struct TcpState {
  uv: &'static Uv,
  handle: *mut Handle,
  closed: bool,
  read: Vec<u8>,
  read_pos: usize,
  eof: bool,
  read_error: Option<c_int>,
  reading: bool,
  reader: Option<Waker>,
  /// A `uv_write` in flight (its bytes are owned by its request).
  writing: bool,
  writer: Option<Waker>,
  write_error: Option<c_int>,
}

pub type Shared = Rc<RefCell<TcpState>>;

mod write;

pub struct Tcp {
  state: Shared,
}

/// A libuv error code (negative errno, or `UV_EOF`) as an `io::Error`.
pub fn io_error(code: c_int) -> io::Error {
  if code as isize == uv::UV_EOF {
    io::Error::from(io::ErrorKind::UnexpectedEof)
  } else {
    io::Error::from_raw_os_error(-code)
  }
}

impl Tcp {
  /// A new, unconnected handle on `loop_`.
  pub fn new(uv: &'static Uv, loop_: *mut uv::Loop) -> Result<Self, c_int> {
    // SAFETY: a block sized by libuv for a TCP handle; on success its data points to
    // a leaked `Rc` of the state, reclaimed in `on_closed`.
    unsafe {
      let handle = Block::new((uv.handle_size)(uv::UV_TCP)).into_raw();
      let rc = (uv.tcp_init)(loop_, handle);
      if rc != 0 {
        Block::free(handle, (uv.handle_size)(uv::UV_TCP));
        return Err(rc);
      }
      (uv.tcp_nodelay)(handle, 1);
      let state = Rc::new(RefCell::new(TcpState {
        uv,
        handle,
        closed: false,
        read: Vec::new(),
        read_pos: 0,
        eof: false,
        read_error: None,
        reading: false,
        reader: None,
        writing: false,
        writer: None,
        write_error: None,
      }));
      uv::set_data(handle, Rc::into_raw(Rc::clone(&state)).cast_mut());
      Ok(Self { state })
    }
  }

  pub fn handle(&self) -> *mut Handle {
    self.state.borrow().handle
  }

  pub fn shared(&self) -> Shared {
    Rc::clone(&self.state)
  }

  /// Starts reading (once connected).
  pub fn start_reading(&self) -> Result<(), c_int> {
    start_reading(&mut self.state.borrow_mut())
  }
}

fn start_reading(state: &mut TcpState) -> Result<(), c_int> {
  if state.reading || state.closed {
    return Ok(());
  }
  // SAFETY: a live, connected handle whose data is the state.
  let rc = unsafe { (state.uv.read_start)(state.handle, on_alloc, on_read) };
  if rc == 0 {
    state.reading = true;
    Ok(())
  } else {
    Err(rc)
  }
}

/// Whether the handle keeps the process alive (in use) or not (idle in the pool).
pub fn set_ref(state: &Shared, referenced: bool) {
  let state = state.borrow();
  if state.closed {
    return;
  }
  // SAFETY: a live handle.
  unsafe {
    if referenced {
      (state.uv.ref_)(state.handle)
    } else {
      (state.uv.unref)(state.handle)
    }
  }
}

/// Reads whatever the kernel holds for this socket now, without waiting for the loop:
/// a connection that was idle while JS kept the loop busy may have a close or TLS
/// records pending that the loop has not delivered yet. Returns whether anything came.
pub fn read_pending(state: &Shared) -> bool {
  let mut s = state.borrow_mut();
  if s.closed || s.eof || s.read_error.is_some() {
    return false;
  }
  let mut fd: c_int = -1;
  // SAFETY: a live handle; `fd` is only read from, never closed.
  if unsafe { (s.uv.fileno)(s.handle, &mut fd) } != 0 {
    return false;
  }
  let mut got = false;
  loop {
    s.read.reserve(READ_CHUNK);
    let len = s.read.len();
    let spare = s.read.capacity() - len;
    // SAFETY: writes at most `spare` bytes into the vector's spare capacity.
    let n = unsafe {
      libc::recv(
        fd,
        s.read.as_mut_ptr().add(len).cast(),
        spare,
        libc::MSG_DONTWAIT,
      )
    };
    match n {
      n if n > 0 => {
        // SAFETY: the kernel initialised `n <= spare` bytes.
        unsafe { s.read.set_len(len + n as usize) };
        got = true;
      }
      0 => {
        s.eof = true;
        got = true;
        break;
      }
      _ => {
        let err = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if err == libc::EINTR {
          continue;
        }
        if err != libc::EAGAIN && err != libc::EWOULDBLOCK {
          s.read_error = Some(-err);
          got = true;
        }
        break;
      }
    }
  }
  if got {
    if let Some(waker) = s.reader.take() {
      waker.wake();
    }
  }
  got
}

impl Drop for Tcp {
  fn drop(&mut self) {
    let mut state = self.state.borrow_mut();
    if state.closed {
      return;
    }
    state.closed = true;
    // SAFETY: the live handle; `on_closed` frees it.
    unsafe { (state.uv.close)(state.handle, Some(on_closed)) };
  }
}

/// # Safety
/// Called by libuv once the handle made in `Tcp::new` is closed.
unsafe extern "C" fn on_closed(handle: *mut Handle) {
  no_unwind(|| {
    // SAFETY: the data is the `Rc` leaked in `Tcp::new`; the handle block is ours.
    let state = Rc::from_raw(uv::data::<RefCell<TcpState>>(handle).cast_const());
    let uv = state.borrow().uv;
    Block::free(handle, (uv.handle_size)(uv::UV_TCP));
  });
}

/// # Safety
/// Called by libuv with a live handle made in `Tcp::new`.
unsafe extern "C" fn on_alloc(handle: *mut Handle, _suggested: usize, buf: *mut Buf) {
  (*buf).base = std::ptr::null_mut();
  (*buf).len = 0;
  // Lending nothing makes libuv report UV_ENOBUFS and try again later.
  no_unwind(|| {
    let state = &*uv::data::<RefCell<TcpState>>(handle);
    let Ok(mut s) = state.try_borrow_mut() else {
      return;
    };
    if s.read_pos > 0 && s.read_pos == s.read.len() {
      s.read.clear();
      s.read_pos = 0;
    }
    s.read.reserve(READ_CHUNK);
    let len = s.read.len();
    (*buf).base = s.read.as_mut_ptr().add(len).cast();
    (*buf).len = s.read.capacity() - len;
  });
}

/// # Safety
/// Called by libuv with a live handle made in `Tcp::new`.
unsafe extern "C" fn on_read(handle: *mut Handle, nread: isize, _buf: *const Buf) {
  let state = &*uv::data::<RefCell<TcpState>>(handle);
  callback(|| {
    let mut s = state.borrow_mut();
    match nread {
      0 => return,
      n if n > 0 => {
        let len = s.read.len();
        // SAFETY: libuv wrote `n` bytes into the spare capacity handed out by on_alloc
        // (nothing touched the vector in between: callbacks do not nest).
        let n = (n as usize).min(s.read.capacity() - len);
        s.read.set_len(len + n);
        if s.read.len() - s.read_pos > MAX_BUFFERED {
          (s.uv.read_stop)(s.handle);
          s.reading = false;
        }
      }
      uv::UV_EOF => s.eof = true,
      // UV_ENOBUFS: on_alloc could not lend the buffer; read again later.
      n if n == -(libc::ENOBUFS as isize) => return,
      n => s.read_error = Some(n as c_int),
    }
    if nread < 0 {
      (s.uv.read_stop)(s.handle);
      s.reading = false;
    }
    if let Some(waker) = s.reader.take() {
      waker.wake();
    }
  });
}

impl AsyncRead for Tcp {
  fn poll_read(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    out: &mut ReadBuf<'_>,
  ) -> Poll<io::Result<()>> {
    let mut s = self.state.borrow_mut();
    let available = s.read.len() - s.read_pos;
    if available > 0 {
      let n = available.min(out.remaining());
      let start = s.read_pos;
      out.put_slice(&s.read[start..start + n]);
      s.read_pos += n;
      if s.read_pos == s.read.len() {
        s.read.clear();
        s.read_pos = 0;
      }
      if !s.reading && !s.eof && s.read_error.is_none() {
        let _ = start_reading(&mut s);
      }
      return Poll::Ready(Ok(()));
    }
    if let Some(code) = s.read_error {
      return Poll::Ready(Err(io_error(code)));
    }
    if s.eof || s.closed {
      return Poll::Ready(Ok(()));
    }
    if let Err(code) = start_reading(&mut s) {
      return Poll::Ready(Err(io_error(code)));
    }
    s.reader = Some(cx.waker().clone());
    Poll::Pending
  }
}
