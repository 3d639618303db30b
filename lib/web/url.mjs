// `url.parse` for the web build's forURL: Node's legacy parser where the runtime has it,
// so odd connection strings read exactly as in the native build; elsewhere the WHATWG
// URL's reading (the README lists the difference; plain URLs never reach here).
import { builtin } from "./builtins.mjs"

const node = builtin("url")

function whatwgParse(input) {
  let url
  try {
    url = new URL(String(input).trim())
  } catch (e) {
    return { protocol: null, hostname: null, port: null, pathname: null, auth: null }
  }
  const auth = url.username || url.password ? decodeURIComponent(url.username + ":" + url.password) : null
  return { protocol: url.protocol, hostname: url.hostname, port: url.port || null, pathname: url.pathname, auth }
}

export const parse = node ? node.parse : whatwgParse
