"use strict"
// node-fetch v2's Headers API over the response headers Rust hands over as one
// `name\nvalue\n…` string; parsed only when first used.

class Headers {
  constructor(init) {
    this._map = new Map()
    if (typeof init === "string") {
      const parts = init.split("\n")
      for (let i = 0; i + 1 < parts.length; i += 2) this.append(parts[i], parts[i + 1])
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
    const out = {}
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
