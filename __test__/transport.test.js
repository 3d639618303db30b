"use strict"
// The network side against real servers on 127.0.0.1: the bytes on the wire
// (differentially against the real `pusher@5.3.4`), Response objects, errors, TLS,
// keep-alive, proxies, end-to-end encryption, several instances and worker threads.

const test = require("node:test")
const assert = require("node:assert/strict")
const crypto = require("node:crypto")
const http = require("node:http")
const net = require("node:net")
const path = require("node:path")
const fs = require("node:fs")
const nacl = require("tweetnacl")
const { HttpProxyAgent } = require("http-proxy-agent")
const { Pusher, Upstream, recordingServer, pusherFor, makeCerts, atTime, within, settled, closedPort, runNode } = require("./helpers")

const ROOT = path.join(__dirname, "..")
const T = 1700000000123 // the frozen Date.now() of the differential tests
const MASTER_KEY = Buffer.alloc(32, 7).toString("base64")

/** A raw TCP server that hands each connection to `onConnection` once bytes arrive. */
async function rawServer(onData) {
  const sockets = new Set()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {})
    socket.once("data", (chunk) => onData(socket, chunk))
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    port: server.address().port,
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

const md5 = (s) => crypto.createHash("md5").update(s, "utf8").digest("hex")
const hmac = (secret, s) => crypto.createHmac("sha256", secret).update(s).digest("hex")

/** The signed query `pusher` builds, computed here from the documented algorithm. */
function expectedQuery({ method, path: p, params = {}, body, secret = "secret", key = "key", ts }) {
  const all = { ...params, auth_key: key, auth_timestamp: String(ts), auth_version: "1.0" }
  if (body !== undefined) all.body_md5 = md5(body)
  const keys = Object.keys(all).sort()
  const qs = keys.map((k) => `${k}=${all[k]}`).join("&")
  return qs + "&auth_signature=" + hmac(secret, [method, p, qs].join("\n"))
}

// ---------------------------------------------------------------------------------
// Wire bytes, differentially

/**
 * Runs `call(pusher)` with upstream then pusher-native under the same frozen clock,
 * each against a fresh recording server, and returns both recorded requests plus
 * whatever `call` left behind (for in-place mutation checks).
 */
async function bothOnWire(call, options = {}) {
  const out = []
  for (const Impl of [Upstream, Pusher]) {
    const server = await recordingServer()
    try {
      const pusher = pusherFor(server, options, Impl)
      const state = {}
      const promise = atTime(T, () => call(pusher, state))
      const result = await within(settled(promise), 5000, "request")
      assert.equal(server.requests.length, 1, "exactly one request on the wire")
      out.push({ request: server.requests[0], result, state })
    } finally {
      await server.close()
    }
  }
  return { upstream: out[0], native: out[1] }
}

function assertSameWire({ upstream, native }) {
  const u = upstream.request
  const n = native.request
  assert.equal(n.method, u.method)
  assert.equal(n.url, u.url, "path, query and hence signature")
  assert.equal(n.body, u.body, "body bytes")
  assert.equal(n.headers["content-type"], u.headers["content-type"])
  assert.equal(n.headers["content-length"], u.headers["content-length"])
  assert.equal(native.result.error, undefined, "native request succeeded")
  assert.equal(upstream.result.error, undefined, "upstream request succeeded")
}

const WIRE_CASES = {
  "trigger with object data": (p) => p.trigger("my-channel", "my-event", { hello: "world", n: 1, nested: [1, "x"] }),
  "trigger with string data (sent raw)": (p) => p.trigger("my-channel", "my-event", 'raw "string" data'),
  "trigger with undefined data": (p) => p.trigger("my-channel", "my-event", undefined),
  "trigger with non-ASCII data": (p) => p.trigger("my-channel", "ev", { s: "héllo ✓ \ud83d\ude00", lone: "\ud800" }),
  "trigger to several channels": (p) => p.trigger(["a", "b-2", "private-c"], "my-event", { x: 1 }),
  "trigger with socket_id and info": (p) =>
    p.trigger("presence-room", "ev", { a: 1 }, { socket_id: "123.456", info: "user_count,subscription_count" }),
  "trigger with params overriding name and channels": (p) =>
    p.trigger("a", "ev", { a: 1 }, { name: "other-name", channels: ["z1", "z2"], extra: 5 }),
  "trigger with a legacy string 4th argument": (p) => p.trigger("a", "ev", { a: 1 }, "123.456"),
  "triggerBatch with extra keys": (p, state) => {
    state.batch = [
      { channel: "a", name: "e1", data: { x: 1 }, socket_id: "1.2", extra: true },
      { channel: "b", name: "e2", data: "already a string", info: "subscription_count" },
      { channel: "c", name: "e3", data: undefined },
    ]
    return p.triggerBatch(state.batch)
  },
  "sendToUser": (p) => p.sendToUser("user-1", "ev", { hi: "there" }),
  "terminateUserConnections with 'a/b c'": (p) => p.terminateUserConnections("a/b c"),
  "get with params (arrays, spaces, uppercase keys)": (p) =>
    p.get({
      path: "/channels",
      params: { filter_by_prefix: "presence-", info: ["user_count", "subscription_count"], Zeta: "a b", alpha: 2 },
    }),
  "get a channel's users": (p) => p.get({ path: "/channels/presence-x/users" }),
  "post with a string body (double-encoded)": (p) => p.post({ path: "/events", body: "already-a-string" }),
  "post with params and an object body": (p) => p.post({ path: "/things", params: { a: "1", B: "x y" }, body: { b: 2 } }),
}

