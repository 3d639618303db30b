"use strict"
// Packaging round trip, offline: `npm pack`, then `npm install <tarball>` into an empty
// project, where `require`, ESM `import` and TypeScript (strict, nodenext) must work
// against a local server. Also checks the napi-rs platform package layout.
const test = require("node:test")
const assert = require("node:assert")
const fs = require("node:fs")
const os = require("node:os")
const path = require("node:path")
const { execFile } = require("node:child_process")

const { recordingServer, typesNodeDir } = require("./helpers")

const root = path.join(__dirname, "..")
const pkg = require("../package.json")
const npm = process.platform === "win32" ? "npm.cmd" : "npm"

// Child npm runs without the `npm_*` variables of an enclosing `npm test`.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)))

const run = (file, args, options = {}) =>
  new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: 180_000, maxBuffer: 64 << 20, env: cleanEnv, ...options },
      (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr })
    )
  })

// napi target triple -> the npm/<dir> suffix napi-rs uses.
const PLATFORM_DIRS = {
  "x86_64-unknown-linux-gnu": "linux-x64-gnu",
  "x86_64-apple-darwin": "darwin-x64",
  "aarch64-apple-darwin": "darwin-arm64",
  "x86_64-pc-windows-msvc": "win32-x64-msvc",
  "aarch64-unknown-linux-gnu": "linux-arm64-gnu",
  "x86_64-unknown-linux-musl": "linux-x64-musl",
  "aarch64-unknown-linux-musl": "linux-arm64-musl",
}

test("package.json: engines, exports, files and the napi platform packages", () => {
  // engines promises exactly the Node majors `npm test` runs on (scripts/nodes.sh), and
  // the README lists them.
  const tested = /^VERSIONS=\(([^)]*)\)/m.exec(fs.readFileSync(path.join(root, "scripts", "nodes.sh"), "utf8"))[1].trim().split(/\s+/)
  const majors = tested.map((v) => v.split(".")[0])
  assert.strictEqual(pkg.engines.node, majors.map((m) => "^" + m).join(" || "))
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
  for (const v of tested) assert.ok(readme.includes(v), `README names Node ${v}`)
  assert.strictEqual(pkg.main, "index.js")
  assert.strictEqual(pkg.types, "index.d.ts")
  assert.deepStrictEqual(Object.keys(pkg.exports), [".", "./web", "./package.json"])
  // The Workers/edge conditions come first (the first matching key wins), then Node's.
  assert.deepStrictEqual(Object.keys(pkg.exports["."]), ["workerd", "edge-light", "worker", "import", "require"])
  for (const web of [pkg.exports["./web"], pkg.exports["."].workerd, pkg.exports["."]["edge-light"], pkg.exports["."].worker]) {
    assert.deepStrictEqual(web, { types: "./web/index.d.mts", default: "./web/index.mjs" })
  }
  // Only the web build's audited crypto (the native build uses none).
  assert.deepStrictEqual(Object.keys(pkg.dependencies || {}).sort(), ["@noble/ciphers", "@noble/hashes"], "runtime dependencies")
  assert.deepStrictEqual(Object.keys(PLATFORM_DIRS).sort(), [...pkg.napi.targets].sort())
  const loader = fs.readFileSync(path.join(root, "binding.js"), "utf8")
  for (const target of pkg.napi.targets) {
    const dir = path.join(root, "npm", PLATFORM_DIRS[target])
    const platformPkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
    const name = `${pkg.name}-${PLATFORM_DIRS[target]}`
    assert.strictEqual(platformPkg.name, name, target)
    assert.strictEqual(platformPkg.version, pkg.version, `${name} is pinned to the same version`)
    assert.deepStrictEqual(platformPkg.engines, pkg.engines, `${name} promises the same Node versions`)
    assert.strictEqual(platformPkg.main, `${pkg.napi.binaryName}.${PLATFORM_DIRS[target]}.node`)
    assert.deepStrictEqual(platformPkg.files, [platformPkg.main])
    assert.ok(loader.includes(`require('${name}')`), `binding.js loads ${name}`)
    assert.ok(loader.includes(`require('./${platformPkg.main}')`), `binding.js falls back to ./${platformPkg.main}`)
  }
  // Platform packages are added as optionalDependencies by `napi pre-publish` at publish
  // time; listed here they would break `npm ci` until they exist on the registry.
  for (const name of Object.keys(pkg.optionalDependencies || {})) {
    assert.strictEqual(pkg.optionalDependencies[name], pkg.version, name)
  }
})

