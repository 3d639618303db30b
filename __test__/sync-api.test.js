"use strict"
// The synchronous API, differentially against the real `pusher` 5.3.4 (`Upstream`):
// every call runs on both libraries and must return equal values or throw the same
// error (constructor name and message). Requests never leave the process: instances
// point at a closed local port, and where a body matters `post` is stubbed (both
// libraries dispatch through `this.post`, as upstream's tests rely on).

const { test, describe } = require("node:test")
const assert = require("node:assert/strict")
const crypto = require("crypto")
const util = require("util")
const nacl = require("tweetnacl")
const { Pusher, Upstream, atTime, recordingServer } = require("./helpers")

const DEAD = { host: "127.0.0.1", port: 9 }
const BASE = { appId: "1", key: "key", secret: "secret", ...DEAD }
const KEY_B64 = "zyrm8pvV2C9fJcBfhyXzvxbJVN/H7QLmbe0xJi1GhPU="
const NODE_KEY_TYPE_ERROR =
  'The "key" argument must be of type string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject, or CryptoKey. Received undefined'

// ---- helpers ----

function attempt(fn) {
  try {
    return { value: fn() }
  } catch (error) {
    return { error }
  }
}

/** Runs `fn` with console.warn captured; returns { result, warnings }. */
function withWarnings(fn) {
  const warnings = []
  const real = console.warn
  console.warn = (...args) => warnings.push(args.join(" "))
  try {
    return { result: fn(), warnings }
  } finally {
    console.warn = real
  }
}

/** A returned promise is handled and shown as "promise". */
function settled(value) {
  if (value && typeof value.then === "function") {
    value.then(
      () => {},
      () => {}
    )
    return "promise"
  }
  return value
}

/**
 * Runs `fn(Impl)` on both libraries: both must throw the same (constructor name and
 * message) or both return values equal after `view`. console.warn output must match.
 * Returns pusher-native's value or error.
 */
function same(fn, view = (v) => v) {
  const ours = withWarnings(() => attempt(() => fn(Pusher)))
  const theirs = withWarnings(() => attempt(() => fn(Upstream)))
  assert.deepStrictEqual(ours.warnings, theirs.warnings, "console.warn output")
  if (theirs.result.error) {
    const expected = theirs.result.error
    assert.ok(ours.result.error, `upstream threw "${expected.message}", pusher-native returned ${util.inspect(ours.result.value)}`)
    assert.equal(ours.result.error.constructor.name, expected.constructor.name, "error constructor")
    assert.equal(ours.result.error.message, expected.message, "error message")
    return ours.result.error
  }
  if (ours.result.error) throw ours.result.error
  assert.deepStrictEqual(view(ours.result.value), view(theirs.result.value))
  return ours.result.value
}

/** Like `same`, and the error must be `type` with exactly `message`. */
function sameThrow(fn, message, type = Error) {
  const error = same(fn)
  assert.ok(error instanceof Error, "expected a synchronous throw, got " + util.inspect(error))
  assert.equal(error.constructor, type)
  assert.equal(error.message, message)
  return error
}

/** The observable shape of `pusher.config`. */
function configView(pusher) {
  const c = pusher.config
  const inherited = []
  for (const k in c) if (!Object.prototype.hasOwnProperty.call(c, k)) inherited.push(k)
  return {
    keys: Object.keys(c),
    inherited,
    scheme: c.scheme,
    host: c.host,
    port: c.port,
    appId: c.appId,
    key: c.token.key,
    secret: c.token.secret,
    timeout: c.timeout,
    agent: c.agent,
    masterKey: Buffer.isBuffer(c.encryptionMasterKey) ? "Buffer:" + c.encryptionMasterKey.toString("hex") : c.encryptionMasterKey,
    baseURL: c.getBaseURL(),
    prefixed: c.prefixPath("/channels"),
  }
}

/** Stubs `pusher.post`; returns the list of options it was called with. */
function stubPost(pusher) {
  const calls = []
  pusher.post = function (options) {
    calls.push(options)
    return Promise.resolve("stubbed")
  }
  return calls
}

function open(data, channel, base64Key) {
  const { nonce, ciphertext } = JSON.parse(data)
  const key = crypto.createHash("sha256").update(Buffer.concat([Buffer.from(channel), Buffer.from(base64Key, "base64")])).digest()
  const plain = nacl.secretbox.open(Buffer.from(ciphertext, "base64"), Buffer.from(nonce, "base64"), key)
  assert.ok(plain, "the sealed data open with the channel key")
  return Buffer.from(plain).toString("utf8")
}

// ---- exports ----

describe("exports", () => {
  test("the statics and prototype methods are upstream's, in upstream's order", () => {
    assert.deepStrictEqual(Object.keys(Pusher), Object.keys(Upstream))
    assert.deepStrictEqual(Object.keys(Pusher), ["forURL", "forCluster", "Token", "RequestError", "WebHookError"])
    assert.deepStrictEqual(Object.keys(Pusher.prototype), Object.keys(Upstream.prototype))
    assert.deepStrictEqual(Object.keys(Pusher.prototype), [
      "authorizeChannel",
      "authenticate",
      "authenticateUser",
      "sendToUser",
      "terminateUserConnections",
      "trigger",
      "triggerBatch",
      "post",
      "get",
      "webhook",
      "createSignedQueryString",
      "channelSharedSecret",
    ])
  })

  test("authenticate is the same function as authorizeChannel; WebHook is not exported", () => {
    assert.equal(Pusher.prototype.authenticate, Pusher.prototype.authorizeChannel)
    assert.equal(Pusher.WebHook, undefined)
    assert.equal(Upstream.WebHook, undefined)
    assert.equal(typeof Pusher, "function")
    assert.equal(typeof Pusher.Token, "function")
  })

  test("the instance's own keys are upstream's", () => {
    same((I) => Object.keys(new I(BASE)))
  })
})

// ---- constructor and config ----

