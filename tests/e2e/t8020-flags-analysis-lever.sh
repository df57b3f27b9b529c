#!/bin/sh
test_description='flag_off as an analysis action: a failed canary analysis turns the flag off and pauses instead of rolling back; the deployment record says it; with the flag already off a failure rolls back'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl
require_gantry

API_PORT=$(free_port)

flag_state() {
	"$GANTRY" flag list --env staging -o json |
	python3 -c "import json,sys; print([f for f in json.load(sys.stdin) if f[\"name\"]==\"risky\"][0][\"state\"])"
}

test_expect_success 'an analysis flag_off naming no flag is refused at FILE:LINE:COL, with a did-you-mean' '
	cat >bad.yaml <<-EOF &&
	environments:
	  staging: {}
	analysis_templates:
	  shared:
	    flag_off: nothing_like_it
	    metrics: [ { query: error_rate, fail_if: "> 1%" } ]
	services:
	  hello:
	    run: ./hello
	    analysis:
	      slo:
	        flag_off: riskyy
	        metrics: [ { query: error_rate, fail_if: "> 1%" } ]
	flags:
	  risky: {}
	EOF
	test_expect_code 2 "$GANTRY" validate -f bad.yaml 2>err &&
	cat err &&
	grep "bad.yaml:12:19: error: services.hello.analysis.slo.flag_off: flag_off: no flag .riskyy. under flags: (did you mean .risky.?)" err &&
	grep "bad.yaml:5:15: error: analysis_templates.shared.flag_off: flag_off: no flag .nothing_like_it. under flags:$" err
'

# the canary analysis: 3 rounds of 1 s, error_rate above 1% fails it
spec() {
	write_app_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 1s
	    stop_grace: 2s
	    progress_deadline: 60s
	    strategy:
	      canary:
	        steps: [ {weight: 50}, {analysis: slo} ]
	    analysis:
	      slo:
	        interval: 1s
	        count: 3
	        flag_off: risky
	        metrics: [ { query: error_rate, fail_if: "> 1%", min_requests: 20 } ]
	flags:
	  risky:
	    default: off
	EOF
}

test_expect_success 'setup: v1 serving (it ignores the flag), risky on' '
	spec &&
	start_serve --api "127.0.0.1:$API_PORT" &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait >/dev/null &&
	"$GANTRY" flag set risky on --env staging --reason launch >/dev/null &&
	test "$(flag_state)" = on
'

test_expect_success 'v2 fails while risky is on: the analysis fails, risky goes off, the rollout pauses at 50%' '
	start_load bad -c 2 --rate 200 &&
	t0=$(date +%s%3N) &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 --set env.FAIL_WHEN_FLAG=risky >/dev/null &&
	wait_for 60 "test \"\$(flag_state)\" = off" &&
	t1=$(date +%s%3N) &&
	echo "figure: deploy -> flag turned off by the failed analysis after $((t1 - t0)) ms" &&
	wait_for 20 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"paused\\\"\"" &&
	stop_load bad &&
	jcheck "$TRASH/bad.json" "d[\"non2xx\"] > 0" &&
	st_check "d[\"stable_revision\"] == 1 and d[\"rollout\"][\"revision\"] == 2" &&
	jcheck "$TRASH/st.json" "\"flag risky turned off\" in d[\"rollout\"][\"message\"]" &&
	canary_check "c[\"weight\"] == 50" &&
	ev_check "any(e[\"kind\"] == \"flag_off\" and \"turning flag risky off\" in e[\"message\"] for e in ev)" &&
	ev_check "not any(e[\"kind\"] == \"rollout_rolled_back\" for e in ev)"
'

test_expect_success 'with the flag off the canary serves without errors' '
	start_load after -c 2 --rate 200 &&
	sleep 2 &&
	stop_load after &&
	load_clean after
'

test_expect_success 'the deployment record says which flag, why, when (deployments, history, -o json)' '
	"$GANTRY" deployments hello --env staging -o json >dep.json &&
	jcheck dep.json "[x[\"flag\"] for x in d[0][\"flag_offs\"]] == [\"risky\"] and d[0][\"revision\"] == 2" &&
	jcheck dep.json "d[0][\"flag_offs\"][0][\"source\"] == \"analysis slo\" and d[0][\"flag_offs\"][0][\"reason\"].startswith(\"analysis slo failed: \") and d[0][\"flag_offs\"][0][\"at\"].endswith(\"Z\")" &&
	jcheck dep.json "d[1][\"flag_offs\"] == []" &&
	"$GANTRY" deployments hello --env staging >dep.txt &&
	cat dep.txt &&
	grep "\[flag risky off by analysis slo at 20" dep.txt &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 2 and d[0][\"deployment\"][\"flag_offs\"][0][\"flag\"] == \"risky\"" &&
	"$GANTRY" history hello --env staging >hist.txt &&
	grep "flag risky off by analysis slo" hist.txt &&
	"$GANTRY" flag history risky --env staging -o json >fh.json &&
	jcheck fh.json "d[-1][\"to\"] == \"off\" and d[-1][\"by\"] == \"gantry\" and d[-1][\"reason\"].startswith(\"analysis slo failed\")"
'

test_expect_success 'resumed, the rollout goes on with the feature off and completes' '
	"$GANTRY" resume hello --env staging --reason "feature off, ship the rest" &&
	wait_for 60 "st_check \"d[\\\"stable_revision\\\"] == 2\"" &&
	test "$(flag_state)" = off
'

test_expect_success 'with the flag already off the lever is spent: a failing canary rolls back' '
	start_load v3 -c 2 --rate 200 &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v3 --set env.FAIL_RATE=0.3 >/dev/null &&
	wait_for 60 "st_check \"d[\\\"phase\\\"] == \\\"rolled_back\\\"\"" &&
	stop_load v3 &&
	st_check "d[\"stable_revision\"] == 2" &&
	"$GANTRY" flag history risky --env staging -o json >fh.json &&
	jcheck fh.json "len(d) == 2" &&
	"$GANTRY" deployments hello --env staging -o json >dep.json &&
	jcheck dep.json "[x[\"flag_offs\"] for x in d if x[\"version\"] == \"v3\"] == [[]]"
'

test_expect_success 'the controller stops cleanly, no sanitizer report' '
	stop_serve &&
	sanitizer_clean "$TRASH/serve.log" "$TRASH/serve-all.txt" "$GANTRY_HOME/logs/proxy.log"
'

test_done
