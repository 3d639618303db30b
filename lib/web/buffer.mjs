// `Buffer` for the web build (injected by scripts/build-web.js wherever lib/ names it):
// Node's where the runtime has one, else a Uint8Array with the few Buffer methods lib/
// uses (isBuffer, from, concat, toString as utf8, base64, hex or latin1).
import { builtin } from "./builtins.mjs"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

class MiniBuffer extends Uint8Array {
  static isBuffer(value) {
    return value instanceof MiniBuffer
  }

  static from(value, encodingOrOffset, length) {
    if (typeof value === "string") {
      if (encodingOrOffset === "base64") return MiniBuffer.from(base64Decode(value))
      if (encodingOrOffset === "hex") return MiniBuffer.from((value.match(/../g) || []).map((h) => parseInt(h, 16)))
      return wrap(encoder.encode(value))
    }
    if (value instanceof ArrayBuffer) {
      const offset = encodingOrOffset || 0
      return new MiniBuffer(value, offset, length === undefined ? value.byteLength - offset : length)
    }
    if (ArrayBuffer.isView(value)) {
      return wrap(new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice())
    }
    if (value != null && typeof value.length === "number") return wrap(Uint8Array.from(value, (n) => n & 255))
    throw new TypeError("The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array")
  }

  static concat(list) {
    const out = new MiniBuffer(list.reduce((n, b) => n + b.length, 0))
    let at = 0
    for (const b of list) {
      out.set(b, at)
      at += b.length
    }
    return out
  }

  toString(encoding) {
    switch (encoding) {
      case "base64":
        return base64Encode(this)
      case "hex":
        return Array.from(this, (n) => n.toString(16).padStart(2, "0")).join("")
      case "latin1":
      case "binary":
        return String.fromCharCode(...this)
      default:
        return decoder.decode(this)
    }
  }
}

const wrap = (bytes) => new MiniBuffer(bytes.buffer, bytes.byteOffset, bytes.byteLength)

export function base64Encode(bytes) {
  let s = ""
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(s)
}

/** Standard padded base64 only, canonical (as the Rust core's decoder); else throws. */
export function base64Decode(text) {
  const s = String(text)
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new TypeError("invalid base64")
  const binary = atob(s)
  if (btoa(binary) !== s) throw new TypeError("invalid base64")
  const out = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i)
  return out
}

const node = globalThis.Buffer || (builtin("buffer") || {}).Buffer
export const Buffer = node || MiniBuffer
