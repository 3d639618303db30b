"use strict"
// Issue 20, the pool and the body as a hostile server or a demanding caller tries them:
// a connection closed while JS was busy (item 2), endless bodies (item 1), connections
// per origin (item 10). Clients run in child processes (raw-servers.js runClient), so a
// crash or a hang is reported instead of taking the runner down. Runs on both
// transports (see the test:tokio script).

const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const { makeCerts } = require("./helpers")
const { rawServer, tlsRawServer, response, runClient, assertSurvived } = require("./raw-servers")

const TRANSPORT = process.env.PUSHER_NATIVE_TRANSPORT === "tokio" ? "tokio" : "event loop"
const certs = makeCerts()
test.after(() => fs.rmSync(certs.dir, { recursive: true, force: true }))
const tlsOptions = { cert: certs.certPem, key: certs.keyPem }

// The client blocks for 300 ms right after its first reply; the server closes the idle
// connection 100 ms into that (a short keep-alive timeout), so the close is in the
// kernel, unread, when the second trigger starts.
const BLOCKED_SCRIPT = `const p = make(Pusher, Object.assign({ port: ARGS.port, timeout: 5000 }, ARGS.options))
  report(await outcome(() => p.trigger("c", "e", { n: 1 })))
  busy(300)
  report(await outcome(() => p.trigger("c", "e", { n: 2 })))`

/** Runs BLOCKED_SCRIPT against `server` (then closes it): the second trigger, after 300 ms
 * of blocking, must be delivered on a fresh connection. */
async function expectFreshConnection(server, options = {}) {
  try {
    const run = await runClient(BLOCKED_SCRIPT, { args: { port: server.port, options }, killAfterMs: 15000 })
    assertSurvived(run)
    const [first, second] = run.results
    assert.equal(first.ok, true)
    assert.equal(second.ok, true, `the trigger after 300 ms of blocking failed: ${second.code} ${second.cause}`)
    assert.equal(second.body, '{"conn":1}')
    assert.equal(server.accepted(), 2)
  } finally {
    await server.close()
  }
}

