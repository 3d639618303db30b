"use strict"
// The Node.js this suite runs on (`npm test` runs it on every tested version, see
// scripts/test-nodes.sh): which transport actually carries requests here.

const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const path = require("node:path")
const { execFileSync } = require("node:child_process")
const { recordingServer, runNode } = require("./helpers")

const ROOT = path.join(__dirname, "..")
const hasProc = fs.existsSync("/proc/self/task")

/**
 * The libuv functions the event-loop transport looks up in the running process
 * (src/uv.rs), and whether this Node binary exports every one of them: the transport is
 * used exactly where they are found. Undefined when that cannot be read here.
 */
function libuvExported() {
  const wanted = [...fs.readFileSync(path.join(ROOT, "src", "uv.rs"), "utf8").matchAll(/lookup!\("(\w+)"\)/g)].map((m) => m[1])
  assert.ok(wanted.length >= 10, "src/uv.rs lists the functions it looks up")
  let table
  try {
    table = execFileSync("readelf", ["--dyn-syms", "--wide", process.execPath], { maxBuffer: 256 << 20, stdio: ["ignore", "pipe", "ignore"] }).toString()
  } catch {
    return undefined
  }
  const exported = new Set()
  for (const line of table.split("\n")) {
    const m = /\sFUNC\s+GLOBAL\s+DEFAULT\s+\d+\s+(uv_\w+)$/.exec(line.trim())
    if (m) exported.add(m[1])
  }
  const missing = wanted.filter((name) => !exported.has(name))
  return { found: missing.length === 0, missing }
}

/**
 * A child process making 20 triggers on its main thread, then 20 in a worker thread;
 * prints how often tokio's threads woke during each (a request through tokio wakes one
 * at least; the event-loop transport never wakes them).
 */
const mainThenWorker = (options) => `
  const fs = require("fs")
  const { Worker } = require("worker_threads")
  const root = ${JSON.stringify(ROOT)}
  const options = ${JSON.stringify({ appId: "1", key: "key", secret: "secret", ...options })}
  const wakeups = () => {
    let n = 0
    for (const t of fs.readdirSync("/proc/self/task")) {
      try {
        if (!fs.readFileSync("/proc/self/task/" + t + "/comm", "utf8").startsWith("tokio")) continue
        n += Number(/voluntary_ctxt_switches:\\s+(\\d+)/.exec(fs.readFileSync("/proc/self/task/" + t + "/status", "utf8"))[1])
      } catch (e) {
        if (e.code !== "ENOENT" && e.code !== "ESRCH") throw e // a thread that just ended (the worker's)
      }
    }
    return n
  }
  const triggers = \`
    const Pusher = require(\${JSON.stringify(root)})
    module.exports = async (options) => {
      const p = new Pusher(options)
      let ok = 0
      for (let i = 0; i < 20; i++) ok += (await p.trigger("c", "e", { i })).status === 200 ? 1 : 0
      return ok
    }\`
  ;(async () => {
    const Pusher = require(root)
    await new Pusher(options).trigger("c", "warm-up", {}) // the addon and its threads are up
    let before = wakeups()
    const run = new Function("module", "require", triggers + "; return module.exports")({}, require)
    const mainOk = await run(options)
    const main = wakeups() - before
    before = wakeups()
    const workerOk = await new Promise((resolve, reject) => {
      const w = new Worker(
        "const { parentPort, workerData } = require('worker_threads');" +
          "const m = { exports: {} }; new Function('module', 'require', workerData.triggers)(m, require);" +
          "m.exports(workerData.options).then((ok) => parentPort.postMessage(ok))",
        { eval: true, workerData: { triggers, options } }
      )
      w.once("message", resolve)
      w.once("error", reject)
    })
    const worker = wakeups() - before
    console.log(JSON.stringify({ mainOk, workerOk, main, worker }))
  })()`

test("which transport runs on this Node: the event loop on the main thread where libuv is found, tokio in a worker", { skip: !hasProc && "needs /proc", timeout: 30000 }, async (t) => {
  const server = await recordingServer()
  try {
    const libuv = libuvExported()
    const run = await runNode(mainThenWorker({ host: "127.0.0.1", port: server.port }), { env: { PUSHER_NATIVE_TRANSPORT: "" } })
    assert.equal(run.code, 0, run.stderr)
    const r = JSON.parse(run.stdout)
    assert.deepEqual([r.mainOk, r.workerOk], [20, 20])
    const transport = (wakeups) => (wakeups < 10 ? "event loop" : wakeups >= 20 ? "tokio" : `unclear (${wakeups} tokio wakeups)`)
    const main = transport(r.main)
    const worker = transport(r.worker)
    t.diagnostic(
      `Node ${process.version}: libuv ${libuv === undefined ? "not checked (no readelf)" : libuv.found ? "found" : "missing " + libuv.missing.join(", ")}; ` +
        `main thread: ${main} (${r.main} tokio wakeups for 20 triggers); worker thread: ${worker} (${r.worker})`
    )
    // Official Node builds export libuv; where a build does not, the main thread uses tokio.
    assert.equal(main, libuv === undefined || libuv.found ? "event loop" : "tokio")
    assert.equal(worker, "tokio")
    // The opt-out moves the main thread to tokio too.
    const optedOut = await runNode(mainThenWorker({ host: "127.0.0.1", port: server.port }), { env: { PUSHER_NATIVE_TRANSPORT: "tokio" } })
    assert.equal(optedOut.code, 0, optedOut.stderr)
    assert.equal(transport(JSON.parse(optedOut.stdout).main), "tokio")
    assert.equal(server.requests.length, 2 * 41)
  } finally {
    await server.close()
  }
})
