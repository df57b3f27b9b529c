#!/bin/sh
test_description='a release that crash-loops is rolled back automatically, without a failed request'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms

test_expect_success 'setup: v1 good, under load' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 40s
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	start_load load
'

test_expect_success 'v2 crashes at start: deploy --wait exits 1' '
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 \
		--set env.CRASH_AFTER_S=0 --wait >out 2>err &&
	cat out err
'

test_expect_success 'status: rolled_back, stable revision 1, traffic only on revision 1' '
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"stable_revision\"] == 1" &&
	st_check "d[\"traffic\"] == [{\"revision\": 1, \"weight\": 100}]" &&
	st_check "d[\"rollout\"][\"revision\"] == 2 and d[\"rollout\"][\"phase\"] == \"rolled_back\"" &&
	wait_for 10 "st_check \"len(d[\\\"replicas\\\"]) == 2 and all(r[\\\"revision\\\"] == 1 and r[\\\"ready\\\"] for r in d[\\\"replicas\\\"])\"" &&
	test "$(pget /)" != "" &&
	pget / | grep v1
'

test_expect_success 'history: revision 2 failed, the reason mentions the crash loop' '
	ghist >hist.json &&
	jcheck hist.json "[r[\"revision\"] for r in d] == [2, 1]" &&
	jcheck hist.json "d[0][\"status\"] == \"failed\" and \"crash-looping\" in d[0][\"reason\"]" &&
	jcheck hist.json "d[1][\"status\"] == \"serving\""
'

test_expect_success 'events: replica_exited and rollout_rolled_back' '
	"$GANTRY" events hello --env staging >events.txt &&
	cat events.txt &&
	grep replica_exited events.txt &&
	grep rollout_rolled_back events.txt
'

test_expect_success 'the clients saw zero failures and never v2' '
	stop_load load &&
	load_clean load &&
	jcheck load.json "list(d[\"versions\"]) == [\"v1\"]"
'

test_expect_success 'no v2 replica is left running' '
	check_processes &&
	test -z "$(tagged_pids | while read -r p; do
		tr "\0" "\n" <"/proc/$p/environ" | grep -x "GANTRY_VERSION=v2"; done)"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
