"use strict"
// README claims that no other suite checks, each beside `pusher` where the claim is a
// difference from it ("Deliberately different from `pusher`", "Beyond `pusher`").
// The others are checked where their feature is: extras (retry, limits, autoChunk,
// flush, verifyWebhook, codes, diagnostics), queries, transport (headers, proxy, ca),
// tls-verdicts, options-errors, security (redaction, master keys), no-noise (warnings),
// faults and hostile-server* (hostile responses, breaks, timeouts), types (typings).
const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const net = require("node:net")
const path = require("node:path")
const crypto = require("node:crypto")
const { Pusher, Upstream, recordingServer, pusherFor, makeCerts, atTime, within, settled, runNode } = require("./helpers")

const ROOT = path.join(__dirname, "..")
const BASE = { appId: "1", key: "key", secret: "secret" }

/** A raw TCP server answering every request with `answer(socket)`. */
async function rawServer(answer) {
  const sockets = new Set()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {})
    socket.once("data", () => answer(socket))
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    port: server.address().port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

const pusherAt = (Impl, port, options = {}) => new Impl({ ...BASE, host: "127.0.0.1", port, ...options })

test("errors are real classes: the stack starts with the class name and the message", { timeout: 15000 }, async () => {
  const server = await recordingServer({ handler: (req, body, res) => res.writeHead(500).end("boom") })
  try {
    const { error } = await within(settled(pusherFor(server).trigger("c", "e", {})), 5000)
    assert.ok(error instanceof Error)
    assert.ok(error instanceof Pusher.RequestError)
    assert.match(error.stack, /^PusherRequestError: Unexpected status code 500\n {4}at /)
  } finally {
    await server.close()
  }
  const webhook = new Pusher(BASE).webhook({ headers: { "content-type": "application/json" }, rawBody: "{nope" })
  let thrown
  try {
    webhook.getData()
  } catch (e) {
    thrown = e
  }
  assert.ok(thrown instanceof Error && thrown instanceof Pusher.WebHookError)
  assert.match(thrown.stack, /^PusherWebHookError: Invalid WebHook body\n/)
})

test("Pusher(options) without new throws a TypeError (pusher writes globalThis.config)", () => {
  assert.throws(() => Pusher(BASE), TypeError)
  assert.equal(globalThis.config, undefined)
  try {
    Upstream(BASE) // sloppy-mode upstream: `this` is the global object
    assert.equal(typeof globalThis.config, "object", "pusher's behaviour, for contrast")
  } finally {
    delete globalThis.config
  }
})

test("timestamps are Y2038-safe, and identical to pusher's until then", () => {
  const signed = (Impl) => new Impl(BASE).createSignedQueryString({ method: "GET", path: "/channels" })
  const stamp = (query) => Number(new URLSearchParams(query).get("auth_timestamp"))
  const before = Date.UTC(2037, 11, 31)
  assert.equal(atTime(before, () => signed(Pusher)), atTime(before, () => signed(Upstream)))
  const after = Date.UTC(2040, 0, 1)
  assert.equal(atTime(after, () => stamp(signed(Pusher))), after / 1000)
  assert.ok(atTime(after, () => stamp(signed(Upstream))) < 0, "pusher's `| 0` wraps")
})

test("an agent is used only for its proxy: any other agent is accepted and ignored", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  try {
    let connections = 0
    const agent = new (require("node:http").Agent)({ keepAlive: true })
    const create = agent.createConnection.bind(agent)
    agent.createConnection = (...args) => {
      connections++
      return create(...args)
    }
    const res = await within(pusherFor(server, { agent }).trigger("c", "e", {}), 5000)
    assert.equal(res.status, 200)
    assert.equal(connections, 0, "pusher-native did not use the agent's sockets")
    await within(pusherFor(server, { agent }, Upstream).trigger("c", "e", {}), 5000)
    assert.equal(connections, 1, "pusher does (for contrast)")
    agent.destroy()
  } finally {
    await server.close()
  }
})

