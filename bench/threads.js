"use strict"
// Where does client CPU go? Runs a trigger workload against a URL and prints CPU per
// operation per thread (from /proc/self/task), so JS main thread, libuv pool and tokio
// workers are told apart. Profiling aid, not part of `npm run bench`.
//   taskset -c 0 node bench/threads.js <port> <impl> <inflight> <n>

const fs = require("fs")
const http = require("http")
const path = require("path")

const [port, impl = "native", inflight = "64", n = "50000"] = process.argv.slice(2)
const Pusher = impl === "native" ? require(path.resolve(__dirname, "..")) : require("pusher")
const options = { appId: "1", key: "bench-key", secret: "bench-secret", host: "127.0.0.1", port: Number(port) }
if (impl === "pusher-ka") options.agent = new http.Agent({ keepAlive: true })
const pusher = new Pusher(options)
const DATA = { message: "hello world", n: 42 }

function threads() {
  const out = {}
  const hz = 100
  for (const tid of fs.readdirSync("/proc/self/task")) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8")
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      out[tid] = { comm, us: ((Number(f[11]) + Number(f[12])) / hz) * 1e6, ctx: 0 }
      const status = fs.readFileSync(`/proc/self/task/${tid}/status`, "utf8")
      const v = /voluntary_ctxt_switches:\s+(\d+)/.exec(status)
      const nv = /nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)
      out[tid].ctx = Number(v[1])
      out[tid].nctx = Number(nv[1])
    } catch (e) {
      // thread exited
    }
  }
  return out
}

async function run(count) {
  let next = 0
  async function lane() {
    while (next++ < count) await pusher.trigger("my-channel", "my-event", DATA)
  }
  await Promise.all(Array.from({ length: Number(inflight) }, lane))
}

;(async () => {
  await run(5000)
  const before = threads()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await run(Number(n))
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const after = threads()
  const N = Number(n)
  console.log(
    `${impl} inflight=${inflight}: ${Math.round((N / ms) * 1000)} ops/s, cpu ${((cpu.user + cpu.system) / N).toFixed(1)} µs/op (user ${(cpu.user / N).toFixed(1)}, sys ${(cpu.system / N).toFixed(1)})`
  )
  for (const [tid, a] of Object.entries(after)) {
    const b = before[tid] || { us: 0, ctx: 0, nctx: 0 }
    const d = a.us - b.us
    if (d > 0 || a.ctx - b.ctx > 100)
      console.log(`  ${a.comm.padEnd(16)} ${(d / N).toFixed(1).padStart(6)} µs/op  vol ctx/op ${((a.ctx - b.ctx) / N).toFixed(2)}  invol ${((a.nctx - b.nctx) / N).toFixed(3)}`)
  }
})()
