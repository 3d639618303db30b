//! Requests on the shared tokio runtime (reqwest): proxies, retries, worker threads,
//! and wherever the event loop cannot be used. Replies reach JS through the client's
//! mailbox.

use crate::deliver::{Mailbox, RequestContext};
use crate::reply::reply_of;
use bytes::Bytes;
use napi::sys;
use pusher_core::http::Method;
use pusher_core::retry::RetryPolicy;
use pusher_core::transport::{self, Request};
use reqwest::header::HeaderValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub struct TokioTransport {
  pub http: Arc<transport::SharedClient>,
  /// This client's share of the connections to its origin (`maxSockets`).
  pub sockets: Arc<Semaphore>,
  pub timeout: Option<Duration>,
  pub max_response_size: u64,
  pub connect_timeout: Option<Duration>,
  pub retry: Option<RetryPolicy>,
  pub library: HeaderValue,
  pub mailbox: Arc<Mailbox>,
}

impl TokioTransport {
  /// # Safety
  /// Called from JS on the client's thread (`env`).
  pub unsafe fn start(
    self: &Arc<Self>,
    env: sys::napi_env,
    id: f64,
    method: Method,
    url: String,
    body: Option<Bytes>,
  ) {
    let context = RequestContext::capture(env).into_raw();
    self.mailbox.started(env);
    let this = Arc::clone(self);
    napi::bindgen_prelude::spawn(async move {
      let request = Request {
        method,
        url,
        body,
        timeout: this.timeout,
        library: this.library.clone(),
        max_response_size: this.max_response_size,
        connect_timeout: this.connect_timeout,
      };
      let http = this.http.get();
      let (result, attempts) =
        transport::send_with_retry(&http, &request, this.retry.as_ref(), Some(&this.sockets)).await;
      let result =
        result.map_err(|e| pusher_core::proxy::blame_proxy(e, &request.url, this.http.proxy()));
      if let Err(e) = &result {
        if pusher_core::http::response::is_framing_code(e.code) {
          this.http.renew();
        }
      }
      let reply = reply_of(id, request.url, result, attempts, method.is_idempotent());
      // Let the requests that finish in the same tick join the batch.
      napi::tokio::task::yield_now().await;
      this.mailbox.post(context, reply);
    });
  }
}

impl Drop for TokioTransport {
  fn drop(&mut self) {
    self.mailbox.orphan();
  }
}
