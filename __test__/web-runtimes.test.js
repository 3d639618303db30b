"use strict"
// The web build in the runtimes it is for, all from npm packages: workerd (through
// miniflare, a bundled Worker script), Vercel's edge-runtime (a bundle for edge-light),
// Deno and Bun (pusher-native/web, and the native build through the package's own
// conditions). In each, __test__/web/scenario.mjs triggers to a local server here, sends
// a batch, a query and an encrypted trigger, authorizes channels and checks webhooks;
// this side checks every request's signature and body, decrypts the encrypted event,
// and compares the authorizations with `pusher`'s. Bundling the package with each
// platform's conditions must never reach the native addon's loader.

const { test, describe, before, after } = require("node:test")
const assert = require("node:assert/strict")
const crypto = require("node:crypto")
const fs = require("node:fs")
const os = require("node:os")
const path = require("node:path")
const { execFile, execFileSync } = require("node:child_process")
const nacl = require("tweetnacl")
const esbuild = require("esbuild")
const { recordingServer, Upstream } = require("./helpers")
const { version } = require("../package.json")

const ROOT = path.join(__dirname, "..")
const SCENARIO = path.join(__dirname, "web", "scenario.mjs")
const MASTER_KEY = Buffer.alloc(32, 42).toString("base64")
const WEBHOOK_BODY = '{"time_ms":1700000000000,"events":[{"channel":"presence-room","name":"member_added","user_id":"u1"}]}'
const CHANNELS_ANSWER = { channels: { "presence-room": { user_count: 2 } } }
// Where the platform conditions send `pusher-native`, and what they must never reach.
const PLATFORMS = {
  workerd: { conditions: ["workerd", "worker", "browser"], platform: "neutral" },
  "edge-light": { conditions: ["edge-light", "worker", "browser"], platform: "browser" },
  worker: { conditions: ["worker", "browser"], platform: "browser" },
}
const NATIVE = /(^|\/)(binding\.js|lib\/native\.js|[^/]*\.node)$/
// Deno, Bun and workerd come as Linux x64 binaries (scripts/runtimes.sh fetches them).
const LINUX_X64 = process.platform === "linux" && process.arch === "x64"
const ONLY_LINUX_X64 = !LINUX_X64 && "the runtime binaries fetched by scripts/runtimes.sh are Linux x64 builds"
const runtime = (what) => execFileSync("bash", [path.join(ROOT, "scripts", "runtimes.sh"), what], { encoding: "utf8", timeout: 600000 }).trim()

let dir // a project using the package: node_modules/pusher-native (a copy), @noble/*
let server

/** The package as npm would install it (a copy: Deno loads addons only from inside node_modules). */
function install(into) {
  const pkg = path.join(into, "node_modules", "pusher-native")
  fs.mkdirSync(pkg, { recursive: true })
  const files = ["package.json", "index.js", "index.mjs", "index.d.ts", "index.d.mts", "binding.js", "binding.d.ts", "lib", "web"]
  for (const f of fs.readdirSync(ROOT)) if (/^pusher-native\..*\.node$/.test(f)) files.push(f)
  for (const f of files) fs.cpSync(path.join(ROOT, f), path.join(pkg, f), { recursive: true })
  fs.symlinkSync(path.join(ROOT, "node_modules", "@noble"), path.join(into, "node_modules", "@noble"), "junction")
  fs.writeFileSync(path.join(into, "package.json"), JSON.stringify({ name: "app", private: true, type: "module", dependencies: { "pusher-native": "*", "@noble/hashes": "*", "@noble/ciphers": "*" } }))
  fs.copyFileSync(SCENARIO, path.join(into, "scenario.mjs"))
}

before(async () => {
  require("../scripts/build-web").build()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-native-web-"))
  install(dir)
  server = await recordingServer({
    handler: (req, body, res) => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(req.method === "GET" ? JSON.stringify(CHANNELS_ANSWER) : "{}")
    },
  })
})

after(async () => {
  await server.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

const argsFor = () => ({
  port: server.port,
  masterKey: MASTER_KEY,
  webhookBody: WEBHOOK_BODY,
  webhookSignature: crypto.createHmac("sha256", "secret").update(WEBHOOK_BODY).digest("hex"),
})

function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: dir, timeout: 60000, maxBuffer: 1 << 24, ...options }, (error, stdout, stderr) => {
      const line = stdout.split("\n").find((l) => l.startsWith("RESULT "))
      if (!line) return reject(new Error(`${path.basename(command)} gave no result: ${error ? error.message : ""}\n${stderr}\n${stdout}`))
      resolve(JSON.parse(line.slice(7)))
    })
  })
}