for (const [name, call] of Object.entries(WIRE_CASES)) {
  test(`wire bytes match upstream: ${name}`, { timeout: 15000 }, async () => {
    assertSameWire(await bothOnWire(call))
  })
}

test("wire bytes match upstream over TLS (with the ca option for pusher-native)", { timeout: 15000 }, async () => {
  const certs = makeCerts()
  const recorded = []
  for (const Impl of [Upstream, Pusher]) {
    const server = await recordingServer({ tls: { cert: certs.certPem, key: certs.keyPem } })
    try {
      // upstream trusts the CA through an agent; pusher-native through `ca`.
      const options =
        Impl === Upstream
          ? { agent: new (require("https").Agent)({ ca: certs.caPem }) }
          : { ca: certs.caPem }
      const pusher = pusherFor(server, options, Impl)
      const res = await within(atTime(T, () => pusher.trigger("tls-channel", "ev", { secure: true })), 5000)
      assert.equal(res.status, 200)
      recorded.push(server.requests[0])
    } finally {
      await server.close()
    }
  }
  assert.equal(recorded[1].url, recorded[0].url)
  assert.equal(recorded[1].body, recorded[0].body)
  fs.rmSync(certs.dir, { recursive: true, force: true })
})

test("triggerBatch rewrites the caller's data in place, as upstream does", { timeout: 15000 }, async () => {
  const both = await bothOnWire(WIRE_CASES["triggerBatch with extra keys"])
  assertSameWire(both)
  assert.deepEqual(both.native.state.batch, both.upstream.state.batch)
  assert.equal(both.native.state.batch[0].data, '{"x":1}')
  assert.equal(both.native.state.batch[1].data, "already a string")
  assert.equal(both.native.state.batch[0].extra, true)
})

test("the signature recomputed with node:crypto matches what was sent", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  try {
    const pusher = pusherFor(server)
    const ts = Math.floor(T / 1000)
    await within(atTime(T, () => pusher.trigger("my-channel", "my-event", { hello: "world" })), 5000)
    await within(
      atTime(T, () =>
        pusher.get({ path: "/channels", params: { filter_by_prefix: "presence-", info: ["user_count", "x"], Zeta: "a b" } })
      ),
      5000
    )
    await within(atTime(T, () => pusher.terminateUserConnections("a/b c")), 5000)
    await within(atTime(T, () => pusher.post({ path: "/events", body: "s" })), 5000)

    const [trigger, get, terminate, post] = server.requests
    const body = '{"name":"my-event","data":"{\\"hello\\":\\"world\\"}","channels":["my-channel"]}'
    assert.equal(trigger.body, body)
    assert.equal(trigger.url, "/apps/1/events?" + expectedQuery({ method: "POST", path: "/apps/1/events", body, ts }))

    // Keys sorted with uppercase first, values signed raw; the wire percent-encodes the space.
    const query = expectedQuery({
      method: "GET",
      path: "/apps/1/channels",
      params: { filter_by_prefix: "presence-", info: "user_count,x", Zeta: "a b" },
      ts,
    })
    assert.ok(query.startsWith("Zeta=a b&auth_key=key&"), query)
    assert.equal(get.url, "/apps/1/channels?" + query.replace(/ /g, "%20"))
    assert.equal(get.body, "")
    assert.equal(get.headers["content-type"], undefined)

    const tPath = "/apps/1/users/a/b c/terminate_connections"
    assert.equal(terminate.body, "{}")
    assert.equal(
      terminate.url,
      "/apps/1/users/a/b%20c/terminate_connections?" +
        expectedQuery({ method: "POST", path: tPath, body: "{}", ts }).replace(/ /g, "%20")
    )
    assert.match(terminate.url, /body_md5=99914b932bd37a50b983c5e7c90ae93b/)

    assert.equal(post.body, '"s"')
    assert.equal(post.url, "/apps/1/events?" + expectedQuery({ method: "POST", path: "/apps/1/events", body: '"s"', ts }))
  } finally {
    await server.close()
  }
})

test("headers sent: library, accept, content-type only with a body, no user-agent", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  try {
    const pusher = pusherFor(server)
    await within(pusher.trigger("c", "e", 1), 5000)
    await within(pusher.get({ path: "/channels" }), 5000)
    const version = require("../package.json").version
    const [post, get] = server.requests
    assert.deepEqual(Object.keys(post.headers).sort(), [
      "accept",
      "content-length",
      "content-type",
      "host",
      "x-pusher-library",
    ])
    assert.equal(post.headers["x-pusher-library"], "pusher-native " + version)
    assert.equal(post.headers["content-type"], "application/json")
    assert.equal(post.headers.accept, "*/*")
    assert.equal(post.headers.host, `127.0.0.1:${server.port}`)
    assert.equal(post.headers["content-length"], String(Buffer.byteLength(post.body)))
    assert.deepEqual(Object.keys(get.headers).sort(), ["accept", "host", "x-pusher-library"])
  } finally {
    await server.close()
  }
})

