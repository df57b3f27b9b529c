#!/bin/sh
test_description='examples/hello: endpoints, knobs, keep-alive, graceful SIGTERM, bad input'
. "$(dirname "$0")/lib/test-lib.sh"

require_cmd curl python3
[ -x "$HELLO" ] || skip_all "$HELLO not built (make examples)"
[ -x "$LOADGEN" ] || skip_all "$LOADGEN not built (make examples)"

# start_hello NAME [VAR=VALUE...]: starts hello on a fresh port (PORT_<NAME>)
# and waits until it answers.
start_hello() {
	_n=$1
	shift
	_p=$(free_port) || return 1
	eval "PORT_$_n=$_p"
	spawn_bg "$_n" env PORT="$_p" "$@" "$HELLO" &&
	wait_for 10 "curl -s -o /dev/null http://127.0.0.1:$_p/health"
}

# raw PORT < BYTES: sends the bytes as they are, prints the status lines of
# what comes back, one per line.
raw() {
	python3 -c '
import socket, sys
data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(data)
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except OSError:
    pass
# bodies end in "\n" without "\r": split on LF so a status line after one is seen
for line in out.split(b"\n"):
    if line.startswith(b"HTTP/"):
        print(line.rstrip(b"\r").decode())
' "$1"
}

test_expect_success 'PORT is required (exit 2, message)' '
	test_expect_code 2 env -u PORT "$HELLO" 2>err &&
	grep "PORT is not set" err
'

test_expect_success 'a malformed knob is a startup error (exit 2, names the knob)' '
	test_expect_code 2 env PORT=1 FAIL_RATE=2 "$HELLO" 2>err &&
	grep "FAIL_RATE" err &&
	test_expect_code 2 env PORT=1 LATENCY_MS=50-10 "$HELLO" 2>err &&
	grep "LATENCY_MS" err &&
	test_expect_code 2 env PORT=99999 "$HELLO" 2>err &&
	grep "PORT" err
'

test_expect_success 'GET / names version and revision, keeps the connection open' '
	start_hello h1 GANTRY_VERSION=v1.2 GANTRY_REVISION=7 &&
	curl -s -D headers -o body http://127.0.0.1:$PORT_h1/ &&
	test "$(cat body)" = "hello from v1.2 (revision 7)" &&
	grep -i "^X-Version: v1.2" headers &&
	grep -i "^X-Revision: 7" headers &&
	grep -i "^Content-Length: 29" headers &&
	! grep -i "^Connection:" headers &&
	curl -s -D headers2 -o /dev/null -H "Connection: close" http://127.0.0.1:$PORT_h1/ &&
	grep -i "^Connection: close" headers2
'

test_expect_success 'version falls back to APP_VERSION, then dev' '
	start_hello h2 APP_VERSION=app9 &&
	test "$(http_get http://127.0.0.1:$PORT_h2/)" = "hello from app9 (revision -)" &&
	start_hello h3 &&
	test "$(http_get http://127.0.0.1:$PORT_h3/)" = "hello from dev (revision -)"
'

test_expect_success 'health, 404, 405, slow, alloc' '
	test "$(http_get http://127.0.0.1:$PORT_h1/health)" = ok &&
	test "$(http_code http://127.0.0.1:$PORT_h1/nope)" = 404 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X DELETE http://127.0.0.1:$PORT_h1/)" = 405 &&
	test "$(http_get "http://127.0.0.1:$PORT_h1/slow?ms=100")" = "slept 100 ms" &&
	test "$(http_code "http://127.0.0.1:$PORT_h1/slow?ms=x")" = 400 &&
	test "$(http_get "http://127.0.0.1:$PORT_h1/alloc?mb=16")" = "allocated 16 MiB" &&
	test "$(http_code "http://127.0.0.1:$PORT_h1/alloc")" = 400
'

test_expect_success 'READY_DELAY_MS: /ready is 503, later 200' '
	start_hello r READY_DELAY_MS=1500 &&
	test "$(http_code http://127.0.0.1:$PORT_r/ready)" = 503 &&
	wait_for 10 "test \$(http_code http://127.0.0.1:$PORT_r/ready) = 200" &&
	test "$(http_get http://127.0.0.1:$PORT_r/ready)" = ready
'

test_expect_success 'UNHEALTHY_AFTER_S: /health turns 500' '
	start_hello u UNHEALTHY_AFTER_S=1 &&
	wait_for 10 "test \$(http_code http://127.0.0.1:$PORT_u/health) = 500"
'

test_expect_success 'FAIL_RATE=0.25 fails exactly a quarter of GET / (4 clients)' '
	start_hello f FAIL_RATE=0.25 GANTRY_VERSION=vf &&
	"$LOADGEN" --url http://127.0.0.1:$PORT_f/ -c 4 -n 400 >f.json &&
	test "$(json_get codes.500 <f.json)" = 100 &&
	test "$(json_get codes.200 <f.json)" = 300 &&
	test "$(json_get errors <f.json)" = 0 &&
	test "$(http_code http://127.0.0.1:$PORT_f/health)" = 200
