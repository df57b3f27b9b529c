#!/bin/sh
test_description='usage per replica: memory and CPU read from cgroups, in status and as rollback_on conditions'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl
require_gantry

[ "$(id -u)" = 0 ] || skip_all "not root: no cgroups for replicas, so no usage"
if ! grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
	! [ -w /sys/fs/cgroup/memory ]; then
	skip_all "no writable cgroup memory controller"
fi

MI=1048576

# hello holds HOLD_MB MiB from before it listens until it exits, and BUSY=1
# spins one thread: the usage lasts, nothing here races with it. The CPU
# limit (100m) makes the spinning replica use its whole quota however busy
# the machine is, so "above 50% of its limit" holds with both cores taken.
test_expect_success 'setup: v1 holds 16 MiB of its 64 Mi and spins within 100m' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    env: { HOLD_MB: "16", BUSY: "1" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    resources: { memory: 64Mi, cpu: 100m }
	    stop_grace: 1s
	    drain_timeout: 500ms
	    rollback_on: [ "memory > 50%" ]
	    watch: 60s
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	if grep -q "cgroups unavailable" "$TRASH"/serve.log; then
		echo "cgroups could not be used here" && false
	fi
'

test_expect_success 'status: memory_bytes within reason, memory_limit the spec limit' '
	wait_for 15 "st_check \"d[\\\"replicas\\\"][0][\\\"memory_bytes\\\"] is not None\"" &&
	gst >st1.json &&
	json_get replicas.0.memory_bytes <st1.json >mem &&
	echo "memory_bytes: $(cat mem) ($(($(cat mem) / MI)) MiB) for HOLD_MB=16" &&
	jcheck st1.json "16 * $MI <= d[\"replicas\"][0][\"memory_bytes\"] < 64 * $MI" &&
	jcheck st1.json "d[\"replicas\"][0][\"memory_limit\"] == 64 * $MI"
'

test_expect_success 'status: a spinning replica uses more than 50% of its CPU limit' '
	wait_for 20 "st_check \"(d[\\\"replicas\\\"][0][\\\"cpu_percent\\\"] or 0) > 50\"" ||
	{ cat "$TRASH/st.json"; false; }
	echo "cpu_percent: $(json_get replicas.0.cpu_percent <"$TRASH/st.json")"
'

test_expect_success 'status table: MEM and CPU columns' '
	"$GANTRY" status hello --env staging >table.txt &&
	cat table.txt &&
	grep -E "REPLICA .* MEM +CPU +LAST EXIT" table.txt &&
	grep -E "/64Mi +[0-9.]+%" table.txt
'

test_expect_success 'a release at ~30% of its memory limit stays' '
	"$GANTRY" deploy hello --env staging --version v2 --set env.HOLD_MB=20 --wait &&
	wait_for 15 "st_check \"d[\\\"replicas\\\"][0][\\\"revision\\\"] == 2 and d[\\\"replicas\\\"][0][\\\"memory_bytes\\\"] is not None\"" &&
	sleep 5 &&
	st_check "d[\"stable_revision\"] == 2 and d[\"phase\"] == \"healthy\" and d[\"replicas\"][0][\"revision\"] == 2"
'

test_expect_success 'rollback_on "memory > 50%": a release holding 80% of its limit is rolled back' '
	# the breach may come while the deploy still rolls out (the deploy
	# then fails) or after it completed (within watch): both roll back
	"$GANTRY" deploy hello --env staging --version v3 --set env.HOLD_MB=52 --wait; echo "deploy v3: exit $?" &&
	wait_for 30 "st_check \"d[\\\"phase\\\"] == \\\"rolled_back\\\" and \\\"memory\\\" in d[\\\"message\\\"]\"" &&
	jcheck "$TRASH/st.json" "\"rollback_on: memory \" in d[\"message\"] and \"> 50% (new revision 3)\" in d[\"message\"]" &&
	echo "message: $(json_get message <"$TRASH/st.json")" &&
	wait_for 15 "st_check \"all(r[\\\"revision\\\"] != 3 for r in d[\\\"replicas\\\"]) and d[\\\"ready_replicas\\\"] == 1\"" &&
	pget / >body && cat body && grep v2 body
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
