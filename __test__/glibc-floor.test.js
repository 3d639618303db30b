"use strict"
// The linux-x64-gnu addon must load on every glibc the official Node binaries run on
// (2.28 and up): built against napi-rs's glibc 2.17 sysroot (scripts/build.js), it asks
// for no symbol version above 2.17. Read from the ELF's version needs (.gnu.version_r),
// the table the dynamic loader checks; a host build on a current distro needs 2.34+.
const test = require("node:test")
const assert = require("node:assert/strict")
const fs = require("node:fs")
const path = require("node:path")
const { execFileSync } = require("node:child_process")

const FLOOR = "2.17"
const ADDON = path.join(__dirname, "..", "pusher-native.linux-x64-gnu.node")
const SHT_GNU_VERNEED = 0x6ffffffe

/** Every (file, version) an ELF64 little-endian object needs, e.g. ["libc.so.6", "GLIBC_2.14"]. */
function versionNeeds(file) {
  const b = fs.readFileSync(file)
  assert.equal(b.toString("latin1", 0, 4), "\x7fELF", file + " is not an ELF file")
  assert.deepEqual([b[4], b[5]], [2, 1], "ELF64, little-endian")
  const shoff = Number(b.readBigUInt64LE(0x28))
  const shentsize = b.readUInt16LE(0x3a)
  const section = (i) => {
    const at = shoff + i * shentsize
    return { type: b.readUInt32LE(at + 4), offset: Number(b.readBigUInt64LE(at + 0x18)), link: b.readUInt32LE(at + 0x28), info: b.readUInt32LE(at + 0x2c) }
  }
  const needs = []
  for (let i = 0; i < b.readUInt16LE(0x3c); i++) {
    const verneed = section(i)
    if (verneed.type !== SHT_GNU_VERNEED) continue
    const strings = section(verneed.link).offset
    const string = (at) => b.toString("latin1", strings + at, b.indexOf(0, strings + at))
    // Elf64_Verneed {vn_version:2, vn_cnt:2, vn_file:4, vn_aux:4, vn_next:4}, each with
    // vn_cnt Elf64_Vernaux {vna_hash:4, vna_flags:2, vna_other:2, vna_name:4, vna_next:4}.
    for (let n = 0, vn = verneed.offset; n < verneed.info; n++, vn += b.readUInt32LE(vn + 12)) {
      for (let k = 0, aux = vn + b.readUInt32LE(vn + 8); k < b.readUInt16LE(vn + 2); k++, aux += b.readUInt32LE(aux + 12)) {
        needs.push([string(b.readUInt32LE(vn + 4)), string(b.readUInt32LE(aux + 8))])
      }
    }
  }
  return needs
}

const compare = (a, b) => {
  const [x, y] = [a.split(".").map(Number), b.split(".").map(Number)]
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0)
  return 0
}

/** The highest GLIBC_x.y an object needs. */
function glibcFloor(file) {
  const versions = versionNeeds(file)
    .map(([, name]) => /^GLIBC_(\d+(?:\.\d+)*)$/.exec(name))
    .filter(Boolean)
    .map((m) => m[1])
  assert.ok(versions.length > 0, "no GLIBC_ version needs in " + file)
  return versions.sort(compare).at(-1)
}

const linuxGnu = process.platform === "linux" && process.arch === "x64" && !!process.report.getReport().header.glibcVersionRuntime

test("the reader agrees with objdump -T on node's own binary", { skip: !linuxGnu }, (t) => {
  let dump
  try {
    dump = execFileSync("objdump", ["-T", process.execPath], { encoding: "utf8", maxBuffer: 1 << 28 })
  } catch {
    return t.skip("no objdump")
  }
  const fromObjdump = [...new Set(dump.match(/GLIBC_\d+(?:\.\d+)*/g))].map((v) => v.slice(6)).sort(compare).at(-1)
  assert.equal(glibcFloor(process.execPath), fromObjdump)
})

test(`the linux-x64-gnu addon needs glibc <= ${FLOOR}`, { skip: !linuxGnu }, () => {
  const floor = glibcFloor(ADDON)
  assert.ok(compare(floor, FLOOR) <= 0, `${path.basename(ADDON)} needs GLIBC_${floor}; build it with npm run build (scripts/build.js)`)
})
