#!/bin/sh
test_description='gantry proxy: SIGTERM drains in-flight requests; upstream timeout is 504'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/helpers/proxy-lib.sh"

require_cmd cc curl python3 setsid
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

test_expect_success 'setup' '
	build_helpers &&
	start_upstream A &&
	write_routes <<-EOF &&
	{"routes": [{"hosts": ["*"], "backends": [{"address": "127.0.0.1:$UP_A"}]}]}
	EOF
	start_proxy --upstream-timeout 1
'

test_expect_success 'an upstream slower than --upstream-timeout gets 504' '
	test "$(pcode /sleep/2500 a)" = 504 &&
	test "$(pcode /sleep/10 a)" = 200
'

test_expect_success 'SIGTERM: in-flight requests finish, new connections are refused, exit 0' '
	# requests slow enough to be seen in flight on a loaded machine (a
	# python helper takes ~1 s to start there): a proxy that waits for them
	kill_bg proxy TERM && wait_bg proxy 10 &&
	start_proxy --upstream-timeout 30 &&
	spawn_bg slow1 curl -sS --max-time 30 -H "Host: a" "http://127.0.0.1:$PROXY_PORT/sleep/6000" &&
	spawn_bg slow2 curl -sS --max-time 30 -H "Host: a" -d hello "http://127.0.0.1:$PROXY_PORT/sleep/6500" &&
	wait_for 5 "test \"\$(inflight 127.0.0.1:$UP_A)\" = 2" &&
	kill_bg proxy TERM &&
	sleep 0.2 &&
	kill -0 "$(pid_of proxy)" &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 2 "http://127.0.0.1:$PROXY_PORT/")" = 000 &&
	wait_bg slow1 20 && wait_bg slow2 20 &&
	test "$(cat "$TRASH/slow1.log")" = A &&
	test "$(cat "$TRASH/slow2.log")" = A &&
	wait_bg proxy 10
'

test_expect_success 'SIGTERM with an idle keep-alive client exits promptly' '
	start_proxy &&
	cat >idle.py <<-\EOF &&
	import socket, sys, time
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
	s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	buf = b""
	while b"\r\n\r\nA\n" not in buf:  # head and body may come in separate reads
	    c = s.recv(4096)
	    if not c:
	        break
	    buf += c
	print(buf.split(b" ")[1].decode(), flush=True)
	print("eof" if s.recv(4096) == b"" else "data", flush=True)
	time.sleep(30)
	EOF
	spawn_bg idle python3 idle.py $PROXY_PORT &&
	wait_for 5 "grep -q 200 \"$TRASH/idle.log\"" &&
	kill_bg proxy TERM &&
	wait_bg proxy 5 &&
	wait_for 5 "grep -q eof \"$TRASH/idle.log\""
'

# --grace (HAProxy's grace): a window of 6 s for three requests
test_expect_success 'with --grace, SIGTERM first keeps serving while /healthz answers 503, then stops' '
	start_proxy --grace 6s &&
	test "$(curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/healthz")" = ok &&
	t0=$(_now_ms) &&
	kill_bg proxy TERM &&
	wait_for 5 "grep -q stopping=grace \"$TRASH/proxy.log\"" &&
	test "$(curl -s -o healthz.out -w "%{http_code}" --max-time 5 "http://127.0.0.1:$ADMIN_PORT/healthz")" = 503 &&
	test "$(cat healthz.out)" = stopping &&
	test "$(pcode / a)" = 200 &&
	test $(($(_now_ms) - t0)) -lt 6000 &&
	wait_bg proxy 20 &&
	test $(($(_now_ms) - t0)) -ge 6000 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 2 "http://127.0.0.1:$PROXY_PORT/")" = 000
'

test_expect_success 'with --grace, a second SIGTERM stops at once' '
	start_proxy --grace 60s &&
	kill_bg proxy TERM &&
	wait_for 5 "grep -q stopping=grace \"$TRASH/proxy.log\"" &&
	kill_bg proxy TERM &&
	wait_bg proxy 10
'

test_expect_success 'timeouts: idle keep-alive closed after --idle-timeout, a silent connection after --header-timeout' '
	start_proxy --idle-timeout 1 --header-timeout 2 &&
	cat >timeouts.py <<-\EOF &&
	import socket, sys, time
	port = int(sys.argv[1])
	def response(s):
	    buf = b""
	    while b"\r\n\r\n" not in buf:
	        c = s.recv(4096)
	        assert c, ("closed", buf)
	        buf += c
	    head, body = buf.split(b"\r\n\r\n", 1)
	    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
	    while len(body) < n:
	        c = s.recv(4096)
	        assert c, ("closed", body)
	        body += c
	    return head
	def eof_after(s):
	    t0 = time.monotonic()
	    s.settimeout(8)
	    data = s.recv(4096)
	    return data, time.monotonic() - t0
	# keep-alive: answered, then closed by the proxy once idle for 1 s
	s = socket.create_connection(("127.0.0.1", port), timeout=8)
	s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	assert response(s).startswith(b"HTTP/1.1 200 "), "no answer"
	data, waited = eof_after(s)
	assert data == b"" and 0.9 <= waited, (data, waited)
	# nothing sent: closed without an answer after the header timeout (2 s)
	s = socket.create_connection(("127.0.0.1", port), timeout=8)
	data, waited = eof_after(s)
	assert data == b"" and 1.9 <= waited, (data, waited)
	# a head that never ends: 408 after the header timeout
	s = socket.create_connection(("127.0.0.1", port), timeout=8)
	s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
	data, waited = eof_after(s)
	assert data.startswith(b"HTTP/1.1 408 ") and 1.9 <= waited, (data, waited)
	print("ok")
	EOF
	python3 timeouts.py $PROXY_PORT >timeouts.out &&
	test "$(cat timeouts.out)" = ok
'

test_done
