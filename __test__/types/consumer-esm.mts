// Type-checked by __test__/types.test.js: an ES module (.mts), resolved through the
// package's "import" condition to index.d.mts.
import Pusher, { RequestError, WebHookError, Token, forURL, forCluster } from "pusher-native"
import type { Options, Response, VerifyWebhookResult, SigningToken, WebHook } from "pusher-native"
import type { ChannelsResult, ChannelResult, UsersResult, ChannelAttribute, ChannelInfo } from "pusher-native"
import { createRequire } from "node:module"

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(): T | void {}

// the named exports are the statics of the default export
assertType<Equal<typeof RequestError, typeof Pusher.RequestError>>()
assertType<Equal<typeof WebHookError, typeof Pusher.WebHookError>>()
assertType<Equal<typeof Token, typeof Pusher.Token>>()
assertType<Equal<Options, Pusher.Options>>()
assertType<Equal<Response, Pusher.Response>>()

const options: Options = { appId: "1", key: "k", secret: "s", cluster: "eu", retry: { attempts: 3 } }
const pusher = new Pusher(options)
const viaURL: Pusher = forURL("http://k:s@localhost/apps/1")
const viaCluster: Pusher = forCluster("eu", { appId: "1", key: "k", secret: "s" })

const response: Response = await pusher.trigger("my-channel", "my-event", { message: "hello" })
const body: unknown = await response.json()
await pusher.flush()

try {
  await pusher.get({ path: "/channels" })
} catch (err) {
  if (err instanceof RequestError) console.log(err.status, err.code, err.retryable, err.attempts)
  if (err instanceof WebHookError) console.log(err.signature)
}

// beyond pusher: typed queries
const channels: ChannelsResult = await pusher.channels({ filterByPrefix: "presence-", info: ["user_count"] })
const room: ChannelResult = await pusher.channel("presence-room", { info: "user_count" })
const members: UsersResult = await pusher.users("presence-room")
const attribute: ChannelAttribute = "subscription_count"
assertType<Equal<ChannelsResult, Pusher.ChannelsResult>>()
assertType<Equal<ChannelInfo, Pusher.ChannelInfo>>()

const token: SigningToken = new Token("k", "s")
const webhook: WebHook = pusher.webhook({ headers: {}, rawBody: "{}" })
const result: VerifyWebhookResult = pusher.verifyWebhook({ headers: {}, rawBody: "{}" })

// the CommonJS build from an ES module: the same class
const required: typeof Pusher = createRequire(import.meta.url)("pusher-native")

export { viaURL, viaCluster, body, token, webhook, result, required, channels, room, members, attribute }
