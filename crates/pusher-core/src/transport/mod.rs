//! The HTTP transport: one pooled keep-alive reqwest client per distinct
//! (proxy, extra CA) configuration, rustls with Mozilla's roots (Node's bundled set)
//! plus `NODE_EXTRA_CA_CERTS` and the caller's `ca`, and whole-request timeouts.

use crate::error::TransportError;
use crate::http::request::parse_url;
pub use crate::http::response::Reply;
use crate::http::{self, limits, Method};
use crate::retry::{Outcome, RetryPolicy};
use bytes::Bytes;
use reqwest::header::HeaderValue;
use reqwest::{redirect, Client};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// What makes two transports different; everything else is per request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TransportOptions {
  /// `http://host:port` (or https) proxy for every request; none from the environment.
  pub proxy: Option<String>,
  /// Extra trusted certificates, PEM.
  pub ca: Option<Vec<u8>>,
  /// A bound on connecting (DNS, TCP, TLS handshake), so that a hung connect fails as
  /// a connect error, which is safe to retry even for a POST. Set only with retries:
  /// see [`retry_connect_timeout`].
  pub connect_timeout: Option<Duration>,
}

/// The longest connect phase when retries are on, whatever the request timeout.
const MAX_CONNECT: Duration = Duration::from_secs(10);

/// The connect timeout for a client with retries and the whole-request `timeout`:
/// three quarters of it (strictly less, so that a hung connect is reported as a connect
/// failure rather than racing the request deadline), and at most 10 s.
pub fn retry_connect_timeout(timeout: Option<Duration>) -> Duration {
  timeout.map_or(MAX_CONNECT, |t| t.mul_f64(0.75).min(MAX_CONNECT))
}

pub struct Request {
  pub method: Method,
  /// The URL exactly as signed; parsed here with WHATWG rules, as node-fetch does.
  pub url: String,
  pub body: Option<Bytes>,
  pub timeout: Option<Duration>,
  pub library: HeaderValue,
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
    .http1_only();
  if let Some(timeout) = options.connect_timeout {
    builder = builder.connect_timeout(timeout);
  }
  if let Some(proxy) = &options.proxy {
    let proxy = reqwest::Proxy::all(proxy.as_str())
      .map_err(|_| TransportError::config(format!("invalid proxy URL: {proxy}")))?;
    builder = builder.proxy(proxy);
  }
  builder
    .build()
    .map_err(|e| TransportError::config(format!("HTTP client setup failed: {e}")))
}

/// The client for one set of options, shared by every Pusher instance that has them (so
/// connections are pooled across instances, and across serverless invocations in one
/// process). Renewed, with a new pool, after a response whose framing was ambiguous:
/// reqwest may already have pooled that connection, with bytes in flight that could be
/// read as the next response.
pub struct SharedClient {
  options: TransportOptions,
  client: Mutex<Client>,
}

impl SharedClient {
  pub fn get(&self) -> Client {
    self
      .client
      .lock()
      .unwrap_or_else(|p| p.into_inner())
      .clone()
  }

  /// The proxy every request goes through, if any.
  pub fn proxy(&self) -> Option<&str> {
    self.options.proxy.as_deref()
  }

  /// A new pool for later requests; the old one goes with its last request.
  pub fn renew(&self) {
    if let Ok(client) = build_client(&self.options) {
      *self.client.lock().unwrap_or_else(|p| p.into_inner()) = client;
    }
  }
}

pub fn shared_client(options: &TransportOptions) -> Result<Arc<SharedClient>, TransportError> {
  static CLIENTS: OnceLock<Mutex<HashMap<TransportOptions, Arc<SharedClient>>>> = OnceLock::new();
  let clients = CLIENTS.get_or_init(Default::default);
  let mut clients = clients
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner());
  if let Some(client) = clients.get(options) {
    return Ok(Arc::clone(client));
  }
  let client = Arc::new(SharedClient {
    options: options.clone(),
    client: Mutex::new(build_client(options)?),
  });
  clients.insert(options.clone(), Arc::clone(&client));
  Ok(client)
}

/// Sends `request`, retrying as `policy` allows; returns the last result and the number
/// of attempts made.
pub async fn send_with_retry(
  client: &Client,
  request: &Request,
  policy: Option<&RetryPolicy>,
) -> (Result<Reply, TransportError>, u32) {
  let idempotent = request.method.is_idempotent();
  let mut attempt = 1;
  loop {
    let result = send(client, request).await;
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
    match policy.next_delay(attempt, idempotent, &outcome, jitter()) {
      Some(delay) => tokio::time::sleep(delay).await,
      None => return (result, attempt),
    }
    attempt += 1;
  }
}

fn jitter() -> f64 {
  let mut bytes = [0u8; 8];
  // Without OS randomness the backoff is merely less spread out.
  let _ = getrandom::fill(&mut bytes);
  (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

pub async fn send(client: &Client, request: &Request) -> Result<Reply, TransportError> {
  let timeout_ms = request.timeout.map(limits::timeout_ms);
  let url = parse_url(&request.url)?;
  let headers = http::request::headers(&request.library, request.body.is_some(), None);
  let mut builder = client
    .request(request.method.to_http(), url.clone())
    .headers(headers);
  if let Some(timeout) = request.timeout {
    builder = builder.timeout(timeout);
  }
  if let Some(body) = &request.body {
    builder = builder.body(body.clone());
  }
  let fail = |e: reqwest::Error| TransportError::from_reqwest(&e, &request.url, timeout_ms);
  let response = builder.send().await.map_err(fail)?;
  if let Some((code, reason)) = http::response::framing_error(response.headers()) {
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
  reply.body = response.bytes().await.map_err(fail)?.to_vec();
  Ok(reply)
}

#[cfg(test)]
mod tests;
