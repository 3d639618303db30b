"use strict"
// `napi build` for this package: `npm run build` (release) and `npm run build:dev` land
// here; extra arguments pass through (`npm run build -- --target aarch64-apple-darwin`).
//
// Linux gnu targets build with `--use-napi-cross`: gcc and a glibc 2.17 sysroot from
// npm (@napi-rs/cross-toolchain), so the addon loads on every glibc Node runs on; a
// host build would require the build machine's glibc (2.34+ on current distros).
// PUSHER_NATIVE_HOST_TOOLCHAIN=1 builds with the host's compiler and glibc instead.
const { spawnSync } = require("node:child_process")
const path = require("node:path")
const { usesCross, hostTriple } = require("./cross-env")

function targetOf(args) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--target" || args[i] === "-t") return args[i + 1]
    if (args[i].startsWith("--target=")) return args[i].slice("--target=".length)
  }
  return hostTriple()
}

const args = process.argv.slice(2)
const cross = usesCross(targetOf(args))

const napi = ["build", "--platform", "--js", "binding.js", "--dts", "binding.d.ts", ...(cross ? ["--use-napi-cross"] : []), ...args]
// `npm run` puts node_modules/.bin on PATH; Windows needs the shell for napi.cmd.
const { status } = spawnSync("napi", napi, {
  stdio: "inherit",
  cwd: path.join(__dirname, ".."),
  shell: process.platform === "win32",
})
process.exit(status ?? 1)
