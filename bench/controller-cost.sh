#!/bin/sh
# The controller's cost of idle canaries: N services (1 replica of
# examples/hello each), all deployed, then all in a canary at once, each
# paused at weight 10 (`steps: [ {weight: 10}, {pause: {}} ]`, so 2N
# replicas run). Measures `gantry serve` (the controller) and its `gantry
# proxy` over WINDOW seconds in two states:
#   baseline   all N services deployed, no rollout
#   canaries   all N services in a paused canary
#   after      all N canaries aborted (back to the baseline's processes)
# and prints RSS (VmRSS) and CPU (utime+stime from /proc/PID/stat) for each,
# then the cost per rollout: (canaries - baseline) / N in KB of RSS and in %
# of one core. The canaries' extra replicas (readiness probes, supervision)
# are part of what a rollout costs the controller, so they are included.
# Prints figures; judges nothing (the issue's goal: < 100 KB and < 0.1 % of a
# core per idle rollout).
#
# Reading the RSS figures: the controller keeps, per revision that has had
# traffic, 15 s of 100 ms and 15 min of 1 s snapshots of the proxy's counters
# (src/daemon/metrics.c), allocated at once but touched as they fill, so its
# RSS climbs by a few hundred bytes per second per revision for 15 minutes
# ("grew ... within the window" shows that drift). A 60 s window therefore
# sees only part of a rollout's steady-state memory.
#
#   bench/controller-cost.sh [N] [WINDOW_S]          (defaults 200, 60)
#
# Bounded in time: every wait has a deadline; everything it starts is stopped
# on exit (serve by SIGTERM, then any leftover process tagged with this run's
# GANTRY_HOME, by pid).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=${GANTRY:-$ROOT/gantry}
HELLO=$ROOT/examples/hello/hello
N=${1:-200}
WINDOW=${2:-60}
ENVN=bench
[ -x "$G" ] && [ -x "$HELLO" ] || { echo "build first: make DEVELOPER=1 gantry examples" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gantry-cost.XXXXXX") || exit 1
export GANTRY_HOME=$WORK/home
mkdir -p "$GANTRY_HOME" "$WORK/app"
SERVE_PID=

# pids of live processes whose environment holds our GANTRY_HOME (replicas,
# the proxy); only this run's processes carry it
tagged() {
	grep -lzxF "GANTRY_HOME=$GANTRY_HOME" /proc/[0-9]*/environ 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p' | while read -r p; do
			[ "$p" = "$$" ] || echo "$p"
		done
}

cleanup() {
	trap - EXIT INT TERM
	if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
		kill -TERM "$SERVE_PID" 2>/dev/null
		i=0
		while kill -0 "$SERVE_PID" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$SERVE_PID" 2>/dev/null
		wait "$SERVE_PID" 2>/dev/null
	fi
	# anything left behind (a replica of a killed controller): by pid
	for p in $(tagged); do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s; }

# ---- the spec: N services, one replica each, an idle canary strategy ----
cp "$HELLO" "$WORK/app/hello"
{
	echo "project: cost"
	echo "environments:"
	echo "  $ENVN: { replicas: 1 }"
	echo "services:"
	i=1
	while [ $i -le "$N" ]; do
		printf '  s%03d:\n' "$i"
		echo "    run: ./hello"
		echo "    probes: { readiness: { http: /ready } }"
		echo "    drain_timeout: 1s"
		echo "    strategy: { canary: { steps: [ {weight: 10}, {pause: {}} ] } }"
		i=$((i + 1))
	done
} >"$WORK/app/gantry.yaml"
SPEC=$WORK/app/gantry.yaml
"$G" validate -f "$SPEC" >/dev/null || { echo "the generated spec does not validate" >&2; exit 1; }

cd "$WORK" || exit 1
P=$(free_port) A=$(free_port)
"$G" serve --listen "127.0.0.1:$P" --admin "127.0.0.1:$A" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
i=0
until "$G" status >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "gantry serve did not answer" >&2; tail "$WORK/serve.log" >&2; exit 1; }
	sleep 0.1
done

# count_state EXPR: how many service environments satisfy the Python EXPR
# over s (one object of `gantry status -o json`)
count_state() {
	"$G" status -o json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
items = d if isinstance(d, list) else d.get("status", d.get("services", []))
print(sum(1 for s in items if ('"$1"')))' 2>/dev/null || echo 0
}

# wait_all EXPR TIMEOUT_S WHAT: until count_state EXPR reaches N
wait_all() {
	end=$(($(now) + $2))
	while :; do
		c=$(count_state "$1")
		[ "$c" -ge "$N" ] && return 0
		if [ "$(now)" -ge "$end" ]; then
			echo "only $c of $N services $3 after $2 s" >&2
			return 1
		fi
		sleep 1
	done
}

# deploy_all VERSION: gantry deploy of every service, without --wait
deploy_all() {
	i=1
	while [ $i -le "$N" ]; do
		"$G" -f "$SPEC" deploy "$(printf 's%03d' $i)" --env "$ENVN" --version "$1" >>"$WORK/deploy.log" 2>&1 ||
			{ echo "deploy s$i $1 failed" >&2; tail -3 "$WORK/deploy.log" >&2; return 1; }
		i=$((i + 1))
	done
}

proxy_pid() {
	for p in $(tagged); do
		tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q "gantry proxy" && { echo "$p"; return 0; }
	done
	return 1
}

