"use strict"
// Issue 12, hostile *servers* (hostile-server-framing.test.js has the framing cases of
// item 9, tls-bodies.test.js the body sizes of item 2): one test per defect of the
// event-loop transport, numbered as in the issue (8b: EAI_AGAIN). Every crafted case runs its client
// in a child process (raw-servers.js runClient), so a client that aborts or spins is
// reported as "the process died with SIGABRT" or "did not settle" instead of taking
// the test runner down. Runs on both transports (see the test:tokio script).

const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const http = require("node:http")
const { AsyncLocalStorage } = require("node:async_hooks")
const diagnostics = require("node:diagnostics_channel")
const { recordingServer, pusherFor, makeCerts, within, settled } = require("./helpers")
const { rawServer, tlsRawServer, response, runClient, assertSurvived, blackHole } = require("./raw-servers")

const TRANSPORT = process.env.PUSHER_NATIVE_TRANSPORT === "tokio" ? "tokio" : "event loop"
const certs = makeCerts()
test.after(() => fs.rmSync(certs.dir, { recursive: true, force: true }))
const tlsOptions = { cert: certs.certPem, key: certs.keyPem }

const isHealthy = (request) => request.body.includes('"healthy"')
const HEALTHY = response('{"healthy":true}')

test(`1. a chunk size of fffffffffffffffe is rejected and the process lives (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await rawServer((socket, request) => {
    if (isHealthy(request)) return socket.write(HEALTHY)
    socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffe\r\n{}")
    setTimeout(() => socket.end(), 50)
  })
  try {
    const run = await runClient(
      `const p = make(Pusher, { port: ARGS.port, timeout: 2000 })
       report(await outcome(() => p.trigger("c", "e", {})))
       report(await outcome(() => p.trigger("healthy", "e", {})))`,
      { args: { port: server.port }, killAfterMs: 10000 }
    )
    assertSurvived(run)
    const [huge, healthy] = run.results
    assert.equal(huge.ok, false, `an impossible chunk resolved: ${JSON.stringify(huge)}`)
    assert.equal(huge.requestError, true)
    assert.ok(huge.ms < 3000, `settled after ${huge.ms} ms`)
    assert.deepEqual([healthy.ok, healthy.body], [true, '{"healthy":true}'])
  } finally {
    await server.close()
  }
})

test(`2. a triggerBatch of 10 events of 9 KB goes out over TLS (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await recordingServer({ tls: tlsOptions })
  try {
    const pusher = pusherFor(server, { ca: certs.caPem })
    const batch = Array.from({ length: 10 }, (_, i) => ({ channel: `c${i}`, name: "e", data: String(i).repeat(9000) }))
    const result = await within(settled(pusher.triggerBatch(batch)), 10000)
    assert.ok(!result.error, `triggerBatch failed: ${result.error && result.error.error && result.error.error.message}`)
    assert.equal(result.value.status, 200)
    const sent = JSON.parse(server.requests[0].body).batch
    assert.deepEqual(sent.map((e) => e.data.length), Array(10).fill(9000))
  } finally {
    await server.close()
  }
})

