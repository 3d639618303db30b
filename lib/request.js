"use strict"
// The request pipeline `pusher` runs in lib/requests.js, with signing and the HTTP
// exchange moved into one native call per request. JSON.stringify, the reserved
// parameter check and the `String()` of parameter values stay here, where their JS
// semantics are the contract.

const crypto = require("crypto")
const diagnostics = require("diagnostics_channel")
const native = require("./native")
const { RequestError } = require("./errors")
const Response = require("./response")
const Token = require("./token")
const { extrasOf } = require("./config")
const { version } = require("../package.json")

const LIBRARY = "pusher-native " + version
const RESERVED = new Set(["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"])
const requestChannel = diagnostics.channel("pusher-native:request")

// Y2038-safe, unlike upstream's `(Date.now() / 1000) | 0`; identical until then.
const timestampNow = () => Math.floor(Date.now() / 1000)

/** The caller's parameter names; throws upstream's message for a reserved one. */
function paramKeys(params) {
  const keys = []
  if (params) {
    for (const key in params) {
      if (RESERVED.has(key)) throw Error(key + " is a required parameter and cannot be overidden")
      keys.push(key)
    }
  }
  return keys
}

/** `[key, "" + value, …]`, or null when there are none. */
function flattenParams(params, keys) {
  if (keys.length === 0) return null
  const flat = new Array(keys.length * 2)
  for (let i = 0; i < keys.length; i++) {
    flat[2 * i] = keys[i]
    flat[2 * i + 1] = "" + params[keys[i]]
  }
  return flat
}

/** The secret as bytes Rust can use; anything else throws Node's own TypeError. */
function secretBytes(secret) {
  const bytes = Token.asBytes(secret)
  if (bytes !== undefined) return bytes
  if (secret instanceof crypto.KeyObject && secret.type === "secret") return secret.export()
  crypto.createHmac("sha256", secret)
  return Buffer.from(String(secret))
}

// ---- transports: one native client per config, rebuilt if the config is changed ----

const transports = new WeakMap()

function proxyOf(config, extras) {
  if (typeof extras.proxy === "string" && extras.proxy !== "") return extras.proxy
  const agentProxy = config.agent && config.agent.proxy
  if (agentProxy) return String(agentProxy.href || agentProxy)
  return undefined
}

function caOf(ca) {
  if (ca == null) return undefined
  const parts = Array.isArray(ca) ? ca : [ca]
  return Buffer.concat(parts.flatMap((p) => [Buffer.from(p), Buffer.from("\n")]))
}

function retryOf(retry) {
  if (!retry) return undefined
  return {
    attempts: Math.max(1, Math.floor(Number(retry.attempts) || 1)),
    minDelayMs: Number(retry.minDelayMs) || 100,
    maxDelayMs: Number(retry.maxDelayMs) || 5000,
  }
}

function transportFor(config) {
  const token = config.token
  const cached = transports.get(config)
  if (
    cached !== undefined &&
    cached.key === token.key &&
    cached.secret === token.secret &&
    cached.base === config.scheme + "\0" + config.host + "\0" + config.port &&
    cached.timeout === config.timeout &&
    cached.agent === config.agent
  ) {
    return cached.client
  }
  const extras = extrasOf(config)
  const secret = secretBytes(token.secret)
  let client
  try {
    client = new native.Client({
      baseUrl: config.getBaseURL(),
      key: "" + token.key,
      secret: Buffer.from(secret),
      timeoutMs: config.timeout ? Number(config.timeout) : undefined,
      proxy: proxyOf(config, extras),
      ca: caOf(extras.ca),
      library: LIBRARY,
      retry: retryOf(extras.retry),
    })
  } catch (e) {
    throw new Error(e.message)
  }
  transports.set(config, {
    client,
    key: token.key,
    secret: token.secret,
    base: config.scheme + "\0" + config.host + "\0" + config.port,
    timeout: config.timeout,
    agent: config.agent,
  })
  return client
}

// ---- in-flight tracking for flush() ----
// Counted inside the settle step, so the promise handed to the caller stays
// untouched: an unawaited failure is still an unhandled rejection, as upstream.

const inflight = new WeakMap()

function started(config) {
  let state = inflight.get(config)
  if (state === undefined) inflight.set(config, (state = { count: 0, waiters: [] }))
  state.count++
  return state
}

function finished(state) {
  if (--state.count === 0 && state.waiters.length > 0) {
    const waiters = state.waiters
    state.waiters = []
    for (const resolve of waiters) resolve()
  }
}

