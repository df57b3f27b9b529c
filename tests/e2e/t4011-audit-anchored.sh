#!/bin/sh
test_description='gantry audit: entries sealed with a key kept outside the database, the caller from the kernel, the head exported; verify catches a rewrite with recomputed hashes, a deleted head row, a truncated end; serve refuses a readable key'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

EXPORT=$TRASH/elsewhere/audit.log

# tamper CMD [ARG]: what someone with write access to state.db (and, for
# reseal, to HOME) can do behind the daemon's back
cat >tamper.py <<'PY'
import hashlib, hmac, json, os, sqlite3, sys, time
home = os.environ["GANTRY_HOME"]
db = sqlite3.connect(os.path.join(home, "state.db"))
cmd = sys.argv[1]

def rfc3339(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

def canonical(r, v2):
    o = {"action": r["action"], "actor": r["actor"], "details": json.loads(r["details"]),
         "prev": r["prev"], "seq": r["seq"], "target": r["target"], "time": rfc3339(r["ts"])}
    if v2:
        o.update(uid=r["uid"], pid=r["pid"], peer=r["peer"])
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

def rows():
    cur = db.execute("SELECT seq, ts, actor, action, target, details, prev, hash, uid, pid, peer FROM audit ORDER BY seq")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur]

def rechain(frm, seal):
    """recomputes every hash from seq frm on, and the meta head, with seal(row)"""
    prev = None
    for r in rows():
        if r["seq"] >= frm:
            if prev is not None:
                r["prev"] = prev
            r["hash"] = seal(r)
            db.execute("UPDATE audit SET prev = ?, hash = ? WHERE seq = ?", (r["prev"], r["hash"], r["seq"]))
        prev = r["hash"]
        last = r
    db.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", ("%d %s" % (last["seq"], last["hash"]),))

if cmd == "save":
    db.execute("DROP TABLE IF EXISTS saved_audit")
    db.execute("DROP TABLE IF EXISTS saved_meta")
    db.execute("CREATE TABLE saved_audit AS SELECT * FROM audit")
    db.execute("CREATE TABLE saved_meta AS SELECT * FROM meta WHERE key LIKE 'audit%'")
elif cmd == "restore":
    db.execute("DELETE FROM audit")
    db.execute("INSERT INTO audit SELECT * FROM saved_audit")
    db.execute("DELETE FROM meta WHERE key LIKE 'audit%'")
    db.execute("INSERT INTO meta SELECT * FROM saved_meta")
elif cmd == "rewrite":
    # today's rule exactly: SHA-256 of the canonical entry, no key
    seq = int(sys.argv[2])
    db.execute("UPDATE audit SET details = ? WHERE seq = ?", ('{"title":"nothing happened"}', seq))
    rechain(seq, lambda r: hashlib.sha256(canonical(r, False)).hexdigest())
elif cmd == "reseal":
    # with the key (someone who can read HOME): a MAC recomputed for every entry
    key = open(os.path.join(home, "audit.key"), "rb").read()
    seq = int(sys.argv[2])
    db.execute("UPDATE audit SET details = ? WHERE seq = ?", ('{"title":"nothing happened"}', seq))
    rechain(seq, lambda r: hmac.new(key, canonical(r, True), hashlib.sha256).hexdigest())
    last = rows()[-1]
    with open(os.path.join(home, "audit.head"), "w") as f:
        f.write("%d %s %s\n" % (last["seq"], last["hash"], rfc3339(last["ts"])))
elif cmd == "truncate":
    n = int(sys.argv[2])
    db.execute("DELETE FROM audit WHERE seq > (SELECT MAX(seq) FROM audit) - ?", (n,))
    last = rows()[-1]
    db.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", ("%d %s" % (last["seq"], last["hash"]),))
elif cmd == "drop-head":
    db.execute("DELETE FROM meta WHERE key = 'audit_head'")
