"use strict"
// Issue 12, item 2: HTTPS request bodies of 1 KB to 1 MB arrive whole, on fresh and on
// pooled connections (a Node https server answers with the length and SHA-256 of what
// it received), and the 10 × 9 KB triggerBatch of a real application goes out over
// TLS. The `limits` extra is off by default: pusher-native sends what it is given, as
// `pusher` does. Runs on both transports (see the test:tokio script).

const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const crypto = require("node:crypto")
const { recordingServer, pusherFor, makeCerts, within, settled } = require("./helpers")

const TRANSPORT = process.env.PUSHER_NATIVE_TRANSPORT === "tokio" ? "tokio" : "event loop"
const SIZES = [1024, 16 * 1024, 64 * 1024, 65 * 1024, 256 * 1024, 1024 * 1024]
const certs = makeCerts()
test.after(() => fs.rmSync(certs.dir, { recursive: true, force: true }))

const sha256 = (s) => crypto.createHash("sha256").update(s).digest("hex")

/** An https server answering `{ length, sha256 }` of each body; `close` ends every connection. */
function digestServer({ close }) {
  return recordingServer({
    tls: { cert: certs.certPem, key: certs.keyPem },
    handler: (req, body, res) => {
      const headers = { "content-type": "application/json" }
      if (close) headers.connection = "close"
      res.writeHead(200, headers)
      res.end(JSON.stringify({ length: Buffer.byteLength(body), sha256: sha256(body) }))
    },
  })
}

/** A JSON body of exactly `size` bytes: `{"d":"xxx…"}`. */
const bodyOf = (size) => ({ d: "x".repeat(size - 8) })

/** Posts each size in turn; `[size, outcome]` per size. */
async function postAll(pusher) {
  const outcomes = []
  for (const size of SIZES) {
    const body = bodyOf(size)
    const expected = { length: size, sha256: sha256(JSON.stringify(body)) }
    const { value, error } = await within(settled(pusher.post({ path: "/echo", body })), 15000, `a ${size}-byte POST`)
    if (error) outcomes.push([size, `rejected: ${error.error ? error.error.code : error.message}`])
    else outcomes.push([size, JSON.stringify(await value.json()) === JSON.stringify(expected) ? "ok" : "corrupted"])
  }
  return outcomes
}

test(`the limits extra is off by default: a 1 MB event is sent, not refused (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await recordingServer()
  try {
    const res = await within(pusherFor(server, {}).trigger("c", "e", "x".repeat(1024 * 1024)), 10000)
    assert.equal(res.status, 200)
    assert.equal(JSON.parse(server.requests[0].body).data.length, 1024 * 1024)
  } finally {
    await server.close()
  }
})

test(`HTTPS bodies of 1 KB to 1 MB, each on a fresh connection (${TRANSPORT})`, { timeout: 90000 }, async () => {
  const server = await digestServer({ close: true })
  try {
    const outcomes = await postAll(pusherFor(server, { ca: certs.caPem, timeout: 10000 }))
    assert.deepEqual(outcomes, SIZES.map((size) => [size, "ok"]))
    assert.equal(server.requests.length, SIZES.length)
  } finally {
    await server.close()
  }
})

test(`HTTPS bodies of 1 KB to 1 MB on one pooled connection (${TRANSPORT})`, { timeout: 90000 }, async () => {
  const server = await digestServer({ close: false })
  let opened = 0
  server.server.on("secureConnection", () => opened++)
  try {
    const pusher = pusherFor(server, { ca: certs.caPem, timeout: 10000 })
    assert.equal((await within(pusher.post({ path: "/echo", body: {} }), 10000)).status, 200)
    const outcomes = await postAll(pusher)
    assert.deepEqual(outcomes, SIZES.map((size) => [size, "ok"]))
    assert.equal(opened, 1, "every request on the connection the first one opened")
  } finally {
    await server.close()
  }
})

test(`a triggerBatch of 10 events of 9 KB over TLS, fresh and pooled (${TRANSPORT})`, { timeout: 60000 }, async () => {
  for (const close of [true, false]) {
    const server = await digestServer({ close })
    try {
      const pusher = pusherFor(server, { ca: certs.caPem, timeout: 10000 })
      const batch = Array.from({ length: 10 }, (_, i) => ({ channel: `private-${i}`, name: "update", data: { i, text: "y".repeat(9000) } }))
      for (let round = 0; round < 2; round++) {
        const { value, error } = await within(settled(pusher.triggerBatch(batch)), 15000)
        assert.ok(!error, `${close ? "fresh" : "pooled"} connection, round ${round}: ${error && (error.error ? error.error.code : error.message)}`)
        const received = server.requests[server.requests.length - 1].body
        assert.deepEqual(await value.json(), { length: Buffer.byteLength(received), sha256: sha256(received) })
        const events = JSON.parse(received).batch
        assert.deepEqual(events.map((e) => [e.channel, e.name, JSON.parse(e.data).text.length]), batch.map((e) => [e.channel, "update", 9000]))
      }
    } finally {
      await server.close()
    }
  }
})
