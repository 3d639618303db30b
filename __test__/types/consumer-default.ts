// Type-checked by __test__/types.test.js: a CommonJS file importing the default export
// (module nodenext implies esModuleInterop), as the README shows for TypeScript.
import Pusher from "pusher-native"
import PusherRequired = require("pusher-native")

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(): T | void {}

// the same declarations as `import = require`
assertType<Equal<typeof Pusher, typeof PusherRequired>>()

const pusher = new Pusher({ appId: "1", key: "k", secret: "s", cluster: "eu" })
const options: Pusher.Options = { appId: "1", key: "k", secret: "s", host: "localhost", port: 8080 }
const other: PusherRequired = Pusher.forURL("http://k:s@localhost/apps/1", options)

async function run(): Promise<Pusher.Response> {
  const response = await pusher.trigger("my-channel", "my-event", { message: "hello" })
  await pusher.flush()
  return response
}

const token = new Pusher.Token("k", "s")
const auth: Pusher.ChannelAuthResponse = pusher.authorizeChannel("1.1", "private-x")
declare const err: unknown
const code = err instanceof Pusher.RequestError ? err.code : undefined

export { other, run, token, auth, code }
