#!/bin/sh
# make demo: gantry's main job on a real example, end to end, on this machine.
#
#   1. `gantry serve` starts the controller and the built-in proxy
#   2. v1 of examples/hello is deployed to production (3 replicas)
#   3. under a steady client load through the proxy:
#        v2 is a bad release (30% of its answers are 500s): the canary gets
#           10% of the traffic, the SLO analysis fails, gantry rolls it back
#           on its own; the canary shield retries the canary's failures on
#           the stable revision, so clients see none of them
#        v3 is good: 10% -> analysis -> 50% -> analysis -> 100%
#   4. it prints the history, the timeline and what the clients saw, then
#      stops everything it started. Exit 0 only if v2 was rolled back, v3
#      promoted, and no client request failed.
#
# GANTRY_DEMO_RUNTIME=docker (`make demo-docker`): the same, with the
# replicas as containers of an image FROM scratch, run by a private Docker
# Engine the demo starts and stops itself (examples/dockerd-private.sh).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=$ROOT/gantry
LOADGEN=$ROOT/tests/e2e/helpers/loadgen
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gantry-demo.XXXXXX")
# replicas run as an unprivileged user (gantry-run) when serve is root: they
# must be able to pass through to their scratch directory under HOME
chmod 711 "$WORK"
export GANTRY_HOME=$WORK/home
SERVE_PID=
LOAD_PID=

RUNTIME=${GANTRY_DEMO_RUNTIME:-process}
SPEC=gantry.yaml
[ "$RUNTIME" = docker ] && SPEC=gantry-docker.yaml
. "$ROOT/examples/dockerd-private.sh"

cleanup() {
	[ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null
	if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
		kill -TERM "$SERVE_PID" 2>/dev/null
		i=0
		while kill -0 "$SERVE_PID" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	fi
	dk_stop
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
cp "$ROOT/examples/hello/hello" "$WORK/"
cp "$ROOT/examples/hello/$SPEC" "$WORK/gantry.yaml"
cd "$WORK" || exit 1
if [ "$RUNTIME" = docker ]; then
	step "a private Docker Engine, and the image hello:dev (FROM scratch, examples/hello built static)"
	DKDIR=$(mktemp -d /tmp/gt-demo.XXXXXX)
	dk_start "$DKDIR" || { echo "demo-docker: cannot start dockerd (see above)" >&2; exit 2; }
	dk_image hello:dev || { echo "demo-docker: cannot build the image" >&2; exit 1; }
	echo "dockerd pid $DK_PID, $DOCKER_HOST"
fi
PROXY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
HOST=hello.production.localhost

step "gantry serve (proxy on 127.0.0.1:$PROXY_PORT)"
"$G" serve --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" \
	>"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
i=0
until "$G" status >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "demo: gantry serve did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
	sleep 0.1
done

step "deploy v1 to production (the first deploy goes straight to full size)"
"$G" deploy hello --env production --version v1 --wait || exit 1
curl -s -H "Host: $HOST" "http://127.0.0.1:$PROXY_PORT/"

step "client load through the proxy starts (4 keep-alive connections, 2000 req/s)"
"$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --host "$HOST" -c 4 --rate 2000 \
	--max-duration 300s --stop-file "$WORK/stop" >"$WORK/load.json" 2>"$WORK/load.err" &
LOAD_PID=$!
sleep 1

step "deploy v2: a bad release (30% of its answers are 500) under the canary strategy"
"$G" deploy hello --env production --version v2 --set env.FAIL_RATE=0.3 --wait
v2=$?
[ $v2 -eq 1 ] && echo "=> gantry rolled v2 back automatically (exit 1: the rollout failed)"

step "deploy v3: a good release, 10% -> 50% -> 100% with the SLO analysis at each step"
"$G" deploy hello --env production --version v3 --wait
v3=$?

touch "$WORK/stop"
wait "$LOAD_PID"
LOAD_PID=

step "history"
"$G" history hello --env production
step "timeline"
"$G" events hello --env production | sed -n '/#2 *rollout_started/,$p'
step "status"
"$G" status hello --env production

step "what the clients saw"
python3 - "$WORK/load.json" "$v2" "$v3" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
failed = r["non2xx"] + r["errors"]
print(f"requests: {r['requests']}  failed: {failed}  p50: {r['p50_ms']}ms  p99: {r['p99_ms']}ms")
print("responses by version:", ", ".join(f"{k}={v}" for k, v in sorted(r["versions"].items())))
ok = failed == 0 and sys.argv[2] == "1" and sys.argv[3] == "0"
print("demo:", "OK: the bad canary was rolled back automatically, the good one promoted, zero failed requests"
      if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
