#!/bin/sh
test_description='serve --flags-listen: OFREP apart from the API, without --api too; the token refused from the head before the body; its own connection bound, so a flood of polls leaves the API alone; replicas are pointed at it'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl
require_gantry

API_PORT=$(free_port)
FLAGS_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
FL=http://127.0.0.1:$FLAGS_PORT

# ofrep ENV TOKEN KEY [CURL ARG...]: POST on the flags listener; the body in $TRASH/o.json, the code on stdout
ofrep() {
	_env=$1 _tok=$2 _key=${3:+/$3}
	shift 3
	curl -s -D "$TRASH/o.h" -o "$TRASH/o.json" -w '%{http_code}' --max-time 10 -X POST \
		-H "Authorization: Bearer $_tok" -H 'Content-Type: application/json' "$@" \
		"$FL/flags/$_env/ofrep/v1/evaluate/flags$_key"
}

test_expect_success 'a bad --flags-listen address is refused before anything starts' '
	test_expect_code 2 "$GANTRY" serve --flags-listen nowhere 2>err &&
	grep -- "--flags-listen: invalid address .nowhere." err
'

test_expect_success 'setup: serve --api and --flags-listen; hello fails while risky is on' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	  production: { replicas: 1 }
	services:
	  hello:
	    run: ./hello
	    env: { FAIL_WHEN_FLAG: risky }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	flags:
	  risky:
	    default: off
	EOF
	start_serve --api "127.0.0.1:$API_PORT" --flags-listen "127.0.0.1:$FLAGS_PORT" &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null &&
	"$GANTRY" flag token --env staging >staging.token &&
	"$GANTRY" flag token --env production >production.token
'

test_expect_success 'the replica is told the flags listener (GANTRY_FLAGS_URL), not the API' '
	pid=$(gst | json_get replicas.0.pid) &&
	tr "\0" "\n" </proc/$pid/environ >env.txt &&
	grep "^GANTRY_FLAGS_URL=http://127.0.0.1:$FLAGS_PORT/flags/staging$" env.txt &&
	grep "^GANTRY_FLAGS_TOKEN=$(cat staging.token)$" env.txt
'

test_expect_success 'the flags listener: evaluations, 401, 403, 405; nothing but OFREP (404)' '
	T=$(cat staging.token) &&
	test "$(ofrep staging "$T" risky -d "{\"context\":{\"targetingKey\":\"u1\"}}")" = 200 &&
	grep "\"value\":false" o.json &&
	test "$(ofrep staging "$T" "" -d "{\"context\":{\"targetingKey\":\"u1\"}}")" = 200 &&
	grep -i "^ETag: " o.h &&
	test "$(ofrep staging wrong-token risky -d "{}")" = 401 &&
	grep -i "^WWW-Authenticate: Bearer" o.h &&
	test "$(ofrep staging "$(cat production.token)" risky -d "{}")" = 403 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X POST -d "{}" "$FL/flags/staging/ofrep/v1/evaluate/flags/risky")" = 401 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $T" "$FL/flags/staging/ofrep/v1/evaluate/flags/risky")" = 405 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" "$FL/v1/ping")" = 404 &&
	test "$(curl -s -o o.json -w "%{http_code}" -X POST -H "Authorization: Bearer $T" -d "{}" "$FL/v1/status")" = 404 &&
	grep "feature flags only" o.json &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X POST -H "Authorization: Bearer $T" -H "Content-Type: application/json" -d "{}" -H "Content-Length: 100000" "$FL/flags/staging/ofrep/v1/evaluate/flags/risky")" = 413 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" "$API/v1/ping")" = 200
'

# head_only TOKEN: sends a head announcing a 100000-byte body and no body; prints the status
# line answered within 3 s, or "none"
head_only() {
	python3 - "$FLAGS_PORT" "$1" <<-"EOF"
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
	s.sendall(("POST /flags/staging/ofrep/v1/evaluate/flags/risky HTTP/1.1\r\nHost: x\r\n"
	           "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
	           "Content-Length: 60000\r\n\r\n" % sys.argv[2]).encode())
	s.settimeout(3)
	try:
	    print(s.recv(4096).decode().split("\r\n")[0] or "closed")
	except socket.timeout:
	    print("none")
	EOF
}

test_expect_success 'the token is checked from the head: 401 before any body byte (a good one waits for the body)' '
	test "$(head_only wrong-token)" = "HTTP/1.1 401 Unauthorized" &&
	test "$(head_only "$(cat production.token)")" = "HTTP/1.1 403 Forbidden" &&
	test "$(head_only "$(cat staging.token)")" = none
