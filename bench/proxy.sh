#!/bin/bash
# bench/proxy.sh — gantry's proxy next to nginx and HAProxy, from the same run
# of the shared proxy benchmark harness, plus idle-connection memory and RSS
# over a long run.
#
#   PROXY_BENCH=/path/to/proxy-bench.sh bench/proxy.sh [PROXY_BENCH]
#
# The harness (shared/bench/proxy-bench.sh of the team's reference material)
# starts two upstreams A (:18081) and B (:18082) and measures nginx, HAProxy
# and an external target; this script starts `gantry proxy` as that target
# with a version-2 routes file splitting 90/10 between revisions A and B,
# pinned like the peers (1 worker: CPU 0; 2 workers: unpinned, as the
# harness does for its 2-worker peers).
#
# Environment (defaults in brackets):
#   GANTRY [./gantry]       the binary under test
#   WORKERS ["1 2"]         gantry worker counts (the peers get the same)
#   MODES ["keepalive close"]  DURATION [10]  REPEAT [1]  passed to the harness
#   IDLE_CONNS [10000]      idle keep-alive client connections to hold (0 = skip)
#   IDLE_PEERS [8000]       the same for nginx and HAProxy (0 = skip; HAProxy
#                           refuses maxconn above ~9000 with the fd limit 20000)
#   LONG_S [60]             seconds of load for the RSS check (0 = skip; the
#                           issue asks for 600)
#   FORWARD ["all none"]    gantry's --forward-headers values; each gets its
#                           own harness run (peers measured again in each):
#                           "all" is gantry's default, "none" does the same
#                           forwarding work as the peers' configurations
#                           (the target is then labelled gantry-fwd-none)
#   QUOTA [50]              also run every proxy (gantry per FORWARD value,
#                           HAProxy, nginx; 1 worker, CPU 0) held to QUOTA %
#                           of a CPU by a cgroup quota (v1 or v2, 10 ms
#                           period), so that the proxy is the bottleneck
#                           rather than CPU 1; 0 = skip
#   PORT_GANTRY [18095]  PORT_ADMIN [18096]  PORT_BOUND [18097] (the peers there)
#   PERF [0]                1 = also record `perf record -g` of gantry under
#                           keep-alive load into $OUT/perf.data and print the top
#   OUT [a temp dir]        where logs and results go (kept)
#
# Reading the figures: on a 2-CPU machine wrk and both upstreams share one
# core (CPU 1 with 1 worker), and that core is the bottleneck in most runs:
# requests/s then follow what a proxy costs the environment, and the
# proxy's own CPU per request is the steadier figure. By default gantry adds
# ~170 bytes of X-Forwarded-*/X-Request-Id/Via headers upstream that the
# peers' configs do not; the harness's upstream scans every head byte by
# byte, so that costs the environment ~1.5 us per request: the
# `--forward-headers none` run is the like-for-like comparison. Run
# REPEAT=3 at a quiet moment and take medians: other work on the machine
# moves single runs by 2x.
set -euo pipefail

PROXY_BENCH=${1:-${PROXY_BENCH:-}}
if [ -z "$PROXY_BENCH" ] || [ ! -x "$PROXY_BENCH" ]; then
	echo "bench/proxy.sh: set PROXY_BENCH (or pass it) to the shared harness proxy-bench.sh" >&2
	exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GANTRY=${GANTRY:-$HERE/gantry}
WORKERS=${WORKERS:-"1 2"}
MODES=${MODES:-"keepalive close"}
DURATION=${DURATION:-10}
REPEAT=${REPEAT:-1}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_PEERS=${IDLE_PEERS:-8000}
LONG_S=${LONG_S:-60}
FORWARD=${FORWARD:-"all none"}
QUOTA=${QUOTA:-50}
PORT_BOUND=${PORT_BOUND:-18097}
PORT_GANTRY=${PORT_GANTRY:-18095}
PORT_ADMIN=${PORT_ADMIN:-18096}
PERF=${PERF:-0}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gantry-proxy-bench.XXXXXX")}
mkdir -p "$OUT"
[ -x "$GANTRY" ] || { echo "bench/proxy.sh: $GANTRY is not built (make)" >&2; exit 2; }

