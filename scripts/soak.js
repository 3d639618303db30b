#!/usr/bin/env node
"use strict"
// Memory soak: 200k triggers against a local server (run in a child process, so only
// the client's memory is measured), 200k authorizeChannel calls and 200k webhook
// checks. For each phase it samples RSS after a full GC, fits a line through the
// samples taken after warm-up and fails (exit 1) if any slope exceeds the limit.
//
//   npm run soak                       # 200k of each
//   SOAK_OPS=50000 npm run soak        # shorter
//   SOAK_LIMIT_MB=2 npm run soak       # the limit, MB per 100k operations
//
// V8 grows its young generation in steps (semi-spaces 1 → 2 → … → 16 MB) whenever
// allocation is brisk, at unpredictable points: each step adds 8-16 MB of RSS that
// is no leak. The script re-runs itself with the young generation pinned at its
// maximum, so what the slope measures is memory that is actually retained.

const { spawn } = require("child_process")

const PINNED = ["--min-semi-space-size=16", "--max-semi-space-size=16", "--expose-gc"]
if (!PINNED.every((flag) => process.execArgv.includes(flag))) {
  const child = spawn(process.execPath, [...process.execArgv, ...PINNED, __filename, ...process.argv.slice(2)], {
    stdio: "inherit",
  })
  child.on("exit", (code, signal) => process.exit(signal ? 1 : code))
  return
}

const Pusher = require("..")
const gc = global.gc

const OPS = Number(process.env.SOAK_OPS) || 200000
const WARMUP = Math.floor(OPS / 4)
const SAMPLES = 10
const LIMIT_MB = Number(process.env.SOAK_LIMIT_MB) || 2
const IN_FLIGHT = 64

const MB = 1024 * 1024
const rss = () => process.memoryUsage().rss / MB

function settle() {
  gc()
  gc()
  return new Promise((resolve) => setImmediate(resolve)).then(() => {
    gc()
    return rss()
  })
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length
  const mx = points.reduce((s, p) => s + p[0], 0) / n
  const my = points.reduce((s, p) => s + p[1], 0) / n
  let num = 0
  let den = 0
  for (const [x, y] of points) {
    num += (x - mx) * (y - my)
    den += (x - mx) * (x - mx)
  }
  return den === 0 ? 0 : num / den
}

/** Starts the HTTP server in a child process; resolves with { port, stop }. */
function startServer() {
  const code = `
    const http = require("http")
    let count = 0
    const server = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        count++
        res.writeHead(200, { "content-type": "application/json" })
        res.end("{}")
      })
    })
    server.keepAliveTimeout = 60000
    server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"))
    process.on("message", () => process.send(count))
    process.on("disconnect", () => process.exit(0))
  `
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit", "ipc"] })
    const timer = setTimeout(() => reject(new Error("the soak server did not start")), 10000)
    child.stdout.once("data", (chunk) => {
      clearTimeout(timer)
      resolve({
        port: Number(String(chunk).trim()),
        count: () => new Promise((res) => {
          child.once("message", res)
          child.send("count")
        }),
        stop: () => child.kill(),
      })
    })
    child.on("error", reject)
  })
}

/**
 * Runs `op(i)` OPS times (`batch(from, to)` runs a slice; it may be async), sampling
 * RSS after warm-up. Returns { before, after, slopePer100k, samples }.
 */
async function phase(name, batch) {
  const started = performance.now()
  await batch(0, WARMUP)
  const before = await settle()
  const points = [[WARMUP, before]]
  const step = Math.ceil((OPS - WARMUP) / SAMPLES)
  for (let from = WARMUP; from < OPS; from += step) {
    const to = Math.min(OPS, from + step)
    await batch(from, to)
    points.push([to, await settle()])
  }
  const after = points[points.length - 1][1]
  const heap = process.memoryUsage()
  const perOp = slope(points)
  const result = {
    name,
    ops: OPS,
    seconds: (performance.now() - started) / 1000,
    before,
    after,
    slopePer100k: perOp * 100000,
  }
  console.log(
    `${name.padEnd(18)} ${OPS} ops in ${result.seconds.toFixed(1)} s  RSS ${before.toFixed(1)} MB -> ${after.toFixed(1)} MB` +
      `  slope ${result.slopePer100k >= 0 ? "+" : ""}${result.slopePer100k.toFixed(2)} MB/100k` +
      `  samples [${points.map((p) => p[1].toFixed(1)).join(", ")}]` +
      `  (JS heap ${(heap.heapUsed / MB).toFixed(1)}/${(heap.heapTotal / MB).toFixed(1)} MB)`
  )
  return result
}

async function main() {
  const server = await startServer()
  const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port: server.port, timeout: 10000 })
  const startRss = rss()
  console.log(`pusher-native soak: ${OPS} operations per phase, warm-up ${WARMUP}, limit ${LIMIT_MB} MB/100k`)
  console.log(`RSS at start ${startRss.toFixed(1)} MB`)

  let failures = 0
  const triggers = async (from, to) => {
    let next = from
    const worker = async () => {
      while (next < to) {
        const i = next++
        const res = await pusher.trigger("soak-channel", "soak-event", { i, text: "some payload to send" })
        if (res.status !== 200) failures++
        await res.text()
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  }

  const authorize = (from, to) => {
    for (let i = from; i < to; i++) {
      const auth = pusher.authorizeChannel(`${i % 1000}.${i}`, "presence-room", { user_id: `u${i}`, user_info: { n: i } })
      if (!auth.auth) throw new Error("no auth")
    }
  }

  const body = JSON.stringify({ time_ms: 1700000000000, events: [{ channel: "c", name: "channel_occupied" }] })
  const signature = require("crypto").createHmac("sha256", "secret").update(body).digest("hex")
  const webhooks = (from, to) => {
    for (let i = from; i < to; i++) {
      const valid = i % 2 === 0
      const webhook = pusher.webhook({
        headers: {
          "x-pusher-key": "key",
          "x-pusher-signature": valid ? signature : "0".repeat(64),
          "content-type": "application/json",
        },
        rawBody: body,
      })
      if (webhook.isValid() !== valid) throw new Error("wrong webhook verdict")
      if (valid) webhook.getEvents()
    }
  }

  const results = []
  try {
    results.push(await phase("trigger", triggers))
    results.push(await phase("authorizeChannel", authorize))
    results.push(await phase("webhook.isValid", webhooks))
    const delivered = await server.count()
    console.log(`server received ${delivered} triggers; ${failures} non-200 answers`)
    if (delivered !== OPS || failures > 0) {
      console.error("FAIL: not every trigger was delivered once with a 200")
      process.exitCode = 1
    }
  } finally {
    server.stop()
  }
  console.log(`RSS at end ${rss().toFixed(1)} MB`)
  const over = results.filter((r) => r.slopePer100k > LIMIT_MB)
  if (over.length > 0) {
    console.error(`FAIL: memory grows in ${over.map((r) => r.name).join(", ")} (limit ${LIMIT_MB} MB/100k)`)
    process.exitCode = 1
  } else {
    console.log(`OK: every slope is within ${LIMIT_MB} MB/100k`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

