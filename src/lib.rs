//! Node bindings for pusher-core: each function maps JS values onto the core and back.
//! The public API (`index.js`) is hand-kept JS on top of these.
#![deny(clippy::all)]

// `pub` keeps the #[napi] items reachable (and warning-free) under `cargo test`.
pub mod ca;
pub mod client;
pub mod crypto;
pub mod deliver;
#[cfg(unix)]
pub mod event_loop;
pub mod keys;
pub mod limits;
pub mod reply;
pub mod signing;
pub mod tokio_transport;
#[cfg(unix)]
pub mod uv;
