"use strict"
const native = require("./native")
const errors = require("./errors")
const PusherConfig = require("./config")
const Token = require("./token")
const WebHook = require("./webhook")
const validate = require("./validate")
const requests = require("./request")
const chunked = require("./chunked")

const { extrasOf } = PusherConfig
const DEFAULT_LIMITS = { eventBytes: 10240, batchSize: 10, channels: 100 }

/**
 * Access to the Channels HTTP API, webhooks and authorization.
 * @param {object} options see README: appId, key, secret, cluster or host, useTLS, …
 */
function Pusher(options) {
  this.config = new PusherConfig(options)
}

/** `scheme://key:secret@host:port/apps/<appId>`; URL fields take precedence. */
Pusher.forURL = function (pusherUrl, options) {
  const parts = parseConnectionUrl(pusherUrl)
  const path = parts.pathname.split("/")
  return new Pusher(
    Object.assign({}, options || {}, {
      scheme: parts.protocol.replace(/:$/, ""),
      host: parts.hostname,
      port: parseInt(parts.port, 10) || undefined,
      appId: parseInt(path[path.length - 1], 10),
      key: parts.auth[0],
      secret: parts.auth[1],
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
  return {
    auth: `${token.key}:${token.sign(`${socketId}::user::${serialized}`)}`,
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
  if (channels.length > 100 && !extras.autoChunk) {
    const limits = limitsOf(extras)
    if (!limits || channels.length > limits.channels) {
      throw new Error("Can't trigger a message to more than 100 channels")
    }
  }
  for (let i = 0; i < channels.length; i++) {
    validate.channel(channels[i])
  }
  return triggerEvent(this, channels, event, data, params)
}

Pusher.prototype.triggerBatch = function (batch) {
  for (let i = 0; i < batch.length; i++) {
    batch[i].data = validate.isEncryptedChannel(batch[i].channel)
      ? encrypt(this, batch[i].channel, batch[i].data)
      : ensureJSON(batch[i].data)
  }
  const extras = extrasOf(this.config)
  const limits = limitsOf(extras)
  if (limits) {
    if (!extras.autoChunk) throwIf(native.batchSizeError(batch.length, limits.batchSize))
    for (const event of batch) checkEventSize(limits, event.name, event.data)
  }
  if (extras.autoChunk) {
    const size = limits ? limits.batchSize : DEFAULT_LIMITS.batchSize
    if (batch.length > size) return chunked.batches(this, batch, size)
  }
  return this.post({ path: "/batch_events", body: { batch: batch } })
}

Pusher.prototype.post = function (options) {
  return requests.send(this.config, "POST", options || {})
}

Pusher.prototype.get = function (options) {
  return requests.send(this.config, "GET", options || {})
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

Pusher.Token = Token
Pusher.RequestError = errors.RequestError
Pusher.WebHookError = errors.WebHookError

// ---- internals ----

function ensureJSON(data) {
  return typeof data === "string" ? data : JSON.stringify(data)
}

function encrypt(pusher, channel, data) {
  const key = pusher.config.encryptionMasterKey
  if (key === undefined) {
    throw new Error("Set encryptionMasterKey before triggering events on encrypted channels")
  }
  // tweetnacl-util encodes `undefined` as the text "undefined"; so do we.
  const json = JSON.stringify(data)
  return native.encryptForChannel(channel, Buffer.from(key), json === undefined ? "undefined" : json)
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

function limitsOf(extras) {
  const limits = extras.limits
  if (!limits) return undefined
  return limits === true ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, ...limits }
}

function checkEventSize(limits, name, data) {
  if (typeof data === "string") throwIf(native.eventSizeError("" + name, data, limits.eventBytes))
}

function throwIf(message) {
  if (message != null) throw new Error(message)
}

// url.parse (deprecated, DEP0169) semantics for what forURL reads: percent-decoded
// credentials, the port as written (even a default one), and upstream's TypeError
// when there are no credentials.
function parseConnectionUrl(input) {
  const text = String(input)
  let url
  try {
    url = new URL(text)
  } catch (e) {
    url = undefined
  }
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(text)
  const at = authority ? authority[1].lastIndexOf("@") : -1
  if (!url || at < 0) {
    throw new TypeError("Cannot read properties of null (reading 'split')")
  }
  const hostPort = authority[1].slice(at + 1)
  const port = /:(\d+)$/.exec(hostPort)
  const auth = authority[1].slice(0, at).split(":")
  return {
    protocol: url.protocol,
    hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: port ? port[1] : "",
    pathname: url.pathname,
    auth: [decode(auth[0]), auth.length > 1 ? decode(auth.slice(1).join(":")) : undefined],
  }
}

function decode(s) {
  try {
    return decodeURIComponent(s)
  } catch (e) {
    return s
  }
}

module.exports = Pusher
