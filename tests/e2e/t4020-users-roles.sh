#!/bin/sh
test_description='gantry user: tokens shown once and stored hashed; roles checked on every mutating operation'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: spec, daemon' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    run: ./hello
	roles: { alice: approver, bob: deployer }
	EOF
	start_serve
'

test_expect_success 'the daemon owner is admin (OS user over the socket)' '
	"$GANTRY" user whoami -o json >me.json &&
	jcheck me.json "d[\"role\"] == \"admin\" and d[\"token\"] is False"
'

test_expect_success 'user add prints a token once; only its hash is stored' '
	"$GANTRY" user add vic --role viewer >vic.token 2>err &&
	grep "shown only now" err &&
	grep -E "^gnt_[0-9a-f]{48}$" vic.token &&
	"$GANTRY" user add dan --role deployer >dan.token &&
	"$GANTRY" user add ann --role approver >ann.token &&
	! grep -r -q "$(cat vic.token)" "$GANTRY_HOME"/state.db* &&
	python3 -c "import sqlite3, hashlib, sys
c = sqlite3.connect(sys.argv[1])
h = c.execute(\"SELECT token_hash FROM users WHERE name = '\''vic'\''\").fetchone()[0]
assert h == hashlib.sha256(open(\"vic.token\").read().strip().encode()).hexdigest(), h" "$GANTRY_HOME/state.db" &&
	"$GANTRY" user list -o json >users.json &&
	jcheck users.json "sorted(u[\"name\"] for u in d) == [\"ann\", \"dan\", \"vic\"] and all(u[\"token\"] for u in d)"
'

test_expect_success 'GANTRY_TOKEN identifies the user' '
	GANTRY_TOKEN=$(cat vic.token) "$GANTRY" user whoami -o json >vic.json &&
	jcheck vic.json "d[\"name\"] == \"vic\" and d[\"role\"] == \"viewer\" and d[\"token\"] is True" &&
	GANTRY_TOKEN=$(cat vic.token) GANTRY_USER=root "$GANTRY" user whoami -o json >vic2.json &&
	jcheck vic2.json "d[\"name\"] == \"vic\""
'

test_expect_success 'a viewer reads but cannot change anything (exit 3, nothing changed)' '
	GANTRY_TOKEN=$(cat vic.token) "$GANTRY" incident list &&
	GANTRY_TOKEN=$(cat vic.token) test_expect_code 3 "$GANTRY" incident open -s P1 -t "x" 2>err &&
	grep "permission denied" err &&
	GANTRY_TOKEN=$(cat vic.token) test_expect_code 3 "$GANTRY" user add eve --role admin 2>err &&
	"$GANTRY" incident list -o json >inc.json &&
	jcheck inc.json "d == []" &&
	"$GANTRY" user list -o json >users.json &&
	jcheck users.json "\"eve\" not in [u[\"name\"] for u in d]"
'

test_expect_success 'a deployer opens incidents under its own name, but cannot manage users' '
	GANTRY_TOKEN=$(cat dan.token) GANTRY_USER=someone-else "$GANTRY" incident open -s P2 -t "latency" >/dev/null &&
	"$GANTRY" incident list -o json >inc.json &&
	jcheck inc.json "d[0][\"opened_by\"] == \"dan\"" &&
	GANTRY_TOKEN=$(cat dan.token) test_expect_code 3 "$GANTRY" user list 2>err &&
	grep "needs role admin" err
'

test_expect_success 'an unknown or removed token is refused' '
	GANTRY_TOKEN=gnt_nope test_expect_code 3 "$GANTRY" incident list 2>err &&
	grep "unknown or revoked API token" err &&
	"$GANTRY" user remove ann &&
	GANTRY_TOKEN=$(cat ann.token) test_expect_code 3 "$GANTRY" user whoami
'

test_expect_success 'bad input: unknown role, bad name (exit 2)' '
	test_expect_code 2 "$GANTRY" user add zed --role boss 2>err &&
	grep "unknown role" err &&
	test_expect_code 2 "$GANTRY" user add "a b" --role viewer &&
	test_expect_code 2 "$GANTRY" user add zed
'

test_expect_success 'user sync applies the spec roles to OS users (no tokens)' '
	"$GANTRY" user sync >out &&
	grep "alice: approver" out &&
	"$GANTRY" user list -o json >users.json &&
	jcheck users.json "[u for u in d if u[\"name\"] == \"alice\"][0][\"role\"] == \"approver\"
		and [u for u in d if u[\"name\"] == \"alice\"][0][\"token\"] is False"
'

test_expect_success 'user management is in the audit log, tokens are not' '
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "[e[\"target\"] for e in d if e[\"action\"] == \"user_add\"][:3] == [\"vic\", \"dan\", \"ann\"]" &&
	! grep -q "$(cat dan.token)" audit.json
'

test_expect_success 'stop' '
	stop_serve
'

test_done
