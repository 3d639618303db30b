//! The HTTP transport: one pooled keep-alive reqwest client per distinct
//! (proxy, extra CA) configuration in use, rustls with Mozilla's roots (Node's bundled set)
//! plus `NODE_EXTRA_CA_CERTS` and the caller's `ca`, and whole-request timeouts.

use crate::error::TransportError;
use crate::http::request::parse_url;
pub use crate::http::response::Reply;
use crate::http::{self, limits, Method};
use crate::retry::{Deadline, Outcome, RetryPolicy};
use bytes::Bytes;
use reqwest::header::HeaderValue;
use reqwest::{redirect, Client};
use std::time::Duration;
use tokio::sync::Semaphore;

mod clients;
mod connect_bound;
pub mod resolve;
pub use clients::{shared_client, SharedClient};

/// What makes two transports different; everything else is per request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TransportOptions {
  /// `http://host:port` (or https) proxy for every request; none from the environment.
  pub proxy: Option<String>,
  /// Extra trusted certificates, PEM.
  pub ca: Option<Vec<u8>>,
}

pub struct Request {
  pub method: Method,
  /// The URL exactly as signed; parsed here with WHATWG rules, as node-fetch does.
  pub url: String,
  pub body: Option<Bytes>,
  /// The whole call's deadline, retries and back-off included.
  pub timeout: Option<Duration>,
  pub library: HeaderValue,
  /// The largest body read (`maxResponseSize`).
  pub max_response_size: u64,
  /// The most connecting (DNS, TCP, TLS handshake) may take per attempt, kept under ¾
  /// of what is left of `timeout`: a hung connect then fails before any byte left,
  /// which is safe to retry even for a POST. Set with retries.
  pub connect_timeout: Option<Duration>,
}

/// Builds a new client. Prefer [`shared_client`], which pools connections across
/// every Pusher instance with the same options.
pub fn build_client(options: &TransportOptions) -> Result<Client, TransportError> {
  let mut builder = Client::builder()
    .tls_backend_preconfigured(crate::tls::config(options.ca.as_deref())?)
    .no_proxy()
    .redirect(redirect::Policy::limited(limits::MAX_REDIRECTS as usize))
    .pool_idle_timeout(limits::POOL_IDLE)
    .tcp_nodelay(true)
    .http1_only()
    // As `http::response::configure_http1` tells the event loop's hyper.
    .http1_max_headers(limits::MAX_HEAD_LINES)
    .connector_layer(connect_bound::ConnectBound)
    .dns_resolver(std::sync::Arc::new(resolve::SystemResolver));
  if let Some(proxy) = &options.proxy {
    let proxy = reqwest::Proxy::all(proxy.as_str())
      .map_err(|_| TransportError::config(format!("invalid proxy URL: {proxy}")))?;
    builder = builder.proxy(proxy);
  }
  builder
    .build()
    .map_err(|e| TransportError::config(format!("HTTP client setup failed: {e}")))
}

/// Sends `request`, retrying as `policy` allows, all within `request.timeout` (waits
/// for a connection and back-off included); returns the last result and the number of
/// attempts made. With `sockets`, each attempt first waits its turn for a permit.
pub async fn send_with_retry(
  client: &Client,
  request: &Request,
  policy: Option<&RetryPolicy>,
  sockets: Option<&Semaphore>,
) -> (Result<Reply, TransportError>, u32) {
  let deadline = Deadline::after(request.timeout);
  let idempotent = request.method.is_idempotent();
  let mut attempt = 1;
  loop {
    let result = send_within(client, request, deadline, sockets).await;
    let Some(policy) = policy else {
      return (result, attempt);
    };
    let outcome = match &result {
      Ok(reply) if reply.status < 400 => return (result, attempt),
      Ok(reply) => Outcome::Status {
        status: reply.status,
        retry_after: reply.retry_after.as_deref(),
      },
      Err(e) => Outcome::Failed(e),
    };
    let remaining = deadline.remaining();
    match policy.next_delay_within(attempt, idempotent, &outcome, jitter(), remaining) {
      Some(delay) => tokio::time::sleep(delay).await,
      None => return (result, attempt),
    }
    attempt += 1;
  }
}

