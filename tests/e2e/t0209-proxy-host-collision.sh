#!/bin/sh
test_description='gantry proxy: two routes claiming one host drop the later route only; the rest of the table applies, on start and on reload'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

# routes GEN EXTRA_HOST: web and api both claim shop.example.com (api is
# later: dropped), docs answers at EXTRA_HOST
routes() {
	write_routes <<JSON
{"generation": $1, "routes": [
  {"hosts": ["shop.example.com", "web.p.localhost"], "service": "web", "environment": "p",
   "backends": [{"address": "127.0.0.1:$UP_A"}]},
  {"hosts": ["api.p.localhost", "shop.example.com"], "service": "api", "environment": "p",
   "backends": [{"address": "127.0.0.1:$UP_B"}]},
  {"hosts": ["$2"], "service": "docs", "environment": "p",
   "backends": [{"address": "127.0.0.1:$UP_C"}]}
]}
JSON
}

test_expect_success 'setup: a table with a colliding pair starts' '
	build_helpers &&
	start_upstream A && start_upstream B && start_upstream C &&
	routes 1 docs.localhost &&
	start_proxy
'

test_expect_success 'the first route keeps the host; the other hosts route' '
	test "$(px / shop.example.com)" = A &&
	test "$(px / web.p.localhost)" = A &&
	test "$(px / docs.localhost)" = C
'

test_expect_success 'the dropped route answers nowhere, not even at its other hosts' '
	test "$(pcode / api.p.localhost)" = 404
'

test_expect_success 'the log names both routes and the host' '
	grep "route=dropped generation=1 index=1 service=api environment=p host=shop.example.com kept_by=0 kept_service=web kept_environment=p" "$TRASH/proxy.log"
'

test_expect_success '/status lists the dropped route' '
	admin /status >st.json &&
	python3 -c "import json
d = json.load(open(\"st.json\"))
assert d[\"dropped_routes\"] == [{\"route\": 1, \"service\": \"api\", \"environment\": \"p\",
    \"host\": \"shop.example.com\", \"kept_by\": 0, \"kept_service\": \"web\", \"kept_environment\": \"p\"}], d
b = {x[\"address\"] for x in d[\"backends\"]}
assert \"127.0.0.1:$UP_B\" not in b, b
"
'

test_expect_success 'a reload with the collision still applies the rest of the new table' '
	routes 2 help.localhost &&
	reload_proxy 2 &&
	test "$(px / help.localhost)" = C &&
	test "$(pcode / docs.localhost)" = 404 &&
	test "$(px / shop.example.com)" = A &&
	grep -c "route=dropped generation=2 index=1" "$TRASH/proxy.log" &&
	grep "reload=ok by=sighup generation=2 .* dropped=1" "$TRASH/proxy.log"
'

test_expect_success 'without the collision, /status lists nothing dropped and api routes' '
	write_routes <<JSON &&
{"generation": 3, "routes": [
  {"hosts": ["shop.example.com"], "service": "web", "environment": "p", "backends": [{"address": "127.0.0.1:$UP_A"}]},
  {"hosts": ["api.p.localhost"], "service": "api", "environment": "p", "backends": [{"address": "127.0.0.1:$UP_B"}]}
]}
JSON
	reload_proxy 3 &&
	test "$(px / api.p.localhost)" = B &&
	test "$(admin /status | python3 -c "import json, sys; print(len(json.load(sys.stdin)[\"dropped_routes\"]))")" = 0
'

test_done
