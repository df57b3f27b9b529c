#!/bin/sh
test_description='runtime docker, bad input and faults: an image that does not resolve, a container that cannot start, OOM, a crash loop rolled back, the Engine killed and restarted mid-rollout'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$ROOT/tests/e2e/lib/docker-lib.sh"

require_cmd python3 curl setsid
require_gantry
# containers outlive a dockerd that dies (as in production setups that use it)
DK_OPTS=--live-restore
start_dockerd
docker_scratch_image hello:dev || skip_all "cannot build a FROM scratch image of examples/hello"

spec() {
	write_svc_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    image: ${1:-hello:dev}
	    ${2:-}
	    probes:
	      readiness: { http: /ready, period: 100ms }
	      ${3:-}
	    stop_grace: 2s
	    drain_timeout: 2s
	    progress_deadline: 60s
	    rollback_on: [ "restarts > 3 in 5m" ]
	    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
	EOF
}

test_expect_success 'setup: 2 containers of v1' '
	spec &&
	DOCKER_HOST=$DOCKER_HOST start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"ready_replicas\"] == 2" &&
	gst >v1.json
'

test_expect_success 'an image that does not resolve: one clear error, exit 1, nothing changed' '
	spec nosuch:1 &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 2>err &&
	cat err &&
	grep "nosuch:1" err && grep -i "no such image" err &&
	test "$(wc -l <err)" -eq 1 &&
	st_check "d[\"stable_revision\"] == 1 and d[\"ready_replicas\"] == 2 and d[\"phase\"] == \"healthy\"" &&
	ghist >hist.json && jcheck hist.json "len(d) == 1"
'

test_expect_success 'a container that cannot start: the rollout rolls back, v1 serves on' '
	spec hello:dev "entrypoint: [\"/nonexistent\"]" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 --wait &&
	st_check "d[\"stable_revision\"] == 1 and d[\"target_revision\"] == 1 and d[\"ready_replicas\"] == 2" &&
	ev_check "any(e[\"kind\"] == \"replica_failed\" and \"nonexistent\" in e[\"message\"] for e in ev)" &&
	pget / >body && grep "hello from v1" body
'

test_expect_success 'a container never runs as root: user 0 is refused at start, v1 serves on' '
	spec hello:dev "user: \"0\"" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2r --wait &&
	ev_check "any(e[\"kind\"] == \"replica_failed\" and \"never runs as root\" in e[\"message\"] for e in ev)" &&
	st_check "d[\"stable_revision\"] == 1 and d[\"ready_replicas\"] == 2"
'

test_expect_success 'OOM: a container over its memory limit is reported as OOM killed' '
	spec hello:dev "resources: { memory: 16Mi }
    env: { HOLD_MB: \"64\" }" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v3 --wait &&
	ev_check "any(\"OOM killed (memory limit 16Mi)\" in e[\"message\"] for e in ev)" &&
	st_check "d[\"stable_revision\"] == 1 and d[\"ready_replicas\"] == 2"
'

test_expect_success 'the Engine killed mid-rollout: nothing serving changes; re-attached when it is back, the rollout completes' '
	spec hello:dev "env: { READY_DELAY_MS: \"3000\" }" &&
	"$GANTRY" deploy hello --env staging --version v4 &&
	wait_for 20 "st_check \"any(r[\\\"revision\\\"] == 5 and r.get(\\\"container\\\") for r in d[\\\"replicas\\\"])\"" &&
	kill_dockerd &&
	wait_for 10 "grep -q \"containers are left as they are\" \"$TRASH/serve.log\"" &&
	# nothing is concluded while it is away: no replica is counted as a crash,
	# the serving capacity stays (the rollout goes on only as far as
	# containers already running allow), requests are answered
	sleep 2 &&
	st_check "sum(1 for r in d[\"replicas\"] if r[\"ready\"]) >= 2 and all(r[\"restarts\"] == 0 for r in d[\"replicas\"] if r[\"revision\"] == 5)" &&
	pget / >body && grep "hello from v" body &&
	restart_dockerd &&
	wait_for 30 "grep -q \"answers again\" \"$TRASH/serve.log\"" &&
	{ wait_for 60 "st_check \"d[\\\"stable_revision\\\"] == 5 and d[\\\"ready_replicas\\\"] == 2\"" ||
		{ gst; "$GANTRY" events hello --env staging | tail -n 25; grep -v "level=debug" "$TRASH/serve.log" | tail -n 40; false; }; } &&
	pget / >body && grep "hello from v4" body
'

test_expect_success 'liveness: a container that stops answering /health is restarted' '
	spec hello:dev "env: { UNHEALTHY_AFTER_S: \"2\" }" \
		"liveness: { http: /health, period: 300ms, failure_threshold: 2 }" &&
	"$GANTRY" validate &&
	"$GANTRY" deploy hello --env staging --version v5 &&
	wait_for 30 "ev_check \"any(e[\\\"kind\\\"] == \\\"replica_unhealthy\\\" for e in ev)\"" &&
	wait_for 30 "st_check \"any(\\\"liveness probe failed\\\" in r.get(\\\"last_exit\\\", \\\"\\\") and r.get(\\\"container\\\") for r in d[\\\"replicas\\\"])\""
'

test_expect_success 'SIGTERM stops the daemon and removes every container' '
	stop_serve &&
	tag=$(cat "$GANTRY_HOME/instance-id") &&
	wait_for 10 "test -z \"\$(docker ps -aq --filter label=gantry.tag=$tag)\""
'

test_done
