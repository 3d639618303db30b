// pusher-native as an ES module:
//   import Pusher, { RequestError, WebHookError, Token } from "pusher-native"
// A thin wrapper over the CommonJS entry, so `import` and `require` share one Pusher
// (the same classes: `instanceof` works across both).
import Pusher from "./index.js"

export default Pusher
export const { forURL, forCluster, Token, RequestError, WebHookError } = Pusher
