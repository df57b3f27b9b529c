#!/bin/sh
test_description='gantry proxy: routes v2: exact split, header rules, tags, sticky cookie, canary shield, /windows'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

# many GETs over one keep-alive connection: hits N HOST [CURL ARG...] prints one body per line
hits() {
	_n=$1 _h=$2
	shift 2
	_i=0
	while [ $_i -lt "$_n" ]; do
		echo "url = \"http://127.0.0.1:$PROXY_PORT/\""
		_i=$((_i + 1))
	done >hits.cfg
	curl -s --max-time 30 -H "Host: $_h" "$@" -K hits.cfg
}

routes_v2() { # routes_v2 GEN W41 W42
	write_routes <<-EOF
	{"generation": $1, "routes": [
	  {"hosts": ["web.prod.localhost", "*.example.com"], "service": "web", "environment": "prod",
	   "revisions": [
	     {"revision": "41", "weight": $2, "tags": ["stable"], "backends": [{"address": "127.0.0.1:$UP_A"}]},
	     {"revision": "42", "weight": $3, "tags": ["canary", "preview"], "backends": [{"address": "127.0.0.1:$UP_B"}]}],
	   "header_rules": [{"header": "canary", "value": "true", "revision": "42"},
	                    {"header": "X-Beta-User", "value": "team-", "prefix": true, "revision": "42"}],
	   "sticky": {"cookie": "gantry_rev", "max_age_s": 3600}, "tag_hosts": ["preview", "stable"]},
	  {"hosts": ["shop.prod.localhost"], "service": "shop", "environment": "prod",
	   "revisions": [
	     {"revision": "7", "weight": 50, "backends": [{"address": "127.0.0.1:$UP_S"}]},
	     {"revision": "8", "weight": 50, "backends": [{"address": "127.0.0.1:$UP_BAD"}]}],
	   "shield": {"canary": "8", "stable": "7"}}
	]}
	EOF
}

test_expect_success 'setup: A (41), B (42), S (shop 7) and BAD (shop 8, answers 500)' '
	build_helpers &&
	start_upstream A && start_upstream B && start_upstream S && start_upstream BAD 500 &&
	routes_v2 1 90 10 &&
	start_proxy --workers 1
'

test_expect_success 'split: exactly 90/10 in each of 3 windows of 100 consecutive requests' '
	hits 300 web.prod.localhost >split.out &&
	test "$(wc -l <split.out)" = 300 &&
	for w in 0 1 2; do
		sed -n "$((w * 100 + 1)),$((w * 100 + 100))p" split.out >win &&
		test "$(grep -c "^A$" win)" = 90 &&
		test "$(grep -c "^B$" win)" = 10 || return 1
	done
'

test_expect_success 'header rules: exact (name any case) and prefix always reach 42' '
	hits 20 web.prod.localhost -H "Canary: true" >h1 &&
	test "$(sort -u h1)" = B && test "$(wc -l <h1)" = 20 &&
	hits 20 web.prod.localhost -H "x-beta-user: team-blue" >h2 &&
	test "$(sort -u h2)" = B &&
	hits 100 web.prod.localhost -H "canary: yes" >h3 &&
	test "$(grep -c "^A$" h3)" = 90
'

test_expect_success 'tags: TAG---SVC.ENV.localhost (for the tags in tag_hosts) and X-Gantry-Tag reach their revision whatever the weights' '
	hits 20 preview---web.prod.localhost >t1 && test "$(sort -u t1)" = B &&
	hits 20 stable---web.prod.localhost >t2 && test "$(sort -u t2)" = A &&
	hits 20 web.prod.localhost -H "X-Gantry-Tag: canary" >t3 && test "$(sort -u t3)" = B &&
	test "$(pcode / web.prod.localhost -H "X-Gantry-Tag: nope")" = 404 &&
	test "$(pcode / nope---web.prod.localhost)" = 404 &&
	test "$(pcode / canary---web.prod.localhost)" = 404
'

test_expect_success 'sticky: the first answer sets the cookie; with it every request stays; stale after weight 0' '
	px / web.prod.localhost -D hdr >/dev/null &&
	grep -iE "^Set-Cookie: gantry_rev=(41|42); Path=/; HttpOnly; SameSite=Lax; Max-Age=3600" hdr &&
	hits 30 web.prod.localhost -b "gantry_rev=42" >s1 && test "$(sort -u s1)" = B &&
	hits 30 web.prod.localhost -b "theme=dark; gantry_rev=41" >s2 && test "$(sort -u s2)" = A &&
	px / web.prod.localhost -b "gantry_rev=42" -D hdr2 >/dev/null &&
	! grep -i "^Set-Cookie" hdr2 &&
	routes_v2 2 100 0 && reload_proxy 2 &&
	hits 10 web.prod.localhost -b "gantry_rev=42" >s3 && test "$(sort -u s3)" = A &&
	px / web.prod.localhost -b "gantry_rev=42" -D hdr3 >/dev/null &&
	grep -i "^Set-Cookie: gantry_rev=41;" hdr3
'

test_expect_success 'shield: idempotent requests that got a 5xx from the canary are answered by stable' '
	hits 100 shop.prod.localhost -w "%{http_code}\n" >sh1 &&
	test "$(grep -c "^200$" sh1)" = 100 &&
	test "$(grep -c "^S$" sh1)" = 100 &&
	admin /windows >w.json &&
	python3 -c "import json
