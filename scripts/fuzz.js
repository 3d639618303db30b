#!/usr/bin/env node
"use strict"
// Differential fuzzing of pusher-native against the real `pusher` 5.3.4.
//
//   node scripts/fuzz.js [cases=200000] [seed=1]
//
// Every case is a recipe (which API, which arguments) built twice, once per library,
// from the same seeded choices, so both see equal but separate values (triggerBatch
// mutates its input, getters count, …). For the synchronous API the whole outcome must
// be equal: the returned value, or the thrown error's name, message and code, plus any
// console.warn output. For the network methods (pointed at a closed local port) only
// the synchronous part is compared: whether the call throws, and with what; every
// returned promise is handled. Exits non-zero on any mismatch.
//
// __test__/hostile.test.js runs a shorter deterministic pass of the same engine.

const util = require("util")
const { prng } = require("./prng")
const Ours = require("..")
const Upstream = require("pusher")

// A closed port on the loopback interface: requests fail fast with ECONNREFUSED.
const DEAD = { host: "127.0.0.1", port: 9 }
const NOW = 1700000000123 // Date.now() during every case (before 2038: same timestamps)

// ---- a tiny seeded PRNG (mulberry32) ----


// ---- hostile values: name -> factory (each call builds a fresh value) ----

const MB = "x".repeat(1 << 20)
const MB_CTL = "a\0b\r\nc".repeat(1 << 18) // 1.5 MB of NUL/CR/LF
const KB64 = "y\r\n".repeat(1 << 14)
const KEY_B64 = Buffer.alloc(32, 7).toString("base64")
const labels = new WeakMap() // object -> pool name, to describe values without touching them

function tagged(name, value) {
  if ((typeof value === "object" && value !== null) || typeof value === "function") labels.set(value, name)
  return value
}

function trapProxy(target) {
  const handler = {}
  for (const trap of ["get", "set", "has", "ownKeys", "getOwnPropertyDescriptor", "getPrototypeOf", "defineProperty", "deleteProperty", "apply", "construct", "isExtensible", "preventExtensions", "setPrototypeOf"]) {
    handler[trap] = () => {
      throw new Error("hostile proxy trap: " + trap)
    }
  }
  return new Proxy(target, handler)
}

function allThrowingGetters() {
  const o = {}
  for (const field of ["id", "length", "channel", "name", "data", "headers", "rawBody", "key", "secret", "socket_id", "path", "params", "body", "method", "toJSON"]) {
    Object.defineProperty(o, field, {
      get() {
        throw new Error("hostile getter: " + field)
      },
      enumerable: true,
    })
  }
  return o
}

function webhookRequest(Impl) {
  const body = '{"time_ms":1403175510755,"events":[{"channel":"test_channel","name":"channel_vacated"}]}'
  return {
    headers: {
      "x-pusher-key": "key",
      "x-pusher-signature": new Impl.Token("key", "secret").sign(body),
      "content-type": "application/json",
    },
    rawBody: body,
  }
}

