#!/bin/sh
test_description='the state store fails at every step of a rollout in turn (injected ENOSPC): each step holds, then resumes; rolling and canary end as they do without a fault'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

SHIM=$ROOT/tests/e2e/helpers/faultfs.so
test -f "$SHIM" || skip_all "tests/e2e/helpers/faultfs.so is not built (make examples)"
# while $TRASH/full exists, every write to HOME/state.db* fails with ENOSPC
GANTRY_FAULTFS=$TRASH/full
LD_PRELOAD=$SHIM
export GANTRY_FAULTFS LD_PRELOAD
gantry_sanitized && ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" && export ASAN_OPTIONS

# Every step is made to last, so the fault lands on it and nowhere else,
# however loaded the machine: a replica of a revision deployed with
# READY_FILE=ok/ is not ready until the test creates ok/ITS-ID (hello's
# /ready; an HTTP probe, not an exec one: one process start per probe
# made this script the suite's slowest under ASan), and each canary analysis step waits while
# its hold file exists. The fault is set first, then the step released:
# the write that records it fails.
mkdir -p "$TRASH/ok"

# spec STRATEGY-YAML
spec() {
	write_svc_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 3 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 2s
	    progress_deadline: 600s
	    strategy: $1
	    analysis:
	      a1: { interval: 100ms, count: 1, metrics: [ { name: held, provider: command, command: "while test -f $TRASH/hold1; do sleep 0.1; done; echo 0", fail_if: "> 0", timeout: 300s } ] }
	      a2: { interval: 100ms, count: 1, metrics: [ { name: held, provider: command, command: "while test -f $TRASH/hold2; do sleep 0.1; done; echo 0", fail_if: "> 0", timeout: 300s } ] }
	EOF
}
ROLLING="{ rolling: { max_surge: 1, max_unavailable: 0 } }"
CANARY="{ canary: { steps: [ {weight: 20}, {analysis: a1}, {weight: 60}, {analysis: a2} ] } }"

# the final state, relative to the target revision: what must be the same
# with and without faults
final_state() {
	gst | python3 -c '
import json, sys
d = json.load(sys.stdin)
t = d["target_revision"]
ro = d["rollout"]
print("phase", d["phase"], "stable", d["stable_revision"] - t, "store", d["store"]["ok"])
print("rollout", ro["revision"] - t, ro["from_revision"] - t, ro["strategy"], ro["phase"], ro["step"], ro["steps"])
print("replicas", sorted((r["revision"] - t, r["state"], r["ready"]) for r in d["replicas"]))
print("traffic", sorted((x["revision"] - t, x["weight"]) for x in d["traffic"] if x["weight"]))'
}

# what must not move while the store cannot write
held_state() {
	gst | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in sorted(d["replicas"], key=lambda r: r["id"]):
    print("replica", r["id"], r["pid"], r["revision"], r["state"])
print("traffic", json.dumps(d["traffic"]))
print("rollout", d["rollout"]["id"], d["rollout"]["phase"], d["rollout"]["step"])
c = d.get("canary")
print("canary", json.dumps(c and [c["step"], c["weight"], c["wait"]]))'
}

# a gated replica of revision REV that is running and not released yet: its id
gated_replica() {
	gst | python3 -c '
import json, os, sys
d = json.load(sys.stdin)
for r in d["replicas"]:
    if r["revision"] == int(sys.argv[1]) and r["pid"] and not os.path.exists(os.path.join(sys.argv[2], r["id"])):
        print(r["id"])
        sys.exit(0)
sys.exit(1)' "$1" "$TRASH/ok"
}

# release every gated replica of REV as it appears until the rollout is over (reference runs)
release_all() {
	while ! st_check "d[\"rollout\"][\"revision\"] == $1 and d[\"rollout\"][\"phase\"] != \"progressing\"" 2>/dev/null; do
		id=$(gated_replica "$1") && touch "$TRASH/ok/$id"
		sleep 0.1
	done
}

# faulted WHAT: the store is seen failing; nothing moves over 1 s (10 ticks); then space again
faulted() {
	wait_for 15 "st_check \"not d[\\\"store\\\"][\\\"ok\\\"] and d[\\\"phase\\\"] == \\\"degraded\\\"\"" &&
	held_state >held.a &&
	sleep 1 &&
	held_state >held.b &&
	test_cmp held.a held.b &&
	say "held at $1: $(grep -v ^replica held.a | tr "\n" " ")" &&
	rm "$TRASH/full" &&
	wait_for 15 "st_check \"d[\\\"store\\\"][\\\"ok\\\"]\""
}

