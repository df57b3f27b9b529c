#!/bin/sh
test_description='release.on_failure: pause leaves what went out as it is; continue goes on beside the failed service'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms

# $1: on_failure, $2: b's env, $3: the MARK of a and c
spec() {
	write_svc_spec <<-EOF
	project: t
	release: { on_failure: $1 }
	environments:
	  staging: {}
	services:
	  a:
	    artifact: app
	    run: ./hello
	    env: { MARK: "$3" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	  b:
	    artifact: app
	    run: ./hello
	    depends_on: [a]
	    env: $2
	    probes:
	      readiness: { http: /ready, period: 100ms }
	  c:
	    artifact: app
	    run: ./hello
	    depends_on: [a]
	    env: { MARK: "$3" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	  d:
	    artifact: app
	    run: ./hello
	    depends_on: [b]
	    env: { MARK: "$3" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	EOF
}

test_expect_success 'setup: a first release of a; b, c (level 1); d (after b)' '
	spec pause "{ MARK: one }" one &&
	start_serve &&
	"$GANTRY" release --env staging --wait >out &&
	cat out
'

test_expect_success 'pause: b crash-loops, the release is paused, a and c keep the new revision, d never starts' '
	spec pause "{ MARK: two, CRASH_AFTER_S: \"0\" }" two &&
	test_expect_code 1 "$GANTRY" release --env staging --wait >out &&
	cat out &&
	"$GANTRY" release status --env staging -o json >r.json &&
	jcheck r.json "d[\"state\"] == \"paused\" and d[\"on_failure\"] == \"pause\"" &&
	jcheck r.json "{s[\"service\"]: (s[\"state\"], s[\"revision\"]) for s in d[\"services\"]} == {\"a\": (\"succeeded\", 2), \"b\": (\"failed\", 2), \"c\": (\"succeeded\", 2), \"d\": (\"waiting\", 0)}" &&
	"$GANTRY" status a --env staging -o json >a.json &&
	jcheck a.json "d[\"target_revision\"] == 2"
'

test_expect_success 'continue: b fails again, d (after b) is skipped, the release fails' '
	spec continue "{ MARK: three, CRASH_AFTER_S: \"0\" }" three &&
	test_expect_code 1 "$GANTRY" release --env staging --wait >out &&
	cat out &&
	"$GANTRY" release status --env staging -o json >r.json &&
	jcheck r.json "d[\"state\"] == \"failed\" and d[\"on_failure\"] == \"continue\"" &&
	jcheck r.json "{s[\"service\"]: s[\"state\"] for s in d[\"services\"]} == {\"a\": \"succeeded\", \"b\": \"failed\", \"c\": \"succeeded\", \"d\": \"skipped\"}"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
