#!/bin/sh
test_description='a release of a → b → c where b crash-loops, under client load on a, b and c: a rolled back, c never starts, zero failed requests'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms

# a → b → c, rolling with a surge; $1: the env of b (a YAML mapping), $2: the MARK of a and c
chain_spec() {
	write_release_chain "drain_timeout: 2s" "progress_deadline: 60s" \
		"strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }" \
		a "env: { MARK: \"$2\" }" \
		b "env: $1" \
		c "env: { MARK: \"$2\" }" <<-EOF
	project: t
	environments:
	  staging: { replicas: 2 }
	EOF
}

# load on service $1 (named load-$1), lighter than start_load's default: three run at once
load_on() {
	_h=$HOST
	HOST=$1.staging.localhost
	start_load "load-$1" -c 2 --rate 100
	_r=$?
	HOST=$_h
	return $_r
}

test_expect_success 'setup: the first release deploys a, b, c (2 replicas each); load on each' '
	chain_spec "{ MARK: one }" one &&
	start_serve &&
	"$GANTRY" release --env staging --wait >out &&
	"$GANTRY" release status 1 --env staging -o json >r1.json &&
	jcheck r1.json "d[\"state\"] == \"succeeded\"" &&
	for s in a b c; do
		"$GANTRY" status $s --env staging -o json >$s.json &&
		jcheck $s.json "d[\"ready_replicas\"] == 2" || return 1
	done &&
	load_on a && load_on b && load_on c
'

test_expect_success 'under load, b crash-loops: the release exits 1, rolled back' '
	chain_spec "{ MARK: two, CRASH_AFTER_S: \"0\" }" two &&
	start=$(_now_ms) &&
	test_expect_code 1 "$GANTRY" release --env staging --wait >out 2>err &&
	echo "release 2, from its request to rolled_back: $(($(_now_ms) - start)) ms" &&
	cat out err &&
	grep "^release 2 staging: rolled_back" out
'

test_expect_success 'the record: a rolled back, b failed, c never started; each runs what it ran before' '
	"$GANTRY" release status 2 --env staging -o json >r2.json &&
	jcheck r2.json "{s[\"service\"]: s[\"state\"] for s in d[\"services\"]} == {\"a\": \"rolled_back\", \"b\": \"failed\", \"c\": \"waiting\"}" &&
	jcheck r2.json "[s for s in d[\"services\"] if s[\"service\"] == \"c\"][0][\"deployment\"] == 0" &&
	"$GANTRY" status a --env staging -o json >a.json &&
	jcheck a.json "d[\"target_revision\"] == 3 and d[\"phase\"] == \"healthy\"" &&
	"$GANTRY" status b --env staging -o json >b.json &&
	jcheck b.json "d[\"stable_revision\"] == 1" &&
	"$GANTRY" status c --env staging -o json >c.json &&
	jcheck c.json "d[\"target_revision\"] == 1"
'

test_expect_success 'the clients of a, b and c saw zero failed requests' '
	for s in a b c; do
		stop_load load-$s &&
		load_clean load-$s || return 1
	done &&
	python3 -c "
import json
t = [json.load(open(\"load-%s.json\" % s)) for s in \"abc\"]
print(\"requests through the release and its rollback: %d (a %d, b %d, c %d), failed 0\" % (sum(x[\"requests\"] for x in t), t[0][\"requests\"], t[1][\"requests\"], t[2][\"requests\"]))
"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
