"use strict"
// Which transport carries a request: HTTP and HTTPS on the main thread run on Node's
// own event loop (tokio's threads never wake); proxies, retries,
// PUSHER_NATIVE_TRANSPORT=tokio and worker threads use the tokio transport. The other network tests run under both (see the
// `test` script); these check the routing itself and the hand-over between the two.

const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const path = require("node:path")
const { Pusher, recordingServer, pusherFor, makeCerts, within, settled, runNode } = require("./helpers")
const { blackHole } = require("./raw-servers")

const ROOT = path.join(__dirname, "..")
const hasProc = fs.existsSync("/proc/self/task")

/**
 * Node code that makes 20 requests with `options`, then prints how often tokio's
 * threads (napi starts them with the addon) woke up: each request through tokio wakes
 * one at least.
 */
const threadsAfterRequests = (options) => `
  const fs = require("fs")
  const Pusher = require(${JSON.stringify(ROOT)})
  const p = new Pusher(${JSON.stringify({ appId: "1", key: "key", secret: "secret" })})
  const q = new Pusher(Object.assign({ appId: "1", key: "key", secret: "secret" }, ${JSON.stringify(options)}))
  ;(async () => {
    let ok = 0
    for (let i = 0; i < 20; i++) ok += (await q.trigger("c", "e", { i })).status === 200 ? 1 : 0
    let wakeups = 0
    for (const t of fs.readdirSync("/proc/self/task")) {
      if (!fs.readFileSync("/proc/self/task/" + t + "/comm", "utf8").startsWith("tokio")) continue
      wakeups += Number(/voluntary_ctxt_switches:\\s+(\\d+)/.exec(fs.readFileSync("/proc/self/task/" + t + "/status", "utf8"))[1])
    }
    console.log(JSON.stringify({ ok, wakeups }))
  })()`

test("HTTP and HTTPS on the main thread never wake a tokio thread; tokio carries proxies and the opt-out", { skip: !hasProc && "needs /proc", timeout: 30000 }, async () => {
  const plain = await recordingServer()
  const certs = makeCerts()
  const secure = await recordingServer({ tls: { cert: certs.certPem, key: certs.keyPem } })
  try {
    const http = { host: "127.0.0.1", port: plain.port }
    const onLoop = await runNode(threadsAfterRequests(http))
    assert.equal(onLoop.code, 0, onLoop.stderr)
    const loop = JSON.parse(onLoop.stdout)
    assert.equal(loop.ok, 20)
    assert.ok(loop.wakeups < 10, `tokio threads woke ${loop.wakeups} times`)

    // `retry` stays on the event loop (issue 19): its users keep the speed.
    const withRetry = await runNode(threadsAfterRequests({ ...http, retry: true }))
    assert.equal(withRetry.code, 0, withRetry.stderr)
    const retrying = JSON.parse(withRetry.stdout)
    assert.equal(retrying.ok, 20)
    assert.ok(retrying.wakeups < 10, `with retry, tokio threads woke ${retrying.wakeups} times`)

    const optedOut = await runNode(threadsAfterRequests(http), { env: { PUSHER_NATIVE_TRANSPORT: "tokio" } })
    assert.equal(optedOut.code, 0, optedOut.stderr)
    const out = JSON.parse(optedOut.stdout)
    assert.equal(out.ok, 20)
    assert.ok(out.wakeups >= 20, `the opt-out uses tokio (${out.wakeups} wakeups)`)

    const tls = await runNode(threadsAfterRequests({ host: "127.0.0.1", port: secure.port, useTLS: true }), {
      env: { NODE_EXTRA_CA_CERTS: certs.caPath },
    })
    assert.equal(tls.code, 0, tls.stderr)
    const overTls = JSON.parse(tls.stdout)
    assert.equal(overTls.ok, 20)
    assert.ok(overTls.wakeups < 10, `TLS: tokio threads woke ${overTls.wakeups} times`)

    const proxied = await runNode(threadsAfterRequests({ host: "127.0.0.1", port: plain.port, proxy: plain.url }))
    assert.equal(proxied.code, 0, proxied.stderr)
    assert.ok(JSON.parse(proxied.stdout).wakeups >= 20, "a proxy uses tokio")
    assert.equal(plain.requests.length, 80)
    assert.equal(secure.requests.length, 20)
  } finally {
    await plain.close()
    await secure.close()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})

test("a redirect from http to https is followed, the POST becoming a GET", { timeout: 15000 }, async () => {
  const certs = makeCerts()
  const secure = await recordingServer({
    tls: { cert: certs.certPem, key: certs.keyPem },
    handler: (req, body, res) => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({ method: req.method, body }))
    },
  })
  const plain = await recordingServer({
    handler: (req, body, res) => {
      res.writeHead(req.method === "POST" ? 302 : 307, { location: `${secure.url}/final?from=${req.method}` })
      res.end()
    },
  })
  try {
    const pusher = pusherFor(plain, { ca: certs.caPem })
    for (const [call, from] of [[() => pusher.trigger("c", "e", { a: 1 }), "POST"], [() => pusher.get({ path: "/channels" }), "GET"]]) {
      const res = await within(call(), 5000)
      assert.equal(res.status, 200)
      assert.equal(res.redirected, true)
      assert.equal(res.url, `${secure.url}/final?from=${from}`)
      assert.deepEqual(await res.json(), { method: "GET", body: "" })
    }
    assert.deepEqual(
      secure.requests.map((r) => r.url),
      ["/final?from=POST", "/final?from=GET"]
    )
  } finally {
    await plain.close()
    await secure.close()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})

