//! The HTTP transport: one pooled keep-alive reqwest client per distinct
//! (proxy, extra CA) configuration, rustls with Mozilla's roots (Node's bundled set)
//! plus `NODE_EXTRA_CA_CERTS` and the caller's `ca`, and whole-request timeouts.

use crate::error::TransportError;
use crate::http::{self, limits, Method};
use crate::retry::{Outcome, RetryPolicy};
use bytes::Bytes;
use reqwest::header::HeaderValue;
use reqwest::{redirect, Client, Url};
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

#[derive(Debug, Default)]
pub struct Reply {
  pub status: u16,
  /// The reason phrase as received (latin-1), as Node's `statusMessage`.
  pub status_text: String,
  /// Set only when a redirect was followed.
  pub final_url: Option<String>,
  /// Lowercase names and latin-1 values, `name\nvalue\n…`, parsed lazily in JS.
  pub headers: String,
  pub body: Vec<u8>,
  pub retry_after: Option<String>,
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

/// Parses as node-fetch 2 does before sending: WHATWG parsing, absolute http(s) only.
pub fn parse_url(url: &str) -> Result<Url, TransportError> {
  let parsed = Url::parse(url).map_err(|_| TransportError::invalid_url("Invalid URL"))?;
  match parsed.scheme() {
    "http" | "https" if parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(parsed),
    "http" | "https" => Err(TransportError::invalid_url(
      "Only absolute URLs are supported",
    )),
    _ => Err(TransportError::invalid_url(
      "Only HTTP(S) protocols are supported",
    )),
  }
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
mod tests {
  use super::*;
  use std::io::{Read, Write};
  use std::net::TcpListener;

  /// A one-shot HTTP server on loopback that answers each connection with `reply`
  /// and hands back what it received.
  fn serve(
    reply: &'static str,
    connections: usize,
  ) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
      let mut seen = Vec::new();
      for _ in 0..connections {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let n = stream.read(&mut buf).unwrap();
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        stream.write_all(reply.as_bytes()).unwrap();
      }
      seen
    });
    (format!("http://{addr}"), handle)
  }

  fn request(url: String, body: Option<&str>) -> Request {
    Request {
      method: if body.is_some() {
        Method::Post
      } else {
        Method::Get
      },
      url,
      body: body.map(|b| Bytes::copy_from_slice(b.as_bytes())),
      timeout: Some(Duration::from_secs(5)),
      library: HeaderValue::from_static("pusher-native test"),
    }
  }

  #[tokio::test]
  async fn sends_the_request_and_reads_the_reply() {
    let (base, server) =
      serve("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}", 1);
    let client = build_client(&TransportOptions::default()).unwrap();
    let reply = send(
      &client,
      &request(format!("{base}/apps/1/events?info=a b"), Some("{\"a\":1}")),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.status_text, "OK");
    assert_eq!(reply.body, b"{}");
    assert!(reply.headers.contains("content-type\napplication/json\n"));
    assert_eq!(reply.final_url, None);
    let seen = server.join().unwrap().remove(0);
    assert!(
      seen.starts_with("POST /apps/1/events?info=a%20b HTTP/1.1\r\n"),
      "{seen}"
    );
    assert!(seen.contains("x-pusher-library: pusher-native test\r\n"));
    assert!(seen.contains("content-type: application/json\r\n"));
    assert!(seen.ends_with("\r\n\r\n{\"a\":1}"));
  }

  #[tokio::test]
  async fn reqwest_sends_exactly_the_contract_bytes() {
    let reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let (base, server) = serve(reply, 2);
    let client = build_client(&TransportOptions::default()).unwrap();
    let host = base.trim_start_matches("http://").to_owned();
    let body = "{\"name\":\"e\",\"channels\":[\"c\"],\"data\":\"{}\"}";
    send(
      &client,
      &request(format!("{base}/apps/1/events?a=b c"), Some(body)),
    )
    .await
    .unwrap();
    send(
      &client,
      &request(format!("{base}/apps/1/channels?info=x"), None),
    )
    .await
    .unwrap();
    let seen = server.join().unwrap();
    let post = http::request::wire_bytes(
      Method::Post,
      "/apps/1/events?a=b%20c",
      &host,
      "pusher-native test",
      Some(body.as_bytes()),
    );
    let get = http::request::wire_bytes(
      Method::Get,
      "/apps/1/channels?info=x",
      &host,
      "pusher-native test",
      None,
    );
    assert_eq!(seen[0], String::from_utf8(post).unwrap());
    assert_eq!(seen[1], String::from_utf8(get).unwrap());
  }

  #[tokio::test]
  async fn refused_connections_are_classified() {
    let port = TcpListener::bind("127.0.0.1:0")
      .unwrap()
      .local_addr()
      .unwrap()
      .port();
    let client = build_client(&TransportOptions::default()).unwrap();
    let err = send(
      &client,
      &request(format!("http://127.0.0.1:{port}/x"), None),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ECONNREFUSED");
    assert!(err.before_send);
    assert!(
      err
        .message
        .contains(&format!("connect ECONNREFUSED 127.0.0.1:{port}")),
      "{}",
      err.message
    );
  }

  #[tokio::test]
  async fn a_closed_connection_is_a_reset() {
    let (base, _server) = serve("", 1);
    let client = build_client(&TransportOptions::default()).unwrap();
    let err = send(&client, &request(format!("{base}/x"), None))
      .await
      .unwrap_err();
    assert_eq!(err.code, "ECONNRESET", "{err:?}");
  }

  #[tokio::test]
  async fn timeouts_cover_the_whole_request() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let _hold = std::thread::spawn(move || {
      let (mut stream, _) = listener.accept().unwrap();
      let _ = stream.read(&mut [0u8; 4096]);
      let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{");
      std::thread::sleep(Duration::from_secs(3));
    });
    let client = build_client(&TransportOptions::default()).unwrap();
    let mut req = request(format!("{base}/x"), None);
    req.timeout = Some(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = send(&client, &req).await.unwrap_err();
    assert_eq!(
      err.code,
      "ETIMEDOUT",
      "{err:?} after {:?}",
      started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
  }

  #[tokio::test]
  async fn retries_a_refused_post_then_gives_up() {
    let port = TcpListener::bind("127.0.0.1:0")
      .unwrap()
      .local_addr()
      .unwrap()
      .port();
    let client = build_client(&TransportOptions::default()).unwrap();
    let policy = fast_retries(3);
    let (result, attempts) = send_with_retry(
      &client,
      &request(format!("http://127.0.0.1:{port}/x"), Some("{}")),
      Some(&policy),
    )
    .await;
    assert_eq!(result.unwrap_err().code, "ECONNREFUSED");
    assert_eq!(attempts, 3);
  }

  /// Retries a millisecond apart.
  fn fast_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy {
      attempts,
      min_delay: Duration::from_millis(1),
      max_delay: Duration::from_millis(2),
    }
  }

  #[tokio::test]
  async fn a_post_answered_500_is_not_retried() {
    let (base, server) = serve(
      "HTTP/1.1 500 Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
      1,
    );
    let client = build_client(&TransportOptions::default()).unwrap();
    let policy = fast_retries(3);
    let (result, attempts) = send_with_retry(
      &client,
      &request(format!("{base}/x"), Some("{}")),
      Some(&policy),
    )
    .await;
    assert_eq!(result.unwrap().status, 500);
    assert_eq!(attempts, 1);
    assert_eq!(server.join().unwrap().len(), 1);
  }

  /// A listener whose accept queue is full: further SYNs are dropped, so a connect to
  /// it hangs (Linux).
  fn hung_listener() -> (tokio::net::TcpListener, String, Vec<std::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
      match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
        Ok(stream) => fillers.push(stream),
        Err(_) => break,
      }
    }
    (listener, format!("http://{addr}"), fillers)
  }

  #[tokio::test]
  async fn a_connect_timeout_is_before_send_and_retried_for_a_post() {
    let (_listener, base, _fillers) = hung_listener();
    let options = TransportOptions {
      connect_timeout: Some(Duration::from_millis(150)),
      ..Default::default()
    };
    let client = build_client(&options).unwrap();
    let policy = fast_retries(2);
    let started = std::time::Instant::now();
    let (result, attempts) = send_with_retry(
      &client,
      &request(format!("{base}/x"), Some("{}")),
      Some(&policy),
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(
      (err.kind, err.code, err.before_send),
      (crate::error::FailureKind::Network, "ETIMEDOUT", true),
      "{err:?}"
    );
    assert!(
      err.message.contains("connect ETIMEDOUT 127.0.0.1:"),
      "{}",
      err.message
    );
    assert_eq!(attempts, 2);
    assert!(
      started.elapsed() < Duration::from_secs(2),
      "{:?}",
      started.elapsed()
    );
  }

  #[tokio::test]
  async fn the_request_deadline_during_connect_is_not_before_send() {
    // Without a connect timeout, the whole-request deadline fires; nothing proves the
    // body did not leave, so a POST is not retried.
    let (_listener, base, _fillers) = hung_listener();
    let client = build_client(&TransportOptions::default()).unwrap();
    let policy = fast_retries(3);
    let mut req = request(format!("{base}/x"), Some("{}"));
    req.timeout = Some(Duration::from_millis(150));
    let (result, attempts) = send_with_retry(&client, &req, Some(&policy)).await;
    let err = result.unwrap_err();
    assert_eq!(
      (err.kind, err.before_send),
      (crate::error::FailureKind::Timeout, false),
      "{err:?}"
    );
    assert_eq!(attempts, 1);
  }

  #[test]
  fn connect_timeout_for_retries() {
    assert_eq!(retry_connect_timeout(None), Duration::from_secs(10));
    assert_eq!(
      retry_connect_timeout(Some(Duration::from_millis(200))),
      Duration::from_millis(150)
    );
    assert_eq!(
      retry_connect_timeout(Some(Duration::from_secs(60))),
      Duration::from_secs(10)
    );
  }

  #[test]
  fn urls_are_checked_like_node_fetch() {
    assert_eq!(
      parse_url("ftp://x/y").unwrap_err().message,
      "Only HTTP(S) protocols are supported"
    );
    assert_eq!(parse_url("http://").unwrap_err().message, "Invalid URL");
    assert_eq!(
      parse_url("http://h/a b?c=d e").unwrap().as_str(),
      "http://h/a%20b?c=d%20e"
    );
  }

  #[test]
  fn a_ca_without_certificates_is_refused() {
    let options = TransportOptions {
      ca: Some(b"not a certificate".to_vec()),
      ..Default::default()
    };
    assert!(build_client(&options)
      .unwrap_err()
      .message
      .contains("no PEM certificate"));
    let proxy = TransportOptions {
      proxy: Some("::bad::".into()),
      ..Default::default()
    };
    assert!(build_client(&proxy).is_err());
  }
}
