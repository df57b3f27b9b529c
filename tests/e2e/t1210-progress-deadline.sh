#!/bin/sh
test_description='a release that never becomes ready is rolled back at the progress deadline'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: v1 good, progress_deadline 3s' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 3s
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	start_load load
'

test_expect_success 'v2 never ready: deploy --wait exits 1 within 10 s' '
	start=$(date +%s) &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 \
		--set env.READY_DELAY_MS=600000 --wait --timeout 20s >out 2>err &&
	end=$(date +%s) &&
	cat out err &&
	echo "took $((end - start)) s" &&
	test $((end - start)) -le 10
'

test_expect_success 'rolled back: stable revision 1 serves all the traffic' '
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"stable_revision\"] == 1" &&
	st_check "d[\"traffic\"] == [{\"revision\": 1, \"weight\": 100}]" &&
	pget / | grep v1
'

test_expect_success 'history: revision 2 failed at the progress deadline' '
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 2 and d[0][\"status\"] == \"failed\"" &&
	jcheck hist.json "\"progress deadline\" in d[0][\"reason\"] or \"progress_deadline\" in d[0][\"reason\"]"
'

test_expect_success 'no v2 replica is left running' '
	wait_for 10 "st_check \"len(d[\\\"replicas\\\"]) == 2 and all(r[\\\"revision\\\"] == 1 for r in d[\\\"replicas\\\"])\"" &&
	check_processes &&
	test -z "$(tagged_pids | while read -r p; do
		tr "\0" "\n" <"/proc/$p/environ" | grep -x "GANTRY_REVISION=2"; done)"
'

test_expect_success 'the clients saw zero failures and only v1' '
	stop_load load &&
	load_clean load &&
	jcheck load.json "list(d[\"versions\"]) == [\"v1\"]"
'

# From here the deadline is 6 s: a replica that turns ready in 1 s, or in
# 4 s, has 2 s or more to spare for its start on a loaded machine.
test_expect_success 'apply: progress_deadline 6s' '
	sed "s/progress_deadline: 3s/progress_deadline: 6s/" "$TRASH/gantry.yaml" >spec6 &&
	cp spec6 "$TRASH/gantry.yaml" &&
	"$GANTRY" apply -f "$TRASH/gantry.yaml" >/dev/null
'

test_expect_success 'deploy --wait --timeout shorter than the rollout: exit 1, the rollout goes on' '
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v3 \
		--set env.READY_DELAY_MS=1000 --wait --timeout 300ms >out 2>err &&
	cat out err &&
	grep -- "--timeout" err &&
	wait_for 30 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 3 and d[\\\"rollout\\\"][\\\"phase\\\"] != \\\"progressing\\\"\"" &&
	st_check "d[\"rollout\"][\"phase\"] == \"complete\" and d[\"stable_revision\"] == 3" &&
	pget / | grep v3
'

# progress_deadline is a time without progress (as in Kubernetes and Nomad),
# not a bound on the whole rollout: each of v4's two replicas turns ready 4 s
# after it starts, one after the other (max_surge 1), so the rollout lasts
# over 8 s and never 6 s without a replica turning ready. Counted from the
# start, the deadline would roll it back.
test_expect_success 'a rollout longer than progress_deadline completes while replicas keep turning ready' '
	start=$(date +%s) &&
	"$GANTRY" deploy hello --env staging --version v4 --set env.READY_DELAY_MS=4000 &&
	wait_for 60 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 4 and d[\\\"rollout\\\"][\\\"phase\\\"] != \\\"progressing\\\"\"" &&
	end=$(date +%s) &&
	echo "the rollout took about $((end - start)) s" &&
	test $((end - start)) -ge 7 &&
	st_check "d[\"rollout\"][\"phase\"] == \"complete\" and d[\"stable_revision\"] == 4" &&
	pget / | grep v4
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
