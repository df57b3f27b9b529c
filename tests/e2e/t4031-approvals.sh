#!/bin/sh
test_description='approvals: the rollout waits in pending_approval for N distinct approvers other than the requester; reject; expiry'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

ENV=production
HOST=hello.production.localhost

as() {
	_who=$1
	shift
	GANTRY_TOKEN=$(cat "$TRASH/$_who.token") "$@"
}

test_expect_success 'setup: production needs 2 approvals; users' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  production:
	    protection: { approvals: 2, approval_ttl: 1h }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
	start_serve &&
	for u in alice bob carol; do "$GANTRY" user add $u --role approver >$u.token || return 1; done &&
	"$GANTRY" user add dave --role deployer >dave.token
'

test_expect_success 'a deploy waits for approval: exit 3, listed by gantry approve' '
	as alice test_expect_code 3 "$GANTRY" deploy hello --env production --version v1 2>err &&
	grep "waiting for approval: deployment 1" err &&
	grep "gantry approve 1" err &&
	"$GANTRY" approve >pending &&
	grep "alice" pending | grep "0/2" &&
	ghist >hist.json &&
	jcheck hist.json "d == []"
'

test_expect_success 'status shows the first deploy waiting (nothing serves yet)' '
	st_check "d[\"phase\"] == \"pending_approval\" and d[\"rollout\"] is None and d[\"pending\"][\"deployment\"] == 1
		and d[\"stable_revision\"] is None and \"gantry approve 1\" in d[\"pending\"][\"message\"]" &&
	"$GANTRY" status >st.txt &&
	cat st.txt &&
	grep "pending_approval" st.txt &&
	grep "gantry approve 1" st.txt
'

test_expect_success 'the requester cannot approve their own deploy; a deployer cannot approve' '
	as alice test_expect_code 3 "$GANTRY" approve 1 2>err &&
	grep "cannot approve it" err &&
	as dave test_expect_code 3 "$GANTRY" approve 1 2>err &&
	grep "permission denied" err
'

test_expect_success 'one approval is not enough, nor the same approver twice' '
	as bob "$GANTRY" approve 1 >out &&
	grep "approved (1 of 2)" out &&
	as bob "$GANTRY" approve 1 >out &&
	grep "approved (1 of 2)" out &&
	"$GANTRY" approve -o json >pending.json &&
	jcheck pending.json "len(d) == 1 and d[0][\"id\"] == 1 and [a[\"by\"] for a in d[0][\"approvals\"]] == [\"bob\"]"
'

test_expect_success 'a second distinct approver starts the rollout' '
	as carol "$GANTRY" approve 1 --comment "looks good" >out &&
	grep "rollout .* started, revision 1 (version v1)" out &&
	wait_for 30 "st_check \"d[\\\"phase\\\"] == \\\"healthy\\\" and d[\\\"stable_revision\\\"] == 1\"" &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"version\"] == \"v1\" and d[0][\"deployed_by\"] == \"alice\"" &&
	test_expect_code 2 "$GANTRY" approve 1
'

test_expect_success 'reject ends a waiting deploy' '
	as dave test_expect_code 3 "$GANTRY" deploy hello --env production --version v2 2>err &&
	grep "deployment 2" err &&
	st_check "d[\"pending\"][\"phase\"] == \"pending_approval\" and d[\"pending\"][\"deployment\"] == 2
		and d[\"rollout\"][\"id\"] == 1 and d[\"version\"] == \"v1\"" &&
	as bob "$GANTRY" reject 2 --comment "not on a Friday" &&
	as carol test_expect_code 2 "$GANTRY" approve 2 2>err &&
	grep "rejected" err &&
	st_check "d[\"version\"] == \"v1\" and d[\"rollout\"][\"phase\"] == \"complete\""
'

test_expect_success 'approvals are audited; rollbacks need none' '
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "[(e[\"actor\"], e[\"target\"]) for e in d if e[\"action\"] == \"approve\"]
		== [(\"bob\", \"deployment 1\"), (\"bob\", \"deployment 1\"), (\"carol\", \"deployment 1\")]" &&
	jcheck audit.json "any(e[\"action\"] == \"reject\" and e[\"actor\"] == \"bob\" for e in d)"
'

test_expect_success 'a deploy waiting longer than approval_ttl expires' '
	as dave test_expect_code 3 "$GANTRY" deploy hello --env production --version v3 2>err &&
	grep "deployment 3" err &&
	stop_serve &&
	GANTRY_NOW=$(python3 -c "import datetime; print((datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)).strftime(\"%Y-%m-%dT%H:%M:%SZ\"))") start_serve &&
	as bob test_expect_code 3 "$GANTRY" approve 3 2>err &&
	grep "expired" err
'

test_expect_success 'history shows each revision with its deployment record; --all adds the ones that made none' '
	"$GANTRY" history hello --env production -o json >h.json &&
	jcheck h.json "len(d) == 1 and d[0][\"revision\"] == 1 and d[0][\"deployment\"][\"id\"] == 1
		and d[0][\"deployment\"][\"requester\"] == \"alice\" and d[0][\"deployment\"][\"result\"] == \"succeeded\"
		and sorted(a[\"by\"] for a in d[0][\"deployment\"][\"approvals\"]) == [\"bob\", \"carol\"]
		and d[0][\"deployment\"][\"gates\"][\"approvals\"] == \"passed\" and d[0][\"deployment\"][\"strategy\"] == \"rolling\"" &&
	"$GANTRY" history hello --env production --all -o json >h.json &&
	jcheck h.json "[(e[\"revision\"], e[\"status\"]) for e in d] == [(1, \"serving\"), (None, \"expired\"), (None, \"rejected\")]" &&
	"$GANTRY" history hello --env production --all >h.txt &&
	cat h.txt &&
	grep "^1 .* alice .* succeeded .*approvals passed (bob, carol)" h.txt &&
	grep "^- .* rejected" h.txt
'

test_expect_success 'stop' '
	stop_serve
'

test_done
