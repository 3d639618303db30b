"use strict"
// One measurement in a fresh process: `node bench/worker.js '<json spec>'`.
// Spec: { impl: "native" | "native:<dir>" | "pusher" | "pusher-ka" | "web", workload: "W1".."W6" | "W8" | "W9",
//         port, tls, n, warmup, maxMs }. Prints one JSON line on stdout. With `tls` (W9) the
//         server's CA comes from NODE_EXTRA_CA_CERTS, set by run.js.
//
// Started by bench/run.js (pinned with taskset); never a test.

const http = require("http")
const https = require("https")
const path = require("path")
const crypto = require("crypto")

const spec = JSON.parse(process.argv[2])
const MASTER_KEY = Buffer.alloc(32, 7).toString("base64")

function load(impl) {
  if (impl === "native") return require(path.resolve(__dirname, ".."))
  // The web build (fetch + @noble/*) under Node: scripts/build-web.js writes it.
  if (impl === "web") return require(path.resolve(__dirname, "..", "web", "index.mjs")).default
  // "native:<dir>": another build of pusher-native (before/after comparisons)
  if (impl.startsWith("native:")) return require(path.resolve(impl.slice("native:".length)))
  return require("pusher")
}

function make(impl, extra) {
  const Pusher = load(impl)
  const options = {
    appId: "1",
    key: "bench-key",
    secret: "bench-secret",
    host: "127.0.0.1",
    port: spec.port,
    useTLS: Boolean(spec.tls),
    encryptionMasterKeyBase64: MASTER_KEY,
    ...extra,
  }
  if (impl === "pusher-ka") options.agent = new (spec.tls ? https : http).Agent({ keepAlive: true })
  return new Pusher(options)
}

const DATA = { message: "hello world", n: 42 }

/** Runs `op(i)` with `inflight` concurrent lanes until `n` ops or `maxMs` elapse. */
async function lanes(op, n, inflight, maxMs, latencies) {
  let next = 0
  const deadline = performance.now() + maxMs
  async function lane() {
    for (;;) {
      const i = next++
      if (i >= n || (i & 63) === 0 && performance.now() > deadline) {
        next = n
        return
      }
      const t = performance.now()
      await op(i)
      if (latencies) latencies.push(performance.now() - t)
    }
  }
  const all = []
  for (let k = 0; k < inflight; k++) all.push(lane())
  await Promise.all(all)
}

