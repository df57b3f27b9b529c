#!/bin/bash
# bench/runtime-compare.sh — the same app (examples/hello) under the process
# runtime and the Docker runtime, in the same run, behind one `gantry serve`:
# how long a 3-replica rolling deploy takes to be ready, what clients see
# during deploy, rollback and a kill -9 of the controller, and the
# controller's memory per replica. The figures of issue 14's "Done when".
#
#   bench/runtime-compare.sh     (as root; build first: make DEVELOPER=1 gantry examples)
#
# Setup: a private Docker Engine (examples/dockerd-private.sh: its own data
# root, exec root, socket, bridge, containerd namespace, no iptables rules),
# the image hello:dev FROM scratch around examples/hello/hello-static, and
# one `gantry serve` (a throwaway GANTRY_HOME) with two services in the
# environment "bench", identical but for the runtime:
#   hello-p  runtime process: ./hello from a snapshot of examples/hello
#   hello-d  runtime docker:  image hello:dev (the same program, static)
# 3 replicas each, readiness GET /ready every 100 ms, rolling max_surge 1
# max_unavailable 0, drain_timeout 1s, stop_grace 2s.
#
# ROUNDS rounds; in each, for both runtimes (the order alternates between
# rounds, so that neither always goes first on a warm machine):
#   deploy    `gantry deploy SVC --env bench --version rN --wait`, timed from
#             the command to its exit 0 (the 3 new replicas ready, the old
#             ones drained and stopped)
#   rollback  `gantry rollback SVC --env bench --wait`, timed the same way
# then once per round, for both at once:
#   kill      kill -9 of the controller, `gantry serve` started again at once;
#             timed from the kill to every replica of both services ready in
#             status again; the replicas must be the same ones (adopted: same
#             replica ids, pids and container ids, none restarted)
# Every phase runs under client load through the proxy: one loadgen per
# service host (hello-p.bench.localhost, hello-d.bench.localhost), CLIENTS
# keep-alive connections at RATE req/s each, 5 s request timeout. "failed"
# is errors + non-2xx (after loadgen's one silent retry of a request whose
# idle kept-alive connection was closed: "retried"). The load on the service
# under change counts for its runtime; the other service's load meanwhile is
# shown as "bystander".
#
# Once per round, the Engine alone (no gantry): one container of hello:dev
# created and started through the API with curl, the time to its first 200
# on /ready at its bridge address, and SIGTERM to exited (POST /wait): a
# reference for a container's start and stop on this machine at that moment
# (the Engine's own cost, sequential curl calls; not a strict floor).
# From serve.log: each replica's stop, from its start (drained, or stopped
# at once) to the controller seeing it gone ("stopped"), and how many stops
# went to SIGKILL after stop_grace — in the rounds, and when the largest
# memory size is scaled to 0.
#
# Memory: for each runtime, with both services scaled to 0, the controller
# is restarted (kill -9, as above: a fresh heap), then the runtime's service
# is scaled to 0, 3, 12, 24 replicas; at each size, once every replica is
# ready and 2 s have passed, the controller's VmRSS and Private_Dirty (from
# /proc/PID/smaps_rollup: its heap, stacks and other private memory written)
# are sampled 5 times 0.3 s apart (median). The slope of a least-squares
# line through the 4 points is the cost of one replica. The proxy, dockerd
# and containerd's shims are not counted: they are not the controller.
#
# Environment (defaults in brackets):
#   GANTRY [./gantry]  ROUNDS [5, at most 20]  CLIENTS [2]  RATE [300]
#   MEM_SIZES ["3 12 24", each at most 60]  KEEP [0; 1 keeps the work dir]
#
# Prints a table of each round, then the medians (min/max) of the deploy,
# rollback and kill-to-ready times, the docker/process ratio of the deploy
# medians, the Engine's reference, the failed requests per phase and runtime,
# the stop figures and the memory slopes; the last line starts with SUMMARY.
# A run with the defaults takes about 6 minutes (output: bench/README.md).
# Figures, not verdicts: nothing here passes or fails on timing; the exit
# status is 1 only when a step could not be done (a deploy that failed,
# a replica not adopted, ...), with the reason on stderr.
#
# Everything it starts is stopped by pid on exit (loadgens, serve and its
# proxy and replicas, dockerd); traffic goes to 127.0.0.1 and the private
# bridge only.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GANTRY=${GANTRY:-$ROOT/gantry}
HELLO=$ROOT/examples/hello/hello
LOADGEN=$ROOT/tests/e2e/helpers/loadgen
ROUNDS=${ROUNDS:-5}
CLIENTS=${CLIENTS:-2}
RATE=${RATE:-300}
MEM_SIZES=${MEM_SIZES:-3 12 24}
KEEP=${KEEP:-0}
ME=bench/runtime-compare.sh

