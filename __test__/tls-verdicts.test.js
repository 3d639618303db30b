"use strict"
// Certificates as Node's TLS judges them: for each way a server certificate can be
// wrong (or right), Node's own `tls.connect` is asked first, then pusher-native must
// accept what Node accepts and refuse the rest with Node's code (`err.error.code`) and
// reason. Nothing is hard-coded: the expectation is whatever this Node says. Runs on the
// event loop and (npm run test:tokio) on the tokio transport.
const test = require("node:test")
const assert = require("node:assert")
const fs = require("node:fs")
const path = require("node:path")
const tls = require("node:tls")
const { Pusher, recordingServer, pusherFor, within, settled, runNode } = require("./helpers")
const { makeTlsCerts } = require("./tls-certs")

const ROOT = path.join(__dirname, "..")

// [what, server key, certificates the server sends, what the client trusts (`ca`), host]
const CASES = [
  ["self-signed (openssl req -x509, CA:TRUE), not trusted", "self-signed", ["self-signed"], null],
  ["self-signed, trusted as ca", "self-signed", ["self-signed"], "self-signed"],
  ["self-signed, trusted as ca, by name", "self-signed", ["self-signed"], "self-signed", "localhost"],
  ["self-signed and expired, trusted as ca", "self-signed-expired", ["self-signed-expired"], "self-signed-expired"],
  ["self-signed for another host, trusted as ca", "self-signed-wrong-host", ["self-signed-wrong-host"], "self-signed-wrong-host"],
  ["self-signed without subjectAltName (CN only), trusted, by name", "self-signed-no-san", ["self-signed-no-san"], "self-signed-no-san", "localhost"],
  ["self-signed without subjectAltName (CN only), trusted, by IP", "self-signed-no-san", ["self-signed-no-san"], "self-signed-no-san"],
  ["self-signed for client authentication only, trusted", "self-signed-client", ["self-signed-client"], "self-signed-client"],
  ["self-signed with a CA's key usage only, trusted", "self-signed-ca-usage", ["self-signed-ca-usage"], "self-signed-ca-usage"],
  ["self-signed, another CA trusted", "self-signed", ["self-signed"], "root"],
  ["self-signed, another certificate with its name and key trusted", "self-signed-wrong-host", ["self-signed-wrong-host"], "self-signed"],
  ["self-signed, expired, not trusted", "self-signed-expired", ["self-signed-expired"], null],
  ["signed by a trusted CA", "leaf", ["leaf"], "root"],
  ["signed by an unknown CA", "leaf", ["leaf"], null],
  ["expired", "expired", ["expired"], "root"],
  ["not yet valid", "not-yet-valid", ["not-yet-valid"], "root"],
  ["for another host (IP)", "wrong-host", ["wrong-host"], "root"],
  ["for another host (name)", "wrong-host", ["wrong-host"], "root", "localhost"],
  ["no subjectAltName, CN names the host", "leaf-no-san", ["leaf-no-san"], "root", "localhost"],
  ["an IP in subjectAltName only, CN names the host", "leaf-ip-only", ["leaf-ip-only"], "root", "localhost"],
  ["unknown CA, leaf only", "unknown-ca", ["unknown-ca"], "root"],
  ["unknown CA, its root sent along", "unknown-ca", ["unknown-ca", "other"], "root"],
  ["incomplete chain (intermediate not sent)", "via-intermediate", ["via-intermediate"], "root"],
  ["complete chain", "via-intermediate", ["via-intermediate", "intermediate"], "root"],
  ["chain to an untrusted root, root not sent", "via-intermediate", ["via-intermediate", "intermediate"], null],
  ["chain to an untrusted root, root sent", "via-intermediate", ["via-intermediate", "intermediate", "root"], null],
  ["expired, from an unknown CA", "expired", ["expired"], null],
]

const USE_SYSTEM_CA_HINT = /; if the root CA is installed locally, try running Node\.js with --use-system-ca$/

/** Node's verdict: "ok", or `{ code, message }` of tls.connect's error. */
function nodeVerdict({ port, ca, host }) {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, ca, servername: net(host) ? undefined : host }, () => {
      socket.destroy()
      resolve("ok")
    })
    socket.on("error", (e) => resolve({ code: e.code, message: e.message }))
  })
}
const net = (host) => /^[\d.]+$/.test(host)

async function ourVerdict({ port, ca, host }) {
  const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", host, port, useTLS: true, ...(ca ? { ca } : {}) })
  const { value, error } = await within(settled(pusher.trigger("c", "e", {})), 10000, "trigger")
  if (value) return { ok: value.status }
  return { code: error.error && error.error.code, message: error.error && error.error.message, kind: error.code, url: error.url }
}

