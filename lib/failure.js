"use strict"
// A reply without a response, or with status >= 400, as the `RequestError` upstream
// rejects with: node-fetch's error as its cause, plus our code, retryable and attempts.

const { RequestError } = require("./errors")
const Response = require("./response")

const FAILURE = {
  timeout: { name: "AbortError", type: "aborted", code: "PUSHER_TIMEOUT" },
  network: { name: "FetchError", type: "system", code: "PUSHER_NETWORK" },
  tls: { name: "FetchError", type: "system", code: "PUSHER_TLS" },
  redirect: { name: "FetchError", type: "max-redirect", code: "PUSHER_NETWORK" },
  config: { name: "FetchError", type: "system", code: "PUSHER_NETWORK" },
}

function causeOf(reply) {
  if (reply.errorKind === "invalid-url") {
    const error = new TypeError(reply.errorMessage)
    error.code = reply.errorCode
    return error
  }
  const kind = FAILURE[reply.errorKind] || FAILURE.network
  const error = new Error(reply.errorMessage)
  error.name = kind.name
  error.type = kind.type
  error.code = reply.errorCode
  if (kind.type === "system") error.errno = reply.errorCode
  return error
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
