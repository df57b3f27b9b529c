#!/bin/sh
test_description='a rollback_on for-window running when the controller is killed goes on from where it started after the restart (no new 20 s for a bad canary), and rolls back'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: v1 serving under load; a bad canary at 50%' '
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
	        steps: [ {weight: 50}, {pause: 5m} ]
	    rollback_on: ["error_rate > 5% for 20s"]
	EOF
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	start_load load &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 --set env.FAIL_RATE=0.3 &&
	wait_for 20 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"rollback_on\\\"][0][\\\"holding_since_ms\\\"] is not None\"" &&
	canary_check "c[\"rollback_on\"][0][\"condition\"] == \"error_rate > 5% for 20s\" and c[\"rollback_on\"][0][\"verdict\"] == \"holds\"" &&
	jcheck st.json "\"error_rate\" in d[\"canary\"][\"rollback_on\"][0][\"last\"]"
'

test_expect_success 'kill -9 while the window runs: seconds after the restart it still holds since the same instant' '
	sleep 6 &&
	canary_check "c[\"rollback_on\"][0][\"holding_since_ms\"] is not None" &&
	cp st.json before.json &&
	kill9_serve &&
	start_serve &&
	sleep 3 &&
	gst >after.json &&
	python3 - before.json after.json <<-PYEOF
	import json, sys
	b, a = (json.load(open(f)) for f in sys.argv[1:3])
	sb = b["canary"]["rollback_on"][0]["holding_since_ms"]
	if a.get("canary") is None:
	    # the window ended while we restarted: it rolled back already
	    sys.exit(0 if a["rollout"]["phase"] == "rolled_back" else 1)
	sa = a["canary"]["rollback_on"][0]["holding_since_ms"]
	print("holding since: before", sb, "after", sa)
	sys.exit(0 if sa == sb else 1)
	PYEOF
'

test_expect_success 'the window completes and the canary is rolled back, naming the condition' '
	wait_for 40 "st_check \"d[\\\"phase\\\"] == \\\"rolled_back\\\"\"" &&
	st_check "d[\"stable_revision\"] == 1 and \"error_rate\" in d[\"rollout\"][\"message\"] and \"for 20s\" in d[\"rollout\"][\"message\"]" &&
	stop_load load
'

test_expect_success 'stop' '
	stop_serve
'

test_done