test(`a connection the server closed while JS was blocked for 300 ms is not reused (plain, ${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await rawServer((socket, request, conn) => {
    socket.write(response(`{"conn":${conn.id}}`))
    setTimeout(() => socket.end(), 100)
  })
  await expectFreshConnection(server)
})

test(`a connection the server closed while JS was blocked for 300 ms is not reused (TLS, ${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await tlsRawServer(tlsOptions, (secure, request, conn) => {
    secure.write(response(`{"conn":${conn.id}}`))
    setTimeout(() => {
      secure.end()
      setTimeout(() => conn.raw.destroy(), 20)
    }, 100)
  })
  await expectFreshConnection(server, { useTLS: true, ca: certs.caPem })
})

test(`a connection reset while JS was blocked for 300 ms is not reused (TLS without close_notify, ${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await tlsRawServer(tlsOptions, (secure, request, conn) => {
    secure.write(response(`{"conn":${conn.id}}`))
    setTimeout(() => conn.raw.end(), 100)
  })
  await expectFreshConnection(server, { useTLS: true, ca: certs.caPem })
})

test(`a close_notify that came with the response is seen before the connection is reused (${TRANSPORT})`, { timeout: 30000 }, async () => {
  // The response and the close_notify in one TCP write; the TCP connection stays open.
  // The next trigger starts at once, in the same tick as the first one's reply.
  const server = await tlsRawServer(tlsOptions, (secure, request, conn) => {
    conn.hold()
    secure.end(response(`{"conn":${conn.id}}`))
    setTimeout(() => conn.flush(), 20)
  })
  try {
    const run = await runClient(
      `const p = make(Pusher, { port: ARGS.port, useTLS: true, ca: ARGS.ca, timeout: 5000 })
       for (let n = 0; n < 5; n++) report(await outcome(() => p.trigger("c", "e", { n })))`,
      { args: { port: server.port, ca: certs.caPem }, killAfterMs: 20000 }
    )
    assertSurvived(run)
    assert.deepEqual(run.results.map((r) => [r.ok, r.body, r.code]), [0, 1, 2, 3, 4].map((n) => [true, `{"conn":${n}}`, undefined]))
    assert.equal(server.accepted(), 5)
  } finally {
    await server.close()
  }
})

// ---- item 1: a body that never ends ----

// The tokio transport's limit comes with the bounds branch (issue 20 item 1, tokio side):
// drop this skip when it is merged.

/** A server answering every request with a chunked body that never ends. */
async function endlessServer() {
  const chunk = Buffer.alloc(64 * 1024, "x")
  const frame = Buffer.concat([Buffer.from(chunk.length.toString(16) + "\r\n"), chunk, Buffer.from("\r\n")])
  const state = { closed: 0, sent: 0 }
  const server = await rawServer((socket) => {
    socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
    const pump = () => {
      while (!socket.destroyed && socket.writable) {
        state.sent += frame.length
        if (!socket.write(frame)) return socket.once("drain", pump)
      }
    }
    socket.on("close", () => state.closed++)
    pump()
  })
  return Object.assign(server, { state })
}

const ENDLESS_SCRIPT = `const p = make(Pusher, Object.assign({ port: ARGS.port }, ARGS.options))
  const started = performance.now()
  const before = process.memoryUsage().rss
  try {
    await p.get({ path: "/channels" })
    report({ ok: true })
  } catch (e) {
    report({ ok: false, requestError: e instanceof Pusher.RequestError, type: e.error && e.error.type,
      message: e.error && e.error.message, ms: Math.round(performance.now() - started),
      grewMb: Math.round((process.resourceUsage().maxRSS * 1024 - before) / 2 ** 20) })
  }`

for (const [label, options, limit] of [
  ["maxResponseSize: 100000", { maxResponseSize: 100000 }, 100000],
  ["the default limit", {}, 128 * 1024 * 1024],
]) {
  test(`an endless chunked body stops at ${label}: max-size, connection closed, memory near the limit (${TRANSPORT})`, { timeout: 60000 }, async () => {
    const server = await endlessServer()
    try {
      const run = await runClient(ENDLESS_SCRIPT, { args: { port: server.port, options }, killAfterMs: 40000 })
      assertSurvived(run)
      const [result] = run.results
      assert.equal(result.ok, false)
      assert.equal(result.requestError, true)
      assert.equal(result.type, "max-size")
      assert.match(result.message, new RegExp(`^content size at http://127\\.0\\.0\\.1:${server.port}/apps/1/channels\\?\\S+ over limit: ${limit}$`))
      assert.ok(result.grewMb < limit / 2 ** 20 + 150, `RSS grew by ${result.grewMb} MB for a limit of ${limit} bytes`)
      // The read stopped: the server's connection is closed, and it could not send
      // much more than the limit (socket buffers) before that.
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.equal(server.state.closed, 1, "the connection was not closed")
      assert.ok(server.state.sent < limit + 16 * 2 ** 20, `the server sent ${server.state.sent} bytes`)
    } finally {
      await server.close()
    }
  })
}

// ---- item 10: connections per origin ----

test(`a burst of 200 triggers with maxSockets: 4 uses at most 4 connections, all delivered (${TRANSPORT})`, { timeout: 60000, skip: TRANSPORT === "tokio" && "the tokio side of maxSockets is not merged yet" }, async () => {
  const server = await rawServer((socket, request) => {
    setTimeout(() => socket.write(response(request.body)), 5)
  })
  try {
    const run = await runClient(
      `const p = make(Pusher, { port: ARGS.port, maxSockets: 4, timeout: 20000 })
       const results = await Promise.all(Array.from({ length: 200 }, (_, n) => outcome(() => p.trigger("c", "e", { n }))))
       report({ ok: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).slice(0, 3) })`,
      { args: { port: server.port }, killAfterMs: 40000 }
    )
    assertSurvived(run)
    const [result] = run.results
    assert.deepEqual(result, { ok: 200, failed: [] })
    assert.ok(server.accepted() <= 4, `${server.accepted()} connections`)
    assert.equal(server.requests.length, 200)
  } finally {
    await server.close()
  }
})

