#!/bin/sh
test_description='the proxy outlives a killed controller; a killed proxy is restarted by the controller'
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
	proxy=$(proxy_pid) &&
	test -n "$proxy"
'

test_expect_success 'the proxy admin wants the token serve made (HOME/proxy-admin.token, 0600); serve polls with it' '
	test "$(stat -c %a "$GANTRY_HOME/proxy-admin.token")" = 600 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status")" = 401 &&
	curl -sf --max-time 5 -H "Authorization: Bearer $(cat "$GANTRY_HOME/proxy-admin.token")" \
		"http://127.0.0.1:$ADMIN_PORT/status" >admin-status.json &&
	jcheck admin-status.json "len(d[\"backends\"]) == 2" &&
	tr "\0" " " </proc/$proxy/cmdline | grep -- "--admin-token-file $GANTRY_HOME/proxy-admin.token" &&
	! grep "admin token" "$TRASH/serve.log"
'

test_expect_success 'kill -9 serve: traffic continues with zero failures while it is down' '
	start_load down &&
	kill9_serve &&
	test_expect_code 1 "$GANTRY" status &&
	sleep 2 &&
	kill -0 "$proxy" &&
	stop_load down &&
	load_clean down
'

test_expect_success 'serve again adopts the same proxy, no failure meanwhile' '
	start_load up &&
	start_serve &&
	sleep 1 &&
	stop_load up &&
	load_clean up &&
	test "$(proxy_pid)" = "$proxy" &&
	check_processes
'

test_expect_success 'kill -9 the proxy: serve restarts it within 2 s, traffic resumes' '
	test -n "$proxy" &&
	kill -KILL "$proxy" &&
	wait_for 3 "test -n \"\$(proxy_pid)\" && test \"\$(proxy_pid)\" != $proxy" &&
	wait_for 3 "test \"\$(pcode /)\" = 200" &&
	new=$(proxy_pid) &&
	echo "proxy $proxy -> $new" &&
	grep -i "proxy" serve.log | tail -n 5
'

test_expect_success 'after the proxy restart: zero failures under load, routes intact' '
	start_load again -n 500 &&
	wait_bg again 30 &&
	grep "^{" again.log | tail -n 1 >again.json &&
	load_clean again &&
	pget / | grep v1 &&
	check_processes
'

test_expect_success 'a deploy after the proxy restart routes to the new revision' '
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	pget / | grep v2
'

test_expect_success 'kill -9 both serve and the proxy: the next serve brings traffic back' '
	old=$(proxy_pid) &&
	test -n "$old" &&
	kill9_serve &&
	kill -KILL "$old" &&
	wait_for 5 "! kill -0 $old" &&
	test "$(pcode /)" = 000 &&
	start_serve &&
	wait_for 5 "test \"\$(pcode /)\" = 200" &&
	pget / | grep v2 &&
	wait_for 15 "st_check \"d[\\\"ready_replicas\\\"] == 2 and all(r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\"" &&
	check_processes
'

test_expect_success 'SIGTERM stops the daemon and its proxy' '
	stop_serve &&
	wait_for 5 "test -z \"\$(tagged_pids)\""
'

test_done
