"use strict"
const native = require("./native")
const { WebHookError } = require("./errors")
const Token = require("./token")
const { maxAgeOption } = require("./options")

/** `pusher.webhook(request)`: upstream's WebHook, with the signature checked in Rust. */
function WebHook(token, request) {
  this.token = token
  this.key = request.headers["x-pusher-key"]
  this.signature = request.headers["x-pusher-signature"]
  this.contentType = request.headers["content-type"]
  this.body = request.rawBody

  if (this.isContentTypeValid()) {
    try {
      this.data = JSON.parse(this.body)
    } catch (e) {
      // upstream ignores unparsable bodies: isBodyValid() reports it
    }
  }
}

WebHook.prototype.isValid = function (extraTokens) {
  if (!this.isBodyValid()) return false
  extraTokens = extraTokens || []
  if (!(extraTokens instanceof Array)) extraTokens = [extraTokens]
  const tokens = [this.token].concat(extraTokens)
  for (const i in tokens) {
    let token = tokens[i]
    if (token instanceof Token === false) token = new Token(token.key, token.secret)
    if (this.key == token.key && token.verify(this.body, this.signature)) return true
  }
  return false
}

WebHook.prototype.isContentTypeValid = function () {
  return this.contentType === "application/json"
}

WebHook.prototype.isBodyValid = function () {
  return this.data !== undefined
}

WebHook.prototype.getData = function () {
  if (!this.isBodyValid()) {
    throw new WebHookError("Invalid WebHook body", this.contentType, this.body, this.signature)
  }
  return this.data
}

WebHook.prototype.getEvents = function () {
  return this.getData().events
}

WebHook.prototype.getTime = function () {
  return new Date(this.getData().time_ms)
}

// ---- verifyWebhook: the opt-in, never-throwing check ----

function header(headers, name) {
  if (!headers || typeof headers !== "object") return undefined
  if (typeof headers.get === "function") return headers.get(name) ?? undefined
  if (headers[name] !== undefined) return headers[name]
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === name) return headers[key]
  }
  return undefined
}

const first = (v) => (Array.isArray(v) ? v[0] : v)

function rejected(reason) {
  return { valid: false, reason, events: [], time: undefined }
}

function decryptEvents(events, masterKey) {
  for (const event of events) {
    const channel = event && event.channel
    if (typeof channel !== "string" || !channel.startsWith("private-encrypted-") || typeof event.data !== "string") {
      continue
    }
    if (masterKey === undefined) return "no-master-key"
    let sealed
    try {
      sealed = JSON.parse(event.data)
    } catch (e) {
      return "decryption-failed"
    }
    const plain =
      sealed && typeof sealed.nonce === "string" && typeof sealed.ciphertext === "string"
        ? native.decryptForChannel(channel, masterKey, sealed.nonce, sealed.ciphertext)
        : null
    if (plain === null) return "decryption-failed"
    event.data = plain
  }
  return undefined
}

/**
 * Checks a webhook request: `{ valid, reason?, events, time }`. Never throws for any
 * request; an unusable `maxAgeMs` throws (PUSHER_INVALID_OPTION). Reasons: content-type,
 * missing-signature, unknown-key, invalid-signature, invalid-body, stale, no-master-key,
 * decryption-failed, invalid-request.
 */
function verifyWebhook(config, request, options) {
  // Options are the caller's code, not the request: an unusable one throws.
  const maxAgeMs = maxAgeOption(options == null ? undefined : options.maxAgeMs)
  try {
    const opts = options || {}
    if (request === null || typeof request !== "object") return rejected("invalid-request")
    const headers = request.headers
    const contentType = first(header(headers, "content-type"))
    if (typeof contentType !== "string" || !native.isJsonMediaType(contentType)) return rejected("content-type")
    const key = first(header(headers, "x-pusher-key"))
    const signature = first(header(headers, "x-pusher-signature"))
    let body = request.rawBody !== undefined ? request.rawBody : request.body
    if (typeof key !== "string" || typeof signature !== "string") return rejected("missing-signature")
    if (typeof body !== "string" && !Buffer.isBuffer(body)) return rejected("invalid-body")

    const extra = opts.extraTokens == null ? [] : [].concat(opts.extraTokens)
    const tokens = [config.token, ...extra].filter((t) => t && String(t.key) === key)
    if (tokens.length === 0) return rejected("unknown-key")
    const signed = tokens.some((t) => {
      const secret = Token.asBytes(t.secret)
      return secret !== undefined && native.verifyHmacSha256Hex(secret, body, signature)
    })
    if (!signed) return rejected("invalid-signature")

    let data
    try {
      data = JSON.parse(Buffer.isBuffer(body) ? body.toString("utf8") : body)
    } catch (e) {
      return rejected("invalid-body")
    }
    if (!data || typeof data !== "object" || !Array.isArray(data.events)) return rejected("invalid-body")
    if (maxAgeMs !== undefined) {
      const age = Math.abs(Date.now() - Number(data.time_ms))
      if (!(age <= maxAgeMs)) return rejected("stale")
    }
    const failed = decryptEvents(data.events, config.encryptionMasterKey)
    if (failed) return rejected(failed)
    return { valid: true, events: data.events, time: new Date(data.time_ms) }
  } catch (e) {
    return rejected("invalid-request")
  }
}

module.exports = WebHook
module.exports.verifyWebhook = verifyWebhook
