"use strict"
// The opt-in features (retry, error codes, limits, autoChunk, flush,
// verifyWebhook, diagnostics), each against real local servers, and the defaults
// staying upstream's.
const { test, describe, before, after } = require("node:test")
const assert = require("node:assert/strict")
const crypto = require("node:crypto")
const net = require("node:net")
const { spawn } = require("node:child_process")
const diagnostics = require("node:diagnostics_channel")
const nacl = require("tweetnacl")
const helpers = require("./helpers")
const { Pusher, Upstream, recordingServer, pusherFor, makeCerts } = helpers

const FAST_RETRY = { attempts: 3, minDelayMs: 1, maxDelayMs: 20 }

/** `within` with the arguments the other way round (every wait here is bounded). */
const within = (ms, promise) => helpers.within(promise, ms)

/** Resolves to the rejection reason, failing if `promise` resolves. */
async function rejection(promise, ms = 5000) {
  try {
    await within(ms, promise)
  } catch (e) {
    if (/did not settle within/.test(e.message)) throw e
    return e
  }
  assert.fail("expected a rejection")
}

/**
 * A port whose connects hang (Linux): a child process listens with a tiny backlog and
 * then blocks its event loop, so nothing is accepted; once fillers fill the accept
 * queue, the kernel drops further SYNs. Returns { port, close }.
 */
// The tokio transport's whole-call deadline with retry comes with the bounds branch
// (issue 20 item 4): drop this skip when it is merged.

async function hungPort() {
  const child = spawn(process.execPath, [
    "-e",
    `const s = require("net").createServer(); s.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
       process.stdout.write(s.address().port + "\\n", () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 15000))
     })`,
  ], { stdio: ["ignore", "pipe", "inherit"] })
  const port = await within(5000, new Promise((resolve, reject) => {
    child.stdout.once("data", (d) => resolve(Number(String(d).trim())))
    child.once("exit", (code) => reject(new Error("listener exited " + code)))
  }))
  const fillers = []
  for (let i = 0; i < 8; i++) {
    const socket = net.connect(port, "127.0.0.1")
    socket.on("error", () => {})
    fillers.push(socket)
    const connected = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 200)
      socket.once("connect", () => (clearTimeout(timer), resolve(true)))
    })
    if (!connected) break
  }
  return {
    port,
    close: () => {
      for (const s of fillers) s.destroy()
      child.kill()
    },
  }
}

/** Collects what `pusher-native:request` publishes while `fn` runs. */
async function published(fn) {
  const messages = []
  const onMessage = (message) => messages.push(message)
  diagnostics.subscribe("pusher-native:request", onMessage)
  try {
    await fn()
  } finally {
    diagnostics.unsubscribe("pusher-native:request", onMessage)
  }
  return messages
}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(typeof body === "string" ? body : JSON.stringify(body))
}

// ---- 1. safe retries ----

