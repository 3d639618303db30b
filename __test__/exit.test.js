"use strict"
// Process lifetime, in child processes: an unawaited trigger is delivered before the
// process exits, the process exits promptly once its last request settles (pooled
// keep-alive connections do not hold it open), and an idle instance holds nothing.

const test = require("node:test")
const assert = require("node:assert/strict")
const http = require("node:http")
const path = require("node:path")
const { runNode } = require("./helpers")
const Upstream = require("pusher")

const ROOT = path.join(__dirname, "..")
const RUNS = 50
const GROUP = 10
// Generous bounds for a noisy 2-core box; the measured numbers are reported.
const EXIT_BOUND_MS = 300

/** Runs `count` children, `GROUP` at a time. */
async function runMany(count, makeArgs, code) {
  const results = []
  for (let start = 0; start < count; start += GROUP) {
    const group = []
    for (let i = start; i < Math.min(count, start + GROUP); i++) group.push(runNode(code, { args: makeArgs(i) }))
    results.push(...(await Promise.all(group)))
  }
  return results
}

/** An HTTP server that records trigger ids and answers after `delayMs`. */
async function deliveryServer(delayMs = 0) {
  const deliveries = new Map()
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on("data", (c) => chunks.push(c))
    req.on("end", () => {
      try {
        const { id } = JSON.parse(JSON.parse(Buffer.concat(chunks).toString()).data)
        deliveries.set(id, (deliveries.get(id) || 0) + 1)
      } catch {
        // not a trigger
      }
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end("{}")
      }, delayMs)
    })
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    port: server.address().port,
    deliveries,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

// The bare fire-and-forget pattern: no await, no handlers, nothing else to do.
const UNAWAITED = `
  const Pusher = require(${JSON.stringify(ROOT)})
  const [port, id] = process.argv.slice(1)
  const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port: Number(port) })
  pusher.trigger("exit-test", "fired", { id })
`

// The same, observed: when did the request settle, and when did the process exit?
const OBSERVED = `
  const Pusher = require(${JSON.stringify(ROOT)})
  const [port, id] = process.argv.slice(1)
  const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port: Number(port) })
  const sent = performance.now()
  let settledAt
  pusher.trigger("exit-test", "fired", { id }).then(
    (res) => { settledAt = performance.now(); process.exitCode = res.status === 200 ? 0 : 3 },
    () => { settledAt = performance.now(); process.exitCode = 4 }
  )
  process.on("exit", () => {
    const now = performance.now()
    process.stdout.write(JSON.stringify({
      settled: settledAt !== undefined,
      requestMs: settledAt - sent,
      exitAfterSettleMs: now - settledAt,
    }))
  })
`

const summary = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return `median ${at(0.5).toFixed(2)} ms, p90 ${at(0.9).toFixed(2)} ms, max ${sorted[sorted.length - 1].toFixed(2)} ms`
}

for (const delayMs of [0, 200]) {
  test(`an unawaited trigger is delivered before exit in ${RUNS} of ${RUNS} runs (server answers after ${delayMs} ms)`, { timeout: 60000 }, async (t) => {
    const server = await deliveryServer(delayMs)
    try {
      const results = await runMany(RUNS, (i) => [server.port, `bare-${i}`], UNAWAITED)
      for (const [i, r] of results.entries()) {
        assert.equal(r.signal, null, `run ${i}: ${r.stderr}`)
        assert.equal(r.code, 0, `run ${i}: ${r.stderr}`)
        assert.equal(r.stderr, "", `run ${i} printed nothing`)
      }
      for (let i = 0; i < RUNS; i++) assert.equal(server.deliveries.get(`bare-${i}`), 1, `run ${i} delivered once`)
      if (delayMs > 0) {
        // The child stayed alive for the response, not just for the send.
        const walls = results.map((r) => r.wallMs)
        assert.ok(Math.min(...walls) >= delayMs, `children lived ${Math.min(...walls).toFixed(0)} ms`)
      }
      t.diagnostic(`child wall time: ${summary(results.map((r) => r.wallMs))}`)
    } finally {
      await server.close()
    }
  })

  test(`the process exits promptly once its last request settles (server answers after ${delayMs} ms)`, { timeout: 60000 }, async (t) => {
    const server = await deliveryServer(delayMs)
    try {
      const results = await runMany(RUNS, (i) => [server.port, `observed-${i}`], OBSERVED)
      const latencies = []
      for (const [i, r] of results.entries()) {
        assert.equal(r.code, 0, `run ${i}: ${r.stderr}`)
        const measured = JSON.parse(r.stdout)
        assert.equal(measured.settled, true)
        assert.ok(measured.requestMs >= delayMs - 5, `run ${i} waited for the answer: ${measured.requestMs}`)
        latencies.push(measured.exitAfterSettleMs)
      }
      for (let i = 0; i < RUNS; i++) assert.equal(server.deliveries.get(`observed-${i}`), 1)
      t.diagnostic(`exit after last settle: ${summary(latencies)}`)
      assert.ok(Math.max(...latencies) < EXIT_BOUND_MS, `exit latencies: ${summary(latencies)}`)
    } finally {
      await server.close()
    }
  })
}

