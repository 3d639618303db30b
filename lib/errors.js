"use strict"
// RequestError and WebHookError: `pusher`'s constructor arguments and fields, in the
// same enumerable order (name, stack, message, url, error, status, body), but real
// subclasses of Error with a meaningful stack.

// The stack's headline takes a string message only: upstream never converts the
// message, so a Symbol or an object whose toString throws must not throw here.
const headline = (message) => (typeof message === "string" ? message : undefined)

function ownFields(target, fields) {
  const stack = target.stack
  delete target.stack
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

module.exports = { RequestError, WebHookError }
