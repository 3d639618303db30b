"use strict"
// The web build's stand-in for lib/request.js: the same pipeline (upstream's order of
// reads, checks and signing, lib/signing.js), sent with the platform's `fetch`. Resolves
// with the platform Response; rejects with the same RequestError shapes as the native
// build (code, retryable, attempts; node-fetch-like FetchError / AbortError causes).

const { RequestError, FetchError, AbortError } = require("../errors")
const { extrasOf } = require("../config")
const { policyOf, nextDelay, retryAfterMs, sleep } = require("./retry")
const { builtin } = require("./builtins.mjs")
const { started, openGeneration, finished, flush } = require("../inflight")
const { timestampNow, withParams, ordered, flatParams, signedQuery, createSignedQueryString } = require("../signing")

// `diagnostics_channel` where the runtime has it (Node, Bun, Deno): the same channel
// and messages as the native build's.
const diagnostics = builtin("diagnostics_channel")
const requestChannel = diagnostics ? diagnostics.channel("pusher-native:request") : { hasSubscribers: false }

// Set by scripts/build-web.js from package.json.
// eslint-disable-next-line no-undef
const LIBRARY = "pusher-native " + PUSHER_NATIVE_VERSION
const TIMEOUT_MAX = 2 ** 31 - 1
// The core's defaults (pusher_core::http::limits): requests in flight per origin, and
// the largest response body read.
const MAX_SOCKETS_DEFAULT = 256
const MAX_RESPONSE_SIZE_DEFAULT = 128 * 1024 * 1024
// Statuses whose Response cannot have a body.
const NULL_BODY = new Set([101, 204, 205, 304])
// Failures where nothing reached the server: a POST may be sent again.
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"])
// Certificate and handshake failures, as Node names them (the platform's fetch passes them on).
const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_|SSL|TLS|HOSTNAME|ALTNAME/
// Node's fetch (undici) names some socket failures its own way; the OS's codes, as node-fetch.
const UNDICI_CODES = { UND_ERR_SOCKET: "ECONNRESET", UND_ERR_CLOSED: "ECONNRESET", UND_ERR_CONNECT_TIMEOUT: "ETIMEDOUT" }

/** As lib/client.js: Node's `timeout * 1`; outside 1..2^31-1 it is 1 ms (upstream's setTimeout). */
function timerDelay(timeout) {
  if (!timeout) return undefined
  const after = timeout * 1
  return after >= 1 && after <= TIMEOUT_MAX ? after : 1
}

function send(config, method, options) {
  const path = config.prefixPath(options.path)
  const body = options.body ? JSON.stringify(options.body) : undefined
  const base = config.getBaseURL()
  let params = null
  if (options.params) params = flatParams(ordered(withParams([["auth_key", config.token.key]], options.params)))
  const timestamp = timestampNow()
  const url = base + path + "?" + signedQuery(config.token, method, path, params, body, timestamp)
  const timeoutMs = timerDelay(config.timeout)
  if (method === "GET" && body !== undefined) {
    return Promise.reject(failed(url, new TypeError("Request with GET/HEAD method cannot have body"), "PUSHER_NETWORK", false))
  }
  const extras = extrasOf(config)
  const limits = {
    sockets: positive(extras.maxSockets, MAX_SOCKETS_DEFAULT),
    size: positive(extras.maxResponseSize, MAX_RESPONSE_SIZE_DEFAULT),
    retry: policyOf(extras.retry),
  }
  const startedAt = requestChannel.hasSubscribers ? performance.now() : -1
  const publish = (status, attempts, error) => {
    if (startedAt >= 0) requestChannel.publish({ method, path, status, durationMs: performance.now() - startedAt, attempts, error })
  }
  const state = started(config)
  const generation = openGeneration(state)
  const done = (response) => {
    finished(state, generation)
    publish(response.status, attemptsMade.get(response) || 1, undefined)
    return response
  }
  const fail = (error) => {
    finished(state, generation)
    publish(error.status || 0, error.attempts, error)
    throw error
  }
  return exchange(url, method, body, timeoutMs, limits).then(done, fail)
}

// maxSockets / maxResponseSize as lib/config.js reads them: a whole number >= 1, or Infinity (no limit).
const positive = (value, fallback) => (value === Infinity || (Number.isSafeInteger(value) && value > 0) ? value : fallback)

// ---- at most `limits.sockets` requests in flight per origin (as the native pool):
// the rest wait their turn, so a burst of thousands does not open thousands of
// connections; an origin's entry goes once nothing is queued for it ----

const gates = new Map()

function acquire(origin, limit, signal) {
  let gate = gates.get(origin)
  if (gate === undefined) gates.set(origin, (gate = { active: 0, waiting: [] }))
  if (gate.active < limit) {
    gate.active++
    return undefined
  }
  return new Promise((resolve, reject) => {
    const turn = () => {
      if (signal) signal.removeEventListener("abort", giveUp)
      resolve()
    }
    // A timeout while waiting rejects now, and the place in the queue goes.
    const giveUp = () => {
      const i = gate.waiting.indexOf(turn)
      if (i >= 0) gate.waiting.splice(i, 1)
      reject(signal.reason)
    }
    if (signal) signal.addEventListener("abort", giveUp, { once: true })
    gate.waiting.push(turn)
  })
}

function release(origin) {
  const gate = gates.get(origin)
  const next = gate.waiting.shift()
  if (next !== undefined) return next() // the slot passes on, still counted
  if (--gate.active === 0) gates.delete(origin)
}

