"use strict"
// Issue 20, "bounded by design": what a hostile server or a demanding caller can make
// us hold (body bytes, connections, clients) and how long a call can take (`timeout`
// with `retry`, issue 22 item 3 too). Runs on both transports (see the test:tokio
// script); calls with `retry` always run on tokio.

const test = require("node:test")
const assert = require("node:assert/strict")
const Pusher = require("..")
const { within } = require("./helpers")
const { rawServer, runClient, assertSurvived, blackHole } = require("./raw-servers")

const TOKIO = process.env.PUSHER_NATIVE_TRANSPORT === "tokio"
const TRANSPORT = TOKIO ? "tokio" : "event loop"
// The event loop's side of `maxResponseSize` and `maxSockets` (issue 20 items 1 and 10)
// is built on the `speed` branch; drop this once both are merged.

const DEFAULT_MAX_RESPONSE_SIZE = 128 * 1024 * 1024

/** Answers the first request with `head` and then chunks of 64 KiB until the client goes. */
function endlessBody(socket) {
  socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
  const chunk = Buffer.from(`10000\r\n${"x".repeat(0x10000)}\r\n`)
  const pump = () => {
    while (!socket.destroyed && socket.write(chunk));
  }
  socket.on("drain", pump)
  pump()
}

for (const [what, limit] of [
  ["a small maxResponseSize", 100000],
  ["the default maxResponseSize", undefined],
]) {
  test(`an endless body stops at ${what}: max-size FetchError, then the next call works (${TRANSPORT})`, { timeout: 60000 }, async () => {
    const server = await rawServer((socket, request) => {
      if (request.body.includes('"healthy"')) return socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
      endlessBody(socket)
    })
    try {
      const run = await runClient(
        `const p = make(Pusher, { port: ARGS.port, maxResponseSize: ARGS.limit })
         let error
         await p.trigger("c", "e", {}).catch((e) => (error = e))
         report({ code: error && error.code, name: error && error.error && error.error.name, type: error && error.error && error.error.type,
           message: error && error.error && error.error.message, keys: error && error.error && Object.keys(error.error), retryable: error && error.retryable,
           url: error && error.url, rssMB: process.memoryUsage().rss / 2 ** 20 })
         report(await outcome(() => p.trigger("healthy", "e", {})))`,
        { args: { port: server.port, limit }, killAfterMs: 45000 }
      )
      assertSurvived(run)
      const [failed, healthy] = run.results
      const n = limit === undefined ? DEFAULT_MAX_RESPONSE_SIZE : limit
      assert.deepEqual(
        { code: failed.code, name: failed.name, type: failed.type, keys: failed.keys, retryable: failed.retryable },
        { code: "PUSHER_NETWORK", name: "FetchError", type: "max-size", keys: ["message", "type"], retryable: false }
      )
      assert.match(failed.message, new RegExp(`^content size at http://127\\.0\\.0\\.1:${server.port}/apps/1/events\\?\\S+ over limit: ${n}$`))
      // Bytes held while reading stay near the limit (not a multiple of what was sent).
      assert.ok(failed.rssMB < 80 + (3 * n) / 2 ** 20, `RSS ${Math.round(failed.rssMB)} MB after a ${n}-byte limit`)
      assert.deepEqual([healthy.ok, healthy.body], [true, "{}"])
    } finally {
      await server.close()
    }
  })
}

test(`maxResponseSize and maxSockets are checked when the Pusher is made (${TRANSPORT})`, () => {
  const make = (options) => new Pusher({ appId: "1", key: "k", secret: "s", ...options })
  for (const name of ["maxResponseSize", "maxSockets"]) {
    for (const ok of [1, 1000, Infinity]) make({ [name]: ok })
    for (const bad of [0, -1, 1.5, NaN, 2 ** 60]) {
      assert.throws(() => make({ [name]: bad }), { name: "RangeError", code: "ERR_OUT_OF_RANGE", message: new RegExp(`"${name}"`) })
    }
    for (const bad of ["10", null, 10n]) {
      assert.throws(() => make({ [name]: bad }), { name: "TypeError", code: "ERR_INVALID_ARG_TYPE", message: new RegExp(`"${name}"`) })
    }
  }
})

test(`maxResponseSize: a body of exactly the limit is read, one byte more is refused (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await rawServer((socket, request) => {
    const body = request.url.includes("big") ? "x".repeat(1001) : "x".repeat(1000)
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
  })
  try {
    const p = new Pusher({ appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: server.port, maxResponseSize: 1000 })
    const res = await within(p.get({ path: "/small" }), 10000)
    assert.equal((await res.text()).length, 1000)
    const err = await within(p.get({ path: "/big" }).then(() => undefined, (e) => e), 10000)
    assert.ok(err instanceof Pusher.RequestError, String(err))
    assert.deepEqual([err.code, err.error.type, err.error.message.endsWith("over limit: 1000")], ["PUSHER_NETWORK", "max-size", true])
  } finally {
    await server.close()
  }
})

/** A server that reads requests and never answers. */
async function silentServer() {
  return rawServer(() => {})
}

test(`timeout with retry bounds the whole call: a server that never answers (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await silentServer()
  try {
    const options = { appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: server.port, timeout: 300 }
    const started = performance.now()
    const err = await within(
      new Pusher({ ...options, retry: { attempts: 3, minDelayMs: 0, maxDelayMs: 0 } }).get({ path: "/channels" }).catch((e) => e),
      10000
    )
    const ms = performance.now() - started
    assert.equal(err.code, "PUSHER_TIMEOUT", `${err.code}: ${err.error && err.error.message}`)
    assert.ok(ms < 700, `settled after ${Math.round(ms)} ms (timeout 300 ms)`)
    // The same shape as without retry.
    const plain = await within(new Pusher(options).get({ path: "/channels" }).catch((e) => e), 10000)
    assert.deepEqual(
      [err.error.name, err.error.type, err.error.code, err.error.message.replace(/\?.*? /, " ")],
      [plain.error.name, plain.error.type, plain.error.code, plain.error.message.replace(/\?.*? /, " ")]
    )
  } finally {
    await server.close()
  }
})

