"use strict"
// Reads a `forURL` connection string into the fields `pusher` takes from Node's legacy
// `url.parse`: protocol, hostname, port, pathname and auth (percent-decoded).
//
// The WHATWG `URL` reads every plain http(s) URL the same way, and does not raise
// DEP0169. Where the two parsers can differ, the legacy parse is kept, because its
// trimming, host truncation, IPv4 and IDN handling, path escaping and errors are part
// of the contract: whitespace, backslashes, non-ASCII, `%` outside the credentials, a
// credential without `:`, hosts over 255 characters, `xn--` labels, numeric hosts other
// than a canonical dotted quad, ports over 65535, `.`/`..` path segments, `'` in the path.
// __test__/connection-url.test.js checks both readings agree on a generated corpus.
const url = require("url")

const CREDENTIAL = "[\\w.~!$&'()*+,%-]"
const LABEL = "[a-z\\d-]{1,63}"
const PLAIN = new RegExp(
  `^https?://${CREDENTIAL}+:${CREDENTIAL}*@(${LABEL}(?:\\.${LABEL})*)` +
    `(?::(\\d{1,5}))?(/[\\w.~!$&()*+,;=:@/-]*)?(?:[?#][!-[\\]-~]*)?$`,
  "i"
)
const NUMERIC_LABEL = /(?:^|\.)(?:\d+|0x[\da-f]*)$/i
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/
const PUNYCODE_LABEL = /(?:^|\.)xn--/i
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/

/** The port as written, or null; undefined when the input is not plain. */
function plainPort(input) {
  const m = typeof input === "string" && PLAIN.exec(input)
  if (!m) return undefined
  const [, host, port = null, path = ""] = m
  const plain =
    host.length <= 255 &&
    !PUNYCODE_LABEL.test(host) &&
    (!NUMERIC_LABEL.test(host) || DOTTED_QUAD.test(host)) &&
    Number(port) <= 65535 &&
    !DOT_SEGMENT.test(path)
  return plain ? port : undefined
}

function parseConnectionURL(input) {
  const port = plainPort(input)
  if (port === undefined) return url.parse(input)
  const parsed = new URL(input)
  return {
    protocol: parsed.protocol,
    hostname: parsed.hostname,
    // WHATWG drops a port equal to the scheme's default; legacy keeps it as written.
    port,
    pathname: parsed.pathname,
    auth: decodeURIComponent(parsed.username + ":" + parsed.password),
  }
}

module.exports = parseConnectionURL
