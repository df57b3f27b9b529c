#!/bin/sh
# make demo: gantry's main job on a real example, end to end, on this machine.
#
#   1. `gantry serve` starts the controller and the built-in proxy
#   2. v1 of examples/hello is deployed (2 replicas, staging)
#   3. under a steady client load through the proxy:
#        v2 rolls out (rolling update, readiness-gated, drained)
#        v3 is a bad release (it crashes at start): gantry sees the crash
#           loop and rolls back automatically, traffic never leaves v2
#        `gantry rollback` returns to v1's exact artifact and config
#   4. it prints the history, the events and what the clients saw, then
#      stops everything it started. Exit 0 only if no request failed and the
#      bad release was rolled back.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=$ROOT/gantry
LOADGEN=$ROOT/tests/e2e/helpers/loadgen
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gantry-demo.XXXXXX")
export GANTRY_HOME=$WORK/home
SERVE_PID=
LOAD_PID=

cleanup() {
	[ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null
	if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
		kill -TERM "$SERVE_PID" 2>/dev/null
		i=0
		while kill -0 "$SERVE_PID" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	fi
	[ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

for f in "$G" "$LOADGEN" "$ROOT/examples/hello/hello"; do
	[ -x "$f" ] || { echo "demo: $f is missing: run 'make' first" >&2; exit 2; }
done
cp "$ROOT/examples/hello/hello" "$ROOT/examples/hello/gantry.yaml" "$WORK/"
cd "$WORK" || exit 1
PROXY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
HOST=hello.staging.localhost

step "gantry serve (proxy on 127.0.0.1:$PROXY_PORT)"
# a short restart backoff so the bad release's crash loop shows within seconds
"$G" serve --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" \
	--restart-backoff 200ms >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
i=0
until "$G" status >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "demo: gantry serve did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
	sleep 0.1
done

step "deploy v1"
"$G" deploy hello --env staging --version v1 --wait || exit 1
curl -s -H "Host: $HOST" "http://127.0.0.1:$PROXY_PORT/"

step "client load through the proxy starts (4 connections, keep-alive)"
"$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --host "$HOST" -c 4 --rate 2000 \
	--max-duration 300s --stop-file "$WORK/stop" >"$WORK/load.json" 2>"$WORK/load.err" &
LOAD_PID=$!
sleep 1

step "deploy v2: rolling update (max_surge 1, max_unavailable 0)"
"$G" deploy hello --env staging --version v2 --set env.GREETING=hi --wait || exit 1

step "deploy v3: a bad release that crashes at start"
"$G" deploy hello --env staging --version v3 --set env.CRASH_AFTER_S=0 --wait
v3=$?
[ $v3 -eq 1 ] && echo "=> gantry rolled v3 back automatically (exit 1: the rollout failed)"

step "gantry rollback: back to v1's exact artifact and config"
"$G" rollback hello --env staging --to-revision 1 --wait || exit 1

touch "$WORK/stop"
wait "$LOAD_PID"
LOAD_PID=

step "history"
"$G" history hello --env staging
step "events"
"$G" events hello --env staging
step "status"
"$G" status hello --env staging

step "what the clients saw"
python3 - "$WORK/load.json" "$v3" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
failed = r["non2xx"] + r["errors"]
print(f"requests: {r['requests']}  failed: {failed}  p50: {r['p50_ms']}ms  p99: {r['p99_ms']}ms")
print("responses by version:", ", ".join(f"{k}={v}" for k, v in sorted(r["versions"].items())))
ok = failed == 0 and sys.argv[2] == "1" and "v3" not in r["versions"]
print("demo:", "OK: zero failed requests, the bad release was rolled back automatically" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
