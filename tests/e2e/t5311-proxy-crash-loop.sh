#!/bin/sh
test_description='10 kill -9 of the proxy in a row under load: each proxy killed within 1 s of its start is a crash loop (1 s, 2 s, 4 s, 8 s, 8 s ... before the next), logged each time and shown by gantry status; no connection is refused meanwhile; then the proxy serves again, and one that ran a second is replaced at once'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# What is asserted about the clients (4 keep-alive connections, 300 req/s):
# - no refused connection at all (error_kinds.connect == 0): the controller
#   holds the listening sockets, so while no proxy is up new connections
#   wait in the kernel's backlog;
# - no request timed out (error_kinds.timeout == 0), with a loadgen timeout
#   of 90 s: the proxies of the crash loop are killed ~10 ms after their
#   start, before they accept anything, so a connection made after the
#   second kill waits in the backlog through every backoff (55 s) and is
#   served by the proxy that stays up. Its wait is the "longest request"
#   figure printed; a client with a 30 s timeout would see it time out
#   (about 4 did, one per client, in a run with 30 s);
# - failed requests <= 4 per kill: a client has one request in flight at a
#   time, so a kill can break at most one request per client (loadgen
#   retries a request once when its kept-alive connection dies before any
#   answer, so most of these are not even errors).
# Total time: the backoffs alone are 1+2+4+8*6 = 55 s.
CLIENTS=4
KILLS=10

# the pid of the proxy serve started last, from its log
last_started() {
	sed -n "s/.*proxy started pid=\([0-9]*\) .*/\1/p" serve.log | tail -n 1
}

# pst EXPR: EXPR over p = the "proxy" object of a fresh status (kept in $TRASH/st.json)
pst() {
	gst >"$TRASH/st.json" && jcheck "$TRASH/st.json" "\"proxy\" in d and (lambda p: $1)(d[\"proxy\"])"
}

