"use strict"
// Signing as upstream assembles it: the parameter map in its order and with its string
// conversions (the JS semantics are the contract); the digests and the HMAC in Rust.

const crypto = require("crypto")
const { isAnyArrayBuffer } = require("util").types
const native = require("./native")
const Token = require("./token")

// An object literal, looked up as `RESERVED[key] !== undefined` like upstream's: inherited
// names ("constructor", "__proto__", "toString", …) are refused with the same message.
const RESERVED = { auth_key: true, auth_timestamp: true, auth_version: true, auth_signature: true, body_md5: true }
// Y2038-safe, unlike upstream's `(Date.now() / 1000) | 0`; identical until then.
const timestampNow = () => Math.floor(Date.now() / 1000)

/**
 * Appends the caller's params to `entries` as upstream builds its parameter map: keys
 * in for…in order, each value read as its key is visited, a reserved key throwing.
 */
function withParams(entries, params) {
  if (params) {
    for (const key in params) {
      if (RESERVED[key] !== undefined) throw Error(key + " is a required parameter and cannot be overidden")
      entries.push([key, params[key]])
    }
  }
  return entries
}

const byKey = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)

/** Sorts as upstream does (JS `<` on keys), then stringifies each value in that order. */
function ordered(entries) {
  entries.sort(byKey)
  for (const entry of entries) entry[1] = "" + entry[1]
  return entries
}

/** `[key, value, …]` of the caller's params (the auth_* entries left to Rust), or null. */
function flatParams(entries) {
  const flat = []
  for (const [key, value] of entries) {
    if (RESERVED[key] === undefined) flat.push(key, value)
  }
  return flat.length === 0 ? null : flat
}

/** The secret as bytes Rust can use; anything Node refuses throws Node's own TypeError. */
function secretBytes(secret) {
  const bytes = Token.asBytes(secret)
  if (bytes !== undefined) return bytes
  crypto.createHmac("sha256", secret)
  if (secret instanceof crypto.KeyObject) return secret.export()
  if (isAnyArrayBuffer(secret)) return Buffer.from(secret)
  return crypto.KeyObject.from(secret).export() // a CryptoKey
}

/** `body` is a string or bytes (or null); `params` as from flattenParams. */
function signedQuery(token, method, path, params, body, timestamp) {
  const secret = secretBytes(token.secret)
  return native.signedQueryString("" + token.key, secret, method, path, params, body || null, timestamp)
}

/** Hex MD5 as upstream's `createHash("md5").update(body, "utf8")`; Node's TypeError otherwise. */
function md5Of(body) {
  const bytes = Token.asBytes(body)
  if (bytes !== undefined) return native.md5Hex(bytes)
  return crypto.createHash("md5").update(body, "utf8").digest("hex")
}

/**
 * `pusher.createSignedQueryString({ method, path, params, body })`: assembled here in
 * upstream's order and with its string conversions (the result is the JS string itself,
 * lone surrogates included); the digests and the HMAC are computed in Rust.
 */
function createSignedQueryString(token, request) {
  const timestamp = timestampNow()
  const entries = [
    ["auth_key", token.key],
    ["auth_timestamp", timestamp],
    ["auth_version", "1.0"],
  ]
  if (request.body) entries.push(["body_md5", md5Of(request.body)])
  withParams(entries, request.params)
  const method = request.method.toUpperCase()
  let queryString = ordered(entries)
    .map((entry) => entry[0] + "=" + entry[1])
    .join("&")
  const signData = [method, request.path, queryString].join("\n")
  queryString += "&auth_signature=" + token.sign(signData)
  return queryString
}

module.exports = { RESERVED, timestampNow, withParams, ordered, flatParams, secretBytes, signedQuery, createSignedQueryString }