die() { echo "$ME: $*" >&2; exit 1; }
for f in "$GANTRY" "$HELLO" "$ROOT/examples/hello/hello-static" "$LOADGEN"; do
	[ -x "$f" ] || { echo "$ME: $f is not built (make DEVELOPER=1 gantry examples)" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "$ME: needs python3" >&2; exit 2; }
command -v curl >/dev/null || { echo "$ME: needs curl" >&2; exit 2; }
case $ROUNDS in '' | *[!0-9]*) echo "$ME: ROUNDS must be a number" >&2; exit 2 ;; esac
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || { echo "$ME: ROUNDS must be 1..20" >&2; exit 2; }
for n in $MEM_SIZES; do
	case $n in '' | *[!0-9]*) echo "$ME: MEM_SIZES are numbers" >&2; exit 2 ;; esac
	[ "$n" -ge 1 ] && [ "$n" -le 60 ] || { echo "$ME: MEM_SIZES must be 1..60" >&2; exit 2; }
done

OUT=$(mktemp -d "${TMPDIR:-/tmp}/gantry-runtime-compare.XXXXXX") || exit 2
# serve as root runs the replicas as gantry-run: it must pass through to HOME
chmod 711 "$OUT"
export GANTRY_HOME=$OUT/home
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*'

# dk_start, dk_image, dk_stop (DK_PID, DK_DIR, DOCKER_HOST)
. "$ROOT/examples/dockerd-private.sh"

SERVE_PID=
LOAD_PIDS=()
SVCS="hello-p hello-d"
ENVN=bench

# pids of everything serve runs: its proxy (from its log) and the process replicas
serve_children() {
	sed -n 's/.*proxy started pid=\([0-9]*\) .*/\1/p' "$OUT/serve.log" 2>/dev/null | tail -n 1
	"$GANTRY" status hello-p --env "$ENVN" -o json 2>/dev/null |
		python3 -c 'import json, sys; print(" ".join(str(r["pid"]) for r in json.load(sys.stdin)["replicas"] if r.get("pid")))' 2>/dev/null
}

# wait_gone PID SECONDS: 0 once PID is gone
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

