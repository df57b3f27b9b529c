#!/bin/sh
test_description='feature flags in containers: a docker replica gets GANTRY_FLAGS_URL on the bridge gateway (serve opens the flags listener there too) and GANTRY_FLAGS_TOKEN; the container evaluates a flag over OFREP and follows a flip'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$ROOT/tests/e2e/lib/docker-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_dockerd
docker_scratch_image hello:dev "" shell || skip_all "cannot build a FROM scratch image of examples/hello with busybox"

FLAGS_PORT=$(free_port)

container_of() {
	gst >st.json &&
	python3 -c 'import json; print(" ".join(r["container"] for r in json.load(open("st.json"))["replicas"] if r.get("container")))'
}

test_expect_success 'setup: a docker service that fails while risky is on; serve --flags-listen on loopback' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    image: hello:dev
	    env: { HOST: 0.0.0.0, FAIL_WHEN_FLAG: risky }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 60s
	flags:
	  risky:
	    default: off
	EOF
	DOCKER_HOST=$DOCKER_HOST start_serve --flags-listen "127.0.0.1:$FLAGS_PORT" &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null &&
	"$GANTRY" flag token --env staging >staging.token &&
	test "$(pcode /)" = 200
'

test_expect_success 'the container has GANTRY_FLAGS_URL on the bridge gateway and the token; serve listens there' '
	c=$(container_of) && test -n "$c" &&
	docker inspect "$c" >inspect.json &&
	jcheck inspect.json "\"GANTRY_FLAGS_URL=http://$DK_SUBNET.1:$FLAGS_PORT/flags/staging\" in d[0][\"Config\"][\"Env\"]" &&
	jcheck inspect.json "\"GANTRY_FLAGS_TOKEN=$(cat staging.token)\" in d[0][\"Config\"][\"Env\"]" &&
	grep "listen=$DK_SUBNET.1:$FLAGS_PORT: the docker bridge" serve.log
'

test_expect_success 'inside the container, busybox wget evaluates the flag over OFREP' '
	c=$(container_of) &&
	docker exec "$c" /bin/sh -c "wget -q -O - --header \"Authorization: Bearer \$GANTRY_FLAGS_TOKEN\" --header \"Content-Type: application/json\" --post-data \"{\\\"context\\\":{\\\"targetingKey\\\":\\\"c1\\\"}}\" \$GANTRY_FLAGS_URL/ofrep/v1/evaluate/flags/risky" >eval.json &&
	cat eval.json &&
	jcheck eval.json "d[\"key\"] == \"risky\" and d[\"value\"] is False and d[\"variant\"] == \"off\""
'

test_expect_success 'the container follows a flip: risky on -> 500, off -> 200 (figure)' '
	t0=$(date +%s%3N) &&
	"$GANTRY" flag set risky on --env staging --reason test >/dev/null &&
	wait_for 10 "test \"\$(pcode /)\" = 500" &&
	t1=$(date +%s%3N) &&
	echo "figure: flag set -> the container (polling every 50 ms over the bridge) answered 500 after $((t1 - t0)) ms" &&
	"$GANTRY" flag set risky off --env staging >/dev/null &&
	wait_for 10 "test \"\$(pcode /)\" = 200"
'

test_expect_success 'after kill -9 and a restart, the adopted container reaches the flags listener again' '
	c=$(container_of) &&
	kill9_serve &&
	DOCKER_HOST=$DOCKER_HOST start_serve --flags-listen "127.0.0.1:$FLAGS_PORT" &&
	test "$(container_of)" = "$c" &&
	wait_for 10 "grep -q \"listen=$DK_SUBNET.1:$FLAGS_PORT: the docker bridge\" serve.log" &&
	"$GANTRY" flag set risky on --env staging >/dev/null &&
	wait_for 10 "test \"\$(pcode /)\" = 500" &&
	"$GANTRY" flag set risky off --env staging >/dev/null &&
	wait_for 10 "test \"\$(pcode /)\" = 200"
'

test_expect_success 'the controller stops cleanly' '
	stop_serve
'

test_done
