#!/bin/sh
test_description='a real full disk: HOME on a 3 MiB tmpfs filled mid-rolling-deploy and mid-canary: nothing moves, changes are refused, status, /metrics and the log say so within bounds; freed, the rollouts go on; kill -9 while full'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid mount umount dd
require_gantry

[ "$(id -u)" = 0 ] || skip_all "mounting a tmpfs as HOME needs root"
mount -t tmpfs -o size=3m,mode=0711 tmpfs "$GANTRY_HOME" 2>/dev/null ||
	skip_all "mount -t tmpfs is not permitted here"
# unmounted whatever happens, before test-lib's cleanup removes $TRASH
# (lazily: a daemon still holding files in it is stopped by that cleanup)
_t5430_umount() {
	umount -l "$GANTRY_HOME" 2>/dev/null
	:
}
trap '_t5430_rc=$?; _t5430_umount; (exit $_t5430_rc); _on_exit' EXIT
trap '_t5430_umount; _on_signal INT' INT
trap '_t5430_umount; _on_signal TERM' TERM
trap '_t5430_umount; _on_signal HUP' HUP

HOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
export HOOK_SECRET

# fill: HOME's filesystem filled to its last byte (dd stops at ENOSPC);
# free: the filler removed
fill() {
	dd if=/dev/zero of="$GANTRY_HOME/fill" bs=4k 2>/dev/null
	test "$(python3 -c "import os; print(os.statvfs(\"$GANTRY_HOME\").f_bavail)")" = 0
}
free_space() {
	rm -f "$GANTRY_HOME/fill"
}

# the replicas as (id, pid, revision, state), one per line, sorted
replicas() {
	gst | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in sorted(d["replicas"], key=lambda r: r["id"]):
    print(r["id"], r["pid"], r["revision"], r["state"])'
}

# what must not move while the store cannot write: the replicas with their
# pids, the traffic weights, the rollout's step and the canary's
held_state() {
	gst | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in sorted(d["replicas"], key=lambda r: r["id"]):
    print("replica", r["id"], r["pid"], r["revision"], r["state"])
print("traffic", json.dumps(d["traffic"]))
print("rollout", d["rollout"]["id"], d["rollout"]["revision"], d["rollout"]["phase"], d["rollout"]["step"])
c = d.get("canary")
print("canary", json.dumps(c and [c["step"], c["weight"], c["wait"]]))'
}

# metrics [TOKEN]: GET /metrics of the controller into metrics.txt; the HTTP code on stdout
metrics() {
	curl -s -o metrics.txt -w "%{http_code}" --max-time 5 ${1:+-H "Authorization: Bearer $1"} \
		"http://127.0.0.1:$API_PORT/metrics"
}

# lines_since FILE: serve.log lines and seconds since FILE (lines SECS) was
# written; prints "LINES SECS"
log_mark() {
	echo "$(wc -l <"$TRASH/serve.log") $(_now_ms)" >"$1"
}
log_rate() {
	read l0 t0 <"$1" &&
	l1=$(wc -l <"$TRASH/serve.log") && t1=$(_now_ms) &&
	lines=$((l1 - l0)) && ms=$((t1 - t0)) &&
	per_min=$((lines * 60000 / (ms > 0 ? ms : 1))) &&
	say "t5430 $2: $lines serve.log lines in $((ms / 1000)).$((ms % 1000 / 100)) s while the disk was full ($per_min lines/minute; before the fix: ~260,000/minute)" &&
	test "$lines" -lt 100 || { tail -n "$lines" "$TRASH/serve.log" | cut -c26- | sort | uniq -c | sort -rn | head -20; false; }
}

# the store's replica rows are what runs: every row's pid is alive, and equal to status
store_agrees() {
	sql "SELECT id, pid, revision, state FROM replicas ORDER BY id" | tr "|" " " >rows.txt &&
	replicas >now.txt &&
	cat rows.txt &&
	test_cmp now.txt rows.txt &&
	while read id pid rev state; do kill -0 "$pid" || return 1; done <now.txt
}

received() {
	python3 -c "import json; print(json.dumps([json.loads(l) for l in open(\"received.jsonl\")]))" >received.json 2>/dev/null &&
	jcheck received.json "$1" 2>/dev/null
}

test_expect_success 'setup: 3 MiB tmpfs HOME, a webhook receiver, the API on TCP, v1 of hello (2 replicas)' '
	RPORT=$(free_port) && API_PORT=$(free_port) &&
	spawn_bg receiver timeout 300 python3 "$ROOT/tests/e2e/helpers/receiver.py" "$RPORT" "$TRASH/received.jsonl" &&
	wait_for 10 "curl -s -o /dev/null -X POST -H Content-Length:2 -d {} http://127.0.0.1:$RPORT/ping" &&
	rm -f received.jsonl &&
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
	    progress_deadline: 300s
	    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
	notify:
	  - { url: "http://127.0.0.1:$RPORT/hook", secret: hook, events: [store_recovered], allow_private: true }
	EOF
	printf "hook=%s\n" "$HOOK_SECRET" >"$GANTRY_HOME/webhook-secrets" &&
	chmod 600 "$GANTRY_HOME/webhook-secrets" &&
	start_serve --api "127.0.0.1:$API_PORT" &&
	"$GANTRY" user add vic --role viewer >vic.token &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"ready_replicas\"] == 2 and d[\"store\"] == {\"ok\": True}" &&
	df -k "$GANTRY_HOME"
'

test_expect_success '/metrics: a viewer'"'"'s token reads it; no token, a bad token, POST are refused' '
	test "$(metrics "$(cat vic.token)")" = 200 &&
	cat metrics.txt &&
	grep "^gantry_store_ok 1$" metrics.txt &&
	grep "^gantry_store_failures_total 0$" metrics.txt &&
	grep "^gantry_disk_low 0$" metrics.txt &&
	grep "^gantry_disk_size_bytes 3145728$" metrics.txt &&
	grep "^gantry_service_phase{service=\"hello\",environment=\"staging\",phase=\"healthy\"} 1$" metrics.txt &&
	grep "^gantry_replicas{service=\"hello\",environment=\"staging\",revision=\"1\",state=\"ready\"} 2$" metrics.txt &&
	grep "^gantry_rollouts_total{service=\"hello\",environment=\"staging\"} 1$" metrics.txt &&
	test "$(metrics)" = 401 &&
	grep "needs a token" metrics.txt &&
	! grep gantry_ metrics.txt &&
	test "$(metrics not-a-token-of-anyone)" = 403 &&
	! grep gantry_ metrics.txt &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X POST -H "Authorization: Bearer $(cat vic.token)" \
		"http://127.0.0.1:$API_PORT/metrics")" = 405
