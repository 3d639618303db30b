"use strict"
// The cases of scripts/fuzz-transport.js: a seeded PRNG per (seed, case), valid
// responses, the mutations applied to them and how they are delivered (pieces,
// delays, and how the connection ends). Pure functions: a case is replayed exactly.

// ---- seeded PRNG (mulberry32), one stream per case ----

const { prng } = require("./prng")
const caseRng = (seed, i) => prng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0)

// ---- crafting one response ----

const STATUSES = ["200 OK", "200 OK", "200 OK", "201 Created", "202 Accepted", "204 No Content", "304 Not Modified",
  "400 Bad Request", "404 Not Found", "413 Payload Too Large", "429 Too Many Requests", "500 Internal Server Error",
  "302 Found", "307 Temporary Redirect", "200", "999 Odd"]
const HUGE_CHUNKS = ["fffffffffffffffe", "ffffffffffffffff", "10000000000000000", "7fffffffffffffff", "fffffffffffffff0",
  "ffffffff", "100000000", "-1", "0x10", " 5", "5 ", "1;ext=1", "", "g"]
const HUGE_LENGTHS = ["18446744073709551615", "18446744073709551616", "99999999999999999999", "9007199254740993",
  "4294967296", "2147483648", "-1", "1e3", "+5", " 5", "5, 5", "5,6", "", "0x10", "1000000"]
const BODIES = ['{"ok":true}', "{}", '{"channels":{"presence-a":{"user_count":1}}}', "", "x".repeat(3000), "not json", '{"a":"\u00e9\u2603"}']

/** The bytes of a valid response for case `i`, plus how it is framed. */
function baseResponse(rng, i) {
  const status = rng.pick(STATUSES)
  const body = rng.pick(BODIES)
  const headers = ["content-type: application/json"]
  if (/^30[27]/.test(status)) headers.push(`location: /apps/1/redirected/case-${i}`)
  const version = rng.chance(0.05) ? "HTTP/1.0" : "HTTP/1.1"
  if (rng.chance(0.1)) headers.push(rng.pick(["connection: close", "connection: keep-alive", "keep-alive: timeout=5"]))
  const framing = rng.pick(["length", "length", "length", "chunked", "chunked", "close"])
  let bodyBytes = Buffer.from(body)
  if (framing === "length") headers.push(`content-length: ${bodyBytes.length}`)
  if (framing === "chunked") {
    headers.push("transfer-encoding: chunked")
    const parts = []
    let rest = bodyBytes
    while (rest.length > 0) {
      const n = 1 + rng.int(Math.min(rest.length, 1500))
      const ext = rng.chance(0.1) ? ";name=value" : ""
      parts.push(Buffer.from(n.toString(16) + ext + "\r\n"), rest.subarray(0, n), Buffer.from("\r\n"))
      rest = rest.subarray(n)
    }
    parts.push(Buffer.from("0\r\n" + (rng.chance(0.1) ? "x-trailer: t\r\n" : "") + "\r\n"))
    bodyBytes = Buffer.concat(parts)
  }
  const interim = rng.chance(0.05) ? rng.pick(["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"]) : ""
  const head = `${interim}${version} ${status}\r\n${headers.join("\r\n")}\r\n\r\n`
  return { bytes: Buffer.concat([Buffer.from(head, "latin1"), bodyBytes]), framing, headLength: Buffer.byteLength(head) }
}

const replaceText = (buf, from, to) => Buffer.from(buf.toString("latin1").replace(from, to), "latin1")

