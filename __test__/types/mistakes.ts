// Planted mistakes: __test__/types.test.js expects exactly one error on each line
// marked with `// error TSxxxx` (that code among the line's errors), and none elsewhere.
import Pusher = require("pusher-native")

declare const req: { headers: Record<string, string>; rawBody: string }
const base = { appId: "1", key: "k", secret: "s" }
const pusher = new Pusher({ ...base, cluster: "eu" })

new Pusher() // error TS2554
new Pusher(base) // error TS2345
new Pusher({ ...base, appId: 1, cluster: "eu" }) // error TS2322
new Pusher({ ...base, cluster: "eu", port: true }) // error TS2322
new Pusher({ ...base, cluster: "eu", retry: { attempts: "3" } }) // error TS2322
new Pusher({ ...base, cluster: "eu", limits: "yes" }) // error TS2322
new Pusher({ ...base, cluster: "eu", ca: 42 }) // error TS2322
new Pusher({ ...base, cluster: "eu", proxy: new URL("http://proxy:3128") }) // error TS2322
Pusher.forURL() // error TS2554
Pusher.forCluster("eu", { key: "k", secret: "s" }) // error TS2345
pusher.trigger("channel", "event") // error TS2554
pusher.trigger("channel", "event", {}, { socket_id: 1302.1081607 }) // error TS2322
pusher.trigger(42, "event", {}) // error TS2345
pusher.triggerBatch([{ channel: "c", data: {} }]) // error TS2741
pusher.get({ path: "/channels", params: { auth_key: "k" } }) // error TS2322
pusher.get({ params: {} }) // error TS2345
pusher.post({ path: "/events" }) // error TS2345
pusher.authorizeChannel("1.1", "presence-x", { id: "u" }) // error TS2353
pusher.authenticateUser("1.1", { name: "no id" }) // error TS2345
pusher.createSignedQueryString({ path: "/apps/1/channels" }) // error TS2345
pusher.nonexistent() // error TS2339
const secret: string = pusher.channelSharedSecret("private-encrypted-x") // error TS2322
new Pusher.WebHook(new Pusher.Token("k", "s"), req) // error TS2339
const isResponse = {} instanceof Pusher.Response // error TS2339
new Pusher.Token("key only") // error TS2554
const badToken: Pusher.Token = { key: "k" } // error TS2741
pusher.webhook(req).isValid([{ key: "k" }]) // error TS2741
pusher.webhook({ headers: {} }) // error TS2345
new Pusher.RequestError() // error TS2554

async function misuse(err: InstanceType<typeof Pusher.RequestError>) {
  const flushed: number = await pusher.flush() // error TS2322
  const response = await pusher.trigger("c", "e", {})
  response.status.toUpperCase() // error TS2339
  response.headers.get("content-type").split(";") // error TS2531
  response.blob() // error TS2339
  const verified = pusher.verifyWebhook(req, { maxAgeMs: 1000 })
  verified.time.getTime() // error TS18048
  if (!verified.valid && verified.reason === "bad-signature") return // error TS2367
  pusher.verifyWebhook(req, { maxAgeMs: "5m" }) // error TS2322
  if (err.code === "ETIMEDOUT") return // error TS2367
  err.error.code // error TS18048
  if (err.error?.name === "AbortError" && err.error.type === "system") return // error TS2367
  const attempts: number = err.attempts // error TS2322
  const one = await pusher.channel("presence-room", { info: "user_count" })
  one.channels // error TS2339
  const count: number = one.user_count // error TS2322
  const list = await pusher.channels()
  list.channels["presence-room"].occupied // error TS2339
  const members = await pusher.users("presence-room")
  members.users[0].name // error TS2339
  pusher.channels({ info: ["bogus"] }) // error TS2322
  pusher.channels({ info: "user_count,bogus" }) // error TS2322
  pusher.channels({ filter_by_prefix: "presence-" }) // error TS2561
  pusher.channels({ filterByPrefix: 7 }) // error TS2322
  pusher.channels("presence-") // error TS2559
  pusher.channel() // error TS2554
  pusher.channel("c", { filterByPrefix: "presence-" }) // error TS2353
  pusher.users("presence-room", { info: "user_count" }) // error TS2554
  const ids: string[] = members.users // error TS2322
  return [flushed, secret, isResponse, badToken, count, ids]
}

export { misuse }
