"use strict"
// Throwaway certificates for the TLS verdict tests, made with openssl at test time: a
// root CA, an intermediate, and one server certificate per way a certificate can be
// wrong. `openssl ca` (not `x509 -req`) sets exact validity dates, for the expired and
// not-yet-valid cases on every openssl 3.
const fs = require("fs")
const os = require("os")
const path = require("path")
const { execFileSync } = require("child_process")

const SAN = "subjectAltName=IP:127.0.0.1,DNS:localhost"
const PAST = ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"]
const FUTURE = ["-startdate", "20400101000000Z", "-enddate", "20400102000000Z"]
const NOW = ["-days", "2"]

const EXTENSIONS = `
[ ca ]
default_ca = here
[ here ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
[ root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
${SAN}
[ wrong_host ]
basicConstraints = CA:FALSE
${"subjectAltName=DNS:other.example"}
[ ca_leaf ]
basicConstraints = critical,CA:TRUE
${SAN}
[ self_signed ]
basicConstraints = critical,CA:TRUE
subjectKeyIdentifier = hash
${SAN}
[ self_signed_wrong_host ]
basicConstraints = critical,CA:TRUE
subjectAltName = DNS:other.example
[ leaf_no_san ]
basicConstraints = CA:FALSE
[ leaf_ip_only ]
basicConstraints = CA:FALSE
subjectAltName = IP:127.0.0.1
[ self_signed_ca_usage ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
${SAN}
[ self_signed_client ]
basicConstraints = critical,CA:TRUE
extendedKeyUsage = clientAuth
${SAN}
`

/**
 * Makes the certificates in a fresh directory. Returns `{ dir, pem(name), key(name) }`;
 * names: root, other (an unknown root), intermediate, and the server certificates
 * leaf, leaf-no-san, leaf-ip-only, via-intermediate, wrong-host, expired, not-yet-valid,
 * ca-leaf, unknown-ca, self-signed, self-signed-no-san, self-signed-expired,
 * self-signed-wrong-host, self-signed-ca-usage, self-signed-client.
 */
function makeTlsCerts() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-native-tls-"))
  const run = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  fs.writeFileSync(path.join(dir, "openssl.cnf"), EXTENSIONS)
  fs.writeFileSync(path.join(dir, "index.txt"), "")
  fs.writeFileSync(path.join(dir, "serial"), "1000\n")
  const keyFor = (name) => run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`)
  const request = (name, cn) => {
    keyFor(name)
    run("req", "-new", "-key", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`)
  }
  // `openssl ca`: signed by `issuer` (or by itself), with the named extensions and dates.
  const sign = (name, issuer, extensions, dates) =>
    run("ca", "-batch", "-notext", "-config", "openssl.cnf", "-in", `${name}.csr`, "-out", `${name}.pem`,
      "-extensions", extensions, ...(issuer ? ["-cert", `${issuer}.pem`, "-keyfile", `${issuer}.key`] : ["-selfsign", "-keyfile", `${name}.key`]),
      ...dates)
  const certificate = (name, cn, issuer, extensions, dates = NOW) => {
    request(name, cn)
    sign(name, issuer, extensions, dates)
  }
  certificate("root", "pusher-native test root", null, "root")
  certificate("other", "pusher-native unknown root", null, "root")
  certificate("intermediate", "pusher-native test intermediate", "root", "root")
  certificate("leaf", "localhost", "root", "leaf")
  certificate("via-intermediate", "localhost", "intermediate", "leaf")
  certificate("wrong-host", "localhost", "root", "wrong_host")
  certificate("expired", "localhost", "root", "leaf", PAST)
  certificate("not-yet-valid", "localhost", "root", "leaf", FUTURE)
  certificate("ca-leaf", "localhost", "root", "ca_leaf")
  certificate("unknown-ca", "localhost", "other", "leaf")
  // The usual way: `openssl req -x509`, which marks the certificate CA:TRUE.
  keyFor("self-signed")
  run("req", "-x509", "-key", "self-signed.key", "-out", "self-signed.pem", "-days", "2", "-subj", "/CN=localhost", "-addext", SAN)
  // The shortest usual way: no subjectAltName, the host name in the subject's CN only.
  keyFor("self-signed-no-san")
  run("req", "-x509", "-key", "self-signed-no-san.key", "-out", "self-signed-no-san.pem", "-days", "2", "-subj", "/CN=localhost")
  certificate("leaf-no-san", "localhost", "root", "leaf_no_san")
  certificate("leaf-ip-only", "localhost", "root", "leaf_ip_only")
  certificate("self-signed-ca-usage", "localhost", null, "self_signed_ca_usage")
  certificate("self-signed-expired", "localhost", null, "self_signed", PAST)
  certificate("self-signed-wrong-host", "localhost", null, "self_signed_wrong_host")
  certificate("self-signed-client", "localhost", null, "self_signed_client")
  const read = (file) => fs.readFileSync(path.join(dir, file), "utf8")
  return {
    dir,
    pem: (name) => read(`${name}.pem`),
    key: (name) => read(`${name}.key`),
    close: () => fs.rmSync(dir, { recursive: true, force: true }),
  }
}

module.exports = { makeTlsCerts }
