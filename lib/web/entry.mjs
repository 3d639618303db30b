// The web build's entry (scripts/build-web.js bundles it into web/index.mjs): lib/'s
// facade with ./native, ./request and ./response swapped for lib/web/'s.
import Pusher from "../pusher.js"

export default Pusher
export const { forURL, forCluster, Token, RequestError, WebHookError } = Pusher
