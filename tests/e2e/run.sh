#!/bin/sh
# Runs the end-to-end scripts: every tests/e2e/tNNNN-*.sh in order, or the
# ones given as arguments, each under a time limit; prints a summary and
# exits non-zero if any failed. Run from anywhere; scripts find the repo root.
#   GANTRY_E2E_TIMEOUT   seconds per script (default 300)
#   GANTRY_E2E_JOBS      scripts run at once (default 1)
set -u
dir=$(cd "$(dirname "$0")" && pwd)
limit=${GANTRY_E2E_TIMEOUT:-300}
if [ $# -gt 0 ]; then
	scripts="$*"
else
	scripts=$(ls "$dir"/t[0-9][0-9][0-9][0-9]-*.sh)
fi
results=$(mktemp -d "${TMPDIR:-/tmp}/gantry-e2e.XXXXXX") || exit 1
trap 'rm -rf "$results"' EXIT
failed=0
passed=0
start=$(date +%s)
for s in $scripts; do
	name=$(basename "$s" .sh)
	t0=$(date +%s)
	timeout -k 10 "$limit" sh "$s" >"$results/$name.out" 2>&1
	rc=$?
	t1=$(date +%s)
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS %-40s %3ss\n' "$name" $((t1 - t0))
	else
		failed=$((failed + 1))
		[ $rc -eq 124 ] && echo "# timed out after ${limit}s" >>"$results/$name.out"
		printf 'FAIL %-40s %3ss (exit %s)\n' "$name" $((t1 - t0)) "$rc"
		sed 's/^/    /' "$results/$name.out"
	fi
done
echo "e2e: $passed passed, $failed failed in $(( $(date +%s) - start ))s"
[ $failed -eq 0 ]
