"use strict"
// No noise: the core API, in a child process run with --throw-deprecation, prints
// nothing but its own output: no deprecation, no experimental or other process
// warning, no console output. The child loads the package by name from a node_modules
// folder (a link to this checkout, kept as such with --preserve-symlinks), where users
// have it: Node words some deprecations differently for code inside node_modules.
const test = require("node:test")
const assert = require("node:assert")
const fs = require("node:fs")
const os = require("node:os")
const path = require("node:path")
const { execFile } = require("node:child_process")

const root = path.join(__dirname, "..")
const project = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-native-noise-"))
fs.mkdirSync(path.join(project, "node_modules"))
fs.symlinkSync(root, path.join(project, "node_modules", "pusher-native"), "dir")
test.after(() => fs.rmSync(project, { recursive: true, force: true }))

const CORE = `
const http = require("http")
const crypto = require("crypto")
const seen = []
process.on("warning", (w) => seen.push(w.name + ": " + w.message))

const server = http.createServer((req, res) => {
  req.resume()
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(req.url.includes("/channels") ? '{"channels":{}}' : "{}")
  })
})
server.listen(0, "127.0.0.1", async () => {
  const Pusher = require("pusher-native")
  if (!require.resolve("pusher-native").includes("node_modules")) throw new Error("not loaded from node_modules")
  const port = server.address().port
  const key = Buffer.alloc(32, 7).toString("base64")
  const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port, useTLS: false, encryptionMasterKeyBase64: key })
  const viaURL = Pusher.forURL("http://key:secret@127.0.0.1:" + port + "/apps/1", { timeout: 5000 })
  Pusher.forCluster("eu", { appId: "1", key: "key", secret: "secret" })
  const tuned = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port,
    retry: { attempts: 2 }, limits: true, autoChunk: true })

  const token = new Pusher.Token("key", "secret")
  const sig = token.sign("string")
  if (!token.verify("string", sig)) throw new Error("verify")
  pusher.createSignedQueryString({ method: "POST", path: "/apps/1/events", body: "{}", params: { a: 1 } })
  pusher.authorizeChannel("1.1", "private-x")
  pusher.authorizeChannel("1.1", "presence-x", { user_id: "u", user_info: { name: "n" } })
  pusher.authorizeChannel("1.1", "private-encrypted-x")
  pusher.authenticate("1.1", "private-x")
  pusher.authenticateUser("1.1", { id: "u" })
  pusher.channelSharedSecret("private-encrypted-x")

  const responses = await Promise.all([
    pusher.trigger("my-channel", "my-event", { n: 1 }),
    pusher.trigger(["a", "b"], "my-event", "text", { socket_id: "1.1" }),
    pusher.trigger("private-encrypted-x", "secret-event", { n: 2 }),
    pusher.triggerBatch([{ channel: "a", name: "e", data: {} }]),
    pusher.sendToUser("u", "e", {}),
    pusher.terminateUserConnections("u"),
    pusher.get({ path: "/channels", params: { filter_by_prefix: "presence-" } }),
    pusher.post({ path: "/events", body: { name: "e", channels: ["c"], data: "{}" } }),
    viaURL.trigger("c", "e", {}),
    tuned.trigger(Array.from({ length: 150 }, (_, i) => "c" + i), "e", {}),
  ])
  for (const r of responses) {
    await r.clone().text()
    await r.json()
    r.headers.get("content-type")
  }
  pusher.trigger("c", "fire-and-forget", {})
  await pusher.flush()

  const body = JSON.stringify({ time_ms: Date.now(), events: [{ name: "channel_occupied", channel: "c" }] })
  const headers = { "content-type": "application/json", "x-pusher-key": "key",
    "x-pusher-signature": crypto.createHmac("sha256", "secret").update(body).digest("hex") }
  const webhook = pusher.webhook({ headers, rawBody: body })
  if (!webhook.isValid() || webhook.getEvents().length !== 1) throw new Error("webhook")
  webhook.getTime()
  if (!pusher.verifyWebhook({ headers, rawBody: body }, { maxAgeMs: 60000 }).valid) throw new Error("verifyWebhook")

  try {
    await pusher.get({ path: "/channels", body: "GET with a body" })
  } catch (err) {
    if (!(err instanceof Pusher.RequestError)) throw err
  }
  server.close()
  setImmediate(() => process.stdout.write(JSON.stringify({ done: true, warnings: seen })))
})
`

const ESM = `
import Pusher, { RequestError, WebHookError, Token } from "pusher-native"
const seen = []
process.on("warning", (w) => seen.push(w.name + ": " + w.message))
new Pusher({ appId: "1", key: "k", secret: "s", cluster: "eu" }).authorizeChannel("1.1", "private-x")
new Token("k", "s").sign("x")
if (typeof RequestError !== "function" || typeof WebHookError !== "function") throw new Error("exports")
setImmediate(() => process.stdout.write(JSON.stringify({ done: true, warnings: seen })))
`

function runChild(args, flags = ["--throw-deprecation"]) {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--preserve-symlinks", ...flags, ...args],
      { cwd: project, timeout: 60_000, env: { ...process.env, NODE_OPTIONS: "" } },
      (error, stdout, stderr) => resolve({ code: error ? error.code : 0, signal: error && error.signal, stdout, stderr })
    )
  })
}

test("no warnings, deprecations or console output from the core API (CommonJS)", async () => {
  const { code, signal, stdout, stderr } = await runChild(["-e", CORE])
  assert.strictEqual(stderr, "", "nothing on stderr")
  assert.deepStrictEqual([code, signal], [0, null])
  assert.deepStrictEqual(JSON.parse(stdout), { done: true, warnings: [] }, "nothing else on stdout")
})

test("no warnings, deprecations or console output from the ES module entry", async () => {
  const { code, stdout, stderr } = await runChild(["--input-type=module", "-e", ESM])
  assert.strictEqual(stderr, "", "nothing on stderr")
  assert.strictEqual(code, 0)
  assert.deepStrictEqual(JSON.parse(stdout), { done: true, warnings: [] })
})

test("--pending-deprecation: no deprecation at all (forURL reads plain URLs without url.parse)", async () => {
  const { code, stdout, stderr } = await runChild(["-e", CORE], ["--pending-deprecation", "--throw-deprecation"])
  assert.strictEqual(stderr, "")
  assert.strictEqual(code, 0)
  assert.deepStrictEqual(JSON.parse(stdout), { done: true, warnings: [] })
})
