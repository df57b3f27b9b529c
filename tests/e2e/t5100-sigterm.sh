#!/bin/sh
test_description='SIGTERM to gantry serve: exit 0, nothing left running; a new serve brings the service back'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: 2 ready replicas of v1' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 2s
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"ready_replicas\"] == 2" &&
	test -n "$(proxy_pid)" &&
	test "$(tagged_pids | wc -l)" -ge 3
'

test_expect_success 'SIGTERM: serve exits 0 within 15 s' '
	kill_bg serve TERM &&
	wait_bg serve 15
'

test_expect_success 'no replica and no proxy is left' '
	wait_for 5 "test -z \"\$(tagged_pids)\"" &&
	test -z "$(tagged_pids)" &&
	test "$(pcode /)" = 000
'

test_expect_success 'gantry status says the daemon is not running' '
	test_expect_code 1 "$GANTRY" status 2>err &&
	grep "not running" err &&
	grep "gantry serve" err
'

test_expect_success 'serve again: 2 ready replicas of the same revision, traffic flows' '
	start_serve &&
	wait_for 15 "st_check \"d[\\\"ready_replicas\\\"] == 2 and len(d[\\\"replicas\\\"]) == 2\"" &&
	st_check "d[\"stable_revision\"] == 1 and all(r[\"revision\"] == 1 and r[\"ready\"] for r in d[\"replicas\"])" &&
	wait_for 5 "test \"\$(pcode /)\" = 200" &&
	pget / | grep v1 &&
	check_processes
'

test_expect_success 'traffic through the proxy under load has no failure' '
	start_load load -n 500 &&
	wait_bg load 30 &&
	grep "^{" load.log | tail -n 1 >load.json &&
	load_clean load
'

test_expect_success 'history unchanged by the restart of the daemon' '
	ghist >hist.json &&
	jcheck hist.json "len(d) == 1 and d[0][\"status\"] == \"serving\""
'

test_expect_success 'SIGTERM again: exit 0, nothing left' '
	stop_serve &&
	wait_for 5 "test -z \"\$(tagged_pids)\""
'

test_done
