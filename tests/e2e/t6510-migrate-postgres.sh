#!/bin/sh
test_description='migrations on PostgreSQL 15: a deploy runs two up-migrations; a syntax error keeps the rows and the version; the advisory lock held by another session times out naming it; kill -9 of the controller mid-migration: the lock is released, the deployment fails with the state, nothing runs twice'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$ROOT/tests/e2e/lib/pg-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_postgres

M=$TRASH/app/migrations
# golang-migrate's advisory lock key for schema public, database app
LOCK_KEY=$(python3 -c 'import zlib; print((zlib.crc32(b"public\0schema_migrations\0app") * 1486364155) & 0xffffffff)')

test_expect_success 'setup: a service with two migrations on PostgreSQL, the controller' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    artifact: app
	    run: exec ./hello
	    env: { DATABASE_URL: "$PG_URL" }
	    migrations: { dir: migrations, lock_timeout: 2s }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 20s
	EOF
	mkdir -p "$M" &&
	printf "CREATE TABLE users (id serial primary key, name text not null);\n" >"$M/1_users.up.sql" &&
	printf "DROP TABLE users;\n" >"$M/1_users.down.sql" &&
	printf "ALTER TABLE users ADD COLUMN email text;\nCREATE INDEX users_email ON users (email);\n" >"$M/2_email.up.sql" &&
	printf "ALTER TABLE users DROP COLUMN email;\n" >"$M/2_email.down.sql" &&
	start_serve
'

test_expect_success 'deploy: two up-migrations, golang-migrate table as it has it, then the revision serves' '
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	test "$(pcode /)" = 200 &&
	test "$(psql_q "SELECT version, dirty FROM schema_migrations")" = "2|f" &&
	test "$(psql_q "SELECT column_name FROM information_schema.columns WHERE table_name = '\''users'\'' AND column_name = '\''email'\''")" = email &&
	test "$(psql_q "SELECT string_agg(name, '\'','\'' ORDER BY version) FROM gantry_migrations")" = "1_users.up.sql,2_email.up.sql" &&
	"$GANTRY" db status hello --env staging -o json >st.json &&
	jcheck st.json "d[\"driver\"] == \"postgres\" and d[\"version\"] == 2 and d[\"pending\"] == []"
'

test_expect_success 'a syntax error in the third: the deploy fails, rows written before are intact, version 2' '
	psql_q "INSERT INTO users (name, email) VALUES ('\''ada'\'', '\''a@x'\'')" &&
	printf "INSERT INTO users (name) VALUES ('\''grace'\'');\nALTER TABLE users ADD COLUMN age int;\nALTER TABLE users ADDD COLUMN x int;\n" >"$M/3_age.up.sql" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 --wait 2>err &&
	cat err &&
	grep "migration failed: 3_age.up.sql:3: syntax error at or near \"ADDD\"" err &&
	test "$(psql_q "SELECT string_agg(name, '\'','\'') FROM users")" = ada &&
	test "$(psql_q "SELECT version, dirty FROM schema_migrations")" = "2|f" &&
	test -z "$(psql_q "SELECT 1 FROM information_schema.columns WHERE table_name = '\''users'\'' AND column_name = '\''age'\''")" &&
	pget / >body && grep v1 body
'

test_expect_success 'the lock held by another session: the deploy waits lock_timeout, then fails naming the holder' '
	printf "ALTER TABLE users ADD COLUMN age int;\n" >"$M/3_age.up.sql" &&
	spawn_bg locker env PGAPPNAME=locker sh -c "psql -X -q -h \"$PG_SOCK\" -p $PG_PORT -U gantry -d app -c \"SELECT pg_advisory_lock($LOCK_KEY)\" -c \"SELECT pg_sleep(120)\"" &&
	wait_for 10 "test \"\$(psql_q \"SELECT count(*) FROM pg_locks WHERE locktype = '\''advisory'\'' AND objid = $LOCK_KEY AND granted\")\" = 1" &&
	t0=$(date +%s) &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 --wait 2>err &&
	cat err &&
	grep "another migration runner holds the lock (held by backend pid [0-9]*, application .locker." err &&
	grep "gave up after 2000 ms" err &&
	psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '\''locker'\''" &&
	wait_bg locker 10 || :
	"$GANTRY" deploy hello --env staging --version v2 --wait &&
	test "$(psql_q "SELECT version FROM schema_migrations")" = 3
'

test_expect_success 'kill -9 mid-migration: lock released, deployment failed with the state, the file not run again' '
	printf "ALTER TABLE users ADD COLUMN nick text;\nSELECT pg_sleep(60);\n" >"$M/4_slow.up.sql" &&
	spawn_bg deployer "$GANTRY" deploy hello --env staging --version v3 &&
	wait_for 20 "test \"\$(psql_q \"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '\''%pg_sleep(60)%'\'' AND application_name = '\''gantry-migrate'\''\")\" = 1" &&
	kill9_serve &&
	t0=$(_now_ms) &&
	wait_for 20 "test \"\$(psql_q \"SELECT count(*) FROM pg_locks WHERE locktype = '\''advisory'\'' AND objid = $LOCK_KEY\")\" = 0" &&
	say "figure: the advisory lock was released $(($(_now_ms) - t0)) ms after kill -9 (client_connection_check_interval 1s)" &&
	{ wait_bg deployer 10; :; } &&
	cat "$TRASH/deployer.log" &&
	start_serve &&
	wait_for 20 "\"$GANTRY\" deployments hello --env staging -o json | grep -q \"migration interrupted\"" &&
	"$GANTRY" deployments hello --env staging -o json >d.json &&
	grep "the database is at version 3" d.json &&
	test "$(psql_q "SELECT version, dirty FROM schema_migrations")" = "3|f" &&
	test -z "$(psql_q "SELECT 1 FROM information_schema.columns WHERE table_name = '\''users'\'' AND column_name = '\''nick'\''")" &&
	test "$(psql_q "SELECT count(*) FROM pg_locks WHERE locktype = '\''advisory'\'' AND objid = $LOCK_KEY")" = 0 &&
	test "$(psql_q "SELECT count(*) FROM gantry_migrations_log WHERE version = 4")" = 0 &&
	ev_check "any(e[\"kind\"] == \"migration_interrupted\" for e in ev)" &&
	pget / >body && grep v2 body
