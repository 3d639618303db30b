"use strict"
// Issue 12: a short deterministic pass of the seeded random-response fuzzer
// (scripts/fuzz-transport.js; `npm run fuzz:transport` runs hundreds of thousands of
// cases), over plain TCP and over TLS. The client runs in a child process: a crash or
// a blocked event loop fails this test with the seed, the culprit case(s) and the
// command that replays them.

const test = require("node:test")
const assert = require("node:assert/strict")
const fuzz = require("../scripts/fuzz-transport")
const cases = require("../scripts/fuzz-transport-cases")

const SEED = 20261204
const CASES = 2500
const TLS_CASES = 1000
const TRANSPORT = process.env.PUSHER_NATIVE_TRANSPORT === "tokio" ? "tokio" : "event loop"

/** Fails with the seed, the culprit case(s) and the commands that replay them. */
function assertClean(result, cases) {
  const { failure } = result
  assert.ok(
    !failure,
    failure &&
      `${failure.kind} with seed ${failure.seed}: ${failure.message}\n` +
        failure.cases.map((c) => "  " + c).join("\n") +
        "\n" +
        failure.repro.map((r) => "  reproduce: " + r).join("\n")
  )
  assert.equal(result.cases, cases)
  assert.equal(result.resolved + result.rejected, cases)
  assert.equal(result.healthy, Math.ceil(cases / 100))
  // The mutations are varied enough to end both ways.
  assert.ok(result.resolved > cases / 20 && result.rejected > cases / 20, JSON.stringify(result))
}

test(`${CASES} mutated responses (seed ${SEED}): the process lives, every call settles, healthy requests succeed (${TRANSPORT})`, { timeout: 180000 }, async () => {
  assertClean(await fuzz.run({ cases: CASES, seed: SEED, timeoutMs: 300, concurrency: 16 }), CASES)
})

test(`${TLS_CASES} mutated responses over TLS (seed ${SEED}), some ending in close_notify + junk or a bare FIN (${TRANSPORT})`, { timeout: 240000 }, async () => {
  assertClean(await fuzz.run({ cases: TLS_CASES, seed: SEED, timeoutMs: 300, concurrency: 16, tls: true }), TLS_CASES)
})

test("the cases are deterministic per (seed, case) and cover every mutation", () => {
  const show = (r) => JSON.stringify({ ...r, pieces: r.pieces.map((p) => [p.delay, p.bytes.toString("base64")]) })
  for (const i of [0, 1, 77, 2499]) assert.equal(show(cases.recipe(SEED, i)), show(cases.recipe(SEED, i)))
  assert.notEqual(show(cases.recipe(SEED, 5)), show(cases.recipe(SEED + 1, 5)))
  const used = new Set()
  for (let i = 0; i < CASES; i++) for (const m of cases.recipe(SEED, i).mutations) used.add(m)
  assert.deepEqual([...used].sort(), Object.keys(cases.MUTATIONS).sort())
  const ends = new Set()
  for (let i = 0; i < TLS_CASES; i++) ends.add(cases.recipe(SEED, i, [], true).end)
  assert.deepEqual([...ends].sort(), ["destroy", "fin", "fin-no-notify", "keep", "notify-junk", "reset"])
})
