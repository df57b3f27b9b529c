#!/bin/sh
test_description='rolling deploy, rollback, restart and scale under client load: zero failed requests'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: 3 replicas of v1 under load' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 3 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 2s
	    progress_deadline: 30s
	    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"ready_replicas\"] == 3" &&
	start_load load
'

test_expect_success 'deploy v2 --wait under load' '
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	st_check "d[\"stable_revision\"] == 2 and d[\"ready_replicas\"] == 3"
'

test_expect_success 'rollback --wait under load' '
	"$GANTRY" rollback hello --env staging --wait &&
	st_check "d[\"stable_revision\"] == 3 and d[\"version\"] == \"v1\""
'

test_expect_success 'restart --wait under load replaces every replica' '
	gst >before.json &&
	"$GANTRY" restart hello --env staging --wait &&
	gst >after.json &&
	python3 - before.json after.json <<-\EOF
	import json, sys
	b = {r["pid"] for r in json.load(open(sys.argv[1]))["replicas"]}
	a = json.load(open(sys.argv[2]))
	assert a["stable_revision"] == 4 and a["version"] == "v1", a
	assert len(a["replicas"]) == 3, a
	assert not b & {r["pid"] for r in a["replicas"]}, (b, a)
	EOF
'

test_expect_success 'scale to 1 and back to 3 under load' '
	"$GANTRY" scale hello --env staging --replicas 1 &&
	wait_for 15 "st_check \"len(d[\\\"replicas\\\"]) == 1 and d[\\\"ready_replicas\\\"] == 1\"" &&
	"$GANTRY" scale hello --env staging --replicas 3 &&
	wait_for 15 "st_check \"len(d[\\\"replicas\\\"]) == 3 and d[\\\"ready_replicas\\\"] == 3\""
'

test_expect_success 'a deploy that supersedes a progressing one, under load' '
	"$GANTRY" deploy hello --env staging --version v3 --set env.READY_DELAY_MS=1000 &&
	wait_for 5 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 5 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"progressing\\\"\"" &&
	"$GANTRY" deploy hello --env staging --version v4 --wait &&
	st_check "d[\"stable_revision\"] == 6 and d[\"version\"] == \"v4\"" &&
	ghist >hist.json &&
	jcheck hist.json "d[1][\"revision\"] == 5 and d[1][\"status\"] == \"superseded\""
'

test_expect_success 'the clients saw zero failures and every version that completed' '
	stop_load load &&
	load_clean load &&
	jcheck load.json "set(d[\"versions\"]) >= {\"v1\", \"v2\", \"v4\"}"
'

test_expect_success 'final state: 3 ready replicas of revision 6, history of every kind' '
	st_check "d[\"phase\"] == \"healthy\" and d[\"stable_revision\"] == 6 and d[\"desired_replicas\"] == 3" &&
	wait_for 10 "st_check \"len(d[\\\"replicas\\\"]) == 3 and all(r[\\\"ready\\\"] and r[\\\"revision\\\"] == 6 for r in d[\\\"replicas\\\"])\"" &&
	st_check "d[\"traffic\"] == [{\"revision\": 6, \"weight\": 100}]" &&
	ghist >hist.json &&
	jcheck hist.json "[r[\"kind\"] for r in d] == [\"deploy\", \"deploy\", \"restart\", \"rollback\", \"deploy\", \"deploy\"]" &&
	jcheck hist.json "[r[\"revision\"] for r in d] == [6, 5, 4, 3, 2, 1]" &&
	check_processes
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