elif cmd == "check-macs":
    # every entry's hash is the documented HMAC-SHA256 of its v2 encoding
    key = open(os.path.join(home, "audit.key"), "rb").read()
    for r in rows():
        want = hmac.new(key, canonical(r, True), hashlib.sha256).hexdigest()
        if r["hash"] != want:
            sys.exit("entry %d: hash %s, want %s" % (r["seq"], r["hash"], want))
db.commit()
PY

tamper() {
	python3 "$TRASH/tamper.py" "$@"
}

test_expect_success 'setup: daemon exporting to a file outside HOME, a few actions' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    run: ./hello
	EOF
	mkdir elsewhere &&
	start_serve --audit-export "$EXPORT" &&
	GANTRY_USER=alice "$GANTRY" incident open -s P2 -t "disk filling up" >/dev/null &&
	GANTRY_USER=bob "$GANTRY" incident close 1 -r "cleaned" >/dev/null &&
	"$GANTRY" user add erin --role approver >/dev/null &&
	sh -c "echo \$\$ >cli.pid; GANTRY_USER=alice exec \"\$0\" incident open -s P3 -t typo" "$GANTRY" >/dev/null &&
	GANTRY_USER=bob "$GANTRY" incident close 2 -r "fixed" >/dev/null &&
	GANTRY_USER=alice "$GANTRY" incident open -s P3 -t "slow page" >/dev/null &&
	"$GANTRY" audit verify &&
	tamper save
'

test_expect_success 'the key is HOME/audit.key, 32 bytes, mode 0600' '
	test "$(stat -c %a "$GANTRY_HOME/audit.key")" = 600 &&
	test "$(stat -c %s "$GANTRY_HOME/audit.key")" = 32 &&
	tamper check-macs
'

test_expect_success '(d) entries carry the caller from the kernel: uid, pid, peer' '
	"$GANTRY" audit -o json >audit.json &&
	uid=$(id -u) && pid=$(cat cli.pid) &&
	jcheck audit.json "all(e[\"uid\"] == $uid and e[\"peer\"] in (\"unix\", \"controller\") and e[\"pid\"] > 0 for e in d)" &&
	jcheck audit.json "d[0][\"action\"] == \"apply\" and d[0][\"peer\"] == \"controller\"" &&
	jcheck audit.json "[e for e in d if e[\"action\"] == \"incident_open\"][1][\"pid\"] == $pid" &&
	jcheck audit.json "[e for e in d if e[\"action\"] == \"incident_open\"][1][\"peer\"] == \"unix\"" &&
	"$GANTRY" audit >table &&
	head -1 table | grep SEQ
'

test_expect_success 'the head is exported: HOME/audit.head and one export line per entry' '
	jcheck audit.json "open(\"$GANTRY_HOME/audit.head\").read().split() [:2] == [str(d[-1][\"seq\"]), d[-1][\"hash\"]]" &&
	jcheck audit.json "[__import__(\"json\").loads(l)[\"hash\"] for l in open(\"$EXPORT\")] == [e[\"hash\"] for e in d]" &&
	jcheck audit.json "len(open(\"$GANTRY_HOME/audit.head\").read().split()) == 3"
'

test_expect_success '(a) an entry rewritten, the unkeyed hashes and the head row recomputed: verify names it' '
	tamper rewrite 3 &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	cat out &&
	grep "entry 3 was edited" out &&
	test_expect_code 1 "$GANTRY" audit verify -o json >v.json &&
	jcheck v.json "d[\"intact\"] is False and d[\"first_bad\"] == 3" &&
	tamper restore &&
	"$GANTRY" audit verify
'

test_expect_success '(a) ... and the switch point moved past the end as well: caught by HOME/audit.head' '
	tamper rewrite 3 &&
	python3 -c "import sqlite3; c = sqlite3.connect(\"$GANTRY_HOME/state.db\"); c.execute(\"UPDATE meta SET value = 999 WHERE key = \x27audit_mac_from\x27\"); c.commit()" &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	cat out &&
	grep "audit.head" out &&
	tamper restore &&
	"$GANTRY" audit verify
