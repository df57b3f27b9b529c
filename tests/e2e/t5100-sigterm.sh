#!/bin/sh
test_description='SIGTERM to gantry serve: exit 0, nothing left running; a new serve brings the service back'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: 2 ready replicas of v1' '
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
	jcheck hist.json "len(d) == 1 and d[0][\"status\"] == \"serving\"" &&
	"$GANTRY" events hello --env staging >events.txt &&
	test "$(grep -c rollout_started events.txt)" = 1
'

test_expect_success 'a second serve for the same home refuses; the first keeps serving' '
	test_expect_code 1 "$GANTRY" serve --listen "127.0.0.1:$(free_port)" \
		--admin "127.0.0.1:$(free_port)" >second.out 2>second.err &&
	cat second.err &&
	grep "already running" second.err &&
	grep "pid $(pid_of serve)" second.err &&
	kill -0 "$(pid_of serve)" &&
	st_check "d[\"ready_replicas\"] == 2" &&
	test "$(pcode /)" = 200 &&
	check_processes
'

# daemon.c prints the pid read from serve.lock with its newline:
# "error: another gantry serve is already running for HOME (pid 123\n)\n"
test_expect_success 'the refusal of a second serve is one line' '
	test "$(wc -l <second.err)" -eq 1
'

# daemon_run (daemon/daemon.c) returns 1 when serve.lock is held without
# freeing d.home, d.listen, d.admin (LeakSanitizer: 3 allocations).
if gantry_sanitized; then
	test_expect_success 'the refused serve leaks nothing (LeakSanitizer)' '
		sanitizer_clean second.err
	'
else
	test_skip 'the refused serve leaks nothing (LeakSanitizer)' 'not a SANITIZE=address build'
fi

test_expect_success 'SIGTERM in the middle of a rollout; the next serve completes it' '
	"$GANTRY" deploy hello --env staging --version v2 --set env.READY_DELAY_MS=1000 &&
	wait_for 5 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"progressing\\\"\"" &&
	stop_serve &&
	wait_for 5 "test -z \"\$(tagged_pids)\"" &&
	start_serve &&
	wait_for 30 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 2 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	wait_for 10 "st_check \"len(d[\\\"replicas\\\"]) == 2 and all(r[\\\"ready\\\"] and r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\"" &&
	pget / | grep v2 &&
	check_processes
'

test_expect_success 'SIGTERM again: exit 0, nothing left' '
	stop_serve &&
	wait_for 5 "test -z \"\$(tagged_pids)\""
'

test_done
