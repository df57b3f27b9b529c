#!/bin/sh
test_description='release gates once: one approval covers every service of a release; a freeze refuses it as a whole; a freeze opened mid-release does not stop it'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# $1: the MARK of both services, $2: a's readiness delay (ms)
gates_spec() {
	write_svc_spec <<-EOF
	project: t
	environments:
	  staging:
	    protection: { freeze_on_incident: [P0] }
	  production:
	    protection: { approvals: 1, approval_ttl: 1h, freeze_on_incident: [P0] }
	services:
	  a:
	    artifact: app
	    run: ./hello
	    env: { MARK: "$1", READY_DELAY_MS: "$2" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 60s
	  b:
	    artifact: app
	    run: ./hello
	    depends_on: [a]
	    env: { MARK: "$1" }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 60s
	EOF
}

test_expect_success 'setup: production needs one approval; alice (an approver) releases, bob approves' '
	gates_spec one 0 &&
	start_serve &&
	"$GANTRY" user add alice --role approver >alice.token &&
	"$GANTRY" user add bob --role approver >bob.token
'

test_expect_success 'a release of production asks one approval for the release, services listed (exit 3)' '
	as alice test_expect_code 3 "$GANTRY" release --env production >out 2>err &&
	cat out err &&
	grep "waiting for approval: release 1 of production (a, b)" err &&
	grep "gantry approve 1" err &&
	"$GANTRY" approve -o json >pending.json &&
	jcheck pending.json "len(d) == 1 and d[0][\"id\"] == 1 and d[0][\"kind\"] == \"release\" and d[0][\"version\"] == \"release 1 (a, b)\"" &&
	rstatus 1 production "d[\"state\"] == \"pending\" and d[\"gates\"][\"result\"] == \"pending_approval\" and d[\"gates\"][\"approval\"] == 1 and [s[\"state\"] for s in d[\"services\"]] == [\"waiting\", \"waiting\"]"
'

test_expect_success 'nothing runs while it waits' '
	test_must_fail "$GANTRY" status a --env production 2>err &&
	grep "never been deployed" err &&
	"$GANTRY" deployments -o json >d.json &&
	jcheck d.json "[x[\"kind\"] for x in d] == [\"release\"]"
'

test_expect_success 'the requester cannot approve it; one approval by bob starts the whole release' '
	as alice test_expect_code 3 "$GANTRY" approve 1 2>err &&
	grep "cannot approve it" err &&
	as bob "$GANTRY" approve 1 >out &&
	cat out &&
	grep "deployment 1 approved (1 of 1): release 1 starts" out &&
	wait_for 90 "rstatus 1 production \"d[\\\"state\\\"] not in (\\\"running\\\", \\\"pending\\\")\"" &&
	rstatus 1 production "d[\"state\"] == \"succeeded\" and d[\"gates\"][\"result\"] == \"approved\""
'

test_expect_success 'each service deployed without an approval of its own: its gates name the release' '
	"$GANTRY" deployments -o json >d.json &&
	jcheck d.json "sorted((x[\"kind\"], x[\"service\"], x[\"state\"]) for x in d) == [(\"deploy\", \"a\", \"succeeded\"), (\"deploy\", \"b\", \"succeeded\"), (\"release\", \"\", \"started\")]" &&
	jcheck d.json "all(x[\"gates\"][\"approvals\"] == \"release 1\" and x[\"approvals\"] == [] for x in d if x[\"kind\"] == \"deploy\")" &&
	"$GANTRY" approve -o json >pending.json &&
	jcheck pending.json "d == []"
'

test_expect_success 'a rejected release ends there: nothing deployed' '
	gates_spec two 0 &&
	as alice test_expect_code 3 "$GANTRY" release --env production 2>err &&
	grep "waiting for approval: release 2 of production (a, b): deployment 4" err &&
	as bob "$GANTRY" reject 4 --comment "not today" &&
	wait_for 20 "rstatus 2 production \"d[\\\"state\\\"] == \\\"rejected\\\"\"" &&
	rstatus 2 production "\"not today\" in d[\"message\"] and [s[\"state\"] for s in d[\"services\"]] == [\"waiting\", \"waiting\"]" &&
	"$GANTRY" status a --env production -o json >a.json &&
	jcheck a.json "d[\"target_revision\"] == 1"
'

test_expect_success 'an open P0 refuses a release as a whole (exit 3): recorded, nothing started' '
	"$GANTRY" release --env staging --wait >out 2>err &&
	"$GANTRY" incident open -s P0 -t "checkout down" --env staging >/dev/null &&
	gates_spec three 0 &&
	test_expect_code 3 "$GANTRY" release --env staging 2>err &&
	cat err &&
	grep "release 4 refused by the gates: a: .*frozen by open incident" err &&
	rstatus 4 staging "d[\"state\"] == \"refused\" and d[\"gates\"][\"result\"] == \"refused\" and all(s[\"deployment\"] == 0 for s in d[\"services\"])" &&
	"$GANTRY" incident close 1 >/dev/null
'

test_expect_success 'a P0 opened while a release runs does not stop it halfway: decided at its start' '
	gates_spec four 8000 &&
	"$GANTRY" release --env staging >out &&
	grep "release 5 of staging started" out &&
	"$GANTRY" incident open -s P0 -t "search down" --env staging >/dev/null &&
	rstatus 5 staging "[(s[\"service\"], s[\"state\"]) for s in d[\"services\"]] == [(\"a\", \"deploying\"), (\"b\", \"waiting\")]" &&
	test_expect_code 3 "$GANTRY" deploy b --env staging --version x 2>err &&
	grep "frozen by open incident" err &&
	wait_for 90 "rstatus 5 staging \"d[\\\"state\\\"] != \\\"running\\\"\"" &&
	rstatus 5 staging "d[\"state\"] == \"succeeded\" and [s[\"state\"] for s in d[\"services\"]] == [\"succeeded\", \"succeeded\"]" &&
	"$GANTRY" deployments -o json >d.json &&
	jcheck d.json "[x[\"gates\"][\"freeze\"] for x in d if x[\"service\"] == \"b\" and x[\"environment\"] == \"staging\" and x[\"state\"] == \"succeeded\"][0] == \"release 5\""
'

test_expect_success 'events: approval requested, release started and succeeded' '
	"$GANTRY" events --env production >ev.txt &&
	grep "approval_requested.*release 1 of production" ev.txt &&
	grep "release_started.*release 1" ev.txt &&
	grep "release_succeeded.*release 1" ev.txt
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
