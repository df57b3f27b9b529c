#!/bin/sh
test_description='gantry proxy: active health checks take a replica out of rotation and back; bad settings are refused'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

# The test upstream answers /health with 200, or 503 while $TRASH/up-NAME.port.down exists.
# (a check may still time out on a loaded machine: fall 2 is what keeps a
# replica up through one, and the tests below count on fall, not on luck)
HC='{"path": "/health", "interval_ms": 300, "timeout_ms": 300, "fall": 2, "rise": 2}'

# routes GEN [WEB_HC]: web (A and B, one revision), shop (revisions 1: C, 2: D, 50/50),
# slow (E, checked on a path slower than the timeout), stall (F, whose check
# can stop the proxy while its answer arrives), gone (a port nobody listens on)
routes() {
	_webhc=", \"health_check\": $HC"
	[ $# -gt 1 ] && _webhc=$2
	write_routes <<-EOF
	{"generation": $1, "routes": [
	  {"hosts": ["web.localhost"], "service": "web", "environment": "prod",
	   "revisions": [{"revision": "1", "weight": 100,
	                  "backends": [{"address": "127.0.0.1:$UP_A"}, {"address": "127.0.0.1:$UP_B"}]}]
	   $_webhc},
	  {"hosts": ["shop.localhost"], "service": "shop", "environment": "prod",
	   "revisions": [{"revision": "1", "weight": 50, "backends": [{"address": "127.0.0.1:$UP_C"}]},
	                 {"revision": "2", "weight": 50, "backends": [{"address": "127.0.0.1:$UP_D"}]}],
	   "health_check": $HC},
	  {"hosts": ["slow.localhost"], "service": "slow",
	   "revisions": [{"revision": "1", "weight": 100, "backends": [{"address": "127.0.0.1:$UP_E"}]}],
	   "health_check": {"path": "/sleep/1000", "interval_ms": 200, "timeout_ms": 150, "fall": 2}},
	  {"hosts": ["stall.localhost"], "service": "stall",
	   "revisions": [{"revision": "1", "weight": 100, "backends": [{"address": "127.0.0.1:$UP_F"}]}],
	   "health_check": {"path": "/stall", "interval_ms": 600, "timeout_ms": 500, "fall": 1, "rise": 1}},
	  {"hosts": ["gone.localhost"], "service": "gone",
	   "revisions": [{"revision": "1", "weight": 100, "backends": [{"address": "127.0.0.1:$NOBODY"}]}],
	   "health_check": {"path": "/health", "interval_ms": 200, "timeout_ms": 150, "fall": 2}}
	]}
	EOF
}

# field ADDR KEY: a backend's field in /status
field() {
	admin /status | python3 -c 'import json, sys
d = json.load(sys.stdin)
b = [b for b in d["backends"] if b["address"] == sys.argv[1]]
print(b[0][sys.argv[2]] if b else "absent")' "127.0.0.1:$1" "$2"
}

# hits N HOST: N GETs over one keep-alive connection, one body per line
hits() {
	_i=0
	while [ $_i -lt "$1" ]; do
		echo "url = \"http://127.0.0.1:$PROXY_PORT/\""
		_i=$((_i + 1))
	done >hits.cfg
	curl -s --max-time 30 -H "Host: $2" -K hits.cfg
}

test_expect_success 'setup: six upstreams, a closed port, checks every 300 ms (fall 2, rise 2)' '
	build_helpers &&
	start_upstream A && start_upstream B && start_upstream C && start_upstream D &&
	start_upstream E && start_upstream F && NOBODY=$(free_port) &&
	routes 1 &&
	start_proxy --workers 2
'

test_expect_success 'replicas that pass are "up" and share the traffic' '
	wait_for 10 "test \"\$(field $UP_B checks_passed)\" -ge 2" &&
	for u in $UP_A $UP_B; do
		echo "127.0.0.1:$u: $(field $u health), $(field $u checks_passed) passed, $(field $u checks_failed) failed"
	done &&
	test "$(field $UP_A health)" = up && test "$(field $UP_B health)" = up &&
	test "$(field $UP_A checks_passed)" -ge 2 &&
	hits 40 web.localhost >h1 &&
	test "$(wc -l <h1)" = 40 &&
	grep -q "^A$" h1 && grep -q "^B$" h1
'

test_expect_success 'a replica failing its health path leaves rotation; no request fails' '
	spawn_bg load "$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --host web.localhost \
		--concurrency 4 --stop-file "$TRASH/stop" --max-duration 60s &&
	wait_for 5 "test \"\$(field $UP_B requests)\" -gt 50" &&
	touch "$TRASH/up-B.port.down" &&
	wait_for 5 "test \"\$(field $UP_B health)\" = down" &&
	grep "health=down backend=127.0.0.1:$UP_B service=web environment=prod revision=1 fails=2 reason=\"status 503\"" \
		"$TRASH/proxy.log" &&
	sleep 0.3 && n1=$(field $UP_B requests) &&
	sleep 1 && n2=$(field $UP_B requests) &&
	test "$n1" = "$n2" &&
	touch "$TRASH/stop" && wait_bg load 20 &&
	tail -n 1 "$TRASH/load.log" >load.json && cat load.json &&
	python3 -c "import json
d = json.load(open(\"load.json\"))
assert d[\"requests\"] > 100, d
assert d[\"ok\"] == d[\"requests\"] and d[\"errors\"] == 0 and d[\"non2xx\"] == 0, d
" &&
	hits 50 web.localhost >h2 &&
	test "$(grep -c "^A$" h2)" = 50
'

test_expect_success '/metrics: gantry_proxy_backend_up and gantry_proxy_health_checks_total' '
	admin /metrics >m &&
	grep "^gantry_proxy_backend_up{service=\"web\",environment=\"prod\",revision=\"1\",address=\"127.0.0.1:$UP_B\"} 0$" m &&
	grep "^gantry_proxy_backend_up{service=\"web\",environment=\"prod\",revision=\"1\",address=\"127.0.0.1:$UP_A\"} 1$" m &&
	grep "^gantry_proxy_health_checks_total{service=\"web\",environment=\"prod\",revision=\"1\",address=\"127.0.0.1:$UP_B\",result=\"fail\"} [1-9][0-9]*$" m &&
	grep "^gantry_proxy_health_checks_total{service=\"web\",environment=\"prod\",revision=\"1\",address=\"127.0.0.1:$UP_B\",result=\"pass\"} [1-9][0-9]*$" m
'

test_expect_success 'it comes back after rise (2) passes in a row' '
	p0=$(field $UP_B checks_passed) &&
	rm "$TRASH/up-B.port.down" &&
	wait_for 5 "test \"\$(field $UP_B health)\" = up" &&
	test "$(field $UP_B checks_passed)" -ge $((p0 + 2)) &&
	grep "health=up backend=127.0.0.1:$UP_B service=web environment=prod revision=1 passes=2" "$TRASH/proxy.log" &&
	hits 40 web.localhost >h3 &&
	grep -q "^A$" h3 && grep -q "^B$" h3
'

test_expect_success 'a revision whose only replica fails its checks gets no share' '
	hits 20 shop.localhost >s1 && grep -q "^C$" s1 && grep -q "^D$" s1 &&
	touch "$TRASH/up-D.port.down" &&
	wait_for 5 "test \"\$(field $UP_D health)\" = down" &&
	hits 100 shop.localhost >s2 &&
	test "$(grep -c "^C$" s2)" = 100 &&
	rm "$TRASH/up-D.port.down"
'

test_expect_success 'a timeout and a refused connect are failures too' '
	wait_for 5 "test \"\$(field $UP_E health)\" = down" &&
	grep "health=down backend=127.0.0.1:$UP_E .*reason=\"timeout\"" "$TRASH/proxy.log" &&
	wait_for 5 "test \"\$(field $NOBODY health)\" = down" &&
	grep "health=down backend=127.0.0.1:$NOBODY .*reason=\"connection refused\"" "$TRASH/proxy.log" &&
	test "$(pcode / slow.localhost)" = 200
'

# checks_total ADDR: passed + failed checks of a backend
checks_total() {
	echo $(($(field "$1" checks_passed) + $(field "$1" checks_failed)))
}

# the upstream stops the proxy (SIGSTOP) as its answer to a check leaves, for
# 1.5 s, three times longer than the check timeout: libuv runs the overdue
# timeout before it reads the answer, and a proxy that trusted it would mark
# a healthy backend down (fall 1) for its own stall
test_expect_success 'a proxy stopped while a check answer arrives does not blame the backend' '
	wait_for 10 "test \"\$(field $UP_F health)\" = up" &&
	f0=$(field $UP_F checks_failed) &&
	for i in 1 2 3; do
		n0=$(checks_total $UP_F) &&
		echo "$(serving_pid) 1500" >"$TRASH/stall.tmp" && mv "$TRASH/stall.tmp" "$TRASH/up-F.port.stall" &&
		wait_for 10 "test ! -e \"$TRASH/up-F.port.stall\"" &&
		# the stalled check counted, and the one after it
		wait_for 15 "test \$(checks_total $UP_F) -ge \$((n0 + 2))" || return 1
	done &&
	echo "checks of F: $(field $UP_F checks_passed) passed, $(field $UP_F checks_failed) failed" &&
	test "$(field $UP_F checks_failed)" = "$f0" &&
	test "$(field $UP_F health)" = up &&
	! grep "health=down backend=127.0.0.1:$UP_F" "$TRASH/proxy.log"
'

test_expect_success 'a bad health_check on SIGHUP is refused by its JSON path; the old table stays' '
	write_routes <<-EOF &&
	{"generation": 2, "routes": [{"hosts": ["web.localhost"],
	  "revisions": [{"revision": "1", "weight": 100, "backends": [{"address": "127.0.0.1:$UP_A"}]}],
	  "health_check": {"path": "/health", "fall": 0}}]}
	EOF
	kill_bg proxy HUP &&
	wait_for 5 "grep -q reload=failed \"$TRASH/proxy.log\"" &&
	grep "routes\[0\].health_check.fall: 0 is out of range 1..100" "$TRASH/proxy.log" &&
	test "$(admin /status | json_get generation)" = 1 &&
	test "$(field $UP_B health)" = up &&
	test "$(pcode / shop.localhost)" = 200
'

test_expect_success 'a bad health_check at start: exit 2 and the error' '
	printf "%s\n" "{\"routes\": [{\"hosts\": [\"*\"], \"backends\": [{\"address\": \"127.0.0.1:$UP_A\"}], \"health_check\": {\"path\": \"/h\", \"timeout_ms\": 5000}}]}" >bad.json &&
	test_expect_code 2 "$GANTRY" proxy --listen "127.0.0.1:$(free_port)" --routes bad.json 2>bad.err &&
	grep "routes\[0\].health_check.timeout_ms: 5000 is longer than interval_ms (2000)" bad.err
'

test_expect_success 'a reload without the check: the replica is unchecked and back in rotation' '
	touch "$TRASH/up-B.port.down" &&
	routes 3 &&
	reload_proxy 3 &&
	wait_for 5 "test \"\$(field $UP_B health)\" = down" &&
	routes 4 "" &&
	reload_proxy 4 &&
	test "$(field $UP_B health)" = unchecked &&
	test "$(field $UP_A health)" = unchecked &&
	test "$(field $UP_C health)" = up &&
	hits 40 web.localhost >h4 &&
	grep -q "^B$" h4
'

test_done
