#!/bin/sh
test_description='kill -9 of the proxy under load: the controller holds the listeners, so no connection is refused and only the requests in flight fail; the next proxy starts at once'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

CLIENTS=4

test_expect_success 'setup: 2 ready replicas of v1 behind the proxy' '
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
	test -n "$proxy" &&
	pget / | grep v1 &&
	# it ran a while: its death is not a crash loop
	sleep 1.2
'

test_expect_success "kill -9 the proxy under load ($CLIENTS keep-alive clients): no refused connection, failed <= $CLIENTS" '
	start_load k9 -c $CLIENTS --rate 400 &&
	sleep 1 &&
	t0=$(_now_ms) &&
	kill -KILL "$proxy" &&
	wait_for 5 "test -n \"\$(proxy_pid)\" && test \"\$(proxy_pid)\" != $proxy" &&
	new=$(proxy_pid) &&
	wait_for 5 "test \"\$(pcode /)\" = 200" &&
	t1=$(_now_ms) &&
	sleep 1 &&
	stop_load k9 &&
	failed=$(python3 -c "import json; d = json.load(open(\"$TRASH/k9.json\")); print(d[\"errors\"] + d[\"non2xx\"], d[\"error_kinds\"][\"connect\"], d[\"max_ms\"])") &&
	set -- $failed &&
	echo "figures: proxy $proxy -> $new; failed requests $1 (of $CLIENTS connections), refused $2;" \
		"longest request $3 ms (the gap clients saw); new proxy answering the test $((t1 - t0)) ms after the kill (with its /proc scans)" &&
	grep -E "proxy exited|restarting" serve.log | tail -n 3 &&
	jcheck "$TRASH/k9.json" "d[\"requests\"] > 500 and d[\"error_kinds\"][\"connect\"] == 0" &&
	jcheck "$TRASH/k9.json" "d[\"errors\"] + d[\"non2xx\"] <= $CLIENTS" &&
	pget / | grep v1 &&
	check_processes
'

test_expect_success 'the new proxy was handed the held sockets and restarted at once' '
	tr "\0" " " <"/proc/$new/cmdline" | grep -- "--listen-fds" &&
	grep "restarting it now" serve.log
'

# the pid of the proxy serve started last, from its log (no /proc scan: fast)
last_started() {
	sed -n "s/.*proxy started pid=\([0-9]*\) .*/\1/p" serve.log | tail -n 1
}

test_expect_success 'a proxy killed within 1 s of its start is a crash loop: 1 s, then 2 s before the next' '
	p=$(last_started) && test -n "$p" &&
	kill -KILL "$p" &&
	wait_for 5 "test \"\$(last_started)\" != $p" &&
	p=$(last_started) &&
	kill -KILL "$p" &&
	wait_for 5 "test \"\$(last_started)\" != $p" &&
	p=$(last_started) &&
	kill -KILL "$p" &&
	wait_for 8 "test \"\$(last_started)\" != $p" &&
	grep -E "proxy exited" serve.log | tail -n 3 &&
	grep "crash loop, restarting it in 1000ms" serve.log &&
	grep "crash loop, restarting it in 2000ms" serve.log &&
	wait_for 5 "test \"\$(pcode /)\" = 200" &&
	pget / | grep v1
'

test_expect_success 'a proxy adopted after a controller kill -9: its listeners are held again (pidfd_getfd)' '
	sleep 1.2 &&
	adopted=$(proxy_pid) &&
	kill9_serve &&
	start_serve &&
	test "$(proxy_pid)" = "$adopted" &&
	grep "adopted running proxy pid=$adopted; holding copies of its" serve.log
'

test_expect_success "kill -9 of the adopted proxy under load: no refused connection, failed <= $CLIENTS" '
	start_load k9b -c $CLIENTS --rate 400 &&
	sleep 1 &&
	kill -KILL "$adopted" &&
	wait_for 5 "test -n \"\$(proxy_pid)\" && test \"\$(proxy_pid)\" != $adopted" &&
	wait_for 5 "test \"\$(pcode /)\" = 200" &&
	sleep 1 &&
	stop_load k9b &&
	python3 -c "import json; d = json.load(open(\"$TRASH/k9b.json\")); print(\"figures: adopted proxy killed: failed\", d[\"errors\"] + d[\"non2xx\"], \"refused\", d[\"error_kinds\"][\"connect\"])" &&
	jcheck "$TRASH/k9b.json" "d[\"requests\"] > 500 and d[\"error_kinds\"][\"connect\"] == 0" &&
	jcheck "$TRASH/k9b.json" "d[\"errors\"] + d[\"non2xx\"] <= $CLIENTS"
'

test_expect_success 'SIGTERM stops the daemon and its proxy' '
	stop_serve &&
	wait_for 5 "test -z \"\$(tagged_pids)\""
'

test_done