const POOL = {
  undefined: () => undefined,
  null: () => null,
  NaN: () => NaN,
  zero: () => 0,
  negZero: () => -0,
  one: () => 1,
  float: () => 1.5,
  negative: () => -5,
  huge: () => 1e300,
  infinity: () => Infinity,
  int123: () => 123,
  true: () => true,
  false: () => false,
  empty: () => "",
  str: () => "abc",
  socketId: () => "123.456",
  socketIdLF: () => "123.456\n",
  channel: () => "private-x",
  presence: () => "presence-x",
  encrypted: () => "private-encrypted-x",
  userChannel: () => "#server-to-user-1",
  len200: () => "a".repeat(200),
  len201: () => "a".repeat(201),
  mb: () => MB,
  mbControl: () => MB_CTL,
  kb64: () => KB64,
  nul: () => "\0",
  crlf: () => "a\r\nb",
  lf: () => "\n",
  loneHigh: () => "\uD800",
  loneLow: () => "x\uDC00y",
  astral: () => "😀é~",
  jsonText: () => '{"a":1}',
  numericText: () => "12a",
  b64Key: () => KEY_B64,
  b64UrlSafe: () => "-_" + KEY_B64.slice(2),
  raw32: () => "k".repeat(32),
  eAcute32: () => "é".repeat(32),
  urlGood: () => "http://k:s@127.0.0.1:9/apps/1",
  urlBadEscape: () => "http://k%zz:s@127.0.0.1:9/apps/1",
  bigint: () => 10n,
  symbol: () => Symbol("hostile"),
  object: () => tagged("object", {}),
  user: () => tagged("user", { id: "u1", user_info: { name: "n" }, watchlist: ["a"] }),
  userNumId: () => tagged("userNumId", { id: 5 }),
  array: () => tagged("array", []),
  array2: () => tagged("array2", ["a", "b"]),
  array101: () => tagged("array101", Array.from({ length: 101 }, (_, i) => "c" + i)),
  array10k: () => tagged("array10k", Array.from({ length: 10000 }, (_, i) => "c" + i)),
  circular: () => {
    const o = { a: 1 }
    o.self = o
    return tagged("circular", o)
  },
  circularArray: () => {
    const a = ["x"]
    a.push(a)
    return tagged("circularArray", a)
  },
  getters: () => tagged("getters", allThrowingGetters()),
  toStringThrows: () =>
    tagged("toStringThrows", {
      toString() {
        throw new Error("hostile toString")
      },
      valueOf() {
        throw new Error("hostile valueOf")
      },
    }),
  toPrimitiveSymbol: () => tagged("toPrimitiveSymbol", { [Symbol.toPrimitive]: () => Symbol("prim") }),
  proxy: () => tagged("proxy", new Proxy({ id: "p" }, {})),
  proxyThrows: () => tagged("proxyThrows", trapProxy({})),
  proxyArray: () => tagged("proxyArray", new Proxy(["a"], {})),
  buffer: () => tagged("buffer", Buffer.from("abc")),
  bufferEmpty: () => tagged("bufferEmpty", Buffer.alloc(0)),
  uint16: () => tagged("uint16", new Uint16Array([1, 300])),
  dataView: () => tagged("dataView", new DataView(new ArrayBuffer(2))),
  arrayBuffer: () => tagged("arrayBuffer", new ArrayBuffer(3)),
  date: () => tagged("date", new Date(0)),
  badDate: () => tagged("badDate", new Date(NaN)),
  fn: () => tagged("fn", function hostile() {}),
  nullProto: () => tagged("nullProto", Object.create(null)),
  map: () => tagged("map", new Map([["a", 1]])),
  regexp: () => tagged("regexp", /x/g),
  stringObject: () => tagged("stringObject", new String("c")),
  frozen: () => tagged("frozen", Object.freeze({ channel: "c", name: "e", data: { x: 1 } })),
  batchItem: () => tagged("batchItem", { channel: "c", name: "e", data: { x: 1 } }),
  encryptedItem: () => tagged("encryptedItem", { channel: "private-encrypted-x", name: "e", data: "d" }),
  tokenLike: () => tagged("tokenLike", { key: "key", secret: "secret" }),
  numericTokenLike: () => tagged("numericTokenLike", { key: 123, secret: "secret" }),
}
const POOL_NAMES = Object.keys(POOL)
// Where the library spreads or Object.assign()s the argument, a 1 MB string becomes an
// object with a million keys (in both libraries): those slots get the 64 KB string instead.
const SPREAD_POOL_NAMES = POOL_NAMES.filter((name) => name !== "mb" && name !== "mbControl")
const NON_NULLISH_POOL_NAMES = POOL_NAMES.filter((name) => name !== "undefined" && name !== "null")

// The nastiest values, for the crash-only child process.
const NASTY = ["mb", "mbControl", "loneHigh", "loneLow", "bigint", "symbol", "circular", "circularArray", "getters", "toStringThrows", "toPrimitiveSymbol", "proxyThrows", "array10k", "uint16", "dataView", "arrayBuffer", "nullProto", "huge", "NaN"]

// ---- recipes: how to build an argument ----
//   { v: poolName }                   a pool value
//   { lit: value }                    a literal primitive (strings only)
//   { obj: { f: recipe, … } }         a fresh plain object (keys defined in order)
//   { arr: [recipe, …] }              a fresh array
//   { special: name }                 built per implementation (e.g. a signed webhook request)

function build(recipe, Impl) {
  if ("v" in recipe) return POOL[recipe.v]()
  if ("lit" in recipe) return recipe.lit
  if ("arr" in recipe) return tagged("built-array", recipe.arr.map((r) => build(r, Impl)))
  if ("special" in recipe) return tagged(recipe.special, SPECIAL[recipe.special](Impl))
  const o = {}
  for (const [k, r] of Object.entries(recipe.obj)) {
    Object.defineProperty(o, k, { value: build(r, Impl), enumerable: true, writable: true, configurable: true })
  }
  return tagged("built-object", o)
}

