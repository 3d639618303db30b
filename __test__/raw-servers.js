"use strict"
// Crafting helpers for the hostile-server tests: raw TCP and TLS servers on 127.0.0.1
// whose answers are written byte by byte by the test (no HTTP library on the server
// side), and a child-process runner, so a client that crashes or spins is reported as
// a clean failure instead of taking the test runner down with it.

const net = require("node:net")
const tls = require("node:tls")
const path = require("node:path")
const { Duplex } = require("node:stream")
const { spawn } = require("node:child_process")

const ROOT = path.join(__dirname, "..")

/**
 * Splits the requests a client sends on `stream` (head, then a content-length body) and
 * calls `onRequest(request)` for each: `{ method, url, head, body, raw, index }`, where
 * `index` counts the requests on this connection from 0.
 */
function readRequests(stream, onRequest) {
  let buf = Buffer.alloc(0)
  let index = 0
  stream.on("data", (data) => {
    buf = Buffer.concat([buf, data])
    for (;;) {
      const end = buf.indexOf("\r\n\r\n")
      if (end < 0) return
      const head = buf.subarray(0, end).toString("latin1")
      const length = Number((/\r\ncontent-length: *(\d+)/i.exec(head) || [0, 0])[1])
      if (buf.length < end + 4 + length) return
      const raw = buf.subarray(0, end + 4 + length)
      const body = raw.subarray(end + 4).toString("utf8")
      buf = buf.subarray(end + 4 + length)
      const [method, url] = head.split(" ", 2)
      onRequest({ method, url, head, body, raw, index: index++ })
    }
  })
}

function tracked(server) {
  const sockets = new Set()
  let accepted = 0
  server.on("connection", (s) => {
    accepted++
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
  })
  return {
    sockets,
    accepted: () => accepted,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/**
 * A plain TCP server; `answer(socket, request, conn)` writes the response bytes itself
 * (`conn` is per connection: `{ id, state }`, `state` free for the test).
 */
async function rawServer(answer, { host = "127.0.0.1", port = 0 } = {}) {
  let ids = 0
  const requests = []
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    socket.on("error", () => {})
    const conn = { id: ids++, state: {} }
    readRequests(socket, (request) => {
      requests.push({ ...request, conn: conn.id })
      answer(socket, request, conn)
    })
  })
  const t = tracked(server)
  await new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, host, resolve)
  })
  return { server, port: server.address().port, host, requests, accepted: t.accepted, close: t.close }
}

/**
 * A TLS server whose ciphertext the test controls: TLS runs over an in-memory stream
 * bridged to the TCP socket, so records can be held back and sent in one write
 * together with extra bytes (`flush(extra)`), or the TCP connection closed without a
 * close_notify (`raw.end()`). `answer(tlsSocket, request, conn)` with
 * `conn = { id, raw, hold(), flush(extra), state }`.
 */
async function tlsRawServer({ cert, key }, answer) {
  let ids = 0
  const requests = []
  const server = net.createServer((raw) => {
    raw.setNoDelay(true)
    raw.on("error", () => {})
    let held = null
    const wire = new Duplex({
      read() {},
      write(chunk, encoding, callback) {
        if (held) held.push(chunk)
        else if (!raw.destroyed) raw.write(chunk)
        callback()
      },
      final(callback) {
        callback()
      },
    })
    raw.on("data", (d) => wire.push(d))
    raw.on("end", () => wire.push(null))
    raw.on("close", () => wire.destroy())
    const secure = new tls.TLSSocket(wire, { isServer: true, cert, key })
    secure.on("error", () => {})
    const conn = {
      id: ids++,
      raw,
      state: {},
      hold: () => {
        held = held || []
      },
      /** Sends the held records, then `extra`, in a single TCP write. */
      flush: (extra = Buffer.alloc(0)) => {
        const out = Buffer.concat([...(held || []), extra])
        held = null
        if (!raw.destroyed) raw.write(out)
      },
    }
    readRequests(secure, (request) => {
      requests.push({ ...request, conn: conn.id })
      answer(secure, request, conn)
    })
  })
  const t = tracked(server)
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { server, port: server.address().port, requests, accepted: t.accepted, close: t.close }
}

/** A complete response with a content-length. */
function response(body = "{}", { status = "200 OK", headers = [] } = {}) {
  const bytes = Buffer.from(body)
  const lines = [`HTTP/1.1 ${status}`, "content-type: application/json", ...headers, `content-length: ${bytes.length}`]
  return Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1"), bytes])
}

// ---- the client side, in a child process ----

/**
 * Code run before a child's script: `Pusher` (pusher-native), `Upstream` (`pusher`),
 * `make(Impl, options)`, `outcome(fn)` (the normalised result of a call, body read
 * included), `report(value)` and `busy(ms)`.
 */
