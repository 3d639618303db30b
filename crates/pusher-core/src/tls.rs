//! The TLS configuration both transports use: rustls on ring with Mozilla's roots
//! (Node's bundled set), plus `NODE_EXTRA_CA_CERTS` and the caller's `ca`, verified by
//! webpki as Node's OpenSSL would verify it (see [`NodeVerifier`]).

use crate::error::TransportError;
use crate::{tls_cert, tls_verdict};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;

fn extra_ca_from_env() -> Vec<CertificateDer<'static>> {
  // As Node: an unreadable file or an unparsable entry is skipped, never fatal.
  std::env::var_os("NODE_EXTRA_CA_CERTS")
    .and_then(|path| std::fs::read(path).ok())
    .map(|pem| {
      CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect()
    })
    .unwrap_or_default()
}

/// The certificates of the `ca` option (PEM), each usable as a trust anchor; an error
/// naming what is wrong otherwise (no certificate, a broken PEM block, a certificate
/// webpki cannot read).
pub fn parse_ca(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TransportError> {
  let mut certs = Vec::new();
  for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
    let cert = cert.map_err(|e| {
      TransportError::config(format!(
        "ca option: PEM block {} is not valid: {e}",
        index + 1
      ))
    })?;
    webpki::anchor_from_trusted_cert(&cert).map_err(|e| {
      TransportError::config(format!(
        "ca option: certificate {} cannot be read: {e:?}",
        index + 1
      ))
    })?;
    certs.push(cert);
  }
  if certs.is_empty() {
    return Err(TransportError::config(
      "ca option: no PEM certificate in it".into(),
    ));
  }
  Ok(certs)
}

/// rustls with Mozilla's roots, `NODE_EXTRA_CA_CERTS` and `extra_ca` (PEM).
pub fn config(extra_ca: Option<&[u8]>) -> Result<rustls::ClientConfig, TransportError> {
  let mut roots = RootCertStore {
    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
  };
  let mut explicit = extra_ca_from_env();
  if let Some(pem) = extra_ca {
    explicit.extend(parse_ca(pem)?);
  }
  roots.add_parsable_certificates(explicit.iter().cloned());
  let provider = Arc::new(rustls::crypto::ring::default_provider());
  let roots = Arc::new(roots);
  let webpki = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
    .build()
    .map_err(|e| TransportError::config(format!("TLS setup failed: {e}")))?;
  let verifier = NodeVerifier {
    webpki,
    roots,
    explicit,
  };
  let config = rustls::ClientConfig::builder_with_provider(provider)
    .with_safe_default_protocol_versions()
    .map_err(|e| TransportError::config(format!("TLS setup failed: {e}")))?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(verifier))
    .with_no_client_auth();
  Ok(config)
}

/// webpki's verification, with two differences that make it Node's:
/// - a server certificate that is byte for byte one the caller trusts explicitly (`ca`,
///   `NODE_EXTRA_CA_CERTS`) is accepted although it is marked `CA:TRUE`, as OpenSSL
///   accepts a trusted self-signed certificate (what `openssl req -x509` makes); its
///   validity period and host name are still checked;
/// - a refusal carries the code Node's TLS reports for the same certificate
///   (`DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED`, …; see [`tls_verdict`]).
#[derive(Debug)]
struct NodeVerifier {
  webpki: Arc<WebPkiServerVerifier>,
  roots: Arc<RootCertStore>,
  explicit: Vec<CertificateDer<'static>>,
}

impl NodeVerifier {
  fn trusts_exactly(&self, cert: &CertificateDer<'_>) -> bool {
    self.explicit.iter().any(|c| c.as_ref() == cert.as_ref())
  }
}

/// Node's `checkServerIdentity` matches a host name against the subject's common name
/// when the certificate names no DNS host in `subjectAltName` (webpki never does).
fn common_name_fallback(
  end_entity: &CertificateDer<'_>,
  server_name: &ServerName<'_>,
) -> Option<ServerCertVerified> {
  let ServerName::DnsName(host) = server_name else {
    return None;
  };
  let facts = tls_cert::facts(end_entity)?;
  let matched = !facts.has_dns_names
    && facts
      .common_names
      .iter()
      .any(|cn| tls_cert::host_matches(host.as_ref(), cn));
  matched.then(ServerCertVerified::assertion)
}

