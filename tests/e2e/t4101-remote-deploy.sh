#!/bin/sh
test_description='gantry deploy over GANTRY_API from another directory uploads its artifact (PUT /v1/artifacts/DIGEST)'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid timeout
require_gantry

API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
ADIR=$GANTRY_HOME/artifacts

# pack.py DIR OUT [tamper|evil]: writes the pack of DIR (format of
# src/artifact/pack.h, written here independently) to OUT and prints
# its digest; "tamper" then flips a byte of the last file's contents (the
# digest printed and the end marker stay those of the real contents);
# "evil" adds an entry ../evil before the end marker
cat >"$TRASH/pack.py" <<'PY'
import hashlib, os, stat, sys
root, out = sys.argv[1], sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else ""
rels = []
for dp, dns, fns in os.walk(root):
    dns[:] = [d for d in dns if d not in (".git", ".gantry")]
    for n in dns + fns:
        if n not in (".git", ".gantry"):
            rels.append(os.path.relpath(os.path.join(dp, n), root).encode())
rels.sort()
h = hashlib.blake2b(digest_size=32)
b = bytearray(b"GNTPACK1")
last = None
for r in rels:
    p = os.path.join(root.encode(), r)
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode):
        head = b"l" + r + b"\0" + os.readlink(p) + b"\0"
        h.update(head)
        b += head
    elif stat.S_ISDIR(st.st_mode):
        head = b"d" + r + b"\0"
        h.update(head)
        b += head
    else:
        data = open(p, "rb").read()
        head = (b"x" if st.st_mode & 0o111 else b"f") + r + b"\0"
        h.update(head + data)
        b += head + len(data).to_bytes(8, "big")
        if data:
            last = len(b)
        b += data
if mode == "tamper":
    b[last] ^= 1
if mode == "evil":
    b += b"f../evil\0" + (4).to_bytes(8, "big") + b"evil"
b += b"e" + h.digest()
open(out, "wb").write(b)
print(h.hexdigest())
PY

# put FILE DIGEST TOKEN: the HTTP status of PUT /v1/artifacts/DIGEST; the body in $TRASH/body.json
put() {
	curl -s -o "$TRASH/body.json" -w '%{http_code}' --max-time 20 -X PUT -H "Authorization: Bearer $3" \
		--data-binary @"$1" "$API/v1/artifacts/$2"
}

# remote NAME CMD...: gantry CMD as the client would run it on its laptop: no
# GANTRY_HOME (and not the daemon's), GANTRY_API and the token of user NAME
remote() {
	_tok=$(cat "$TRASH/$1.token") && shift &&
	env -u GANTRY_HOME GANTRY_API="$API" GANTRY_TOKEN="$_tok" "$GANTRY" "$@"
}

# the artifacts of the daemon (names in HOME/artifacts, temp directories included)
artifacts() {
	ls -A "$ADIR" 2>/dev/null | sort
}

uploads() {
	"$GANTRY" audit -o json >"$TRASH/audit.json" &&
	python3 -c 'import json, sys; print(len([e for e in json.load(open(sys.argv[1])) if e["action"] == "artifact_upload"]))' \
		"$TRASH/audit.json"
}

test_expect_success 'setup: a daemon with --api and its own HOME; the client in another directory' '
	start_serve --api "127.0.0.1:$API_PORT" &&
	"$GANTRY" user add vic --role viewer >vic.token &&
	"$GANTRY" user add dan --role deployer >dan.token &&
	mkdir -p client/app/static client/app/bin &&
	cp "$HELLO" client/app/hello &&
	echo "page one" >client/app/static/page.txt &&
	ln -s static/page.txt client/app/index.txt &&
	printf "#!/bin/sh\necho tool\n" >client/app/bin/tool && chmod +x client/app/bin/tool &&
	cat >client/gantry.yaml <<-EOF &&
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
	test -z "$(artifacts)"
'

