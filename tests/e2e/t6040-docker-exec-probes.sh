#!/bin/sh
test_description='runtime docker, exec probes: run inside the container (/bin/sh -c through the Engine), readiness gates traffic, a failing liveness restarts, an image without a shell fails the rollout with a clear event'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$ROOT/tests/e2e/lib/docker-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_dockerd
# hello:sh has Debian's busybox-static as /bin/sh (and wget); hello:dev has no shell
docker_scratch_image hello:sh shell shell || skip_all "cannot build a FROM scratch image with busybox (Debian package busybox-static)"
docker_scratch_image hello:dev || skip_all "cannot build a FROM scratch image of examples/hello"

# `test -x /hello` holds only inside the container (the host has no /hello):
# a probe run on the host would never pass
INSIDE='test -x /hello && wget -q -O- http://127.0.0.1:$PORT/ready'

spec() {
	write_svc_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    image: ${1:-hello:sh}
	    env: { READY_DELAY_MS: "1500" }
	    probes:
	      readiness: { exec: "${2:-$INSIDE}", period: 200ms, timeout: 2s }
	      ${3:-}
	    stop_grace: 2s
	    drain_timeout: 2s
	    progress_deadline: 20s
	    rollback_on: [ "restarts > 3 in 5m" ]
	    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
	EOF
}

test_expect_success 'readiness exec probe: runs in the container; ready only once /ready answers' '
	spec &&
	"$GANTRY" validate &&
	DOCKER_HOST=$DOCKER_HOST start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"ready_replicas\"] == 2 and d[\"stable_revision\"] == 1" &&
	pget / >body && grep "hello from v1" body &&
	# READY_DELAY_MS: /ready is 503 for 1.5 s, so the probe failed before it passed
	grep "ready after" "$TRASH/serve.log" | sed "s/^/# /" >&7 &&
	grep "ready after" "$TRASH/serve.log" | sed -n "s/.*ready after \([0-9]*\)ms.*/\1/p" >ms &&
	test "$(wc -l <ms)" -ge 2 &&
	while read -r ms; do test "$ms" -ge 1500 || return 1; done <ms &&
	! ev_check "any(e[\"kind\"] == \"probe_failed\" for e in ev)" 2>/dev/null
'

test_expect_success 'an image without a shell: the rollout fails, v1 serves on, the event names the missing shell' '
	spec hello:dev &&
	start=$(date +%s) &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 --wait &&
	say "rollout of an image without a shell failed after $(( $(date +%s) - start ))s (progress_deadline 20s)" >&7 &&
	ev_check "any(e[\"kind\"] == \"probe_failed\" and \"readiness probe cannot run\" in e[\"message\"] and \"/bin/sh\" in e[\"message\"] and \"no such file in the image\" in e[\"message\"] for e in ev)" &&
	gevents | grep probe_failed | head -1 | sed "s/^/# /" >&7 &&
	st_check "d[\"stable_revision\"] == 1 and d[\"target_revision\"] == 1 and d[\"ready_replicas\"] == 2" &&
	pget / >body && grep "hello from v1" body
'

test_expect_success 'the controller survives it: still running, its probes of v1 pass' '
	kill -0 "$(pid_of serve)" &&
	t0=$(date +%s%N) &&
	# v1 serves; the rolled-back v2 replica may still be stopping
	st_check "d[\"ready_replicas\"] == 2 and all(r[\"ready\"] for r in d[\"replicas\"] if r[\"revision\"] == 1)" &&
	t1=$(date +%s%N) &&
	say "gantry status (and its check) with exec probes passing: $(( (t1 - t0) / 1000000 ))ms" >&7
'

test_expect_success 'liveness exec probe exit 1: the container is restarted (replica_unhealthy, last_exit)' '
	spec hello:sh "$INSIDE" "liveness: { exec: \"exit 1\", period: 300ms, failure_threshold: 2 }" &&
	"$GANTRY" deploy hello --env staging --version v3 &&
	wait_for 30 "ev_check \"any(e[\\\"kind\\\"] == \\\"replica_unhealthy\\\" and \\\"exit status 1\\\" in e[\\\"message\\\"] for e in ev)\"" &&
	wait_for 30 "st_check \"any(r.get(\\\"last_exit\\\", \\\"\\\").startswith(\\\"liveness probe failed: exit status 1\\\") for r in d[\\\"replicas\\\"])\"" &&
	gevents | grep replica_unhealthy | head -1 | sed "s/^/# /" >&7
'

test_expect_success 'an exec probe past its timeout fails "timeout after Nms"; the controller answers meanwhile' '
	spec hello:sh "$INSIDE" "liveness: { exec: \"sleep 5\", period: 300ms, timeout: 300ms, failure_threshold: 2 }" &&
	"$GANTRY" deploy hello --env staging --version v4 &&
	wait_for 30 "ev_check \"any(e[\\\"kind\\\"] == \\\"replica_unhealthy\\\" and \\\"timeout after 300ms\\\" in e[\\\"message\\\"] for e in ev)\"" &&
	gevents | grep "timeout after" | head -1 | sed "s/^/# /" >&7 &&
	t0=$(date +%s%N) && st_check "len(d[\"replicas\"]) >= 2" && t1=$(date +%s%N) &&
	say "gantry status (and its check) while exec probes hang: $(( (t1 - t0) / 1000000 ))ms" >&7
'

test_expect_success 'SIGTERM stops the daemon and removes every container' '
	stop_serve &&
	tag=$(cat "$GANTRY_HOME/instance-id") &&
	wait_for 10 "test -z \"\$(docker ps -aq --filter label=gantry.tag=$tag)\""
'

test_done
