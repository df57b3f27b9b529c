#!/bin/sh
test_description='gates are checked again before each traffic increase: an incident freeze opened during a canary holds it where it is (never its rollback), and it goes on when the incident closes'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

ENV=production
HOST=hello.production.localhost

test_expect_success 'setup: production frozen by P0 incidents, a canary with manual pauses, v1 serving' '
	write_app_spec <<-EOF &&
	project: t
	environments:
	  production:
	    replicas: 2
	    protection:
	      freeze_on_incident: [P0]
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 1s
	    progress_deadline: 30s
	    strategy:
	      canary:
	        steps: [ {weight: 20}, {pause: {}}, {weight: 50}, {pause: {}} ]
	EOF
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env production --version v1 --wait &&
	"$GANTRY" -f "$SPEC" deploy hello --env production --version v2 &&
	wait_for 15 "canary_check \"c[\\\"weight\\\"] == 20 and c[\\\"wait\\\"] == \\\"pause\\\"\""
'

test_expect_success 'a P0 opens while the canary is at 20%: resume does not raise it to 50%' '
	"$GANTRY" incident open -s P0 -t "db down" --env production >/dev/null &&
	wait_for 10 "ev_check \"any(e[\\\"kind\\\"] == \\\"gate_hold\\\" for e in ev)\"" &&
	"$GANTRY" resume hello --env production &&
	wait_for 10 "canary_check \"c[\\\"wait\\\"] == \\\"gate\\\"\"" &&
	canary_check "c[\"weight\"] == 20 and c[\"gate_closed\"] and \"frozen by open incident 1\" in c[\"gate_reason\"]" &&
	jcheck st.json "\"held at 20%\" in d[\"rollout\"][\"message\"] and \"db down\" in d[\"rollout\"][\"message\"]" &&
	jcheck st.json "sorted((t[\"revision\"], t[\"weight\"]) for t in d[\"traffic\"]) == [(1, 80), (2, 20)]" &&
	split_count 100 &&
	test "$(split_pct v2)" -le 30
'

test_expect_success 'the hold survives a controller kill -9' '
	kill9_serve &&
	start_serve &&
	wait_for 10 "canary_check \"c[\\\"wait\\\"] == \\\"gate\\\" and c[\\\"weight\\\"] == 20\""
'

test_expect_success 'the incident closes: the held step happens by itself, up to the next pause' '
	"$GANTRY" incident close 1 >/dev/null &&
	wait_for 15 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	ev_check "any(e[\"kind\"] == \"gate_open\" for e in ev)" &&
	canary_check "not c.get(\"gate_closed\")"
'

test_expect_success 'a freeze holds the promotion too; an abort is never held' '
	"$GANTRY" incident open -s P0 -t "again" --env production >/dev/null &&
	wait_for 10 "ev_check \"len([e for e in ev if e[\\\"kind\\\"] == \\\"gate_hold\\\"]) == 2\"" &&
	"$GANTRY" resume hello --env production &&
	wait_for 15 "canary_check \"c[\\\"wait\\\"] == \\\"gate\\\" and c[\\\"gate_then_promote\\\"]\"" &&
	canary_check "c[\"weight\"] == 50 and not c[\"promoted\"]" &&
	"$GANTRY" abort hello --env production --reason "not today" &&
	wait_for 10 "st_check \"d[\\\"stable_revision\\\"] == 1 and d[\\\"traffic\\\"] in ([{\\\"revision\\\": 1, \\\"weight\\\": 100}], [])\"" &&
	split_count 50 &&
	test "$(split_pct v1)" -eq 100
'

test_expect_success 'stop' '
	stop_serve
'

test_done
