#!/bin/sh
test_description='runtime docker: an image the Engine lacks is pulled off the op handler: the deploy waits in "pulling" with its progress, survives a kill -9 of the controller (pulled again, started once); an image: tag too (the loop answers while the registry is stopped; the pulled id is pinned, a moved tag changes nothing); a rollback to a revision whose image the Engine lost pulls it, under load with no failed request; a registry that is down fails it with one clear line and nothing changes'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$ROOT/tests/e2e/lib/docker-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_dockerd
[ -x "$ROOT/examples/hello/hello-static" ] || skip_all "examples/hello/hello-static not built (make examples)"
start_registry || skip_all "docker-registry did not start"

mkdir -p ctx elsewhere && cp "$ROOT/examples/hello/hello-static" ctx/hello &&
cat >ctx/Dockerfile <<'EOF2'
FROM scratch
ARG V=0
COPY hello /hello
ENV HOST=0.0.0.0
LABEL build.v=$V
ENTRYPOINT ["/hello"]
EOF2

# write_spec V: a built service pushed to $REGISTRY (staging and dev)
write_spec() {
	cat >"$TRASH/gantry.yaml" <<-EOF2
	project: t
	registry: $REGISTRY
	environments:
	  staging: { replicas: 2 }
	  dev: { replicas: 1 }
	services:
	  hello:
	    build: { dockerfile: Dockerfile, context: ctx, args: { V: "$1" } }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 60s
	  tagged:
	    image: $REGISTRY/hello:tagged
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 60s
	EOF2
}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null; }
digest_of() {
	"$GANTRY" history hello --env "$1" -o json |
		python3 -c 'import json,sys; print([r["digest"] for r in json.load(sys.stdin) if r["version"] == sys.argv[1]][0])' "$2"
}
st_env() { "$GANTRY" status hello --env "$1" -o json >"$TRASH/st.json" && jcheck "$TRASH/st.json" "$2"; }
st_tagged() { "$GANTRY" status tagged --env dev -o json >"$TRASH/st.json" && jcheck "$TRASH/st.json" "$1"; }
# built V: v built and pushed through dev, then dev scaled to 0 and the image removed from the Engine
built_and_gone() {
	write_spec "$1" &&
	"$GANTRY" deploy hello --env dev --version "$1" --wait 2>/dev/null >/dev/null &&
	"$GANTRY" scale hello --env dev --replicas 0 >/dev/null &&
	wait_for 30 "st_env dev \"len(d[\\\"replicas\\\"]) == 0\" 2>/dev/null" &&
	docker rmi -f "sha256:$(digest_of dev "$1")" >/dev/null &&
	test -z "$(image_id "sha256:$(digest_of dev "$1")")"
}

