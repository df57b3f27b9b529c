#!/bin/sh
test_description='gantry release promote: the digests of a release that succeeded in staging, as a new release of production in dependency order, under production gates (promote_from, one approval)'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# a → b; $1: the MARK of b
spec() {
	write_release_chain a b "env: { MARK: \"$1\" }" <<-EOF
	project: t
	environments:
	  staging: {}
	  production:
	    promote_from: staging
	    protection: { approvals: 1, approval_ttl: 1h }
	EOF
}

test_expect_success 'setup: release 1 of staging (a → b) succeeds' '
	spec one &&
	start_serve &&
	"$GANTRY" user add alice --role deployer >alice.token &&
	"$GANTRY" user add bob --role approver >bob.token &&
	as alice "$GANTRY" release --env staging --wait >out &&
	rstatus 1 staging "d[\"state\"] == \"succeeded\""
'

test_expect_success 'only a release that succeeded, of that environment, to another one' '
	test_expect_code 2 "$GANTRY" release promote 7 --env staging --to production 2>err &&
	grep "no release 7 in staging" err &&
	test_expect_code 2 "$GANTRY" release promote 1 --env staging --to staging 2>err &&
	grep "is of staging already" err &&
	test_expect_code 2 "$GANTRY" release promote 1 --env staging --to nowhere 2>err &&
	grep "no environment .nowhere." err &&
	test_expect_code 2 "$GANTRY" release promote 1 --env staging 2>err &&
	grep "\-\-to ENV is required" err
'

test_expect_success 'promote release 1 to production: one approval asked for the new release (exit 3)' '
	as alice test_expect_code 3 "$GANTRY" release promote 1 --env staging --to production 2>err &&
	cat err &&
	grep "waiting for approval: release 2 of production (a, b)" err &&
	rstatus 2 production "d[\"state\"] == \"pending\" and d[\"gates\"][\"promoted_from\"] == {\"environment\": \"staging\", \"release\": 1}" &&
	rstatus 2 production "all(s[\"promotion\"][\"from\"] == \"staging\" and s[\"promotion\"][\"revision\"] == 1 for s in d[\"services\"])" &&
	rstatus 2 production "all(v[\"promotion\"] == \"passed\" for v in d[\"gates\"][\"services\"].values())"
'

test_expect_success 'approved: a then b are promoted with the digests of staging release 1' '
	as bob "$GANTRY" approve 3 >out &&
	grep "release 2 starts" out &&
	wait_for 60 "rstatus 2 production \"d[\\\"state\\\"] != \\\"running\\\"\"" &&
	rstatus 2 production "d[\"state\"] == \"succeeded\"" &&
	"$GANTRY" release status 1 --env staging -o json >r1.json &&
	python3 -c "
import json
s = {x[\"service\"]: x for x in json.load(open(\"r1.json\"))[\"services\"]}
p = {x[\"service\"]: x for x in json.load(open(\"rs.json\"))[\"services\"]}
assert all(p[k][\"digest\"] == s[k][\"digest\"] and p[k][\"version\"] == s[k][\"version\"] for k in \"ab\"), (s, p)
assert p[\"a\"][\"ended_at\"] <= p[\"b\"][\"started_at\"], p
" &&
	"$GANTRY" deployments -o json >d.json &&
	jcheck d.json "sorted(x[\"service\"] for x in d if x[\"environment\"] == \"production\" and x[\"kind\"] == \"promote\" and x[\"state\"] == \"succeeded\") == [\"a\", \"b\"]" &&
	jcheck d.json "all(x[\"gates\"][\"approvals\"] == \"release 2\" for x in d if x[\"environment\"] == \"production\" and x[\"kind\"] == \"promote\")" &&
	for s in a b; do
		"$GANTRY" status $s --env production -o json >$s.json &&
		jcheck $s.json "d[\"stable_revision\"] == 1 and d[\"phase\"] == \"healthy\"" || return 1
	done
'

test_expect_success 'what no longer serves in staging cannot be promoted: refused (exit 3), nothing recorded' '
	spec two &&
	"$GANTRY" release --env staging --wait >out &&
	rstatus 3 staging "[(s[\"service\"], s[\"state\"]) for s in d[\"services\"]] == [(\"a\", \"unchanged\"), (\"b\", \"succeeded\")]" &&
	test_expect_code 3 "$GANTRY" release promote 1 --env staging --to production 2>err &&
	cat err &&
	grep "b: revision 1 of b@staging is superseded, not serving" err &&
	"$GANTRY" release history --env production -o json >h.json &&
	jcheck h.json "len(d) == 1"
'

test_expect_success 'a release with an unchanged service promotes what serves: b only differs in production' '
	as alice test_expect_code 3 "$GANTRY" release promote 3 --env staging --to production 2>err &&
	grep "waiting for approval: release 4 of production (b)" err &&
	rstatus 4 production "[(s[\"service\"], s[\"state\"]) for s in d[\"services\"]] == [(\"a\", \"unchanged\"), (\"b\", \"waiting\")]"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