const PRELUDE = `
  // PUSHER_NATIVE_BUILD=web: the web build (built by the parent: scripts/build-web.js).
  const Pusher = process.env.PUSHER_NATIVE_BUILD === "web" ? require(${JSON.stringify(ROOT + "/web/index.mjs")}).default : require(${JSON.stringify(ROOT)})
  const Upstream = require("pusher")
  const make = (Impl, options) => new Impl(Object.assign({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1" }, options))
  async function outcome(fn) {
    const started = performance.now()
    const ms = () => Math.round(performance.now() - started)
    let res
    try {
      res = await fn()
    } catch (e) {
      const cause = e && e.error
      return { ok: false, stage: "call", status: e && e.status, code: cause ? cause.code : e && e.code, retryable: e && e.retryable,
        message: String(e && e.message), cause: cause ? String(cause.message) : undefined,
        requestError: e instanceof Pusher.RequestError || e instanceof Upstream.RequestError, ms: ms() }
    }
    try {
      const body = await res.text()
      return { ok: true, status: res.status, body, ms: ms() }
    } catch (e) {
      return { ok: false, stage: "body", status: res.status, code: e.code, message: String(e.message), ms: ms() }
    }
  }
  const report = (value) => process.stdout.write("RESULT " + JSON.stringify(value) + "\\n")
  const busy = (ms) => { const until = Date.now() + ms; while (Date.now() < until); }
  process.on("unhandledRejection", (e) => { console.error("unhandled rejection", e); process.exit(3) })
`

/**
 * Runs `script` (an async function body, after PRELUDE) in a child Node process with
 * `args` as `ARGS`. Resolves with `{ results, code, signal, killed, stderr, wallMs }`;
 * the child is SIGKILLed after `killAfterMs`. `env` adds to (or, with undefined
 * values, removes from) the child's environment. `wrap(node, args)` may return another
 * `[command, args]` that runs node (e.g. inside `unshare`).
 */
function runClient(script, { args = {}, env = {}, killAfterMs = 15000, wrap } = {}) {
  const code = `${PRELUDE}\nconst ARGS = ${JSON.stringify(args)};\n(async () => {\n${script}\n})().then(() => process.exit(0), (e) => { console.error(e); process.exit(2) })`
  const childEnv = { ...process.env }
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k]
    else childEnv[k] = v
  }
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const [command, commandArgs] = wrap ? wrap(process.execPath, ["-e", code]) : [process.execPath, ["-e", code]]
    const child = spawn(command, commandArgs, { cwd: ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let killed = false
    child.stdout.on("data", (c) => (stdout += c))
    child.stderr.on("data", (c) => (stderr += c))
    let cpuMs
    const timer = setTimeout(() => {
      killed = true
      cpuMs = cpuTimeMs(child.pid)
      child.kill("SIGKILL")
    }, killAfterMs)
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      const results = stdout
        .split("\n")
        .filter((l) => l.startsWith("RESULT "))
        .map((l) => JSON.parse(l.slice(7)))
      resolve({ results, code, signal, killed, cpuMs, stderr, wallMs: Math.round(performance.now() - started) })
    })
  })
}

/** CPU time (user + system) a process has used, from /proc; undefined elsewhere. */
function cpuTimeMs(pid) {
  try {
    const fields = require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
    return Math.round(((Number(fields[11]) + Number(fields[12])) * 1000) / 100) // clock ticks of 1/100 s
  } catch (e) {
    return undefined
  }
}

/** Throws a readable failure unless the child ran to completion. */
function assertSurvived(run, what = "the client") {
  const tail = run.stderr.trim().split("\n").slice(-6).join("\n")
  if (run.killed) {
    const cpu = run.cpuMs === undefined ? "" : `, having used ${run.cpuMs} ms of CPU`
    throw new Error(`${what} did not settle within ${run.wallMs} ms (killed${cpu}; results so far ${JSON.stringify(run.results)})\n${tail}`)
  }
  if (run.signal) throw new Error(`${what}: the process died with ${run.signal}\n${tail}`)
  if (run.code !== 0) throw new Error(`${what}: the process exited with code ${run.code}\n${tail}`)
}

/** The outcome as compared between libraries: rejected, or resolved with status and body. */
const shape = (o) => (o.ok ? { ok: true, status: o.status, body: o.body } : { ok: false })

// A listener whose accept queue is full (python3, whose listen(0) really is one slot):
// Linux drops further SYNs, so connects to it hang. `host` "::1" for IPv6; `port` 0
// for any. Resolves with { port, process } once it listens; kill `process` to end it.
const BLACK_HOLE = `
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family); s.bind((host, port)); s.listen(0)
fillers = []
for _ in range(8):
    c = socket.socket(family); c.setblocking(False)
    try: c.connect((host, s.getsockname()[1]))
    except BlockingIOError: pass
    fillers.append(c)
print(s.getsockname()[1]); sys.stdout.flush(); time.sleep(60)
`
async function blackHole(host = "127.0.0.1", port = 0) {
  const child = spawn("python3", ["-c", BLACK_HOLE, host, String(port)], { stdio: ["ignore", "pipe", "inherit"] })
  const listening = new Promise((resolve, reject) => {
    child.stdout.once("data", (d) => resolve(Number(d)))
    child.once("exit", (code) => reject(new Error(`the black hole exited (${code})`)))
  })
  const timer = new Promise((_, reject) => setTimeout(() => reject(new Error("the black hole did not start in 5 s")), 5000).unref())
  try {
    return { port: await Promise.race([listening, timer]), process: child }
  } catch (e) {
    child.kill()
    throw e
  }
}

module.exports = { ROOT, blackHole, readRequests, rawServer, tlsRawServer, response, runClient, assertSurvived, shape, PRELUDE }