d = json.load(open(\"w.json\"))
r = {(x[\"service\"], x[\"revision\"]): x for x in d[\"revisions\"]}
bad, good = r[(\"shop\", \"8\")], r[(\"shop\", \"7\")]
# the canary failed 50 times and it counts against it, not against stable
assert bad[\"requests\"] == 50 and bad[\"status\"][5] == 50, bad
assert good[\"requests\"] == 100 and good[\"status\"][2] == 100, good
"
'

test_expect_success 'shield: not for a POST, unless it carries an Idempotency-Key' '
	for i in 1 2 3 4 5 6 7 8 9 10; do pcode / shop.prod.localhost -d x; done >p1 &&
	test "$(grep -c "^500$" p1)" = 5 &&
	for i in 1 2 3 4 5 6 7 8 9 10; do pcode / shop.prod.localhost -d x -H "Idempotency-Key: k$i"; done >p2 &&
	test "$(sort -u p2)" = 200
'

test_expect_success 'shield: a canary that refuses connections is shielded too' '
	dead=$(free_port) &&
	sed "s/127.0.0.1:$UP_BAD/127.0.0.1:$dead/; s/\"generation\": 2/\"generation\": 3/" "$TRASH/routes.json" | write_routes &&
	reload_proxy 3 &&
	hits 20 shop.prod.localhost -w "%{http_code}\n" >sh2 &&
	test "$(grep -c "^200$" sh2)" = 20
'

test_expect_success '/windows: cumulative per-revision counters in the contract shape' '
	admin /windows >w2.json &&
	python3 -c "import json
d = json.load(open(\"w2.json\"))
assert d[\"generation\"] == 3 and d[\"now_ms\"] > 1600000000000, d
for x in d[\"revisions\"]:
    assert set(x) >= {\"service\", \"environment\", \"revision\", \"requests\", \"status\", \"latency\",
                      \"bytes_in\", \"bytes_out\", \"inflight\", \"upstream_errors\"}, x
    assert len(x[\"status\"]) == 6 and len(x[\"latency\"]) == 32, x
    assert x[\"requests\"] == sum(x[\"status\"]), x
    assert sum(x[\"latency\"]) == x[\"requests\"] - x[\"status\"][0], x
r = {(x[\"service\"], x[\"revision\"]): x for x in d[\"revisions\"]}
a = r[(\"web\", \"41\")]
assert a[\"environment\"] == \"prod\" and a[\"inflight\"] == 0 and a[\"bytes_out\"] > 0 and a[\"bytes_in\"] > 0, a
assert r[(\"shop\", \"8\")][\"upstream_errors\"] >= 1, r[(\"shop\", \"8\")]
" &&
	admin /metrics >m.txt &&
	grep "^gantry_http_requests_total{service=\"web\",environment=\"prod\",revision=\"41\",code=\"2xx\"} [1-9]" m.txt &&
	grep "^gantry_http_request_duration_seconds_bucket{service=\"web\",environment=\"prod\",revision=\"41\",le=\"0.0001\"} " m.txt &&
	grep "^gantry_http_request_duration_seconds_bucket{service=\"web\",environment=\"prod\",revision=\"41\",le=\"60\"} " m.txt &&
	grep "^gantry_proxy_upstream_errors_total{service=\"shop\",environment=\"prod\",revision=\"8\"} [1-9]" m.txt &&
	grep "^gantry_proxy_inflight{service=\"web\",environment=\"prod\",revision=\"41\"} 0$" m.txt &&
	grep "^gantry_proxy_route_generation 3$" m.txt
'

test_expect_success '/windows and /metrics list only revisions in the table (or with requests in flight); counters go on when one comes back' '
	req42() { python3 -c "import json, sys
d = json.load(open(sys.argv[1]))
print(sum(x[\"requests\"] for x in d[\"revisions\"] if (x[\"service\"], x[\"revision\"]) == (\"web\", \"42\")) if any((x[\"service\"], x[\"revision\"]) == (\"web\", \"42\") for x in d[\"revisions\"]) else \"absent\")" "$1"; } &&
	admin /windows >w3.json &&
	before=$(req42 w3.json) &&
	test "$before" -gt 0 &&
	write_routes <<-EOF &&
	{"generation": 4, "routes": [
	  {"hosts": ["web.prod.localhost"], "service": "web", "environment": "prod",
	   "revisions": [{"revision": "41", "weight": 100, "backends": [{"address": "127.0.0.1:$UP_A"}]}]}]}
	EOF
	reload_proxy 4 &&
	admin /windows >w4.json &&
	test "$(req42 w4.json)" = absent &&
	admin /metrics >m4.txt &&
	! grep "revision=\"42\"" m4.txt &&
	grep "^gantry_http_requests_total{service=\"web\",environment=\"prod\",revision=\"41\",code=\"2xx\"} [1-9]" m4.txt &&
	routes_v2 5 90 10 && reload_proxy 5 &&
	admin /windows >w5.json &&
	test "$(req42 w5.json)" = "$before" &&
	test "$(hits 20 web.prod.localhost -H "Canary: true" | sort -u)" = B &&
	admin /windows >w6.json &&
	test "$(req42 w6.json)" = $((before + 20))
'

test_done