const SPECIAL = {
  webhook: (Impl) => webhookRequest(Impl),
  token: (Impl) => new Impl.Token("key", "secret"),
  tokens: (Impl) => [new Impl.Token("other", "x"), { key: "key", secret: "secret" }],
}

const lit = (value) => ({ lit: value })
const obj = (fields) => ({ obj: fields })

const GOOD_OPTIONS = { appId: lit("1"), key: lit("key"), secret: lit("secret") }
const OPTION_FIELDS = ["appId", "key", "secret", "useTLS", "encrypted", "scheme", "host", "cluster", "port", "timeout", "agent", "encryptionMasterKey", "encryptionMasterKeyBase64"]
// Fields safe to make hostile on an instance that will send requests: never a host
// that could resolve (host/cluster stay 127.0.0.1).
const NETWORK_CONFIG_FIELDS = ["appId", "key", "secret", "timeout", "agent", "port", "scheme", "useTLS"]
const PARAM_KEYS = ["info", "filter_by_prefix", "auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5", "constructor", "toString", "__proto__", "hasOwnProperty", "Zeta", "\uFF5E", "😀", "0", "10", "a b", "&x=", ""]

// Instance setups. `config` extra fields are applied on top.
const INSTANCES = {
  plain: { ...DEAD, appId: "1", key: "key", secret: "secret" },
  encrypted: { ...DEAD, appId: "1", key: "key", secret: "secret", encryptionMasterKeyBase64: KEY_B64 },
  noSecret: { ...DEAD, appId: "1", key: "key" },
}

// ---- operations ----
// slots: one good recipe per argument; `fields` lists the field names the generator
// may replace inside an object slot. `network` ops only compare the synchronous part.

