"use strict"
// Runs the examples: the Express app over real HTTP, the Lambda handler against a
// local recording server, and the TypeScript example compiled by tsc (strict,
// nodenext) in a throwaway project, then run.
const test = require("node:test")
const assert = require("node:assert")
const crypto = require("node:crypto")
const fs = require("node:fs")
const os = require("node:os")
const path = require("node:path")
const { execFile } = require("node:child_process")
const { once } = require("node:events")

const { Pusher, Upstream, recordingServer, typesNodeDir } = require("./helpers")
const createApp = require("../examples/express-app")

const root = path.join(__dirname, "..")
const KEY = "app-key"
const SECRET = "app-secret"
const SOCKET = "1234.5678"

const run = (file, args, options) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: 120_000, maxBuffer: 16 << 20, ...options }, (error, stdout, stderr) =>
      resolve({ code: error ? error.code : 0, stdout, stderr })
    )
  })

function webhookRequest(events, { secret = SECRET, key = KEY, timeMs = Date.now() } = {}) {
  const body = JSON.stringify({ time_ms: timeMs, events })
  return {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-pusher-key": key,
      "x-pusher-signature": crypto.createHmac("sha256", secret).update(body).digest("hex"),
    },
    body,
  }
}

test("examples/express-app.js: channel auth, user auth and webhooks over HTTP", async (t) => {
  const pusher = new Pusher({ appId: "1", key: KEY, secret: SECRET, cluster: "eu" })
  const upstream = new Upstream({ appId: "1", key: KEY, secret: SECRET, cluster: "eu" })
  const received = []
  const app = createApp({
    pusher,
    currentUser: (req) => {
      const id = req.get("x-user")
      return id ? { id, name: "User " + id } : null
    },
    canAccess: (user, channel) => !channel.endsWith("-admin"),
    onEvent: (event, time) => received.push({ name: event.name, channel: event.channel, time: time.getTime() }),
  })
  const server = app.listen(0, "127.0.0.1")
  await once(server, "listening")
  t.after(() => new Promise((resolve) => server.close(resolve)))
  const base = `http://127.0.0.1:${server.address().port}`

  const form = (url, fields, user) =>
    fetch(base + url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...(user ? { "x-user": user } : {}) },
      body: new URLSearchParams(fields).toString(),
    })

  // private channel: what pusher-js posts, answered exactly as pusher would sign it
  let res = await form("/pusher/auth", { socket_id: SOCKET, channel_name: "private-orders" }, "alice")
  assert.strictEqual(res.status, 200)
  assert.deepStrictEqual(await res.json(), upstream.authorizeChannel(SOCKET, "private-orders"))

  // presence channel, JSON body this time
  res = await fetch(base + "/pusher/auth", {
    method: "POST",
    headers: { "content-type": "application/json", "x-user": "bob" },
    body: JSON.stringify({ socket_id: SOCKET, channel_name: "presence-room" }),
  })
  assert.strictEqual(res.status, 200)
  const presence = await res.json()
  assert.deepStrictEqual(presence, upstream.authorizeChannel(SOCKET, "presence-room", { user_id: "bob", user_info: { name: "User bob" } }))
  assert.deepStrictEqual(JSON.parse(presence.channel_data), { user_id: "bob", user_info: { name: "User bob" } })

  // refusals
  assert.strictEqual((await form("/pusher/auth", { socket_id: SOCKET, channel_name: "private-orders" })).status, 403)
  assert.strictEqual((await form("/pusher/auth", { socket_id: SOCKET, channel_name: "public" }, "alice")).status, 403)
  assert.strictEqual((await form("/pusher/auth", { socket_id: SOCKET, channel_name: "private-admin" }, "alice")).status, 403)
  res = await form("/pusher/auth", { socket_id: "not-a-socket", channel_name: "private-orders" }, "alice")
  assert.strictEqual(res.status, 400)
  assert.match((await res.json()).error, /Invalid socket id/)

  // user authentication (pusher-js signin)
  res = await form("/pusher/user-auth", { socket_id: SOCKET }, "carol")
  assert.strictEqual(res.status, 200)
  const userAuth = await res.json()
  assert.deepStrictEqual(userAuth, upstream.authenticateUser(SOCKET, { id: "carol", user_info: { name: "User carol" } }))
  assert.strictEqual((await form("/pusher/user-auth", { socket_id: SOCKET })).status, 403)

  // webhooks: verifyWebhook on the raw Buffer, and pusher's webhook() on the raw string
  const events = [{ name: "channel_occupied", channel: "private-orders" }]
  for (const route of ["/pusher/webhook", "/pusher/webhook-classic"]) {
    received.length = 0
    res = await fetch(base + route, webhookRequest(events))
    assert.strictEqual(res.status, 200, route)
    assert.deepStrictEqual(received.map((e) => [e.name, e.channel]), [["channel_occupied", "private-orders"]], route)
    assert.ok(Math.abs(received[0].time - Date.now()) < 60_000, route)

    received.length = 0
    res = await fetch(base + route, webhookRequest(events, { secret: "wrong" }))
    assert.strictEqual(res.status, 401, route)
    assert.deepStrictEqual(received, [], route)
  }
  // only verifyWebhook reports why, and checks freshness
  res = await fetch(base + "/pusher/webhook", webhookRequest(events, { secret: "wrong" }))
  assert.deepStrictEqual(await res.json(), { error: "invalid-signature" })
  res = await fetch(base + "/pusher/webhook", webhookRequest(events, { timeMs: Date.now() - 3_600_000 }))
  assert.deepStrictEqual([res.status, await res.json()], [401, { error: "stale" }])
  // a charset parameter still parses raw (and still verifies)
  const withCharset = webhookRequest(events)
  withCharset.headers["content-type"] = "application/json; charset=utf-8"
  res = await fetch(base + "/pusher/webhook", withCharset)
  assert.strictEqual(res.status, 200)
})

