"use strict"
// In-flight tracking for flush().
// Counted inside the settle step, so the promise handed to the caller stays
// untouched: an unawaited failure is still an unhandled rejection, as upstream.
// Requests are counted by generation: each flush() closes the current one and waits
// for it (and older ones) only, so a steady stream of new requests cannot hold it off.

const inflight = new WeakMap()

/** Counts a request in, in the open (last) generation. */
function started(config) {
  let state = inflight.get(config)
  if (state === undefined) inflight.set(config, (state = { base: 0, counts: [0], waiters: [] }))
  state.counts[state.counts.length - 1]++
  return state
}

const openGeneration = (state) => state.base + state.counts.length - 1

function finished(state, generation) {
  state.counts[generation - state.base]--
  // Finished generations leave from the front; the flushes waiting on them resolve.
  while (state.counts.length > 1 && state.counts[0] === 0) {
    state.counts.shift()
    state.base++
  }
  while (state.waiters.length > 0 && state.waiters[0].generation < state.base) {
    state.waiters.shift().resolve()
  }
}

function flush(config) {
  const state = inflight.get(config)
  if (state === undefined || state.counts.every((n) => n === 0)) return Promise.resolve()
  const generation = openGeneration(state)
  state.counts.push(0)
  return new Promise((resolve) => state.waiters.push({ generation, resolve }))
}

module.exports = { started, openGeneration, finished, flush }
