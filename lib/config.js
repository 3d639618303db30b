"use strict"
const { inspect } = require("util")
const native = require("./native")
const Token = require("./token")
const { proxyOption, checkAgentProxy, caOption, checkTransportSetting } = require("./options")

// Options that `pusher` does not have, kept off the config's own fields so that
// `pusher.config` looks exactly like upstream's.
const extras = new WeakMap()

function masterKey(options) {
  let key
  if (options.encryptionMasterKey !== undefined) {
    if (options.encryptionMasterKeyBase64 !== undefined) {
      throw new Error(
        "Do not specify both encryptionMasterKey and encryptionMasterKeyBase64. " +
          "encryptionMasterKey is deprecated, please specify only encryptionMasterKeyBase64."
      )
    }
    console.warn("`encryptionMasterKey` option is deprecated in favor of `encryptionMasterKeyBase64`")
    if (typeof options.encryptionMasterKey !== "string") {
      throw new Error("encryptionMasterKey must be a string")
    }
    key = plainError(() => native.masterKeyFromRaw(options.encryptionMasterKey))
  }
  if (options.encryptionMasterKeyBase64 !== undefined) {
    if (typeof options.encryptionMasterKeyBase64 !== "string") {
      throw new Error("encryptionMasterKeyBase64 must be a string")
    }
    key = plainError(() => native.masterKeyFromBase64(options.encryptionMasterKeyBase64))
  }
  return key
}

// Native validation errors carry a napi `code`; `pusher` throws plain Errors.
function plainError(fn) {
  try {
    return fn()
  } catch (e) {
    throw new Error(e.message)
  }
}

/** `pusher.config`: the same fields and methods as `pusher`'s PusherConfig. */
function PusherConfig(rawOptions) {
  const options = rawOptions || {}
  let useTLS = false
  if (options.useTLS !== undefined && options.encrypted !== undefined) {
    throw new Error("Cannot set both `useTLS` and `encrypted` configuration options")
  } else if (options.useTLS !== undefined) {
    useTLS = options.useTLS
  } else if (options.encrypted !== undefined) {
    console.warn("`encrypted` option is deprecated in favor of `useTLS`")
    useTLS = options.encrypted
  }
  this.scheme = options.scheme || (useTLS ? "https" : "http")
  this.port = options.port
  this.appId = options.appId
  this.token = new Token(options.key, options.secret)
  this.timeout = options.timeout
  this.agent = options.agent

  const key = masterKey(options)
  if (key !== undefined) this.encryptionMasterKey = key

  // Read from the raw argument: `new Pusher()` throws upstream's TypeError here.
  if (rawOptions.host) {
    this.host = options.host
  } else if (options.cluster) {
    this.host = "api-" + options.cluster + ".pusher.com"
  } else {
    this.host = "api.pusherapp.com"
  }
  checkTransportSetting()
  checkAgentProxy(this.agent)
  extras.set(this, readExtras(options))
}

PusherConfig.prototype.prefixPath = function (subPath) {
  return "/apps/" + this.appId + subPath
}

PusherConfig.prototype.getBaseURL = function () {
  const port = this.port ? ":" + this.port : ""
  return this.scheme + "://" + this.host + port
}

// Deliberate difference: the secret and master key are redacted in logs.
PusherConfig.prototype[inspect.custom] = function (depth, opts) {
  const shown = Object.assign(Object.create(PusherConfig.prototype), this)
  if (shown.encryptionMasterKey !== undefined) shown.encryptionMasterKey = "[redacted]"
  delete shown[inspect.custom]
  return inspect({ ...shown }, opts).replace(/^\{/, "PusherConfig {")
}

// JSON too: `JSON.stringify(pusher.config)` shows the token redacted (Token#toJSON)
// and the master key as "[redacted]". Non-enumerable, so for…in stays upstream's.
Object.defineProperty(PusherConfig.prototype, "toJSON", {
  value: function toJSON() {
    const shown = Object.assign({}, this)
    if (shown.encryptionMasterKey !== undefined) shown.encryptionMasterKey = "[redacted]"
    return shown
  },
  writable: true,
  configurable: true,
})

function readExtras(options) {
  return {
    proxy: proxyOption(options.proxy),
    ca: caOption(options.ca),
    retry: options.retry,
    limits: options.limits,
    maxResponseSize: options.maxResponseSize,
    maxSockets: options.maxSockets,
    autoChunk: options.autoChunk === true,
    maxResponseSize: positiveCount("maxResponseSize", options.maxResponseSize),
    maxSockets: positiveCount("maxSockets", options.maxSockets),
  }
}

/** A whole number of at least 1, or Infinity (no limit); undefined for the core's default. */
function positiveCount(name, value) {
  if (value === undefined) return undefined
  if (typeof value !== "number") {
    const error = new TypeError(`The "${name}" option must be of type number. Received ${inspect(value)}`)
    error.code = "ERR_INVALID_ARG_TYPE"
    throw error
  }
  if (!(value === Infinity || (Number.isSafeInteger(value) && value >= 1))) {
    const error = new RangeError(`The "${name}" option must be a whole number >= 1 or Infinity. Received ${value}`)
    error.code = "ERR_OUT_OF_RANGE"
    throw error
  }
  return value
}

module.exports = PusherConfig
module.exports.extrasOf = (config) => extras.get(config) || readExtras({})
