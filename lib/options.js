"use strict"
// The opt-in options (beyond `pusher`) that are checked when a `Pusher` is constructed,
// and the codes of the errors this library throws itself (README, "Error codes"):
// - PUSHER_INVALID_OPTION: an option or setting that cannot be used as given (`ca`,
//   `proxy`, an `agent`'s proxy, `PUSHER_NATIVE_TRANSPORT`, `verifyWebhook`'s `maxAgeMs`);
// - PUSHER_LIMIT_EXCEEDED: a `limits` check refused an event, a batch or a channel list;
// - PUSHER_INVALID_QUERY: the typed queries (`channels()`, `channel()`, `users()`) were
//   asked something the API would refuse.
// `pusher`'s own checks keep throwing its plain Errors, without a code.

const native = require("./native")

/** An Error (or `Type`, e.g. TypeError) carrying `code`. */
function codedError(code, message, Type = Error) {
  const error = new Type(message)
  error.code = code
  return error
}

const invalidOption = (message, Type = TypeError) => codedError("PUSHER_INVALID_OPTION", message, Type)

// `pusher` ignores `proxy`; its README shows the placeholder `proxy: "HTTP_PROXY_URL"`,
// which must keep working. Anything else that is set is meant as a proxy: used when it
// is an http(s) URL, refused otherwise (never silently sent direct).
const PLACEHOLDER = "HTTP_PROXY_URL"

/** Userinfo (a proxy password) never appears in a message. */
function shownUrl(text) {
  try {
    const url = new URL(text)
    if (url.username || url.password) {
      url.username = "***"
      url.password = ""
    }
    return url.href
  } catch (e) {
    return text.replace(/\/\/[^@/]*@/, "//***@")
  }
}

/** The proxy URL to use (href), or undefined for none; throws for an unusable one. */
function proxyOption(value) {
  if (!value || value === PLACEHOLDER) return undefined
  const text = value instanceof URL ? value.href : typeof value === "string" ? value.trim() : undefined
  if (text === undefined) {
    throw invalidOption(`Invalid proxy: expected an "http://host:port" URL string, got ${typeof value}`)
  }
  let url
  try {
    url = new URL(text)
  } catch (e) {
    url = undefined
  }
  if (url === undefined || !/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw invalidOption(`Invalid proxy "${shownUrl(text)}": not a URL; write it as "http://${shownUrl(text)}"`)
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalidOption(
      `Unsupported proxy "${shownUrl(text)}": only http:// and https:// proxies are supported (${url.protocol.slice(0, -1)} is not)`
    )
  }
  return url.href
}

/**
 * An `agent` carrying a proxy (https-proxy-agent, http-proxy-agent: `agent.proxy` is its
 * URL) is honoured as the `proxy` option; one whose proxy is not an http(s) URL (a
 * socks-proxy-agent) is refused rather than silently bypassed. Other agents: ignored.
 */
function checkAgentProxy(agent) {
  let proxy
  try {
    proxy = agent && agent.proxy
  } catch (e) {
    return // an agent whose `proxy` cannot be read is used as `pusher` uses any agent: as is
  }
  if (!proxy) return
  const text = proxy instanceof URL ? proxy.href : typeof proxy.href === "string" ? proxy.href : proxy
  if (typeof text !== "string") {
    const kind = typeof proxy.type === "number" ? ` (socks${proxy.type})` : ""
    throw invalidOption(`Unsupported agent: its proxy${kind} is not an http:// or https:// proxy, the only kind pusher-native can send through`)
  }
  try {
    proxyOption(text)
  } catch (e) {
    e.message = e.message.replace(/^(Invalid|Unsupported) proxy/, "$1 agent proxy")
    throw e
  }
}

/** The `ca` option as one PEM Buffer, or undefined; throws when it holds no usable certificate. */
function caOption(ca) {
  if (ca == null) return undefined
  const parts = Array.isArray(ca) ? ca : [ca]
  const pem = Buffer.concat(
    parts.map((part, i) => {
      if (typeof part !== "string" && !Buffer.isBuffer(part) && !(part instanceof Uint8Array)) {
        throw invalidOption(`Invalid ca option${Array.isArray(ca) ? ` (item ${i})` : ""}: expected a PEM string or Buffer, got ${typeof part}`)
      }
      return Buffer.concat([Buffer.from(part), Buffer.from("\n")])
    })
  )
  const problem = native.caError(pem)
  if (problem != null) throw invalidOption(`Invalid ${problem}`)
  return pem
}

const TRANSPORTS = ["tokio"]

/** PUSHER_NATIVE_TRANSPORT: unset, empty or "tokio"; anything else is refused, not ignored. */
function checkTransportSetting() {
  const value = process.env.PUSHER_NATIVE_TRANSPORT
  if (value === undefined || value === "" || TRANSPORTS.includes(value)) return
  throw invalidOption(
    `PUSHER_NATIVE_TRANSPORT=${JSON.stringify(value)} is not a transport: set it to "tokio" (every request on the tokio transport) or leave it unset`,
    Error
  )
}

/** `verifyWebhook`'s `maxAgeMs`: undefined/null, or a number of milliseconds ≥ 0. */
function maxAgeOption(maxAgeMs) {
  if (maxAgeMs == null) return undefined
  if (typeof maxAgeMs !== "number" || Number.isNaN(maxAgeMs)) {
    const got = typeof maxAgeMs === "string" ? JSON.stringify(maxAgeMs) : typeof maxAgeMs === "number" ? "NaN" : typeof maxAgeMs
    throw invalidOption(`Invalid maxAgeMs: expected a number of milliseconds, got ${got}`)
  }
  if (maxAgeMs < 0) throw invalidOption(`Invalid maxAgeMs: ${maxAgeMs} is negative`, RangeError)
  return maxAgeMs
}

const limitExceeded = (message) => codedError("PUSHER_LIMIT_EXCEEDED", message)
const invalidQuery = (message) => codedError("PUSHER_INVALID_QUERY", message)

module.exports = { proxyOption, checkAgentProxy, caOption, checkTransportSetting, maxAgeOption, limitExceeded, invalidQuery }