test(`3. the timeout counts from when the request starts, not from the loop's cached time (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await recordingServer()
  try {
    const run = await runClient(
      `const p = make(Pusher, { port: ARGS.port, timeout: 1000 })
       report(await outcome(() => p.trigger("c", "e", { n: 1 })))
       busy(1200) // synchronous work: libuv's cached "now" is 1.2 s old when the next call starts
       report(await outcome(() => p.trigger("c", "e", { n: 2 })))`,
      { args: { port: server.port }, killAfterMs: 15000 }
    )
    assertSurvived(run)
    const [first, second] = run.results
    assert.equal(first.ok, true)
    assert.equal(second.ok, true, `rejected after ${second.ms} ms with ${second.code} (timeout 1000 ms), the server got ${server.requests.length} events`)
    assert.equal(server.requests.length, 2)
  } finally {
    await server.close()
  }
})

test(`4. TLS close_notify followed by more bytes neither spins nor hangs (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await tlsRawServer(tlsOptions, (secure, request, conn) => {
    if (isHealthy(request)) return secure.write(HEALTHY)
    // The complete response, the close_notify and 64 KiB of junk after it (more than
    // one TLS read's worth), in one TCP write.
    conn.hold()
    secure.end(response('{"complete":true}'))
    setTimeout(() => conn.flush(Buffer.alloc(65536, "after close_notify ")), 50)
  })
  try {
    const run = await runClient(
      `const p = make(Pusher, { port: ARGS.port, useTLS: true, ca: ARGS.ca, timeout: 2000 })
       report(await outcome(() => p.trigger("c", "e", {})))
       report(await outcome(() => p.trigger("healthy", "e", {})))`,
      { args: { port: server.port, ca: certs.caPem }, killAfterMs: 8000 }
    )
    assertSurvived(run)
    const [closing, healthy] = run.results
    assert.ok(closing.ms < 3000, `settled after ${closing.ms} ms`)
    assert.deepEqual([closing.ok, closing.body], [true, '{"complete":true}'], JSON.stringify(closing))
    assert.deepEqual([healthy.ok, healthy.body], [true, '{"healthy":true}'])
  } finally {
    await server.close()
  }
})

