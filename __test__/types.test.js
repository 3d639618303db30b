"use strict"
// The typings (index.d.ts, index.d.mts) under `tsc --strict --module nodenext`:
// __test__/types/consumer*.ts use every API the way pusher's README and TypeScript
// example do and must compile cleanly; __test__/types/mistakes*.ts plant mistakes that
// must each fail, with the expected code, on the marked line. A second, legacy project
// compiles pusher's own examples/typescript/main.ts (`import * as Pusher`) unchanged.
// Both compile against the @types/node of the running Node's major (`npm test` runs this
// on every tested Node, so under @types/node 20, 22, 24 and 26).
const test = require("node:test")
const assert = require("node:assert")
const fs = require("node:fs")
const os = require("node:os")
const path = require("node:path")
const { execFile } = require("node:child_process")
const { typesNodeDir } = require("./helpers")

const root = path.join(__dirname, "..")
const typesDir = path.join(__dirname, "types")
const tsc = require.resolve("typescript/bin/tsc")

/**
 * Runs tsc on a project, with `typesNodeDir()` as its only type root (through a throwaway
 * tsconfig extending the project's); resolves with its diagnostics
 * `{ file, line, code, text }` and the files it read.
 */
function typecheck(project, t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-native-types-"))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.mkdirSync(path.join(dir, "types"))
  fs.symlinkSync(typesNodeDir(), path.join(dir, "types", "node"), "dir")
  const config = path.join(dir, "tsconfig.json")
  fs.writeFileSync(config, JSON.stringify({ extends: path.join(project, "tsconfig.json"), compilerOptions: { typeRoots: [path.join(dir, "types")] } }))
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [tsc, "--noEmit", "--pretty", "false", "--listFiles", "-p", config],
      { cwd: root, timeout: 120_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error && error.code !== 2 && error.code !== 1) return reject(error)
        const files = stdout.split("\n").filter((line) => /\.d\.[cm]?ts$|\.[cm]?ts$/.test(line) && fs.existsSync(line))
        const diagnostics = []
        for (const text of stdout.split("\n")) {
          const m = /^(.+?)\((\d+),(\d+)\): error (TS\d+):/.exec(text)
          if (m) diagnostics.push({ file: path.resolve(root, m[1]), line: Number(m[2]), code: m[4], text })
          else if (/error TS\d+/.test(text)) diagnostics.push({ file: "", line: 0, code: "global", text })
        }
        resolve({ diagnostics, files, stdout, stderr, status: error ? error.code : 0 })
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

test("typings: consumers compile under strict nodenext, every planted mistake fails", async (t) => {
  const [main, legacy] = await Promise.all([typecheck(typesDir, t), typecheck(path.join(typesDir, "legacy"), t)])

  // The @types/node in use: the running Node's major wherever one is installed for it.
  const types = require(path.join(typesNodeDir(), "package.json"))
  const major = process.versions.node.split(".")[0]
  t.diagnostic(`Node ${process.version}: typings checked under @types/node ${types.version}`)
  const tested = require("../package.json").engines.node.match(/\d+/g)
  if (tested.includes(major)) assert.strictEqual(types.version.split(".")[0], major, `@types/node ${major} for Node ${major}`)
  const real = fs.realpathSync(typesNodeDir())
  for (const run of [main, legacy]) {
    const nodeTypes = run.files.filter((f) => /[\\/](@types[\\/]node|types-node-\d+)[\\/]/.test(f))
    assert.ok(nodeTypes.length > 10, "compiled with Node's typings")
    assert.deepStrictEqual(nodeTypes.filter((f) => !fs.realpathSync(f).startsWith(real + path.sep)), [], "only the chosen @types/node")
  }

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
  // The Workers/edge conditions (the web build, typed by web/index.d.mts) come first.
  const web = { types: "./web/index.d.mts", default: "./web/index.mjs" }
  assert.deepStrictEqual(pkg.exports["."], {
    workerd: web,
    "edge-light": web,
    worker: web,
    import: { types: "./index.d.mts", default: "./index.mjs" },
    require: { types: "./index.d.ts", default: "./index.js" },
  })
  assert.deepStrictEqual(pkg.exports["./web"], web)
  for (const f of ["index.d.ts", "index.d.mts", "index.mjs", "index.js", "web/index.d.mts"]) {
    assert.ok(fs.existsSync(path.join(root, f)), f)
  }
})

// The README's JavaScript snippets (Usage, Beyond `pusher`), each in a function of its
// own, must compile as TypeScript against the typings, with the names they take for
// granted declared once. A snippet that stops compiling is a README that misleads.
const README_PRELUDE = `import Pusher = require("pusher-native")
declare const pusher: Pusher
declare const socketId: string
declare const data: unknown
declare const key: string
declare const secret: string
declare const err: unknown
declare const app: { post(path: string, ...handlers: Array<(req: any, res: any) => unknown>): void }
declare const express: { text(options: object): (req: any, res: any) => void }
`

function readmeSnippets() {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
  // Up to the web build's section: its snippet is a Worker module showing two
  // alternative imports side by side, not one program to wrap in a function.
  const end = ["\n## Runtimes", "\n## Deliberately different"].map((h) => readme.indexOf(h)).filter((i) => i > 0)
  const part = readme.slice(readme.indexOf("\n## Usage"), Math.min(...end))
  return [...part.matchAll(/```(?:js|ts)\n([\s\S]*?)```/g)].map((m) => m[1])
}

test("typings: the README's snippets compile", async (t) => {
  const snippets = readmeSnippets()
  assert.ok(snippets.length >= 8, `found ${snippets.length} snippets`)
  const dir = fs.mkdtempSync(path.join(typesDir, ".readme-"))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const body = snippets
    .map((code, i) => code.replace(/^const Pusher = require\("pusher-native"\)$/m, "// (imported above)"))
    .map((code, i) => `export async function snippet${i + 1}() {\n${code}}\n`)
  fs.writeFileSync(path.join(dir, "readme.ts"), README_PRELUDE + body.join("\n"))
  fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ extends: "../tsconfig.json", files: ["readme.ts"] }))
  const run = await typecheck(dir, t)
  assert.deepStrictEqual(run.diagnostics.map((d) => d.text), [], "README snippets:\n" + body.join("\n"))
  assert.strictEqual(run.status, 0, run.stdout + run.stderr)
})
