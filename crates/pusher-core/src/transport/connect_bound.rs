//! A bound on connecting that each request sets for itself: reqwest's own
//! `connect_timeout` is one value per client, and a client per value (each caller's
//! remaining time) would be a cache keyed by what callers choose. The bound travels in
//! a task-local, read when the connector is called, which hyper does on the requesting
//! task (its connect future is lazy, started by the request's first poll).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

tokio::task_local! {
  static CONNECT_WITHIN: Duration;
}

/// Runs `fut` with connects it starts bounded by `bound` (none without one). A connect
/// past it fails with `io::ErrorKind::TimedOut`, which reqwest reports as a connect
/// timeout (`is_connect() && is_timeout()`): no request byte left.
pub async fn within<F: Future>(bound: Option<Duration>, fut: F) -> F::Output {
  match bound {
    Some(bound) => CONNECT_WITHIN.scope(bound, fut).await,
    None => fut.await,
  }
}

/// The connector layer that applies the bound.
#[derive(Clone, Copy, Default)]
pub struct ConnectBound;

impl<S> tower_layer::Layer<S> for ConnectBound {
  type Service = BoundedConnector<S>;

  fn layer(&self, inner: S) -> Self::Service {
    BoundedConnector(inner)
  }
}

#[derive(Clone)]
pub struct BoundedConnector<S>(S);

impl<S, R> tower_service::Service<R> for BoundedConnector<S>
where
  S: tower_service::Service<R, Error = BoxError>,
  S::Future: Send + 'static,
  S::Response: 'static,
{
  type Response = S::Response;
  type Error = BoxError;
  type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

  fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
    self.0.poll_ready(cx)
  }

  fn call(&mut self, request: R) -> Self::Future {
    let connecting = self.0.call(request);
    match CONNECT_WITHIN.try_with(|bound| *bound) {
      Ok(bound) => Box::pin(async move {
        match tokio::time::timeout(bound, connecting).await {
          Ok(result) => result,
          Err(_) => Err(io::Error::from(io::ErrorKind::TimedOut).into()),
        }
      }),
      Err(_) => Box::pin(connecting),
    }
  }
}