test("npm pack: the tarball installs offline into an empty project and works there", async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-native-pack-"))
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }))

  // ---- pack ---- (web/index.mjs is generated: made here, as `prepack` would)
  require("../scripts/build-web").build()
  const packed = await run(npm, ["pack", "--json", "--ignore-scripts", "--pack-destination", tmp], { cwd: root })
  assert.strictEqual(packed.code, 0, packed.stderr)
  const [info] = JSON.parse(packed.stdout)
  const files = info.files.map((f) => f.path).sort()
  const nodeFile = `${pkg.napi.binaryName}.linux-x64-gnu.node`
  for (const f of ["package.json", "index.js", "index.mjs", "index.d.ts", "index.d.mts", "binding.js", "binding.d.ts", "lib/pusher.js", "web/index.mjs", "web/index.d.mts", nodeFile]) {
    assert.ok(files.includes(f), `tarball has ${f}: ${files.join(", ")}`)
  }
  for (const f of files) {
    assert.match(f, /^(package\.json|README\.md|LICENSE(\.\w+)?|index\.(js|mjs|d\.ts|d\.mts)|binding\.(js|d\.ts)|lib\/(web\/)?[\w-]+\.m?js|web\/index\.(mjs|d\.mts)|pusher-native\.[\w-]+\.node)$/, `unexpected file in tarball: ${f}`)
  }
  const tarball = path.join(tmp, info.filename)

  // ---- install into an empty project, offline ----
  const app = path.join(tmp, "app")
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }))
  const installed = await run(npm, ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: app })
  assert.strictEqual(installed.code, 0, installed.stdout + installed.stderr)
  const installedDir = path.join(app, "node_modules", "pusher-native")
  assert.ok(!fs.lstatSync(installedDir).isSymbolicLink(), "a real copy, not a link to the checkout")
  assert.ok(fs.existsSync(path.join(installedDir, nodeFile)))

  // ---- CommonJS and ESM, against a local server ----
  const server = await recordingServer()
  t.after(() => server.close())
  fs.writeFileSync(
    path.join(app, "cjs.js"),
    `"use strict"
const Pusher = require("pusher-native")
const assert = require("assert")
assert.deepStrictEqual(Object.keys(Pusher), ["forURL", "forCluster", "Token", "RequestError", "WebHookError"])
assert.ok(require.resolve("pusher-native").startsWith(${JSON.stringify(installedDir)}))
assert.strictEqual(require("pusher-native/package.json").version, ${JSON.stringify(pkg.version)})
assert.throws(() => require("pusher-native/lib/pusher"), { code: "ERR_PACKAGE_PATH_NOT_EXPORTED" })
const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", host: "127.0.0.1", port: process.env.PORT })
const auth = pusher.authorizeChannel("1.1", "private-x")
pusher.trigger("my-channel", "my-event", { n: 1 }).then(async (res) => {
  console.log(JSON.stringify({ status: res.status, auth, sig: new Pusher.Token("k", "s").sign("x") }))
})
`
  )
  fs.writeFileSync(
    path.join(app, "esm.mjs"),
    `import Pusher, { RequestError, WebHookError, Token, forURL } from "pusher-native"
import { createRequire } from "node:module"
const required = createRequire(import.meta.url)("pusher-native")
if (Pusher !== required || RequestError !== required.RequestError || WebHookError !== required.WebHookError || Token !== required.Token) {
  throw new Error("ESM and CommonJS entries differ")
}
const pusher = forURL("http://key:secret@127.0.0.1:" + process.env.PORT + "/apps/1")
const res = await pusher.trigger("my-channel", "esm-event", {})
try {
  await pusher.get({ path: "/channels", body: "GET with a body" })
} catch (err) {
  const { default: Web } = await import("pusher-native/web")
  const web = await Web.forURL("http://key:secret@127.0.0.1:" + process.env.PORT + "/apps/1").trigger("my-channel", "web-event", {})
  console.log(JSON.stringify({ status: res.status, isRequestError: err instanceof RequestError, web: web.status }))
}
`
  )
  const env = { ...cleanEnv, PORT: String(server.port) }
  const [cjs, esm] = await Promise.all([
    run(process.execPath, ["cjs.js"], { cwd: app, env }),
    run(process.execPath, ["esm.mjs"], { cwd: app, env }),
  ])
  assert.strictEqual(cjs.code, 0, cjs.stderr)
  assert.strictEqual(esm.code, 0, esm.stderr)
  assert.strictEqual(cjs.stderr + esm.stderr, "", "no warnings")
  const Upstream = require("pusher")
  assert.deepStrictEqual(JSON.parse(cjs.stdout), {
    status: 200,
    auth: new Upstream({ appId: "1", key: "key", secret: "secret", cluster: "eu" }).authorizeChannel("1.1", "private-x"),
    sig: new Upstream.Token("k", "s").sign("x"),
  })
  assert.deepStrictEqual(JSON.parse(esm.stdout), { status: 200, isRequestError: true, web: 200 })
  assert.deepStrictEqual(server.requests.map((r) => JSON.parse(r.body).name).sort(), ["esm-event", "my-event", "web-event"])

  // ---- TypeScript against the installed typings (both module systems) ----
  fs.mkdirSync(path.join(app, "node_modules", "@types"), { recursive: true })
  fs.symlinkSync(typesNodeDir(), path.join(app, "node_modules", "@types", "node"), "dir")
  fs.writeFileSync(
    path.join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", types: ["node"], noEmit: true },
      files: ["cjs.ts", "esm.mts"],
    })
  )
  fs.writeFileSync(
    path.join(app, "cjs.ts"),
    `import Pusher = require("pusher-native")
import PusherDefault from "pusher-native"
const pusher: PusherDefault = new Pusher({ appId: "1", key: "k", secret: "s", cluster: "eu", retry: { attempts: 2 } })
export const done: Promise<void> = pusher.trigger("c", "e", {}).then((r: Pusher.Response) => r.text()).then(() => pusher.flush())
export const bad: string = pusher.channelSharedSecret("private-encrypted-x") // must fail: a Buffer
`
  )
  fs.writeFileSync(
    path.join(app, "esm.mts"),
    `import Pusher, { RequestError, Token } from "pusher-native"
import type { Options, Response } from "pusher-native"
const options: Options = { appId: "1", key: "k", secret: "s", host: "localhost", port: 8080 }
const response: Response = await new Pusher(options).get({ path: "/channels" })
export const sig: string = new Token("k", "s").sign(String(response.status))
export const isErr = (e: unknown): boolean => e instanceof RequestError && e.code === "PUSHER_TIMEOUT"
export const bad: number = new Token("k", "s").sign("x") // must fail: a string
`
  )
  const compiled = await run(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", app, "--pretty", "false"], { cwd: app })
  const errors = compiled.stdout.split("\n").filter((l) => /error TS\d+/.test(l))
  assert.deepStrictEqual(
    errors.map((l) => l.replace(/: error (TS\d+):.*/, " $1")).sort(),
    ["cjs.ts(5,14) TS2322", "esm.mts(7,14) TS2322"],
    compiled.stdout + compiled.stderr
  )
})
