#!/bin/sh
test_description='who may decide a release: an approver scoped to some of its services cannot approve or reject it (one whose scope covers every service may); a viewer cannot resume or abort a paused one; a raw deploy naming a release to pass on its gates is refused; each refusal changes nothing'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# production needs one approval; a release pauses when a service fails;
# b (after a) fails its pre-check while $TRASH/hold-b exists. $1: the MARK of both
release_spec() {
	write_release_chain "env: { MARK: \"$1\" }" a "b held" <<-EOF
	project: t
	release: { on_failure: pause }
	environments:
	  staging: {}
	  production:
	    protection: { approvals: 1, approval_ttl: 1h }
	EOF
}

# rsnap NAME ID ENV: what a refused decision on release ID must not change
# (NAME.release, NAME.deployments, NAME.audit: the audit but its "refused"
# entries, since a refusal is audited: see refused_by)
rsnap() {
	"$GANTRY" release status "$2" --env "$3" -o json >"$1.release" &&
	"$GANTRY" deployments -o json >"$1.deployments" &&
	"$GANTRY" audit -o json >"$TRASH/audit.json" &&
	python3 -c "import json, sys
print(json.dumps([e for e in json.load(open(sys.argv[1])) if e[\"action\"] != \"refused\"], indent=1))" \
		"$TRASH/audit.json" >"$1.audit"
}

# rsame BEFORE AFTER ID ENV: a new snapshot AFTER is BEFORE
rsame() {
	rsnap "$2" "$3" "$4" &&
	test_cmp "$1.release" "$2.release" &&
	test_cmp "$1.deployments" "$2.deployments" &&
	test_cmp "$1.audit" "$2.audit"
}

# refused_by USER OP: the newest audit entry is USER's refused OP
refused_by() {
	"$GANTRY" audit -o json >"$TRASH/audit.json" &&
	jcheck "$TRASH/audit.json" "d[-1][\"actor\"] == \"$1\" and d[-1][\"action\"] == \"refused\" and d[-1][\"details\"][\"op\"] == \"$2\""
}

test_expect_success 'setup: a viewer, a staging deployer, approvers scoped to service a, to services a and b, to production; release 1 of production, with a changed spec, waits for approval' '
	release_spec one &&
	start_serve &&
	"$GANTRY" user add vic --role viewer >vic.token &&
	"$GANTRY" user add ana --role deployer --env staging >ana.token &&
	"$GANTRY" user add pat --role approver --service a >pat.token &&
	"$GANTRY" user add abe --role approver --service a,b >abe.token &&
	"$GANTRY" user add eve --role approver --env production >eve.token &&
	release_spec two &&
	test_expect_code 3 "$GANTRY" release --env production 2>err &&
	cat err &&
	grep "waiting for approval: release 1 of production (a, b): deployment 1" err &&
	rstatus 1 production "d[\"state\"] == \"pending\" and d[\"gates\"][\"result\"] == \"pending_approval\" and d[\"gates\"][\"approval\"] == 1" &&
	rsnap rel1 1 production
'

test_expect_success 'an approver scoped to service a cannot approve or reject the release of a and b (exit 3): it still waits, nothing deployed' '
	as pat test_expect_code 3 "$GANTRY" approve 1 2>err &&
	cat err &&
	grep "permission denied: pat (role approver for services a) cannot approve deployment 1 of every service in production" err &&
	refused_by pat approve &&
	as pat test_expect_code 3 "$GANTRY" reject 1 --comment no 2>err &&
	grep "permission denied: pat (role approver for services a) cannot reject deployment 1 of every service in production" err &&
	refused_by pat reject &&
	rsame rel1 after1 1 production &&
	jcheck after1.release "all(s[\"state\"] == \"waiting\" for s in d[\"services\"])" &&
	test_must_fail "$GANTRY" status a --env production 2>err &&
	grep "a@production has never been deployed" err
'

test_expect_success 'an approver scoped to the list of its services is refused too: a release approval is for every service (docs/security.md)' '
	as abe test_expect_code 3 "$GANTRY" approve 1 2>err &&
	grep "permission denied: abe (role approver for services a,b) cannot approve deployment 1 of every service in production" err &&
	refused_by abe approve &&
	rsame rel1 after2 1 production
'

test_expect_success 'an approver whose scope covers every service of production approves it: the release runs with the spec it carried' '
	as eve "$GANTRY" approve 1 >out &&
	cat out &&
	grep "deployment 1 approved (1 of 1): release 1 starts" out &&
	wait_for 60 "rstatus 1 production \"d[\\\"state\\\"] not in (\\\"running\\\", \\\"pending\\\")\"" &&
	rstatus 1 production "d[\"state\"] == \"succeeded\" and d[\"gates\"][\"result\"] == \"approved\"" &&
	"$GANTRY" spec show >spec.txt &&
	grep "MARK: \"two\"" spec.txt &&
	"$GANTRY" status b --env production -o json >b.json &&
	jcheck b.json "d[\"stable_revision\"] == 1 and d[\"replicas\"][0][\"state\"] == \"ready\""
'

test_expect_success 'the pre-check of b fails: release 2 of staging pauses, a deployed, b never' '
	: >hold-b &&
	test_expect_code 1 "$GANTRY" release --env staging --wait >out &&
	cat out &&
	rstatus 2 staging "d[\"state\"] == \"paused\" and [(s[\"service\"], s[\"state\"]) for s in d[\"services\"]] == [(\"a\", \"succeeded\"), (\"b\", \"failed\")]" &&
	rm hold-b &&
	rsnap rel2 2 staging
'

test_expect_success 'a viewer cannot resume or abort it (exit 3): still paused, nothing deployed or rolled back' '
	as vic test_expect_code 3 "$GANTRY" release resume 2 --env staging --wait 2>err &&
	cat err &&
	grep "permission denied: vic (role viewer) cannot run .release_resume. (needs role deployer)" err &&
	refused_by vic release_resume &&
	as vic test_expect_code 3 "$GANTRY" release abort 2 --env staging --wait 2>err &&
	grep "permission denied: vic (role viewer) cannot run .release_abort. (needs role deployer)" err &&
	refused_by vic release_abort &&
	rsame rel2 after3 2 staging &&
	jcheck after3.release "d[\"state\"] == \"paused\"" &&
	test_must_fail "$GANTRY" status b --env staging 2>err &&
	grep "b@staging has never been deployed" err
'

test_expect_success 'a raw deploy naming the release (whose gates were decided) is refused naming /release, from an admin and a deployer: nothing deployed' '
	DIG=$(json_get services.1.digest <rel2.release) &&
	api "{\"op\": \"deploy\", \"service\": \"b\", \"environment\": \"staging\", \"version\": \"sneak\", \"digest\": \"$DIG\", \"release\": 2}" >reply.json &&
	cat reply.json &&
	jcheck reply.json "d[\"ok\"] is False and d[\"error\"].startswith(\"/release: \")" &&
	api "{\"op\": \"deploy\", \"service\": \"b\", \"environment\": \"staging\", \"version\": \"sneak\", \"digest\": \"$DIG\", \"release\": 2, \"token\": \"$(cat ana.token)\"}" >reply.json &&
	jcheck reply.json "d[\"ok\"] is False and d[\"error\"].startswith(\"/release: \")" &&
	rsame rel2 after4 2 staging &&
	test_must_fail "$GANTRY" status b --env staging 2>err &&
	grep "b@staging has never been deployed" err
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