function syncLoop(op, n, maxMs, latencies) {
  const deadline = performance.now() + maxMs
  let i = 0
  for (; i < n; i++) {
    if ((i & 255) === 0 && performance.now() > deadline) break
    const t = performance.now()
    op(i)
    if (latencies) latencies.push(performance.now() - t)
  }
  return i
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

/** Measures `run(count, latencies)` after a warm-up; returns ops/s, CPU/op, latency. */
async function measure(run) {
  await run(spec.warmup, null)
  const latencies = []
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await run(spec.n, latencies)
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const ops = latencies.length
  latencies.sort((a, b) => a - b)
  return {
    ops,
    wallMs,
    opsPerSec: (ops / wallMs) * 1000,
    cpuUsPerOp: (cpu.user + cpu.system) / ops,
    userUsPerOp: cpu.user / ops,
    sysUsPerOp: cpu.system / ops,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
  }
}

const workloads = {
  // trigger, sequential
  W1: (p) => measure((n, lat) => lanes(() => p.trigger("my-channel", "my-event", DATA), n, 1, spec.maxMs, lat)),
  // trigger over HTTPS, 64 in flight
  W9: (p) => workloads.W2(p),
  // trigger, 64 in flight
  W2: (p) => measure((n, lat) => lanes(() => p.trigger("my-channel", "my-event", DATA), n, 64, spec.maxMs, lat)),
  // triggerBatch of 10, 16 in flight (triggerBatch rewrites `data`, so a fresh batch per call)
  W3: (p) =>
    measure((n, lat) =>
      lanes(
        () => {
          const batch = []
          for (let k = 0; k < 10; k++) batch.push({ channel: "channel-" + k, name: "my-event", data: DATA })
          return p.triggerBatch(batch)
        },
        n,
        16,
        spec.maxMs,
        lat
      )
    ),
  // authorizeChannel, presence channel with channel_data
  W4: (p) => {
    const member = { user_id: "user-1234", user_info: { name: "Alice", email: "alice@example.com" } }
    let sink = 0
    const r = measure(async (n, lat) => {
      syncLoop(
        () => {
          sink += p.authorizeChannel("1234.5678", "presence-room", member).auth.length
        },
        n,
        spec.maxMs,
        lat
      )
    })
    return r.then((x) => ({ ...x, sink }))
  },
  // webhook(...).isValid() on a 1 KB body
  W5: (p) => {
    const events = []
    while (JSON.stringify({ time_ms: 1700000000000, events }).length < 1000) {
      events.push({ name: "channel_occupied", channel: "presence-room-" + events.length })
    }
    let rawBody = JSON.stringify({ time_ms: 1700000000000, events })
    rawBody = rawBody.slice(0, -1) + " ".repeat(Math.max(0, 1024 - rawBody.length)) + "}"
    const signature = crypto.createHmac("sha256", "bench-secret").update(rawBody).digest("hex")
    const request = {
      headers: { "x-pusher-key": "bench-key", "x-pusher-signature": signature, "content-type": "application/json" },
      rawBody,
    }
    let valid = 0
    return measure(async (n, lat) => {
      syncLoop(
        () => {
          if (p.webhook(request).isValid()) valid++
        },
        n,
        spec.maxMs,
        lat
      )
    }).then((x) => {
      if (valid === 0) throw new Error("webhook not valid")
      return { ...x, bodyBytes: rawBody.length }
    })
  },
  // trigger on a private-encrypted channel, 16 in flight
  W6: (p) =>
    measure((n, lat) => lanes(() => p.trigger("private-encrypted-room", "my-event", DATA), n, 16, spec.maxMs, lat)),
  // RSS over many triggers (64 in flight); slope after a warm-up long enough for V8 to
  // finish growing its heap (~50k triggers at this allocation rate)
  W8: async (p) => {
    // Warm-up and measurement run the same way, `step` triggers then a full GC and an
    // RSS sample: the warm-up samples are dropped (V8 grows its heap during the first
    // ~50-100k triggers at this allocation rate), the slope is fitted to the rest.
    const step = spec.step || 10000
    const gc = global.gc || (() => {})
    const samples = []
    const heap = []
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const total = spec.warmup + spec.n
    for (let done = 0; done < total; ) {
      await lanes(() => p.trigger("my-channel", "my-event", DATA), step, 64, Infinity, null)
      done += step
      gc()
      if (done < spec.warmup) continue
      samples.push([done - spec.warmup, process.memoryUsage.rss()])
      heap.push(process.memoryUsage().heapUsed)
    }
    const wallMs = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    // least-squares slope, bytes per trigger
    const k = samples.length
    const mx = samples.reduce((s, [x]) => s + x, 0) / k
    const my = samples.reduce((s, [, y]) => s + y, 0) / k
    let sxy = 0
    let sxx = 0
    for (const [x, y] of samples) {
      sxy += (x - mx) * (y - my)
      sxx += (x - mx) * (x - mx)
    }
    const slope = sxx > 0 ? sxy / sxx : 0
    const span = samples[k - 1][0] - samples[0][0]
    const rss = samples.map(([, y]) => y / 2 ** 20)
    return {
      ops: total,
      wallMs,
      opsPerSec: (total / wallMs) * 1000,
      cpuUsPerOp: (cpu.user + cpu.system) / total,
      rssStartMB: rss[0],
      rssEndMB: rss[k - 1],
      rssMinMB: Math.min(...rss),
      rssMaxMB: Math.max(...rss),
      mbPer100k: (slope * 100000) / 2 ** 20,
      // end minus first post-warm-up sample, per 100k triggers (noisier than the fit)
      deltaMBPer100k: span > 0 ? ((rss[k - 1] - rss[0]) * 100000) / span : 0,
      // the JS heap after a full GC: a leak of JS objects shows here
      heapStartMB: heap[0] / 2 ** 20,
      heapEndMB: heap[k - 1] / 2 ** 20,
      series: spec.series ? rss.map((y, i) => [samples[i][0], +y.toFixed(1)]) : undefined,
    }
  },
}

async function main() {
  const fn = workloads[spec.workload]
  if (!fn) throw new Error("unknown workload " + spec.workload)
  const pusher = make(spec.impl)
  const result = await fn(pusher)
  process.stdout.write(JSON.stringify({ impl: spec.impl, workload: spec.workload, ...result }) + "\n")
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write((e && e.stack) || String(e))
    process.stderr.write("\n")
    process.exit(1)
  }
)
