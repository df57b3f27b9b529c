#!/bin/sh
test_description='kill -9 of the proxy under load during a canary: its /metrics counters go on from the old proxy'"'"'s (never below what a reader saw before the kill), the controller stitches its windows, and the canary is neither rolled back nor stalled'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid awk
require_gantry

# scrape: the proxy's /metrics, read with the admin token as Prometheus
# would, into $TRASH/metrics.txt; fails when the proxy does not answer
scrape() {
	curl -sf --max-time 2 -H "Authorization: Bearer $(cat "$GANTRY_HOME/proxy-admin.token")" \
		"http://127.0.0.1:$ADMIN_PORT/metrics" >"$TRASH/metrics.txt"
}

# reqs REV: gantry_http_requests_total of revision REV of hello/staging (all
# codes) in the last scrape; nothing when it has none
reqs() {
	awk -v l="service=\"hello\",environment=\"staging\",revision=\"$1\"," '
		index($0, "gantry_http_requests_total{" l) == 1 { s += $NF; n++ }
		END { if (n) print s }' "$TRASH/metrics.txt"
}

test_expect_success 'setup: v1 serving under load, a canary of v2 paused at weight 50 with rollback_on' '
	write_app_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 1s
	    progress_deadline: 60s
	    strategy:
	      canary:
	        steps: [ {weight: 50}, {pause: {}}, {analysis: slo}, {pause: 1s} ]
	    analysis:
	      slo:
	        interval: 1s
	        count: 2
	        metrics:
	          - { name: errors, query: error_rate, fail_if: "> 1%", min_requests: 20 }
	    rollback_on: [ "error_rate > 5% for 2s" ]
	EOF
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	start_load load -c 4 --rate 400 &&
	spawn_bg deploy "$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 --wait --timeout 90s &&
	wait_for 20 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	proxy=$(proxy_pid) && test -n "$proxy" &&
	# the canary counts requests, and the proxy ran a while (its death is not a crash loop)
	wait_for 10 "scrape && test \"\$(reqs 2)\" -gt 100" &&
	sleep 1.2
'

# What a Prometheus reader saw last before the kill: V. The controller polls
# /windows every 100 ms and carries the last one it read to the next proxy,
# so it must read once more after V; 2 s under load (20 polls; a controller
# that misses them is also blind for rollback_on, which wants data newer
# than 2 s) is that state, made to last. The carry file shows it did.
test_expect_success 'kill -9 the proxy under load: the new proxy'"'"'s /metrics never goes below what was read before' '
	scrape && v1=$(reqs 1) && v2=$(reqs 2) &&
	test -n "$v1" && test -n "$v2" &&
	sleep 2 &&
	t0=$(_now_ms) &&
	kill -KILL "$proxy" &&
	: >samples &&
	i=0 && while [ $i -lt 400 ]; do
		scrape && s1=$(reqs 1) && s2=$(reqs 2) && test -n "$s1" && test -n "$s2" && echo "$(($(_now_ms) - t0)) $s1 $s2" >>samples
		[ "$(wc -l <samples)" -ge 20 ] && break
		i=$((i + 1))
		sleep 0.05
	done &&
	new=$(proxy_pid) && test "$new" != "$proxy" &&
	cat samples &&
	python3 - "$v1" "$v2" samples "$GANTRY_HOME/proxy-counters.json" <<-\PY
	import json, os, sys
	v1, v2 = int(sys.argv[1]), int(sys.argv[2])
	s = [tuple(int(x) for x in l.split()) for l in open(sys.argv[3]) if l.strip()]
	assert len(s) >= 20, "the new proxy answered /metrics %d times" % len(s)
	print("figures: read before the kill: r1 %d r2 %d; first answer of the new proxy %d ms after the kill:"
	      " r1 %d r2 %d; %d samples" % (v1, v2, s[0][0], s[0][1], s[0][2], len(s)))
	for k, (t, a, b) in enumerate(s):
	    assert a >= v1 and b >= v2, "at +%d ms /metrics went back: r1 %d < %d or r2 %d < %d" % (t, a, v1, b, v2)
	    if k:
	        assert a >= s[k - 1][1] and b >= s[k - 1][2], "at +%d ms a counter went down" % t
	carry = json.load(open(sys.argv[4]))
	c = {r["revision"]: r["requests"] for r in carry["revisions"] if r["service"] == "hello"}
	print("figures: carried (the last poll of the controller, 2 s after the read): r1 %d r2 %d" % (c["1"], c["2"]))
	assert c["1"] >= v1 and c["2"] >= v2, "the controller did not poll in the 2 s before the kill"
	assert s[0][1] >= c["1"] and s[0][2] >= c["2"], "the new proxy started below the carried counters"
	PY
'

test_expect_success 'the new proxy started from the carried counters, the controller stitched the old and new epochs' '
	test "$(stat -c %a "$GANTRY_HOME/proxy-counters.json")" = 600 &&
	tr "\0" " " <"/proc/$new/cmdline" | grep -- "--counters-from $GANTRY_HOME/proxy-counters.json" &&
	grep "counters_from=$GANTRY_HOME/proxy-counters.json revisions=" "$GANTRY_HOME/logs/proxy.log" &&
	grep "revision=2 proxy_epoch=.* stitched=1 carried=yes" serve.log &&
	grep "revision=1 proxy_epoch=.* stitched=1 carried=yes" serve.log
'

# rollback_on (error_rate > 5% for 2s) keeps sampling the last second while
# the canary stays paused: 3 s across and after the replacement
test_expect_success 'no error surge: rollback_on did not fire across the replacement' '
	sleep 3 &&
	canary_check "c[\"weight\"] == 50 and c[\"wait\"] == \"pause\"" &&
	! grep "rollback_on breached" serve.log &&
	ev_check "not any(e[\"kind\"] == \"rollout_rolled_back\" for e in ev)"
'

test_expect_success 'resumed: the analysis passes and the canary completes (deploy --wait exits 0)' '
	"$GANTRY" resume hello --env staging &&
	wait_bg deploy 60 &&
	cat "$TRASH/deploy.log" &&
	grep "promoted" "$TRASH/deploy.log" &&
	st_check "d[\"stable_revision\"] == 2 and d[\"phase\"] == \"healthy\"" &&
	ev_check "any(e[\"kind\"] == \"analysis\" and \"slo successful\" in e[\"message\"] for e in ev)"
'

test_expect_success 'the clients lost only the requests in flight at the kill' '
	stop_load load &&
	jcheck "$TRASH/load.json" "d[\"errors\"] + d[\"non2xx\"] <= 4 and d[\"error_kinds\"][\"connect\"] == 0" &&
	check_processes
'

test_expect_success 'SIGTERM stops the daemon and its proxy' '
	stop_serve
'

test_done