# fault_at_ready REV: the next gated replica of REV turns ready while the store cannot write
fault_at_ready() {
	wait_for 30 "gated_replica $1 >gid" &&
	touch "$TRASH/full" &&
	touch "$TRASH/ok/$(cat gid)" &&
	faulted "ready of $(cat gid)" &&
	wait_for 15 "st_check \"any(r[\\\"id\\\"] == \\\"$(cat gid)\\\" and r[\\\"ready\\\"] for r in d[\\\"replicas\\\"])\""
}

# release_gated REV: every gated replica of REV running now is released
release_gated() {
	while id=$(gated_replica "$1"); do touch "$TRASH/ok/$id"; done
	:
}

# fault_at_analysis K WEIGHT: analysis aK (at WEIGHT) ends while the store
# cannot write (the canary's other replicas are released as they come)
fault_at_analysis() {
	wait_for 30 "release_gated 5; canary_check \"c[\\\"weight\\\"] == $2 and c[\\\"wait\\\"] == \\\"analysis\\\"\"" &&
	touch "$TRASH/full" &&
	rm "$TRASH/hold$1" &&
	faulted "analysis a$1 at $2%"
}

# recovered_since_start N: N store_recovered events since the last rollout started
recovered_since_start() {
	ev_check "len([e for e in ev[max(i for i, x in enumerate(ev) if x[\"kind\"] == \"rollout_started\"):] if e[\"kind\"] == \"store_recovered\"]) == $1"
}

test_expect_success 'setup: v1, 3 replicas' '
	spec "$ROLLING" &&
	start_serve &&
	"$GANTRY" -f gantry.yaml deploy hello --env staging --version v1 --wait
'

test_expect_success 'rolling, no fault (the reference): v2 completes' '
	"$GANTRY" -f gantry.yaml deploy hello --env staging --version v2 --set env.READY_FILE="$TRASH/ok/" &&
	release_all 2 &&
	wait_for 30 "st_check \"len(d[\\\"replicas\\\"]) == 3 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	final_state >rolling.ref &&
	cat rolling.ref
'

# the first and the last replica: the first moves traffic, the last also
# completes the rollout (the middle one is the same step as the first)
test_expect_success 'rolling v3: the store fails as the first and the last new replica turn ready; each holds, then goes on' '
	t0=$(_now_ms) &&
	"$GANTRY" -f gantry.yaml deploy hello --env staging --version v3 --set env.READY_FILE="$TRASH/ok/" &&
	fault_at_ready 3 &&
	wait_for 30 "gated_replica 3 >gid" && touch "$TRASH/ok/$(cat gid)" &&
	fault_at_ready 3 &&
	wait_for 30 "st_check \"len(d[\\\"replicas\\\"]) == 3 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	say "t5431 rolling: 2 faults, deploy to complete in $(($(_now_ms) - t0)) ms" &&
	final_state >rolling.out &&
	test_cmp rolling.ref rolling.out &&
	recovered_since_start 2 &&
	check_processes
'

test_expect_success 'canary, no fault (the reference): v4 completes' '
	spec "$CANARY" &&
	"$GANTRY" -f gantry.yaml deploy hello --env staging --version v4 --set env.READY_FILE="$TRASH/ok/" &&
	release_all 4 &&
	wait_for 30 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	final_state >canary.ref &&
	cat canary.ref
'

# the canary's analyses: one that moves traffic on (a1), and the last (a2),
# which promotes
test_expect_success 'canary v5: the store fails as the canary turns ready and as each analysis ends' '
	t0=$(_now_ms) &&
	touch "$TRASH/hold1" "$TRASH/hold2" &&
	"$GANTRY" -f gantry.yaml deploy hello --env staging --version v5 --set env.READY_FILE="$TRASH/ok/" &&
	fault_at_ready 5 &&
	fault_at_analysis 1 20 &&
	fault_at_analysis 2 60 &&
	release_all 5 &&
	wait_for 30 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 5 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	say "t5431 canary: 3 faults, deploy to complete in $(($(_now_ms) - t0)) ms" &&
	final_state >canary.out &&
	test_cmp canary.ref canary.out &&
	ev_check "[e[\"message\"].split()[2] for e in ev[max(i for i, x in enumerate(ev) if x[\"kind\"] == \"rollout_started\"):] if e[\"kind\"] == \"traffic\"] == [\"#5=20%\", \"#5=60%\", \"#5=100%\"]" &&
	recovered_since_start 3 &&
	check_processes
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
