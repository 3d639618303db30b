"use strict"
const native = require("./native")
const parseConnectionURL = require("./connection-url")
const errors = require("./errors")
const PusherConfig = require("./config")
const Token = require("./token")
const WebHook = require("./webhook")
const validate = require("./validate")
const requests = require("./request")
const chunked = require("./chunked")
const queries = require("./queries")
const { limitExceeded } = require("./options")

const { extrasOf } = PusherConfig
const DEFAULT_LIMITS = native.defaultLimits()

/**
 * Access to the Channels HTTP API, webhooks and authorization.
 * @param {object} options see README: appId, key, secret, cluster or host, useTLS, …
 */
function Pusher(options) {
  this.config = new PusherConfig(options)
}

/** `scheme://key:secret@host:port/apps/<appId>`; URL fields take precedence. */
Pusher.forURL = function (pusherUrl, options) {
  // Fields as upstream's url.parse gives them (its URIError and TypeErrors included).
  const apiUrl = parseConnectionURL(pusherUrl)
  const apiPath = apiUrl.pathname.split("/")
  const apiAuth = apiUrl.auth.split(":")
  return new Pusher(
    Object.assign({}, options || {}, {
      scheme: apiUrl.protocol.replace(/:$/, ""),
      host: apiUrl.hostname,
      port: parseInt(apiUrl.port, 10) || undefined,
      appId: parseInt(apiPath[apiPath.length - 1], 10),
      key: apiAuth[0],
      secret: apiAuth[1],
    })
  )
}

Pusher.forCluster = function (cluster, options) {
  return new Pusher(Object.assign({}, options || {}, { host: "api-" + cluster + ".pusher.com" }))
}

Pusher.prototype.authorizeChannel = function (socketId, channel, data) {
  validate.socketId(socketId)
  validate.channel(channel)
  const token = this.config.token
  const result = {}
  let signed = socketId + ":" + channel
  if (data) {
    const serialized = JSON.stringify(data)
    signed += ":" + (serialized === undefined ? "" : serialized)
    result.channel_data = serialized
  }
  result.auth = token.key + ":" + token.sign(signed)
  if (validate.isEncryptedChannel(channel)) {
    if (this.config.encryptionMasterKey === undefined) {
      throw new Error("Cannot generate shared_secret because encryptionMasterKey is not set")
    }
    result.shared_secret = Buffer.from(this.channelSharedSecret(channel)).toString("base64")
  }
  return result
}

/** @deprecated the same function as authorizeChannel */
Pusher.prototype.authenticate = Pusher.prototype.authorizeChannel

Pusher.prototype.authenticateUser = function (socketId, userData) {
  validate.socketId(socketId)
  validate.userData(userData)
  const token = this.config.token
  const serialized = JSON.stringify(userData)
  // Signed before the key is stringified, as upstream orders it.
  const signature = token.sign(`${socketId}::user::${serialized}`)
  return {
    auth: `${token.key}:${signature}`,
    user_data: serialized,
  }
}

Pusher.prototype.sendToUser = function (userId, event, data) {
  validate.eventName(event)
  validate.userId(userId)
  return triggerEvent(this, [`#server-to-user-${userId}`], event, data)
}

Pusher.prototype.terminateUserConnections = function (userId) {
  validate.userId(userId)
  return this.post({ path: `/users/${userId}/terminate_connections`, body: {} })
}

Pusher.prototype.trigger = function (channels, event, data, params) {
  if (params && params.socket_id) {
    validate.socketId(params.socket_id)
  }
  if (!(channels instanceof Array)) {
    channels = [channels]
  }
  validate.eventName(event)
  const extras = extrasOf(this.config)
  if (!extras.autoChunk) {
    const limits = limitsOf(extras)
    if (limits) throwIf(native.channelCountError(channels.length, limits.channels))
    else if (channels.length > 100) throw new Error("Can't trigger a message to more than 100 channels")
  }
  for (let i = 0; i < channels.length; i++) {
    validate.channel(channels[i])
  }
  return triggerEvent(this, channels, event, data, params)
}

Pusher.prototype.triggerBatch = function (batch) {
  const extras = extrasOf(this.config)
  const limits = limitsOf(extras)
  // Checked before the data are encoded into the caller's batch objects.
  if (limits && !extras.autoChunk) throwIf(native.batchSizeError(batch.length, limits.batchSize))
  for (let i = 0; i < batch.length; i++) {
    const item = batch[i]
    const data = validate.isEncryptedChannel(batch[i].channel)
      ? encrypt(this, batch[i].channel, batch[i].data)
      : ensureJSON(batch[i].data)
    sloppySet(item, "data", data)
  }
  if (limits) {
    for (const event of batch) checkEventSize(limits, event.name, event.data)
  }
  if (extras.autoChunk) {
    const size = limits ? limits.batchSize : DEFAULT_LIMITS.batchSize
    if (batch.length > size) return chunked.batches(this, batch, size)
  }
  const pusher = this // upstream posts through `pusher.post` (its name shows in TypeErrors)
  return pusher.post({ path: "/batch_events", body: { batch: batch } })
}

