#!/bin/bash
# bench/proxy-kill.sh — what clients see when the serving proxy process is
# killed with -9 under load: gantry (under `gantry serve`) and nginx, in the
# same run, on the same upstream (examples/hello).
#
#   bench/proxy-kill.sh            (build first: make DEVELOPER=1 gantry examples)
#
# gantry: `gantry serve` in a private GANTRY_HOME with 2 replicas of
#   examples/hello; the process killed is the `gantry proxy` (all of its
#   worker threads). The controller holds the listening sockets and starts a
#   new proxy at once (docs/internals/controller.md).
# nginx: a master and as many workers as gantry's proxy has, proxying to 2
#   hello processes (upstream keep-alive, as gantry's proxy does); the process
#   killed is one worker. The master holds the listening socket (shared by the
#   workers: nginx's default, no reuseport) and starts a new worker.
#
# Per run and target: loadgen (CLIENTS keep-alive clients at RATE req/s, 5 s
# request timeout) runs BEFORE_S seconds, the serving process is killed with
# -9, the load goes on AFTER_S seconds. Figures:
#   failed       requests without a 2xx answer (errors + non-2xx), after
#                loadgen's one silent retry (below)
#   retried      requests whose kept-alive connection died before any byte
#                of the answer, sent again once on a new connection, as
#                curl, browsers and Go's net/http do for a GET (loadgen's
#                "retries"); a request in flight at the kill lands here, or
#                in failed when the answer had begun
#   refused      connections refused (loadgen's error_kinds.connect)
#   longest_ms   the longest request (max_ms): the gap a client saw
#   recovery_ms  from the kill to the first 200 on a NEW connection: a probe
#                loop of fresh connections started right after the kill
#                (each bounded at 5 s, the loop at 30 s; a probe that is
#                refused, reset or not answered 200 is retried after 5 ms)
# The table shows each run and the median; the last line starts with SUMMARY.
#
# Environment (defaults in brackets):
#   GANTRY [./gantry]  REPEAT [3]  CLIENTS [4]  RATE [800]  BEFORE_S [2]
#   AFTER_S [3]  NGINX [nginx from PATH; "none" skips it]
#   NGINX_REUSEPORT [0]  1: `listen ... reuseport`, one socket per worker
#                  (held by the master), as gantry's proxy has; then the
#                  connections hashed to the killed worker's socket wait
#                  for its replacement, as gantry's wait for the new proxy
#   OUT [a temp dir, removed at the end unless KEEP=1]
#
# Everything it starts is stopped by pid on exit; only 127.0.0.1 is used.
# Figures, not verdicts: nothing here passes or fails on timing.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GANTRY=${GANTRY:-$ROOT/gantry}
HELLO=$ROOT/examples/hello/hello
LOADGEN=$ROOT/tests/e2e/helpers/loadgen
REPEAT=${REPEAT:-3}
CLIENTS=${CLIENTS:-4}
RATE=${RATE:-800}
BEFORE_S=${BEFORE_S:-2}
AFTER_S=${AFTER_S:-3}
KEEP=${KEEP:-0}
for f in "$GANTRY" "$HELLO" "$LOADGEN"; do
	[ -x "$f" ] || { echo "bench/proxy-kill.sh: $f is not built (make DEVELOPER=1 gantry examples)" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "bench/proxy-kill.sh: needs python3" >&2; exit 2; }
NGINX_REUSEPORT=${NGINX_REUSEPORT:-0}
NGINX=${NGINX:-$(command -v nginx || true)}
if [ "$NGINX" = none ] || [ -z "$NGINX" ] || [ ! -x "$NGINX" ]; then
	[ "$NGINX" = none ] || echo "# nginx not found in PATH: benching gantry only" >&2
	NGINX=
fi
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gantry-proxy-kill.XXXXXX")}
mkdir -p "$OUT"
export GANTRY_HOME=$OUT/home
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*'

SERVE_PID=
NGX_PID=
LOAD_PID=
UP_PIDS=()

# the proxy serve started last (its log says so), and the replicas' pids
last_proxy() { sed -n 's/.*proxy started pid=\([0-9]*\) .*/\1/p' "$OUT/serve.log" | tail -n 1; }
replica_pids() {
	"$GANTRY" status hello --env bench -o json 2>/dev/null |
		python3 -c 'import json, sys; print(" ".join(str(r["pid"]) for r in json.load(sys.stdin)["replicas"] if r["pid"]))' 2>/dev/null
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
	local p reps
	[ -z "$LOAD_PID" ] || { kill -TERM "$LOAD_PID"; wait "$LOAD_PID"; } 2>/dev/null
	if [ -n "$SERVE_PID" ]; then
		# SIGTERM: serve stops its proxy and replicas; if it cannot, they go by pid
		reps=$(replica_pids)
		p=$(last_proxy)
		kill -TERM "$SERVE_PID" 2>/dev/null
		if ! wait_gone "$SERVE_PID" 20; then
			kill -KILL "$SERVE_PID" 2>/dev/null
			for q in $p $reps; do kill -KILL "$q" 2>/dev/null; done
		fi
		wait "$SERVE_PID" 2>/dev/null
	fi
	if [ -n "$NGX_PID" ]; then
		kill -TERM "$NGX_PID" 2>/dev/null # the master stops its workers
		wait_gone "$NGX_PID" 10 || kill -KILL "$NGX_PID" 2>/dev/null
		wait "$NGX_PID" 2>/dev/null
	fi
	for p in "${UP_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
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
code_200() { # code_200 PORT HOST: a GET / answered 200
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "Host: $2" "http://127.0.0.1:$1/")" = 200 ]
}

