"use strict"
// Response framing a hostile server can play with. Each case is a
// crafted answer from a raw server; pusher-native must end as `pusher` (node-fetch on
// Node's llhttp) does, compared live: both reject (the call or reading the body), or
// both resolve with the same status and body. Clients run in a child process
// (raw-servers.js runClient). Runs on both transports (see the test:tokio script).

const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const { makeCerts } = require("./helpers")
const { rawServer, tlsRawServer, response, runClient, assertSurvived, shape } = require("./raw-servers")

const TRANSPORT = process.env.PUSHER_NATIVE_TRANSPORT === "tokio" ? "tokio" : "event loop"

const channelOf = (request) => {
  try {
    return JSON.parse(request.body).channels[0]
  } catch (e) {
    return undefined
  }
}

/**
 * A raw server answering by channel name: `answers[channel](socket, request, conn)`;
 * the channel "healthy" gets a plain 200.
 */
function craftedServer(answers) {
  return rawServer((socket, request, conn) => {
    const channel = channelOf(request)
    if (answers[channel]) return answers[channel](socket, request, conn)
    socket.write(response('{"healthy":true}'))
  })
}

/** Writes `bytes`, then closes (FIN) after 50 ms. */
const thenClose = (bytes) => (socket) => {
  socket.write(bytes)
  setTimeout(() => socket.end(), 50)
}

/**
 * For each channel: a trigger with `pusher` and one with pusher-native (a fresh
 * instance each, so no connection carries over), then a healthy trigger with
 * pusher-native. Resolves with `{ [channel]: { upstream, ours } }` and the healthy outcome.
 */
async function compare(port, channels, options = {}) {
  const run = await runClient(
    `const out = {}
     for (const channel of ARGS.channels) {
       const options = Object.assign({ port: ARGS.port, timeout: 3000 }, ARGS.options)
       out[channel] = {
         upstream: await outcome(() => make(Upstream, options).trigger(channel, "e", {})),
         ours: await outcome(() => make(Pusher, options).trigger(channel, "e", {})),
       }
     }
     out.healthy = await outcome(() => make(Pusher, Object.assign({ port: ARGS.port }, ARGS.options)).trigger("healthy", "e", {}))
     report(out)`,
    { args: { port, channels, options }, killAfterMs: 10000 + channels.length * 4000 }
  )
  assertSurvived(run)
  const out = run.results[0]
  assert.deepEqual([out.healthy.ok, out.healthy.body], [true, '{"healthy":true}'], "a healthy request afterwards")
  return out
}

/** Asserts pusher-native ended like `pusher` on every channel; the message lists all. */
function assertLikeUpstream(out, channels) {
  const differ = channels.filter((c) => JSON.stringify(shape(out[c].ours)) !== JSON.stringify(shape(out[c].upstream)))
  const show = (o) => (o.ok ? `resolved ${o.status} ${JSON.stringify(o.body.slice(0, 60))}` : `rejected (${o.stage}: ${o.code})`)
  assert.deepEqual(differ, [], differ.map((c) => `${c}: pusher ${show(out[c].upstream)}, ours ${show(out[c].ours)}`).join("\n"))
}

const CHUNKED_BODY = "2\r\n{}\r\n0\r\n\r\n"
const head = (...lines) => ["HTTP/1.1 200 OK", "content-type: application/json", ...lines].join("\r\n") + "\r\n\r\n"

test(`9a. duplicate Transfer-Encoding headers are read as pusher reads them (${TRANSPORT})`, { timeout: 60000 }, async () => {
  const variants = {
    "te-chunked-empty": head("transfer-encoding: chunked", "transfer-encoding: ") + CHUNKED_BODY,
    "te-chunked-xchunked": head("transfer-encoding: chunked", "transfer-encoding: xchunked") + CHUNKED_BODY,
    "te-chunked-identity": head("transfer-encoding: chunked", "transfer-encoding: identity") + CHUNKED_BODY,
    "te-identity-chunked": head("transfer-encoding: identity", "transfer-encoding: chunked") + CHUNKED_BODY,
    "te-chunked-chunked": head("transfer-encoding: chunked", "transfer-encoding: chunked") + CHUNKED_BODY,
    "te-chunked-identity-length": head("transfer-encoding: chunked", "transfer-encoding: identity", "content-length: 2") + CHUNKED_BODY,
  }
  const server = await craftedServer(Object.fromEntries(Object.entries(variants).map(([c, bytes]) => [c, thenClose(bytes)])))
  try {
    const channels = Object.keys(variants)
    const out = await compare(server.port, channels)
    // Deliberately stricter: hyper reads a body whose last Transfer-Encoding line is
    // empty as raw bytes, so repeated Transfer-Encoding lines are refused outright
    // where llhttp joins them and decodes the chunks.
    const strict = "te-chunked-empty"
    assert.deepEqual([out[strict].ours.ok, out[strict].ours.code], [false, "HPE_INVALID_TRANSFER_ENCODING"])
    assertLikeUpstream(out, channels.filter((c) => c !== strict))
  } finally {
    await server.close()
  }
})

