//! The request pipeline: sign in Rust, send on the shared tokio runtime, and hand
//! JS one plain object per request. Failures resolve too (as `error*` fields), so JS
//! builds `RequestError`s with `pusher`'s exact shape.

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::{Env, Error, JsValue, Result, Status};
use napi_derive::napi;
use pusher_core::error::FailureKind;
use pusher_core::retry::{self, Outcome, RetryPolicy};
use pusher_core::signature::{signed_query, SigningInput};
use pusher_core::transport::{self, Request, TransportOptions};
use reqwest::header::HeaderValue;
use reqwest::Method;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[napi(object)]
pub struct RetryOptions {
  pub attempts: u32,
  pub min_delay_ms: f64,
  pub max_delay_ms: f64,
}

#[napi(object)]
pub struct ClientOptions {
  /// `scheme://host[:port]`, as `config.getBaseURL()` builds it.
  pub base_url: String,
  pub key: String,
  pub secret: Buffer,
  pub timeout_ms: Option<f64>,
  pub proxy: Option<String>,
  /// Extra trusted certificates, PEM.
  pub ca: Option<Buffer>,
  /// The `x-pusher-library` header value.
  pub library: String,
  pub retry: Option<RetryOptions>,
  /// Whether plain-HTTP requests may run on this thread's event loop (the main thread).
  pub event_loop: Option<bool>,
}

/// The outcome of one request. `status` is 0 when no response arrived; then the
/// `error*` fields say why.
#[napi(object)]
pub struct Reply {
  /// The `id` given to `start`.
  pub id: f64,
  /// The URL as signed (what `pusher` reports in `RequestError.url`).
  pub url: String,
  pub status: u32,
  /// The reason phrase as received (node-fetch's `statusText`).
  pub status_text: Option<String>,
  /// Only when a redirect was followed.
  pub final_url: Option<String>,
  /// `name\nvalue\n…`, lowercase names.
  pub headers: Option<String>,
  /// The body when it is valid UTF-8 (the usual JSON case)…
  pub text: Option<String>,
  /// …otherwise its bytes.
  pub bytes: Option<Buffer>,
  pub attempts: u32,
  /// For a failure (no response, or status >= 400): whether another attempt would be
  /// safe and might succeed (`RequestError.retryable`).
  pub retryable: bool,
  /// `timeout`, `network`, `tls`, `invalid-url`, `redirect` or `config`.
  pub error_kind: Option<String>,
  pub error_code: Option<String>,
  pub error_message: Option<String>,
}

/// The worker-thread-safe half of a `Client`: a request future owns an `Arc` of it,
/// never a borrow of the JS object, which a terminating worker frees at once.
struct Inner {
  base_url: String,
  key: String,
  secret: Vec<u8>,
  timeout: Option<Duration>,
  retry: Option<RetryPolicy>,
  library: HeaderValue,
  http: reqwest::Client,
}

#[napi]
pub struct Client {
  inner: Arc<Inner>,
  delivery: Arc<Delivery>,
  #[cfg(unix)]
  route: Option<std::rc::Rc<crate::event_loop::Route>>,
}

/// Sends a request the event loop cannot carry (a redirect to https) on tokio.
pub struct Handoff {
  inner: Arc<Inner>,
  delivery: Arc<Delivery>,
}

impl Handoff {
  /// `signed_url` is what the reply reports; `url` where the request goes now.
  pub fn send(
    &self,
    env: napi::sys::napi_env,
    id: f64,
    signed_url: String,
    method: &str,
    url: String,
    body: Option<Vec<u8>>,
  ) {
    // SAFETY: called on the JS thread with its env.
    let env = Env::from_raw(env);
    self.delivery.started(&env);
    let (inner, delivery) = (Arc::clone(&self.inner), Arc::clone(&self.delivery));
    let idempotent = method == "GET";
    let request = Request {
      method: if idempotent {
        Method::GET
      } else {
        Method::POST
      },
      url: url.clone(),
      body: body.map(Bytes::from),
      timeout: inner.timeout,
      library: inner.library.clone(),
    };
    napi::bindgen_prelude::spawn(async move {
      let (mut result, attempts) =
        transport::send_with_retry(&inner.http, &request, inner.retry.as_ref()).await;
      if let Ok(r) = &mut result {
        r.final_url.get_or_insert(url);
      }
      let mut reply = reply_of(signed_url, result, attempts, idempotent);
      reply.id = id;
      delivery.deliver(reply).await;
    });
  }
}