test("a burst of 3,000 concurrent triggers shares a bounded set of connections", { timeout: 30000 }, async () => {
  const server = await recordingServer()
  let opened = 0
  server.server.on("connection", () => opened++)
  try {
    const pusher = pusherFor(server, {})
    const results = await within(Promise.all(Array.from({ length: 3000 }, (_, i) => pusher.trigger("c", "e", { i }))), 20000)
    assert.ok(results.every((r) => r.status === 200))
    assert.equal(server.requests.length, 3000)
    assert.ok(opened >= 1 && opened < 3000, `${opened} connections for 3,000 requests`)
  } finally {
    await server.close()
  }
})

test("the event loop is free while requests are in flight, and the process exits once they settle", { timeout: 15000 }, async () => {
  const server = await recordingServer({
    handler: (req, body, res) => setTimeout(() => res.end("{}"), 300),
  })
  try {
    const code = `
      const Pusher = require(${JSON.stringify(ROOT)})
      const p = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port: ${server.port} })
      let ticks = 0
      const timer = setInterval(() => ticks++, 10)
      const started = Date.now()
      for (let i = 0; i < 5; i++) p.trigger("c", "e", { i }).then((r) => { if (i === 4) { clearInterval(timer); console.log(JSON.stringify({ status: r.status, ticks })) } })`
    const run = await runNode(code)
    assert.equal(run.code, 0, run.stderr)
    const out = JSON.parse(run.stdout)
    assert.equal(out.status, 200)
    assert.ok(out.ticks >= 10, `only ${out.ticks} timer ticks while waiting 300 ms`)
    assert.equal(server.requests.length, 5)
  } finally {
    await server.close()
  }
})

test("Pusher instances share the pool per origin", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  let opened = 0
  server.server.on("connection", () => opened++)
  try {
    for (let i = 0; i < 10; i++) {
      const res = await within(pusherFor(server, {}).trigger("c", "e", { i }), 5000)
      assert.equal(res.status, 200)
    }
    assert.equal(opened, 1)
    assert.ok(Pusher)
  } finally {
    await server.close()
  }
})

