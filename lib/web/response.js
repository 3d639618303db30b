"use strict"
// The web build's stand-in for lib/response.js, used where lib/ makes a Response itself
// (autoChunk's merged answer): a platform Response over the same reply fields.

function MergedResponse(reply) {
  const headers = new Headers()
  const parts = (reply.headers || "").split("\n")
  for (let i = 0; i + 1 < parts.length; i += 2) headers.append(parts[i], parts[i + 1])
  const response = new Response(reply.text, { status: reply.status, headers })
  // A constructed Response has an empty `url`; this one names the endpoint it merges.
  Object.defineProperty(response, "url", { value: reply.url, enumerable: true })
  return response
}

const textOf = (reply) => (reply.text != null ? reply.text : "")

module.exports = MergedResponse
module.exports.textOf = textOf
