#!/bin/sh
test_description='blue-green: the new revision answers behind its preview tag before the switch, resume switches 100% at once, rollback within keep_previous is a route change'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# pids_of REV: the pids of revision REV's replicas in $TRASH/st.json, sorted
pids_of() {
	python3 -c "import json, sys
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
	    progress_deadline: 30s
	    strategy:
	      bluegreen: { preview_tag: preview, auto_promote: false, keep_previous: 10m }
	EOF
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"stable_revision\"] == 1" &&
	start_load load
'

test_expect_success 'v2 comes up at full size behind the preview tag and waits' '
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 &&
	wait_for 15 "canary_check \"c[\\\"wait\\\"] == \\\"promote_at\\\" and c[\\\"canary_ready\\\"] == 2\"" &&
	jcheck st.json "d[\"canary\"][\"kind\"] == \"bluegreen\" and d[\"canary\"][\"pause_until_ms\"] == -1" &&
	jcheck st.json "sum(1 for r in d[\"replicas\"] if r[\"revision\"] == 2 and r[\"ready\"]) == 2" &&
	jcheck st.json "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 1, \"weight\": 100}]"
'

test_expect_success 'preview---hello.staging.localhost and X-Gantry-Tag: preview reach v2; the rest v1' '
	test "$(curl -s --max-time 5 -H "Host: preview---$HOST" "http://127.0.0.1:$PROXY_PORT/")" != "" &&
	curl -s --max-time 5 -H "Host: preview---$HOST" "http://127.0.0.1:$PROXY_PORT/" | grep "hello from v2" &&
	split_count 50 -H "X-Gantry-Tag: preview" &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 50}" &&
	split_count 100 &&
	jcheck split.json "d[\"versions\"] == {\"v1\": 100}" &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 -H "Host: r2---$HOST" "http://127.0.0.1:$PROXY_PORT/")" = 404 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 -H "Host: canary---$HOST" "http://127.0.0.1:$PROXY_PORT/")" = 404 &&
	jcheck "$GANTRY_HOME/routes.json" "[r[\"tag_hosts\"] for r in d[\"routes\"]] == [[\"preview\"]]"
'

test_expect_success 'the preview survives a kill -9 of the controller and a restart' '
	kill9_serve &&
	start_serve &&
	wait_for 10 "canary_check \"c[\\\"wait\\\"] == \\\"promote_at\\\"\"" &&
	split_count 50 -H "X-Gantry-Tag: preview" &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 50}" &&
	curl -s --max-time 5 -H "Host: preview---$HOST" "http://127.0.0.1:$PROXY_PORT/" | grep "hello from v2" &&
	split_count 50 &&
	jcheck split.json "d[\"versions\"] == {\"v1\": 50}"
'

test_expect_success 'gantry resume switches 100% to v2 at once; v1 stays warm' '
	gst >st.json && pids_of 1 >pids1.before && pids_of 2 >pids2.before && cat pids1.before &&
	"$GANTRY" resume hello --env staging --reason switch &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 2, \"weight\": 100}]" &&
	split_count 100 &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 100}" &&
	wait_for 10 "st_check \"d[\\\"stable_revision\\\"] == 2 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	pids_of 1 >pids1.after && test_cmp pids1.before pids1.after &&
	pids_of 2 >pids2.after && test_cmp pids2.before pids2.after &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 -H "Host: r1---$HOST" "http://127.0.0.1:$PROXY_PORT/")" = 404
'

test_expect_success 'gantry rollback within keep_previous: a route change onto the warm v1 replicas' '
	start=$(date +%s%N) &&
	"$GANTRY" rollback hello --env staging --wait --timeout 10s &&
	end=$(date +%s%N) &&
	echo "rollback --wait took $(( (end - start) / 1000000 )) ms" &&
	split_count 100 &&
	jcheck split.json "d[\"versions\"] == {\"v1\": 100}" &&
	gst >st.json &&
	pids_of 1 >pids1.rb && cat pids1.rb &&
	test_cmp pids1.before pids1.rb
'

test_expect_success 'the clients saw zero failures' '
	stop_load load &&
	load_clean load &&
	jcheck load.json "d[\"versions\"].get(\"v1\", 0) > 0 and d[\"versions\"].get(\"v2\", 0) > 0"
'

test_expect_success 'events: the switch by who; no orphan; SIGTERM stops the daemon' '
	ev_check "any(e[\"kind\"] == \"resume\" and \"switch\" in e[\"message\"] for e in ev)" &&
	ev_check "any(e[\"kind\"] == \"promoted\" and e[\"revision\"] == 2 for e in ev)" &&
	check_processes &&
	stop_serve
'

test_done