cleanup() { # each step may fail: none may skip the others
	local p kids
	for p in "${LOAD_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ -n "$SERVE_PID" ]; then
		# SIGTERM: serve stops its proxy and replicas (and removes its
		# containers); if it cannot, they go by pid (containers with dockerd)
		kids=$(serve_children)
		kill -TERM "$SERVE_PID" 2>/dev/null
		if ! wait_gone "$SERVE_PID" 60; then
			echo "# serve $SERVE_PID did not stop in 60 s: SIGKILL to it, its proxy and replicas" >&2
			kill -KILL "$SERVE_PID" 2>/dev/null
			for p in $kids; do kill -KILL "$p" 2>/dev/null; done
		fi
		wait "$SERVE_PID" 2>/dev/null
	fi
	dk_stop
	if [ "$KEEP" = 1 ]; then
		echo "# kept $OUT" >&2
	else
		rm -rf "$OUT"
	fi
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ms() { date +%s%3N; }

# wait_ok SECONDS CMD...: polls CMD every 100 ms; 0 once it succeeds
wait_ok() {
	local n=$(($1 * 10))
	shift
	while ((n-- > 0)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# replicas SVC: "ID PID CONTAINER READY" per replica, sorted (no output: no answer)
replicas() {
	"$GANTRY" status "$1" --env "$ENVN" -o json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in sorted(d["replicas"], key=lambda r: r["id"]):
    print(r["id"], r.get("pid") or 0, (r.get("container") or "-")[:12], 1 if r.get("ready") else 0)
' 2>/dev/null
}
# all_ready SVC N: exactly N replicas, all ready, no rollout in flight
all_ready() {
	"$GANTRY" status "$1" --env "$ENVN" -o json 2>/dev/null | python3 -c '
import json, sys
d, n = json.load(sys.stdin), int(sys.argv[1])
rs = d["replicas"]
sys.exit(0 if len(rs) == n and all(r.get("ready") for r in rs) and d.get("ready_replicas") == n else 1)
' "$2" 2>/dev/null
}

start_serve() {
	setsid "$GANTRY" serve --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN" \
		>>"$OUT/serve.log" 2>&1 </dev/null &
	SERVE_PID=$!
	wait_ok 20 "$GANTRY" status || die "gantry serve did not answer within 20 s (KEEP=1 keeps $OUT/serve.log)"
}

# kill9_serve: kill -9 of the controller (its proxy and replicas run on)
kill9_serve() {
	local gone=0
	# (bash's "Killed" notice of its job goes to /dev/null)
	{
		kill -KILL "$SERVE_PID"
		wait_gone "$SERVE_PID" 10 && gone=1
		wait "$SERVE_PID"
	} 2>/dev/null
	[ "$gone" = 1 ] || die "serve $SERVE_PID did not die of SIGKILL"
	SERVE_PID=
}

# load_start: one loadgen per service host until load_stop
load_start() {
	local s
	LOAD_PIDS=()
	rm -f "$OUT/stop"
	for s in $SVCS; do
		"$LOADGEN" --url "http://127.0.0.1:$PORT/" --host "$s.$ENVN.localhost" -c "$CLIENTS" \
			--rate "$RATE" --timeout 5s --max-duration 600s --stop-file "$OUT/stop" \
			>"$OUT/load-$s.json" 2>/dev/null &
		LOAD_PIDS+=($!)
	done
	sleep 0.5
}

# load_stop PHASE RUNTIME ROUND: stops the loadgens; one row per host to
# rows.txt: PHASE RUNTIME ROUND HOST_RUNTIME ROLE requests failed retried max_ms
load_stop() {
	local p s rt role
	sleep 0.5
	touch "$OUT/stop"
	for p in "${LOAD_PIDS[@]}"; do wait "$p"; done
	LOAD_PIDS=()
	for s in $SVCS; do
		rt=${s#hello-}
		role=bystander
		[ "$2" = "$rt" ] || [ "$2" = both ] && role=target
		python3 - "$1" "$2" "$3" "$rt" "$role" "$OUT/load-$s.json" >>"$OUT/rows.txt" <<'PY' ||
import json, sys
phase, rt, rnd, hrt, role, f = sys.argv[1:7]
lines = [l for l in open(f) if l.startswith("{")]
d = json.loads(lines[-1])
print("load", phase, rt, rnd, hrt, role, d["requests"], d["errors"] + d["non2xx"], d["retries"],
      d["max_ms"] if d["max_ms"] is not None else "nan")
PY
			die "loadgen on $s.$ENVN.localhost gave no figures"
	done
}

# engine_floor ROUND: the Engine's own cost of one replica, without gantry:
# create + start a container of hello:dev through the API (curl), time to
# its first 200 on GET /ready at its address on the bridge; then SIGTERM
# and time to its exit (POST /wait); then it is removed. One row to rows.txt
engine_floor() {
	local t0 t1 t2 t3 id ip i
	t0=$(ms)
	id=$(dk_call POST /containers/create -H 'Content-Type: application/json' \
		-d "{\"Image\": \"hello:dev\", \"Env\": [\"HOST=0.0.0.0\", \"PORT=8080\"], \"User\": \"$FLOOR_USER\"}" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["Id"])') || die "engine floor: create failed"
	dk_call POST "/containers/$id/start" >/dev/null || die "engine floor: start failed"
	t1=$(ms)
	ip=$(dk_call GET "/containers/$id/json" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["NetworkSettings"]["IPAddress"])')
	for ((i = 0; i < 3000; i++)); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$ip:8080/ready")" = 200 ] && break
		sleep 0.01
	done
	t2=$(ms)
	dk_call POST "/containers/$id/kill?signal=TERM" >/dev/null
	dk_call POST "/containers/$id/wait" >/dev/null
	t3=$(ms)
	dk_call DELETE "/containers/$id?force=1" >/dev/null
	echo "floor $1 $((t1 - t0)) $((t2 - t0)) $((t3 - t2))" >>"$OUT/rows.txt"
}
dk_call() { # dk_call METHOD PATH [CURL ARGS]: the private Engine's API
	local m=$1 path=$2
	shift 2
	curl -sS --max-time 60 --unix-socket "$DKDIR/docker.sock" -X "$m" "$@" "http://d/v1.41$path"
}

# ---- a private Engine and the image
DKDIR=$(mktemp -d /tmp/gt-bench.XXXXXX) || exit 2 # short: a unix socket path is at most 108 bytes
dk_start "$DKDIR" || { echo "$ME: cannot start a private dockerd (above)" >&2; exit 2; }
dk_image hello:dev || die "cannot build the image hello:dev"
# the floor's container runs as gantry's replicas do: as gantry-run when it exists
FLOOR_USER=$(id -u gantry-run 2>/dev/null):$(id -g gantry-run 2>/dev/null)
[ "$FLOOR_USER" = : ] && FLOOR_USER=65534:65534
DOCKERD_VERSION=$(curl -s --unix-socket "$DKDIR/docker.sock" http://d/version |
	python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["Version"], "API", d["ApiVersion"])' 2>/dev/null)

# ---- one serve, two services that differ only in their runtime
mkdir -p "$OUT/app" "$GANTRY_HOME"
cp "$HELLO" "$OUT/app/hello"
cat >"$OUT/gantry.yaml" <<'YAML'
project: bench
environments:
  bench: { replicas: 3 }
services:
  hello-p:
    artifact: app
    run: ./hello
    probes:
      readiness: { http: /ready, period: 100ms }
    stop_grace: 2s
    drain_timeout: 1s
    progress_deadline: 60s
    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
  hello-d:
    image: hello:dev
    env: { HOST: 0.0.0.0 }
    probes:
      readiness: { http: /ready, period: 100ms }
    stop_grace: 2s
    drain_timeout: 1s
    progress_deadline: 60s
    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
YAML
cd "$OUT" || exit 1
PORT=$(free_port) ADMIN=$(free_port)
start_serve
for s in $SVCS; do
	"$GANTRY" deploy "$s" --env "$ENVN" --version v1 --wait --timeout 120s >>"$OUT/deploy.log" 2>&1 ||
		die "first deploy of $s failed: $(tail -n 3 "$OUT/deploy.log")"
	wait_ok 20 all_ready "$s" 3 || die "$s: 3 replicas not ready after the first deploy"
done

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); gantry $("$GANTRY" version 2>/dev/null | head -n 1)"
echo "# dockerd $DOCKERD_VERSION (private: $DOCKER_HOST); storage $(curl -s --unix-socket "$DKDIR/docker.sock" http://d/info |
	python3 -c 'import json, sys; print(json.load(sys.stdin).get("Driver"))' 2>/dev/null)"
echo "# $ROUNDS rounds; load per service host: $CLIENTS keep-alive clients, $RATE req/s"
echo
printf '%-5s %-8s %-8s %9s %8s %8s %8s\n' round runtime phase ms requests failed retried

: >"$OUT/rows.txt"
# ---- rounds: deploy and rollback per runtime, then one kill -9
for ((r = 1; r <= ROUNDS; r++)); do
	order="d p"
	((r % 2 == 0)) && order="p d"
	for rt in $order; do
		s=hello-$rt
		load_start
		t0=$(ms)
		"$GANTRY" deploy "$s" --env "$ENVN" --version "r$r" --wait --timeout 120s >>"$OUT/deploy.log" 2>&1 ||
			die "round $r: deploy of $s failed: $(tail -n 3 "$OUT/deploy.log")"
		t1=$(ms)
		load_stop deploy "$rt" "$r"
		echo "time deploy $rt $r $((t1 - t0))" >>"$OUT/rows.txt"
		grep "^load deploy $rt $r $rt " "$OUT/rows.txt" |
			awk -v ms=$((t1 - t0)) '{ printf "%-5s %-8s %-8s %9d %8s %8s %8s\n", $4, $3, $2, ms, $7, $8, $9 }'
		wait_ok 20 all_ready "$s" 3 || die "round $r: $s not 3 ready replicas after its deploy"

		load_start
		t0=$(ms)
		"$GANTRY" rollback "$s" --env "$ENVN" --wait --timeout 120s >>"$OUT/deploy.log" 2>&1 ||
			die "round $r: rollback of $s failed: $(tail -n 3 "$OUT/deploy.log")"
		t1=$(ms)
		load_stop rollback "$rt" "$r"
		echo "time rollback $rt $r $((t1 - t0))" >>"$OUT/rows.txt"
		grep "^load rollback $rt $r $rt " "$OUT/rows.txt" |
			awk -v ms=$((t1 - t0)) '{ printf "%-5s %-8s %-8s %9d %8s %8s %8s\n", $4, $3, $2, ms, $7, $8, $9 }'
		wait_ok 20 all_ready "$s" 3 || die "round $r: $s not 3 ready replicas after its rollback"
	done

	engine_floor "$r"

	# kill -9 of the controller, restarted at once: the same replicas, adopted
	for s in $SVCS; do replicas "$s" >"$OUT/before-$s.txt"; done
	load_start
	t0=$(ms)
	kill9_serve
	start_serve
	for s in $SVCS; do
		wait_ok 30 all_ready "$s" 3 || die "round $r: $s not 3 ready replicas 30 s after the controller's restart"
	done
	t1=$(ms)
	load_stop kill both "$r"
	echo "time kill both $r $((t1 - t0))" >>"$OUT/rows.txt"
	for s in $SVCS; do
		replicas "$s" >"$OUT/after-$s.txt"
		cmp -s "$OUT/before-$s.txt" "$OUT/after-$s.txt" || {
			echo "$ME: round $r: $s: the replicas after the restart are not the ones before:" >&2
			diff "$OUT/before-$s.txt" "$OUT/after-$s.txt" >&2
			exit 1
		}
		grep "^load kill both $r ${s#hello-} " "$OUT/rows.txt" |
			awk -v ms=$((t1 - t0)) '{ printf "%-5s %-8s %-8s %9d %8s %8s %8s\n", $4, $5, $2, ms, $7, $8, $9 }'
	done
done

echo "mark rounds_end $(wc -l <"$OUT/serve.log")" >>"$OUT/rows.txt"

# ---- memory: for each runtime, a fresh controller, then 0 and MEM_SIZES replicas
# mem_sample: "VmRSS_kB Private_Dirty_kB" of the controller, the median of 5 samples
mem_sample() {
	local i
	for ((i = 0; i < 5; i++)); do
		echo "$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVE_PID/status")" \
			"$(awk '/^Private_Dirty:/ { print $2 }' "/proc/$SERVE_PID/smaps_rollup")"
		sleep 0.3
	done | sort -n -k2 | sed -n 3p
}
for s in $SVCS; do "$GANTRY" scale "$s" --env "$ENVN" --replicas 0 >/dev/null || die "scale $s 0 failed"; done
for s in $SVCS; do wait_ok 60 all_ready "$s" 0 || die "$s: not 0 replicas 60 s after scale 0"; done
for rt in d p; do
	s=hello-$rt
	kill9_serve
	start_serve
	sleep 2
	echo "mem $rt 0 $(mem_sample)" >>"$OUT/rows.txt"
	for n in $MEM_SIZES; do
		"$GANTRY" scale "$s" --env "$ENVN" --replicas "$n" >/dev/null || die "scale $s $n failed"
		wait_ok 120 all_ready "$s" "$n" || die "$s: not $n ready replicas 120 s after scale $n"
		sleep 2
		echo "mem $rt $n $(mem_sample)" >>"$OUT/rows.txt"
	done
	echo "mark scaledown_start_$rt $(wc -l <"$OUT/serve.log")" >>"$OUT/rows.txt"
	"$GANTRY" scale "$s" --env "$ENVN" --replicas 0 >/dev/null || die "scale $s 0 failed"
	wait_ok 120 all_ready "$s" 0 || die "$s: not 0 replicas 120 s after scale 0"
	sleep 1
	echo "mark scaledown_end_$rt $(wc -l <"$OUT/serve.log")" >>"$OUT/rows.txt"
