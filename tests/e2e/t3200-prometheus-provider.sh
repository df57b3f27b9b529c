#!/bin/sh
test_description='prometheus provider against a real prometheus scraping the proxy: a bad canary is rolled back, a good one passes; on_error rollback and pause when prometheus is unreachable'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid prometheus
require_gantry

BACKOFF=100ms
PROM_PORT=

# the canary's share of 5xx over the last 10 s, as Prometheus computes it from
# the proxy's /metrics (code is the status class: none, 2xx, 5xx...)
ERR_Q='sum(rate(gantry_http_requests_total{service=\"hello\",revision=\"{{revision}}\",code=\"5xx\"}[10s])) / sum(rate(gantry_http_requests_total{service=\"hello\",revision=\"{{revision}}\"}[10s]))'

# spec ADDRESS ON_ERROR ANALYSIS_OPTS: the service with a canary whose
# analysis "prom" asks Prometheus at ADDRESS for the canary's error ratio
spec() {
	write_app_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 1s
	    stop_grace: 2s
	    progress_deadline: 60s
	    on_error: $2
	    strategy:
	      canary:
	        steps: [ {weight: 50}, {analysis: prom} ]
	    analysis:
	      prom: { $3, metrics: [ { name: prom_errors, provider: prometheus, address: "$1", query: "$ERR_Q", fail_if: "> 0.05", timeout: 2s } ] }
	EOF
}

# canary NAME EXPECTED_RC SET...: deploys version NAME under client load;
# deploy --wait must exit EXPECTED_RC
canary() {
	cn_name=$1 cn_rc=$2
	shift 2
	cn_sets=
	for cn_s in "$@"; do cn_sets="$cn_sets --set $cn_s"; done
	start_load "load-$cn_name" &&
	test_expect_code "$cn_rc" "$GANTRY" -f "$SPEC" deploy hello --env staging --version "$cn_name" $cn_sets \
		--wait --timeout 40s >"deploy-$cn_name.out" 2>&1
	cn_ret=$?
	cat "deploy-$cn_name.out"
	stop_load "load-$cn_name" >/dev/null || cn_ret=1
	return $cn_ret
}

# rolled_back REV WORD: revision REV was rolled back to revision STABLE for a
# reason naming WORD, and the proxy sends everything to the stable
rolled_back() {
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"rollout\"][\"revision\"] == $1" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 2, \"weight\": 100}]" &&
	ghist >hist.json &&
	python3 -c "import json; print(\"reason:\", json.load(open(\"hist.json\"))[0][\"reason\"])" &&
	jcheck hist.json "d[0][\"revision\"] == $1 and d[0][\"status\"] == \"failed\"" &&
	jcheck hist.json "\"$2\" in d[0][\"reason\"]" &&
	ev_check "any(e[\"kind\"] == \"rollout_rolled_back\" and e[\"revision\"] == $1 and \"$2\" in e[\"message\"] for e in ev)"
}

test_expect_success 'setup: v1 serving, prometheus scraping the proxy every second' '
	spec "http://127.0.0.1:1" pause "interval: 2s, count: 1" &&
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	PROM_PORT=$(free_port) &&
	cat >prometheus.yml <<-EOF &&
	global:
	  scrape_interval: 1s
	  evaluation_interval: 1s
	scrape_configs:
	  - job_name: gantry
	    metrics_path: /metrics
	    authorization: { credentials_file: $GANTRY_HOME/proxy-admin.token }
	    static_configs:
	      - targets: [ "127.0.0.1:$ADMIN_PORT" ]
	EOF
	spawn_bg prom prometheus --config.file="$TRASH/prometheus.yml" \
		--storage.tsdb.path="$TRASH/prom" --storage.tsdb.retention.time=1h \
		--web.listen-address="127.0.0.1:$PROM_PORT" &&
	wait_for 30 "curl -sf --max-time 2 http://127.0.0.1:$PROM_PORT/-/ready" &&
	wait_for 15 "curl -sf --max-time 2 \"http://127.0.0.1:$PROM_PORT/api/v1/query?query=up\" | grep -q \"\\\"1\\\"\""
'

test_expect_success '/metrics labels requests by revision and status class (code="5xx")' '
	start_load warm &&
	sleep 1 &&
	stop_load warm >/dev/null &&
	curl -sS --max-time 5 -H "Authorization: Bearer $(cat "$GANTRY_HOME/proxy-admin.token")" \
		"http://127.0.0.1:$ADMIN_PORT/metrics" >metrics.txt &&
	grep "^gantry_http_requests_total" metrics.txt &&
	grep -q "^gantry_http_requests_total{service=\"hello\",environment=\"staging\",revision=\"1\",code=\"2xx\"} [1-9]" metrics.txt &&
	grep -q "^gantry_http_requests_total{service=\"hello\",environment=\"staging\",revision=\"1\",code=\"5xx\"} 0" metrics.txt