test("TLS verdicts: each certificate is accepted or refused as Node's tls.connect does, with its code", { timeout: 120000 }, async (t) => {
  const certs = makeTlsCerts()
  t.after(certs.close)
  const table = []
  for (const [what, key, chain, trusted, host = "127.0.0.1"] of CASES) {
    const server = await recordingServer({ tls: { key: certs.key(key), cert: chain.map(certs.pem).join("") } })
    try {
      const ca = trusted ? certs.pem(trusted) : undefined
      const node = await nodeVerdict({ port: server.port, ca, host })
      const ours = await ourVerdict({ port: server.port, ca, host })
      table.push(`${what}: node ${node === "ok" ? "ok" : node.code}, ours ${ours.ok ? "ok" : ours.code}`)
      if (node === "ok") {
        assert.deepEqual(ours, { ok: 200 }, `${what}: Node accepts it`)
      } else {
        assert.equal(ours.code, node.code, `${what}: Node's code`)
        assert.equal(ours.kind, "PUSHER_TLS", what)
        // Newer Nodes add a hint to two reasons about --use-system-ca, a flag that has no
        // effect on pusher-native (it never reads the system store): not repeated.
        const reason = node.message.replace(USE_SYSTEM_CA_HINT, "")
        assert.equal(ours.message, `request to ${ours.url} failed, reason: ${reason}`, `${what}: Node's reason`)
      }
    } finally {
      await server.close()
    }
  }
  t.diagnostic(table.join("\n"))
})

test("TLS verdicts: a self-signed certificate in NODE_EXTRA_CA_CERTS is accepted as Node accepts it", { timeout: 30000 }, async (t) => {
  const certs = makeTlsCerts()
  t.after(certs.close)
  const server = await recordingServer({ tls: { key: certs.key("self-signed"), cert: certs.pem("self-signed") } })
  try {
    // Node and pusher-native in one child, both reading the variable at start-up.
    const code = `
      const tls = require("tls")
      const Pusher = require(${JSON.stringify(ROOT)})
      const port = ${server.port}
      const node = new Promise((resolve) => {
        const s = tls.connect({ host: "127.0.0.1", port }, () => { s.destroy(); resolve("ok") })
        s.on("error", (e) => resolve(e.code))
      })
      const p = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port, useTLS: true })
      const ours = p.trigger("c", "e", {}).then((r) => r.status, (e) => e.error && e.error.code)
      Promise.all([node, ours]).then(([node, ours]) => console.log(JSON.stringify({ node, ours })))`
    const trusted = await runNode(code, { env: { NODE_EXTRA_CA_CERTS: path.join(certs.dir, "self-signed.pem") } })
    assert.equal(trusted.code, 0, trusted.stderr)
    assert.deepEqual(JSON.parse(trusted.stdout), { node: "ok", ours: 200 })
    const untrusted = await runNode(code, { env: { NODE_EXTRA_CA_CERTS: "" } })
    assert.deepEqual(JSON.parse(untrusted.stdout), { node: "DEPTH_ZERO_SELF_SIGNED_CERT", ours: "DEPTH_ZERO_SELF_SIGNED_CERT" })
    assert.equal(server.requests.length, 1)
  } finally {
    await server.close()
  }
})

test("TLS verdicts: a CA certificate as the server's, not trusted itself, is refused (INVALID_PURPOSE)", { timeout: 30000 }, async (t) => {
  // Deliberately stricter than Node, which accepts it: webpki refuses a CA:TRUE server
  // certificate unless it is itself the one trusted (README, "Deliberately different").
  const certs = makeTlsCerts()
  t.after(certs.close)
  const server = await recordingServer({ tls: { key: certs.key("ca-leaf"), cert: certs.pem("ca-leaf") } })
  try {
    const ours = await ourVerdict({ port: server.port, ca: certs.pem("root"), host: "127.0.0.1" })
    assert.equal(ours.code, "INVALID_PURPOSE")
    assert.equal(ours.message, `request to ${ours.url} failed, reason: unsuitable certificate purpose`)
    // Trusted itself, it is accepted.
    const trusted = await ourVerdict({ port: server.port, ca: [certs.pem("root"), certs.pem("ca-leaf")], host: "127.0.0.1" })
    assert.deepEqual(trusted, { ok: 200 })
  } finally {
    await server.close()
  }
})

test("TLS verdicts: the certificate fixtures are what the cases say", () => {
  const certs = makeTlsCerts()
  try {
    const selfSigned = new (require("crypto").X509Certificate)(certs.pem("self-signed"))
    assert.equal(selfSigned.ca, true, "openssl req -x509 marks it CA:TRUE")
    assert.ok(selfSigned.checkIssued(selfSigned))
    const expired = new (require("crypto").X509Certificate)(certs.pem("expired"))
    assert.ok(new Date(expired.validTo) < new Date())
    assert.ok(fs.existsSync(path.join(certs.dir, "self-signed.pem")))
  } finally {
    certs.close()
  }
})