done

echo
python3 - "$OUT/rows.txt" "$OUT/serve.log" <<'PY'
import datetime, math, re, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
marks = {r[1]: int(r[2]) for r in rows if r[0] == "mark"}
name = {"d": "docker", "p": "process"}

def mmm(v):
    return "%7.0f (%6.0f .. %6.0f)" % (statistics.median(v), min(v), max(v)) if v else "-"

print("time from the command to ready, ms: median (min .. max) over %d rounds"
      % len({r[3] for r in rows if r[0] == "time"}))
print("%-9s %-26s %-26s %s" % ("phase", "docker", "process", "docker/process (medians)"))
for phase in ("deploy", "rollback"):
    v = {rt: [float(r[4]) for r in rows if r[0] == "time" and r[1] == phase and r[2] == rt] for rt in "dp"}
    ratio = statistics.median(v["d"]) / statistics.median(v["p"]) if v["d"] and v["p"] else float("nan")
    print("%-9s %-26s %-26s %.2f" % (phase, mmm(v["d"]), mmm(v["p"]), ratio))
k = [float(r[4]) for r in rows if r[0] == "time" and r[1] == "kill"]
print("%-9s %-26s (kill -9 to every replica of both services ready again, all adopted)" % ("kill", mmm(k)))
fl = [r for r in rows if r[0] == "floor"]
if fl:
    print("the Engine alone, one container through its API (no gantry), ms: median (min .. max)")
    print("  create+start %s   to its first 200 on /ready %s   SIGTERM to exited %s" % (
        mmm([float(r[2]) for r in fl]).strip(), mmm([float(r[3]) for r in fl]).strip(),
        mmm([float(r[4]) for r in fl]).strip()))

