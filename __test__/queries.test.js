"use strict"
// channels(), channel(), users() (beyond pusher) against a local recording server: each
// sends exactly what `get()` sends for the same path and params (same bytes, same
// signature at the same timestamp), resolves with the parsed JSON, rejects as `get()`
// does, and refuses bad arguments synchronously, before any request.
const { describe, test, before, after, beforeEach } = require("node:test")
const assert = require("node:assert/strict")
const crypto = require("node:crypto")

const { WEB, Pusher, recordingServer, pusherFor, atTime, closedPort } = require("./helpers")

const T = 1_700_000_000_000 // a fixed Date.now(), so both requests carry the same auth_timestamp

/** The request as the server saw it, minus the socket. */
const seen = (r) => ({ method: r.method, url: r.url, headers: r.headers, body: r.body })

describe("queries send exactly what get() sends", () => {
  let server
  let pusher
  const answers = [] // what the next requests are answered with, in order
  before(async () => {
    server = await recordingServer({
      handler: (req, body, res) => {
        const [status, text] = answers.shift() || [200, "{}"]
        res.writeHead(status, { "content-type": "application/json" })
        res.end(text)
      },
    })
    pusher = pusherFor(server)
  })
  after(() => server.close())
  beforeEach(() => {
    server.requests.length = 0
    answers.length = 0
  })

  // [what is called, the equivalent get() options]
  const cases = [
    ["channels()", (p) => p.channels(), { path: "/channels" }],
    ["channels({})", (p) => p.channels({}), { path: "/channels" }],
    ["channels(prefix)", (p) => p.channels({ filterByPrefix: "private-" }), { path: "/channels", params: { filter_by_prefix: "private-" } }],
    [
      "channels(presence, user_count)",
      (p) => p.channels({ filterByPrefix: "presence-", info: ["user_count"] }),
      { path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count" } },
    ],
    [
      "channels(subscription_count)",
      (p) => p.channels({ info: "subscription_count" }),
      { path: "/channels", params: { info: "subscription_count" } },
    ],
    ["channel(name)", (p) => p.channel("my-channel"), { path: "/channels/my-channel" }],
    [
      "channel(presence, both, as a string)",
      (p) => p.channel("presence-room", { info: "user_count,subscription_count" }),
      { path: "/channels/presence-room", params: { info: "user_count,subscription_count" } },
    ],
    [
      "channel(presence, both, as an array)",
      (p) => p.channel("presence-room", { info: ["subscription_count", "user_count"] }),
      { path: "/channels/presence-room", params: { info: "subscription_count,user_count" } },
    ],
    [
      "channel(public, subscription_count)",
      (p) => p.channel("private-x=@,.;_-9", { info: ["subscription_count"] }),
      { path: "/channels/private-x=@,.;_-9", params: { info: "subscription_count" } },
    ],
    ["users(presence)", (p) => p.users("presence-room"), { path: "/channels/presence-room/users" }],
  ]

  for (const [name, query, equivalent] of cases) {
    test(name, async () => {
      answers.push([200, '{"from":"query"}'], [200, '{"from":"get"}'])
      const result = await atTime(T, () => query(pusher))
      const response = await atTime(T, () => pusher.get(equivalent))
      assert.deepEqual(result, { from: "query" }, "resolves with the parsed JSON")
      assert.deepEqual(await response.json(), { from: "get" })
      assert.equal(server.requests.length, 2)
      const [ours, theirs] = server.requests.map(seen)
      assert.deepEqual(ours, theirs)
      assert.equal(ours.method, "GET")
      assert.equal(ours.body, "")
      assert.match(ours.url, /[?&]auth_timestamp=1700000000(&|$)/)
    })
  }

  test("the signature checks out independently (HMAC-SHA256 of method, path and sorted query)", async () => {
    await atTime(T, () => pusher.channels({ filterByPrefix: "presence-", info: "user_count" }))
    const url = new URL(server.requests[0].url, server.url)
    assert.equal(url.pathname, "/apps/1/channels")
    const params = [...url.searchParams].filter(([k]) => k !== "auth_signature")
    assert.deepEqual(params, [
      ["auth_key", "key"],
      ["auth_timestamp", "1700000000"],
      ["auth_version", "1.0"],
      ["filter_by_prefix", "presence-"],
      ["info", "user_count"],
    ])
    const signed = ["GET", url.pathname, params.map(([k, v]) => `${k}=${v}`).join("&")].join("\n")
    const expected = crypto.createHmac("sha256", "secret").update(signed).digest("hex")
    assert.equal(url.searchParams.get("auth_signature"), expected)
  })

  test("info: duplicates dropped, spaces trimmed, empty entries and empty lists ask for nothing", async () => {
    const pairs = [
      [(p) => p.channel("presence-r", { info: ["user_count", "user_count", " subscription_count "] }), { path: "/channels/presence-r", params: { info: "user_count,subscription_count" } }],
      [(p) => p.channel("presence-r", { info: "user_count, user_count,,subscription_count," }), { path: "/channels/presence-r", params: { info: "user_count,subscription_count" } }],
      [(p) => p.channel("presence-r", { info: [] }), { path: "/channels/presence-r" }],
      [(p) => p.channel("presence-r", { info: "" }), { path: "/channels/presence-r" }],
      [(p) => p.channels({ filterByPrefix: "presence-", info: [] }), { path: "/channels", params: { filter_by_prefix: "presence-" } }],
      [(p) => p.channels({ filterByPrefix: undefined, info: null }), { path: "/channels" }],
    ]
    for (const [query, equivalent] of pairs) {
      server.requests.length = 0
      await atTime(T, () => query(pusher))
      await atTime(T, () => pusher.get(equivalent))
      const [ours, theirs] = server.requests.map(seen)
      assert.deepEqual(ours, theirs, JSON.stringify(equivalent))
    }
  })

  test("they dispatch through this.get, so a stubbed get sees the same options", async () => {
    const stubbed = new Pusher({ appId: "1", key: "k", secret: "s", cluster: "eu" })
    const calls = []
    stubbed.get = function (options) {
      calls.push(options)
      return Promise.resolve({ json: () => Promise.resolve({ stubbed: true }) })
    }
    assert.deepEqual(await stubbed.channels({ filterByPrefix: "presence-", info: "user_count" }), { stubbed: true })
    await stubbed.channel("presence-a", { info: ["user_count", "subscription_count"] })
    await stubbed.channel("public-a")
    await stubbed.users("presence-a")
    assert.deepEqual(calls, [
      { path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count" } },
      { path: "/channels/presence-a", params: { info: "user_count,subscription_count" } },
      { path: "/channels/public-a" },
      { path: "/channels/presence-a/users" },
    ])
  })

  test("an error status rejects with the same RequestError as get()", async () => {
    const body = "Invalid channel name"
    answers.push([400, body], [400, body])
    const ours = await atTime(T, () => pusher.channel("presence-room", { info: "user_count" })).then(
      () => assert.fail("resolved"),
      (e) => e
    )
    const theirs = await atTime(T, () => pusher.get({ path: "/channels/presence-room", params: { info: "user_count" } })).then(
      () => assert.fail("resolved"),
      (e) => e
    )
    assert.ok(ours instanceof Pusher.RequestError)
    assert.equal(ours.name, "PusherRequestError")
    for (const field of ["message", "url", "status", "body", "code", "retryable", "attempts", "error"]) {
      assert.deepEqual(ours[field], theirs[field], field)
    }
    assert.equal(ours.status, 400)
    assert.equal(ours.body, body)
    assert.equal(ours.code, "PUSHER_HTTP")
  })

  test("a 2xx body that is not JSON rejects with json()'s own FetchError (invalid-json), naming the URL", async () => {
    answers.push([200, "<html>gateway</html>"], [200, "<html>gateway</html>"])
    const ours = await atTime(T, () => pusher.users("presence-room")).then(() => assert.fail("resolved"), (e) => e)
    const theirs = await atTime(T, () => pusher.get({ path: "/channels/presence-room/users" }))
      .then((r) => r.json())
      .then(() => assert.fail("resolved"), (e) => e)
    // The web build resolves with the platform Response, whose json() throws a SyntaxError.
    assert.equal(ours.name, WEB ? "SyntaxError" : "FetchError")
    if (!WEB) assert.equal(ours.type, "invalid-json")
    if (!WEB) assert.match(ours.message, /^invalid json response body at http:\/\/127\.0\.0\.1:\d+\/apps\/1\/channels\/presence-room\/users\?auth_key=key/)
    assert.equal(ours.message, theirs.message)
    assert.equal(server.requests.length, 2)

    answers.push([200, ""])
    const empty = await pusher.channels().then(() => assert.fail("resolved"), (e) => e)
    assert.equal(WEB ? empty.name : empty.type, WEB ? "SyntaxError" : "invalid-json", "an empty 200 is not an answer either")
  })

  test("a network failure rejects with the same RequestError as get()", async () => {
    const closed = pusherFor({ port: await closedPort(), url: "http://127.0.0.1" })
    const ours = await closed.channels().then(() => assert.fail("resolved"), (e) => e)
    const theirs = await closed.get({ path: "/channels" }).then(() => assert.fail("resolved"), (e) => e)
    assert.ok(ours instanceof Pusher.RequestError)
    assert.equal(ours.code, "PUSHER_NETWORK")
    assert.equal(ours.message, theirs.message)
    assert.equal(ours.error.code, theirs.error.code)
  })
})

describe("queries refuse bad arguments synchronously, before any request", () => {
  let server
  let pusher
  before(async () => {
    server = await recordingServer()
    pusher = pusherFor(server)
  })
  after(() => server.close())

  const ALLOWED = "(allowed: user_count, subscription_count)"
  const refused = [
    // channel names, with the library's own message
    [(p) => p.channel("bad name"), "Invalid channel name: 'bad name'"],
    [(p) => p.channel(""), "Invalid channel name: ''"],
    [(p) => p.channel(), "Invalid channel name: 'undefined'"],
    [(p) => p.channel(42), "Invalid channel name: '42'"],
    [(p) => p.channel("a/b"), "Invalid channel name: 'a/b'"],
    [(p) => p.channel("x".repeat(201)), `Channel name too long: '${"x".repeat(201)}'`],
    [(p) => p.users("presence-a?b"), "Invalid channel name: 'presence-a?b'"],
    [(p) => p.users("#server-to-user-1"), "Invalid channel name: '#server-to-user-1'"],
    // what the API would answer 400 for
    [(p) => p.channel("my-channel", { info: "user_count" }), "user_count is only available for presence channels, not 'my-channel' (the API answers 400)"],
    [(p) => p.channel("private-x", { info: ["subscription_count", "user_count"] }), "user_count is only available for presence channels, not 'private-x' (the API answers 400)"],
    [(p) => p.channels({ info: "user_count" }), "user_count needs filterByPrefix to start with 'presence-' (the API answers 400 when the query is not limited to presence channels)"],
    [(p) => p.channels({ filterByPrefix: "private-", info: ["user_count"] }), /^user_count needs filterByPrefix to start with 'presence-'/],
    [(p) => p.channels({ filterByPrefix: "presence", info: ["user_count"] }), /^user_count needs filterByPrefix to start with 'presence-'/],
    [(p) => p.users("my-channel"), "users() needs a presence channel, not 'my-channel' (the API answers 400 for others)"],
    [(p) => p.users("private-encrypted-x"), /^users\(\) needs a presence channel/],
    // info
    [(p) => p.channel("c", { info: ["bogus"] }), `Invalid info attribute: 'bogus' ${ALLOWED}`],
    [(p) => p.channel("c", { info: "subscription_count,occupied" }), `Invalid info attribute: 'occupied' ${ALLOWED}`],
    [(p) => p.channels({ info: ["USER_COUNT"] }), `Invalid info attribute: 'USER_COUNT' ${ALLOWED}`],
    [(p) => p.channels({ info: [""] }), `Invalid info attribute: '' ${ALLOWED}`],
    [(p) => p.channels({ info: [1] }), `Invalid info attribute: '1' ${ALLOWED}`],
    [(p) => p.channels({ info: [Symbol("s")] }), `Invalid info attribute: 'Symbol(s)' ${ALLOWED}`],
    [(p) => p.channels({ info: 42 }), "Invalid info: '42' (expected an array or a comma-separated string of user_count, subscription_count)"],
    [(p) => p.channels({ info: { user_count: true } }), /^Invalid info: '\[object Object\]'/],
    // prefix
    [(p) => p.channels({ filterByPrefix: "" }), "Invalid channel prefix: ''"],
    [(p) => p.channels({ filterByPrefix: "a b" }), "Invalid channel prefix: 'a b'"],
    [(p) => p.channels({ filterByPrefix: "presence-&info=x" }), "Invalid channel prefix: 'presence-&info=x'"],
    [(p) => p.channels({ filterByPrefix: 7 }), "Invalid channel prefix: '7'"],
    // options
    [(p) => p.channels("presence-"), "Invalid options: 'presence-' (expected an object with filterByPrefix, info)"],
    [(p) => p.channels(["info"]), /^Invalid options: 'info'/],
    [(p) => p.channels({ filter_by_prefix: "presence-" }), "Unknown option 'filter_by_prefix' (allowed: filterByPrefix, info)"],
    [(p) => p.channel("presence-r", "user_count"), "Invalid options: 'user_count' (expected an object with info)"],
    [(p) => p.channel("presence-r", { filterByPrefix: "presence-" }), "Unknown option 'filterByPrefix' (allowed: info)"],
  ]

  for (const [call, message] of refused) {
    test(`${call.toString().replace(/^\(p\) => p\./, "")} throws ${message instanceof RegExp ? message : JSON.stringify(message)}`, () => {
      let returned
      assert.throws(
        () => {
          returned = call(pusher)
        },
        (e) => {
          assert.equal(e.constructor, Error)
          if (message instanceof RegExp) assert.match(e.message, message)
          else assert.equal(e.message, message)
          return true
        }
      )
      assert.equal(returned, undefined)
    })
  }

  test("the server saw nothing", async () => {
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(server.requests.length, 0)
  })

  test("hostile values in every argument: a synchronous Error or a promise, never a crash", async () => {
    const { POOL } = require("../scripts/fuzz")
    const dead = pusherFor({ port: await closedPort(), url: "http://127.0.0.1" })
    const calls = [
      (v) => dead.channels(v),
      (v) => dead.channels({ filterByPrefix: v }),
      (v) => dead.channels({ filterByPrefix: "presence-", info: v }),
      (v) => dead.channel(v),
      (v) => dead.channel("presence-x", v),
      (v) => dead.channel("presence-x", { info: v }),
      (v) => dead.users(v),
    ]
    const pending = []
    let thrown = 0
    for (const make of Object.values(POOL)) {
      for (const call of calls) {
        let value
        try {
          value = call(make())
        } catch (e) {
          thrown++
          assert.ok(e instanceof Error, String(e))
          continue
        }
        assert.equal(typeof value.then, "function")
        pending.push(value.then(() => "resolved", (e) => assert.ok(e instanceof Pusher.RequestError, String(e))))
      }
    }
    const settled = await Promise.all(pending)
    assert.ok(thrown > 100 && pending.length > 20, `${thrown} thrown, ${pending.length} sent`)
    assert.ok(!settled.includes("resolved"), "nothing listens there")
  })

  test("the methods are beyond pusher: not enumerable, so the prototype's keys stay upstream's", () => {
    for (const name of ["channels", "channel", "users"]) {
      assert.equal(typeof Pusher.prototype[name], "function")
      assert.equal(Object.getOwnPropertyDescriptor(Pusher.prototype, name).enumerable, false)
    }
    assert.ok(!Object.keys(Pusher.prototype).some((k) => ["channels", "channel", "users"].includes(k)))
  })
})
