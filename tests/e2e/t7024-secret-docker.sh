#!/bin/sh
test_description='secrets in containers: env and file secrets reach the container process through the read-only secrets mount and gantry-secret-exec; docker inspect and every file under the Engine data-root never hold a value'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$ROOT/tests/e2e/lib/docker-lib.sh"

require_cmd python3 curl setsid
require_gantry
test -x "$(dirname "$GANTRY")/gantry-secret-exec" || skip_all "no gantry-secret-exec beside $GANTRY (make builds it)"
start_dockerd
docker_scratch_image hello:dev || skip_all "cannot build a FROM scratch image of examples/hello"

# random values: only in shell variables of the test (never in a file of it, never in an argv)
V=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
K=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")

container_of() {
	gst >st.json &&
	python3 -c 'import json; print(" ".join(r["container"] for r in json.load(open("st.json"))["replicas"] if r.get("container")))'
}
env_of() {
	tr "\0" "\n" <"/proc/$1/environ" | sed -n "s/^$2=//p"
}

test_expect_success 'setup: a docker service with an env and a file secret' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    image: hello:dev
	    env:
	      HOST: 0.0.0.0
	      DB_PASSWORD: { secret: db_password }
	    files:
	      api_key: { secret: api_key }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 60s
	EOF
	DOCKER_HOST=$DOCKER_HOST start_serve &&
	printf "%s" "$V" | "$GANTRY" secret set db_password --env staging &&
	printf "%s" "$K" | "$GANTRY" secret set api_key --env staging &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	pget / >body && grep "hello from" body
'

test_expect_success 'the container process has DB_PASSWORD and /run/secrets/api_key' '
	c=$(container_of) && test -n "$c" &&
	pid=$(docker inspect --format "{{.State.Pid}}" "$c") && test "$pid" -gt 1 &&
	test "$(env_of $pid DB_PASSWORD)" = "$V" &&
	test "$(env_of $pid GANTRY_SECRETS_DIR)" = /run/secrets &&
	test "$(cat /proc/$pid/root/run/secrets/api_key)" = "$K" &&
	tr "\0" " " </proc/$pid/cmdline >cmdline && cat cmdline && grep "^/hello" cmdline
'

test_expect_success 'docker inspect shows the launcher and the mounts, no value; the program is the image entrypoint' '
	c=$(container_of) &&
	docker inspect "$c" >inspect.json &&
	! grep -q "$V" inspect.json && ! grep -q "$K" inspect.json &&
	jcheck inspect.json "d[0][\"Config\"][\"Entrypoint\"] == [\"/.gantry/secret-exec\", \"/run/secrets\", \"--\"]
		and d[0][\"Config\"][\"Cmd\"] == [\"/hello\"]
		and not any(e.startswith(\"DB_PASSWORD=\") for e in d[0][\"Config\"][\"Env\"])
		and sorted(m[\"Destination\"] for m in d[0][\"Mounts\"]) == [\"/.gantry/secret-exec\", \"/run/secrets\"]
		and all(not m[\"RW\"] for m in d[0][\"Mounts\"])"
'

test_expect_success 'no file under the Engine data-root, nor under the test directory, holds a value' '
	n=$(find "$DK_DIR" -xdev -type f 2>/dev/null | wc -l) &&
	say "searched $n files under the Engine directory" &&
	for v in "$V" "$K"; do
		! grep -r -a -q -s "$v" "$DK_DIR" "$TRASH" || { grep -r -a -l -s "$v" "$DK_DIR" "$TRASH"; false; } || return 1
	done
'

test_expect_success 'stop: the secrets directory is gone' '
	stop_serve &&
	! test -e /dev/shm/gantry-$(cat "$GANTRY_HOME/instance-id")
'

test_done
