#!/bin/sh
test_description='gantry promote: the staging artifact (same digest, same version) goes to production; unpromoted or unhealthy revisions are refused'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

ENV=production
HOST=hello.production.localhost

test_expect_success 'setup: production promoted from staging; a soak-guarded environment' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	  production:
	    replicas: 2
	    promote_from: staging
	  eu:
	    promote_from: staging
	    min_soak: 1h
	services:
	  hello:
	    artifact: app
	    run: echo "GREETING=\$GREETING"; exec ./hello
	    env: { GREETING: hi }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    environments:
	      production: { env: { GREETING: hello-prod } }
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait
'

test_expect_success 'promote: same digest and version, production config' '
	"$GANTRY" promote hello --from staging --to production --wait >out &&
	grep "promoting hello revision 1 of staging (version v1" out &&
	"$GANTRY" history hello --env staging -o json >s.json &&
	ghist >p.json &&
	python3 -c "import json; s = json.load(open(\"s.json\"))[0]; p = json.load(open(\"p.json\"))[0]
assert (p[\"digest\"], p[\"version\"]) == (s[\"digest\"], s[\"version\"]), (p, s)" &&
	st_check "d[\"phase\"] == \"healthy\" and len(d[\"replicas\"]) == 2" &&
	"$GANTRY" logs hello --env production --revision 1 >logs &&
	grep "GREETING=hello-prod" logs
'

test_expect_success 'promoting a revision that is not serving in staging is refused (exit 3)' '
	echo changed >>app/hello.txt &&
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	test_expect_code 3 "$GANTRY" promote hello --from staging --to production --revision 1 2>err &&
	grep "not serving healthily" err &&
	test_expect_code 2 "$GANTRY" promote hello --from staging --to production --revision 9 2>err &&
	test_expect_code 2 "$GANTRY" promote hello --from staging --to staging 2>err
'

test_expect_success 'promoting from an environment where nothing serves is refused' '
	test_expect_code 3 "$GANTRY" promote hello --from eu --to production 2>err &&
	grep "never served healthily in eu" err
'

test_expect_success 'an artifact never deployed to staging cannot be deployed to production' '
	echo "not in staging" >>app/hello.txt &&
	test_expect_code 3 "$GANTRY" deploy hello --env production --version v3 2>err &&
	grep "never deployed to staging" err &&
	ghist >p.json &&
	jcheck p.json "len(d) == 1"
'

test_expect_success 'min_soak: a revision that served for less is refused with the time left' '
	test_expect_code 3 "$GANTRY" promote hello --from staging --to eu 2>err &&
	grep "needs min_soak 1h" err &&
	grep "try again in" err
'

test_expect_success 'the promotion is a deployment record of kind promote' '
	"$GANTRY" promote hello --from staging --to production --wait &&
	python3 - "$GANTRY_HOME/api.sock" <<-PY >records.json &&
	import json, socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.connect(sys.argv[1])
	s.sendall(json.dumps({"op": "deployments", "service": "hello", "environment": "production"}).encode() + b"\n")
	data = b""
	while True:
	    chunk = s.recv(65536)
	    if not chunk:
	        break
	    data += chunk
	print(json.dumps(json.loads(data)["deployments"]))
	PY
	jcheck records.json "d[0][\"kind\"] == \"promote\" and d[0][\"version\"] == \"v2\" and d[0][\"gates\"][\"promotion\"] == \"passed\"
		and d[0][\"result\"] == \"succeeded\" and d[0][\"revision\"] == 2"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
