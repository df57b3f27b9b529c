#!/bin/sh
test_description='wall-clock steps of +/- 1 h during a canary: pauses last their time, analysis rounds are neither skipped nor bunched, rollback_on keeps watching; deploy windows follow the wall clock'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# The controller's wall clock is stepped through GANTRY_NOW_FILE (tests only,
# util/clock.h): a signed number of seconds added to the real clock, read at
# each call. serve.log's timestamps are the real clock (util/log.c), so the
# durations below are measured on them.
STEP=$TRASH/clock-step
GANTRY_NOW_FILE=$STEP
export GANTRY_NOW_FILE
step_to() {
	echo "$1" >"$STEP.tmp" && mv "$STEP.tmp" "$STEP" &&
	say "wall clock now real $1 s"
}

# a deny window on production from 30 to 90 minutes from now (UTC): closed
# once the clock is an hour ahead
WINDOW=$(python3 -c '
import datetime
n = datetime.datetime.now(datetime.timezone.utc)
a, b = n + datetime.timedelta(minutes=30), n + datetime.timedelta(minutes=90)
print(a.strftime("%a %H:%M") + "-" + b.strftime("%a %H:%M"))')

# spec STEPS ROLLBACK_ON
spec() {
	write_app_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 2 }
	  production:
	    protection:
	      windows: { deny: ["$WINDOW"], timezone: UTC }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 1s
	    stop_grace: 2s
	    progress_deadline: 60s
	    strategy:
	      canary:
	        steps: $1
	    rollback_on: $2
	    analysis:
	      slo:
	        interval: 4s
	        count: 4
	        metrics:
	          - { query: error_rate, fail_if: "> 5%", min_requests: 20 }
	EOF
}

# log_gap START END: seconds (real clock) from the first serve.log line
# matching the regex START to the first later one matching END
log_gap() {
	python3 - "$TRASH/serve.log" "$1" "$2" <<-'PYEOF'
	import datetime, re, sys
	start = end = None
	for line in open(sys.argv[1], errors="replace"):
	    if start is None and re.search(sys.argv[2], line):
	        start = line
	    elif start is not None and re.search(sys.argv[3], line):
	        end = line
	        break
	if end is None:
	    sys.exit("no match")
	t = lambda l: datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
	print("%.2f" % (t(end) - t(start)).total_seconds())
	PYEOF
}


test_expect_success 'setup: v1 serving under load, the wall clock not stepped' '
	spec "[ {weight: 20}, {pause: 20s}, {weight: 50}, {analysis: slo}, {pause: 20s} ]" "[ \"error_rate > 5% for 3s\" ]" &&
	step_to 0 &&
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	start_load good
'

test_expect_success '+1 h then -1 h during a 20 s pause: it still ends 20 s after it began' '
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 &&
	wait_for 30 "canary_check \"c[\\\"weight\\\"] == 20 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	cp st.json pause1-before.json &&
	sleep 4 &&
	step_to 3600 &&
	sleep 4 &&
	canary_check "c[\"weight\"] == 20 and c[\"wait\"] == \"pause\"" &&
	jcheck st.json "d[\"canary\"][\"pause_until_ms\"] == $(python3 -c "import json; print(json.load(open(\"pause1-before.json\"))[\"canary\"][\"pause_until_ms\"])")" &&
	step_to 0 &&
	wait_for 60 "canary_check \"c[\\\"weight\\\"] == 50\"" &&
	gap=$(log_gap "kind=traffic .*#2=20%" "kind=traffic .*#2=50%") &&
	say "pause 1 (20 s, +1 h and -1 h steps): ${gap} s" &&
	python3 -c "import sys; sys.exit(not 19.5 <= $gap < 40)"
'

test_expect_success 'the analysis: +1 h after round 1, -1 h after round 2; 4 rounds 4 s apart, successful' '
	wait_for 30 "canary_check \"c[\\\"analyses\\\"] and c[\\\"analyses\\\"][0][\\\"rounds\\\"] >= 1\"" &&
	step_to 3600 &&
	wait_for 30 "canary_check \"c[\\\"analyses\\\"] and c[\\\"analyses\\\"][0][\\\"rounds\\\"] >= 2\"" &&
	step_to 0 &&
	wait_for 60 "grep -q \"kind=analysis .*slo successful\" serve.log" &&
	grep "kind=analysis .*slo successful: 4 measurements" serve.log &&
	python3 - "$TRASH/serve.log" <<-PYEOF
	import datetime, re, sys
	# each measurement is a serve.log line, stamped by the real clock
	# (util/log.c: never the stepped wall clock of GANTRY_NOW_FILE)
	seen = {}
	for l in open(sys.argv[1], errors="replace"):
	    m = re.search(r"sys=analysis .*revision=2 analysis=slo .*measurement=(\d+)", l)
	    if m:
	        seen.setdefault(int(m.group(1)), datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ"))
	gaps = [(seen[k + 1] - seen[k]).total_seconds() for k in range(1, 4) if k in seen and k + 1 in seen]
	print("rounds seen:", sorted(seen), "gaps (s):", ["%.2f" % g for g in gaps])
	sys.exit(0 if sorted(seen) == [1, 2, 3, 4] and len(gaps) == 3 and min(gaps) >= 2.0 else 1)
	PYEOF
'

test_expect_success '-1 h during the last 20 s pause: it lasts 20 s; promoted, no rollback, no failed request' '
	wait_for 15 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	sleep 3 &&
	step_to -3600 &&
	wait_for 60 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 2 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	gap=$(log_gap "kind=analysis .*slo successful" "kind=traffic .*#2=100%") &&
	say "pause 2 (20 s, -1 h step): ${gap} s" &&
	python3 -c "import sys; sys.exit(not 19.5 <= $gap < 40)" &&
	st_check "d[\"stable_revision\"] == 2" &&
	ev_check "not any(e[\"kind\"] in (\"rollback_on\", \"rollout_rolled_back\") for e in ev)" &&
	! grep "rollback_on breached" serve.log &&
	stop_load good &&
	load_clean good
'

test_expect_success 'a bad canary: -1 h while its rollback_on window runs; rolled back when the window is over' '
	spec "[ {weight: 20}, {pause: 60s} ]" "[ \"error_rate > 5% for 8s\" ]" &&
	start_load bad &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v3 --set env.FAIL_RATE=0.3 &&
	wait_for 30 "canary_check \"c[\\\"canary_revision\\\"] == 3 and c[\\\"rollback_on\\\"][0][\\\"holding_since_ms\\\"] is not None\"" &&
	step_to -7200 &&
	wait_for 30 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 3 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"rolled_back\\\"\"" &&
	gap=$(log_gap "kind=traffic .*#3=20%" "rollback_on breached") &&
	say "rollback_on for 8s, a -1 h step inside it: breached ${gap} s after the canary got traffic" &&
	python3 -c "import sys; sys.exit(not 7.5 <= $gap < 30)" &&
	st_check "d[\"stable_revision\"] == 2" &&
	stop_load bad
'

test_expect_success 'deploy windows follow the wall clock: +1 h into a deny window refuses, back out allows' '
	step_to 3600 &&
	test_expect_code 3 "$GANTRY" -f "$SPEC" deploy hello --env production --version v1 2>err &&
	cat err &&
	grep "not allowed now" err &&
	step_to 0 &&
	"$GANTRY" -f "$SPEC" deploy hello --env production --version v1 --wait &&
	ENV=production st_check "d[\"stable_revision\"] >= 1"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
