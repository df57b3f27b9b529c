#!/bin/sh
test_description='gantry proxy: the admin listener has a head timeout, a connection cap, a head size cap and a bearer token'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

FLOOD=$ROOT/tests/e2e/helpers/admin-flood.py

# acode PATH [CURL ARG...]: the admin's status code for PATH
acode() {
	_p=$1
	shift
	curl -s -o /dev/null -w "%{http_code}" --max-time 5 "$@" "http://127.0.0.1:$ADMIN_PORT$_p"
}

# a 6 s head timeout: long enough that the 64 connections test 5 holds are
# still held while its flood counts, however slow the machine (2 s was not)
test_expect_success 'setup: a proxy whose admin wants a token, 6 s head timeout' '
	build_helpers &&
	start_upstream A &&
	write_routes <<-EOF &&
	{"generation": 1, "routes": [{"hosts": ["*"], "service": "web",
	  "revisions": [{"revision": "1", "weight": 100, "backends": [{"address": "127.0.0.1:$UP_A"}]}]}]}
	EOF
	printf "%s\n" 0123456789abcdef0123456789abcdef >token &&
	TOKEN=$(cat token) &&
	start_proxy --admin-token-file "$TRASH/token" --header-timeout 6
'

test_expect_success 'no token or a wrong one: 401 with WWW-Authenticate; the token: 200; /healthz needs none' '
	test "$(acode /status)" = 401 &&
	test "$(acode /windows)" = 401 &&
	test "$(acode /metrics)" = 401 &&
	test "$(acode /status -H "Authorization: Bearer ${TOKEN}x")" = 401 &&
	test "$(acode /status -H "Authorization: Basic $TOKEN")" = 401 &&
	curl -s -D h401 -o /dev/null --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status" &&
	grep -i "^WWW-Authenticate: Bearer" h401 &&
	test "$(acode /status -H "Authorization: Bearer $TOKEN")" = 200 &&
	test "$(acode /metrics -H "authorization: bearer $TOKEN")" = 200 &&
	test "$(acode /healthz)" = 200 &&
	test "$(px / any.host)" = A
'

test_expect_success 'a head larger than 8 KiB: 431' '
	test "$(acode /status -H "Authorization: Bearer $TOKEN" -H "X-Big: $(printf "%09000d" 0)")" = 431
'

test_expect_success 'a slowloris (a byte a second) is closed by the head timeout; /status answers meanwhile' '
	python3 "$FLOOD" slowloris "$ADMIN_PORT" 15 >slow.out &
	slow=$! &&
	wait_for 10 "grep -q connected slow.out" &&
	sleep 1 &&
	test "$(acode /status -H "Authorization: Bearer $TOKEN")" = 200 &&
	wait $slow &&
	cat slow.out &&
	grep "^closed after [0-9.]* s$" slow.out &&
	test "$(sed -n "s/closed after \([0-9]*\).*/\1/p" slow.out)" -le 8
'

test_expect_success '100 idle connections: 36 refused at once, 64 held until the head timeout; then /status answers' '
	python3 "$FLOOD" idle "$ADMIN_PORT" 100 20 >idle.out &
	idle=$! &&
	wait_for 30 "grep -q ^extra idle.out" &&
	test "$(px / any.host)" = A &&
	wait $idle &&
	cat idle.out &&
	grep "^refused 36$" idle.out &&
	grep "^extra refused$" idle.out &&
	grep "^held 64 closed_later 64$" idle.out &&
	test "$(acode /status -H "Authorization: Bearer $TOKEN")" = 200
'

test_expect_success '--admin off loopback without --admin-token-file: exit 2 naming the flag; a bad token file too' '
	test_expect_code 2 "$GANTRY" proxy --listen 127.0.0.1:1 --admin 0.0.0.0:1 --routes "$TRASH/routes.json" 2>err1 &&
	grep "^error: --admin-token-file: required when --admin (0.0.0.0:1) is not a loopback address" err1 &&
	test_expect_code 2 "$GANTRY" proxy --listen 127.0.0.1:1 --admin :1 --routes "$TRASH/routes.json" 2>err2 &&
	grep "^error: --admin-token-file: required" err2 &&
	echo short >short &&
	test_expect_code 2 "$GANTRY" proxy --listen 127.0.0.1:1 --admin 127.0.0.1:1 --routes "$TRASH/routes.json" \
		--admin-token-file short 2>err3 &&
	grep "^error: --admin-token-file short: the token is shorter than 16 characters" err3 &&
	test_expect_code 2 "$GANTRY" proxy --listen 127.0.0.1:1 --admin 127.0.0.1:1 --routes "$TRASH/routes.json" \
		--admin-token-file nope 2>err4 &&
	grep "^error: --admin-token-file nope: No such file" err4
'

test_done
