"use strict"
// Shared test fixtures: real servers on 127.0.0.1 and throwaway certificates.
const http = require("http")
const https = require("https")
const fs = require("fs")
const os = require("os")
const path = require("path")
const net = require("net")
const { execFileSync, spawn } = require("child_process")

// PUSHER_NATIVE_BUILD=web: the suites that use `Pusher` from here (and compare it with
// `pusher`) run against the web build instead (`npm run test:web`).
const WEB = process.env.PUSHER_NATIVE_BUILD === "web"
const Pusher = WEB ? require(require("../scripts/build-web").build()).default : require("..")

/**
 * An HTTP(S) server on 127.0.0.1 that records every request (method, url, headers,
 * body as a string) and answers with `handler(req, body, res)` or 200 `{}`.
 */
async function recordingServer({ handler, tls } = {}) {
  const requests = []
  const sockets = new Set()
  const onRequest = (req, res) => {
    const chunks = []
    req.on("data", (c) => chunks.push(c))
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      requests.push({ method: req.method, url: req.url, headers: req.headers, body, socket: req.socket })
      if (handler) return handler(req, body, res)
      res.writeHead(200, { "content-type": "application/json" })
      res.end("{}")
    })
  }
  const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest)
  server.on("connection", (s) => {
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = server.address().port
  return {
    server,
    port,
    requests,
    connections: () => server.connectionsCount ?? sockets.size,
    url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** A Pusher (from `Impl`, default pusher-native) pointed at a recording server. */
function pusherFor(server, options = {}, Impl = Pusher) {
  return new Impl({
    appId: "1",
    key: "key",
    secret: "secret",
    host: "127.0.0.1",
    port: server.port,
    useTLS: server.url.startsWith("https"),
    ...options,
  })
}

/**
 * A throwaway CA and a leaf for 127.0.0.1/localhost, made with openssl at test time.
 * Returns { dir, caPem, certPem, keyPem, caPath }.
 */
function makeCerts() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pusher-native-certs-"))
  const run = (args) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
    "-subj", "/CN=pusher-native test CA", "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
  run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost"])
  fs.writeFileSync(path.join(dir, "leaf.ext"),
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
  run(["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem",
    "-days", "2", "-extfile", "leaf.ext"])
  const read = (f) => fs.readFileSync(path.join(dir, f), "utf8")
  return { dir, caPem: read("ca.pem"), certPem: read("leaf.pem"), keyPem: read("leaf.key"), caPath: path.join(dir, "ca.pem") }
}

/** Runs `fn` with Date.now() fixed at `ms`. */
function atTime(ms, fn) {
  const realNow = Date.now
  Date.now = () => ms
  try {
    return fn()
  } finally {
    Date.now = realNow
  }
}

/** Rejects when `promise` has not settled within `ms`, so no test can hang. */
function within(promise, ms, what = "operation") {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/** Resolves with `{ value }` or `{ error }`, never rejects. */
const settled = (promise) => promise.then((value) => ({ value }), (error) => ({ error }))

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort() {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * Runs `node -e code ...args` from the repository root; resolves with
 * `{ code, signal, stdout, stderr, wallMs }`, or rejects (after SIGKILL) past `timeoutMs`.
 */
function runNode(code, { env = {}, args = [], timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(process.execPath, ["-e", code, ...args.map(String)], {
      cwd: path.join(__dirname, ".."),
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c) => (stdout += c))
    child.stderr.on("data", (c) => (stderr += c))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`child did not exit within ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    // "close", not "exit": the child's output may still be unread at its exit.
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, wallMs: performance.now() - started })
    })
  })
}

/**
 * The @types/node the TypeScript checks compile against: the one for the running Node's
 * major (devDependencies `types-node-<major>`, aliases of @types/node, outside @types so
 * tsc never loads two at once), else @types/node (the oldest supported major).
 */
function typesNodeDir() {
  const modules = path.join(__dirname, "..", "node_modules")
  const alias = path.join(modules, `types-node-${process.versions.node.split(".")[0]}`)
  return fs.existsSync(alias) ? alias : path.join(modules, "@types", "node")
}

module.exports = {
  WEB,
  Pusher,
  Upstream: require("pusher"),
  recordingServer,
  pusherFor,
  makeCerts,
  atTime,
  within,
  settled,
  closedPort,
  runNode,
  typesNodeDir,
}
