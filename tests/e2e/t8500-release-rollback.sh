#!/bin/sh
test_description='a release of a → b → c where b crash-loops: a is rolled back, c never starts'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms

# a → b → c; $1: the env of b (a YAML mapping), $2: the version label a and c carry
chain_spec() {
	write_release_chain "progress_deadline: 40s" \
		a "env: { MARK: \"$2\" }" \
		b "env: $1" \
		c "env: { MARK: \"$2\" }" <<-EOF
	project: t
	environments:
	  staging: {}
	EOF
}

test_expect_success 'setup: the first release deploys a, b, c in order' '
	chain_spec "{ MARK: one }" one &&
	start_serve &&
	"$GANTRY" release --env staging --wait >out 2>err &&
	cat out err &&
	"$GANTRY" release status --env staging -o json >r1.json &&
	jcheck r1.json "d[\"state\"] == \"succeeded\"" &&
	jcheck r1.json "[(s[\"service\"], s[\"level\"], s[\"state\"], s[\"revision\"]) for s in d[\"services\"]] == [(\"a\", 0, \"succeeded\", 1), (\"b\", 1, \"succeeded\", 1), (\"c\", 2, \"succeeded\", 1)]"
'

test_expect_success 'nothing changed: a second release is refused and creates nothing' '
	test_expect_code 2 "$GANTRY" release --env staging --wait 2>err &&
	grep "nothing to release" err &&
	"$GANTRY" release history --env staging -o json >h.json &&
	jcheck h.json "len(d) == 1"
'

test_expect_success 'b crash-loops: the release exits 1, rolled_back' '
	chain_spec "{ MARK: two, CRASH_AFTER_S: \"0\" }" two &&
	test_expect_code 1 "$GANTRY" release --env staging --wait >out 2>err &&
	cat out err &&
	grep "^release 2 staging: rolled_back" out
'

test_expect_success 'the record: a rolled back, b failed, c never started' '
	"$GANTRY" release status 2 --env staging -o json >r2.json &&
	jcheck r2.json "d[\"state\"] == \"rolled_back\" and d[\"on_failure\"] == \"rollback\"" &&
	jcheck r2.json "{s[\"service\"]: s[\"state\"] for s in d[\"services\"]} == {\"a\": \"rolled_back\", \"b\": \"failed\", \"c\": \"waiting\"}" &&
	jcheck r2.json "[s for s in d[\"services\"] if s[\"service\"] == \"a\"][0][\"rollback_revision\"] == 3" &&
	jcheck r2.json "[s for s in d[\"services\"] if s[\"service\"] == \"c\"][0][\"deployment\"] == 0" &&
	jcheck r2.json "\"crash\" in [s for s in d[\"services\"] if s[\"service\"] == \"b\"][0][\"message\"]"
'

test_expect_success 'each service runs what it ran before the release' '
	"$GANTRY" status a --env staging -o json >a.json &&
	jcheck a.json "d[\"target_revision\"] == 3 and d[\"phase\"] == \"healthy\"" &&
	"$GANTRY" history a --env staging -o json >ah.json &&
	jcheck ah.json "d[0][\"kind\"] == \"rollback\" and d[0][\"source\"] == 1 and d[1][\"status\"] == \"rolled_back\"" &&
	"$GANTRY" status b --env staging -o json >b.json &&
	jcheck b.json "d[\"stable_revision\"] == 1 and d[\"phase\"] == \"rolled_back\"" &&
	"$GANTRY" status c --env staging -o json >c.json &&
	jcheck c.json "d[\"target_revision\"] == 1"
'

test_expect_success 'history lists both releases, newest first' '
	"$GANTRY" release history --env staging >h.txt &&
	cat h.txt &&
	sed -n 2p h.txt | grep "^2 *rolled_back" &&
	sed -n 3p h.txt | grep "^1 *succeeded"
'

test_expect_success 'events of the environment: started, failed, rolled back' '
	"$GANTRY" events --env staging >ev.txt &&
	grep "release_started.*release 2" ev.txt &&
	grep "release_failed.*release 2" ev.txt &&
	grep "release_rolled_back.*release 2" ev.txt
'

test_expect_success 'dora --releases: each release one deployment, the rolled-back one a failure restored by its rollback' '
	"$GANTRY" dora --releases --env staging -o json >dora.json &&
	jcheck dora.json "[x[\"environment\"] for x in d[\"dora\"]] == [\"staging\"] and d[\"dora\"][0][\"releases\"] is True" &&
	jcheck dora.json "d[\"dora\"][0][\"deployment_frequency\"][\"deployments\"] == 1" &&
	jcheck dora.json "d[\"dora\"][0][\"change_failure_rate\"] == {\"failures\": 1, \"finished\": 2, \"rate\": 0.5}" &&
	jcheck dora.json "d[\"dora\"][0][\"time_to_restore\"][\"restored\"] == 1 and d[\"dora\"][0][\"time_to_restore\"][\"unrestored\"] == 0" &&
	"$GANTRY" dora --releases >dora.txt &&
	cat dora.txt &&
	grep "^ENVIRONMENT  *RELEASES" dora.txt &&
	grep "^staging  *1 .* 50% (1/2)" dora.txt &&
	test_expect_code 2 "$GANTRY" dora a --releases 2>err &&
	grep "no SERVICE" err
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