describe("constructor", () => {
  test("new Pusher() throws upstream's TypeError; null too; {} and primitives are accepted", () => {
    sameThrow((I) => new I(), "Cannot read properties of undefined (reading 'host')", TypeError)
    sameThrow((I) => new I(null), "Cannot read properties of null (reading 'host')", TypeError)
    for (const options of [{}, 0, "", false, 5, "str", []]) same((I) => new I(options), configView)
  })

  test("new Pusher({}) has upstream's defaults", () => {
    same((I) => new I({}), configView)
    const c = new Pusher({}).config
    assert.equal(c.scheme, "http")
    assert.equal(c.host, "api.pusherapp.com")
    assert.equal(c.port, undefined)
    assert.equal(c.timeout, undefined)
    assert.deepStrictEqual(Object.keys(c), ["scheme", "port", "appId", "token", "timeout", "agent", "host"])
  })

  const agent = new (require("http").Agent)()
  const optionSets = [
    { appId: 123, key: "k", secret: "s" },
    { appId: "abc", key: 5, secret: Buffer.from("s") },
    { useTLS: true },
    { useTLS: false },
    { useTLS: "false" },
    { useTLS: 0 },
    { useTLS: 1 },
    { useTLS: null },
    { scheme: "ftp" },
    { scheme: "https", useTLS: false },
    { scheme: "", useTLS: true },
    { host: "example.com" },
    { cluster: "eu" },
    { host: "example.com", cluster: "eu" },
    { host: "", cluster: "ap1" },
    { host: "https://with-scheme.example.com" },
    { port: 8080 },
    { port: "8080" },
    { port: 0 },
    { port: "" },
    { port: 443, useTLS: true, host: "h" },
    { timeout: 5000 },
    { timeout: 0 },
    { agent },
    { proxy: "http://ignored-by-upstream" },
    { keepAlive: true, url: "http://k:s@h/apps/1" },
    { encryptionMasterKeyBase64: KEY_B64 },
    { encryptionMasterKeyBase64: Buffer.alloc(32).toString("base64") },
  ]
  for (const options of optionSets) {
    test("config for " + util.inspect(options, { breakLength: Infinity }), () => {
      same((I) => new I({ appId: "1", key: "k", secret: "s", ...options }), configView)
    })
  }

  test("useTLS and encrypted together throw, whatever their values", () => {
    const message = "Cannot set both `useTLS` and `encrypted` configuration options"
    for (const [useTLS, encrypted] of [
      [true, true],
      [false, false],
      [null, false],
      [true, null],
      [0, 1],
    ]) {
      sameThrow((I) => new I({ useTLS, encrypted }), message)
    }
  })

  test("encrypted is a deprecated alias that warns on every construction", () => {
    for (const encrypted of [true, false, "yes", 0]) {
      const { result, warnings } = withWarnings(() => new Pusher({ encrypted }))
      assert.deepStrictEqual(warnings, ["`encrypted` option is deprecated in favor of `useTLS`"])
      assert.equal(result.config.scheme, encrypted ? "https" : "http")
      same((I) => new I({ encrypted }), configView) // also compares the warnings
    }
    const { warnings } = withWarnings(() => {
      new Pusher({ encrypted: true })
      new Pusher({ encrypted: true })
      new Pusher({ useTLS: true })
    })
    assert.equal(warnings.length, 2)
  })

  test("encryptionMasterKeyBase64 errors", () => {
    sameThrow((I) => new I({ encryptionMasterKeyBase64: 5 }), "encryptionMasterKeyBase64 must be a string")
    sameThrow((I) => new I({ encryptionMasterKeyBase64: null }), "encryptionMasterKeyBase64 must be a string")
    sameThrow((I) => new I({ encryptionMasterKeyBase64: Buffer.from(KEY_B64) }), "encryptionMasterKeyBase64 must be a string")
    for (const bad of ["not base64!", KEY_B64.replace(/=$/, ""), "-_" + KEY_B64.slice(2), KEY_B64 + "\n", " " + KEY_B64, "a"]) {
      sameThrow((I) => new I({ encryptionMasterKeyBase64: bad }), "encryptionMasterKeyBase64 must be valid base64")
    }
    const cases = [
      ["", 0],
      [Buffer.alloc(31, 1).toString("base64"), 31],
      [Buffer.alloc(33, 1).toString("base64"), 33],
      ["QQ==", 1],
    ]
    for (const [key, n] of cases) {
      const e = sameThrow(
        (I) => new I({ encryptionMasterKeyBase64: key }),
        `encryptionMasterKeyBase64 must decode to 32 bytes, but the provided key decodes to ${n} bytes`
      )
      if (key) assert.ok(!e.message.includes(key), "the key is not echoed")
    }
  })

  test("encryptionMasterKey (deprecated): warning first, then checks counting UTF-16 units", () => {
    const warning = "`encryptionMasterKey` option is deprecated in favor of `encryptionMasterKeyBase64`"
    sameThrow(
      (I) => new I({ encryptionMasterKey: "k".repeat(32), encryptionMasterKeyBase64: KEY_B64 }),
      "Do not specify both encryptionMasterKey and encryptionMasterKeyBase64. encryptionMasterKey is deprecated, please specify only encryptionMasterKeyBase64."
    )
    for (const bad of [5, null, Buffer.alloc(32), ["k"]]) {
      const { warnings } = withWarnings(() => attempt(() => new Pusher({ encryptionMasterKey: bad })))
      assert.deepStrictEqual(warnings, [warning])
      sameThrow((I) => new I({ encryptionMasterKey: bad }), "encryptionMasterKey must be a string")
    }
    for (const key of ["", "short", "k".repeat(31), "k".repeat(33), "😀".repeat(16) + "x"]) {
      const e = sameThrow(
        (I) => new I({ encryptionMasterKey: key }),
        `encryptionMasterKey must be 32 bytes long, but the provided key is ${key.length} bytes long`
      )
      if (key.length > 3) assert.ok(!e.message.includes(key), "the key is not echoed")
    }
    // 32 × "é" is 32 UTF-16 units but 64 bytes: accepted, as a 64-byte key
    const { result, warnings } = withWarnings(() => new Pusher({ encryptionMasterKey: "é".repeat(32) }))
    assert.deepStrictEqual(warnings, [warning])
    assert.ok(Buffer.isBuffer(result.config.encryptionMasterKey))
    assert.equal(result.config.encryptionMasterKey.length, 64)
    assert.equal(result.config.encryptionMasterKey.toString(), "é".repeat(32))
    same((I) => new I({ encryptionMasterKey: "é".repeat(32) }), configView)
    same((I) => new I({ encryptionMasterKey: "k".repeat(32) }), configView)
    same((I) => new I({ encryptionMasterKey: "😀".repeat(16) }), configView)
  })

  test("config.encryptionMasterKey is a Buffer of the decoded key", () => {
    const c = new Pusher({ encryptionMasterKeyBase64: KEY_B64 }).config
    assert.ok(Buffer.isBuffer(c.encryptionMasterKey))
    assert.equal(c.encryptionMasterKey.toString("base64"), KEY_B64)
    const raw = withWarnings(() => new Pusher({ encryptionMasterKey: "a".repeat(32) })).result.config.encryptionMasterKey
    assert.ok(Buffer.isBuffer(raw))
    assert.equal(raw.toString(), "a".repeat(32))
  })

  test("prefixPath and getBaseURL", () => {
    const p = new Pusher({ appId: 42, host: "h.example", port: 8443, useTLS: true })
    assert.equal(p.config.prefixPath("/events"), "/apps/42/events")
    assert.equal(p.config.getBaseURL(), "https://h.example:8443")
    same((I) => {
      const c = new I({ appId: undefined, scheme: "x" }).config
      return [c.prefixPath(undefined), c.prefixPath("/a b"), c.getBaseURL()]
    })
  })
})

describe("forURL", () => {
  test("reads scheme, credentials, host, port and appId from the URL", () => {
    const p = Pusher.forURL("https://key:secret@api-eu.pusher.com/apps/4444")
    assert.deepStrictEqual(
      [p.config.scheme, p.config.token.key, p.config.token.secret, p.config.host, p.config.port, p.config.appId],
      ["https", "key", "secret", "api-eu.pusher.com", undefined, 4444]
    )
    same((I) => I.forURL("https://key:secret@api-eu.pusher.com/apps/4444"), configView)
  })

  test("credentials are percent-decoded (before the split on ':', as url.parse does)", () => {
    const p = same((I) => I.forURL("http://k%40y:s%2Fx@host/apps/1"), configView)
    assert.equal(p.config.token.key, "k@y")
    assert.equal(p.config.token.secret, "s/x")
    const colon = same((I) => I.forURL("http://k:s%3Ax@host/apps/1"), configView)
    assert.equal(colon.config.token.secret, "s")
    sameThrow((I) => I.forURL("http://k%zz:s@host/apps/1"), "URI malformed", URIError)
  })

  test("URL fields override the options; other options are kept", () => {
    const options = { key: "opt-key", secret: "opt-secret", host: "opt-host", appId: 9, port: 1, scheme: "ftp", timeout: 1234 }
    const p = same((I) => I.forURL("http://k:s@host/apps/2", options), configView)
    assert.deepStrictEqual([p.config.token.key, p.config.host, p.config.appId, p.config.port, p.config.scheme, p.config.timeout], ["k", "host", 2, undefined, "http", 1234])
  })

  test("appId is parseInt of the last path segment", () => {
    for (const [path, appId] of [
      ["/apps/12a", 12],
      ["/apps/abc", NaN],
      ["/apps/1/", NaN],
      ["/apps/0012", 12],
      ["", NaN],
      ["/x/y/77", 77],
    ]) {
      const p = same((I) => I.forURL("http://k:s@host" + path), configView)
      assert.ok(Object.is(p.config.appId, appId), path)
    }
  })

  test("the port is kept as written, even the scheme's default", () => {
    for (const [url, port] of [
      ["http://k:s@host:80/apps/1", 80],
      ["https://k:s@host:443/apps/1", 443],
      ["http://k:s@host:8080/apps/1", 8080],
      ["http://k:s@host:0/apps/1", undefined],
      ["http://k:s@host/apps/1", undefined],
      ["http://k:s@[::1]:4000/apps/1", 4000],
    ]) {
      const p = same((I) => I.forURL(url), configView)
      assert.equal(p.config.port, port, url)
    }
  })

  test("a URL without credentials, or not a string, throws upstream's TypeError", () => {
    sameThrow((I) => I.forURL("http://host/apps/1"), "Cannot read properties of null (reading 'split')", TypeError)
    sameThrow((I) => I.forURL(""), "Cannot read properties of null (reading 'split')", TypeError)
    for (const bad of [undefined, null, 5, {}, ["http://k:s@h/apps/1"]]) {
      const e = same((I) => I.forURL(bad))
      assert.ok(e instanceof TypeError)
    }
  })

  test("odd URLs parse exactly as upstream's url.parse", () => {
    for (const url of [
      " http://k:s@host/apps/1 ",
      "HTTP://K:S@HOST/apps/1",
      "http://k:s@@host/apps/1",
      "http://k@host/apps/1",
      "http://k:s:t@host/apps/1",
      "http://k:s@host/apps/1?x=1#f",
      "http://k:s@host\\apps\\1",
      "http://k:s@ho st/apps/1",
      "http://k:s@ho\0st/apps/1",
      "http://k:s@host:99999/apps/1",
      "http://k:s@hé.example/apps/1",
      "k:s@host/apps/1",
      "//k:s@host/apps/1",
      "mailto:k:s@host",
      "http://host/a@b/apps/1",
    ]) {
      same((I) => I.forURL(url), configView)
    }
  })
})

