// pusher-native from TypeScript, as an ES module. In this folder:
//   npm install && npm run build && PUSHER_URL=https://KEY:SECRET@api-eu.pusher.com/apps/APP_ID npm start
import Pusher, { RequestError, Token } from "pusher-native"
import type { BatchEvent, ChannelAuthResponse, Response, VerifyWebhookResult } from "pusher-native"

const pusherUrl = process.env.PUSHER_URL ?? ""
if (!pusherUrl) throw new Error("set PUSHER_URL=https://KEY:SECRET@HOST/apps/APP_ID")

const pusher = Pusher.forURL(pusherUrl, {
  timeout: 5000,
  retry: { attempts: 2 },
  limits: true, // oversize events throw here, before any request
})

interface ChatMessage {
  from: string
  text: string
}

async function publish(message: ChatMessage): Promise<number> {
  const response: Response = await pusher.trigger("chat", "message", message, { info: "subscription_count" })
  const body: { channels?: Record<string, { subscription_count?: number }> } = await response.json()
  return body.channels?.chat?.subscription_count ?? 0
}

async function publishMany(messages: ChatMessage[]): Promise<number> {
  const batch: BatchEvent[] = messages.map((data) => ({ channel: "chat", name: "message", data }))
  const response = await pusher.triggerBatch(batch)
  return response.status
}

async function occupiedChannels(): Promise<string[]> {
  const response = await pusher.get({ path: "/channels", params: { filter_by_prefix: "presence-" } })
  const body: { channels: Record<string, unknown> } = await response.json()
  return Object.keys(body.channels)
}

function authorize(socketId: string, userId: string): ChannelAuthResponse {
  return pusher.authorizeChannel(socketId, "presence-chat", { user_id: userId, user_info: { name: userId } })
}

// What a webhook endpoint does with the raw request.
function receiveWebhook(headers: Record<string, string>, rawBody: string): VerifyWebhookResult {
  return pusher.verifyWebhook({ headers, rawBody }, { maxAgeMs: 60_000 })
}

// A webhook as Channels signs it: HMAC-SHA256 of the body with the app secret.
function signedWebhook(events: object[]): { headers: Record<string, string>; rawBody: string } {
  const url = new URL(pusherUrl)
  const token = new Token(decodeURIComponent(url.username), decodeURIComponent(url.password))
  const rawBody = JSON.stringify({ time_ms: Date.now(), events })
  const headers = { "content-type": "application/json", "x-pusher-key": token.key, "x-pusher-signature": token.sign(rawBody) }
  return { headers, rawBody }
}

try {
  const subscribers = await publish({ from: "ts", text: "hello" })
  const batchStatus = await publishMany([
    { from: "ts", text: "one" },
    { from: "ts", text: "two" },
  ])
  const channels = await occupiedChannels()
  const auth = authorize("1234.5678", "alice")

  const { headers, rawBody } = signedWebhook([{ name: "channel_occupied", channel: "chat" }])
  const webhook = receiveWebhook(headers, rawBody)
  const webhookEvents = webhook.valid ? webhook.events.map((e) => `${e.name}:${e.channel}`) : [webhook.reason]

  console.log(JSON.stringify({ subscribers, batchStatus, channels, auth, webhookEvents }))
} catch (err) {
  if (err instanceof RequestError) {
    console.error(`Channels request failed (${err.code}, retryable: ${err.retryable}): ${err.message}`)
    process.exitCode = 1
  } else {
    throw err
  }
} finally {
  await pusher.flush()
}