describe("retry", () => {
  test("a GET answered 503 then 200 succeeds on the second attempt", async () => {
    let n = 0
    const server = await recordingServer({ handler: (req, body, res) => (++n === 1 ? json(res, 503, "busy") : json(res, 200, { channels: {} })) })
    try {
      const pusher = pusherFor(server, { retry: FAST_RETRY })
      const messages = await published(async () => {
        const res = await within(5000, pusher.get({ path: "/channels" }))
        assert.deepEqual(await res.json(), { channels: {} })
      })
      assert.equal(server.requests.length, 2)
      assert.equal(messages.length, 1)
      assert.equal(messages[0].attempts, 2)
      assert.equal(messages[0].status, 200)
    } finally {
      await server.close()
    }
  })

  test("a GET gives up after `attempts` and says so", async () => {
    const server = await recordingServer({ handler: (req, body, res) => json(res, 500, "down") })
    try {
      const err = await rejection(pusherFor(server, { retry: FAST_RETRY }).get({ path: "/channels" }))
      assert.ok(err instanceof Pusher.RequestError)
      assert.equal(err.status, 500)
      assert.equal(err.attempts, 3)
      assert.equal(err.retryable, true)
      assert.equal(server.requests.length, 3)
    } finally {
      await server.close()
    }
  })

  test("a GET reset mid-request is retried; a GET answered 404 is not", async () => {
    let n = 0
    const server = await recordingServer({
      handler: (req, body, res) => {
        if (req.url.startsWith("/apps/1/channels/missing")) return json(res, 404, "no")
        if (++n === 1) return req.socket.destroy()
        json(res, 200, { occupied: false })
      },
    })
    try {
      const pusher = pusherFor(server, { retry: FAST_RETRY })
      const res = await within(5000, pusher.get({ path: "/channels/x" }))
      assert.deepEqual(await res.json(), { occupied: false })
      assert.equal(n, 2)
      const err = await rejection(pusher.get({ path: "/channels/missing" }))
      assert.equal(err.status, 404)
      assert.equal(err.attempts, 1)
      assert.equal(err.retryable, false)
    } finally {
      await server.close()
    }
  })

  test("a POST answered 500 is not retried", async () => {
    const server = await recordingServer({ handler: (req, body, res) => json(res, 500, "oops") })
    try {
      const err = await rejection(pusherFor(server, { retry: FAST_RETRY }).trigger("c", "e", {}))
      assert.equal(server.requests.length, 1)
      assert.equal(err.status, 500)
      assert.equal(err.code, "PUSHER_HTTP")
      assert.equal(err.attempts, 1)
      assert.equal(err.retryable, false, "a 500 may mean the event was delivered")
    } finally {
      await server.close()
    }
  })

  test("a POST to a refused port is retried `attempts` times", async () => {
    const port = await helpers.closedPort()
    const pusher = new Pusher({ appId: "1", key: "k", secret: "s", host: "127.0.0.1", port, retry: { ...FAST_RETRY, attempts: 4 } })
    const err = await rejection(pusher.trigger("c", "e", {}))
    assert.equal(err.attempts, 4)
    assert.equal(err.code, "PUSHER_NETWORK")
    assert.equal(err.error.code, "ECONNREFUSED")
    assert.equal(err.retryable, true)
  })

  test("a POST answered 503 with Retry-After: 0 is retried", async () => {
    let n = 0
    const server = await recordingServer({
      handler: (req, body, res) => (++n === 1 ? json(res, 503, "later", { "retry-after": "0" }) : json(res, 200, {})),
    })
    try {
      const res = await within(5000, pusherFor(server, { retry: FAST_RETRY }).trigger("c", "e", { a: 1 }))
      assert.equal(res.status, 200)
      assert.equal(server.requests.length, 2)
      assert.equal(server.requests[0].body, server.requests[1].body)
    } finally {
      await server.close()
    }
  })

  test("a POST answered 503 or 429 without Retry-After is not retried", async () => {
    for (const status of [503, 429]) {
      const server = await recordingServer({ handler: (req, body, res) => json(res, status, "no") })
      try {
        const err = await rejection(pusherFor(server, { retry: FAST_RETRY }).trigger("c", "e", {}))
        assert.equal(err.status, status)
        assert.equal(err.attempts, 1)
        assert.equal(err.retryable, false)
        assert.equal(server.requests.length, 1)
      } finally {
        await server.close()
      }
    }
  })

  test("a POST reset after its body arrived is NOT retried", async () => {
    const server = await recordingServer({ handler: (req) => req.socket.destroy() })
    try {
      const err = await rejection(pusherFor(server, { retry: { ...FAST_RETRY, attempts: 5 } }).trigger("c", "e", {}))
      assert.equal(server.requests.length, 1, "a retry could deliver the event twice")
      assert.equal(err.attempts, 1)
      assert.equal(err.code, "PUSHER_NETWORK")
      assert.equal(err.error.code, "ECONNRESET")
      assert.equal(err.retryable, false)
    } finally {
      await server.close()
    }
  })

  test("a POST that times out is not retried; a GET that times out is retryable, but the timeout bounds the whole call", async () => {
    const server = await recordingServer({ handler: (req, body, res) => setTimeout(() => json(res, 200, {}), 400) })
    try {
      const pusher = pusherFor(server, { retry: FAST_RETRY, timeout: 100 })
      const post = await rejection(pusher.trigger("c", "e", {}))
      assert.equal(post.code, "PUSHER_TIMEOUT")
      assert.equal(post.error.name, "AbortError")
      assert.equal(post.attempts, 1)
      assert.equal(post.retryable, false)
      assert.equal(server.requests.length, 1)
      const started = Date.now()
      const get = await rejection(pusher.get({ path: "/channels" }))
      assert.equal(get.code, "PUSHER_TIMEOUT")
      // The first attempt used the whole 100 ms: no time is left for another.
      assert.equal(get.attempts, 1)
      assert.ok(Date.now() - started < 400, `${Date.now() - started} ms`)
      assert.equal(get.retryable, true)
      assert.equal(server.requests.length, 2)
    } finally {
      await server.close()
    }
  })

  test("Retry-After is honoured", async () => {
    let n = 0
    const server = await recordingServer({
      handler: (req, body, res) => (++n === 1 ? json(res, 429, "slow down", { "retry-after": "1" }) : json(res, 200, {})),
    })
    try {
      const pusher = pusherFor(server, { retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 3000 } })
      const start = Date.now()
      await within(5000, pusher.trigger("c", "e", {}))
      const elapsed = Date.now() - start
      assert.equal(server.requests.length, 2)
      assert.ok(elapsed >= 900 && elapsed < 4000, `retried after ${elapsed} ms`)
    } finally {
      await server.close()
    }
  })

  test("a connect that hangs is retried for a POST (a connect timeout sends nothing)", { skip: (process.platform !== "linux" && "Linux only") || (helpers.WEB && "connect timeouts: native only") }, async () => {
    const hung = await hungPort()
    try {
      const options = { appId: "1", key: "k", secret: "s", host: "127.0.0.1", port: hung.port, timeout: 400 }
      const start = Date.now()
      const retried = await rejection(new Pusher({ ...options, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 5 } }).trigger("c", "e", 1))
      // A timeout looks the same with retries (issue 22 item 3), but it is retryable.
      assert.deepEqual(
        [retried.code, retried.error.name, retried.error.code, retried.retryable, retried.attempts],
        ["PUSHER_TIMEOUT", "AbortError", "ETIMEDOUT", true, 2]
      )
      assert.ok(Date.now() - start < 700, `${Date.now() - start} ms`) // both attempts within the 400 ms timeout
      // Without retries the transport is upstream's: one whole-request timeout.
      const plain = await rejection(new Pusher(options).trigger("c", "e", 1))
      assert.deepEqual([plain.code, plain.error.name, plain.retryable, plain.attempts], ["PUSHER_TIMEOUT", "AbortError", false, 1])
      assert.ok(Date.now() - start < 1500, `${Date.now() - start} ms (2 × 400 ms deadlines)`)
    } finally {
      hung.close()
    }
  })

  test("a Retry-After longer than maxDelayMs hands the answer back at once", async () => {
    const server = await recordingServer({ handler: (req, body, res) => json(res, 503, "later", { "retry-after": "30" }) })
    try {
      const start = Date.now()
      const err = await rejection(pusherFor(server, { retry: FAST_RETRY }).trigger("c", "e", {}))
      assert.ok(Date.now() - start < 2000)
      assert.equal(err.attempts, 1)
      assert.equal(err.retryable, true, "the server asked for a later retry")
      assert.equal(server.requests.length, 1)
    } finally {
      await server.close()
    }
  })

  test("a TLS certificate failure is not retried", async () => {
    const certs = makeCerts()
    const server = await recordingServer({ tls: { cert: certs.certPem, key: certs.keyPem } })
    try {
      const err = await rejection(pusherFor(server, { retry: FAST_RETRY }).get({ path: "/channels" }))
      assert.equal(err.code, "PUSHER_TLS")
      assert.equal(err.retryable, false)
      assert.equal(err.attempts, 1)
      assert.equal(server.requests.length, 0)
    } finally {
      await server.close()
    }
  })

  test("without the option: one attempt, as upstream", async () => {
    const port = await helpers.closedPort()
    const options = { appId: "1", key: "k", secret: "s", host: "127.0.0.1", port }
    const ours = await rejection(new Pusher(options).trigger("c", "e", {}))
    const theirs = await rejection(new Upstream(options).trigger("c", "e", {}))
    assert.equal(ours.attempts, 1)
    assert.equal(ours.message, theirs.message)
    assert.equal(ours.error.code, theirs.error.code)
    const server = await recordingServer({ handler: (req, body, res) => json(res, 503, "x", { "retry-after": "0" }) })
    try {
      const err = await rejection(pusherFor(server).get({ path: "/channels" }))
      assert.equal(err.attempts, 1)
      assert.equal(server.requests.length, 1)
    } finally {
      await server.close()
    }
  })
})