test(`5. a connection verified with one instance's ca is never used by an instance without it (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await recordingServer({ tls: tlsOptions })
  try {
    const trusting = pusherFor(server, { ca: certs.caPem })
    const plain = pusherFor(server, {})
    const outcomes = []
    for (let round = 0; round < 4; round++) {
      // Sequential (a pooled connection is idle) and concurrent (one is being opened).
      const sequential = [await within(settled(trusting.trigger("c", "e", { round })), 10000), await within(settled(plain.trigger("c", "e", { round })), 10000)]
      const concurrent = await within(Promise.all([settled(trusting.trigger("c", "e", { round })), settled(plain.trigger("c", "e", { round }))]), 10000)
      outcomes.push(...[sequential, concurrent].map(([t, p]) => [t.error ? "rejected" : "ok", p.error ? "rejected" : "ok"]))
    }
    assert.deepEqual(outcomes, Array(8).fill(["ok", "rejected"]), "[with ca, without ca] per round")
  } finally {
    await server.close()
  }
})

test(`6. a TLS connection the server closed gracefully while JS was busy is not reused (${TRANSPORT})`, { timeout: 30000 }, async () => {
  // Like nginx's keepalive_timeout: close_notify, then close, 300 ms after the reply.
  const server = await tlsRawServer(tlsOptions, (secure, request, conn) => {
    secure.write(response(`{"conn":${conn.id}}`))
    clearTimeout(conn.state.timer)
    conn.state.timer = setTimeout(() => {
      secure.end()
      setTimeout(() => conn.raw.destroy(), 50)
    }, 300)
  })
  try {
    const run = await runClient(
      `const p = make(Pusher, { port: ARGS.port, useTLS: true, ca: ARGS.ca, timeout: 5000 })
       report(await outcome(() => p.trigger("c", "e", { n: 1 })))
       busy(1500)
       report(await outcome(() => p.trigger("c", "e", { n: 2 })))`,
      { args: { port: server.port, ca: certs.caPem }, killAfterMs: 15000 }
    )
    assertSurvived(run)
    const [first, second] = run.results
    assert.equal(first.ok, true)
    assert.equal(second.ok, true, `the trigger after the graceful close failed: ${second.code} ${second.cause}`)
    assert.equal(second.body, '{"conn":1}')
    assert.equal(server.accepted(), 2)
  } finally {
    await server.close()
  }
})

test(`7. diagnostics subscribers see the AsyncLocalStorage store of the call that started the request (${TRANSPORT})`, { timeout: 30000 }, async () => {
  // The server answers 201 for channel "c1", 202 for "c2", …: statuses tell requests apart.
  const server = await recordingServer({
    handler: (req, body, res) => {
      res.writeHead(200 + Number(JSON.parse(body).channels[0].slice(1)))
      res.end("{}")
    },
  })
  const als = new AsyncLocalStorage()
  const seen = []
  const subscriber = (message) => seen.push([message.status, als.getStore()])
  diagnostics.subscribe("pusher-native:request", subscriber)
  try {
    const pusher = pusherFor(server, {})
    await within(Promise.all([1, 2, 3].map((n) => als.run(n, () => pusher.trigger(`c${n}`, "e", {})))), 10000)
    await within(als.run(4, () => pusher.trigger("c4", "e", {})), 10000)
    seen.sort((a, b) => a[0] - b[0])
    assert.deepEqual(seen, [[201, 1], [202, 2], [203, 3], [204, 4]], "[status, store seen by the subscriber]")
  } finally {
    diagnostics.unsubscribe("pusher-native:request", subscriber)
    await server.close()
  }
})

const DUAL = "pusher-native-dual.test"

/** An HTTP server on 127.0.0.1:P and a black hole (full accept queue) on [::1]:P. */
async function dualStack() {
  for (let attempt = 0; ; attempt++) {
    const hole = await blackHole("::1")
    const port = hole.port
    const server = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => res.end('{"via":"127.0.0.1"}'))
    })
    const listening = await new Promise((resolve) => {
      server.once("error", () => resolve(false))
      server.listen(port, "127.0.0.1", () => resolve(true))
    })
    if (listening) return { port, close: () => (hole.process.kill(), new Promise((resolve) => server.close(resolve))) }
    hole.process.kill()
    if (attempt > 5) throw new Error("no port free on both ::1 and 127.0.0.1")
  }
}

// A mount namespace whose /etc/hosts names DUAL: the test sets up the name it needs
// itself (no machine-wide hosts line). Needs `unshare -m` (Linux, root).
const canUnshare = process.platform === "linux" && require("node:child_process").spawnSync("unshare", ["-m", "true"]).status === 0

/** Runs node inside a private mount namespace where `file` is bind-mounted over `target`. */
const bindMounted = (file, target) => (node, args) => ["unshare", ["-m", "sh", "-c", `mount --bind "$0" ${target} && exec "$@"`, file, node, ...args]]

test(`8. Happy Eyeballs: a black-holed first address does not cost the timeout (${TRANSPORT})`, { skip: !canUnshare && "needs `unshare -m` (Linux, root) for a private /etc/hosts naming " + DUAL, timeout: 60000 }, async () => {
  const hosts = require("node:path").join(certs.dir, "hosts")
  const others = fs.readFileSync("/etc/hosts", "utf8").split("\n").filter((line) => !line.includes(DUAL))
  fs.writeFileSync(hosts, `::1 ${DUAL}\n127.0.0.1 ${DUAL}\n${others.join("\n")}\n`)
  const stack = await dualStack()
  try {
    const run = await runClient(
      `const addresses = await require("node:dns").promises.lookup(ARGS.host, { all: true }).catch(() => [])
       report(addresses.map((a) => a.address))
       const options = { host: ARGS.host, port: ARGS.port, timeout: 10000 }
       report(await outcome(() => make(Upstream, options).trigger("c", "e", {})))
       report(await outcome(() => make(Pusher, options).trigger("c", "e", {})))`,
      { args: { host: DUAL, port: stack.port }, killAfterMs: 25000, wrap: bindMounted(hosts, "/etc/hosts") }
    )
    assertSurvived(run)
    const [addresses, upstream, ours] = run.results
    assert.deepEqual(addresses, ["::1", "127.0.0.1"], `sanity: ${DUAL} must resolve to ::1 then 127.0.0.1`)
    assert.equal(upstream.ok, true, `sanity: pusher (Node's autoSelectFamily) should connect: ${JSON.stringify(upstream)}`)
    assert.equal(ours.ok, true, `failed after ${ours.ms} ms: ${ours.code} (pusher connected in ${upstream.ms} ms)`)
    assert.ok(ours.ms < 1500, `connected after ${ours.ms} ms (pusher: ${upstream.ms} ms)`)
    assert.equal(ours.body, '{"via":"127.0.0.1"}')
  } finally {
    await stack.close()
  }
})

const MULTI = "pusher-native-multi.test"