/** Mutations: each takes (bytes, rng, response) and returns bytes; `name` for reports. */
const MUTATIONS = {
  flip: (b, rng) => {
    const out = Buffer.from(b)
    for (let k = 1 + rng.int(3); k > 0 && out.length > 0; k--) out[rng.int(out.length)] = rng.int(256)
    return out
  },
  insert: (b, rng) => {
    const at = rng.int(b.length + 1)
    return Buffer.concat([b.subarray(0, at), Buffer.from(rng.pick(["\r\n", "\n", "\r", "\0", ":", " ", "0\r\n\r\n", "\r\n\r\n", "\xff"]), "latin1"), b.subarray(at)])
  },
  drop: (b, rng) => {
    const at = rng.int(b.length)
    return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(4))])
  },
  truncate: (b, rng) => b.subarray(0, rng.int(b.length)),
  hugeChunk: (b, rng) => replaceText(b, /\r\n\r\n[0-9a-f]+/, `\r\n\r\n${rng.pick(HUGE_CHUNKS)}`),
  hugeLength: (b, rng) => replaceText(b, /content-length: \d+/, `content-length: ${rng.pick(HUGE_LENGTHS)}`),
  duplicateHeader: (b, rng) =>
    replaceText(b, "\r\n\r\n", "\r\n" + rng.pick(["content-length: 2", "content-length: 0", "transfer-encoding: chunked",
      "transfer-encoding: identity", "transfer-encoding: ", "content-type: text/plain", "connection: close", "location: //x"]) + "\r\n\r\n"),
  bothFramings: (b, rng) => replaceText(b, "\r\n\r\n", rng.pick(["\r\ntransfer-encoding: chunked", "\r\ncontent-length: 5"]) + "\r\n\r\n"),
  bareLf: (b) => replaceText(b, /\r\n/g, "\n"),
  foldedHeader: (b) => replaceText(b, "\r\n\r\n", "\r\nx-folded: a\r\n  b\r\n\r\n"),
  hugeHead: (b, rng) => replaceText(b, "\r\n\r\n", `\r\nx-big: ${"h".repeat(rng.pick([8, 17, 70, 1100]) * 1024)}\r\n\r\n`),
  manyHeaders: (b, rng) => replaceText(b, "\r\n\r\n", "\r\n" + "x-h: v\r\n".repeat(rng.pick([99, 101, 500])) + "\r\n"),
  statusLine: (b, rng) => replaceText(b, /^HTTP\/1\.[01] [^\r\n]*/, rng.pick(["HTTP/1.1 2000 OK", "HTTP/2 200 OK", "ICY 200 OK", "HTTP/1.1  200", "HTTP/1.1 -1 X", "HTTP/9.9 200 OK", ""])),
  pipelined: (b, rng) => Buffer.concat([b, Buffer.from(rng.pick(["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", "garbage", "\r\n", "HTTP/1.1 200 OK\r\n", "0\r\n\r\n"]))]),
}
const MUTATION_NAMES = Object.keys(MUTATIONS)

/**
 * The recipe for case `i`: the pieces to write (each after a delay), then how the
 * connection ends: "keep", "fin" (with the last piece), "reset" or "destroy"; over TLS
 * also "notify-junk" and "fin-no-notify".
 */
function recipe(seed, i, skip = [], tls = false) {
  const rng = caseRng(seed, i)
  const names = MUTATION_NAMES.filter((n) => !skip.includes(n))
  const base = baseResponse(rng, i)
  let bytes = base.bytes
  const applied = []
  const count = rng.chance(0.15) ? 0 : 1 + rng.int(3)
  for (let k = 0; k < count; k++) {
    const name = rng.pick(names)
    applied.push(name)
    bytes = MUTATIONS[name](bytes, rng, base)
  }
  let end = base.framing === "close" ? rng.pick(["fin", "fin", "reset", "keep"]) : rng.pick(["keep", "keep", "keep", "keep", "fin", "reset", "destroy"])
  // Split into pieces: most in one write, some dripped (small pieces, short delays).
  const pieces = []
  const style = rng.pick(["one", "one", "one", "split", "drip", "late"])
  if (style === "one" || bytes.length === 0) pieces.push({ delay: 0, bytes })
  else if (style === "late") pieces.push({ delay: rng.pick([20, 100, 250, 400]), bytes })
  else {
    let at = 0
    while (at < bytes.length) {
      const n = style === "drip" ? 1 + rng.int(bytes.length > 400 ? 200 : 8) : 1 + rng.int(bytes.length)
      pieces.push({ delay: style === "drip" ? rng.int(3) : rng.int(20), bytes: bytes.subarray(at, at + n) })
      at += n
    }
  }
  // Over TLS, some connections end with a close_notify followed by junk (the socket left
  // open), or with a TCP FIN and no close_notify (drawn last: plain cases stay the same).
  let junk = 0
  if (tls && rng.chance(0.25)) {
    end = rng.pick(["notify-junk", "notify-junk", "fin-no-notify"])
    junk = rng.pick([16, 20000, 70000])
  }
  return { i, framing: base.framing, mutations: applied, style, end, junk, pieces, size: bytes.length }
}

const describe = (r) =>
  `case ${r.i}: ${r.framing} response, mutations [${r.mutations.join(", ")}], ${r.style} in ${r.pieces.length} piece(s), ${r.size} bytes, then ${r.end}${r.junk ? ` (${r.junk} bytes of junk)` : ""}; ` +
  `starts ${JSON.stringify(Buffer.concat(r.pieces.map((p) => p.bytes)).subarray(0, 300).toString("latin1"))}`

module.exports = { prng, caseRng, recipe, describe, MUTATIONS }
