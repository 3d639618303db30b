//! The wire contract both transports keep, without I/O: what a request looks like on
//! the wire, which redirects are followed and how, the limits and pool timings, and
//! how a response head becomes a reply. The tokio transport (`crate::transport`,
//! reqwest) and the event-loop transport (in the binding, hyper on Node's loop) both
//! build their requests and replies from here.

pub mod head_verdict;
pub mod limits;
pub mod redirect;
pub mod request;
pub mod response;

pub use request::{Method, Origin};
