#!/usr/bin/env bash
# Adds the host name the Happy Eyeballs test needs: pusher-native-dual.test resolving to
# ::1 first, then 127.0.0.1 (both on the loopback interface). Idempotent; needs root.
set -euo pipefail
HOSTS=${HOSTS_FILE:-/etc/hosts}
NAME=pusher-native-dual.test
for addr in ::1 127.0.0.1; do
  if ! grep -Eq "^[[:space:]]*${addr//./\\.}[[:space:]]+([^#]*[[:space:]])?${NAME//./\\.}([[:space:]]|$)" "$HOSTS"; then
    printf '%s %s\n' "$addr" "$NAME" >> "$HOSTS"
  fi
done