/** An entry file in the project that runs the scenario with `specifier`'s Pusher. */
function entry(name, specifier) {
  const file = path.join(dir, name)
  fs.writeFileSync(
    file,
    `import Pusher from ${JSON.stringify(specifier)}\nimport { scenario } from "./scenario.mjs"\n` +
      `const out = await scenario(Pusher, JSON.parse(process.env.SCENARIO_ARGS))\n` +
      `console.log("RESULT " + JSON.stringify(out))\n`
  )
  return file
}

/** The bundle a platform's bundler makes of `source` (esbuild, as wrangler and Next.js). */
async function bundle(source, conditions, platform, format) {
  const result = await esbuild.build({
    stdin: { contents: source, resolveDir: dir, sourcefile: "entry.mjs", loader: "js" },
    bundle: true,
    write: false,
    metafile: true,
    format,
    conditions,
    platform,
    logLevel: "silent",
  })
  return { code: result.outputFiles[0].text, inputs: Object.keys(result.metafile.inputs) }
}

const hmac = (s) => crypto.createHmac("sha256", "secret").update(s).digest("hex")
const md5 = (s) => crypto.createHash("md5").update(s).digest("hex")

/** What the runtime sent and answered, checked from this side. */
function check(out, requests, build) {
  assert.equal(out.build, build)
  assert.deepEqual(
    requests.map((r) => `${r.method} ${r.url.split("?")[0]}`),
    ["POST /apps/1/events", "POST /apps/1/batch_events", "GET /apps/1/channels", "POST /apps/1/events"]
  )
  for (const r of requests) {
    const [pathname, query] = r.url.split("?")
    const [unsigned, signature] = query.split("&auth_signature=")
    assert.equal(signature, hmac(`${r.method}\n${pathname}\n${unsigned}`), `signature of ${r.method} ${pathname}`)
    const params = new URLSearchParams(unsigned)
    assert.equal(params.get("auth_key"), "key")
    assert.ok(Math.abs(Number(params.get("auth_timestamp")) - Date.now() / 1000) < 600)
    assert.equal(params.get("body_md5"), r.method === "POST" ? md5(r.body) : null)
    assert.equal(r.headers["x-pusher-library"], `pusher-native ${version}`)
    if (r.method === "POST") assert.equal(r.headers["content-type"], "application/json")
  }
  const [trigger, batch, query, encrypted] = requests
  assert.equal(trigger.body, JSON.stringify({ name: "my-event", data: JSON.stringify({ hello: "wörld" }), channels: ["my-channel"], socket_id: "1.2" }))
  assert.equal(batch.body, JSON.stringify({ batch: [{ channel: "a", name: "e1", data: '{"n":1}' }, { channel: "b", name: "e2", data: "two" }] }))
  assert.equal(new URLSearchParams(query.url.split("?")[1]).get("filter_by_prefix"), "presence-")
  assert.equal(new URLSearchParams(query.url.split("?")[1]).get("info"), "user_count")

  const sealed = JSON.parse(JSON.parse(encrypted.body).data)
  const key = crypto.createHash("sha256").update(Buffer.concat([Buffer.from("private-encrypted-room"), Buffer.from(MASTER_KEY, "base64")])).digest()
  const plain = nacl.secretbox.open(Buffer.from(sealed.ciphertext, "base64"), Buffer.from(sealed.nonce, "base64"), key)
  assert.ok(plain, "the encrypted event opens with the channel's key")
  assert.equal(Buffer.from(plain).toString("utf8"), '{"secret":"only for members"}')

  const upstream = new Upstream({ appId: "1", key: "key", secret: "secret", encryptionMasterKeyBase64: MASTER_KEY })
  assert.deepEqual(out.trigger, { status: 200, body: {} })
  assert.deepEqual(out.batch, { status: 200 })
  assert.deepEqual(out.channels, CHANNELS_ANSWER)
  assert.deepEqual(out.encrypted, { status: 200 })
  assert.deepEqual(out.authEncrypted, upstream.authorizeChannel("123.456", "private-encrypted-room"))
  assert.deepEqual(out.authPresence, upstream.authorizeChannel("123.456", "presence-room", { user_id: "u1", user_info: { name: "Ann" } }))
  assert.equal(out.webhookValid, true)
  assert.deepEqual(out.webhookEvents, JSON.parse(WEBHOOK_BODY).events)
  assert.equal(out.webhookForged, false)
  assert.equal(out.verifyWebhook, true)
  assert.equal(out.syncThrow, "Invalid channel name: 'bad channel!'")
}

