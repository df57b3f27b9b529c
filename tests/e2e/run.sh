#!/bin/sh
# Runs the end-to-end scripts: every tests/e2e/tNNNN-*.sh in order, or the
# ones given as arguments (paths, file names, or prefixes such as t0100),
# each under a time limit; prints a summary and exits non-zero if any failed.
# Run from anywhere; the scripts run with the repository root as cwd (they
# cd into their own trash directory) and find the repo root themselves.
#
#   GANTRY_E2E_TIMEOUT   seconds per script (default 300; twice that for a script
#                        marked "# e2e: slow"). On expiry the
#                        script's process group gets SIGTERM (test-lib.sh's trap
#                        then stops everything the script started), SIGKILL 10 s later.
#   GANTRY_E2E_JOBS      scripts run at once (default 1; N > 1: a pool of N, each
#                        reported when it ends; scripts with a "# e2e: slow" line
#                        start first, so a long one never runs alone at the end)
#   GANTRY_E2E_VERBOSE=1 show every script's output, not only failing ones
#   GANTRY               the binary under test (default: ./gantry at the root)
# plus what tests/e2e/lib/test-lib.sh reads (GANTRY_TEST_VERBOSE, GANTRY_TEST_KEEP).
#
# A script passes when it exits 0 and its TAP output has a plan ("1..N") and
# no "not ok" line other than a "# TODO" known breakage; "1..0 # SKIP reason"
# counts as skipped.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$dir/../.." && pwd)
cd "$root" || exit 1
limit=${GANTRY_E2E_TIMEOUT:-300}
jobs=${GANTRY_E2E_JOBS:-1}
case $jobs in '' | *[!0-9]* | 0) jobs=1 ;; esac
GANTRY=${GANTRY:-$root/gantry}
case $GANTRY in
/*) ;;
*/*) GANTRY=$root/$GANTRY ;;
esac
export GANTRY

scripts=
if [ $# -gt 0 ]; then
	for a in "$@"; do
		found=
		for s in "$a" "$dir/$a" "$dir/$(basename "$a")" "$dir/$a.sh" "$dir/$a"-*.sh; do
			if [ -f "$s" ]; then
				found=$(cd "$(dirname "$s")" && pwd)/$(basename "$s")
				break
			fi
		done
		if [ -z "$found" ]; then
			echo "run.sh: no test script matches '$a'" >&2
			exit 2
		fi
		scripts="$scripts $found"
	done
else
	slow=
	for s in "$dir"/t[0-9][0-9][0-9][0-9]-*.sh; do
		[ -f "$s" ] || continue
		if [ "$jobs" -gt 1 ] && head -n 12 "$s" | grep -q '^# e2e: slow'; then
			slow="$slow $s"
		else
			scripts="$scripts $s"
		fi
	done
	scripts="$slow $scripts"
fi
if [ -z "$scripts" ]; then
	echo "run.sh: no test scripts in $dir" >&2
	exit 2
fi

results=$(mktemp -d "${TMPDIR:-/tmp}/gantry-e2e.XXXXXX") || exit 1
trap 'rm -rf "$results"' EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

# run_one SCRIPT: runs it, leaves NAME.out, NAME.rc and NAME.secs in $results.
run_one() {
	name=$(basename "$1" .sh)
	t0=$(date +%s)
	_limit=$limit
	head -n 12 "$1" | grep -q '^# e2e: slow' && _limit=$((limit * 2))
	if [ -x "$1" ]; then
		timeout -k 10 "$_limit" "$1" >"$results/$name.out" 2>&1 </dev/null
	else
		timeout -k 10 "$_limit" sh "$1" >"$results/$name.out" 2>&1 </dev/null
	fi
	_rc=$?
	echo $(($(date +%s) - t0)) >"$results/$name.secs"
	echo $_rc >"$results/$name.rc"
}

failed=0
passed=0
skipped=0
# report SCRIPT: judges a finished script and prints its line.
report() {
	name=$(basename "$1" .sh)
	out=$results/$name.out
	rc=$(cat "$results/$name.rc")
	secs=$(cat "$results/$name.secs")
	why=
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		why="timed out (limit ${limit}s, twice that if marked slow)"
	elif [ "$rc" -ne 0 ]; then
		why="exit $rc"
	elif grep '^not ok' "$out" | grep -qv '# TODO'; then
		why="a test failed but the script exited 0"
	elif ! grep -q '^1\.\.[0-9]' "$out"; then
		why="no TAP plan: the script did not reach test_done"
	fi
	if [ -n "$why" ]; then
		failed=$((failed + 1))
		printf 'FAIL %-40s %3ss (%s)\n' "$name" "$secs" "$why"
		sed 's/^/    /' "$out"
	elif grep -q '^1\.\.0 # SKIP' "$out"; then
		skipped=$((skipped + 1))
		printf 'SKIP %-40s %3ss (%s)\n' "$name" "$secs" \
			"$(sed -n 's/^1\.\.0 # SKIP //p' "$out" | head -n 1)"
	else
		passed=$((passed + 1))
		printf 'PASS %-40s %3ss\n' "$name" "$secs"
		[ "${GANTRY_E2E_VERBOSE:-}" = 1 ] && sed 's/^/    /' "$out"
	fi
	return 0
}

start=$(date +%s)
if [ "$jobs" -eq 1 ]; then
	for s in $scripts; do
		run_one "$s"
		report "$s"
	done
else
	# a pool of $jobs: a script starts as soon as one ends (run_one writes
	# NAME.rc last), and each is reported when it ends, in that order; the
	# last "-" waits for the pool to empty
	running=
	for s in $scripts -; do
		while :; do
			left=
			n=0
			for r in $running; do
				if [ -f "$results/$(basename "$r" .sh).rc" ]; then
					report "$r"
				else
					left="$left $r"
					n=$((n + 1))
				fi
			done
			running=$left
			[ "$s" = - ] && [ $n -eq 0 ] && break
			[ "$s" != - ] && [ $n -lt "$jobs" ] && break
			sleep 1
		done
		[ "$s" = - ] && continue
		run_one "$s" &
		running="$running $s"
	done
	wait
fi
echo "e2e: $passed passed, $failed failed, $skipped skipped in $(($(date +%s) - start))s"
[ $failed -eq 0 ]
