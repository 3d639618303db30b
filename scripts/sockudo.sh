#!/usr/bin/env bash
# sockudo: the Pusher-protocol server the end-to-end tests and `npm run demo` run against.
#
#   bash scripts/sockudo.sh install   install sockudo 5.2.0 with cargo (skipped when present)
#   bash scripts/sockudo.sh start     run one on 127.0.0.1 in the foreground (Ctrl-C stops it),
#                                     with a fresh app; prints the port and credentials
#   bash scripts/sockudo.sh which     print the binary the tests would use
#
# Starting goes through scripts/sockudo.js (the module the tests and the demo use), so the
# config is the same everywhere: loopback only, metrics off, memory queue, clean environment.
set -euo pipefail

VERSION=5.2.0
HERE="$(cd "$(dirname "$0")" && pwd)"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"

log() { printf '[sockudo.sh] %s\n' "$*"; }

installed_version() {
  local bin
  bin="$(command -v sockudo 2>/dev/null || true)"
  [ -n "${SOCKUDO_BIN:-}" ] && bin="$SOCKUDO_BIN"
  [ -n "$bin" ] && [ -x "$bin" ] || return 1
  "$bin" --version 2>/dev/null | awk '{print $2}'
}

install() {
  local have
  have="$(installed_version || true)"
  if [ "$have" = "$VERSION" ]; then
    log "sockudo $VERSION already installed at $(command -v sockudo 2>/dev/null || echo "$SOCKUDO_BIN"); skipping"
    return 0
  fi
  [ -n "$have" ] && log "found sockudo $have; installing $VERSION"

  if ! command -v cargo >/dev/null; then
    log "cargo not found: install Rust first (https://rustup.rs), then rerun: bash scripts/sockudo.sh install"
    exit 1
  fi
  if ! command -v protoc >/dev/null; then
    log "installing protobuf-compiler (sockudo's build needs protoc)"
    if command -v apt-get >/dev/null; then
      local sudo=""
      [ "$(id -u)" -ne 0 ] && sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq protobuf-compiler >/dev/null
    else
      log "no apt-get: install protoc (protobuf-compiler) with your package manager, then rerun"
      exit 1
    fi
  fi

  log "cargo install sockudo $VERSION (local features only); about 12 minutes on 2 cores"
  local start=$SECONDS
  # A heartbeat, so a quiet link step does not look like a hang.
  ( while sleep 60; do log "… still building ($(( (SECONDS - start) / 60 )) min)"; done ) &
  local heartbeat=$!
  trap 'kill "$heartbeat" 2>/dev/null || true' EXIT
  cargo install sockudo --locked --version "$VERSION" --no-default-features --features local
  kill "$heartbeat" 2>/dev/null || true
  trap - EXIT
  log "installed $("$CARGO_BIN/sockudo" --version) in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
}

case "${1:-}" in
  install) install ;;
  start) shift; exec node "$HERE/sockudo.js" start "$@" ;;
  which) exec node "$HERE/sockudo.js" which ;;
  *)
    echo "usage: bash scripts/sockudo.sh install | start [--port N] [--verbose] | which" >&2
    exit 64
    ;;
esac
