#!/bin/sh
test_description='rollback_on after a rolling deploy: armed during the rollout and for watch after it'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl
require_gantry

test_expect_success 'setup: v1 serving, client load' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 2s
	    rollback_on: [ "error_rate > 5% for 2s" ]
	    watch: 20s
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null &&
	start_load watch
'

test_expect_success 'a bad release that completes its rolling deploy is rolled back within watch' '
	"$GANTRY" deploy hello --env staging --version v2 --set env.FAIL_RATE=0.3 --wait &&
	wait_for 15 "st_check \"d[\\\"stable_revision\\\"] == 3 and d[\\\"phase\\\"] == \\\"rolled_back\\\"\" >/dev/null" &&
	st_check "\"error_rate\" in d[\"message\"] and all(r[\"revision\"] == 3 for r in d[\"replicas\"])" &&
	ghist >h.json &&
	jcheck h.json "d[0][\"kind\"] == \"rollback\" and d[0][\"deployed_by\"] == \"gantry\" and d[0][\"version\"] == \"v1\"" &&
	jcheck h.json "d[1][\"revision\"] == 2 and d[1][\"status\"] == \"rolled_back\"" &&
	pget / >body && grep "v1" body
'

test_expect_success 'the restored revision is not watched into a loop, and a good release stays' '
	"$GANTRY" deploy hello --env staging --version v4 --wait &&
	sleep 3 &&
	st_check "d[\"stable_revision\"] == 4 and d[\"phase\"] == \"healthy\"" &&
	stop_load watch &&
	python3 -c "import json,sys; d=json.load(open(\"$TRASH/watch.json\")); sys.exit(0 if d[\"requests\"] > 0 else 1)"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
