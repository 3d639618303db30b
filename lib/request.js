"use strict"
// The request pipeline `pusher` runs in lib/requests.js, with signing and the HTTP
// exchange moved into one native call per request. JSON.stringify, the reserved
// parameter check and the `String()` of parameter values stay here, where their JS
// semantics are the contract.

const crypto = require("crypto")
const { isAnyArrayBuffer } = require("util").types
const diagnostics = require("diagnostics_channel")
const native = require("./native")
const { RequestError, FetchError, AbortError } = require("./errors")
const Response = require("./response")
const Token = require("./token")
const { extrasOf } = require("./config")

// Read when the first client is made: package.json costs ~1.5 ms of cold start.
let library
const libraryName = () => (library ||= "pusher-native " + require("../package.json").version)

// An object literal, looked up as `RESERVED[key] !== undefined` like upstream's: inherited
// names ("constructor", "__proto__", "toString", …) are refused with the same message.
const RESERVED = { auth_key: true, auth_timestamp: true, auth_version: true, auth_signature: true, body_md5: true }
const TIMEOUT_MAX = 2 ** 31 - 1
const requestChannel = diagnostics.channel("pusher-native:request")

// Y2038-safe, unlike upstream's `(Date.now() / 1000) | 0`; identical until then.
const timestampNow = () => Math.floor(Date.now() / 1000)

/**
 * Appends the caller's params to `entries` as upstream builds its parameter map: keys
 * in for…in order, each value read as its key is visited, a reserved key throwing.
 */
function withParams(entries, params) {
  if (params) {
    for (const key in params) {
      if (RESERVED[key] !== undefined) throw Error(key + " is a required parameter and cannot be overidden")
      entries.push([key, params[key]])
    }
  }
  return entries
}

const byKey = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)

/** Sorts as upstream does (JS `<` on keys), then stringifies each value in that order. */
function ordered(entries) {
  entries.sort(byKey)
  for (const entry of entries) entry[1] = "" + entry[1]
  return entries
}

/** `[key, value, …]` of the caller's params (the auth_* entries left to Rust), or null. */
function flatParams(entries) {
  const flat = []
  for (const [key, value] of entries) {
    if (RESERVED[key] === undefined) flat.push(key, value)
  }
  return flat.length === 0 ? null : flat
}

/**
 * The delay upstream's `setTimeout(abort, config.timeout)` ends up with, when the timeout
 * is truthy: Node's `after * 1` (a BigInt or Symbol throws), and anything outside
 * 1..2^31-1 runs after 1 ms (with Node's warning when it is too big).
 */
function timerDelay(timeout) {
  if (!timeout) return undefined
  let after = timeout * 1
  if (!(after >= 1 && after <= TIMEOUT_MAX)) {
    if (after > TIMEOUT_MAX) {
      process.emitWarning(
        `${after} does not fit into a 32-bit signed integer.\nTimeout duration was set to 1.`,
        "TimeoutOverflowWarning"
      )
    }
    after = 1
  }
  return after
}

/** The secret as bytes Rust can use; anything Node refuses throws Node's own TypeError. */
function secretBytes(secret) {
  const bytes = Token.asBytes(secret)
  if (bytes !== undefined) return bytes
  crypto.createHmac("sha256", secret)
  if (secret instanceof crypto.KeyObject) return secret.export()
  if (isAnyArrayBuffer(secret)) return Buffer.from(secret)
  return crypto.KeyObject.from(secret).export() // a CryptoKey
}

// ---- transports: one native client per config, rebuilt if the config is changed ----

const transports = new WeakMap()

// Only a string that parses as an http(s) URL counts: upstream ignores `proxy`, and its
// README shows the placeholder `proxy: "HTTP_PROXY_URL"`, which must keep working.
function proxyUrl(value) {
  try {
    const url = new URL(String(value))
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : undefined
  } catch (e) {
    return undefined
  }
}

function proxyOf(config, extras) {
  if (typeof extras.proxy === "string") {
    const url = proxyUrl(extras.proxy)
    if (url !== undefined) return url
  }
  try {
    const agentProxy = config.agent && config.agent.proxy
    if (agentProxy) return proxyUrl(agentProxy.href || agentProxy)
  } catch (e) {
    // an agent whose `proxy` cannot be read is used as upstream uses any agent: as is
  }
  return undefined
}

function caOf(ca) {
  if (ca == null) return undefined
  const parts = Array.isArray(ca) ? ca : [ca]
  return Buffer.concat(parts.flatMap((p) => [Buffer.from(p), Buffer.from("\n")]))
}

/** `retry: true` or `{ attempts = 3, minDelayMs = 100, maxDelayMs = 5000 }`; 0 ms delays allowed. */
function retryOf(retry) {
  if (!retry) return undefined
  const options = typeof retry === "object" ? retry : {}
  const number = (value, fallback) => {
    const n = Number(value)
    return value != null && Number.isFinite(n) && n >= 0 ? n : fallback
  }
  return {
    attempts: Math.min(100, Math.max(1, Math.floor(number(options.attempts, 3)))),
    minDelayMs: number(options.minDelayMs, 100),
    maxDelayMs: number(options.maxDelayMs, 5000),
  }
}

