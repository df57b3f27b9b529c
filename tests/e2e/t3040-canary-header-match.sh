#!/bin/sh
test_description='canary header match: matching requests always reach the canary (even at weight 0), the others follow the weights'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: v1 serving; v2 with a match step first' '
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
	        match: { header: { x-beta: "team-*" } }
	        steps: [ {match: {header: {canary: "true"}}}, {pause: {}}, {weight: 30}, {pause: {}} ]
	EOF
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 &&
	wait_for 10 "canary_check \"c[\\\"wait\\\"] == \\\"pause\\\" and c[\\\"step\\\"] == 1\"" &&
	jcheck st.json "d[\"rollout\"][\"phase\"] == \"paused\"" &&
	wait_for 10 "st_check \"any(r[\\\"revision\\\"] == 2 and r[\\\"ready\\\"] for r in d[\\\"replicas\\\"])\""
'

test_expect_success 'at weight 0: canary: true reaches v2, every other request v1' '
	canary_check "c[\"weight\"] == 0" &&
	split_count 100 -H "canary: true" &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 100}" &&
	split_count 100 &&
	jcheck split.json "d[\"versions\"] == {\"v1\": 100}" &&
	split_count 50 -H "canary: false" &&
	jcheck split.json "d[\"versions\"] == {\"v1\": 50}"
'

test_expect_success 'the strategy-wide prefix rule (x-beta: team-*) reaches v2 too' '
	split_count 50 -H "x-beta: team-red" &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 50}" &&
	split_count 50 -H "x-beta: other" &&
	jcheck split.json "d[\"versions\"] == {\"v1\": 50}"
'

test_expect_success 'the header names match case-insensitively' '
	test "$(curl -s --max-time 5 -H "Host: $HOST" -H "Canary: true" "http://127.0.0.1:$PROXY_PORT/")" = "$(curl -s --max-time 5 -H "Host: $HOST" -H "canary: true" "http://127.0.0.1:$PROXY_PORT/")" &&
	curl -s --max-time 5 -H "Host: $HOST" -H "CANARY: true" "http://127.0.0.1:$PROXY_PORT/" | grep v2
'

test_expect_success 'after kill -9 of the controller and a restart, the rules still hold' '
	kill9_serve &&
	start_serve &&
	wait_for 10 "canary_check \"c[\\\"step\\\"] == 1\"" &&
	split_count 50 -H "canary: true" &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 50}" &&
	split_count 50 -H "x-beta: team-blue" &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 50}" &&
	split_count 50 &&
	jcheck split.json "d[\"versions\"] == {\"v1\": 50}"
'

test_expect_success 'at weight 30: matching requests still all on v2, the others about 30%' '
	"$GANTRY" resume hello --env staging &&
	wait_for 10 "canary_check \"c[\\\"weight\\\"] == 30 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	split_count 100 -H "canary: true" &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 100}" &&
	split_count 300 &&
	pct=$(split_pct v2) && echo "v2 share at weight 30: $pct%" &&
	test "$pct" -ge 25 && test "$pct" -le 35
'

test_expect_success 'after promotion the rules are gone: everything on v2' '
	"$GANTRY" resume hello --env staging &&
	wait_for 10 "st_check \"d[\\\"stable_revision\\\"] == 2 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	split_count 50 -H "canary: false" &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 50}"
'

test_expect_success 'no orphan; SIGTERM stops the daemon' '
	check_processes &&
	stop_serve
'

test_done
