// `util` for the web build: Node's where the runtime has it; elsewhere `inspect.custom`
// (a registered symbol, the same in every realm), a JSON `inspect` and `types`.
import { builtin } from "./builtins.mjs"

const node = builtin("util")

function jsonInspect(value) {
  try {
    return JSON.stringify(value)
  } catch (e) {
    return String(value)
  }
}
jsonInspect.custom = Symbol.for("nodejs.util.inspect.custom")

export const inspect = node ? node.inspect : jsonInspect
export const types = node
  ? node.types
  : {
      isAnyArrayBuffer: (v) =>
        v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && v instanceof SharedArrayBuffer),
    }
