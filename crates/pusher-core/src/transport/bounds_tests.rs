//! The tokio transport's bounds against real servers on loopback: the whole call's
//! deadline, connect bounds, body size, connections per origin, the client cache.

use super::tests::{fast_retries, hung_listener, request, serve};
use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