impl ServerCertVerifier for NodeVerifier {
  fn verify_server_cert(
    &self,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    ocsp_response: &[u8],
    now: UnixTime,
  ) -> Result<ServerCertVerified, rustls::Error> {
    let verdict =
      self
        .webpki
        .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
    let err = match verdict {
      Ok(verified) => return Ok(verified),
      Err(err) => err,
    };
    let trust = tls_verdict::Trust {
      anchors: &self.roots.roots,
      explicit: &self.explicit,
    };
    let explain = |err| tls_verdict::explain(err, end_entity, intermediates, &trust, server_name);
    if tls_verdict::is_ca_used_as_end_entity(&err) && self.trusts_exactly(end_entity) {
      // webpki checks a certificate's validity period before its basic constraints, so
      // this verdict already says the certificate is valid at `now`; the chain is the
      // certificate itself. Left to check: its purpose (which webpki would have checked
      // next) and the name.
      let purpose = tls_cert::facts(end_entity).is_some_and(|f| f.server_purpose);
      if !purpose {
        return Err(tls_verdict::refuse("INVALID_PURPOSE", err));
      }
      let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
      return match rustls::client::verify_server_name(&cert, server_name) {
        Ok(()) => Ok(ServerCertVerified::assertion()),
        Err(name) => common_name_fallback(end_entity, server_name).ok_or_else(|| explain(name)),
      };
    }
    if tls_verdict::is_name_mismatch(&err) {
      // rustls checks the name last: everything else about the chain holds.
      return common_name_fallback(end_entity, server_name).ok_or_else(|| explain(err));
    }
    Err(explain(err))
  }

  fn verify_tls12_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, rustls::Error> {
    self.webpki.verify_tls12_signature(message, cert, dss)
  }

  fn verify_tls13_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, rustls::Error> {
    self.webpki.verify_tls13_signature(message, cert, dss)
  }

  fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
    self.webpki.supported_verify_schemes()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  /// A self-signed P-256 certificate (openssl req -x509, valid until 2126).
  const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBnTCCAUOgAwIBAgIUUMfnkX12dZfy2+VRFSSUY9cgR4wwCgYIKoZIzj0EAwIw
IzEhMB8GA1UEAwwYcHVzaGVyLW5hdGl2ZSBjYSBmaXh0dXJlMCAXDTI2MTIwODA0
MjIyNFoYDzIxMjYxMTE0MDQyMjI0WjAjMSEwHwYDVQQDDBhwdXNoZXItbmF0aXZl
IGNhIGZpeHR1cmUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATf72fhmE7DFFCe
R+xNdGSlKggTAmW8YqcZT5CpL95NRtlFjASFdDay/lKKph1LNs0Z4eMh5k+/BguA
llSyouyjo1MwUTAdBgNVHQ4EFgQUM4fXWP6A1fc1iqlbbGNB3fsXZ0YwHwYDVR0j
BBgwFoAUM4fXWP6A1fc1iqlbbGNB3fsXZ0YwDwYDVR0TAQH/BAUwAwEB/zAKBggq
hkjOPQQDAgNIADBFAiBeLo2lC0mYJiQL6QWSsH5y4TXI6lsYSTTBvUuvIo55DgIh
AIc7UEs6hSQTqmqOSVX86JDi5yzBeihze5sLzfEKXgbD
-----END CERTIFICATE-----
";

  #[test]
  fn a_ca_is_read_or_refused_with_the_reason() {
    assert_eq!(parse_ca(CA_PEM.as_bytes()).unwrap().len(), 1);
    let two = format!("{CA_PEM}\n{CA_PEM}");
    assert_eq!(parse_ca(two.as_bytes()).unwrap().len(), 2);
    assert!(config(Some(CA_PEM.as_bytes())).is_ok());

    let none = parse_ca(b"not a certificate").unwrap_err();
    assert_eq!(none.message, "ca option: no PEM certificate in it");
    // A certificate block whose contents are not a certificate.
    let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let unreadable = parse_ca(junk.as_bytes()).unwrap_err();
    assert!(
      unreadable.message.contains("certificate 1 cannot be read"),
      "{}",
      unreadable.message
    );
    // One good certificate does not excuse a broken one beside it.
    assert!(parse_ca(format!("{CA_PEM}{junk}").as_bytes()).is_err());
    assert!(config(Some(junk.as_bytes())).is_err());
  }

  #[test]
  fn what_node_reads_from_a_certificate() {
    let der = parse_ca(CA_PEM.as_bytes()).unwrap().remove(0);
    let facts = tls_cert::facts(der.as_ref()).unwrap();
    assert_eq!(facts.common_names, ["pusher-native ca fixture"]);
    assert!(!facts.has_dns_names && facts.alt_names.is_empty() && facts.ips.is_empty());
    assert!(
      facts.server_purpose,
      "no extendedKeyUsage or keyUsage: any purpose"
    );
    assert!(tls_cert::facts(b"not DER").is_none());
  }

  #[test]
  fn a_plain_rustls_verdict_still_gets_a_node_code() {
    use rustls::CertificateError as C;
    let expired = rustls::Error::InvalidCertificate(C::Expired);
    assert_eq!(tls_verdict::node_code(&expired).0, "CERT_HAS_EXPIRED");
    let name = rustls::Error::InvalidCertificate(C::NotValidForName);
    assert_eq!(
      tls_verdict::node_code(&name).0,
      "ERR_TLS_CERT_ALTNAME_INVALID"
    );
    let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
    assert_eq!(tls_verdict::node_code(&alert).0, "EPROTO");
  }
}
