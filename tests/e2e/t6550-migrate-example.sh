#!/bin/sh
test_description='examples/hello/gantry-migrations.yaml end to end: the expand migrations before the revision, the contract one after its watch, a second version with a new migration, gantry rollback across it (its down file run first)'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

EX=$TRASH/ex
DB=$TRASH/hello-staging.db

q() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print("\n".join("|".join(str(x) for x in r) for r in c.execute(sys.argv[2]).fetchall())); c.commit()' "$DB" "$1"
}

test_expect_success 'setup: a copy of the example, the controller in the directory its DATABASE_URL is relative to' '
	mkdir -p "$EX" &&
	cp "$ROOT/examples/hello/gantry-migrations.yaml" "$ROOT/examples/hello/hello" "$EX/" &&
	cp -r "$ROOT/examples/hello/db" "$EX/db" &&
	grep "DATABASE_URL: sqlite3://hello-staging.db" "$EX/gantry-migrations.yaml" &&
	"$GANTRY" validate -f "$EX/gantry-migrations.yaml" &&
	start_serve
'

test_expect_success 'deploy v1: 001 and 002 run before the revision, 003 (contract) waits for the watch' '
	"$GANTRY" deploy hello --env staging -f "$EX/gantry-migrations.yaml" --version v1 --wait &&
	pget / | grep v1 &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "2|0" &&
	"$GANTRY" db status hello --env staging >st.txt && cat st.txt &&
	"$GANTRY" db status hello --env staging -o json >st.json &&
	jcheck st.json "d[\"version\"] == 2 and [p[\"version\"] for p in d[\"pending\"]] == [3] and d[\"pending\"][0][\"contract\"]" &&
	test -s "$GANTRY_HOME/snapshots/hello-staging-r1.sqlite" &&
	q "INSERT INTO greetings (lang, text) VALUES (\"de\", \"Hallo\")"
'

test_expect_success 'the contract migration runs once the 30 s watch is over' '
	wait_for 60 "test \"\$(q \"SELECT version FROM schema_migrations\")\" = 3" &&
	"$GANTRY" db history hello --env staging >hist.txt && cat hist.txt &&
	grep "003_drop_legacy.up.sql" hist.txt &&
	"$GANTRY" events hello --env staging >ev.txt &&
	grep "after promotion (contract)" ev.txt
'

test_expect_success 'v2 with a new migration 004: run before v2 starts' '
	printf "ALTER TABLE greetings ADD COLUMN note text;\n" >"$EX/db/migrations/004_greetings_note.up.sql" &&
	printf "ALTER TABLE greetings DROP COLUMN note;\n" >"$EX/db/migrations/004_greetings_note.down.sql" &&
	"$GANTRY" deploy hello --env staging -f "$EX/gantry-migrations.yaml" --version v2 --wait &&
	pget / | grep v2 &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "4|0" &&
	q "SELECT note FROM greetings"
'

test_expect_success 'gantry rollback to v1 across 004: its down file first, then the old revision; rows kept' '
	start_load rb &&
	"$GANTRY" rollback hello --env staging --wait >out 2>err; rc=$?; cat out err; test $rc = 0 &&
	stop_load rb && load_clean rb &&
	say "transcript: gantry rollback hello --env staging --wait" && cat out err &&
	pget / | grep v1 &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "3|0" &&
	! q "SELECT note FROM greetings" 2>/dev/null &&
	test "$(q "SELECT text FROM greetings WHERE lang = \"de\"")" = Hallo &&
	"$GANTRY" events hello --env staging >ev.txt &&
	say "transcript: gantry events hello --env staging (the rollback)" &&
	sed -n "/running down-migrations/,\$p" ev.txt &&
	grep "1 down-migration run, the database is at version 3" ev.txt
'

test_expect_success 'stop' '
	stop_serve
'

test_done
