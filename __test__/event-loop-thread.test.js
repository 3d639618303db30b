"use strict"
// Issue 20 item 7: the event-loop executor binds to the main thread only, whatever JS
// asks. A client made through the generated binding in a worker thread, with
// `eventLoop: true`, goes to the tokio transport; the worker exits and the process
// lives (before: the executor bound to the worker's loop and Node aborted in
// CheckedUvLoopClose when the worker ended).

const test = require("node:test")
const assert = require("node:assert/strict")
const { recordingServer } = require("./helpers")
const { runClient, assertSurvived, ROOT } = require("./raw-servers")

test("a client asked for the event loop in a worker thread gets tokio, and the worker's exit does not abort Node", { timeout: 30000 }, async () => {
  const server = await recordingServer()
  try {
    const run = await runClient(
      `const { Worker } = require("worker_threads")
       const workerCode = \`
         const { parentPort, workerData } = require("worker_threads")
         const { Client } = require(workerData.root + "/binding.js")
         const options = { baseUrl: "http://127.0.0.1:" + workerData.port, key: "key", secret: Buffer.from("secret"),
           library: "test", eventLoop: true }
         const replies = []
         const client = new Client(options, (id, status) => {
           parentPort.postMessage({ transport: client.transport, status })
         })
         client.start(1, false, "/apps/1/events", [], '{"name":"e","channels":["c"],"data":"{}"}', Math.floor(Date.now() / 1000))
       \`
       const worker = new Worker(workerCode, { eval: true, workerData: { root: ARGS.root, port: ARGS.port } })
       const fromWorker = await new Promise((resolve, reject) => { worker.once("message", resolve); worker.once("error", reject) })
       await worker.terminate()
       await new Promise((r) => setTimeout(r, 200))
       report(fromWorker)
       const p = make(Pusher, { port: ARGS.port })
       report(await outcome(() => p.trigger("c", "e", {})))`,
      { args: { root: ROOT, port: server.port }, killAfterMs: 20000 }
    )
    assertSurvived(run)
    const [fromWorker, onMain] = run.results
    assert.deepEqual(fromWorker, { transport: "tokio", status: 200 })
    assert.equal(onMain.ok, true, `the main thread's trigger failed: ${onMain.code}`)
    assert.equal(server.requests.length, 2)
  } finally {
    await server.close()
  }
})