test("a pooled connection verified with one `ca` is never reused by an instance without it", { timeout: 15000 }, async () => {
  const certs = makeCerts()
  const server = await recordingServer({ tls: { cert: certs.certPem, key: certs.keyPem } })
  try {
    const trusted = await within(pusherFor(server, { ca: certs.caPem }).trigger("c", "e", {}), 5000)
    assert.equal(trusted.status, 200)
    const { error } = await within(settled(pusherFor(server).trigger("c", "e", {})), 5000)
    assert.equal(error && error.error.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
    assert.equal(server.requests.length, 1)
  } finally {
    await server.close()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})

test("TLS: the system store (SSL_CERT_FILE, SSL_CERT_DIR) is not consulted", { timeout: 20000 }, async () => {
  const certs = makeCerts()
  const server = await recordingServer({ tls: { cert: certs.certPem, key: certs.keyPem } })
  try {
    const code = `
      const Pusher = require(${JSON.stringify(ROOT)})
      new Pusher({ appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: ${server.port}, useTLS: true })
        .trigger("c", "e", {})
        .then((r) => console.log(JSON.stringify({ status: r.status })), (e) => console.log(JSON.stringify({ code: e.error.code })))`
    const env = { NODE_EXTRA_CA_CERTS: "", SSL_CERT_FILE: certs.caPath, SSL_CERT_DIR: certs.dir }
    const run = await runNode(code, { env })
    assert.deepEqual(JSON.parse(run.stdout), { code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" }, run.stderr)
    assert.equal(server.requests.length, 0)
  } finally {
    await server.close()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})

test("`timeout` covers the body too: a body that stalls rejects; pusher resolves once headers arrive", { timeout: 15000 }, async () => {
  const server = await rawServer((socket) =>
    socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"a\":")
  )
  try {
    const ours = await within(settled(pusherAt(Pusher, server.port, { timeout: 300 }).trigger("c", "e", {})), 5000)
    assert.equal(ours.error && ours.error.code, "PUSHER_TIMEOUT")
    assert.equal(ours.error.error.name, "AbortError")
    assert.equal(ours.error.error.code, "ETIMEDOUT")
    const theirs = await within(settled(pusherAt(Upstream, server.port, { timeout: 300 }).trigger("c", "e", {})), 5000)
    assert.equal(theirs.value && theirs.value.status, 200, "pusher resolves at the headers")
  } finally {
    await server.close()
  }
})

test("a body that breaks off rejects the call with ECONNRESET; pusher resolves", { timeout: 15000 }, async () => {
  const server = await rawServer((socket) => {
    socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"a\":", () => socket.destroy())
  })
  try {
    const ours = await within(settled(pusherAt(Pusher, server.port).trigger("c", "e", {})), 5000)
    assert.equal(ours.error && ours.error.code, "PUSHER_NETWORK")
    assert.equal(ours.error.error.code, "ECONNRESET")
    const theirs = await within(settled(pusherAt(Upstream, server.port).trigger("c", "e", {})), 5000)
    assert.equal(theirs.value && theirs.value.status, 200, "pusher resolves at the headers")
  } finally {
    await server.close()
  }
})

test("webhooks: webhook().isValid() refuses `application/json; charset=utf-8` as pusher does; verifyWebhook accepts it", () => {
  const body = JSON.stringify({ time_ms: Date.now(), events: [] })
  const headers = {
    "x-pusher-key": BASE.key,
    "x-pusher-signature": crypto.createHmac("sha256", BASE.secret).update(body).digest("hex"),
    "content-type": "application/json; charset=utf-8",
  }
  assert.equal(new Upstream(BASE).webhook({ headers, rawBody: body }).isValid(), false)
  assert.equal(new Pusher(BASE).webhook({ headers, rawBody: body }).isValid(), false)
  assert.equal(new Pusher(BASE).verifyWebhook({ headers, rawBody: body }).valid, true)
  // With plain `application/json` both agree.
  const plain = { ...headers, "content-type": "application/json" }
  assert.equal(new Pusher(BASE).webhook({ headers: plain, rawBody: body }).isValid(), true)
})

test("limits.channels above 100 lifts pusher's limit of 100 channels per trigger: one request", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  try {
    const channels = Array.from({ length: 150 }, (_, i) => "c" + i)
    assert.throws(() => pusherFor(server).trigger(channels, "e", {}), /more than 100 channels/)
    const res = await within(pusherFor(server, { limits: { channels: 200 } }).trigger(channels, "e", {}), 5000)
    assert.equal(res.status, 200)
    assert.equal(server.requests.length, 1)
    assert.equal(JSON.parse(server.requests[0].body).channels.length, 150)
    assert.throws(() => pusherFor(server, { limits: { channels: 10 } }).trigger(channels.slice(0, 11), "e", {}), { code: "PUSHER_LIMIT_EXCEEDED" })
  } finally {
    await server.close()
  }
})

test("the README mentions examples/, and every example it names exists", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8")
  const named = [...readme.matchAll(/`(examples\/[\w./-]+)`/g)].map((m) => m[1])
  assert.ok(named.length >= 3, "examples/ is described")
  for (const file of named) assert.ok(fs.existsSync(path.join(ROOT, file)), file)
})
