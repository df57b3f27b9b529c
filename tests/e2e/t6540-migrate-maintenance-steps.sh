#!/bin/sh
test_description='migrations.mode maintenance: kill -9 of the controller at each step of the flow (maintenance on, old replicas stopping, new revision starting), each step held by the test; one flow at a time; a canary strategy under the flow comes up at full size and keeps its rollback_on watch'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

DB=$TRASH/app.db
M=$TRASH/app/migrations
G=$TRASH/gate
mkdir -p "$G" && chmod 755 "$G"

q() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print("\n".join("|".join(str(x) for x in r) for r in c.execute(sys.argv[2]).fetchall())); c.commit()' "$DB" "$1"
}

# the flow of the deployment of version $V: its steps, one a line, then "phase: P" and "state: S"
flow_steps() {
	"$GANTRY" deployments hello --env staging -o json >deps.json &&
	python3 -c 'import json, sys
d = json.load(open("deps.json"))
d = [x for x in (d if isinstance(d, list) else d["deployments"]) if x["version"] == sys.argv[1]][0]
f = d["gates"]["maintenance_flow"]
for s in f["steps"]:
    print(s["step"] + ": " + s["detail"])
print("phase: " + f["phase"])
print("state: " + d["state"])' "$V" >steps.txt
}

steps_are() {
	test "$(grep -v "^phase\|^state" steps.txt | cut -d: -f1 | tr "\n" " ")" = "$1"
}

# the replicas' wrapper: their start is held while $G/start exists (nothing
# listens: not ready), their stop while $G/stop exists (SIGTERM stops hello,
# the wrapper lingers: the replica is still running)
svc_spec() {
	write_svc_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    artifact: app
	    run: exec sh ./held.sh
	    env: { DATABASE_URL: "sqlite3://$DB", HOLD_START: "$G/start", HOLD_STOP: "$G/stop" }
	    migrations: { dir: migrations, lock_timeout: 30s, mode: maintenance }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 60s
	    drain_timeout: 1s
	    progress_deadline: 60s
	EOF
	[ "${1:-}" != canary ] || cat >>"$TRASH/gantry.yaml" <<-\EOF
	    strategy: { canary: { steps: [ { weight: 10 }, { pause: 1m } ] } }
	    rollback_on: [ "error_rate > 20% for 1s" ]
	    watch: 5m
	EOF
}

test_expect_success 'setup: v1 serving, schema at 1, a row' '
	svc_spec &&
	cat >"$TRASH/app/held.sh" <<-\EOF &&
	while [ -e "$HOLD_START" ]; do sleep 0.1; done
	./hello & pid=$!
	trap "while [ -e \"\$HOLD_STOP\" ]; do sleep 0.1; done; wait \$pid; exit 0" TERM
	wait $pid
	EOF
	mkdir -p "$M" &&
	printf "CREATE TABLE users (id integer primary key, name text);\n" >"$M/1_users.up.sql" &&
	printf "DROP TABLE users;\n" >"$M/1_users.down.sql" &&
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	q "INSERT INTO users (name) VALUES (\"ada\")" &&
	printf "ALTER TABLE users ADD COLUMN age integer;\n" >"$M/2_age.up.sql" &&
	printf "ALTER TABLE users DROP COLUMN age;\n" >"$M/2_age.down.sql"
'

test_expect_success 'kill -9 while maintenance is on and the proxy has not confirmed it: nothing stopped, the deploy failed, maintenance off' '
	V=v2a && pp=$(proxy_pid) &&
	kill -STOP "$pp" &&
	spawn_bg d1 "$GANTRY" deploy hello --env staging --version $V &&
	wait_for 30 "flow_steps && grep ^maintenance_on steps.txt" &&
	sleep 1 && flow_steps && grep "^phase: on" steps.txt &&
	kill9_serve && t0=$(_now_ms) &&
	{ kill "$(pid_of d1)" 2>/dev/null; wait_bg d1 5; :; } &&
	kill -CONT "$pp" &&
	start_serve &&
	wait_for 30 "flow_steps && grep \"^phase: done\" steps.txt" &&
	say "figure: maintenance off $(($(_now_ms) - t0)) ms after the kill -9 (step maintenance_on; the restart included)" &&
	cat steps.txt &&
	steps_are "maintenance_on restoring maintenance_off " &&
	grep "^restoring: migration not run: the controller stopped during the maintenance flow, before the migration" steps.txt &&
	grep "^state: failed" steps.txt &&
	test "$(pcode /)" = 200 && pget / | grep v1 &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "1|0" &&
	test "$(q "SELECT name FROM users")" = ada &&
	ghist >h.json && jcheck h.json "len(d if isinstance(d, list) else d[\"revisions\"]) == 1" &&
	check_processes
'

