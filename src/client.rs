//! The native client behind each Pusher config: signs in Rust and sends on one of two
//! transports, chosen once. Failures resolve too (as the reply's error fields), so JS
//! builds `RequestError`s with `pusher`'s exact shape.

use crate::signing::Signer;
use crate::tokio_transport::TokioTransport;
use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Function};
use napi::{Env, Error, JsValue, Result, Status};
use napi_derive::napi;
use pusher_core::http::limits;
use pusher_core::http::Method;
use pusher_core::retry::RetryPolicy;
use pusher_core::transport::{self, TransportOptions};
use reqwest::header::HeaderValue;
use std::sync::Arc;
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
  /// Whether requests may run on this thread's event loop (the main thread).
  pub event_loop: Option<bool>,
  /// The largest response body read, in bytes (`maxResponseSize`); the core's default
  /// when absent.
  pub max_response_size: Option<f64>,
  /// Connections per origin (`maxSockets`); the core's default when absent.
  pub max_sockets: Option<f64>,
}

/// Where a client's requests go.
enum Transport {
  #[cfg(unix)]
  EventLoop(std::rc::Rc<crate::event_loop::Client>),
  Tokio(Arc<TokioTransport>),
}

#[napi]
pub struct Client {
  signer: Signer,
  transport: Transport,
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

/// A positive whole count from JS (checked there), or `default`; huge values saturate.
fn count_or(value: Option<f64>, default: u64) -> u64 {
  match value {
    Some(v) if v.is_finite() && v >= 1.0 => v.min(u64::MAX as f64) as u64,
    Some(v) if v == f64::INFINITY => u64::MAX,
    _ => default,
  }
}

fn retry_policy(retry: Option<RetryOptions>) -> Option<RetryPolicy> {
  let defaults = RetryPolicy::default();
  retry.filter(|r| r.attempts > 1).map(|r| RetryPolicy {
    attempts: r.attempts.min(pusher_core::retry::MAX_ATTEMPTS),
    min_delay: delay_ms(r.min_delay_ms, defaults.min_delay),
    max_delay: delay_ms(r.max_delay_ms, defaults.max_delay),
  })
}

/// `scheme://host:port` of the base URL, the key of the connection limit.
fn origin_of(base_url: &str) -> String {
  url::Url::parse(base_url)
    .map(|u| u.origin().ascii_serialization())
    .unwrap_or_else(|_| base_url.to_owned())
}

#[napi]
impl Client {
  /// Throws when `ca` holds no certificate or `proxy` is not a URL. Every reply goes
  /// to `onReply`, whichever transport carried the request.
  #[napi(
    constructor,
    catch_unwind,
    ts_args_type = "options: ClientOptions, onReply: (id: number, status: number, statusText: string | undefined, headers: string | undefined, body: string | Buffer | undefined, url: string, finalUrl: string | undefined, retryable: boolean, errorKind: ErrorKind | undefined, errorCode: string | undefined, errorMessage: string | undefined, attempts: number) => void"
  )]
  pub fn new(env: Env, options: ClientOptions, on_reply: Function<(), ()>) -> Result<Self> {
    let timeout = options.timeout_ms.and_then(ms);
    let retry = retry_policy(options.retry);
    let max_response_size = count_or(options.max_response_size, limits::MAX_RESPONSE_SIZE_DEFAULT);
    let max_sockets = usize::try_from(count_or(
      options.max_sockets,
      limits::MAX_SOCKETS_DEFAULT as u64,
    ))
    .unwrap_or(usize::MAX);
    let ca = options.ca.map(|b| b.to_vec());
    let library = HeaderValue::from_str(&options.library)
      .map_err(|_| Error::new(Status::InvalidArg, "invalid library header"))?;
    if let Some(pem) = &ca {
      pusher_core::tls::config(Some(pem)).map_err(|e| Error::new(Status::InvalidArg, e.message))?;
    }
    let signer = Signer {
      base_url: options.base_url,
      key: options.key,
      secret: options.secret.to_vec(),
    };
    #[cfg(unix)]
    if options.event_loop == Some(true) && options.proxy.is_none() {
      // SAFETY: the constructor runs on the JS thread; `on_reply` is a live function.
      let client = unsafe {
        crate::event_loop::Client::new(
          env.raw(),
          on_reply.raw(),
          &signer.base_url,
          timeout,
          library.clone(),
          ca.clone(),
          max_response_size,
          max_sockets,
          retry,
        )
      };
      if let Some(client) = client {
        return Ok(Self {
          signer,
          transport: Transport::EventLoop(std::rc::Rc::new(client)),
        });
      }
    }
    let options = TransportOptions {
      proxy: options.proxy,
      ca,
    };
    let http =
      transport::shared_client(&options).map_err(|e| Error::new(Status::InvalidArg, e.message))?;
    let sockets = http.sockets(&origin_of(&signer.base_url), max_sockets);
    // SAFETY: on the JS thread; the reference is owned by the mailbox from now on.
    let mailbox = unsafe {
      let mut on_ref = std::ptr::null_mut();
      let status = napi::sys::napi_create_reference(env.raw(), on_reply.raw(), 1, &mut on_ref);
      if status != napi::sys::Status::napi_ok {
        return Err(Error::new(Status::GenericFailure, "could not keep the reply callback"));
      }
      crate::deliver::Mailbox::new(env.raw(), on_ref)
    }
    .ok_or_else(|| Error::new(Status::GenericFailure, "could not create the reply channel"))?;
    Ok(Self {
      signer,
      transport: Transport::Tokio(Arc::new(TokioTransport {
        http,
        sockets,
        timeout,
        max_response_size,
        // With retries on, a hung connect fails as a connect error (retryable for a
        // POST); without them, the transport is `pusher`'s.
        connect_timeout: retry.is_some().then_some(limits::RETRY_CONNECT_TIMEOUT),
        retry,
        library,
        mailbox,
      })),
    })
  }

  /// Which transport carries this client's requests: `"event-loop"` or `"tokio"`.
  #[napi(getter, catch_unwind)]
  pub fn transport(&self) -> &'static str {
    match self.transport {
      #[cfg(unix)]
      Transport::EventLoop(_) => "event-loop",
      Transport::Tokio(_) => "tokio",
    }
  }

  /// Signs and sends one request: a GET when `get`, otherwise a POST. `params` is
  /// `[key, value, key, value, …]`, already stringified and checked against the reserved
  /// names; `path` includes `/apps/<id>`. The reply (carrying `id`) goes to `onReply`.
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
    let method = if get { Method::Get } else { Method::Post };
    let url = self
      .signer
      .signed_url(method.as_str(), &path, params, body.as_deref(), timestamp);
    let body = body.map(Bytes::from);
    // SAFETY: called from JS on the client's thread.
    unsafe {
      match &self.transport {
        #[cfg(unix)]
        Transport::EventLoop(client) => crate::event_loop::start(client, id, method, url, body),
        Transport::Tokio(tokio) => tokio.start(env.raw(), id, method, url, body),
      }
    }
    Ok(())
  }
}
