"use strict"
// When no addon loads, `require("pusher-native")` throws one error that names the
// running platform, the prebuilt ones and how to build from source, keeping the
// loader's attempts. Provoked for real in child processes: an override path that is
// not an addon, and a platform nothing is built for.
const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const os = require("node:os")
const path = require("node:path")
const { execFileSync } = require("node:child_process")

const root = path.join(__dirname, "..")

/** Requires the package in a child after `prelude`; returns what it threw. */
function loadFailure(prelude, env = {}) {
  const script = `${prelude}
    try { require(${JSON.stringify(root)}); console.log("null") }
    catch (e) { console.log(JSON.stringify({ message: e.message, code: e.code, cause: !!e.cause })) }`
  const out = execFileSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "", ...env } })
  return JSON.parse(out)
}

function assertHelpful(error, platform) {
  assert.ok(error, "require succeeded")
  assert.equal(error.code, "PUSHER_NATIVE_LOAD_FAILED")
  assert.equal(error.cause, true)
  assert.match(error.message, new RegExp(`on this machine \\(${platform}[,)]`))
  assert.match(error.message, /Prebuilt addons: linux-x64-gnu, .*win32-x64-msvc \(Linux gnu builds need glibc >= 2\.17\)/)
  assert.match(error.message, /install Rust .* `npm ci && npm run build`.* NAPI_RS_NATIVE_LIBRARY_PATH/s)
  assert.doesNotMatch(error.message, /npm has a bug/)
  assert.match(error.message, /the web build.*import Pusher from "pusher-native\/web"/s)
}

test("an addon that does not load: the platform, the libc, and the loader's error", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-native-load-"))
  const fake = path.join(dir, "not-an-addon.node")
  fs.writeFileSync(fake, "not a shared object\n")
  try {
    const error = loadFailure("", { NAPI_RS_NATIVE_LIBRARY_PATH: fake })
    assertHelpful(error, `${process.platform}-${process.arch}`)
    if (process.platform === "linux") assert.match(error.message, /\((linux-\w+), (glibc [\d.]+|musl), Node v/)
    // dlopen's own wording differs per OS; each names the file.
    assert.match(error.message, /Tried:\n  .*not-an-addon\.node/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("a platform without a prebuilt addon is named", () => {
  const error = loadFailure(`Object.defineProperty(process, "platform", { value: "freebsd" })`)
  assertHelpful(error, `freebsd-${process.arch}`)
  assert.match(error.message, /Tried:\n  \S/)
})
