"use strict"
// The native client behind each config: built from the config's options (timeout,
// proxy, ca, retry, which transport), cached, rebuilt when the config changes.

const native = require("./native")
const { extrasOf } = require("./config")
const { secretBytes } = require("./signing")

// Read when the first client is made: package.json costs ~1.5 ms of cold start.
let library
const libraryName = () => (library ||= "pusher-native " + require("../package.json").version)

const TIMEOUT_MAX = 2 ** 31 - 1

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

// The core's defaults: 3 attempts, 100 ms to 5 s (at most 100 attempts).
const RETRY = native.defaultRetry()

/** `retry: true` or `{ attempts, minDelayMs, maxDelayMs }`; 0 ms delays allowed. */
function retryOf(retry) {
  if (!retry) return undefined
  const options = typeof retry === "object" ? retry : {}
  const number = (value, fallback) => {
    const n = Number(value)
    return value != null && Number.isFinite(n) && n >= 0 ? n : fallback
  }
  return {
    attempts: Math.min(RETRY.maxAttempts, Math.max(1, Math.floor(number(options.attempts, RETRY.attempts)))),
    minDelayMs: number(options.minDelayMs, RETRY.minDelayMs),
    maxDelayMs: number(options.maxDelayMs, RETRY.maxDelayMs),
  }
}

// Option parsing and its errors belong to config.js: anything else is the default here.
const positive = (value) => (typeof value === "number" && value >= 1 ? value : undefined)

// Requests run on Node's own event loop (libuv) on the main thread;
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
function transportFor(config, base, key, onReply) {
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
    maxResponseSize: positive(extras.maxResponseSize),
    maxSockets: positive(extras.maxSockets),
  }
  let client
  try {
    client = new native.Client(options, onReply)
  } catch (e) {
    throw new Error(e.message)
  }
  transports.set(config, { client, key, secret: token.secret, base, timeoutMs, agent: config.agent })
  return client
}

module.exports = { transportFor }
