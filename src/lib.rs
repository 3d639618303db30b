//! Node bindings for pusher-core: each function maps JS values onto the core and back.
//! The public API (`index.js`) is hand-kept JS on top of these.
#![deny(clippy::all)]

// `pub` keeps the #[napi] items reachable (and warning-free) under `cargo test`.
pub mod client;
pub mod crypto;
#[cfg(unix)]
pub mod event_loop;
pub mod keys;
pub mod limits;
#[cfg(unix)]
pub mod uv;
