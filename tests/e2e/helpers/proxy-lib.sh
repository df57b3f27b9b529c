# proxy-lib.sh — helpers for the proxy's e2e scripts (t02*-proxy-*.sh).
# Source after lib/test-lib.sh. Builds the test upstream (helpers/upstream.c)
# into $TRASH with cc, so nothing outside the repository is needed.
#
#   build_helpers                 compile upstream (and loadgen if make did not)
#   start_upstream NAME [STATUS]  start one; sets UP_<NAME> to its port
#                                 (STATUS: its catch-all answers have it)
#   write_routes < JSON           atomically replace $TRASH/routes.json
#   start_proxy [ARG...]          start gantry proxy on PROXY_PORT/ADMIN_PORT
#   reload_proxy GEN              SIGHUP, then wait until /status says GEN
#   serving_pid                   the pid of the serving process (/status): the
#                                 master's child, or the proxy itself (--no-master)
#   admin PATH                    GET from the admin listener
#   px PATH HOST [CURL ARG...]    GET through the proxy, body on stdout
#   pcode PATH HOST [CURL ARG...] status code through the proxy
#   raw_request BYTES             send raw bytes (Python escapes), print
#                                 "<status> <closed|open>"
#   inflight ADDR                 in-flight count of ADDR in /status ("absent")

build_helpers() {
	cc -O2 -pthread -o "$TRASH/upstream" "$ROOT/tests/e2e/helpers/upstream.c" || return 1
	if [ ! -x "$LOADGEN" ]; then
		cc -O2 -pthread -o "$TRASH/loadgen" "$ROOT/tests/e2e/helpers/loadgen.c" || return 1
		LOADGEN=$TRASH/loadgen
	fi
}

start_upstream() {
	rm -f "$TRASH/up-$1.port"
	spawn_bg "up-$1" "$TRASH/upstream" "$1" "$TRASH/up-$1.port" ${2:-}
	wait_for 5 "test -s '$TRASH/up-$1.port'" || return 1
	eval "UP_$1=\$(cat '$TRASH/up-$1.port')"
}

write_routes() {
	cat >"$TRASH/routes.json.tmp" && mv "$TRASH/routes.json.tmp" "$TRASH/routes.json"
}

start_proxy() {
	PROXY_PORT=$(free_port) && ADMIN_PORT=$(free_port) || return 1
	spawn_bg proxy "$GANTRY" proxy --listen "127.0.0.1:$PROXY_PORT" \
		--admin "127.0.0.1:$ADMIN_PORT" --routes "$TRASH/routes.json" "$@"
	wait_for 5 "curl -sf http://127.0.0.1:$ADMIN_PORT/healthz"
}

admin() {
	curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT$1"
}

reload_proxy() {
	kill_bg proxy HUP &&
	wait_for 5 "test \"\$(admin /status | json_get generation)\" = $1"
}

serving_pid() {
	admin /status | json_get pid
}

px() {
	_p=$1 _h=$2
	shift 2
	curl -sS --max-time 10 -H "Host: $_h" "$@" "http://127.0.0.1:$PROXY_PORT$_p"
}

pcode() {
	_p=$1 _h=$2
	shift 2
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -H "Host: $_h" "$@" \
		"http://127.0.0.1:$PROXY_PORT$_p"
	return 0
}

inflight() {
	admin /status | python3 -c 'import json, sys
d = json.load(sys.stdin)
n = [b["inflight"] for b in d["backends"] if b["address"] == sys.argv[1]]
print(sum(n) if n else "absent")' "$1"
}

raw_request() {
	python3 - "$PROXY_PORT" "$1" <<'EOF'
import socket, sys
port = int(sys.argv[1])
data = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("127.0.0.1", port), timeout=8)
s.sendall(data)
buf, closed = b"", False
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            closed = True
            break
        buf += chunk
except (socket.timeout, ConnectionResetError):
    pass
code = buf.split(b" ")[1].decode() if buf.startswith(b"HTTP/1.1 ") else "none"
print(code, "closed" if closed else "open")
EOF
}