/** The body, at most `limit` bytes (else a node-fetch "max-size" FetchError). */
async function readBody(response, url, limit) {
  if (response.body === null) return new Uint8Array(0)
  const reader = response.body.getReader()
  const chunks = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      reader.cancel().catch(() => {})
      throw new FetchError(`content size at ${url} over limit: ${limit}`, "max-size")
    }
    chunks.push(value)
  }
  if (chunks.length === 1) return chunks[0]
  const bytes = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    bytes.set(c, at)
    at += c.byteLength
  }
  return bytes
}

/** A Response over the whole body, read already (as the native build's): it cannot break off later. */
function whole(response, bytes) {
  const copy = new Response(NULL_BODY.has(response.status) ? null : bytes, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  })
  Object.defineProperty(copy, "url", { value: response.url, enumerable: false })
  Object.defineProperty(copy, "redirected", { value: response.redirected, enumerable: false })
  return copy
}

async function exchange(url, method, body, timeoutMs, limits) {
  const headers = { accept: "*/*", "x-pusher-library": LIBRARY }
  if (body !== undefined) headers["content-type"] = "application/json"
  const init = { method, headers, body, redirect: "follow" }
  if (timeoutMs !== undefined) init.signal = AbortSignal.timeout(timeoutMs)
  let origin
  try {
    origin = new URL(url)
  } catch (e) {
    const cause = new TypeError(e.message)
    cause.code = "ERR_INVALID_URL"
    throw failed(url, cause, "PUSHER_NETWORK", false)
  }
  if (origin.protocol !== "http:" && origin.protocol !== "https:") {
    throw failed(url, new TypeError("Only HTTP(S) protocols are supported"), "PUSHER_NETWORK", false)
  }
  return attempts(url, method, init, timeoutMs, limits, origin.origin)
}

// The Retry-After of a failed attempt's answer, for the retry policy; the attempts a
// Response took, for diagnostics_channel.
const retryAfters = new WeakMap()
const attemptsMade = new WeakMap()

/**
 * One attempt, or as many as `retry` allows while the failure is `retryable`. The
 * `timeout` bounds the whole call, waits between attempts included.
 */
async function attempts(url, method, init, timeoutMs, limits, origin) {
  for (let n = 1; ; n++) {
    let error
    try {
      const response = await attempt(url, method, init, timeoutMs, limits, origin)
      if (n > 1) attemptsMade.set(response, n)
      return response
    } catch (e) {
      error = e
    }
    error.attempts = n
    const delay = limits.retry && error.retryable && error.code !== "PUSHER_TIMEOUT" ? nextDelay(limits.retry, n, retryAfters.get(error)) : undefined
    if (delay === undefined) throw error
    try {
      await sleep(delay, init.signal)
    } catch (e) {
      const timedOut = failed(url, timeoutError(url, timeoutMs), "PUSHER_TIMEOUT", method === "GET")
      timedOut.attempts = n
      throw timedOut
    }
  }
}

const timeoutError = (url, timeoutMs) => new AbortError(`request to ${url} timed out after ${timeoutMs} ms`, "ETIMEDOUT")

async function attempt(url, method, init, timeoutMs, limits, origin) {
  let held = false
  try {
    const waiting = acquire(origin, limits.sockets, init.signal)
    if (waiting !== undefined) await waiting
    held = true
    const response = await fetch(url, init)
    const bytes = await readBody(response, url, limits.size)
    if (response.status < 400) return whole(response, bytes)
    const text = new TextDecoder().decode(bytes)
    const err = new RequestError("Unexpected status code " + response.status, url, undefined, response.status, text)
    err.code = "PUSHER_HTTP"
    const retryAfter = response.headers.get("retry-after")
    // A 429/503 with a usable Retry-After says the request was refused, not processed.
    const refused = (response.status === 429 || response.status === 503) && retryAfterMs(retryAfter) !== undefined
    err.retryable = method === "GET" ? response.status === 429 || response.status >= 500 : refused
    err.attempts = 1
    if (retryAfter !== null) retryAfters.set(err, retryAfter)
    throw err
  } catch (e) {
    if (e instanceof RequestError) throw e
    if (init.signal && init.signal.aborted) {
      throw failed(url, timeoutError(url, timeoutMs), "PUSHER_TIMEOUT", method === "GET")
    }
    if (e instanceof FetchError) throw failed(url, e, "PUSHER_NETWORK", false) // max-size: an answer came
    const cause = (e && e.cause) || e || {}
    const code = typeof cause.code === "string" ? UNDICI_CODES[cause.code] || cause.code : undefined
    const reason = (cause.message || (e && e.message) || String(e)).split("\n")[0]
    const error = new FetchError(`request to ${url} failed, reason: ${reason}`, "system", code)
    if (code !== undefined && TLS_CODE.test(code)) throw failed(url, error, "PUSHER_TLS", false)
    throw failed(url, error, "PUSHER_NETWORK", method === "GET" || NOT_SENT.has(code))
  } finally {
    if (held) release(origin)
  }
}

function failed(url, cause, code, retryable) {
  const err = new RequestError("Request failed with an error", url, cause)
  err.code = code
  err.retryable = retryable
  err.attempts = attemptsOf(cause)
  return err
}

// A request that never left (an invalid URL, a GET with a body) made no attempt.
const attemptsOf = (cause) => (cause instanceof TypeError ? 0 : 1)

module.exports = { send, createSignedQueryString, flush, requestChannel }
