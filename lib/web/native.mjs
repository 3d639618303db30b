// The web build's stand-in for lib/native.js (the Rust addon): the same functions, with
// the same results and messages, computed by @noble/hashes (HMAC-SHA256, SHA-256, MD5)
// and @noble/ciphers (XSalsa20-Poly1305 secretbox), nonces from crypto.getRandomValues.
// scripts/build-web.js swaps it in for `./native` wherever lib/ requires it.
import { hmac } from "@noble/hashes/hmac.js"
import { sha256 } from "@noble/hashes/sha2.js"
import { md5 } from "@noble/hashes/legacy.js"
import { bytesToHex } from "@noble/hashes/utils.js"
import { secretbox } from "@noble/ciphers/salsa.js"
import { Buffer, base64Encode, base64Decode } from "./buffer.mjs"

const encoder = new TextEncoder()
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })
// A string as napi hands it to Rust: UTF-8, a lone surrogate as U+FFFD (as TextEncoder).
const bytes = (v) => (typeof v === "string" ? encoder.encode(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength))

// The Rust core's defaults (pusher_core::validate::Limits, pusher_core::retry).
const LIMITS = { eventBytes: 10240, batchSize: 10, channels: 100 }
const RETRY = { attempts: 3, minDelayMs: 100, maxDelayMs: 5000, maxAttempts: 100 }
const NONCE_LEN = 24
const MASTER_KEY_LEN = 32

export const defaultLimits = () => ({ ...LIMITS })
export const defaultRetry = () => ({ ...RETRY })

export function hmacSha256Hex(secret, message) {
  return bytesToHex(hmac(sha256, bytes(secret), bytes(message)))
}

/** Constant-time comparison of the hex HMAC with `signature` (as the core's secure_compare). */
export function verifyHmacSha256Hex(secret, message, signature) {
  const expected = encoder.encode(hmacSha256Hex(secret, message))
  const given = encoder.encode(String(signature))
  if (expected.length !== given.length) return false
  let diff = 0
  for (let i = 0; i < expected.length; i++) diff |= expected[i] ^ given[i]
  return diff === 0
}

export const md5Hex = (data) => bytesToHex(md5(bytes(data)))

export function channelSharedSecret(channel, masterKey) {
  const name = encoder.encode(channel)
  const input = new Uint8Array(name.length + masterKey.length)
  input.set(name)
  input.set(bytes(masterKey), name.length)
  return Buffer.from(sha256(input))
}

export function encryptForChannel(channel, masterKey, plaintext) {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LEN))
  const key = sha256Of(channel, masterKey)
  const ciphertext = secretbox(key, nonce).seal(encoder.encode(plaintext))
  return `{"nonce":"${base64Encode(nonce)}","ciphertext":"${base64Encode(ciphertext)}"}`
}

/** The plaintext, or null when the payload is malformed, forged or not UTF-8. */
export function decryptForChannel(channel, masterKey, nonceB64, ciphertextB64) {
  try {
    const nonce = base64Decode(nonceB64)
    const ciphertext = base64Decode(ciphertextB64)
    if (nonce.length !== NONCE_LEN) return null
    return strictUtf8.decode(secretbox(sha256Of(channel, masterKey), nonce).open(ciphertext))
  } catch (e) {
    return null
  }
}

const sha256Of = (channel, masterKey) => new Uint8Array(channelSharedSecret(channel, masterKey))

export function isJsonMediaType(contentType) {
  return contentType.split(";")[0].trim().toLowerCase() === "application/json"
}

export function masterKeyFromBase64(encoded) {
  let key
  try {
    key = base64Decode(encoded)
  } catch (e) {
    throw new Error("encryptionMasterKeyBase64 must be valid base64")
  }
  if (key.length !== MASTER_KEY_LEN) {
    throw new Error(
      `encryptionMasterKeyBase64 must decode to 32 bytes, but the provided key decodes to ${key.length} bytes`
    )
  }
  return Buffer.from(key)
}

/** The deprecated raw key: 32 UTF-16 units (JS `length`), its bytes UTF-8. */
export function masterKeyFromRaw(raw) {
  if (raw.length !== MASTER_KEY_LEN) {
    throw new Error(`encryptionMasterKey must be 32 bytes long, but the provided key is ${raw.length} bytes long`)
  }
  return Buffer.from(encoder.encode(raw))
}

/**
 * The signed query string, as the core's signed_query: auth_key, auth_timestamp,
 * auth_version, body_md5 (for a non-empty body) and the caller's params (`[k, v, …]`),
 * sorted by key (UTF-16 order), then `auth_signature` over "METHOD\npath\nquery".
 */
export function signedQueryString(key, secret, method, path, params, body, timestamp) {
  const pairs = [
    ["auth_key", key],
    ["auth_timestamp", String(timestamp)],
    ["auth_version", "1.0"],
  ]
  if (body != null && body.length > 0) pairs.push(["body_md5", md5Hex(body)])
  if (params) for (let i = 0; i + 1 < params.length; i += 2) pairs.push([params[i], params[i + 1]])
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const query = pairs.map((p) => p[0] + "=" + p[1]).join("&")
  return query + "&auth_signature=" + hmacSha256Hex(secret, method + "\n" + path + "\n" + query)
}

/**
 * What is wrong with a `ca` PEM, or null. The web build sends through the platform's
 * `fetch`, which takes no extra certificates: `ca` is accepted and not used (README).
 */
export const caError = () => null

// pusher_core::validate::Limits' messages.
export function eventSizeError(event, data, limit) {
  const size = encoder.encode(data).length
  return size > limit ? `Event '${event}' has ${size} bytes of data, over the limit of ${limit} bytes` : null
}
export function batchSizeError(size, limit) {
  return size > limit ? `Batch of ${size} events is over the limit of ${limit} events per request` : null
}
export function channelCountError(count, limit) {
  return count > limit ? `Trigger to ${count} channels is over the limit of ${limit} channels per request` : null
}
