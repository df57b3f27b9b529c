#!/bin/sh
test_description='a random secret appears only in the replica: not in HOME (state.db, WAL, logs), API replies, webhooks, any argv or other environment; rotate --restart under load with zero failed requests'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# the values live in shell variables only (not exported): never in a file
# of the test, never in an argv (printf is the shell's builtin)
V1=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
V2=$(python3 -c 'import secrets; print(secrets.token_hex(32))')

replica_pids() {
	gst >st.json &&
	python3 -c 'import json; print(" ".join(str(r["pid"]) for r in json.load(open("st.json"))["replicas"] if r["pid"]))'
}
env_of() {
	tr "\0" "\n" <"/proc/$1/environ" | sed -n "s/^$2=//p"
}
# every replica sees value $1 in DB_PASSWORD and in its file
replicas_see() {
	for p in $(replica_pids); do
		test "$(env_of $p DB_PASSWORD)" = "$1" || return 1
		test "$(cat "$(env_of $p GANTRY_SECRETS_DIR)/db_password")" = "$1" || return 1
	done
}

test_expect_success 'setup: webhook receiver, spec with an env and a file secret, daemon' '
	RPORT=$(free_port) &&
	spawn_bg receiver timeout 120 python3 "$ROOT/tests/e2e/helpers/receiver.py" "$RPORT" "$TRASH/received.jsonl" &&
	wait_for 10 "grep -q ping received.jsonl 2>/dev/null || curl -s -o /dev/null -X POST -H Content-Length:2 -d {} http://127.0.0.1:$RPORT/ping; grep -q ping received.jsonl" &&
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    artifact: app
	    run: exec ./hello
	    env:
	      DB_PASSWORD: { secret: db_password }
	    files:
	      db_password: { secret: db_password }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	notify:
	  - { url: "http://127.0.0.1:$RPORT/hook", allow_private: true }
	EOF
	start_serve
'

test_expect_success 'set (stdin) and deploy: both replicas get the value' '
	printf "%s\n" "$V1" | "$GANTRY" secret set db_password --env staging &&
	"$GANTRY" deploy hello --env staging --wait &&
	replicas_see "$V1"
'

test_expect_success 'rotate --restart under load: a restart revision, zero failed requests' '
	start_load load &&
	sleep 1 &&
	t0=$(date +%s%N) &&
	printf "%s\n" "$V2" | "$GANTRY" secret rotate db_password --env staging --restart >out &&
	cat out && grep "restarting as revision 2" out &&
	wait_for 30 "st_check \"d[\\\"stable_revision\\\"] == 2 and d[\\\"rollout\\\"][\\\"phase\\\"] == \\\"complete\\\"\" 2>/dev/null" &&
	t1=$(date +%s%N) &&
	sleep 0.5 &&
	stop_load load &&
	load_clean load &&
	say "figure: rotate --restart to a complete rollout: $(( (t1 - t0) / 1000000 )) ms under loadgen -c 4 --rate 500" &&
	ghist >h.json &&
	jcheck h.json "d[0][\"revision\"] == 2 and d[0][\"kind\"] == \"restart\" and d[0][\"digest\"] == d[1][\"digest\"]" &&
	replicas_see "$V2"
'

test_expect_success 'every API reply we can get, kept in the test directory for the search' '
	"$GANTRY" status -o json >r-status.json &&
	"$GANTRY" status >r-status.txt &&
	"$GANTRY" history hello --env staging -o json >r-history.json &&
	"$GANTRY" events -o json >r-events.json &&
	"$GANTRY" events hello --env staging -o json >r-events2.json &&
	"$GANTRY" audit -o json >r-audit.json &&
	"$GANTRY" deployments -o json >r-deployments.json &&
	"$GANTRY" secret list -o json >r-secrets.json &&
	"$GANTRY" logs hello --env staging >r-logs.txt 2>&1 &&
	wait_for 15 "grep -q rollout_succeeded received.jsonl" &&
	grep -c "" received.jsonl
'

test_expect_success 'the leak search: only the replicas environments and their secret files hold a value' '
	printf "%s\n%s\n" "$V1" "$V2" | python3 "$ROOT/tests/e2e/helpers/leakscan.py" "$TRASH" $(replica_pids) >scan.txt
	ret=$? && cat scan.txt && say "$(tail -n 1 scan.txt)" && test $ret = 0
'

test_expect_success 'an admin reads it back; the controller identity is not readable by the replicas user' '
	test "$("$GANTRY" secret get db_password --env staging)" = "$V2" &&
	p=$(replica_pids | cut -d" " -f1) && u=$(stat -c %u /proc/$p) &&
	test "$u" != 0 &&
	python3 -c "import os, sys
os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1]))
try:
    open(sys.argv[3]).read()
except PermissionError:
    sys.exit(0)
sys.exit(1)" "$u" "$(stat -c %g /proc/$p)" "$GANTRY_HOME/secrets/identity"
'

test_expect_success 'stop: no secret directory is left in /dev/shm' '
	stop_serve &&
	! test -e /dev/shm/gantry-$(cat "$GANTRY_HOME/instance-id")
'

test_done