test_expect_success 'deploy of an image only in the registry: pulled off the handler, progress lines, ready' '
	start_serve &&
	built_and_gone v1 &&
	t0=$(_now_ms) &&
	(cd elsewhere && "$GANTRY" deploy hello --env staging --version v1 --wait 2>../pull1.err) &&
	say "figure: deploy --version v1 with its pull from the registry to ready: $(($(_now_ms) - t0)) ms" >&7 &&
	cat pull1.err &&
	grep "^deployment [0-9]*: pulling $REGISTRY/hello:v1 in the controller" pull1.err &&
	grep "^  pulled $REGISTRY/hello:v1: layers [0-9]*/[0-9]*" pull1.err &&
	st_env staging "d[\"ready_replicas\"] == 2 and d[\"version\"] == \"v1\" and \"pull\" not in d" &&
	test "$(image_id "sha256:$(digest_of staging v1)")" = "sha256:$(digest_of staging v1)" &&
	"$GANTRY" events hello --env staging -o json >ev.json &&
	test "$(python3 -c "import json,sys; print(sum(json.loads(l)[\"kind\"] == \"image_pull\" for l in open(sys.argv[1]) if l.strip()))" ev.json)" -ge 2
'

test_expect_success 'kill -9 of the controller during a pull: the pull runs again, the deploy completes once' '
	built_and_gone v2 &&
	kill -STOP "$REG_PID" &&
	api "{\"op\":\"deploy\",\"service\":\"hello\",\"environment\":\"staging\",\"version\":\"v2\"}" >reply.json &&
	cat reply.json &&
	jcheck reply.json "d[\"ok\"] and d[\"state\"] == \"pulling\" and d[\"image\"] == \"$REGISTRY/hello:v2\"" &&
	wait_for 10 "st_env staging \"d[\\\"pull\\\"][\\\"image\\\"] == \\\"$REGISTRY/hello:v2\\\"\" 2>/dev/null" &&
	st_env staging "d[\"version\"] == \"v1\" and d[\"ready_replicas\"] == 2" &&
	kill9_serve &&
	kill -CONT "$REG_PID" &&
	start_serve &&
	wait_for 60 "st_env staging \"d[\\\"ready_replicas\\\"] == 2 and d[\\\"version\\\"] == \\\"v2\\\"\" 2>/dev/null" &&
	grep "pulls $REGISTRY/hello:v2 again after a restart" "$TRASH/serve.log" &&
	"$GANTRY" history hello --env staging -o json >h.json &&
	jcheck h.json "len([r for r in d if r[\"version\"] == \"v2\"]) == 1" &&
	"$GANTRY" deployments hello --env staging -o json >dep.json &&
	jcheck dep.json "[x[\"state\"] for x in (d if isinstance(d, list) else d[\"deployments\"]) if x[\"version\"] == \"v2\"] in ([\"succeeded\"], [\"started\"])"
'

test_expect_success 'rollback to a revision whose image the Engine lost: pulled, then rolled out under load, no failed request' '
	d1=$(digest_of staging v1) &&
	docker rmi -f "sha256:$d1" >/dev/null &&
	test -z "$(image_id "sha256:$d1")" &&
	start_load L1 &&
	t0=$(_now_ms) &&
	"$GANTRY" rollback hello --env staging --wait 2>rb.err &&
	say "figure: rollback with the pull of its image to complete: $(($(_now_ms) - t0)) ms" >&7 &&
	stop_load L1 && load_clean L1 &&
	cat rb.err &&
	grep "pulling $REGISTRY/hello:v1" rb.err &&
	st_env staging "d[\"ready_replicas\"] == 2 and d[\"version\"] == \"v1\"" &&
	test "$(image_id "sha256:$d1")" = "sha256:$d1"
'

# the running containers of service tagged: their image ids, sorted, one a line
tagged_images() {
	for c in $(docker ps -q --no-trunc --filter "label=gantry.tag=$(cat "$GANTRY_HOME/instance-id")" \
			--filter label=gantry.service=tagged); do
		docker inspect --format "{{.Image}}" "$c" || return 1
	done | sort -u
}

test_expect_success 'image: a tag the Engine lacks: "pulling" at once, the loop answers during the pull, the pulled id is pinned' '
	docker_scratch_image tagsrc:a a &&
	docker_scratch_image tagsrc:b b &&
	ida=$(image_id tagsrc:a) && idb=$(image_id tagsrc:b) && test "$ida" != "$idb" &&
	docker tag tagsrc:a "$REGISTRY/hello:tagged" &&
	docker push "$REGISTRY/hello:tagged" >/dev/null &&
	docker rmi "$REGISTRY/hello:tagged" tagsrc:a >/dev/null &&
	test -z "$(image_id "$ida")" &&
	kill -STOP "$REG_PID" &&
	t0=$(_now_ms) &&
	api "{\"op\":\"deploy\",\"service\":\"tagged\",\"environment\":\"dev\",\"version\":\"t1\"}" >tag.json &&
	say "figure: deploy of an image: tag, the registry stopped, answered in $(($(_now_ms) - t0)) ms" >&7 &&
	cat tag.json &&
	jcheck tag.json "d[\"ok\"] and d[\"state\"] == \"pulling\" and d[\"image\"] == \"$REGISTRY/hello:tagged\"" &&
	wait_for 10 "st_tagged \"d[\\\"pull\\\"][\\\"image\\\"] == \\\"$REGISTRY/hello:tagged\\\"\" 2>/dev/null" &&
	t0=$(_now_ms) &&
	"$GANTRY" status -o json >all.json &&
	say "figure: gantry status during the pull (registry stopped): $(($(_now_ms) - t0)) ms" >&7 &&
	jcheck all.json "[x[\"pull\"][\"image\"] for x in d if x[\"service\"] == \"tagged\"] == [\"$REGISTRY/hello:tagged\"]" &&
	kill -CONT "$REG_PID" &&
	wait_for 60 "st_tagged \"d[\\\"ready_replicas\\\"] == 1 and d[\\\"version\\\"] == \\\"t1\\\"\" 2>/dev/null" &&
	"$GANTRY" history tagged --env dev -o json >th.json &&
	jcheck th.json "len(d) == 1 and \"sha256:\" + d[0][\"digest\"] == \"$ida\"" &&
	test "$(tagged_images)" = "$ida" &&
	grep "pinned $REGISTRY/hello:tagged to image $(echo "$ida" | cut -c1-19)" "$TRASH/serve.log"
'

test_expect_success 'image: the tag moved in the registry (and in the Engine): a restart still runs the pinned id' '
	docker tag tagsrc:b "$REGISTRY/hello:tagged" &&
	docker push "$REGISTRY/hello:tagged" >/dev/null &&
	test "$(image_id "$REGISTRY/hello:tagged")" = "$idb" &&
	"$GANTRY" restart tagged --env dev --wait 2>/dev/null >/dev/null &&
	"$GANTRY" history tagged --env dev -o json >th.json &&
	jcheck th.json "len(d) == 2 and all(\"sha256:\" + r[\"digest\"] == \"$ida\" for r in d)" &&
	wait_for 30 "test \"\$(tagged_images)\" = \"$ida\"" &&
	st_tagged "d[\"ready_replicas\"] == 1"
'

test_expect_success 'rollback when the registry is down: one clear error, exit 1, the serving revision stays' '
	d2=$(digest_of staging v2) &&
	docker rmi -f "sha256:$d2" >/dev/null &&
	stop_registry &&
	n=$("$GANTRY" history hello --env staging -o json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))") &&
	test_expect_code 1 "$GANTRY" rollback hello --env staging --to-revision 2 --wait 2>down.err &&
	cat down.err &&
	test "$(grep -c "^error:" down.err)" -eq 1 &&
	grep "^error: pull $REGISTRY/hello:v2: .*nothing changed" down.err &&
	test "$("$GANTRY" history hello --env staging -o json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")" = "$n" &&
	st_env staging "d[\"ready_replicas\"] == 2 and d[\"version\"] == \"v1\"" &&
	pget / | grep "hello"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
