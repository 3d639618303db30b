// Type-checked (never run) by __test__/types.test.js: every API used the way pusher's
// README and TypeScript example use it, plus what pusher-native adds. A CommonJS file
// (the package has no "type"), importing with `import … = require`.
import { Agent } from "https"
import * as http from "http"
import diagnostics_channel = require("node:diagnostics_channel")
import Pusher = require("pusher-native")

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(): T | void {}

declare const req: http.IncomingMessage & { rawBody: string }
declare const socketId: string

// ---- configuration (README "Configuration") ----

const pusher = new Pusher({
  appId: "APP_ID",
  key: "APP_KEY",
  secret: "SECRET_KEY",
  useTLS: true,
  cluster: "CLUSTER",
  host: "HOST",
  port: 443,
  encryptionMasterKeyBase64: Buffer.from("01234567890123456789012345678901").toString("base64"),
})
new Pusher({ appId: "1", key: "k", secret: "s", host: "localhost", port: "8080" })
new Pusher({ appId: "1", key: "k", secret: "s", cluster: "eu", encrypted: true })
new Pusher({ appId: "1", key: "k", secret: "s", cluster: "eu", encryptionMasterKey: "01234567890123456789012345678901" })

const byCluster: Pusher = Pusher.forCluster("CLUSTER", {
  appId: "APP_ID",
  key: "APP_KEY",
  secret: "SECRET_KEY",
  useTLS: false,
  port: 80,
  encryptionMasterKeyBase64: "ENCRYPTION_MASTER_KEY",
})
const byURL: Pusher = Pusher.forURL("SCHEME://APP_KEY:SECRET_KEY@HOST:PORT/apps/APP_ID")

// pusher's examples/typescript/main.ts
const fromEnv = Pusher.forURL(process.env.PUSHER_URL ?? "http://k:s@localhost/apps/1", {
  encryptionMasterKeyBase64: Buffer.from("01234567890123456789012345678901").toString("base64"),
  agent: new Agent({ keepAlive: true }),
})

// "Additional options"
new Pusher({
  appId: "1",
  key: "k",
  secret: "s",
  cluster: "eu",
  proxy: "http://proxy:3128",
  timeout: 5000,
  agent: new http.Agent({ keepAlive: true }),
})

// beyond pusher, all opt-in
const tuned = new Pusher({
  appId: "1",
  key: "k",
  secret: "s",
  host: "127.0.0.1",
  port: 8443,
  scheme: "https",
  ca: [Buffer.from("-----BEGIN CERTIFICATE-----"), "-----BEGIN CERTIFICATE-----"],
  retry: { attempts: 3, minDelayMs: 50, maxDelayMs: 1000 },
  limits: { eventBytes: 20480, batchSize: 20 },
  autoChunk: true,
})
new Pusher({ appId: "1", key: "k", secret: "s", cluster: "eu", ca: "pem", limits: true, retry: {} })

const options: Pusher.Options = { appId: "1", key: "k", secret: "s", cluster: "eu" }
const hostOptions: Pusher.HostOptions = { appId: "1", key: "k", secret: "s", host: "h", port: "80" }
const clusterOptions: Pusher.ClusterOptions = { appId: "1", key: "k", secret: "s", cluster: "mt1" }
const baseOptions: Pusher.BaseOptions = { appId: "1", key: "k", secret: "s" }
const retry: Pusher.RetryOptions = { attempts: 2 }
const limits: Pusher.LimitsOptions = { channels: 50 }
new Pusher(options)
new Pusher(hostOptions)
Pusher.forCluster("eu", baseOptions)
Pusher.forURL("http://k:s@h/apps/1", clusterOptions)
Pusher.forURL("http://k:s@h/apps/1", { retry, limits })

// ---- publishing (README "Publishing events") ----