describe("forCluster", () => {
  test("host is api-<cluster>.pusher.com and overrides host and cluster options", () => {
    const p = same((I) => I.forCluster("eu", { appId: 1, key: "k", secret: "s", host: "other", cluster: "us2", timeout: 5 }), configView)
    assert.equal(p.config.host, "api-eu.pusher.com")
    assert.equal(p.config.timeout, 5)
    same((I) => I.forCluster("ap1"), configView)
    same((I) => I.forCluster(undefined, null), configView)
    same((I) => I.forCluster({}, { useTLS: true }), configView)
    sameThrow((I) => I.forCluster(Symbol("x")), "Cannot convert a Symbol value to a string", TypeError)
  })
})

// ---- authorization ----

describe("authorizeChannel / authenticateUser", () => {
  const p = (I, options = {}) => new I({ appId: 1, key: "aaaa", secret: "tofu", ...options })

  test("results equal upstream's, key order included", () => {
    const cases = [
      ["123.456", "test", undefined],
      ["123.456", "private-x", { foo: "bar" }],
      ["1.1", "presence-x", { user_id: 10, user_info: { name: "Mr. Channels" } }],
      ["1.1", "presence-x", { user_id: "é😀", user_info: [1, null, "\u2028"] }],
      ["1.1", "private-x", 0],
      ["1.1", "private-x", ""],
      ["1.1", "private-x", false],
      ["1.1", "private-x", "text"],
      ["1.1", "private-x", 5],
      ["1.1", "private-x", () => 1],
      ["1.1", "private-x", { toJSON: () => "custom" }],
      ["1.1", "a".repeat(200), undefined],
      ["1.1", "A-z_0=9@,.;", undefined],
    ]
    for (const [socketId, channel, data] of cases) {
      const result = same((I) => p(I).authorizeChannel(socketId, channel, data), (r) => JSON.stringify(r) + "|" + Object.keys(r))
      if (data) assert.deepStrictEqual(Object.keys(result).slice(0, 2), ["channel_data", "auth"])
      else assert.deepStrictEqual(Object.keys(result), ["auth"])
    }
  })

  test("the encrypted channel adds shared_secret last; without a key it throws", () => {
    const r = same((I) => p(I, { encryptionMasterKeyBase64: KEY_B64 }).authorizeChannel("1.1", "private-encrypted-bla", { a: 1 }), (r) => JSON.stringify(r))
    assert.deepStrictEqual(Object.keys(r), ["channel_data", "auth", "shared_secret"])
    assert.equal(r.shared_secret, "nlr49ISQHz91yS3cy/yWmW8wFMNeTnNL5tNHnbPJcLQ=")
    sameThrow((I) => p(I).authorizeChannel("1.1", "private-encrypted-bla"), "Cannot generate shared_secret because encryptionMasterKey is not set")
  })

  test("socket id, then channel, are validated with upstream's messages", () => {
    for (const socketId of ["", "1", "1.", ".1", "a.1", "1.1\n", " 1.1", "1.1.1", "1,1", 1.1, null, undefined, {}, ["1.1"]]) {
      sameThrow((I) => p(I).authorizeChannel(socketId, "bad channel"), "Invalid socket id: '" + socketId + "'")
    }
    for (const channel of ["", "a b", "#server-to-user-1", "é", "a:b", "a\n", 123, null, undefined, ["c"], {}]) {
      sameThrow((I) => p(I).authorizeChannel("1.1", channel), "Invalid channel name: '" + channel + "'")
    }
    sameThrow((I) => p(I).authorizeChannel("1.1", "a".repeat(201)), "Channel name too long: '" + "a".repeat(201) + "'")
    sameThrow((I) => p(I).authorizeChannel("1.1", Symbol("s")), "Cannot convert a Symbol value to a string", TypeError)
  })

  test("a missing secret throws Node's TypeError at signing time", () => {
    sameThrow((I) => new I({ key: "k" }).authorizeChannel("1.1", "c"), NODE_KEY_TYPE_ERROR, TypeError)
    sameThrow((I) => new I({ key: "k" }).authenticateUser("1.1", { id: "u" }), NODE_KEY_TYPE_ERROR, TypeError)
  })

  test("authenticateUser serializes the whole user object", () => {
    for (const user of [
      { id: "45678" },
      { id: "1", user_info: { name: "n" }, watchlist: ["a", "b"], extra: [1, { deep: true }] },
      { id: "é😀", toJSON: undefined },
      Object.assign(Object.create({ inherited: 1 }), { id: "x" }),
    ]) {
      same((I) => p(I).authenticateUser("1.1", user), (r) => JSON.stringify(r) + "|" + Object.keys(r))
    }
  })

  test("authenticateUser validation messages", () => {
    for (const data of [null, undefined, "str", 5, true]) {
      sameThrow((I) => p(I).authenticateUser("1.1", data), "Invalid user data: '" + data + "'")
    }
    for (const data of [[], {}, { id: 5 }, { id: "" }, { id: null }, Object.create(null)]) {
      sameThrow((I) => p(I).authenticateUser("1.1", data), "Invalid user id: '" + data.id + "'")
    }
    sameThrow((I) => p(I).authenticateUser("x", { id: "1" }), "Invalid socket id: 'x'")
    sameThrow((I) => p(I).authenticateUser("1.1", { id: 10n }), "Invalid user id: '10'")
    sameThrow((I) => p(I).authenticateUser("1.1", { id: "1", n: 10n }), "Do not know how to serialize a BigInt", TypeError)
  })
})

describe("channelSharedSecret", () => {
  test("SHA-256 of channel and master key, as a 32-byte Buffer", () => {
    const secret = same((I) => new I({ encryptionMasterKeyBase64: KEY_B64 }).channelSharedSecret("private-encrypted-bla"), (b) => b.toString("hex"))
    assert.ok(Buffer.isBuffer(secret))
    assert.equal(secret.toString("base64"), "nlr49ISQHz91yS3cy/yWmW8wFMNeTnNL5tNHnbPJcLQ=")
    for (const channel of ["", "é😀", "\uD800", ["a"], Buffer.from("b")]) {
      same((I) => new I({ encryptionMasterKeyBase64: KEY_B64 }).channelSharedSecret(channel), (b) => b.toString("hex"))
    }
  })

  test("without a key, or for a non-bufferable channel, Node's TypeErrors", () => {
    // Node's own message, which changes with the version (Node 24 names the argument): live
    const noKey = same((I) => new I({}).channelSharedSecret("c"))
    assert.ok(noKey instanceof TypeError)
    for (const channel of [5, undefined, null, Symbol("s")]) {
      const e = same((I) => new I({ encryptionMasterKeyBase64: KEY_B64 }).channelSharedSecret(channel))
      assert.ok(e instanceof TypeError)
    }
  })
})

// ---- createSignedQueryString ----