test(`timeout with retry: a Retry-After past the deadline is not waited out (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await rawServer((socket) => socket.write("HTTP/1.1 503 Busy\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n"))
  try {
    const p = new Pusher({ appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: server.port, timeout: 300, retry: true })
    const started = performance.now()
    const err = await within(p.trigger("c", "e", {}).catch((e) => e), 10000)
    const ms = performance.now() - started
    assert.deepEqual([err.code, err.status, err.attempts], ["PUSHER_HTTP", 503, 1])
    assert.ok(ms < 300, `settled after ${Math.round(ms)} ms (timeout 300 ms)`)
  } finally {
    await server.close()
  }
})

test(`a hung connect is a timeout with and without retry: PUSHER_TIMEOUT, AbortError (${TRANSPORT})`, { skip: process.platform !== "linux" && "needs Linux accept-queue behaviour", timeout: 30000 }, async () => {
  const hole = await blackHole()
  try {
    const options = { appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: hole.port, timeout: 1000 }
    const [plain, retried] = await within(
      Promise.all([new Pusher(options), new Pusher({ ...options, retry: true })].map((p) => p.trigger("c", "e", {}).catch((e) => e))),
      10000
    )
    const shape = (e) => ({ code: e.code, name: e.error && e.error.name, type: e.error && e.error.type, errorCode: e.error && e.error.code })
    assert.deepEqual(shape(plain), { code: "PUSHER_TIMEOUT", name: "AbortError", type: "aborted", errorCode: "ETIMEDOUT" })
    assert.deepEqual(shape(retried), shape(plain))
  } finally {
    hole.process.kill()
  }
})

/** RSS (MB) after gc() of a process that made `count` Pushers (retry on) with the timeouts given, each triggering once. */
async function rssAfter(port, timeouts, env) {
  const run = await runClient(
    `const pushers = ARGS.timeouts.map((timeout) => make(Pusher, { port: ARGS.port, timeout, retry: true }))
     await Promise.all(pushers.map((p) => p.trigger("c", "e", {})))
     pushers.length = 0
     for (let i = 0; i < 3; i++) { global.gc(); await new Promise((r) => setImmediate(r)) }
     report(process.memoryUsage().rss / 2 ** 20)`,
    { args: { port, timeouts }, env: { NODE_OPTIONS: "--expose-gc", ...env }, killAfterMs: 60000 }
  )
  assertSurvived(run)
  return run.results[0]
}

test(`800 Pushers with distinct timeouts hold no more than 800 with one (${TRANSPORT})`, { timeout: 120000 }, async () => {
  const server = await rawServer((socket) => socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"))
  // A CA bundle in NODE_EXTRA_CA_CERTS, as on many corporate networks: each client
  // parses its own copy. The system bundle where there is one.
  const bundle = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"].find((f) => require("node:fs").existsSync(f))
  const env = bundle ? { NODE_EXTRA_CA_CERTS: bundle } : {}
  try {
    const one = await rssAfter(server.port, Array.from({ length: 800 }, () => 5000), env)
    const distinct = await rssAfter(server.port, Array.from({ length: 800 }, (_, i) => 5000 + i), env)
    assert.ok(distinct - one < 8, `distinct timeouts: ${distinct.toFixed(1)} MB, one timeout: ${one.toFixed(1)} MB`)
  } finally {
    await server.close()
  }
})

test(`maxSockets bounds the connections of a burst; the rest wait their turn (${TRANSPORT})`, { timeout: 60000 }, async () => {
  const server = await rawServer((socket) => setTimeout(() => socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"), 5))
  try {
    for (const [maxSockets, bound] of [[8, 8], [undefined, 256]]) {
      const before = server.accepted()
      const p = new Pusher({ appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: server.port, maxSockets, timeout: 30000 })
      const results = await within(Promise.allSettled(Array.from({ length: 1000 }, (_, i) => p.trigger(`c${i}`, "e", {}))), 45000)
      const failed = results.filter((r) => r.status === "rejected")
      assert.equal(failed.length, 0, failed.length && String(failed[0].reason.error && failed[0].reason.error.message))
      const opened = server.accepted() - before
      assert.ok(opened <= bound, `maxSockets ${maxSockets}: ${opened} connections for a burst of 1000`)
    }
  } finally {
    await server.close()
  }
})
