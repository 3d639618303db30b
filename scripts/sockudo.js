"use strict"
// Starts and stops a real Pusher-protocol server (sockudo 5.2.0) on 127.0.0.1 for the
// end-to-end tests (__test__/e2e.test.js) and the demo (examples/demo.js).
//
//   const { startSockudo } = require("./scripts/sockudo")
//   const server = await startSockudo({ webhookUrl: "http://127.0.0.1:1234/hook" })
//   new Pusher(server.pusherOptions())          // pusher-native / pusher
//   new PusherJs(server.key, server.clientOptions())  // pusher-js
//   await server.stop()
//
// From a shell: `node scripts/sockudo.js start [--port N]` runs one in the foreground
// (Ctrl-C stops it); `node scripts/sockudo.js which` prints the binary it would use.
//
// What this knows about sockudo 5.2.0 (read from its source):
// - `--config <file>`; a `.json` file is parsed as JSON, anything else that fails to parse
//   is dropped *silently* (logging starts after the config is read) and the defaults
//   (0.0.0.0:6001, no apps, redis queue) are used. We therefore check the log for our
//   app's registration before calling the server ready.
// - It also reads config/config.toml or config/config.json relative to its working
//   directory, and environment variables override the file: we start it in a fresh
//   temporary directory with only PATH and HOME in its environment.
// - "http server listening" is logged *before* the socket is bound; a taken port is
//   logged afterwards as "http server error ... Address already in use" and the process
//   exits 0. We confirm that this very PID owns a listening socket on the port.
// - Metrics listen on 0.0.0.0:9601 unless disabled; webhooks need a queue (the default
//   queue driver is redis); the default rate limits (20 websocket connects a minute)
//   are too tight for tests: all three are set here.
// - On SIGTERM it drains for `shutdown_grace_period` seconds (and webhook/queue drains):
//   we set a 0 s grace period and still SIGKILL the PID if it lingers.

const { spawn } = require("child_process")
const crypto = require("crypto")
const fs = require("fs")
const http = require("http")
const net = require("net")
const os = require("os")
const path = require("path")

const SOCKUDO_VERSION = "5.2.0"
const INSTALL_HINT = "bash scripts/sockudo.sh install"
const HOST = "127.0.0.1"

/** The sockudo binary to use, or null: $SOCKUDO_BIN, $CARGO_HOME/bin, ~/.cargo/bin, PATH. */
function sockudoBinary() {
  const candidates = []
  if (process.env.SOCKUDO_BIN) candidates.push(process.env.SOCKUDO_BIN)
  if (process.env.CARGO_HOME) candidates.push(path.join(process.env.CARGO_HOME, "bin", "sockudo"))
  candidates.push(path.join(os.homedir(), ".cargo", "bin", "sockudo"))
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    if (dir) candidates.push(path.join(dir, "sockudo"))
  }
  for (const file of candidates) {
    try {
      fs.accessSync(file, fs.constants.X_OK)
      if (fs.statSync(file).isFile()) return file
    } catch (e) {
      // not there
    }
  }
  return null
}

