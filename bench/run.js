"use strict"
// `npm run bench [-- --quick] [-- --rounds N] [-- --only W1,W2,...] [-- --out file.md]
//                [-- --impls pusher,pusher-ka,native,web[,native:<dir>]] [-- --serve]`
// (`native:<dir>` adds another checkout/build of pusher-native, for before/after runs.)
//
// Side-by-side benchmark of pusher-native against `pusher` 5.3.4 (default agent, and
// `new http.Agent({ keepAlive: true })`), interleaved: every measurement runs in a fresh
// `bench/worker.js` process, A B C A B C …, over several rounds; medians are reported.
// The target is an nginx started here with its own config on loopback; wrk against
// the same nginx with the same request shape is the ceiling. nginx is pinned to core 1,
// clients (and wrk) to core 0. Writes bench/results/latest.md (and .json) and prints it.

const { spawn, spawnSync, execFileSync } = require("child_process")
const fs = require("fs")
const net = require("net")
const os = require("os")
const path = require("path")

const ROOT = path.resolve(__dirname, "..")
const WORKER = path.join(__dirname, "worker.js")

// ---- options ----

const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const value = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}
const QUICK = flag("--quick")
const ROUNDS = Number(value("--rounds", QUICK ? 1 : 5))
const ONLY = value("--only", "W1,W2,W3,W4,W5,W6,W9,W7,W8,wrk").split(",")
const OUT = path.resolve(value("--out", path.join(__dirname, "results", "latest.md")))
const IMPLS = (value("--impls", "pusher,pusher-ka,native,web") || "").split(",")
if (IMPLS.includes("web")) require("../scripts/build-web").build()

const LABELS = {
  pusher: "pusher 5.3.4 (default agent)",
  "pusher-ka": "pusher 5.3.4 (keepAlive agent)",
  native: "pusher-native",
  web: "pusher-native/web (fetch + @noble)",
  wrk: "wrk",
}
const LABEL = new Proxy(LABELS, { get: (t, k) => t[k] || (String(k).startsWith("native:") ? `pusher-native (${String(k).slice(7)})` : String(k)) })

// n = max ops measured, maxMs = time cap for the measured part, warmup = ops before it
const PLAN = QUICK
  ? {
      W1: { n: 2000, warmup: 200, maxMs: 400 },
      W2: { n: 5000, warmup: 500, maxMs: 500 },
      W3: { n: 1000, warmup: 100, maxMs: 400 },
      W4: { n: 50000, warmup: 5000, maxMs: 300 },
      W5: { n: 50000, warmup: 5000, maxMs: 300 },
      W6: { n: 3000, warmup: 300, maxMs: 400 },
      W9: { n: 5000, warmup: 500, maxMs: 500 },
      W7: { reps: 5 },
      W8: { n: 20000, warmup: 10000, step: 5000 },
      wrkSeconds: 1,
    }
  : {
      W1: { n: 20000, warmup: 1000, maxMs: 2000 },
      W2: { n: 100000, warmup: 3000, maxMs: 3000 },
      W3: { n: 20000, warmup: 500, maxMs: 2500 },
      W4: { n: 1000000, warmup: 20000, maxMs: 1500 },
      W5: { n: 1000000, warmup: 20000, maxMs: 1500 },
      W6: { n: 50000, warmup: 1000, maxMs: 2500 },
      W9: { n: 100000, warmup: 3000, maxMs: 3000 },
      W7: { reps: 15 },
      W8: { n: 200000, warmup: 100000, step: 10000 },
      wrkSeconds: 4,
    }

const NAMES = {
  W1: "trigger, sequential",
  W2: "trigger, 64 in flight",
  W3: "triggerBatch of 10, 16 in flight",
  W4: "authorizeChannel, presence + channel_data",
  W5: "webhook(…).isValid(), 1 KB body",
  W6: "trigger, private-encrypted, 16 in flight",
  W7: "cold start: require + new Pusher, minus bare node",
  W8: "RSS growth over 200k triggers after 100k warm-up (64 in flight)",
  W9: "trigger over HTTPS, 64 in flight",
}

// ---- CPU pinning ----

