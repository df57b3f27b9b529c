#!/bin/sh
test_description='tests/e2e/helpers/loadgen: exact counts, bounds, stop file, signals, retries'
. "$(dirname "$0")/lib/test-lib.sh"

require_cmd python3 curl
[ -x "$HELLO" ] || skip_all "$HELLO not built (make examples)"
[ -x "$LOADGEN" ] || skip_all "$LOADGEN not built (make examples)"

# fake_server NAME MODE: a one-purpose HTTP server on a fresh port (PORT_<NAME>),
# bounded to 60 s. MODES:
#   close-first  reads a request, closes without answering
#   one-per-conn answers the first request of a connection (keep-alive, no
#                Connection: close), then closes when the second one arrives
#   cut-body     announces 100 body bytes, sends 10, closes
#   chunked      answers with a chunked body (X-Version: chunky)
fake_server() {
	_p=$(free_port) || return 1
	eval "PORT_$1=$_p"
	spawn_bg "$1" python3 -c '
import socket, sys, threading, time
port, mode = int(sys.argv[1]), sys.argv[2]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
ls.settimeout(1)
def read_head(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = c.recv(4096)
        if not b:
            return None
        buf += b
    return buf
def serve(c):
    c.settimeout(10)
    try:
        if mode == "close-first":
            read_head(c)
        elif mode == "one-per-conn":
            if read_head(c) is not None:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Version: once\r\n\r\nok")
                read_head(c)
        elif mode == "cut-body":
            read_head(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        elif mode == "chunked":
            while read_head(c) is not None:
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Version: chunky\r\n\r\n"
                          b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
    except OSError:
        pass
    c.close()
end = time.time() + 60
open(sys.argv[3], "w").close()
while time.time() < end:
    try:
        c, _ = ls.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$_p" "$2" "$TRASH/$1.up" &&
	wait_for 10 "test -f '$TRASH/$1.up'"
}

test_expect_success 'setup: hello with FAIL_RATE=0.1' '
	PORT=$(free_port) &&
	spawn_bg hello env PORT=$PORT GANTRY_VERSION=v1 FAIL_RATE=0.1 "$HELLO" &&
	wait_for 10 "test \$(http_code http://127.0.0.1:$PORT/health) = 200"
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 "$LOADGEN" 2>err && grep -- "--url is required" err &&
	test_expect_code 2 "$LOADGEN" --url http://127.0.0.1:$PORT/ -c 0 2>err &&
	test_expect_code 2 "$LOADGEN" --url http://127.0.0.1:$PORT/ --duration 5x 2>err &&
	test_expect_code 2 "$LOADGEN" --url https://127.0.0.1:$PORT/ 2>err &&
	test_expect_code 2 "$LOADGEN" --url http://127.0.0.1:$PORT/ -H nocolon 2>err &&
	"$LOADGEN" --help | grep -- "--stop-file"
'

test_expect_success 'refuses targets other than loopback' '
	test_expect_code 2 "$LOADGEN" --url http://10.1.2.3:80/ -n 1 2>err &&
	grep "only 127.0.0.1, localhost and \[::1\]" err &&
	test_expect_code 2 "$LOADGEN" --url http://example.com/ -n 1 2>err
'

test_expect_success '--requests: exact counts by code and version' '
	"$LOADGEN" --url http://127.0.0.1:$PORT/ -c 4 -n 500 >o.json &&
	cat o.json &&
	test "$(json_get requests <o.json)" = 500 &&
	test "$(json_get ok <o.json)" = 450 &&
	test "$(json_get non2xx <o.json)" = 50 &&
	test "$(json_get errors <o.json)" = 0 &&
	test "$(json_get codes.500 <o.json)" = 50 &&
	test "$(json_get codes.200 <o.json)" = 450 &&
	test "$(json_get versions.v1 <o.json)" = 500 &&
	test "$(json_get stopped_by <o.json)" = requests &&
	test "$(json_get p50_ms <o.json)" != null &&
	python3 -c "import json, sys
d = json.load(open(\"o.json\"))
assert 0 <= d[\"p50_ms\"] <= d[\"p90_ms\"] <= d[\"p99_ms\"] <= d[\"max_ms\"], d"
'

test_expect_success '--no-keepalive and the Host header' '
	"$LOADGEN" --url http://127.0.0.1:$PORT/ --host web.staging.localhost -c 2 -n 100 \
		--no-keepalive >o.json &&
	test "$(json_get requests <o.json)" = 100 &&
	test "$(json_get errors <o.json)" = 0
'

test_expect_success '--rate with --requests counts every request' '
	"$LOADGEN" --url http://127.0.0.1:$PORT/ -c 2 -n 20 --rate 200 >o.json &&
	test "$(json_get requests <o.json)" = 20
'

test_expect_success '--duration ends the run by itself' '
	"$LOADGEN" --url http://127.0.0.1:$PORT/ -c 2 --rate 100 -d 500ms >o.json &&
	test "$(json_get stopped_by <o.json)" = duration &&
	test "$(json_get requests <o.json)" -gt 0 &&
	test "$(json_get aborted <o.json)" = 0
'

test_expect_success '--stop-file stops a background run cleanly' '
	rm -f stop &&
	spawn_bg load "$LOADGEN" --url http://127.0.0.1:$PORT/ -c 2 --rate 200 \
		--max-duration 60s --stop-file stop &&
	wait_for 10 "test \$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$PORT/health) = 200" &&
	sleep 0.5 &&
	touch stop &&
	{ wait_bg load 15; rc=$?; } &&
	test "$rc" = 0 &&
	test "$(json_get stopped_by <load.log)" = stop-file &&
	test "$(json_get requests <load.log)" -gt 0 &&
	test "$(json_get errors <load.log)" = 0
'

test_expect_success 'SIGTERM prints the JSON and abandons requests in flight' '
	spawn_bg sig "$LOADGEN" --url "http://127.0.0.1:$PORT/slow?ms=20000" -c 3 --timeout 30s \
		--max-duration 60s &&
	wait_for 10 "test \$(ss -Htn state established \"( dport = :$PORT )\" 2>/dev/null | wc -l) -ge 3 || ! command -v ss" &&
	sleep 0.2 &&
	kill_bg sig TERM &&
	{ wait_bg sig 15; rc=$?; } &&
	test "$rc" = 0 &&
	test "$(json_get stopped_by <sig.log)" = signal &&
	test "$(json_get aborted <sig.log)" = 3 &&
	test "$(json_get requests <sig.log)" = 0
'

test_expect_success '--max-duration bounds a run that nothing else ends' '
	"$LOADGEN" --url "http://127.0.0.1:$PORT/slow?ms=20000" -c 2 --timeout 30s \
		--max-duration 1s >o.json &&
	test "$(json_get stopped_by <o.json)" = max-duration &&
	test "$(json_get aborted <o.json)" = 2
'

test_expect_success '--timeout turns a slow answer into an error' '
	"$LOADGEN" --url "http://127.0.0.1:$PORT/slow?ms=3000" -c 1 -n 1 --timeout 500ms >o.json &&
	test "$(json_get errors <o.json)" = 1 &&
	test "$(json_get error_kinds.timeout <o.json)" = 1
'

test_expect_success 'a dead port: every request is a connect error' '
	dead=$(free_port) &&
	"$LOADGEN" --url http://127.0.0.1:$dead/ -c 2 -n 10 >o.json &&
	test "$(json_get requests <o.json)" = 10 &&
	test "$(json_get errors <o.json)" = 10 &&
	test "$(json_get error_kinds.connect <o.json)" = 10 &&
	test "$(json_get p99_ms <o.json)" = null
'

test_expect_success 'closed before answering on a fresh connection: an error' '
	fake_server cf close-first &&
	"$LOADGEN" --url http://127.0.0.1:$PORT_cf/ -n 5 >o.json &&
	test "$(json_get errors <o.json)" = 5 &&
	test "$(json_get error_kinds.closed <o.json)" = 5 &&
	test "$(json_get retries <o.json)" = 0
'

test_expect_success 'keep-alive race: closed on reuse is retried once, not an error' '
	fake_server once one-per-conn &&
	"$LOADGEN" --url http://127.0.0.1:$PORT_once/ -n 10 >o.json &&
	cat o.json &&
	test "$(json_get ok <o.json)" = 10 &&
	test "$(json_get errors <o.json)" = 0 &&
	test "$(json_get retries <o.json)" -ge 1 &&
	test "$(json_get versions.once <o.json)" = 10
'

test_expect_success 'a body cut short is an error' '
	fake_server cut cut-body &&
	"$LOADGEN" --url http://127.0.0.1:$PORT_cut/ -n 3 >o.json &&
	test "$(json_get errors <o.json)" = 3 &&
	test "$(json_get ok <o.json)" = 0
'

test_expect_success 'chunked responses on a kept-alive connection' '
	fake_server ch chunked &&
	"$LOADGEN" --url http://127.0.0.1:$PORT_ch/ -n 20 >o.json &&
	test "$(json_get ok <o.json)" = 20 &&
	test "$(json_get retries <o.json)" = 0 &&
	test "$(json_get versions.chunky <o.json)" = 20
'

test_expect_success 'a server stopping under load: no error beyond refused connections' '
	p=$(free_port) &&
	spawn_bg h2 env PORT=$p "$HELLO" &&
	wait_for 10 "test \$(http_code http://127.0.0.1:$p/health) = 200" &&
	rm -f stop2 &&
	spawn_bg load2 "$LOADGEN" --url http://127.0.0.1:$p/ -c 8 --rate 2000 \
		--max-duration 60s --stop-file stop2 &&
	sleep 0.5 &&
	kill_bg h2 TERM &&
	{ wait_bg h2 15; rc=$?; } && test "$rc" = 0 &&
	sleep 0.2 && touch stop2 &&
	{ wait_bg load2 15; rc=$?; } && test "$rc" = 0 &&
	cat load2.log &&
	test "$(json_get ok <load2.log)" -gt 0 &&
	test "$(json_get error_kinds.closed <load2.log)" = 0 &&
	test "$(json_get error_kinds.protocol <load2.log)" = 0 &&
	test "$(json_get error_kinds.timeout <load2.log)" = 0
'

test_done