# kill_and_probe PID PORT HOST: kill -9 PID, then fresh connections until one
# is answered 200; prints "recovery_ms=X probes_failed=N"
kill_and_probe() {
	python3 - "$@" <<'PY'
import os, signal, socket, sys, time
pid, port, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
req = ("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode()
def probe():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(req)
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                return False
            head += chunk
        return head.startswith(b"HTTP/1.1 200")
    finally:
        s.close()
t0 = time.monotonic()
os.kill(pid, signal.SIGKILL)
failed = 0
while time.monotonic() - t0 < 30:
    try:
        if probe():
            print("recovery_ms=%.1f probes_failed=%d" % ((time.monotonic() - t0) * 1000, failed))
            sys.exit(0)
    except OSError:
        pass
    failed += 1
    time.sleep(0.005)
print("recovery_ms=NaN probes_failed=%d" % failed)
PY
}

# one_run TARGET RUN PORT HOST PID: load, kill, load; appends a row to rows.txt
one_run() {
	local target=$1 run=$2 port=$3 host=$4 pid=$5 stop=$OUT/stop-$1-$2 probe json
	"$LOADGEN" --url "http://127.0.0.1:$port/" --host "$host" -c "$CLIENTS" --rate "$RATE" \
		--timeout 5s --max-duration 120s --stop-file "$stop" >"$OUT/load-$target-$run.json" 2>/dev/null &
	LOAD_PID=$!
	sleep "$BEFORE_S"
	probe=$(kill_and_probe "$pid" "$port" "$host")
	sleep "$AFTER_S"
	touch "$stop"
	wait "$LOAD_PID"
	LOAD_PID=
	json=$(grep '^{' "$OUT/load-$target-$run.json" | tail -n 1)
	python3 - "$target" "$run" "$pid" "$probe" "$json" >>"$OUT/rows.txt" <<'PY'
import json, sys
target, run, pid, probe, line = sys.argv[1:6]
d = json.loads(line)
p = dict(kv.split("=") for kv in probe.split())
print(target, run, pid, d["requests"], d["errors"] + d["non2xx"], d["error_kinds"]["connect"],
      d["max_ms"], p["recovery_ms"], p["probes_failed"], d["retries"])
PY
	tail -n 1 "$OUT/rows.txt" | awk '{ printf "  %-7s run %s: killed pid %s: requests %s, failed %s, retried %s, refused %s, longest %s ms, recovery %s ms (%s probes failed)\n", $1, $2, $3, $4, $5, $10, $6, $7, $8, $9 }' >&2
}

# ---- gantry: serve with 2 replicas of hello
G_PORT=$(free_port) G_ADMIN=$(free_port)
G_HOST=hello.bench.localhost
mkdir -p "$OUT/app" "$GANTRY_HOME"
cp "$HELLO" "$OUT/app/hello"
cat >"$OUT/gantry.yaml" <<'YAML'
project: bench
environments:
  bench: { replicas: 2 }
services:
  hello:
    artifact: app
    run: ./hello
    probes:
      readiness: { http: /ready, period: 100ms }
YAML
cd "$OUT" || exit 1
setsid "$GANTRY" serve --listen "127.0.0.1:$G_PORT" --admin "127.0.0.1:$G_ADMIN" >"$OUT/serve.log" 2>&1 </dev/null &
SERVE_PID=$!
wait_ok 10 "$GANTRY" status || { echo "gantry serve did not answer (see $OUT/serve.log)" >&2; KEEP=1; exit 1; }
"$GANTRY" deploy hello --env bench --version v1 --wait >"$OUT/deploy.log" 2>&1 ||
	{ echo "deploy failed (see $OUT/deploy.log)" >&2; KEEP=1; exit 1; }
wait_ok 10 code_200 "$G_PORT" "$G_HOST" || { echo "gantry's proxy does not answer" >&2; KEEP=1; exit 1; }
WORKERS=$(tr '\0' ' ' <"/proc/$(last_proxy)/cmdline" | sed -n 's/.*--workers \([0-9]*\).*/\1/p')
WORKERS=${WORKERS:-1}

# ---- nginx: a master and WORKERS workers in front of 2 hello processes
if [ -n "$NGINX" ]; then
	N_PORT=$(free_port)
	ups=""
	for v in 1 2; do
		p=$(free_port)
		PORT=$p GANTRY_VERSION=v1 setsid "$HELLO" >"$OUT/hello-$v.log" 2>&1 </dev/null &
		UP_PIDS+=($!)
		ups="$ups server 127.0.0.1:$p;"
	done
	d=$OUT/nginx
	reuseport=
	[ "$NGINX_REUSEPORT" = 1 ] && reuseport=" reuseport"
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<NGX
worker_processes $WORKERS;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/cb; proxy_temp_path $d/p;
    fastcgi_temp_path $d/f; uwsgi_temp_path $d/u; scgi_temp_path $d/s;
    upstream hello { $ups keepalive 64; }
    server {
        listen 127.0.0.1:$N_PORT$reuseport;
        location / { proxy_pass http://hello; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
NGX
	setsid "$NGINX" -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1 </dev/null &
	NGX_PID=$!
	wait_ok 10 code_200 "$N_PORT" localhost || { echo "nginx does not answer (see $d/error.log)" >&2; KEEP=1; exit 1; }
	NGX_VERSION=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')
fi

proxy_up_ms() { # how long gantry's proxy has run, from gantry status (-1: none)
	"$GANTRY" status -o json 2>/dev/null | python3 -c 'import json, sys
d = json.load(sys.stdin)
p = d[0]["proxy"] if d else {}
print(p.get("up_ms") if p.get("up_ms") is not None else -1)'
}

echo "# proxy kill -9 under load: $CLIENTS keep-alive clients at $RATE req/s, ${BEFORE_S}s before and ${AFTER_S}s after the kill; $REPEAT runs each"
echo "# gantry ($("$GANTRY" --version 2>/dev/null | head -n 1)): kill -9 of the gantry proxy process ($WORKERS worker threads); the controller holds the listeners"
if [ -n "$NGINX" ]; then
	if [ "$NGINX_REUSEPORT" = 1 ]; then
		echo "# nginx $NGX_VERSION: kill -9 of one of its $WORKERS worker processes; the master holds the listeners (reuseport: one per worker)"
	else
		echo "# nginx $NGX_VERSION: kill -9 of one of its $WORKERS worker processes; the master holds the listener (shared by the workers)"
	fi
else
	echo "# nginx: not found in PATH, not benched"
fi
: >"$OUT/rows.txt"
for ((run = 1; run <= REPEAT; run++)); do
	# a proxy that ran less than 1 s would be a crash loop (restarted after 1 s): let it run 1.5 s
	for ((i = 0; i < 100; i++)); do
		[ "$(proxy_up_ms)" -ge 1500 ] 2>/dev/null && break
		sleep 0.1
	done
	wait_ok 10 code_200 "$G_PORT" "$G_HOST"
	one_run gantry "$run" "$G_PORT" "$G_HOST" "$(last_proxy)"
	if [ -n "$NGINX" ]; then
		w=$(ps -o pid= --ppid "$NGX_PID" | head -n 1 | tr -d ' ')
		wait_ok 10 code_200 "$N_PORT" localhost
		one_run nginx "$run" "$N_PORT" localhost "$w"
		sleep 1
	fi
done

echo
python3 - "$OUT/rows.txt" <<'PY'
import math, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
# target run pid requests failed refused max_ms recovery_ms probes_failed retries
cols = ["requests", "failed", "retried", "refused", "longest_ms", "recovery_ms"]
idx = {"requests": 3, "failed": 4, "retried": 9, "refused": 5, "longest_ms": 6, "recovery_ms": 7}
print("%-7s %-6s %9s %7s %8s %8s %11s %12s" % ("target", "run", *cols))
summary = []
for target in ("gantry", "nginx"):
    mine = [r for r in rows if r[0] == target]
    if not mine:
        continue
    vals = {c: [float(r[idx[c]]) for r in mine] for c in cols}
    for r in mine:
        print("%-7s %-6s %9s %7s %8s %8s %11.1f %12s" % (target, r[1], r[3], r[4], r[9], r[5], float(r[6]), r[7]))
    def med(c):
        v = [x for x in vals[c] if not math.isnan(x)]
        return statistics.median(v) if v else float("nan")
    m = {c: med(c) for c in cols}
    print("%-7s %-6s %9d %7g %8g %8g %11.1f %12.1f" % (target, "median", m["requests"], m["failed"], m["retried"],
                                                       m["refused"], m["longest_ms"], m["recovery_ms"]))
    summary.append("%s failed=%g retried=%g refused=%g longest_ms=%.1f recovery_ms=%.1f" % (
        target, m["failed"], m["retried"], m["refused"], m["longest_ms"], m["recovery_ms"]))
print("SUMMARY medians of %d runs: %s" % (len([r for r in rows if r[0] == "gantry"]), " | ".join(summary)))
PY