// ---- 2. error codes ----

describe("error codes", () => {
  test("RequestError keeps upstream's fields first and adds code, retryable, attempts", async () => {
    const server = await recordingServer({ handler: (req, body, res) => json(res, 400, "bad") })
    try {
      const ours = await rejection(pusherFor(server).trigger("c", "e", {}))
      const theirs = await rejection(pusherFor(server, {}, Upstream).trigger("c", "e", {}))
      assert.deepEqual(Object.keys(ours).slice(0, Object.keys(theirs).length), Object.keys(theirs))
      assert.deepEqual(Object.keys(ours).slice(Object.keys(theirs).length), ["code", "retryable", "attempts"])
      assert.deepEqual([ours.status, ours.body, ours.message], [theirs.status, theirs.body, theirs.message])
      assert.deepEqual([ours.code, ours.retryable, ours.attempts], ["PUSHER_HTTP", false, 1])
    } finally {
      await server.close()
    }
  })

  test("GET 5xx and 429 are retryable, POST ones are not", async () => {
    const server = await recordingServer({ handler: (req, body, res) => json(res, req.url.includes("/a") ? 502 : 429, "x") })
    try {
      const pusher = pusherFor(server)
      assert.equal((await rejection(pusher.get({ path: "/a" }))).retryable, true)
      assert.equal((await rejection(pusher.get({ path: "/b" }))).retryable, true)
      assert.equal((await rejection(pusher.post({ path: "/a", body: {} }))).retryable, false)
    } finally {
      await server.close()
    }
  })

  test("timeouts, network and TLS failures", async () => {
    const slow = await recordingServer({ handler: (req, body, res) => setTimeout(() => json(res, 200, {}), 300) })
    try {
      const err = await rejection(pusherFor(slow, { timeout: 50 }).get({ path: "/channels" }))
      assert.deepEqual([err.code, err.retryable, err.attempts, err.status], ["PUSHER_TIMEOUT", true, 1, undefined])
    } finally {
      await slow.close()
    }
    const port = await helpers.closedPort()
    const refused = await rejection(new Pusher({ appId: 1, key: "k", secret: "s", host: "127.0.0.1", port }).trigger("c", "e", 1))
    assert.deepEqual([refused.code, refused.error.code, refused.retryable], ["PUSHER_NETWORK", "ECONNREFUSED", true])
    const reset = await recordingServer({ handler: (req) => req.socket.destroy() })
    try {
      const err = await rejection(pusherFor(reset).trigger("c", "e", 1))
      assert.deepEqual([err.code, err.error.code, err.retryable], ["PUSHER_NETWORK", "ECONNRESET", false])
    } finally {
      await reset.close()
    }
  })

  test("a GET with a body rejects with the fields too", async () => {
    const server = await recordingServer()
    try {
      const err = await rejection(pusherFor(server).get({ path: "/channels", body: { a: 1 } }))
      assert.equal(err.error.message, "Request with GET/HEAD method cannot have body")
      assert.deepEqual([err.code, err.retryable, err.attempts], ["PUSHER_NETWORK", false, 0])
      assert.equal(server.requests.length, 0)
    } finally {
      await server.close()
    }
  })
})

