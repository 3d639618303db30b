"use strict"
// What this library throws itself carries a code (PUSHER_INVALID_OPTION,
// PUSHER_LIMIT_EXCEEDED, PUSHER_INVALID_QUERY), and nothing set by the caller is
// silently ignored: an unusable `ca`, `proxy` or PUSHER_NATIVE_TRANSPORT is refused by
// the constructor, an unusable `maxAgeMs` by verifyWebhook; `pusher`'s own checks keep
// its plain Errors. A proxy that cannot be reached is named in the reason.
const test = require("node:test")
const assert = require("node:assert/strict")
const crypto = require("node:crypto")
const path = require("node:path")
const { HttpProxyAgent } = require("http-proxy-agent")
const { HttpsProxyAgent } = require("https-proxy-agent")
const { Pusher, Upstream, recordingServer, pusherFor, closedPort, within, settled, runNode } = require("./helpers")

const ROOT = path.join(__dirname, "..")
const BASE = { appId: "1", key: "key", secret: "secret" }
const BROKEN_PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"

/** The error `fn` throws (failing if it does not). */
function thrown(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail("expected a throw")
}

test("an invalid `ca` is refused by the constructor, with PUSHER_INVALID_OPTION", () => {
  for (const ca of ["not a certificate", Buffer.from("junk"), [BROKEN_PEM], 42, [{}]]) {
    const e = thrown(() => new Pusher({ ...BASE, ca }))
    assert.equal(e.code, "PUSHER_INVALID_OPTION", String(ca))
    assert.match(e.message, /^Invalid ca option\b/)
  }
  assert.match(thrown(() => new Pusher({ ...BASE, ca: BROKEN_PEM })).message, /certificate 1 cannot be read/)
  assert.match(thrown(() => new Pusher({ ...BASE, ca: "junk" })).message, /no PEM certificate/)
  // Unset is fine, as before.
  for (const ca of [undefined, null]) new Pusher({ ...BASE, ca })
})