// Plain-HTTP requests run on Node's own event loop (libuv) on the main thread;
// PUSHER_NATIVE_TRANSPORT=tokio sends everything through the tokio transport instead.
let eventLoop
function eventLoopAllowed() {
  if (eventLoop === undefined) {
    eventLoop =
      process.env.PUSHER_NATIVE_TRANSPORT !== "tokio" &&
      typeof process.versions.uv === "string" &&
      process.versions.bun === undefined &&
      require("worker_threads").isMainThread
  }
  return eventLoop
}

/**
 * The native client for `config`. `base` is `config.getBaseURL()` and `key` the
 * stringified app key, both already computed in upstream's order by the caller; the
 * secret is checked (signing) before the timeout is coerced, as upstream does.
 */
function transportFor(config, base, key) {
  const token = config.token
  const secret = secretBytes(token.secret)
  const timeoutMs = timerDelay(config.timeout)
  const cached = transports.get(config)
  if (
    cached !== undefined &&
    cached.key === key &&
    cached.secret === token.secret &&
    cached.base === base &&
    cached.timeoutMs === timeoutMs &&
    cached.agent === config.agent
  ) {
    return cached.client
  }
  const extras = extrasOf(config)
  const options = {
    baseUrl: base,
    key,
    secret: Buffer.from(secret),
    timeoutMs,
    proxy: proxyOf(config, extras),
    ca: caOf(extras.ca),
    library: libraryName(),
    retry: retryOf(extras.retry),
    eventLoop: eventLoopAllowed(),
  }
  let client
  try {
    client = new native.Client(options, onReplies, onReply)
  } catch (e) {
    throw new Error(e.message)
  }
  transports.set(config, { client, key, secret: token.secret, base, timeoutMs, agent: config.agent })
  return client
}

// ---- replies: every native client hands its finished requests to one callback, in
// batches (tokio, through a threadsafe function) or one by one as positional values
// (the event loop); not a promise per request on the native side ----

// Requests in flight, by slot: a slot is reused once its reply is in, so the table
// stays small and is never rebuilt (a Map here, rehashed as ids churn, kept the
// records of finished requests reachable from its old tables long enough for V8 to
// promote them to the old generation).
const waiting = []
const freeSlots = []

function take(id) {
  const pending = waiting[id]
  waiting[id] = undefined
  freeSlots.push(id)
  return pending
}

function onReplies(replies) {
  for (let i = 0; i < replies.length; i++) {
    const reply = replies[i]
    settle(take(reply.id), reply)
  }
}

/** One reply from the event-loop transport, as positional values. */
function onReply(id, status, statusText, headers, body, url, finalUrl, retryable, errorKind, errorCode, errorMessage) {
  const pending = take(id)
  const text = typeof body === "string" ? body : undefined
  const bytes = text === undefined ? body : undefined
  settle(pending, { id, url, status, statusText, finalUrl, headers, text, bytes, attempts: 1, retryable, errorKind, errorCode, errorMessage })
}

// ---- in-flight tracking for flush() ----
// Counted inside the settle step, so the promise handed to the caller stays
// untouched: an unawaited failure is still an unhandled rejection, as upstream.
// Requests are counted by generation: each flush() closes the current one and waits
// for it (and older ones) only, so a steady stream of new requests cannot hold it off.

const inflight = new WeakMap()

/** Counts a request in, in the open (last) generation. */
function started(config) {
  let state = inflight.get(config)
  if (state === undefined) inflight.set(config, (state = { base: 0, counts: [0], waiters: [] }))
  state.counts[state.counts.length - 1]++
  return state
}

const openGeneration = (state) => state.base + state.counts.length - 1

function finished(state, generation) {
  state.counts[generation - state.base]--
  // Finished generations leave from the front; the flushes waiting on them resolve.
  while (state.counts.length > 1 && state.counts[0] === 0) {
    state.counts.shift()
    state.base++
  }
  while (state.waiters.length > 0 && state.waiters[0].generation < state.base) {
    state.waiters.shift().resolve()
  }
}

function flush(config) {
  const state = inflight.get(config)
  if (state === undefined || state.counts.every((n) => n === 0)) return Promise.resolve()
  const generation = openGeneration(state)
  state.counts.push(0)
  return new Promise((resolve) => state.waiters.push({ generation, resolve }))
}

// ---- settling a reply ----

const FAILURE = {
  timeout: { type: "aborted", code: "PUSHER_TIMEOUT" },
  network: { type: "system", code: "PUSHER_NETWORK" },
  tls: { type: "system", code: "PUSHER_TLS" },
  redirect: { type: "max-redirect", code: "PUSHER_NETWORK" },
  config: { type: "system", code: "PUSHER_NETWORK" },
}

