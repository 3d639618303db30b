#!/usr/bin/env node
"use strict"
// Seeded random-response fuzzer for the HTTP transport (issue 12).
//
//   node scripts/fuzz-transport.js [--cases N] [--seed S] [--from I] [--timeout MS] [--concurrency C] [--skip m1,m2]
//   npm run fuzz:transport -- --cases 300000 --seed 7
//
// This process runs a raw TCP server on 127.0.0.1 that answers every request with a
// mutated valid response (flipped, inserted or dropped bytes, truncation, huge chunk
// sizes and content-lengths, duplicate and conflicting headers, oversized heads, early
// close, reset, dripping, pipelined garbage, …), chosen from a PRNG seeded by (seed,
// case), so any case can be replayed alone with --from I --cases 1 (--skip leaves
// mutations out, to look past a known bug). The client, one
// pusher-native instance (the event loop on the main thread, or tokio with
// PUSHER_NATIVE_TRANSPORT=tokio), reusing its keep-alive connections across cases, runs
// in a child process, so a crash or a blocked event loop is reported with the seed and
// the cases in flight. Invariants: the child never dies, every call settles (a
// Response, or a RequestError) within the timeout plus a margin, and a healthy request
// succeeds after every batch of cases and at the end.

const net = require("node:net")
const path = require("node:path")
const { fork } = require("node:child_process")

const MARGIN_MS = 1000
const BATCH = 100 // cases between healthy requests

// ---- seeded PRNG (mulberry32), one stream per case ----

function prng(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  next.int = (n) => Math.floor(next() * n)
  next.pick = (list) => list[next.int(list.length)]
  next.chance = (p) => next() < p
  return next
}
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
 * connection ends: "keep", "fin" (with the last piece), "reset" or "destroy".
 */
function recipe(seed, i, skip = []) {
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
  const end = base.framing === "close" ? rng.pick(["fin", "fin", "reset", "keep"]) : rng.pick(["keep", "keep", "keep", "keep", "fin", "reset", "destroy"])
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
  return { i, framing: base.framing, mutations: applied, style, end, pieces, size: bytes.length }
}

const describe = (r) =>
  `case ${r.i}: ${r.framing} response, mutations [${r.mutations.join(", ")}], ${r.style} in ${r.pieces.length} piece(s), ${r.size} bytes, then ${r.end}; ` +
  `starts ${JSON.stringify(Buffer.concat(r.pieces.map((p) => p.bytes)).subarray(0, 300).toString("latin1"))}`

// ---- the server (this process) ----

function fuzzServer(seed, skip) {
  const state = { pending: 0, quietWaiters: [], served: 0 }
  const settledIfQuiet = () => {
    if (state.pending === 0) for (const w of state.quietWaiters.splice(0)) w()
  }
  const VALID = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{"healthy":true}')
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    socket.on("error", () => {})
    let buf = Buffer.alloc(0)
    socket.on("data", (data) => {
      buf = Buffer.concat([buf, data])
      for (;;) {
        const end = buf.indexOf("\r\n\r\n")
        if (end < 0) return
        const head = buf.subarray(0, end).toString("latin1")
        const length = Number((/\r\ncontent-length: *(\d+)/i.exec(head) || [0, 0])[1])
        if (buf.length < end + 4 + length) return
        const request = buf.subarray(0, end + 4 + length).toString("latin1")
        buf = buf.subarray(end + 4 + length)
        const match = /[/"]case-(\d+)/.exec(request)
        if (!match || request.includes("/redirected/")) {
          socket.write(VALID)
          continue
        }
        state.served++
        answer(socket, recipe(seed, Number(match[1]), skip))
      }
    })
  })
  function answer(socket, r) {
    state.pending++
    let k = 0
    const next = () => {
      if (k >= r.pieces.length || socket.destroyed) return finish()
      const piece = r.pieces[k++]
      const write = () => {
        if (socket.destroyed) return finish()
        if (k === r.pieces.length && r.end === "fin") socket.end(piece.bytes)
        else socket.write(piece.bytes)
        next()
      }
      if (piece.delay > 0) setTimeout(write, piece.delay)
      else write()
    }
    const finish = () => {
      if (!socket.destroyed && r.end === "reset") socket.resetAndDestroy()
      else if (!socket.destroyed && r.end === "destroy") socket.destroy()
      state.pending--
      settledIfQuiet()
    }
    next()
  }
  return {
    server,
    state,
    quiet: () => new Promise((resolve) => (state.pending === 0 ? resolve() : state.quietWaiters.push(resolve))),
  }
}

