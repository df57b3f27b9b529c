#!/bin/sh
test_description='flag_off as the rollback lever: a rollback_on condition turns a flag off under load instead of rolling back; the revision stays, errors stop'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl
require_gantry

API_PORT=$(free_port)

# flag_state: the state of risky in staging
flag_state() {
	"$GANTRY" flag list --env staging -o json |
	python3 -c "import json,sys; print([f for f in json.load(sys.stdin) if f[\"name\"]==\"risky\"][0][\"state\"])"
}

test_expect_success 'a flag_off action naming no flag, or a malformed one, is refused at FILE:LINE:COL' '
	cat >bad.yaml <<-EOF &&
	environments:
	  staging: {}
	services:
	  hello:
	    run: ./hello
	    rollback_on:
	      - error_rate > 5% then flag_off nope
	      - error_rate > 5% then page_someone
	flags:
	  risky: {}
	EOF
	test_expect_code 2 "$GANTRY" validate -f bad.yaml 2>err &&
	cat err &&
	grep "bad.yaml:7:9: error: services.hello.rollback_on\[0\]: flag_off: no flag .nope. under flags:" err &&
	grep "bad.yaml:8:9: error: services.hello.rollback_on\[1\]: invalid rollback_on action" err
'

test_expect_success 'setup: a replica that fails while risky is on, guarded by rollback_on ... then flag_off risky' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    run: ./hello
	    env: { FAIL_WHEN_FLAG: risky }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 1s
	    rollback_on: [ "error_rate > 20% for 1s then flag_off risky" ]
	flags:
	  risky:
	    default: off
	EOF
	start_serve --api "127.0.0.1:$API_PORT" &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null &&
	st_check "d[\"stable_revision\"] == 1" &&
	test "$(flag_state)" = spec &&
	start_load before -c 2 --rate 200 &&
	sleep 1 &&
	stop_load before &&
	load_clean before
'

test_expect_success 'risky on under load: errors, then gantry turns it off; the revision stays' '
	start_load bad -c 2 --rate 200 &&
	t_on=$(date +%s%3N) &&
	"$GANTRY" flag set risky on --env staging --reason "launch" >/dev/null &&
	wait_for 30 "test \"\$(flag_state)\" = off" &&
	t_off=$(date +%s%3N) &&
	echo "figure: flag on -> turned off by rollback_on after $((t_off - t_on)) ms" &&
	sleep 0.3 &&
	stop_load bad &&
	jcheck "$TRASH/bad.json" "d[\"non2xx\"] > 0" &&
	st_check "d[\"stable_revision\"] == 1 and d[\"target_revision\"] == 1" &&
	"$GANTRY" history hello --env staging -o json >hist.json &&
	python3 -c "import json,sys; h=json.load(open(sys.argv[1])); assert len(h)==1, h" hist.json
'

test_expect_success 'after the flag went off: zero failed requests' '
	start_load after -c 2 --rate 200 &&
	sleep 2 &&
	stop_load after &&
	load_clean after
'

test_expect_success 'the history, the events, the audit log and the webhook kind say which' '
	"$GANTRY" flag history risky --env staging -o json >h.json &&
	cat h.json &&
	python3 -c "import json,sys; h=json.load(open(sys.argv[1])); assert [(c[\"from\"],c[\"to\"],c[\"by\"]) for c in h]==[(\"spec\",\"on\",h[0][\"by\"]),(\"on\",\"off\",\"gantry\")], h; assert h[1][\"reason\"].startswith(\"rollback_on: error_rate\"), h" h.json &&
	"$GANTRY" events hello --env staging >ev.txt &&
	grep "flag_off" ev.txt && grep "turning flag risky off in staging (the revision stays)" ev.txt &&
	! grep -E "rolling back to revision" ev.txt &&
	"$GANTRY" audit >audit.txt && grep "flag_set" audit.txt | grep gantry &&
	"$GANTRY" deployments hello --env staging -o json >dep.json &&
	jcheck dep.json "[(x[\"flag\"], x[\"source\"], x[\"revision\"]) for x in d[0][\"flag_offs\"]] == [(\"risky\", \"rollback_on\", 1)]" &&
	jcheck dep.json "d[0][\"flag_offs\"][0][\"reason\"].startswith(\"rollback_on: error_rate\")" &&
	"$GANTRY" deployments hello --env staging | grep "\[flag risky off by rollback_on at "
'

test_expect_success 'DORA counts the flag-off as a failure of the deploy, restored' '
	sql "SELECT id, phase, started_at, updated_at FROM rollouts" &&
	sql "SELECT ts, kind FROM events WHERE kind = '\''flag_off'\''" &&
	"$GANTRY" dora hello --env staging -o json >dora.json &&
	cat dora.json &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d=d[\"dora\"][0]; assert d[\"change_failure_rate\"][\"failures\"]==1 and d[\"time_to_restore\"][\"restored\"]==1 and d[\"time_to_restore\"][\"unrestored\"]==0, d" dora.json
'

test_expect_success 'turned on again, the lever is armed again' '
	start_load again -c 2 --rate 200 &&
	"$GANTRY" flag set risky on --env staging --reason "retry" >/dev/null &&
	wait_for 30 "test \"\$(flag_state)\" = off" &&
	stop_load again &&
	"$GANTRY" flag history risky --env staging -o json >h.json &&
	python3 -c "import json,sys; h=json.load(open(sys.argv[1])); assert len(h)==4 and h[3][\"by\"]==\"gantry\", h" h.json
'

test_expect_success 'the controller stops cleanly, no sanitizer report' '
	stop_serve &&
	sanitizer_clean "$TRASH/serve.log" "$TRASH/serve-all.txt" "$GANTRY_HOME/logs/proxy.log"
'

test_done
