//! The write half: as much as the socket takes at once (`uv_try_write`, vectored, so
//! a request's head and body leave in one call), the rest with one `uv_write` whose
//! request owns the bytes; one such write in flight at a time.

use super::{io_error, Shared, Tcp, TcpState};
use crate::event_loop::callback;
use crate::uv::{self, Block, Buf, Req};
use std::ffi::c_int;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

impl Tcp {
  /// Writes `bufs` now as far as the socket takes them, the rest with one `uv_write`.
  fn poll_write_bufs(&self, cx: &mut Context<'_>, bufs: &[&[u8]]) -> Poll<io::Result<usize>> {
    let mut s = self.state.borrow_mut();
    if let Some(code) = s.write_error {
      return Poll::Ready(Err(io_error(code)));
    }
    if s.closed {
      return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
    }
    if s.writing {
      s.writer = Some(cx.waker().clone());
      return Poll::Pending;
    }
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    if total == 0 {
      return Poll::Ready(Ok(0));
    }
    let uv_bufs: Vec<Buf> = bufs
      .iter()
      .filter(|b| !b.is_empty())
      .map(|b| Buf {
        base: b.as_ptr() as *mut _,
        len: b.len(),
      })
      .collect();
    // SAFETY: a live handle; the buffers are borrowed for the call only.
    let written = unsafe { (s.uv.try_write)(s.handle, uv_bufs.as_ptr(), uv_bufs.len() as _) };
    let written = match written {
      n if n >= 0 => n as usize,
      uv::UV_EAGAIN => 0,
      err => {
        s.write_error = Some(err);
        return Poll::Ready(Err(io_error(err)));
      }
    };
    if written >= total {
      return Poll::Ready(Ok(total));
    }
    let mut rest = Vec::with_capacity(total - written);
    let mut skip = written;
    for b in bufs {
      if skip >= b.len() {
        skip -= b.len();
        continue;
      }
      rest.extend_from_slice(&b[skip..]);
      skip = 0;
    }
    match queue_write(&mut s, &self.state, rest) {
      Ok(()) => Poll::Ready(Ok(total)),
      Err(err) => {
        s.write_error = Some(err);
        Poll::Ready(Err(io_error(err)))
      }
    }
  }
}

struct PendingWrite {
  state: Shared,
  _bytes: Vec<u8>,
}

fn queue_write(s: &mut TcpState, shared: &Shared, bytes: Vec<u8>) -> Result<(), c_int> {
  let buf = Buf {
    base: bytes.as_ptr() as *mut _,
    len: bytes.len(),
  };
  // SAFETY: the request block and the bytes live until `on_written` frees them; the
  // bytes' heap buffer does not move when the Vec is moved into the box.
  unsafe {
    let size = (s.uv.req_size)(uv::UV_WRITE);
    let req = Block::new(size).into_raw();
    let pending = Box::into_raw(Box::new(PendingWrite {
      state: Rc::clone(shared),
      _bytes: bytes,
    }));
    uv::set_data(req, pending);
    let rc = (s.uv.write)(req, s.handle, &buf, 1, on_written);
    if rc != 0 {
      drop(Box::from_raw(pending));
      Block::free(req, size);
      return Err(rc);
    }
  }
  s.writing = true;
  Ok(())
}

/// # Safety
/// Called by libuv with the request made in `queue_write`.
unsafe extern "C" fn on_written(req: *mut Req, status: c_int) {
  callback(|| {
    // SAFETY: the data set in `queue_write`; the request block is ours again.
    let pending = Box::from_raw(uv::data::<PendingWrite>(req));
    let mut s = pending.state.borrow_mut();
    Block::free(req, (s.uv.req_size)(uv::UV_WRITE));
    s.writing = false;
    if status != 0 && s.write_error.is_none() {
      s.write_error = Some(status);
    }
    if let Some(waker) = s.writer.take() {
      waker.wake();
    }
  });
}

impl AsyncWrite for Tcp {
  fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    self.poll_write_bufs(cx, &[buf])
  }

  fn poll_write_vectored(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
  ) -> Poll<io::Result<usize>> {
    let slices: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
    self.poll_write_bufs(cx, &slices)
  }

  fn is_write_vectored(&self) -> bool {
    true
  }

  fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let mut s = self.state.borrow_mut();
    if let Some(code) = s.write_error {
      return Poll::Ready(Err(io_error(code)));
    }
    if s.writing {
      s.writer = Some(cx.waker().clone());
      return Poll::Pending;
    }
    Poll::Ready(Ok(()))
  }

  fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    self.poll_flush(cx)
  }
}
