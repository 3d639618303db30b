"use strict"
// The web build's stand-in for lib/request.js: the same pipeline (upstream's order of
// reads, checks and signing, lib/signing.js), sent with the platform's `fetch`. Resolves
// with the platform Response; rejects with the same RequestError shapes as the native
// build (code, retryable, attempts; node-fetch-like FetchError / AbortError causes).

const { RequestError, FetchError, AbortError } = require("../errors")
const { started, openGeneration, finished, flush } = require("../inflight")
const { timestampNow, withParams, ordered, flatParams, signedQuery, createSignedQueryString } = require("../signing")

// Set by scripts/build-web.js from package.json.
// eslint-disable-next-line no-undef
const LIBRARY = "pusher-native " + PUSHER_NATIVE_VERSION
const TIMEOUT_MAX = 2 ** 31 - 1
// Failures where nothing reached the server: a POST may be sent again.
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"])
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
  const state = started(config)
  const generation = openGeneration(state)
  const done = (value) => {
    finished(state, generation)
    return value
  }
  const fail = (error) => {
    finished(state, generation)
    throw error
  }
  return exchange(url, method, body, timeoutMs).then(done, fail)
}

async function exchange(url, method, body, timeoutMs) {
  const headers = { accept: "*/*", "x-pusher-library": LIBRARY }
  if (body !== undefined) headers["content-type"] = "application/json"
  const init = { method, headers, body, redirect: "follow" }
  if (timeoutMs !== undefined) init.signal = AbortSignal.timeout(timeoutMs)
  let response
  try {
    new URL(url) // eslint-disable-line no-new
  } catch (e) {
    const cause = new TypeError(e.message)
    cause.code = "ERR_INVALID_URL"
    throw failed(url, cause, "PUSHER_NETWORK", false)
  }
  try {
    response = await fetch(url, init)
    if (response.status < 400) return response
    const text = await response.text()
    const err = new RequestError("Unexpected status code " + response.status, url, undefined, response.status, text)
    err.code = "PUSHER_HTTP"
    const refused = (response.status === 429 || response.status === 503) && response.headers.has("retry-after")
    err.retryable = method === "GET" ? response.status === 429 || response.status >= 500 : refused
    err.attempts = 1
    throw err
  } catch (e) {
    if (e instanceof RequestError) throw e
    if (init.signal && init.signal.aborted) {
      throw failed(url, new AbortError(`request to ${url} timed out after ${timeoutMs} ms`, "ETIMEDOUT"), "PUSHER_TIMEOUT", method === "GET")
    }
    const cause = (e && e.cause) || e || {}
    const code = typeof cause.code === "string" ? UNDICI_CODES[cause.code] || cause.code : undefined
    const reason = (cause.message || (e && e.message) || String(e)).split("\n")[0]
    const error = new FetchError(`request to ${url} failed, reason: ${reason}`, "system", code)
    throw failed(url, error, "PUSHER_NETWORK", method === "GET" || NOT_SENT.has(code))
  }
}

function failed(url, cause, code, retryable) {
  const err = new RequestError("Request failed with an error", url, cause)
  err.code = code
  err.retryable = retryable
  err.attempts = response0(cause)
  return err
}

// A request that never left (an invalid URL, a GET with a body) made no attempt.
const response0 = (cause) => (cause instanceof TypeError ? 0 : 1)

module.exports = { send, createSignedQueryString, flush }
