//! The outcome of one request, as both transports hand it to JS: one type, built from
//! the core's `Reply` or `TransportError` in one place.

use napi_derive::napi;
use pusher_core::error::{FailureKind, TransportError};
use pusher_core::retry::{self, Outcome};

/// Why a request got no response (`RequestError.error` is built from it in JS).
#[napi(string_enum)]
#[derive(Debug, PartialEq, Eq)]
pub enum ErrorKind {
  #[napi(value = "timeout")]
  Timeout,
  #[napi(value = "network")]
  Network,
  #[napi(value = "tls")]
  Tls,
  #[napi(value = "invalid-url")]
  InvalidUrl,
  #[napi(value = "redirect")]
  Redirect,
  #[napi(value = "config")]
  Config,
  #[napi(value = "max-size")]
  MaxSize,
}

impl ErrorKind {
  pub fn as_str(&self) -> &'static str {
    match self {
      ErrorKind::Timeout => "timeout",
      ErrorKind::Network => "network",
      ErrorKind::Tls => "tls",
      ErrorKind::InvalidUrl => "invalid-url",
      ErrorKind::Redirect => "redirect",
      ErrorKind::Config => "config",
      ErrorKind::MaxSize => "max-size",
    }
  }
}

impl From<FailureKind> for ErrorKind {
  fn from(kind: FailureKind) -> Self {
    match kind {
      FailureKind::Timeout => ErrorKind::Timeout,
      FailureKind::Network => ErrorKind::Network,
      FailureKind::Tls => ErrorKind::Tls,
      FailureKind::InvalidUrl => ErrorKind::InvalidUrl,
      FailureKind::Redirect => ErrorKind::Redirect,
      FailureKind::Config => ErrorKind::Config,
      FailureKind::MaxSize => ErrorKind::MaxSize,
    }
  }
}

pub struct Failure {
  pub kind: ErrorKind,
  pub code: &'static str,
  pub message: String,
}

pub enum Body {
  /// Valid UTF-8 (the usual JSON case).
  Text(String),
  Bytes(Vec<u8>),
}

pub struct Reply {
  /// The id JS gave the request.
  pub id: f64,
  /// The URL as signed (what `pusher` reports in `RequestError.url`).
  pub url: String,
  /// 0 when no response arrived; `failure` says why.
  pub status: u16,
  pub status_text: Option<String>,
  /// Only when a redirect was followed.
  pub final_url: Option<String>,
  /// `name\nvalue\n…`, lowercase names.
  pub headers: Option<String>,
  pub body: Option<Body>,
  pub attempts: u32,
  /// For a failure (no response, or status >= 400): whether another attempt would be
  /// safe and might succeed (`RequestError.retryable`).
  pub retryable: bool,
  pub failure: Option<Failure>,
}

/// The reply for the request to `url` (as signed).
pub fn reply_of(
  id: f64,
  url: String,
  result: Result<pusher_core::http::response::Reply, TransportError>,
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
    id,
    url,
    status: 0,
    status_text: None,
    final_url: None,
    headers: None,
    body: None,
    attempts,
    retryable,
    failure: None,
  };
  match result {
    Ok(r) => {
      reply.status = r.status;
      reply.status_text = Some(r.status_text);
      reply.final_url = r.final_url;
      reply.headers = Some(r.headers);
      reply.body = Some(match String::from_utf8(r.body) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Bytes(e.into_bytes()),
      });
    }
    Err(e) => {
      reply.failure = Some(Failure {
        kind: e.kind.into(),
        code: e.code,
        message: e.message,
      })
    }
  }
  reply
}