const CPUS = os.availableParallelism ? os.availableParallelism() : os.cpus().length
const HAS_TASKSET = spawnSync("taskset", ["-c", "0", "true"]).status === 0
const PIN = HAS_TASKSET && CPUS >= 2
const pinned = (core, cmd, args) => (PIN ? ["taskset", ["-c", String(core), cmd, ...args]] : [cmd, args])

// ---- nginx ----

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1")
    s.on("connect", () => {
      s.destroy()
      resolve(true)
    })
    s.on("error", () => resolve(false))
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function nginxBinary() {
  for (const p of ["/usr/sbin/nginx", "/usr/bin/nginx"]) if (fs.existsSync(p)) return p
  return "nginx"
}

async function startNginx(dir) {
  const port = await freePort()
  const tlsPort = await freePort()
  // W9's HTTPS listener: a throwaway CA and leaf for 127.0.0.1, as the tests make them;
  // every client trusts the CA through NODE_EXTRA_CA_CERTS (pusher's default agent too).
  const certs = require("../__test__/helpers").makeCerts()
  fs.writeFileSync(path.join(dir, "leaf.pem"), certs.certPem)
  fs.writeFileSync(path.join(dir, "leaf.key"), certs.keyPem)
  fs.writeFileSync(path.join(dir, "ca.pem"), certs.caPem)
  fs.rmSync(certs.dir, { recursive: true, force: true })
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path ${dir}/client_body;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      default_type application/json;
      return 200 '{}';
    }
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl backlog=4096;
    ssl_certificate ${dir}/leaf.pem;
    ssl_certificate_key ${dir}/leaf.key;
    location / {
      default_type application/json;
      return 200 '{}';
    }
  }
}
`
  fs.writeFileSync(path.join(dir, "nginx.conf"), conf)
  const [cmd, args] = pinned(1, nginxBinary(), ["-p", dir + "/", "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log")])
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  child.stderr.on("data", (d) => (stderr += d))
  let exited = false
  child.on("exit", () => (exited = true))
  for (let i = 0; i < 100; i++) {
    if (exited) throw new Error("nginx exited: " + stderr + readIf(path.join(dir, "error.log")))
    if (fs.existsSync(path.join(dir, "nginx.pid")) && (await canConnect(port))) break
    await sleep(50)
  }
  const pid = Number(fs.readFileSync(path.join(dir, "nginx.pid"), "utf8").trim())
  return { port, tlsPort, caPath: path.join(dir, "ca.pem"), pid, child, dir }
}

function readIf(file) {
  try {
    return fs.readFileSync(file, "utf8")
  } catch (e) {
    return ""
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return false
  }
}

async function stopNginx(nginx) {
  if (!nginx || !alive(nginx.pid)) return
  process.kill(nginx.pid, "SIGQUIT")
  for (let i = 0; i < 100 && alive(nginx.pid); i++) await sleep(50)
  if (alive(nginx.pid)) process.kill(nginx.pid, "SIGTERM")
}

// ---- measurements ----

function runWorker(spec) {
  // W8 pins V8's young generation (as `npm run soak` does), for every implementation:
  // its semi-spaces otherwise grow in 8-16 MB steps at unpredictable points, which reads
  // as RSS growth without anything being retained.
  const nodeArgs = spec.workload === "W8" ? ["--expose-gc", "--min-semi-space-size=16", "--max-semi-space-size=16", WORKER] : [WORKER]
  const [cmd, args] = pinned(0, process.execPath, [...nodeArgs, JSON.stringify(spec)])
  const env = spec.caPath ? { ...process.env, NODE_EXTRA_CA_CERTS: spec.caPath } : process.env
  const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: "utf8", maxBuffer: 1 << 24, timeout: 600000 })
  if (r.status !== 0) {
    throw new Error(`worker ${spec.impl} ${spec.workload} failed (${r.status}): ${r.stderr}`)
  }
  const line = r.stdout.trim().split("\n").pop()
  return JSON.parse(line)
}

const COLD = {
  bare: "",
  native: `const P=require(${JSON.stringify(ROOT)});`,
  pusher: `const P=require("pusher");`,
  web: `const P=require(${JSON.stringify(path.join(ROOT, "web", "index.mjs"))}).default;`,
}

function coldOnce(which) {
  const construct =
    which === "bare" ? "" : `new P({appId:"1",key:"bench-key",secret:"bench-secret",host:"127.0.0.1",port:1});`
  const load = which.startsWith("native:") ? `const P=require(${JSON.stringify(path.resolve(which.slice(7)))});` : COLD[which]
  const code = `const t=performance.now();${load}${construct}const ms=performance.now()-t;const c=process.cpuUsage();process.stdout.write(JSON.stringify({ms,cpu:c.user+c.system}))`
  const [cmd, args] = pinned(0, process.execPath, ["-e", code])
  const t0 = process.hrtime.bigint()
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8" })
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== 0) throw new Error(`cold start ${which} failed: ${r.stderr}`)
  const inner = JSON.parse(r.stdout)
  return { wallMs, requireMs: inner.ms, cpuUs: inner.cpu }
}

/** W7, one round: `reps` interleaved spawns of bare node, pusher and pusher-native. */
function coldRound(reps, impls) {
  const order = ["bare", ...impls.filter((i) => i !== "pusher-ka")]
  const samples = Object.fromEntries(order.map((k) => [k, []]))
  for (let i = 0; i < reps; i++) for (const k of order) samples[k].push(coldOnce(k))
  const out = {}
  const bare = median(samples.bare.map((s) => s.wallMs))
  const bareCpu = median(samples.bare.map((s) => s.cpuUs))
  for (const k of order) {
    if (k === "bare") continue
    out[k] = {
      impl: k,
      workload: "W7",
      coldMs: median(samples[k].map((s) => s.wallMs)) - bare,
      processMs: median(samples[k].map((s) => s.wallMs)),
      bareMs: bare,
      requireMs: median(samples[k].map((s) => s.requireMs)),
      coldCpuMs: (median(samples[k].map((s) => s.cpuUs)) - bareCpu) / 1000,
    }
  }
  return out
}

/** The trigger request exactly as the libraries send it, for wrk. */
function wrkScript(dir, port) {
  const Pusher = require(ROOT)
  const p = new Pusher({ appId: "1", key: "bench-key", secret: "bench-secret", host: "127.0.0.1", port })
  const body = JSON.stringify({ name: "my-event", data: JSON.stringify({ message: "hello world", n: 42 }), channels: ["my-channel"] })
  const query = p.createSignedQueryString({ method: "POST", path: "/apps/1/events", body })
  const lua = `wrk.method = "POST"