test(`8c. Happy Eyeballs: a failed attempt starts the next at once, while an earlier one hangs (${TRANSPORT})`, { skip: !canUnshare && "needs `unshare -m` (Linux, root) for a private /etc/hosts naming " + MULTI, timeout: 60000 }, async () => {
  // ::1 hangs (a black hole); then IPv4 addresses where nothing listens (refused at
  // once) and one where the server is: each refusal must start the next address
  // without waiting 250 ms more.
  const hosts = require("node:path").join(certs.dir, "hosts-multi")
  const v4 = ["127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.2"]
  fs.writeFileSync(hosts, [`::1 ${MULTI}`, ...v4.map((a) => `${a} ${MULTI}`), fs.readFileSync("/etc/hosts", "utf8")].join("\n"))
  // The order getaddrinfo hands them out in (RFC 6724 sorting may reorder them): the
  // server listens on the last one.
  const probe = require("node:child_process").spawnSync(
    ...bindMounted(hosts, "/etc/hosts")(process.execPath, ["-e", `require("dns").lookup(${JSON.stringify(MULTI)}, { all: true }, (e, a) => console.log(JSON.stringify(a.map((x) => x.address))))`]),
    { encoding: "utf8" }
  )
  const order = JSON.parse(probe.stdout)
  assert.deepEqual([order[0], order.length], ["::1", 6], `sanity: ${probe.stdout}${probe.stderr}`)
  const last = order[order.length - 1]
  const hole = await blackHole("::1")
  const port = hole.port
  const server = http.createServer((req, res) => {
    req.resume()
    req.on("end", () => res.end(JSON.stringify({ via: last })))
  })
  try {
    await new Promise((resolve, reject) => server.once("error", reject).listen(port, last, resolve))
    const run = await runClient(
      `report(await outcome(() => make(Pusher, { host: ARGS.host, port: ARGS.port, timeout: 10000 }).trigger("c", "e", {})))`,
      { args: { host: MULTI, port }, killAfterMs: 25000, wrap: bindMounted(hosts, "/etc/hosts") }
    )
    assertSurvived(run)
    const [ours] = run.results
    assert.equal(ours.ok, true, `failed after ${ours.ms} ms: ${ours.code} ${ours.cause}`)
    assert.equal(ours.body, JSON.stringify({ via: last }))
    // One delay for the black hole (250 ms; 300 ms on tokio), then the refusals back to
    // back: waiting a delay after each would take at least 1250 ms.
    assert.ok(ours.ms < 900, `connected after ${ours.ms} ms`)
  } finally {
    hole.process.kill()
    await new Promise((resolve) => server.close(resolve))
  }
})

// A mount namespace whose resolv.conf points at 127.0.0.1, where no DNS server listens:
// getaddrinfo answers EAI_AGAIN (a temporary failure), which is not ENOTFOUND.

test(`8b. a temporary DNS failure stays EAI_AGAIN and retryable, as with pusher (${TRANSPORT})`, { skip: !canUnshare && "needs `unshare -m` (Linux, root)", timeout: 60000 }, async () => {
  const resolv = require("node:path").join(certs.dir, "resolv.conf")
  fs.writeFileSync(resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
  const run = await runClient(
    `const options = { host: "pusher-native-eai-again.example", port: 80, timeout: 10000 }
     report(await outcome(() => make(Upstream, options).trigger("c", "e", {})))
     report(await outcome(() => make(Pusher, options).trigger("c", "e", {})))
     report(await outcome(() => make(Pusher, options).get({ path: "/channels" })))`,
    { killAfterMs: 30000, wrap: bindMounted(resolv, "/etc/resolv.conf") }
  )
  assertSurvived(run)
  const [upstream, post, get] = run.results
  assert.equal(upstream.code, "EAI_AGAIN", `sanity: pusher sees ${upstream.code} (${upstream.cause})`)
  assert.deepEqual([post.code, get.code], ["EAI_AGAIN", "EAI_AGAIN"], `trigger: ${post.cause}\nget: ${get.cause}`)
  assert.deepEqual([post.retryable, get.retryable], [true, true], "nothing was sent: retryable")
})