async function publishing(channel: string, event: string, data: unknown) {
  pusher.trigger("channel-1", "test_event", { message: "hello world" })
  pusher.trigger(["channel-1", "channel-2"], "test_event", { message: "hello world" })
  pusher.trigger(channel, event, data, { socket_id: "1302.1081607" })

  const events: Array<Pusher.BatchEvent> = [
    { channel: "channel-1", name: "test-event-1", data: { message: "hello world" } },
    { channel: "channel-2", name: "test-event-2", data: { message: "hello another world" } },
  ]
  pusher.triggerBatch(events)
  pusher.triggerBatch([{ channel: channel, name: event, data: data, socket_id: "1302.1081607" }])
  pusher.sendToUser("user-1", "test_event", { message: "hello world" })
  pusher.terminateUserConnections("user-1")

  pusher
    .trigger("presence-my-channel", "event", "test", { info: "user_count,subscription_count" })
    .then((response) => {
      if (response.status !== 200) {
        throw Error("unexpected status")
      }
      return response.json()
    })
    .then((body) => {
      const channelsInfo = body.channels
      return channelsInfo
    })
    .catch((error) => {
      console.error(error)
    })

  const batch: Pusher.BatchEvent[] = [
    { channel: "my-channel", name: "event", data: "test1", info: "subscription_count" },
    { channel: "presence-my-channel", name: "event", data: "test2", info: "user_count,subscription_count" },
  ]
  pusher
    .triggerBatch(batch)
    .then((response) => {
      if (response.status !== 200) {
        throw Error("unexpected status")
      }
      return response.json()
    })
    .then((body) => {
      body.batch.forEach((attributes: any, i: number) => {
        process.stdout.write(`channel: ${batch[i].channel}, subscription_count: ${attributes.subscription_count}`)
      })
    })
    .catch((error) => {
      console.error(error)
    })

  // fire and forget, then wait for all of them (beyond pusher)
  void pusher.trigger("c", "e", {})
  const flushed = await pusher.flush()
  assertType<Equal<typeof flushed, void>>()
}

// ---- authorization (README "Authenticating users", "Private/Presence channel") ----

const userAuth: Pusher.UserAuthResponse = pusher.authenticateUser(socketId, {
  id: "unique_user_id",
  name: "John Doe",
  image: "https://...",
})
const userAuthJson: { auth: string; user_data: string } = userAuth
const privateAuth: Pusher.ChannelAuthResponse = pusher.authorizeChannel(socketId, "private-channel")
const channelData: Pusher.PresenceChannelData = {
  user_id: "unique_user_id",
  user_info: { name: "Phil Leggetter", twitter_id: "@leggetter" },
}
const presenceAuth = pusher.authorizeChannel(socketId, "presence-channel", channelData)
const presenceChannelData: string | undefined = presenceAuth.channel_data
const sharedSecretB64: string | undefined = pusher.authorizeChannel(socketId, "private-encrypted-x").shared_secret
const authResponse: Pusher.AuthResponse = pusher.authenticate("123.456", "private-encrypted-example", {
  user_id: "foo",
  user_info: { bar: 42 },
})
const sharedSecret: Buffer = pusher.channelSharedSecret("private-encrypted-x")

// ---- application state (README "Application state") ----

async function state() {
  pusher
    .get({ path: "/channels", params: { filter_by_prefix: "presence-" } })
    .then((response: Pusher.Response) => {
      console.log(`received response with status ${response.status}`)
      return response.text().then((body) => {
        console.log(`and body ${body}`)
      })
    })
    .catch((err) => {
      console.log(`received error ${err}`)
    })
  const params: Pusher.Params = { info: "user_count", filter_by_prefix: "presence-" }
  const getOptions: Pusher.GetOptions = { path: "/channels/presence-x", params }
  await pusher.get(getOptions)
  await pusher.get({ path: "/channels/presence-x/users" })
  const postOptions: Pusher.PostOptions = { path: "/events", body: '{"name":"e"}' }
  await pusher.post(postOptions)
  await pusher.post({ path: "/events", body: { name: "e", channels: ["c"], data: "{}" } })
}