print()
print("failed requests (of requests; retried; longest ms), summed over the rounds")
print("%-9s %-10s %-34s %s" % ("phase", "runtime", "the service under change", "the other service meanwhile"))
for phase in ("deploy", "rollback", "kill"):
    for rt in "dp":
        out = []
        for role in ("target", "bystander"):
            sel = [r for r in rows if r[0] == "load" and r[1] == phase and r[4] == rt and r[5] == role]
            if not sel:
                out.append("-")
                continue
            req = sum(int(r[6]) for r in sel)
            fail = sum(int(r[7]) for r in sel)
            ret = sum(int(r[8]) for r in sel)
            mx = max(float(r[9]) for r in sel)
            out.append("%d of %d; %d; %.0f" % (fail, req, ret, mx))
        print("%-9s %-10s %-34s %s" % (phase, name[rt], out[0], out[1]))

# from serve.log: when a replica's stop began (drained, or stopped at once)
# and when the controller saw it gone; and the stops that took a SIGKILL
line_re = re.compile(r"^(\S+) level=\w+ sys=replica replica=hello-([dp])-(\S+) (drained in|stopping:|stopped$|did not stop)")
def stops(lo, hi):
    began, out = {}, {"d": [], "p": []}
    kills = {"d": 0, "p": 0}
    for i, line in enumerate(open(sys.argv[2], errors="replace")):
        if i < lo or i >= hi:
            continue
        m = line_re.match(line.rstrip("\n"))
        if not m:
            continue
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000
        rt, rid, what = m.group(2), m.group(3), m.group(4)
        if what.startswith("did not stop"):
            kills[rt] += 1
        elif what == "stopped":
            if rid in began:
                out[rt].append(t - began.pop(rid))
        else:
            began.setdefault(rid, t)
    return out, kills
