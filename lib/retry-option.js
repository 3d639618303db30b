"use strict"
// The `retry` option as both builds read it, against the core's defaults
// (`native.defaultRetry()`: 3 attempts, 100 ms to 5 s, at most 100 attempts).

/** `retry: true` or `{ attempts, minDelayMs, maxDelayMs }`, or undefined; 0 ms delays allowed. */
function retryOf(retry, defaults) {
  if (!retry) return undefined
  const options = typeof retry === "object" ? retry : {}
  const number = (value, fallback) => {
    const n = Number(value)
    return value != null && Number.isFinite(n) && n >= 0 ? n : fallback
  }
  return {
    attempts: Math.min(defaults.maxAttempts, Math.max(1, Math.floor(number(options.attempts, defaults.attempts)))),
    minDelayMs: number(options.minDelayMs, defaults.minDelayMs),
    maxDelayMs: number(options.maxDelayMs, defaults.maxDelayMs),
  }
}

module.exports = { retryOf }
