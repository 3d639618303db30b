// `crypto` for the web build. lib/ reaches it only for inputs the fast path does not take
// (a KeyObject or ArrayBuffer secret, a number as a message, …): Node's own where the
// runtime has it, so results and TypeErrors are exactly the native build's; elsewhere
// HMAC-SHA256, SHA-256 and MD5 from @noble/hashes over strings and bytes, and Node's
// TypeError text for anything else.
import { hmac } from "@noble/hashes/hmac.js"
import { sha256 } from "@noble/hashes/sha2.js"
import { md5 } from "@noble/hashes/legacy.js"
import { bytesToHex } from "@noble/hashes/utils.js"
import { builtin } from "./builtins.mjs"
import { Buffer } from "./buffer.mjs"

const node = builtin("crypto")
const encoder = new TextEncoder()
const HASHES = { sha256, md5 }

function bytesOf(value, what) {
  if (typeof value === "string") return encoder.encode(value)
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  throw new TypeError(
    `The "${what}" argument must be of type string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView.`
  )
}

function digester(make, key) {
  const chunks = []
  return {
    update(data) {
      chunks.push(bytesOf(data, "data"))
      return this
    },
    digest(encoding) {
      const h = make()
      for (const c of chunks) h.update(c)
      const out = h.digest()
      return encoding === "hex" ? bytesToHex(out) : Buffer.from(out)
    },
  }
}

function hashOf(algorithm) {
  const hash = HASHES[String(algorithm).toLowerCase()]
  if (!hash) throw new Error("Digest method not supported")
  return hash
}

class KeyObject {}

export const createHmac = node
  ? node.createHmac
  : (algorithm, key) => {
      const hash = hashOf(algorithm)
      const k = bytesOf(key, "key")
      return digester(() => hmac.create(hash, k))
    }
export const createHash = node ? node.createHash : (algorithm) => digester(() => hashOf(algorithm).create())
export const KeyObject_ = node ? node.KeyObject : KeyObject
export { KeyObject_ as KeyObject }