/// One attempt in what is left of the call's time.
async fn send_within(
  client: &Client,
  request: &Request,
  deadline: Deadline,
  sockets: Option<&Semaphore>,
) -> Result<Reply, TransportError> {
  let timed_out = || TransportError::timeout(&request.url, request.timeout.map(limits::timeout_ms));
  if deadline.remaining() == Some(Duration::ZERO) {
    return Err(timed_out());
  }
  let _permit = match (sockets, deadline.remaining()) {
    (None, _) => None,
    (Some(sockets), None) => sockets.acquire().await.ok(),
    (Some(sockets), Some(left)) => match tokio::time::timeout(left, sockets.acquire()).await {
      Ok(permit) => permit.ok(),
      Err(_) => return Err(timed_out()),
    },
  };
  let left = deadline.remaining();
  if left == Some(Duration::ZERO) {
    return Err(timed_out());
  }
  let connect = request
    .connect_timeout
    .map(|bound| crate::retry::connect_within(bound, left));
  connect_bound::within(connect, send_attempt(client, request, left)).await
}

fn jitter() -> f64 {
  let mut bytes = [0u8; 8];
  // Without OS randomness the backoff is merely less spread out.
  let _ = getrandom::fill(&mut bytes);
  (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// One attempt, bounded by `request.timeout`.
pub async fn send(client: &Client, request: &Request) -> Result<Reply, TransportError> {
  send_within(client, request, Deadline::after(request.timeout), None).await
}

/// One attempt bounded by `timeout` (what is left of the call's); a timeout is reported
/// with the call's own `timeout`.
async fn send_attempt(
  client: &Client,
  request: &Request,
  timeout: Option<Duration>,
) -> Result<Reply, TransportError> {
  let timeout_ms = request.timeout.map(limits::timeout_ms);
  let url = parse_url(&request.url)?;
  let headers = http::request::headers(&request.library, request.body.is_some(), None);
  let mut builder = client
    .request(request.method.to_http(), url.clone())
    .headers(headers);
  if let Some(timeout) = timeout {
    builder = builder.timeout(timeout);
  }
  if let Some(body) = &request.body {
    builder = builder.body(body.clone());
  }
  let fail = |e: reqwest::Error| TransportError::from_reqwest(&e, &request.url, timeout_ms);
  let mut response = builder.send().await.map_err(fail)?;
  if let Some((code, reason)) = http::response::head_error(response.status(), response.headers()) {
    return Err(TransportError::parse(code, reason, &request.url));
  }
  // hyper's own limit is larger: the head is measured as Node's parser counts it.
  if http::response::head_size(response.status(), response.headers()) > limits::MAX_HEAD_BYTES {
    let reason = "Parse Error: Header overflow";
    return Err(TransportError::parse(
      "HPE_HEADER_OVERFLOW",
      reason,
      &request.url,
    ));
  }
  let mut reply =
    http::response::reply_head(response.status(), response.headers(), response.extensions());
  reply.final_url = (response.url() != &url).then(|| response.url().to_string());
  let limit = request.max_response_size;
  reply.body = match read_body(&mut response, limit).await {
    Ok(body) => body,
    Err(Some(e)) => return Err(fail(e)),
    Err(None) => return Err(TransportError::max_size(response.url().as_str(), limit)),
  };
  Ok(reply)
}

/// The most a body's `Content-Length` may reserve up front: a server's claim, not bytes.
const PREALLOCATE_MAX: u64 = 1024 * 1024;

/// The body, read chunk by chunk: past `limit` bytes the read stops and the response
/// (with its connection, which is not pooled with a body unread) is dropped at once.
/// `Err(None)` is the limit; `Err(Some(_))` a failed read.
async fn read_body(
  response: &mut reqwest::Response,
  limit: u64,
) -> Result<Vec<u8>, Option<reqwest::Error>> {
  let declared = response.content_length().unwrap_or(0);
  if declared > limit {
    return Err(None);
  }
  let mut body = Vec::with_capacity(declared.min(PREALLOCATE_MAX) as usize);
  while let Some(chunk) = response.chunk().await.map_err(Some)? {
    let total = (body.len() as u64).saturating_add(chunk.len() as u64);
    if total > limit {
      return Err(None);
    }
    if body.is_empty() && total == declared {
      // The whole body in one chunk: take it without a copy where it is not shared.
      body = Vec::from(chunk);
      continue;
    }
    body.extend_from_slice(&chunk);
  }
  Ok(body)
}

#[cfg(test)]
mod bounds_tests;
#[cfg(test)]
mod tests;
