#!/bin/sh
test_description='gantry upgrade during a canary under load: the new binary takes over the controller and the proxy, no request fails, the rollout completes; a binary that cannot start leaves the old one serving'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# serve runs the binary at $BIN (a copy): an upgrade puts another file there
# by rename, as `install` or a package manager does
mkdir -p "$TRASH/bin"
BIN=$TRASH/bin/gantry
cp "$GANTRY" "$BIN"
REAL=$GANTRY

# the pid of the controller now (serve.lock holds it)
serve_now() {
	cat "$GANTRY_HOME/serve.lock"
}

# the proxy's /metrics as Prometheus reads it (admin token); the sum of
# gantry_http_requests_total of hello/staging revision $1
reqs() {
	curl -sf --max-time 2 -H "Authorization: Bearer $(cat "$GANTRY_HOME/proxy-admin.token")" \
		"http://127.0.0.1:$ADMIN_PORT/metrics" |
	awk -v l="service=\"hello\",environment=\"staging\",revision=\"$1\"," '
		index($0, "gantry_http_requests_total{" l) == 1 { s += $NF; n++ }
		END { if (n) print s; else print 0 }'
}

# install FILE as $BIN (a new inode, as a package manager does)
install_bin() {
	cp "$1" "$BIN.new" && chmod +x "$BIN.new" && mv "$BIN.new" "$BIN"
}

test_expect_success 'setup: v1 serving under load, a canary of v2 held at 25%' '
	write_app_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 2s
	    progress_deadline: 120s
	    strategy:
	      canary:
	        steps: [ {weight: 25}, {analysis: slo}, {weight: 50}, {pause: 1s} ]
	    rollback_on: [ "error_rate > 5% for 2s" ]
	    analysis:
	      slo:
	        interval: 1s
	        count: 2
	        metrics:
	          - { query: error_rate, fail_if: "> 1%", min_requests: 10 }
	          # a round waits while the file "hold" exists: the canary is
	          # upgraded at 25% however loaded the machine is
	          - { name: held, provider: command, command: "while test -f $TRASH/hold; do sleep 0.1; done; echo 0", fail_if: "> 0", timeout: 120s }
	EOF
	API_PORT=$(free_port) &&
	GANTRY=$BIN &&
	start_serve --api "127.0.0.1:$API_PORT" &&
	GANTRY=$REAL &&
	"$GANTRY" user add ci --role admin -o json >user.json &&
	TOKEN=$(python3 -c "import json; print(json.load(open(\"user.json\"))[\"token\"])") &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	start_load up -c 4 --rate 300 &&
	touch "$TRASH/hold" &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 &&
	wait_for 20 "canary_check \"c[\\\"weight\\\"] == 25 and c[\\\"wait\\\"] == \\\"analysis\\\"\"" &&
	old_serve=$(serve_now) && old_proxy=$(proxy_pid) &&
	gst >before.json &&
	test -n "$old_serve" && test -n "$old_proxy"
'

test_expect_success 'gantry upgrade: the new binary takes over; the old controller and proxy exit' '
	install_bin "$REAL" &&
	m1=$(reqs 1) && m2=$(reqs 2) &&
	t0=$(_now_ms) &&
	"$GANTRY" upgrade >up.out &&
	t1=$(_now_ms) &&
	cat up.out &&
	grep "upgraded: gantry serve is pid" up.out &&
	new_serve=$(serve_now) &&
	test "$new_serve" != "$old_serve" &&
	! kill -0 "$old_serve" 2>/dev/null &&
	wait_for 10 "! kill -0 $old_proxy 2>/dev/null" &&
	new_proxy=$(proxy_pid) &&
	test "$new_proxy" != "$old_proxy" &&
	echo "figures: upgrade took $((t1 - t0)) ms (the CLI, from request to the new controller answering)" &&
	n1=$(reqs 1) && n2=$(reqs 2) &&
	echo "figures: /metrics requests r1 $m1 -> $n1, r2 $m2 -> $n2 across the upgrade" &&
	test "$m1" -gt 0 && test "$n1" -ge "$m1" && test "$n2" -ge "$m2" &&
	grep "took over from the previous controller" serve.log &&
	# the TCP API was handed over too
	GANTRY_API=http://127.0.0.1:$API_PORT GANTRY_TOKEN=$TOKEN "$GANTRY" status -o json >tcp.json &&
	jcheck tcp.json "d[0][\"service\"] == \"hello\"" &&
	grep "previous proxy pid=$old_proxy finished its requests and exited" serve.log
