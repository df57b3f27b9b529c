#!/bin/sh
test_description='gantry proxy: malformed and oversized requests get 400/408/414/431/501 and a close'
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
	start_proxy --header-timeout 1 &&
	serving=$(serving_pid)
'

# expect STATUS REQUEST: the proxy answers STATUS and closes the connection
expect() {
	_got=$(raw_request "$2") || return 1
	if [ "$_got" != "$1 closed" ]; then
		echo "want '$1 closed', got '$_got' for: $2"
		return 1
	fi
}

test_expect_success 'a good request passes (the harness works)' '
	test "$(raw_request "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")" = "200 closed"
'

test_expect_success 'request smuggling framings are 400' '
	expect 400 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" &&
	expect 400 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" &&
	expect 400 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc" &&
	expect 400 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" &&
	expect 400 "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" &&
	expect 400 "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n" &&
	expect 400 "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n" &&
	expect 400 "GET / HTTP/1.1\r\nHost: a\r\nX\x01Y: 1\r\n\r\n" &&
	expect 400 "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n" &&
	expect 400 "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" &&
	expect 400 "GET / HTTP/1.1\r\n\r\n" &&
	expect 400 "GET / HTTP/1.1\r\nHost: a\r\n\rX: y\r\n\r\n" &&
	expect 400 "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n" &&
	expect 400 "get / HTTP/1.1\r\nHost: a\r\n\r\n" &&
	expect 400 "GET / HTTP/1.2\r\nHost: a\r\n\r\n" &&
	expect 400 "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n" &&
	expect 400 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n" &&
	expect 400 "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"
'

test_expect_success 'unsupported: other codings, CONNECT are 501; an upgrade with a body is 400' '
	expect 501 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" &&
	expect 501 "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n" &&
	expect 400 "POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nab"
'

test_expect_success 'limits: URI over 8 KiB is 414, more than 100 headers or 64 KiB is 431' '
	long=$(python3 -c "print(\"a\" * 8200)") &&
	expect 414 "GET /$long HTTP/1.1\r\nHost: a\r\n\r\n" &&
	many=$(python3 -c "print(\"\".join(\"X-%d: 1\\\\r\\\\n\" % i for i in range(101)))") &&
	expect 431 "GET / HTTP/1.1\r\nHost: a\r\n$many\r\n" &&
	big=$(python3 -c "print(\"v\" * 66000)") &&
	expect 431 "GET / HTTP/1.1\r\nHost: a\r\nX: $big\r\n\r\n"
'

test_expect_success 'a head that does not arrive in time is 408' '
	expect 408 "GET / HTTP/1.1\r\nHost: a\r\n"
'

test_expect_success 'after all that the proxy still serves' '
	test "$(pcode / a)" = 200 &&
	kill -0 "$(pid_of proxy)" &&
	# the same serving process: none crashed and was replaced by the master
	test "$(serving_pid)" = "$serving"
'

test_done
