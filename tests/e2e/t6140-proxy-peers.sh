#!/bin/sh
test_description='gantry serve --proxy-peer: two remote proxies started with --await-routes get every table pushed, their windows are summed (a rollback on errors seen by one peer only), a peer that comes back gets the table before it serves, status shows them'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms
PEER1_PORT= PEER1_ADMIN= PEER2_PORT= PEER2_ADMIN=

# start_peer N: a standalone proxy, its port PEERN_PORT, admin PEERN_ADMIN,
# waiting for its first table (the ports chosen once: a restart keeps them)
start_peer() {
	eval "_pp=\$PEER$1_PORT _pa=\$PEER$1_ADMIN"
	if [ -z "$_pp" ]; then
		_pp=$(free_port) && _pa=$(free_port) || return 1
		eval "PEER$1_PORT=$_pp PEER$1_ADMIN=$_pa"
	fi
	spawn_bg "peer$1" "$GANTRY" proxy --listen "127.0.0.1:$_pp" --admin "127.0.0.1:$_pa" \
		--admin-token-file "$TRASH/peer.token" --routes "$TRASH/peer$1-routes.json" --await-routes &&
	wait_for 10 "curl -s http://127.0.0.1:$_pa/healthz | grep -q \"waiting for routes\\|^ok\""
}

# peer_split N COUNT: COUNT requests through peer N (one keep-alive client); JSON in split.json
peer_split() {
	eval "_pp=\$PEER$1_PORT"
	"$LOADGEN" --url "http://127.0.0.1:$_pp/" --host "$HOST" -c 1 -n "$2" --max-duration 20s \
		>"$TRASH/split.json" 2>/dev/null &&
	cat "$TRASH/split.json"
}

# peer_status N: its /status (with the token)
peer_status() {
	eval "_pa=\$PEER$1_ADMIN"
	curl -s --max-time 5 -H "Authorization: Bearer $(cat "$TRASH/peer.token")" "http://127.0.0.1:$_pa/status"
}

# proxies_check EXPR: Python EXPR over p = status's proxy.proxies (the local one first)
proxies_check() {
	gst >"$TRASH/stall.json" &&
	jcheck "$TRASH/stall.json" "(lambda p: $1)(d[\"proxy\"][\"proxies\"])"
}

# local_gen: the generation the local proxy runs
local_gen() {
	curl -s --max-time 5 -H "Authorization: Bearer $(cat "$GANTRY_HOME/proxy-admin.token")" \
		"http://127.0.0.1:$ADMIN_PORT/status" | json_get generation
}

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
	    stop_grace: 2s
	    progress_deadline: 30s
	    strategy:
	      canary:
	        steps: [ {weight: 50}, {pause: 60s} ]
	    rollback_on: [ "error_rate > 5% for 2s" ]
	EOF
}

test_expect_success 'setup: two peers awaiting routes, serve pushing to them, v1 deployed' '
	printf "%s\n" 0123456789abcdef0123456789abcdef >peer.token &&
	start_peer 1 && start_peer 2 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Host: $HOST" http://127.0.0.1:$PEER1_PORT/)" = 000 &&
	spec &&
	start_serve --proxy-peer "127.0.0.1:$PEER1_ADMIN" --proxy-peer "127.0.0.1:$PEER2_ADMIN" \
		--proxy-peer-token-file "$TRASH/peer.token" &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait
'

test_expect_success 'both peers serve v1 with the controller generation' '
	G=$(local_gen) && echo "local generation $G" &&
	wait_for 10 "test \"\$(peer_status 1 | json_get generation)\" = $G && test \"\$(peer_status 2 | json_get generation)\" = $G" &&
	peer_split 1 20 && jcheck split.json "d[\"versions\"] == {\"v1\": 20}" &&
	peer_split 2 20 && jcheck split.json "d[\"versions\"] == {\"v1\": 20}" &&
	grep "generation=[0-9]* (the first route table arrived)" peer1.log
'

test_expect_success 'status shows the three proxies reporting, the peers at the local generation' '
	wait_for 10 "proxies_check \"len(p) == 3 and not any(x[\\\"stale\\\"] or x[\\\"awaiting_routes\\\"] for x in p)\"" &&
	proxies_check "p[0][\"local\"] and p[1][\"address\"] == \"127.0.0.1:$PEER1_ADMIN\" and p[2][\"address\"] == \"127.0.0.1:$PEER2_ADMIN\"" &&
	proxies_check "p[1][\"generation\"] == p[0][\"generation\"] and p[2][\"pushed\"] == p[0][\"generation\"]" &&
	"$GANTRY" status >st.txt && cat st.txt &&
	grep "^proxies: 3 of 3 reporting" st.txt &&
	grep "127.0.0.1:$PEER2_ADMIN .*generation [0-9]*  reported" st.txt
'

