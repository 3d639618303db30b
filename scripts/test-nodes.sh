#!/usr/bin/env bash
# The Node part of `npm test` (`npm run test:node`: every __test__ file, then the network
# tests again on the tokio transport) on every tested Node.js version in turn, one after
# the other. The addon is built once beforehand (N-API: one binary for every version), and
# the Rust tests run once, in `npm test`.
#
#   npm run test:nodes                         every version in scripts/nodes.sh
#   PUSHER_TEST_NODES="22 26" npm run test:nodes   just those majors
#   PUSHER_TEST_NODES=current npm run test:nodes   just the Node on PATH (any platform)
#
# Every version runs even when an earlier one fails; the summary at the end gives the
# counts and time per version, and the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

majors="${PUSHER_TEST_NODES:-$(bash scripts/nodes.sh versions | cut -d. -f1 | tr '\n' ' ')}"
logs="$(mktemp -d "${TMPDIR:-/tmp}/pusher-native-test-nodes.XXXXXX")"
trap 'rm -rf "$logs"' EXIT

summary=()
total_tests=0 total_pass=0 total_fail=0 failed=0

# Sums the test runner's closing counts (the spec reporter's `ℹ pass N`, or TAP's `# pass N`
# if a reporter is not given) over the runs in one log. `test:node` asks for spec, so the
# counts are the same kind on every Node (TAP, Node 20 and 22's default when piped, counts
# differently).
count() { grep -aE "^(#|ℹ) $1 [0-9]+$" "$2" | awk '{ n += $3 } END { print n + 0 }'; }

for major in $majors; do
  if [ "$major" = current ]; then
    dir="$(dirname "$(command -v node)")"
  else
    dir="$(bash scripts/nodes.sh dir "$major")" || { summary+=("Node $major: could not be installed"); failed=1; continue; }
  fi
  version="$(PATH="$dir:$PATH" node -v)"
  echo
  echo "=================== Node $version ($dir/node) ==================="
  log="$logs/$major.log"
  start=$SECONDS
  PATH="$dir:$PATH" npm run --silent test:node 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  secs=$((SECONDS - start))
  tests=$(count tests "$log") pass=$(count pass "$log") fail=$(count fail "$log")
  total_tests=$((total_tests + tests)) total_pass=$((total_pass + pass)) total_fail=$((total_fail + fail))
  verdict=ok
  if [ "$status" -ne 0 ]; then verdict="FAILED (exit $status)"; failed=1; fi
  summary+=("$(printf 'Node %-9s %4d tests, %4d pass, %3d fail  %3dm%02ds  %s' "$version" "$tests" "$pass" "$fail" $((secs / 60)) $((secs % 60)) "$verdict")")
done

echo
echo "=================== every Node ==================="
printf '%s\n' "${summary[@]}"
# The closing lines, in the test runner's TAP form, over every version.
echo "# tests $total_tests"
echo "# pass $total_pass"
echo "# fail $total_fail"
exit "$failed"
