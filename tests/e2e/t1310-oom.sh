#!/bin/sh
test_description='resources.memory: a replica over its limit is OOM-killed, reported and restarted'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

[ "$(id -u)" = 0 ] || skip_all "not root: no cgroup memory limits"
if ! grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
	! [ -w /sys/fs/cgroup/memory ]; then
	skip_all "no writable cgroup memory controller"
fi

test_expect_success 'setup: one replica limited to 32Mi' '
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
	    resources: { memory: 32Mi }
	    stop_grace: 1s
	    drain_timeout: 500ms
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	if grep -q "replica running without resource limits" "$GANTRY_HOME"/logs/*/*.log; then
		echo "cgroups could not be used here" && false
	fi
'

test_expect_success 'a small allocation fits' '
	test "$(pcode "/alloc?mb=4")" = 200
'

test_expect_success '200 MiB: the replica is OOM-killed, status says so' '
	gst >before.json &&
	pid=$(json_get replicas.0.pid <before.json) &&
	code=$(pcode "/alloc?mb=200") &&
	echo "GET /alloc?mb=200 answered $code" &&
	wait_for 10 "! kill -0 $pid" &&
	wait_for 10 "st_check \"d[\\\"replicas\\\"][0][\\\"restarts\\\"] >= 1\"" &&
	st_check "\"OOM\" in d[\"replicas\"][0].get(\"last_exit\", \"\")"
'

test_expect_success 'the replica comes back ready and serves' '
	wait_for 10 "st_check \"d[\\\"ready_replicas\\\"] == 1 and d[\\\"replicas\\\"][0][\\\"ready\\\"]\"" &&
	test "$(pcode /)" = 200
'

test_expect_success 'events mention the OOM kill' '
	"$GANTRY" events hello --env staging >events.txt &&
	cat events.txt &&
	grep -i oom events.txt
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