'

test_expect_success 'LATENCY_MS with jitter still answers every request' '
	start_hello l LATENCY_MS=1-5 &&
	"$LOADGEN" --url http://127.0.0.1:$PORT_l/ -c 2 -n 20 >l.json &&
	test "$(json_get ok <l.json)" = 20
'

test_expect_success 'CRASH_AFTER_S exits with status 1' '
	p=$(free_port) &&
	spawn_bg crash env PORT=$p CRASH_AFTER_S=0.5 "$HELLO" &&
	{ wait_bg crash 10; rc=$?; } &&
	test "$rc" = 1 &&
	grep "crashing on purpose" crash.log
'

test_expect_success 'STARTUP_DELAY_MS delays listening, then serves' '
	p=$(free_port) &&
	spawn_bg late env PORT=$p STARTUP_DELAY_MS=500 "$HELLO" &&
	wait_for 10 "test \$(http_code http://127.0.0.1:$p/) = 200"
'

test_expect_success '250 concurrent keep-alive connections' '
	"$LOADGEN" --url http://127.0.0.1:$PORT_h1/ -c 250 -n 2500 --max-duration 60s >c.json &&
	test "$(json_get ok <c.json)" = 2500 &&
	test "$(json_get errors <c.json)" = 0 &&
	test "$(json_get versions.v1.2 <c.json)" = 2500
'

test_expect_success 'pipelined requests are answered in order' '
	printf "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n" |
		raw $PORT_h1 >out &&
	printf "HTTP/1.1 200 OK\nHTTP/1.1 404 Not Found\nHTTP/1.1 200 OK\n" >expect &&
	test_cmp expect out
'

test_expect_success 'bad requests get 400/411/431/505 and the server lives on' '
	printf "GARBAGE\r\n\r\n" | raw $PORT_h1 >out && grep "^HTTP/1.1 400" out &&
	printf "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" |
		raw $PORT_h1 >out && grep "^HTTP/1.1 411" out &&
	{
		printf "GET / HTTP/1.1\r\n" &&
		i=0 && while [ $i -lt 600 ]; do
			printf "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"; i=$((i + 1))
		done &&
		printf "\r\n"
	} | raw $PORT_h1 >out && grep "^HTTP/1.1 431" out &&
	printf "GET / HTTP/9.9\r\n\r\n" | raw $PORT_h1 >out && grep "^HTTP/1.1 505" out &&
	printf "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n" |
		raw $PORT_h1 >out && grep "^HTTP/1.1 400" out &&
	printf "\000\377\r\n\r\n\000\377\r\n\r\n" | raw $PORT_h1 >out && grep "^HTTP/1.1 400" out &&
	test "$(http_get http://127.0.0.1:$PORT_h1/health)" = ok
'

test_expect_success 'a request body announced by Content-Length is skipped' '
	printf "GET /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n" |
		raw $PORT_h1 >out &&
	printf "HTTP/1.1 200 OK\nHTTP/1.1 404 Not Found\n" >expect &&
	test_cmp expect out
'

test_expect_success 'SIGTERM: in-flight request finishes, no new connections, exit 0' '
	start_hello d GANTRY_VERSION=vd &&
	{ curl -s -o slow.out -w "%{http_code}" --max-time 20 \
		"http://127.0.0.1:$PORT_d/slow?ms=1500" >slow.code 2>&1 & } &&
	cpid=$! &&
	if command -v ss >/dev/null; then
		wait_for 30 "ss -Htn state established \"( dport = :$PORT_d )\" | grep -q ."
	else
		sleep 0.5
	fi &&
	kill_bg d TERM &&
	wait_for 30 "test \$(http_code http://127.0.0.1:$PORT_d/health) = 000" &&
	wait "$cpid" &&
	test "$(cat slow.code)" = 200 &&
	test "$(cat slow.out)" = "slept 1500 ms" &&
	{ wait_bg d 15; rc=$?; } &&
	test "$rc" = 0 &&
	grep "listening on 127.0.0.1:$PORT_d" d.log &&
	grep "stopped by signal 15.*in-flight at signal=1, drained" d.log
'

test_expect_success 'SIGTERM closes idle keep-alive connections at once' '
	start_hello i &&
	{ python3 -c "
import socket
s = socket.create_connection((\"127.0.0.1\", $PORT_i), timeout=10)
s.sendall(b\"GET /health HTTP/1.1\r\nHost: x\r\n\r\n\")
s.recv(4096)
open(\"idle-ready\", \"w\").close()
while s.recv(4096):
    pass
print(\"closed\")
" >idle.out & } &&
	ppid=$! &&
	wait_for 30 "test -f idle-ready" &&
	kill_bg i TERM &&
	{ wait_bg i 15; rc=$?; } &&
	test "$rc" = 0 &&
	wait "$ppid" &&
	grep closed idle.out &&
	# "drained" (not "drain timeout"): the idle connection did not hold it up
	grep "stopped by signal 15.*, drained)" i.log
'

test_done