/// Finished replies waiting for the `onReplies` callback (which runs on the JS thread).
#[derive(Default)]
struct Mailbox {
  replies: Mutex<Vec<Reply>>,
  /// Requests started and not yet handed to JS; touched on the JS thread only.
  inflight: AtomicU32,
  /// The threadsafe function, unreferenced when nothing is in flight.
  raw: AtomicPtr<napi::sys::napi_threadsafe_function__>,
}

type Notifier =
  napi::threadsafe_function::ThreadsafeFunction<(), (), Vec<Reply>, Status, false, true>;

/// Hands replies to JS in batches through one long-lived threadsafe function per
/// client, instead of a promise and a threadsafe function per request (as an async
/// napi method does). The function keeps the event loop alive only while requests are
/// in flight, as those promises did.
struct Delivery {
  mailbox: Arc<Mailbox>,
  notifier: Notifier,
}

impl Delivery {
  fn new(on_replies: Function<Vec<Reply>, ()>) -> Result<Self> {
    let mailbox = Arc::new(Mailbox::default());
    let shared = Arc::clone(&mailbox);
    let notifier: Notifier = on_replies
      .build_threadsafe_function::<()>()
      .callee_handled::<false>()
      .weak::<true>()
      .build_callback(move |ctx| {
        let batch = std::mem::take(&mut *shared.replies.lock().unwrap_or_else(|p| p.into_inner()));
        let n = batch.len() as u32;
        if n > 0 && shared.inflight.fetch_sub(n, Ordering::Relaxed) == n {
          // SAFETY: on the JS thread, during a call of this very threadsafe function.
          unsafe {
            napi::sys::napi_unref_threadsafe_function(
              ctx.env.raw(),
              shared.raw.load(Ordering::Relaxed),
            )
          };
        }
        Ok(batch)
      })?;
    mailbox.raw.store(notifier.raw(), Ordering::Relaxed);
    Ok(Self { mailbox, notifier })
  }

  /// On the JS thread, as a request starts.
  fn started(&self, env: &Env) {
    if self.mailbox.inflight.fetch_add(1, Ordering::Relaxed) == 0 {
      // SAFETY: on the JS thread; the threadsafe function lives as long as `self`.
      unsafe { napi::sys::napi_ref_threadsafe_function(env.raw(), self.notifier.raw()) };
    }
  }

  async fn deliver(&self, reply: Reply) {
    let first = {
      let mut replies = self
        .mailbox
        .replies
        .lock()
        .unwrap_or_else(|p| p.into_inner());
      replies.push(reply);
      replies.len() == 1
    };
    if first {
      // Let the requests that finish in the same tick join the batch.
      napi::tokio::task::yield_now().await;
      self
        .notifier
        .call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
  }
}

fn ms(value: f64) -> Option<Duration> {
  // A finite but huge value (1e300 ms) must not panic; JS already caps the timeout.
  let seconds = (value.is_finite() && value > 0.0).then_some(value / 1000.0)?;
  Duration::try_from_secs_f64(seconds).ok()
}

/// A retry delay: zero allowed (immediate retries), `default` for anything unusable.
fn delay_ms(value: f64, default: Duration) -> Duration {
  if value.is_finite() && value >= 0.0 {
    Duration::from_secs_f64(value.min(1e12) / 1000.0)
  } else {
    default
  }
}

fn pairs(params: Option<Vec<String>>) -> Vec<(String, String)> {
  let mut flat = params.unwrap_or_default().into_iter();
  let mut out = Vec::new();
  while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
    out.push((k, v));
  }
  out
}

