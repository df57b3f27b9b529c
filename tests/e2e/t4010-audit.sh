#!/bin/sh
test_description='gantry audit: every mutating action is recorded; verify catches edited, deleted and reordered rows'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# sql STATEMENT: runs it on the state database behind the daemon's back
sql() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute(sys.argv[2])
c.commit()' "$GANTRY_HOME/state.db" "$1"
}

test_expect_success 'setup: spec, daemon, a few actions' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    run: ./hello
	EOF
	start_serve &&
	GANTRY_USER=alice "$GANTRY" incident open -s P2 -t "disk filling up" >/dev/null &&
	GANTRY_USER=bob "$GANTRY" incident close 1 -r "cleaned" >/dev/null &&
	"$GANTRY" user add erin --role approver >token &&
	GANTRY_USER=alice "$GANTRY" incident open -s P3 -t "typo on the home page" >/dev/null
'

test_expect_success 'the log lists each action with actor, action, target and a hash chain' '
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "[e[\"action\"] for e in d][:5] == [\"apply\", \"incident_open\", \"incident_close\", \"user_add\", \"incident_open\"]" &&
	jcheck audit.json "d[0][\"target\"] == \"spec\" and d[0][\"details\"][\"via\"] == \"serve\"" &&
	jcheck audit.json "d[1][\"actor\"] == \"alice\" and d[2][\"actor\"] == \"bob\"" &&
	jcheck audit.json "d[3][\"target\"] == \"erin\" and d[3][\"details\"][\"role\"] == \"approver\"" &&
	jcheck audit.json "all(e[\"seq\"] == i + 1 for i, e in enumerate(d))" &&
	jcheck audit.json "d[0][\"prev\"] == \"0\" * 64 and all(d[i][\"prev\"] == d[i - 1][\"hash\"] for i in range(1, len(d)))" &&
	jcheck audit.json "all(len(e[\"hash\"]) == 64 and e[\"time\"].endswith(\"Z\") for e in d)" &&
	! grep -q "$(cat token)" audit.json &&
	"$GANTRY" audit >table &&
	head -1 table | grep SEQ &&
	grep "incident_close" table | grep bob
'

test_expect_success 'verify: intact' '
	"$GANTRY" audit verify >out &&
	grep "intact" out &&
	"$GANTRY" audit verify -o json >v.json &&
	jcheck v.json "d[\"intact\"] is True and d[\"first_bad\"] is None and d[\"entries\"] >= 4"
'

test_expect_success 'verify: a row edited directly in SQLite is named' '
	sql "UPDATE audit SET actor = '\''mallory'\'' WHERE seq = 3" &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	grep "entry 3 was edited" out &&
	test_expect_code 1 "$GANTRY" audit verify -o json >v.json &&
	jcheck v.json "d[\"intact\"] is False and d[\"first_bad\"] == 3" &&
	sql "UPDATE audit SET actor = '\''bob'\'' WHERE seq = 3" &&
	"$GANTRY" audit verify
'

test_expect_success 'verify: two rows swapped are named' '
	sql "UPDATE audit SET seq = -3 WHERE seq = 3" &&
	sql "UPDATE audit SET seq = 3 WHERE seq = 4" &&
	sql "UPDATE audit SET seq = 4 WHERE seq = -3" &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	grep "entry 3 was reordered" out &&
	sql "UPDATE audit SET seq = -3 WHERE seq = 3" &&
	sql "UPDATE audit SET seq = 3 WHERE seq = 4" &&
	sql "UPDATE audit SET seq = 4 WHERE seq = -3" &&
	"$GANTRY" audit verify
'

test_expect_success 'verify: a deleted row is named' '
	sql "CREATE TABLE saved AS SELECT * FROM audit" &&
	sql "DELETE FROM audit WHERE seq = 2" &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	grep "entry 2 is missing" out &&
	sql "INSERT INTO audit SELECT * FROM saved WHERE seq = 2" &&
	"$GANTRY" audit verify
'

test_expect_success 'verify: the newest entry deleted is caught by the head kept apart' '
	sql "DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)" &&
	test_expect_code 1 "$GANTRY" audit verify >out &&
	grep "missing (deleted at the end" out
'

test_expect_success 'stop' '
	stop_serve
'

test_done