const OPS = {
  construct: {
    slots: [{ good: obj(GOOD_OPTIONS), fields: OPTION_FIELDS }],
    run: (Impl, [options]) => new Impl(options),
  },
  forURL: {
    slots: [{ good: lit("http://key:secret@127.0.0.1:9/apps/1"), url: true }, { good: { v: "undefined" }, fields: OPTION_FIELDS, base: obj({ timeout: lit(5) }), spread: true }],
    run: (Impl, [url, options]) => Impl.forURL(url, options),
  },
  forCluster: {
    slots: [{ good: lit("eu") }, { good: obj(GOOD_OPTIONS), fields: OPTION_FIELDS, spread: true }],
    run: (Impl, [cluster, options]) => Impl.forCluster(cluster, options),
  },
  authorizeChannel: {
    instance: true,
    slots: [{ good: lit("123.456") }, { good: lit("private-x") }, { good: obj({ user_id: lit("1"), user_info: obj({ n: lit("x") }) }), fields: ["user_id", "user_info"] }],
    run: (Impl, args, p) => p.authorizeChannel(...args),
  },
  authenticate: {
    instance: true,
    slots: [{ good: lit("123.456") }, { good: lit("private-encrypted-x") }, { good: { v: "undefined" } }],
    run: (Impl, args, p) => p.authenticate(...args),
  },
  authenticateUser: {
    instance: true,
    slots: [{ good: lit("123.456") }, { good: obj({ id: lit("u1"), user_info: obj({ n: lit("x") }) }), fields: ["id", "user_info", "watchlist"] }],
    run: (Impl, args, p) => p.authenticateUser(...args),
  },
  channelSharedSecret: {
    instance: true,
    slots: [{ good: lit("private-encrypted-x") }],
    run: (Impl, [channel], p) => p.channelSharedSecret(channel),
  },
  createSignedQueryString: {
    instance: true,
    slots: [
      {
        good: obj({ method: lit("post"), path: lit("/apps/1/events"), params: obj({ info: lit("user_count") }), body: lit('{"a":1}') }),
        fields: ["method", "path", "params", "body"],
        params: true,
      },
    ],
    run: (Impl, [options], p) => p.createSignedQueryString(options),
  },
  webhook: {
    instance: true,
    slots: [{ good: { special: "webhook" }, webhook: true }, { good: { v: "undefined" }, extra: true }],
    run: (Impl, [request, extra], p) => ({ webhook: p.webhook(request), extra }),
  },
  token: {
    slots: [{ good: lit("key") }, { good: lit("secret") }, { good: lit("message") }, { good: lit("00") }],
    run: (Impl, [key, secret, message, signature]) => {
      const token = new Impl.Token(key, secret)
      return { sign: outcome(() => token.sign(message)), verify: outcome(() => token.verify(message, signature)), key: token.key, secret: token.secret }
    },
  },
  requestError: {
    slots: [{ good: lit("Unexpected status code 500") }, { good: lit("http://x/?a=1") }, { good: { v: "undefined" } }, { good: lit(500) }, { good: lit("body") }],
    run: (Impl, args) => errorShape(new Impl.RequestError(...args)),
  },
  webHookError: {
    slots: [{ good: lit("Invalid WebHook body") }, { good: lit("text/plain") }, { good: lit("body") }, { good: lit("sig") }],
    run: (Impl, args) => errorShape(new Impl.WebHookError(...args)),
  },
  // a prototype method called on another `this` (not null or undefined: upstream's
  // sloppy-mode functions then read globalThis, see DETACHED_NOTE)
  detached: {
    slots: [{ good: lit("trigger"), choices: Object.keys(Ours.prototype) }, { good: obj({}), notNullish: true }],
    run: (Impl, [method, self]) => {
      const fn = Impl.prototype[method]
      return typeof fn === "function" ? fn.apply(self, detachedArgs(method)) : "no such method"
    },
  },
  // ---- network methods: the synchronous part only ----
  trigger: {
    instance: true,
    network: true,
    slots: [{ good: lit("my-channel"), list: true }, { good: lit("my-event") }, { good: obj({ a: lit(1) }) }, { good: { v: "undefined" }, fields: ["socket_id", "info", "name", "channels", "data"], base: obj({ info: lit("user_count") }), spread: true }],
    run: (Impl, args, p) => p.trigger(...args),
  },
  sendToUser: {
    instance: true,
    network: true,
    slots: [{ good: lit("user-1") }, { good: lit("my-event") }, { good: obj({ a: lit(1) }) }],
    run: (Impl, args, p) => p.sendToUser(...args),
  },
  terminateUserConnections: {
    instance: true,
    network: true,
    slots: [{ good: lit("user-1") }],
    run: (Impl, args, p) => p.terminateUserConnections(...args),
  },
  triggerBatch: {
    instance: true,
    network: true,
    slots: [{ good: { arr: [{ v: "batchItem" }, { v: "batchItem" }] }, batch: true }],
    run: (Impl, [batch], p) => ({ result: p.triggerBatch(batch), after: batch }),
  },
  get: {
    instance: true,
    network: true,
    slots: [{ good: obj({ path: lit("/channels"), params: obj({ info: lit("user_count") }) }), fields: ["path", "params", "body", "method"], params: true, spread: true }],
    run: (Impl, [options], p) => p.get(options),
  },
  post: {
    instance: true,
    network: true,
    slots: [{ good: obj({ path: lit("/events"), body: obj({ name: lit("e"), data: lit("d"), channels: { arr: [lit("c")] } }) }), fields: ["path", "params", "body", "method"], params: true, spread: true }],
    run: (Impl, [options], p) => p.post(options),
  },
}
const OP_NAMES = Object.keys(OPS)

// Not generated: detached calls with `this` undefined or null. Both libraries throw a
// TypeError, worded differently: upstream's non-strict functions read globalThis.config.
const DETACHED_NOTE = "prototype methods called with this = undefined/null: same TypeError class, different wording"

function detachedArgs(method) {
  switch (method) {
    case "authorizeChannel":
    case "authenticate":
      return ["1.1", "private-x"]
    case "authenticateUser":
      return ["1.1", { id: "u" }]
    case "sendToUser":
      return ["u", "e", "d"]
    case "terminateUserConnections":
      return ["u"]
    case "trigger":
      return ["c", "e", "d"]
    case "triggerBatch":
      return [[{ channel: "c", name: "e", data: { x: 1 } }]]
    case "post":
    case "get":
      return [{ path: "/x" }]
    case "webhook":
      return [{ headers: {}, rawBody: "" }]
    case "createSignedQueryString":
      return [{ method: "get", path: "/" }]
    default:
      return ["private-encrypted-x"]
  }
}

// ---- generating recipes ----

const URL_NOISE = ["", " ", "\t", "\n", "\0", "%", "%zz", "%2F", "@", ":", "/", "\\", "?", "#", "[", "]", "é", "\uD800", "A", "0", "99999", "-"]

