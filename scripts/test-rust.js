"use strict"
// `npm run test:rust`: cargo test on the linux-x64-gnu target, with the environment
// `npm run build:dev` builds it with (scripts/cross-env.js), so both share one build.
const { spawnSync } = require("node:child_process")
const path = require("node:path")
const { usesCross, crossEnv } = require("./cross-env")

const TARGET = "x86_64-unknown-linux-gnu"
const env = { ...process.env, ...(usesCross(TARGET) ? crossEnv(TARGET) : {}) }
const args = ["test", "--workspace", "--target", TARGET, "--profile", "dev-release", ...process.argv.slice(2)]
const { status } = spawnSync("cargo", args, { stdio: "inherit", env, cwd: path.join(__dirname, "..") })
process.exit(status ?? 1)