/**
 * Runs `cases` cases from `from` with `seed`; resolves with
 * `{ cases, resolved, rejected, codes, healthy, ms, failure }`, `failure` (or null)
 * being `{ kind, message, seed, cases: [case descriptions], repro }`. With `pinpoint`,
 * the cases in flight at a failure are replayed one by one to find the culprit(s).
 */
async function run({ cases = 2500, seed = 1, from = 0, timeoutMs = 300, concurrency = 16, env = {}, pinpoint = true, skip = [] } = {}) {
  const { server, state, quiet } = fuzzServer(seed, skip)
  await new Promise((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: 1024 }, resolve))
  const started = Date.now()
  const child = fork(__filename, ["--client", JSON.stringify({ port: server.address().port, cases, from, timeoutMs, concurrency })], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  })
  let stderr = ""
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)))
  const inFlight = new Set()
  let stats = null
  let violation = null
  let lastMessage = Date.now()
  let hung = false
  child.on("message", (m) => {
    lastMessage = Date.now()
    if (m.start !== undefined) inFlight.add(m.start)
    else if (m.done !== undefined) inFlight.delete(m.done)
    else if (m.quiesce) quiet().then(() => child.connected && child.send({ quiet: true }))
    else if (m.violation) violation = m.violation
    else if (m.stats) stats = m.stats
  })
  const watchdog = setInterval(() => {
    if (Date.now() - lastMessage > Math.max(5000, timeoutMs * 10) && state.pending === 0) {
      hung = true
      child.kill("SIGKILL")
    }
  }, 250)
  const [code, signal] = await new Promise((resolve) => child.on("exit", (c, s) => resolve([c, s])))
  clearInterval(watchdog)
  await new Promise((resolve) => server.close(resolve))
  const skipArg = skip.length > 0 ? ` --skip ${skip.join(",")}` : ""
  const repro = (i) => `node scripts/fuzz-transport.js --seed ${seed} --from ${i} --cases 1 --timeout ${timeoutMs}${skipArg}`
  let failure = null
  const suspects = violation ? [violation.case] : [...inFlight].sort((a, b) => a - b)
  if (hung) failure = { kind: "hang", message: `the client's event loop was blocked for over ${Math.max(5000, timeoutMs * 10)} ms` }
  else if (signal || code !== 0 || violation || !stats) {
    failure = violation
      ? { kind: violation.kind, message: violation.message }
      : { kind: "crash", message: `the client process died (${signal || "exit code " + code})\n${stderr.trim().split("\n").slice(-8).join("\n")}` }
  }
  if (failure) {
    failure.seed = seed
    let culprits = suspects.filter((i) => i >= 0)
    // Several cases were in flight: replay each alone and keep those that fail alone.
    if (pinpoint && culprits.length > 1) {
      const alone = []
      for (const i of culprits) {
        const replay = await run({ cases: 1, seed, from: i, timeoutMs, concurrency: 1, env, pinpoint: false, skip })
        if (replay.failure) alone.push(i)
      }
      if (alone.length > 0) {
        failure.message += `\n(${culprits.length} cases were in flight; ${alone.length} fail when replayed alone)`
        culprits = alone
      } else {
        failure.message += `\n(${culprits.length} cases were in flight; none fails alone: the sequence matters, replay the batch)`
      }
    }
    failure.cases = culprits.map((i) => describe(recipe(seed, i, skip)))
    failure.repro = culprits.map(repro)
    if (culprits.length === 0) failure.repro = [`node scripts/fuzz-transport.js --seed ${seed} --cases ${from + cases} --timeout ${timeoutMs}${skipArg}`]
  }
  return { ...(stats || {}), served: state.served, ms: Date.now() - started, failure }
}

// ---- the client (child process) ----

