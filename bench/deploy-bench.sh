#!/bin/sh
# Measures a 3-replica rolling deploy of examples/hello through gantry serve:
# how long the rollout takes beyond the replicas' own readiness delay, what the
# clients saw during deploy, rollback and a controller kill -9, and the
# controller's memory. Prints figures; judges nothing.
#
#   bench/deploy-bench.sh [READY_DELAY_MS] [RUNS]     (defaults 1000, 3)
#
# With max_surge 1 and max_unavailable 0, a rolling update of 3 replicas is
# three sequential start -> ready steps, so the floor is 3 x READY_DELAY_MS;
# "overhead" is the measured time minus that floor.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=$ROOT/gantry
LOADGEN=$ROOT/tests/e2e/helpers/loadgen
DELAY=${1:-1000}
RUNS=${2:-3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gantry-bench.XXXXXX")
export GANTRY_HOME=$WORK/home
SERVE_PID=
LOAD=
cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null
	[ -n "$SERVE_PID" ] && kill -TERM "$SERVE_PID" 2>/dev/null && sleep 2
	pkill -9 -f "GANTRY_HOME=$GANTRY_HOME" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM PIPE
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ms() { date +%s%3N; }

cp "$ROOT/examples/hello/hello" "$WORK/"
cat >"$WORK/gantry.yaml" <<YAML
project: bench
environments:
  production: { replicas: 3 }
services:
  hello:
    run: ./hello
    env: { READY_DELAY_MS: "$DELAY" }
    probes:
      readiness: { http: /ready, period: 100ms }
    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
YAML
cd "$WORK" || exit 1
P=$(free_port); A=$(free_port)
start_serve() {
	"$G" serve --listen "127.0.0.1:$P" --admin "127.0.0.1:$A" >>"$WORK/serve.log" 2>&1 &
	SERVE_PID=$!
	i=0; until "$G" status >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done
}
start_serve
"$G" deploy hello --env production --version v0 --wait >/dev/null 2>&1 || { echo "first deploy failed"; exit 1; }

"$LOADGEN" --url "http://127.0.0.1:$P/" --host hello.production.localhost -c 4 --rate 2000 \
	--max-duration 600s --stop-file "$WORK/stop" >"$WORK/load.json" 2>/dev/null &
LOAD=$!

echo "3-replica rolling deploy, READY_DELAY_MS=$DELAY (floor $((3 * DELAY)) ms), $RUNS runs"
for i in $(seq 1 "$RUNS"); do
	t0=$(ms)
	"$G" deploy hello --env production --version "v$i" --wait >/dev/null 2>&1 || echo "deploy $i failed"
	t1=$(ms)
	echo "  deploy v$i: $((t1 - t0)) ms (overhead $((t1 - t0 - 3 * DELAY)) ms)"
done
t0=$(ms)
"$G" rollback hello --env production --wait >/dev/null 2>&1
echo "  rollback: $(( $(ms) - t0 )) ms"

# kill -9 the controller mid-rollout, restart it, let the rollout finish
"$G" deploy hello --env production --version vk >/dev/null 2>&1
sleep "$(echo "$DELAY" | awk '{print $1/1000 * 1.5}')"
kill -9 "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null
sleep 1
start_serve
i=0
until "$G" -o json status hello --env production 2>/dev/null | grep -q '"phase": "complete"'; do
	i=$((i+1)); [ $i -gt 300 ] && { echo "rollout did not complete after the restart"; break; }; sleep 0.1
done
echo "  controller kill -9 mid-rollout: rollout resumed and completed"

rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVE_PID/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE_PID/status")
pp=$(pgrep -f "gantry proxy --listen 127.0.0.1:$P" | head -1)
prss=$(awk '/VmRSS/ {print $2}' "/proc/$pp/status" 2>/dev/null)
touch "$WORK/stop"; wait "$LOAD"; LOAD=
echo "clients during all of the above (4 keep-alive connections, 2000 req/s):"
sed 's/^/  /' "$WORK/load.json"
echo "controller RSS: ${rss} kB (peak ${hwm} kB); proxy RSS: ${prss:-?} kB"