// ---------------------------------------------------------------------------------
// Responses

function responseServer() {
  return recordingServer({
    handler(req, body, res) {
      const url = new URL(req.url, "http://x")
      const p = url.pathname
      if (p === "/final") {
        res.writeHead(200, { "content-type": "application/json" })
        return res.end(JSON.stringify({ method: req.method, body }))
      }
      if (p.endsWith("/r302")) {
        res.writeHead(302, { location: "/final" })
        return res.end("moving")
      }
      if (p.endsWith("/r303")) {
        res.writeHead(303, { location: "/final" })
        return res.end()
      }
      const status = /\/s(\d{3})$/.exec(p)
      if (status) {
        const code = Number(status[1])
        res.writeHead(code, { "content-type": "text/plain" })
        return res.end(code === 204 ? undefined : `body of ${code}`)
      }
      res.setHeader("Content-Type", "application/json; charset=utf-8")
      res.setHeader("X-Multi", ["one", "two"])
      res.setHeader("Set-Cookie", ["a=1", "b=2"])
      res.setHeader("X-Empty", "")
      res.writeHead(200)
      res.end('{"channels":{"presence-x":{"user_count":3}},"unicode":"✓"}')
    },
  })
}

/** Everything observable about a Response, with the per-request parts normalised. */
async function describeResponse(res) {
  const stripDate = (o) => {
    const copy = { ...o }
    delete copy.date
    return copy
  }
  const forEach = []
  res.headers.forEach((value, name) => forEach.push([name, value]))
  const clone = res.clone()
  const d = {
    status: res.status,
    ok: res.ok,
    statusText: res.statusText,
    url: res.url.replace(/auth_timestamp=\d+.*$/, "…"),
    redirected: res.redirected,
    raw: stripDate(res.headers.raw()),
    rawPrototype: Object.getPrototypeOf(res.headers.raw()),
    get: [res.headers.get("X-MULTI"), res.headers.get("set-cookie"), res.headers.get("missing"), res.headers.get("x-empty")],
    has: [res.headers.has("Content-Type"), res.headers.has("nope")],
    forEach: forEach.filter(([n]) => n !== "date"),
    entries: [...res.headers.entries()].filter(([n]) => n !== "date"),
    keys: [...res.headers.keys()],
    values: [...res.headers.values()].length,
    iterated: [...res.headers].filter(([n]) => n !== "date"),
    bodyUsedBefore: res.bodyUsed,
    text: await res.text(),
    bodyUsedAfter: res.bodyUsed,
    reread: await res.text().then(
      () => "read twice",
      (e) => [e.constructor.name, e.message.replace(/\?.*$/, "")]
    ),
    cloneAfterUse: (() => {
      try {
        res.clone()
        return "cloned"
      } catch (e) {
        return e.message
      }
    })(),
    cloneJson: await clone.json(),
  }
  return d
}

test("a Response matches node-fetch v2's (status, headers, body readers, clone)", { timeout: 15000 }, async () => {
  const server = await responseServer()
  try {
    const described = []
    for (const Impl of [Upstream, Pusher]) {
      const res = await within(pusherFor(server, {}, Impl).get({ path: "/channels" }), 5000)
      described.push(await describeResponse(res))
    }
    const [u, n] = described
    assert.deepEqual(n, u)
    assert.equal(n.status, 200)
    assert.deepEqual(n.raw["x-multi"], ["one, two"])
    assert.deepEqual(n.raw["set-cookie"], ["a=1", "b=2"])
    assert.equal(n.get[1], "a=1, b=2")

    // The other body readers, each on a fresh Response.
    const pusher = pusherFor(server)
    const expected = '{"channels":{"presence-x":{"user_count":3}},"unicode":"✓"}'
    const buf = await (await pusher.get({ path: "/channels" })).buffer()
    assert.ok(Buffer.isBuffer(buf))
    assert.equal(buf.toString("utf8"), expected)
    const ab = await (await pusher.get({ path: "/channels" })).arrayBuffer()
    assert.ok(ab instanceof ArrayBuffer)
    assert.equal(Buffer.from(ab).toString("utf8"), expected)
    const json = await (await pusher.get({ path: "/channels" })).json()
    assert.deepEqual(json, JSON.parse(expected))
    const upJson = await (await pusherFor(server, {}, Upstream).get({ path: "/channels" })).json()
    assert.deepEqual(json, upJson)
  } finally {
    await server.close()
  }
})

