"use strict"
// node-fetch v2's Headers API over the response headers Rust hands over as one
// `name\nvalue\n…` string; parsed only when first used.

// Node's http parser (which node-fetch reads through `res.headers`) keeps only the
// first of these when repeated, keeps set-cookie as a list, joins cookie with "; "
// and every other repeated header with ", ".
const SINGLE = new Set([
  "age", "authorization", "content-length", "content-type", "etag", "expires", "from", "host",
  "if-modified-since", "if-unmodified-since", "last-modified", "location", "max-forwards",
  "proxy-authorization", "referer", "retry-after", "server", "user-agent",
])

function addReceived(map, name, value) {
  const values = map.get(name)
  if (values === undefined) map.set(name, [value])
  else if (name === "set-cookie") values.push(value)
  else if (!SINGLE.has(name)) values[0] += (name === "cookie" ? "; " : ", ") + value
}

class Headers {
  constructor(init) {
    this._map = new Map()
    if (typeof init === "string") {
      const parts = init.split("\n")
      for (let i = 0; i + 1 < parts.length; i += 2) addReceived(this._map, parts[i], parts[i + 1])
    } else if (init != null) {
      const pairs = typeof init[Symbol.iterator] === "function" ? init : Object.entries(init)
      for (const [name, value] of pairs) this.append(name, value)
    }
  }

  get(name) {
    const values = this._map.get(String(name).toLowerCase())
    return values === undefined ? null : values.join(", ")
  }

  has(name) {
    return this._map.has(String(name).toLowerCase())
  }

  set(name, value) {
    this._map.set(String(name).toLowerCase(), [String(value)])
  }

  append(name, value) {
    const key = String(name).toLowerCase()
    const values = this._map.get(key)
    if (values === undefined) this._map.set(key, [String(value)])
    else values.push(String(value))
  }

  delete(name) {
    this._map.delete(String(name).toLowerCase())
  }

  /** Every value of every header, as arrays (node-fetch's `raw()`). */
  raw() {
    const out = Object.create(null)
    for (const [name, values] of this._map) out[name] = values.slice()
    return out
  }

  forEach(callback, thisArg) {
    for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this)
  }

  *entries() {
    for (const name of [...this._map.keys()].sort()) yield [name, this.get(name)]
  }

  *keys() {
    for (const [name] of this.entries()) yield name
  }

  *values() {
    for (const [, value] of this.entries()) yield value
  }

  [Symbol.iterator]() {
    return this.entries()
  }

  get [Symbol.toStringTag]() {
    return "Headers"
  }
}

module.exports = Headers
