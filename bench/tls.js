"use strict"
// HTTPS side by side: a Node https server (throwaway self-signed cert, keep-alive, core 1)
// and, each in a fresh process on core 0, `pusher` with a keep-alive https agent,
// pusher-native (event loop) and pusher-native on its tokio transport. Not part of
// `npm run bench` (nginx there is plain HTTP); a smoke comparison for TLS.
//   node bench/tls.js [inflight=64] [n=20000] [rounds=3]

const { spawn, execFileSync } = require("child_process")
const fs = require("fs")
const os = require("os")
const path = require("path")

const [inflight = "64", n = "20000", rounds = "3"] = process.argv.slice(2)
const ROOT = path.join(__dirname, "..")

if (process.env.TLS_BENCH_ROLE === "server") {
  const https = require("https")
  const server = https.createServer({ cert: fs.readFileSync(process.env.CERT), key: fs.readFileSync(process.env.KEY) }, (req, res) => {
    req.resume()
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end("{}")
    })
  })
  server.keepAliveTimeout = 60000
  server.listen(0, "127.0.0.1", () => console.log(server.address().port))
  return
}

if (process.env.TLS_BENCH_ROLE === "client") {
  const https = require("https")
  const impl = process.env.IMPL
  const ca = fs.readFileSync(process.env.CA)
  const Pusher = require(impl === "pusher-ka" ? "pusher" : ROOT)
  const options = { appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: Number(process.env.PORT), useTLS: true }
  if (impl === "pusher-ka") options.agent = new https.Agent({ keepAlive: true, ca })
  else options.ca = ca
  const pusher = new Pusher(options)
  const run = async (count) => {
    let next = 0
    const lane = async () => {
      while (next++ < count) await pusher.trigger("c", "e", { message: "hello world", n: 42 })
    }
    await Promise.all(Array.from({ length: Number(inflight) }, lane))
  }
  ;(async () => {
    await run(3000)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    await run(Number(n))
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    console.log(JSON.stringify({ opsPerSec: (Number(n) / ms) * 1000, cpuUs: (cpu.user + cpu.system) / Number(n) }))
  })()
  return
}

// A throwaway CA and a leaf for 127.0.0.1 (openssl), as the tests make them.
const certs = require("../__test__/helpers").makeCerts()
const dir = certs.dir
const cert = path.join(dir, "leaf.pem")
const key = path.join(dir, "leaf-key.pem")
fs.writeFileSync(cert, certs.certPem)
fs.writeFileSync(key, certs.keyPem)
const pin = (core, args) => (os.cpus().length > 1 ? ["taskset", ["-c", String(core), ...args]] : [args[0], args.slice(1)])
const [scmd, sargs] = pin(1, [process.execPath, __filename])
const server = spawn(scmd, sargs, { env: { ...process.env, TLS_BENCH_ROLE: "server", CERT: cert, KEY: key } })

server.stdout.once("data", async (chunk) => {
  const port = String(chunk).trim()
  const impls = { "pusher-ka": {}, native: {}, "native-tokio": { PUSHER_NATIVE_TRANSPORT: "tokio" } }
  const results = Object.fromEntries(Object.keys(impls).map((k) => [k, []]))
  for (let r = 0; r < Number(rounds); r++) {
    for (const [impl, env] of Object.entries(impls)) {
      const [ccmd, cargs] = pin(0, [process.execPath, __filename])
      const out = execFileSync(ccmd, cargs, { env: { ...process.env, ...env, TLS_BENCH_ROLE: "client", IMPL: impl, CA: certs.caPath, PORT: port } })
      results[impl].push(JSON.parse(String(out)))
    }
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  console.log(`HTTPS trigger, ${inflight} in flight, ${n} per run, ${rounds} rounds (medians)`)
  for (const [impl, rs] of Object.entries(results)) {
    const ops = median(rs.map((x) => x.opsPerSec))
    const cpu = median(rs.map((x) => x.cpuUs))
    console.log(`${impl.padEnd(14)} ${Math.round(ops).toLocaleString("en-US").padStart(8)} triggers/s  ${cpu.toFixed(1).padStart(7)} µs CPU/trigger`)
  }
  server.kill()
  fs.rmSync(dir, { recursive: true, force: true })
})