// beyond pusher: typed queries
async function queries(prefix: string, name: string) {
  const list: Pusher.ChannelsResult = await pusher.channels({ filterByPrefix: "presence-", info: ["user_count"] })
  for (const [channel, counts] of Object.entries(list.channels)) {
    const users: number | undefined = counts.user_count
    console.log(channel.toUpperCase(), users?.toFixed(0), counts.subscription_count)
  }
  await pusher.channels()
  await pusher.channels({})
  await pusher.channels({ filterByPrefix: prefix })
  await pusher.channels({ info: "subscription_count" })
  const one = await pusher.channel(name, { info: "user_count,subscription_count" })
  assertType<Equal<typeof one, Pusher.ChannelResult>>()
  const occupied: boolean = one.occupied
  const counts: Pusher.ChannelCounts = one
  await pusher.channel(name)
  await pusher.channel(name, { info: ["subscription_count", "user_count"] })
  await pusher.channel(name, { info: "subscription_count,user_count" })
  const attributes = ["user_count"] as const
  await pusher.channel(name, { info: attributes })
  const info: Pusher.ChannelInfo = ["subscription_count"]
  const query: Pusher.ChannelQuery = { info }
  const channelsQuery: Pusher.ChannelsQuery = { filterByPrefix: "presence-", info: "user_count" }
  await pusher.channel(name, query)
  await pusher.channels(channelsQuery)
  const members: Pusher.UsersResult = await pusher.users("presence-room")
  const ids: string[] = members.users.map((user: Pusher.PresenceUser) => user.id)
  const attribute: Pusher.ChannelAttribute = "user_count"
  return [occupied, counts, ids, attribute]
}

// ---- responses (node-fetch v2's Response) ----

async function responses() {
  const response = await pusher.trigger("c", "e", {})
  const status: number = response.status
  const statusText: string = response.statusText
  const ok: boolean = response.ok
  const url: string = response.url
  const redirected: boolean = response.redirected
  const used: boolean = response.bodyUsed
  const contentType: string | null = response.headers.get("content-type")
  const has: boolean = response.headers.has("content-length")
  const raw: Record<string, string[]> = response.headers.raw()
  response.headers.forEach((value, name) => console.log(name.toUpperCase(), value.toLowerCase()))
  for (const [name, value] of response.headers) console.log(name, value)
  const names: string[] = [...response.headers.keys()]
  const values: string[] = Array.from(response.headers.values())
  const entries: Array<[string, string]> = [...response.headers.entries()]
  const copy: Pusher.Response = response.clone()
  const text: string = await response.text()
  const json = await copy.json()
  const buffer: Buffer = await response.clone().buffer()
  const arrayBuffer: ArrayBuffer = await response.clone().arrayBuffer()
  response.body.pipe(process.stdout)
  return [status, statusText, ok, url, redirected, used, contentType, has, raw, names, values, entries, text, json, buffer, arrayBuffer]
}

// ---- webhooks (README "WebHooks") ----

const webhook: Pusher.WebHook = pusher.webhook(req)
pusher.webhook({ headers: req.headers, rawBody: req.rawBody })
const valid: boolean = webhook.isValid()
webhook.isValid([
  { key: "x1", secret: "y1" },
  { key: "x2", secret: "y2" },
])
webhook.isValid({ key: "x1", secret: "y1" })
const contentTypeValid: boolean = webhook.isContentTypeValid()
const bodyValid: boolean = webhook.isBodyValid()
const webhookData: Pusher.WebHookData = webhook.getData()
const timeMs: number = webhookData.time_ms
const webhookEvents: Array<Pusher.Event> = webhook.getEvents()
const firstEvent: { name: string; channel: string } = webhookEvents[0]
const webhookTime: Date = webhook.getTime()

// beyond pusher: never throws, narrows on `valid`
const verified = pusher.verifyWebhook(req, { maxAgeMs: 5 * 60 * 1000, extraTokens: [{ key: "x1", secret: "y1" }] })
if (verified.valid) {
  const time: Date = verified.time
  const events: Pusher.Event[] = verified.events
  assertType<Equal<typeof verified.reason, undefined>>()
} else {
  const reason: Pusher.VerifyWebhookReason = verified.reason
  assertType<Equal<typeof verified.time, undefined>>()
}
pusher.verifyWebhook({ headers: { "Content-Type": "application/json" }, body: Buffer.from("{}") })
pusher.verifyWebhook({ headers: new Headers({ "content-type": "application/json" }), rawBody: "{}" }, { extraTokens: { key: "k", secret: "s" } })
const verifyResult: Pusher.VerifyWebhookResult = pusher.verifyWebhook(req)