test("a pooled connection the server closed while JS was busy is not used", { timeout: 15000 }, async () => {
  // The server runs in its own process, so it closes the idle connection on time while
  // this process is blocked and cannot read that close.
  const { spawn } = require("node:child_process")
  const child = spawn(process.execPath, ["-e", `
    const http = require("http")
    let opened = 0
    const server = http.createServer((req, res) => { req.resume(); req.on("end", () => res.end("{}")) })
    server.on("connection", () => { opened++; console.log("opened " + opened) })
    server.keepAliveTimeout = 300
    server.listen(0, "127.0.0.1", () => console.log("port " + server.address().port))
  `])
  const lines = []
  child.stdout.on("data", (d) => lines.push(...String(d).trim().split("\n")))
  try {
    await within(new Promise((resolve) => child.stdout.once("data", resolve)), 5000)
    const port = Number(lines.find((l) => l.startsWith("port ")).slice(5))
    const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port })
    assert.equal((await within(pusher.trigger("c", "e", { n: 1 }), 5000)).status, 200)
    const until = Date.now() + 1500
    while (Date.now() < until);
    assert.equal((await within(pusher.trigger("c", "e", { n: 2 }), 5000)).status, 200)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.deepEqual(lines.filter((l) => l.startsWith("opened")), ["opened 1", "opened 2"])
  } finally {
    child.kill()
  }
})

test("host names are resolved (localhost works; an unknown name is ENOTFOUND, like upstream)", { timeout: 20000 }, async () => {
  const { Upstream } = require("./helpers")
  const server = await recordingServer()
  try {
    const local = new Pusher({ appId: "1", key: "key", secret: "secret", host: "localhost", port: server.port })
    assert.equal((await within(local.trigger("c", "e", { via: "localhost" }), 5000)).status, 200)
    assert.equal(server.requests[0].headers.host, `localhost:${server.port}`)
    const codes = []
    for (const Impl of [Upstream, Pusher]) {
      const p = new Impl({ appId: "1", key: "key", secret: "secret", host: "no-such-host.invalid", port: 80 })
      const { error } = await within(settled(p.trigger("c", "e", {})), 10000)
      assert.equal(error.message, "Request failed with an error")
      assert.match(error.error.message, /getaddrinfo ENOTFOUND no-such-host\.invalid$/)
      codes.push(error.error.code)
    }
    assert.deepEqual(codes, ["ENOTFOUND", "ENOTFOUND"])
  } finally {
    await server.close()
  }
})

test("a timeout while connecting frees the connect slot; later requests still go out", { skip: process.platform !== "linux" && "needs Linux accept-queue behaviour", timeout: 20000 }, async () => {
  const hole = await blackHole()
  const server = await recordingServer()
  try {
    const hung = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port: hole.port, timeout: 300 })
    // More than the 64 connects allowed at once, so some wait in the queue and time out there.
    const started = performance.now()
    const results = await within(Promise.all(Array.from({ length: 80 }, (_, i) => settled(hung.trigger("c", "e", { i })))), 10000)
    const took = performance.now() - started
    for (const { error } of results) {
      assert.ok(error, "a hung connect cannot succeed")
      assert.equal(error.error.code, "ETIMEDOUT")
    }
    assert.ok(took < 3000, `settled after ${took} ms`)
    // The slots came back: the same origin can be connected to again, and others work.
    const again = await within(settled(hung.trigger("c", "e", {})), 5000)
    assert.equal(again.error.error.code, "ETIMEDOUT")
    assert.equal((await within(pusherFor(server, {}).trigger("c", "e", {}), 5000)).status, 200)
  } finally {
    hole.process.kill()
    await server.close()
  }
})

test("AsyncLocalStorage context survives an awaited trigger (Express request context)", { timeout: 15000 }, async () => {
  const { AsyncLocalStorage } = require("node:async_hooks")
  const als = new AsyncLocalStorage()
  const server = await recordingServer()
  try {
    const pusher = pusherFor(server, {})
    const seen = await within(
      Promise.all(
        [1, 2, 3].map((n) =>
          als.run({ n }, async () => {
            await pusher.trigger("c", "e", { n })
            const afterAwait = als.getStore().n
            const inThen = await pusher.trigger("c", "e", { n }).then(() => als.getStore().n)
            return [afterAwait, inThen]
          })
        )
      ),
      5000
    )
    assert.deepEqual(seen, [[1, 1], [2, 2], [3, 3]])
  } finally {
    await server.close()
  }
})
