"use strict"
const crypto = require("crypto")
const { inspect } = require("util")
const native = require("./native")

// Secrets and messages Rust can take as they are; anything else (undefined, numbers,
// KeyObjects, arrays) goes through Node's own crypto so results and errors are exactly
// `pusher`'s.
// (ArrayBuffer.isView first: it runs no Proxy trap, unlike `instanceof`.)
const asBytes = (v) =>
  typeof v === "string"
    ? v
    : ArrayBuffer.isView(v)
      ? Buffer.isBuffer(v)
        ? v
        : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
      : undefined

// A message as upstream's `Buffer.from(message)` reads it: a string, or the bytes of a
// Buffer or a one-byte-per-element typed array. Others (wider typed arrays, which
// Buffer.from truncates element by element; DataView; arrays; …) go through Node.
const messageBytes = (m) =>
  typeof m === "string"
    ? m
    : ArrayBuffer.isView(m) && m.BYTES_PER_ELEMENT === 1
      ? Buffer.isBuffer(m)
        ? m
        : Buffer.from(m.buffer, m.byteOffset, m.byteLength)
      : undefined

function nodeSign(secret, message) {
  return crypto.createHmac("sha256", secret).update(Buffer.from(message)).digest("hex")
}

function legacyCompare(a, b) {
  if (a.length !== b.length) return false
  let result = 0
  for (const i in a) result |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return result === 0
}

/** An app key and secret; signs and verifies with HMAC-SHA256 (in Rust). */
class Token {
  constructor(key, secret) {
    this.key = key
    this.secret = secret
  }

  /** @returns {string} lowercase hex HMAC-SHA256 of `string` */
  sign(string) {
    const secret = asBytes(this.secret)
    const message = messageBytes(string)
    if (secret === undefined || message === undefined) return nodeSign(this.secret, string)
    return native.hmacSha256Hex(secret, message)
  }

  /** @returns {boolean} whether `signature` signs `string`, compared in constant time */
  verify(string, signature) {
    const secret = asBytes(this.secret)
    const message = messageBytes(string)
    if (secret === undefined || message === undefined || typeof signature !== "string") {
      return legacyCompare(this.sign(string), signature)
    }
    return native.verifyHmacSha256Hex(secret, message, signature)
  }

  // Deliberate difference: logs and JSON show the secret redacted; `token.secret`
  // itself stays readable.
  [inspect.custom]() {
    return `Token { key: ${inspect(this.key)}, secret: '[redacted]' }`
  }

  toJSON() {
    return { key: this.key, secret: "[redacted]" }
  }
}

module.exports = Token
module.exports.asBytes = asBytes
