#!/bin/sh
test_description='migrations on SQLite: a deploy runs the up-migrations before its revision; a failing one fails the deploy and keeps the rows; an edited file is refused; a held lock times out; gantry db status|history|up|down|restore'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

DB=$TRASH/app.db
M=$TRASH/app/migrations

# q SQL: one value (or rows joined by |) from the service's database
q() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print("\n".join("|".join(str(x) for x in r) for r in c.execute(sys.argv[2]).fetchall()))
c.commit()' "$DB" "$1"
}

test_expect_success 'setup: a service with two migrations, the controller' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    artifact: app
	    run: exec ./hello
	    env: { DATABASE_URL: "sqlite3://$DB" }
	    migrations: { dir: migrations, lock_timeout: 1s, snapshot: true }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 20s
	EOF
	mkdir -p "$M" &&
	printf "CREATE TABLE users (id integer primary key, name text not null);\n" >"$M/001_users.up.sql" &&
	printf "DROP TABLE users;\n" >"$M/001_users.down.sql" &&
	printf "ALTER TABLE users ADD COLUMN email text;\n" >"$M/002_email.up.sql" &&
	printf "ALTER TABLE users DROP COLUMN email;\n" >"$M/002_email.down.sql" &&
	start_serve
'

test_expect_success 'deploy: both migrations run before the revision, which then serves' '
	"$GANTRY" deploy hello --env staging --version v1 --wait >out 2>err &&
	cat out err &&
	test "$(pcode /)" = 200 &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "2|0" &&
	q "SELECT name FROM pragma_table_info(\"users\")" >cols &&
	grep -x email cols &&
	test "$(q "SELECT count(*) FROM gantry_migrations")" = 2 &&
	test "$(q "SELECT applied_by, revision FROM gantry_migrations WHERE version = 2")" = "$(id -un)|1"
'

