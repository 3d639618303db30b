"use strict"
// Secrets stay out of logs: no app secret or master key in any error (message, stack,
// String(), JSON, util.inspect — from validation errors and from failed requests), and
// `util.inspect(pusher)` / `console.log(pusher.config)` / JSON show them redacted while
// `config.token.secret` stays readable. Webhook signatures are checked on the Rust
// constant-time path.

const { test, describe } = require("node:test")
const assert = require("node:assert/strict")
const util = require("util")
const { Console } = require("console")
const { PassThrough } = require("stream")
const { WEB, Pusher, recordingServer } = require("./helpers")
const native = require("../lib/native")

const SECRET = "s3cr3t-APP-SECRET-7f9a2c"
const MASTER = Buffer.from("MASTER-KEY-bytes-0123456789abcde") // 32 bytes
const MASTER_B64 = MASTER.toString("base64")
const RAW_MASTER = "RAW-master-key-32-chars-long-xyz" // 32 chars
const NEEDLES = [SECRET, MASTER_B64, MASTER.toString("hex"), MASTER.toString("latin1"), RAW_MASTER, Buffer.from(SECRET).toString("hex")]
// how a Buffer prints in util.inspect: "<Buffer 4d 41 53 …>"
const MASTER_INSPECTED = util.inspect(MASTER).slice(8, 40)

function assertNoSecret(text, what) {
  for (const needle of [...NEEDLES, MASTER_INSPECTED]) {
    assert.ok(!String(text).includes(needle), `${what} contains a secret (${needle.slice(0, 12)}…):\n${String(text).slice(0, 600)}`)
  }
}

/** Every way an error ends up in a log, the cause chain included. */
function renderings(error) {
  const out = {
    message: error.message,
    stack: error.stack,
    string: String(error),
    json: JSON.stringify(error),
    inspect: util.inspect(error, { depth: Infinity }),
    inspectHidden: util.inspect(error, { depth: Infinity, showHidden: true }),
    format: util.format("%o %O %s %j", error, error, error, error),
    keys: JSON.stringify(Object.keys(error).map((k) => [k, String(error[k])])),
  }
  const cause = error.error || error.cause
  if (cause instanceof Error) {
    for (const [k, v] of Object.entries(renderings(cause))) out["cause." + k] = v
  }
  return out
}

function assertErrorClean(error, what) {
  assert.ok(error instanceof Error, what + " is an Error")
  for (const [k, v] of Object.entries(renderings(error))) assertNoSecret(v, `${what}: ${k}`)
}

function attempt(fn) {
  try {
    return { value: fn() }
  } catch (error) {
    return { error }
  }
}

function quiet(fn) {
  const real = console.warn
  console.warn = () => {}
  try {
    return fn()
  } finally {
    console.warn = real
  }
}

const options = (extra = {}) => ({ appId: "1", key: "key", secret: SECRET, encryptionMasterKeyBase64: MASTER_B64, ...extra })

