#!/bin/sh
test_description='the daemon survives anything sent to its API socket and changes nothing on bad input'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3
require_gantry

test_expect_success 'setup: a deployed service' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null
'

cat >"$TRASH/poke.py" <<'PY'
import json, socket, sys
path = sys.argv[1]
cases = [
    b"not json\n",
    b"[1,2,3]\n",
    b"{}\n",
    b'{"op": 42}\n',
    b'{"op": "nope"}\n',
    b'{"op": "deploy"}\n',
    b'{"op": "deploy", "service": "hello", "environment": "staging", "version": "x", "digest": "zz", "config": {}}\n',
    b'{"op": "deploy", "service": "hello", "environment": "staging", "version": "x", "digest": "0123456789abcdef0123", "config": {"run": 5}}\n',
    b'{"op": "scale", "service": "hello", "environment": "staging", "replicas": -3}\n',
    b'{"op": "scale", "service": "hello", "environment": "staging", "replicas": "many"}\n',
    b'{"op": "rollback", "service": "hello", "environment": "nowhere"}\n',
    b'{"op": "events", "after": "yesterday"}\n',
    b'{"op": "status", "service": ["x"]}\n',
    b'\xff\xfe\x00garbage\n',
    b'{"op": "status"' + b' ' * 100000 + b'}\n',
]
bad = 0
for c in cases:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall(c)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    r = json.loads(data)
    if c.startswith(b'{"op": "status"') and r.get("ok"):
        continue
    if r.get("ok") is not False or not r.get("error"):
        print("unexpected reply to", c[:60], "->", r)
        bad += 1
    else:
        print("ok:", c[:50], "->", r["error"][:80])
# a client that connects and goes away, and one that sends half a line and closes
for payload in (b"", b'{"op": "sta'):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(payload)
    s.close()
# over the size limit
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(path)
try:
    s.sendall(b"x" * (5 * 1024 * 1024))
    r = json.loads(s.recv(65536))
    if r.get("ok") is not False:
        bad += 1
except (BrokenPipeError, ConnectionResetError):
    pass
s.close()
sys.exit(1 if bad else 0)
PY

test_expect_success 'malformed requests get an error naming the problem' '
	python3 "$TRASH/poke.py" "$GANTRY_HOME/api.sock"
'

test_expect_success 'the daemon is still up and nothing changed' '
	"$GANTRY" status >/dev/null &&
	st_check "d[\"stable_revision\"] == 1 and d[\"phase\"] == \"healthy\" and len(d[\"replicas\"]) == 1" &&
	ghist >h.json &&
	jcheck h.json "len(d) == 1"
'

test_done