test("a custom reason phrase and repeated headers read as Node's parser reports them", { timeout: 15000 }, async () => {
  const server = await rawServer((socket) => {
    socket.end(
      "HTTP/1.1 200 Fine Thanks\r\n" +
        "Content-Type: application/json\r\nContent-Type: text/plain\r\n" +
        "X-Repeated: 1\r\nX-Repeated: 2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" +
        "Cookie: c=3\r\nCookie: d=4\r\nETag: one\r\nETag: two\r\n" +
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
  })
  try {
    const seen = []
    for (const Impl of [Upstream, Pusher]) {
      const res = await within(pusherFor(server, {}, Impl).get({ path: "/x" }), 5000)
      seen.push({ statusText: res.statusText, raw: res.headers.raw(), entries: [...res.headers], text: await res.text() })
    }
    assert.deepEqual(seen[1], seen[0])
    assert.equal(seen[1].statusText, "Fine Thanks")
    assert.deepEqual(seen[1].raw["content-type"], ["application/json"])
    assert.deepEqual(seen[1].raw["x-repeated"], ["1, 2"])
    assert.deepEqual(seen[1].raw.cookie, ["c=3; d=4"])
  } finally {
    await server.close()
  }
})

test("201, 202 and 204 resolve like upstream", { timeout: 15000 }, async () => {
  const server = await responseServer()
  try {
    for (const code of [201, 202, 204]) {
      const results = []
      for (const Impl of [Upstream, Pusher]) {
        const res = await within(pusherFor(server, {}, Impl).post({ path: `/s${code}`, body: { a: 1 } }), 5000)
        results.push({ status: res.status, ok: res.ok, statusText: res.statusText, text: await res.text() })
      }
      assert.deepEqual(results[1], results[0])
      assert.equal(results[1].status, code)
      assert.equal(results[1].ok, true)
    }
  } finally {
    await server.close()
  }
})

test("redirects are followed as node-fetch v2 does (GET 302, POST 303 becomes GET)", { timeout: 15000 }, async () => {
  const server = await responseServer()
  try {
    for (const call of [(p) => p.get({ path: "/r302" }), (p) => p.post({ path: "/r303", body: { a: 1 } }), (p) => p.post({ path: "/r302", body: { a: 1 } })]) {
      const results = []
      for (const Impl of [Upstream, Pusher]) {
        const res = await within(call(pusherFor(server, {}, Impl)), 5000)
        results.push({ status: res.status, url: res.url, redirected: res.redirected, json: await res.json() })
      }
      assert.deepEqual(results[1], results[0])
      assert.equal(results[1].url, `${server.url}/final`)
      assert.equal(results[1].redirected, true)
      assert.deepEqual(results[1].json, { method: "GET", body: "" })
    }
    // The final hop carries no body.
    const finals = server.requests.filter((r) => r.url === "/final")
    assert.equal(finals.length, 6)
    for (const r of finals) assert.equal(r.method, "GET")
  } finally {
    await server.close()
  }
})

// ---------------------------------------------------------------------------------
// Errors

const ADDED = ["code", "retryable", "attempts"]

/** An error's observable shape, as a plain object. */
function errorShape(e) {
  return {
    ctor: e instanceof Error,
    name: e.name,
    message: e.message,
    string: String(e),
    url: e.url,
    status: e.status,
    body: e.body,
    // pusher-native's additions (code, retryable, attempts) left out
    keys: Object.keys(e).filter((k) => !ADDED.includes(k)),
    cause: e.error && { name: e.error.name, message: e.error.message, code: e.error.code, type: e.error.type },
  }
}

test("error statuses reject with upstream's RequestError shape", { timeout: 20000 }, async () => {
  const server = await responseServer()
  try {
    for (const code of [400, 401, 403, 404, 413, 500]) {
      const shapes = []
      let nativeError
      for (const Impl of [Upstream, Pusher]) {
        const pusher = pusherFor(server, {}, Impl)
        const { error } = await within(settled(atTime(T, () => pusher.post({ path: `/s${code}`, body: { a: 1 } }))), 5000)
        assert.ok(error, `status ${code} rejects`)
        shapes.push(errorShape(error))
        if (Impl === Pusher) nativeError = error
      }
      assert.deepEqual(shapes[1], shapes[0])
      assert.equal(shapes[1].message, `Unexpected status code ${code}`)
      assert.equal(shapes[1].status, code)
      assert.equal(shapes[1].body, `body of ${code}`)
      assert.match(shapes[1].url, new RegExp(`^${server.url}/apps/1/s${code}\\?auth_key=key&`))
      assert.ok(nativeError instanceof Pusher.RequestError)
      assert.equal(nativeError.code, "PUSHER_HTTP")
      // A POST that reached the server is never safe to resend.
      assert.equal(nativeError.retryable, false)
      assert.equal(nativeError.attempts, 1)
    }
    // A GET answered 5xx is.
    const { error } = await within(settled(pusherFor(server).get({ path: "/s500" })), 5000)
    assert.equal(error.status, 500)
    assert.equal(error.retryable, true)
    const notFound = await within(settled(pusherFor(server).get({ path: "/s404" })), 5000)
    assert.equal(notFound.error.retryable, false)
  } finally {
    await server.close()
  }
})

test("connection refused rejects with ECONNREFUSED, like upstream", { timeout: 15000 }, async () => {
  const port = await closedPort()
  const codes = []
  const shapes = []
  for (const Impl of [Upstream, Pusher]) {
    const pusher = new Impl({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port })
    const { error } = await within(settled(pusher.trigger("c", "e", {})), 5000)
    assert.equal(error.message, "Request failed with an error")
    assert.equal(error.error.name, "FetchError")
    assert.equal(error.error.type, "system")
    assert.match(error.error.message, new RegExp(`reason: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`))
    codes.push(error.error.code)
    // What a JSON logger keeps of it: node-fetch's enumerable fields, the reason included.
    const logged = JSON.parse(JSON.stringify(error))
    shapes.push({ keys: Object.keys(logged).filter((k) => !ADDED.includes(k)), error: Object.keys(logged.error) })
    assert.match(logged.error.message, /reason: connect ECONNREFUSED/)
    if (Impl === Pusher) {
      assert.equal(error.code, "PUSHER_NETWORK")
      assert.equal(error.retryable, true)
    }
  }
  assert.deepEqual(codes, ["ECONNREFUSED", "ECONNREFUSED"])
  assert.deepEqual(shapes[1], shapes[0])
})

test("a reset while the headers arrive rejects with ECONNRESET, like upstream", { timeout: 15000 }, async () => {
  const server = await rawServer((socket) => {
    socket.write("HTTP/1.1 200 OK\r\nContent-Ty")
    setTimeout(() => socket.resetAndDestroy(), 20)
  })
  try {
    for (const Impl of [Upstream, Pusher]) {
      const pusher = pusherFor(server, {}, Impl)
      const { error } = await within(settled(pusher.trigger("c", "e", {})), 5000)
      assert.equal(error.message, "Request failed with an error")
      assert.equal(error.error.code, "ECONNRESET")
      assert.equal(error.error.name, "FetchError")
    }
  } finally {
    await server.close()
  }
})

test("a stalled server with `timeout` rejects on time with an AbortError / ETIMEDOUT", { timeout: 15000 }, async (t) => {
  const server = await rawServer(() => {}) // reads the request, never answers
  try {
    const timeout = 200
    const logged = []
    for (const Impl of [Upstream, Pusher]) {
      const pusher = pusherFor(server, { timeout }, Impl)
      const started = performance.now()
      const { error } = await within(settled(pusher.trigger("c", "e", {})), 5000)
      const elapsed = performance.now() - started
      assert.equal(error.message, "Request failed with an error")
      assert.equal(error.error.name, "AbortError")
      assert.equal(error.error.type, "aborted")
      logged.push(JSON.parse(JSON.stringify(error)).error)
      if (Impl === Pusher) {
        t.diagnostic(`timeout ${timeout} ms fired after ${elapsed.toFixed(1)} ms`)
        assert.ok(elapsed >= timeout - 5, `not early: ${elapsed}`)
        assert.ok(elapsed < timeout + 250, `on time: ${elapsed}`)
        assert.equal(error.error.code, "ETIMEDOUT")
        assert.equal(error.code, "PUSHER_TIMEOUT")
        // The POST was written before the deadline: resending could duplicate it.
        assert.equal(error.retryable, false)
      }
    }
    // What a JSON logger sees of the AbortError: node-fetch's fields, then our `code`.
    assert.deepEqual(Object.keys(logged[1]), [...Object.keys(logged[0]), "code"])
    assert.equal(logged[1].type, logged[0].type)
    assert.equal(typeof logged[1].message, "string")
  } finally {
    await server.close()
  }
})

test("TLS: an untrusted certificate is rejected by default, like upstream", { timeout: 15000 }, async () => {
  const certs = makeCerts()
  const server = await recordingServer({ tls: { cert: certs.certPem, key: certs.keyPem } })
  try {
    for (const Impl of [Upstream, Pusher]) {
      const { error } = await within(settled(pusherFor(server, {}, Impl).trigger("c", "e", {})), 5000)
      assert.equal(error.message, "Request failed with an error")
      assert.equal(error.error.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
      assert.equal(error.error.name, "FetchError")
      if (Impl === Pusher) {
        assert.equal(error.code, "PUSHER_TLS")
        assert.equal(error.retryable, false)
      }
    }
    assert.equal(server.requests.length, 0, "nothing was sent over the untrusted connection")
  } finally {
    await server.close()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})

test("TLS: trusted through the `ca` option (string, Buffer or array)", { timeout: 15000 }, async () => {
  const certs = makeCerts()
  const server = await recordingServer({ tls: { cert: certs.certPem, key: certs.keyPem } })
  try {
    for (const ca of [certs.caPem, Buffer.from(certs.caPem), [certs.caPem]]) {
      const res = await within(pusherFor(server, { ca }).trigger("c", "e", { ok: 1 }), 5000)
      assert.equal(res.status, 200)
    }
    assert.equal(server.requests.length, 3)
  } finally {
    await server.close()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})

test("TLS: trusted through NODE_EXTRA_CA_CERTS (child process)", { timeout: 20000 }, async () => {
  const certs = makeCerts()
  const server = await recordingServer({ tls: { cert: certs.certPem, key: certs.keyPem } })
  try {
    const code = `
      const Pusher = require(${JSON.stringify(ROOT)})
      const p = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port: ${server.port}, useTLS: true })
      p.trigger("c", "e", { via: "env" }).then(
        (r) => console.log(JSON.stringify({ status: r.status })),
        (e) => console.log(JSON.stringify({ code: e.error && e.error.code }))
      )`
    const trusted = await runNode(code, { env: { NODE_EXTRA_CA_CERTS: certs.caPath } })
    assert.equal(trusted.code, 0, trusted.stderr)
    assert.deepEqual(JSON.parse(trusted.stdout), { status: 200 })
    // Control: the same child without the variable is refused.
    const untrusted = await runNode(code, { env: { NODE_EXTRA_CA_CERTS: "" } })
    assert.deepEqual(JSON.parse(untrusted.stdout), { code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" })
    assert.equal(server.requests.length, 1)
  } finally {
    await server.close()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})

test('scheme "ftp" rejects with "Only HTTP(S) protocols are supported", like upstream', { timeout: 15000 }, async () => {
  const server = await recordingServer()
  try {
    const shapes = []
    for (const Impl of [Upstream, Pusher]) {
      const pusher = pusherFor(server, { scheme: "ftp" }, Impl)
      const { error } = await within(settled(atTime(T, () => pusher.trigger("c", "e", {}))), 5000)
      assert.ok(error instanceof Error)
      assert.equal(error.error.message, "Only HTTP(S) protocols are supported")
      shapes.push({ ...errorShape(error), cause: { name: error.error.name, message: error.error.message } })
      if (Impl === Pusher) assert.equal(error.retryable, false)
    }
    assert.deepEqual(shapes[1], shapes[0])
    assert.equal(shapes[1].cause.name, "TypeError")
    assert.match(shapes[1].url, /^ftp:\/\/127\.0\.0\.1:\d+\/apps\/1\/events\?auth_key=key&/)
    assert.equal(server.requests.length, 0)
  } finally {
    await server.close()
  }
})

// ---------------------------------------------------------------------------------
// Connections, proxies

test("one TCP connection is reused across 20 sequential triggers", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  try {
    const pusher = pusherFor(server)
    for (let i = 0; i < 20; i++) {
      const res = await within(pusher.trigger("c", "e", { i }), 5000)
      assert.equal(res.status, 200)
      // hyper hands a keep-alive connection back to its pool on its own task a moment
      // after the body is read; on loopback, on a busy 2-core box, a request sent in
      // that instant can beat it and open a second connection (then both are pooled).
      // A few ms between triggers keeps this test about reuse, not that race.
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    assert.equal(server.requests.length, 20)
    const ports = new Set(server.requests.map((r) => r.socket.remotePort))
    assert.equal(ports.size, 1, `remote ports: ${[...ports]}`)
    assert.deepEqual(
      server.requests.map((r) => JSON.parse(JSON.parse(r.body).data).i),
      Array.from({ length: 20 }, (_, i) => i)
    )
  } finally {
    await server.close()
  }
})

/** A forwarding HTTP proxy for absolute-form requests to http targets. */
async function httpProxy() {
  const seen = []
  const sockets = new Set()
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers })
    let target
    try {
      target = new URL(req.url)
    } catch {
      res.writeHead(400)
      return res.end("absolute-form only")
    }
    const upstream = http.request(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode, up.headers)
        up.pipe(res)
      }
    )
    upstream.on("error", (e) => {
      res.writeHead(502)
      res.end(String(e))
    })
    req.pipe(upstream)
  })
  server.on("connection", (s) => {
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    seen,
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

test("back-to-back sequential triggers reuse pooled connections", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  try {
    const pusher = pusherFor(server)
    for (let i = 0; i < 50; i++) await within(pusher.trigger("c", "e", { i }), 5000)
    const ports = new Set(server.requests.map((r) => r.socket.remotePort))
    assert.ok(ports.size <= 3, `${ports.size} connections for 50 sequential requests`)
  } finally {
    await server.close()
  }
})

test("the proxy option and an HttpProxyAgent route requests through the proxy", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  const proxy = await httpProxy()
  try {
    const direct = pusherFor(server)
    await within(atTime(T, () => direct.trigger("c", "e", { via: "x" })), 5000)
    assert.equal(proxy.seen.length, 0)

    const viaOption = pusherFor(server, { proxy: proxy.url })
    const res1 = await within(atTime(T, () => viaOption.trigger("c", "e", { via: "x" })), 5000)
    assert.equal(res1.status, 200)
    assert.equal(proxy.seen.length, 1)

    const viaAgent = pusherFor(server, { agent: new HttpProxyAgent(proxy.url) })
    const res2 = await within(atTime(T, () => viaAgent.trigger("c", "e", { via: "x" })), 5000)
    assert.equal(res2.status, 200)
    assert.equal(proxy.seen.length, 2)

    // The proxy saw absolute-form URLs; the target saw exactly the direct request.
    const [directReq, optReq, agentReq] = server.requests
    for (const seen of proxy.seen) {
      assert.equal(seen.method, "POST")
      assert.equal(seen.url, server.url + directReq.url)
      assert.equal(seen.headers.host, `127.0.0.1:${server.port}`)
    }
    for (const r of [optReq, agentReq]) {
      assert.equal(r.url, directReq.url)
      assert.equal(r.body, directReq.body)
    }

    // A proxy that is down is a network error, not a hang.
    const deadProxy = pusherFor(server, { proxy: `http://127.0.0.1:${await closedPort()}` })
    const { error } = await within(settled(deadProxy.trigger("c", "e", {})), 5000)
    assert.equal(error.message, "Request failed with an error")
    assert.equal(error.error.code, "ECONNREFUSED")
  } finally {
    await proxy.close()
    await server.close()
  }
})

// ---------------------------------------------------------------------------------
// End-to-end encryption

function decrypt(channel, sentData) {
  const key = crypto.createHash("sha256").update(Buffer.concat([Buffer.from(channel), Buffer.from(MASTER_KEY, "base64")])).digest()
  const { nonce, ciphertext } = JSON.parse(sentData)
  assert.equal(Buffer.from(nonce, "base64").length, 24)
  const plain = nacl.secretbox.open(Buffer.from(ciphertext, "base64"), Buffer.from(nonce, "base64"), key)
  assert.ok(plain, "decrypts with SHA-256(channel ‖ master key)")
  return Buffer.from(plain).toString("utf8")
}

test("encrypted trigger: the sent data decrypts to JSON.stringify(data)", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  try {
    const channel = "private-encrypted-x"
    for (const Impl of [Upstream, Pusher]) {
      const pusher = pusherFor(server, { encryptionMasterKeyBase64: MASTER_KEY }, Impl)
      await within(pusher.trigger(channel, "secret-event", { msg: "hello ✓", n: [1, 2] }, { socket_id: "1.2" }), 5000)
      await within(pusher.trigger(channel, "secret-string", "plain string"), 5000)
    }
    assert.equal(server.requests.length, 4)
    const decoded = server.requests.map((r) => {
      const body = JSON.parse(r.body)
      assert.deepEqual(body.channels, [channel])
      return { name: body.name, socket_id: body.socket_id, plain: decrypt(channel, body.data) }
    })
    assert.deepEqual(decoded[2], decoded[0])
    assert.deepEqual(decoded[3], decoded[1])
    assert.equal(decoded[2].plain, JSON.stringify({ msg: "hello ✓", n: [1, 2] }))
    assert.equal(decoded[3].plain, JSON.stringify("plain string"))
    // Fresh nonces each time.
    assert.notEqual(JSON.parse(JSON.parse(server.requests[2].body).data).nonce, JSON.parse(JSON.parse(server.requests[0].body).data).nonce)
  } finally {
    await server.close()
  }
})

test("encrypted triggerBatch item decrypts; the plain item is sent as JSON", { timeout: 15000 }, async () => {
  const server = await recordingServer()
  try {
    const pusher = pusherFor(server, { encryptionMasterKeyBase64: MASTER_KEY })
    const batch = [
      { channel: "private-encrypted-a", name: "e1", data: { secret: 1 } },
      { channel: "public", name: "e2", data: { open: 2 } },
    ]
    await within(pusher.triggerBatch(batch), 5000)
    const sent = JSON.parse(server.requests[0].body).batch
    assert.equal(decrypt("private-encrypted-a", sent[0].data), '{"secret":1}')
    assert.equal(sent[1].data, '{"open":2}')
    assert.equal(batch[0].data, sent[0].data, "mutated in place, as upstream")
  } finally {
    await server.close()
  }
})

// ---------------------------------------------------------------------------------
// Concurrency

test("several Pusher instances at once sign with their own credentials", { timeout: 20000 }, async () => {
  const servers = [await recordingServer(), await recordingServer()]
  try {
    const instances = Array.from({ length: 6 }, (_, i) =>
      pusherFor(servers[i % 2], { appId: String(100 + i), key: `key${i}`, secret: `secret${i}`, timeout: 5000 })
    )
    const results = await within(
      Promise.all(instances.flatMap((p, i) => Array.from({ length: 15 }, (_, j) => p.trigger(`c${i}`, "e", { i, j })))),
      10000
    )
    assert.equal(results.length, 90)
    for (const r of results) assert.equal(r.status, 200)
    const all = servers.flatMap((s) => s.requests)
    assert.equal(all.length, 90)
    for (const r of all) {
      const url = new URL(r.url, "http://x")
      const appId = /^\/apps\/(\d+)\/events$/.exec(url.pathname)[1]
      const i = Number(appId) - 100
      assert.equal(url.searchParams.get("auth_key"), `key${i}`)
      assert.equal(JSON.parse(JSON.parse(r.body).data).i, i)
      const ts = Number(url.searchParams.get("auth_timestamp"))
      assert.equal(r.url, url.pathname + "?" + expectedQuery({ method: "POST", path: url.pathname, body: r.body, key: `key${i}`, secret: `secret${i}`, ts }))
    }
  } finally {
    for (const s of servers) await s.close()
  }
})

test("worker threads: 4 workers + main trigger concurrently, one terminated mid-flight", { timeout: 30000 }, async () => {
  // In a child process, so a crash at worker teardown or a hang at exit is caught.
  const code = `
    const { Worker } = require("worker_threads")
    const http = require("http")
    const ROOT = ${JSON.stringify(ROOT)}
    const Pusher = require(ROOT)
    const seen = new Map()
    let slowSeen = 0
    let onSlow
    const server = http.createServer((req, res) => {
      let b = ""
      req.on("data", (c) => (b += c))
      req.on("end", () => {
        const d = JSON.parse(JSON.parse(b).data)
        seen.set(d.id, (seen.get(d.id) || 0) + 1)
        if (d.slow) { slowSeen++; if (onSlow) onSlow(); setTimeout(() => res.end("{}"), 400) }
        else res.end(JSON.stringify({ id: d.id }))
      })
    })
    server.listen(0, "127.0.0.1", async () => {
      const port = server.address().port
      const workerCode = \`
        const { parentPort, workerData } = require("worker_threads")
        const Pusher = require(workerData.root)
        const p = new Pusher({ appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: workerData.port })
        Promise.all(Array.from({ length: 40 }, (_, i) =>
          p.trigger("c", "e", { id: workerData.w + ":" + i, slow: workerData.slow })
            .then((r) => r.json()).then((j) => j.id)
        )).then((ids) => parentPort.postMessage(ids), (e) => parentPort.postMessage("error: " + e.message))
      \`
      const workers = [0, 1, 2, 3].map((w) => new Worker(workerCode, { eval: true, workerData: { root: ROOT, port, w, slow: w === 3 } }))
      const done = workers.slice(0, 3).map((wk) => new Promise((res, rej) => { wk.once("message", res); wk.once("error", rej) }))
      const terminated = new Promise((res) => { onSlow = () => { if (slowSeen === 1) res(workers[3].terminate()) } })
      const p = new Pusher({ appId: "1", key: "k", secret: "s", host: "127.0.0.1", port })
      const mainIds = Promise.all(Array.from({ length: 40 }, (_, i) => p.trigger("c", "e", { id: "m:" + i }).then((r) => r.json()).then((j) => j.id)))
      const results = await Promise.all(done)
      const exitCode = await terminated
      const ids = await mainIds
      // Still works after the termination.
      const after = await (await p.trigger("c", "e", { id: "after" })).json()
      const ok = results.every((ids, w) => ids.length === 40 && ids.every((id, i) => id === w + ":" + i)) &&
        ids.every((id, i) => id === "m:" + i) && after.id === "after"
      const dup = [...seen.values()].filter((n) => n !== 1).length
      console.log(JSON.stringify({ ok, dup, slowSeen: slowSeen > 0, terminatedCode: exitCode }))
      server.close()
      server.closeAllConnections()
    })
  `
  const result = await runNode(code, { timeoutMs: 25000 })
  assert.equal(result.signal, null, result.stderr)
  assert.equal(result.code, 0, result.stderr)
  const summary = JSON.parse(result.stdout.trim().split("\n").pop())
  assert.deepEqual({ ...summary, terminatedCode: undefined }, { ok: true, dup: 0, slowSeen: true, terminatedCode: undefined })
  assert.equal(typeof summary.terminatedCode, "number")
})

test("worker threads terminated repeatedly with requests in flight do not crash the process", { timeout: 30000 }, async () => {
  // Regression: the request future used to borrow the JS Client, which a terminating
  // worker frees at once (use-after-free: SIGSEGV/SIGABRT in about 1 run in 15).
  const code = `
    const { Worker } = require("worker_threads")
    const http = require("http")
    const server = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => setTimeout(() => res.end("{}"), Math.random() * 20))
    })
    server.listen(0, "127.0.0.1", async () => {
      const port = server.address().port
      const workerCode = \`
        const { workerData } = require("worker_threads")
        const Pusher = require(workerData.root)
        const p = new Pusher({ appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: workerData.port, timeout: 50 })
        setInterval(() => { for (let i = 0; i < 30; i++) p.trigger("c", "e", { i }).catch(() => {}) }, 1)
      \`
      for (let round = 0; round < 12; round++) {
        const workers = [0, 1, 2].map(() => new Worker(workerCode, { eval: true, workerData: { root: ${JSON.stringify(ROOT)}, port } }))
        await new Promise((r) => setTimeout(r, 30 + Math.random() * 60))
        await Promise.all(workers.map((w) => w.terminate()))
      }
      console.log("survived")
      server.close()
      server.closeAllConnections()
    })
  `
  const result = await runNode(code, { timeoutMs: 25000 })
  assert.equal(result.signal, null, result.stderr)
  assert.equal(result.code, 0, result.stderr)
  assert.equal(result.stdout.trim(), "survived")
})
