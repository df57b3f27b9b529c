#!/bin/sh
test_description='a replica failing its liveness probe is restarted, with a growing backoff'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

restarts() {
	gst | python3 -c "import json, sys; print(sum(r[\"restarts\"] for r in json.load(sys.stdin)[\"replicas\"]))"
}

test_expect_success 'setup: liveness /health every 200ms, 2 failures' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	      liveness: { http: /health, period: 200ms, failure_threshold: 2 }
	    stop_grace: 1s
	    drain_timeout: 500ms
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --set env.UNHEALTHY_AFTER_S=1 --wait
'

test_expect_success 'the replica is restarted: restarts grow over time' '
	wait_for 10 "test \$(restarts) -ge 1" &&
	first=$(restarts) &&
	wait_for 15 "test \$(restarts) -gt $first"
'

test_expect_success 'backoff: few restarts in 3 seconds' '
	r0=$(restarts) &&
	sleep 3 &&
	r1=$(restarts) &&
	echo "restarts: $r0 -> $r1" &&
	test $((r1 - r0)) -le 5
'

test_expect_success 'the announced backoff between restarts grows' '
	gevents >events.json &&
	python3 - events.json <<-\EOF
	import json, re, sys
	# one JSON object per line (as with -f)
	ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
	ex = [e for e in ev if e["kind"] == "replica_exited" and "liveness" in e["message"]]
	assert len(ex) >= 2, ev
	def ms(s):
	    # "1s600ms", "400ms", "2s"
	    m = re.fullmatch(r"(?:(\d+)s)?(?:(\d+)ms)?", s)
	    return int(m.group(1) or 0) * 1000 + int(m.group(2) or 0)
	delays = [ms(re.search(r"restart \d+ in (\S+)", e["message"]).group(1)) for e in ex]
	print("backoff delays (ms):", delays)
	assert all(b > a for a, b in zip(delays, delays[1:])), delays
	EOF
'

test_expect_success 'events and status name liveness' '
	"$GANTRY" events hello --env staging >events.txt &&
	grep liveness events.txt &&
	st_check "d[\"replicas\"][0][\"restarts\"] >= 2"
'

test_expect_success 'a replica passing liveness is left alone' '
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	sleep 2 &&
	st_check "all(r[\"restarts\"] == 0 and r[\"revision\"] == 2 for r in d[\"replicas\"])"
'

rev_pid() {
	gst | python3 -c "import json, sys; print(*[r[\"pid\"] for r in json.load(sys.stdin)[\"replicas\"] if r[\"revision\"] == $1 and r[\"pid\"]])"
}

rev_state() {
	gst | python3 -c "import json, sys; print(*[r[\"state\"] for r in json.load(sys.stdin)[\"replicas\"] if r[\"revision\"] == $1])"
}

test_expect_success 'a replica whose process ends while it drains is not restarted' '
	sed "s/drain_timeout: 500ms/drain_timeout: 60s/" gantry.yaml >g.tmp && mv g.tmp gantry.yaml &&
	"$GANTRY" deploy hello --env staging --version v3 --set env.ACCESS_LOG=1 --wait &&
	{ curl -s --max-time 70 -H "Host: $HOST" "http://127.0.0.1:$PROXY_PORT/slow?ms=55000" >slow.out 2>&1 & } &&
	wait_for 20 "\"\$GANTRY\" logs hello --env staging | grep -q \"slow 55000 ms started\"" &&
	"$GANTRY" deploy hello --env staging --version v4 &&
	wait_for 20 "test \"\$(rev_state 3)\" = draining" &&
	kill -9 $(rev_pid 3) &&
	wait_for 20 "test -z \"\$(rev_state 3)\"" &&
	sleep 1 &&
	st_check "all(r[\"revision\"] == 4 and r[\"restarts\"] == 0 for r in d[\"replicas\"])" &&
	gevents >ev.json &&
	! grep -q "hello-staging-3-.*restart" ev.json
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
