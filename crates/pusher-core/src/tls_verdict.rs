//! webpki's verdict on a server certificate, told the way Node's TLS (OpenSSL, then
//! `checkServerIdentity`) tells it for the same certificate: the same code and reason.
//!
//! OpenSSL first builds the chain: a chain it cannot anchor is reported as such
//! (`DEPTH_ZERO_SELF_SIGNED_CERT`, `SELF_SIGNED_CERT_IN_CHAIN`,
//! `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`) whatever else is
//! wrong; only an anchored chain gets its dates and purpose checked, and the host name is
//! checked last. webpki checks dates first, so the chain is examined here, by name, before
//! webpki's own reason is used.

use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor};
use rustls::{CertificateError, OtherError};
use std::fmt;
use std::sync::Arc;

/// A refused certificate with Node's code and reason; travels inside rustls's error as
/// `CertificateError::Other`.
#[derive(Debug)]
pub struct NodeVerdict {
  pub code: &'static str,
  pub reason: String,
  /// rustls/webpki's own verdict, kept for Debug output.
  pub webpki: rustls::Error,
}

impl fmt::Display for NodeVerdict {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&self.reason)
  }
}

impl std::error::Error for NodeVerdict {}

/// Whether rustls's verdict is webpki's `CaUsedAsEndEntity` (rustls passes it on inside
/// `CertificateError::Other`).
pub fn is_ca_used_as_end_entity(err: &rustls::Error) -> bool {
  matches!(webpki_error(err), Some(webpki::Error::CaUsedAsEndEntity))
}

fn webpki_error(err: &rustls::Error) -> Option<&webpki::Error> {
  match err {
    rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
      other.0.downcast_ref::<webpki::Error>()
    }
    _ => None,
  }
}

/// How far the presented chain gets towards a trust anchor, following issuer names as
/// OpenSSL does when it builds the chain.
#[derive(Debug, PartialEq, Eq)]
enum Chain {
  /// The last certificate's issuer is a trust anchor.
  Anchored,
  /// It ends in a self-signed certificate that is not trusted, `depth` certificates above
  /// the server's (0: the server's own).
  SelfSigned { depth: usize },
  /// It ends in a certificate whose issuer was neither presented nor trusted.
  Broken { depth: usize },
}

/// What the caller trusts: every anchor, and the certificates given explicitly (`ca`,
/// `NODE_EXTRA_CA_CERTS`) as they were given.
pub struct Trust<'a> {
  pub anchors: &'a [TrustAnchor<'a>],
  pub explicit: &'a [CertificateDer<'a>],
}

impl Trust<'_> {
  /// A self-signed certificate is trusted only as itself (OpenSSL looks for the same
  /// certificate in its store): byte for byte one given explicitly, or a Mozilla root.
  fn holds_exactly(&self, cert: &webpki::Cert<'_>) -> bool {
    let der = cert.der();
    self.explicit.iter().any(|c| c.as_ref() == der.as_ref())
      || webpki_roots::TLS_SERVER_ROOTS.iter().any(|root| {
        root.subject.as_ref() == cert.subject()
          && webpki::spki_for_anchor(root).as_ref() == cert.subject_public_key_info().as_ref()
      })
  }
}

