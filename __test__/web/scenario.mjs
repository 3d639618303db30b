// What __test__/web-runtimes.test.js runs inside each runtime (workerd, Vercel's
// edge-runtime, Deno, Bun): the common API against the test's local server. Only plain
// JavaScript here (no Node built-ins): the same file runs everywhere.
//   args: { port, masterKey (base64), webhookBody, webhookSignature }
export async function scenario(Pusher, args) {
  const pusher = new Pusher({
    appId: "1",
    key: "key",
    secret: "secret",
    host: "127.0.0.1",
    port: args.port,
    timeout: 10000,
    encryptionMasterKeyBase64: args.masterKey,
  })
  const out = {}
  const trigger = await pusher.trigger("my-channel", "my-event", { hello: "wörld" }, { socket_id: "1.2" })
  out.trigger = { status: trigger.status, body: await trigger.json() }
  // node-fetch's Response (the native build) has buffer(); the platform's (the web build) has not.
  out.build = typeof trigger.buffer === "function" ? "native" : "web"
  const batch = await pusher.triggerBatch([
    { channel: "a", name: "e1", data: { n: 1 } },
    { channel: "b", name: "e2", data: "two" },
  ])
  out.batch = { status: batch.status }
  out.channels = await pusher.channels({ filterByPrefix: "presence-", info: ["user_count"] })
  const encrypted = await pusher.trigger("private-encrypted-room", "sealed-event", { secret: "only for members" })
  out.encrypted = { status: encrypted.status }
  out.authEncrypted = pusher.authorizeChannel("123.456", "private-encrypted-room")
  out.authPresence = pusher.authorizeChannel("123.456", "presence-room", { user_id: "u1", user_info: { name: "Ann" } })
  const webhook = (signature) => ({
    headers: { "x-pusher-key": "key", "x-pusher-signature": signature, "content-type": "application/json" },
    rawBody: args.webhookBody,
  })
  out.webhookValid = pusher.webhook(webhook(args.webhookSignature)).isValid()
  out.webhookEvents = pusher.webhook(webhook(args.webhookSignature)).getEvents()
  out.webhookForged = pusher.webhook(webhook("0".repeat(64))).isValid()
  out.verifyWebhook = pusher.verifyWebhook(webhook(args.webhookSignature)).valid
  try {
    pusher.trigger("bad channel!", "e", {})
    out.syncThrow = null
  } catch (e) {
    out.syncThrow = e.message
  }
  return out
}
