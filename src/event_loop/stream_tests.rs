//! The head capture as hyper's reads drive it: over plain bytes and over TLS (the
//! plaintext), a head split across reads, and a head longer than the cap.

use super::*;
use crate::event_loop::head_capture::HeadCapture;
use pusher_core::http::limits::MAX_HEAD_BYTES;
use std::rc::Rc;
use std::sync::Arc;
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A throwaway self-signed certificate for `localhost` (P-256, valid to 2126), made
/// with `openssl req -x509` for this test only.
const CERT: &str = concat!(
  "-----BEGIN CERTIFICATE-----\n",
  "MIIBljCCATugAwIBAgIUXe7JpGz5p4pShXSF8gDqbc3SSr4wCgYIKoZIzj0EAwIw\n",
  "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwODA1MjI0N1oYDzIxMjYxMTE0\n",
  "MDUyMjQ3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\n",
  "PQMBBwNCAAQ4bogeNs5Pl1M6x8G8NVSsSN3pBA+mhAs+V9aEuP3BVHk5O/C/ikGn\n",
  "M8pRX+EOEWLw+iaPFLHt9K6R9mQPAX+Vo2kwZzAdBgNVHQ4EFgQURIOUGxo33LwY\n",
  "cW0RObJeF+MPihEwHwYDVR0jBBgwFoAURIOUGxo33LwYcW0RObJeF+MPihEwDwYD\n",
  "VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID\n",
  "SQAwRgIhANUZRrcu5VAhElqprjb9Mwmq2l4+aGasuheMWW/NvM7DAiEA4QaHVKqy\n",
  "AXD2W9Hstu8CFNm5BB/+vSa9zWWTbf117mg=\n",
  "-----END CERTIFICATE-----\n",
);
const KEY: &str = concat!(
  "-----BEGIN PRIVATE KEY-----\n",
  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDKx6nyCdxrYFSagF\n",
  "+9nvsomlFepDdCyyh4jhGTayicGhRANCAAQ4bogeNs5Pl1M6x8G8NVSsSN3pBA+m\n",
  "hAs+V9aEuP3BVHk5O/C/ikGnM8pRX+EOEWLw+iaPFLHt9K6R9mQPAX+V\n",
  "-----END PRIVATE KEY-----\n",
);

const REFUSED: &[u8] = b"HTTP/1.1 200 OK\r\nX-A: a\r\nContent-Length: 1e20\r\n\r\n";

/// Sends `pieces` one write at a time, each read by the client before the next.
async fn serve<W: AsyncWriteExt + Unpin, R: AsyncReadExt + Unpin>(
  server: &mut W,
  client: &mut R,
  pieces: &[&[u8]],
) {
  for piece in pieces {
    server.write_all(piece).await.unwrap();
    server.flush().await.unwrap();
    let mut got = vec![0; piece.len()];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, piece);
  }
}

fn plain() -> (Stream<DuplexStream>, DuplexStream, Head) {
  let (client, server) = duplex(64 * 1024);
  let head = HeadCapture::shared();
  (
    Stream::new(Io::Plain(client), Rc::clone(&head)),
    server,
    head,
  )
}

#[tokio::test]
async fn a_head_split_across_reads_is_recorded_whole() {
  let (mut stream, mut server, head) = plain();
  // Read while not armed (an idle connection): nothing recorded.
  serve(&mut server, &mut stream, &[b"stray"]).await;
  head.arm();
  serve(
    &mut server,
    &mut stream,
    &[&REFUSED[..5], &REFUSED[5..30], &REFUSED[30..]],
  )
  .await;
  assert_eq!(head.recorded(), REFUSED);
  assert_eq!(
    head.verdict().map(|v| v.0),
    Some("HPE_INVALID_CONTENT_LENGTH")
  );
  // Once disarmed (the head is in), the body is not recorded; armed again, the buffer
  // starts over for the next response.
  head.disarm();
  serve(&mut server, &mut stream, &[b"body"]).await;
  assert_eq!(head.recorded(), REFUSED);
  head.arm();
  serve(&mut server, &mut stream, &[b"HTTP/1.1 200 OK\r\n"]).await;
  assert_eq!(head.recorded(), b"HTTP/1.1 200 OK\r\n");
}

#[tokio::test]
async fn a_head_longer_than_the_cap_is_recorded_up_to_it() {
  let (mut stream, mut server, head) = plain();
  head.arm();
  let long = format!(
    "HTTP/1.1 200 OK\r\nX-A: {}\r\n\r\n",
    "a".repeat(MAX_HEAD_BYTES)
  );
  let long = long.as_bytes();
  serve(&mut server, &mut stream, &[&long[..1000], &long[1000..]]).await;
  assert_eq!(head.recorded(), &long[..MAX_HEAD_BYTES]);
  // Full: it stops recording until armed again.
  serve(&mut server, &mut stream, &[b"more"]).await;
  assert_eq!(head.recorded().len(), MAX_HEAD_BYTES);
  // A truncated head explains nothing: the caller keeps hyper's own verdict.
  assert_eq!(head.verdict(), None);
}

#[tokio::test]
async fn over_tls_the_plaintext_is_recorded() {
  use rustls_pki_types::pem::PemObject;
  use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
  let provider = Arc::new(rustls::crypto::ring::default_provider());
  let (client, server) = duplex(64 * 1024);
  let certs = vec![CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap()];
  let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
  let server_config = rustls::ServerConfig::builder_with_provider(provider)
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
  let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
  let client_config = pusher_core::tls::config(Some(CERT.as_bytes())).unwrap();
  let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
  let name = ServerName::try_from("localhost").unwrap();
  let (tls, server) = tokio::join!(connector.connect(name, client), acceptor.accept(server));
  let (mut server, head) = (server.unwrap(), HeadCapture::shared());
  let mut stream = Stream::new(Io::Tls(Box::new(tls.unwrap())), Rc::clone(&head));
  head.arm();
  serve(&mut server, &mut stream, &[&REFUSED[..7], &REFUSED[7..]]).await;
  assert_eq!(head.recorded(), REFUSED);
  assert_eq!(
    head.verdict().map(|v| v.0),
    Some("HPE_INVALID_CONTENT_LENGTH")
  );
}