describe("createSignedQueryString", () => {
  const p = (I, options = {}) => new I({ appId: 1, key: "f00d", secret: "tofu", ...options })
  const at = (fn) => atTime(1234567890000, fn)

  test("equals upstream's for many requests", () => {
    const requests = [
      { method: "GET", path: "/event", body: "example body" },
      { method: "post", path: "/apps/1/events", params: { info: "user_count,subscription_count" } },
      { method: "Get", path: "/x", params: { Zeta: 1, alpha: 2, info: "a b", c: "d&e=f", arr: ["a", "b"], n: null, u: undefined, o: {} } },
      { method: "GET", path: "/x", params: { "\uFF5E": 1, "😀": 2, 10: "ten", 2: "two" } },
      { method: "GET", path: "/x\uD800", params: { "\uDC00": "\uD800" }, body: "\uD800" },
      { method: "GET", path: undefined },
      { method: "GET", path: null, body: "" },
      { method: "GET", path: { toString: () => "/str" }, body: 0 },
      { method: "GET", path: ["/a", "b"] },
      { method: "GET", path: "/", body: Buffer.from([0, 255]) },
      { method: "GET", path: "/", body: new Uint16Array([1, 300]) },
      { method: "GET", path: "/", params: "xyz" },
      { method: "GET", path: "/", params: ["a", "b"] },
      { method: "GET", path: "/", params: Object.create({ inherited: 1 }) },
    ]
    for (const request of requests) at(() => same((I) => p(I).createSignedQueryString(request)))
  })

  test("the documented vectors", () => {
    const q = at(() => p(Pusher).createSignedQueryString({ method: "GET", path: "/event", body: "example body" }))
    assert.equal(
      q,
      "auth_key=f00d&auth_timestamp=1234567890&auth_version=1.0&body_md5=165d5e6d7ca8f73b3853ce45addf42fc&auth_signature=a650196dc427ebe837226f8565ca9232198c6d1b9455eaa72374a9dc0b620e7b"
    )
  })

  test("sorts case-sensitively and leaves values unescaped", () => {
    const q = at(() => p(Pusher).createSignedQueryString({ method: "GET", path: "/x", params: { Zeta: 1, alpha: 2, info: "a b", c: "d" } }))
    assert.match(q, /^Zeta=1&alpha=2&auth_key=f00d&auth_timestamp=1234567890&auth_version=1\.0&c=d&info=a b&auth_signature=[0-9a-f]{64}$/)
  })

  test("reserved parameters throw with upstream's typo, inherited names included", () => {
    for (const name of ["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5", "constructor", "toString", "hasOwnProperty"]) {
      sameThrow((I) => p(I).createSignedQueryString({ method: "GET", path: "/", params: { [name]: "x" } }), name + " is a required parameter and cannot be overidden")
    }
    sameThrow(
      (I) => p(I).createSignedQueryString({ method: "GET", path: "/", params: JSON.parse('{"__proto__":"x"}') }),
      "__proto__ is a required parameter and cannot be overidden"
    )
  })

  test("bad methods, bodies and params throw upstream's errors", () => {
    sameThrow((I) => p(I).createSignedQueryString({ path: "/" }), "Cannot read properties of undefined (reading 'toUpperCase')", TypeError)
    sameThrow((I) => p(I).createSignedQueryString({ method: 5, path: "/" }), "request.method.toUpperCase is not a function", TypeError)
    sameThrow((I) => p(I).createSignedQueryString(), "Cannot read properties of undefined (reading 'body')", TypeError)
    for (const body of [{ a: 1 }, 5, [1], true]) {
      const e = same((I) => p(I).createSignedQueryString({ method: "GET", path: "/", body }))
      assert.ok(e instanceof TypeError)
    }
    sameThrow((I) => p(I).createSignedQueryString({ method: "GET", path: Symbol("p") }), "Cannot convert a Symbol value to a string", TypeError)
    sameThrow((I) => p(I).createSignedQueryString({ method: "GET", path: "/", params: { a: Symbol("v") } }), "Cannot convert a Symbol value to a string", TypeError)
    // getters run in upstream's order: each value is read as its key is visited…
    sameThrow(
      (I) =>
        p(I).createSignedQueryString({
          method: "GET",
          path: "/",
          params: {
            get a() {
              throw new Error("read a")
            },
            auth_key: 1,
          },
        }),
      "read a"
    )
    // …and stringified in sorted order
    const thrower = (name) => ({
      toString() {
        throw new Error("string " + name)
      },
    })
    sameThrow((I) => p(I).createSignedQueryString({ method: "GET", path: "/", params: { z: thrower("z"), a: thrower("a") } }), "string a")
    sameThrow((I) => p(I, { secret: undefined }).createSignedQueryString({ method: "GET", path: "/" }), NODE_KEY_TYPE_ERROR, TypeError)
  })

  test("secrets of every kind Node accepts sign the same", () => {
    const keyObject = crypto.createSecretKey(Buffer.from("tofu"))
    for (const secret of ["tofu", Buffer.from("tofu"), new Uint8Array(Buffer.from("tofu")), new Uint16Array([1, 2]), new ArrayBuffer(4), new DataView(new ArrayBuffer(4)), keyObject, "\uD800", ""]) {
      at(() => same((I) => p(I, { secret }).createSignedQueryString({ method: "GET", path: "/" })))
    }
    for (const secret of [5, null, {}, [1], new Date(0)]) {
      const e = at(() => same((I) => p(I, { secret }).createSignedQueryString({ method: "GET", path: "/" })))
      assert.ok(e instanceof TypeError)
    }
  })
})

