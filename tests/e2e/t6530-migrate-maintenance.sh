#!/bin/sh
test_description='migrations.mode maintenance: maintenance on, old replicas stopped, migrate, new revision up, maintenance off; under load only 200 and 503 (with Retry-After), never an error; a failing migration brings the old revision back and maintenance off'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

DB=$TRASH/app.db
M=$TRASH/app/migrations
BYPASS=ops-bypass-7f3a9c1e

q() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print("\n".join("|".join(str(x) for x in r) for r in c.execute(sys.argv[2]).fetchall())); c.commit()' "$DB" "$1"
}

pfetch() {
	_pf=$1
	shift
	curl -s -D "$TRASH/$_pf.h" -o "$TRASH/$_pf.b" -w '%{http_code}' --max-time 5 -H "Host: $HOST" "$@" \
		"http://127.0.0.1:$PROXY_PORT/"
}

# holds SQLite's RESERVED lock (BEGIN IMMEDIATE: readers go on, the
# migration's BEGIN EXCLUSIVE waits) until $TRASH/release exists: the flow
# stays in its migrating step, with maintenance on, as long as the test needs
hold_lock() {
	rm -f "$TRASH/release" "$TRASH/held" &&
	spawn_bg holder python3 -c 'import sqlite3, sys, time, os
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2] + "/held", "w").close()
while not os.path.exists(sys.argv[2] + "/release"):
    time.sleep(0.05)
c.execute("ROLLBACK")' "$DB" "$TRASH" &&
	wait_for 10 "test -e \"$TRASH/held\""
}

# flow_steps VERSION: the steps of the maintenance flow of the newest
# deployment of VERSION, one a line, then its phase (in steps.txt)
flow_steps() {
	"$GANTRY" deployments hello --env staging -o json >deps.json &&
	python3 -c 'import json, sys
d = json.load(open("deps.json"))
d = d if isinstance(d, list) else d["deployments"]
# the newest deployment of VERSION: an older one (a flow done before) is not this one
d = [x for x in d if x.get("version") == sys.argv[1]]
f = d[0]["gates"]["maintenance_flow"]
for s in f["steps"]:
    print(s["step"] + ": " + s["detail"])
print("phase: " + f["phase"])' "$1" >steps.txt
}

test_expect_success 'setup: v1 serving with one migration, mode maintenance' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    artifact: app
	    run: exec ./hello
	    env: { DATABASE_URL: "sqlite3://$DB" }
	    migrations:
	      dir: migrations
	      lock_timeout: 30s
	      mode: maintenance
	      maintenance_message: "Upgrading the database, back in a minute."
	      maintenance_allow: [ { header: X-Ops, value: { secret: ops_bypass } } ]
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 2s
	    progress_deadline: 20s
	EOF
	mkdir -p "$M" &&
	printf "CREATE TABLE users (id integer primary key, name text);\n" >"$M/1_users.up.sql" &&
	printf "DROP TABLE users;\n" >"$M/1_users.down.sql" &&
	start_serve &&
	printf %s "$BYPASS" | "$GANTRY" secret set ops_bypass --env staging &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	test "$(q "SELECT version FROM schema_migrations")" = 1 &&
	q "INSERT INTO users (name) VALUES (\"ada\")" &&
	ev_check "not any(e[\"kind\"] == \"maintenance_flow\" for e in ev)" &&
	start_load before && sleep 1 && stop_load before && load_clean before
'

test_expect_success 'maintenance_allow: a value written in the spec, a bad header: refused at FILE:LINE:COL' '
	sed "s/value: { secret: ops_bypass }/value: \"$BYPASS\"/" gantry.yaml >bad.yaml &&
	test_expect_code 2 "$GANTRY" validate -f bad.yaml 2>err &&
	cat err &&
	grep "^bad.yaml:[0-9]*:[0-9]*: error: services.hello.migrations.maintenance_allow\[0\].value: the value is a secret: write value: {secret: NAME}" err &&
	sed "s/header: X-Ops/header: \"X Ops\"/" gantry.yaml >bad.yaml &&
	test_expect_code 2 "$GANTRY" validate -f bad.yaml 2>err &&
	grep "^bad.yaml:[0-9]*:[0-9]*: error: .*maintenance_allow\[0\].header: invalid header name" err
'

