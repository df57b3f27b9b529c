#!/bin/sh
test_description='gantry proxy: PUT /routes pushes the table (token, 400, 409, atomic file), --await-routes serves nothing before the first push, even after a restart'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

# table GEN NAME: one route for web.localhost to upstream NAME
table() {
	eval "_port=\$UP_$2"
	printf '{"generation": %s, "routes": [{"hosts": ["web.localhost"], "service": "web", "environment": "t",' "$1"
	printf ' "revisions": [{"revision": "%s", "weight": 100, "backends": [{"address": "127.0.0.1:%s"}]}]}]}\n' \
		"$2" "$_port"
}

# push FILE [CURL ARG...]: PUT FILE on /routes with the token; the answer in put.out, the code on stdout
push() {
	_f=$1
	shift
	curl -s -o put.out -w '%{http_code}' --max-time 10 -X PUT --data-binary "@$_f" \
		-H "Authorization: Bearer $TOKEN" "$@" "http://127.0.0.1:$ADMIN_PORT/routes"
}

# pdata: PROXY_PORT's answer for web.localhost, or "refused"
pdata() {
	curl -s --max-time 10 -H "Host: web.localhost" "http://127.0.0.1:$PROXY_PORT/" || echo refused
}

test_expect_success 'setup: a proxy started with --await-routes and two workers' '
	build_helpers &&
	start_upstream A && start_upstream B &&
	printf "%s\n" 0123456789abcdef0123456789abcdef >token &&
	TOKEN=$(cat token) &&
	PROXY_PORT=$(free_port) && ADMIN_PORT=$(free_port) &&
	spawn_bg proxy "$GANTRY" proxy --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" \
		--admin-token-file "$TRASH/token" --routes "$TRASH/routes.json" --await-routes --workers 2 &&
	wait_for 5 "curl -s http://127.0.0.1:$ADMIN_PORT/healthz | grep -q \"waiting for routes\""
'

test_expect_success 'before the first table: the port refuses connections, /healthz is 503 waiting for routes' '
	test "$(pdata)" = refused &&
	test "$(curl -s -o h.out -w "%{http_code}" http://127.0.0.1:$ADMIN_PORT/healthz)" = 503 &&
	grep -x "waiting for routes" h.out &&
	curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/status" | grep -q "\"awaiting_routes\":true" &&
	test ! -e "$TRASH/routes.json"
'

test_expect_success 'no token: 401, still waiting' '
	table 3 A >t3.json &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X PUT --data-binary @t3.json http://127.0.0.1:$ADMIN_PORT/routes)" = 401 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X PUT --data-binary @t3.json -H "Authorization: Bearer ${TOKEN}x" http://127.0.0.1:$ADMIN_PORT/routes)" = 401 &&
	test "$(pdata)" = refused
'

test_expect_success 'a good push: 200 with the generation, written to --routes, served at once' '
	test "$(push t3.json)" = 200 &&
	cat put.out &&
	test "$(json_get generation <put.out)" = 3 &&
	test_cmp t3.json "$TRASH/routes.json" &&
	wait_for 5 "test \"\$(pdata)\" = A" &&
	test "$(curl -s http://127.0.0.1:$ADMIN_PORT/healthz)" = ok &&
	grep "listening=127.0.0.1:$PROXY_PORT generation=3 (the first route table arrived)" "$TRASH/proxy.log"
'

test_expect_success 'a bad body: 400 with the JSON pointer of the fault; table and file unchanged, requests still served' '
	table 4 B | sed "s/\"weight\": 100/\"weight\": 101/" >bad.json &&
	test "$(push bad.json)" = 400 &&
	cat put.out &&
	test "$(json_get pointer <put.out)" = /routes/0/revisions/0/weight &&
	printf "{\"generation\": 4, \"routes\": [" >trunc.json &&
	test "$(push trunc.json)" = 400 &&
	grep -q "PUT /routes:1:" put.out &&
	test_cmp t3.json "$TRASH/routes.json" &&
	test "$(pdata)" = A &&
	test "$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/status" | json_get generation)" = 3
'

test_expect_success 'an older generation: 409 (a stale controller cannot roll the proxy back); the same one again: 200' '
	table 2 B >t2.json &&
	test "$(push t2.json)" = 409 &&
	cat put.out &&
	grep -q "generation 2 is older than the one loaded (3)" put.out &&
	test "$(pdata)" = A &&
	test "$(push t3.json)" = 200
'

test_expect_success 'pushes racing SIGHUPs under load: the last push wins, no request fails, no torn file' '
	spawn_bg load "$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --host web.localhost \
		--concurrency 4 --duration 60s --stop-file "$TRASH/stop" || return 1
	( i=0; while [ ! -e "$TRASH/stop" ] && [ $i -lt 2000 ]; do kill -HUP $(pid_of proxy); i=$((i + 1)); sleep 0.005; done ) &
	hups=$! &&
	g=10 && fails=0 &&
	while [ $g -lt 70 ]; do
		if [ $((g % 2)) = 0 ]; then table $g A >tg.json; else table $g B >tg.json; fi &&
		code=$(push tg.json) &&
		if [ "$code" != 200 ]; then echo "push $g: $code $(cat put.out)"; fails=$((fails + 1)); fi
		g=$((g + 1))
	done &&
	touch "$TRASH/stop" &&
	wait $hups &&
	wait_bg load 70 &&
	test $fails = 0 &&
	table 69 B >t69.json &&
	test_cmp t69.json "$TRASH/routes.json" &&
	test "$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/status" | json_get generation)" = 69 &&
	test "$(pdata)" = B &&
	! grep "reload=failed" "$TRASH/proxy.log" &&
	test "$(grep -c "reload=ok by=sighup" "$TRASH/proxy.log")" -gt 10 &&
	tail -n 1 "$TRASH/load.log" >load.json &&
	cat load.json &&
	python3 -c "import json
d = json.load(open(\"load.json\"))
assert d[\"requests\"] > 100, d
assert d[\"ok\"] == d[\"requests\"] and d[\"non2xx\"] == 0 and d[\"errors\"] == 0, d"
'

test_expect_success 'the serving process killed: the new one waits for a push (requests wait in the backlog), then serves the pushed table' '
	old=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/status" | json_get pid) &&
	kill -9 "$old" &&
	wait_for 10 "curl -s http://127.0.0.1:$ADMIN_PORT/healthz | grep -q \"waiting for routes\"" &&
	new=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/status" | json_get pid) &&
	test "$new" != "$old" || return 1
	( curl -s --max-time 20 -H "Host: web.localhost" "http://127.0.0.1:$PROXY_PORT/" >waited.out; echo $? >waited.rc ) &
	waiter=$! &&
	sleep 0.5 &&
	test ! -s waited.rc &&
	table 70 A >t70.json &&
	test "$(push t70.json)" = 200 &&
	wait $waiter &&
	test "$(cat waited.rc)" = 0 &&
	test "$(cat waited.out)" = A &&
	test "$(curl -s http://127.0.0.1:$ADMIN_PORT/healthz)" = ok
'

test_expect_success 'stop: SIGTERM, exit 0' '
	kill_bg proxy TERM &&
	wait_bg proxy 40
'

test_done
