#!/bin/sh
test_description='kill -9 of gantry serve at several moments of a rolling deploy: each rollout completes, no orphan, no failed request'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms

test_expect_success 'setup: 3 ready replicas of v1 under load' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 3 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    env: { READY_DELAY_MS: 400 }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 2s
	    progress_deadline: 60s
	    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"ready_replicas\"] == 3" &&
	start_load load
'

rev=1
for delay in 0 0.2 0.6 1.2 2; do
	rev=$((rev + 1))
	test_expect_success "kill -9 ${delay}s into the rollout of revision $rev" '
		"$GANTRY" deploy hello --env staging --version "v$rev" &&
		sleep $delay &&
		{ gst | json_get rollout.message || :; } &&
		kill9_serve &&
		start_serve
	'
	test_expect_success "revision $rev completes: exactly 3 ready replicas of it, no orphan" '
		wait_for 30 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == $rev and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
		wait_for 10 "st_check \"len(d[\\\"replicas\\\"]) == 3 and all(r[\\\"ready\\\"] and r[\\\"revision\\\"] == $rev for r in d[\\\"replicas\\\"])\"" &&
		st_check "d[\"stable_revision\"] == $rev and d[\"traffic\"] == [{\"revision\": $rev, \"weight\": 100}]" &&
		wait_for 5 check_processes &&
		check_processes &&
		pget / | grep "v$rev"
	'
done

test_expect_success 'zero failed client requests across every crash' '
	stop_load load &&
	load_clean load
'

test_expect_success 'history: every revision serving or replaced, none failed' '
	ghist >hist.json &&
	jcheck hist.json "[r[\"revision\"] for r in d] == [6, 5, 4, 3, 2, 1]" &&
	jcheck hist.json "d[0][\"status\"] == \"serving\" and all(r[\"status\"] != \"failed\" for r in d)"
'

test_expect_success 'kill -9 while a release crash-loops: it is still rolled back' '
	"$GANTRY" deploy hello --env staging --version bad --set env.CRASH_AFTER_S=0 &&
	wait_for 10 "st_check \"any(r[\\\"restarts\\\"] >= 3 for r in d[\\\"replicas\\\"])\"" &&
	kill9_serve &&
	start_serve &&
	wait_for 40 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] != \\\"progressing\\\"\"" &&
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"stable_revision\"] == 6" &&
	st_check "d[\"traffic\"] == [{\"revision\": 6, \"weight\": 100}]" &&
	wait_for 10 "st_check \"len(d[\\\"replicas\\\"]) == 3 and all(r[\\\"revision\\\"] == 6 for r in d[\\\"replicas\\\"])\"" &&
	check_processes &&
	gevents >events.json
'

# The crash-loop rule is "more than 5 restarts in 5 minutes". The restart
# count survives a controller restart, but the restart times
# (svcenv.crash_times in daemon.c) live only in memory: a restarted
# controller needs 6 more restarts before it rolls back, and its backoff
# starts over at --restart-backoff.
test_expect_success 'the crash loop is detected at the 6th restart across a controller restart' '
	python3 - events.json <<-\EOF
	import json, re, sys
	ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
	rev = max(e["revision"] for e in ev)
	n = [int(re.search(r"restart (\d+)", e["message"]).group(1))
	     for e in ev if e["revision"] == rev and e["kind"] == "replica_exited"
	     and re.search(r"restart \d+", e["message"])]
	print("restarts announced before the rollback:", n)
	assert n and max(n) <= 6, n
	EOF
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