'

test_expect_success '(b) the head row deleted: reported, not accepted' '
	tamper drop-head &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	cat out &&
	grep "meta audit_head) is missing" out &&
	tamper restore &&
	"$GANTRY" audit verify
'

test_expect_success '(c) the last 3 entries deleted and the head row fixed up: truncation against HOME/audit.head' '
	last=$(python3 -c "import json; print(json.load(open(\"audit.json\"))[-1][\"seq\"])") &&
	tamper truncate 3 &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	cat out &&
	grep "entries $((last - 2))..$last are missing (deleted at the end of the log)" out &&
	grep "audit.head" out &&
	test_expect_code 1 "$GANTRY" audit verify -o json >v.json &&
	jcheck v.json "d[\"first_bad\"] == $((last - 2))" &&
	tamper restore &&
	"$GANTRY" audit verify
'

test_expect_success 'HOME/audit.head deleted: reported' '
	mv "$GANTRY_HOME/audit.head" head.saved &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	grep "audit.head is missing" out &&
	mv head.saved "$GANTRY_HOME/audit.head" &&
	"$GANTRY" audit verify
'

test_expect_success 'with the key read from HOME, a resealed chain and head file: the export disagrees' '
	cp "$GANTRY_HOME/audit.head" head.saved &&
	tamper reseal 3 &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	cat out &&
	grep "does not match the export file $EXPORT" out &&
	tamper restore &&
	cp head.saved "$GANTRY_HOME/audit.head" &&
	"$GANTRY" audit verify
'

test_expect_success 'stop' '
	stop_serve
'

test_expect_success '(e) serve refuses an audit.key others can read, naming it' '
	chmod 644 "$GANTRY_HOME/audit.key" &&
	test_expect_code 1 timeout 10 "$GANTRY" serve --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" >out 2>err &&
	cat err &&
	grep "$GANTRY_HOME/audit.key: mode 0644" err &&
	grep "chmod 600" err &&
	chmod 600 "$GANTRY_HOME/audit.key"
'

test_expect_success 'serve refuses to make a new key when entries are sealed with the old one' '
	mv "$GANTRY_HOME/audit.key" key.saved &&
	test_expect_code 1 timeout 10 "$GANTRY" serve --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" >out 2>err &&
	grep "audit.key is missing" err &&
	! test -e "$GANTRY_HOME/audit.key" &&
	mv key.saved "$GANTRY_HOME/audit.key"
'

test_expect_success 'an upgrade: entries written before the key are verified by the old rule, the new ones by the MAC' '
	python3 -c "import sqlite3; c = sqlite3.connect(\"$GANTRY_HOME/state.db\")
c.execute(\"DELETE FROM meta WHERE key = \x27audit_mac_from\x27\"); c.commit()" &&
	python3 -c "import sqlite3; c = sqlite3.connect(\"$GANTRY_HOME/state.db\")
c.execute(\"UPDATE audit SET uid = NULL, pid = NULL, peer = \x27\x27\"); c.commit()" &&
	tamper rewrite 1 &&
	rm -f "$GANTRY_HOME/audit.key" "$GANTRY_HOME/audit.head" "$EXPORT" &&
	start_serve &&
	n=$(python3 -c "import sqlite3; print(sqlite3.connect(\"$GANTRY_HOME/state.db\").execute(\"SELECT MAX(seq) FROM audit\").fetchone()[0])") &&
	GANTRY_USER=alice "$GANTRY" incident open -s P3 -t "after the upgrade" >/dev/null &&
	"$GANTRY" audit verify -o json >v.json &&
	jcheck v.json "d[\"intact\"] is True and d[\"mac_from\"] == $n + 1" &&
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "d[$n - 1][\"uid\"] is None and d[$n][\"uid\"] == $(id -u)" &&
	tamper rewrite 2 &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	cat out &&
	grep "entry $((n + 1)) was edited" out
'

test_expect_success 'stop' '
	stop_serve
'

test_done