test("a process with a Pusher instance and no requests exits immediately", { timeout: 30000 }, async (t) => {
  const code = `
    const Pusher = require(${JSON.stringify(ROOT)})
    const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", cluster: "eu", useTLS: true, timeout: 10000 })
    pusher.authorizeChannel("123.456", "private-x")
    const ready = performance.now()
    process.on("exit", () => process.stdout.write(String(performance.now() - ready)))
  `
  const results = await runMany(10, () => [], code)
  const latencies = results.map((r) => {
    assert.equal(r.code, 0, r.stderr)
    return Number(r.stdout)
  })
  t.diagnostic(`idle instance exit: ${summary(latencies)}; child wall time ${summary(results.map((r) => r.wallMs))}`)
  assert.ok(Math.max(...latencies) < EXIT_BOUND_MS, summary(latencies))
})

test("an idle pooled connection does not hold the process open", { timeout: 30000 }, async (t) => {
  // Several requests, then idle: the keep-alive connection stays in the pool (the
  // server would keep it 10 s) but must not keep the event loop alive.
  const server = await deliveryServer(0)
  try {
    const code = `
      const Pusher = require(${JSON.stringify(ROOT)})
      const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port: Number(process.argv[1]) })
      ;(async () => {
        for (let i = 0; i < 5; i++) await pusher.trigger("c", "e", { id: "seq-" + i })
        const done = performance.now()
        process.on("exit", () => process.stdout.write(String(performance.now() - done)))
      })()
    `
    const result = await runNode(code, { args: [server.port] })
    assert.equal(result.code, 0, result.stderr)
    t.diagnostic(`exit ${Number(result.stdout).toFixed(2)} ms after the 5th sequential trigger settled`)
    assert.ok(Number(result.stdout) < EXIT_BOUND_MS)
    assert.equal(server.deliveries.size, 5)
  } finally {
    await server.close()
  }
})

test("an unawaited failing trigger is an unhandled rejection, as with upstream", { timeout: 30000 }, async () => {
  const probe = http.createServer()
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve))
  const port = probe.address().port
  await new Promise((resolve) => probe.close(resolve))
  const code = (impl) => `
    const Pusher = require(${JSON.stringify(impl)})
    new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port: ${port} }).trigger("c", "e", {})
  `
  const [upstream, native] = await Promise.all([runNode(code("pusher")), runNode(code(ROOT))])
  assert.equal(native.code, upstream.code)
  assert.equal(native.code, 1)
  for (const r of [upstream, native]) assert.match(r.stderr, /PusherRequestError/)
  // Node prints the error itself (its stack and fields, so the reason) only when it has an
  // own `stack`: upstream's has none from Node 22 on, and Node then prints a wrapper naming
  // just "PusherRequestError: Request failed with an error". Ours always keeps its own
  // (non-enumerable there) stack, so the reason is always in the crash output.
  assert.match(native.stderr, /ECONNREFUSED/)
  if (Object.prototype.hasOwnProperty.call(new Upstream.RequestError("m", "u"), "stack")) assert.match(upstream.stderr, /ECONNREFUSED/)
})
