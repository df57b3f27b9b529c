#!/bin/sh
test_description='gantry dora: the four figures on a scripted history of deploys, a rollback and an incident'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: spec, daemon' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	  production: {}
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
	start_serve
'

test_expect_success 'history: three deploys to production, the third rolled back by hand' '
	"$GANTRY" deploy hello --env production --version v1 --wait &&
	"$GANTRY" deploy hello --env production --version v2 --wait &&
	"$GANTRY" deploy hello --env production --version v3 --wait &&
	"$GANTRY" rollback hello --env production --wait &&
	"$GANTRY" deploy hello --env staging --version v1 --wait
'

test_expect_success 'dora -o json: frequency, failure rate and time to restore per service environment' '
	"$GANTRY" dora --since 1d -o json >dora.json &&
	jcheck dora.json "sorted((x[\"service\"], x[\"environment\"]) for x in d[\"dora\"]) == [(\"hello\", \"production\"), (\"hello\", \"staging\")]" &&
	jcheck dora.json "[x for x in d[\"dora\"] if x[\"environment\"] == \"production\"][0][\"deployment_frequency\"][\"deployments\"] == 3" &&
	jcheck dora.json "[x for x in d[\"dora\"] if x[\"environment\"] == \"production\"][0][\"change_failure_rate\"] ==
		{\"failures\": 1, \"finished\": 3, \"rate\": 1 / 3}" &&
	jcheck dora.json "[x for x in d[\"dora\"] if x[\"environment\"] == \"production\"][0][\"time_to_restore\"][\"restored\"] == 1" &&
	jcheck dora.json "[x for x in d[\"dora\"] if x[\"environment\"] == \"production\"][0][\"time_to_restore\"][\"median_seconds\"] >= 0" &&
	jcheck dora.json "[x for x in d[\"dora\"] if x[\"environment\"] == \"staging\"][0][\"change_failure_rate\"][\"rate\"] == 0" &&
	jcheck dora.json "d[\"since\"] < d[\"until\"]"
'

test_expect_success 'an incident after a deploy counts against it until it is closed' '
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	sleep 1 && # incidents are stamped in whole seconds
	"$GANTRY" incident open -s P2 -t "errors after v2" --env staging >/dev/null &&
	"$GANTRY" dora --env staging -o json >dora.json &&
	jcheck dora.json "d[\"dora\"][0][\"change_failure_rate\"][\"failures\"] == 1 and d[\"dora\"][0][\"time_to_restore\"][\"unrestored\"] == 1" &&
	"$GANTRY" incident close 1 >/dev/null &&
	"$GANTRY" dora --env staging -o json >dora.json &&
	jcheck dora.json "d[\"dora\"][0][\"time_to_restore\"][\"restored\"] == 1 and d[\"dora\"][0][\"time_to_restore\"][\"unrestored\"] == 0"
'

test_expect_success 'filters and the table' '
	"$GANTRY" dora hello --env production >table &&
	grep "hello@production" table &&
	! grep "hello@staging" table &&
	test_expect_code 2 "$GANTRY" dora --since yesterday
'

test_expect_success 'stop' '
	stop_serve
'

test_done