'

test_expect_success 'rollback --schema=restore on PostgreSQL: pg_restore of the snapshot taken before the current revision' '
	sed -i "s/migrations: { dir: migrations, lock_timeout: 2s }/migrations: { dir: migrations, lock_timeout: 2s, snapshot: true }/" gantry.yaml &&
	grep "snapshot: true" gantry.yaml &&
	printf "CREATE TABLE late (id int);\n" >"$M/4_slow.up.sql" &&
	"$GANTRY" deploy hello --env staging --version v4 --wait &&
	test -s "$GANTRY_HOME/snapshots/hello-staging-r3.pgdump" &&
	psql_q "INSERT INTO late VALUES (1)" &&
	test "$(psql_q "SELECT version FROM schema_migrations")" = 4 &&
	"$GANTRY" rollback hello --env staging --to-revision 2 --schema restore --wait >out 2>err &&
	cat out err &&
	ev_check "any(e[\"kind\"] == \"migrated\" and \"snapshot restored (--schema=restore)\" in e[\"message\"] for e in ev)" &&
	test "$(psql_q "SELECT version, dirty FROM schema_migrations")" = "3|f" &&
	test -z "$(psql_q "SELECT 1 FROM information_schema.tables WHERE table_name = '\''late'\''")" &&
	test "$(psql_q "SELECT string_agg(name, '\'','\'') FROM users")" = ada &&
	pget / >body && grep v2 body &&
	test_expect_code 2 "$GANTRY" rollback hello --env staging --to-revision 3 --schema restore 2>err &&
	grep "no snapshot was taken before revision 4" err
'

test_expect_success 'keep_revisions: a PostgreSQL snapshot goes with its pruned revision, a kept one stays' '
	sed -i "/migrations: {/a\\    keep_revisions: 2" gantry.yaml &&
	grep "^    keep_revisions: 2" gantry.yaml &&
	test -s "$GANTRY_HOME/snapshots/hello-staging-r3.pgdump" &&
	printf "CREATE TABLE t5 (id int);\n" >"$M/5_t5.up.sql" &&
	"$GANTRY" deploy hello --env staging --version v5 --wait &&
	printf "CREATE TABLE t6 (id int);\n" >"$M/6_t6.up.sql" &&
	"$GANTRY" deploy hello --env staging --version v6 --wait &&
	ghist >h.json &&
	jcheck h.json "[r[\"revision\"] for r in (d if isinstance(d, list) else d[\"revisions\"]) if not r[\"artifact_pruned\"]] == [6, 5]" &&
	ls "$GANTRY_HOME/snapshots" >snaps && cat snaps &&
	: nothing of the pruned revisions 1..4, the dump of 3 and its logs included &&
	! grep -v "^hello-staging-r[56]\.pgdump" snaps &&
	test -s "$GANTRY_HOME/snapshots/hello-staging-r5.pgdump" &&
	test -s "$GANTRY_HOME/snapshots/hello-staging-r6.pgdump" &&
	: a kept snapshot is a dump pg_restore reads &&
	pg_restore --list "$GANTRY_HOME/snapshots/hello-staging-r6.pgdump" | grep "TABLE public t5" &&
	test "$(psql_q "SELECT version, dirty FROM schema_migrations")" = "6|f"
'

test_expect_success 'the database unreachable: the deploy fails naming it, no password shown, nothing changed' '
	gst >before.json &&
	pget / >body.before &&
	v0=$(psql_q "SELECT version FROM schema_migrations") &&
	printf "ALTER TABLE users ADD COLUMN nick text;\n" >"$M/90_nick.up.sql" &&
	DEAD=$(free_port) &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v9 \
		--set env.DATABASE_URL="postgresql://gantry:pw-not-shown@127.0.0.1:$DEAD/app?connect_timeout=2" --wait 2>err &&
	cat err &&
	grep "^error: .*postgres .*cannot connect" err &&
	test "$(grep -c "^error:" err)" = 1 &&
	! grep pw-not-shown err &&
	rm "$M/90_nick.up.sql" &&
	test "$(psql_q "SELECT version FROM schema_migrations")" = "$v0" &&
	gst >after.json &&
	python3 -c "import json,sys; a,b=(json.load(open(f)) for f in (\"before.json\",\"after.json\")); sys.exit(0 if (a[\"stable_revision\"], a[\"traffic\"]) == (b[\"stable_revision\"], b[\"traffic\"]) else 1)" &&
	pget / >body.after &&
	test_cmp body.before body.after
'

test_expect_success 'stop' '
	stop_serve &&
	stop_postgres
'

test_done
