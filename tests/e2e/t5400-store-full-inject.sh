#!/bin/sh
test_description='the state store cannot write (injected ENOSPC): nothing moves, changes are refused, the rollout resumes once it can; kill -9 while full'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

SHIM=$ROOT/tests/e2e/helpers/faultfs.so
test -f "$SHIM" || skip_all "tests/e2e/helpers/faultfs.so is not built (make examples)"
# while $TRASH/full exists, every write to HOME/state.db* fails with ENOSPC
GANTRY_FAULTFS=$TRASH/full
LD_PRELOAD=$SHIM
export GANTRY_FAULTFS LD_PRELOAD
gantry_sanitized && ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" && export ASAN_OPTIONS

# the replicas as (id, pid, revision, state), one per line, sorted
replicas() {
	gst | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in sorted(d["replicas"], key=lambda r: r["id"]):
    print(r["id"], r["pid"], r["revision"], r["state"])'
}

test_expect_success 'setup: 2 ready replicas of v1' '
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
	    progress_deadline: 120s
	    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"ready_replicas\"] == 2 and d[\"store\"] == {\"ok\": True}"
'

# v2's replicas are held unready (hello's READY_FILE) until the store is
# full: "ready after 3 s" raced the fill on a loaded machine, and a v2
# replica that turned ready first was routed before the store filled. Its
# turning ready is the write that finds the store full.
test_expect_success 'deploy v2 (held unready); fill the store while its first replica starts' '
	"$GANTRY" deploy hello --env staging --version v2 --set env.READY_FILE="$TRASH/v2.ready" &&
	wait_for 10 "st_check \"any(r[\\\"revision\\\"] == 2 and r[\\\"state\\\"] == \\\"starting\\\" and r[\\\"pid\\\"] for r in d[\\\"replicas\\\"])\"" &&
	touch "$TRASH/full" &&
	touch "$TRASH/v2.ready" &&
	wc -l <"$TRASH/serve.log" >lines.before &&
	date +%s >t.before
'

test_expect_success 'the v2 replica turns ready but is not routed: status says degraded, and why' '
	wait_for 15 "st_check \"d[\\\"phase\\\"] == \\\"degraded\\\" and not d[\\\"store\\\"][\\\"ok\\\"]\"" &&
	jcheck st.json "d[\"store\"][\"error\"] == \"database or disk is full\" and \"cannot write\" in d[\"message\"]" &&
	jcheck st.json "d[\"rollout\"][\"phase\"] == \"progressing\" and d[\"traffic\"] == [{\"revision\": 1, \"weight\": 100}]" &&
	"$GANTRY" status >status.txt &&
	cat status.txt &&
	grep "^store: cannot write (database or disk is full)" status.txt &&
	grep "degraded" status.txt
'

test_expect_success 'while full, nothing moves for 5 s: the same replicas, v1 alone serves' '
	replicas >held.1 &&
	cat held.1 &&
	test "$(grep -c " 1 ready$" held.1)" = 2 &&
	test "$(grep -c " 2 " held.1)" = 1 &&
	sleep 5 &&
	replicas >held.2 &&
	test_cmp held.1 held.2 &&
	for i in 1 2 3 4 5 6; do pget / | grep -q v1 || return 1; done
'

test_expect_success 'changes are refused (exit 1) and change nothing, not even in memory' '
	test_expect_code 1 "$GANTRY" scale hello --env staging --replicas 3 2>scale.err &&
	cat scale.err &&
	grep "state store cannot write (database or disk is full since" scale.err &&
	grep "nothing changed; free space in HOME and retry" scale.err &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v3 2>deploy.err &&
	grep "state store cannot write" deploy.err &&
	st_check "d[\"desired_replicas\"] == 2 and d[\"target_revision\"] == 2" &&
	replicas >held.3 &&
	test_cmp held.1 held.3
'

test_expect_success 'the log grows by a bounded number of lines while full' '
	now=$(date +%s) &&
	lines=$(( $(wc -l <"$TRASH/serve.log") - $(cat lines.before) )) &&
	secs=$(( now - $(cat t.before) )) &&
	echo "figure: $lines serve.log lines in ${secs}s while the store could not write ($(( lines * 60 / (secs > 0 ? secs : 1) )) lines/minute)" &&
	test "$lines" -lt 200 || { tail -n "$lines" "$TRASH/serve.log" | cut -c26- | sort | uniq -c | sort -rn | head -20; false; }
'

test_expect_success 'space again: the rollout resumes and completes; status agrees with what runs' '
	rm "$TRASH/full" &&
	wait_for 60 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\" and d[\\\"store\\\"][\\\"ok\\\"]\"" &&
	wait_for 15 "st_check \"len(d[\\\"replicas\\\"]) == 2 and all(r[\\\"ready\\\"] and r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\"" &&
	st_check "d[\"stable_revision\"] == 2 and d[\"phase\"] == \"healthy\"" &&
	pget / | grep v2 &&
	check_processes &&
	sql "SELECT id, pid, revision, state FROM replicas ORDER BY id" | tr "|" " " >rows.txt &&
	replicas >now.txt &&
	cat rows.txt now.txt &&
	test_cmp now.txt rows.txt
'

test_expect_success 'one store_recovered event; no revision 3 was ever made' '
	"$GANTRY" events hello --env staging >events.txt &&
	grep "store_recovered: writes failed for .*: database or disk is full" events.txt &&
	test "$(grep -c store_recovered events.txt)" = 1 &&
	ghist >hist.json &&
	jcheck hist.json "[r[\"revision\"] for r in d] == [2, 1]"
'

test_expect_success 'kill -9 while full, restart once space is back: resumes as after any kill -9' '
	"$GANTRY" deploy hello --env staging --version v3 --set env.READY_DELAY_MS=3000 &&
	wait_for 10 "st_check \"any(r[\\\"revision\\\"] == 3 and r[\\\"state\\\"] == \\\"starting\\\" and r[\\\"pid\\\"] for r in d[\\\"replicas\\\"])\"" &&
	touch "$TRASH/full" &&
	wait_for 15 "st_check \"not d[\\\"store\\\"][\\\"ok\\\"]\"" &&
	replicas >before.kill &&
	kill9_serve &&
	rm "$TRASH/full" &&
	start_serve &&
	replicas >after.kill &&
	cat before.kill after.kill &&
	# every replica that ran at the kill was adopted by the new controller
	# (its log says so at start, before it acts): not started again. Not
	# read from a later status: the resumed rollout may already drain one
	python3 - before.kill serve.log <<-\EOF &&
	import sys
	log = open(sys.argv[2]).read().splitlines()
	for l in open(sys.argv[1]):
	    rid, pid, rev, state = l.split()
	    if pid != "0":
	        key = "replica=%s pid=%s state=" % (rid, pid)
	        assert any(key in x and x.endswith(" adopted") for x in log), (rid, pid)
	EOF
	wait_for 60 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\" and d[\\\"stable_revision\\\"] == 3\"" &&
	wait_for 15 "st_check \"len(d[\\\"replicas\\\"]) == 2 and all(r[\\\"ready\\\"] and r[\\\"revision\\\"] == 3 for r in d[\\\"replicas\\\"])\"" &&
	check_processes
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