wrk.path = ${JSON.stringify("/apps/1/events?" + query)}
wrk.body = ${JSON.stringify(body)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "*/*"
wrk.headers["x-pusher-library"] = "pusher-native 0.1.0"
`
  const file = path.join(dir, "trigger.lua")
  fs.writeFileSync(file, lua)
  return file
}

function parseWrkDuration(s) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s)
  if (!m) return null
  const v = Number(m[1])
  return m[2] === "us" ? v / 1000 : m[2] === "ms" ? v : m[2] === "s" ? v * 1000 : v * 60000
}

/** wrk -t1 -c<connections>, pinned like the clients; CPU from the shell's cutime. */
function runWrk(script, port, connections, seconds) {
  const wrkCmd = `wrk -t1 -c${connections} -d${seconds}s --latency -s ${script} http://127.0.0.1:${port}`
  const shell = `${wrkCmd}; echo; echo "STAT $(cat /proc/$$/stat)"`
  const [cmd, args] = pinned(0, "sh", ["-c", shell])
  const r = spawnSync(cmd, args, { encoding: "utf8" })
  const out = r.stdout || ""
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
  const total = /(\d+) requests in/.exec(out)
  const p50 = /\s50%\s+(\S+)/.exec(out)
  const p99 = /\s99%\s+(\S+)/.exec(out)
  const stat = /STAT (.*)/.exec(out)
  let cpuUsPerOp = null
  if (stat && total) {
    // fields after "(comm)": cutime and cstime are fields 16 and 17 (1-based)
    const after = stat[1].slice(stat[1].lastIndexOf(")") + 2).split(" ")
    const ticks = Number(after[13]) + Number(after[14])
    const hz = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
    cpuUsPerOp = ((ticks / hz) * 1e6) / Number(total[1])
  }
  if (!rps) throw new Error("wrk failed: " + out + r.stderr)
  return {
    impl: "wrk",
    workload: connections === 1 ? "W1" : "W2",
    connections,
    opsPerSec: Number(rps[1]),
    cpuUsPerOp,
    p50Ms: p50 ? parseWrkDuration(p50[1]) : null,
    p99Ms: p99 ? parseWrkDuration(p99[1]) : null,
  }
}