function causeOf(reply) {
  if (reply.errorKind === "invalid-url") {
    const error = new TypeError(reply.errorMessage)
    error.code = reply.errorCode
    return error
  }
  const { type } = FAILURE[reply.errorKind] || FAILURE.network
  if (type === "aborted") return new AbortError(reply.errorMessage, reply.errorCode)
  return new FetchError(reply.errorMessage, type, reply.errorCode)
}

function failure(reply) {
  let err
  if (reply.status === 0) {
    err = new RequestError("Request failed with an error", reply.url, causeOf(reply))
    err.code = (FAILURE[reply.errorKind] || FAILURE.network).code
  } else {
    const { textOf } = Response
    err = new RequestError("Unexpected status code " + reply.status, reply.url, undefined, reply.status, textOf(reply))
    err.code = "PUSHER_HTTP"
  }
  // Decided in Rust by the retry policy's own rule: safe (a POST only when nothing can
  // have been delivered) and worth another attempt.
  err.retryable = reply.retryable === true
  err.attempts = reply.attempts
  return err
}

function publish(method, path, status, startedAt, attempts, error) {
  requestChannel.publish({ method, path, status, durationMs: performance.now() - startedAt, attempts, error })
}

/** Sends a signed request; `method` is "GET" or "POST". */
function send(config, method, options) {
  const path = config.prefixPath(options.path)
  const body = options.body ? JSON.stringify(options.body) : undefined
  // Upstream's order: the base URL, then the query (params read and checked, values
  // stringified in sorted order), then signing (the secret), then the timer.
  const base = config.getBaseURL()
  let params = null
  let key
  if (options.params) {
    const entries = ordered(withParams([["auth_key", config.token.key]], options.params))
    params = flatParams(entries)
    key = entries.find((e) => e[0] === "auth_key")[1]
  } else {
    key = "" + config.token.key // the common case: nothing to sort or check
  }
  const client = transportFor(config, base, key)
  const timestamp = timestampNow()
  if (method === "GET" && body !== undefined) {
    const url = config.getBaseURL() + path + "?" + signedQuery(config.token, method, path, params, body, timestamp)
    const cause = new TypeError("Request with GET/HEAD method cannot have body")
    const err = new RequestError("Request failed with an error", url, cause)
    err.code = "PUSHER_NETWORK"
    err.retryable = false
    err.attempts = 0
    return Promise.reject(err)
  }
  const id = freeSlots.length > 0 ? freeSlots.pop() : waiting.length
  try {
    client.start(id, method === "GET", path, params, body === undefined ? null : body, timestamp)
  } catch (error) {
    freeSlots.push(id)
    throw error
  }
  // Diagnostics cost nothing (not even a clock read) when nobody subscribes.
  const startedAt = requestChannel.hasSubscribers ? performance.now() : -1
  const state = started(config)
  const generation = openGeneration(state)
  return new Promise((resolve, reject) => {
    waiting[id] = { resolve, reject, state, generation, startedAt, method, path }
  })
}

/** Settles the caller's promise with the native reply: a Response, or a RequestError. */
function settle(pending, r) {
  finished(pending.state, pending.generation)
  const error = r.status === 0 || r.status >= 400 ? failure(r) : undefined
  if (pending.startedAt >= 0) publish(pending.method, pending.path, r.status, pending.startedAt, r.attempts, error)
  if (error !== undefined) pending.reject(error)
  else pending.resolve(new Response(r))
}

/** `body` is a string or bytes (or null); `params` as from flattenParams. */
function signedQuery(token, method, path, params, body, timestamp) {
  const secret = secretBytes(token.secret)
  return native.signedQueryString("" + token.key, secret, method, path, params, body || null, timestamp)
}

/** Hex MD5 as upstream's `createHash("md5").update(body, "utf8")`; Node's TypeError otherwise. */
function md5Of(body) {
  const bytes = Token.asBytes(body)
  if (bytes !== undefined) return native.md5Hex(bytes)
  return crypto.createHash("md5").update(body, "utf8").digest("hex")
}

/**
 * `pusher.createSignedQueryString({ method, path, params, body })`: assembled here in
 * upstream's order and with its string conversions (the result is the JS string itself,
 * lone surrogates included); the digests and the HMAC are computed in Rust.
 */
function createSignedQueryString(token, request) {
  const timestamp = timestampNow()
  const entries = [
    ["auth_key", token.key],
    ["auth_timestamp", timestamp],
    ["auth_version", "1.0"],
  ]
  if (request.body) entries.push(["body_md5", md5Of(request.body)])
  withParams(entries, request.params)
  const method = request.method.toUpperCase()
  let queryString = ordered(entries)
    .map((entry) => entry[0] + "=" + entry[1])
    .join("&")
  const signData = [method, request.path, queryString].join("\n")
  queryString += "&auth_signature=" + token.sign(signData)
  return queryString
}

module.exports = { send, createSignedQueryString, flush, requestChannel }
