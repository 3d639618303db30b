"use strict"
// RequestError and WebHookError: `pusher`'s constructor arguments and fields, in the
// same enumerable order (name, [stack,] message, url, error, status, body), but real
// subclasses of Error with a meaningful stack. FetchError and AbortError: what
// node-fetch v2 hands `pusher` as `RequestError.error`, with the same enumerable fields.

// The stack's headline takes a string message only: upstream never converts the
// message, so a Symbol or an object whose toString throws must not throw here.
const headline = (message) => (typeof message === "string" ? message : undefined)

// Whether `stack` is an own enumerable field of `pusher`'s errors depends on the engine:
// `pusher` assigns `this.stack = …` to an object whose prototype is `new Error()`. Where
// that prototype's `stack` is a data property (Node 20), the assignment creates an own
// enumerable `stack`; where it is an accessor (Node 22 and later), the accessor's setter
// keeps the value out of sight and `stack` is not among the keys. Found out once, from a
// probe built that way, so `Object.keys`, `{...err}` and `JSON.stringify(err)` match
// `pusher` on the Node that runs them.
const STACK_IS_A_FIELD = (() => {
  function Probe() {
    this.stack = ""
  }
  Probe.prototype = new Error()
  return Object.prototype.propertyIsEnumerable.call(new Probe(), "stack")
})()

function ownFields(target, fields) {
  const stack = target.stack // formatted now, while the headline still reads the message
  // Otherwise the engine's own, non-enumerable `stack` stays (so Node still prints an
  // unhandled one with its stack and fields).
  if (STACK_IS_A_FIELD) delete target.stack
  delete target.message
  target.name = target.constructor.prototype.name
  target.stack = stack
  Object.assign(target, fields)
}

class RequestError extends Error {
  /**
   * @param {string} message
   * @param {string} url the request URL (it carries the signature, never the secret)
   * @param {Error} [error] the network failure, if any
   * @param {number} [status] the response status, if one arrived
   * @param {string} [body] the response body, if one arrived
   */
  constructor(message, url, error, status, body) {
    super(headline(message), error === undefined ? undefined : { cause: error })
    ownFields(this, { message, url, error, status, body })
  }
}
RequestError.prototype.name = "PusherRequestError"

class WebHookError extends Error {
  constructor(message, contentType, body, signature) {
    super(headline(message))
    ownFields(this, { message, contentType, body, signature })
  }
}
WebHookError.prototype.name = "PusherWebHookError"

// node-fetch v2's errors carry `message` as an own enumerable field (so a logger's
// `JSON.stringify` shows the reason) and `name` on the prototype: FetchError's fields are
// message, type, then errno and code for a system error; AbortError's are type, message.
// Ours may add `code` (the OS-style code) where node-fetch has none.

class FetchError extends Error {
  /**
   * @param {string} message
   * @param {string} type node-fetch's type: "system", "max-redirect", "invalid-json", …
   * @param {string} [code] the OS-style code (ECONNREFUSED, …) of a system error
   */
  constructor(message, type, code) {
    super()
    this.message = message
    this.type = type
    if (code !== undefined) {
      if (type === "system") this.errno = code
      this.code = code
    }
  }
}
FetchError.prototype.name = "FetchError"

class AbortError extends Error {
  constructor(message, code) {
    super()
    this.type = "aborted"
    this.message = message
    if (code !== undefined) this.code = code
  }
}
AbortError.prototype.name = "AbortError"

module.exports = { RequestError, WebHookError, FetchError, AbortError }