print()
print("stops: from the stop's start (drained) to the controller seeing the replica gone, ms;"
      " and stops that went to SIGKILL after stop_grace (2s)")
segs = [("rounds, 3 replicas", 0, marks.get("rounds_end", 1 << 40), "dp")]
for rt in "dp":
    if "scaledown_start_" + rt in marks:
        segs.append(("scale %d to 0" % max(int(r[2]) for r in rows if r[0] == "mem" and r[1] == rt),
                     marks["scaledown_start_" + rt], marks["scaledown_end_" + rt], rt))
for label, lo, hi, rts in segs:
    out, kills = stops(lo, hi)
    for rt in rts:
        if out[rt]:
            print("  %-34s %-8s %s  (%d stops, %d SIGKILLed)" % (label, name[rt], mmm(out[rt]), len(out[rt]), kills[rt]))

print()
print("controller memory (kB) by replicas of one runtime (a fresh controller, the other runtime at 0)")
slopes = {}
for rt in "dp":
    pts = [(int(r[2]), int(r[3]), int(r[4])) for r in rows if r[0] == "mem" and r[1] == rt]
    if len(pts) < 2:
        continue
    print("%-8s %s" % (name[rt], "  ".join("%d: rss %d dirty %d" % p for p in pts)))
    def slope(i):
        xs = [p[0] for p in pts]
        ys = [p[i] for p in pts]
        mx, my = statistics.mean(xs), statistics.mean(ys)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs) * 1024
    slopes[rt] = (slope(1), slope(2))
for rt, (rs, pd) in slopes.items():
    print("%-8s bytes per replica (least-squares slope): VmRSS %.0f, Private_Dirty %.0f" % (name[rt], rs, pd))

dep = {rt: [float(r[4]) for r in rows if r[0] == "time" and r[1] == "deploy" and r[2] == rt] for rt in "dp"}
fails = {ph: sum(int(r[7]) for r in rows if r[0] == "load" and r[1] == ph) for ph in ("deploy", "rollback", "kill")}
print()
print("SUMMARY deploy_ms docker=%.0f process=%.0f ratio=%.2f | failed deploy=%d rollback=%d kill=%d (both hosts) | "
      "controller bytes/replica docker rss=%.0f dirty=%.0f process rss=%.0f dirty=%.0f" % (
          statistics.median(dep["d"]), statistics.median(dep["p"]),
          statistics.median(dep["d"]) / statistics.median(dep["p"]),
          fails["deploy"], fails["rollback"], fails["kill"],
          *slopes.get("d", (float("nan"),) * 2), *slopes.get("p", (float("nan"),) * 2)))
PY
