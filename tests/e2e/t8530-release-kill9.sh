#!/bin/sh
test_description='kill -9 of gantry serve mid-release: the restarted controller resumes the release from its record'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms

test_expect_success 'setup: a → b → c, b takes 4 s to get ready' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  a:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	  b:
	    artifact: app
	    run: ./hello
	    depends_on: [a]
	    env: { READY_DELAY_MS: "4000" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	  c:
	    artifact: app
	    run: ./hello
	    depends_on: [b]
	    probes:
	      readiness: { http: /ready, period: 100ms }
	EOF
	start_serve
'

rel_check() {
	"$GANTRY" release status 1 --env staging -o json >rel.json 2>/dev/null &&
	python3 -c "import json,sys; d = json.load(open(\"rel.json\")); s = {x[\"service\"]: x for x in d[\"services\"]}; sys.exit(0 if ($1) else 1)"
}

test_expect_success 'release without --wait; kill -9 while b is deploying' '
	"$GANTRY" release --env staging >out &&
	grep "^release 1 of staging started" out &&
	wait_for 20 "rel_check \"s[\\\"b\\\"][\\\"state\\\"] == \\\"deploying\\\"\"" &&
	kill9_serve &&
	jcheck rel.json "d[\"state\"] == \"running\" and d[\"services\"][2][\"state\"] == \"waiting\""
'

test_expect_success 'serve starts again: the release goes on to c and succeeds' '
	start_serve &&
	wait_for 40 "rel_check \"d[\\\"state\\\"] != \\\"running\\\"\"" &&
	cat rel.json &&
	jcheck rel.json "d[\"state\"] == \"succeeded\"" &&
	jcheck rel.json "[(s[\"service\"], s[\"state\"], s[\"revision\"]) for s in d[\"services\"]] == [(\"a\", \"succeeded\", 1), (\"b\", \"succeeded\", 1), (\"c\", \"succeeded\", 1)]"
'

test_expect_success 'nothing was deployed twice: one revision and one ready replica per service' '
	for svc in a b c; do
		"$GANTRY" history $svc --env staging -o json >h.json &&
		jcheck h.json "[r[\"revision\"] for r in d] == [1]" &&
		"$GANTRY" status $svc --env staging -o json >st.json &&
		jcheck st.json "[(r[\"revision\"], r[\"ready\"]) for r in d[\"replicas\"]] == [(1, True)]" || return 1
	done
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