test_expect_success 'setup: 2 ready replicas of v1 behind the proxy; status shows the proxy up, never restarted' '
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
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	pget / | grep v1 &&
	proxy=$(last_started) &&
	test -n "$proxy" &&
	pst "p[\"pid\"] == $proxy and p[\"restarts\"] == 0 and not p[\"crash_loop\"] and p[\"last_exit\"] is None
		and p[\"next_start_ms\"] is None and p[\"up_ms\"] >= 0" &&
	"$GANTRY" status >st.txt &&
	cat st.txt &&
	grep "^proxy: pid $proxy up " st.txt &&
	! grep "^proxy:.*restart" st.txt &&
	# the API reply carries it too, for a client that asks for no service
	api "{\"op\": \"status\"}" >api.json &&
	jcheck api.json "d[\"proxy\"][\"pid\"] == $proxy"
'

test_expect_success "$KILLS kills in a row under load ($CLIENTS keep-alive clients): the first is replaced at once, the next 9 back off 1, 2, 4, 8 s, then 8 s" '
	start_load cl -c $CLIENTS --rate 300 --timeout 90s --max-duration 150s &&
	# the first kill is of a proxy that ran a while: not yet a crash loop
	wait_for 10 "pst \"p[\\\"up_ms\\\"] >= 1200\"" &&
	python3 - "$TRASH/serve.log" "$KILLS" >kills.txt <<-\EOF &&
	import os, re, signal, sys, time
	log, n = sys.argv[1], int(sys.argv[2])
	def started():
	    with open(log) as f:
	        return re.findall(r"proxy started pid=(\d+) ", f.read())
	seen = started()
	pid = int(seen[-1])
	for i in range(1, n + 1):
	    os.kill(pid, signal.SIGKILL)
	    t = time.monotonic()
	    if i == n:
	        print("kill %d: pid %d" % (i, pid))
	        break
	    # the next proxy, killed as soon as the controller says it started it
	    # (polled every 10 ms: well within its first second)
	    while len(started()) == len(seen):
	        if time.monotonic() - t > 30:
	            sys.exit("kill %d: no new proxy within 30 s" % i)
	        time.sleep(0.01)
	    seen = started()
	    print("kill %d: pid %d; next proxy %s started %.2f s later" % (i, pid, seen[-1], time.monotonic() - t))
	    pid = int(seen[-1])
	EOF
	cat kills.txt &&
	test "$(grep -c "^kill " kills.txt)" = $KILLS &&
	# the controller has seen the last exit (the log names it): what status says now lasts 8 s
	wait_for 5 "grep -q \"(restart $KILLS)\" serve.log" &&
	grep -E "proxy exited" serve.log &&
	test "$(grep -c "restarting it now" serve.log)" = 1 &&
	grep "after [0-9]*ms: restarting it now (restart 1)" serve.log &&
	grep "crash loop, restarting it in 1000ms (restart 2)" serve.log &&
	grep "crash loop, restarting it in 2000ms (restart 3)" serve.log &&
	grep "crash loop, restarting it in 4000ms (restart 4)" serve.log &&
	test "$(grep -c "crash loop, restarting it in 8000ms" serve.log)" = 6 &&
	grep "crash loop, restarting it in 8000ms (restart $KILLS)" serve.log &&
	# each crash-loop restart came no sooner than its backoff
	python3 - kills.txt <<-\EOF
	import re, sys
	gaps = [float(m) for m in re.findall(r"started ([0-9.]+) s later", open(sys.argv[1]).read())]
	want = [0, 1, 2, 4, 8, 8, 8, 8, 8]
	bad = [(i + 1, g, w) for i, (g, w) in enumerate(zip(gaps, want)) if g < w - 0.05]
	print("restart gaps after kills 1..%d: %s s (backoffs %s)" % (len(gaps), gaps, want))
	sys.exit("restarted before its backoff (kill, gap, backoff): %s" % bad if bad or len(gaps) != 9 else 0)
	EOF
'

test_expect_success 'gantry status shows the crash loop while the controller waits (json and text)' '
	pst "p[\"pid\"] is None and p[\"crash_loop\"] and p[\"restarts\"] == $KILLS and p[\"backoff_ms\"] == 8000
		and 0 <= p[\"next_start_ms\"] <= 8000 and p[\"up_ms\"] is None
		and p[\"last_exit\"].startswith(\"killed by signal 9\") and p[\"last_exit_after_ms\"] < 1000" &&
	cat st.json &&
	"$GANTRY" status >st.txt &&
	cat st.txt &&
	grep -E "^proxy: not running, $KILLS restarts \(crash loop: next start in [0-9.]+m?s, backoff 8s\), last exit: killed by signal 9 .* after [0-9]+ms$" st.txt &&
	# the service itself is not what is failing
	grep "hello@staging  healthy" st.txt
'

test_expect_success 'then the proxy comes back and serves; once it ran 1 s it is no longer a crash loop' '
	wait_for 15 "test \"\$(pcode /)\" = 200" &&
	pget / | grep v1 &&
	wait_for 10 "pst \"p[\\\"up_ms\\\"] is not None and p[\\\"up_ms\\\"] >= 1000\"" &&
	pst "not p[\"crash_loop\"] and p[\"backoff_ms\"] == 0 and p[\"restarts\"] == $KILLS and p[\"next_start_ms\"] is None" &&
	proxy=$(last_started) &&
	"$GANTRY" status >st.txt &&
	cat st.txt &&
	grep -E "^proxy: pid $proxy up [0-9.]+s, $KILLS restarts, last exit: killed by signal 9 .* after [0-9]+ms$" st.txt
'

test_expect_success 'a kill of a proxy that ran 1 s is replaced at once (the backoff was reset)' '
	t0=$(_now_ms) &&
	kill -KILL "$proxy" &&
	wait_for 10 "test \"\$(last_started)\" != $proxy" &&
	t1=$(_now_ms) &&
	grep "restarting it now (restart $((KILLS + 1)))" serve.log &&
	echo "figure: next proxy started $((t1 - t0)) ms after the kill (as seen by a 100 ms poll of the log)" &&
	wait_for 5 "test \"\$(pcode /)\" = 200" &&
	pst "p[\"restarts\"] == $((KILLS + 1)) and not p[\"crash_loop\"] and p[\"backoff_ms\"] == 0
		and p[\"last_exit_after_ms\"] >= 1000 and p[\"pid\"] is not None"
'

test_expect_success "clients: no refused connection, no timeout, failed <= $CLIENTS per kill" '
	sleep 1 &&
	stop_load cl &&
	python3 -c "import json; d = json.load(open(\"$TRASH/cl.json\")); k = d[\"error_kinds\"]; print(\"figures: requests %d, failed %d (closed %d, protocol %d), refused %d, timed out %d, retried %d, longest request %s ms (a wait in the backlog through the backoffs)\" % (d[\"requests\"], d[\"errors\"] + d[\"non2xx\"], k[\"closed\"], k[\"protocol\"], k[\"connect\"], k[\"timeout\"], d[\"retries\"], d[\"max_ms\"]))" &&
	jcheck "$TRASH/cl.json" "d[\"requests\"] > 3000 and d[\"error_kinds\"][\"connect\"] == 0 and d[\"error_kinds\"][\"timeout\"] == 0" &&
	jcheck "$TRASH/cl.json" "d[\"errors\"] + d[\"non2xx\"] <= $CLIENTS * ($KILLS + 1)" &&
	check_processes
'

test_expect_success 'SIGTERM stops the daemon and its proxy' '
	stop_serve &&
	wait_for 5 "test -z \"\$(tagged_pids)\""
'

test_done
