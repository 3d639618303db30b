"use strict"
// An AWS Lambda handler (API Gateway proxy event) that publishes to Pusher Channels.
//
// Lambda freezes the process as soon as the handler's promise settles: a request still
// in flight then is delayed to the next invocation or lost. So the handler returns only
// once every event has been delivered: `await` each trigger whose outcome matters, and
// `await pusher.flush()` for the ones fired without awaiting.
//
// Environment: PUSHER_URL=https://KEY:SECRET@api-eu.pusher.com/apps/APP_ID
const Pusher = require("pusher-native")

// Created once per container and reused by warm invocations (keep-alive connections).
let pusher
function client() {
  if (!pusher) {
    pusher = Pusher.forURL(process.env.PUSHER_URL, {
      timeout: 5000,
      // GETs and never-sent POSTs are retried; see the README on why delivered POSTs are not.
      retry: { attempts: 3, minDelayMs: 100, maxDelayMs: 1000 },
    })
  }
  return pusher
}

exports.handler = async (event) => {
  let order
  try {
    order = JSON.parse(event.body || "{}")
  } catch (e) {
    return { statusCode: 400, body: JSON.stringify({ error: "body must be JSON" }) }
  }
  if (typeof order.id !== "string") return { statusCode: 400, body: JSON.stringify({ error: "id required" }) }
  const pusher = client()

  try {
    // 1. Awaited: the response says Channels accepted the event.
    await pusher.trigger(`private-order-${order.id}`, "order-updated", { id: order.id, status: order.status })

    // 2. Fire and forget: side notifications nobody waits on. Each needs its own
    //    .catch (an unawaited rejection is an unhandled rejection)...
    for (const watcher of order.watchers || []) {
      pusher
        .sendToUser(String(watcher), "order-updated", { id: order.id })
        .catch((err) => console.error("notify %s failed: %s", watcher, err.message))
    }
    pusher.trigger("dashboard", "order-count", { delta: 1 }).catch((err) => console.error("dashboard:", err.message))

    // ...and must still be delivered before the function is frozen.
    await pusher.flush()
    return { statusCode: 200, body: JSON.stringify({ delivered: true }) }
  } catch (err) {
    if (err instanceof Pusher.RequestError) {
      // code: PUSHER_HTTP | PUSHER_TIMEOUT | PUSHER_NETWORK | PUSHER_TLS
      await pusher.flush()
      return {
        statusCode: 502,
        body: JSON.stringify({ error: err.message, code: err.code, retryable: err.retryable, status: err.status }),
      }
    }
    throw err
  }
}