describe("requests are signed as upstream signs them", () => {
  test("the same URL and body on the wire, for every kind of secret and odd params", async () => {
    const server = await recordingServer()
    try {
      const cryptoKey = await crypto.subtle.importKey("raw", Buffer.from("tofu"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      const secrets = ["tofu", Buffer.from("tofu"), new Uint16Array([1, 300]), new ArrayBuffer(4), new DataView(new ArrayBuffer(4)), crypto.createSecretKey(Buffer.from("tofu")), cryptoKey, "\uD800é"]
      const calls = [
        (p) => p.get({ path: "/channels", params: { Zeta: "1", alpha: [1, 2], "\uFF5E": "x", "😀": "y", n: null } }),
        (p) => p.post({ path: "/events", body: { name: "e", data: "é\uD800", channels: ["c"] } }),
        (p) => p.post({ path: "/x", body: "already-a-string", params: { info: "a b" } }),
        (p) => p.trigger(["a", "b"], "e", { x: 1 }, { info: "user_count" }),
      ]
      for (const secret of secrets) {
        for (const call of calls) {
          const urls = []
          for (const I of [Pusher, Upstream]) {
            const before = server.requests.length
            await atTime(1600000000000, () => call(new I({ appId: "7", key: "key", secret, host: "127.0.0.1", port: server.port })))
            const request = server.requests[before]
            urls.push([request.method, request.url, request.body, request.headers["content-type"]])
          }
          assert.deepStrictEqual(urls[0], urls[1], util.inspect(secret))
        }
      }
    } finally {
      await server.close()
    }
  })
})

// ---- webhooks ----

describe("webhook", () => {
  const BODY = '{"time_ms":1403175510755,"events":[{"channel":"test_channel","name":"channel_vacated"}]}'
  const SIG = "c17257e92037cd7de407ebc1ed174ceb7b2e518db127f44411b9ffc4f5b28cc5"
  const p = (I, options = {}) => new I({ appId: 1, key: "123456789", secret: "tofu", ...options })
  const request = (headers = {}, rawBody = BODY) => ({
    headers: { "x-pusher-key": "123456789", "x-pusher-signature": SIG, "content-type": "application/json", ...headers },
    rawBody,
  })
  const view = (w, extra) => {
    const r = (fn) => {
      const o = attempt(fn)
      return o.error ? { error: o.error.name + ": " + o.error.message } : { value: o.value }
    }
    return {
      own: Object.keys(w).filter((k) => k !== "token"),
      key: w.key,
      signature: w.signature,
      contentType: w.contentType,
      isContentTypeValid: r(() => w.isContentTypeValid()),
      isBodyValid: r(() => w.isBodyValid()),
      isValid: r(() => w.isValid()),
      isValidExtra: r(() => w.isValid(extra)),
      getData: r(() => w.getData()),
      getEvents: r(() => w.getEvents()),
      getTime: r(() => w.getTime().getTime()),
    }
  }

  test("the documented vector is valid; data, events and time", () => {
    const w = p(Pusher).webhook(request())
    assert.equal(w.isValid(), true)
    assert.deepStrictEqual(w.getEvents(), [{ channel: "test_channel", name: "channel_vacated" }])
    assert.deepStrictEqual(w.getTime(), new Date(1403175510755))
    assert.deepStrictEqual(w.getData(), JSON.parse(BODY))
    same((I) => view(p(I).webhook(request())))
    same((I) => view(p(I).webhook(request({}, Buffer.from(BODY)))))
  })

  test("extra tokens: Token instances, plain objects, a single one or an array", () => {
    const other = (I) => new I.Token("other-key", "other-secret")
    const body = '{"time_ms":1,"events":[]}'
    const signed = (I) => ({
      headers: { "x-pusher-key": "other-key", "x-pusher-signature": other(I).sign(body), "content-type": "application/json" },
      rawBody: body,
    })
    for (const extra of [
      (I) => other(I),
      () => ({ key: "other-key", secret: "other-secret" }),
      (I) => [new I.Token("x", "y"), other(I)],
      () => [{ key: "x", secret: "y" }, { key: "other-key", secret: "other-secret" }],
      () => [],
      () => null,
      () => ({ key: "other-key", secret: "wrong" }),
    ]) {
      const v = same((I) => view(p(I).webhook(signed(I)), extra(I)))
      assert.equal(v.isValid.value, false)
    }
    assert.equal(p(Pusher).webhook(signed(Pusher)).isValid({ key: "other-key", secret: "other-secret" }), true)
    sameThrow((I) => p(I).webhook(signed(I)).isValid([undefined]), "Cannot read properties of undefined (reading 'key')", TypeError)
  })

  test("the key is compared loosely", () => {
    const v = same((I) => view(p(I, { key: 123456789 }).webhook(request())))
    assert.equal(v.isValid.value, true)
  })

  test("a matching key without a signature throws upstream's TypeError; another key is just invalid", () => {
    sameThrow((I) => p(I).webhook(request({ "x-pusher-signature": undefined })).isValid(), "Cannot read properties of undefined (reading 'length')", TypeError)
    assert.equal(p(Pusher).webhook(request({ "x-pusher-key": "nope", "x-pusher-signature": undefined })).isValid(), false)
    same((I) => view(p(I).webhook(request({ "x-pusher-key": "nope", "x-pusher-signature": undefined }))))
  })

  test("the content type must be exactly application/json; header keys must be lowercase", () => {
    for (const contentType of ["application/json; charset=utf-8", "Application/JSON", "text/plain", "", undefined]) {
      const v = same((I) => view(p(I).webhook(request({ "content-type": contentType }))))
      assert.equal(v.isValid.value, false)
      assert.equal(v.isContentTypeValid.value, false)
      assert.match(v.getData.error, /^PusherWebHookError: Invalid WebHook body$/)
    }
    const mixed = { headers: { "X-Pusher-Key": "123456789", "X-Pusher-Signature": SIG, "Content-Type": "application/json" }, rawBody: BODY }
    const v = same((I) => view(p(I).webhook(mixed)))
    assert.equal(v.isValid.value, false)
  })

  test("bodies that are not JSON objects", () => {
    for (const body of ["", "{", "null", "[]", "5", '"s"', '{"events":5}', undefined, 5, {}]) {
      same((I) => view(p(I).webhook(request({}, body))))
    }
  })

  test("wrong signatures of the right length are rejected", () => {
    const flip = (s, i) => s.slice(0, i) + (s[i] === "0" ? "1" : "0") + s.slice(i + 1)
    for (const sig of [flip(SIG, 0), flip(SIG, 31), flip(SIG, 63), SIG.toUpperCase(), "0".repeat(64), "z".repeat(64), SIG + "0", SIG.slice(1), "", "é".repeat(64)]) {
      const v = same((I) => view(p(I).webhook(request({ "x-pusher-signature": sig }))))
      assert.equal(v.isValid.value, false, sig)
    }
    for (const sig of [5, null, {}, ["x"]]) same((I) => view(p(I).webhook(request({ "x-pusher-signature": sig }))))
  })

  test("getData throws a WebHookError with upstream's fields", () => {
    const w = p(Pusher).webhook(request({ "content-type": "text/plain" }))
    const e = attempt(() => w.getData()).error
    assert.ok(e instanceof Pusher.WebHookError)
    assert.ok(e instanceof Error)
    assert.equal(e.name, "PusherWebHookError")
    assert.equal(e.message, "Invalid WebHook body")
    assert.deepStrictEqual([e.contentType, e.body, e.signature], ["text/plain", BODY, SIG])
    const u = attempt(() => p(Upstream).webhook(request({ "content-type": "text/plain" })).getData()).error
    assert.deepStrictEqual(Object.keys(e), Object.keys(u))
  })

  test("a request without headers throws upstream's TypeError", () => {
    sameThrow((I) => p(I).webhook({}), "Cannot read properties of undefined (reading 'x-pusher-key')", TypeError)
    sameThrow((I) => p(I).webhook(), "Cannot read properties of undefined (reading 'headers')", TypeError)
    sameThrow((I) => p(I).webhook(null), "Cannot read properties of null (reading 'headers')", TypeError)
  })
})

// ---- Token ----

describe("Token", () => {
  test("sign: hex HMAC-SHA256, strings and bytes, secrets of every kind", () => {
    assert.equal(new Pusher.Token("aaaa", "tofu").sign("123.456:test"), "efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c")
    assert.equal(new Pusher.Token("aaaa", Buffer.from("tofu")).sign(Buffer.from("123.456:test")), "efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c")
    const secrets = ["tofu", Buffer.from("tofu"), new Uint8Array([1, 2]), new Uint16Array([1, 300]), new ArrayBuffer(3), crypto.createSecretKey(Buffer.from("k")), "", "\uD800"]
    const messages = ["", "m", "é😀", "\uD800", Buffer.from([0, 255]), new Uint8Array([1, 2]), new Int8Array([-1]), new Uint16Array([1, 300]), new DataView(new ArrayBuffer(2)), new ArrayBuffer(2), [1, 2, 300], { length: 2 }]
    for (const secret of secrets) {
      for (const message of messages) same((I) => new I.Token("k", secret).sign(message))
    }
  })

  test("sign errors are Node's", () => {
    sameThrow((I) => new I.Token("k", undefined).sign("x"), NODE_KEY_TYPE_ERROR, TypeError)
    assert.equal(attempt(() => new Pusher.Token("k").sign("x")).error.code, "ERR_INVALID_ARG_TYPE")
    for (const message of [undefined, null, 5, {}, Symbol("s")]) {
      const e = same((I) => new I.Token("k", "s").sign(message))
      assert.ok(e instanceof TypeError)
    }
  })

  test("verify", () => {
    const t = (I) => new I.Token("k", "secret")
    const good = t(Pusher).sign("message")
    assert.equal(t(Pusher).verify("message", good), true)
    for (const sig of [good, good.toUpperCase(), good.slice(1), good + "0", "", "x".repeat(64), 5, null, [good], new String(good)]) {
      same((I) => t(I).verify("message", sig))
    }
    sameThrow((I) => t(I).verify("message", undefined), "Cannot read properties of undefined (reading 'length')", TypeError)
    sameThrow((I) => t(I).verify("message", { length: 64 }), "b.charCodeAt is not a function", TypeError)
    same((I) => new I.Token("k", Buffer.from("secret")).verify(Buffer.from("message"), good))
  })

  test("key and secret stay readable fields", () => {
    const t = new Pusher.Token("key", "secret")
    assert.deepStrictEqual([t.key, t.secret], ["key", "secret"])
    assert.deepStrictEqual(Object.keys(t), ["key", "secret"])
    same((I) => Object.keys(new I.Token()))
  })
})

// ---- error classes ----

const withoutStack = ({ stack, ...rest }) => rest

describe("RequestError and WebHookError", () => {
  test("RequestError has upstream's fields in upstream's order", () => {
    const cause = new Error("cause")
    const ours = new Pusher.RequestError("Unexpected status code 500", "http://x/?a=1", cause, 500, "body")
    const theirs = new Upstream.RequestError("Unexpected status code 500", "http://x/?a=1", cause, 500, "body")
    assert.deepStrictEqual(Object.keys(ours), Object.keys(theirs))
    // `stack` is among them where the engine makes it so for upstream (see the next test)
    assert.deepStrictEqual(Object.keys(ours).filter((k) => k !== "stack"), ["name", "message", "url", "error", "status", "body"])
    assert.deepStrictEqual(withoutStack(JSON.parse(JSON.stringify(ours))), withoutStack(JSON.parse(JSON.stringify(theirs))))
    for (const k of ["name", "message", "url", "error", "status", "body"]) assert.equal(ours[k], theirs[k], k)
    assert.equal(ours.name, "PusherRequestError")
    assert.equal(String(ours), String(theirs))
    assert.equal(String(ours), "PusherRequestError: Unexpected status code 500")
    assert.ok(ours instanceof Error)
    assert.ok(ours instanceof Pusher.RequestError)
    // deliberate: a real class with a meaningful stack
    assert.notEqual(ours.constructor, Error)
    assert.equal(ours.stack.split("\n")[0], "PusherRequestError: Unexpected status code 500")
    assert.match(ours.stack.split("\n")[1], /^\s+at /)
  })

  test("WebHookError has upstream's fields in upstream's order", () => {
    const ours = new Pusher.WebHookError("Invalid WebHook body", "text/plain", "b", "s")
    const theirs = new Upstream.WebHookError("Invalid WebHook body", "text/plain", "b", "s")
    assert.deepStrictEqual(Object.keys(ours), Object.keys(theirs))
    assert.deepStrictEqual(Object.keys(ours).filter((k) => k !== "stack"), ["name", "message", "contentType", "body", "signature"])
    assert.deepStrictEqual(Object.keys({ ...ours }), Object.keys({ ...theirs }))
    for (const k of ["name", "message", "contentType", "body", "signature"]) assert.equal(ours[k], theirs[k], k)
    assert.equal(String(ours), String(theirs))
    assert.equal(ours.stack.split("\n")[0], "PusherWebHookError: Invalid WebHook body")
    assert.ok(ours instanceof Error && ours instanceof Pusher.WebHookError)
  })

  test("`stack` is an own enumerable field exactly where upstream's is, on this Node", (t) => {
    const theirs = new Upstream.RequestError("m", "u")
    const enumerable = Object.prototype.propertyIsEnumerable.call(theirs, "stack")
    t.diagnostic(`Node ${process.version}: upstream's stack is ${enumerable ? "" : "not "}an enumerable field`)
    for (const ours of [new Pusher.RequestError("m", "u"), new Pusher.WebHookError("m")]) {
      assert.equal(Object.prototype.propertyIsEnumerable.call(ours, "stack"), enumerable)
      // a meaningful stack either way
      assert.match(ours.stack, /^Pusher(Request|WebHook)Error: m\n\s+at /)
      assert.equal("stack" in { ...ours }, enumerable)
    }
  })

  test("odd constructor arguments are stored as given, never converted", () => {
    for (const message of [undefined, 5, Symbol("s"), { toString: () => { throw new Error("no") } }, null]) {
      same((I) => {
        const e = new I.RequestError(message, undefined)
        return [Object.keys(e), e.message, e.name]
      })
      same((I) => {
        const e = new I.WebHookError(message)
        return [Object.keys(e), e.message, e.name]
      })
    }
  })
})

// ---- section 1.11: conformance vectors ----

describe("conformance vectors (upstream-behaviour.md 1.11)", () => {
  const DOCS = { key: "278d425bdf160c739803", secret: "7ad3773142a6692b25b8" }
  const vectors = [
    {
      name: "authorizeChannel aaaa/tofu",
      run: (I) => new I({ key: "aaaa", secret: "tofu" }).authorizeChannel("123.456", "test"),
      expected: { auth: "aaaa:efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c" },
    },
    {
      name: "authorizeChannel with data",
      run: (I) => new I({ key: "aaaa", secret: "tofu" }).authorizeChannel("123.456", "test", { foo: "bar" }),
      expected: { channel_data: '{"foo":"bar"}', auth: "aaaa:f41faf9ead2ea76772cc6b1168363057459f02499ae4d92e88229dc7f4efa2d4" },
    },
    {
      name: "authenticateUser 1234/tofu",
      run: (I) => new I({ key: "1234", secret: "tofu" }).authenticateUser("123.456", { id: "45678" }).auth.split(":")[1],
      expected: "f4b1fdeea7c93e32648c7230e32b172057c5623cace6cfce791c6e7035e0babd",
    },
    {
      name: "authenticateUser docs example",
      run: (I) => new I(DOCS).authenticateUser("1234.1234", { id: "12345" }),
      expected: { auth: "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba", user_data: '{"id":"12345"}' },
    },
    {
      name: "authorizeChannel docs example",
      run: (I) => new I(DOCS).authorizeChannel("1234.1234", "private-foobar"),
      expected: { auth: "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4" },
    },
    {
      name: "presence docs example (openssl-verified value)",
      run: (I) => new I(DOCS).authorizeChannel("1234.1234", "presence-foobar", { user_id: 10, user_info: { name: "Mr. Channels" } }).auth,
      expected: "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80",
    },
    {
      name: "REST worked example",
      run: (I) =>
        atTime(1353088179000, () =>
          new I({ appId: 3, ...DOCS }).createSignedQueryString({
            method: "POST",
            path: "/apps/3/events",
            body: JSON.stringify({ name: "foo", channels: ["project-3"], data: JSON.stringify({ some: "data" }) }),
          })
        ),
      expected:
        "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
    },
    {
      name: "f00d/tofu GET /event",
      run: (I) => atTime(1234567890000, () => new I({ key: "f00d", secret: "tofu" }).createSignedQueryString({ method: "GET", path: "/event", body: "example body" })),
      expected:
        "auth_key=f00d&auth_timestamp=1234567890&auth_version=1.0&body_md5=165d5e6d7ca8f73b3853ce45addf42fc&auth_signature=a650196dc427ebe837226f8565ca9232198c6d1b9455eaa72374a9dc0b620e7b",
    },
    {
      name: "shared_secret",
      run: (I) => new I({ key: "k", secret: "s", encryptionMasterKeyBase64: KEY_B64 }).authorizeChannel("1.1", "private-encrypted-bla").shared_secret,
      expected: "nlr49ISQHz91yS3cy/yWmW8wFMNeTnNL5tNHnbPJcLQ=",
    },
    {
      name: "webhook signature",
      run: (I) => new I.Token("123456789", "tofu").sign('{"time_ms":1403175510755,"events":[{"channel":"test_channel","name":"channel_vacated"}]}'),
      expected: "c17257e92037cd7de407ebc1ed174ceb7b2e518db127f44411b9ffc4f5b28cc5",
    },
  ]
  for (const v of vectors) {
    test(v.name, () => {
      assert.deepStrictEqual(v.run(Pusher), v.expected)
      assert.deepStrictEqual(v.run(Upstream), v.expected)
    })
  }
})

// ---- section 1.6: synchronous throws of the network methods ----

describe("network methods throw synchronously, before any request", () => {
  const enc = { encryptionMasterKeyBase64: KEY_B64 }
  const long = "e".repeat(201)
  const circular = () => {
    const o = { a: 1 }
    o.o = o
    return o
  }
  const CIRCULAR = "Converting circular structure to JSON\n    --> starting at object with constructor 'Object'\n    --- property 'o' closes the circle"
  const channels = (n) => Array.from({ length: n }, (_, i) => "c" + i)
  const rows = [
    // trigger
    ["trigger: bad socket_id", (p) => p.trigger("c", "e", "d", { socket_id: "bad" }), "Invalid socket id: 'bad'"],
    ["trigger: socket_id with a trailing newline", (p) => p.trigger("c", "e", "d", { socket_id: "1.1\n" }), "Invalid socket id: '1.1\n'"],
    ["trigger: socket_id checked before the event", (p) => p.trigger("c", undefined, "d", { socket_id: 5 }), "Invalid socket id: '5'"],
    ["trigger: event undefined", (p) => p.trigger("c", undefined, "d"), "Cannot read properties of undefined (reading 'length')", TypeError],
    ["trigger: event null", (p) => p.trigger("c", null, "d"), "Cannot read properties of null (reading 'length')", TypeError],
    ["trigger: event too long", (p) => p.trigger("c", long, "d"), "Too long event name: '" + long + "'"],
    ["trigger: event checked before the channel count", (p) => p.trigger(channels(101), long, "d"), "Too long event name: '" + long + "'"],
    ["trigger: 101 channels", (p) => p.trigger(channels(101), "e", "d"), "Can't trigger a message to more than 100 channels"],
    ["trigger: count checked before names", (p) => p.trigger(Array(101).fill("bad name"), "e", "d"), "Can't trigger a message to more than 100 channels"],
    ["trigger: invalid channel", (p) => p.trigger("a b", "e", "d"), "Invalid channel name: 'a b'"],
    ["trigger: empty channel", (p) => p.trigger("", "e", "d"), "Invalid channel name: ''"],
    ["trigger: numeric channel", (p) => p.trigger(123, "e", "d"), "Invalid channel name: '123'"],
    ["trigger: undefined channel", (p) => p.trigger(undefined, "e", "d"), "Invalid channel name: 'undefined'"],
    ["trigger: #server-to-user channel", (p) => p.trigger("#server-to-user-1", "e", "d"), "Invalid channel name: '#server-to-user-1'"],
    ["trigger: second channel invalid", (p) => p.trigger(["ok", "not ok"], "e", "d"), "Invalid channel name: 'not ok'"],
    ["trigger: array-like is one channel", (p) => p.trigger({ length: 1, 0: "c" }, "e", "d"), "Invalid channel name: '[object Object]'"],
    ["trigger: channel too long", (p) => p.trigger("c".repeat(201), "e", "d"), "Channel name too long: '" + "c".repeat(201) + "'"],
    ["trigger: encrypted without a key", (p) => p.trigger("private-encrypted-x", "e", "d"), "Set encryptionMasterKey before triggering events on encrypted channels"],
    ["trigger: encrypted among several", (p) => p.trigger(["a", "private-encrypted-x"], "e", "d"), "You cannot trigger to multiple channels when using encrypted channels", Error, enc],
    ["trigger: encrypted among several, no key", (p) => p.trigger(["private-encrypted-x", "a"], "e", "d"), "You cannot trigger to multiple channels when using encrypted channels"],
    ["trigger: circular data", (p) => p.trigger("c", "e", circular()), CIRCULAR, TypeError],
    ["trigger: BigInt data", (p) => p.trigger("c", "e", { n: 1n }), "Do not know how to serialize a BigInt", TypeError],
    ["trigger: encrypted circular data", (p) => p.trigger("private-encrypted-x", "e", circular()), CIRCULAR, TypeError, enc],
    ["trigger: encrypted undefined data", (p) => p.trigger("private-encrypted-x", "e", undefined), "expected string", TypeError, enc],
    ["trigger: encrypted function data", (p) => p.trigger("private-encrypted-x", "e", () => 1), "expected string", TypeError, enc],
    ["trigger: circular params", (p) => p.trigger("c", "e", "d", circular()), CIRCULAR, TypeError],
    ["trigger: missing secret", (p) => p.trigger("c", "e", "d"), NODE_KEY_TYPE_ERROR, TypeError, { secret: undefined }],
    // sendToUser
    ["sendToUser: event too long", (p) => p.sendToUser("u", long, "d"), "Too long event name: '" + long + "'"],
    ["sendToUser: event undefined", (p) => p.sendToUser("u", undefined, "d"), "Cannot read properties of undefined (reading 'length')", TypeError],
    ["sendToUser: event checked before the user", (p) => p.sendToUser(5, long, "d"), "Too long event name: '" + long + "'"],
    ["sendToUser: numeric user id", (p) => p.sendToUser(5, "e", "d"), "Invalid user id: '5'"],
    ["sendToUser: empty user id", (p) => p.sendToUser("", "e", "d"), "Invalid user id: ''"],
    ["sendToUser: null user id", (p) => p.sendToUser(null, "e", "d"), "Invalid user id: 'null'"],
    ["sendToUser: circular data", (p) => p.sendToUser("u", "e", circular()), CIRCULAR, TypeError],
    // terminateUserConnections
    ["terminate: undefined user id", (p) => p.terminateUserConnections(), "Invalid user id: 'undefined'"],
    ["terminate: object user id", (p) => p.terminateUserConnections({}), "Invalid user id: '[object Object]'"],
    ["terminate: array user id", (p) => p.terminateUserConnections(["u"]), "Invalid user id: 'u'"],
    ["terminate: missing secret", (p) => p.terminateUserConnections("u"), NODE_KEY_TYPE_ERROR, TypeError, { secret: undefined }],
    // triggerBatch
    ["triggerBatch: undefined", (p) => p.triggerBatch(), "Cannot read properties of undefined (reading 'length')", TypeError],
    ["triggerBatch: missing channel", (p) => p.triggerBatch([{ name: "e", data: "d" }]), "Cannot read properties of undefined (reading 'startsWith')", TypeError],
    ["triggerBatch: numeric channel", (p) => p.triggerBatch([{ channel: 5, name: "e" }]), "channel.startsWith is not a function", TypeError],
    ["triggerBatch: null item", (p) => p.triggerBatch([null]), "Cannot read properties of null (reading 'channel')", TypeError],
    ["triggerBatch: encrypted without a key", (p) => p.triggerBatch([{ channel: "private-encrypted-x", name: "e", data: "d" }]), "Set encryptionMasterKey before triggering events on encrypted channels"],
    ["triggerBatch: encrypted undefined data", (p) => p.triggerBatch([{ channel: "private-encrypted-x", name: "e" }]), "expected string", TypeError, enc],
    ["triggerBatch: circular data", (p) => p.triggerBatch([{ channel: "c", name: "e", data: circular() }]), CIRCULAR, TypeError],
    // get / post
    ...["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5", "constructor", "valueOf"].flatMap((k) => [
      ["get: reserved " + k, (p) => p.get({ path: "/channels", params: { [k]: "x" } }), k + " is a required parameter and cannot be overidden"],
      ["post: reserved " + k, (p) => p.post({ path: "/events", params: { [k]: "x" }, body: {} }), k + " is a required parameter and cannot be overidden"],
    ]),
    ["post: circular body", (p) => p.post({ path: "/events", body: circular() }), CIRCULAR, TypeError],
    ["post: BigInt body", (p) => p.post({ path: "/events", body: 1n }), "Do not know how to serialize a BigInt", TypeError],
    ["get: Symbol param", (p) => p.get({ path: "/channels", params: { info: Symbol("i") } }), "Cannot convert a Symbol value to a string", TypeError],
    ["get: Symbol path", (p) => p.get({ path: Symbol("p") }), "Cannot convert a Symbol value to a string", TypeError],
    ["get: missing secret", (p) => p.get({ path: "/channels" }), NODE_KEY_TYPE_ERROR, TypeError, { secret: undefined }],
    ["get: BigInt timeout", (p) => p.get({ path: "/channels" }), "Cannot mix BigInt and other types, use explicit conversions", TypeError, { timeout: 10n }],
    ["get: Symbol timeout", (p) => p.get({ path: "/channels" }), "Cannot convert a Symbol value to a number", TypeError, { timeout: Symbol("t") }],
    ["get: Symbol host", (p) => p.get({ path: "/channels" }), "Cannot convert a Symbol value to a string", TypeError, { host: Symbol("h") }],
    [
      "post: a getter of the options",
      (p) =>
        p.post({
          path: "/x",
          get other() {
            throw new Error("getter")
          },
        }),
      "getter",
    ],
    [
      "get: params read in order (getter before a reserved key)",
      (p) =>
        p.get({
          path: "/x",
          params: {
            get a() {
              throw new Error("getter a")
            },
            auth_key: 1,
          },
        }),
      "getter a",
    ],
  ]

  for (const [name, call, message, type = Error, options = {}] of rows) {
    test(name, () => {
      sameThrow((I) => call(new I({ ...BASE, ...options })), message, type)
    })
  }

  test("none of these send a request", async () => {
    const server = await recordingServer()
    try {
      for (const [, call, message, , options = {}] of rows) {
        if ("host" in options) continue
        const p = new Pusher({ ...BASE, ...options, host: "127.0.0.1", port: server.port })
        const result = attempt(() => settled(call(p)))
        assert.ok(result.error, "throws")
        assert.equal(result.error.message, message)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(server.requests.length, 0)
    } finally {
      await server.close()
    }
  })

  test("calls that pass validation return a promise (never throw)", () => {
    const ok = [
      (p) => p.trigger([], "e", "d"),
      (p) => p.trigger(channels(100), "e".repeat(200), "d"),
      (p) => p.trigger("c", 5, "d"),
      (p) => p.trigger("c", "e", "d", { socket_id: "" }),
      (p) => p.trigger("c", "e", "d", "123.456"),
      (p) => p.sendToUser("a b/c", "e", undefined),
      (p) => p.terminateUserConnections("a/b c"),
      (p) => p.triggerBatch(Array.from({ length: 11 }, (_, i) => ({ channel: "c" + i, name: "e", data: i }))),
      (p) => p.triggerBatch([Object.freeze({ channel: "c", name: "e", data: {} })]),
      (p) => p.triggerBatch("abc".slice(0, 0)),
      (p) => p.get(),
      (p) => p.get({ path: "/channels", body: { a: 1 } }),
      (p) => p.post("str"),
      (p) => p.post({ path: "/events", body: "already-a-string" }),
      (p) => new (p.constructor)({ ...BASE, timeout: 1e300 }).get({ path: "/x" }),
      (p) => new (p.constructor)({ ...BASE, timeout: -5 }).get({ path: "/x" }),
      (p) => new (p.constructor)({ ...BASE, agent: { get proxy() { throw new Error("no") } } }).get({ path: "/x" }),
      (p) => new (p.constructor)({ ...BASE, host: "bad\0host" }).get({ path: "/x" }),
    ]
    const realEmit = process.emitWarning
    process.emitWarning = () => {} // the TimeoutOverflowWarning both emit
    try {
      for (const call of ok) assert.equal(same((I) => settled(call(new I(BASE)))), "promise")
    } finally {
      process.emitWarning = realEmit
    }
  })
})

// ---- request bodies, through the `this.post` dispatch ----

describe("what the network methods hand to this.post", () => {
  const bodies = (fn, options = {}) => {
    const out = {}
    for (const I of [Pusher, Upstream]) {
      const p = new I({ ...BASE, ...options })
      const calls = stubPost(p)
      const returned = fn(p)
      out[I === Pusher ? "ours" : "upstream"] = { calls, returned }
    }
    return out
  }

  test("trigger: body order, raw strings, dropped undefined data, params spread last", async () => {
    for (const args of [
      ["c", "e", { a: 1 }],
      [["a", "b"], "e", "raw string"],
      ["c", "e", undefined],
      ["c", "e", null],
      ["c", "e", "d", { socket_id: "1.1", info: "user_count" }],
      ["c", "e", "d", { channels: ["evil"], name: "override", data: "x" }],
      ["c", "e", "d", "123.456"], // legacy string 4th argument: spread into "0", "1", …
      [[], "e", "d"],
    ]) {
      const { ours, upstream } = bodies((p) => p.trigger(...args))
      assert.deepStrictEqual(JSON.stringify(ours.calls), JSON.stringify(upstream.calls))
      assert.equal(await ours.returned, "stubbed")
    }
    const { ours } = bodies((p) => p.trigger("c", "e", "d", "123.456"))
    // integer-like keys come first in property order
    assert.deepStrictEqual(Object.keys(ours.calls[0].body), ["0", "1", "2", "3", "4", "5", "6", "name", "data", "channels"])
    assert.equal(ours.calls[0].body[3], ".")
    assert.equal(ours.calls[0].body.socket_id, undefined)
  })

  test("sendToUser and terminateUserConnections", () => {
    const send = bodies((p) => p.sendToUser("a b/c", "e", { x: 1 }))
    assert.deepStrictEqual(send.ours.calls, send.upstream.calls)
    assert.deepStrictEqual(send.ours.calls[0].body.channels, ["#server-to-user-a b/c"])
    const term = bodies((p) => p.terminateUserConnections("a/b c"))
    assert.deepStrictEqual(term.ours.calls, term.upstream.calls)
    assert.deepStrictEqual(term.ours.calls[0], { path: "/users/a/b c/terminate_connections", body: {} })
  })

  test("triggerBatch posts the caller's own objects, rewriting their data", () => {
    for (const I of [Pusher, Upstream]) {
      const p = new I(BASE)
      const calls = stubPost(p)
      const batch = [
        { channel: "a", name: "e", data: { x: 1 }, extra: "kept" },
        { channel: "b", name: "e", data: "raw" },
      ]
      p.triggerBatch(batch)
      assert.equal(calls[0].path, "/batch_events")
      assert.equal(calls[0].body.batch, batch)
      assert.deepStrictEqual(batch, [
        { channel: "a", name: "e", data: '{"x":1}', extra: "kept" },
        { channel: "b", name: "e", data: "raw" },
      ])
    }
  })

  test("triggerBatch mutates earlier items even when a later one throws", () => {
    const results = []
    for (const I of [Pusher, Upstream]) {
      const batch = [
        { channel: "a", name: "e", data: { x: 1 } },
        { channel: "b", name: "e", data: [1, 2] },
        { channel: "private-encrypted-c", name: "e", data: { y: 2 } },
        { channel: "d", name: "e", data: { z: 3 } },
      ]
      const error = attempt(() => new I(BASE).triggerBatch(batch)).error
      assert.equal(error.message, "Set encryptionMasterKey before triggering events on encrypted channels")
      results.push(batch)
    }
    assert.deepStrictEqual(results[0], results[1])
    assert.deepStrictEqual(
      results[0].map((e) => e.data),
      ['{"x":1}', "[1,2]", { y: 2 }, { z: 3 }]
    )
  })

  test("triggerBatch leaves frozen or getter-only items alone, like upstream", () => {
    same((I) => {
      const frozen = Object.freeze({ channel: "c", name: "e", data: { x: 1 } })
      const getter = { channel: "c", name: "e", get data() { return 7 } }
      const p = new I(BASE)
      stubPost(p)
      p.triggerBatch([frozen, getter])
      return [frozen.data, getter.data]
    })
  })

  test("encrypted channels: JSON-encoded plaintext sealed with the channel key, strings too", () => {
    for (const data of [{ a: 1 }, "a string", 5, null, ["é😀"]]) {
      for (const I of [Pusher, Upstream]) {
        const p = new I({ ...BASE, encryptionMasterKeyBase64: KEY_B64 })
        const calls = stubPost(p)
        p.trigger("private-encrypted-x", "e", data, { socket_id: "1.1" })
        const body = calls[0].body
        assert.deepStrictEqual(Object.keys(body), ["name", "data", "channels", "socket_id"])
        assert.deepStrictEqual(Object.keys(JSON.parse(body.data)), ["nonce", "ciphertext"])
        assert.equal(open(body.data, "private-encrypted-x", KEY_B64), JSON.stringify(data))
        const batch = [{ channel: "private-encrypted-x", name: "e", data }]
        p.triggerBatch(batch)
        assert.equal(open(batch[0].data, "private-encrypted-x", KEY_B64), JSON.stringify(data))
      }
    }
  })

  test("get and post copy their options and force the method", () => {
    for (const I of [Pusher, Upstream]) {
      const p = new I(BASE)
      const options = { path: "/channels", params: { a: 1 }, method: "DELETE" }
      settled(p.get(options))
      assert.deepStrictEqual(options, { path: "/channels", params: { a: 1 }, method: "DELETE" })
    }
  })
})
