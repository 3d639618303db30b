"use strict"
// Whether a target builds against napi-rs's glibc 2.17 cross toolchain, and the
// environment `napi build --use-napi-cross` gives cargo for it (@napi-rs/cli 3.10's
// napiCrossToolchainEnvs, for a gcc toolchain). `cargo test` needs the same variables:
// cargo fingerprints the linker and cc-rs's variables, so running it with the host's
// would rebuild every crate, and the next `napi build` all of them again.
const { execFileSync } = require("node:child_process")
const fs = require("node:fs")
const os = require("node:os")
const path = require("node:path")

const CROSS_TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
const CROSS_HOSTS = ["x64", "arm64"]

const hostTriple = () => /^host: (.+)$/m.exec(execFileSync("rustc", ["-vV"], { encoding: "utf8" }))[1]

function usesCross(target) {
  return (
    process.platform === "linux" &&
    CROSS_HOSTS.includes(process.arch) &&
    CROSS_TARGETS.includes(target) &&
    !process.env.PUSHER_NATIVE_HOST_TOOLCHAIN
  )
}

/** The variables to add for building `target` on this host (the toolchain is fetched once, as napi does). */
function crossEnv(target) {
  const cli = path.join(__dirname, "..", "node_modules", "@napi-rs", "cli")
  const toolchains = require(require.resolve("@napi-rs/cross-toolchain", { paths: [cli] }))
  const root = path.join(os.homedir(), ".napi-rs", "cross-toolchain", toolchains.version, target)
  if (!fs.existsSync(path.join(root, "package.json"))) {
    fs.mkdirSync(root, { recursive: true })
    toolchains.download(process.arch, target).unpack(root)
  }
  const bin = (tool) => path.join(root, "bin", `${target}-${tool}`)
  const sysroot = path.join(root, target, "sysroot")
  const env = {
    [`CARGO_TARGET_${target.toUpperCase().replace(/-/g, "_")}_LINKER`]: bin("gcc"),
    TARGET_SYSROOT: sysroot,
    TARGET_AR: bin("ar"),
    TARGET_RANLIB: bin("ranlib"),
    TARGET_READELF: bin("readelf"),
    TARGET_C_INCLUDE_PATH: path.join(sysroot, "usr", "include/"),
    TARGET_CC: bin("gcc"),
    TARGET_CXX: bin("g++"),
    BINDGEN_EXTRA_CLANG_ARGS: `--sysroot=${sysroot}`,
    PATH: `${path.join(root, "bin")}:${process.env.PATH}`,
  }
  // Building for the host's own triple, cc-rs reads the target-suffixed names.
  if (target === hostTriple()) {
    const suffix = target.replace(/[-.]/g, "_")
    Object.assign(env, { [`CC_${suffix}`]: env.TARGET_CC, [`CXX_${suffix}`]: env.TARGET_CXX, [`AR_${suffix}`]: env.TARGET_AR, [`RANLIB_${suffix}`]: env.TARGET_RANLIB })
  }
  return env
}

module.exports = { usesCross, crossEnv, hostTriple }