test_expect_success 'kill -9 while the old replicas are stopping: after the restart they are the ones that serve again, not started twice' '
	V=v2b && touch "$G/stop" &&
	spawn_bg d2 "$GANTRY" deploy hello --env staging --version $V &&
	wait_for 30 "flow_steps && grep ^maintenance_in_force steps.txt" &&
	sleep 1 && flow_steps && grep "^phase: stopping" steps.txt &&
	gst >st.json && jcheck st.json "len(d[\"replicas\"]) == 2" &&
	kill9_serve && t0=$(_now_ms) &&
	{ kill "$(pid_of d2)" 2>/dev/null; wait_bg d2 5; :; } &&
	start_serve &&
	wait_for 30 "flow_steps && grep ^restoring steps.txt" &&
	check_processes &&
	rm "$G/stop" &&
	wait_for 30 "flow_steps && grep \"^phase: done\" steps.txt" &&
	say "figure: maintenance off $(($(_now_ms) - t0)) ms after the kill -9 (step old replicas stopping; the restart, the checks made while the test held them and the start of the old revision included)" &&
	cat steps.txt &&
	steps_are "maintenance_on maintenance_in_force restoring maintenance_off " &&
	grep "^state: failed" steps.txt &&
	test "$(pcode /)" = 200 && pget / | grep v1 &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "1|0" &&
	test "$(q "SELECT name FROM users")" = ada &&
	check_processes
'

test_expect_success 'kill -9 while the new revision is starting (migrated, not ready): after the restart it completes, maintenance off only then' '
	V=v3 && touch "$G/start" &&
	spawn_bg d3 "$GANTRY" deploy hello --env staging --version $V &&
	wait_for 30 "flow_steps && grep ^migrated steps.txt" &&
	sleep 1 && flow_steps && grep "^phase: starting" steps.txt &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "2|0" &&
	: one flow at a time: another deploy is refused while this one runs &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v3b 2>err &&
	test "$(grep -c "^error:" err)" = 1 &&
	grep -q "^error: migration failed: deployment [0-9]*.s maintenance flow is still running (starting)" err &&
	kill9_serve && t0=$(_now_ms) &&
	{ kill "$(pid_of d3)" 2>/dev/null; wait_bg d3 5; :; } &&
	start_serve &&
	sleep 1 &&
	"$GANTRY" maintenance status hello --env staging -o json >m.json &&
	jcheck m.json "d[\"on\"] if isinstance(d, dict) and \"on\" in d else d[0][\"on\"]" &&
	test "$(curl -s -o /dev/null -w %{http_code} -H "Host: $HOST" "http://127.0.0.1:$PROXY_PORT/")" = 503 &&
	rm "$G/start" &&
	wait_for 30 "flow_steps && grep \"^phase: done\" steps.txt" &&
	say "figure: maintenance off $(($(_now_ms) - t0)) ms after the kill -9 (step new revision starting; the restart, the checks made while the test held them and the start of the replicas included)" &&
	cat steps.txt &&
	steps_are "maintenance_on maintenance_in_force old_replicas_stopped migrated maintenance_off " &&
	test "$(pcode /)" = 200 && pget / | grep v3 &&
	test "$(q "SELECT version, dirty FROM schema_migrations")" = "2|0" &&
	test "$(q "SELECT name FROM users")" = ada &&
	: the file ran once &&
	gevents >ev.jsonl &&
	test "$(grep "\"kind\": *\"migrated\"" ev.jsonl | grep -c "up 2 2_age.up.sql ok")" = 1 &&
	check_processes
'

test_expect_success 'a canary strategy under the flow: the new revision at full size (recreate), rollback_on still armed after' '
	svc_spec canary &&
	printf "ALTER TABLE users ADD COLUMN email text;\n" >"$M/3_email.up.sql" && V=v4 &&
	{ "$GANTRY" deploy hello --env staging --version v4 --set env.FAIL_RATE=1 --wait >out 2>&1; r=$?; cat out; test $r = 0; } &&
	flow_steps && cat steps.txt &&
	steps_are "maintenance_on maintenance_in_force old_replicas_stopped migrated maintenance_off " &&
	grep "^migrated: .*at full size (strategy canary run as recreate" steps.txt &&
	gst >st.json &&
	jcheck st.json "d[\"rollout\"][\"strategy\"] == \"recreate\" and d[\"rollout\"][\"revision\"] == 3" &&
	test "$(q "SELECT version FROM schema_migrations")" = 3 &&
	: the new revision answers 500: rollback_on, armed for watch, rolls back, keeping the schema &&
	start_load canary &&
	wait_for 30 "pget / | grep -q v3" &&
	stop_load canary &&
	"$GANTRY" events hello --env staging >events.txt &&
	grep "schema_kept" events.txt &&
	grep "rollback" events.txt | tail -n 3 &&
	test "$(q "SELECT version FROM schema_migrations")" = 3 &&
	test "$(q "SELECT name FROM users")" = ada &&
	check_processes
'

test_expect_success 'stop' '
	stop_serve
'

test_done