async function client({ port, cases, from, timeoutMs, concurrency }) {
  const Pusher = require(path.join(__dirname, ".."))
  const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port, timeout: timeoutMs })
  const stats = { cases: 0, resolved: 0, rejected: 0, codes: {}, healthy: 0 }
  const fail = (kind, i, message) => {
    process.send({ violation: { kind, case: i, message } }, () => process.exit(1))
  }
  const call = (i) => (i % 5 === 0 ? pusher.get({ path: `/channels/case-${i}` }) : pusher.trigger(`case-${i}`, "e", { i }))
  async function one(i) {
    process.send({ start: i })
    let timer
    const limit = new Promise((resolve) => (timer = setTimeout(() => resolve("unsettled"), timeoutMs + MARGIN_MS)))
    const outcome = await Promise.race([call(i).then((res) => res, (err) => ({ err })), limit])
    clearTimeout(timer)
    if (outcome === "unsettled") return fail("unsettled", i, `did not settle within ${timeoutMs} + ${MARGIN_MS} ms`)
    if (outcome.err !== undefined) {
      if (!(outcome.err instanceof Pusher.RequestError)) return fail("not a RequestError", i, String(outcome.err && outcome.err.stack))
      const code = (outcome.err.error && outcome.err.error.code) || outcome.err.code || "?"
      stats.codes[code] = (stats.codes[code] || 0) + 1
      stats.rejected++
    } else {
      if (typeof outcome.status !== "number") return fail("not a Response", i, String(outcome))
      stats.resolved++
    }
    stats.cases++
    process.send({ done: i })
  }
  async function healthy(k) {
    // Wait until the server has written every scheduled byte, and for the loop to read them.
    await new Promise((resolve) => {
      process.once("message", resolve)
      process.send({ quiesce: true })
    })
    await new Promise((resolve) => setTimeout(resolve, 20))
    const res = await pusher.trigger(`healthy-${k}`, "e", {}).then((r) => r, (e) => e)
    const body = res instanceof Pusher.RequestError ? undefined : await res.text()
    if (body !== '{"healthy":true}') {
      const detail = res instanceof Pusher.RequestError ? `${res.message}: ${res.error ? res.error.code + " " + res.error.message : res.status}` : `${res.status} ${body}`
      return fail("healthy request failed", -1, `the healthy request after case ${from + k - 1} failed: ${detail}`)
    }
    stats.healthy++
  }
  for (let at = from; at < from + cases; at += BATCH) {
    const end = Math.min(from + cases, at + BATCH)
    let nextCase = at
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (nextCase < end) await one(nextCase++)
    }))
    await healthy(end - from)
  }
  process.send({ stats }, () => process.exit(0))
}

// ---- command line ----

function parseArgs(argv) {
  const options = { cases: 300000, seed: (Date.now() % 1e9) >>> 0, from: 0, timeoutMs: 300, concurrency: 16 }
  const names = { "--cases": "cases", "--seed": "seed", "--from": "from", "--timeout": "timeoutMs", "--concurrency": "concurrency" }
  for (let k = 0; k < argv.length; k += 2) {
    if (argv[k] === "--skip") {
      options.skip = String(argv[k + 1] || "").split(",").filter(Boolean)
      const unknown = options.skip.filter((n) => !MUTATIONS[n])
      if (unknown.length > 0) throw new Error(`unknown mutation(s) ${unknown}; known: ${Object.keys(MUTATIONS)}`)
      continue
    }
    if (!names[argv[k]] || !/^\d+$/.test(argv[k + 1] || "")) throw new Error(`usage: fuzz-transport.js [--cases N] [--seed S] [--from I] [--timeout MS] [--concurrency C] [--skip m1,m2] (bad ${argv[k]})`)
    options[names[argv[k]]] = Number(argv[k + 1])
  }
  return options
}

if (require.main === module) {
  if (process.argv[2] === "--client") {
    client(JSON.parse(process.argv[3]))
  } else {
    const options = parseArgs(process.argv.slice(2))
    console.log(`fuzz-transport: ${options.cases} cases from ${options.from}, seed ${options.seed}, timeout ${options.timeoutMs} ms, ` +
      `${options.concurrency} at once${options.skip ? ", without " + options.skip : ""}, transport ${process.env.PUSHER_NATIVE_TRANSPORT === "tokio" ? "tokio" : "event loop"}`)
    run(options).then((result) => {
      const { failure, ...stats } = result
      console.log(JSON.stringify(stats))
      if (failure) {
        console.error(`FAILED (${failure.kind}) with seed ${failure.seed}: ${failure.message}`)
        for (const c of failure.cases) console.error("  " + c)
        for (const r of failure.repro) console.error("  reproduce: " + r)
        process.exitCode = 1
      }
    })
  }
}

module.exports = { run, recipe, describe, prng, caseRng, MUTATIONS }
