//! Limits and timings, one owner each.

use std::time::Duration;

/// node-fetch's redirect limit.
pub const MAX_REDIRECTS: u32 = 20;
/// Idle pooled connections are closed after this.
pub const POOL_IDLE: Duration = Duration::from_secs(15);
/// Happy Eyeballs: the next address is tried after this, as Node's
/// `autoSelectFamilyAttemptTimeout` default.
pub const HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(250);
/// Connects in progress per origin on the event loop; more requests wait for a
/// connection to come free. A burst of thousands of connects at once overflows the
/// server's accept queue, and some of those connections are then reset.
pub const MAX_CONNECTING: usize = 64;
/// The largest response head accepted: Node's default `--max-http-header-size`. A
/// larger head fails as Node's parser fails it (`HPE_HEADER_OVERFLOW`).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Header lines a response head may have. Node's parser counts no lines, only bytes;
/// hyper needs a count, and its default (100) refuses heads Node and pusher read (150
/// lines). More lines than this fail as a head over 16 KiB (`HPE_HEADER_OVERFLOW`).
/// Not all that fit in 16 KiB (4,096): hyper allocates room for the count on every
/// parse, and at 4,096 each request took 4 µs (about 15%) longer; at 256, no
/// measurable time.
pub const MAX_HEAD_LINES: usize = 256;
/// The largest response body read, by default (`maxResponseSize`): past it the read
/// stops, the connection is closed and the call fails (node-fetch's `max-size`). The
/// largest real answer is `GET /channels` of a big app, at most ~200 bytes per occupied
/// channel (a 164-character name and its `user_count`): 128 MiB is over 600,000
/// channels at the longest names, millions at typical ones.
pub const MAX_RESPONSE_SIZE_DEFAULT: u64 = 128 * 1024 * 1024;
/// Connections per origin, by default (`maxSockets`, as Node's agents name it): more
/// requests wait, in order, for one to come free. 256 keeps a round trip of 50 ms at
/// about 5,000 requests a second, far below a process's usual 1,024 descriptors.
pub const MAX_SOCKETS_DEFAULT: usize = 256;
/// With retries on, the most connecting (DNS, TCP, TLS) may take per attempt (and at
/// most ¾ of the call's time left), so that a hung connect fails before any byte left
/// and can be retried. Set per request: clients are not told apart by it.
pub const RETRY_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A timeout in whole milliseconds for messages: at least 1.
pub fn timeout_ms(timeout: Duration) -> u64 {
  u64::try_from(timeout.as_millis())
    .unwrap_or(u64::MAX)
    .max(1)
}
