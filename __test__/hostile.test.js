"use strict"
// Hostile input: thousands of seeded, deterministic cases pour undefined, null,
// NaN, 1 MB strings, NUL/CR/LF, lone surrogates, throwing getters, circular objects,
// BigInt, Symbols, Proxies, 10k-element arrays, Buffers, Dates, … into every public
// method, the constructor, forURL and forCluster, on pusher-native and on the real
// `pusher` 5.3.4. The synchronous outcome (value, or error name + message + code, plus
// console.warn output) must be the same; the network methods (pointed at a closed local
// port) must agree on whether and how they throw synchronously, and every promise they
// return is handled. The engine is scripts/fuzz.js (`npm run fuzz` runs it longer).

const { test } = require("node:test")
const assert = require("node:assert/strict")
const path = require("path")
const { spawnSync } = require("child_process")
const fuzz = require("../scripts/fuzz")
const { Pusher, Upstream } = require("./helpers")

const unhandled = []
process.on("unhandledRejection", (reason) => unhandled.push(reason))

const SYSTEMATIC = [...fuzz.systematicCases()].length
const RANDOM = 1500

function check(stats, mismatches) {
  const shown = mismatches
    .slice(0, 3)
    .map((m) => fuzz.describeRecipe(m.recipe) + "\n ours: " + fuzz.show(m.ours || m.crash) + "\n upstream: " + fuzz.show(m.upstream))
    .join("\n\n")
  assert.equal(stats.crashes, 0, "cases whose harness crashed:\n" + shown)
  assert.equal(stats.mismatches, 0, `${stats.mismatches} of ${stats.cases} cases differ from upstream:\n${shown}`)
}

test(`systematic: every API × argument × hostile value (${SYSTEMATIC} cases) behaves as upstream`, async () => {
  assert.ok(SYSTEMATIC >= 2000)
  const mismatches = []
  const stats = await fuzz.run({ count: SYSTEMATIC, seed: 1, systematic: true, onMismatch: (m) => mismatches.push(m) })
  assert.equal(stats.cases, SYSTEMATIC)
  // every public entry point was exercised
  for (const op of Object.keys(fuzz.OPS)) assert.ok(stats.byOp[op] > 0, op)
  check(stats, mismatches)
})

test(`random: ${RANDOM} seeded combinations (several hostile values at once, hostile configs)`, async () => {
  const mismatches = []
  const stats = await fuzz.run({ count: RANDOM, seed: 20240229, systematic: false, onMismatch: (m) => mismatches.push(m) })
  assert.equal(stats.cases, RANDOM)
  check(stats, mismatches)
})

test("the seeded cases are deterministic", () => {
  const a = fuzz.prng(7)
  const b = fuzz.prng(7)
  const first = Array.from({ length: 50 }, () => JSON.stringify(fuzz.randomCase(a)))
  const second = Array.from({ length: 50 }, () => JSON.stringify(fuzz.randomCase(b)))
  assert.deepStrictEqual(first, second)
})

test("verifyWebhook (pusher-native only) never throws for a request, whatever it is given; an unusable maxAgeMs throws its code", () => {
  const p = new Pusher({ appId: "1", key: "key", secret: "secret", encryptionMasterKeyBase64: Buffer.alloc(32, 1).toString("base64") })
  const values = Object.keys(fuzz.POOL).map((name) => fuzz.POOL[name])
  const usable = (ms) => ms == null || (typeof ms === "number" && ms >= 0)
  for (const make of values) {
    for (const request of [make(), { headers: make(), rawBody: make() }, { headers: { "x-pusher-key": make(), "x-pusher-signature": make(), "content-type": make() }, body: make() }]) {
      const maxAgeMs = make()
      if (!usable(maxAgeMs)) {
        assert.throws(() => p.verifyWebhook(request, { extraTokens: make(), maxAgeMs }), { code: "PUSHER_INVALID_OPTION" })
      }
      const result = p.verifyWebhook(request, { extraTokens: make(), maxAgeMs: usable(maxAgeMs) ? maxAgeMs : undefined })
      assert.equal(result.valid, false)
      assert.equal(typeof result.reason, "string")
      assert.ok(Array.isArray(result.events))
    }
  }
})

test("detached methods with `this` undefined throw a TypeError synchronously (wording differs, see DETACHED_NOTE)", () => {
  for (const name of Object.keys(Pusher.prototype)) {
    for (const Impl of [Pusher, Upstream]) {
      assert.throws(() => Impl.prototype[name].apply(undefined, fuzz.detachedArgs(name)), TypeError, name)
    }
  }
  assert.equal(typeof fuzz.DETACHED_NOTE, "string")
})

test("a child process fed the nastiest values into every method exits cleanly", () => {
  const root = path.join(__dirname, "..")
  const child = spawnSync(process.execPath, ["-e", "require('./scripts/fuzz').runNasty().then((n) => console.log('nasty calls: ' + n))"], {
    cwd: root,
    encoding: "utf8",
    timeout: 120000,
    maxBuffer: 64 * 1024 * 1024,
  })
  assert.equal(child.signal, null, "no abort or segfault: " + child.stderr.slice(-2000))
  assert.equal(child.status, 0, child.stderr.slice(-2000))
  const calls = Number(/nasty calls: (\d+)/.exec(child.stdout)[1])
  assert.ok(calls > 1000, "calls: " + calls)
})

test("every returned promise was handled: no unhandled rejection", async () => {
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepStrictEqual(unhandled, [])
})
