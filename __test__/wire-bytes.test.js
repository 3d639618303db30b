"use strict"
// The request bytes on the wire stay exactly what they are (issue 12: the event-loop
// transport is being rewritten; its requests must not change): a trigger, a
// triggerBatch and a GET with params, captured by a raw TCP server with Date.now()
// fixed, are byte for byte the golden requests below (header order included), on the
// event loop and on the tokio transport alike. Each transport runs in its own child.

const test = require("node:test")
const assert = require("node:assert/strict")
const { runClient, assertSurvived } = require("./raw-servers")
const { version } = require("../package.json")

const CAPTURE = `
  const net = require("net")
  Date.now = () => 1700000000123
  const captured = []
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0)
    socket.on("data", (d) => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        const end = buf.indexOf("\\r\\n\\r\\n")
        if (end < 0) return
        const m = /\\r\\ncontent-length: *(\\d+)/i.exec(buf.subarray(0, end).toString("latin1"))
        const total = end + 4 + (m ? Number(m[1]) : 0)
        if (buf.length < total) return
        captured.push(buf.subarray(0, total).toString("base64"))
        buf = buf.subarray(total)
        socket.write("HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 2\\r\\n\\r\\n{}")
      }
    })
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  const p = make(Pusher, { port: server.address().port })
  await p.trigger(["presence-a", "private-b"], "my-event", { message: "h\\u00e9llo \\u2603", n: [1, 2] }, { socket_id: "123.456" })
  await p.triggerBatch([{ channel: "a", name: "e1", data: { x: 1 } }, { channel: "b", name: "e2", data: "str", info: "subscription_count" }])
  await p.get({ path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count,subscription_count" } })
  report({ port: server.address().port, captured })
  server.close()
`

const head = (line, body) =>
  `${line} HTTP/1.1\r\naccept: */*\r\nx-pusher-library: pusher-native ${version}\r\n` +
  (body === undefined
    ? "host: 127.0.0.1:<port>\r\n\r\n"
    : `content-type: application/json\r\nhost: 127.0.0.1:<port>\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)

const TRIGGER_BODY = '{"name":"my-event","data":"{\\"message\\":\\"h\u00e9llo \u2603\\",\\"n\\":[1,2]}","channels":["presence-a","private-b"],"socket_id":"123.456"}'
const BATCH_BODY = '{"batch":[{"channel":"a","name":"e1","data":"{\\"x\\":1}"},{"channel":"b","name":"e2","data":"str","info":"subscription_count"}]}'
const GOLDEN = [
  head(
    "POST /apps/1/events?auth_key=key&auth_timestamp=1700000000&auth_version=1.0&body_md5=dc186fdffd45bd30474961d255a04d4c&auth_signature=929ae9e829c9b2d207683dfc4ef1e738adb1e441a404b25ad3b113af9e84c1ca",
    TRIGGER_BODY
  ),
  head(
    "POST /apps/1/batch_events?auth_key=key&auth_timestamp=1700000000&auth_version=1.0&body_md5=e75afca193f28b10fdb96afe04a50df8&auth_signature=19d24674eefc0e0b41d5ca7cd26430bf4417964a9ec23a0c93fae80d9e15db4f",
    BATCH_BODY
  ),
  head(
    "GET /apps/1/channels?auth_key=key&auth_timestamp=1700000000&auth_version=1.0&filter_by_prefix=presence-&info=user_count,subscription_count&auth_signature=0d7c0fcaf361c45221682958ee648211400ae745bdac69649c5a1b9654544263"
  ),
]

/** The requests one transport sends, as UTF-8 text with the port replaced by `<port>`. */
async function captured(transport) {
  const run = await runClient(CAPTURE, { env: { PUSHER_NATIVE_TRANSPORT: transport } })
  assertSurvived(run, `the ${transport || "event-loop"} client`)
  const { port, captured } = run.results[0]
  return captured.map((b64) => Buffer.from(b64, "base64").toString("utf8").split(`:${port}\r\n`).join(":<port>\r\n"))
}

test("trigger, triggerBatch and a GET with params: the exact bytes, on the event loop and on tokio", { timeout: 30000 }, async () => {
  const [loop, tokio] = [await captured(undefined), await captured("tokio")]
  assert.deepEqual(loop, GOLDEN, "event loop")
  assert.deepEqual(tokio, GOLDEN, "tokio")
  assert.deepEqual(loop, tokio)
})

// The web build sends through the platform's fetch, which adds its own headers (Node's:
// user-agent, accept-language, sec-fetch-mode, accept-encoding, connection) and orders
// them its way; the request line, the body and every header the native build sends are
// the golden ones.
const parsed = (request) => {
  const [head, body] = request.split("\r\n\r\n")
  const [line, ...fields] = head.split("\r\n")
  const headers = Object.fromEntries(fields.map((f) => [f.slice(0, f.indexOf(":")).toLowerCase(), f.slice(f.indexOf(":") + 1).trim()]))
  return { line, body, headers }
}

test("the web build: the same request lines, bodies and headers as the golden requests", { timeout: 30000 }, async () => {
  require("../scripts/build-web").build()
  const run = await runClient(CAPTURE, { env: { PUSHER_NATIVE_BUILD: "web" } })
  assertSurvived(run, "the web build")
  const { port, captured } = run.results[0]
  const web = captured.map((b64) => parsed(Buffer.from(b64, "base64").toString("utf8").split(`:${port}\r\n`).join(":<port>\r\n")))
  assert.equal(web.length, GOLDEN.length)
  GOLDEN.map(parsed).forEach((golden, i) => {
    assert.equal(web[i].line, golden.line)
    assert.equal(web[i].body, golden.body)
    for (const [name, value] of Object.entries(golden.headers)) assert.equal(web[i].headers[name], value, name)
  })
})

test("the golden bodies are what JSON.stringify gives, and their MD5 is the one signed", () => {
  const crypto = require("node:crypto")
  const md5 = (s) => crypto.createHash("md5").update(s, "utf8").digest("hex")
  assert.equal(TRIGGER_BODY, JSON.stringify({ name: "my-event", data: JSON.stringify({ message: "h\u00e9llo \u2603", n: [1, 2] }), channels: ["presence-a", "private-b"], socket_id: "123.456" }))
  assert.equal(md5(TRIGGER_BODY), "dc186fdffd45bd30474961d255a04d4c")
  assert.equal(md5(BATCH_BODY), "e75afca193f28b10fdb96afe04a50df8")
})