function mutateUrl(rng, url) {
  let s = url
  const edits = 1 + rng.int(3)
  for (let i = 0; i < edits; i++) {
    const at = rng.int(s.length + 1)
    const op = rng.int(3)
    if (op === 0) s = s.slice(0, at) + rng.pick(URL_NOISE) + s.slice(at)
    else if (op === 1) s = s.slice(0, at) + s.slice(at + 1 + rng.int(4))
    else s = s.slice(0, at) + rng.pick(URL_NOISE) + s.slice(at + 1)
  }
  return s
}

function hostile(rng, slot) {
  const names = slot && slot.spread ? SPREAD_POOL_NAMES : slot && slot.notNullish ? NON_NULLISH_POOL_NAMES : POOL_NAMES
  return { v: rng.pick(names) }
}

function withField(base, field, recipe) {
  return obj({ ...base.obj, [field]: recipe })
}

function mutateSlot(rng, slot) {
  const r = rng()
  if (slot.url && r < 0.5) return lit(mutateUrl(rng, slot.good.lit))
  if (r < 0.4) return hostile(rng, slot)
  if (slot.batch) {
    const items = [{ v: "batchItem" }, { v: rng.pick(["batchItem", "encryptedItem", "frozen"]) }]
    const at = rng.int(items.length)
    items[at] = rng.chance(0.5) ? hostile(rng) : obj({ channel: rng.chance(0.5) ? hostile(rng) : lit("c"), name: lit("e"), data: hostile(rng) })
    return { arr: rng.chance(0.2) ? items.reverse() : items }
  }
  if (slot.webhook) return webhookRecipe(rng)
  if (slot.choices) return lit(rng.pick(slot.choices))
  if (slot.list) {
    const items = []
    for (let i = 1 + rng.int(3); i > 0; i--) items.push(rng.chance(0.5) ? hostile(rng) : lit(rng.pick(["a", "private-encrypted-x", "presence-y", "#server-to-user-1"])))
    return { arr: items }
  }
  if (slot.extra) return rng.chance(0.5) ? { special: rng.pick(Object.keys(SPECIAL)) } : { v: rng.pick(["tokenLike", "numericTokenLike"]) }
  if (slot.fields) {
    let o = slot.base || slot.good
    if (!("obj" in o)) o = obj({})
    const n = 1 + rng.int(2)
    for (let i = 0; i < n; i++) {
      if (slot.params && rng.chance(0.5)) {
        const params = obj({ info: lit("user_count"), [rng.pick(PARAM_KEYS)]: rng.chance(0.5) ? lit("v") : hostile(rng) })
        o = withField(o, "params", params)
      } else {
        o = withField(o, rng.pick(slot.fields), hostile(rng))
      }
    }
    return o
  }
  return slot.good
}

const HEADER_NAMES = ["x-pusher-key", "x-pusher-signature", "content-type", "X-Pusher-Key"]

function webhookRecipe(rng) {
  const body = '{"time_ms":1403175510755,"events":[{"channel":"c","name":"channel_vacated"}]}'
  const sig = "c17257e92037cd7de407ebc1ed174ceb7b2e518db127f44411b9ffc4f5b28cc5"
  const headers = { "x-pusher-key": lit("key"), "x-pusher-signature": lit(sig), "content-type": lit("application/json") }
  const request = { headers: obj(headers), rawBody: lit(body) }
  const what = rng.int(4)
  if (what === 0) request.rawBody = hostile(rng)
  else if (what === 1) request.headers = rng.chance(0.3) ? hostile(rng) : obj({ ...headers, [rng.pick(HEADER_NAMES)]: hostile(rng) })
  else if (what === 2) request.headers = obj({ ...headers, "content-type": lit(rng.pick(["application/json; charset=utf-8", "Application/JSON", "text/plain", ""])) })
  else request.rawBody = lit(rng.pick(["", "{", "null", "[]", '{"events":5}', "\uD800", '{"time_ms":"x"}']))
  return obj(request)
}

/** One random case. */
function randomCase(rng) {
  const op = rng.pick(OP_NAMES)
  const spec = OPS[op]
  const args = spec.slots.map((slot) => (rng.chance(0.6) ? mutateSlot(rng, slot) : slot.good))
  const instance = rng.pick(Object.keys(INSTANCES))
  let config
  if (spec.instance && rng.chance(0.15)) {
    config = [rng.pick(spec.network ? NETWORK_CONFIG_FIELDS : OPTION_FIELDS), hostile(rng)]
  }
  return { op, args, instance, config }
}

