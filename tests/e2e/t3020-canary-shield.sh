#!/bin/sh
test_description='canary shield: a failing canary request is retried on stable, clients see no error; without it they see the canary share'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# spec SHIELD: a canary at 50% held by a long pause, rolled back by rollback_on
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
	    progress_deadline: 30s
	    shield: $1
	    strategy:
	      canary:
	        steps: [ {weight: 50}, {pause: 60s} ]
	    rollback_on: [ "error_rate > 5% for 2s" ]
	EOF
}

test_expect_success 'setup: v1 serving' '
	spec true &&
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait
'

test_expect_success 'shield on: a FAIL_RATE=0.5 canary is rolled back' '
	start_load shielded &&
	test_expect_code 1 "$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 \
		--set env.FAIL_RATE=0.5 --wait --timeout 30s &&
	stop_load shielded &&
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"stable_revision\"] == 1"
'

test_expect_success 'shield on: zero client failures, yet the canary answered some requests' '
	load_clean shielded &&
	jcheck shielded.json "d[\"versions\"].get(\"v2\", 0) > 0"
'

test_expect_success 'shield on: the failures still counted against the canary' '
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 2 and d[0][\"status\"] == \"failed\"" &&
	jcheck hist.json "\"error_rate\" in d[0][\"reason\"]" &&
	python3 -c "import json, re, sys
r = json.load(open(\"hist.json\"))[0][\"reason\"]
print(r)
m = re.search(r\"error_rate ([0-9.]+)%\", r)
sys.exit(0 if m and 30 <= float(m.group(1)) <= 70 else 1)"
'

test_expect_success 'shield off: the clients see the canary share of failures' '
	spec false &&
	start_load bare &&
	test_expect_code 1 "$GANTRY" -f "$SPEC" deploy hello --env staging --version v3 \
		--set env.FAIL_RATE=0.5 --wait --timeout 30s &&
	stop_load bare &&
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"stable_revision\"] == 1" &&
	jcheck bare.json "d[\"errors\"] == 0 and set(d[\"codes\"]) == {\"200\", \"500\"}" &&
	jcheck bare.json "d[\"non2xx\"] > 0 and d[\"codes\"][\"500\"] == d[\"non2xx\"]" &&
	jcheck bare.json "0.3 * d[\"versions\"][\"v3\"] <= d[\"non2xx\"] <= 0.7 * d[\"versions\"][\"v3\"]"
'

test_expect_success 'no orphan; SIGTERM stops the daemon' '
	wait_for 10 "st_check \"all(r[\\\"revision\\\"] == 1 for r in d[\\\"replicas\\\"])\"" &&
	check_processes &&
	stop_serve
'

test_done
