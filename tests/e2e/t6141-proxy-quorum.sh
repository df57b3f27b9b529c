#!/bin/sh
test_description='the quorum gate for timed pauses: with the local proxy and one peer (2 proxies, quorum 2), a peer that stops reporting holds a timed pause past its time ("holding: 1 of 2 proxies reporting", events quorum_hold/quorum_hold_end); the peer back, the rollout goes on at once; a person resumes a held step'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms
PEER_PORT= PEER_ADMIN=

# start_peer: a standalone proxy on 127.0.0.1 waiting for its first table
# (the ports are chosen once: a restart keeps them)
start_peer() {
	if [ -z "$PEER_PORT" ]; then
		PEER_PORT=$(free_port) && PEER_ADMIN=$(free_port) || return 1
	fi
	spawn_bg peer "$GANTRY" proxy --listen "127.0.0.1:$PEER_PORT" --admin "127.0.0.1:$PEER_ADMIN" \
		--admin-token-file "$TRASH/peer.token" --routes "$TRASH/peer-routes.json" --await-routes &&
	wait_for 10 "curl -s http://127.0.0.1:$PEER_ADMIN/healthz | grep -q \"waiting for routes\\|^ok\""
}

# reporting: status's "R of N" proxies line
reporting() {
	"$GANTRY" status >"$TRASH/st.txt" && grep "^proxies: " "$TRASH/st.txt"
}

# PAUSE is long enough that the hold cannot be mistaken for the pause
# itself (the hold is seen only once the pause is over) and short enough
# to keep the script quick
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
	        steps: [ {weight: 50}, {pause: 3s}, {weight: 75}, {pause: 3s} ]
	EOF
}

test_expect_success 'setup: one peer, serve pushing to it, v1 deployed, 2 of 2 reporting' '
	printf "%s\n" 0123456789abcdef0123456789abcdef >peer.token &&
	start_peer &&
	spec &&
	start_serve --proxy-peer "127.0.0.1:$PEER_ADMIN" --proxy-peer-token-file "$TRASH/peer.token" &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	wait_for 10 "reporting | grep -q \"^proxies: 2 of 2 reporting\""
'

test_expect_success 'the peer killed: 1 of 2 reporting, below the quorum' '
	kill_bg peer KILL && wait_bg peer 5
	wait_for 10 "reporting | grep -q \"^proxies: 1 of 2 reporting\""
'

test_expect_success 'a canary: the weight step runs, the timed pause holds past its time' '
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 &&
	wait_for 20 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	T0=$(_now_ms) &&
	wait_for 20 "canary_check \"c.get(\\\"hold\\\") == \\\"timer\\\"\"" &&
	T1=$(_now_ms) &&
	echo "# figure: hold seen $((T1 - T0)) ms after the pause began (pause: 3s)" >&7 &&
	canary_check "\"holding: 1 of 2 proxies reporting\" in c[\"message\"]" &&
	"$GANTRY" status >st.txt && cat st.txt &&
	grep "holding: 1 of 2 proxies reporting" st.txt &&
	ev_check "any(e[\"kind\"] == \"quorum_hold\" and \"holding: 1 of 2 proxies reporting\" in e[\"message\"] for e in ev)" &&
	# made to last: nothing brings the quorum back, so the step stays held
	sleep 4 &&
	canary_check "c[\"step\"] == 1 and c[\"weight\"] == 50 and c[\"phase\"] == \"progressing\" and c[\"hold\"] == \"timer\""
'

test_expect_success 'the peer back: the hold ends, the rollout goes on to 75% and completes' '
	T0=$(_now_ms) &&
	start_peer &&
	wait_for 20 "canary_check \"c[\\\"weight\\\"] == 75\"" &&
	T1=$(_now_ms) &&
	echo "# figure: peer restarted -> next step (75%) in $((T1 - T0)) ms" >&7 &&
	reporting | grep "^proxies: 2 of 2 reporting" &&
	ev_check "any(e[\"kind\"] == \"quorum_hold_end\" and \"quorum\" in e[\"message\"] for e in ev)" &&
	wait_for 20 "ev_check \"any(e[\\\"kind\\\"] == \\\"promoted\\\" and e[\\\"revision\\\"] == 2 for e in ev)\""
'

test_expect_success 'below the quorum again, a new canary: gantry resume (a person) releases each held pause' '
	kill_bg peer KILL && wait_bg peer 5
	wait_for 10 "reporting | grep -q \"^proxies: 1 of 2 reporting\"" &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v3 &&
	wait_for 20 "canary_check \"c.get(\\\"hold\\\") == \\\"timer\\\" and c[\\\"weight\\\"] == 50\"" &&
	"$GANTRY" resume hello --env staging &&
	wait_for 20 "canary_check \"c.get(\\\"hold\\\") == \\\"timer\\\" and c[\\\"weight\\\"] == 75\"" &&
	ev_check "any(e[\"kind\"] == \"quorum_hold_end\" and e[\"revision\"] == 3 and \"released by\" in e[\"message\"] for e in ev)" &&
	"$GANTRY" resume hello --env staging &&
	wait_for 20 "ev_check \"any(e[\\\"kind\\\"] == \\\"promoted\\\" and e[\\\"revision\\\"] == 3 for e in ev)\"" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 3, \"weight\": 100}]"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
