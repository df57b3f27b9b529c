#!/bin/sh
test_description='kill -9 of the controller during a pause and during an analysis: the canary ends as it would have, no failed request, no orphan'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# kill_restart_at WHAT EXPR: once the canary object satisfies EXPR (c = it),
# kill -9 the controller, check that the proxy alone serves without a failure
# meanwhile, restart, and check that the rollout resumed at the same step (or
# a later one if the step ended meanwhile), a pause with the same deadline
kill_restart_at() {
	wait_for 15 "canary_check \"$2\"" &&
	cp st.json "before-$1.json" &&
	kill9_serve &&
	split_count 50 >/dev/null &&
	jcheck split.json "d[\"non2xx\"] == 0 and d[\"errors\"] == 0" &&
	start_serve &&
	gst >"after-$1.json" &&
	python3 - "before-$1.json" "after-$1.json" <<-PYEOF
	import json, sys
	before, after = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
	b, a = before["canary"], after.get("canary")
	print("before:", b["step"], b["wait"], b["weight"], b["pause_until_ms"])
	print("after: ", a and (a["step"], a["wait"], a["weight"], a["pause_until_ms"]), after["rollout"]["phase"])
	if a is None:
	    # over already (an analysis round due during the restart decided it)
	    ok = after["rollout"]["id"] == before["rollout"]["id"] and after["rollout"]["phase"] in ("complete", "rolled_back")
	else:
	    ok = a["step"] >= b["step"] and a["weight"] >= b["weight"]
	    if ok and a["step"] == b["step"] and b["wait"] == "pause":
	        ok = a["pause_until_ms"] == b["pause_until_ms"]
	sys.exit(0 if ok else 1)
	PYEOF
}

# traffic_once W...: the canary weights of the traffic events since the last
# rollout_started are exactly these, in order (no step skipped or repeated)
traffic_once() {
	ev_check "[int(e[\"message\"].split()[2].split(\"=\")[1].rstrip(\"%\")) for e in ev[max(i for i, x in enumerate(ev) if x[\"kind\"] == \"rollout_started\"):] if e[\"kind\"] == \"traffic\"] == [$1]"
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
	    shield: true
	    strategy:
	      canary:
	        steps: [ {weight: 20}, {pause: 3s}, {weight: 50}, {analysis: slo}, {pause: 2s} ]
	    analysis:
	      slo:
	        interval: 1s
	        count: 8
	        metrics:
	          - { query: error_rate, fail_if: "> 1%", min_requests: 20 }
	          # a round waits while the file "hold" exists: the state the
	          # test kills the controller in lasts, however loaded the machine
	          - { name: held, provider: command, command: "while test -f $TRASH/hold; do sleep 0.1; done; echo 0", fail_if: "> 0", timeout: 120s }
	EOF
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	start_load good
'

test_expect_success 'good canary: kill -9 during the 3 s pause at 20%' '
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 &&
	kill_restart_at pause "c[\\\"weight\\\"] == 20 and c[\\\"wait\\\"] == \\\"pause\\\""
'

test_expect_success 'good canary: kill -9 during the analysis at 50%, after a round' '
	wait_for 15 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"analysis\\\" and c[\\\"analyses\\\"][0][\\\"rounds\\\"] >= 1\"" &&
	touch "$TRASH/hold" &&
	kill_restart_at analysis "c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"analysis\\\" and c[\\\"analyses\\\"][0][\\\"rounds\\\"] >= 1" &&
	rm -f "$TRASH/hold"
'

test_expect_success 'good canary: promoted, each step once, zero failed requests' '
	wait_for 30 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 2 and d[\\\"rollout\\\"][\\\"phase\\\"] != \\\"progressing\\\"\"" &&
	st_check "d[\"rollout\"][\"phase\"] == \"complete\" and d[\"stable_revision\"] == 2" &&
	traffic_once "20, 50, 100" &&
	ev_check "len([e for e in ev if e[\"kind\"] == \"analysis\" and e[\"revision\"] == 2]) == 1" &&
	ev_check "any(e[\"kind\"] == \"analysis\" and \"slo successful\" in e[\"message\"] for e in ev)" &&
	stop_load good &&
	load_clean good &&
	check_processes
'

test_expect_success 'bad canary (FAIL_RATE=0.3, shield): kill -9 during the pause, then during the analysis' '
	start_load bad &&
	touch "$TRASH/hold" &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v3 --set env.FAIL_RATE=0.3 &&
	kill_restart_at bpause "c[\\\"canary_revision\\\"] == 3 and c[\\\"weight\\\"] == 20 and c[\\\"wait\\\"] == \\\"pause\\\"" &&
	kill_restart_at banalysis "c[\\\"canary_revision\\\"] == 3 and c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"analysis\\\"" &&
	rm -f "$TRASH/hold"
'

test_expect_success 'bad canary: rolled back by the analysis, zero failed requests' '
	wait_for 30 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 3 and d[\\\"rollout\\\"][\\\"phase\\\"] != \\\"progressing\\\"\"" &&
	st_check "d[\"rollout\"][\"phase\"] == \"rolled_back\" and d[\"stable_revision\"] == 2" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 2, \"weight\": 100}]" &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 3 and d[0][\"status\"] == \"failed\" and \"error_rate\" in d[0][\"reason\"]" &&
	traffic_once "20, 50, 0" &&
	stop_load bad &&
	load_clean bad
'

test_expect_success 'no orphan, nothing twice; SIGTERM stops the daemon' '
	wait_for 10 "st_check \"all(r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\"" &&
	check_processes &&
	stop_serve
'

test_done
