#!/bin/sh
test_description='watch: a rollback_on breach after a canary completed, within watch, rolls back to the previous revision, still warm'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms

# pids_of REV: the pids of revision REV's replicas in $TRASH/st.json, sorted
pids_of() {
	python3 -c "import json
print(sorted(r[\"pid\"] for r in json.load(open(\"$TRASH/st.json\"))[\"replicas\"] if r[\"revision\"] == $1))"
}

test_expect_success 'setup: v1 serving under load' '
	write_app_spec <<-EOF &&
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
	        steps: [ {weight: 50}, {pause: 1s} ]
	    rollback_on: [ "restarts > 1 in 1m" ]
	    watch: 30s
	EOF
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	gst >st.json && pids_of 1 >pids1.before && cat pids1.before &&
	start_load load
'

test_expect_success 'v2 (crashes 4 s after it starts) completes: deploy --wait exits 0' '
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 --set env.CRASH_AFTER_S=4 --wait &&
	st_check "d[\"stable_revision\"] == 2 and d[\"rollout\"][\"phase\"] == \"complete\"" &&
	jcheck st.json "d[\"canary\"][\"watch_until_ms\"] > 0" &&
	gst >st.json && pids_of 1 >pids1.complete && test_cmp pids1.before pids1.complete
'

test_expect_success 'within watch, the restarts breach rollback_on: back on v1' '
	wait_for 20 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"rolled_back\\\"\"" &&
	st_check "d[\"stable_revision\"] == 1 and d[\"rollout\"][\"revision\"] == 2" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 1, \"weight\": 100}]" &&
	split_count 100 &&
	jcheck split.json "d[\"versions\"] == {\"v1\": 100}" &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 2 and d[0][\"status\"] == \"failed\" and \"restarts\" in d[0][\"reason\"]" &&
	jcheck hist.json "[r[\"status\"] for r in d if r[\"revision\"] == 1] == [\"serving\"]" &&
	ev_check "any(e[\"kind\"] == \"rollout_rolled_back\" and e[\"revision\"] == 2 and \"restarts\" in e[\"message\"] for e in ev)" &&
	ev_check "[e[\"kind\"] for e in ev if e[\"revision\"] == 2 and e[\"kind\"] in (\"promoted\", \"rollout_complete\", \"rollout_rolled_back\")] == [\"promoted\", \"rollout_complete\", \"rollout_rolled_back\"]"
'

test_expect_success 'v1 was still warm: the same replicas serve again' '
	gst >st.json && pids_of 1 >pids1.after && cat pids1.after &&
	test_cmp pids1.before pids1.after
'

test_expect_success 'the clients: served by v2 for a while, then v1 again' '
	stop_load load &&
	jcheck load.json "d[\"versions\"].get(\"v2\", 0) > 0 and d[\"versions\"].get(\"v1\", 0) > 0" &&
	python3 -c "import json; d = json.load(open(\"load.json\")); print(\"client failures while v2 crashed:\", d[\"non2xx\"] + d[\"errors\"])" >&7
'

test_expect_success 'v2 is stopped; no orphan; SIGTERM stops the daemon' '
	wait_for 10 "st_check \"all(r[\\\"revision\\\"] == 1 for r in d[\\\"replicas\\\"])\"" &&
	check_processes &&
	stop_serve
'

test_done
