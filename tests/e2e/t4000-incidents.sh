#!/bin/sh
test_description='gantry incident open|close|list: records, validation, events'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: spec, daemon' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	  production:
	    protection: { freeze_on_incident: [P0, P1] }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	EOF
	start_serve
'

test_expect_success 'open: prints the incident; list shows it open' '
	"$GANTRY" incident open --severity P1 --title "checkout down" --env production >out &&
	grep "incident 1 open (P1: checkout down)" out &&
	"$GANTRY" incident list -o json >list.json &&
	jcheck list.json "len(d) == 1 and d[0][\"id\"] == 1 and d[0][\"status\"] == \"open\"
		and d[0][\"severity\"] == \"P1\" and d[0][\"environment\"] == \"production\"
		and d[0][\"service\"] == \"\" and d[0][\"closed_at\"] is None and d[0][\"opened_by\"] != \"\""
'

test_expect_success 'bad input: exit 2, nothing recorded' '
	test_expect_code 2 "$GANTRY" incident open --severity P9 --title x 2>err &&
	grep "not a severity" err &&
	test_expect_code 2 "$GANTRY" incident open --severity P2 2>err &&
	test_expect_code 2 "$GANTRY" incident close 2>err &&
	test_expect_code 2 "$GANTRY" incident close 99 2>err &&
	grep "no incident 99" err &&
	test_expect_code 2 "$GANTRY" incident frobnicate 2>err &&
	"$GANTRY" incident list -o json >list.json &&
	jcheck list.json "len(d) == 1"
'

test_expect_success 'close: records who and why; closing twice is refused' '
	GANTRY_USER=carol "$GANTRY" incident close 1 --resolution "rolled back" >out &&
	grep "incident 1 closed" out &&
	test_expect_code 2 "$GANTRY" incident close 1 2>err &&
	grep "already closed" err &&
	"$GANTRY" incident list -o json >open.json &&
	jcheck open.json "d == []" &&
	"$GANTRY" incident list --all -o json >all.json &&
	jcheck all.json "len(d) == 1 and d[0][\"status\"] == \"closed\" and d[0][\"closed_by\"] == \"carol\"
		and d[0][\"resolution\"] == \"rolled back\" and d[0][\"closed_at\"] >= d[0][\"opened_at\"]"
'

test_expect_success 'events record the opening and the closing' '
	"$GANTRY" events -o json >ev.jsonl &&
	python3 -c "import json, sys; print(json.dumps([json.loads(l) for l in open(\"ev.jsonl\")]))" >ev.json &&
	jcheck ev.json "any(e[\"kind\"] == \"incident_opened\" and \"checkout down\" in e[\"message\"] for e in d)
		and any(e[\"kind\"] == \"incident_closed\" for e in d)"
'

test_expect_success 'a table listing with a service-scoped incident' '
	"$GANTRY" incident open -s P3 -t "slow search" --service hello >/dev/null &&
	"$GANTRY" incident list >table &&
	head -1 table | grep "SEV" &&
	grep "slow search" table | grep "hello" | grep "open"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
