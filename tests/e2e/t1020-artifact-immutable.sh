#!/bin/sh
test_description='immutable artifacts (issue 12): a symlink chain that leads out is refused (upload and snapshot); a snapshot changed after it was stored is verified before its first start and refused'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
ADIR=$GANTRY_HOME/artifacts

# mkpack.py OUT ENTRY...: a pack (src/artifact/pack.h) of the entries,
# each d:PATH, l:PATH:TARGET or f:PATH:TEXT, in the order given; prints its digest
cat >"$TRASH/mkpack.py" <<'PY'
import hashlib, sys
h = hashlib.blake2b(digest_size=32)
b = bytearray(b"GNTPACK1")
for e in sys.argv[2:]:
    t, rest = e.split(":", 1)
    if t == "d":
        head = b"d" + rest.encode() + b"\0"
        h.update(head); b += head
    elif t == "l":
        p, target = rest.split(":", 1)
        head = b"l" + p.encode() + b"\0" + target.encode() + b"\0"
        h.update(head); b += head
    else:
        p, text = rest.split(":", 1)
        head = b"f" + p.encode() + b"\0"
        h.update(head + text.encode())
        b += head + len(text).to_bytes(8, "big") + text.encode()
b += b"e" + h.digest()
open(sys.argv[1], "wb").write(b)
print(h.hexdigest())
PY

put() {
	curl -s -o "$TRASH/body.json" -w '%{http_code}' --max-time 20 -X PUT -H "Authorization: Bearer $3" \
		--data-binary @"$1" "$API/v1/artifacts/$2"
}

# what exists beside HOME (the test's own files aside) and in it (logs and
# the database aside), and in HOME/artifacts: where a link out would lead
around() {
	(ls -A "$TRASH" | grep -v -e "\.log$" -e "\.json$" -e "\.lst$" -e "\.bin$" | sort;
	 ls -A "$GANTRY_HOME" | grep -v -e "^state\.db" -e "^logs$" -e "^audit" | sort; ls -A "$ADIR" | sort)
}

test_expect_success 'setup: a daemon with --api, a deployer, an app' '
	start_serve --api "127.0.0.1:$API_PORT" &&
	"$GANTRY" user add dan --role deployer >dan.token &&
	mkdir app && cp "$HELLO" app/hello &&
	cat >gantry.yaml <<-EOF
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
'

test_expect_success 'the chain a/up -> .., b -> a/up/a/up/../.. over PUT: 400 naming b, nothing stored or written' '
	around >before.lst &&
	d=$(python3 mkpack.py chain.bin d:a l:a/up:.. "l:b:a/up/a/up/../..") &&
	test "$(put chain.bin "$d" "$(cat dan.token)")" = 400 &&
	jcheck body.json "d[\"code\"] == 2 and \"symlink \x27b\x27 -> \x27a/up/a/up/../..\x27\" in d[\"error\"] and \"above the artifact\x27s root\" in d[\"error\"]" &&
	! test -e "$ADIR/$d" &&
	around >after.lst &&
	test_cmp before.lst after.lst
'

test_expect_success 'a link made harmless and then made to climb by a later one (c -> z/../x, z -> .): 400' '
	d=$(python3 mkpack.py later.bin "l:c:z/../x" l:z:.) &&
	test "$(put later.bin "$d" "$(cat dan.token)")" = 400 &&
	jcheck body.json "\"symlink \x27c\x27\" in d[\"error\"]" &&
	! test -e "$ADIR/$d"
'

test_expect_success 'a chain that stays inside is taken (201)' '
	d=$(python3 mkpack.py inside.bin d:a l:a/up:.. "l:b:a/up/a/up/a" f:f:x) &&
	test "$(put inside.bin "$d" "$(cat dan.token)")" = 201 &&
	test -L "$ADIR/$d/b"
'

test_expect_success 'a local deploy of a tree holding the chain fails naming the link; no revision' '
	mkdir -p app/a && ln -s .. app/a/up && ln -s a/up/a/up/../.. app/b &&
	test_must_fail "$GANTRY" deploy hello --env staging --version bad 2>err &&
	grep "app/b -> a/up/a/up/../..: symlink target resolves above the artifact.s root" err &&
	rm app/b app/a/up && rmdir app/a &&
	ghist >hist.json && jcheck hist.json "d == []"
'

test_expect_success 'v1 and v2 deploy; each artifact is verified once, before its first start' '
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	echo two >app/extra.txt &&
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	pget / | grep v2 &&
	ghist >hist.json &&
	d1=$(python3 -c "import json; print([r for r in json.load(open(\"hist.json\")) if r[\"revision\"] == 1][0][\"digest\"])") &&
	d2=$(python3 -c "import json; print([r for r in json.load(open(\"hist.json\")) if r[\"revision\"] == 2][0][\"digest\"])") &&
	test "$d1" != "$d2" &&
	test "$(grep -c "digest=$d1 verified" serve.log)" = 1 &&
	test "$(grep -c "digest=$d2 verified" serve.log)" = 1 &&
	"$GANTRY" scale hello --env staging --replicas 3 &&
	wait_for 20 "st_check \"len([r for r in d[\\\"replicas\\\"] if r[\\\"ready\\\"]]) == 3\"" &&
	test "$(grep -c "digest=$d2 verified" serve.log)" = 1
'

test_expect_success 'restart the controller; change a byte of v1 in HOME/artifacts behind its back' '
	stop_serve &&
	start_serve --api "127.0.0.1:$API_PORT" &&
	wait_for 20 "st_check \"len([r for r in d[\\\"replicas\\\"] if r[\\\"ready\\\"]]) == 3\"" &&
	f="$ADIR/$d1/hello" &&
	test "$(stat -c %a "$f")" = 555 &&
	chmod u+w "$f" &&
	printf "X" | dd of="$f" bs=1 seek=100 conv=notrunc 2>/dev/null &&
	chmod u-w "$f"
'

test_expect_success 'a rollback to v1 is refused: the rollout fails naming the digest, artifact_tampered, v2 keeps serving' '
	{ "$GANTRY" rollback hello --env staging --to-revision 1 --wait >out 2>err; true; } &&
	wait_for 20 "st_check \"d[\\\"rollout\\\"][\\\"phase\\\"] in (\\\"rolled_back\\\", \\\"failed\\\")\"" &&
	gst >st.json &&
	jcheck st.json "\"$d1\" in d[\"rollout\"][\"message\"] and \"changed after it was stored\" in d[\"rollout\"][\"message\"]" &&
	# a replica of the refused revision, if one was started, is stopped
	wait_for 20 "st_check \"all(r[\\\"revision\\\"] == 2 for r in d[\\\"replicas\\\"])\"" &&
	gevents >ev.jsonl &&
	grep "artifact_tampered" ev.jsonl | grep "$d1" &&
	grep "digest=$d1 tampered" serve.log &&
	pget / | grep v2
'

test_expect_success 'the untouched v2 still scales (verified once in this life)' '
	"$GANTRY" scale hello --env staging --replicas 1 &&
	wait_for 20 "st_check \"len(d[\\\"replicas\\\"]) == 1\"" &&
	pget / | grep v2
'

test_expect_success 'stop: serve exits 0' '
	stop_serve
'

test_done
