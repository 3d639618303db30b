"use strict"
// The generated napi-rs loader (binding.js) picks the .node for this platform. When
// none loads, its error blames an npm bug; say instead what is running, what ships
// prebuilt and how to build the addon, and keep the loader's errors as the cause.

const PREBUILT = [
  "linux-x64-gnu",
  "linux-arm64-gnu",
  "linux-x64-musl",
  "linux-arm64-musl",
  "darwin-x64",
  "darwin-arm64",
  "win32-x64-msvc",
]
const GLIBC_FLOOR = "2.17"

function libc() {
  if (process.platform !== "linux") return ""
  const header = process.report && process.report.getReport().header
  return header && header.glibcVersionRuntime ? `glibc ${header.glibcVersionRuntime}` : "musl"
}

/** The loader's own attempts, first first (binding.js chains them through `cause`). */
function attempts(error) {
  const messages = []
  for (let e = error && error.cause; e && messages.length < 20; e = e.cause) messages.unshift(firstLine(e.message))
  return messages.length ? messages : [firstLine(error && error.message)]
}

const firstLine = (message) => String(message).split("\n")[0]

function loadError(cause) {
  const runtime = [process.platform + "-" + process.arch, libc(), "Node " + process.version].filter(Boolean).join(", ")
  const error = new Error(
    `pusher-native: no native addon loads on this machine (${runtime}).\n` +
      `Prebuilt addons: ${PREBUILT.join(", ")} (Linux gnu builds need glibc >= ${GLIBC_FLOOR}).\n` +
      `On another platform, build it from source: install Rust (https://rustup.rs), check out ` +
      `pusher-native, run \`npm ci && npm run build\`, and set NAPI_RS_NATIVE_LIBRARY_PATH to ` +
      `the pusher-native.*.node it writes.\n` +
      `Or use the web build, the same API in plain JavaScript on fetch (no addon, slower): ` +
      `import Pusher from "pusher-native/web".\n` +
      `Tried:\n  ${attempts(cause).join("\n  ")}`
  )
  error.code = "PUSHER_NATIVE_LOAD_FAILED"
  error.cause = cause
  return error
}

try {
  module.exports = require("../binding.js")
} catch (cause) {
  throw loadError(cause)
}
