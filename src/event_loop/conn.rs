//! One connection: writing requests (through TLS when https), reading and parsing
//! responses, closing.

use super::*;

pub(super) fn start_tls(
  route: &Route,
  origin: &Origin,
) -> Result<rustls::ClientConnection, TransportError> {
  let config = route.tls_config()?;
  let name = rustls_pki_types::ServerName::try_from(origin.host.clone())
    .map_err(|_| TransportError::config(format!("invalid TLS server name: {}", origin.host)))?;
  rustls::ClientConnection::new(config, name)
    .map_err(|e| TransportError::config(format!("TLS setup failed: {e}")))
}

/// Sends request bytes: through the TLS session (sent once the handshake allows) or
/// straight to the socket.
pub(super) unsafe fn send_bytes(uv: &Uv, conn: *mut Conn, exchange: &Shared, request: Vec<u8>) {
  match (*conn).tls.as_mut() {
    Some(tls) => {
      if tls.writer().write_all(&request).is_err() {
        return write_failed(uv, conn, exchange, -(libc::EPIPE));
      }
      flush_tls(uv, conn, Some(exchange));
    }
    None => write(uv, conn, exchange, request),
  }
}

/// Writes whatever the TLS session has to send (handshake, records, alerts).
pub(super) unsafe fn flush_tls(uv: &Uv, conn: *mut Conn, exchange: Option<&Shared>) {
  let Some(tls) = (*conn).tls.as_mut() else {
    return;
  };
  let mut out = Vec::new();
  while tls.wants_write() {
    if tls.write_tls(&mut out).is_err() {
      break;
    }
  }
  if out.is_empty() {
    return;
  }
  match exchange {
    Some(exchange) => write(uv, conn, exchange, out),
    None => {
      // Idle (a reply to a post-handshake message): best effort.
      let buf = Buf {
        base: out.as_ptr() as *mut _,
        len: out.len(),
      };
      (uv.try_write)((*conn).tcp, &buf, 1);
    }
  }
}

/// Feeds received TLS records to the session; the plaintext, and whether the peer
/// closed the session.
pub(super) unsafe fn decrypt(
  conn: *mut Conn,
  mut data: &[u8],
  handshaking: &mut bool,
) -> Result<(Vec<u8>, bool), rustls::Error> {
  let tls = (*conn).tls.as_mut().expect("a TLS connection");
  *handshaking = tls.is_handshaking();
  let mut plain = Vec::new();
  let mut closed = false;
  while !data.is_empty() {
    if tls.read_tls(&mut data).is_err() {
      break;
    }
    let state = tls.process_new_packets()?;
    if state.plaintext_bytes_to_read() > 0 {
      let start = plain.len();
      plain.resize(start + state.plaintext_bytes_to_read(), 0);
      let n = tls.reader().read(&mut plain[start..]).unwrap_or(0);
      plain.truncate(start + n);
    }
    closed |= state.peer_has_closed();
  }
  Ok((plain, closed))
}

pub(super) fn send_on(conn: *mut Conn, exchange: &Shared, request: Vec<u8>) {
  let uv = exchange.borrow().route.uv;
  // SAFETY: a live, idle, connected connection just taken from the pool.
  unsafe {
    (uv.ref_)((*conn).tcp);
    (*conn).exchange = Some(Rc::clone(exchange));
    exchange.borrow_mut().conn = conn;
    send_bytes(uv, conn, exchange, request);
  }
}

pub(super) unsafe fn write(uv: &Uv, conn: *mut Conn, exchange: &Shared, request: Vec<u8>) {
  let buf = Buf {
    base: request.as_ptr() as *mut _,
    len: request.len(),
  };
  let written = (uv.try_write)((*conn).tcp, &buf, 1);
  let written = match written {
    n if n >= 0 => n as usize,
    uv::UV_EAGAIN => 0,
    err => return write_failed(uv, conn, exchange, err),
  };
  if written == request.len() {
    return;
  }
  let rest = request[written..].to_vec();
  let size = (uv.req_size)(uv::UV_WRITE);
  let req = Block::new(size).into_raw();
  let buf = Buf {
    base: rest.as_ptr() as *mut _,
    len: rest.len(),
  };
  let pending = Box::into_raw(Box::new((conn, rest)));
  uv::set_data(req, pending);
  let rc = (uv.write)(req, (*conn).tcp, &buf, 1, on_written);
  if rc != 0 {
    drop(Box::from_raw(pending));
    Block::free(req, size);
    write_failed(uv, conn, exchange, rc);
  }
}