/// The `errorKind` names JS switches on (lib/request.js).
fn kind_name(kind: FailureKind) -> &'static str {
  match kind {
    FailureKind::Timeout => "timeout",
    FailureKind::Network => "network",
    FailureKind::Tls => "tls",
    FailureKind::InvalidUrl => "invalid-url",
    FailureKind::Redirect => "redirect",
    FailureKind::Config => "config",
  }
}

#[napi]
impl Client {
  /// Throws when `ca` holds no certificate or `proxy` is not a URL.
  #[napi(constructor, catch_unwind)]
  /// `onReply` (optional) receives the replies of requests carried by the event loop,
  /// as positional arguments; without it everything goes through tokio.
  pub fn new(
    env: Env,
    options: ClientOptions,
    on_replies: Function<Vec<Reply>, ()>,
    on_reply: Option<Function<(), ()>>,
  ) -> Result<Self> {
    let timeout = options.timeout_ms.and_then(ms);
    // With retries on, a hung connect must fail as a connect error (retryable for a
    // POST) before the request deadline; without them, the transport is `pusher`'s.
    let retrying = options.retry.as_ref().is_some_and(|r| r.attempts > 1);
    let transport = TransportOptions {
      proxy: options.proxy,
      ca: options.ca.map(|b| b.to_vec()),
      connect_timeout: retrying.then(|| transport::retry_connect_timeout(timeout)),
    };
    let http = transport::shared_client(&transport)
      .map_err(|e| Error::new(Status::InvalidArg, e.message))?;
    let library = HeaderValue::from_str(&options.library)
      .map_err(|_| Error::new(Status::InvalidArg, "invalid library header"))?;
    let retry = options
      .retry
      .filter(|r| r.attempts > 1)
      .map(|r| RetryPolicy {
        attempts: r.attempts,
        min_delay: delay_ms(r.min_delay_ms, Duration::from_millis(100)),
        max_delay: delay_ms(r.max_delay_ms, Duration::from_secs(5)),
      });
    let event_loop =
      options.event_loop == Some(true) && transport.proxy.is_none() && retry.is_none();
    let ca = transport.ca.clone();
    let inner = Inner {
      base_url: options.base_url,
      key: options.key,
      secret: options.secret.to_vec(),
      timeout,
      retry,
      library,
      http,
    };
    let on_reply = on_reply.map(|f| f.raw());
    let delivery = Arc::new(Delivery::new(on_replies)?);
    let inner = Arc::new(inner);
    #[cfg(unix)]
    let route = on_reply
      .filter(|_| event_loop)
      .and_then(|on_reply| {
        let handoff = Handoff {
          inner: Arc::clone(&inner),
          delivery: Arc::clone(&delivery),
        };
        // SAFETY: the constructor runs on the JS thread; `on_replies` is a live function.
        unsafe {
          let library = library_str(&inner.library);
          crate::event_loop::Route::new(
            env.raw(),
            on_reply,
            &inner.base_url,
            inner.timeout,
            library,
            ca,
            handoff,
          )
        }
      })
      .map(std::rc::Rc::new);
    #[cfg(not(unix))]
    let _ = (event_loop, env, on_reply, ca);
    Ok(Self {
      inner,
      delivery,
      #[cfg(unix)]
      route,
    })
  }

  /// Signs and sends one request: a GET when `get`, otherwise a POST. `params` is
  /// `[key, value, key, value, …]`, already stringified and checked against the reserved
  /// names; `path` includes `/apps/<id>`. The reply (carrying `id`) goes to `onReply`
  /// (event loop) or `onReplies` (tokio, in batches).
  #[napi(catch_unwind)]
  #[allow(clippy::too_many_arguments)]
  pub fn start(
    &self,
    env: &Env,
    id: f64,
    get: bool,
    path: String,
    params: Option<Vec<String>>,
    body: Option<String>,
    timestamp: i64,
  ) -> Result<()> {
    let method = if get { "GET" } else { "POST" };
    #[cfg(unix)]
    if let Some(route) = &self.route {
      let url = self
        .inner
        .signed_url(method, &path, params, body.as_deref(), timestamp);
      crate::event_loop::start(route, id, method, url, body.map(String::into_bytes));
      return Ok(());
    }
    let delivery = Arc::clone(&self.delivery);
    delivery.started(env);
    let inner = Arc::clone(&self.inner);
    napi::bindgen_prelude::spawn(async move {
      let mut reply = inner.send(method, path, params, body, timestamp).await;
      reply.id = id;
      delivery.deliver(reply).await;
    });
    Ok(())
  }
}