test_expect_success 'a canary at 50%: the split holds on both peers' '
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 &&
	wait_for 10 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	G=$(local_gen) &&
	wait_for 10 "test \"\$(peer_status 1 | json_get generation)\" = $G && test \"\$(peer_status 2 | json_get generation)\" = $G" &&
	peer_split 1 200 && P=$(split_pct v2) && echo "peer 1: v2 $P%" && test "$P" -ge 30 && test "$P" -le 70 &&
	peer_split 2 200 && P=$(split_pct v2) && echo "peer 2: v2 $P%" && test "$P" -ge 30 && test "$P" -le 70 &&
	"$GANTRY" abort hello --env staging --reason "next: a bad one" &&
	wait_for 10 "st_check \"[t for t in d[\\\"traffic\\\"] if t[\\\"weight\\\"] > 0] == [{\\\"revision\\\": 1, \\\"weight\\\": 100}]\""
'

test_expect_success 'errors sent only through peer 2 roll the canary back (the summed windows)' '
	spawn_bg load "$LOADGEN" --url "http://127.0.0.1:$PEER2_PORT/" --host "$HOST" -c 4 --rate 300 \
		--max-duration 60s --stop-file "$TRASH/stop-load" &&
	test_expect_code 1 "$GANTRY" -f "$SPEC" deploy hello --env staging --version v3 --set env.FAIL_RATE=0.3 \
		--wait --timeout 40s >deploy-v3.out 2>&1
	rc=$?
	cat deploy-v3.out
	touch stop-load && wait_bg load 15
	test $rc = 0 &&
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"rollout\"][\"revision\"] == 3" &&
	ghist >hist.json && jcheck hist.json "d[0][\"revision\"] == 3 and \"error_rate\" in d[0][\"reason\"]" &&
	python3 -c "import json; print(\"reason:\", json.load(open(\"hist.json\"))[0][\"reason\"])"
'

test_expect_success 'the local proxy saw none of the traffic: every request of this test went through the peers' '
	curl -s --max-time 5 -H "Authorization: Bearer $(cat "$GANTRY_HOME/proxy-admin.token")" "http://127.0.0.1:$ADMIN_PORT/windows" >lw.json &&
	curl -s --max-time 5 -H "Authorization: Bearer $(cat peer.token)" "http://127.0.0.1:$PEER2_ADMIN/windows" >p2w.json &&
	python3 - lw.json p2w.json <<-PY
	import json, sys
	def reqs(f, rev):
	    d = json.load(open(f))
	    return sum(r.get("requests", 0) for r in d.get("revisions", []) if str(r.get("revision")) == rev)
	l, p = reqs(sys.argv[1], "1"), reqs(sys.argv[2], "1")
	print("revision 1 requests: local proxy", l, "peer 2", p)
	sys.exit(0 if l == 0 and p > 50 else 1)
	PY
'

test_expect_success 'peer 1 killed: status shows it stale' '
	kill_bg peer1 KILL && wait_bg peer1 5
	wait_for 10 "proxies_check \"p[1][\\\"stale\\\"] and not p[2][\\\"stale\\\"]\"" &&
	"$GANTRY" status >st.txt && cat st.txt &&
	grep "^proxies: 2 of 3 reporting" st.txt &&
	grep "127.0.0.1:$PEER1_ADMIN .*STALE" st.txt
'

test_expect_success 'peer 1 restarted with --await-routes: refused while the controller is stopped, serves the current table once it pushes' '
	SERVE=$(pid_of serve) &&
	kill -STOP "$SERVE" &&
	start_peer 1 &&
	sleep 0.5 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 -H "Host: $HOST" http://127.0.0.1:$PEER1_PORT/)" = 000 &&
	test "$(curl -s --max-time 5 http://127.0.0.1:$PEER1_ADMIN/healthz)" = "waiting for routes" &&
	peer_status 1 | grep -q "\"awaiting_routes\":true" &&
	T0=$(_now_ms) &&
	kill -CONT "$SERVE" &&
	wait_for 10 "test \"\$(curl -s -o /dev/null -w %{http_code} --max-time 2 -H \"Host: $HOST\" http://127.0.0.1:$PEER1_PORT/)\" = 200" &&
	T1=$(_now_ms) &&
	echo "FIGURE: returning peer served $((T1 - T0)) ms after the controller resumed (status poll + push)" &&
	test "$(peer_status 1 | json_get generation)" = "$(local_gen)" &&
	peer_split 1 20 && jcheck split.json "d[\"versions\"] == {\"v1\": 20}" &&
	wait_for 10 "proxies_check \"not any(x[\\\"stale\\\"] or x[\\\"awaiting_routes\\\"] for x in p)\"" &&
	grep "awaits its routes (it restarted): pushing generation" serve.log
'

test_expect_success 'SIGTERM stops the daemon; the peers stop' '
	kill -CONT "$(pid_of serve)" 2>/dev/null
	stop_serve &&
	kill_bg peer1 TERM && wait_bg peer1 10 &&
	kill_bg peer2 TERM && wait_bg peer2 10 &&
	sanitizer_clean peer1.log peer2.log
'

test_done
