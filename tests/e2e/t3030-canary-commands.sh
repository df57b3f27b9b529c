#!/bin/sh
test_description='canary commands: pause: {} waits, pause holds a timed pause, resume, resume --full, abort (a route change), each recorded with who'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

ME=$(id -un)

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
	    progress_deadline: 30s
	    strategy:
	      canary:
	        steps: [ {weight: 20}, {pause: {}}, {weight: 50}, {pause: 3s}, {weight: 80}, {pause: 60s} ]
	EOF
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	start_load load
'

test_expect_success 'pause: {} holds the canary at 20% until resumed' '
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 &&
	wait_for 10 "canary_check \"c[\\\"weight\\\"] == 20 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	sleep 2 &&
	canary_check "c[\"step\"] == 1 and c[\"weight\"] == 20 and c[\"pause_until_ms\"] == -1" &&
	jcheck st.json "d[\"rollout\"][\"phase\"] == \"paused\" and \"resume\" in d[\"rollout\"][\"message\"]" &&
	jcheck st.json "sorted((t[\"revision\"], t[\"weight\"]) for t in d[\"traffic\"]) == [(1, 80), (2, 20)]"
'

test_expect_success 'resume continues to the timed pause at 50%' '
	"$GANTRY" resume hello --env staging --reason "20% looks good" &&
	wait_for 10 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"pause\\\" and c[\\\"pause_until_ms\\\"] > 0\""
'

test_expect_success 'gantry pause during the 3 s pause holds it past its deadline' '
	"$GANTRY" pause hello --env staging --reason "hold on" &&
	canary_check "c[\"phase\"] == \"paused\" and c[\"paused_by\"] == \"$ME\" and c[\"pause_left_ms\"] > 0" &&
	jcheck st.json "d[\"rollout\"][\"phase\"] == \"paused\"" &&
	sleep 4 &&
	canary_check "c[\"phase\"] == \"paused\" and c[\"step\"] == 3 and c[\"weight\"] == 50" &&
	st_check "sorted((t[\"revision\"], t[\"weight\"]) for t in d[\"traffic\"]) == [(1, 50), (2, 50)]"
'

test_expect_success 'resume finishes what was left of the pause, then 80%' '
	"$GANTRY" resume hello --env staging &&
	canary_check "c[\"phase\"] == \"progressing\"" &&
	wait_for 10 "canary_check \"c[\\\"weight\\\"] == 80 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	canary_check "c[\"step\"] == 5"
'

test_expect_success 'resume --full skips the 60 s pause: promoted at once' '
	"$GANTRY" resume hello --env staging --full --reason "ship it" &&
	wait_for 10 "st_check \"d[\\\"stable_revision\\\"] == 2 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 2, \"weight\": 100}]" &&
	ghist >hist.json &&
	jcheck hist.json "[(r[\"revision\"], r[\"status\"]) for r in d] == [(2, \"serving\"), (1, \"superseded\")]"
'

test_expect_success 'abort: v3 at 20% goes back to 100% stable at once, stable replicas untouched' '
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v3 &&
	wait_for 10 "canary_check \"c[\\\"weight\\\"] == 20 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	jcheck st.json "len([r for r in d[\"replicas\"] if r[\"revision\"] == 2]) == 2" &&
	python3 -c "import json; print(sorted(r[\"pid\"] for r in json.load(open(\"st.json\"))[\"replicas\"] if r[\"revision\"] == 2))" >pids.before &&
	"$GANTRY" abort hello --env staging --reason "changed my mind" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 2, \"weight\": 100}]" &&
	split_count 50 &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 50}" &&
	st_check "d[\"rollout\"][\"revision\"] == 3 and d[\"rollout\"][\"phase\"] == \"aborted\" and d[\"stable_revision\"] == 2" &&
	python3 -c "import json; print(sorted(r[\"pid\"] for r in json.load(open(\"st.json\"))[\"replicas\"] if r[\"revision\"] == 2))" >pids.after &&
	cat pids.before pids.after &&
	test_cmp pids.before pids.after &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 3 and d[0][\"status\"] != \"serving\" and \"aborted by $ME\" in d[0][\"reason\"]" &&
	jcheck hist.json "[r[\"status\"] for r in d if r[\"revision\"] == 2] == [\"serving\"]"
'

test_expect_success 'the clients saw zero failures through all of it' '
	stop_load load &&
	load_clean load
'

test_expect_success 'events: every command with who and why' '
	ev_check "any(e[\"kind\"] == \"resume\" and e[\"revision\"] == 2 and \"by $ME: 20% looks good\" in e[\"message\"] for e in ev)" &&
	ev_check "any(e[\"kind\"] == \"pause\" and e[\"revision\"] == 2 and \"by $ME: hold on\" in e[\"message\"] for e in ev)" &&
	ev_check "any(e[\"kind\"] == \"resume\" and e[\"revision\"] == 2 and \"by $ME: ship it\" in e[\"message\"] for e in ev)" &&
	ev_check "any(e[\"kind\"] == \"abort\" and e[\"revision\"] == 3 and \"by $ME: changed my mind\" in e[\"message\"] for e in ev)" &&
	ev_check "len([e for e in ev if e[\"kind\"] in (\"pause\", \"resume\", \"abort\")]) == 5"
'

test_expect_success 'the aborted canary is stopped; no orphan; SIGTERM stops the daemon' '
	wait_for 10 "st_check \"all(r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\"" &&
	check_processes &&
	stop_serve
'

test_done
