#!/bin/sh
test_description='gantry proxy: SIGHUP route swaps under load drop nothing; drain state in /status; retries'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

# routes_for GEN ADDR... : one route for web.localhost over these upstreams
routes_for() {
	_gen=$1
	shift
	{
		printf '{"generation": %s, "routes": [{"hosts": ["web.localhost"], "service": "web", "backends": [' "$_gen"
		_sep=
		for _a in "$@"; do
			printf '%s{"address": "127.0.0.1:%s", "weight": 1, "revision": "%s"}' "$_sep" "$_a" "$_a"
			_sep=,
		done
		printf ']}]}\n'
	} | write_routes
}

test_expect_success 'setup' '
	build_helpers &&
	start_upstream A && start_upstream B && start_upstream C &&
	routes_for 1 $UP_A &&
	start_proxy
'

test_expect_success 'rolling swaps under load: zero failed requests' '
	spawn_bg load "$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --host web.localhost \
		--concurrency 8 --duration 30s --stop-file "$TRASH/stop" &&
	wait_for 5 "test \$(curl -s http://127.0.0.1:$UP_A/count | sed \"s/requests=\\([0-9]*\\).*/\\1/\") -gt 200" &&
	routes_for 2 $UP_A $UP_B && reload_proxy 2 && sleep 0.3 &&
	routes_for 3 $UP_B && reload_proxy 3 &&
	wait_for 10 "test \"\$(inflight 127.0.0.1:$UP_A)\" = absent" &&
	kill_bg up-A && sleep 0.3 &&
	routes_for 4 $UP_B $UP_C && reload_proxy 4 && sleep 0.3 &&
	routes_for 5 $UP_C && reload_proxy 5 &&
	wait_for 10 "test \"\$(inflight 127.0.0.1:$UP_B)\" = absent" &&
	kill_bg up-B && sleep 0.3 &&
	touch "$TRASH/stop" &&
	wait_bg load 40 &&
	tail -n 1 "$TRASH/load.log" >load.json &&
	cat load.json &&
	python3 -c "import json
