#!/bin/sh
test_description='canary happy path: 20% -> pause -> 50% -> analysis -> pause -> 100%, the split observed under load'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

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
	        steps: [ {weight: 20}, {pause: {}}, {weight: 50}, {analysis: slo}, {pause: 1s} ]
	    analysis:
	      slo:
	        interval: 1s
	        count: 2
	        metrics:
	          - { name: errors, query: error_rate, fail_if: "> 1%", min_requests: 20 }
	          - { name: p99, query: latency_p99, fail_if: "> 500ms", min_requests: 20 }
	          # holds the analysis (and weight 50) until the test has counted:
	          # a state the test observes lasts, however loaded the machine
	          - { name: counted, provider: command, command: "while ! test -f $TRASH/counted; do sleep 0.1; done; echo 0", fail_if: "> 0", timeout: 120s }
	EOF
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"stable_revision\"] == 1 and \"canary\" not in d" &&
	start_load load
'

# The proxy splits by smooth weighted round-robin, exact per worker; but the
# load client shares the workers with the counting client, so the 300 requests
# counted here are a sample of that sequence as good as random: at 20% the
# standard deviation is 2.3 points, at 50% 2.9 points. A band of 10 points
# either side is over 3 standard deviations (a false failure < 1 in 2000),
# and still tells 20 from 50 from 0 or 100.
test_expect_success 'v2 rolls out; at weight 20 about 20% of requests reach it' '
	spawn_bg deploy "$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 --wait &&
	wait_for 10 "canary_check \"c[\\\"weight\\\"] == 20 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	cp st.json st-20.json &&
	split_count 300 &&
	canary_check "c[\"weight\"] == 20" &&
	pct=$(split_pct v2) && echo "v2 share at weight 20: $pct%" &&
	test "$pct" -ge 10 && test "$pct" -le 30 &&
	jcheck st-20.json "d[\"rollout\"][\"revision\"] == 2 and d[\"rollout\"][\"steps\"] == 5" &&
	jcheck st-20.json "d[\"rollout\"][\"step\"] == 1 and d[\"canary\"][\"nsteps\"] == 5" &&
	jcheck st-20.json "d[\"canary\"][\"stable_revision\"] == 1 and d[\"canary\"][\"canary_revision\"] == 2" &&
	jcheck st-20.json "sorted((t[\"revision\"], t[\"weight\"]) for t in d[\"traffic\"]) == [(1, 80), (2, 20)]" &&
	jcheck st-20.json "\"pause\" in d[\"rollout\"][\"message\"]" &&
	"$GANTRY" resume hello --env staging
'

test_expect_success 'the stable keeps its 2 replicas while the canary has 1' '
	jcheck st-20.json "sum(1 for r in d[\"replicas\"] if r[\"revision\"] == 1) == 2" &&
	jcheck st-20.json "sum(1 for r in d[\"replicas\"] if r[\"revision\"] == 2) == 1"
'

test_expect_success 'at weight 50 (analysis running) about half reach v2' '
	wait_for 10 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"analysis\\\"\"" &&
	cp st.json st-50.json &&
	split_count 300 &&
	canary_check "c[\"weight\"] == 50" &&
	pct=$(split_pct v2) && echo "v2 share at weight 50: $pct%" &&
	test "$pct" -ge 40 && test "$pct" -le 60 &&
	jcheck st-50.json "d[\"rollout\"][\"step\"] == 3 and \"analysis slo\" in d[\"rollout\"][\"message\"]" &&
	jcheck st-50.json "[a[\"analysis\"] for a in d[\"canary\"][\"analyses\"]] == [\"slo\"]" &&
	touch "$TRASH/counted"
'

test_expect_success 'deploy --wait exits 0: promoted' '
	wait_bg deploy 30 &&
	cat "$TRASH/deploy.log" &&
	grep "promoted" "$TRASH/deploy.log"
'

test_expect_success 'the clients saw zero failures, and both versions' '
	stop_load load &&
	load_clean load &&
	jcheck load.json "d[\"versions\"].get(\"v1\", 0) > 0 and d[\"versions\"].get(\"v2\", 0) > 0"
'

test_expect_success 'v2 serves everything; history: v2 serving, v1 superseded' '
	st_check "d[\"stable_revision\"] == 2 and d[\"phase\"] == \"healthy\"" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 2, \"weight\": 100}]" &&
	split_count 50 &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 50}" &&
	ghist >hist.json &&
	jcheck hist.json "[(r[\"revision\"], r[\"status\"]) for r in d] == [(2, \"serving\"), (1, \"superseded\")]"
'

test_expect_success 'events: traffic 20 then 50 then 100, analysis successful, promoted, complete' '
	ev_check "[e[\"message\"].split()[1:3] for e in ev if e[\"kind\"] == \"traffic\" and e[\"revision\"] == 2] == [[\"#1=80%\", \"#2=20%\"], [\"#1=50%\", \"#2=50%\"], [\"#1=0%\", \"#2=100%\"]]" &&
	ev_check "any(e[\"kind\"] == \"analysis\" and \"slo successful\" in e[\"message\"] for e in ev)" &&
	ev_check "[e[\"kind\"] for e in ev if e[\"revision\"] == 2 and e[\"kind\"] in (\"promoted\", \"rollout_complete\")] == [\"promoted\", \"rollout_complete\"]"
'

test_expect_success 'no orphan; SIGTERM stops the daemon' '
	check_processes &&
	stop_serve
'

test_done
