"use strict"
// A reply without a response, or with status >= 400, as the `RequestError` upstream
// rejects with: node-fetch's error as its cause, plus our code, retryable and attempts.

const { RequestError, FetchError, AbortError } = require("./errors")
const Response = require("./response")

const FAILURE = {
  timeout: { type: "aborted", code: "PUSHER_TIMEOUT" },
  network: { type: "system", code: "PUSHER_NETWORK" },
  tls: { type: "system", code: "PUSHER_TLS" },
  redirect: { type: "max-redirect", code: "PUSHER_NETWORK" },
  config: { type: "system", code: "PUSHER_NETWORK" },
  "max-size": { type: "max-size", code: "PUSHER_NETWORK" },
}

function causeOf(reply) {
  if (reply.errorKind === "invalid-url") {
    const error = new TypeError(reply.errorMessage)
    error.code = reply.errorCode
    return error
  }
  const { type } = FAILURE[reply.errorKind] || FAILURE.network
  if (type === "aborted") return new AbortError(reply.errorMessage, reply.errorCode)
  return new FetchError(reply.errorMessage, type, reply.errorCode)
}

function failure(reply) {
  let err
  if (reply.status === 0) {
    err = new RequestError("Request failed with an error", reply.url, causeOf(reply))
    err.code = (FAILURE[reply.errorKind] || FAILURE.network).code
  } else {
    const { textOf } = Response
    err = new RequestError("Unexpected status code " + reply.status, reply.url, undefined, reply.status, textOf(reply))
    err.code = "PUSHER_HTTP"
  }
  // Decided in Rust by the retry policy's own rule: safe (a POST only when nothing can
  // have been delivered) and worth another attempt.
  err.retryable = reply.retryable === true
  err.attempts = reply.attempts
  return err
}

module.exports = { failure }
