"use strict"
// Issue 12: a short deterministic pass of the seeded random-response fuzzer
// (scripts/fuzz-transport.js; `npm run fuzz:transport` runs hundreds of thousands of
// cases). The client runs in a child process: a crash or a blocked event loop fails
// this test with the seed, the culprit case(s) and the command that replays them.

const test = require("node:test")
const assert = require("node:assert/strict")
const fuzz = require("../scripts/fuzz-transport")

const SEED = 20261204
const CASES = 2500
const TRANSPORT = process.env.PUSHER_NATIVE_TRANSPORT === "tokio" ? "tokio" : "event loop"

test(`${CASES} mutated responses (seed ${SEED}): the process lives, every call settles, healthy requests succeed (${TRANSPORT})`, { timeout: 180000 }, async () => {
  const result = await fuzz.run({ cases: CASES, seed: SEED, timeoutMs: 300, concurrency: 16 })
  const { failure } = result
  assert.ok(
    !failure,
    failure &&
      `${failure.kind} with seed ${failure.seed}: ${failure.message}\n` +
        failure.cases.map((c) => "  " + c).join("\n") +
        "\n" +
        failure.repro.map((r) => "  reproduce: " + r).join("\n")
  )
  assert.equal(result.cases, CASES)
  assert.equal(result.resolved + result.rejected, CASES)
  assert.equal(result.healthy, Math.ceil(CASES / 100))
  // The mutations are varied enough to end both ways.
  assert.ok(result.resolved > CASES / 20 && result.rejected > CASES / 20, JSON.stringify(result))
})

test("the cases are deterministic per (seed, case) and cover every mutation", () => {
  const show = (r) => JSON.stringify({ ...r, pieces: r.pieces.map((p) => [p.delay, p.bytes.toString("base64")]) })
  for (const i of [0, 1, 77, 2499]) assert.equal(show(fuzz.recipe(SEED, i)), show(fuzz.recipe(SEED, i)))
  assert.notEqual(show(fuzz.recipe(SEED, 5)), show(fuzz.recipe(SEED + 1, 5)))
  const used = new Set()
  for (let i = 0; i < CASES; i++) for (const m of fuzz.recipe(SEED, i).mutations) used.add(m)
  assert.deepEqual([...used].sort(), Object.keys(fuzz.MUTATIONS).sort())
})
