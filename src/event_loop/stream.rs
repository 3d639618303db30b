//! A connection's byte stream: the TCP handle itself, or TLS over it; what it reads is
//! shown to the connection's head capture (the plaintext, over TLS).

use super::head_capture::Shared as Head;
use super::tcp::Tcp;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;

/// Generic over the transport below TLS only so that it can be tested without a loop.
pub struct Stream<T = Tcp> {
  io: Io<T>,
  head: Head,
}

pub enum Io<T = Tcp> {
  Plain(T),
  Tls(Box<TlsStream<T>>),
}

impl<T> Stream<T> {
  pub fn new(io: Io<T>, head: Head) -> Self {
    Self { io, head }
  }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<T> {
  fn poll_read(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
  ) -> Poll<io::Result<()>> {
    let this = self.get_mut();
    let before = buf.filled().len();
    let polled = match &mut this.io {
      Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
      Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
    };
    if let Poll::Ready(Ok(())) = polled {
      this.head.record(&buf.filled()[before..]);
    }
    polled
  }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<T> {
  fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    match &mut self.get_mut().io {
      Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
      Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
    }
  }

  fn poll_write_vectored(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
  ) -> Poll<io::Result<usize>> {
    match &mut self.get_mut().io {
      Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
      Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
    }
  }

  fn is_write_vectored(&self) -> bool {
    match &self.io {
      Io::Plain(s) => s.is_write_vectored(),
      Io::Tls(s) => s.is_write_vectored(),
    }
  }

  fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    match &mut self.get_mut().io {
      Io::Plain(s) => Pin::new(s).poll_flush(cx),
      Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
    }
  }

  fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    match &mut self.get_mut().io {
      Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
      Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
    }
  }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
