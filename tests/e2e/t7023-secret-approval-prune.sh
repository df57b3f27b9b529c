#!/bin/sh
test_description='secrets and revisions: a deploy waiting for approval keeps the secret versions pinned at request time; versions no kept revision uses are deleted when revisions are pruned (keep_revisions)'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

ENV=production

as() {
	_who=$1
	shift
	GANTRY_TOKEN=$(cat "$TRASH/$_who.token") "$@"
}
replica_pids() {
	gst >st.json &&
	python3 -c 'import json, sys; print(" ".join(str(r["pid"]) for r in json.load(open("st.json"))["replicas"] if r["revision"] == int(sys.argv[1])))' "$1"
}
env_of() {
	tr "\0" "\n" <"/proc/$1/environ" | sed -n "s/^$2=//p"
}
versions() {
	"$GANTRY" secret list --env production -o json >l.json &&
	python3 -c 'import json, sys; print(" ".join(str(v["version"]) for s in json.load(open("l.json")) if s["name"] == sys.argv[1] for v in s["versions"]))' "$1"
}

test_expect_success 'setup: production needs 1 approval, keeps 2 revisions; users; db_password version 1' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  production:
	    replicas: 1
	    protection: { approvals: 1, approval_ttl: 1h }
	services:
	  hello:
	    artifact: app
	    run: exec ./hello
	    env:
	      DB_PASSWORD: { secret: db_password }
	    keep_revisions: 2
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
	start_serve &&
	for u in alice bob; do "$GANTRY" user add $u --role approver >$u.token || return 1; done &&
	printf "pw-one" | "$GANTRY" secret set db_password --env production
'

test_expect_success 'approval wait: a rotation after the request does not change what the approver approves' '
	as alice test_expect_code 3 "$GANTRY" deploy hello --env production --version v1 2>err &&
	grep "waiting for approval: deployment 1" err &&
	printf "pw-two" | "$GANTRY" secret rotate db_password --env production &&
	as bob "$GANTRY" approve 1 >out && cat out &&
	! grep "approvals given before no longer count" out &&
	wait_for 30 "st_check \"d[\\\"phase\\\"] == \\\"healthy\\\" and d[\\\"stable_revision\\\"] == 1\"" &&
	sql "SELECT config FROM revisions WHERE number = 1" >cfg.json &&
	jcheck cfg.json "d[\"env\"][\"DB_PASSWORD\"] == {\"secret\": \"db_password\", \"version\": 1}" &&
	pid=$(replica_pids 1) && test "$(env_of $pid DB_PASSWORD)" = pw-one
'

test_expect_success 'pruning revisions (keep_revisions: 2) deletes the versions only pruned revisions used' '
	test "$(versions db_password)" = "1 2" &&
	printf "pw-three" | "$GANTRY" secret rotate db_password --env production &&
	test "$(versions db_password)" = "1 3" &&
	as alice test_expect_code 3 "$GANTRY" deploy hello --env production --version v2 2>err &&
	as bob "$GANTRY" approve 2 &&
	wait_for 30 "st_check \"d[\\\"phase\\\"] == \\\"healthy\\\" and d[\\\"stable_revision\\\"] == 2\"" &&
	test "$(versions db_password)" = "1 3" &&
	printf "pw-four" | "$GANTRY" secret rotate db_password --env production &&
	as alice test_expect_code 3 "$GANTRY" deploy hello --env production --version v3 2>err &&
	as bob "$GANTRY" approve 3 &&
	wait_for 30 "st_check \"d[\\\"phase\\\"] == \\\"healthy\\\" and d[\\\"stable_revision\\\"] == 3\"" &&
	sql "SELECT number, artifact_pruned FROM revisions ORDER BY number" >revs.txt && cat revs.txt &&
	grep "^1|1$" revs.txt &&
	test "$(versions db_password)" = "3 4" &&
	pid=$(replica_pids 3) && test "$(env_of $pid DB_PASSWORD)" = pw-four
'

test_expect_success 'cleanup' '
	stop_serve
'

test_done
