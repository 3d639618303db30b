//! The reqwest clients, shared by every Pusher with the same options (connections are
//! pooled across instances, and across serverless invocations in one process), and the
//! per-origin connection limits. Both are held by the transports that use them and go
//! with the last one: nothing here grows with the options callers have ever used.

use super::{build_client, TransportOptions};
use crate::error::TransportError;
use reqwest::Client;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::Semaphore;

/// The client for one set of options. Renewed, with a new pool, after a response whose
/// framing was ambiguous: reqwest may already have pooled that connection, with bytes in
/// flight that could be read as the next response.
pub struct SharedClient {
  options: TransportOptions,
  client: Mutex<Client>,
  /// Per (origin, maxSockets): the requests allowed on the wire at once.
  sockets: Mutex<HashMap<(String, usize), Weak<Semaphore>>>,
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

  /// The bound on connections to `origin` (`scheme://host:port`): at most `max`
  /// requests of this client's pool on the wire at once, so at most `max` connections
  /// (reqwest itself opens one per concurrent request). Shared by every transport with
  /// the same origin and `max`; it goes with the last of them.
  pub fn sockets(&self, origin: &str, max: usize) -> Arc<Semaphore> {
    let max = max.clamp(1, Semaphore::MAX_PERMITS);
    let mut limits = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
    let key = (origin.to_owned(), max);
    if let Some(limit) = limits.get(&key).and_then(Weak::upgrade) {
      return limit;
    }
    limits.retain(|_, limit| limit.strong_count() > 0);
    let limit = Arc::new(Semaphore::new(max));
    limits.insert(key, Arc::downgrade(&limit));
    limit
  }
}

/// Clients kept after their last transport went, most recent first: a serverless
/// handler that makes a new Pusher per invocation still finds its pooled connections.
/// A few, so that what callers have used before cannot hold more.
const RECENT: usize = 4;

/// The client for `options`, shared while any transport holds it (and while it is one
/// of the [`RECENT`] last asked for).
pub fn shared_client(options: &TransportOptions) -> Result<Arc<SharedClient>, TransportError> {
  #[derive(Default)]
  struct Cache {
    clients: HashMap<TransportOptions, Weak<SharedClient>>,
    recent: Vec<Arc<SharedClient>>,
  }
  static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
  let mut cache = CACHE
    .get_or_init(Default::default)
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner());
  let client = match cache.clients.get(options).and_then(Weak::upgrade) {
    Some(client) => client,
    None => {
      let client = Arc::new(SharedClient {
        options: options.clone(),
        client: Mutex::new(build_client(options)?),
        sockets: Mutex::default(),
      });
      cache
        .clients
        .insert(options.clone(), Arc::downgrade(&client));
      client
    }
  };
  cache.recent.retain(|c| !Arc::ptr_eq(c, &client));
  cache.recent.insert(0, Arc::clone(&client));
  cache.recent.truncate(RECENT);
  cache.clients.retain(|_, c| c.strong_count() > 0);
  Ok(client)
}
