"use strict"
// The server side of a Pusher Channels app with Express (v4): the endpoints pusher-js
// calls to authorize private and presence channels and to sign users in, and a
// webhook receiver.
//
//   PUSHER_URL=https://KEY:SECRET@api-eu.pusher.com/apps/APP_ID node examples/express-app.js
//
// pusher-js configuration to match:
//   new Pusher(KEY, {
//     cluster: "eu",
//     channelAuthorization: { endpoint: "/pusher/auth" },
//     userAuthentication: { endpoint: "/pusher/user-auth" },
//   })
//
// `createApp` builds the app without listening, so it can be mounted or tested.
const express = require("express")
const Pusher = require("pusher-native")

/**
 * @param {object} options
 * @param {Pusher} options.pusher
 * @param {(req: express.Request) => ({ id: string, name?: string } | null)} options.currentUser
 *   who is signed in to *your* app (your session or token check); null for nobody
 * @param {(user: { id: string }, channel: string) => boolean} [options.canAccess]
 *   whether that user may subscribe to a private or presence channel (default: yes)
 * @param {(event: Pusher.Event, time: Date) => void} [options.onEvent]
 *   called for each event of a verified webhook
 */
function createApp({ pusher, currentUser, canAccess = () => true, onEvent = () => {} }) {
  const app = express()
  // pusher-js posts `socket_id` and `channel_name` form-encoded (JSON with custom transports).
  const form = [express.urlencoded({ extended: false }), express.json()]

  // Private and presence channels: pusher-js calls this on subscribe.
  app.post("/pusher/auth", form, (req, res) => {
    const user = currentUser(req)
    if (!user) return res.status(403).json({ error: "not signed in" })
    const { socket_id: socketId, channel_name: channel } = req.body || {}
    if (typeof channel !== "string" || !/^(private|presence)-/.test(channel) || !canAccess(user, channel)) {
      return res.status(403).json({ error: "forbidden" })
    }
    try {
      const auth = channel.startsWith("presence-")
        ? pusher.authorizeChannel(socketId, channel, { user_id: user.id, user_info: { name: user.name } })
        : pusher.authorizeChannel(socketId, channel)
      res.json(auth)
    } catch (err) {
      // invalid socket id or channel name: thrown synchronously, before any signing
      res.status(400).json({ error: err.message })
    }
  })

  // User authentication (pusher-js `signin()`), needed for sendToUser and
  // terminateUserConnections.
  app.post("/pusher/user-auth", form, (req, res) => {
    const user = currentUser(req)
    if (!user) return res.status(403).json({ error: "not signed in" })
    try {
      res.json(pusher.authenticateUser((req.body || {}).socket_id, { id: user.id, user_info: { name: user.name } }))
    } catch (err) {
      res.status(400).json({ error: err.message })
    }
  })

  // Webhooks: the signature covers the exact bytes sent, so take the body raw (never
  // through express.json(), which would re-serialize it).
  app.post("/pusher/webhook", express.raw({ type: "application/json" }), (req, res) => {
    // verifyWebhook never throws; `req` fits as it is (headers plus the raw Buffer body).
    const result = pusher.verifyWebhook(req, { maxAgeMs: 5 * 60 * 1000 })
    if (!result.valid) return res.status(401).json({ error: result.reason })
    for (const event of result.events) onEvent(event, result.time)
    res.sendStatus(200)
  })

  // The same with pusher's own API, which takes `rawBody` as a string.
  app.post("/pusher/webhook-classic", express.text({ type: "application/json" }), (req, res) => {
    const webhook = pusher.webhook({ headers: req.headers, rawBody: req.body })
    if (!webhook.isValid()) return res.status(401).json({ error: "invalid webhook" })
    const time = webhook.getTime()
    for (const event of webhook.getEvents()) onEvent(event, time)
    res.sendStatus(200)
  })

  return app
}

module.exports = createApp
module.exports.createApp = createApp

if (require.main === module) {
  const pusher = Pusher.forURL(process.env.PUSHER_URL || "http://key:secret@127.0.0.1:6001/apps/1")
  const app = createApp({
    pusher,
    // Demo only: trusts a header. Use your real session here.
    currentUser: (req) => {
      const id = req.get("x-demo-user")
      return id ? { id, name: "Demo user " + id } : null
    },
    onEvent: (event, time) => console.log(time.toISOString(), event.name, event.channel),
  })
  const server = app.listen(Number(process.env.PORT) || 3000, () => {
    console.log(`listening on http://localhost:${server.address().port}`)
  })
}