// ---- 3. limits before the wire ----

describe("limits", () => {
  let server
  before(async () => {
    server = await recordingServer()
  })
  after(() => server.close())

  const MASTER_KEY = crypto.randomBytes(32).toString("base64")

  test("an event over 10240 bytes throws synchronously, naming the size and the limit", () => {
    const before = server.requests.length
    const pusher = pusherFor(server, { limits: true })
    assert.throws(() => pusher.trigger("c", "big", "x".repeat(20000)), /20000 bytes.*10240/)
    assert.throws(() => pusher.sendToUser("u1", "big", "x".repeat(10241)), /10241 bytes.*10240/)
    assert.throws(() => pusher.triggerBatch([{ channel: "c", name: "big", data: "é".repeat(6000) }]), /12000 bytes.*10240/)
    assert.equal(server.requests.length, before)
  })

  test("a batch over 10 events throws before any request", () => {
    const before = server.requests.length
    const batch = Array.from({ length: 11 }, (_, i) => ({ channel: "c", name: "e", data: { i } }))
    assert.throws(() => pusherFor(server, { limits: true }).triggerBatch(batch), /11 events.*10 events/)
    assert.deepEqual(batch[0].data, { i: 0 }, "the caller's batch is left alone")
    assert.equal(server.requests.length, before)
  })

  test("encrypted data is measured after encryption", async () => {
    const pusher = pusherFor(server, { limits: true, encryptionMasterKeyBase64: MASTER_KEY })
    const data = "x".repeat(7700) // 7702 bytes of JSON, about 10300 once sealed and base64-encoded
    const before = server.requests.length
    assert.throws(() => pusher.trigger("private-encrypted-c", "e", data), /over the limit of 10240 bytes/)
    assert.throws(() => pusher.triggerBatch([{ channel: "private-encrypted-c", name: "e", data }]), /10240/)
    assert.equal(server.requests.length, before)
    await within(5000, pusher.trigger("public", "e", data))
    assert.equal(server.requests.length, before + 1)
  })

  test("custom limits for dedicated clusters", async () => {
    const pusher = pusherFor(server, { limits: { eventBytes: 100, batchSize: 2, channels: 3 } })
    const before = server.requests.length
    assert.throws(() => pusher.trigger("c", "e", "x".repeat(101)), /101 bytes.*limit of 100 bytes/)
    assert.throws(() => pusher.trigger(["a", "b", "c", "d"], "e", 1), /4 channels.*limit of 3 channels/)
    const three = [1, 2, 3].map((i) => ({ channel: "c", name: "e", data: i }))
    assert.throws(() => pusher.triggerBatch(three), /3 events.*limit of 2 events/)
    assert.equal(server.requests.length, before)
    await within(5000, pusher.trigger(["a", "b", "c"], "e", "x".repeat(98)))
    await within(5000, pusher.triggerBatch(three.slice(0, 2)))
    const roomy = pusherFor(server, { limits: { channels: 150, batchSize: 20 } })
    const channels = Array.from({ length: 150 }, (_, i) => "c" + i)
    await within(5000, roomy.trigger(channels, "e", 1))
    assert.equal(JSON.parse(server.requests.at(-1).body).channels.length, 150)
    assert.equal(server.requests.length, before + 3)
  })

  test("off by default: an 11-event batch and 20 KB of data are sent, as upstream does", async () => {
    const pusher = pusherFor(server)
    const before = server.requests.length
    const batch = Array.from({ length: 11 }, (_, i) => ({ channel: "c", name: "e", data: { i } }))
    await within(5000, pusher.triggerBatch(batch))
    await within(5000, pusher.trigger("c", "e", "x".repeat(20000)))
    assert.equal(server.requests.length, before + 2)
    assert.equal(JSON.parse(server.requests[before].body).batch.length, 11)
    assert.equal(JSON.parse(server.requests[before + 1].body).data.length, 20000)
  })

  test("off by default: more than 100 channels throws upstream's message", () => {
    const channels = Array.from({ length: 101 }, (_, i) => "c" + i)
    const theirs = (() => {
      try {
        pusherFor(server, {}, Upstream).trigger(channels, "e", 1)
      } catch (e) {
        return e.message
      }
    })()
    assert.equal(theirs, "Can't trigger a message to more than 100 channels")
    assert.throws(() => pusherFor(server).trigger(channels, "e", 1), { message: theirs })
  })
})

