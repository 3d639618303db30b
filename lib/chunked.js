"use strict"
// The opt-in `autoChunk`: batches over the batch limit and triggers to more channels
// than one request takes are split into concurrent requests (each through
// `pusher.post`, so stubs still see them), and the answers merged in caller order.

const { RequestError } = require("./errors")
const Response = require("./response")

const CODES = new Set(["PUSHER_HTTP", "PUSHER_TIMEOUT", "PUSHER_NETWORK", "PUSHER_TLS"])

function chunksOf(items, size) {
  const chunks = []
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size))
  return chunks
}

function merged(url, body) {
  return new Response({ url, status: 200, headers: "content-type\napplication/json\n", text: JSON.stringify(body), attempts: 1 })
}

/** `pusher.post`, with a synchronous throw (a stub's) turned into this chunk's failure. */
function post(pusher, options) {
  try {
    return pusher.post(options)
  } catch (e) {
    return Promise.reject(e)
  }
}

function range(from, count) {
  return count === 1 ? `${from}` : `${from}-${from + count - 1}`
}

/**
 * Waits for every chunk; if any failed, rejects with one RequestError that names what
 * was not accepted (`what(i)` for chunk i) and carries the first failure's fields.
 * Chunks that succeeded were delivered: only the failed ones may be sent again.
 */
async function settleAll(requests, noun, what) {
  const results = await Promise.allSettled(requests)
  const failed = []
  for (let i = 0; i < results.length; i++) if (results[i].status === "rejected") failed.push(i)
  if (failed.length > 0) {
    const errors = failed.map((i) => results[i].reason)
    const first = errors[0] || {}
    const err = new RequestError(
      `${failed.length} of ${results.length} requests failed (${first.message}); ${noun} not accepted: ` +
        failed.map(what).join(", "),
      first.url,
      first,
      first.status,
      first.body
    )
    err.code = CODES.has(first.code) ? first.code : "PUSHER_NETWORK"
    err.retryable = errors.every((e) => e && e.retryable === true)
    err.attempts = Math.max(...errors.map((e) => (e && Number.isInteger(e.attempts) ? e.attempts : 1)))
    err.failedChunks = failed
    err.errors = errors
    return { err, failed }
  }
  const bodies = await Promise.all(results.map((r) => Promise.resolve(r.value).then((res) => res.json()).catch(() => ({}))))
  return { bodies }
}

/** Sends one event to `body.channels` in requests of at most `size` channels. */
async function fanOut(pusher, body, size) {
  const chunks = chunksOf(body.channels, size)
  const outcome = await settleAll(
    chunks.map((channels) => post(pusher, { path: "/events", body: { ...body, channels } })),
    "channels",
    (i) => `${range(i * size, chunks[i].length)} (${chunks[i][0]}…)`
  )
  if (outcome.err) {
    outcome.err.failedChannels = outcome.failed.flatMap((i) => chunks[i])
    throw outcome.err
  }
  // The caller's channel order, whatever order each answer used.
  const answered = {}
  let any = false
  for (const answer of outcome.bodies) {
    if (answer && answer.channels && typeof answer.channels === "object") {
      Object.assign(answered, answer.channels)
      any = true
    }
  }
  const channels = {}
  for (const name of body.channels) if (Object.prototype.hasOwnProperty.call(answered, name)) channels[name] = answered[name]
  return merged(pusher.config.getBaseURL() + pusher.config.prefixPath("/events"), any ? { channels } : {})
}

/** Sends `batch` in requests of at most `size` events. */
async function batches(pusher, batch, size) {
  const chunks = chunksOf(batch, size)
  const outcome = await settleAll(
    chunks.map((part) => post(pusher, { path: "/batch_events", body: { batch: part } })),
    "events",
    (i) => range(i * size, chunks[i].length)
  )
  if (outcome.err) {
    outcome.err.failedEvents = outcome.failed.flatMap((i) => chunks[i].map((_, j) => i * size + j))
    throw outcome.err
  }
  const { bodies } = outcome
  const any = bodies.some((b) => b && Array.isArray(b.batch))
  const all = any ? bodies.flatMap((b, i) => (b && Array.isArray(b.batch) ? b.batch : chunks[i].map(() => ({})))) : undefined
  return merged(pusher.config.getBaseURL() + pusher.config.prefixPath("/batch_events"), any ? { batch: all } : {})
}

module.exports = { fanOut, batches }
