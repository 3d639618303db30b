"use strict"
// `npm run demo`: pusher-native talking to a real Pusher-protocol server (sockudo, started
// here on 127.0.0.1) while a real client (pusher-js) listens. Every kind of event goes
// out through pusher-native; each line shows what the client received.
const { spawnSync } = require("child_process")
const fs = require("fs")
const path = require("path")

const root = path.join(__dirname, "..")
const started = Date.now()
const out = (line = "") => process.stdout.write(line + "\n")
const color = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code, s) => (color ? `\x1b[${code}m${s}\x1b[0m` : s)
const OK = paint(32, "✓")
const FAIL = paint(31, "✗")
const dim = (s) => paint(2, s)
const bold = (s) => paint(1, s)

// ---- 1. the native addon: build it once if it is missing ----
if (!fs.readdirSync(root).some((f) => f.endsWith(".node"))) {
  out("No native addon (*.node) yet: building it with `npm run build:dev` (a few minutes the first time)…")
  const build = spawnSync("npm", ["run", "build:dev"], { cwd: root, stdio: "inherit" })
  if (build.status !== 0) {
    out(`${FAIL} build failed; see the output above`)
    process.exit(1)
  }
}

const Pusher = require(root)
const PusherJs = require("pusher-js") // node build: encrypted channels supported
const { startSockudo, SOCKUDO_VERSION, INSTALL_HINT } = require(path.join(root, "scripts", "sockudo"))
const hookReceiver = webhookReceiver()

const TIMEOUT_MS = 5000
let failures = 0

function within(promise, what, ms = TIMEOUT_MS) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/** Resolves with the next `count` payloads of `event` on a pusher-js channel (or user). */
function next(emitter, event, count = 1) {
  const got = []
  return new Promise((resolve) => {
    const handler = (data) => {
      got.push(data)
      if (got.length === count) {
        emitter.unbind(event, handler)
        resolve(count === 1 ? got[0] : got)
      }
    }
    emitter.bind(event, handler)
  })
}

function subscribed(client, name) {
  const channel = client.subscribe(name)
  return within(
    new Promise((resolve, reject) => {
      channel.bind("pusher:subscription_succeeded", () => resolve(channel))
      channel.bind("pusher:subscription_error", (e) => reject(new Error(`subscription to ${name} refused: ${JSON.stringify(e)}`)))
    }),
    `subscription to ${name}`
  )
}

const short = (value) => {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value)
  return text.length > 60 ? text.slice(0, 57) + "…" : text
}

/** One aligned line: ✓ kind  what was sent  →  what arrived. */
function row(mark, kind, sent, received) {
  out(`  ${mark} ${kind.padEnd(14)} ${sent.padEnd(44)} ${dim("→")} ${received}`)
}

async function step(kind, sent, fn) {
  try {
    row(OK, kind, sent, await fn())
  } catch (e) {
    failures++
    row(FAIL, kind, sent, paint(31, e.message))
  }
}

/** A small HTTP endpoint for sockudo's webhooks, checked with pusher.webhook(). */
function webhookReceiver() {
  const http = require("http")
  const received = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on("data", (c) => chunks.push(c))
    req.on("end", () => {
      received.push({ headers: req.headers, rawBody: Buffer.concat(chunks).toString("utf8") })
      res.writeHead(200, { "content-type": "application/json" })
      res.end("{}")
    })
  })
  return {
    received,
    start: () => new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port))),
    stop: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