// ---- signatures (README "Generating REST API signatures") ----

const query: string = pusher.createSignedQueryString({
  method: "POST",
  path: "/apps/3/events",
  body: '{"name":"foo","channel":"donuts","data":"2-for-1"}',
  params: {},
})
const signedOptions: Pusher.SignedQueryStringOptions = { method: "GET", path: "/apps/1/channels" }
pusher.createSignedQueryString(signedOptions)

// ---- tokens ----

const token = new Pusher.Token("key", "secret")
const signature: string = token.sign("string")
const verifiedSignature: boolean = token.verify("string", signature)
token.sign(Buffer.from("bytes"))
const tokenKey: string = token.key
const tokenSecret: string = token.secret
const plainToken: Pusher.Token = { key: "x1", secret: "y1" } // pusher's Token type: a plain shape
const signing: Pusher.SigningToken = token
webhook.isValid([plainToken, token, signing])
declare const something: unknown
if (something instanceof Pusher.Token) {
  something.sign("narrowed to a SigningToken")
}
class RotatingToken extends Pusher.Token {
  rotated = true
}
new RotatingToken("k", "s").verify("m", "sig")

// ---- errors ----

async function errors() {
  try {
    await pusher.trigger("c", "e", {})
  } catch (err) {
    if (err instanceof Pusher.RequestError) {
      const url: string = err.url
      const status: number | undefined = err.status
      const body: string | undefined = err.body
      const cause: Error | undefined = err.error
      const causeCode: string | undefined = err.error?.code
      if (err.error?.name === "FetchError") {
        const type: string = err.error.type
        const errno: string | undefined = err.error.errno
        console.log(type, errno)
      } else if (err.error?.name === "AbortError") {
        const aborted: "aborted" = err.error.type
        console.log(aborted)
      }
      if (err.error && "type" in err.error) console.log(err.error.type, err.error.code)
      console.log(causeCode)
      const message: string = err.message
      const stack: string | undefined = err.stack
      const code: Pusher.RequestErrorCode | undefined = err.code
      if (err.code === "PUSHER_TIMEOUT" || err.code === "PUSHER_TLS") console.log("timeout or TLS")
      const retryable: boolean | undefined = err.retryable
      const attempts: number | undefined = err.attempts
      const failedChunks: number[] | undefined = err.failedChunks
      const failedChannels: string[] | undefined = err.failedChannels
      const failedEvents: number[] | undefined = err.failedEvents
      const chunkErrors: unknown[] | undefined = err.errors
      return [url, status, body, cause, message, stack, code, retryable, attempts, failedChunks, failedChannels, failedEvents, chunkErrors]
    }
    if (err instanceof Pusher.WebHookError) {
      return [err.contentType, err.body, err.signature, err.message]
    }
    throw err
  }
  return []
}
const requestError: Error = new Pusher.RequestError("Unexpected status code 500", "http://h/apps/1/events", new Error("x"), 500, "body")
new Pusher.RequestError("Unexpected status code 400", "http://h/apps/1/events", undefined, 400)
const webHookError: Error = new Pusher.WebHookError("Invalid WebHook body", "application/json", "{}", "sig")

// ---- diagnostics_channel (beyond pusher) ----

diagnostics_channel.subscribe("pusher-native:request", (message) => {
  const m = message as Pusher.RequestDiagnosticsMessage
  console.log(m.method, m.path, m.status, m.durationMs.toFixed(1), m.attempts, m.error?.message)
})

export {
  byCluster, byURL, fromEnv, tuned, publishing, userAuthJson, privateAuth, presenceChannelData, sharedSecretB64,
  authResponse, sharedSecret, state, queries, responses, valid, contentTypeValid, bodyValid, timeMs, firstEvent, webhookTime,
  verifyResult, query, verifiedSignature, tokenKey, tokenSecret, errors, requestError, webHookError,
}