// ---- 4. autoChunk ----

describe("autoChunk", () => {
  test("a 25-event batch goes as 3 concurrent requests; json() merges in the caller's order", async () => {
    let concurrent = false
    const server = await recordingServer({
      handler: (req, body, res) => {
        const { batch } = JSON.parse(body)
        const answer = () => json(res, 200, { batch: batch.map((e) => ({ echo: JSON.parse(e.data).i })) })
        if (JSON.parse(batch[0].data).i !== 0) return answer()
        // The first chunk answers last, once the other two have arrived (or after 1 s).
        const started = Date.now()
        const poll = setInterval(() => {
          concurrent = server.requests.length === 3
          if (concurrent || Date.now() - started > 1000) {
            clearInterval(poll)
            setTimeout(answer, 20)
          }
        }, 5)
      },
    })
    try {
      const pusher = pusherFor(server, { autoChunk: true })
      const batch = Array.from({ length: 25 }, (_, i) => ({ channel: "c" + i, name: "e", data: { i } }))
      const res = await within(5000, pusher.triggerBatch(batch))
      assert.ok(concurrent, "the chunks were sent without waiting for each other")
      assert.deepEqual(server.requests.map((r) => JSON.parse(r.body).batch.length).sort(), [10, 10, 5])
      assert.equal(res.status, 200)
      const merged = await res.json()
      assert.deepEqual(merged.batch.map((b) => b.echo), batch.map((_, i) => i))
    } finally {
      await server.close()
    }
  })

  test("a trigger to 250 channels goes as 100 + 100 + 50; the channels map is in the caller's order", async () => {
    const server = await recordingServer({
      handler: (req, body, res) => {
        const { channels } = JSON.parse(body)
        const answer = {}
        for (const c of [...channels].reverse()) answer[c] = { subscription_count: Number(c.slice(1)) }
        json(res, 200, { channels: answer })
      },
    })
    try {
      const pusher = pusherFor(server, { autoChunk: true })
      const channels = Array.from({ length: 250 }, (_, i) => "c" + i)
      const res = await within(5000, pusher.trigger(channels, "e", { a: 1 }, { info: "subscription_count" }))
      const sent = server.requests.map((r) => JSON.parse(r.body))
      assert.deepEqual(sent.map((b) => b.channels.length).sort(), [100, 100, 50])
      for (const b of sent) assert.deepEqual([b.name, b.data, b.info], ["e", '{"a":1}', "subscription_count"])
      const merged = await res.json()
      assert.deepEqual(Object.keys(merged.channels), channels)
      assert.equal(merged.channels.c249.subscription_count, 249)
    } finally {
      await server.close()
    }
  })

  test("every chunk goes through pusher.post, so stubs see them", async () => {
    const server = await recordingServer()
    try {
      const pusher = pusherFor(server, { autoChunk: true })
      const calls = []
      pusher.post = (options) => {
        calls.push(options)
        return Promise.resolve({ json: () => Promise.resolve({}) })
      }
      await within(5000, pusher.trigger(Array.from({ length: 201 }, (_, i) => "c" + i), "e", 1))
      await within(5000, pusher.triggerBatch(Array.from({ length: 12 }, () => ({ channel: "c", name: "e", data: 1 }))))
      assert.deepEqual(calls.map((c) => [c.path, (c.body.channels || c.body.batch).length]), [
        ["/events", 100],
        ["/events", 100],
        ["/events", 1],
        ["/batch_events", 10],
        ["/batch_events", 2],
      ])
      assert.equal(server.requests.length, 0)
    } finally {
      await server.close()
    }
  })

  test("a failed chunk rejects with a RequestError naming the events not accepted", async () => {
    const server = await recordingServer({
      handler: (req, body, res) => {
        const { batch } = JSON.parse(body)
        if (JSON.parse(batch[0].data) === 10) return json(res, 500, "boom")
        json(res, 200, {})
      },
    })
    try {
      const pusher = pusherFor(server, { autoChunk: true })
      const batch = Array.from({ length: 25 }, (_, i) => ({ channel: "c", name: "e", data: i }))
      const err = await rejection(pusher.triggerBatch(batch))
      assert.ok(err instanceof Pusher.RequestError)
      assert.match(err.message, /1 of 3 requests failed.*events not accepted: 10-19/)
      assert.deepEqual(err.failedEvents, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
      assert.deepEqual([err.code, err.status, err.body, err.retryable, err.attempts], ["PUSHER_HTTP", 500, "boom", false, 1])
      assert.equal(server.requests.length, 3)
    } finally {
      await server.close()
    }
  })

  test("a failed fan-out chunk names the channels not accepted", async () => {
    const server = await recordingServer({
      handler: (req, body, res) => (JSON.parse(body).channels[0] === "c200" ? req.socket.destroy() : json(res, 200, {})),
    })
    try {
      const pusher = pusherFor(server, { autoChunk: true })
      const channels = Array.from({ length: 230 }, (_, i) => "c" + i)
      const err = await rejection(pusher.trigger(channels, "e", 1))
      assert.match(err.message, /channels not accepted: 200-229/)
      assert.deepEqual(err.failedChannels, channels.slice(200))
      assert.equal(err.code, "PUSHER_NETWORK")
    } finally {
      await server.close()
    }
  })

  test("within the limits: one request, the server's own answer", async () => {
    const server = await recordingServer({ handler: (req, body, res) => json(res, 200, { batch: [{ x: 1 }] }) })
    try {
      const pusher = pusherFor(server, { autoChunk: true })
      const res = await within(5000, pusher.triggerBatch([{ channel: "c", name: "e", data: 1 }]))
      assert.deepEqual(await res.json(), { batch: [{ x: 1 }] })
      assert.equal(server.requests.length, 1)
      assert.throws(() => pusher.trigger(["private-encrypted-a", "b"], "e", 1), /multiple channels/)
    } finally {
      await server.close()
    }
  })
})

// ---- 5. flush ----

describe("flush", () => {
  test("resolves once every request this instance started has settled", async () => {
    let answered = 0
    const server = await recordingServer({
      handler: (req, body, res) =>
        setTimeout(() => {
          answered++
          json(res, req.url.includes("/fail") ? 500 : 200, {})
        }, 200),
    })
    try {
      const pusher = pusherFor(server)
      const other = pusherFor(server)
      await within(1000, pusher.flush()) // nothing in flight
      const start = Date.now()
      pusher.trigger("a", "e", 1)
      pusher.trigger("b", "e", 2)
      pusher.post({ path: "/fail", body: {} }).catch(() => {}) // a failure settles too
      await within(100, other.flush()) // another instance's requests are not waited for
      await within(3000, pusher.flush())
      assert.ok(Date.now() - start >= 150, `flushed after ${Date.now() - start} ms`)
      assert.equal(answered, 3)
      assert.equal(server.requests.length, 3)
      await within(1000, pusher.flush())
    } finally {
      await server.close()
    }
  })

  test("waits for the requests in flight when called, not for those started after", async () => {
    const server = await recordingServer({
      handler: (req, body, res) => setTimeout(() => json(res, 200, {}), req.url.includes("/slow") ? 1500 : 200),
    })
    try {
      const pusher = pusherFor(server)
      const start = Date.now()
      const first = pusher.trigger("a", "e", 1)
      const flushed = pusher.flush()
      const slow = pusher.post({ path: "/slow", body: {} }) // started after the flush
      const second = pusher.flush() // waits for both
      await within(1200, flushed)
      const firstAt = Date.now() - start
      assert.ok(firstAt >= 150 && firstAt < 1200, `first flush after ${firstAt} ms`)
      assert.equal((await first).status, 200)
      await within(3000, second)
      assert.ok(Date.now() - start >= 1400, `second flush after ${Date.now() - start} ms`)
      assert.equal((await slow).status, 200)
      await within(100, pusher.flush()) // nothing left
    } finally {
      await server.close()
    }
  })

  test("flush is not an enumerable prototype key (upstream's keys stay)", () => {
    assert.deepEqual(Object.keys(Pusher.prototype).sort(), Object.keys(Upstream.prototype).sort())
    assert.equal(typeof Pusher.prototype.flush, "function")
  })
})

// ---- 6. verifyWebhook ----

describe("verifyWebhook", () => {
  const KEY = "webhook-key"
  const SECRET = "webhook-secret"
  const MASTER = crypto.randomBytes(32)
  const pusher = new Pusher({ appId: "1", key: KEY, secret: SECRET, encryptionMasterKeyBase64: MASTER.toString("base64") })
  const sign = (body, secret = SECRET) => crypto.createHmac("sha256", secret).update(body).digest("hex")
  const now = Date.now()
  const body = JSON.stringify({ time_ms: now, events: [{ name: "channel_occupied", channel: "c" }] })

  test("accepts headers in any form and case, string or Buffer bodies, JSON with parameters", () => {
    const forms = [
      { "x-pusher-key": KEY, "x-pusher-signature": sign(body), "content-type": "application/json" },
      { "X-Pusher-Key": KEY, "X-Pusher-Signature": sign(body), "Content-Type": "application/json; charset=utf-8" },
      new Headers({ "X-PUSHER-KEY": KEY, "x-pusher-signature": sign(body), "content-type": "Application/JSON;charset=UTF-8" }),
    ]
    for (const headers of forms) {
      for (const rawBody of [body, Buffer.from(body)]) {
        const result = pusher.verifyWebhook({ headers, rawBody })
        assert.equal(result.valid, true, JSON.stringify(result))
        assert.equal(result.reason, undefined)
        assert.deepEqual(result.events, [{ name: "channel_occupied", channel: "c" }])
        assert.equal(result.time.getTime(), now)
      }
    }
    assert.equal(pusher.verifyWebhook({ headers: forms[0], body }).valid, true, "`body` when there is no rawBody")
  })

  test("reasons, and it never throws", () => {
    const headers = { "x-pusher-key": KEY, "x-pusher-signature": sign(body), "content-type": "application/json" }
    const reason = (request, options) => {
      const result = pusher.verifyWebhook(request, options)
      assert.equal(result.valid, false)
      assert.deepEqual(result.events, [])
      return result.reason
    }
    assert.equal(reason({ headers: { ...headers, "content-type": "text/plain" }, rawBody: body }), "content-type")
    assert.equal(reason({ headers: { ...headers, "x-pusher-signature": undefined }, rawBody: body }), "missing-signature")
    assert.equal(reason({ headers: { ...headers, "x-pusher-key": "other" }, rawBody: body }), "unknown-key")
    assert.equal(reason({ headers: { ...headers, "x-pusher-signature": sign(body, "wrong") }, rawBody: body }), "invalid-signature")
    assert.equal(reason({ headers: { ...headers, "x-pusher-signature": "zz" }, rawBody: body }), "invalid-signature")
    assert.equal(reason({ headers, rawBody: body + " " }), "invalid-signature")
    assert.equal(reason({ headers, rawBody: JSON.parse(body) }), "invalid-body")
    const notJson = "{nope"
    assert.equal(reason({ headers: { ...headers, "x-pusher-signature": sign(notJson) }, rawBody: notJson }), "invalid-body")
    for (const bad of [undefined, null, 42, "x", {}, { headers: 5 }, { headers: null, rawBody: body }, { headers, rawBody: 5 }]) {
      assert.doesNotThrow(() => pusher.verifyWebhook(bad))
      assert.equal(pusher.verifyWebhook(bad).valid, false)
    }
    const throwing = { get headers() { throw new Error("boom") } }
    assert.equal(reason(throwing), "invalid-request")
  })

  test("optional freshness on time_ms, and extra tokens", () => {
    const old = JSON.stringify({ time_ms: now - 10 * 60 * 1000, events: [] })
    const headers = (b, key = KEY, secret = SECRET) => ({
      "x-pusher-key": key,
      "x-pusher-signature": sign(b, secret),
      "content-type": "application/json",
    })
    assert.equal(pusher.verifyWebhook({ headers: headers(old), rawBody: old }).valid, true)
    assert.equal(pusher.verifyWebhook({ headers: headers(old), rawBody: old }, { maxAgeMs: 60000 }).reason, "stale")
    assert.equal(pusher.verifyWebhook({ headers: headers(body), rawBody: body }, { maxAgeMs: 60000 }).valid, true)
    const rotated = { key: "old-key", secret: "old-secret" }
    const signedOld = { headers: headers(body, rotated.key, rotated.secret), rawBody: body }
    assert.equal(pusher.verifyWebhook(signedOld).reason, "unknown-key")
    assert.equal(pusher.verifyWebhook(signedOld, { extraTokens: rotated }).valid, true)
    assert.equal(pusher.verifyWebhook(signedOld, { extraTokens: [{ key: "x", secret: "y" }, rotated] }).valid, true)
  })

  test("events on private-encrypted- channels are decrypted with the master key", () => {
    const channel = "private-encrypted-room"
    const plaintext = JSON.stringify({ message: "hello", n: 1 })
    const sharedSecret = crypto.createHash("sha256").update(Buffer.concat([Buffer.from(channel), MASTER])).digest()
    const nonce = nacl.randomBytes(24)
    const box = nacl.secretbox(Buffer.from(plaintext), nonce, sharedSecret)
    const data = JSON.stringify({ nonce: Buffer.from(nonce).toString("base64"), ciphertext: Buffer.from(box).toString("base64") })
    const events = [
      { name: "client-msg", channel, event: "client-msg", data, socket_id: "1.2" },
      { name: "channel_occupied", channel },
      { name: "client-msg", channel: "private-plain", event: "client-msg", data: '{"a":1}' },
    ]
    const raw = JSON.stringify({ time_ms: now, events })
    const request = { headers: { "x-pusher-key": KEY, "x-pusher-signature": sign(raw), "content-type": "application/json" }, rawBody: raw }
    const result = pusher.verifyWebhook(request)
    assert.equal(result.valid, true, JSON.stringify(result))
    assert.equal(result.events[0].data, plaintext)
    assert.deepEqual(result.events.slice(1), events.slice(1))

    const sealed = JSON.parse(data)
    sealed.ciphertext = (sealed.ciphertext[0] === "A" ? "B" : "A") + sealed.ciphertext.slice(1)
    const forged = JSON.stringify({ time_ms: now, events: [{ ...events[0], data: JSON.stringify(sealed) }] })
    const forgedRequest = { headers: { ...request.headers, "x-pusher-signature": sign(forged) }, rawBody: forged }
    assert.equal(pusher.verifyWebhook(forgedRequest).reason, "decryption-failed")
    const keyless = new Pusher({ appId: "1", key: KEY, secret: SECRET })
    assert.equal(keyless.verifyWebhook(request).reason, "no-master-key")
  })

  test("pusher.webhook() keeps upstream's exact behaviour", () => {
    const upstream = new Upstream({ appId: "1", key: KEY, secret: SECRET })
    const requests = [
      { headers: { "x-pusher-key": KEY, "x-pusher-signature": sign(body), "content-type": "application/json" }, rawBody: body },
      { headers: { "x-pusher-key": KEY, "x-pusher-signature": sign(body), "content-type": "application/json; charset=utf-8" }, rawBody: body },
    ]
    for (const request of requests) {
      const ours = pusher.webhook(request)
      const theirs = upstream.webhook(request)
      assert.equal(ours.isValid(), theirs.isValid())
      assert.equal(ours.isContentTypeValid(), theirs.isContentTypeValid())
      const outcome = (w) => {
        try {
          return w.getEvents()
        } catch (e) {
          return e.name + ": " + e.message
        }
      }
      assert.deepEqual(outcome(ours), outcome(theirs))
    }
    assert.equal(pusher.webhook(requests[1]).isValid(), false, "upstream wants exactly application/json")
  })
})

// ---- 8. diagnostics ----

describe("diagnostics_channel", () => {
  test("each request publishes { method, path, status, durationMs, attempts, error } when it settles", async () => {
    const server = await recordingServer({ handler: (req, body, res) => json(res, req.url.includes("/bad") ? 400 : 200, {}) })
    try {
      const pusher = pusherFor(server)
      let failure
      const messages = await published(async () => {
        await within(5000, pusher.trigger("c", "e", 1))
        failure = await rejection(pusher.get({ path: "/bad" }))
      })
      assert.equal(messages.length, 2)
      const [ok, bad] = messages
      assert.deepEqual(Object.keys(ok), ["method", "path", "status", "durationMs", "attempts", "error"])
      assert.deepEqual([ok.method, ok.path, ok.status, ok.attempts, ok.error], ["POST", "/apps/1/events", 200, 1, undefined])
      assert.ok(ok.durationMs >= 0 && ok.durationMs < 5000)
      assert.deepEqual([bad.method, bad.path, bad.status, bad.attempts], ["GET", "/apps/1/bad", 400, 1])
      assert.equal(bad.error, failure, "the very error the caller gets")

      const port = await helpers.closedPort()
      const refused = new Pusher({ appId: 1, key: "k", secret: "s", host: "127.0.0.1", port, retry: FAST_RETRY })
      const [net] = await published(() => rejection(refused.trigger("c", "e", 1)))
      assert.deepEqual([net.status, net.attempts, net.error.code], [0, 3, "PUSHER_NETWORK"])
    } finally {
      await server.close()
    }
  })

  test("nothing is published when nobody subscribes", async () => {
    const channel = diagnostics.channel("pusher-native:request")
    assert.equal(channel.hasSubscribers, false)
    const server = await recordingServer()
    try {
      const original = channel.publish
      let calls = 0
      channel.publish = function (...args) {
        calls++
        return original.apply(this, args)
      }
      try {
        await within(5000, pusherFor(server).trigger("c", "e", 1))
      } finally {
        delete channel.publish
      }
      assert.equal(calls, 0)
    } finally {
      await server.close()
    }
  })
})