describe("errors never carry the secret or the master key", () => {
  test("synchronous validation errors", () => {
    const p = new Pusher(options({ host: "127.0.0.1", port: 9 }))
    const circular = {}
    circular.self = circular
    const calls = [
      () => p.trigger("bad channel", "e", "d"),
      () => p.trigger("c", "e".repeat(201), "d"),
      () => p.trigger(["a", "private-encrypted-x"], "e", "d"),
      () => p.trigger("c", "e", circular),
      () => p.trigger("private-encrypted-x", "e", undefined),
      () => p.trigger("c", "e", "d", { socket_id: "x" }),
      () => p.sendToUser("", "e", "d"),
      () => p.terminateUserConnections(5),
      () => p.triggerBatch([{ name: "e" }]),
      () => p.get({ path: "/x", params: { auth_signature: "x" } }),
      () => p.post({ path: "/x", body: circular }),
      () => p.authorizeChannel("x", "c"),
      () => p.authorizeChannel("1.1", "#bad"),
      () => p.authenticateUser("1.1", null),
      () => p.authenticateUser("1.1", { id: 5 }),
      () => p.createSignedQueryString({ method: "GET", path: "/", params: { body_md5: 1 } }),
      () => p.createSignedQueryString({ path: "/" }),
      () => p.webhook({}),
      () => p.webhook({ headers: { "x-pusher-key": "key", "content-type": "application/json" }, rawBody: "{}" }).isValid(),
      () => p.webhook({ headers: {}, rawBody: "{" }).getData(),
      () => new Pusher(options()).channelSharedSecret(5),
      () => new Pusher({ appId: "1", key: "key", secret: SECRET }).authorizeChannel("1.1", "private-encrypted-x"),
      () => new Pusher({ appId: "1", key: "key", secret: SECRET }).trigger("private-encrypted-x", "e", "d"),
      () => new Pusher.Token("key", SECRET).verify("m", undefined),
      () => new Pusher.Token("key", SECRET).sign(undefined),
      () => new Pusher({ ...options(), timeout: 10n, host: "127.0.0.1", port: 9 }).get({ path: "/x" }),
    ]
    for (const call of calls) {
      const { error } = attempt(call)
      assert.ok(error, "throws: " + call)
      assertErrorClean(error, String(call))
    }
  })

  test("master-key configuration errors do not echo the key", () => {
    const bad = [
      { encryptionMasterKeyBase64: Buffer.concat([MASTER, Buffer.from("x")]).toString("base64") },
      { encryptionMasterKeyBase64: MASTER.subarray(0, 31).toString("base64") },
      { encryptionMasterKeyBase64: MASTER_B64.replace(/=+$/, "") },
      { encryptionMasterKeyBase64: "!" + MASTER_B64 },
      { encryptionMasterKey: RAW_MASTER + "!" },
      { encryptionMasterKey: RAW_MASTER.slice(1) },
      { encryptionMasterKey: RAW_MASTER, encryptionMasterKeyBase64: MASTER_B64 },
      { useTLS: true, encrypted: true, secret: SECRET },
    ]
    for (const extra of bad) {
      const { error } = quiet(() => attempt(() => new Pusher({ appId: "1", key: "key", secret: SECRET, ...extra })))
      assert.ok(error, util.inspect(extra))
      for (const [k, v] of Object.entries(renderings(error))) {
        // the longer/shorter variants contain most of the key: check the whole needles and their 16-char heads
        assertNoSecret(v, k)
        for (const needle of [MASTER_B64.slice(0, 16), RAW_MASTER.slice(1, 17)]) assert.ok(!v.includes(needle), `${k}: ${v}`)
      }
    }
  })

  test("a request to a closed port rejects with a clean RequestError", async () => {
    const p = new Pusher(options({ host: "127.0.0.1", port: 9 }))
    const caught = (promise) => promise.then(() => assert.fail("resolved"), (e) => e)
    const errors = await Promise.all([
      caught(p.trigger("c", "e", { a: 1 })),
      caught(p.get({ path: "/channels", params: { info: "x" } })),
      caught(p.terminateUserConnections("u")),
      caught(p.get({ path: "/x", body: { a: 1 } })),
    ])
    for (const error of errors) {
      assert.equal(error.name, "PusherRequestError")
      assert.equal(error.message, "Request failed with an error")
      assert.match(error.url, /auth_signature=[0-9a-f]{64}/, "the URL carries the signature only")
      assertErrorClean(error, "closed port")
    }
  })

  test("a 401 answer rejects with a clean RequestError", async () => {
    const server = await recordingServer({
      handler: (req, body, res) => {
        res.writeHead(401, { "content-type": "text/plain" })
        res.end("Invalid signature: you should have signed the string POST\n/apps/1/events\nauth_key=key")
      },
    })
    try {
      const p = new Pusher(options({ host: "127.0.0.1", port: server.port }))
      const caught = (promise) => promise.then(() => assert.fail("resolved"), (e) => e)
      const errors = await Promise.all([
        caught(p.trigger("c", "e", "d")),
        caught(p.get({ path: "/channels" })),
        caught(p.triggerBatch([{ channel: "private-encrypted-x", name: "e", data: { a: 1 } }])),
      ])
      for (const error of errors) {
        assert.equal(error.status, 401)
        assert.equal(error.message, "Unexpected status code 401")
        assertErrorClean(error, "401")
      }
      // nothing secret went over the wire either (the encrypted batch's master key included)
      for (const request of server.requests) assertNoSecret(request.url + "\n" + request.body + "\n" + JSON.stringify(request.headers), "request")
    } finally {
      await server.close()
    }
  })

  test("a timed-out request rejects with a clean RequestError", async () => {
    const server = await recordingServer({ handler: () => {} }) // never answers
    try {
      const p = new Pusher(options({ host: "127.0.0.1", port: server.port, timeout: 100 }))
      const error = await p.get({ path: "/channels" }).then(() => assert.fail("resolved"), (e) => e)
      assert.equal(error.message, "Request failed with an error")
      assertErrorClean(error, "timeout")
    } finally {
      await server.close()
    }
  })
})