# jiffies PID: utime + stime; rss_kb PID: VmRSS
jiffies() { awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)

# measure LABEL: over WINDOW s, CPU (% of one core) and mean VmRSS (KB,
# sampled every second) of serve and proxy; sets LABEL_{cpu,rss}_{serve,proxy}
measure() {
	pp=$(proxy_pid) || { echo "no proxy process" >&2; return 1; }
	js0=$(jiffies "$SERVE_PID") jp0=$(jiffies "$pp") t0=$(date +%s%N)
	sum_s=0 sum_p=0 k=0 first_s=$(rss_kb "$SERVE_PID")
	while [ $k -lt "$WINDOW" ]; do
		sleep 1
		last_s=$(rss_kb "$SERVE_PID")
		sum_s=$((sum_s + last_s)) sum_p=$((sum_p + $(rss_kb "$pp")))
		k=$((k + 1))
	done
	# growth within the window: a leak shows here, a one-off allocation does not
	eval "$1_grow_serve=$((last_s - first_s))"
	eval "$1_split=\"$(awk '/^Rss(Anon|File|Shmem):/ { printf "%s %s KB ", $1, $2 }' "/proc/$SERVE_PID/status")\""
	js1=$(jiffies "$SERVE_PID") jp1=$(jiffies "$pp") t1=$(date +%s%N)
	eval "$1_rss_serve=$((sum_s / WINDOW)) $1_rss_proxy=$((sum_p / WINDOW))"
	eval "$1_cpu_serve=$(awk -v j=$((js1 - js0)) -v hz="$HZ" -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f", 100 * j / hz / (ns / 1e9) }')"
	eval "$1_cpu_proxy=$(awk -v j=$((jp1 - jp0)) -v hz="$HZ" -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f", 100 * j / hz / (ns / 1e9) }')"
}

echo "controller cost: $N services, 1 replica each, idle canaries (weight 10, pause {}), ${WINDOW}s windows"
t=$(now)
deploy_all v1 || exit 1
wait_all 's.get("phase") == "healthy" and s.get("stable_revision") == 1' 300 "healthy on v1" || exit 1
echo "  v1 of all deployed and healthy in $(($(now) - t)) s"
sleep 5 # let the first deploys' transients settle
measure base || exit 1
echo "  baseline (no rollout):      serve ${base_rss_serve} KB, ${base_cpu_serve}% core; proxy ${base_rss_proxy} KB, ${base_cpu_proxy}% core (serve RSS grew ${base_grow_serve} KB within the window; at its end: ${base_split})"

t=$(now)
deploy_all v2 || exit 1
wait_all '"canary" in s and s["canary"].get("weight") == 10 and s.get("rollout", {}).get("phase") == "paused"' 300 "paused in a canary" || exit 1
echo "  v2 of all in a paused canary in $(($(now) - t)) s ($(tagged | wc -l) tagged processes)"
sleep 5
measure can || exit 1
echo "  $N idle canaries:           serve ${can_rss_serve} KB, ${can_cpu_serve}% core; proxy ${can_rss_proxy} KB, ${can_cpu_proxy}% core (serve RSS grew ${can_grow_serve} KB within the window; at its end: ${can_split})"
# still all paused at the end of the window (nothing moved on its own)
c=$(count_state '"canary" in s and s["canary"].get("weight") == 10 and s.get("rollout", {}).get("phase") == "paused"')
echo "  still paused after the window: $c of $N"

# then abort them all: does the memory come back? (if not, the difference
# above is a high-water mark of the allocator or SQLite's cache, not state
# kept per rollout)
t=$(now)
i=1
while [ $i -le "$N" ]; do
	"$G" abort "$(printf 's%03d' $i)" --env "$ENVN" >>"$WORK/abort.log" 2>&1 || echo "abort s$i failed" >&2
	i=$((i + 1))
done
wait_all '"canary" not in s and len(s.get("replicas", [])) == 1 and all(r.get("revision") == 1 for r in s["replicas"])' 120 "back on v1 alone" || exit 1
echo "  all aborted, back on v1 in $(($(now) - t)) s"
sleep 5
measure post || exit 1
echo "  after the aborts:           serve ${post_rss_serve} KB, ${post_cpu_serve}% core; proxy ${post_rss_proxy} KB, ${post_cpu_proxy}% core (serve RSS grew ${post_grow_serve} KB within the window; at its end: ${post_split})"

awk -v n="$N" -v bs="$base_rss_serve" -v cs="$can_rss_serve" -v bp="$base_rss_proxy" -v cp="$can_rss_proxy" \
	-v bcs="$base_cpu_serve" -v ccs="$can_cpu_serve" -v bcp="$base_cpu_proxy" -v ccp="$can_cpu_proxy" 'BEGIN {
	printf "per idle rollout (goal: < 100 KB, < 0.1%% of a core):\n"
	printf "  controller: %+.1f KB RSS, %+.5f%% of a core (above baseline); %.5f%% of a core (whole serve / N)\n", (cs - bs) / n, (ccs - bcs) / n, ccs / n
	printf "  proxy:      %+.1f KB RSS, %+.5f%% of a core (above baseline); %.5f%% of a core (whole proxy / N)\n", (cp - bp) / n, (ccp - bcp) / n, ccp / n
}'