test(`9b. chunked with a content-length: no leftover is read as the next response (${TRANSPORT})`, { timeout: 30000 }, async () => {
  // Read by content-length, the first body runs into what follows; read as chunked, the
  // rest is a second response, smuggled. A client that keeps the connection must not
  // hand it to the next request.
  const smuggled = response('{"smuggled":true}')
  const chunked = Buffer.from(head("transfer-encoding: chunked", `content-length: ${CHUNKED_BODY.length + smuggled.length}`) + CHUNKED_BODY)
  const server = await craftedServer({
    ambiguous: (socket, request, conn) => {
      conn.state.ambiguous = true
      socket.write(chunked)
    },
    next: (socket, request, conn) => socket.write(Buffer.concat([conn.state.ambiguous ? smuggled : Buffer.alloc(0), response('{"real":true}')])),
  })
  try {
    const run = await runClient(
      `const p = make(Pusher, { port: ARGS.port, timeout: 3000 })
       report(await outcome(() => make(Upstream, { port: ARGS.port, timeout: 3000 }).trigger("ambiguous", "e", {})))
       report(await outcome(() => p.trigger("ambiguous", "e", {})))
       report(await outcome(() => p.trigger("next", "e", {})))`,
      { args: { port: server.port }, killAfterMs: 15000 }
    )
    assertSurvived(run)
    const [upstream, ours, next] = run.results
    assert.deepEqual([next.ok, next.body], [true, '{"real":true}'], "the trigger after the ambiguous response")
    assert.deepEqual(shape(ours), shape(upstream), `pusher: ${JSON.stringify(upstream)}\nours: ${JSON.stringify(ours)}`)
  } finally {
    await server.close()
  }
})

/** One crafted answer on channel "case", compared live with pusher. */
async function compareOne(answer) {
  const server = await craftedServer({ case: answer })
  try {
    const out = await compare(server.port, ["case"])
    assertLikeUpstream(out, ["case"])
    return out.case
  } finally {
    await server.close()
  }
}

test(`9c. unbounded trailers (2 MB of them) fail as pusher's do (${TRANSPORT})`, { timeout: 30000 }, async () => {
  // llhttp counts trailers against its 16 KiB head limit.
  const trailer = "x-trailer: " + "t".repeat(60) + "\r\n"
  await compareOne(thenClose(head("transfer-encoding: chunked") + "2\r\n{}\r\n0\r\n" + trailer.repeat(30000) + "\r\n"))
})

test(`9d. a head dripped one byte every 3 ms still parses (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const { ours } = await compareOne((socket) => {
    const bytes = response('{"dripped":true}')
    let i = 0
    const timer = setInterval(() => {
      if (socket.destroyed || i >= bytes.length) return clearInterval(timer)
      socket.write(bytes.subarray(i, ++i))
    }, 3)
  })
  assert.equal(ours.body, '{"dripped":true}')
})

test(`9e. a close-delimited body followed by a reset is rejected, not resolved truncated (${TRANSPORT})`, { timeout: 30000 }, async () => {
  await compareOne((socket) => {
    socket.write(head() + '{"partial":')
    setTimeout(() => socket.resetAndDestroy(), 50)
  })
})

test(`9f. a response head over 16 KiB fails as pusher's does (HPE_HEADER_OVERFLOW); 8 KiB is fine (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await craftedServer({
    "head-17k": thenClose(head("x-big: " + "h".repeat(17 * 1024), "content-length: 2") + "{}"),
    "head-8k": thenClose(head("x-big: " + "h".repeat(8 * 1024), "content-length: 2") + "{}"),
  })
  try {
    const out = await compare(server.port, ["head-17k", "head-8k"])
    assert.equal(out["head-17k"].upstream.code, "HPE_HEADER_OVERFLOW", "sanity: pusher's limit")
    assertLikeUpstream(out, ["head-17k", "head-8k"])
    assert.equal(out["head-17k"].ours.code, "HPE_HEADER_OVERFLOW", "the cause's code, as pusher's")
  } finally {
    await server.close()
  }
})

test(`9g. over TLS, a close-delimited body ended by a FIN without close_notify is rejected (${TRANSPORT})`, { timeout: 30000 }, async () => {
  const certs = makeCerts()
  const server = await tlsRawServer({ cert: certs.certPem, key: certs.keyPem }, (secure, request, conn) => {
    if (channelOf(request) === "healthy") return secure.write(response('{"healthy":true}'))
    secure.write(head() + '{"truncated":')
    // The TCP connection ends under the TLS session: a truncation attack, not an end.
    // Deliberately stricter than `pusher`, which resolves with the truncated body here
    // (Node does not require a close_notify); the tokio transport rejects.
    setTimeout(() => conn.raw.end(), 50)
  })
  try {
    const run = await runClient(
      `const p = make(Pusher, { port: ARGS.port, useTLS: true, ca: ARGS.ca, timeout: 3000 })
       report(await outcome(() => p.trigger("c", "e", {})))
       report(await outcome(() => p.trigger("healthy", "e", {})))`,
      { args: { port: server.port, ca: certs.caPem }, killAfterMs: 15000 }
    )
    assertSurvived(run)
    const [truncated, healthy] = run.results
    assert.equal(truncated.ok, false, `resolved with the truncated body ${JSON.stringify(truncated.body)}`)
    assert.deepEqual([healthy.ok, healthy.body], [true, '{"healthy":true}'])
  } finally {
    await server.close()
    fs.rmSync(certs.dir, { recursive: true, force: true })
  }
})