test_expect_success 'a remote deploy uploads the artifact; the proxy answers with the new version' '
	remote dan -f client/gantry.yaml deploy hello --env staging --version v1 --wait >out 2>err &&
	grep "rollout .* complete" out &&
	grep "^uploading artifact .*(" err &&
	grep "^uploaded artifact" err &&
	test "$(pget /)" != "" && pget / | grep v1 &&
	ghist >hist.json &&
	d1=$(python3 -c "import json; print(json.load(open(\"hist.json\"))[0][\"digest\"])") &&
	test "$(artifacts)" = "$d1" &&
	test "$(python3 pack.py client/app p1.bin)" = "$d1" &&
	diff -r --no-dereference client/app "$ADIR/$d1" &&
	test -x "$ADIR/$d1/bin/tool" && test -L "$ADIR/$d1/index.txt" &&
	! test -e client/.gantry &&
	test "$(uploads)" = 1 &&
	jcheck audit.json "[e for e in d if e[\"action\"] == \"artifact_upload\"][0][\"actor\"] == \"dan\"" &&
	grep "op=artifact_upload digest=$d1 status=201 .*max_step_us=" serve.log
'

test_expect_success 'the same artifact again: not uploaded again (the CLI says so, one upload in the audit log)' '
	remote dan -f client/gantry.yaml deploy hello --env staging --version v2 --wait >out 2>err &&
	grep "rollout .* complete" out &&
	grep "artifact $(echo "$d1" | cut -c1-12) already on the server" err &&
	! grep "uploading" err &&
	pget / | grep v2 &&
	test "$(uploads)" = 1 &&
	test "$(artifacts)" = "$d1"
'

test_expect_success 'a changed artifact is uploaded; the new revision serves its files' '
	echo "page two" >client/app/static/page.txt &&
	remote dan -f client/gantry.yaml deploy hello --env staging --version v3 --wait >out 2>err &&
	grep "^uploading artifact" err &&
	pget / | grep v3 &&
	test "$(uploads)" = 2 &&
	test "$(artifacts | wc -l)" = 2 &&
	ghist >hist.json &&
	d3=$(python3 -c "import json; print(json.load(open(\"hist.json\"))[0][\"digest\"])") &&
	test "$(cat "$ADIR/$d3/index.txt")" = "page two"
'

test_expect_success 'HEAD and GET say whether the daemon has an artifact; other methods 405, a bad digest 400' '
	auth="Authorization: Bearer $(cat vic.token)" &&
	test "$(curl -s -I -o /dev/null -w "%{http_code}" --max-time 10 -H "$auth" "$API/v1/artifacts/$d1")" = 200 &&
	test "$(curl -s -o body.json -w "%{http_code}" --max-time 10 -H "$auth" "$API/v1/artifacts/$d1")" = 200 &&
	jcheck body.json "d == {\"ok\": True, \"digest\": \"$d1\"}" &&
	missing=$(printf "%064d" 0) &&
	test "$(curl -s -I -o /dev/null -w "%{http_code}" --max-time 10 -H "$auth" "$API/v1/artifacts/$missing")" = 404 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 10 "$API/v1/artifacts/$d1")" = 401 &&
	curl -s -D headers -o body.json --max-time 10 -X POST -H "$auth" "$API/v1/artifacts/$d1" &&
	head -1 headers | grep " 405 " && grep -i "^Allow: PUT, GET, HEAD" headers &&
	test "$(curl -s -o body.json -w "%{http_code}" --max-time 10 -H "$auth" "$API/v1/artifacts/ABC")" = 400 &&
	jcheck body.json "\"64 lowercase hex digits\" in d[\"error\"]"
'

test_expect_success 'a viewer cannot upload: 403 before the body, nothing stored' '
	mkdir -p other && echo other >other/file &&
	dv=$(python3 pack.py other other.bin) &&
	test "$(put other.bin "$dv" "$(cat vic.token)")" = 403 &&
	grep "cannot run .artifact_upload. (needs role deployer)" body.json &&
	jcheck body.json "d[\"code\"] == 3" &&
	test "$(put other.bin "$dv" gnt_nope)" = 403 &&
	echo "page three" >client/app/static/page.txt &&
	test_expect_code 3 remote vic -f client/gantry.yaml deploy hello --env staging --version v4 2>err &&
	grep "permission denied: vic (role viewer) cannot run .artifact_upload." err &&
	test "$(artifacts | wc -l)" = 2 &&
	test "$(uploads)" = 2
'