test("a proxy that cannot be used is refused; pusher's README placeholder is still ignored", async () => {
  for (const proxy of ["socks5://user:pass@127.0.0.1:1080", "127.0.0.1:3128", "proxy.example.com:3128", "ftp://proxy:21", 3128, {}]) {
    const e = thrown(() => new Pusher({ ...BASE, proxy }))
    assert.equal(e.code, "PUSHER_INVALID_OPTION", String(proxy))
    assert.match(e.message, /proxy/)
    assert.doesNotMatch(e.message, /pass/, "no credentials in the message")
  }
  assert.match(thrown(() => new Pusher({ ...BASE, proxy: "127.0.0.1:3128" })).message, /"http:\/\/127\.0\.0\.1:3128"/)
  assert.match(thrown(() => new Pusher({ ...BASE, proxy: "socks5://h:1080" })).message, /only http:\/\/ and https:\/\//)
  // The placeholder (and an unset proxy) sends directly, as `pusher` does.
  const server = await recordingServer()
  try {
    for (const proxy of ["HTTP_PROXY_URL", "", undefined, null]) {
      const res = await within(pusherFor(server, { proxy }).trigger("c", "e", {}), 5000)
      assert.equal(res.status, 200)
    }
    assert.equal(server.requests.length, 4)
  } finally {
    await server.close()
  }
})

test("an agent whose proxy cannot be used (socks) is refused; http(s) proxy agents and plain agents are accepted", () => {
  const socksLike = Object.assign(new (require("node:http").Agent)(), { proxy: { host: "127.0.0.1", port: 1080, type: 5 } })
  const e = thrown(() => new Pusher({ ...BASE, agent: socksLike }))
  assert.equal(e.code, "PUSHER_INVALID_OPTION")
  assert.match(e.message, /socks5/)
  const socksUrl = Object.assign(new (require("node:http").Agent)(), { proxy: new URL("socks5://u:secret@127.0.0.1:1080") })
  assert.doesNotMatch(thrown(() => new Pusher({ ...BASE, agent: socksUrl })).message, /secret/)
  for (const agent of [new HttpProxyAgent("http://127.0.0.1:3128"), new HttpsProxyAgent("http://127.0.0.1:3128"), new (require("node:https").Agent)()]) {
    new Pusher({ ...BASE, agent })
  }
})

test("PUSHER_NATIVE_TRANSPORT with an unknown value is refused, not ignored", async () => {
  const code = `
    const Pusher = require(${JSON.stringify(ROOT)})
    try {
      new Pusher({ appId: "1", key: "k", secret: "s" })
      console.log(JSON.stringify({ ok: true }))
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, message: e.message }))
    }`
  const bogus = await runNode(code, { env: { PUSHER_NATIVE_TRANSPORT: "event-loop" } })
  const refused = JSON.parse(bogus.stdout)
  assert.equal(refused.code, "PUSHER_INVALID_OPTION")
  assert.match(refused.message, /PUSHER_NATIVE_TRANSPORT="event-loop".*"tokio"/)
  for (const value of ["tokio", ""]) {
    const fine = await runNode(code, { env: { PUSHER_NATIVE_TRANSPORT: value } })
    assert.deepEqual(JSON.parse(fine.stdout), { ok: true }, value)
  }
})

test("limits: what they refuse carries PUSHER_LIMIT_EXCEEDED; pusher's own channel limit keeps its plain Error", () => {
  const limited = new Pusher({ ...BASE, limits: { eventBytes: 10, batchSize: 2, channels: 3 } })
  const cases = [
    () => limited.trigger("c", "e", "x".repeat(11)),
    () => limited.triggerBatch([{ channel: "a", name: "e", data: 1 }, { channel: "b", name: "e", data: 2 }, { channel: "c", name: "e", data: 3 }]),
    () => limited.trigger(["a", "b", "c", "d"], "e", {}),
  ]
  for (const fn of cases) {
    const e = thrown(fn)
    assert.equal(e.code, "PUSHER_LIMIT_EXCEEDED", e.message)
  }
  const channels = Array.from({ length: 101 }, (_, i) => "c" + i)
  const ours = thrown(() => new Pusher(BASE).trigger(channels, "e", {}))
  const theirs = thrown(() => new Upstream(BASE).trigger(channels, "e", {}))
  assert.equal(ours.message, theirs.message)
  assert.equal(ours.code, undefined)
  assert.deepEqual(Object.keys(ours), Object.keys(theirs))
})

test("typed queries: what they refuse carries PUSHER_INVALID_QUERY", () => {
  const pusher = new Pusher(BASE)
  const cases = [
    () => pusher.channels({ info: "bogus" }),
    () => pusher.channels({ info: "user_count" }),
    () => pusher.channels({ filterByPrefix: "bad prefix" }),
    () => pusher.channels({ nope: 1 }),
    () => pusher.channels("presence-"),
    () => pusher.channel("bad name!"),
    () => pusher.channel("public", { info: "user_count" }),
    () => pusher.users("public"),
    () => pusher.users(""),
  ]
  for (const fn of cases) {
    const e = thrown(fn)
    assert.equal(e.code, "PUSHER_INVALID_QUERY", e.message)
  }
  // The channel-name message stays pusher's.
  assert.equal(thrown(() => pusher.channel("bad name!")).message, "Invalid channel name: 'bad name!'")
})

test("verifyWebhook: an unusable maxAgeMs throws; a null request is `invalid-request`", () => {
  const pusher = new Pusher(BASE)
  const body = JSON.stringify({ time_ms: Date.now(), events: [] })
  const signature = crypto.createHmac("sha256", BASE.secret).update(body).digest("hex")
  const request = { headers: { "x-pusher-key": BASE.key, "x-pusher-signature": signature, "content-type": "application/json" }, rawBody: body }
  for (const maxAgeMs of ["abc", "60000", -1, NaN, {}, true]) {
    const e = thrown(() => pusher.verifyWebhook(request, { maxAgeMs }))
    assert.equal(e.code, "PUSHER_INVALID_OPTION", String(maxAgeMs))
    assert.match(e.message, /maxAgeMs/)
  }
  assert.equal(thrown(() => pusher.verifyWebhook(request, { maxAgeMs: -1 })).name, "RangeError")
  for (const maxAgeMs of [60000, 0.5e9, Infinity, undefined, null]) {
    assert.equal(pusher.verifyWebhook(request, { maxAgeMs }).valid, true, String(maxAgeMs))
  }
  for (const bad of [null, undefined, 42, "request"]) {
    assert.equal(pusher.verifyWebhook(bad).reason, "invalid-request", String(bad))
  }
})

test("a proxy that refuses the connection is named in the reason, as with pusher and a proxy agent", { timeout: 20000 }, async () => {
  const proxyPort = await closedPort()
  const proxy = `http://127.0.0.1:${proxyPort}`
  for (const useTLS of [false, true]) {
    const options = { ...BASE, host: "api.example.com", port: 8080, useTLS }
    const agent = useTLS ? new HttpsProxyAgent(proxy) : new HttpProxyAgent(proxy)
    const theirs = (await settled(new Upstream({ ...options, agent }).trigger("c", "e", {}))).error
    for (const via of [{ proxy }, { agent }]) {
      const ours = (await within(settled(new Pusher({ ...options, ...via }).trigger("c", "e", {})), 10000)).error
      assert.equal(ours.error.code, "ECONNREFUSED")
      const reason = (e) => e.error.message.replace(/^request to .* failed, reason: /, "")
      assert.equal(reason(ours), `connect ECONNREFUSED 127.0.0.1:${proxyPort}`)
      assert.equal(reason(ours), reason(theirs))
    }
  }
})
