#!/bin/sh
test_description='rollback across migrations: downs run newest first before traffic moves, under load with no failed request; a missing down file refuses the rollback unless --schema=keep'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

DB=$TRASH/app.db
M=$TRASH/app/migrations

q() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print("\n".join("|".join(str(x) for x in r) for r in c.execute(sys.argv[2]).fetchall()))' "$DB" "$1"
}

test_expect_success 'setup: v1 with one migration, v2 with two more' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    artifact: app
	    run: exec ./hello
	    env: { DATABASE_URL: "sqlite3://$DB" }
	    migrations: { dir: migrations, lock_timeout: 5s }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 2s
	    progress_deadline: 30s
	EOF
	mkdir -p "$M" &&
	printf "CREATE TABLE users (id integer primary key, name text);\n" >"$M/1_users.up.sql" &&
	printf "DROP TABLE users;\n" >"$M/1_users.down.sql" &&
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	printf "CREATE TABLE orders (id integer primary key);\n" >"$M/2_orders.up.sql" &&
	printf "DROP TABLE orders;\n" >"$M/2_orders.down.sql" &&
	printf "ALTER TABLE users ADD COLUMN email text;\n" >"$M/3_email.up.sql" &&
	printf "ALTER TABLE users DROP COLUMN email;\n" >"$M/3_email.down.sql" &&
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	test "$(q "SELECT version FROM schema_migrations")" = 3
'

test_expect_success 'rollback to v1 under load: downs 3 then 2, then traffic moves; no failed request' '
	start_load load &&
	"$GANTRY" rollback hello --env staging --to-revision 1 --wait >out 2>err &&
	cat out err &&
	stop_load load &&
	load_clean load &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "1|0" &&
	test -z "$(q "SELECT name FROM sqlite_master WHERE name = \"orders\"")" &&
	test "$(q "SELECT group_concat(direction || version, \",\") FROM (SELECT * FROM gantry_migrations_log ORDER BY id)")" = "up1,up2,up3,down3,down2" &&
	pget / >body && grep v1 body &&
	ev_check "any(e[\"kind\"] == \"migrated\" and \"2 down-migrations run\" in e[\"message\"] for e in ev)"
'

test_expect_success 'a revision whose migration has no down file: rollback refused without --schema' '
	printf "CREATE TABLE audit (id integer primary key);\n" >"$M/4_audit.up.sql" &&
	"$GANTRY" deploy hello --env staging --version v3 --wait &&
	test "$(q "SELECT version FROM schema_migrations")" = 4 &&
	test_expect_code 2 "$GANTRY" rollback hello --env staging --to-revision 2 2>err &&
	cat err &&
	grep "version 4 (4_audit.up.sql) has no down file: irreversible" err &&
	grep -- "--schema=keep" err &&
	pget / >body && grep v3 body
'

test_expect_success '--schema=keep: the rollback runs v2 on the newer schema and says so' '
	"$GANTRY" rollback hello --env staging --to-revision 2 --schema keep --wait &&
	test "$(q "SELECT version FROM schema_migrations")" = 4 &&
	pget / >body && grep v2 body &&
	ev_check "any(e[\"kind\"] == \"schema_kept\" and \"revision 2 needs the schema at version 3\" in e[\"message\"] for e in ev)"
'

test_expect_success 'a contract migration waits for the rollout to complete; the expand one runs before the revision' '
	printf "ALTER TABLE users ADD COLUMN nick text;\n" >"$M/5_nick.up.sql" &&
	printf "ALTER TABLE users DROP COLUMN nick;\n" >"$M/5_nick.down.sql" &&
	printf -- "-- gantry:contract\nDROP TABLE audit;\n" >"$M/6_drop_audit.up.sql" &&
	"$GANTRY" deploy hello --env staging --version v4 --wait &&
	wait_for 10 "test \"\$(q \"SELECT version FROM schema_migrations\")\" = 6" &&
	test -z "$(q "SELECT name FROM sqlite_master WHERE name = \"audit\"")" &&
	test "$(q "SELECT contract FROM gantry_migrations WHERE version = 6")" = 1 &&
	ev_check "[e[\"kind\"] for e in ev if e[\"kind\"] in (\"migrated\", \"rollout_complete\")][-3:] == [\"migrated\", \"rollout_complete\", \"migrated\"]" &&
	ev_check "\"after promotion (contract)\" in [e for e in ev if e[\"kind\"] == \"migrated\"][-1][\"message\"]"
'

test_expect_success 'a crash-looping revision is rolled back by the controller: the schema is kept, and said so' '
	printf "CREATE TABLE crash (id integer);\n" >"$M/7_crash.up.sql" &&
	printf "DROP TABLE crash;\n" >"$M/7_crash.down.sql" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v5 --set env.CRASH_AFTER_S=0 --wait &&
	test "$(q "SELECT version FROM schema_migrations")" = 7 &&
	pget / >body && grep v4 body &&
	ev_check "any(e[\"kind\"] == \"schema_kept\" and \"automatic rollback keeps the schema: revision 6 needs the schema at version 6, revision 7\" in e[\"message\"] for e in ev)"
'

test_expect_success 'auto_down: true: the controller'"'"'s rollback of a crash-looping revision runs its down-migrations' '
	sed -i "s/migrations: { dir: migrations, lock_timeout: 5s }/migrations: { dir: migrations, lock_timeout: 5s, auto_down: true }/" gantry.yaml &&
	grep auto_down gantry.yaml &&
	printf "CREATE TABLE crash2 (id integer);\n" >"$M/8_crash2.up.sql" &&
	printf "DROP TABLE crash2;\n" >"$M/8_crash2.down.sql" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v6 --set env.CRASH_AFTER_S=0 --wait &&
	wait_for 10 "test \"\$(q \"SELECT version FROM schema_migrations\")\" = 6" &&
	test -z "$(q "SELECT name FROM sqlite_master WHERE name IN (\"crash\", \"crash2\")")" &&
	pget / >body && grep v4 body &&
	ev_check "any(e[\"kind\"] == \"migrated\" and \"gantry db down by gantry: ok\" in e[\"message\"] for e in ev)"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
