//! One request, from its start to its reply: a connection from the pool (or a new one:
//! lookup, Happy Eyeballs, TLS, hyper's handshake), hyper's HTTP/1 exchange, node-fetch's
//! redirects, and the whole-request timeout.

use super::connect::{self, lookup_code};
use super::executor;
use super::head_capture::HeadCapture;
use super::pool::{self, Acquired, Conn, Key, Lease};
use super::stream::{Io, Stream};
use super::Client;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pusher_core::error::TransportError;
use pusher_core::http::limits::MAX_REDIRECTS;
use pusher_core::http::response::Reply;
use pusher_core::http::{redirect, request, response, Method, Origin};
use super::timer::Timer;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

/// What one request sends.
#[derive(Clone)]
pub struct Spec {
  pub method: Method,
  /// The URL as signed: reported in replies and error messages.
  pub url: String,
  pub body: Option<Bytes>,
  /// How long a new connection may take to open (DNS, TCP, TLS): set with retries on,
  /// so a hung connect fails before any byte left and can be tried again.
  pub connect_within: Option<Duration>,
}

/// Sends `spec`, following redirects.
pub async fn run(client: Rc<Client>, spec: Spec) -> Result<Reply, TransportError> {
  let Spec {
    mut method,
    url,
    mut body,
    connect_within,
  } = spec;
  let mut target = request::request_target(&url, client.base_len)?.into_owned();
  let mut key = Rc::clone(&client.key);
  let mut current: Option<url::Url> = None;
  let mut redirects = 0;
  loop {
    let (head, location, bytes) = send(&client, &key, method, &target, body.clone(), &url, connect_within).await?;
    let next = redirect::next_method(head.status, method).zip(location);
    let Some((next_method, location)) = next else {
      let mut reply = head;
      reply.body = bytes;
      reply.final_url = current.map(|u| u.to_string());
      return Ok(reply);
    };
    let base = match &current {
      Some(u) => u.clone(),
      None => url::Url::parse(&url).map_err(|_| TransportError::invalid_url("Invalid URL"))?,
    };
    let Ok(next_url) = base.join(&location) else {
      let mut reply = head;
      reply.body = bytes;
      return Ok(reply);
    };
    if redirects >= MAX_REDIRECTS {
      return Err(TransportError::too_many_redirects(&url));
    }
    redirects += 1;
    let origin = Origin::of(&next_url)
      .ok_or_else(|| TransportError::invalid_url("Only HTTP(S) protocols are supported"))?;
    if next_method == Method::Get {
      body = None;
    }
    method = next_method;
    target = request::target_of(&next_url);
    key = Key::new(origin, &client.trust);
    current = Some(next_url);
  }
}

/// One exchange on one connection: the reply head, a redirect's location, the body.
async fn send(
  client: &Rc<Client>,
  key: &Rc<Key>,
  method: Method,
  target: &str,
  body: Option<Bytes>,
  url: &str,
  connect_within: Option<Duration>,
) -> Result<(Reply, Option<String>, Vec<u8>), TransportError> {
  let mut lease = match pool::acquire(key, client.loop_, client.max_sockets).await {
    Acquired::Pooled(lease) => lease,
    Acquired::Connect(slot) => {
      // Boxed: a connect's state (lookup, TLS, handshake) is large, and inline it
      // would be copied with every request's future, pooled or not.
      let conn = match connect_within {
        None => Box::pin(open(client, &key.origin, url)).await?,
        Some(bound) => within(client, bound, Box::pin(open(client, &key.origin, url)))
          .await
          .unwrap_or_else(|| {
            let timeout_ms = client.timeout.map(pusher_core::http::limits::timeout_ms);
            Err(TransportError::connect_timeout(url, timeout_ms))
          })?,
      };
      pool::lease(slot, conn, client.loop_)
    }
  };
  let mut request = hyper::Request::new(Full::new(body.clone().unwrap_or_default()));
  *request.method_mut() = method.to_http();
  *request.uri_mut() = target
    .parse()
    .map_err(|_| TransportError::invalid_url("Invalid URL"))?;
  *request.headers_mut() = if Rc::ptr_eq(key, &client.key) {
    client.heads[usize::from(body.is_some())].clone()
  } else {
    request::headers(
      &client.library,
      body.is_some(),
      Some(&key.origin.host_header),
    )
  };
  lease.head().arm();
  let sent = lease.sender().send_request(request).await;
  lease.head().disarm();
  let response = sent.map_err(|e| refused(&e, lease.head(), url))?;
  let (parts, incoming) = response.into_parts();
  if let Some((code, reason)) = response::head_error(parts.status, &parts.headers) {
    return Err(TransportError::parse(code, reason, url));
  }
  let head = response::reply_head(parts.status, &parts.headers, &parts.extensions);
  let location = response::location(&parts.headers);
  let bytes = read_body(incoming, client.max_response_size, url).await?;
  finish(lease, &parts.headers);
  Ok((head, location, bytes))
}