function flush(config) {
  const state = inflight.get(config)
  if (state === undefined || state.count === 0) return Promise.resolve()
  return new Promise((resolve) => state.waiters.push(resolve))
}

// ---- settling a reply ----

const FAILURE = {
  timeout: { name: "AbortError", type: "aborted", code: "PUSHER_TIMEOUT", retryable: true },
  network: { name: "FetchError", type: "system", code: "PUSHER_NETWORK", retryable: true },
  tls: { name: "FetchError", type: "system", code: "PUSHER_TLS", retryable: false },
  redirect: { name: "FetchError", type: "max-redirect", code: "PUSHER_NETWORK", retryable: false },
  config: { name: "FetchError", type: "system", code: "PUSHER_NETWORK", retryable: false },
}

function causeOf(reply) {
  if (reply.errorKind === "invalid-url") {
    const error = new TypeError(reply.errorMessage)
    error.code = reply.errorCode
    return error
  }
  const kind = FAILURE[reply.errorKind] || FAILURE.network
  const error = new Error(reply.errorMessage)
  error.name = kind.name
  error.type = kind.type
  error.code = reply.errorCode
  if (kind.type === "system") error.errno = reply.errorCode
  return error
}

function failure(reply) {
  let err
  if (reply.status === 0) {
    err = new RequestError("Request failed with an error", reply.url, causeOf(reply))
    const kind = FAILURE[reply.errorKind] || { code: "PUSHER_NETWORK", retryable: false }
    err.code = kind.code
    err.retryable = kind.retryable
  } else {
    const { textOf } = Response
    err = new RequestError("Unexpected status code " + reply.status, reply.url, undefined, reply.status, textOf(reply))
    err.code = "PUSHER_HTTP"
    err.retryable = reply.status === 429 || reply.status >= 500
  }
  err.attempts = reply.attempts
  return err
}

function settle(reply) {
  if (reply.status === 0 || reply.status >= 400) throw failure(reply)
  return new Response(reply)
}

function observed(promise, method, path, started) {
  return promise.then(
    (reply) => {
      requestChannel.publish({
        method,
        path,
        status: reply.status,
        durationMs: performance.now() - started,
        attempts: reply.attempts,
        error: reply.status === 0 || reply.status >= 400 ? failure(reply) : undefined,
      })
      return reply
    },
    (error) => {
      requestChannel.publish({ method, path, status: 0, durationMs: performance.now() - started, attempts: 1, error })
      throw error
    }
  )
}

/** Sends a signed request; `method` is "GET" or "POST". */
function send(config, method, options) {
  const path = config.prefixPath(options.path)
  const body = options.body ? JSON.stringify(options.body) : undefined
  const params = flattenParams(options.params, paramKeys(options.params))
  const client = transportFor(config)
  const timestamp = timestampNow()
  if (method === "GET" && body !== undefined) {
    const url = config.getBaseURL() + path + "?" + signedQuery(config.token, method, path, params, body, timestamp)
    const cause = new TypeError("Request with GET/HEAD method cannot have body")
    return Promise.reject(new RequestError("Request failed with an error", url, cause))
  }
  let reply = client.send(method, path, params, body === undefined ? null : body, timestamp)
  if (requestChannel.hasSubscribers) reply = observed(reply, method, path, performance.now())
  const state = started(config)
  return reply.then((r) => {
    finished(state)
    return settle(r)
  })
}

/** `body` is a string or bytes (or null); `params` as from flattenParams. */
function signedQuery(token, method, path, params, body, timestamp) {
  const secret = secretBytes(token.secret)
  return native.signedQueryString("" + token.key, secret, method, path, params, body || null, timestamp)
}

/** `pusher.createSignedQueryString({ method, path, params, body })`. */
function createSignedQueryString(token, request) {
  const timestamp = timestampNow()
  let body = null
  if (request.body) {
    body = Token.asBytes(request.body)
    // Upstream hashes the body first; Node's md5 throws its own TypeError for the rest.
    if (body === undefined) crypto.createHash("md5").update(request.body, "utf8")
  }
  const keys = paramKeys(request.params)
  const method = request.method.toUpperCase()
  const params = flattenParams(request.params, keys)
  // Upstream joins with Array#join, which prints null and undefined as "".
  const path = request.path == null ? "" : "" + request.path
  return signedQuery(token, method, path, params, body, timestamp)
}

module.exports = { send, createSignedQueryString, flush, requestChannel }