'

# v2's replicas are held unready (READY_FILE) until the store is seen
# failing, then turn ready while it cannot write: however slow the machine,
# the order is the same
test_expect_success 'deploy v2 (held unready); the disk fills while its first replica starts; then it turns ready' '
	"$GANTRY" deploy hello --env staging --version v2 --set env.READY_FILE="$TRASH/v2.ready" &&
	wait_for 30 "st_check \"any(r[\\\"revision\\\"] == 2 and r[\\\"state\\\"] == \\\"starting\\\" and r[\\\"pid\\\"] for r in d[\\\"replicas\\\"])\"" &&
	fill &&
	wait_for 30 "st_check \"not d[\\\"store\\\"][\\\"ok\\\"]\"" &&
	touch "$TRASH/v2.ready" &&
	log_mark rolling.mark
'

test_expect_success 'while full: status says degraded and why; the v2 replica is not routed' '
	"$GANTRY" status >status.txt &&
	cat status.txt &&
	grep "^store: cannot write (database or disk is full" status.txt &&
	st_check "d[\"phase\"] == \"degraded\" and \"the state store cannot write\" in d[\"message\"]
		and d[\"rollout\"][\"phase\"] == \"progressing\" and d[\"traffic\"] == [{\"revision\": 1, \"weight\": 100}]" &&
	for i in 1 2 3 4 5 6; do pget / | grep -q v1 || return 1; done
'

test_expect_success 'while full, nothing moves over 5 s (50 controller ticks)' '
	held_state >held.1 &&
	cat held.1 &&
	sleep 5 &&
	held_state >held.2 &&
	test_cmp held.1 held.2
'

test_expect_success 'while full: deploy and scale are refused with exit 1 and change nothing' '
	test_expect_code 1 "$GANTRY" scale hello --env staging --replicas 3 2>scale.err &&
	cat scale.err &&
	grep "state store cannot write (database or disk is full since .*): nothing changed; free space in HOME and retry" scale.err &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v1 2>deploy.err &&
	cat deploy.err &&
	grep "error: " deploy.err &&
	grep -E "state store cannot write|No space left on device" deploy.err &&
	held_state >held.3 &&
	test_cmp held.1 held.3 &&
	st_check "d[\"desired_replicas\"] == 2 and d[\"target_revision\"] == 2"
'

test_expect_success 'while full: /metrics says the store fails, the disk is low, hello is degraded' '
	test "$(metrics "$(cat vic.token)")" = 200 &&
	grep "^gantry_store_ok 0$" metrics.txt &&
	grep "^gantry_store_failures_total 1$" metrics.txt &&
	grep "^gantry_disk_low 1$" metrics.txt &&
	grep "^gantry_disk_free_bytes 0$" metrics.txt &&
	grep "^gantry_service_phase{service=\"hello\",environment=\"staging\",phase=\"degraded\"} 1$" metrics.txt &&
	grep "^gantry_service_phase{service=\"hello\",environment=\"staging\",phase=\"progressing\"} 0$" metrics.txt &&
	grep "^gantry_replicas{service=\"hello\",environment=\"staging\",revision=\"1\",state=\"ready\"} 2$" metrics.txt &&
	grep "^gantry_replicas{service=\"hello\",environment=\"staging\",revision=\"2\",state=\"starting\"} 1$" metrics.txt &&
	test "$(metrics)" = 401
'

test_expect_success 'while full, the log grows by a bounded number of lines' '
	sleep 5 &&
	log_rate rolling.mark "rolling"
'

test_expect_success 'freed: the rollout completes; the store agrees with what runs; one store_recovered event and webhook' '
	free_space &&
	wait_for 90 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\" and d[\\\"store\\\"][\\\"ok\\\"]\"" &&
	wait_for 15 "st_check \"len(d[\\\"replicas\\\"]) == 2 and all(r[\\\"ready\\\"] and r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\"" &&
	st_check "d[\"stable_revision\"] == 2 and d[\"phase\"] == \"healthy\"" &&
	pget / | grep v2 &&
	store_agrees &&
	check_processes &&
	"$GANTRY" events hello --env staging >events.txt &&
	test "$(grep -c "store_recovered: writes failed for .*: database or disk is full" events.txt)" = 1 &&
	wait_for 30 "grep -q store_recovered received.jsonl" &&
	received "[r[\"body\"][\"type\"] for r in d] == [\"store_recovered\"] and d[0][\"valid\"] is True
		and d[0][\"body\"][\"data\"][\"service\"] == \"hello\" and d[0][\"body\"][\"data\"][\"environment\"] == \"staging\"
		and \"database or disk is full\" in d[0][\"body\"][\"data\"][\"message\"]" &&
	test "$(metrics "$(cat vic.token)")" = 200 &&
	grep "^gantry_store_ok 1$" metrics.txt &&
	grep "^gantry_store_failures_total 1$" metrics.txt &&
	grep "^gantry_rollouts_total{service=\"hello\",environment=\"staging\"} 2$" metrics.txt
'

test_expect_success 'canary: v3 at 20% with a 3 s pause; the disk fills in the pause' '
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
	    progress_deadline: 300s
	    strategy:
	      canary:
	        steps: [ {weight: 20}, {pause: 3s}, {weight: 50}, {pause: 3s} ]
	notify:
	  - { url: "http://127.0.0.1:$RPORT/hook", secret: hook, events: [store_recovered], allow_private: true }
	EOF
	"$GANTRY" -f gantry.yaml deploy hello --env staging --version v3 &&
	wait_for 30 "canary_check \"c[\\\"weight\\\"] == 20 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	fill &&
	wait_for 30 "st_check \"not d[\\\"store\\\"][\\\"ok\\\"]\"" &&
	log_mark canary.mark &&
	held_state >cheld.1 &&
	cat cheld.1 &&
	grep "^canary \[1, 20, \"pause\"\]$" cheld.1
'

test_expect_success 'canary while full: the pause ends, yet the weight stays at 20% over 5 s; deploy refused' '
	sleep 5 &&
	held_state >cheld.2 &&
	test_cmp cheld.1 cheld.2 &&
	st_check "d[\"phase\"] == \"degraded\" and d[\"traffic\"] == [{\"revision\": 2, \"weight\": 80}, {\"revision\": 3, \"weight\": 20}]" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v1 2>deploy.err &&
	grep -E "state store cannot write|No space left on device" deploy.err &&
	test "$(metrics "$(cat vic.token)")" = 200 &&
	grep "^gantry_store_ok 0$" metrics.txt &&
	grep "^gantry_store_failures_total 2$" metrics.txt &&
	log_rate canary.mark "canary"
'

test_expect_success 'canary freed: it continues from 20% to 50% and completes' '
	free_space &&
	wait_for 60 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 3 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	# the previous revision is kept running after a promotion (keep_previous)
	wait_for 15 "st_check \"len([r for r in d[\\\"replicas\\\"] if r[\\\"ready\\\"] and r[\\\"revision\\\"] == 3]) == 2\"" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"]] == [{\"revision\": 3, \"weight\": 100}]" &&
	ev_check "[e[\"message\"].split()[2] for e in ev[max(i for i, x in enumerate(ev) if x[\"kind\"] == \"rollout_started\"):] if e[\"kind\"] == \"traffic\"][:2] == [\"#3=20%\", \"#3=50%\"]" &&
	store_agrees &&
	check_processes &&
	wait_for 30 "test \$(grep -c store_recovered received.jsonl) = 2"
'

test_expect_success 'kill -9 while full, freed, restarted: resumes, nothing started twice, nothing orphaned' '
	"$GANTRY" -f gantry.yaml deploy hello --env staging --version v4 &&
	wait_for 30 "canary_check \"c[\\\"weight\\\"] == 20 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	fill &&
	wait_for 30 "st_check \"not d[\\\"store\\\"][\\\"ok\\\"]\"" &&
	replicas >before.kill &&
	kill9_serve &&
	free_space &&
	start_serve --api "127.0.0.1:$API_PORT" &&
	cat before.kill &&
	python3 - before.kill serve.log <<-\EOF &&
	import sys
	log = open(sys.argv[2]).read().splitlines()
	for l in open(sys.argv[1]):
	    rid, pid, rev, state = l.split()
	    if pid != "0":
	        key = "replica=%s pid=%s state=" % (rid, pid)
	        assert any(key in x and x.endswith(" adopted") for x in log), (rid, pid)
	EOF
	wait_for 60 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 4 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\"" &&
	# the previous revision is kept running after a promotion (keep_previous)
	wait_for 15 "st_check \"len([r for r in d[\\\"replicas\\\"] if r[\\\"ready\\\"] and r[\\\"revision\\\"] == 4]) == 2\"" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"]] == [{\"revision\": 4, \"weight\": 100}]" &&
	store_agrees &&
	check_processes
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
