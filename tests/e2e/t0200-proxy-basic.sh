#!/bin/sh
test_description='gantry proxy: routing by Host, weights, keep-alive, forwarded headers, admin'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

test_expect_success 'setup: upstreams A and B, proxy' '
	build_helpers &&
	start_upstream A && start_upstream B &&
	write_routes <<-EOF &&
	{"generation": 1, "routes": [
	  {"hosts": ["web.staging.localhost", "*.example.com"], "service": "web", "environment": "staging",
	   "backends": [{"address": "127.0.0.1:$UP_A", "weight": 90, "revision": "3"},
	                {"address": "127.0.0.1:$UP_B", "weight": 10, "revision": "4"}]},
	  {"hosts": ["*.api.example.com"], "service": "api",
	   "backends": [{"address": "127.0.0.1:$UP_B", "weight": 1}]},
	  {"hosts": ["empty.localhost"], "service": "empty", "backends": []},
	  {"hosts": ["zero.localhost"], "backends": [{"address": "127.0.0.1:$UP_A", "weight": 0}]}
	]}
	EOF
	start_proxy
'

test_expect_success 'exact host, any case, with a port' '
	test "$(px /sleep/0 web.staging.localhost -H "X-A: 1")" != "" &&
	test "$(pcode / web.staging.localhost)" = 200 &&
	test "$(pcode / WEB.Staging.LocalHost:8080)" = 200
'

test_expect_success 'wildcards: longest suffix wins' '
	for i in 1 2 3 4; do px / v1.api.example.com; done >api.out &&
	test "$(sort -u api.out)" = B &&
	test "$(pcode / a.b.example.com)" = 200
'

test_expect_success 'unknown host is 404, no backends 503, weight 0 only 503' '
	test "$(pcode / nope.localhost)" = 404 &&
	test "$(pcode / example.com)" = 404 &&
	test "$(pcode / empty.localhost)" = 503 &&
	test "$(pcode / zero.localhost)" = 503
'

test_expect_success 'HTTP/1.1 without Host is 400' '
	test "$(raw_request "GET / HTTP/1.1\r\n\r\n")" = "400 closed"
'

test_expect_success '90/10 weights: exactly 90 of 100 requests go to A' '
	i=0 &&
	while [ $i -lt 100 ]; do
		echo "http://127.0.0.1:$PROXY_PORT/"
		i=$((i + 1))
	done >urls &&
	: >split.out &&
	while read -r u; do printf "url = \"%s\"\n" "$u"; done <urls >curl.cfg &&
	curl -s --max-time 20 -H "Host: web.staging.localhost" -K curl.cfg >split.out &&
	test "$(grep -c "^A$" split.out)" = 90 &&
	test "$(grep -c "^B$" split.out)" = 10
'

test_expect_success 'upstream connections are kept alive and reused' '
	before=$(curl -s "http://127.0.0.1:$UP_B/count" | sed "s/.*connections=//") &&
	for i in 1 2 3 4 5 6 7 8; do pcode / v1.api.example.com; done >codes &&
	test "$(sort -u codes)" = 200 &&
	after=$(curl -s "http://127.0.0.1:$UP_B/count" | sed "s/.*connections=//") &&
	# our own /count connections plus at most one from the proxy
	test $((after - before)) -le 2
'

test_expect_success 'client keep-alive: several requests on one connection' '
	u="http://127.0.0.1:$PROXY_PORT/" &&
	curl -s -w "%{num_connects} " -H "Host: v1.api.example.com" \
		-o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u" >conns &&
	test "$(cat conns)" = "1 0 0 "
'

test_expect_success 'forwarded headers and hop-by-hop stripping' '
	px /headers v1.api.example.com -H "X-Forwarded-For: 10.0.0.1" -H "Connection: keep-alive, X-Secret" \
		-H "X-Secret: s" -H "Keep-Alive: 5" -H "TE: trailers" -H "Proxy-Connection: x" >h &&
	grep -i "^X-Forwarded-For: 127.0.0.1$" h &&
	grep -i "^X-Forwarded-Proto: http$" h &&
	grep -i "^X-Forwarded-Host: v1.api.example.com$" h &&
	grep -i "^Via: 1.1 gantry$" h &&
	grep -iE "^X-Request-Id: [0-9a-f]{32}$" h &&
	! grep -iE "^(X-Secret|Keep-Alive|TE|Proxy-Connection|Connection):" h &&
	px /headers v1.api.example.com -H "X-Request-Id: abc" >h2 &&
	test "$(grep -ic "^X-Request-Id:" h2)" = 1 &&
	grep -i "^X-Request-Id: abc$" h2