fn chain_of(
  end_entity: &CertificateDer<'_>,
  intermediates: &[CertificateDer<'_>],
  trust: &Trust<'_>,
) -> Chain {
  let parse = |der| webpki::EndEntityCert::try_from(der).ok();
  let Some(leaf) = parse(end_entity) else {
    return Chain::Anchored; // unreadable: webpki's own verdict says why
  };
  let presented: Vec<_> = intermediates.iter().filter_map(parse).collect();
  let mut used = vec![false; presented.len()];
  let mut current: &webpki::Cert<'_> = &leaf;
  let mut depth = 0;
  loop {
    let issuer = current.issuer();
    if current.subject() == issuer {
      return match trust.holds_exactly(current) {
        true => Chain::Anchored,
        false => Chain::SelfSigned { depth },
      };
    }
    if trust.anchors.iter().any(|a| a.subject.as_ref() == issuer) {
      return Chain::Anchored;
    }
    let next = (0..presented.len()).find(|&i| !used[i] && presented[i].subject() == issuer);
    match next {
      Some(i) => {
        used[i] = true;
        current = &presented[i];
        depth += 1;
      }
      None => return Chain::Broken { depth },
    }
  }
}

/// rustls's refusal of `end_entity` as a rustls error carrying a [`NodeVerdict`].
///
/// Node's verify callback lets OpenSSL go on past each problem and reports the last one
/// found: the chain's (while building it), then the server certificate's purpose, then
/// each certificate's dates from the top down; the host name only when all is well. So
/// a date problem (which webpki reports first, from the server's certificate up) wins,
/// then a purpose problem, then an unanchored chain, then webpki's other reasons.
pub fn explain(
  err: rustls::Error,
  end_entity: &CertificateDer<'_>,
  intermediates: &[CertificateDer<'_>],
  trust: &Trust<'_>,
  server_name: &ServerName<'_>,
) -> rustls::Error {
  use CertificateError as C;
  let rustls::Error::InvalidCertificate(cert_err) = &err else {
    return err;
  };
  let (code, reason) = match cert_err {
    C::Expired | C::ExpiredContext { .. } => openssl("CERT_HAS_EXPIRED"),
    C::NotValidYet | C::NotValidYetContext { .. } => openssl("CERT_NOT_YET_VALID"),
    C::InvalidPurpose | C::InvalidPurposeContext { .. } => openssl("INVALID_PURPOSE"),
    _ => match chain_of(end_entity, intermediates, trust) {
      Chain::SelfSigned { depth: 0 } => openssl("DEPTH_ZERO_SELF_SIGNED_CERT"),
      Chain::SelfSigned { .. } => openssl("SELF_SIGNED_CERT_IN_CHAIN"),
      Chain::Broken { depth: 0 } => openssl("UNABLE_TO_VERIFY_LEAF_SIGNATURE"),
      Chain::Broken { .. } => openssl("UNABLE_TO_GET_ISSUER_CERT_LOCALLY"),
      Chain::Anchored => anchored_verdict(&err, end_entity, server_name),
    },
  };
  rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(NodeVerdict {
    code,
    reason,
    webpki: err,
  }))))
}

/// An anchored chain's verdict: webpki's reason, in Node's words.
fn anchored_verdict(
  err: &rustls::Error,
  end_entity: &CertificateDer<'_>,
  server_name: &ServerName<'_>,
) -> (&'static str, String) {
  use CertificateError as C;
  let rustls::Error::InvalidCertificate(cert_err) = err else {
    return openssl("ERR_TLS_CERT_INVALID");
  };
  match cert_err {
    C::Expired | C::ExpiredContext { .. } => openssl("CERT_HAS_EXPIRED"),
    C::NotValidYet | C::NotValidYetContext { .. } => openssl("CERT_NOT_YET_VALID"),
    C::NotValidForName | C::NotValidForNameContext { .. } => (
      "ERR_TLS_CERT_ALTNAME_INVALID",
      altname_reason(end_entity, server_name),
    ),
    C::Revoked => openssl("CERT_REVOKED"),
    C::BadSignature => openssl("CERT_SIGNATURE_FAILURE"),
    C::UnknownIssuer => openssl("UNABLE_TO_GET_ISSUER_CERT_LOCALLY"),
    // A CA certificate (not trusted itself) or a certificate for another purpose
    // (extendedKeyUsage without serverAuth) as the server's: OpenSSL's purpose check.
    C::InvalidPurpose | C::InvalidPurposeContext { .. } => openssl("INVALID_PURPOSE"),
    C::Other(_) if is_ca_used_as_end_entity(err) => openssl("INVALID_PURPOSE"),
    _ => (
      "ERR_TLS_CERT_INVALID",
      format!("invalid certificate: {err}"),
    ),
  }
}