d = json.load(open(\"load.json\"))
assert d[\"requests\"] > 1000, d
assert d[\"ok\"] == d[\"requests\"] and d[\"non2xx\"] == 0 and d[\"errors\"] == 0, d
for v in \"A\", \"B\", \"C\":
    assert d[\"versions\"].get(v, 0) > 0, (v, d)
"
'

test_expect_success 'a bad routes file on SIGHUP keeps the old table' '
	echo "{\"routes\": [{\"hosts\": [\"web.localhost\"], \"backends\": [{\"address\": 7}]}]}" | write_routes &&
	kill_bg proxy HUP &&
	wait_for 5 "grep -q reload=failed \"$TRASH/proxy.log\"" &&
	grep "routes\[0\].backends\[0\].address: expected a string, got an integer" "$TRASH/proxy.log" &&
	test "$(admin /status | json_get generation)" = 5 &&
	test "$(px / web.localhost)" = C &&
	echo "{\"routes\": [" | write_routes &&
	kill_bg proxy HUP &&
	wait_for 5 "test \$(grep -c reload=failed \"$TRASH/proxy.log\") = 2" &&
	test "$(px / web.localhost)" = C
'

test_expect_success '/status lists a removed backend until its slow request ends' '
	start_upstream D &&
	touch "$TRASH/up-C.port.hold" &&
	spawn_bg slow curl -sS --max-time 150 -H "Host: web.localhost" "http://127.0.0.1:$PROXY_PORT/hold" &&
	wait_for 5 "test \"\$(inflight 127.0.0.1:$UP_C)\" = 1" &&
	routes_for 6 $UP_D && reload_proxy 6 &&
	admin /status >st.json &&
	python3 -c "import json
d = json.load(open(\"st.json\"))
b = {x[\"address\"]: x for x in d[\"backends\"]}
c, dd = b[\"127.0.0.1:$UP_C\"], b[\"127.0.0.1:$UP_D\"]
assert c[\"in_table\"] is False and c[\"inflight\"] == 1, c
assert dd[\"in_table\"] is True and dd[\"inflight\"] == 0, dd
" &&
	test "$(px / web.localhost)" = D &&
	admin /windows >w1.json &&
	rm "$TRASH/up-C.port.hold" &&
	wait_bg slow 30 &&
	test "$(cat "$TRASH/slow.log")" = C &&
	test "$(inflight 127.0.0.1:$UP_C)" = absent &&
	admin /windows >w2.json &&
	python3 -c "import json
w1, w2 = (json.load(open(f)) for f in (\"w1.json\", \"w2.json\"))
r1 = {x[\"revision\"]: x for x in w1[\"revisions\"]}
r2 = {x[\"revision\"]: x for x in w2[\"revisions\"]}
assert r1[\"$UP_C\"][\"inflight\"] == 1, r1   # removed, its request still running: listed
assert \"$UP_C\" not in r2 and \"$UP_D\" in r2, r2  # ended: left out
"
'

test_expect_success 'connect failures are retried elsewhere; 3 failures eject' '
	dead=$(free_port) &&
	routes_for 7 $dead $UP_D && reload_proxy 7 &&
	for i in 1 2 3 4 5 6 7 8 9 10; do pcode / web.localhost; done >codes &&
	test "$(sort -u codes)" = 200 &&
	grep "ejected backend=127.0.0.1:$dead" "$TRASH/proxy.log" &&
	admin /status >st.json &&
	python3 -c "import json
d = json.load(open(\"st.json\"))
b = [x for x in d[\"backends\"] if x[\"address\"] == \"127.0.0.1:$dead\"][0]
assert b[\"ejected\"] is True and b[\"errors\"] >= 3, b
"
'

test_expect_success 'every backend down: 502' '
	routes_for 8 $(free_port) $(free_port) && reload_proxy 8 &&
	test "$(pcode / web.localhost)" = 502 &&
	test "$(pcode / web.localhost -X POST -d x)" = 502
'

test_expect_success 'a backend killed without a drain: the next requests still succeed' '
	start_upstream E && start_upstream F &&
	routes_for 9 $UP_E $UP_F && reload_proxy 9 &&
	for i in 1 2 3 4 5 6 7 8; do pcode / web.localhost; done >warm &&
	test "$(sort -u warm)" = 200 &&
	kill_bg up-E KILL &&
	for i in 1 2 3 4 5 6 7 8 9 10; do px / web.localhost; done >after &&
	test "$(sort -u after)" = F
'

# A listener whose accept queue is full drops further SYNs: a connect to it
# hangs (the kernel retries the SYN after 1 s, 3 s, ...) as to a host that
# does not answer. Each answer within 3 s (curl --max-time) shows the 300 ms
# timeout at work: the default (5 s) would miss it.
test_expect_success 'a connect that hangs: --connect-timeout, retried elsewhere, 3 timeouts eject' '
	cat >hang.py <<-\EOF &&
	import socket, sys, time
	l = socket.socket()
	l.bind(("127.0.0.1", 0))
	l.listen(0)
	held = []
	for _ in range(8):  # fill the accept queue (never accepted)
	    s = socket.socket()
	    s.setblocking(False)
	    s.connect_ex(l.getsockname())
	    held.append(s)
	time.sleep(0.5)
	open(sys.argv[1] + ".tmp", "w").write(str(l.getsockname()[1]))
	__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
	time.sleep(120)
	EOF
	spawn_bg hang python3 hang.py "$TRASH/hang.port" &&
	wait_for 5 "test -s \"$TRASH/hang.port\"" &&
	hang=$(cat "$TRASH/hang.port") &&
	python3 -c "import socket, sys
s = socket.socket(); s.settimeout(1.5)
try:
    s.connect((\"127.0.0.1\", int(sys.argv[1]))); sys.exit(\"the connect did not hang\")
except socket.timeout:
    pass" "$hang" &&
	kill_bg proxy &&
	start_upstream G &&
	routes_for 10 $hang $UP_G &&
	start_proxy --connect-timeout 300ms &&
	for i in 1 2 3 4 5 6 7 8; do px / web.localhost --max-time 3; done >hung &&
	test "$(sort -u hung)" = G &&
	grep "ejected backend=127.0.0.1:$hang for=[0-9]*s reason=connect-timeout" "$TRASH/proxy.log" &&
	routes_for 11 $hang && reload_proxy 11 &&
	test "$(pcode / web.localhost)" = 502
'

test_done