pub(super) unsafe extern "C" fn on_written(req: *mut Req, status: c_int) {
  let (conn, _rest) = *Box::from_raw(uv::data::<(*mut Conn, Vec<u8>)>(req));
  let uv = uv::get().expect("libuv");
  Block::free(req, (uv.req_size)(uv::UV_WRITE));
  if status == 0 || status == uv::UV_ECANCELED {
    return;
  }
  if let Some(exchange) = (*conn).exchange.clone() {
    write_failed(uv, conn, &exchange, status);
  }
}

pub(super) unsafe fn write_failed(uv: &Uv, conn: *mut Conn, exchange: &Shared, err: c_int) {
  detach(exchange);
  close_conn(uv, conn);
  let url = exchange.borrow().signed_url.clone();
  fail(
    exchange,
    TransportError::os(reset_name(uv.name(err)), &url, false),
  );
}

/// A write to a closed peer reads as Node's hang-up.
pub(super) fn reset_name(name: &'static str) -> &'static str {
  match name {
    "EPIPE" | "ECONNABORTED" | "EOF" => "ECONNRESET",
    other => other,
  }
}

pub(super) unsafe extern "C" fn on_alloc(_handle: *mut Handle, _suggested: usize, buf: *mut Buf) {
  READ_BUF.with(|b| {
    let mut b = b.borrow_mut();
    (*buf).base = b.as_mut_ptr().cast();
    (*buf).len = b.len();
  });
}

pub(super) unsafe extern "C" fn on_read(tcp: *mut Handle, nread: isize, buf: *const Buf) {
  if nread == 0 {
    return;
  }
  let conn = uv::data::<Conn>(tcp);
  let uv = uv::get().expect("libuv");
  let received = if nread > 0 {
    std::slice::from_raw_parts((*buf).base as *const u8, nread as usize)
  } else {
    &[]
  };
  // Over TLS: records in, plaintext out; a close_notify reads as the end of the stream.
  let mut tls_plain = None;
  let mut peer_closed = nread < 0;
  let mut tls_error = None;
  let mut handshaking = false;
  if (*conn).tls.is_some() && nread > 0 {
    match decrypt(conn, received, &mut handshaking) {
      Ok((plain, closed)) => {
        tls_plain = Some(plain);
        peer_closed |= closed;
      }
      Err(e) => tls_error = Some(e),
    }
    let exchange = (*conn).exchange.clone();
    flush_tls(uv, conn, exchange.as_ref());
  }
  let data: &[u8] = tls_plain.as_deref().unwrap_or(received);
  let Some(exchange) = (*conn).exchange.clone() else {
    // Idle: the server closed the connection, or sent bytes nobody asked for (TLS
    // session tickets and the like are fine).
    if peer_closed || tls_error.is_some() || !data.is_empty() {
      remove_from_pool(conn);
      close_conn(uv, conn);
    }
    return;
  };
  let outcome = if let Some(e) = &tls_error {
    Err(TransportError::tls(
      e,
      &exchange.borrow().signed_url,
      handshaking,
    ))
  } else {
    match (*conn).reader.feed(data) {
      Ok(None) if peer_closed => match (*conn).reader.eof() {
        Some(response) => Ok(Some(response)),
        None => Err(TransportError::os(
          reset_name(closed_name(uv, nread)),
          &exchange.borrow().signed_url,
          false,
        )),
      },
      other => other,
    }
  };
  match outcome {
    Ok(None) => {}
    Ok(Some(response)) => {
      detach(&exchange);
      if response.reusable && !peer_closed {
        checkin(uv, conn);
      } else {
        close_conn(uv, conn);
      }
      answered(&exchange, response);
    }
    Err(e) => {
      detach(&exchange);
      close_conn(uv, conn);
      fail(&exchange, e);
    }
  }
}

pub(super) fn closed_name(uv: &Uv, nread: isize) -> &'static str {
  if nread == uv::UV_EOF || nread >= 0 {
    "ECONNRESET"
  } else {
    uv.name(nread as c_int)
  }
}

/// Unlinks the exchange and its connection.
pub(super) fn detach(exchange: &Shared) {
  let conn = std::mem::replace(&mut exchange.borrow_mut().conn, std::ptr::null_mut());
  if !conn.is_null() {
    // SAFETY: the exchange's connection is live while linked.
    unsafe { (*conn).exchange = None };
  }
}

pub(super) fn close_conn(uv: &Uv, conn: *mut Conn) {
  // SAFETY: live connection; freed in the close callback.
  unsafe {
    (*conn).exchange = None;
    if (uv.is_closing)((*conn).tcp) == 0 {
      (uv.close)((*conn).tcp, Some(on_conn_closed));
    }
  }
}

pub(super) unsafe extern "C" fn on_conn_closed(tcp: *mut Handle) {
  let uv = uv::get().expect("libuv");
  let conn = Box::from_raw(uv::data::<Conn>(tcp));
  Block::free(conn.tcp, (uv.handle_size)(uv::UV_TCP));
}
