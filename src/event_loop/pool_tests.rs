//! The pool's interning and its queue for sockets, without a loop.

use super::*;
use std::future::Future;
use std::pin::pin;
use std::task::Context;

fn origin(port: u16) -> Origin {
  let url = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
  Origin::of(&url).unwrap()
}

#[test]
fn keys_and_trusts_are_shared_while_used_and_forgotten_after() {
  let trust = Trust::of(None);
  let a = Key::new(origin(1), &trust);
  let b = Key::new(origin(1), &trust);
  let other = Key::new(origin(2), &trust);
  assert!(Rc::ptr_eq(&a, &b));
  assert!(!Rc::ptr_eq(&a, &other));
  let with_ca = Trust::of(Some(b"pem".to_vec()));
  assert_ne!(with_ca.id, trust.id);
  assert!(!Rc::ptr_eq(&a, &Key::new(origin(1), &with_ca)));
  assert_eq!(interned(), 2);
  drop((a, b, other));
  assert_eq!(interned(), 0);
  assert_eq!(KEYS.with(|k| k.borrow().len()), 0);
  let id = with_ca.id;
  drop(with_ca);
  assert_ne!(
    Trust::of(Some(b"pem".to_vec())).id,
    id,
    "a new trust once unused"
  );
}

#[test]
fn requests_past_max_sockets_wait_in_order_for_a_socket() {
  let trust = Trust::of(None);
  let key = Key::new(origin(3), &trust);
  let loop_ = Loop(std::ptr::null_mut());
  let mut cx = Context::from_waker(Waker::noop());
  let mut first = pin!(acquire(&key, loop_, 1));
  let Poll::Ready(Acquired::Connect(slot)) = first.as_mut().poll(&mut cx) else {
    panic!("the first request may connect");
  };
  let mut second = pin!(acquire(&key, loop_, 1));
  let mut third = pin!(acquire(&key, loop_, 1));
  assert!(second.as_mut().poll(&mut cx).is_pending());
  assert!(third.as_mut().poll(&mut cx).is_pending());
  // The connect failed: its socket goes to the first in line, not to the third.
  drop(slot);
  assert!(third.as_mut().poll(&mut cx).is_pending());
  let Poll::Ready(Acquired::Connect(slot)) = second.as_mut().poll(&mut cx) else {
    panic!("the second request's turn");
  };
  assert!(third.as_mut().poll(&mut cx).is_pending());
  drop(slot);
  assert!(matches!(
    third.as_mut().poll(&mut cx),
    Poll::Ready(Acquired::Connect(_))
  ));
}
