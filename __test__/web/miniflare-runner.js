// Runs a bundled Worker script in workerd through miniflare (under Node 22: see
// scripts/miniflare.sh) and prints its answer as `RESULT <json>`.
//   node miniflare-runner.js <miniflare dir> <worker.mjs> <args json>
"use strict"
const fs = require("node:fs")
const path = require("node:path")

async function main() {
  const [dir, script, args] = process.argv.slice(2)
  const { Miniflare } = require(path.join(dir, "node_modules", "miniflare"))
  const mf = new Miniflare({ modules: true, script: fs.readFileSync(script, "utf8"), compatibilityDate: "2025-09-01" })
  try {
    const response = await mf.dispatchFetch("http://worker.test/?args=" + encodeURIComponent(args))
    console.log("RESULT " + (await response.text()))
  } finally {
    await mf.dispose()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(2)
})
