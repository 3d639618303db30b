"use strict"
// `npm run demo` (examples/demo.js) on the Node running this suite: sockudo on
// 127.0.0.1, pusher-js listening, every step ✓. Skipped, like the end-to-end tests, when
// sockudo is not installed (the demo itself would install it: not from a test).
const test = require("node:test")
const assert = require("node:assert/strict")
const path = require("node:path")
const { execFile } = require("node:child_process")
const { sockudoBinary, INSTALL_HINT } = require("../scripts/sockudo")

const root = path.join(__dirname, "..")
const SKIP = sockudoBinary() ? false : `sockudo binary not found; install it with: ${INSTALL_HINT}`

test("npm run demo: every step succeeds on this Node", { skip: SKIP, timeout: 120_000 }, async (t) => {
  const env = { ...process.env, NO_COLOR: "1" }
  const result = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, "examples", "demo.js")], { cwd: root, env, timeout: 110_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? error.code : 0, stdout, stderr })
    )
  })
  const lines = result.stdout.split("\n")
  assert.equal(result.code, 0, result.stdout + result.stderr)
  assert.deepEqual(lines.filter((line) => line.includes("✗")), [])
  const passed = lines.filter((line) => /^\s+✓ /.test(line)).length
  assert.ok(passed >= 10, `the demo's steps ran (${passed} ✓)\n${result.stdout}`)
  const last = lines.filter(Boolean).pop()
  assert.match(last, /✓ all good in/)
  t.diagnostic(`Node ${process.version}: demo ${passed} steps ✓, ${last.trim()}`)
})