// ---- statistics and report ----

function median(xs) {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const m = v.length >> 1
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}

function aggregate(samples) {
  const out = {}
  for (const key of Object.keys(samples[0])) {
    if (typeof samples[0][key] === "number") out[key] = median(samples.map((s) => s[key]))
    else out[key] = samples[0][key]
  }
  out.rounds = samples.length
  return out
}

const fmt = (x, digits = 1) => {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–"
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US")
  return x.toFixed(digits)
}
const fmtRatio = (x) => (x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(2) + "×")

function machine() {
  const cpuinfo = readIf("/proc/cpuinfo")
  const model = (/model name\s*:\s*(.*)/.exec(cpuinfo) || [])[1] || os.cpus()[0]?.model || "unknown"
  let nproc = String(CPUS)
  try {
    nproc = execFileSync("nproc", { encoding: "utf8" }).trim()
  } catch (e) {
    // keep os count
  }
  let nginx = ""
  const v = spawnSync(nginxBinary(), ["-v"], { encoding: "utf8" })
  nginx = ((v.stderr || "") + (v.stdout || "")).trim().replace("nginx version: ", "")
  return { nproc, model, node: process.version, kernel: os.release(), nginx }
}

function report(results, meta) {
  const get = (w, impl) => results[w] && results[w][impl]
  const lines = []
  lines.push(`# pusher-native benchmark`)
  lines.push("")
  lines.push(`- Date: ${meta.date}`)
  lines.push(`- Machine: nproc ${meta.machine.nproc}, ${meta.machine.model}, Linux ${meta.machine.kernel}`)
  lines.push(`- Node ${meta.machine.node}; server ${meta.machine.nginx} (1 worker, loopback, \`return 200 '{}'\`)`)
  lines.push(
    `- Mode: ${meta.quick ? "quick (smoke run, 1 round, small N)" : `full, ${meta.rounds} interleaved rounds, medians`}; ` +
      (PIN ? "nginx pinned to core 1, clients and wrk to core 0" : "no CPU pinning (fewer than 2 cores or no taskset)")
  )
  lines.push(
    `- CPU µs/op is \`process.cpuUsage()\` (user + system, all threads including tokio workers) over the measured ops; latency is per call, from call to settled promise.`
  )
  lines.push("")
  lines.push("## Results")
  lines.push("")
  lines.push("| Workload | Implementation | ops/s | CPU µs/op | p50 ms | p99 ms |")
  lines.push("|---|---|--:|--:|--:|--:|")
  for (const w of ["W1", "W2", "W3", "W4", "W5", "W6", "W9"]) {
    if (!results[w]) continue
    const impls = [...IMPLS, "wrk"]
    for (const impl of impls) {
      const r = get(w, impl)
      if (!r) continue
      const label = impl === "wrk" ? `wrk -t1 -c${r.connections} (ceiling)` : LABEL[impl]
      const digits = w === "W4" || w === "W5" ? 4 : 3
      lines.push(
        `| ${w} ${NAMES[w]} | ${label} | ${fmt(r.opsPerSec, 0)} | ${fmt(r.cpuUsPerOp, 2)} | ${fmt(r.p50Ms, digits)} | ${fmt(r.p99Ms, digits)} |`
      )
    }
  }
  if (results.W7) {
    lines.push("")
    lines.push(`| W7 ${NAMES.W7} | Implementation | cold ms (process wall − bare node) | CPU ms (− bare node) | require + new, in process ms |`)
    lines.push("|---|---|--:|--:|--:|")
    for (const impl of IMPLS) {
      const r = get("W7", impl)
      if (!r) continue
      lines.push(`| W7 | ${LABEL[impl]} | ${fmt(r.coldMs, 1)} | ${fmt(r.coldCpuMs, 1)} | ${fmt(r.requireMs, 1)} |`)
    }
    const b = Object.values(results.W7)[0]
    if (b) lines.push(`| W7 | bare \`node -e\` | ${fmt(b.bareMs, 1)} (absolute) | | |`)
  }
  if (results.W8) {
    lines.push("")
    lines.push(`| W8 ${NAMES.W8} | Implementation | triggers/s | RSS after warm-up MB | RSS end MB | RSS min–max MB | slope MB / 100k (fit) | (end − start) MB / 100k | JS heap used start → end MB | rounds |`)
    lines.push("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for (const impl of IMPLS) {
      const r = get("W8", impl)
      if (!r) continue
      lines.push(
        `| W8 | ${LABEL[impl]} | ${fmt(r.opsPerSec, 0)} | ${fmt(r.rssStartMB, 1)} | ${fmt(r.rssEndMB, 1)} | ${fmt(r.rssMinMB, 1)}–${fmt(r.rssMaxMB, 1)} | ${fmt(r.mbPer100k, 2)} | ${fmt(r.deltaMBPer100k, 2)} | ${fmt(r.heapStartMB, 1)} → ${fmt(r.heapEndMB, 1)} | ${r.rounds} |`
      )
    }
  }

  // ratios and targets
  const targets = []
  const best = (w, key, higherIsBetter) => {
    const vals = ["pusher", "pusher-ka"].map((i) => get(w, i)).filter(Boolean).map((r) => r[key])
    if (vals.length === 0) return null
    return higherIsBetter ? Math.max(...vals) : Math.min(...vals)
  }
  const ratio = (a, b) => (a != null && b != null && b !== 0 ? a / b : null)
  const row = (w, what, native, vsDefault, vsKa, vsBest, target, ok) =>
    targets.push({ w, what, vsDefault, vsKa, vsBest, target, ok })
  const n = (w) => get(w, "native")
  const thr = (w, min) => {
    if (!n(w)) return
    const r = ratio(n(w).opsPerSec, best(w, "opsPerSec", true))
    row(w, "throughput", null, ratio(n(w).opsPerSec, get(w, "pusher")?.opsPerSec), ratio(n(w).opsPerSec, get(w, "pusher-ka")?.opsPerSec), r, `≥ ${min}×`, r != null ? r >= min : null)
  }
  if (n("W1")) {
    const c = ratio(n("W1").cpuUsPerOp, best("W1", "cpuUsPerOp", false))
    row("W1", "CPU µs / trigger", null, ratio(n("W1").cpuUsPerOp, get("W1", "pusher")?.cpuUsPerOp), ratio(n("W1").cpuUsPerOp, get("W1", "pusher-ka")?.cpuUsPerOp), c, "≤ 0.27×", c != null ? c <= 0.27 : null)
    const l = ratio(n("W1").p50Ms, best("W1", "p50Ms", false))
    row("W1", "p50 latency", null, ratio(n("W1").p50Ms, get("W1", "pusher")?.p50Ms), ratio(n("W1").p50Ms, get("W1", "pusher-ka")?.p50Ms), l, "≤ 0.7×", l != null ? l <= 0.7 : null)
  }
  // 64 in flight, plain (W2) and HTTPS (W9): against pusher with a keep-alive agent.
  const inFlight = (w) => {
    const t = ratio(n(w).opsPerSec, get(w, "pusher-ka")?.opsPerSec)
    row(w, "throughput vs keepAlive", null, ratio(n(w).opsPerSec, get(w, "pusher")?.opsPerSec), t, t, "≥ 10× keepAlive", t != null ? t >= 10 : null)
    const c = ratio(n(w).cpuUsPerOp, best(w, "cpuUsPerOp", false))
    row(w, "CPU µs / trigger", null, ratio(n(w).cpuUsPerOp, get(w, "pusher")?.cpuUsPerOp), ratio(n(w).cpuUsPerOp, get(w, "pusher-ka")?.cpuUsPerOp), c, "≤ 0.10×", c != null ? c <= 0.1 : null)
  }
  if (n("W2")) {
    inFlight("W2")
    const wrk = get("W2", "wrk")
    const tw = ratio(n("W2").opsPerSec, wrk?.opsPerSec)
    targets.push({ w: "W2", what: "throughput vs wrk -c64", vsDefault: null, vsKa: null, vsBest: tw, target: "≥ 0.55× wrk", ok: tw != null ? tw >= 0.55 : null })
    // wrk's throughput is nginx's on a shared core here; its CPU per request is steadier
    const cw = ratio(wrk?.cpuUsPerOp, n("W2").cpuUsPerOp)
    targets.push({ w: "W2", what: "wrk CPU µs/req ÷ pusher-native CPU µs/trigger (info)", vsDefault: null, vsKa: null, vsBest: cw, target: "–", ok: null })
  }
  if (n("W9")) inFlight("W9")
  thr("W3", 6)
  thr("W6", 8)
  thr("W4", 2)
  thr("W5", 2)
  if (n("W7")) {
    const c = ratio(n("W7").coldMs, get("W7", "pusher")?.coldMs)
    targets.push({ w: "W7", what: "cold start (wall − bare node)", vsDefault: c, vsKa: null, vsBest: c, target: "≤ 0.5×", ok: c != null && !meta.quick ? c <= 0.5 : null })
  }
  if (n("W8")) {
    const s = n("W8").mbPer100k
    targets.push({ w: "W8", what: `RSS slope: ${fmt(s, 2)} MB / 100k triggers`, vsDefault: null, vsKa: null, vsBest: null, target: "≤ 2 MB / 100k", ok: meta.quick ? null : s <= 2 })
  }
  lines.push("")
  lines.push("## Ratios and targets (pusher-native ÷ pusher, same run)")
  lines.push("")
  lines.push('"vs best" is against whichever `pusher` variant did better on that metric.')
  if (meta.quick) {
    lines.push("")
    lines.push(
      "**Quick mode is a smoke run**: runs too short for `pusher` to be JIT-warm (its ratios flatter pusher-native), " +
        "for W7 (5 spawns) and for V8's heap to settle in W8; W7/W8 are not judged (?)."
    )
  }
  lines.push("")
  lines.push("| Workload | Metric | vs default agent | vs keepAlive | vs best | Target | Met |")
  lines.push("|---|---|--:|--:|--:|---|:-:|")
  for (const t of targets) {
    lines.push(
      `| ${t.w} | ${t.what} | ${fmtRatio(t.vsDefault)} | ${fmtRatio(t.vsKa)} | ${fmtRatio(t.vsBest)} | ${t.target} | ${t.ok === null ? (t.target === "–" ? "" : "?") : t.ok ? "yes" : "**no**"} |`
    )
  }
  // before/after: pusher-native against another build given as `native:<dir>`
  for (const other of IMPLS.filter((i) => i.startsWith("native:"))) {
    lines.push("")
    lines.push(`## pusher-native ÷ ${LABEL[other]}`)
    lines.push("")
    lines.push("| Workload | ops/s × | CPU µs/op × | p50 × | p99 × |")
    lines.push("|---|--:|--:|--:|--:|")
    for (const w of ["W1", "W2", "W3", "W4", "W5", "W6", "W9"]) {
      const a = get(w, "native")
      const b = get(w, other)
      if (!a || !b) continue
      lines.push(
        `| ${w} | ${fmtRatio(ratio(a.opsPerSec, b.opsPerSec))} | ${fmtRatio(ratio(a.cpuUsPerOp, b.cpuUsPerOp))} | ${fmtRatio(ratio(a.p50Ms, b.p50Ms))} | ${fmtRatio(ratio(a.p99Ms, b.p99Ms))} |`
      )
    }
    const a7 = get("W7", "native")
    const b7 = get("W7", other)
    if (a7 && b7) lines.push(`| W7 cold ms | ${fmtRatio(ratio(a7.coldMs, b7.coldMs))} | | | |`)
  }
  lines.push("")
  return lines.join("\n")
}

