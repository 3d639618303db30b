"use strict"
// A node-fetch v2 compatible Response over one native reply. Nothing is computed
// until asked for: headers are parsed, the URL normalised and JSON decoded lazily.

const Headers = require("./headers")
const { FetchError } = require("./errors")

const kReply = Symbol("reply")
const kUsed = Symbol("bodyUsed")
const kHeaders = Symbol("headers")

class Response {
  constructor(reply) {
    this[kReply] = reply
    this[kUsed] = false
    this[kHeaders] = undefined
    this.size = 0
    this.timeout = 0
  }

  get status() {
    return this[kReply].status
  }
  get statusText() {
    const reply = this[kReply]
    // `http` only when needed: loading it costs ~2 ms of cold start.
    return reply.statusText != null ? reply.statusText : require("http").STATUS_CODES[reply.status] || ""
  }
  get ok() {
    const status = this[kReply].status
    return status >= 200 && status < 300
  }
  get redirected() {
    return this[kReply].finalUrl != null
  }
  get url() {
    const reply = this[kReply]
    return reply.finalUrl != null ? reply.finalUrl : new URL(reply.url).href
  }
  get headers() {
    if (this[kHeaders] === undefined) this[kHeaders] = new Headers(this[kReply].headers || "")
    return this[kHeaders]
  }
  get bodyUsed() {
    return this[kUsed]
  }
  /** A Node Readable of the body, as node-fetch v2 exposes it. */
  get body() {
    const { Readable } = require("stream")
    return Readable.from([bytesOf(this[kReply])])
  }

  text() {
    return this._consume().then(() => textOf(this[kReply]))
  }
  json() {
    return this._consume().then(() => {
      const text = textOf(this[kReply])
      try {
        return JSON.parse(text)
      } catch (e) {
        throw new FetchError(`invalid json response body at ${this.url} reason: ${e.message}`, "invalid-json")
      }
    })
  }
  buffer() {
    return this._consume().then(() => bytesOf(this[kReply]))
  }
  arrayBuffer() {
    return this.buffer().then((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
  }
  clone() {
    if (this[kUsed]) throw new Error("cannot clone body after it is used")
    return new Response(this[kReply])
  }

  _consume() {
    if (this[kUsed]) return Promise.reject(new TypeError(`body used already for: ${this.url}`))
    this[kUsed] = true
    return Promise.resolve()
  }

  get [Symbol.toStringTag]() {
    return "Response"
  }
}

function textOf(reply) {
  return reply.text !== undefined && reply.text !== null ? reply.text : reply.bytes ? reply.bytes.toString("utf8") : ""
}

function bytesOf(reply) {
  return reply.bytes ? Buffer.from(reply.bytes) : Buffer.from(textOf(reply), "utf8")
}

module.exports = Response
module.exports.textOf = textOf