GPID=""
UPIDS=()
BPID=""
cg_dir=""
cleanup() { # every step may fail (set -e): none may skip the others
	[ -z "$GPID" ] || { kill -TERM "$GPID" && wait "$GPID"; } 2>/dev/null || true
	[ -z "$BPID" ] || { kill -TERM "$BPID" && wait "$BPID"; } 2>/dev/null || true
	[ -z "$cg_dir" ] || rmdir "$cg_dir" 2>/dev/null || true
	for p in "${UPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$OUT/routes.json" <<JSON
{"generation": 1, "routes": [{"hosts": ["*"], "service": "bench", "environment": "local",
  "revisions": [
    {"revision": "A", "weight": 90, "backends": [{"address": "127.0.0.1:18081"}]},
    {"revision": "B", "weight": 10, "backends": [{"address": "127.0.0.1:18082"}]}]}]}
JSON

start_gantry() { # start_gantry WORKERS [extra args]: sets GPID
	local w=$1
	shift
	if [ "$w" = 1 ]; then
		taskset -c 0 "$GANTRY" proxy --listen "127.0.0.1:$PORT_GANTRY" --admin "127.0.0.1:$PORT_ADMIN" \
			--routes "$OUT/routes.json" --workers 1 "$@" 2>>"$OUT/gantry.log" &
	else
		"$GANTRY" proxy --listen "127.0.0.1:$PORT_GANTRY" --admin "127.0.0.1:$PORT_ADMIN" \
			--routes "$OUT/routes.json" --workers "$w" "$@" 2>>"$OUT/gantry.log" &
	fi
	GPID=$!
	for _ in $(seq 50); do
		curl -fs -o /dev/null "http://127.0.0.1:$PORT_ADMIN/healthz" && return 0
		sleep 0.1
	done
	echo "gantry did not start (see $OUT/gantry.log)" >&2
	return 1
}

stop_gantry() {
	[ -n "$GPID" ] || return 0
	kill -TERM "$GPID" 2>/dev/null || true
	wait "$GPID" 2>/dev/null || true
	GPID=""
}

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

echo "# gantry: $("$GANTRY" --version 2>/dev/null || echo "$GANTRY"); results in $OUT"
: >"$OUT/results.txt"
for w in $WORKERS; do
	for fwd in $FORWARD; do
		name=gantry
		[ "$fwd" = all ] || name=gantry-fwd-$fwd
		start_gantry "$w" --forward-headers "$fwd"
		RESULTS_FILE="$OUT/results.txt" TARGET_URL="http://127.0.0.1:$PORT_GANTRY/" TARGET_PID=$GPID \
			TARGET_NAME=$name TARGET_WORKERS=$w WORKERS=$w MODES=$MODES DURATION=$DURATION \
			REPEAT=$REPEAT "$PROXY_BENCH" 2>&1 | tee "$OUT/harness-w$w-$fwd.txt" | grep -v '^RESULT'
		stop_gantry
	done
done

# --- proxy-bound: each proxy held to QUOTA % of CPU 0 by a cgroup CPU quota,
# so that it is the bottleneck (not CPU 1's wrk and upstreams, as above) and
# requests/s measure what it does with the CPU it gets. The peers run with
# the harness's configurations (same upstream keep-alive, 1 worker/thread)
# as external targets of the same harness; one harness run per proxy.
cg_make() { # cg_make: a cpu cgroup with QUOTA % of one CPU (v2 or v1); sets cg_dir
	local period=10000 quota=$((QUOTA * 100))
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
			echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || return 1
		cg_dir=/sys/fs/cgroup/gantry-proxy-bench.$$
		mkdir -p "$cg_dir" && echo "$quota $period" >"$cg_dir/cpu.max"
	elif [ -d /sys/fs/cgroup/cpu ]; then
		cg_dir=/sys/fs/cgroup/cpu/gantry-proxy-bench.$$
		mkdir -p "$cg_dir" && echo $period >"$cg_dir/cpu.cfs_period_us" &&
			echo $quota >"$cg_dir/cpu.cfs_quota_us"
	else
		return 1
	fi
}
cg_add() { # cg_add PID: the process and its children
	local p
	for p in "$1" $(ps -o pid= --ppid "$1"); do echo "$p" >"$cg_dir/cgroup.procs"; done
}
# start_peer nginx|haproxy DIR PORT MAXCONN IDLE_S: start it on CPU 0 with
# the harness's configuration (1 worker/thread, upstream keep-alive, 90/10),
# MAXCONN client connections and an IDLE_S client keep-alive timeout; sets
# BPID
start_peer() {
	local kind=$1 d=$2 port=$3 maxconn=$4 idle=$5
	mkdir -p "$d"
	if [ "$kind" = nginx ]; then
		cat >"$d/nginx.conf" <<NGX
worker_processes 1;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $maxconn; }
http {
    access_log off;
    keepalive_timeout ${idle}s;
    client_body_temp_path $d/cb; proxy_temp_path $d/p;
    fastcgi_temp_path $d/f; uwsgi_temp_path $d/u; scgi_temp_path $d/s;
    upstream canary { server 127.0.0.1:18081 weight=90; server 127.0.0.1:18082 weight=10; keepalive 256; }
    server {
        listen 127.0.0.1:$port reuseport;
        location / { proxy_pass http://canary; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
NGX
		taskset -c 0 nginx -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1 &
	else
		cat >"$d/haproxy.cfg" <<HAP
global
    nbthread 1
    maxconn $maxconn
defaults
    mode http
    timeout connect 5s
    timeout client ${idle}s
    timeout server 30s
    timeout http-keep-alive ${idle}s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$port
    default_backend canary
backend canary
    balance roundrobin
    server a 127.0.0.1:18081 weight 90
    server b 127.0.0.1:18082 weight 10
HAP
		taskset -c 0 haproxy -db -f "$d/haproxy.cfg" >"$d/stdout.log" 2>&1 &
	fi
	BPID=$!
	sleep 1
}
if [ "$QUOTA" -gt 0 ]; then
	if ! cg_make; then
		echo "# proxy-bound runs skipped: no writable cpu cgroup" >&2
		QUOTA=0
	fi
fi
if [ "$QUOTA" -gt 0 ]; then
	: >"$OUT/bound-results.txt"
	for target in $FORWARD haproxy nginx; do
		case $target in
		haproxy|nginx)
			start_peer "$target" "$OUT/bound-$target" "$PORT_BOUND" 4096 30
			url="http://127.0.0.1:$PORT_BOUND/" pid=$BPID name=$target ;;
		*)
			start_gantry 1 --forward-headers "$target"
			url="http://127.0.0.1:$PORT_GANTRY/" pid=$GPID name=gantry
			[ "$target" = all ] || name=gantry-fwd-$target ;;
		esac
		cg_add "$pid"
		RESULTS_FILE="$OUT/bound-results.txt" TARGETS=target TARGET_URL=$url TARGET_PID=$pid \
			TARGET_NAME="$name-cpu$QUOTA" TARGET_WORKERS=1 WORKERS=1 MODES=$MODES DURATION=$DURATION \
			REPEAT=$REPEAT "$PROXY_BENCH" >"$OUT/bound-$name.txt" 2>&1 ||
			echo "harness failed for $name (see $OUT/bound-$name.txt)" >&2
		if [ "$pid" = "$GPID" ]; then
			stop_gantry
		else
			kill -TERM "$pid"
			wait "$pid" 2>/dev/null || true
			BPID=""
		fi
	done
	rmdir "$cg_dir" 2>/dev/null || true
fi

# --- upstreams of our own for the memory checks (the harness stopped its own)
UP=$OUT/upstream
cc -O2 -o "$UP" "$(dirname "$PROXY_BENCH")/upstream.c"
taskset -c 1 "$UP" 18081 A >/dev/null 2>&1 & UPIDS+=($!)
taskset -c 1 "$UP" 18082 B >/dev/null 2>&1 & UPIDS+=($!)
sleep 0.5

# idle_conns NAME PORT N PID... : N keep-alive connections, one request each
# (one after the other, so that this measures what an idle connection costs,
# not the heap's high-water mark of N concurrent requests), then held idle;
# prints the RSS growth of PIDs (summed) per connection
idle_conns() {
	local name=$1 port=$2 n=$3
	shift 3
	python3 - "$name" "$port" "$n" "$@" <<'PY'
import socket, sys, time
name, port, n, pids = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
def rss():
    return sum(int([l.split()[1] for l in open(f"/proc/{p}/status") if l.startswith("VmRSS:")][0]) for p in pids)
req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
s = socket.create_connection(("127.0.0.1", port)); s.sendall(req); s.recv(4096); s.close()
time.sleep(0.5)
before = rss()
socks, ok = [], 0
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    s.sendall(req)
    if s.recv(4096).startswith(b"HTTP/1.1 200"):
        ok += 1
    socks.append(s)   # now an idle keep-alive connection
time.sleep(1)
after = rss()
print(f"IDLE target={name} conns={n} answered={ok} rss_before_kb={before} rss_after_kb={after} "
      f"bytes_per_conn={(after - before) * 1024 // n}")
for s in socks:
    s.close()
PY
}

if [ "$IDLE_CONNS" -gt 0 ]; then
	start_gantry 1 --idle-timeout 300
	idle_conns gantry "$PORT_GANTRY" "$IDLE_CONNS" "$GPID"
	stop_gantry
fi

if [ "$IDLE_PEERS" -gt 0 ]; then
	for kind in nginx haproxy; do
		start_peer "$kind" "$OUT/idle-$kind" "$PORT_BOUND" $((IDLE_PEERS + 500)) 300
		idle_conns "$kind" "$PORT_BOUND" "$IDLE_PEERS" "$BPID" $(ps -o pid= --ppid "$BPID")
		kill -TERM "$BPID"
		wait "$BPID" 2>/dev/null || true
		BPID=""
	done
fi

if [ "$LONG_S" -gt 0 ]; then
	start_gantry 1
	wrk -t1 -c64 -d2s "http://127.0.0.1:$PORT_GANTRY/" >/dev/null 2>&1
	r0=$(rss_kb "$GPID")
	taskset -c 1 wrk -t1 -c64 -d"${LONG_S}s" "http://127.0.0.1:$PORT_GANTRY/" >"$OUT/long-wrk.txt" 2>&1 &
	wpid=$!
	samples=""
	for _ in $(seq $(( LONG_S / 10 ))); do
		sleep 10
		samples="$samples $(rss_kb "$GPID")"
	done
	wait "$wpid" || true
	echo "RSS load_s=$LONG_S rss_kb_after_warmup=$r0 samples_kb_every_10s=[${samples# }] requests=$(awk '/requests in/{print $1}' "$OUT/long-wrk.txt")"
	stop_gantry
fi

if [ "$PERF" = 1 ]; then
	start_gantry 1
	taskset -c 1 wrk -t1 -c64 -d12s "http://127.0.0.1:$PORT_GANTRY/" >/dev/null 2>&1 &
	wpid=$!
	sleep 1
	perf record -q -g -p "$GPID" -o "$OUT/perf.data" -- sleep 8 2>/dev/null || true
	wait "$wpid" || true
	perf report -i "$OUT/perf.data" --no-children -g none --sort dso,symbol --percent-limit 0.7 --stdio 2>/dev/null |
		grep -E '^ +[0-9]' | head -40
	stop_gantry
fi

echo
echo "# the environment's CPU per request (wrk and both upstreams on CPU 1 with 1 worker):"
echo "# when CPU 1 is the bottleneck, 1e6 / env_cpu_us_per_req is the most any proxy that"
echo "# sends the same bytes can reach here (medians over rounds; peers over every run)"
awk '
function kv(k,   i) { for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2); return "" }
function med(key, n,   i, j, t, v) {
	for (i = 1; i <= n; i++) v[i] = vals[key, i]
	for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
	return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
/^RESULT/ && kv("workers") == 1 && kv("target") != "direct" {
	busy = kv("cpu_busy_steal_pct"); sub(/.*cpu1=/, "", busy); sub(/\/.*/, "", busy)
	c = kv("target") " " kv("mode")
	if (!(c in n)) { order[++nc] = c; n[c] = 0 }
	i = ++n[c]
	vals[c, i] = busy * 1e4 / kv("rps")
}
END {
	for (o = 1; o <= nc; o++) {
		c = order[o]; split(c, p, " ")
		e = med(c, n[c])
		printf "ENV target=%s mode=%s rounds=%d env_cpu_us_per_req=%.1f env_bound_rps=%.0f\n", p[1], p[2], n[c], e, 1e6 / e
	}
}
' "$OUT/results.txt"
if [ "$QUOTA" -gt 0 ]; then
	echo
	echo "# proxy-bound: each proxy held to $QUOTA % of CPU 0 (cgroup quota); one harness run each"
	grep -h '^SUMMARY' "$OUT"/bound-*.txt || true
fi
echo
echo "# summary (gantry, haproxy, nginx from the same harness runs)"
for w in $WORKERS; do
	for fwd in $FORWARD; do
		grep '^SUMMARY' "$OUT/harness-w$w-$fwd.txt" | grep -v 'target=direct' || true
	done
done
