#!/bin/sh
test_description='the API checks names and free text for every operation: a path in a service name writes nothing outside HOME, a newline in a reason forges no log line'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: daemon' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    run: ./hello
	EOF
	start_serve
'

test_expect_success 'a service name with a path is refused naming the member; nothing is written' '
	api "{\"op\": \"deploy\", \"service\": \"../../../x/PWNED\", \"environment\": \"staging\", \"version\": \"v1\", \"digest\": \"00000000000000000000\"}" >r.json &&
	jcheck r.json "d[\"ok\"] is False and d[\"code\"] == 2 and d[\"error\"].startswith(\"/service: not a valid service name\")" &&
	api "{\"op\": \"scale\", \"service\": \"hello\", \"environment\": \"Staging/../x\", \"replicas\": 1}" >r.json &&
	jcheck r.json "d[\"code\"] == 2 and d[\"error\"].startswith(\"/environment: not a valid environment name\")" &&
	api "{\"op\": \"history\", \"service\": \"a b\", \"environment\": \"staging\"}" >r.json &&
	jcheck r.json "d[\"code\"] == 2" &&
	! find "$TRASH" / -maxdepth 3 -name PWNED 2>/dev/null | grep -q . &&
	"$GANTRY" history hello --env staging -o json >h.json &&
	jcheck h.json "d == []"
'

test_expect_success 'a newline in a reason or a title is refused; no forged line in events or the log' '
	api "{\"op\": \"incident_open\", \"severity\": \"P3\", \"title\": \"slow\\nlevel=error sys=serve msg=FORGED\"}" >r.json &&
	jcheck r.json "d[\"code\"] == 2 and d[\"error\"].startswith(\"/title: control character 0x0a at byte 4\")" &&
	api "{\"op\": \"rollback\", \"service\": \"hello\", \"environment\": \"staging\", \"reason\": \"x\\r\\nFORGED\"}" >r.json &&
	jcheck r.json "d[\"code\"] == 2 and d[\"error\"].startswith(\"/reason: control character\")" &&
	long=$(python3 -c "print(\"a\" * 1025)") &&
	api "{\"op\": \"incident_open\", \"severity\": \"P3\", \"title\": \"$long\"}" >r.json &&
	jcheck r.json "d[\"code\"] == 2 and \"longer than 1024 bytes\" in d[\"error\"]" &&
	"$GANTRY" incident list -o json >inc.json &&
	jcheck inc.json "d == []" &&
	"$GANTRY" events -o json >ev.json &&
	! grep -q FORGED ev.json serve.log
'

test_expect_success 'one line of text still passes, with its quotes and unicode' '
	"$GANTRY" incident open -s P3 -t "slow \"search\" — é" >/dev/null &&
	"$GANTRY" incident list -o json >inc.json &&
	jcheck inc.json "[i[\"title\"] for i in d] == [\"slow \\\"search\\\" — é\"]"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
