#!/bin/sh
test_description='gantry serve --api: the API over HTTP on TCP, a Bearer token on every request; the CLI with GANTRY_API'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid timeout
require_gantry

API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT

# raw.py PORT: sends stdin's bytes as they are (after an optional pause, see
# below) and prints the status code of the answer, or "none" when the
# connection closed without one; bounded at 20 s
cat >"$TRASH/raw.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0
data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(data)
if pause:
    time.sleep(pause)
got = b""
try:
    while b"\r\n" not in got:
        b = s.recv(4096)
        if not b:
            break
        got += b
except OSError:
    pass
parts = got.split(b" ")
print(parts[1].decode() if got.startswith(b"HTTP/1.1 ") and len(parts) > 1 else "none")
PY

# code METHOD OP [CURL ARG...]: the HTTP status of METHOD /v1/OP; the body in $TRASH/body.json
code() {
	_m=$1
	_op=$2
	shift 2
	curl -s -o "$TRASH/body.json" -w '%{http_code}' --max-time 10 -X "$_m" "$@" "$API/v1/$_op"
}

# tcp CMD...: runs gantry CMD over the TCP API with the token in $TRASH/$TOK.token
tcp() {
	GANTRY_API=$API GANTRY_TOKEN=$(cat "$TRASH/$TOK.token") "$GANTRY" "$@"
}

revisions() {
	ghist >"$TRASH/hist.json" &&
	python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$TRASH/hist.json"
}

test_expect_success 'setup: spec, daemon with --api, users over the Unix socket, revision 1' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 500ms
	EOF
	start_serve --api "127.0.0.1:$API_PORT" &&
	"$GANTRY" user add vic --role viewer >vic.token &&
	"$GANTRY" user add dan --role deployer >dan.token &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null &&
	test "$(revisions)" = 1
'

test_expect_success 'a bad --api address or a port in use fails serve at start, naming --api' '
	test_expect_code 2 "$GANTRY" serve --api "localhost" 2>err &&
	test "$(wc -l <err)" = 1 && grep -- "--api" err &&
	p1=$(free_port) && p2=$(free_port) &&
	test_expect_code 1 env GANTRY_HOME="$TRASH/home2" timeout 20 "$GANTRY" serve --listen "127.0.0.1:$p1" \
		--admin "127.0.0.1:$p2" --api "127.0.0.1:$API_PORT" 2>err &&
	grep -- "--api 127.0.0.1:$API_PORT: cannot listen: address already in use" err &&
	test "$(http_code "http://127.0.0.1:$p1/")" = 000
'

test_expect_success 'GET /v1/ping without a token answers ok and the version only' '
	test "$(code GET ping)" = 200 &&
	jcheck body.json "d == {\"ok\": True, \"version\": d[\"version\"]} and d[\"version\"]"
'

test_expect_success 'no Authorization: 401 with WWW-Authenticate: Bearer, reads too' '
	curl -s -D headers -o body.json --max-time 10 -X POST "$API/v1/status" &&
	head -1 headers | grep " 401 " &&
	grep -i "^WWW-Authenticate: Bearer" headers &&
	jcheck body.json "d[\"ok\"] is False and d[\"code\"] == 3 and \"Authorization: Bearer\" in d[\"error\"]" &&
	test "$(code POST status -H "Authorization: Basic dmljOng=")" = 401 &&
	test "$(code POST status -H "Authorization: Bearer")" = 401
'

test_expect_success 'a bad token: 403 and nothing changed' '
	test "$(code POST scale -H "Authorization: Bearer gnt_nope" \
		-d "{\"service\": \"hello\", \"environment\": \"staging\", \"replicas\": 3}")" = 403 &&
	jcheck body.json "d[\"code\"] == 3 and \"unknown or revoked API token\" in d[\"error\"]" &&
	st_check "d[\"desired_replicas\"] == 1" &&
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "not [e for e in d if e[\"action\"] == \"scale\"]"
'

test_expect_success 'curl POST /v1/status returns what gantry status -o json shows' '
	wait_for 10 "st_check \"d[\\\"phase\\\"] == \\\"healthy\\\"\"" &&
	test "$(code POST status -H "Authorization: Bearer $(cat vic.token)" \
		-d "{\"service\": \"hello\", \"environment\": \"staging\"}")" = 200 &&
	gst >sock.json &&
	python3 -c "import json, sys