fn library_str(value: &HeaderValue) -> &str {
  value.to_str().unwrap_or("pusher-native")
}

impl Inner {
  /// `base_url + path + "?" + signed query`.
  fn signed_url(
    &self,
    method: &str,
    path: &str,
    params: Option<Vec<String>>,
    body: Option<&str>,
    timestamp: i64,
  ) -> String {
    let params = pairs(params);
    let query = signed_query(
      &SigningInput {
        method,
        path,
        key: &self.key,
        timestamp,
        body: body.map(str::as_bytes),
        params: &params,
      },
      &self.secret,
    );
    format!("{}{}?{}", self.base_url, path, query)
  }

  async fn send(
    &self,
    method: &str,
    path: String,
    params: Option<Vec<String>>,
    body: Option<String>,
    timestamp: i64,
  ) -> Reply {
    let url = self.signed_url(method, &path, params, body.as_deref(), timestamp);
    let request = Request {
      method: if method == "GET" {
        Method::GET
      } else {
        Method::POST
      },
      url,
      body: body.map(Bytes::from),
      timeout: self.timeout,
      library: self.library.clone(),
    };
    let (result, attempts) =
      transport::send_with_retry(&self.http, &request, self.retry.as_ref()).await;
    reply_of(request.url, result, attempts, request.method == Method::GET)
  }
}

/// The JS-facing reply for the request to `url` (as signed).
pub fn reply_of(
  url: String,
  result: std::result::Result<transport::Reply, pusher_core::error::TransportError>,
  attempts: u32,
  idempotent: bool,
) -> Reply {
  let retryable = match &result {
    Ok(r) if r.status < 400 => false,
    Ok(r) => retry::is_retryable(
      idempotent,
      &Outcome::Status {
        status: r.status,
        retry_after: r.retry_after.as_deref(),
      },
    ),
    Err(e) => retry::is_retryable(idempotent, &Outcome::Failed(e)),
  };
  let mut reply = Reply {
    id: 0.0,
    url,
    status: 0,
    status_text: None,
    final_url: None,
    headers: None,
    text: None,
    bytes: None,
    attempts,
    retryable,
    error_kind: None,
    error_code: None,
    error_message: None,
  };
  match result {
    Ok(r) => {
      reply.status = r.status.into();
      reply.status_text = Some(r.status_text);
      reply.final_url = r.final_url;
      reply.headers = Some(r.headers);
      match String::from_utf8(r.body) {
        Ok(text) => reply.text = Some(text),
        Err(e) => reply.bytes = Some(e.into_bytes().into()),
      }
    }
    Err(e) => {
      reply.error_kind = Some(kind_name(e.kind).into());
      reply.error_code = Some(e.code.into());
      reply.error_message = Some(e.message);
    }
  }
  reply
}

/// The signed query string of `createSignedQueryString`, for any method and path.
#[napi(catch_unwind)]
pub fn signed_query_string(
  key: String,
  secret: crate::crypto::Bytes,
  method: String,
  path: String,
  params: Option<Vec<String>>,
  body: Option<crate::crypto::Bytes>,
  timestamp: i64,
) -> String {
  let params = pairs(params);
  let input = SigningInput {
    method: &method,
    path: &path,
    key: &key,
    timestamp,
    body: body.as_ref().map(crate::crypto::bytes),
    params: &params,
  };
  signed_query(&input, crate::crypto::bytes(&secret))
}
