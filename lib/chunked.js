"use strict"
// The opt-in `autoChunk`: batches over the batch limit and triggers to more channels
// than one request takes are split into concurrent requests (each through
// `pusher.post`, so stubs still see them), and the answers merged in caller order.

const { RequestError } = require("./errors")
const Response = require("./response")

function chunksOf(items, size) {
  const chunks = []
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size))
  return chunks
}

function merged(url, body) {
  return new Response({ url, status: 200, headers: "content-type\napplication/json\n", text: JSON.stringify(body), attempts: 1 })
}

async function settleAll(requests, describe) {
  const results = await Promise.allSettled(requests)
  const failed = results.map((r, i) => (r.status === "rejected" ? i : -1)).filter((i) => i >= 0)
  if (failed.length > 0) {
    const first = results[failed[0]].reason
    const err = new RequestError(
      `${failed.length} of ${results.length} requests failed; not accepted: ${failed.map(describe).join("; ")}`,
      first && first.url,
      first,
      first && first.status,
      first && first.body
    )
    err.code = first && first.code
    err.retryable = Boolean(first && first.retryable)
    err.failedChunks = failed
    throw err
  }
  return Promise.all(results.map((r) => r.value.json().catch(() => ({}))))
}

/** Sends one event to `body.channels` in requests of at most `size` channels. */
async function fanOut(pusher, body, size) {
  const chunks = chunksOf(body.channels, size)
  const bodies = await settleAll(
    chunks.map((channels) => pusher.post({ path: "/events", body: { ...body, channels } })),
    (i) => `channels ${i * size}-${i * size + chunks[i].length - 1}`
  )
  const channels = {}
  let any = false
  for (const answer of bodies) {
    if (answer && answer.channels) {
      Object.assign(channels, answer.channels)
      any = true
    }
  }
  return merged(pusher.config.getBaseURL() + pusher.config.prefixPath("/events"), any ? { channels } : {})
}

/** Sends `batch` in requests of at most `size` events. */
async function batches(pusher, batch, size) {
  const chunks = chunksOf(batch, size)
  const bodies = await settleAll(
    chunks.map((part) => pusher.post({ path: "/batch_events", body: { batch: part } })),
    (i) => `events ${i * size}-${i * size + chunks[i].length - 1}`
  )
  const any = bodies.some((b) => b && Array.isArray(b.batch))
  const all = any ? bodies.flatMap((b, i) => (b && Array.isArray(b.batch) ? b.batch : chunks[i].map(() => ({})))) : undefined
  return merged(pusher.config.getBaseURL() + pusher.config.prefixPath("/batch_events"), any ? { batch: all } : {})
}

module.exports = { fanOut, batches }
