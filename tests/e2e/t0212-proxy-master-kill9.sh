#!/bin/sh
test_description='gantry proxy runs as a master holding the listeners: kill -9 of the serving child under load refuses no connection and fails only the requests in flight; crash-loop backoff; SIGHUP and SIGTERM reach the child; --no-master is one process'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

CLIENTS=4

# start_load NAME: $CLIENTS keep-alive clients at 400 req/s in all through
# the proxy, bounded at 120 s, until stop_load NAME
start_load() {
	rm -f "$TRASH/stop-$1"
	spawn_bg "$1" "$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --host a \
		-c $CLIENTS --rate 400 --max-duration 120s --stop-file "$TRASH/stop-$1" &&
	# it has started once it has sent a request (its log is empty until it stops)
	sleep 0.3 && kill -0 "$SPAWNED_PID"
}

# stop_load NAME: its JSON line into $TRASH/NAME.json
stop_load() {
	touch "$TRASH/stop-$1" &&
	wait_bg "$1" 15 &&
	grep '^{' "$TRASH/$1.log" | tail -n 1 >"$TRASH/$1.json" &&
	test -s "$TRASH/$1.json" &&
	cat "$TRASH/$1.json"
}

# jcheck FILE EXPR: the Python expression EXPR holds for d = FILE's JSON
jcheck() {
	python3 -c "import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}

ppid_of() {
	sed -n 's/^PPid:[[:space:]]*//p' "/proc/$1/status"
}

# gone PID: PID has exited (a zombie nobody reaped yet counts)
gone() {
	! kill -0 "$1" 2>/dev/null || grep -q "^State:[[:space:]]*Z" "/proc/$1/status" 2>/dev/null
}

# the pid of the child the master started last, from its log
last_started() {
	sed -n "s/.*child started pid=\([0-9]*\).*/\1/p" "$TRASH/proxy.log" | tail -n 1
}

# ready_after OLD NEW: ms from the master's line on OLD's death to NEW's
# "listening=" line (the new child ready to accept), from the log's timestamps
ready_after() {
	python3 - "$TRASH/proxy.log" "$1" "$2" <<-\EOF
	import datetime, sys
	def ms(line):
	    return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp() * 1000
	lines = open(sys.argv[1], errors="replace").read().splitlines()
	died = [l for l in lines if "sys=master child pid=%s killed" % sys.argv[2] in l][0]
	ready = [l for l in lines if "sys=proxy listening=" in l and l.endswith(" pid=" + sys.argv[3])][0]
	print("%d" % (ms(ready) - ms(died)))
	EOF
}

# the time from each of the last four child deaths to the next start, from
# the master's log timestamps
restart_gaps() {
	python3 - "$TRASH/proxy.log" <<-\EOF
	import datetime, re, sys
	def ms(line):
	    t = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
	    return t.timestamp() * 1000
	lines = [l for l in open(sys.argv[1], errors="replace") if "sys=master child" in l]
	gaps = []
	for i, l in enumerate(lines):
	    if " killed by " in l and i + 1 < len(lines) and "child started" in lines[i + 1]:
	        gaps.append("%d" % (ms(lines[i + 1]) - ms(l)))
	print("# figures: a new child started %s ms after each of the last four deaths" % ", ".join(gaps[-4:]))
	EOF
}

test_expect_success 'setup: the master and its serving child' '
	build_helpers &&
	start_upstream A && start_upstream B &&
	write_routes <<-EOF &&
	{"generation": 1, "routes": [{"hosts": ["*"], "backends": [{"address": "127.0.0.1:$UP_A"}]}]}
	EOF
	start_proxy &&
	master=$(pid_of proxy) &&
	child=$(serving_pid) &&
	test "$child" != "$master" &&
	test "$(ppid_of "$child")" = "$master" &&
	tr "\0" " " <"/proc/$child/cmdline" | grep -- "--listen-fds" &&
	test "$(px / a)" = A &&
	# it ran a while: its death is not a crash loop
	sleep 1.2
'

test_expect_success "kill -9 the serving child under load ($CLIENTS keep-alive clients): no refused connection, failed <= $CLIENTS" '
	start_load k9 &&
	sleep 1 &&
	kill -KILL "$child" &&
	wait_for 10 "test \"\$(last_started)\" != $child" &&
	new=$(last_started) &&
	wait_for 10 "test \"\$(serving_pid)\" = $new" &&
	sleep 1 &&
	stop_load k9 &&
	set -- $(python3 -c "import json; d = json.load(open(\"$TRASH/k9.json\")); print(d[\"errors\"] + d[\"non2xx\"], d[\"error_kinds\"][\"connect\"], d[\"max_ms\"], d[\"requests\"], d[\"retries\"])") &&
	echo "# figures: child $child -> $new; failed requests $1 (of $CLIENTS connections), refused $2," \
		"longest request $3 ms (the gap clients saw), $4 requests, $5 retried by the client;" \
		"the new child listening $(ready_after "$child" "$new") ms after the master saw the death" >&7 &&
	grep -E "sys=master child" "$TRASH/proxy.log" | tail -n 2 &&
	jcheck "$TRASH/k9.json" "d[\"requests\"] > 400 and d[\"error_kinds\"][\"connect\"] == 0" &&
	jcheck "$TRASH/k9.json" "d[\"errors\"] + d[\"non2xx\"] <= $CLIENTS" &&
	grep "child pid=$child killed by signal=9 (Killed) after [0-9]*ms: restarting now" "$TRASH/proxy.log" &&
	test "$(pid_of proxy)" = "$master" && kill -0 "$master" &&
	test "$(ppid_of "$new")" = "$master" &&
	test "$(px / a)" = A
'

test_expect_success 'a child killed within 1 s of its start is a crash loop: 1 s, then 2 s, 4 s; a child that lives resets it' '
	# kills the current child (it lived: restarted at once), then each of
	# the next three the moment the master logs its start (well within 1 s)
	cat >killer.py <<-\EOF &&
	import os, re, signal, sys, time
	log, first = sys.argv[1], int(sys.argv[2])
	def started():
	    with open(log, errors="replace") as f:
	        return [int(p) for p in re.findall(r"child started pid=(\d+)", f.read())]
	seen = len(started())
	os.kill(first, signal.SIGKILL)
	for i in range(3):
	    deadline = time.monotonic() + 30
	    while len(started()) <= seen:
	        assert time.monotonic() < deadline, "no new child"
	        time.sleep(0.005)
	    pids = started()
	    seen = len(pids)
	    os.kill(pids[-1], signal.SIGKILL)
	    print("killed", pids[-1], flush=True)
	EOF
	p=$(last_started) &&
	python3 killer.py "$TRASH/proxy.log" "$p" &&
	wait_for 15 "test \"\$(serving_pid)\" = \"\$(last_started)\"" &&
	grep -E "sys=master child" "$TRASH/proxy.log" | tail -n 8 &&
	grep -o "child pid=[0-9]* killed.*" "$TRASH/proxy.log" | tail -n 4 |
		sed "s/.*: //" >delays &&
	printf "%s\n" "restarting now (connections wait in the listen backlog)" \
		"crash loop, restarting in 1000ms" "crash loop, restarting in 2000ms" \
		"crash loop, restarting in 4000ms" >expect &&
	test_cmp expect delays &&
	restart_gaps >&7 &&
	test "$(px / a)" = A &&
	# it lived a second: the next death is replaced at once again
	sleep 1.2 &&
	p=$(serving_pid) &&
	kill -KILL "$p" &&
	wait_for 10 "grep -q \"child pid=$p killed by signal=9 (Killed) after [0-9]*ms: restarting now\" \"$TRASH/proxy.log\"" &&
	wait_for 10 "test \"\$(pcode / a)\" = 200"
'

test_expect_success 'SIGHUP to the master reloads the routes in the child' '
	child=$(serving_pid) &&
	write_routes <<-EOF &&
	{"generation": 2, "routes": [{"hosts": ["*"], "backends": [{"address": "127.0.0.1:$UP_B"}]}]}
	EOF
	reload_proxy 2 &&
	test "$(px / a)" = B &&
	test "$(serving_pid)" = "$child"
'

test_expect_success 'SIGTERM to the master: the request in flight finishes, new connections are refused, both exit 0' '
	spawn_bg slow curl -sS --max-time 30 -H "Host: a" "http://127.0.0.1:$PROXY_PORT/sleep/3000" &&
	wait_for 10 "test \"\$(inflight 127.0.0.1:$UP_B)\" = 1" &&
	kill_bg proxy TERM &&
	sleep 0.3 &&
	kill -0 "$master" && kill -0 "$child" &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 2 "http://127.0.0.1:$PROXY_PORT/")" = 000 &&
	wait_bg slow 20 &&
	test "$(cat "$TRASH/slow.log")" = B &&
	wait_bg proxy 10 &&
	gone "$child" &&
	grep "sys=master stopping signal=15: child pid=$child drains" "$TRASH/proxy.log" &&
	grep "sys=master child pid=$child exited status=0 after [0-9]*ms: stopped" "$TRASH/proxy.log" &&
	test -z "$(pgrep -s "$master")"