test_expect_success 'a breaking migration under load: 503 with Retry-After during the flow, never an error; 200 after' '
	printf "ALTER TABLE users RENAME COLUMN name TO full_name;\n" >"$M/2_rename.up.sql" &&
	printf "ALTER TABLE users RENAME COLUMN full_name TO name;\n" >"$M/2_rename.down.sql" &&
	start_load during &&
	t0=$(_now_ms) &&
	hold_lock &&
	spawn_bg deploy "$GANTRY" deploy hello --env staging --version v2 --wait &&
	wait_for 30 "flow_steps v2 && grep ^old_replicas_stopped steps.txt" &&
	test "$(pfetch page)" = 503 &&
	grep -i "^retry-after: [0-9]" "$TRASH/page.h" &&
	grep "Upgrading the database" "$TRASH/page.b" &&
	test "$(pfetch wrong -H "X-Ops: not-the-secret")" = 503 &&
	grep "Upgrading the database" "$TRASH/wrong.b" &&
	say "with the bypass header: HTTP $(pfetch bypass -H "X-Ops: $BYPASS")" &&
	! grep -i "^retry-after:" "$TRASH/bypass.h" &&
	! grep "Upgrading the database" "$TRASH/bypass.b" &&
	"$GANTRY" status hello --env staging -o json >st.json &&
	test "$(q "SELECT version FROM schema_migrations")" = 1 &&
	touch "$TRASH/release" &&
	wait_bg holder 10 &&
	wait_bg deploy 60 &&
	say "figure: deploy --wait returned $(($(_now_ms) - t0)) ms after it started (the lock held by the test for part of it)" &&
	say "transcript: gantry deploy hello --env staging --version v2 --wait" &&
	cat "$TRASH/deploy.log" &&
	wait_for 10 "test \"\$(pfetch after)\" = 200" &&
	stop_load during &&
	jcheck "$TRASH/during.json" "d[\"errors\"] == 0 and set(d[\"codes\"]) <= {\"200\", \"503\"} and d[\"codes\"].get(\"503\", 0) > 0 and d[\"codes\"].get(\"200\", 0) > 0" &&
	start_load after && sleep 1 && stop_load after && load_clean after &&
	pget / >body && grep v2 body &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "2|0" &&
	test "$(q "SELECT full_name FROM users")" = ada &&
	flow_steps v2 && cat steps.txt &&
	test "$(cut -d: -f1 steps.txt | tr "\n" " ")" = "maintenance_on maintenance_in_force old_replicas_stopped migrated maintenance_off phase " &&
	grep "^phase: done" steps.txt &&
	"$GANTRY" maintenance status hello --env staging >ms.txt && cat ms.txt &&
	! grep -i "in maintenance since\|on: yes" ms.txt &&
	"$GANTRY" events hello --env staging >events.txt &&
	say "transcript: gantry events hello --env staging (the deploy of v2)" &&
	sed -n "/deployment 2: maintenance_on/,\$p" events.txt &&
	grep maintenance_flow events.txt &&
	grep "maintenance_on .*bypass headers: x-ops" events.txt &&
	: the bypass value is nowhere but the store and the routes file &&
	gevents >ev.json && "$GANTRY" deployments hello --env staging -o json >deps.json &&
	"$GANTRY" maintenance status hello --env staging -o json >mstat.json && gst >st.json &&
	"$GANTRY" audit >audit.txt 2>&1 &&
	! grep -rl -- "$BYPASS" ev.json events.txt deps.json mstat.json st.json audit.txt "$TRASH/serve.log" \
		"$TRASH/deploy.log" "$GANTRY_HOME/logs"
'

test_expect_success 'a failing migration in this mode: the old revision back, maintenance off, the deploy failed' '
	printf "ALTER TABLE users ADDD COLUMN age integer;\n" >"$M/3_age.up.sql" &&
	start_load fail &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v3 --wait >out 2>err &&
	cat out err &&
	test "$(grep -c "^error:" err)" = 1 &&
	grep -q "^error: migration failed: 3_age.up.sql:1: .*ADDD" err &&
	wait_for 30 "flow_steps v3 && grep \"^phase: done\" steps.txt" &&
	cat steps.txt &&
	test "$(cut -d: -f1 steps.txt | tr "\n" " ")" = "maintenance_on maintenance_in_force old_replicas_stopped restoring maintenance_off phase " &&
	wait_for 10 "test \"\$(pfetch after2)\" = 200" &&
	stop_load fail &&
	jcheck "$TRASH/fail.json" "d[\"errors\"] == 0 and set(d[\"codes\"]) <= {\"200\", \"503\"} and d[\"codes\"].get(\"503\", 0) > 0" &&
	pget / >body && grep v2 body &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "2|0" &&
	test "$(q "SELECT full_name FROM users")" = ada
'

test_expect_success 'kill -9 of the controller mid-flow: after the restart the old revision is back and maintenance off' '
	printf "ALTER TABLE users ADD COLUMN age integer;\n" >"$M/3_age.up.sql" &&
	start_load k9 &&
	hold_lock &&
	spawn_bg deploy3 "$GANTRY" deploy hello --env staging --version v4 &&
	wait_for 30 "flow_steps v4 && grep ^old_replicas_stopped steps.txt" &&
	kill9_serve &&
	t0=$(_now_ms) &&
	{ kill "$(pid_of deploy3)" 2>/dev/null; wait_bg deploy3 5; :; } &&
	sleep 1 &&
	test "$(pfetch dead)" = 503 &&
	start_serve &&
	touch "$TRASH/release" &&
	wait_bg holder 10 &&
	wait_for 30 "flow_steps v4 && grep \"^phase: done\" steps.txt" &&
	say "figure: maintenance off $(($(_now_ms) - t0)) ms after the kill -9 (restart and the old revision ready included)" &&
	cat steps.txt &&
	test "$(cut -d: -f1 steps.txt | tr "\n" " ")" = "maintenance_on maintenance_in_force old_replicas_stopped restoring maintenance_off phase " &&
	grep "^restoring: migration interrupted" steps.txt &&
	wait_for 10 "test \"\$(pfetch after3)\" = 200" &&
	stop_load k9 &&
	jcheck "$TRASH/k9.json" "d[\"errors\"] == 0 and set(d[\"codes\"]) <= {\"200\", \"503\"} and d[\"codes\"].get(\"503\", 0) > 0" &&
	pget / >body && grep v2 body &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "2|0"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
