// Node's built-in modules where the runtime has them (Node, Bun, Deno, Workers with
// nodejs_compat), through `process.getBuiltinModule`, which needs no import a bundler
// would try to resolve. The web build uses them only for odd inputs (a KeyObject secret,
// a connection string WHATWG URL reads differently, `util.inspect`), so that those behave
// exactly as in the native build; elsewhere a small stand-in takes their place.
export function builtin(name) {
  try {
    const process = globalThis.process
    return process && typeof process.getBuiltinModule === "function" ? process.getBuiltinModule(name) : undefined
  } catch (e) {
    return undefined
  }
}
