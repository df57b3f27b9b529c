#!/bin/sh
test_description='the audit head leaves the machine: a webhook that asks for audit_head by name gets every new head (seq and MAC); one that takes every event does not'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: a receiver, two webhooks, daemon' '
	RPORT=$(free_port) &&
	spawn_bg receiver timeout 120 python3 "$ROOT/tests/e2e/helpers/receiver.py" "$RPORT" "$TRASH/received.jsonl" &&
	wait_for 10 "curl -s -o /dev/null -X POST -H Content-Length:2 -d {} http://127.0.0.1:$RPORT/ping" &&
	rm -f received.jsonl &&
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    run: ./hello
	notify:
	  - { url: "http://127.0.0.1:$RPORT/head", allow_private: true, events: [audit_head] }
	  - { url: "http://127.0.0.1:$RPORT/all", allow_private: true }
	EOF
	start_serve
'

heads() {
	python3 -c "import json
for l in open(\"received.jsonl\"):
    r = json.loads(l)
    if r[\"body\"][\"type\"] == \"audit_head\":
        print(r[\"path\"], r[\"body\"][\"data\"][\"seq\"], r[\"body\"][\"data\"][\"mac\"])" 2>/dev/null
}

test_expect_success 'each audit entry sends its seq and MAC to the target that asked, only to it' '
	"$GANTRY" incident open -s P3 -t "disk" >/dev/null &&
	"$GANTRY" incident close 1 >/dev/null &&
	"$GANTRY" audit -o json >audit.json &&
	last=$(python3 -c "import json; print(json.load(open(\"audit.json\"))[-1][\"seq\"])") &&
	wait_for 20 "heads | grep -q \"^/head $last \"" &&
	heads >h.txt &&
	cat h.txt &&
	! grep -q "^/all " h.txt &&
	python3 -c "import json
a = {e[\"seq\"]: e[\"hash\"] for e in json.load(open(\"audit.json\"))}
for l in open(\"h.txt\"):
    path, seq, mac = l.split()
    assert a[int(seq)] == mac, (seq, mac)" &&
	grep -q incident_opened received.jsonl
'

test_expect_success 'stop' '
	stop_serve
'

test_done
