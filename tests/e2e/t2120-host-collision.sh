#!/bin/sh
test_description='hosts: a spec routing one host to two services is refused; a host moved between services over two specs stays with the service serving it until that one is redeployed'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# hget HOST: the body of GET / through the proxy with that Host
hget() {
	curl -s --max-time 5 -H "Host: $1" "http://127.0.0.1:$PROXY_PORT/"
}
hcode() {
	curl -s -o /dev/null -w "%{http_code}" --max-time 5 -H "Host: $1" "http://127.0.0.1:$PROXY_PORT/"
}

spec() { # spec WEB_HOSTS API_HOSTS
	write_app_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  web:
	    run: ./hello
	    probes: { readiness: { http: /ready, period: 100ms } }
	    drain_timeout: 1s
	    hosts: [$1]
	  api:
	    run: ./hello
	    probes: { readiness: { http: /ready, period: 100ms } }
	    drain_timeout: 1s
	    hosts: [$2]
	EOF
}

test_expect_success 'setup: web serves shop.example.com' '
	spec shop.example.com api.example.com &&
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy web --env staging --version web1 --wait &&
	hget shop.example.com | grep "hello from web1"
'

test_expect_success 'a spec giving the host to both is refused by validate and by deploy, naming both' '
	spec shop.example.com "api.example.com, shop.example.com" &&
	test_expect_code 2 "$GANTRY" validate -f "$SPEC" 2>err &&
	cat err &&
	grep "services.api.hosts\[1\]: host .shop.example.com. is also routed to web@staging (services.web.hosts\[0\], line 9)" err &&
	! "$GANTRY" -f "$SPEC" deploy api --env staging --version api1 --wait 2>err &&
	grep "is also routed to web@staging" err &&
	hget shop.example.com | grep "hello from web1"
'

test_expect_success 'a spec moving the host to api: api deployed first does not take it from web' '
	spec web.example.com "api.example.com, shop.example.com" &&
	"$GANTRY" validate -f "$SPEC" &&
	"$GANTRY" -f "$SPEC" deploy api --env staging --version api1 --wait &&
	hget shop.example.com | grep "hello from web1" &&
	jcheck "$GANTRY_HOME/routes.json" "[r[\"service\"] for r in d[\"routes\"]] == [\"web\"]" &&
	test "$(hcode api.example.com)" = 404 &&
	"$GANTRY" events api --env staging -o json >ev.json &&
	test "$(grep -c "\"route_skipped\"" ev.json)" = 1 &&
	grep "not routed: host .shop.example.com. is routed to web@staging" ev.json
'

test_expect_success 'the event is not repeated while nothing changes' '
	"$GANTRY" scale web --env staging --replicas 2 &&
	wait_for 20 "test \$(python3 -c \"import json; d = json.load(open(\\\"$GANTRY_HOME/routes.json\\\")); print(len(d[\\\"routes\\\"][0][\\\"revisions\\\"][0][\\\"backends\\\"]))\") = 2" &&
	"$GANTRY" events api --env staging -o json >ev.json &&
	test "$(grep -c "\"route_skipped\"" ev.json)" = 1
'

test_expect_success 'web redeployed from the new spec lets it go: api gets the host' '
	"$GANTRY" -f "$SPEC" deploy web --env staging --version web2 --wait &&
	wait_for 10 "hget shop.example.com | grep -q \"hello from api1\"" &&
	hget web.example.com | grep "hello from web2" &&
	hget api.example.com | grep "hello from api1"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
