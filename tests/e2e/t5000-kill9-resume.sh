#!/bin/sh
test_description='kill -9 of gantry serve mid-rollout: replicas adopted, rollout resumed, no failed request'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: 2 ready replicas of v1 under load' '
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
	    progress_deadline: 60s
	    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"ready_replicas\"] == 2" &&
	start_load load
'

# v2 is held unready (hello's READY_FILE) until the test lets it go, after
# the restart: the rollout cannot move between the snapshot and the kill
test_expect_success 'deploy v2 (held unready) without --wait; it progresses' '
	"$GANTRY" deploy hello --env staging --version v2 --set env.READY_FILE="$TRASH/v2.ready" &&
	wait_for 5 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"progressing\\\"
		and any(r[\\\"revision\\\"] == 2 and r[\\\"state\\\"] == \\\"starting\\\" for r in d[\\\"replicas\\\"])\"" &&
	cp st.json before.json
'

test_expect_success 'kill -9 gantry serve: the replicas and the proxy keep running' '
	proxy=$(proxy_pid) &&
	kill9_serve &&
	python3 - before.json <<-\EOF >running.txt &&
	import json, os, sys
	for r in json.load(open(sys.argv[1]))["replicas"]:
	    if r.get("pid") and os.path.exists("/proc/%d" % r["pid"]):
	        print(r["id"], r["pid"], r["revision"])
	EOF
	cat running.txt &&
	test "$(wc -l <running.txt)" -ge 3 &&
	grep " 2$" running.txt &&
	kill -0 "$proxy" &&
	test "$(pcode /)" = 200 &&
	echo "$proxy" >proxy.pid
'

test_expect_success 'serve starts again: the same pids are listed for the running replicas' '
	start_serve &&
	gst >after.json &&
	python3 - running.txt after.json <<-\EOF
	import json, os, sys
	after = {r["id"]: r["pid"] for r in json.load(open(sys.argv[2]))["replicas"]}
	for line in open(sys.argv[1]):
	    rid, pid, rev = line.split()
	    if not os.path.exists("/proc/%s" % pid):
	        continue            # already replaced by the resumed rollout
	    assert after.get(rid) == int(pid), (rid, pid, after)
	print("adopted:", after)
	EOF
'

test_expect_success 'the rollout completes; 2 ready replicas of revision 2' '
	touch "$TRASH/v2.ready" &&
	wait_for 30 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	st_check "d[\"stable_revision\"] == 2 and d[\"traffic\"] == [{\"revision\": 2, \"weight\": 100}]" &&
	wait_for 10 "st_check \"len(d[\\\"replicas\\\"]) == 2 and all(r[\\\"ready\\\"] and r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\"" &&
	pget / | grep v2
'

test_expect_success 'the v2 replica that was starting was adopted, not started again' '
	python3 - running.txt st.json <<-\EOF
	import json, sys
	now = {r["id"]: r["pid"] for r in json.load(open(sys.argv[2]))["replicas"]}
	v2 = [l.split() for l in open(sys.argv[1]) if l.split()[2] == "2"]
	assert v2 and all(now.get(rid) == int(pid) for rid, pid, rev in v2), (v2, now)
	EOF
'

test_expect_success 'no orphan, nothing running twice, the same proxy' '
	check_processes &&
	test "$(proxy_pid)" = "$(cat proxy.pid)"
'

test_expect_success 'zero failed client requests, both versions seen' '
	stop_load load &&
	load_clean load &&
	jcheck load.json "set(d[\"versions\"]) == {\"v1\", \"v2\"}"
'

test_expect_success 'history and events: one rollout of revision 2, complete' '
	ghist >hist.json &&
	jcheck hist.json "[r[\"revision\"] for r in d] == [2, 1] and d[0][\"status\"] == \"serving\"" &&
	"$GANTRY" events hello --env staging >events.txt &&
	cat events.txt &&
	test "$(grep -c "#2 *rollout_started" events.txt)" = 1 &&
	grep "#2 *rollout_complete" events.txt
'

test_expect_success 'a replica that dies while serve is down is replaced after the restart' '
	start_load load2 &&
	gst >before2.json &&
	kill9_serve &&
	victim=$(json_get replicas.0.pid <before2.json) &&
	survivor=$(json_get replicas.1.pid <before2.json) &&
	kill -KILL "-$victim" &&
	wait_for 5 "! kill -0 $victim" &&
	start_serve &&
	wait_for 15 "st_check \"len(d[\\\"replicas\\\"]) == 2 and d[\\\"ready_replicas\\\"] == 2\"" &&
	st_check "$victim not in [r[\"pid\"] for r in d[\"replicas\"]] and $survivor in [r[\"pid\"] for r in d[\"replicas\"]]" &&
	st_check "d[\"stable_revision\"] == 2 and all(r[\"revision\"] == 2 for r in d[\"replicas\"])" &&
	check_processes &&
	stop_load load2 &&
	jcheck load2.json "d[\"requests\"] > 0 and d[\"ok\"] > 0"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