describe("logging a Pusher shows secrets redacted", () => {
  const log = (...args) => {
    const stream = new PassThrough()
    const chunks = []
    stream.on("data", (c) => chunks.push(c))
    new Console({ stdout: stream, stderr: stream }).log(...args)
    return Buffer.concat(chunks).toString("utf8")
  }

  test("util.inspect and console.log of the instance, its config and its token", () => {
    const p = new Pusher(options())
    const outputs = {
      inspect: util.inspect(p),
      inspectDeep: util.inspect(p, { depth: Infinity, showHidden: true }),
      logConfig: log(p.config),
      logPusher: log(p),
      logFormat: log("%o %O %j", p, p.config, p),
      token: util.inspect(p.config.token),
      tokenLog: log(p.config.token),
      webhook: util.inspect(p.webhook({ headers: {}, rawBody: "" }), { depth: Infinity }),
    }
    for (const [what, text] of Object.entries(outputs)) {
      assertNoSecret(text, what)
      assert.match(text, /\[redacted\]/, what)
    }
    assert.match(outputs.logConfig, /secret: '\[redacted\]'/)
    assert.match(outputs.logConfig, /encryptionMasterKey: '\[redacted\]'/)
    assert.match(outputs.logConfig, /key: 'key'/)
  })

  test("JSON of the instance, its config and its token", () => {
    const p = new Pusher(options())
    for (const value of [p, p.config, p.config.token, { nested: [p.config] }]) {
      const json = JSON.stringify(value)
      assertNoSecret(json, "JSON")
      assert.match(json, /"secret":"\[redacted\]"/)
    }
    assert.deepStrictEqual(JSON.parse(JSON.stringify(p.config)), {
      scheme: "http",
      appId: "1",
      token: { key: "key", secret: "[redacted]" },
      encryptionMasterKey: "[redacted]",
      host: "api.pusherapp.com",
    })
  })

  test("the secret and the master key stay readable to code", () => {
    const p = new Pusher(options())
    assert.equal(p.config.token.secret, SECRET)
    assert.ok(Buffer.isBuffer(p.config.encryptionMasterKey))
    assert.ok(p.config.encryptionMasterKey.equals(MASTER))
    assert.deepStrictEqual(Object.keys(p.config.token), ["key", "secret"])
    const raw = quiet(() => new Pusher({ appId: "1", key: "key", secret: SECRET, encryptionMasterKey: RAW_MASTER }))
    assert.equal(raw.config.encryptionMasterKey.toString(), RAW_MASTER)
    assertNoSecret(util.inspect(raw), "raw master key instance")
  })
})

