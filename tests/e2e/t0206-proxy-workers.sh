#!/bin/sh
test_description='gantry proxy: N workers on one port, 1,000 route swaps under load, access log, body limits'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

routes_ab() { # routes_ab GEN WA WB
	write_routes <<-EOF
	{"generation": $1, "routes": [{"hosts": ["*"], "service": "web", "environment": "prod",
	  "revisions": [{"revision": "a", "weight": $2, "backends": [{"address": "127.0.0.1:$UP_A"}]},
	                {"revision": "b", "weight": $3, "backends": [{"address": "127.0.0.1:$UP_B"}]}]}]}
	EOF
}

test_expect_success 'setup: 2 workers, an access log, a 1 KiB body limit, 1 s body timeout' '
	build_helpers &&
	start_upstream A && start_upstream B &&
	routes_ab 1 50 50 &&
	start_proxy --workers 2 --access-log "$TRASH/access.log" --max-body 1Ki --body-timeout 1 &&
	test "$(admin /status | json_get workers)" = 2
'

test_expect_success 'a second proxy on the same port fails with "address in use"' '
	test_expect_code 1 "$GANTRY" proxy --listen "127.0.0.1:$PROXY_PORT" --routes "$TRASH/routes.json" \
		--workers 2 2>second.err &&
	grep "address in use" second.err
'

test_expect_success 'both workers serve (connections spread by the kernel), answers are right' '
	for i in $(seq 40); do px / any.localhost; done >w.out &&
	test "$(grep -c "^[AB]$" w.out)" = 40 &&
	grep -q "^A$" w.out && grep -q "^B$" w.out
'

test_expect_success 'access log: one JSON line per request, written off the request path' '
	pcode /sleep/0 logged.localhost -H "X-Request-Id: trace-me" >/dev/null &&
	wait_for 5 "grep -q trace-me \"$TRASH/access.log\"" &&
	python3 -c "import json
lines = [json.loads(l) for l in open(\"$TRASH/access.log\")]
e = [x for x in lines if x[\"request_id\"] == \"trace-me\"][0]
assert e[\"host\"] == \"logged.localhost\" and e[\"path\"] == \"/sleep/0\" and e[\"status\"] == 200, e
assert e[\"service\"] == \"web\" and e[\"revision\"] in (\"a\", \"b\") and e[\"method\"] == \"GET\", e
assert len(lines) >= 41, len(lines)
"
'

test_expect_success 'request body over --max-body: 413 for a Content-Length, and for a chunked body' '
	head -c 2000 /dev/zero >big &&
	test "$(pcode /echo x.localhost --data-binary @big)" = 413 &&
	test "$(pcode /echo x.localhost --data-binary @big -H "Transfer-Encoding: chunked")" = 413 &&
	head -c 1000 /dev/zero >small &&
	test "$(pcode /echo x.localhost --data-binary @small)" = 200
'

test_expect_success 'a client that stops sending its body gets 408 after --body-timeout' '
	python3 - $PROXY_PORT >slow.out <<-\EOF &&
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
	s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-some")
	print(s.recv(4096).split(b"\r\n")[0].decode())
	EOF
	test "$(cat slow.out)" = "HTTP/1.1 408 Request Timeout"
'

test_expect_success 'route swaps under load: 1,000 weight changes, zero failed requests' '
	spawn_bg load "$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --concurrency 16 \
		--stop-file "$TRASH/stop" --max-duration 120s &&
	python3 - "$TRASH/routes.json" "$(pid_of proxy)" $ADMIN_PORT $UP_A $UP_B >swaps.out <<-\EOF &&
	import json, os, signal, sys, time, urllib.request
	path, pid, admin, a, b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
	done = 0
	for i in range(1000):
	    gen = 100 + i
	    wa = i % 101
	    doc = {"generation": gen, "routes": [{"hosts": ["*"], "service": "web", "environment": "prod",
	           "revisions": [{"revision": "a", "weight": wa, "backends": [{"address": "127.0.0.1:" + a}]},
	                         {"revision": "b", "weight": 100 - wa, "backends": [{"address": "127.0.0.1:" + b}]}]}]}
	    with open(path + ".tmp", "w") as f:
	        json.dump(doc, f)
	    os.rename(path + ".tmp", path)
	    os.kill(pid, signal.SIGHUP)
	    deadline = time.time() + 5
	    while time.time() < deadline:
	        st = json.load(urllib.request.urlopen("http://127.0.0.1:%s/status" % admin, timeout=5))
	        if st["generation"] == gen:
	            done += 1
	            break
	        time.sleep(0.001)
	print("swaps", done)
	EOF
	touch "$TRASH/stop" &&
	wait_bg load 30 &&
	cat swaps.out && tail -n 1 "$TRASH/load.log" &&
	test "$(cat swaps.out)" = "swaps 1000" &&
	python3 -c "import json, sys
r = json.loads(open(\"$TRASH/load.log\").read().strip().splitlines()[-1])
assert r[\"requests\"] > 1000 and r[\"errors\"] == 0 and r[\"non2xx\"] == 0, r
assert set(r[\"versions\"]) <= {\"A\", \"B\"}, r
"
'

test_expect_success 'SIGTERM with 2 workers: exit 0 and the access log is flushed' '
	kill_bg proxy TERM &&
	wait_bg proxy 10 &&
	test "$(wc -l <"$TRASH/access.log")" -gt 1000
'

test_done
