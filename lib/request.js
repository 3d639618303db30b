"use strict"
// The request pipeline `pusher` runs in lib/requests.js, with signing and the HTTP
// exchange moved into one native call per request. JSON.stringify, the reserved
// parameter check and the `String()` of parameter values stay in JS, where their JS
// semantics are the contract.

const diagnostics = require("diagnostics_channel")
const { RequestError } = require("./errors")
const Response = require("./response")
const { transportFor } = require("./client")
const { failure } = require("./failure")
const { started, openGeneration, finished, flush } = require("./inflight")
const { timestampNow, withParams, ordered, flatParams, signedQuery, createSignedQueryString } = require("./signing")

const requestChannel = diagnostics.channel("pusher-native:request")

// ---- replies: every native client hands each finished request to `onReply`, as
// positional values, whichever transport carried it; not a promise per request on the
// native side ----

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

/** One reply (see `Client` in binding.d.ts for the arguments). */
function onReply(id, status, statusText, headers, body, url, finalUrl, retryable, errorKind, errorCode, errorMessage, attempts) {
  const pending = take(id)
  const text = typeof body === "string" ? body : undefined
  const bytes = text === undefined ? body : undefined
  settle(pending, { id, url, status, statusText, finalUrl, headers, text, bytes, attempts, retryable, errorKind, errorCode, errorMessage })
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
  const client = transportFor(config, base, key, onReply)
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

module.exports = { send, createSignedQueryString, flush, requestChannel }
