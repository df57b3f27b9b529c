#!/bin/sh
test_description='a docker service in a release: its image id is pinned by the controller as for a deploy, compared (unchanged), released in dependency order before a process service'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$ROOT/tests/e2e/lib/docker-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_dockerd
docker_scratch_image hello:dev || skip_all "cannot build a FROM scratch image of examples/hello"

# $1: the MARK of web (the process service)
spec() {
	write_svc_spec <<-EOF
	project: t
	environments:
	  staging: {}
	services:
	  api:
	    image: hello:dev
	    env: { HOST: 0.0.0.0 }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 60s
	  web:
	    artifact: app
	    run: ./hello
	    depends_on: [api]
	    env: { MARK: "$1" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
}

test_expect_success 'setup: the daemon with a private Docker Engine' '
	spec one &&
	DOCKER_HOST=$DOCKER_HOST start_serve
'

test_expect_success 'a release of api (docker) then web (process): both succeed, api pins the image id' '
	"$GANTRY" release --env staging --wait >out &&
	cat out &&
	"$GANTRY" release status 1 --env staging -o json >r1.json &&
	jcheck r1.json "d[\"state\"] == \"succeeded\" and [(s[\"service\"], s[\"level\"], s[\"state\"]) for s in d[\"services\"]] == [(\"api\", 0, \"succeeded\"), (\"web\", 1, \"succeeded\")]" &&
	id=$(docker image inspect --format "{{.Id}}" hello:dev) &&
	jcheck r1.json "\"sha256:\" + d[\"services\"][0][\"digest\"] == \"$id\"" &&
	"$GANTRY" history api --env staging -o json >h.json &&
	jcheck h.json "\"sha256:\" + d[0][\"digest\"] == \"$id\"" &&
	"$GANTRY" status api --env staging -o json >a.json &&
	jcheck a.json "d[\"phase\"] == \"healthy\" and all(r.get(\"container\") for r in d[\"replicas\"])"
'

test_expect_success 'the same image id: api is unchanged, only web deploys' '
	spec two &&
	"$GANTRY" release --env staging --wait >out &&
	"$GANTRY" release status 2 --env staging -o json >r2.json &&
	jcheck r2.json "[(s[\"service\"], s[\"state\"]) for s in d[\"services\"]] == [(\"api\", \"unchanged\"), (\"web\", \"succeeded\")]"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