'

test_expect_success 'the same on --api (OFREP kept there for compatibility): 401 from the head' '
	test "$(python3 - "$API_PORT" <<-"EOF"
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
	s.sendall(b"POST /flags/staging/ofrep/v1/evaluate/flags/risky HTTP/1.1\r\nHost: x\r\n"
	          b"Authorization: Bearer wrong\r\nContent-Length: 60000\r\n\r\n")
	s.settimeout(3)
	try:
	    print(s.recv(4096).decode().split("\r\n")[0])
	except socket.timeout:
	    print("none")
	EOF
	)" = "HTTP/1.1 401 Unauthorized"
'

test_expect_success 'a flood of 300 held OFREP connections: the 257th on get 503, the API still answers, then all is well' '
	rm -f release &&
	"$GANTRY" user add vic --role viewer >vic.token &&
	python3 - "$FLAGS_PORT" "$(cat staging.token)" "$TRASH" <<-"EOF" >flood.out &
	import os, socket, sys, time
	port, tok, trash = int(sys.argv[1]), sys.argv[2], sys.argv[3]
	head = ("POST /flags/staging/ofrep/v1/evaluate/flags/risky HTTP/1.1\r\nHost: x\r\n"
	        "Authorization: Bearer %s\r\nContent-Length: 2\r\n\r\n" % tok).encode()
	socks = []
	for i in range(300):
	    s = socket.create_connection(("127.0.0.1", port))
	    s.sendall(head)
	    socks.append(s)
	# the refused ones are answered at once; the held ones wait for their body
	time.sleep(1)
	refused = 0
	for s in socks:
	    s.setblocking(False)
	    try:
	        if b" 503 " in s.recv(4096):
	            refused += 1
	    except BlockingIOError:
	        pass
	print("refused", refused, flush=True)
	open(os.path.join(trash, "flood.ready"), "w").close()
	end = time.time() + 60
	while not os.path.exists(os.path.join(trash, "release")) and time.time() < end:
	    time.sleep(0.05)
	ok = 0
	for s in socks:
	    try:
	        s.setblocking(True)
	        s.settimeout(5)
	        s.sendall(b"{}")
	        if b" 200 " in s.recv(4096):
	            ok += 1
	    except OSError:
	        pass
	print("answered", ok, flush=True)
	EOF
	echo $! >flood.pid &&
	wait_for 30 "test -e flood.ready" &&
	cat flood.out &&
	# 300 - 256; a poll of the replica in flight at that instant takes one more place
	refused=$(sed -n "s/^refused //p" flood.out) &&
	test "$refused" -ge 44 && test "$refused" -le 46 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" "$API/v1/ping")" = 200 &&
	GANTRY_API=$API GANTRY_TOKEN=$(cat vic.token) "$GANTRY" flag list --env staging >/dev/null &&
	touch release &&
	wait "$(cat flood.pid)" &&
	cat flood.out &&
	test "$(sed -n "s/^answered //p" flood.out)" = $((300 - refused)) &&
	test "$(ofrep staging "$(cat staging.token)" risky -d "{}")" = 200
'

test_expect_success 'without --api: OFREP on the flags listener alone; the replica sees a flip (figure)' '
	stop_serve &&
	start_serve --flags-listen "127.0.0.1:$FLAGS_PORT" &&
	test "$(ofrep staging "$(cat staging.token)" risky -d "{}")" = 200 &&
	# the restarted controller starts the replica again: ready first
	wait_for 30 "st_check \"d[\\\"ready_replicas\\\"] == 1\" >/dev/null" &&
	test "$(pcode /)" = 200 &&
	t0=$(date +%s%3N) &&
	"$GANTRY" flag set risky on --env staging --reason test >/dev/null &&
	t1=$(date +%s%3N) &&
	wait_for 10 "test \"\$(pcode /)\" = 500" &&
	t2=$(date +%s%3N) &&
	echo "figure: flag set took $((t1 - t0)) ms; the replica (polling every 50 ms over --flags-listen) answered 500 $((t2 - t0)) ms after the call" &&
	"$GANTRY" flag set risky off --env staging >/dev/null &&
	wait_for 10 "test \"\$(pcode /)\" = 200"
'

test_expect_success 'the controller stops cleanly, no sanitizer report' '
	stop_serve &&
	sanitizer_clean "$TRASH/serve.log" "$TRASH/serve-all.txt" "$GANTRY_HOME/logs/proxy.log"
'

test_done
