#!/bin/sh
test_description='services.S.sticky: a cookie keeps a client on its revision while that revision has traffic'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl
require_gantry

# N requests, each on its own connection, with cookie header $2 (may be
# empty): one line per answer, the body
answers() {
	for _i in $(seq "$1"); do
		curl -s --max-time 5 -H "Host: $HOST" ${2:+-H "Cookie: $2"} "http://127.0.0.1:$PROXY_PORT/" || return 1
	done
}

test_expect_success 'setup: v1 and v2 of a sticky service at 50/50' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 1s
	    sticky: { max_age: 1h }
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null &&
	"$GANTRY" deploy hello --env staging --version v2 --wait >/dev/null &&
	"$GANTRY" traffic hello --env staging --set 1=50,2=50 &&
	wait_for 15 "st_check \"sorted(r[\\\"revision\\\"] for r in d[\\\"replicas\\\"] if r[\\\"ready\\\"]) == [1, 2]\" >/dev/null"
'

# each proxy worker splits by itself: new connections until both revisions
# answered (at most 50), each answer checked
test_expect_success 'a client without the cookie gets one naming the revision that answered' '
	: >seen &&
	for i in $(seq 50); do
		curl -s -D h --max-time 5 -H "Host: $HOST" "http://127.0.0.1:$PROXY_PORT/" >b || return 1
		v=$(sed -n "s/^hello from v\([0-9]\).*/\1/p" b) &&
		grep -i "^set-cookie: gantry_rev=$v; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600" h >/dev/null || return 1
		echo $v >>seen
		test $(sort -u seen | wc -l) -eq 2 && break
	done &&
	sort -u seen &&
	test $(sort -u seen | wc -l) -eq 2
'

test_expect_success 'the cookie keeps each client on its revision, with no new cookie' '
	answers 20 gantry_rev=1 | sort | uniq -c >one &&
	cat one && test $(wc -l <one) -eq 1 && grep -q " 20 hello from v1" one &&
	answers 20 gantry_rev=2 | sort | uniq -c >two &&
	cat two && test $(wc -l <two) -eq 1 && grep -q " 20 hello from v2" two &&
	curl -s -D h --max-time 5 -H "Host: $HOST" -H "Cookie: a=b; gantry_rev=1" "http://127.0.0.1:$PROXY_PORT/" >b &&
	grep -q "hello from v1" b &&
	! grep -qi "^set-cookie" h
'

test_expect_success 'a cookie naming a revision with no traffic is replaced' '
	"$GANTRY" traffic hello --env staging --set 1=0,2=100 &&
	wait_for 10 "curl -s --max-time 5 -H \"Host: \$HOST\" -H \"Cookie: gantry_rev=1\" http://127.0.0.1:\$PROXY_PORT/ | grep -q \"from v2\"" &&
	curl -s -D h --max-time 5 -H "Host: $HOST" -H "Cookie: gantry_rev=1" "http://127.0.0.1:$PROXY_PORT/" >b &&
	grep -q "hello from v2" b &&
	grep -i "^set-cookie: gantry_rev=2;" h &&
	answers 10 gantry_rev=1 | sort -u >all && test $(wc -l <all) -eq 1 && grep -q "from v2" all &&
	answers 10 gantry_rev=banana | sort -u >all && test $(wc -l <all) -eq 1 && grep -q "from v2" all
'

test_expect_success 'a spec without sticky: no cookie' '
	"$GANTRY" traffic hello --env staging --reset &&
	sed "/sticky:/d" gantry.yaml >g && mv g gantry.yaml &&
	"$GANTRY" deploy hello --env staging --version v3 --wait >/dev/null &&
	curl -s -D h --max-time 5 -H "Host: $HOST" "http://127.0.0.1:$PROXY_PORT/" >b &&
	grep -q "hello from v3" b &&
	! grep -qi "^set-cookie" h
'

test_expect_success 'sticky: true is a session cookie named gantry_rev' '
	printf "    sticky: true\n" >>gantry.yaml &&
	"$GANTRY" deploy hello --env staging --version v4 --wait >/dev/null &&
	curl -s -D h --max-time 5 -H "Host: $HOST" "http://127.0.0.1:$PROXY_PORT/" >b &&
	grep -q "hello from v4" b &&
	grep -i "^set-cookie: gantry_rev=4; Path=/; HttpOnly; SameSite=Lax" h &&
	! grep -qi "max-age" h
'

test_expect_success 'bad sticky values are refused at FILE:LINE:COL' '
	cat >bad.yaml <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  a:
	    run: ./hello
	    sticky: maybe
	  b:
	    run: ./hello
	    sticky: { cookie: "a b", max_age: 1500ms }
	  c:
	    run: ./hello
	    sticky: { cookies: x, max_age: 500d }
	EOF
	test_expect_code 2 "$GANTRY" validate -f bad.yaml 2>err &&
	cat err &&
	grep "bad.yaml:7:13: error: services.a.sticky: expected true, false or {cookie: NAME, max_age: DUR}, got .maybe." err &&
	grep "bad.yaml:10:23: error: services.b.sticky.cookie: a cookie name is 1 to 64 letters" err &&
	grep "bad.yaml:10:39: error: services.b.sticky.max_age: must be whole seconds from 0s to 400d" err &&
	grep "bad.yaml:13:15: error: services.c.sticky.cookies: unknown sticky key .cookies. (did you mean .cookie.?)" err &&
	grep "bad.yaml:13:36: error: services.c.sticky.max_age: must be whole seconds" err
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