class SockudoMissingError extends Error {
  constructor() {
    super(`sockudo is not installed (looked in $SOCKUDO_BIN, ~/.cargo/bin and PATH); install it with: ${INSTALL_HINT}`)
    this.name = "SockudoMissingError"
    this.code = "SOCKUDO_MISSING"
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, HOST, () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

const randomId = (bytes) => crypto.randomBytes(bytes).toString("hex")

/** A fresh app: unique id, key and secret, and a base64 master key for encrypted channels. */
function makeApp(overrides = {}, prefix = "pn-e2e") {
  const suffix = randomId(4)
  return {
    id: `${prefix}-${suffix}`,
    key: `key-${suffix}-${randomId(4)}`,
    secret: randomId(16),
    encryptionMasterKeyBase64: crypto.randomBytes(32).toString("base64"),
    ...overrides,
  }
}

/** The sockudo JSON config for one app on 127.0.0.1:port. */
function sockudoConfig({ port, app, webhookUrl, webhookEvents, maxEventPayloadKb }) {
  const appConfig = {
    id: app.id,
    key: app.key,
    secret: app.secret,
    enabled: true,
    max_connections: 1000,
    enable_client_messages: true,
    max_client_events_per_second: 1000,
    enable_user_authentication: true,
    max_event_payload_in_kb: maxEventPayloadKb,
    max_event_batch_size: 10,
    max_event_channels_at_once: 100,
  }
  if (webhookUrl) {
    appConfig.webhooks = [
      {
        url: webhookUrl,
        event_types: webhookEvents,
        retry: { enabled: false },
        request_timeout_ms: 5000,
      },
    ]
  }
  return {
    host: HOST,
    port,
    debug: false,
    mode: "production",
    shutdown_grace_period: 0,
    logging: { colors_enabled: false, include_target: true },
    metrics: { enabled: false, host: HOST, port: 0 },
    queue: { driver: "memory" },
    cache: { driver: "memory" },
    adapter: { driver: "local" },
    rate_limiter: { enabled: false },
    webhooks: { batching: { enabled: false, duration: 50, size: 100 } },
    app_manager: { driver: "memory", array: { apps: [appConfig] } },
  }
}

/** "0100007F:1F90" (or the 32-hex-digit IPv6 form) from /proc/net/tcp* as "127.0.0.1:8080". */
function procAddress(hex) {
  const [ip, port] = hex.split(":")
  const bytes = Buffer.from(ip, "hex")
  for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse() // host-order words
  const address = bytes.length === 4 ? [...bytes].join(".") : `[${bytes.toString("hex").match(/.{4}/g).join(":")}]`
  return `${address}:${parseInt(port, 16)}`
}

/**
 * The TCP addresses `pid` listens on, e.g. ["127.0.0.1:6001"], from /proc (Linux).
 * Returns null where /proc is not available.
 */
function listeningAddresses(pid) {
  const byInode = new Map()
  let any = false
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let table
    try {
      table = fs.readFileSync(file, "utf8")
      any = true
    } catch (e) {
      continue
    }
    for (const line of table.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols.length >= 10 && cols[3] === "0A") byInode.set(cols[9], procAddress(cols[1]))
    }
  }
  if (!any) return null
  const found = []
  let fds
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`)
  } catch (e) {
    return []
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m && byInode.has(m[1])) found.push(byInode.get(m[1]))
    } catch (e) {
      // fd closed meanwhile
    }
  }
  return [...new Set(found)].sort()
}

/** Does `pid` listen on 127.0.0.1:port? (true where /proc is not available.) */
function pidListensOn(pid, port) {
  const addresses = listeningAddresses(pid)
  return addresses === null || addresses.includes(`${HOST}:${port}`)
}

function httpStatus(port, urlPath, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const req = http.get({ host: HOST, port, path: urlPath, timeout: timeoutMs, agent: false }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode))
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", () => resolve(0))
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, "")

// Every sockudo started by this process, so that an abrupt exit still kills them (by PID).
const running = new Set()
process.on("exit", () => {
  for (const child of running) {
    try {
      child.kill("SIGKILL") // a no-op once Node has seen it exit: never a recycled PID
      fs.rmSync(child.configDir, { recursive: true, force: true })
    } catch (e) {
      // already gone
    }
  }
})

async function startOnce(binary, options, port) {
  const app = options.app
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-native-sockudo-"))
  const configPath = path.join(dir, "sockudo.json")
  const config = sockudoConfig({
    port,
    app,
    webhookUrl: options.webhookUrl,
    webhookEvents: options.webhookEvents,
    maxEventPayloadKb: options.maxEventPayloadKb,
  })
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2))

  const started = Date.now()
  // A clean environment: sockudo's environment variables override the config file.
  const env = { PATH: process.env.PATH || "/usr/bin:/bin", HOME: dir, NO_COLOR: "1" }
  const child = spawn(binary, ["--config", configPath], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] })
  child.configDir = dir
  running.add(child)
  let log = ""
  let exited = null
  const onData = (chunk) => {
    log += stripAnsi(chunk.toString("utf8"))
    if (log.length > 4_000_000) log = log.slice(-2_000_000)
    if (options.echo) process.stderr.write(chunk)
  }
  child.stdout.on("data", onData)
  child.stderr.on("data", onData)
  const exitPromise = new Promise((resolve) => {
    // "close", not "exit": the log is complete by then.
    child.on("close", (code, signal) => {
      exited = { code, signal }
      running.delete(child)
      resolve(exited)
    })
    child.on("error", (error) => {
      exited = { code: null, signal: null, error }
      running.delete(child)
      resolve(exited)
    })
  })

  // sockudo waits for deferred work on SIGTERM (e.g. member_removed webhooks, sent 3 s
  // after a member leaves): after `graceMs` we SIGKILL this PID.
  const stop = async (graceMs = 1000) => {
    if (exited) {
      fs.rmSync(dir, { recursive: true, force: true })
      return exited
    }
    try {
      child.kill("SIGTERM")
    } catch (e) {
      // gone
    }
    let timer
    const grace = new Promise((r) => (timer = setTimeout(r, graceMs, "timeout")))
    const outcome = await Promise.race([exitPromise, grace])
    clearTimeout(timer)
    if (outcome === "timeout" && !exited) {
      try {
        child.kill("SIGKILL")
      } catch (e) {
        // gone
      }
      await exitPromise // SIGKILL cannot be ignored
    }
    fs.rmSync(dir, { recursive: true, force: true })
    return exited
  }

  // Ready = this PID listens on the port, /up answers 200, and the log shows our app
  // registered (proof that our config file, not the defaults, is in force).
  const deadline = started + options.timeoutMs
  const escapedId = app.id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  const registered = new RegExp(`registered app\\b[^\\n]*app_id=${escapedId}(\\s|$)`, "m")
  let problem = null
  while (Date.now() < deadline) {
    if (/http server error|Address already in use/.test(log)) {
      problem = "port-taken"
      break
    }
    if (exited) {
      problem = `sockudo exited (code ${exited.code}, signal ${exited.signal})${exited.error ? ": " + exited.error.message : ""}`
      break
    }
    if (/explicit configuration load failed|Configuration validation failed/.test(log)) {
      problem = "sockudo rejected the config file"
      break
    }
    const listen = /http server listening listen_addr=(\S+)/.exec(log)
    if (listen && listen[1] !== `${HOST}:${port}`) {
      // An unparsable file is dropped silently and the defaults (0.0.0.0:6001) used.
      problem = `sockudo ignored the config file (it listens on ${listen[1]})`
      break
    }
    if (registered.test(log) && pidListensOn(child.pid, port) && (await httpStatus(port, "/up")) === 200) {
      if (!/metrics disabled/.test(log)) {
        problem = "sockudo did not apply the config (metrics are enabled)"
        break
      }
      if (!/queue_driver=\S*memory/i.test(log)) {
        problem = "sockudo did not apply the config (queue driver is not memory)"
        break
      }
      return { child, port, dir, configPath, config, stop, logs: () => log, startMs: Date.now() - started }
    }
    await sleep(25)
  }
  await stop(500)
  if (problem === "port-taken") return { portTaken: true }
  const tail = log.split("\n").slice(-25).join("\n")
  throw new Error(`${problem || `sockudo was not ready within ${options.timeoutMs} ms`}\n--- sockudo log (tail) ---\n${tail}`)
}

/**
 * Starts sockudo on 127.0.0.1 with one app. Options:
 *   app            { id, key, secret, encryptionMasterKeyBase64 } (default: a fresh, unique one)
 *   appPrefix      prefix of the generated app id (default "pn-e2e")
 *   port           (default: a free port; retried if it is taken meanwhile)
 *   webhookUrl     where sockudo posts webhooks (none if unset)
 *   webhookEvents  (default: channel_occupied, channel_vacated, member_added, member_removed)
 *   maxEventPayloadKb  per-event data limit, like Pusher's 10 KB (default 10)
 *   timeoutMs      readiness deadline (default 15000)
 *   echo           copy sockudo's log to stderr
 * Resolves to { host, port, appId, key, secret, app, pid, startMs, pusherOptions(), clientOptions(),
 * logs(), stop() }. Rejects with SockudoMissingError (code SOCKUDO_MISSING) when there is no binary.
 */
async function startSockudo(opts = {}) {
  const binary = opts.binary || sockudoBinary()
  if (!binary) throw new SockudoMissingError()
  const options = {
    app: opts.app || makeApp({}, opts.appPrefix),
    webhookUrl: opts.webhookUrl,
    webhookEvents: opts.webhookEvents || ["channel_occupied", "channel_vacated", "member_added", "member_removed"],
    maxEventPayloadKb: opts.maxEventPayloadKb || 10,
    timeoutMs: opts.timeoutMs || 15000,
    echo: !!opts.echo,
  }
  const begun = Date.now()
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = opts.port || (await freePort())
    const result = await startOnce(binary, options, port)
    if (result.portTaken) {
      if (opts.port) throw new Error(`port ${opts.port} on ${HOST} is already in use`)
      continue
    }
    const app = options.app
    return {
      host: HOST,
      port: result.port,
      binary,
      app,
      appId: app.id,
      key: app.key,
      secret: app.secret,
      pid: result.child.pid,
      configPath: result.configPath,
      startMs: Date.now() - begun,
      logs: result.logs,
      stop: result.stop,
      /** The TCP addresses this sockudo listens on (Linux), e.g. ["127.0.0.1:40123"]. */
      listening: () => listeningAddresses(result.child.pid),
      /** Options for `new Pusher(...)` (pusher-native or pusher). */
      pusherOptions(extra = {}) {
        return {
          appId: app.id,
          key: app.key,
          secret: app.secret,
          host: HOST,
          port: result.port,
          useTLS: false,
          encryptionMasterKeyBase64: app.encryptionMasterKeyBase64,
          ...extra,
        }
      },
      /** Options for `new PusherJs(key, ...)` (pusher-js 8, node build). */
      clientOptions(extra = {}) {
        return {
          cluster: "local",
          wsHost: HOST,
          wsPort: result.port,
          forceTLS: false,
          enabledTransports: ["ws"],
          disableStats: true,
          ...extra,
        }
      },
    }
  }
  throw new Error(`could not find a free port for sockudo on ${HOST}`)
}

module.exports = { startSockudo, sockudoBinary, makeApp, listeningAddresses, sockudoConfig, SockudoMissingError, SOCKUDO_VERSION, INSTALL_HINT }

// ---- CLI: node scripts/sockudo.js start [--port N] | which ----
if (require.main === module) {
  const [command = "start", ...rest] = process.argv.slice(2)
  if (command === "which") {
    const binary = sockudoBinary()
    if (!binary) {
      console.error(new SockudoMissingError().message)
      process.exit(1)
    }
    console.log(binary)
  } else if (command === "start") {
    const portArg = rest.indexOf("--port")
    const port = portArg >= 0 ? parseInt(rest[portArg + 1], 10) : undefined
    startSockudo({ port, appPrefix: "pn-local", echo: rest.includes("--verbose") }).then(
      (server) => {
        console.log(`sockudo ${SOCKUDO_VERSION} listening on ws://${HOST}:${server.port} (pid ${server.pid}, ready in ${server.startMs} ms)`)
        console.log(`  appId  ${server.appId}\n  key    ${server.key}\n  secret ${server.secret}`)
        console.log(`  encryptionMasterKeyBase64 ${server.app.encryptionMasterKeyBase64}`)
        console.log("Ctrl-C to stop.")
        const shutdown = () => server.stop().then(() => process.exit(0))
        process.on("SIGINT", shutdown)
        process.on("SIGTERM", shutdown)
      },
      (error) => {
        console.error(error.message)
        process.exit(error.code === "SOCKUDO_MISSING" ? 2 : 1)
      }
    )
  } else {
    console.error("usage: node scripts/sockudo.js start [--port N] [--verbose] | which")
    process.exit(64)
  }
}