/// hyper's failure as Node's parser words it: a head hyper could not parse is judged
/// from its bytes (which rule it broke); anything else by its cause.
fn refused(e: &hyper::Error, head: &HeadCapture, url: &str) -> TransportError {
  if e.is_parse() && !e.is_parse_too_large() {
    if let Some((code, reason)) = head.verdict() {
      return TransportError::parse(code, reason, url);
    }
  }
  TransportError::from_cause(e, url, false)
}

/// Capacity reserved up front from a `content-length`: beyond it the buffer grows with
/// the bytes that really came, so a length the server only claims costs nothing.
const RESERVE_MAX: u64 = 1024 * 1024;

/// The body, its frames appended into the one buffer handed to JS. Past `limit` bytes
/// the read stops and the error drops the lease, which closes the connection.
async fn read_body(
  mut incoming: Incoming,
  limit: u64,
  url: &str,
) -> Result<Vec<u8>, TransportError> {
  use hyper::body::Body;
  let claimed = incoming.size_hint().exact().unwrap_or(0);
  if claimed > limit {
    return Err(TransportError::max_size(url, limit));
  }
  let mut body = Vec::with_capacity(claimed.min(RESERVE_MAX) as usize);
  while let Some(frame) = incoming.frame().await {
    let frame = frame.map_err(|e| TransportError::from_cause(&e, url, false))?;
    if let Ok(data) = frame.into_data() {
      if (body.len() as u64).saturating_add(data.len() as u64) > limit {
        return Err(TransportError::max_size(url, limit));
      }
      body.extend_from_slice(&data);
    }
  }
  Ok(body)
}

/// Back to the pool, unless the framing had repeated lines (a peer that disagrees on
/// where the body ends may have more bytes in flight).
fn finish(lease: Lease, headers: &hyper::HeaderMap) {
  use hyper::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
  let ambiguous = headers.get_all(TRANSFER_ENCODING).iter().count() > 1
    || headers.get_all(CONTENT_LENGTH).iter().count() > 1;
  if ambiguous {
    drop(lease);
  } else {
    lease.release();
  }
}

/// `fut`'s output, or `None` once `bound` has passed first (`fut` is dropped then).
async fn within<F: Future>(client: &Client, bound: Duration, fut: F) -> Option<F::Output> {
  let mut fut = pin!(fut);
  let mut timer = Timer::sleep(client.uv, client.loop_.0, bound);
  std::future::poll_fn(|cx| {
    if let Poll::Ready(output) = fut.as_mut().poll(cx) {
      return Poll::Ready(Some(output));
    }
    std::pin::Pin::new(&mut timer).poll(cx).map(|()| None)
  })
  .await
}

/// A new connection: lookup, connect, TLS, hyper's handshake; its driver task started.
async fn open(client: &Rc<Client>, origin: &Origin, url: &str) -> Result<Conn, TransportError> {
  let (uv, loop_) = (client.uv, client.loop_);
  let addrs = connect::resolve(uv, loop_, &origin.host)
    .await
    .map_err(|err| TransportError::lookup(lookup_code(uv, err), url, &origin.host))?;
  let tcp = connect::connect(uv, loop_, addrs, origin.port)
    .await
    .map_err(|err| TransportError::os(uv.name(err), url, true))?;
  let shared = tcp.shared();
  let stream = if origin.https {
    let config = client.trust.config()?;
    let name = rustls_pki_types::ServerName::try_from(origin.host.clone())
      .map_err(|_| TransportError::config(format!("invalid TLS server name: {}", origin.host)))?;
    let tls = tokio_rustls::TlsConnector::from(config)
      .connect(name, tcp)
      .await
      .map_err(|e| TransportError::from_cause(&e, url, true))?;
    Io::Tls(Box::new(tls))
  } else {
    Io::Plain(tcp)
  };
  let head = HeadCapture::shared();
  let stream = Stream::new(stream, Rc::clone(&head));
  let (sender, connection) = response::configure_http1(&mut hyper::client::conn::http1::Builder::new())
    .handshake(TokioIo::new(stream))
    .await
    .map_err(|e| TransportError::from_cause(&e, url, true))?;
  let task = executor::spawn(async move {
    let _ = connection.await;
  });
  Ok(Conn {
    sender,
    tcp: shared,
    task,
    head,
  })
}