'

test_expect_success 'websocket upgrade: 101, then a tunnel both ways until EOF' '
	cat >ws.py <<-\EOF &&
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
	s.sendall(b"GET /ws HTTP/1.1\r\nHost: v1.api.example.com\r\nConnection: Upgrade\r\n"
	          b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
	buf = b""
	while b"\r\n\r\n" not in buf:
	    buf += s.recv(4096)
	head, rest = buf.split(b"\r\n\r\n", 1)
	print(head.split(b"\r\n")[0].decode())
	print([h.decode() for h in head.split(b"\r\n")[1:] if h.lower().startswith((b"upgrade:", b"connection:"))])
	s.sendall(b"ping-1 " * 1000)
	want = len(b"ping-1 " * 1000)
	while len(rest) < want:
	    rest += s.recv(65536)
	print("echoed", len(rest) == want)
	s.shutdown(socket.SHUT_WR)
	print("eof", s.recv(10) == b"")
	EOF
	python3 ws.py $PROXY_PORT >ws.out &&
	cat ws.out &&
	test "$(sed -n 1p ws.out)" = "HTTP/1.1 101 Switching Protocols" &&
	grep -i "connection: upgrade" ws.out && grep -i "upgrade: websocket" ws.out &&
	grep "^echoed True$" ws.out && grep "^eof True$" ws.out
'

test_expect_success 'an upgrade the upstream refuses is a plain answer, then close' '
	test "$(raw_request "GET / HTTP/1.1\r\nHost: v1.api.example.com\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")" = "200 closed"
'

test_expect_success 'admin: healthz, status and metrics' '
	test "$(admin /healthz)" = ok &&
	admin /status >status.json &&
	test "$(json_get generation <status.json)" = 1 &&
	# the serving process, a child of the master (pid_of proxy)
	pid=$(json_get pid <status.json) &&
	test "$(sed -n "s/^PPid:[[:space:]]*//p" /proc/$pid/status)" = "$(pid_of proxy)" &&
	python3 -c "import json,sys
d = json.load(open(\"status.json\"))
a = [b for b in d[\"backends\"] if b[\"address\"] == \"127.0.0.1:$UP_A\" and b[\"revision\"] == \"3\"][0]
assert a[\"service\"] == \"web\" and a[\"environment\"] == \"staging\", a
assert a[\"in_table\"] is True and a[\"inflight\"] == 0 and a[\"ejected\"] is False, a
assert a[\"requests\"] >= 90, a
" &&
	admin /metrics >metrics.txt &&
	grep "^gantry_http_requests_total{service=\"web\",environment=\"staging\",revision=\"3\",code=\"2xx\"} " metrics.txt &&
	grep "^gantry_http_requests_total{service=\"\",environment=\"\",revision=\"\",code=\"4xx\"} [1-9]" metrics.txt &&
	grep "^gantry_http_requests_total{service=\"empty\",environment=\"\",revision=\"\",code=\"5xx\"} 1$" metrics.txt &&
	grep "^gantry_http_request_duration_seconds_bucket{service=\"web\",environment=\"staging\",revision=\"3\",le=\"+Inf\"} " metrics.txt &&
	grep "^gantry_proxy_inflight{service=\"web\",environment=\"staging\",revision=\"3\"} 0$" metrics.txt &&
	grep "^gantry_proxy_route_generation 1$" metrics.txt
'

test_expect_success 'a bad routes file at start exits 2 naming the JSON path' '
	printf "{\"routes\": [{\"hosts\": [\"a\"], \"backends\": [{\"address\": \"127.0.0.1:1\", \"weight\": \"x\"}]}]}" >bad.json &&
	test_expect_code 2 "$GANTRY" proxy --listen 127.0.0.1:$(free_port) --routes bad.json 2>err &&
	grep "routes\[0\].backends\[0\].weight: expected an integer" err &&
	printf "{\"routes\": [\n  {\"hosts\": }\n]}" >syntax.json &&
	test_expect_code 2 "$GANTRY" proxy --listen 127.0.0.1:$(free_port) --routes syntax.json 2>err2 &&
	grep "syntax.json:2:" err2
'

test_expect_success '--forward-headers: only the listed ones are set; the others pass through untouched' '
	kill_bg proxy &&
	start_proxy --forward-headers X-Forwarded-For,via --trusted-proxies 127.0.0.0/8 &&
	px /headers v1.api.example.com -H "X-Forwarded-For: 10.0.0.1" -H "X-Forwarded-Proto: https" \
		-H "Via: 1.0 cdn" >h3 &&
	grep -i "^X-Forwarded-For: 10.0.0.1, 127.0.0.1$" h3 &&
	grep -i "^Via: 1.0 cdn, 1.1 gantry$" h3 &&
	grep -i "^X-Forwarded-Proto: https$" h3 &&
	! grep -iE "^(X-Forwarded-Host|X-Request-Id):" h3 &&
	kill_bg proxy &&
	start_proxy --forward-headers none &&
	px /headers v1.api.example.com -H "X-Forwarded-For: 10.0.0.1" -H "X-Request-Id: r1" >h4 &&
	grep -i "^X-Forwarded-For: 10.0.0.1$" h4 &&
	grep -i "^X-Request-Id: r1$" h4 &&
	! grep -iE "^(X-Forwarded-Proto|X-Forwarded-Host|Via):" h4 &&
	sed "s/^{\"generation\": 1,/{\"generation\": 2, \"forward_headers\": \"via\",/" "$TRASH/routes.json" >r2.json &&
	grep "\"forward_headers\": \"via\"" r2.json &&
	write_routes <r2.json && reload_proxy 2 &&
	px /headers v1.api.example.com -H "X-Forwarded-For: 10.0.0.1" >h5 &&
	grep -i "^Via: 1.1 gantry$" h5 &&
	grep -i "^X-Forwarded-For: 10.0.0.1$" h5 &&
	sed "s/^{\"generation\": 2, \"forward_headers\": \"via\",/{\"generation\": 3, \"forward_headers\": \"xff\",/" r2.json | write_routes &&
	kill_bg proxy HUP &&
	wait_for 5 "grep -q \"forward_headers: .xff. is not all, none\" \"$TRASH/proxy.log\"" &&
	test "$(admin /status | json_get generation)" = 2 &&
	test_expect_code 2 "$GANTRY" proxy --listen 127.0.0.1:1 --routes x --forward-headers via,xff 2>err3 &&
	grep "^error: --forward-headers: .xff. is not all, none or a list of" err3 &&
	test_expect_code 2 "$GANTRY" proxy --listen 127.0.0.1:1 --routes x --forward-headers none,via 2>err4 &&
	grep "none. cannot be combined" err4
'

test_expect_success '--trusted-proxies: X-Forwarded-For from others is replaced; from a trusted peer appended to' '
	kill_bg proxy &&
	sed "s/ \"forward_headers\": \"via\",//" r2.json | write_routes &&
	! grep forward_headers "$TRASH/routes.json" &&
	start_proxy &&
	px /headers v1.api.example.com -H "X-Forwarded-For: 6.6.6.6" -H "X-Forwarded-Proto: https" >t1 &&
	grep -i "^X-Forwarded-For: 127.0.0.1$" t1 &&
	grep -i "^X-Forwarded-Proto: http$" t1 &&
	kill_bg proxy &&
	start_proxy --trusted-proxies 10.0.0.0/8,::1/128 &&
	px /headers v1.api.example.com -H "X-Forwarded-For: 6.6.6.6" >t2 &&
	grep -i "^X-Forwarded-For: 127.0.0.1$" t2 &&
	kill_bg proxy &&
	start_proxy --trusted-proxies " 10.0.0.0/8, 127.0.0.1/32" &&
	px /headers v1.api.example.com -H "X-Forwarded-For: 6.6.6.6" -H "X-Forwarded-Proto: https" >t3 &&
	grep -i "^X-Forwarded-For: 6.6.6.6, 127.0.0.1$" t3 &&
	grep -i "^X-Forwarded-Proto: https$" t3 &&
	test_expect_code 2 "$GANTRY" proxy --listen 127.0.0.1:1 --routes "$TRASH/routes.json" \
		--trusted-proxies 10.0.0.0/8,fe80::/129 2>err5 &&
	grep "^error: --trusted-proxies: .fe80::/129. is not an address or CIDR" err5
'

test_done