/// The code with OpenSSL's reason (`X509_verify_cert_error_string`), as Node reports it.
fn openssl(code: &'static str) -> (&'static str, String) {
  let reason = match code {
    "DEPTH_ZERO_SELF_SIGNED_CERT" => "self-signed certificate",
    "SELF_SIGNED_CERT_IN_CHAIN" => "self-signed certificate in certificate chain",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE" => "unable to verify the first certificate",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" => "unable to get local issuer certificate",
    "CERT_HAS_EXPIRED" => "certificate has expired",
    "CERT_NOT_YET_VALID" => "certificate is not yet valid",
    "CERT_REVOKED" => "certificate revoked",
    "CERT_SIGNATURE_FAILURE" => "certificate signature failure",
    "INVALID_PURPOSE" => "unsuitable certificate purpose",
    _ => "invalid certificate",
  };
  (code, reason.to_string())
}

/// `checkServerIdentity`'s message for a certificate that does not name the host.
fn altname_reason(end_entity: &CertificateDer<'_>, server_name: &ServerName<'_>) -> String {
  let head = "Hostname/IP does not match certificate's altnames";
  let facts = crate::tls_cert::facts(end_entity).unwrap_or_default();
  match server_name {
    ServerName::DnsName(name) if facts.has_dns_names => format!(
      "{head}: Host: {}. is not in the cert's altnames: {}",
      name.as_ref(),
      facts.alt_names.join(", ")
    ),
    ServerName::DnsName(name) if !facts.common_names.is_empty() => format!(
      "{head}: Host: {}. is not cert's CN: {}",
      name.as_ref(),
      facts.common_names.join(",")
    ),
    ServerName::DnsName(_) => format!("{head}: Cert does not contain a DNS name"),
    ServerName::IpAddress(ip) => format!(
      "{head}: IP: {} is not in the cert's list: {}",
      std::net::IpAddr::from(*ip),
      facts.ips.join(", ")
    ),
    _ => format!("{head}: Unknown reason"),
  }
}

/// A refusal with Node's `code` (and OpenSSL's reason for it), webpki's verdict kept.
pub fn refuse(code: &'static str, webpki: rustls::Error) -> rustls::Error {
  let (code, reason) = openssl(code);
  rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(NodeVerdict {
    code,
    reason,
    webpki,
  }))))
}

/// Whether rustls's verdict is a host-name mismatch.
pub fn is_name_mismatch(err: &rustls::Error) -> bool {
  matches!(
    err,
    rustls::Error::InvalidCertificate(
      CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    )
  )
}

/// Node's code and reason for a TLS failure: the [`NodeVerdict`] inside, or rustls's
/// own verdict mapped as closely as it can be without the certificates.
pub fn node_code(err: &rustls::Error) -> (&'static str, String) {
  if let rustls::Error::InvalidCertificate(CertificateError::Other(other)) = err {
    if let Some(verdict) = other.0.downcast_ref::<NodeVerdict>() {
      return (verdict.code, verdict.reason.clone());
    }
  }
  use CertificateError as C;
  match err {
    rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
      openssl("UNABLE_TO_VERIFY_LEAF_SIGNATURE")
    }
    rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
      openssl("CERT_HAS_EXPIRED")
    }
    rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => (
      "ERR_TLS_CERT_ALTNAME_INVALID",
      format!("Hostname/IP does not match certificate's altnames: {err}"),
    ),
    rustls::Error::InvalidCertificate(_) => (
      "ERR_TLS_CERT_INVALID",
      format!("TLS handshake failed: {err}"),
    ),
    _ => ("EPROTO", format!("TLS handshake failed: {err}")),
  }
}
