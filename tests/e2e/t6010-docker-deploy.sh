#!/bin/sh
test_description='runtime docker: rolling deploy, rollback and restart under load with zero failed requests; the image is pinned; a crash restarts; kill -9 of the controller adopts the same containers; orphans are removed; logs; stop removes every container'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$ROOT/tests/e2e/lib/docker-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_dockerd
docker_scratch_image hello:dev || skip_all "cannot build a FROM scratch image of examples/hello"

# our containers (labelled with this HOME's instance id) as "ID STATE REPLICA", sorted
containers() {
	docker ps -a --no-trunc --filter "label=gantry.tag=$(cat "$GANTRY_HOME/instance-id")" \
		--format '{{.ID}} {{.State}} {{.Label "gantry.replica"}}' | sort
}

# what status says runs agrees with the Engine: one running container per
# replica that is not backing off, and no other container of ours
check_containers() {
	gst >"$TRASH/cst.json" && containers >"$TRASH/cps.txt" &&
	python3 - "$TRASH/cst.json" "$TRASH/cps.txt" <<-\EOF
	import json, sys
	st = json.load(open(sys.argv[1]))
	want = {r["container"]: r["id"] for r in st["replicas"] if r.get("container") and r["state"] != "backoff"}
	have = {}
	for line in open(sys.argv[2]):
	    cid, state, rep = line.split()
	    have[cid] = (state, rep)
	bad = [c for c in have if c not in want]
	assert not bad, ("containers not in status", bad, have, want)
	for c, rid in want.items():
	    assert c in have and have[c] == ("running", rid), (c, rid, have)
	EOF
}

test_expect_success 'setup: 3 containers of v1 under load' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 3 }
	services:
	  hello:
	    image: hello:dev
	    env: { HOST: 0.0.0.0 }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 2s
	    progress_deadline: 60s
	    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
	EOF
	DOCKER_HOST=$DOCKER_HOST start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "d[\"ready_replicas\"] == 3 and all(r.get(\"container\") for r in d[\"replicas\"])" &&
	check_containers &&
	test "$(containers | wc -l)" -eq 3 &&
	pget / >body && grep "hello from v1" body &&
	start_load load
'

test_expect_success 'the revision pins the image id: docker inspect agrees' '
	ghist >hist.json &&
	id=$(docker image inspect --format "{{.Id}}" hello:dev) &&
	jcheck hist.json "\"sha256:\" + d[0][\"digest\"] == \"$id\"" &&
	for c in $(containers | cut -d" " -f1); do
		test "$(docker inspect --format "{{.Image}}" "$c")" = "$id" || return 1
	done
'

test_expect_success 'containers run as the unprivileged workload user, and report CPU and memory' '
	for c in $(containers | cut -d" " -f1); do
		u=$(docker inspect --format "{{.Config.User}}" "$c") &&
		say "container $c user $u" &&
		case $u in ""|0|0:*|root|root:*) return 1 ;; esac || return 1
	done &&
	wait_for 20 "st_check \"all(r[\\\"memory_bytes\\\"] and r[\\\"cpu_percent\\\"] is not None for r in d[\\\"replicas\\\"])\""
'

test_expect_success 'deploy v2 and roll back, --wait, under load' '
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	st_check "d[\"stable_revision\"] == 2 and d[\"ready_replicas\"] == 3" &&
	check_containers &&
	"$GANTRY" rollback hello --env staging --wait &&
	st_check "d[\"stable_revision\"] == 3 and d[\"version\"] == \"v1\"" &&
	check_containers
'

test_expect_success 'a tag moved after the deploy changes nothing: a restart runs the pinned id' '
	old=$(docker image inspect --format "{{.Id}}" hello:dev) &&
	docker_scratch_image hello:dev moved &&
	new=$(docker image inspect --format "{{.Id}}" hello:dev) &&
	test "$old" != "$new" &&
	"$GANTRY" restart hello --env staging --wait &&
	check_containers &&
	for c in $(containers | cut -d" " -f1); do
		test "$(docker inspect --format "{{.Image}}" "$c")" = "$old" || return 1
	done
'

test_expect_success 'the clients saw zero failures through deploy, rollback and restart' '
	stop_load load &&
	load_clean load &&
	jcheck load.json "set(d[\"versions\"]) >= {\"v1\", \"v2\"}"
'

test_expect_success 'a container killed behind our back is restarted with backoff' '
	gst >before.json &&
	victim=$(python3 -c "import json; print(json.load(open(\"before.json\"))[\"replicas\"][0][\"container\"])") &&
	rid=$(python3 -c "import json; print(json.load(open(\"before.json\"))[\"replicas\"][0][\"id\"])") &&
	docker kill "$victim" &&
	wait_for 30 "st_check \"any(r[\\\"id\\\"] == \\\"$rid\\\" and r[\\\"restarts\\\"] == 1 and r[\\\"ready\\\"] for r in d[\\\"replicas\\\"])\"" &&
	st_check "[r for r in d[\"replicas\"] if r[\"id\"] == \"$rid\"][0][\"last_exit\"] == \"exit status 137\"" &&
	st_check "[r for r in d[\"replicas\"] if r[\"id\"] == \"$rid\"][0][\"container\"] != \"$victim\"" &&
	check_containers
'

test_expect_success 'kill -9 of the controller: the same containers are adopted, none restarted, no request failed' '
	start_load load2 &&
	containers >before.txt &&
	kill9_serve &&
	DOCKER_HOST=$DOCKER_HOST start_serve &&
	wait_for 20 "st_check \"d[\\\"ready_replicas\\\"] == 3\"" &&
	containers >after.txt &&
	test_cmp before.txt after.txt &&
	grep "adopted" "$TRASH/serve.log" &&
	check_containers &&
	stop_load load2 &&
	load_clean load2
'

test_expect_success 'a labelled container no replica owns is removed' '
	tag=$(cat "$GANTRY_HOME/instance-id") &&
	docker create --label "gantry.tag=$tag" --label gantry.replica=hello-staging-9-deadbeef \
		--name orphan-$$ hello:dev >orphan.id &&
	wait_for 10 "! docker inspect orphan-$$ >/dev/null 2>&1" &&
	grep "orphan container" "$TRASH/serve.log"
'

test_expect_success 'gantry logs shows the containers output' '
	"$GANTRY" logs hello --env staging >logs.txt &&
	grep "listening on 0.0.0.0" logs.txt
'

test_expect_success 'SIGTERM stops the daemon and removes every container' '
	stop_serve &&
	wait_for 10 "test \$(containers | wc -l) -eq 0"
'

test_done