async function main() {
  out(bold("pusher-native demo") + dim(` — sockudo ${SOCKUDO_VERSION} (a Pusher-protocol server) + pusher-js (a real client), all on 127.0.0.1`))
  out()

  // ---- 2. the server ----
  const hookPort = await hookReceiver.start()
  const start = () => startSockudo({ appPrefix: "pn-demo", webhookUrl: `http://127.0.0.1:${hookPort}/webhooks` })
  let server
  try {
    server = await start().catch((e) => {
      if (e.code !== "SOCKUDO_MISSING") throw e
      // First run: install it (a one-off cargo install, about 12 minutes on 2 cores).
      out(`sockudo is not installed yet: running \`${INSTALL_HINT}\` once…`)
      const install = spawnSync("bash", [path.join(root, "scripts", "sockudo.sh"), "install"], { stdio: "inherit" })
      if (install.status !== 0) throw e
      return start()
    })
  } catch (e) {
    await hookReceiver.stop()
    if (e.code === "SOCKUDO_MISSING") {
      out(`${FAIL} sockudo could not be installed. Install it by hand with:`)
      out()
      out(`    ${INSTALL_HINT}`)
      out()
      out("then run `npm run demo` again.")
      return 1
    }
    throw e
  }
  const clients = []
  try {
    const pusher = new Pusher(server.pusherOptions())
    out(`  server  sockudo pid ${server.pid} on ws://127.0.0.1:${server.port}, ready in ${server.startMs} ms`)
    out(`  app     appId ${server.appId}, key ${server.key}`)

    // ---- 3. the clients: Ann (signed in as user "ann") and Bob ----
    const connect = async (user) => {
      const client = new PusherJs(
        server.key,
        server.clientOptions({
          // pusher-js calls these instead of an auth endpoint: they run pusher-native's
          // authorizeChannel / authenticateUser, exactly what your auth endpoint would do.
          channelAuthorization: {
            customHandler: ({ socketId, channelName }, callback) => {
              const presence = channelName.startsWith("presence-") ? { user_id: user.id, user_info: { name: user.name } } : undefined
              callback(null, pusher.authorizeChannel(socketId, channelName, presence))
            },
          },
          userAuthentication: {
            customHandler: ({ socketId }, callback) => callback(null, pusher.authenticateUser(socketId, user)),
          },
        })
      )
      clients.push(client)
      await within(new Promise((resolve) => client.connection.bind("connected", resolve)), "connection")
      return client
    }
    const ann = await connect({ id: "ann", name: "Ann" })
    const bob = await connect({ id: "bob", name: "Bob" })
    out(`  clients pusher-js "ann" (socket ${ann.connection.socket_id}) and "bob" (socket ${bob.connection.socket_id})`)
    out()

    const news = await subscribed(ann, "news")
    const sports = await subscribed(ann, "sports")
    const orders = await subscribed(ann, "private-orders")
    const lobby = await subscribed(ann, "presence-lobby")
    await subscribed(bob, "presence-lobby")
    const vault = await subscribed(ann, "private-encrypted-vault")
    ann.signin()
    await within(
      new Promise((resolve) => {
        const poll = setInterval(() => {
          const channel = ann.user.serverToUserChannel
          if (channel && channel.subscribed) resolve(clearInterval(poll))
        }, 10)
      }),
      "sign-in"
    )

    out(bold("  Events: pusher-native → sockudo → pusher-js"))
    await step("public", `trigger("news", "headline", {…})`, async () => {
      const got = next(news, "headline")
      await pusher.trigger("news", "headline", { title: "Hello, world" })
      return `news: ${short(await within(got, "event"))}`
    })
    await step("multi-channel", `trigger(["news","sports"], "score", {…})`, async () => {
      const got = Promise.all([next(news, "score"), next(sports, "score")])
      await pusher.trigger(["news", "sports"], "score", { home: 2, away: 1 })
      const [a, b] = await within(got, "events")
      return `news: ${short(a)}, sports: ${short(b)}`
    })
    await step("batch", `triggerBatch([3 events])`, async () => {
      const got = next(news, "item", 3)
      await pusher.triggerBatch([1, 2, 3].map((n) => ({ channel: "news", name: "item", data: { n } })))
      return `news: ${(await within(got, "events")).map(short).join(" ")}`
    })
    await step("private", `trigger("private-orders", "created", {…})`, async () => {
      const got = next(orders, "created")
      await pusher.trigger("private-orders", "created", { id: 42, total: "9.99" })
      return `private-orders: ${short(await within(got, "event"))}`
    })
    await step("presence", `trigger("presence-lobby", "chat", {…})`, async () => {
      const got = next(lobby, "chat")
      await pusher.trigger("presence-lobby", "chat", { from: "server", text: "hi all" })
      const members = []
      lobby.members.each((m) => members.push(m.info.name))
      return `presence-lobby: ${short(await within(got, "event"))}  members: ${members.sort().join(", ")}`
    })
    await step("encrypted", `trigger("private-encrypted-vault", …)`, async () => {
      let wire
      const peek = (m) => {
        if (m.event === "secret") wire = m.data
      }
      ann.connection.bind("message", peek)
      const got = next(vault, "secret")
      await pusher.trigger("private-encrypted-vault", "secret", { pin: 1234 })
      const data = await within(got, "event")
      ann.connection.unbind("message", peek)
      const sealed = typeof wire === "string" ? JSON.parse(wire) : wire
      if (!sealed || !sealed.ciphertext) throw new Error("the server saw plaintext")
      return `decrypted ${short(data)}  (sockudo only saw ciphertext)`
    })
    await step("sendToUser", `sendToUser("ann", "welcome", {…})`, async () => {
      const got = next(ann.user, "welcome")
      await pusher.sendToUser("ann", "welcome", { text: "hello Ann" })
      return `user ann: ${short(await within(got, "event"))}`
    })
    await step("info", `trigger("presence-lobby", …, {info})`, async () => {
      const res = await pusher.trigger("presence-lobby", "ping", {}, { info: "user_count,subscription_count" })
      const { user_count, subscription_count } = (await res.json()).channels["presence-lobby"]
      return `user_count ${user_count}, subscription_count ${subscription_count}`
    })
    out()

    out(bold("  Channel queries: pusher.channels(), channel(), users() (typed; the same requests as get())"))
    const query = async (kind, label, fn, show) => {
      try {
        row(OK, kind, label, show(await fn()))
      } catch (e) {
        failures++
        row(FAIL, kind, label, paint(31, e.message))
      }
    }
    await query("channels", "channels()", () => pusher.channels(), (b) => Object.keys(b.channels).sort().join(", "))
    await query("channels", `channels({ filterByPrefix: "presence-", … })`, () => pusher.channels({ filterByPrefix: "presence-", info: ["user_count"] }), (b) =>
      Object.entries(b.channels).map(([name, c]) => `${name} (${c.user_count} users)`).join(", ")
    )
    await query("channel", `channel("presence-lobby", { info })`, () => pusher.channel("presence-lobby", { info: "user_count,subscription_count" }), (b) =>
      `occupied ${b.occupied}, user_count ${b.user_count}, subscription_count ${b.subscription_count}`
    )
    await query("channel", `channel("news", { info })`, () => pusher.channel("news", { info: ["subscription_count"] }), (b) => `occupied ${b.occupied}, subscription_count ${b.subscription_count}`)
    await query("users", `users("presence-lobby")`, () => pusher.users("presence-lobby"), (b) => b.users.map((u) => u.id).sort().join(", "))
    await query("get", `get({ path: "…/presence-lobby/users" })`, async () => (await pusher.get({ path: "/channels/presence-lobby/users" })).json(), (b) =>
      `${b.users.map((u) => u.id).sort().join(", ")} (the untyped route)`
    )
    await query("checked", `users("news")`, async () => {
      try {
        pusher.users("news")
      } catch (e) {
        return e
      }
      throw new Error("no error")
    }, (e) => `thrown before any request: ${e.message}`)
    out()

    out(bold("  Webhooks: sockudo → this process, checked with pusher.webhook()"))
    await step("webhooks", "channel_occupied, member_added, …", async () => {
      const deadline = Date.now() + TIMEOUT_MS
      while (hookReceiver.received.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      const hooks = hookReceiver.received
      if (hooks.length === 0) throw new Error("no webhooks arrived")
      const valid = hooks.filter((h) => pusher.webhook(h).isValid()).length
      if (valid !== hooks.length) throw new Error(`${hooks.length - valid} of ${hooks.length} had a bad signature`)
      const names = new Set(hooks.flatMap((h) => pusher.webhook(h).getEvents().map((e) => e.name)))
      return `${hooks.length} received, all signatures valid (${[...names].join(", ")})`
    })
    out()
  } finally {
    for (const client of clients) client.disconnect()
    await server.stop() // SIGTERM, then SIGKILL after 1 s (it would wait 3 s for a member_removed webhook)
    await hookReceiver.stop()
    out(dim(`  sockudo (pid ${server.pid}) stopped`))
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  out(failures === 0 ? `${OK} all good in ${seconds} s` : `${FAIL} ${failures} step(s) failed (${seconds} s)`)
  return failures === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (e) => {
    out(`${FAIL} ${e.stack || e.message}`)
    process.exit(1)
  }
)
