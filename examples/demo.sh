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
#
# GANTRY_DEMO_RUNTIME=fleet (`make demo-fleet`, root): the same on a real
# 3-node Docker Swarm started on this machine (tests/fleet/cluster.sh:
# network namespaces, a dockerd each, a registry), with production's
# replicas as Swarm tasks spread over the nodes and a gantry proxy on every
# node (examples/hello/gantry-fleet.yaml). The clients' load goes through
# all three node proxies; the analysis reads the sum of their windows.
# GANTRY_DEMO_FLEET_DIR=DIR uses a cluster already up (`cluster.sh up DIR`)
# and leaves it up. GANTRY_DEMO_RATE: the load in requests/s (2000).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=${GANTRY:-$ROOT/gantry}
LOADGEN=$ROOT/tests/e2e/helpers/loadgen
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gantry-demo.XXXXXX")
# replicas run as an unprivileged user (gantry-run) when serve is root: they
# must be able to pass through to their scratch directory under HOME
chmod 711 "$WORK"
export GANTRY_HOME=$WORK/home
SERVE_PID=

RUNTIME=${GANTRY_DEMO_RUNTIME:-process}
RATE=${GANTRY_DEMO_RATE:-2000}
SPEC=gantry.yaml
[ "$RUNTIME" = docker ] && SPEC=gantry-docker.yaml
[ "$RUNTIME" = fleet ] && SPEC=gantry-fleet.yaml
FLEET_DIR=${GANTRY_DEMO_FLEET_DIR:-}
FLEET_OURS=
LOAD_PIDS=
. "$ROOT/examples/dockerd-private.sh"

