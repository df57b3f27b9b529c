#!/bin/sh
test_description='checks: a failing pre-check refuses the deploy; a failing post-check rolls it back; outputs are kept'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

records() {
	python3 - "$GANTRY_HOME/api.sock" <<-PY
	import json, socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.connect(sys.argv[1])
	s.sendall(json.dumps({"op": "deployments", "service": "hello", "environment": "staging"}).encode() + b"\n")
	data = b""
	while True:
	    chunk = s.recv(65536)
	    if not chunk:
	        break
	    data += chunk
	print(json.dumps(json.loads(data)["deployments"]))
	PY
}

test_expect_success 'setup: pre and post checks, daemon' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    checks:
	      pre:
	        - { run: "echo checking the release notes; test -f release-notes.txt", timeout: 10s }
	      post:
	        - { http: "GET /ready", expect: 200 }
	        - { run: "test ! -f break-smoke || { echo smoke test found a broken checkout; exit 1; }" }
	EOF
	start_serve
'

test_expect_success 'a failing pre-check refuses the deploy (exit 3) and shows its output' '
	test_expect_code 3 "$GANTRY" deploy hello --env staging --version v1 2>err &&
	grep "checking the release notes" err &&
	grep "pre-deployment check failed" err &&
	ghist >hist.json &&
	jcheck hist.json "d == []"
'

test_expect_success 'passing checks: deployed, pre and post results recorded' '
	echo "v1: first" >app/release-notes.txt && # checks run in the controller, in the artifact
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	wait_for 20 "records >rec.json && jcheck rec.json \"d[0][\\\"state\\\"] == \\\"succeeded\\\"\"" &&
	jcheck rec.json "[c[\"phase\"] for c in d[0][\"checks\"]] == [\"pre\", \"post\", \"post\"] and all(c[\"ok\"] for c in d[0][\"checks\"])" &&
	jcheck rec.json "\"GET /ready -> 200\" in d[0][\"checks\"][1][\"output\"]"
'

test_expect_success 'a failing post-check rolls back to the previous revision' '
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	wait_for 20 "records >rec.json && jcheck rec.json \"d[0][\\\"state\\\"] == \\\"succeeded\\\"\"" &&
	touch app/break-smoke && # goes into the v3 artifact, where the post-check runs
	"$GANTRY" deploy hello --env staging --version v3 &&
	wait_for 30 "ghist | grep -q rolled_back" &&
	wait_for 30 "st_check \"d[\\\"version\\\"] == \\\"v2\\\" and d[\\\"phase\\\"] == \\\"rolled_back\\\"\"" &&
	records >rec.json &&
	jcheck rec.json "any(r[\"version\"] == \"v3\" and r[\"result\"] == \"failed\" and \"break-smoke\" in r[\"result_reason\"]
		and any(\"smoke test found a broken checkout\" in c.get(\"output\", \"\") for c in r[\"checks\"]) for r in d)" &&
	gevents >ev.jsonl &&
	grep -q post_check_failed ev.jsonl &&
	ghist >hist.json &&
	jcheck hist.json "[r[\"status\"] for r in d if r[\"version\"] == \"v3\"][0] == \"rolled_back\""
'

test_expect_success 'a viewer sees whether a check passed, never its output' '
	"$GANTRY" user add val --role viewer >val.token &&
	GANTRY_TOKEN=$(cat val.token) "$GANTRY" deployments hello --env staging -o json >v.json &&
	jcheck v.json "all(c[\"output\"] == \"(hidden: needs role deployer)\" for r in d for c in r[\"checks\"] if \"output\" in c)" &&
	jcheck v.json "any(r[\"checks\"] for r in d)" &&
	"$GANTRY" deployments hello --env staging -o json >a.json &&
	jcheck a.json "any(\"smoke test found a broken checkout\" in c.get(\"output\", \"\") for r in d for c in r[\"checks\"])"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