describe("webhook signatures", () => {
  const body = '{"time_ms":1403175510755,"events":[{"channel":"c","name":"channel_vacated"}]}'
  const p = new Pusher({ appId: "1", key: "key", secret: SECRET })
  const good = new Pusher.Token("key", SECRET).sign(body)
  const request = (signature, rawBody = body) => ({ headers: { "x-pusher-key": "key", "x-pusher-signature": signature, "content-type": "application/json" }, rawBody })

  test("are verified on the native constant-time path", { skip: WEB && "spies on the native addon" }, () => {
    const real = native.verifyHmacSha256Hex
    const seen = []
    native.verifyHmacSha256Hex = function (...args) {
      seen.push(args[2])
      return real.apply(this, args)
    }
    try {
      assert.equal(p.webhook(request(good)).isValid(), true)
      assert.equal(p.webhook(request(good, Buffer.from(body))).isValid(), true)
      assert.equal(p.verifyWebhook(request(good)).valid, true)
    } finally {
      native.verifyHmacSha256Hex = real
    }
    assert.deepStrictEqual(seen, [good, good, good])
  })

  test("every equal-length wrong signature is rejected", () => {
    const hex = "0123456789abcdef"
    let checked = 0
    for (let i = 0; i < good.length; i++) {
      for (const c of [hex[(hex.indexOf(good[i]) + 1) % 16], good[i].toUpperCase(), "g", "\0"]) {
        if (c === good[i]) continue
        const wrong = good.slice(0, i) + c + good.slice(i + 1)
        assert.equal(wrong.length, good.length)
        assert.equal(p.webhook(request(wrong)).isValid(), false, wrong)
        assert.equal(p.verifyWebhook(request(wrong)).reason, "invalid-signature")
        checked++
      }
    }
    assert.ok(checked >= 64 * 3)
    // the signature of another body, of another secret, and of the same body with a different key
    for (const wrong of [new Pusher.Token("key", SECRET).sign(body + " "), new Pusher.Token("key", SECRET + "x").sign(body), new Pusher.Token("key", SECRET.toUpperCase()).sign(body)]) {
      assert.equal(wrong.length, good.length)
      assert.equal(p.webhook(request(wrong)).isValid(), false)
    }
    assert.equal(p.webhook(request(good)).isValid(), true)
  })

  test("the body is what is signed: a one-byte change fails", () => {
    assert.equal(p.webhook(request(good, body.replace("vacated", "vacatee"))).isValid(), false)
    assert.equal(p.webhook(request(good, body + " ")).isValid(), false)
  })
})

describe("no header or request-line injection", () => {
  const net = require("net")
  const EVIL = "x\r\nX-Evil: 1\r\n\r\nGET /smuggled HTTP/1.1"

  /** A raw server that keeps each connection's bytes and answers 200 `{}`. */
  async function rawServer() {
    const heads = []
    const server = net.createServer((socket) => {
      let data = ""
      socket.on("data", (chunk) => {
        data += chunk.toString("latin1")
        const end = data.indexOf("\r\n\r\n")
        if (end < 0) return
        const length = Number((/\r\ncontent-length: *(\d+)/i.exec(data) || [0, 0])[1])
        if (data.length < end + 4 + length) return
        heads.push(data.slice(0, end))
        data = ""
        socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
      })
      socket.on("error", () => {})
    })
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
    return { heads, port: server.address().port, close: () => new Promise((r) => server.close(r)) }
  }

  test("CR/LF in paths, params, user ids and event names never reach the request head", async () => {
    const server = await rawServer()
    const p = new Pusher({ appId: "1", key: "key", secret: SECRET, host: "127.0.0.1", port: server.port })
    try {
      const calls = [
        () => p.get({ path: "/channels/" + EVIL }),
        () => p.get({ path: "/channels", params: { info: EVIL } }),
        () => p.get({ path: "/channels", params: { [EVIL]: "v" } }),
        () => p.post({ path: "/events" + EVIL, body: { name: "e", channels: ["c"], data: "{}" } }),
        () => p.terminateUserConnections(EVIL),
        () => p.sendToUser(EVIL, "e", "d"),
        () => p.trigger("c", EVIL, "d"),
        () => p.trigger("c", "e", EVIL, { socket_id: "1.1", info: EVIL }),
      ]
      for (const call of calls) {
        // Either an Error (sync or async) or a request whose head is intact.
        try {
          await call()
        } catch (e) {
          assert.ok(e instanceof Error)
        }
      }
      assert.ok(server.heads.length >= calls.length - 2, `only ${server.heads.length} requests arrived`)
      for (const head of server.heads) {
        const lines = head.split("\r\n")
        assert.match(lines[0], /^(GET|POST) \S+ HTTP\/1\.1$/, lines[0])
        assert.ok(!lines.some((l) => /^x-evil/i.test(l)), head)
        assert.ok(!head.includes("/smuggled HTTP"), head)
      }
    } finally {
      await server.close()
    }
  })
})
