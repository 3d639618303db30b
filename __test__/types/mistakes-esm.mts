// Planted mistakes in an ES module; see mistakes.ts.
import Pusher, { Token } from "pusher-native"
import { WebHook, Missing } from "pusher-native" // error TS2614
import type { ChannelResult } from "pusher-native"

new WebHook() // error TS2693

const token = new Token("k", "s")
token.sign(42) // error TS2345
const pusher: Pusher = new Pusher({ appId: "1", key: "k", secret: "s" }) // error TS2345

const room: ChannelResult = await pusher.users("presence-room") // error TS2741

export { token, pusher, Missing, room }