test_expect_success 'a tampered pack is refused (409 digest mismatch) and leaves nothing in HOME/artifacts' '
	dt=$(python3 pack.py other tampered.bin tamper) &&
	test "$dt" = "$dv" &&
	test "$(put tampered.bin "$dt" "$(cat dan.token)")" = 409 &&
	jcheck body.json "\"digest mismatch\" in d[\"error\"] and d[\"code\"] == 1" &&
	test "$(artifacts | wc -l)" = 2 &&
	! test -e "$ADIR/$dt" &&
	test "$(put other.bin "$(printf "%064d" 1)" "$(cat dan.token)")" = 409 &&
	test "$(artifacts | wc -l)" = 2
'

test_expect_success 'a pack with ../evil is refused (400 naming the entry); nothing written outside' '
	de=$(python3 pack.py other evil.bin evil) &&
	test "$(put evil.bin "$de" "$(cat dan.token)")" = 400 &&
	jcheck body.json "\"../evil\" in d[\"error\"] and \"..\" in d[\"error\"] and d[\"code\"] == 2" &&
	! test -e "$GANTRY_HOME/evil" && ! test -e "$ADIR/../evil" &&
	test "$(artifacts | wc -l)" = 2
'

test_expect_success 'an upload cut short is refused and its temp directory removed' '
	python3 - "$API_PORT" "$(cat dan.token)" "$dv" <<-\PY &&
	import socket, sys
	port, tok, dig = int(sys.argv[1]), sys.argv[2], sys.argv[3]
	body = open("other.bin", "rb").read()
	s = socket.create_connection(("127.0.0.1", port), timeout=10)
	s.sendall(("PUT /v1/artifacts/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
	           "Content-Length: %d\r\n\r\n" % (dig, tok, len(body) + 100)).encode() + body)
	s.shutdown(socket.SHUT_WR)
	got = s.recv(4096)
	assert got.startswith(b"HTTP/1.1 400 "), got
	s.close()
	PY
	test "$(artifacts | wc -l)" = 2 &&
	test "$(put other.bin "$dv" "$(cat dan.token)")" = 201 &&
	jcheck body.json "d[\"created\"] is True and d[\"digest\"] == \"$dv\"" &&
	test "$(put other.bin "$dv" "$(cat dan.token)")" = 200 &&
	jcheck body.json "d[\"created\"] is False" &&
	test "$(artifacts | wc -l)" = 3 &&
	test "$(cat "$ADIR/$dv/file")" = other
'

test_expect_success 'a 20 MB artifact goes up in many reads; the daemon still answers' '
	python3 -c "import os; open(\"client/app/static/blob.bin\", \"wb\").write(os.urandom(20 * 1024 * 1024))" &&
	remote dan -f client/gantry.yaml deploy hello --env staging --version v5 --wait >out 2>err &&
	grep "^uploading artifact 2[01]\.[0-9] MB" err &&
	pget / | grep v5 &&
	ghist >hist.json &&
	d5=$(python3 -c "import json; print(json.load(open(\"hist.json\"))[0][\"digest\"])") &&
	cmp client/app/static/blob.bin "$ADIR/$d5/static/blob.bin" &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "$API/v1/ping")" = 200
'

test_expect_success 'a client gone in the middle of a large upload: its temp directory is removed' '
	python3 pack.py client/app big.bin >/dev/null &&
	python3 - "$API_PORT" "$(cat dan.token)" "$(printf "%064d" 2)" <<-\PY &&
	import socket, sys
	port, tok, dig = int(sys.argv[1]), sys.argv[2], sys.argv[3]
	body = open("big.bin", "rb").read()
	s = socket.create_connection(("127.0.0.1", port), timeout=10)
	s.sendall(("PUT /v1/artifacts/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
	           "Content-Length: %d\r\n\r\n" % (dig, tok, len(body))).encode())
	s.sendall(body[:len(body) // 2])
	s.close()
	PY
	wait_for 10 "test \"\$(artifacts | wc -l)\" = 4" &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "$API/v1/ping")" = 200
'

test_expect_success 'promote and rollback need no upload: rollback over TCP serves the old files' '
	remote dan -f client/gantry.yaml rollback hello --env staging --to-revision 3 --wait >out 2>err &&
	! grep "upload" err &&
	pget / | grep v3
'

test_expect_success 'stop: serve exits 0 with no sanitizer report; no temp directory left' '
	stop_serve &&
	! ls -A "$ADIR" | grep "^\.tmp"
'

test_done