/** Runs `start()` (which resolves to the scenario's output) and checks it against the server's record. */
async function scenarioIn(start, build = "web") {
  server.requests.length = 0
  const out = await start(argsFor())
  if (out && out.error) assert.fail(out.error)
  check(out, server.requests, build)
}

describe("bundling for Workers and edge runtimes", () => {
  for (const [name, { conditions, platform }] of Object.entries(PLATFORMS)) {
    test(`${name}: "pusher-native" is the web build, and nothing reaches the addon's loader`, async () => {
      const { inputs, code } = await bundle('import Pusher from "pusher-native"; export default Pusher', conditions, platform, "esm")
      assert.ok(inputs.some((f) => f.endsWith("node_modules/pusher-native/web/index.mjs")), inputs.join("\n"))
      assert.deepEqual(inputs.filter((f) => NATIVE.test(f)), [])
      assert.doesNotMatch(code, /process\.dlopen|\.node["']/)
    })
  }

  test('"pusher-native/web" is the web build under any conditions', async () => {
    const { inputs } = await bundle('import Pusher from "pusher-native/web"; export default Pusher', [], "neutral", "esm")
    assert.deepEqual(inputs.filter((f) => NATIVE.test(f)), [])
    assert.ok(inputs.some((f) => f.endsWith("pusher-native/web/index.mjs")))
  })

  test("Node's conditions keep the native build (the check above can fail)", async () => {
    const external = { name: "addon", setup: (b) => b.onResolve({ filter: /\.node$/ }, (a) => ({ path: a.path, external: true })) }
    const result = await esbuild.build({
      stdin: { contents: 'import Pusher from "pusher-native"; export default Pusher', resolveDir: dir, loader: "js" },
      bundle: true, write: false, metafile: true, format: "esm", platform: "node", logLevel: "silent", plugins: [external],
    })
    const inputs = Object.keys(result.metafile.inputs)
    assert.ok(inputs.some((f) => NATIVE.test(f)), inputs.join("\n"))
  })
})

describe("real runtimes", () => {
  const deno = LINUX_X64 ? runtime("deno") : undefined
  const bun = LINUX_X64 ? runtime("bun") : undefined
  const version = (binary, args) => (binary ? execFileSync(binary, args, { encoding: "utf8" }).trim() : "")
  const env = (args) => ({ ...process.env, SCENARIO_ARGS: JSON.stringify(args), DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" })

  test(`Deno ${version(deno, ["--version"]).split(" ")[1]}: pusher-native/web`, { skip: ONLY_LINUX_X64 }, async () => {
    const file = entry("deno-web.mjs", "pusher-native/web")
    await scenarioIn((args) => run(deno, ["run", "-A", file], { env: env(args) }))
  })

  test("Deno: the native build (\"pusher-native\" under Deno's conditions)", { skip: ONLY_LINUX_X64 }, async () => {
    const file = entry("deno-native.mjs", "pusher-native")
    await scenarioIn((args) => run(deno, ["run", "-A", file], { env: env(args) }), "native")
  })

  test(`Bun ${version(bun, ["--version"])}: pusher-native/web`, { skip: ONLY_LINUX_X64 }, async () => {
    const file = entry("bun-web.mjs", "pusher-native/web")
    await scenarioIn((args) => run(bun, ["run", file], { env: env(args) }))
  })

  test("Bun: the native build (\"pusher-native\" under Bun's conditions)", { skip: ONLY_LINUX_X64 }, async () => {
    const file = entry("bun-native.mjs", "pusher-native")
    await scenarioIn((args) => run(bun, ["run", file], { env: env(args) }), "native")
  })

  test(`Vercel edge-runtime ${require("edge-runtime/package.json").version}: a bundle made with the edge-light conditions`, async () => {
    const { EdgeRuntime } = require("edge-runtime")
    const { code, inputs } = await bundle(
      'import Pusher from "pusher-native"\nimport { scenario } from "./scenario.mjs"\n' +
        "globalThis.runScenario = (args) => scenario(Pusher, args).then(JSON.stringify, (e) => JSON.stringify({ error: String(e && e.stack || e) }))",
      PLATFORMS["edge-light"].conditions, "browser", "iife"
    )
    assert.deepEqual(inputs.filter((f) => NATIVE.test(f)), [])
    const runtime = new EdgeRuntime({ initialCode: code })
    assert.equal(runtime.evaluate("typeof require + typeof process"), "undefinedundefined", "no Node here")
    await scenarioIn(async (args) => JSON.parse(await runtime.evaluate(`runScenario(${JSON.stringify(args)})`)))
  })

  test("workerd (miniflare): a Worker bundled with the workerd conditions", { skip: ONLY_LINUX_X64, timeout: 600000 }, async () => {
    const miniflare = runtime("miniflare")
    const node22 = runtime("node22")
    const { code } = await bundle(
      'import Pusher from "pusher-native"\nimport { scenario } from "./scenario.mjs"\n' +
        "export default { async fetch(request) {\n" +
        '  const args = JSON.parse(new URL(request.url).searchParams.get("args"))\n' +
        "  try { return Response.json(await scenario(Pusher, args)) }\n" +
        "  catch (e) { return Response.json({ error: String(e && e.stack || e) }) }\n} }\n",
      PLATFORMS.workerd.conditions, "neutral", "esm"
    )
    const worker = path.join(dir, "worker.mjs")
    fs.writeFileSync(worker, code)
    const runner = path.join(__dirname, "web", "miniflare-runner.js")
    await scenarioIn((args) => run(node22, [runner, miniflare, worker, JSON.stringify(args)], { timeout: 120000 }))
  })
})

test("Node without a loadable addon: the load error names pusher-native/web, and that works", () => {
  const fake = path.join(dir, "not-an-addon.node")
  fs.writeFileSync(fake, "not a shared object\n")
  const script = `
    let message
    try { require("pusher-native") } catch (e) { message = e.code + " " + e.message }
    import("pusher-native/web").then(({ default: Pusher }) => {
      const auth = new Pusher({ appId: "1", key: "key", secret: "secret" }).authorizeChannel("1.2", "private-a")
      console.log(JSON.stringify({ message, auth }))
    })`
  const out = JSON.parse(execFileSync(process.execPath, ["-e", script], { cwd: dir, encoding: "utf8", env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: fake } }))
  assert.match(out.message, /^PUSHER_NATIVE_LOAD_FAILED /)
  assert.match(out.message, /import Pusher from "pusher-native\/web"/)
  assert.deepEqual(out.auth, new Upstream({ appId: "1", key: "key", secret: "secret" }).authorizeChannel("1.2", "private-a"))
})

test("typings: pusher-native/web, and pusher-native under the workerd condition, type-check as the same API", () => {
  const project = path.join(dir, "types")
  fs.mkdirSync(project, { recursive: true })
  fs.writeFileSync(
    path.join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, module: "esnext", moduleResolution: "bundler", target: "es2022",
        customConditions: ["workerd"], typeRoots: [path.join(ROOT, "node_modules", "@types")], skipLibCheck: false,
      },
      files: ["worker.mts"],
    })
  )
  fs.writeFileSync(
    path.join(project, "worker.mts"),
    [
      'import Pusher, { RequestError, Token, type ChannelAuthResponse } from "pusher-native/web"',
      'import Conditional from "pusher-native"',
      'const pusher: Pusher = new Conditional({ appId: "1", key: "key", secret: "secret", cluster: "eu" })',
      'const auth: ChannelAuthResponse = pusher.authorizeChannel("1.2", "private-a")',
      'export const status: Promise<number> = pusher.trigger("c", "e", { a: 1 }).then((r) => r.status)',
      "export const checks = [auth.auth, new Token('k', 's').sign('x'), RequestError.name]",
      "// @ts-expect-error: a channel is a string or a list of strings",
      'pusher.trigger(1, "e", {})',
      "",
    ].join("\n")
  )
  const tsc = require.resolve("typescript/bin/tsc")
  let stdout
  try {
    stdout = execFileSync(process.execPath, [tsc, "--pretty", "false", "--listFiles", "-p", project], { encoding: "utf8", timeout: 120000 })
  } catch (e) {
    assert.fail(`tsc: ${e.stdout}${e.stderr}`)
  }
  const read = stdout.split("\n").map((f) => f.replace(/\\/g, "/"))
  assert.ok(read.some((f) => f.endsWith("node_modules/pusher-native/web/index.d.mts")), "the web typings were read")
})
