//! The Pusher Channels server protocol in plain Rust: request signing, end-to-end
//! encryption, webhook verification, limits, and the HTTP transport.
//!
//! Nothing here knows about Node; the napi binding at the repository root maps JS
//! values onto these functions.

pub mod config;
pub mod encryption;
pub mod error;
pub mod http;
pub mod proxy;
pub mod retry;
pub mod signature;
pub mod tls;
pub mod tls_cert;
pub mod tls_verdict;
pub mod transport;
pub mod validate;
pub mod webhook;
