//! The tokio transport against real servers on loopback.

use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A one-shot HTTP server on loopback that answers each connection with `reply`
/// and hands back what it received.
fn serve(
  reply: &'static str,
  connections: usize,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
  let listener = TcpListener::bind("127.0.0.1:0").unwrap();
  let addr = listener.local_addr().unwrap();
  let handle = std::thread::spawn(move || {
    let mut seen = Vec::new();
    for _ in 0..connections {
      let (mut stream, _) = listener.accept().unwrap();
      let mut buf = vec![0u8; 65536];
      let n = stream.read(&mut buf).unwrap();
      seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
      stream.write_all(reply.as_bytes()).unwrap();
    }
    seen
  });
  (format!("http://{addr}"), handle)
}

fn request(url: String, body: Option<&str>) -> Request {
  Request {
    method: if body.is_some() {
      Method::Post
    } else {
      Method::Get
    },
    url,
    body: body.map(|b| Bytes::copy_from_slice(b.as_bytes())),
    timeout: Some(Duration::from_secs(5)),
    library: HeaderValue::from_static("pusher-native test"),
    max_response_size: limits::MAX_RESPONSE_SIZE_DEFAULT,
    connect_timeout: None,
  }
}

#[tokio::test]
async fn sends_the_request_and_reads_the_reply() {
  let (base, server) =
    serve("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}", 1);
  let client = build_client(&TransportOptions::default()).unwrap();
  let reply = send(
    &client,
    &request(format!("{base}/apps/1/events?info=a b"), Some("{\"a\":1}")),
  )
  .await
  .unwrap();
  assert_eq!(reply.status, 200);
  assert_eq!(reply.status_text, "OK");
  assert_eq!(reply.body, b"{}");
  assert!(reply.headers.contains("content-type\napplication/json\n"));
  assert_eq!(reply.final_url, None);
  let seen = server.join().unwrap().remove(0);
  assert!(
    seen.starts_with("POST /apps/1/events?info=a%20b HTTP/1.1\r\n"),
    "{seen}"
  );
  assert!(seen.contains("x-pusher-library: pusher-native test\r\n"));
  assert!(seen.contains("content-type: application/json\r\n"));
  assert!(seen.ends_with("\r\n\r\n{\"a\":1}"));
}

#[tokio::test]
async fn reqwest_sends_exactly_the_contract_bytes() {
  let reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
  let (base, server) = serve(reply, 2);
  let client = build_client(&TransportOptions::default()).unwrap();
  let host = base.trim_start_matches("http://").to_owned();
  let body = "{\"name\":\"e\",\"channels\":[\"c\"],\"data\":\"{}\"}";
  send(
    &client,
    &request(format!("{base}/apps/1/events?a=b c"), Some(body)),
  )
  .await
  .unwrap();
  send(
    &client,
    &request(format!("{base}/apps/1/channels?info=x"), None),
  )
  .await
  .unwrap();
  let seen = server.join().unwrap();
  let post = http::request::wire_bytes(
    Method::Post,
    "/apps/1/events?a=b%20c",
    &host,
    "pusher-native test",
    Some(body.as_bytes()),
  );
  let get = http::request::wire_bytes(
    Method::Get,
    "/apps/1/channels?info=x",
    &host,
    "pusher-native test",
    None,
  );
  assert_eq!(seen[0], String::from_utf8(post).unwrap());
  assert_eq!(seen[1], String::from_utf8(get).unwrap());
}

#[tokio::test]
async fn refused_connections_are_classified() {
  let port = TcpListener::bind("127.0.0.1:0")
    .unwrap()
    .local_addr()
    .unwrap()
    .port();
  let client = build_client(&TransportOptions::default()).unwrap();
  let err = send(
    &client,
    &request(format!("http://127.0.0.1:{port}/x"), None),
  )
  .await
  .unwrap_err();
  assert_eq!(err.code, "ECONNREFUSED");
  assert!(err.before_send);
  assert!(
    err
      .message
      .contains(&format!("connect ECONNREFUSED 127.0.0.1:{port}")),
    "{}",
    err.message
  );
}

