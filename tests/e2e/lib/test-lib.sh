# test-lib.sh - the library every tests/e2e/tNNNN-*.sh sources (after git's t/test-lib.sh).
#
#   #!/bin/sh
#   test_description='what this script checks'
#   . "$(dirname "$0")/lib/test-lib.sh"
#
#   test_expect_success 'hello answers' '
#       port=$(free_port) &&
#       spawn_bg hello env PORT=$port "$HELLO" &&
#       wait_for 5 "http_get http://127.0.0.1:$port/health" &&
#       test "$(http_code http://127.0.0.1:$port/)" = 200
#   '
#   test_done
#
# POSIX sh (dash) compatible. After sourcing:
#   ROOT      the repository root (absolute)        TRASH  a fresh empty directory (the cwd)
#   GANTRY    ${GANTRY:-$ROOT/gantry}, absolute      GANTRY_HOME=$TRASH/home (exported)
#   HELLO     $ROOT/examples/hello/hello             LOADGEN $ROOT/tests/e2e/helpers/loadgen
#
# Bodies run in the test's own shell with `eval` (variables they set stay set)
# and without `set -e`: chain the steps with && so that a failing step fails
# the test. A body's output is hidden unless it fails (or GANTRY_TEST_VERBOSE=1).
# Mind that `a && b &` puts the whole list `a && b` in the background: write
# `a && { b & } && pid=$!`.
#
# Everything a test starts is stopped when the script exits (normally, on an
# error, on SIGINT/SIGTERM, e.g. from run.sh's timeout): each spawn_bg process
# group and session, then every process whose environment holds
# GANTRY_HOME=$GANTRY_HOME (replicas started by a gantry daemon under test).
# $TRASH is removed, except when a test failed and GANTRY_TEST_KEEP=1.
#
# Environment: GANTRY (binary under test), GANTRY_TEST_HELLO and
# GANTRY_TEST_LOADGEN (absolute paths of other builds), GANTRY_TEST_VERBOSE=1 (show every
# body's output), GANTRY_TEST_KEEP=1 (keep $TRASH of a failed script),
# TMPDIR (where trash directories go).

set -u

TEST_NAME=$(basename "$0" .sh)
TEST_DIRECTORY=$(cd "$(dirname "$0")" && pwd)
# GANTRY_TEST_ROOT: for scripts outside tests/e2e (t0000 runs such scripts)
ROOT=${GANTRY_TEST_ROOT:-$(cd "$TEST_DIRECTORY/../.." && pwd)}
if [ ! -f "$ROOT/tests/e2e/lib/test-lib.sh" ]; then
	echo "Bail out! cannot find the repository root from $0 (set GANTRY_TEST_ROOT)"
	exit 1
fi

GANTRY=${GANTRY:-$ROOT/gantry}
case $GANTRY in
/*) ;;
*/*) GANTRY=$(pwd)/$GANTRY ;;       # relative to where we were started
esac
# GANTRY_TEST_HELLO / GANTRY_TEST_LOADGEN: other builds (e.g. sanitized ones)
HELLO=${GANTRY_TEST_HELLO:-$ROOT/examples/hello/hello}
LOADGEN=${GANTRY_TEST_LOADGEN:-$ROOT/tests/e2e/helpers/loadgen}
export GANTRY HELLO LOADGEN ROOT

# The environment must not steer the programs under test.
unset PORT FAIL_RATE LATENCY_MS READY_DELAY_MS UNHEALTHY_AFTER_S CRASH_AFTER_S \
	STARTUP_DELAY_MS ACCESS_LOG GANTRY_VERSION GANTRY_REVISION APP_VERSION \
	http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY 2>/dev/null || :
no_proxy='*'
export no_proxy

_test_count=0
_test_failed=0
_test_fixed=0
_test_broken=0
_test_done_called=
_test_cleaned=

TRASH=$(mktemp -d "${TMPDIR:-/tmp}/gantry-test.$TEST_NAME.XXXXXX") || {
	echo "Bail out! cannot create a trash directory" >&2
	exit 1
}
# others may pass (not list): replicas run as an unprivileged user and
# reach their scratch directory and artifact under $GANTRY_HOME by path
chmod 711 "$TRASH"
GANTRY_HOME=$TRASH/home
export TRASH GANTRY_HOME
mkdir -p "$GANTRY_HOME"
: >"$TRASH/pids"
cd "$TRASH" || exit 1

