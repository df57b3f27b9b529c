#!/bin/sh
test_description='runtime docker: deploy builds the image through the Engine, tags it SERVICE:VERSION, pushes it to the registry; the controller pulls an image its Engine lacks and checks its id; a failed build and a registry that is down deploy nothing; images beyond keep_revisions are pruned from the Engine'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$ROOT/tests/e2e/lib/docker-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_dockerd
[ -x "$ROOT/examples/hello/hello-static" ] || skip_all "examples/hello/hello-static not built (make examples)"
start_registry || skip_all "docker-registry did not start"

# the build context: examples/hello built static, FROM scratch; the build
# arg V is a label, so each value gives another image id
mkdir -p ctx && cp "$ROOT/examples/hello/hello-static" ctx/hello &&
cat >ctx/Dockerfile <<'EOF'
FROM scratch
ARG V=0
COPY hello /hello
ENV HOST=0.0.0.0
LABEL build.v=$V
ENTRYPOINT ["/hello"]
EOF
printf 'FROM scratch\nCOPY hello /hello\nBOGUS this is not an instruction\n' >ctx/Dockerfile.bad

# write_spec DOCKERFILE V: gantry.yaml of a built service pushed to $REGISTRY
write_spec() {
	cat >"$TRASH/gantry.yaml" <<-EOF
	project: t
	registry: $REGISTRY
	environments:
	  staging: { replicas: 1 }
	  prod: { replicas: 1 }
	  dev: { replicas: 1 }
	services:
	  hello:
	    build: { dockerfile: $1, context: ctx, args: { V: "$2" } }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 60s
	    keep_revisions: 2
	EOF
}

# image_id REF: the Engine's id of REF ("" if none)
image_id() {
	docker image inspect --format '{{.Id}}' "$1" 2>/dev/null
}

# revisions ENV: how many revisions hello@ENV has
revisions() {
	"$GANTRY" history hello --env "$1" -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# digest_of ENV VERSION: the revision's digest (the image id's hex)
digest_of() {
	"$GANTRY" history hello --env "$1" -o json |
		python3 -c 'import json,sys; print([r["digest"] for r in json.load(sys.stdin) if r["version"] == sys.argv[1]][0])' "$2"
}

# st_env ENV EXPR: st_check of hello@ENV
st_env() {
	"$GANTRY" status hello --env "$1" -o json >"$TRASH/st.json" && jcheck "$TRASH/st.json" "$2"
}

# scale0 ENV: hello@ENV scaled to 0, its containers gone (the image is free)
scale0() {
	"$GANTRY" scale hello --env "$1" --replicas 0 >/dev/null &&
	wait_for 30 "st_env $1 \"len(d[\\\"replicas\\\"]) == 0\" 2>/dev/null"
}

test_expect_success 'deploy builds the image, shows its progress, tags and pushes it, the controller runs it' '
	write_spec Dockerfile 1 &&
	start_serve &&
	t0=$(_now_ms) &&
	{ "$GANTRY" deploy hello --env staging --version v1 --wait 2>deploy.err; rc=$?; } &&
	say "figure: deploy with build (cold cache) + push to ready: $(($(_now_ms) - t0)) ms" >&7 &&
	cat deploy.err && test $rc -eq 0 &&
	grep "^build hello:v1: Step 3/6 : COPY hello /hello" deploy.err &&
	grep "^push: $REGISTRY/hello:v1" deploy.err &&
	st_check "d[\"ready_replicas\"] == 1 and d[\"version\"] == \"v1\"" &&
	pget / >body && grep "hello from v1" body &&
	d=$(digest_of staging v1) &&
	test "$(image_id hello:v1)" = "sha256:$d" &&
	test "$(image_id "$REGISTRY/hello:v1")" = "sha256:$d" &&
	c=$(python3 -c "import json; print(json.load(open(\"$TRASH/st.json\"))[\"replicas\"][0][\"container\"])") &&
	test "$(docker inspect --format "{{.Image}}" "$c")" = "sha256:$d" &&
	curl -sf "http://$REGISTRY/v2/hello/tags/list" >tags.json &&
	jcheck tags.json "\"v1\" in d[\"tags\"]"
'

test_expect_success 'an image the Engine lost is pulled back from the registry for a promotion, same id' '
	d=$(digest_of staging v1) &&
	scale0 staging &&
	docker rmi -f "sha256:$d" &&
	test -z "$(image_id "sha256:$d")" &&
	t0=$(_now_ms) &&
	mkdir -p elsewhere && (cd elsewhere && "$GANTRY" deploy hello --env prod --version v1 --wait) &&
	say "figure: deploy --version v1 to prod with the pull from the registry, to ready: $(($(_now_ms) - t0)) ms" >&7 &&
	test "$(image_id "sha256:$d")" = "sha256:$d" &&
	test "$(digest_of prod v1)" = "$d" &&
	st_env prod "d[\"ready_replicas\"] == 1 and d[\"version\"] == \"v1\"" &&
	grep "pulled $REGISTRY/hello:v1" "$TRASH/serve.log"
'

test_expect_success 'a tag moved in the registry: the pulled image is refused, nothing deployed' '
	d=$(digest_of staging v1) &&
	write_spec Dockerfile moved &&
	"$GANTRY" deploy hello --env dev --version moved --wait 2>/dev/null &&
	docker tag hello:moved "$REGISTRY/hello:v1" &&
	docker push "$REGISTRY/hello:v1" >/dev/null &&
	scale0 prod &&
	docker rmi -f "sha256:$d" &&
	n=$(revisions staging) &&
	(cd elsewhere && test_expect_code 1 "$GANTRY" deploy hello --env staging --version v1 2>refused.err) &&
	cat elsewhere/refused.err &&
	grep "pulled $REGISTRY/hello:v1 but its id is sha256:.*, not sha256:$d" elsewhere/refused.err &&
	test "$(revisions staging)" = "$n"
'

test_expect_success 'image_ref: an image the Engine lacks is pulled by its manifest digest, the moved tag does not matter' '
	d=$(digest_of staging v1) &&
	ref=$(sed -n "s/^pushed //p" deploy.err) &&
	case "$ref" in "$REGISTRY/hello:v1@sha256:"*) ;; *) echo "no pushed reference in deploy.err: $ref"; false ;; esac &&
	test -z "$(image_id "sha256:$d")" &&
	api "{\"op\":\"deploy\",\"service\":\"hello\",\"environment\":\"staging\",\"version\":\"v1\",\"digest\":\"$d\",\"image_ref\":\"$ref\"}" >reply.json &&
	jcheck reply.json "d[\"ok\"] and d[\"state\"] == \"pulling\"" &&
	wait_for 60 "test \"\$(image_id sha256:$d)\" = sha256:$d" &&
	grep "pulled $REGISTRY/hello@sha256:.*: image sha256:$(echo $d | cut -c1-12)" "$TRASH/serve.log" &&
	wait_for 60 "st_env staging \"d[\\\"ready_replicas\\\"] == 1 and d[\\\"version\\\"] == \\\"v1\\\"\" 2>/dev/null"