/** Every op × every slot × every pool value, one substitution at a time. */
function* systematicCases() {
  for (const op of OP_NAMES) {
    const spec = OPS[op]
    for (let s = 0; s < spec.slots.length; s++) {
      const slot = spec.slots[s]
      if (slot.choices) {
        for (const choice of slot.choices) {
          const args = spec.slots.map((sl) => sl.good)
          args[s] = lit(choice)
          for (const v of NON_NULLISH_POOL_NAMES) {
            args[1 - s] = { v }
            yield { op, args: args.slice(), instance: "plain" }
          }
        }
        continue
      }
      if (op === "detached") continue // covered with every method above
      for (const v of slot.spread ? SPREAD_POOL_NAMES : slot.notNullish ? NON_NULLISH_POOL_NAMES : POOL_NAMES) {
        const args = spec.slots.map((sl) => sl.good)
        args[s] = { v }
        yield { op, args, instance: v.length % 2 ? "plain" : "encrypted" }
      }
    }
  }
}

// ---- running one case on one implementation ----

function outcome(fn) {
  try {
    return { value: fn() }
  } catch (e) {
    return { threw: errorSummary(e) }
  }
}

function safe(fn) {
  try {
    return fn()
  } catch (e) {
    return "<unreadable>"
  }
}

function errorSummary(e) {
  if (!(e instanceof Error)) return { thrown: describe(e) }
  return { name: safe(() => e.name), message: safe(() => e.message), code: safe(() => e.code) }
}

function errorShape(e) {
  const fields = {}
  for (const k of Object.keys(e)) if (k !== "stack") fields[k] = describe(e[k])
  return { fields, instanceofError: e instanceof Error, string: outcome(() => String(e)).threw ? "throws" : String(e) }
}

const isThenable = (v) => v !== null && typeof v === "object" && typeof v.then === "function" && !labels.has(v)

// Encrypted event data carry a random nonce: compared by their opened plaintext.
const SEALED = /^\{"nonce":"([A-Za-z0-9+/=]+)","ciphertext":"([A-Za-z0-9+/=]+)"\}$/
const SHARED_KEY = require("crypto")
  .createHash("sha256")
  .update(Buffer.concat([Buffer.from("private-encrypted-x"), Buffer.from(KEY_B64, "base64")]))
  .digest()

function unsealed(text) {
  const m = SEALED.exec(text)
  if (!m) return text
  const nacl = require("tweetnacl")
  const plain = nacl.secretbox.open(Buffer.from(m[2], "base64"), Buffer.from(m[1], "base64"), SHARED_KEY)
  return "sealed:" + (plain ? Buffer.from(plain).toString("utf8") : "?")
}

function describe(v, depth = 0) {
  if (v === undefined) return "undefined"
  if (v === null) return null
  switch (typeof v) {
    case "string":
      return v.startsWith('{"nonce":"') ? unsealed(v) : v
    case "number":
      return Number.isNaN(v) ? "NaN" : Object.is(v, -0) ? "-0" : v
    case "boolean":
      return v
    case "bigint":
      return "bigint:" + v
    case "symbol":
      return "symbol:" + v.description
    case "function":
      return "function:" + (labels.get(v) || v.name)
  }
  if (util.types.isProxy(v)) return "proxy"
  if (labels.has(v)) {
    const label = labels.get(v)
    if (!label.startsWith("built-")) {
      if (Array.isArray(v) ? v.length > 200 : typeof v !== "object" || util.types.isBoxedPrimitive(v)) return "pool:" + label
      // own data properties through descriptors: no getter of a hostile value runs
      const own = {}
      for (const k of Reflect.ownKeys(v)) {
        const d = Reflect.getOwnPropertyDescriptor(v, k)
        own[String(k)] = "value" in d ? (depth > 4 ? "deep" : describe(d.value, depth + 1)) : "accessor"
      }
      return { pool: label, own }
    }
  }
  if (Buffer.isBuffer(v)) return "Buffer:" + v.toString("hex")
  if (v instanceof Date) return "Date:" + v.getTime()
  if (isThenable(v)) return "promise"
  if (depth > 4) return "deep"
  if (v instanceof Ours || v instanceof Upstream) return { pusher: configShape(v.config) }
  if (v.constructor && (v.constructor.name === "Token")) return { token: [describe(v.key, depth + 1), describe(v.secret, depth + 1)] }
  if (Array.isArray(v)) return v.length > 200 ? "array:" + v.length : v.map((x) => describe(x, depth + 1))
  const out = {}
  for (const k of Object.keys(v)) out[k] = describe(safe(() => v[k]), depth + 1)
  return out
}

