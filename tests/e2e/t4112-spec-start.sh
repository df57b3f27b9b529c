#!/bin/sh
test_description='serve and the stored spec: applied at the first start, kept after; a stored spec this build cannot read stops serve and loses nothing; an invalid spec starts nothing'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: the first start applies the spec beside serve (version 1)' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    run: ./hello
	EOF
	start_serve &&
	grep "gantry serve: spec version 1 (applied from the spec beside it)" serve.log &&
	"$GANTRY" spec history -o json >h.json &&
	jcheck h.json "d[\"current\"] == 1 and [v[\"version\"] for v in d[\"versions\"]] == [1]"
'

test_expect_success 'a later start keeps the stored spec, whatever the file says now' '
	stop_serve &&
	sed -i "s/staging: {}/staging: { replicas: 3 }/" gantry.yaml &&
	start_serve &&
	grep "gantry serve: spec version 1 (stored)" serve.log &&
	"$GANTRY" diff >d.txt &&
	grep "environments.staging.replicas" d.txt &&
	"$GANTRY" spec show >shown.yaml 2>/dev/null &&
	! grep -q "replicas: 3" shown.yaml &&
	stop_serve
'

test_expect_success 'a stored spec this build cannot read: serve stops with a clear error, nothing is lost' '
	sql "INSERT INTO spec_versions (version, digest, name, text, actor, created_at, diff)
	     VALUES (2, '\''x'\'', '\''future.yaml'\'', '\''project: t\nfrom_the_future: 1\n'\'', '\''someone'\'', 0, '\''[]'\'')" &&
	cp "$GANTRY_HOME/state.db" before.db &&
	test_expect_code 1 "$GANTRY" serve --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" >out 2>err &&
	cat err &&
	grep "the stored spec (version 2, applied by someone) cannot be read by this build of gantry" err &&
	grep "future.yaml" err &&
	grep "nothing was changed" err &&
	test "$(sql "SELECT COUNT(*) FROM spec_versions")" = 2 &&
	test "$(sql "SELECT text FROM spec_versions WHERE version = 1")" = "$(python3 -c "import sqlite3; print(sqlite3.connect(\"before.db\").execute(\"SELECT text FROM spec_versions WHERE version = 1\").fetchone()[0])")" &&
	sql "DELETE FROM spec_versions WHERE version = 2" &&
	start_serve &&
	grep "spec version 1 (stored)" serve.log &&
	stop_serve
'

test_expect_success 'an invalid spec at the first start: exit 2, every problem at FILE:LINE:COL, nothing started' '
	rm -rf "$GANTRY_HOME" &&
	cat >bad.yaml <<-EOF &&
	project: t
	environments:
	  staging: { replicas: many }
	services:
	  hello:
	    runn: ./hello
	EOF
	test_expect_code 2 "$GANTRY" -f bad.yaml serve --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" --home "$GANTRY_HOME" >out 2>err &&
	grep -E "bad.yaml:3:[0-9]+: error: environments.staging.replicas" err &&
	grep -E "bad.yaml:6:[0-9]+: error: services.hello" err &&
	grep "nothing was started" err &&
	! test -S "$GANTRY_HOME/api.sock"
'

test_expect_success 'a HOME others can write is refused, its state untouched; one others can only read is tightened' '
	mkdir -p open-home && chmod 777 open-home &&
	test_expect_code 1 "$GANTRY" serve --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" --home "$TRASH/open-home" >out 2>err &&
	grep "is writable by other users (mode 777)" err &&
	test -z "$(ls open-home)" &&
	mkdir -p read-home && chmod 755 read-home &&
	spawn_bg serve2 "$GANTRY" serve --listen "127.0.0.1:$(free_port)" --admin "127.0.0.1:$(free_port)" --home "$TRASH/read-home" &&
	wait_for 10 "test -S read-home/api.sock" &&
	test "$(stat -c %a read-home)" = 711 &&
	test "$(stat -c %a read-home/state.db)" = 600 &&
	test "$(stat -c %a read-home/api.sock)" = 600 &&
	kill_bg serve2 TERM && wait_bg serve2 20
'

test_done
