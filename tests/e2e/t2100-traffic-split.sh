#!/bin/sh
test_description='gantry traffic: a split by revision, by hand (a stopped revision is started from its snapshot)'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl
require_gantry

# 100 requests over ONE keep-alive connection: the proxy's workers (one per
# core, SO_REUSEPORT) each keep their own SWRR position, so the split is
# exact over any 100 consecutive requests of one worker, not across them
count_versions() {
	curl -s --max-time 20 -H "Host: $HOST" $(seq 100 | sed "s|.*|http://127.0.0.1:$PROXY_PORT/|") |
		sort | uniq -c
}

test_expect_success 'setup: v1 then v2 deployed' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 2s
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null &&
	"$GANTRY" deploy hello --env staging --version v2 --wait >/dev/null &&
	st_check "len(d[\"replicas\"]) == 2 and all(r[\"revision\"] == 2 for r in d[\"replicas\"])"
'

test_expect_success 'a 90/10 split starts revision 1 again; exact over 100 requests of one client' '
	start_load split &&
	"$GANTRY" traffic hello --env staging --set 1=90,2=10 &&
	wait_for 15 "st_check \"sum(1 for r in d[\\\"replicas\\\"] if r[\\\"revision\\\"] == 1 and r[\\\"ready\\\"]) == 2\" >/dev/null" &&
	sleep 0.5 &&
	stop_load split &&
	load_clean split &&
	count_versions >counts &&
	cat counts &&
	grep -q "^ *90 hello from v1" counts &&
	grep -q "^ *10 hello from v2" counts &&
	st_check "sorted((t[\"revision\"], t[\"weight\"]) for t in d[\"traffic\"]) == [(1, 90), (2, 10)]"
'

test_expect_success 'reset: traffic follows the replicas again, revision 1 is retired' '
	start_load reset &&
	"$GANTRY" traffic hello --env staging --reset &&
	wait_for 15 "st_check \"all(r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\" >/dev/null" &&
	stop_load reset &&
	load_clean reset
'

test_expect_success 'bad splits are refused and change nothing' '
	test_expect_code 2 "$GANTRY" traffic hello --env staging --set 1=50,2=40 2>err &&
	grep "add up to 100" err &&
	test_expect_code 2 "$GANTRY" traffic hello --env staging --set 9=100 2>err &&
	grep "does not exist" err &&
	test_expect_code 2 "$GANTRY" traffic hello --env staging --set banana 2>err &&
	grep "REV=WEIGHT" err &&
	st_check "[(t[\"revision\"], t[\"weight\"]) for t in d[\"traffic\"]] == [(2, 100)]"
'

test_done
