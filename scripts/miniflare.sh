#!/usr/bin/env bash
# miniflare (Cloudflare's local Workers runtime: workerd inside) for the web build's
# Workers test. It needs Node >= 22, so it is not a dev dependency (npm would warn
# EBADENGINE on Node 20): it is installed with Node 22 (scripts/nodes.sh) into a cache
# outside the repository, from the npm registry, checked against package-lock-style
# integrity by npm.
#
#   bash scripts/miniflare.sh dir      print the directory holding node_modules/miniflare
#                                      (installed first if needed)
#   bash scripts/miniflare.sh node     print the Node 22 binary to run it with
#
# Cache: $PUSHER_NODE_CACHE/../miniflare-<version>, default ~/.cache/pusher-native/ (~130 MB).
set -euo pipefail

VERSION=4.20260730.0
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$(dirname "${PUSHER_NODE_CACHE:-$HOME/.cache/pusher-native/node}")"
DEST="$CACHE/miniflare-$VERSION"

log() { printf '[miniflare.sh] %s\n' "$*" >&2; }

node22() { echo "$(bash "$ROOT/scripts/nodes.sh" dir 22)/node"; }

install() {
  [ -f "$DEST/node_modules/miniflare/package.json" ] && return 0
  local bin tmp
  bin="$(dirname "$(node22)")"
  log "installing miniflare@$VERSION into $DEST"
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$CACHE/.miniflare.XXXXXX")"
  echo '{"name":"miniflare-cache","private":true}' >"$tmp/package.json"
  # workerd's own postinstall only checks its binary; its optional dependency ships it.
  (cd "$tmp" && PATH="$bin:$PATH" npm install --silent --no-audit --no-fund --ignore-scripts "miniflare@$VERSION" >/dev/null)
  rm -rf "$DEST"
  mv "$tmp" "$DEST" # atomic on one filesystem: a concurrent run sees all or nothing
}

case "${1:-}" in
  dir)
    install
    echo "$DEST"
    ;;
  node)
    node22
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
