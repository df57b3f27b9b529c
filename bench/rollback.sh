#!/bin/sh
# How fast a bad canary is rolled back (issue 5's benchmark). Prints figures.
#
#   bench/rollback.sh [--shield] [RUNS]     (default 3 runs)
#
# Under a steady client load (4 keep-alive connections, 2000 req/s) through
# the built-in proxy, revision 2 is a canary that answers 30% of requests
# with 500 (FAIL_RATE=0.3). rollback_on is "error_rate > 5% for 2s". For each
# run it prints, from gantry's own events (millisecond timestamps):
#   t_fail:     the canary got traffic (its first failing answers follow at once)
#   t_rollback: the rollout was rolled back (the traffic change is written and
#               the proxy told in the same step)
#   detect:     t_rollback - t_fail, and that minus the 2 s `for` window
# and the failed requests the client saw. Goal: the `for` window plus < 1 s;
# with --shield, zero failed requests.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=$ROOT/gantry
LOADGEN=$ROOT/tests/e2e/helpers/loadgen
SHIELD=false
[ "${1:-}" = "--shield" ] && { SHIELD=true; shift; }
RUNS=${1:-3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gantry-rbench.XXXXXX")
export GANTRY_HOME=$WORK/home
SERVE_PID=
LOAD=
cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null
	[ -n "$SERVE_PID" ] && kill -TERM "$SERVE_PID" 2>/dev/null && sleep 2
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM PIPE
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cp "$ROOT/examples/hello/hello" "$WORK/"
cat >"$WORK/gantry.yaml" <<YAML
project: bench
environments:
  production: { replicas: 2 }
services:
  hello:
    run: ./hello
    probes:
      readiness: { http: /ready, period: 100ms }
    drain_timeout: 2s
    shield: $SHIELD
    strategy:
      canary:
        steps: [ { weight: 20 }, { pause: 60s }, { weight: 50 }, { pause: 60s } ]
    rollback_on: [ "error_rate > 5% for 2s" ]
YAML
cd "$WORK" || exit 1
P=$(free_port); A=$(free_port)
"$G" serve --listen "127.0.0.1:$P" --admin "127.0.0.1:$A" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
i=0; until "$G" status >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done
"$G" deploy hello --env production --version good --wait >/dev/null 2>&1 || { echo "first deploy failed"; exit 1; }

echo "bad canary (FAIL_RATE=0.3), rollback_on 'error_rate > 5% for 2s', shield=$SHIELD, $RUNS runs"
for run in $(seq 1 "$RUNS"); do
	rm -f "$WORK/stop"
	"$LOADGEN" --url "http://127.0.0.1:$P/" --host hello.production.localhost -c 4 --rate 2000 \
		--max-duration 120s --stop-file "$WORK/stop" >"$WORK/load.json" 2>/dev/null &
	LOAD=$!
	sleep 1
	"$G" deploy hello --env production --version "bad$run" --set env.FAIL_RATE=0.3 --wait >/dev/null 2>&1
	rc=$?
	sleep 0.5
	touch "$WORK/stop"; wait "$LOAD"; LOAD=
	"$G" -o json events hello --env production >"$WORK/events.json"
	python3 - "$WORK/events.json" "$WORK/load.json" "$rc" "$run" <<'PY'
import json, sys, datetime
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
events = lines[0] if len(lines) == 1 and isinstance(lines[0], list) else lines
rollout = [e for e in events if e["kind"] == "rollout_started"][-1]
after = [e for e in events if e["id"] >= rollout["id"]]
ts = lambda e: datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000
fail = next((e for e in after if e["kind"] == "traffic" and "=0%" not in e["message"].split()[2]), None)
back = next((e for e in after if e["kind"] == "rollout_rolled_back"), None)
load = json.load(open(sys.argv[2]))
failed = load["non2xx"] + load["errors"]
if not fail or not back:
    print(f"  run {sys.argv[4]}: no rollback seen (deploy exit {sys.argv[3]})")
    sys.exit(0)
d = ts(back) - ts(fail)
print(f"  run {sys.argv[4]}: detect+rollback {d:.0f} ms after the canary got traffic "
      f"({d - 2000:+.0f} ms beyond the 2 s window); client: {load['requests']} requests, {failed} failed "
      f"(deploy exit {sys.argv[3]})")
PY
done