function configShape(config) {
  const shape = {}
  for (const k of Object.keys(config)) {
    shape[k] = k === "token" ? { key: describe(config.token.key), secret: describe(config.token.secret) } : describe(config[k])
  }
  const inherited = []
  for (const k in config) if (!Object.prototype.hasOwnProperty.call(config, k)) inherited.push(k)
  shape["(for-in inherited)"] = inherited
  shape["getBaseURL()"] = describe(outcome(() => config.getBaseURL()))
  shape["prefixPath()"] = describe(outcome(() => config.prefixPath("/x")))
  return shape
}

function webhookShape(w, extra) {
  return {
    key: describe(w.key),
    signature: describe(w.signature),
    contentType: describe(w.contentType),
    body: describe(w.body),
    isContentTypeValid: describe(outcome(() => w.isContentTypeValid())),
    isBodyValid: describe(outcome(() => w.isBodyValid())),
    isValid: describe(outcome(() => w.isValid())),
    isValidExtra: describe(outcome(() => w.isValid(extra))),
    getData: describe(outcome(() => w.getData())),
    getEvents: describe(outcome(() => w.getEvents())),
    getTime: describe(outcome(() => w.getTime())),
  }
}

/** Runs `recipe` on `Impl`; returns { result, pending } where pending is a handled promise or null. */
function runOn(Impl, recipe) {
  const spec = OPS[recipe.op]
  const warnings = []
  const realWarn = console.warn
  const realEmit = process.emitWarning
  const realNow = Date.now
  console.warn = (...args) => warnings.push(args.map(String).join(" "))
  process.emitWarning = () => {} // Node's own (timer overflow, url.parse); not compared
  Date.now = () => NOW
  let pending = null
  let result
  try {
    let instance
    if (spec.instance) {
      const options = { ...INSTANCES[recipe.instance] }
      if (recipe.config) options[recipe.config[0]] = build(recipe.config[1], Impl)
      const made = outcome(() => new Impl(options))
      if (made.threw) return { result: { instance: made.threw, warnings }, pending }
      instance = made.value
    }
    const args = recipe.args.map((r) => build(r, Impl))
    const got = outcome(() => spec.run(Impl, args, instance))
    if (got.threw) {
      result = { threw: got.threw }
    } else if (spec.network) {
      let value = got.value
      let after
      if (recipe.op === "triggerBatch") {
        after = describe(value.after)
        value = value.result
      }
      if (isThenable(value)) {
        pending = value.then(
          () => "resolved",
          () => "rejected"
        )
        result = { returned: "promise", after }
      } else {
        result = { returned: describe(value), after }
      }
    } else if (isThenable(got.value)) {
      pending = got.value.then(
        () => "resolved",
        () => "rejected"
      )
      result = { returned: "promise" }
    } else if (recipe.op === "webhook") {
      result = { returned: webhookShape(got.value.webhook, got.value.extra) }
    } else {
      result = { returned: describe(got.value) }
    }
  } finally {
    console.warn = realWarn
    process.emitWarning = realEmit
    Date.now = realNow
  }
  result.warnings = warnings
  return { result, pending }
}

/** Runs one recipe on both libraries. */
function compare(recipe) {
  const ours = runOn(Ours, recipe)
  const theirs = runOn(Upstream, recipe)
  const equal = util.isDeepStrictEqual(ours.result, theirs.result)
  return { equal, ours: ours.result, upstream: theirs.result, pending: [ours.pending, theirs.pending].filter(Boolean) }
}

function show(value) {
  return util.inspect(value, { depth: 6, maxStringLength: 200, breakLength: 120 })
}

function describeRecipe(recipe) {
  return show(recipe)
}

/**
 * Runs `count` cases (the systematic ones first when `systematic`), `seed`-determined.
 * Awaits every returned promise in groups so sockets stay bounded.
 */
