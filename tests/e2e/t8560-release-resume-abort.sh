#!/bin/sh
test_description='a paused release: resume retries the failed service and goes on; abort rolls back what it changed, in reverse dependency order; roles, audit, events'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# a → b → c, on_failure pause; the pre-check of b (c) fails while $TRASH/hold-b (hold-c) exists.
# $1: the MARK of every service
chain_spec() {
	write_release_chain "env: { MARK: \"$1\" }" a "b held" "c held" <<-EOF
	project: t
	release: { on_failure: pause }
	environments:
	  staging: {}
	EOF
}

test_expect_success 'setup: the first release deploys a, b, c' '
	chain_spec one &&
	start_serve &&
	"$GANTRY" user add vic --role viewer >vic.token &&
	"$GANTRY" user add sam --role deployer --service a >sam.token &&
	"$GANTRY" release --env staging --wait >out &&
	rstatus 1 staging "d[\"state\"] == \"succeeded\""
'

test_expect_success 'the pre-check of b fails: release 2 pauses, a keeps its new revision, c waits' '
	chain_spec two &&
	: >hold-b &&
	test_expect_code 1 "$GANTRY" release --env staging --wait >out &&
	cat out &&
	rstatus 2 staging "d[\"state\"] == \"paused\" and {s[\"service\"]: s[\"state\"] for s in d[\"services\"]} == {\"a\": \"succeeded\", \"b\": \"failed\", \"c\": \"waiting\"}" &&
	rstatus 2 staging "\"pre-deployment check failed\" in d[\"services\"][1][\"message\"]"
'

test_expect_success 'resume and abort need a deployer in scope for every service; only what is paused resumes' '
	as vic test_expect_code 3 "$GANTRY" release resume 2 --env staging 2>err &&
	grep "permission denied" err &&
	as sam test_expect_code 3 "$GANTRY" release abort 2 --env staging 2>err &&
	grep "permission denied: sam .* cannot abort release 2 of b@staging" err &&
	test_expect_code 2 "$GANTRY" release resume 1 --env staging 2>err &&
	grep "release 1 is succeeded: only a paused release can be resumed" err &&
	test_expect_code 2 "$GANTRY" release resume 9 --env staging 2>err &&
	grep "no release 9 in staging" err &&
	rstatus 2 staging "d[\"state\"] == \"paused\""
'

test_expect_success 'resume: b is tried again (its pre-check passes now), then c; the release succeeds' '
	rm hold-b &&
	"$GANTRY" release resume 2 --env staging --reason "hold lifted" --wait >out &&
	cat out &&
	grep "^release 2 of staging: running" out &&
	rstatus 2 staging "d[\"state\"] == \"succeeded\" and [s[\"state\"] for s in d[\"services\"]] == [\"succeeded\", \"succeeded\", \"succeeded\"]" &&
	rstatus 2 staging "[s[\"revision\"] for s in d[\"services\"]] == [2, 2, 2]" &&
	"$GANTRY" status c --env staging -o json >c.json &&
	jcheck c.json "d[\"stable_revision\"] == 2"
'

test_expect_success 'the pre-check of c fails: release 3 pauses with a and b changed' '
	chain_spec three &&
	: >hold-c &&
	test_expect_code 1 "$GANTRY" release --env staging --wait >out &&
	rstatus 3 staging "d[\"state\"] == \"paused\" and [s[\"state\"] for s in d[\"services\"]] == [\"succeeded\", \"succeeded\", \"failed\"]"
'

test_expect_success 'abort: b is rolled back first, then a, each to the revision it replaced' '
	"$GANTRY" release abort 3 --env staging --reason "bad batch" --wait >out &&
	cat out &&
	grep "^release 3 staging: rolled_back (aborted by .*: what the release changed was rolled back)" out &&
	rstatus 3 staging "[s[\"state\"] for s in d[\"services\"]] == [\"rolled_back\", \"rolled_back\", \"failed\"]" &&
	rstatus 3 staging "d[\"services\"][1][\"rollback_deployment\"] < d[\"services\"][0][\"rollback_deployment\"]" &&
	for s in a b; do
		"$GANTRY" history $s --env staging -o json >h.json &&
		jcheck h.json "d[0][\"kind\"] == \"rollback\" and d[0][\"source\"] == 2 and d[1][\"status\"] == \"rolled_back\"" || return 1
	done &&
	"$GANTRY" status c --env staging -o json >c.json &&
	jcheck c.json "d[\"target_revision\"] == 2"
'

test_expect_success 'b went back before a: the rollback of b ended before the rollback of a started' '
	"$GANTRY" deployments -o json >d.json &&
	jcheck d.json "[(x[\"service\"]) for x in sorted(d, key=lambda x: x[\"id\"]) if x[\"kind\"] == \"rollback\"] == [\"b\", \"a\"]" &&
	python3 -c "
import json
d = {x[\"id\"]: x for x in json.load(open(\"d.json\"))}
r = json.load(open(\"rs.json\"))[\"services\"]
b, a = d[r[1][\"rollback_deployment\"]], d[r[0][\"rollback_deployment\"]]
assert b[\"ended_at\"] <= a[\"started_at\"], (b, a)
"
'

test_expect_success 'nothing left to abort or resume' '
	test_expect_code 2 "$GANTRY" release abort 3 --env staging 2>err &&
	grep "release 3 is rolled_back" err
'

test_expect_success 'audit and events name who resumed and aborted, and why' '
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "[(e[\"action\"], e[\"details\"][\"id\"], e[\"details\"][\"reason\"]) for e in d if e[\"action\"] in (\"release_resume\", \"release_abort\")] == [(\"release_resume\", 2, \"hold lifted\"), (\"release_abort\", 3, \"bad batch\")]" &&
	"$GANTRY" events --env staging >ev.txt &&
	grep "release_resumed.*release 2: resumed by .*: hold lifted" ev.txt &&
	grep "release_aborted.*release 3: aborted by .*: bad batch" ev.txt &&
	grep "release_rolled_back.*release 3" ev.txt
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