test("examples/lambda-handler.js: returns only once every trigger is delivered", async (t) => {
  let answered = 0
  let failNext = false
  const server = await recordingServer({
    handler: (req, body, res) => {
      if (failNext) {
        failNext = false
        res.writeHead(500, { "content-type": "text/plain" })
        return res.end("boom")
      }
      // the fire-and-forget requests answer slowly: the handler must still wait for them
      const delay = req.url.includes("/events") && body.includes("order-count") ? 150 : 20
      setTimeout(() => {
        answered++
        res.writeHead(200, { "content-type": "application/json" })
        res.end("{}")
      }, delay)
    },
  })
  t.after(() => server.close())

  const saved = process.env.PUSHER_URL
  process.env.PUSHER_URL = `http://${KEY}:${SECRET}@127.0.0.1:${server.port}/apps/42`
  t.after(() => {
    if (saved === undefined) delete process.env.PUSHER_URL
    else process.env.PUSHER_URL = saved
  })
  const modulePath = require.resolve("../examples/lambda-handler")
  delete require.cache[modulePath]
  const { handler } = require(modulePath)

  const event = { body: JSON.stringify({ id: "o-1", status: "paid", watchers: ["u1", "u2"] }) }
  const result = await handler(event)
  assert.deepStrictEqual(result, { statusCode: 200, body: JSON.stringify({ delivered: true }) })
  // 1 awaited trigger + 2 sendToUser + 1 dashboard trigger, all answered before return
  assert.strictEqual(server.requests.length, 4)
  assert.strictEqual(answered, 4)
  const bodies = server.requests.map((r) => JSON.parse(r.body))
  assert.deepStrictEqual(bodies[0].channels, ["private-order-o-1"])
  assert.deepStrictEqual(JSON.parse(bodies[0].data), { id: "o-1", status: "paid" })
  assert.deepStrictEqual(
    bodies.slice(1).map((b) => b.channels[0]).sort(),
    ["#server-to-user-u1", "#server-to-user-u2", "dashboard"]
  )
  for (const r of server.requests) {
    assert.ok(r.url.startsWith("/apps/42/events?"), r.url)
    assert.strictEqual(r.method, "POST")
  }

  // a failed delivery is reported, not thrown
  failNext = true
  const failed = await handler({ body: JSON.stringify({ id: "o-2" }) })
  assert.strictEqual(failed.statusCode, 502)
  // a 500 to a POST is not retryable: the event may have been accepted
  assert.deepStrictEqual(JSON.parse(failed.body), {
    error: "Unexpected status code 500",
    code: "PUSHER_HTTP",
    retryable: false,
    status: 500,
  })
  assert.strictEqual((await handler({ body: "not json" })).statusCode, 400)
  // a 500 to a POST is not retried (the event may have been accepted): one more request
  assert.strictEqual(server.requests.length, 5)
})

test("examples/typescript: type-checks under strict nodenext and runs", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-native-ts-example-"))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const example = path.join(root, "examples", "typescript")
  fs.cpSync(path.join(example, "src"), path.join(dir, "src"), { recursive: true })
  fs.copyFileSync(path.join(example, "tsconfig.json"), path.join(dir, "tsconfig.json"))
  fs.copyFileSync(path.join(example, "package.json"), path.join(dir, "package.json"))
  // node_modules as `npm install` would leave it: pusher-native linked to this checkout
  fs.mkdirSync(path.join(dir, "node_modules", "@types"), { recursive: true })
  fs.symlinkSync(root, path.join(dir, "node_modules", "pusher-native"), "dir")
  fs.symlinkSync(typesNodeDir(), path.join(dir, "node_modules", "@types", "node"), "dir")

  const compiled = await run(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", dir, "--pretty", "false"])
  assert.strictEqual(compiled.code, 0, compiled.stdout + compiled.stderr)

  const server = await recordingServer({
    handler: (req, body, res) => {
      res.writeHead(200, { "content-type": "application/json" })
      if (req.url.startsWith("/apps/7/events")) res.end(JSON.stringify({ channels: { chat: { subscription_count: 3 } } }))
      else if (req.url.startsWith("/apps/7/channels")) res.end(JSON.stringify({ channels: { "presence-chat": {} } }))
      else res.end("{}")
    },
  })
  t.after(() => server.close())
  const out = await run(process.execPath, [path.join(dir, "dist", "index.js")], {
    env: { ...process.env, PUSHER_URL: `http://${KEY}:${SECRET}@127.0.0.1:${server.port}/apps/7` },
  })
  assert.strictEqual(out.code, 0, out.stderr)
  const summary = JSON.parse(out.stdout)
  assert.deepStrictEqual(summary, {
    subscribers: 3,
    batchStatus: 200,
    channels: ["presence-chat"],
    auth: new Upstream({ appId: "7", key: KEY, secret: SECRET, cluster: "eu" }).authorizeChannel("1234.5678", "presence-chat", {
      user_id: "alice",
      user_info: { name: "alice" },
    }),
    webhookEvents: ["channel_occupied:chat"],
  })
  assert.deepStrictEqual(
    server.requests.map((r) => r.method + " " + r.url.split("?")[0]),
    ["POST /apps/7/events", "POST /apps/7/batch_events", "GET /apps/7/channels"]
  )
})