'

test_expect_success 'kill -9 of the master: the child gets SIGTERM, drains and exits' '
	start_proxy &&
	master=$(pid_of proxy) &&
	child=$(serving_pid) &&
	kill -KILL "$master" &&
	wait_for 15 "gone $child" &&
	grep "sys=proxy stopping=1 signal=15" "$TRASH/proxy.log" &&
	grep "sys=proxy stopped=1" "$TRASH/proxy.log"
'

test_expect_success 'a proxy that cannot start: the master exits with its status' '
	echo "{not json" >bad-routes.json &&
	port=$(free_port) &&
	test_expect_code 2 "$GANTRY" proxy --listen "127.0.0.1:$port" --routes bad-routes.json 2>bad.err &&
	cat bad.err &&
	grep "the proxy could not start" bad.err
'

test_expect_success '--admin-fd: the inherited admin listener passes through the master to each child' '
	cat >with-admin-fd.py <<-\EOF &&
	import os, socket, sys
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind(("127.0.0.1", int(sys.argv[1])))
	s.listen(64)
	os.dup2(s.fileno(), 9)  # inheritable
	os.execv(sys.argv[2], sys.argv[2:])
	EOF
	PROXY_PORT=$(free_port) && ADMIN_PORT=$(free_port) &&
	spawn_bg proxy python3 with-admin-fd.py $ADMIN_PORT "$GANTRY" proxy --listen "127.0.0.1:$PROXY_PORT" \
		--admin "127.0.0.1:$ADMIN_PORT" --admin-fd 9 --routes "$TRASH/routes.json" &&
	wait_for 10 "curl -sf http://127.0.0.1:$ADMIN_PORT/healthz" &&
	master=$(pid_of proxy) &&
	child=$(serving_pid) &&
	test "$(ppid_of "$child")" = "$master" &&
	test "$(readlink /proc/$child/fd/9)" = "$(readlink /proc/$master/fd/9)" &&
	kill -KILL "$child" &&
	wait_for 10 "test -n \"\$(serving_pid)\" && test \"\$(serving_pid)\" != $child" &&
	test "$(px / a)" = B &&
	test "$(readlink /proc/$(serving_pid)/fd/9)" = "$(readlink /proc/$master/fd/9)" &&
	kill_bg proxy TERM && wait_bg proxy 10 &&
	test_expect_code 2 "$GANTRY" proxy --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" \
		--admin-fd 3 --routes "$TRASH/routes.json" 2>fd3.err &&
	grep "is where the master hands its proxy the listeners" fd3.err
'

test_expect_success '--no-master: one process that binds and serves' '
	start_proxy --no-master &&
	test "$(serving_pid)" = "$(pid_of proxy)" &&
	test -z "$(pgrep -P "$(pid_of proxy)")" &&
	test "$(px / a)" = B &&
	! grep "sys=master" "$TRASH/proxy.log" &&
	kill_bg proxy TERM && wait_bg proxy 10
'

test_done