'

P=
test_expect_success 'a good canary (v2) passes the prometheus analysis and is promoted' '
	P="http://127.0.0.1:$PROM_PORT" &&
	spec "$P" pause "interval: 2s, count: 2, initial_delay: 10s" &&
	canary v2 0 &&
	grep promoted deploy-v2.out &&
	st_check "d[\"stable_revision\"] == 2 and d[\"phase\"] == \"healthy\"" &&
	ev_check "any(e[\"kind\"] == \"analysis\" and \"prom successful\" in e[\"message\"] for e in ev)"
'

test_expect_success 'prometheus really saw the canary: its request rate for revision 2 is > 0' '
	curl -sS --max-time 5 -G "$P/api/v1/query" \
		--data-urlencode "query=sum(increase(gantry_http_requests_total{service=\"hello\",revision=\"2\"}[5m]))" >q.json &&
	cat q.json &&
	jcheck q.json "d[\"status\"] == \"success\" and float(d[\"data\"][\"result\"][0][\"value\"][1]) > 0"
'

test_expect_success 'a bad canary (v3, FAIL_RATE=0.3) is rolled back: prometheus measured about 0.3 > 0.05' '
	canary v3 1 env.FAIL_RATE=0.3 &&
	rolled_back 3 "analysis prom failed" &&
	jcheck hist.json "\"> 0.05\" in d[0][\"reason\"] and \"canary revision 3\" in d[0][\"reason\"]" &&
	python3 - hist.json <<-\PYEOF &&
	import json, re, sys
	r = json.load(open(sys.argv[1]))[0]["reason"]
	v = float(re.search(r"value ([0-9.e+-]+) >", r).group(1))
	print("measured error ratio:", v)
	sys.exit(0 if 0.15 <= v <= 0.45 else 1)
	PYEOF
	ev_check "any(e[\"kind\"] == \"analysis\" and \"prom failed\" in e[\"message\"] for e in ev)" &&
	split_count 50 &&
	jcheck split.json "d[\"versions\"] == {\"v2\": 50}"
'

test_expect_success 'the rollback reason names the failing metric (prom_errors)' '
	jcheck hist.json "d[0][\"revision\"] == 3 and \"prom_errors\" in d[0][\"reason\"]"
'

test_expect_success 'prometheus unreachable, on_error: rollback: rolled back after error_limit' '
	closed=$(free_port) &&
	spec "http://127.0.0.1:$closed" rollback "interval: 500ms, count: 10, error_limit: 2" &&
	canary v4 1 &&
	rolled_back 4 "prom error" &&
	ev_check "any(e[\"kind\"] == \"rollout_rolled_back\" and e[\"revision\"] == 4 and \"prometheus\" in e[\"message\"] for e in ev)"
'

test_expect_success 'prometheus unreachable, on_error default (pause): the rollout pauses, then abort' '
	closed=$(free_port) &&
	spec "http://127.0.0.1:$closed" pause "interval: 500ms, count: 10, error_limit: 2" &&
	start_load load-v5 &&
	spawn_bg deploy5 "$GANTRY" -f "$SPEC" deploy hello --env staging --version v5 --wait --timeout 40s &&
	wait_for 20 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 5 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"paused\\\"\"" &&
	stop_load load-v5 >/dev/null &&
	cat st.json | python3 -c "import json,sys; print(\"message:\", json.load(sys.stdin)[\"rollout\"][\"message\"])" &&
	jcheck st.json "\"prom error\" in d[\"rollout\"][\"message\"] and \"prometheus\" in d[\"rollout\"][\"message\"]" &&
	canary_check "c[\"weight\"] == 50 and c[\"phase\"] == \"paused\"" &&
	sleep 1 &&
	st_check "d[\"rollout\"][\"phase\"] == \"paused\" and d[\"stable_revision\"] == 2" &&
	"$GANTRY" abort hello --env staging &&
	{ wait_bg deploy5 20; rc=$?; echo "deploy --wait exit: $rc"; test $rc -ne 0 && test $rc -ne 124; } &&
	wait_for 10 "st_check \"[t for t in d[\\\"traffic\\\"] if t[\\\"weight\\\"] > 0] == [{\\\"revision\\\": 2, \\\"weight\\\": 100}]\""
'

test_expect_success 'no orphan; SIGTERM stops the daemon' '
	wait_for 10 "st_check \"all(r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\"" &&
	check_processes &&
	stop_serve
'

test_done