# fd 7: the script's real stdout, for messages printed while a body's output
# is redirected (a signal arriving in the middle of a test)
exec 7>&1

say() {
	echo "# $*"
}

# ---- cleanup ----

# Prints the pids of processes whose environment holds GANTRY_HOME=$1 (the
# daemon, the proxy) or the GANTRY_TAG of that home (replicas: the id in
# $1/instance-id; they are never told HOME).
_procs_of_home() {
	_tag=$(cat "$1/instance-id" 2>/dev/null) || _tag=
	{
		grep -lzxF "GANTRY_HOME=$1" /proc/[0-9]*/environ 2>/dev/null
		[ -n "$_tag" ] && grep -lzxF "GANTRY_TAG=$_tag" /proc/[0-9]*/environ 2>/dev/null
	} |
		sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p' |
		while read -r _p; do
			[ "$_p" = "$$" ] || echo "$_p"
		done
}

_alive() {
	kill -0 "$1" 2>/dev/null
}

# Signals a recorded spawn_bg process: its process group and its session.
_signal_spawned() {
	kill "-$1" "-$2" 2>/dev/null
	kill "-$1" "$2" 2>/dev/null
	pkill "-$1" -s "$2" 2>/dev/null
	:
}

_cleanup() {
	[ -n "$_test_cleaned" ] && return 0
	_test_cleaned=1
	_home=$GANTRY_HOME
	# From here on our own children must not carry the tag we hunt for.
	unset GANTRY_HOME

	# 1. what spawn_bg started (the daemon first, so that it restarts nothing)
	if [ -s "$TRASH/pids" ]; then
		while read -r _pid _name; do
			_signal_spawned TERM "$_pid"
		done <"$TRASH/pids"
		_i=0
		while [ $_i -lt 30 ]; do
			_any=
			while read -r _pid _name; do
				_alive "$_pid" && _any=1
				pgrep -s "$_pid" >/dev/null 2>&1 && _any=1
			done <"$TRASH/pids"
			[ -z "$_any" ] && break
			sleep 0.1
			_i=$((_i + 1))
		done
		while read -r _pid _name; do
			_signal_spawned KILL "$_pid"
		done <"$TRASH/pids"
	fi

	# 2. anything tagged with our GANTRY_HOME (replicas, detached daemons)
	_round=0
	while [ $_round -lt 3 ]; do
		_left=$(_procs_of_home "$_home")
		[ -z "$_left" ] && break
		for _p in $_left; do
			kill -TERM "$_p" 2>/dev/null
		done
		_i=0
		while [ $_i -lt 20 ] && [ -n "$(_procs_of_home "$_home")" ]; do
			sleep 0.1
			_i=$((_i + 1))
		done
		for _p in $(_procs_of_home "$_home"); do
			kill -KILL "$_p" 2>/dev/null
		done
		_round=$((_round + 1))
	done
	if [ -n "$(_procs_of_home "$_home")" ]; then
		echo "# warning: processes tagged GANTRY_HOME=$_home survived cleanup:" \
			$(_procs_of_home "$_home") >&7
	fi
	# (no bare `wait` here: it would block on any survivor)

	cd / || :
	if [ "$_test_failed" -gt 0 ] || [ -z "$_test_done_called" ]; then
		for _log in "$TRASH"/*.log; do
			[ -f "$_log" ] || continue
			echo "# --- last lines of $(basename "$_log") ---"
			tail -n 15 "$_log" | sed 's/^/#   /'
		done >&7
		if [ "${GANTRY_TEST_KEEP:-}" = 1 ]; then
			echo "# kept trash directory $TRASH" >&7
			return 0
		fi
	fi
	rm -rf "$TRASH"
}

_on_exit() {
	_rc=$?
	if [ -z "$_test_done_called" ]; then
		echo "# $TEST_NAME: the script exited (status $_rc) before test_done" >&7
		[ "$_rc" -eq 0 ] && _rc=1
	fi
	_cleanup
	exit "$_rc"
}

_on_signal() {
	echo "# $TEST_NAME: interrupted by SIG$1" >&7
	_test_done_called=interrupted
	_test_failed=$((_test_failed + 1))
	trap - EXIT
	_cleanup
	case $1 in
	INT) exit 130 ;;
	*) exit 143 ;;
	esac
}

trap _on_exit EXIT
trap '_on_signal INT' INT
trap '_on_signal TERM' TERM
trap '_on_signal HUP' HUP

# ---- TAP ----

# Runs BODY (a string) in this shell; its status, output captured.
_run_body() {
	_out=$TRASH/.body-output
	if [ "${GANTRY_TEST_VERBOSE:-}" = 1 ]; then
		eval "$1"
		return $?
	fi
	{ eval "$1"; } >"$_out" 2>&1 </dev/null
}

_show_body() {
	if [ "${GANTRY_TEST_VERBOSE:-}" != 1 ] && [ -s "$TRASH/.body-output" ]; then
		sed 's/^/#	/' "$TRASH/.body-output"
	fi
	printf '%s\n' "$1" | sed -e '/^[[:space:]]*$/d' -e 's/^/#	> /'
}

# test_expect_success DESC BODY
test_expect_success() {
	if [ $# -ne 2 ]; then
		echo "Bail out! test_expect_success takes DESC and BODY (got $# arguments)"
		exit 1
	fi
	_test_count=$((_test_count + 1))
	if _run_body "$2"; then
		echo "ok $_test_count - $1"
	else
		_test_failed=$((_test_failed + 1))
		echo "not ok $_test_count - $1"
		_show_body "$2"
	fi
	return 0
}

# test_expect_failure DESC BODY: a known breakage; does not fail the script.
test_expect_failure() {
	_test_count=$((_test_count + 1))
	if _run_body "$2"; then
		_test_fixed=$((_test_fixed + 1))
		echo "ok $_test_count - $1 # TODO known breakage vanished"
	else
		_test_broken=$((_test_broken + 1))
		echo "not ok $_test_count - $1 # TODO known breakage"
	fi
	return 0
}

# test_skip DESC REASON: records a skipped test.
test_skip() {
	_test_count=$((_test_count + 1))
	echo "ok $_test_count # skip $1 ($2)"
}

test_done() {
	_test_done_called=1
	echo "1..$_test_count"
	if [ "$_test_fixed" -gt 0 ]; then
		say "$_test_fixed known breakage(s) vanished; mark them test_expect_success"
	fi
	if [ "$_test_failed" -gt 0 ]; then
		say "failed $_test_failed among $_test_count test(s)"
		exit 1
	fi
	exit 0
}

# skip_all REASON: the whole script does not apply here.
skip_all() {
	_test_done_called=1
	echo "1..0 # SKIP $*"
	exit 0
}

# require_cmd CMD...: skip_all unless every command exists.
require_cmd() {
	for _c in "$@"; do
		command -v "$_c" >/dev/null 2>&1 || skip_all "missing $_c"
	done
}

# require_gantry: skip_all unless $GANTRY (and hello, loadgen) are built.
require_gantry() {
	[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"
	[ -x "$HELLO" ] || skip_all "$HELLO not built (make examples)"
	[ -x "$LOADGEN" ] || skip_all "$LOADGEN not built (make examples)"
}

# ---- helpers ----

# free_port: prints a TCP port that is free on 127.0.0.1 right now, never the
# same one twice in a script (so two servers started in a row cannot collide).
free_port() {
	_i=0
	while [ $_i -lt 50 ]; do
		_port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()') || return 1
		if ! grep -qx "$_port" "$TRASH/.ports" 2>/dev/null; then
			echo "$_port" >>"$TRASH/.ports"
			echo "$_port"
			return 0
		fi
		_i=$((_i + 1))
	done
	return 1
}

_now_ms() {
	_ns=$(date +%s%N)
	echo $((_ns / 1000000))
}

# wait_for TIMEOUT_S COMMAND: runs COMMAND (eval, output hidden) every 0.1 s
# until it succeeds (return 0) or TIMEOUT_S seconds (may be fractional) pass
# (return 1).
wait_for() {
	_wf_ms=$(awk -v t="$1" 'BEGIN { printf "%d", t * 1000 }')
	_wf_end=$(($(_now_ms) + _wf_ms))
	while :; do
		if (eval "$2") >/dev/null 2>&1; then
			return 0
		fi
		[ "$(_now_ms)" -ge "$_wf_end" ] && return 1
		sleep 0.1
	done
}

# http_get URL [HOST]: prints the body; fails on a transport error (not on 4xx/5xx).
http_get() {
	if [ $# -ge 2 ]; then
		curl -sS --max-time 5 -H "Host: $2" "$1"
	else
		curl -sS --max-time 5 "$1"
	fi
}

# http_code URL [HOST]: prints the status code (000 when there was no response).
http_code() {
	if [ $# -ge 2 ]; then
		curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $2" "$1"
	else
		curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"
	fi
	return 0
}

# spawn_bg NAME CMD [ARG...]: starts CMD in the background in a new session
# (so that its whole process tree can be killed), stdout+stderr to
# $TRASH/NAME.log, stdin /dev/null. Sets SPAWNED_PID; pid_of NAME finds it later.
# Call it in the test's shell, not in $(...), so that wait_bg can reap it.
spawn_bg() {
	_name=$1
	shift
	setsid "$@" >"$TRASH/$_name.log" 2>&1 </dev/null &
	SPAWNED_PID=$!
	echo "$SPAWNED_PID $_name" >>"$TRASH/pids"
}

# pid_of NAME: the pid of the latest spawn_bg NAME.
pid_of() {
	awk -v n="$1" '$2 == n { p = $1 } END { if (p == "") exit 1; print p }' "$TRASH/pids"
}

# kill_bg NAME [SIGNAL]: signals only the process itself (e.g. TERM to test
# a graceful stop); default TERM.
kill_bg() {
	_p=$(pid_of "$1") || return 1
	kill "-${2:-TERM}" "$_p"
}

# wait_bg NAME [TIMEOUT_S]: waits for a spawn_bg process to exit and returns
# its exit status (124 if it is still running after TIMEOUT_S, default 10).
wait_bg() {
	_p=$(pid_of "$1") || return 1
	wait_for "${2:-10}" "! kill -0 $_p" || return 124
	wait "$_p"
}

# write_spec: writes $TRASH/gantry.yaml from stdin and puts a copy of the hello
# binary beside it, so that a spec can say `run: ./hello`.
write_spec() {
	cat >"$TRASH/gantry.yaml" && cp "$HELLO" "$TRASH/hello"
}

# json_get PATH < JSON: prints the value at a dotted PATH ("codes.200",
# "replicas.0.pid", "versions.v1.2" where "v1.2" is one key: the longest key
# that exists wins); strings raw, other values as JSON. Fails when absent.
json_get() {
	python3 -c 'import json, sys
d = json.load(sys.stdin)
parts = sys.argv[1].split(".") if sys.argv[1] else []
i = 0
while i < len(parts):
    if isinstance(d, list):
        d = d[int(parts[i])]
        i += 1
    elif isinstance(d, dict):
        for j in range(len(parts), i, -1):
            k = ".".join(parts[i:j])
            if k in d:
                d = d[k]
                i = j
                break
        else:
            sys.exit("json_get: no key %r" % parts[i])
    else:
        sys.exit("json_get: %r is not an object or array" % ".".join(parts[:i]))
print(d if isinstance(d, str) else json.dumps(d))' "$1"
}

# test_cmp EXPECTED ACTUAL: like cmp, but shows a diff when they differ.
test_cmp() {
	diff -u "$1" "$2"
}

# test_must_fail CMD...: succeeds when CMD exits with 1..125 (a clean failure,
# not a crash by signal and not "command not found").
test_must_fail() {
	"$@"
	_rc=$?
	if [ $_rc -eq 0 ]; then
		echo "test_must_fail: command succeeded: $*" >&2
		return 1
	fi
	if [ $_rc -gt 125 ]; then
		echo "test_must_fail: command died or was not found (status $_rc): $*" >&2
		return 1
	fi
	return 0
}

# test_expect_code CODE CMD...: succeeds when CMD exits with exactly CODE.
test_expect_code() {
	_want=$1
	shift
	"$@"
	_rc=$?
	if [ $_rc -ne "$_want" ]; then
		echo "test_expect_code: expected status $_want, got $_rc: $*" >&2
		return 1
	fi
	return 0
}