test(`a request waiting for a socket still settles by its timeout (${TRANSPORT})`, { timeout: 60000, skip: TRANSPORT === "tokio" && "the tokio side of maxSockets is not merged yet" }, async () => {
  // One socket, a server that answers after 1 s: the second trigger (timeout 500 ms)
  // times out while waiting for the socket; the third gets it once the first is done.
  const server = await rawServer((socket, request) => {
    setTimeout(() => socket.write(response(request.body)), 1000)
  })
  try {
    const run = await runClient(
      `const patient = make(Pusher, { port: ARGS.port, maxSockets: 1, timeout: 5000 })
       const hasty = make(Pusher, { port: ARGS.port, maxSockets: 1, timeout: 500 })
       const [a, b, c] = await Promise.all([
         outcome(() => patient.trigger("c", "e", { n: 1 })),
         outcome(() => hasty.trigger("c", "e", { n: 2 })),
         outcome(() => patient.trigger("c", "e", { n: 3 })),
       ])
       const data = (o) => o.ok && JSON.parse(o.body).data
       report({ a: [a.ok, data(a)], b: [b.ok, b.code], bMs: b.ms, c: [c.ok, data(c)] })`,
      { args: { port: server.port }, killAfterMs: 30000 }
    )
    assertSurvived(run)
    const [r] = run.results
    assert.deepEqual(r.a, [true, '{"n":1}'])
    assert.deepEqual(r.b, [false, "ETIMEDOUT"])
    assert.ok(r.bMs < 900, `the waiting request settled after ${r.bMs} ms (timeout 500)`)
    assert.deepEqual(r.c, [true, '{"n":3}'])
    assert.equal(server.accepted(), 1)
  } finally {
    await server.close()
  }
})

// ---- item 3: interned state shrinks again ----

test(`redirects to 80,000 distinct origins leave memory flat after gc() (${TRANSPORT})`, { timeout: 120000 }, async () => {
  // Every trigger is redirected to another loopback address (127.1.x.y, same port),
  // where nothing listens: each names a new origin and fails at once (ECONNREFUSED).
  const http = require("node:http")
  let n = 0
  const server = http.createServer((req, res) => {
    req.resume()
    n++
    res.writeHead(307, { location: `http://127.${1 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}:${server.address().port}/x` })
    res.end()
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  try {
    const run = await runClient(
      `const p = make(Pusher, { port: ARGS.port, timeout: 10000 })
       async function round(count) {
         let next = 0, failed = 0, codes = new Set()
         await Promise.all(Array.from({ length: 32 }, async () => {
           while (next++ < count) {
             const r = await outcome(() => p.trigger("c", "e", {}))
             if (!r.ok) { failed++; codes.add(r.code) }
           }
         }))
         return { failed, codes: [...codes] }
       }
       const rss = async () => {
         for (let i = 0; i < 3; i++) { global.gc(); await new Promise((r) => setTimeout(r, 50)) }
         return process.memoryUsage().rss
       }
       // Warm up (V8's heap and the allocator settle), then 40,000 more origins.
       report(await round(20000))
       await round(20000)
       const before = await rss()
       await round(20000)
       report(await round(20000))
       report({ grewMb: (await rss() - before) / 2 ** 20 })`,
      { args: { port: server.address().port }, killAfterMs: 100000, wrap: (node, args) => [node, ["--expose-gc", ...args]] }
    )
    assertSurvived(run)
    const [first, second, { grewMb }] = run.results
    assert.deepEqual(first, { failed: 20000, codes: ["ECONNREFUSED"] })
    assert.deepEqual(second, { failed: 20000, codes: ["ECONNREFUSED"] })
    // Interning every origin costs ~9 MB per 20,000; what is left is V8's own drift.
    assert.ok(grewMb < 8, `RSS grew by ${grewMb.toFixed(1)} MB over 40,000 more origins`)
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})
