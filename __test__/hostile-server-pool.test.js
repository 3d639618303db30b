"use strict"
// Issue 20, the pool and the body as a hostile server or a demanding caller tries them:
// a connection closed while JS was busy (item 2), endless bodies (item 1), connections
// per origin (item 10). Clients run in child processes (raw-servers.js runClient), so a
// crash or a hang is reported instead of taking the runner down. Runs on both
// transports (see the test:tokio script).

const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const { makeCerts } = require("./helpers")
const { rawServer, tlsRawServer, response, runClient, assertSurvived } = require("./raw-servers")

const TRANSPORT = process.env.PUSHER_NATIVE_TRANSPORT === "tokio" ? "tokio" : "event loop"
const certs = makeCerts()
test.after(() => fs.rmSync(certs.dir, { recursive: true, force: true }))
const tlsOptions = { cert: certs.certPem, key: certs.keyPem }

// The client blocks for 300 ms right after its first reply; the server closes the idle
// connection 100 ms into that (a short keep-alive timeout), so the close is in the
// kernel, unread, when the second trigger starts.
const BLOCKED_SCRIPT = `const p = make(Pusher, Object.assign({ port: ARGS.port, timeout: 5000 }, ARGS.options))
  report(await outcome(() => p.trigger("c", "e", { n: 1 })))
  busy(300)
  report(await outcome(() => p.trigger("c", "e", { n: 2 })))`

function assertFreshConnection(run, server) {
  assertSurvived(run)
  const [first, second] = run.results
  assert.equal(first.ok, true)
  assert.equal(second.ok, true, `the trigger after 300 ms of blocking failed: ${second.code} ${second.cause}`)
  assert.equal(second.body, '{"conn":1}')
  assert.equal(server.accepted(), 2)
}

test(`a connection the server closed while JS was blocked for 300 ms is not reused (plain, ${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await rawServer((socket, request, conn) => {
    socket.write(response(`{"conn":${conn.id}}`))
    setTimeout(() => socket.end(), 100)
  })
  try {
    const run = await runClient(BLOCKED_SCRIPT, { args: { port: server.port, options: {} }, killAfterMs: 15000 })
    assertFreshConnection(run, server)
  } finally {
    await server.close()
  }
})

test(`a connection the server closed while JS was blocked for 300 ms is not reused (TLS, ${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await tlsRawServer(tlsOptions, (secure, request, conn) => {
    secure.write(response(`{"conn":${conn.id}}`))
    setTimeout(() => {
      secure.end()
      setTimeout(() => conn.raw.destroy(), 20)
    }, 100)
  })
  try {
    const options = { useTLS: true, ca: certs.caPem }
    const run = await runClient(BLOCKED_SCRIPT, { args: { port: server.port, options }, killAfterMs: 15000 })
    assertFreshConnection(run, server)
  } finally {
    await server.close()
  }
})

test(`a connection reset while JS was blocked for 300 ms is not reused (TLS without close_notify, ${TRANSPORT})`, { timeout: 30000 }, async () => {
  const server = await tlsRawServer(tlsOptions, (secure, request, conn) => {
    secure.write(response(`{"conn":${conn.id}}`))
    setTimeout(() => conn.raw.end(), 100)
  })
  try {
    const options = { useTLS: true, ca: certs.caPem }
    const run = await runClient(BLOCKED_SCRIPT, { args: { port: server.port, options }, killAfterMs: 15000 })
    assertFreshConnection(run, server)
  } finally {
    await server.close()
  }
})
