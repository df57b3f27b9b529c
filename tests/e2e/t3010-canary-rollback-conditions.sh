#!/bin/sh
test_description='a bad canary is rolled back by each kind of condition: error rate, latency, rollback_on, restarts, baseline comparison'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms

# spec STEPS ANALYSIS_YAML ROLLBACK_ON: the service with these canary steps,
# analyses (indented under `analysis:`, "{}" for none) and rollback_on list
spec() {
	write_app_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 1s
	    stop_grace: 2s
	    progress_deadline: 30s
	    strategy:
	      canary:
	        steps: $1
	    analysis: $2
	    rollback_on: $3
	EOF
}

# bad_canary NAME LOADGEN_ARGS SET...: deploys a canary with --set SET...
# under client load; deploy --wait must exit 1
bad_canary() {
	bc_name=$1 bc_largs=$2
	shift 2
	bc_sets=
	for bc_s in "$@"; do bc_sets="$bc_sets --set $bc_s"; done
	start_load "load-$bc_name" $bc_largs &&
	test_expect_code 1 "$GANTRY" -f "$SPEC" deploy hello --env staging --version "$bc_name" $bc_sets \
		--wait --timeout 30s >"deploy-$bc_name.out" 2>&1
	bc_rc=$?
	cat "deploy-$bc_name.out"
	stop_load "load-$bc_name" >/dev/null || bc_rc=1
	return $bc_rc
}

# rolled_back REV WORD: status, history and the proxy say revision REV was
# rolled back to revision 1 for a reason naming WORD
rolled_back() {
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"stable_revision\"] == 1" &&
	st_check "d[\"rollout\"][\"revision\"] == $1 and d[\"rollout\"][\"phase\"] == \"rolled_back\"" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 1, \"weight\": 100}]" &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == $1 and d[0][\"status\"] == \"failed\"" &&
	jcheck hist.json "\"$2\" in d[0][\"reason\"]" &&
	python3 -c "import json; print(\"reason:\", json.load(open(\"hist.json\"))[0][\"reason\"])" &&
	jcheck hist.json "[r[\"status\"] for r in d if r[\"revision\"] == 1] == [\"serving\"]" &&
	ev_check "any(e[\"kind\"] == \"rollout_rolled_back\" and e[\"revision\"] == $1 and \"$2\" in e[\"message\"] for e in ev)" &&
	split_count 100 &&
	jcheck split.json "d[\"versions\"] == {\"v1\": 100}"
}

test_expect_success 'setup: v1 serving' '
	spec "[ {weight: 50}, {pause: 60s} ]" "{}" "[]" &&
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait
'

test_expect_success 'error_rate analysis: FAIL_RATE=0.3 fails it' '
	spec "[ {weight: 50}, {analysis: slo}, {pause: 60s} ]" "{ slo: { interval: 1s, count: 3, metrics: [ { query: error_rate, fail_if: \"> 1%\", min_requests: 20 } ] } }" "[]" &&
	bad_canary errors "" env.FAIL_RATE=0.3 &&
	rolled_back 2 error_rate &&
	ev_check "any(e[\"kind\"] == \"analysis\" and \"slo failed\" in e[\"message\"] for e in ev)"
'

test_expect_success 'latency analysis: LATENCY_MS=800 fails latency_p99 > 500ms' '
	spec "[ {weight: 50}, {analysis: slow}, {pause: 60s} ]" "{ slow: { interval: 1s, count: 3, metrics: [ { query: latency_p99, fail_if: \"> 500ms\", min_requests: 3 } ] } }" "[]" &&
	bad_canary latency "-c 16" env.LATENCY_MS=800 &&
	rolled_back 3 latency_p99
'

test_expect_success 'rollback_on "error_rate > 5% for 2s" during a long pause' '
	spec "[ {weight: 50}, {pause: 60s} ]" "{}" "[ \"error_rate > 5% for 2s\" ]" &&
	bad_canary ronerr "" env.FAIL_RATE=0.3 &&
	rolled_back 4 error_rate
'

test_expect_success 'rollback_on "restarts > 3 in 1m": a canary crashing every second' '
	spec "[ {weight: 50}, {pause: 60s} ]" "{}" "[ \"restarts > 3 in 1m\" ]" &&
	bad_canary restarts "" env.CRASH_AFTER_S=1 &&
	rolled_back 5 restarts
'

test_expect_success 'baseline comparison: latency_p95 > 1.5x the stable (50 ms against 0)' '
	spec "[ {weight: 50}, {analysis: vs-stable}, {pause: 60s} ]" "{ vs-stable: { interval: 1s, count: 3, metrics: [ { query: latency_p95, compare: baseline, method: mann-whitney, fail_if: \"> 1.5x\", min_requests: 20 } ] } }" "[]" &&
	bad_canary baseline "-c 8" env.LATENCY_MS=50 &&
	rolled_back 6 latency_p95
'

test_expect_success 'no canary replica is left; no orphan' '
	wait_for 10 "st_check \"all(r[\\\"revision\\\"] == 1 for r in d[\\\"replicas\\\"]) and len(d[\\\"replicas\\\"]) == 2\"" &&
	check_processes
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