// Copied like upstream's `Object.assign({}, options, { method })`, which runs every
// getter (and Proxy trap) of the caller's object first.
Pusher.prototype.post = function (options) {
  return requests.send(this.config, "POST", Object.assign({}, options))
}

Pusher.prototype.get = function (options) {
  return requests.send(this.config, "GET", Object.assign({}, options))
}

Pusher.prototype.webhook = function (request) {
  return new WebHook(this.config.token, request)
}

Pusher.prototype.createSignedQueryString = function (options) {
  return requests.createSignedQueryString(this.config.token, options)
}

Pusher.prototype.channelSharedSecret = function (channel) {
  const key = this.config.encryptionMasterKey
  if (typeof channel !== "string" || !Buffer.isBuffer(key)) {
    // Odd input: Node computes (or throws) exactly as upstream does.
    return require("crypto").createHash("sha256").update(Buffer.concat([Buffer.from(channel), key])).digest()
  }
  return native.channelSharedSecret(channel, key)
}

// ---- beyond upstream: non-enumerable, so the prototype's keys stay upstream's ----

Object.defineProperties(Pusher.prototype, {
  /** Resolves once every request this instance started has settled. */
  flush: {
    value: function flush() {
      return requests.flush(this.config)
    },
    writable: true,
    configurable: true,
  },
  /** A webhook check that never throws: `{ valid, reason?, events, time }`. */
  verifyWebhook: {
    value: function verifyWebhook(request, options) {
      return WebHook.verifyWebhook(this.config, request, options)
    },
    writable: true,
    configurable: true,
  },
})

// channels(), channel(), users(): typed queries that go through `this.get`.
for (const name of Object.keys(queries)) {
  Object.defineProperty(Pusher.prototype, name, { value: queries[name], writable: true, configurable: true })
}

Pusher.Token = Token
Pusher.RequestError = errors.RequestError
Pusher.WebHookError = errors.WebHookError

// ---- internals ----

// `obj.key = value` as upstream's sloppy-mode code does it: a frozen object, a getter
// without setter or a refusing Proxy is silently left alone instead of throwing.
function sloppySet(target, key, value) {
  if (target === null || target === undefined) {
    throw new TypeError("Cannot set properties of " + target + " (setting '" + key + "')")
  }
  Reflect.set(Object(target), key, value, target)
}

function ensureJSON(data) {
  return typeof data === "string" ? data : JSON.stringify(data)
}

function encrypt(pusher, channel, data) {
  const key = pusher.config.encryptionMasterKey
  if (key === undefined) {
    throw new Error("Set encryptionMasterKey before triggering events on encrypted channels")
  }
  const json = JSON.stringify(data)
  // tweetnacl-util's decodeUTF8 (0.15.1) throws this for undefined, a function or a Symbol.
  if (typeof json !== "string") throw new TypeError("expected string")
  return native.encryptForChannel(channel, Buffer.isBuffer(key) ? key : Buffer.from(key), json)
}

function triggerEvent(pusher, channels, event, data, params) {
  let body
  if (channels.length === 1 && validate.isEncryptedChannel(channels[0])) {
    body = { name: event, data: encrypt(pusher, channels[0], data), channels: [channels[0]], ...params }
  } else {
    for (let i = 0; i < channels.length; i++) {
      if (validate.isEncryptedChannel(channels[i])) {
        throw new Error("You cannot trigger to multiple channels when using encrypted channels")
      }
    }
    body = { name: event, data: ensureJSON(data), channels: channels, ...params }
  }
  const extras = extrasOf(pusher.config)
  const limits = limitsOf(extras)
  if (limits) checkEventSize(limits, body.name, body.data)
  if (extras.autoChunk && Array.isArray(body.channels)) {
    const size = limits ? limits.channels : DEFAULT_LIMITS.channels
    if (body.channels.length > size) return chunked.fanOut(pusher, body, size)
  }
  return pusher.post({ path: "/events", body: body })
}

/** `limits: true` or `{ eventBytes, batchSize, channels }`; a missing or unusable value is the default. */
function limitsOf(extras) {
  const limits = extras.limits
  if (!limits) return undefined
  if (typeof limits !== "object") return DEFAULT_LIMITS
  const pick = (name) => {
    const n = Math.floor(Number(limits[name]))
    return n >= 1 && n <= 0xffffffff ? n : DEFAULT_LIMITS[name]
  }
  return { eventBytes: pick("eventBytes"), batchSize: pick("batchSize"), channels: pick("channels") }
}

function checkEventSize(limits, name, data) {
  if (typeof data === "string") throwIf(native.eventSizeError("" + name, data, limits.eventBytes))
}

function throwIf(message) {
  if (message != null) throw limitExceeded(message)
}

module.exports = Pusher