async function run({ count, seed = 1, systematic = true, onMismatch, progress } = {}) {
  const rng = prng(seed)
  const stats = { cases: 0, mismatches: 0, crashes: 0, byOp: {} }
  let pending = []
  const flush = async () => {
    await Promise.all(pending)
    pending = []
  }
  const sys = systematic ? systematicCases() : [][Symbol.iterator]()
  while (stats.cases < count) {
    const next = sys.next()
    const recipe = next.done ? randomCase(rng) : next.value
    let r
    try {
      r = compare(recipe)
    } catch (e) {
      // the harness itself failed: count it as a crash of the case
      stats.crashes++
      if (onMismatch) onMismatch({ recipe, crash: e })
      stats.cases++
      continue
    }
    stats.cases++
    stats.byOp[recipe.op] = (stats.byOp[recipe.op] || 0) + 1
    pending.push(...r.pending)
    if (!r.equal) {
      stats.mismatches++
      if (onMismatch) onMismatch({ recipe, ours: r.ours, upstream: r.upstream })
    }
    if (pending.length >= 64) await flush()
    if (progress && stats.cases % 10000 === 0) progress(stats)
  }
  await flush()
  return stats
}

/** The nastiest values into every operation and slot, ours only: for the crash test. */
async function runNasty() {
  let calls = 0
  const pending = []
  for (const op of OP_NAMES) {
    const spec = OPS[op]
    for (let s = 0; s < spec.slots.length; s++) {
      for (const v of NASTY) {
        if (spec.slots[s].spread && !SPREAD_POOL_NAMES.includes(v)) continue
        const args = spec.slots.map((slot) => slot.good)
        args[s] = { v }
        for (const instance of Object.keys(INSTANCES)) {
          const r = runOn(Ours, { op, args, instance })
          if (r.pending) pending.push(r.pending)
          calls++
        }
      }
    }
  }
  // hostile values straight into the native layer's callers (warnings silenced)
  const realWarn = console.warn
  const realEmit = process.emitWarning
  console.warn = () => {}
  process.emitWarning = () => {}
  const p = new Ours({ ...INSTANCES.encrypted })
  for (const v of NASTY) {
    for (const field of OPTION_FIELDS) {
      const made = outcome(() => new Ours({ ...INSTANCES.plain, [field]: POOL[v]() }))
      if (made.value) {
        const r = outcome(() => made.value.trigger("c", "e", "d"))
        if (r.value) pending.push(r.value.catch(() => {}))
        outcome(() => made.value.authorizeChannel("1.1", "private-encrypted-x"))
        outcome(() => made.value.createSignedQueryString({ method: "get", path: POOL[v]() }))
      }
      calls++
    }
    outcome(() => p.verifyWebhook(POOL[v]()))
    outcome(() => p.verifyWebhook({ headers: POOL[v](), rawBody: POOL[v]() }))
    outcome(() => p.verifyWebhook(webhookRequest(Ours), { extraTokens: POOL[v](), maxAgeMs: POOL[v]() }))
  }
  console.warn = realWarn
  process.emitWarning = realEmit
  await Promise.all(pending)
  return calls
}

module.exports = { prng, POOL, OPS, run, runNasty, compare, describeRecipe, show, randomCase, systematicCases, detachedArgs, DEAD, DETACHED_NOTE }

if (require.main === module) {
  const count = Number(process.argv[2] || 200000)
  const seed = Number(process.argv[3] || 1)
  if (!Number.isInteger(count) || count < 0 || !Number.isInteger(seed)) {
    console.error("usage: node scripts/fuzz.js [cases=200000] [seed=1]")
    process.exit(2)
  }
  let unhandled = 0
  process.on("unhandledRejection", () => unhandled++)
  const started = Date.now()
  let shown = 0
  run({
    count,
    seed,
    onMismatch: (m) => {
      if (shown++ < 5) console.error("mismatch:", describeRecipe(m.recipe), "\n ours:", show(m.ours || m.crash), "\n upstream:", show(m.upstream))
    },
    progress: (s) => console.error(`  ${s.cases} cases, ${s.mismatches} mismatches (${((Date.now() - started) / 1000).toFixed(1)} s)`),
  }).then(
    (stats) => {
      const crashes = stats.crashes + unhandled
      console.log(`fuzz: ${stats.cases} cases, ${crashes} crashes, ${stats.mismatches} mismatches (seed ${seed}, ${((Date.now() - started) / 1000).toFixed(1)} s)`)
      process.exitCode = stats.mismatches === 0 && crashes === 0 ? 0 : 1
    },
    (e) => {
      console.error(e)
      process.exitCode = 1
    }
  )
}