'

test_expect_success 'image_ref must name a manifest digest, and comes with the image id' '
	api "{\"op\":\"deploy\",\"service\":\"hello\",\"environment\":\"staging\",\"version\":\"v1\",\"image_ref\":\"$REGISTRY/hello:v1\",\"digest\":\"$(digest_of staging v1)\"}" >bad1.json &&
	jcheck bad1.json "not d[\"ok\"] and d[\"code\"] == 2 and d[\"error\"].startswith(\"/image_ref: expected REPO:TAG@sha256:\")"
'

test_expect_success 'a failed build exits 1 with its error line, nothing deployed' '
	write_spec Dockerfile.bad 1 &&
	n=$(revisions dev) &&
	test_expect_code 1 "$GANTRY" deploy hello --env dev --version bad 2>bad.err &&
	cat bad.err &&
	grep -i "unknown instruction: BOGUS" bad.err &&
	grep "^error: hello: the image build failed: .*nothing was deployed" bad.err &&
	test "$(revisions dev)" = "$n" &&
	test -z "$(image_id hello:bad)"
'

test_expect_success 'pruning: keep_revisions 2 removes the images of older revisions, never a running one' '
	t0=$(_now_ms) &&
	for v in p1 p2 p3 p4; do
		write_spec Dockerfile "$v" &&
		"$GANTRY" deploy hello --env dev --version "$v" --wait 2>/dev/null || return 1
	done &&
	say "figure: 4 deploys (build, push, roll out) to ready: $(($(_now_ms) - t0)) ms" >&7 &&
	p1=$(digest_of dev p1) && p2=$(digest_of dev p2) && p3=$(digest_of dev p3) && p4=$(digest_of dev p4) &&
	test $(printf "%s\n" $p1 $p2 $p3 $p4 | sort -u | wc -l) -eq 4 &&
	wait_for 30 "test -z \"\$(image_id sha256:$p1)\" && test -z \"\$(image_id sha256:$p2)\"" &&
	test "$(image_id "sha256:$p3")" = "sha256:$p3" &&
	test "$(image_id "sha256:$p4")" = "sha256:$p4" &&
	st_env dev "d[\"ready_replicas\"] == 1 and d[\"version\"] == \"p4\"" &&
	"$GANTRY" history hello --env dev -o json >hist.json &&
	jcheck hist.json "[r[\"artifact_pruned\"] for r in d if r[\"version\"] in (\"p1\", \"p2\")] == [True, True]" &&
	jcheck hist.json "[r[\"artifact_pruned\"] for r in d if r[\"version\"] in (\"p3\", \"p4\")] == [False, False]" &&
	grep "image=$(echo $p1 | cut -c1-12) removed" "$TRASH/serve.log"
'

test_expect_success 'a registry that is down: deploy exits 1 with one clear line, nothing deployed' '
	stop_registry &&
	write_spec Dockerfile down &&
	n=$(revisions dev) &&
	test_expect_code 1 "$GANTRY" deploy hello --env dev --version down 2>down.err &&
	cat down.err &&
	test "$(grep -c "^error:" down.err)" -eq 1 &&
	grep "^error: push of $REGISTRY/hello:down to registry $REGISTRY failed: .*nothing was deployed" down.err &&
	test "$(revisions dev)" = "$n" &&
	st_env dev "d[\"version\"] == \"p4\""
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
