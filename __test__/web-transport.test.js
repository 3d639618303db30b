"use strict"
// The web build's transport (lib/web/request.js, the platform fetch) under Node, where
// it must behave as the native build does beyond what the comparing suites cover: a
// body that breaks off rejects the call itself (the body is read before resolving), a
// burst of thousands of triggers is held to a bounded number of requests in flight per
// origin and each is delivered once, the scheme check and TLS failures read as they do
// natively. Real servers on 127.0.0.1.

const { test, before } = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const net = require("node:net")
const { recordingServer, pusherFor, makeCerts, settled, within, Upstream } = require("./helpers")

let Web
before(() => {
  Web = require(require("../scripts/build-web").build()).default
})

test("a body that breaks off rejects the call with a network RequestError, not a later read", { timeout: 15000 }, async () => {
  const server = net.createServer((socket) => {
    socket.once("data", () => {
      socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"partial\":")
      setTimeout(() => socket.destroy(), 20)
    })
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  try {
    const { error } = await within(settled(pusherFor({ port: server.address().port, url: "http://127.0.0.1" }, {}, Web).trigger("c", "e", {})), 5000)
    assert.ok(error instanceof Web.RequestError, `a RequestError, got ${error}`)
    assert.equal(error.message, "Request failed with an error")
    assert.equal(error.code, "PUSHER_NETWORK")
    assert.equal(error.error.name, "FetchError")
  } finally {
    server.close()
  }
})

test("the Response resolved is whole: its body reads after the server is gone", async () => {
  const server = await recordingServer()
  const response = await pusherFor(server, {}, Web).trigger("c", "e", {})
  await server.close()
  assert.ok(response instanceof Response)
  assert.equal(response.status, 200)
  assert.match(response.url, /^http:\/\/127\.0\.0\.1:\d+\/apps\/1\/events\?auth_key=key&/)
  assert.equal(response.redirected, false)
  assert.deepEqual(await response.json(), {})
})

test("3000 concurrent triggers: each delivered once, at most 256 requests in flight", { timeout: 60000 }, async () => {
  let open = 0
  let most = 0
  const server = await recordingServer({
    handler: (req, body, res) => {
      open++
      most = Math.max(most, open)
      setTimeout(() => {
        open--
        res.writeHead(200, { "content-type": "application/json" })
        res.end("{}")
      }, 300) // held long enough that an unbounded client would have far more than 256 open
    },
  })
  try {
    const pusher = pusherFor(server, {}, Web)
    const results = await Promise.allSettled(Array.from({ length: 3000 }, (_, i) => pusher.trigger("c", "e", { i })))
    assert.deepEqual(results.filter((r) => r.status === "rejected").map((r) => String(r.reason.error || r.reason)).slice(0, 3), [])
    const seen = server.requests.map((r) => JSON.parse(JSON.parse(r.body).data).i).sort((a, b) => a - b)
    assert.deepEqual(seen, Array.from({ length: 3000 }, (_, i) => i))
    assert.ok(most <= 256, `${most} requests in flight at once`)
    assert.ok(most > 1, "requests do run concurrently")
  } finally {
    await server.close()
  }
})

test("a request waiting for its turn still times out on time", { timeout: 30000 }, async () => {
  const server = await recordingServer({ handler: () => {} }) // never answers
  try {
    const pusher = pusherFor(server, { timeout: 300 }, Web)
    const started = performance.now()
    const results = await Promise.all(Array.from({ length: 300 }, () => settled(pusher.trigger("c", "e", {}))))
    const ms = performance.now() - started
    assert.deepEqual([...new Set(results.map((r) => r.error && r.error.code))], ["PUSHER_TIMEOUT"])
    assert.ok(ms < 5000, `all 300 timed out after ${Math.round(ms)} ms`)
    assert.equal(results[299].error.error.name, "AbortError")
  } finally {
    await server.close()
  }
})

test('scheme "ftp" rejects as pusher does, and sends nothing', async () => {
  const server = await recordingServer()
  try {
    const shapes = []
    for (const Impl of [Upstream, Web]) {
      const { error } = await settled(pusherFor(server, { scheme: "ftp" }, Impl).trigger("c", "e", {}))
      shapes.push([error.message, error.error.name, error.error.message])
    }
    assert.deepEqual(shapes[1], shapes[0])
    assert.equal(server.requests.length, 0)
  } finally {
    await server.close()
  }
})

test("an untrusted certificate: PUSHER_TLS with Node's code, not retryable, nothing sent", { timeout: 15000 }, async () => {
  const certs = makeCerts()
  const server = await recordingServer({ tls: { cert: certs.certPem, key: certs.keyPem } })
  try {
    const { error } = await within(settled(pusherFor(server, {}, Web).trigger("c", "e", {})), 5000)
    assert.equal(error.code, "PUSHER_TLS")
    assert.equal(error.error.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
    assert.equal(error.retryable, false)
    assert.equal(server.requests.length, 0)
  } finally {
    await server.close()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})
