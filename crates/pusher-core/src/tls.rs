//! The TLS configuration both transports use: rustls on ring with Mozilla's roots
//! (Node's bundled set), plus `NODE_EXTRA_CA_CERTS` and the caller's `ca`.

use crate::error::TransportError;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::sync::Arc;

fn extra_ca_from_env() -> Vec<CertificateDer<'static>> {
  std::env::var_os("NODE_EXTRA_CA_CERTS")
    .and_then(|path| std::fs::read(path).ok())
    .map(|pem| parse_certs(&pem))
    .unwrap_or_default()
}

fn parse_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
  CertificateDer::pem_slice_iter(pem)
    .filter_map(Result::ok)
    .collect()
}

/// rustls with Mozilla's roots, `NODE_EXTRA_CA_CERTS` and `extra_ca` (PEM).
pub fn config(extra_ca: Option<&[u8]>) -> Result<rustls::ClientConfig, TransportError> {
  let mut roots = RootCertStore {
    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
  };
  let mut extra = extra_ca_from_env();
  if let Some(pem) = extra_ca {
    let certs = parse_certs(pem);
    if certs.is_empty() {
      return Err(TransportError::config(
        "the ca option holds no PEM certificate".into(),
      ));
    }
    extra.extend(certs);
  }
  roots.add_parsable_certificates(extra);
  let provider = Arc::new(rustls::crypto::ring::default_provider());
  let config = rustls::ClientConfig::builder_with_provider(provider)
    .with_safe_default_protocol_versions()
    .map_err(|e| TransportError::config(format!("TLS setup failed: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
  Ok(config)
}