'

test_expect_success 'the replicas were adopted, not restarted, and the canary is where it was' '
	gst >after.json &&
	python3 - before.json after.json <<-EOF
	import json, sys
	b, a = (json.load(open(f)) for f in sys.argv[1:3])
	pb = sorted((r["id"], r["pid"]) for r in b["replicas"])
	pa = sorted((r["id"], r["pid"]) for r in a["replicas"])
	print("before:", pb, b["canary"]["weight"])
	print("after: ", pa, a["canary"]["weight"])
	assert pb == pa, "replicas changed"
	assert a["canary"]["weight"] == 25 and a["rollout"]["id"] == b["rollout"]["id"]
	assert all(r["restarts"] == 0 for r in a["replicas"])
	EOF
'

test_expect_success 'the rollout completes under the new controller; no request failed' '
	rm -f "$TRASH/hold" &&
	wait_for 40 "st_check \"d[\\\"rollout\\\"][\\\"revision\\\"] == 2 and d[\\\"rollout\\\"][\\\"phase\\\"] != \\\"progressing\\\"\"" &&
	st_check "d[\"rollout\"][\"phase\"] == \"complete\" and d[\"stable_revision\"] == 2" &&
	stop_load up &&
	python3 -c "import json; d = json.load(open(\"$TRASH/up.json\")); print(\"figures: requests\", d[\"requests\"], \"failed\", d[\"errors\"] + d[\"non2xx\"], \"retried\", d.get(\"retries\"), \"longest\", d[\"max_ms\"], \"ms\")" &&
	load_clean up &&
	check_processes
'

test_expect_success 'only an admin of everything may upgrade: a deployer and a scoped admin are refused' '
	"$GANTRY" user add dep --role deployer -o json >dep.json &&
	"$GANTRY" user add sadm --role admin --env staging -o json >sadm.json &&
	for u in dep sadm; do
		t=$(python3 -c "import json; print(json.load(open(\"$u.json\"))[\"token\"])") &&
		before=$(serve_now) &&
		test_expect_code 3 env GANTRY_TOKEN=$t "$GANTRY" upgrade 2>err &&
		cat err &&
		test "$(serve_now)" = "$before" || return 1
	done &&
	! grep "starting the new controller" serve.log | grep -v "pid $old_serve)" | grep -q .
'

test_expect_success 'a binary that does not run: refused before anything changes' '
	printf "#!/bin/sh\nexit 1\n" >bad &&
	install_bin bad &&
	start_load bad1 -c 4 --rate 300 &&
	before=$(serve_now) &&
	test_expect_code 1 "$GANTRY" upgrade 2>err &&
	cat err &&
	grep "does not run" err &&
	test "$(serve_now)" = "$before" &&
	kill -0 "$before" &&
	test "$(pcode /)" = 200 &&
	stop_load bad1 &&
	load_clean bad1
'

test_expect_success 'a binary that runs but cannot serve: the old controller goes on' '
	printf "#!/bin/sh\n[ \"\$1\" = version ] && exec \"%s\" version\necho cannot start >&2\nexit 3\n" "$REAL" >bad2 &&
	install_bin bad2 &&
	start_load bad2 -c 4 --rate 300 &&
	before=$(serve_now) && proxy=$(proxy_pid) &&
	test_expect_code 1 "$GANTRY" upgrade 2>err &&
	cat err &&
	grep "did not take over: it exited with status 3" err &&
	test "$(serve_now)" = "$before" &&
	test "$(proxy_pid)" = "$proxy" &&
	stop_load bad2 &&
	load_clean bad2 &&
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "any(e[\"action\"] == \"upgrade\" and \"exited with status 3\" in str(e) for e in d)" &&
	jcheck audit.json "any(e[\"action\"] == \"upgrade\" and \"took_over\" in str(e) for e in d)"
'

test_expect_success 'the controller that stayed still acts: a deploy completes' '
	install_bin "$REAL" &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v3 --strategy rolling --wait &&
	st_check "d[\"stable_revision\"] == 3" &&
	check_processes
'

test_done