test_expect_success 'db status (table and JSON) and db history' '
	"$GANTRY" db status hello --env staging >st.txt &&
	cat st.txt &&
	grep "version: 2" st.txt &&
	grep "pending: 0" st.txt &&
	"$GANTRY" db status hello --env staging -o json >st.json &&
	jcheck st.json "d[\"version\"] == 2 and d[\"dirty\"] is False and d[\"driver\"] == \"sqlite\"
		and [a[\"name\"] for a in d[\"applied\"]] == [\"001_users.up.sql\", \"002_email.up.sql\"]
		and all(len(a[\"checksum\"]) == 64 for a in d[\"applied\"])
		and [(r[\"revision\"], r[\"needs\"]) for r in d[\"revisions\"]] == [(1, 2)]" &&
	"$GANTRY" db history hello --env staging -o json >h.json &&
	jcheck h.json "[(r[\"direction\"], r[\"version\"], r[\"result\"]) for r in d[\"history\"]] == [(\"up\", 2, \"ok\"), (\"up\", 1, \"ok\")]" &&
	ev_check "any(e[\"kind\"] == \"migrated\" and \"2 migrations applied\" in e[\"message\"] for e in ev)"
'

test_expect_success 'a migration with a syntax error fails the deploy: rows kept, schema at 2, no revision, v1 serves' '
	q "INSERT INTO users (name, email) VALUES (\"ada\", \"ada@example.org\")" &&
	printf "INSERT INTO users (name) VALUES (\"grace\");\nCRATE TABLE oops (x int);\n" >"$M/003_broken.up.sql" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 --wait >out 2>err &&
	cat err &&
	grep "migration failed: 003_broken.up.sql:2: near \"CRATE\": syntax error" err &&
	grep "no revision started" err &&
	test "$(q "SELECT name FROM users")" = ada &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "2|0" &&
	q "SELECT result FROM gantry_migrations_log WHERE version = 3" >r && grep -x failed r &&
	ghist >h.json &&
	jcheck h.json "[r[\"revision\"] for r in d] == [1]" &&
	pget / >body && grep v1 body &&
	ev_check "any(e[\"kind\"] == \"migration_failed\" and \"003_broken.up.sql:2\" in e[\"message\"] for e in ev)"
'

test_expect_success 'an applied file edited afterwards is refused, naming it' '
	rm "$M/003_broken.up.sql" &&
	cp "$M/002_email.up.sql" 002.orig &&
	printf "ALTER TABLE users ADD COLUMN email text; -- edited\n" >"$M/002_email.up.sql" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 --wait >out 2>err &&
	cat err &&
	grep "002_email.up.sql changed after it was applied" err &&
	"$GANTRY" db status hello --env staging -o json >st.json &&
	jcheck st.json "d[\"version\"] == 2" &&
	cp 002.orig "$M/002_email.up.sql"
'

test_expect_success 'another writer holds the database: the deploy waits lock_timeout, then fails clearly' '
	printf "CREATE INDEX users_name ON users (name);\n" >"$M/003_index.up.sql" &&
	rm -f "$TRASH/holding" "$TRASH/release" &&
	spawn_bg holder python3 -c "import sqlite3, os, time
c = sqlite3.connect(\"$DB\", isolation_level=None)
c.execute(\"BEGIN EXCLUSIVE\")
open(\"$TRASH/holding\", \"w\").close()
while not os.path.exists(\"$TRASH/release\"):
    time.sleep(0.05)
c.execute(\"ROLLBACK\")" &&
	wait_for 10 "test -e $TRASH/holding" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 --wait >out 2>err &&
	cat err &&
	grep "migration lock" err &&
	touch "$TRASH/release" &&
	wait_bg holder 10 &&
	"$GANTRY" deploy hello --env staging --version v2 --wait >out 2>err &&
	test "$(q "SELECT version FROM schema_migrations")" = 3 &&
	pget / >body && grep v2 body
'

test_expect_success 'db down across a file without a down file is refused; db up has nothing to run' '
	test_expect_code 1 "$GANTRY" db down hello --env staging --reason test >out 2>err &&
	cat err &&
	grep "version 3 (003_index.up.sql) has no down file: irreversible" err &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "3|0" &&
	"$GANTRY" db up hello --env staging >out &&
	cat out &&
	grep "0 migrations run; the database is at version 3" out
'

test_expect_success 'db restore --revision 2: the snapshot taken before revision 2'"'"'s migrations' '
	q "INSERT INTO users (name) VALUES (\"after\")" &&
	ls "$GANTRY_HOME/snapshots" &&
	test -s "$GANTRY_HOME/snapshots/hello-staging-r2.sqlite" &&
	"$GANTRY" db restore hello --env staging --revision 2 --reason test >out &&
	cat out &&
	grep "the database is at version 2" out &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "2|0" &&
	test "$(q "SELECT group_concat(name) FROM users")" = ada &&
	test_expect_code 2 "$GANTRY" db restore hello --env staging --revision 9 2>err &&
	grep "no snapshot was taken before revision 9" err
'

test_expect_success 'rollback --schema=restore: the snapshot taken before the current revision, then the rollback; refused without one' '
	"$GANTRY" db up hello --env staging --reason test >out &&
	test "$(q "SELECT version FROM schema_migrations")" = 3 &&
	printf "CREATE TABLE late (id integer);\n" >"$M/004_late.up.sql" &&
	"$GANTRY" deploy hello --env staging --version v3 --wait &&
	test -s "$GANTRY_HOME/snapshots/hello-staging-r3.sqlite" &&
	q "INSERT INTO late VALUES (1)" &&
	test "$(q "SELECT version FROM schema_migrations")" = 4 &&
	"$GANTRY" rollback hello --env staging --to-revision 2 --schema restore --wait >out 2>err &&
	cat out err &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "3|0" &&
	test -z "$(q "SELECT name FROM sqlite_master WHERE name = \"late\"")" &&
	pget / >body && grep v2 body &&
	ev_check "any(e[\"kind\"] == \"migrated\" and \"snapshot restored (--schema=restore)\" in e[\"message\"] for e in ev)" &&
	test_expect_code 2 "$GANTRY" rollback hello --env staging --to-revision 3 --schema restore 2>err &&
	cat err &&
	grep "no snapshot was taken before revision 4" err &&
	pget / >body && grep v2 body
'

test_expect_success 'stop' '
	stop_serve
'

test_done
