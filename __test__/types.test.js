"use strict"
// The typings (index.d.ts, index.d.mts) under `tsc --strict --module nodenext`:
// __test__/types/consumer*.ts use every API the way pusher's README and TypeScript
// example do and must compile cleanly; __test__/types/mistakes*.ts plant mistakes that
// must each fail, with the expected code, on the marked line. A second, legacy project
// compiles pusher's own examples/typescript/main.ts (`import * as Pusher`) unchanged.
const test = require("node:test")
const assert = require("node:assert")
const fs = require("node:fs")
const path = require("node:path")
const { execFile } = require("node:child_process")

const root = path.join(__dirname, "..")
const typesDir = path.join(__dirname, "types")
const tsc = require.resolve("typescript/bin/tsc")

/** Runs tsc on a project; resolves with its diagnostics `{ file, line, code, text }`. */
function typecheck(project) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [tsc, "--noEmit", "--pretty", "false", "-p", project],
      { cwd: root, timeout: 120_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error && error.code !== 2 && error.code !== 1) return reject(error)
        const diagnostics = []
        for (const text of stdout.split("\n")) {
          const m = /^(.+?)\((\d+),(\d+)\): error (TS\d+):/.exec(text)
          if (m) diagnostics.push({ file: path.resolve(root, m[1]), line: Number(m[2]), code: m[4], text })
          else if (/error TS\d+/.test(text)) diagnostics.push({ file: "", line: 0, code: "global", text })
        }
        resolve({ diagnostics, stdout, stderr, status: error ? error.code : 0 })
      }
    )
  })
}

/** `// error TSxxxx` markers: Map of line number -> code. */
function expectedErrors(file) {
  const expected = new Map()
  fs.readFileSync(file, "utf8")
    .split("\n")
    .forEach((text, i) => {
      const m = /\/\/ error (TS\d+)\s*$/.exec(text)
      if (m) expected.set(i + 1, m[1])
    })
  return expected
}

test("typings: consumers compile under strict nodenext, every planted mistake fails", async () => {
  const [main, legacy] = await Promise.all([typecheck(typesDir), typecheck(path.join(typesDir, "legacy"))])

  assert.deepStrictEqual(legacy.diagnostics, [], "pusher's TypeScript example must compile:\n" + legacy.stdout)
  assert.strictEqual(legacy.status, 0, legacy.stdout + legacy.stderr)

  const mistakeFiles = ["mistakes.ts", "mistakes-esm.mts"].map((f) => path.join(typesDir, f))
  const unexpected = main.diagnostics.filter((d) => !mistakeFiles.includes(d.file))
  assert.deepStrictEqual(unexpected.map((d) => d.text), [], "consumer files and typings must compile cleanly")

  let planted = 0
  for (const file of mistakeFiles) {
    const expected = expectedErrors(file)
    planted += expected.size
    const got = main.diagnostics.filter((d) => d.file === file)
    const name = path.basename(file)
    for (const d of got) {
      assert.ok(expected.has(d.line), `${name}:${d.line}: unplanted error: ${d.text}`)
    }
    for (const [line, code] of expected) {
      const onLine = got.filter((d) => d.line === line)
      assert.deepStrictEqual(
        onLine.map((d) => d.code),
        [code],
        `${name}:${line}: expected exactly one ${code}, got ${JSON.stringify(onLine.map((d) => d.text))}`
      )
    }
  }
  assert.ok(planted >= 40, `expected the full set of planted mistakes, found ${planted}`)
  assert.strictEqual(main.diagnostics.length, planted)
})

test("typings: package.json points both module systems at their typings", () => {
  const pkg = require("../package.json")
  assert.strictEqual(pkg.types, "index.d.ts")
  assert.deepStrictEqual(pkg.exports["."], {
    import: { types: "./index.d.mts", default: "./index.mjs" },
    require: { types: "./index.d.ts", default: "./index.js" },
  })
  for (const f of ["index.d.ts", "index.d.mts", "index.mjs", "index.js"]) {
    assert.ok(fs.existsSync(path.join(root, f)), f)
  }
})
