"use strict"
// forURL reads URLs with the WHATWG parser where it agrees with Node's legacy
// `url.parse` (what `pusher` uses), and keeps the legacy parse elsewhere. Checked
// differentially over a generated corpus of real and odd URLs: the fields forURL
// reads, then whole forURL results against the live `pusher`.
const test = require("node:test")
const assert = require("node:assert/strict")
const url = require("node:url")
const path = require("node:path")
const { execFile } = require("node:child_process")
const parseConnectionURL = require("../lib/connection-url")
const { Pusher, Upstream } = require("./helpers")

// Each list starts with the forms real URLs use; the rest are odd.
const SCHEMES = ["https://", "http://", "HTTPS://", "Http://", "ws://", "ftp://", "https:/", "https:", "//", "", " https://"]
const CREDENTIALS = ["key:secret", "278d425bdf160c739803:7ad3773142a6692b25b8", "k%41:s%2Fx", "k~_.-:s", "k:", "k'(x)*:s!$&+,", "k%3Ax:s", "k%zz:s", "k%C3:s", "k%C3%A9:s", "k:s:t", "k", ":s", "k;x=y:s", "ké:s", "k s:s", "k@j:s", "k:s@", ""]
const HOSTS = ["api-eu.pusher.com", "API.Pusher.COM", "localhost", "1.2.3.4", "-a-.b", "a".repeat(63), "255.255.255.255", "256.1.1.1", "127.1", "0x7f.0.0.1", "010.0.0.1", "1.2.3.04", "a.1", "a.0x", "a..b", "a.", ".a", "a_b", "xn--nxasmq6b.com", "xn--a", "a".repeat(64), ("a".repeat(63) + ".").repeat(4) + "a", "[::1]", "[::1", "hé.example", "ho st", "h%41", "h\\x", ""]
const PORTS = ["", ":80", ":443", ":0443", ":0", ":8080", ":65535", ":65536", ":99999", ":123456", ":", ":8a", "::1"]
const PATHS = ["/apps/1", "", "/", "/apps/4444", "/apps/1/", "/apps/12a", "/apps/0012", "/x/y/77", "/@/1", "/a;b=c:d/1", "/~a!$&()*+,/1", "/apps/./1", "/apps/../1", "/apps/1/..", "/./1", "/a/%2e/1", "/a%2F1", "/a'b/1", "/a b/1", "/a|b/1", "/a^b/1", "/a`b/1", "/a{b}/1", '/a"b/1', "\\apps\\1", "/apps\\1", "/é/1"]
const SUFFIXES = ["", "?x=1", "#f", "?x=1#f", "?a=@b/c:d", "#@x", "?a=\\b", "? x", "?é", " ", "\t"]
const DIMENSIONS = [SCHEMES, CREDENTIALS, HOSTS, PORTS, PATHS, SUFFIXES]

const join = ([scheme, credentials, host, port, pathname, suffix]) =>
  scheme + credentials + (credentials ? "@" : "") + host + port + pathname + suffix

/** Every value of each dimension with the others at their first (real) value, then seeded random mixes. */
function corpus(randomCount) {
  const inputs = new Set()
  DIMENSIONS.forEach((values, d) => {
    for (const v of values) inputs.add(join(DIMENSIONS.map((vs, i) => (i === d ? v : vs[0]))))
  })
  let seed = 15
  const random = (n) => {
    // mulberry32: a seeded, well-mixed 32-bit generator (the corpus is the same every run)
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) % n
  }
  // The least of three draws leans towards the real forms at the head of each list.
  const pick = (vs) => vs[Math.min(random(vs.length), random(vs.length), random(vs.length))]
  while (inputs.size < randomCount) inputs.add(join(DIMENSIONS.map(pick)))
  return [...inputs]
}

function fields(parse, input) {
  try {
    const { protocol, hostname, port, pathname, auth } = parse(input)
    return { protocol, hostname, port, pathname, auth }
  } catch (error) {
    return { error: error.constructor.name + ": " + error.message }
  }
}

/** Runs fn while counting calls to the legacy url.parse. */
function countingLegacy(fn) {
  const legacy = url.parse
  let calls = 0
  url.parse = (...args) => (calls++, legacy(...args))
  try {
    fn()
  } finally {
    url.parse = legacy
  }
  return calls
}

test("the fields equal url.parse's over a corpus of real and odd URLs, without url.parse for plain ones", () => {
  const inputs = corpus(20000)
  let legacyCalls = 0
  for (const input of inputs) {
    const expected = fields(url.parse, input)
    legacyCalls += countingLegacy(() => assert.deepStrictEqual(fields(parseConnectionURL, input), expected, JSON.stringify(input)))
  }
  const whatwg = inputs.length - legacyCalls
  // The corpus mixes odd parts freely, so most inputs need the legacy parse; a
  // sizeable share still goes through WHATWG, which the assertion above covers.
  assert.ok(whatwg > 1000, `${whatwg} of ${inputs.length} read by WHATWG`)
})

test("non-strings and odd inputs throw url.parse's errors", () => {
  for (const input of [undefined, null, 5, {}, ["http://k:s@h/apps/1"], new URL("http://k:s@h/apps/1"), Symbol.iterator]) {
    assert.deepStrictEqual(fields(parseConnectionURL, input), fields(url.parse, input))
  }
})

test("real connection URLs never reach url.parse", () => {
  const real = [
    "https://278d425bdf160c739803:7ad3773142a6692b25b8@api-eu.pusher.com/apps/4444",
    "http://key:secret@api.pusherapp.com/apps/1",
    "https://key:secret@api-mt1.pusher.com:443/apps/123456",
    "http://app-key:app-secret@127.0.0.1:6001/apps/app-id",
    "http://k:s@localhost:4567/apps/1?foo=bar",
    "https://k%2Bx:s%2Fy%3D@soketi.example.org/apps/42",
  ]
  for (const input of real) {
    assert.equal(countingLegacy(() => parseConnectionURL(input)), 0, input)
    assert.deepStrictEqual(fields(parseConnectionURL, input), fields(url.parse, input), input)
  }
})

test("forURL equals the live pusher.forURL over a sample of the corpus", () => {
  const view = (p) => {
    const c = p.config
    return [c.scheme, c.host, c.port, c.appId, c.token.key, c.token.secret, c.timeout]
  }
  const outcome = (I, input) => {
    try {
      return view(I.forURL(input, { timeout: 1234, host: "options-host" }))
    } catch (error) {
      return error.constructor.name + ": " + error.message
    }
  }
  for (const input of corpus(300)) assert.deepStrictEqual(outcome(Pusher, input), outcome(Upstream, input), JSON.stringify(input))
})

test("forURL on normal URLs raises no deprecation, even with --pending-deprecation", async () => {
  const script = `
    const Pusher = require(${JSON.stringify(path.join(__dirname, ".."))})
    Pusher.forURL("https://key:secret@api-eu.pusher.com/apps/4444")
    Pusher.forURL("http://key:secret@127.0.0.1:6001/apps/1", { timeout: 5000 })
    Pusher.forURL("https://key:secret@api.pusherapp.com:443/apps/1")
    process.stdout.write("ok")`
  const flags = ["--throw-deprecation", "--pending-deprecation", "-e", script]
  const { code, stdout, stderr } = await new Promise((resolve) =>
    execFile(process.execPath, flags, { env: { ...process.env, NODE_OPTIONS: "" } }, (error, stdout, stderr) =>
      resolve({ code: error ? error.code : 0, stdout, stderr })
    )
  )
  assert.equal(stderr, "")
  assert.deepStrictEqual([code, stdout], [0, "ok"])
})