#[tokio::test]
async fn a_closed_connection_is_a_reset() {
  let (base, _server) = serve("", 1);
  let client = build_client(&TransportOptions::default()).unwrap();
  let err = send(&client, &request(format!("{base}/x"), None))
    .await
    .unwrap_err();
  assert_eq!(err.code, "ECONNRESET", "{err:?}");
}

#[tokio::test]
async fn timeouts_cover_the_whole_request() {
  let listener = TcpListener::bind("127.0.0.1:0").unwrap();
  let base = format!("http://{}", listener.local_addr().unwrap());
  let _hold = std::thread::spawn(move || {
    let (mut stream, _) = listener.accept().unwrap();
    let _ = stream.read(&mut [0u8; 4096]);
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{");
    std::thread::sleep(Duration::from_secs(3));
  });
  let client = build_client(&TransportOptions::default()).unwrap();
  let mut req = request(format!("{base}/x"), None);
  req.timeout = Some(Duration::from_millis(200));
  let started = std::time::Instant::now();
  let err = send(&client, &req).await.unwrap_err();
  assert_eq!(
    err.code,
    "ETIMEDOUT",
    "{err:?} after {:?}",
    started.elapsed()
  );
  assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn retries_a_refused_post_then_gives_up() {
  let port = TcpListener::bind("127.0.0.1:0")
    .unwrap()
    .local_addr()
    .unwrap()
    .port();
  let client = build_client(&TransportOptions::default()).unwrap();
  let policy = fast_retries(3);
  let (result, attempts) = send_with_retry(
    &client,
    &request(format!("http://127.0.0.1:{port}/x"), Some("{}")),
    Some(&policy),
    None,
  )
  .await;
  assert_eq!(result.unwrap_err().code, "ECONNREFUSED");
  assert_eq!(attempts, 3);
}

/// Retries a millisecond apart.
fn fast_retries(attempts: u32) -> RetryPolicy {
  RetryPolicy {
    attempts,
    min_delay: Duration::from_millis(1),
    max_delay: Duration::from_millis(2),
  }
}

#[tokio::test]
async fn a_post_answered_500_is_not_retried() {
  let (base, server) = serve(
    "HTTP/1.1 500 Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    1,
  );
  let client = build_client(&TransportOptions::default()).unwrap();
  let policy = fast_retries(3);
  let (result, attempts) = send_with_retry(
    &client,
    &request(format!("{base}/x"), Some("{}")),
    Some(&policy),
    None,
  )
  .await;
  assert_eq!(result.unwrap().status, 500);
  assert_eq!(attempts, 1);
  assert_eq!(server.join().unwrap().len(), 1);
}

/// A listener whose accept queue is full: further SYNs are dropped, so a connect to
/// it hangs (Linux).
fn hung_listener() -> (tokio::net::TcpListener, String, Vec<std::net::TcpStream>) {
  let socket = tokio::net::TcpSocket::new_v4().unwrap();
  socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
  let listener = socket.listen(0).unwrap();
  let addr = listener.local_addr().unwrap();
  let mut fillers = Vec::new();
  for _ in 0..8 {
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
      Ok(stream) => fillers.push(stream),
      Err(_) => break,
    }
  }
  (listener, format!("http://{addr}"), fillers)
}

#[tokio::test]
async fn a_connect_timeout_is_before_send_and_retried_for_a_post() {
  let (_listener, base, _fillers) = hung_listener();
  let client = build_client(&TransportOptions::default()).unwrap();
  let policy = fast_retries(2);
  let started = std::time::Instant::now();
  let mut req = request(format!("{base}/x"), Some("{}"));
  req.connect_timeout = Some(Duration::from_millis(150));
  let (result, attempts) = send_with_retry(&client, &req, Some(&policy), None).await;
  let err = result.unwrap_err();
  // A timeout, as without retries (issue 22 item 3), yet safe to retry: nothing left.
  assert_eq!(
    (err.kind, err.code, err.before_send),
    (crate::error::FailureKind::Timeout, "ETIMEDOUT", true),
    "{err:?}"
  );
  assert!(
    err.message.ends_with("timed out after 5000 ms"),
    "{}",
    err.message
  );
  assert_eq!(attempts, 2);
  assert!(
    started.elapsed() < Duration::from_secs(2),
    "{:?}",
    started.elapsed()
  );
}

#[tokio::test]
async fn the_request_deadline_during_connect_is_not_before_send() {
  // Without a connect timeout, the whole-request deadline fires; nothing proves the
  // body did not leave, so a POST is not retried.
  let (_listener, base, _fillers) = hung_listener();
  let client = build_client(&TransportOptions::default()).unwrap();
  let policy = fast_retries(3);
  let mut req = request(format!("{base}/x"), Some("{}"));
  req.timeout = Some(Duration::from_millis(150));
  let (result, attempts) = send_with_retry(&client, &req, Some(&policy), None).await;
  let err = result.unwrap_err();
  assert_eq!(
    (err.kind, err.before_send),
    (crate::error::FailureKind::Timeout, false),
    "{err:?}"
  );
  assert_eq!(attempts, 1);
}

#[test]
fn urls_are_checked_like_node_fetch() {
  assert_eq!(
    parse_url("ftp://x/y").unwrap_err().message,
    "Only HTTP(S) protocols are supported"
  );
  assert_eq!(parse_url("http://").unwrap_err().message, "Invalid URL");
  assert_eq!(
    parse_url("http://h/a b?c=d e").unwrap().as_str(),
    "http://h/a%20b?c=d%20e"
  );
}

#[test]
fn a_ca_without_certificates_is_refused() {
  let options = TransportOptions {
    ca: Some(b"not a certificate".to_vec()),
    ..Default::default()
  };
  assert!(build_client(&options)
    .unwrap_err()
    .message
    .contains("no PEM certificate"));
  let proxy = TransportOptions {
    proxy: Some("::bad::".into()),
    ..Default::default()
  };
  assert!(build_client(&proxy).is_err());
}

#[tokio::test]
async fn without_a_timeout_a_connect_timeout_is_a_system_error() {
  let (_listener, base, _fillers) = hung_listener();
  let client = build_client(&TransportOptions::default()).unwrap();
  let mut req = request(format!("{base}/x"), Some("{}"));
  req.timeout = None;
  req.connect_timeout = Some(Duration::from_millis(150));
  let err = send(&client, &req).await.unwrap_err();
  assert_eq!(
    (err.kind, err.code, err.before_send),
    (crate::error::FailureKind::Network, "ETIMEDOUT", true),
    "{err:?}"
  );
  assert!(
    err.message.contains("connect ETIMEDOUT 127.0.0.1:"),
    "{}",
    err.message
  );
}

/// A server that reads each request and never answers.
fn silent_server() -> String {
  let listener = TcpListener::bind("127.0.0.1:0").unwrap();
  let base = format!("http://{}", listener.local_addr().unwrap());
  std::thread::spawn(move || {
    for stream in listener.incoming() {
      let Ok(mut stream) = stream else { return };
      std::thread::spawn(move || while matches!(stream.read(&mut [0u8; 4096]), Ok(n) if n > 0) {});
    }
  });
  base
}

#[tokio::test]
async fn the_timeout_bounds_the_whole_call_retries_included() {
  let base = silent_server();
  let client = build_client(&TransportOptions::default()).unwrap();
  let policy = fast_retries(3);
  let mut req = request(format!("{base}/x"), None);
  req.timeout = Some(Duration::from_millis(300));
  let started = std::time::Instant::now();
  let (result, _) = send_with_retry(&client, &req, Some(&policy), None).await;
  let elapsed = started.elapsed();
  let err = result.unwrap_err();
  assert_eq!(
    (err.kind, err.code),
    (crate::error::FailureKind::Timeout, "ETIMEDOUT"),
    "{err:?}"
  );
  assert!(
    err.message.ends_with("timed out after 300 ms"),
    "{}",
    err.message
  );
  assert!(
    elapsed < Duration::from_millis(600),
    "settled after {elapsed:?}"
  );
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_is_not_waited_out() {
  let (base, server) = serve(
    "HTTP/1.1 503 Busy\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    1,
  );
  let client = build_client(&TransportOptions::default()).unwrap();
  let policy = RetryPolicy {
    attempts: 3,
    ..RetryPolicy::default()
  };
  let mut req = request(format!("{base}/x"), Some("{}"));
  req.timeout = Some(Duration::from_millis(300));
  let started = std::time::Instant::now();
  let (result, attempts) = send_with_retry(&client, &req, Some(&policy), None).await;
  assert_eq!((result.unwrap().status, attempts), (503, 1));
  assert!(
    started.elapsed() < Duration::from_millis(300),
    "{:?}",
    started.elapsed()
  );
  assert_eq!(server.join().unwrap().len(), 1);
}

/// A server that answers `head` and then streams `chunk` until the client goes.
fn endless_server(head: &'static str) -> String {
  let listener = TcpListener::bind("127.0.0.1:0").unwrap();
  let base = format!("http://{}", listener.local_addr().unwrap());
  std::thread::spawn(move || {
    let (mut stream, _) = listener.accept().unwrap();
    let _ = stream.read(&mut [0u8; 4096]);
    let _ = stream.write_all(head.as_bytes());
    let chunk = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
    while stream.write_all(chunk.as_bytes()).is_ok() {}
  });
  base
}

#[tokio::test]
async fn an_endless_body_stops_at_the_limit() {
  let base = endless_server("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
  let client = build_client(&TransportOptions::default()).unwrap();
  let mut req = request(format!("{base}/x"), None);
  req.max_response_size = 100_000;
  req.timeout = None;
  let err = tokio::time::timeout(Duration::from_secs(10), send(&client, &req))
    .await
    .expect("the read did not stop")
    .unwrap_err();
  assert_eq!(err.kind, crate::error::FailureKind::MaxSize, "{err:?}");
  assert_eq!(
    err.message,
    format!("content size at {base}/x over limit: 100000")
  );
  assert!(!crate::retry::is_retryable(
    true,
    &crate::retry::Outcome::Failed(&err)
  ));
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
  let (base, _server) = serve("HTTP/1.1 200 OK\r\ncontent-length: 1000001\r\n\r\n{", 1);
  let client = build_client(&TransportOptions::default()).unwrap();
  let mut req = request(format!("{base}/x"), None);
  req.max_response_size = 1_000_000;
  let err = send(&client, &req).await.unwrap_err();
  assert_eq!(err.kind, crate::error::FailureKind::MaxSize, "{err:?}");
  // Exactly the limit is allowed.
  let (base, _server) = serve("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc", 1);
  let mut req = request(format!("{base}/x"), None);
  req.max_response_size = 3;
  assert_eq!(send(&client, &req).await.unwrap().body, b"abc");
}

/// A keep-alive server answering each request after 50 ms; counts its connections.
fn slow_server() -> (String, Arc<AtomicUsize>) {
  let listener = TcpListener::bind("127.0.0.1:0").unwrap();
  let base = format!("http://{}", listener.local_addr().unwrap());
  let accepted = Arc::new(AtomicUsize::new(0));
  let counted = Arc::clone(&accepted);
  std::thread::spawn(move || {
    for stream in listener.incoming() {
      let Ok(mut stream) = stream else { return };
      counted.fetch_add(1, Ordering::SeqCst);
      std::thread::spawn(move || {
        // Each request (a small POST) arrives in one read.
        while matches!(stream.read(&mut [0u8; 4096]), Ok(n) if n > 0) {
          std::thread::sleep(Duration::from_millis(50));
          let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
          if stream.write_all(reply).is_err() {
            return;
          }
        }
      });
    }
  });
  (base, accepted)
}

#[tokio::test]
async fn connections_per_origin_are_bounded() {
  let (base, accepted) = slow_server();
  let client = build_client(&TransportOptions::default()).unwrap();
  let sockets = tokio::sync::Semaphore::new(4);
  let req = request(format!("{base}/x"), Some("{}"));
  let calls = (0..40).map(|_| send_with_retry(&client, &req, None, Some(&sockets)));
  for (result, _) in futures_join_all(calls).await {
    assert_eq!(result.unwrap().status, 200);
  }
  let opened = accepted.load(Ordering::SeqCst);
  assert!(
    (1..=4).contains(&opened),
    "{opened} connections for 40 requests"
  );
}

#[tokio::test]
async fn a_request_waiting_for_a_connection_keeps_its_deadline() {
  let base = silent_server();
  let client = build_client(&TransportOptions::default()).unwrap();
  let sockets = tokio::sync::Semaphore::new(1);
  let mut req = request(format!("{base}/x"), Some("{}"));
  req.timeout = Some(Duration::from_millis(300));
  let started = std::time::Instant::now();
  let calls = (0..2).map(|_| send_with_retry(&client, &req, None, Some(&sockets)));
  for (result, _) in futures_join_all(calls).await {
    assert_eq!(result.unwrap_err().kind, crate::error::FailureKind::Timeout);
  }
  let elapsed = started.elapsed();
  assert!(
    elapsed < Duration::from_millis(550),
    "the waiter settled after {elapsed:?}"
  );
}

/// Runs the futures concurrently on this task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
  futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
  let mut set = Vec::new();
  for f in futures {
    set.push(Box::pin(f));
  }
  let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
  std::future::poll_fn(|cx| {
    let mut pending = false;
    for (f, out) in set.iter_mut().zip(outputs.iter_mut()) {
      if out.is_none() {
        match f.as_mut().poll(cx) {
          std::task::Poll::Ready(v) => *out = Some(v),
          std::task::Poll::Pending => pending = true,
        }
      }
    }
    if pending {
      std::task::Poll::Pending
    } else {
      std::task::Poll::Ready(())
    }
  })
  .await;
  outputs.into_iter().map(Option::unwrap).collect()
}

#[test]
fn clients_go_with_the_last_transport_using_them() {
  let options = TransportOptions {
    proxy: Some("http://127.0.0.1:9/only-for-this-test".into()),
    ..Default::default()
  };
  let first = shared_client(&options).unwrap();
  let second = shared_client(&options).unwrap();
  assert!(
    Arc::ptr_eq(&first, &second),
    "one client per options while in use"
  );
  let sockets = first.sockets("http://h:1", 2);
  assert!(Arc::ptr_eq(&sockets, &second.sockets("http://h:1", 2)));
  let weak_sockets = Arc::downgrade(&sockets);
  drop(sockets);
  assert!(
    weak_sockets.upgrade().is_none(),
    "a connection limit outlived its users"
  );
  let weak = Arc::downgrade(&first);
  drop((first, second));
  assert!(
    weak.upgrade().is_some(),
    "one of the last few asked for stays, with its pool"
  );
  // Once a few others were asked for since, it goes.
  for port in 10..15 {
    let other = TransportOptions {
      proxy: Some(format!("http://127.0.0.1:{port}/only-for-this-test")),
      ..Default::default()
    };
    drop(shared_client(&other).unwrap());
  }
  assert!(
    weak.upgrade().is_none(),
    "the cache kept a client nobody uses"
  );
}

#[tokio::test]
async fn the_connect_bound_is_per_request_and_under_the_time_left() {
  // One client, two bounds: each request's own (the client is not keyed by it).
  let (_listener, base, _fillers) = hung_listener();
  let client = build_client(&TransportOptions::default()).unwrap();
  for (bound, timeout, expected_ms) in [(150, 5000, 150), (10_000, 400, 300)] {
    let mut req = request(format!("{base}/x"), Some("{}"));
    req.connect_timeout = Some(Duration::from_millis(bound));
    req.timeout = Some(Duration::from_millis(timeout));
    let started = std::time::Instant::now();
    let err = send(&client, &req).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(err.before_send, "{err:?}");
    assert!(
      elapsed >= Duration::from_millis(expected_ms)
        && elapsed < Duration::from_millis(expected_ms + 250),
      "bound {bound} ms, timeout {timeout} ms: failed after {elapsed:?}"
    );
  }
}
