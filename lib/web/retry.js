"use strict"
// The web build's `retry` option: the Rust core's policy (pusher_core::retry), for the
// fetch transport. Whether a failure may be retried is decided where it happens
// (lib/web/request.js sets `retryable` as the core does); this decides when, if at all.

const native = require("./native.mjs")
const { retryOf } = require("../retry-option")

const RETRY = native.defaultRetry()

/** `retry: true` or `{ attempts, minDelayMs, maxDelayMs }`, or undefined. */
const policyOf = (retry) => retryOf(retry, RETRY)

const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/

/** `Retry-After` in ms from now: delta-seconds or an IMF-fixdate (a past date is 0); else undefined. */
function retryAfterMs(value) {
  if (typeof value !== "string") return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  if (!IMF_FIXDATE.test(text)) return undefined
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

/**
 * The wait before attempt `attempt + 1` (ms), or undefined to stop: exponential from
 * minDelayMs, capped at maxDelayMs, "equal jitter" (half fixed, half random); never
 * sooner than a `Retry-After`, and no retry when that asks for more than maxDelayMs.
 */
function nextDelay(policy, attempt, retryAfter) {
  if (attempt >= policy.attempts) return undefined
  const capped = Math.min(policy.minDelayMs * 2 ** Math.min(attempt - 1, 16), policy.maxDelayMs)
  const backoff = capped * (0.5 + Math.random() / 2)
  const wait = retryAfterMs(retryAfter)
  if (wait === undefined) return backoff
  return wait > policy.maxDelayMs ? undefined : Math.max(wait, backoff)
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(signal.reason)
    const done = () => {
      if (signal) signal.removeEventListener("abort", abort)
      resolve()
    }
    const timer = setTimeout(done, ms)
    const abort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    if (signal) signal.addEventListener("abort", abort, { once: true })
  })
}

module.exports = { policyOf, nextDelay, retryAfterMs, sleep }
