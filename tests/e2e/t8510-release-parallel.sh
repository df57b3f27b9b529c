#!/bin/sh
test_description='a release deploys the two services of level 1 at once, after level 0'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms

# $1: the MARK every service carries in its env
par_spec() {
	write_svc_spec <<-EOF
	project: t
	environments:
	  staging: {}
	services:
	  a:
	    artifact: app
	    run: ./hello
	    env: { MARK: "$1" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	  b1:
	    artifact: app
	    run: ./hello
	    depends_on: [a]
	    env: { READY_DELAY_MS: "2000", MARK: "$1" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	  b2:
	    artifact: app
	    run: ./hello
	    depends_on: [a]
	    env: { READY_DELAY_MS: "2000", MARK: "$1" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	EOF
}

test_expect_success 'setup: a; b1 and b2 depend on a and take 2 s to get ready' '
	par_spec one &&
	start_serve
'

test_expect_success 'release --wait -o json: succeeded, levels 0, 1, 1' '
	"$GANTRY" release --env staging --wait -o json >r.json &&
	jcheck r.json "d[\"state\"] == \"succeeded\"" &&
	jcheck r.json "sorted((s[\"service\"], s[\"level\"], s[\"state\"]) for s in d[\"services\"]) == [(\"a\", 0, \"succeeded\"), (\"b1\", 1, \"succeeded\"), (\"b2\", 1, \"succeeded\")]"
'

test_expect_success 'b1 and b2 ran at the same time, both after a had finished' '
	jcheck r.json "(lambda s: s[\"b1\"][\"started_at\"] >= s[\"a\"][\"ended_at\"] and s[\"b2\"][\"started_at\"] >= s[\"a\"][\"ended_at\"] and s[\"b1\"][\"started_at\"] < s[\"b2\"][\"ended_at\"] and s[\"b2\"][\"started_at\"] < s[\"b1\"][\"ended_at\"])({x[\"service\"]: x for x in d[\"services\"]})" &&
	python3 -c "
import json
d = json.load(open(\"r.json\")); s = {x[\"service\"]: x for x in d[\"services\"]}
for n in sorted(s): print(\"figure: %s deployed in %d ms\" % (n, s[n][\"ended_at\"] - s[n][\"started_at\"]))
print(\"figure: level 1 (b1, b2) took %d ms\" % (max(s[n][\"ended_at\"] for n in (\"b1\", \"b2\")) - min(s[n][\"started_at\"] for n in (\"b1\", \"b2\"))))
"
'

test_expect_success 'only the named: with every service changed, release b1 deploys b1 alone' '
	par_spec two &&
	"$GANTRY" validate &&
	"$GANTRY" release --env staging b1 --wait -o json >r2.json &&
	jcheck r2.json "[(s[\"service\"], s[\"state\"], s[\"revision\"]) for s in d[\"services\"]] == [(\"b1\", \"succeeded\", 2)]" &&
	"$GANTRY" status a --env staging -o json >a.json &&
	jcheck a.json "d[\"target_revision\"] == 1" &&
	"$GANTRY" status b2 --env staging -o json >b2.json &&
	jcheck b2.json "d[\"target_revision\"] == 1"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
