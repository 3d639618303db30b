#!/usr/bin/env bash
# The JavaScript runtimes the web build is tested in (__test__/web-runtimes.test.js),
# from the npm registry (npm checks each against the registry's integrity hash), unpacked
# once into a cache outside the repository. Not dev dependencies: each is a binary for one
# platform (npm ci would refuse them elsewhere), and miniflare needs Node >= 22 (npm would
# warn EBADENGINE on Node 20).
#
#   bash scripts/runtimes.sh deno        print the path of the `deno` binary (fetched first if needed)
#   bash scripts/runtimes.sh bun         print the path of the `bun` binary
#   bash scripts/runtimes.sh miniflare   print the directory holding node_modules/miniflare (workerd)
#   bash scripts/runtimes.sh node22      print the Node 22 binary to run miniflare with (scripts/nodes.sh)
#   bash scripts/runtimes.sh install     all of the above
#
# Cache: $PUSHER_NODE_CACHE/.. (default ~/.cache/pusher-native; about 350 MB). Linux x64 only.
set -euo pipefail

DENO=2.9.6
BUN=1.4.5
MINIFLARE=4.20260730.0

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$(dirname "${PUSHER_NODE_CACHE:-$HOME/.cache/pusher-native/node}")"

log() { printf '[runtimes.sh] %s\n' "$*" >&2; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) log "these runtime packages are Linux x64 builds"; exit 1 ;;
esac

node22() { echo "$(bash "$ROOT/scripts/nodes.sh" dir 22)/node"; }

# `npm pack` of one package into $CACHE/<dir>, unpacked; atomic (a concurrent run sees all or nothing).
unpack() {
  local spec="$1" dest="$CACHE/$2" tmp
  [ -d "$dest" ] && return 0
  log "fetching $spec into $dest"
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$CACHE/.runtime.XXXXXX")"
  (cd "$tmp" && npm pack --silent --no-audit --no-fund "$spec" >/dev/null && tar -xzf ./*.tgz)
  rm -rf "$dest"
  mv "$tmp/package" "$dest"
  rm -rf "$tmp"
}

deno() {
  unpack "@deno/linux-x64-glibc@$DENO" "deno-$DENO"
  chmod +x "$CACHE/deno-$DENO/deno"
  echo "$CACHE/deno-$DENO/deno"
}

bun() {
  unpack "@oven/bun-linux-x64@$BUN" "bun-$BUN"
  chmod +x "$CACHE/bun-$BUN/bin/bun"
  echo "$CACHE/bun-$BUN/bin/bun"
}

miniflare() {
  local dest="$CACHE/miniflare-$MINIFLARE" bin tmp
  if [ ! -f "$dest/node_modules/miniflare/package.json" ]; then
    bin="$(dirname "$(node22)")"
    log "installing miniflare@$MINIFLARE into $dest"
    mkdir -p "$CACHE"
    tmp="$(mktemp -d "$CACHE/.miniflare.XXXXXX")"
    echo '{"name":"miniflare-cache","private":true}' >"$tmp/package.json"
    # workerd's postinstall only checks its binary, which its optional dependency ships.
    (cd "$tmp" && PATH="$bin:$PATH" npm install --silent --no-audit --no-fund --ignore-scripts "miniflare@$MINIFLARE" >/dev/null)
    rm -rf "$dest"
    mv "$tmp" "$dest"
  fi
  echo "$dest"
}

case "${1:-}" in
  deno) deno ;;
  bun) bun ;;
  miniflare) miniflare ;;
  node22) node22 ;;
  install) deno >/dev/null && bun >/dev/null && miniflare >/dev/null ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