cleanup() {
	for p in $LOAD_PIDS; do kill "$p" 2>/dev/null; done
	if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
		# on a cluster, serve removes its services from the swarm first
		kill -TERM "$SERVE_PID" 2>/dev/null
		i=0
		while kill -0 "$SERVE_PID" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	fi
	dk_stop
	[ -n "$FLEET_OURS" ] && "$ROOT/tests/fleet/cluster.sh" down "$FLEET_DIR" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

for f in "$G" "$LOADGEN" "$ROOT/examples/hello/hello" "$ROOT/examples/hello/hello-static"; do
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
if [ "$RUNTIME" = fleet ]; then
	if [ -z "$FLEET_DIR" ]; then
		step "a 3-node Docker Swarm on this machine (tests/fleet/cluster.sh)"
		FLEET_DIR=$(mktemp -d /tmp/gt-fl.XXXXXX) && FLEET_OURS=1 || exit 2
		"$ROOT/tests/fleet/cluster.sh" up "$FLEET_DIR" >"$WORK/fleet-up.out" 2>"$WORK/fleet-up.err" || {
			cat "$WORK/fleet-up.err" >&2
			echo "demo-fleet: the cluster cannot start (see above)" >&2
			exit 2
		}
		cat "$WORK/fleet-up.err"
	fi
	. "$FLEET_DIR/env" || exit 2
	step "the image hello:dev (FROM scratch), built on node 1, pushed to the cluster's registry $FLEET_REGISTRY"
	mkdir -p "$WORK/ctx" && cp "$ROOT/examples/hello/hello-static" "$WORK/ctx/hello" &&
		printf 'FROM scratch\nCOPY hello /hello\nENV HOST=0.0.0.0\nENTRYPOINT ["/hello"]\n' >"$WORK/ctx/Dockerfile" &&
		DOCKER_BUILDKIT=0 DOCKER_HOST=$NODE1_DOCKER_HOST docker build -q -t "$FLEET_REGISTRY/hello:dev" "$WORK/ctx" \
			2>"$WORK/build.err" &&
		DOCKER_HOST=$NODE1_DOCKER_HOST docker push "$FLEET_REGISTRY/hello:dev" >"$WORK/push.out" 2>&1 ||
		{ cat "$WORK/push.out" >&2; echo "demo-fleet: cannot build or push the image" >&2; exit 1; }
	# the controller (and the CLI, for the image's digest) talk to the manager's Engine
	DOCKER_HOST=$NODE1_DOCKER_HOST
	export DOCKER_HOST
	NP_PORT=$(free_port)
	NP_ADMIN=$(free_port)
	# examples/hello/gantry-fleet.yaml with this cluster's values
	python3 - "$WORK/gantry.yaml" "$NODE1_DOCKER_HOST" "$FLEET_NET" "$FLEET_TAG" "$NODE2_DOCKER_HOST" \
		"$NODE3_DOCKER_HOST" "$NP_PORT" "$NP_ADMIN" "$FLEET_REGISTRY" <<-'PY' || exit 1
	import sys
	f, mgr, net, tag, n2, n3, port, admin, reg = sys.argv[1:]
	s = open(f).read()
	for a, b in [("manager: unix:///var/run/docker.sock", "manager: " + mgr), ("network: gantry", "network: " + net),
	             ("node-1: unix:///var/run/docker.sock", "gf%s-1: %s" % (tag, mgr)),
	             ("node-2: tcp://10.0.0.12:2376", "gf%s-2: %s" % (tag, n2)),
	             ("node-3: tcp://10.0.0.13:2376", "gf%s-3: %s" % (tag, n3)),
	             ("port: 8080, admin_port: 8081, registry: \"10.0.0.1:5000\"",
	              "port: %s, admin_port: %s, registry: \"%s\"" % (port, admin, reg)),
	             ("image: 10.0.0.1:5000/hello:dev", "image: %s/hello:dev" % reg)]:
	    assert a in s, a
	    s = s.replace(a, b)
	open(f, "w").write(s)
	PY
	echo "nodes: $NODE1_ADDR (manager), $NODE2_ADDR, $NODE3_ADDR; their gantry proxies will listen on port $NP_PORT"
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

if [ "$RUNTIME" = fleet ]; then
	step "the gantry proxy on each node serves v1 (the controller made its image and a global service)"
	for n in 1 2 3; do
		eval "addr=\$NODE${n}_ADDR"
		i=0
		until curl -s --max-time 2 -H "Host: $HOST" "http://$addr:$NP_PORT/" 2>/dev/null | grep -q "from v1"; do
			i=$((i + 1))
			[ $i -gt 600 ] && { echo "demo-fleet: node $n's proxy does not serve" >&2; tail -n 20 "$WORK/serve.log" >&2; exit 1; }
			sleep 0.2
		done
		printf 'node %s (%s:%s): %s\n' "$n" "$addr" "$NP_PORT" "$(curl -s --max-time 2 -H "Host: $HOST" "http://$addr:$NP_PORT/")"
	done
	"$G" nodes --env production
	step "client load through the three node proxies starts (2 keep-alive connections each, $RATE req/s in all)"
	for n in 1 2 3; do
		eval "ns=\$NODE${n}_NETNS"
		# inside node n's namespace, where its proxy's published port listens on loopback too
		ip netns exec "$ns" "$LOADGEN" --url "http://127.0.0.1:$NP_PORT/" --host "$HOST" -c 2 \
			--rate $((RATE / 3)) --max-duration 300s --stop-file "$WORK/stop" \
			>"$WORK/load$n.json" 2>"$WORK/load$n.err" &
		LOAD_PIDS="$LOAD_PIDS $!"
	done
else
	step "client load through the proxy starts (4 keep-alive connections, $RATE req/s)"
	"$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --host "$HOST" -c 4 --rate "$RATE" \
		--max-duration 300s --stop-file "$WORK/stop" >"$WORK/load1.json" 2>"$WORK/load1.err" &
	LOAD_PIDS=$!
fi
sleep 1

step "deploy v2: a bad release (30% of its answers are 500) under the canary strategy"
"$G" deploy hello --env production --version v2 --set env.FAIL_RATE=0.3 --wait
v2=$?
[ $v2 -eq 1 ] && echo "=> gantry rolled v2 back automatically (exit 1: the rollout failed)"

step "deploy v3: a good release, 10% -> 50% -> 100% with the SLO analysis at each step"
"$G" deploy hello --env production --version v3 --wait
v3=$?

touch "$WORK/stop"
for p in $LOAD_PIDS; do wait "$p"; done
LOAD_PIDS=

step "history"
"$G" history hello --env production
step "timeline"
"$G" events hello --env production | sed -n '/#2 *rollout_started/,$p'
step "status"
"$G" status hello --env production
[ "$RUNTIME" = fleet ] && "$G" nodes --env production

step "what the clients saw"
python3 - "$v2" "$v3" "$WORK"/load*.json <<'PY'
import json, sys
loads = [json.load(open(f)) for f in sys.argv[3:]]
r = {"requests": 0, "non2xx": 0, "errors": 0, "versions": {}}
for x in loads:
    for k in ("requests", "non2xx", "errors"):
        r[k] += x[k]
    for v, n in x["versions"].items():
        r["versions"][v] = r["versions"].get(v, 0) + n
failed = r["non2xx"] + r["errors"]
# over several clients: the worst of their percentiles
p50 = max(x["p50_ms"] for x in loads)
p99 = max(x["p99_ms"] for x in loads)
print(f"requests: {r['requests']}  failed: {failed}  p50: {p50}ms  p99: {p99}ms")
if len(loads) > 1:
    print("through each node proxy:", ", ".join(f"{x['requests']} ({x['non2xx'] + x['errors']} failed)" for x in loads))
print("responses by version:", ", ".join(f"{k}={v}" for k, v in sorted(r["versions"].items())))
ok = failed == 0 and sys.argv[1] == "1" and sys.argv[2] == "0" and r["requests"] > 0
print("demo:", "OK: the bad canary was rolled back automatically, the good one promoted, zero failed requests"
      if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