a = json.load(open(\"body.json\"))[\"status\"][0]
b = json.load(open(\"sock.json\"))
# live figures that move between two reads: traffic windows, the uptime
# of the proxy, the free bytes of the disk
for k in (\"metrics\", \"proxy\", \"disk\"):
    a.pop(k, None); b.pop(k, None)
# and the memory and CPU of each replica, sampled now and then
for r in a[\"replicas\"] + b[\"replicas\"]:
    r.pop(\"memory_bytes\", None); r.pop(\"cpu_percent\", None)
sys.exit(0 if a == b else \"differ:\\n%s\\n%s\" % (a, b))"
'

test_expect_success 'GANTRY_API without GANTRY_TOKEN: one clear error line, exit 2' '
	test_expect_code 2 env GANTRY_API="$API" "$GANTRY" status 2>err &&
	test "$(wc -l <err)" = 1 &&
	grep "GANTRY_TOKEN" err &&
	test_expect_code 2 env GANTRY_API=ftp://127.0.0.1:1 GANTRY_TOKEN=x "$GANTRY" status 2>err &&
	grep "GANTRY_API" err
'

test_expect_success 'a viewer reads status over TCP; its deploy is refused (exit 3), nothing deployed' '
	TOK=vic &&
	tcp status hello --env staging -o json >vic-st.json &&
	jcheck vic-st.json "d[\"service\"] == \"hello\" and d[\"stable_revision\"] == 1" &&
	tcp -o json user whoami >who.json &&
	jcheck who.json "d[\"name\"] == \"vic\" and d[\"token\"] is True and d[\"os_user\"].startswith(\"tcp:127.0.0.1:\")" &&
	test_expect_code 3 tcp deploy hello --env staging --version v2 2>err &&
	grep "permission denied" err &&
	test "$(revisions)" = 1
'

test_expect_success 'a deployer deploys over TCP (--wait polls over TCP); the token user is the actor' '
	TOK=dan &&
	env GANTRY_API="$API" GANTRY_TOKEN="$(cat dan.token)" GANTRY_USER=mallory \
		"$GANTRY" deploy hello --env staging --version v2 --wait >out &&
	grep "rollout .* complete" out &&
	test "$(revisions)" = 2 &&
	jcheck hist.json "d[0][\"version\"] == \"v2\" and d[0][\"deployed_by\"] == \"dan\"" &&
	st_check "d[\"stable_revision\"] == 2 and d[\"version\"] == \"v2\"" &&
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "[e[\"actor\"] for e in d if e[\"action\"] == \"deploy\"][-1] == \"dan\"" &&
	! grep -q "$(cat dan.token)" audit.json
'

test_expect_success 'follow modes over TCP: events -f and status --watch poll until stopped' '
	TOK=vic &&
	# each follows until what it shows is there, then is stopped (SIGTERM: a
	# background job inherits SIGINT ignored) and must end, quietly
	env GANTRY_API="$API" GANTRY_TOKEN="$(cat vic.token)" "$GANTRY" events hello --env staging -f \
		>ev.out 2>ev.err &
	evpid=$! &&
	wait_for 60 "grep -q rollout ev.out" &&
	kill -0 $evpid &&
	kill -TERM $evpid && wait_for 20 "! kill -0 $evpid" &&
	! test -s ev.err &&
	env GANTRY_API="$API" GANTRY_TOKEN="$(cat vic.token)" "$GANTRY" status --watch >watch.out 2>watch.err &
	wpid=$! &&
	wait_for 60 "test \$(grep -c \"^--- \" watch.out) -ge 2" &&
	kill -0 $wpid &&
	kill -TERM $wpid && wait_for 20 "! kill -0 $wpid" &&
	! test -s watch.err &&
	grep hello watch.out
'

test_expect_success 'gantry logs refuses to run over GANTRY_API' '
	TOK=vic &&
	test_expect_code 2 tcp logs hello --env staging 2>err &&
	grep "not available over GANTRY_API" err
'

test_expect_success 'unknown operation 404, wrong method 405, body op mismatch 400, bad JSON 400' '
	auth="Authorization: Bearer $(cat vic.token)" &&
	test "$(code POST nosuchop -H "$auth")" = 404 &&
	jcheck body.json "\"nosuchop\" in d[\"error\"] and d[\"code\"] == 2" &&
	test "$(code POST "" -H "$auth")" = 404 &&
	test "$(code GET status -H "$auth")" = 405 &&
	test "$(code POST status -H "$auth" -d "{\"op\": \"deploy\"}")" = 400 &&
	test "$(code POST status -H "$auth" -d "{not json")" = 400 &&
	jcheck body.json "\"not JSON\" in d[\"error\"]" &&
	test "$(code POST status -H "$auth" -d "[1]")" = 400
'

test_expect_success 'malformed HTTP and a body over 4 MiB are refused (400, 413); the daemon still answers' '
	printf "GARBAGE\r\n\r\n" | python3 raw.py "$API_PORT" >c1 &&
	test "$(cat c1)" = 400 &&
	printf "POST /v1/status HTTP/1.1\r\n\r\n" | python3 raw.py "$API_PORT" >c2 &&
	test "$(cat c2)" = 400 &&
	printf "POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" |
		python3 raw.py "$API_PORT" >c3 &&
	test "$(cat c3)" = 400 &&
	python3 -c "import sys; sys.stdout.write(\"{\\\"x\\\": \\\"\" + \"a\" * (4 * 1024 * 1024) + \"\\\"}\")" >big.json &&
	test "$(code POST status -H "Authorization: Bearer $(cat vic.token)" --data-binary @big.json)" = 413 &&
	test "$(code POST status -H "Authorization: Bearer $(cat vic.token)" -H "Transfer-Encoding: chunked" \
		--data-binary @big.json)" = 413 &&
	test "$(code GET ping)" = 200 &&
	TOK=vic && tcp status >/dev/null
'

test_expect_success 'a head that does not arrive within 3 s gets 408' '
	printf "POST /v1/status HTTP/1.1\r\nHost: x\r\n" | python3 raw.py "$API_PORT" 0 >c4 &&
	test "$(cat c4)" = 408
'

test_expect_success 'a bad token is refused from the head: its body is never read' '
	python3 - "$API_PORT" <<-\PY
	import socket, sys, time
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
	s.sendall(b"POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer gnt_nosuchtoken\r\n"
	          b"Content-Length: 4194000\r\n\r\n")
	got = s.recv(4096)            # the answer comes before any byte of the body
	assert got.startswith(b"HTTP/1.1 403 "), got
	PY
'

test_expect_success 'an idle flood before authentication does not keep a token out' '
	python3 - "$API_PORT" "$(cat vic.token)" <<-\PY
	import socket, sys
	port, token = int(sys.argv[1]), sys.argv[2]
	idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(100)]
	s = socket.create_connection(("127.0.0.1", port), timeout=10)
	s.sendall(("POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
	           "Content-Length: 2\r\nConnection: close\r\n\r\n{}" % token).encode())
	got = s.recv(4096)
	assert got.startswith(b"HTTP/1.1 200 "), got
	# the server dropped idle ones to make room (it holds at most 16 unauthenticated)
	dropped = 0
	for c in idle:
	    c.settimeout(0.2)
	    try:
	        if c.recv(1) == b"":
	            dropped += 1
	    except (socket.timeout, ConnectionResetError):
	        pass
	    c.close()
	assert dropped >= 80, dropped
	PY
'

test_expect_success 'authenticated connections over 64 get 503; the API answers again once they are gone' '
	python3 - "$API_PORT" "$(cat vic.token)" <<-\PY &&
	import socket, sys, time
	port, token = int(sys.argv[1]), sys.argv[2]
	head = ("POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
	        "Content-Length: 2\r\n\r\n" % token).encode()
	held = []
	for _ in range(64):
	    c = socket.create_connection(("127.0.0.1", port), timeout=10)
	    c.sendall(head)           # authenticated, its body still to come
	    held.append(c)
	    time.sleep(0.01)
	extra = socket.create_connection(("127.0.0.1", port), timeout=10)
	extra.sendall(head + b"{}")
	got = extra.recv(4096)
	assert got.startswith(b"HTTP/1.1 503 "), got
	for s in held + [extra]:
	    s.close()
	PY
	wait_for 5 "test \"\$(code GET ping)\" = 200"
'

test_expect_success 'GANTRY_API pointing at nothing: a clear error, exit 1' '
	dead=$(free_port) &&
	test_expect_code 1 env GANTRY_API="http://127.0.0.1:$dead" GANTRY_TOKEN=x "$GANTRY" status 2>err &&
	grep "cannot reach the gantry API" err
'

test_expect_success 'stop: serve exits 0 with no sanitizer report' '
	stop_serve &&
	test "$(http_code "$API/v1/ping")" = 000
'

test_done
