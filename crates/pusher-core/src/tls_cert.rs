//! What Node's TLS reads from a server certificate that webpki does not check the same
//! way: the purpose of a certificate trusted as itself (OpenSSL checks
//! `extendedKeyUsage` and `keyUsage` even then), and the subject's common name, which
//! Node's `checkServerIdentity` matches when the certificate names no DNS host.

use x509_cert::der::oid::db::{rfc4519, rfc5280};
use x509_cert::der::{asn1, Decode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::Certificate;

/// The parts of a certificate Node's checks read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CertFacts {
  /// Whether OpenSSL's purpose check for a TLS server passes: `extendedKeyUsage`, if
  /// present, includes serverAuth; `keyUsage`, if present, allows a TLS key exchange.
  pub server_purpose: bool,
  /// Whether `subjectAltName` names at least one DNS host.
  pub has_dns_names: bool,
  /// `subjectAltName` as Node lists it (`DNS:a`, `IP Address:1.2.3.4`).
  pub alt_names: Vec<String>,
  /// The IP addresses in `subjectAltName`.
  pub ips: Vec<String>,
  /// The subject's common names (`CN=`), in order.
  pub common_names: Vec<String>,
}

/// The facts of a DER certificate, or None when it cannot be read.
pub fn facts(der: &[u8]) -> Option<CertFacts> {
  let cert = Certificate::from_der(der).ok()?;
  let tbs = &cert.tbs_certificate;
  let eku_ok = match tbs.get::<ExtendedKeyUsage>().ok()? {
    Some((_, eku)) => eku.0.contains(&rfc5280::ID_KP_SERVER_AUTH),
    None => true,
  };
  let ku_ok = match tbs.get::<KeyUsage>().ok()? {
    Some((_, ku)) => {
      let tls = KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment | KeyUsages::KeyAgreement;
      !(ku.0 & tls).is_empty()
    }
    None => true,
  };
  let san = tbs
    .get::<SubjectAltName>()
    .ok()?
    .map(|(_, san)| san.0)
    .unwrap_or_default();
  let has_dns_names = san.iter().any(|n| matches!(n, GeneralName::DnsName(_)));
  let ips: Vec<String> = san
    .iter()
    .filter_map(|n| match n {
      GeneralName::IpAddress(bytes) => ip_text(bytes.as_bytes()),
      _ => None,
    })
    .collect();
  let alt_names = san
    .iter()
    .filter_map(|n| match n {
      GeneralName::DnsName(name) => Some(format!("DNS:{}", name.as_str())),
      GeneralName::IpAddress(bytes) => {
        ip_text(bytes.as_bytes()).map(|ip| format!("IP Address:{ip}"))
      }
      GeneralName::UniformResourceIdentifier(uri) => Some(format!("URI:{}", uri.as_str())),
      GeneralName::Rfc822Name(mail) => Some(format!("email:{}", mail.as_str())),
      _ => None,
    })
    .collect();
  let common_names = tbs
    .subject
    .0
    .iter()
    .flat_map(|rdn| rdn.0.iter())
    .filter(|atv| atv.oid == rfc4519::CN)
    .filter_map(|atv| directory_string(&atv.value))
    .collect();
  Some(CertFacts {
    server_purpose: eku_ok && ku_ok,
    has_dns_names,
    alt_names,
    ips,
    common_names,
  })
}

fn ip_text(bytes: &[u8]) -> Option<String> {
  let ip = match bytes.len() {
    4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
    16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
    _ => return None,
  };
  Some(ip.to_string())
}

fn directory_string(value: &asn1::Any) -> Option<String> {
  let text = match value.tag() {
    Tag::Utf8String => asn1::Utf8StringRef::try_from(value)
      .ok()?
      .as_str()
      .to_owned(),
    Tag::PrintableString => asn1::PrintableStringRef::try_from(value)
      .ok()?
      .as_str()
      .to_owned(),
    Tag::Ia5String => asn1::Ia5StringRef::try_from(value)
      .ok()?
      .as_str()
      .to_owned(),
    Tag::TeletexString => asn1::TeletexStringRef::try_from(value)
      .ok()?
      .as_str()
      .to_owned(),
    _ => return None,
  };
  Some(text)
}

/// Node's host-name match (`tls.checkServerIdentity`'s `check` with wildcards): the same
/// number of labels, case-insensitive, a `*` only in the first label of a name with at
/// least three labels, never in an IDNA (`xn--`) label.
pub fn host_matches(host: &str, pattern: &str) -> bool {
  let split = |name: &str| -> Vec<String> {
    name
      .trim_end_matches('.')
      .to_ascii_lowercase()
      .split('.')
      .map(str::to_owned)
      .collect()
  };
  if pattern.is_empty() {
    return false;
  }
  let host = split(host);
  let pattern = split(pattern);
  if host.len() != pattern.len() || pattern.iter().any(String::is_empty) {
    return false;
  }
  if pattern
    .iter()
    .any(|p| p.chars().any(|c| !('\u{21}'..='\u{7f}').contains(&c)))
  {
    return false;
  }
  if host[1..] != pattern[1..] {
    return false;
  }
  let (first, wanted) = (&host[0], &pattern[0]);
  let parts: Vec<&str> = wanted.split('*').collect();
  if parts.len() == 1 || wanted.contains("xn--") {
    return first == wanted;
  }
  if parts.len() > 2 || pattern.len() <= 2 {
    return false;
  }
  let (prefix, suffix) = (parts[0], parts[1]);
  prefix.len() + suffix.len() <= first.len() && first.starts_with(prefix) && first.ends_with(suffix)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn host_names_match_as_node_matches_them() {
    assert!(host_matches("localhost", "localhost"));
    assert!(host_matches("API.example.com", "api.example.COM"));
    assert!(host_matches("api.example.com.", "api.example.com"));
    assert!(host_matches("api.example.com", "*.example.com"));
    assert!(host_matches("api.example.com", "a*.example.com"));
    assert!(
      !host_matches("example.com", "*.com"),
      "no wildcard over two labels"
    );
    assert!(
      !host_matches("a.b.example.com", "*.example.com"),
      "one label only"
    );
    assert!(!host_matches("api.example.com", "*.*.com"));
    assert!(!host_matches("xn--api.example.com", "xn--*.example.com"));
    assert!(!host_matches("localhost", ""));
    assert!(!host_matches("other", "localhost"));
  }
}