// ---- main ----

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-bench-"))
  let nginx
  const cleanup = () => {
    if (nginx && alive(nginx.pid)) {
      try {
        process.kill(nginx.pid, "SIGTERM")
      } catch (e) {
        // already gone
      }
    }
    // nginx may still be writing its pid file/log: best effort
    fs.rmSync(dir, { recursive: true, force: true })
  }
  process.on("exit", cleanup)
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
      cleanup()
      process.exit(130)
    })
  }
  nginx = await startNginx(dir)
  if (flag("--serve")) {
    // Just the server, for profiling by hand (bench/threads.js): stopped by Ctrl-C.
    console.error(`nginx ${nginx.pid} serving on 127.0.0.1:${nginx.port} (core 1); Ctrl-C stops it`)
    return
  }
  const meta = { date: new Date().toISOString(), machine: machine(), quick: QUICK, rounds: ROUNDS, port: nginx.port }
  console.error(`nginx ${nginx.pid} on 127.0.0.1:${nginx.port}; ${ROUNDS} round(s)${QUICK ? " (quick)" : ""}; impls ${IMPLS.join(", ")}`)

  const raw = {}
  const push = (r) => {
    ;((raw[r.workload] ||= {})[r.impl] ||= []).push(r)
  }
  const script = wrkScript(dir, nginx.port)
  const hasWrk = spawnSync("wrk", ["-v"]).error === undefined

  for (let round = 0; round < ROUNDS; round++) {
    // rotate the order each round so no implementation always runs first
    const order = IMPLS.map((_, i) => IMPLS[(i + round) % IMPLS.length])
    for (const w of ["W1", "W2", "W3", "W4", "W5", "W6", "W9"]) {
      if (!ONLY.includes(w)) continue
      for (const impl of order) {
        const where = w === "W9" ? { port: nginx.tlsPort, caPath: nginx.caPath, tls: true } : { port: nginx.port }
        const r = runWorker({ impl, workload: w, ...where, ...PLAN[w] })
        push(r)
        console.error(
          `round ${round + 1} ${w} ${impl.padEnd(9)} ${fmt(r.opsPerSec, 0).padStart(8)} ops/s  ${fmt(r.cpuUsPerOp, 2).padStart(7)} µs/op  p50 ${fmt(r.p50Ms, 3)} ms  p99 ${fmt(r.p99Ms, 3)} ms`
        )
      }
    }
    if (ONLY.includes("wrk") && hasWrk) {
      for (const c of [1, 64]) {
        const r = runWrk(script, nginx.port, c, PLAN.wrkSeconds)
        push(r)
        console.error(`round ${round + 1} wrk -c${c}      ${fmt(r.opsPerSec, 0).padStart(8)} req/s  ${fmt(r.cpuUsPerOp, 2).padStart(7)} µs/op  p50 ${fmt(r.p50Ms, 3)} ms  p99 ${fmt(r.p99Ms, 3)} ms`)
      }
    }
    if (ONLY.includes("W7")) {
      const cold = coldRound(PLAN.W7.reps, IMPLS)
      for (const r of Object.values(cold)) {
        push(r)
        console.error(`round ${round + 1} W7 ${r.impl.padEnd(9)} cold ${fmt(r.coldMs, 1)} ms (process ${fmt(r.processMs, 1)}, bare ${fmt(r.bareMs, 1)}, in-process ${fmt(r.requireMs, 1)})`)
      }
    }
    if (ONLY.includes("W8")) {
      // pusher-native every round; pusher (keepAlive) once, as a reference (~1 min)
      const impls = round === 0 ? order.filter((i) => i !== "pusher") : ["native"]
      for (const impl of impls.filter((i) => IMPLS.includes(i))) {
        const r = runWorker({ impl, workload: "W8", port: nginx.port, ...PLAN.W8 })
        push(r)
        console.error(`round ${round + 1} W8 ${impl.padEnd(9)} ${fmt(r.opsPerSec, 0)} triggers/s  RSS ${fmt(r.rssStartMB)} → ${fmt(r.rssEndMB)} MB  slope ${fmt(r.mbPer100k, 2)} MB/100k`)
      }
    }
  }
  await stopNginx(nginx)
  const errorLog = readIf(path.join(dir, "error.log")).trim()
  if (errorLog) console.error("nginx error log:\n" + errorLog)

  const results = {}
  for (const [w, byImpl] of Object.entries(raw)) {
    results[w] = {}
    for (const [impl, samples] of Object.entries(byImpl)) results[w][impl] = aggregate(samples)
  }
  const md = report(results, meta)
  fs.mkdirSync(path.dirname(OUT), { recursive: true })
  fs.writeFileSync(OUT, md)
  fs.writeFileSync(OUT.replace(/\.md$/, "") + ".json", JSON.stringify({ meta, results, raw }, null, 2) + "\n")
  fs.rmSync(dir, { recursive: true, force: true })
  process.stdout.write(md + "\n")
  console.error(`written to ${path.relative(process.cwd(), OUT)}`)
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e)
  process.exitCode = 1
})
