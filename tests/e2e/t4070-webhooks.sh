#!/bin/sh
test_description='notify: Standard Webhooks signed deliveries (secrets from HOME/webhook-secrets) and Slack bodies to a local receiver; private targets need allow_private; failures become events without response bodies'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# the receiver verifies with HOOK_SECRET; the controller reads it from its own file
HOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
export HOOK_SECRET

test_expect_success 'a target on 127.0.0.1 without allow_private is refused by validate' '
	mkdir priv &&
	cat >priv/gantry.yaml <<-\EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello: { run: ./hello }
	notify:
	  - { url: "http://127.0.0.1:9/hook", format: standard }
	  - { url: "http://[::ffff:10.1.2.3]/hook", allow_private: true }
	  - { url: "https://hooks.example.com/x", secret_env: HOOK_SECRET }
	EOF
	test_expect_code 2 "$GANTRY" -f priv/gantry.yaml validate 2>err &&
	cat err &&
	grep "gantry.yaml:7:12: error: notify\[0\].url: 127.0.0.1 is a loopback address" err &&
	grep "notify\[0\].url: .*need allow_private: true" err &&
	grep "notify\[2\].secret_env: .*use secret: NAME; the value goes in HOME/webhook-secrets" err &&
	! grep "notify\[1\]" err
'

test_expect_success 'setup: receiver, secrets file, spec with four webhooks, daemon' '
	RPORT=$(free_port) && DEAD=$(free_port) &&
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
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    strategy:
	      canary:
	        steps: [ {weight: 50}, {pause: {}} ]
	notify:
	  - { url: "http://127.0.0.1:$RPORT/hook", format: standard, secret: hook, allow_private: true }
	  - { url: "http://127.0.0.1:$RPORT/slack", format: slack, events: [incident_opened], allow_private: true }
	  - { url: "http://127.0.0.1:$DEAD/nobody", events: [incident_closed], allow_private: true }
	  - { url: "http://127.0.0.1:$RPORT/fail", events: [incident_opened], allow_private: true }
	EOF
	printf "# webhook signing keys\nother=whsec_AAAA\nhook=%s\n" "$HOOK_SECRET" >"$GANTRY_HOME/webhook-secrets" &&
	chmod 600 "$GANTRY_HOME/webhook-secrets" &&
	"$GANTRY" validate &&
	start_serve
'

received() {
	python3 -c "import json; print(json.dumps([json.loads(l) for l in open(\"received.jsonl\")]))" >received.json 2>/dev/null &&
	jcheck received.json "$1" 2>/dev/null
}

received_incident() {
	received "any(r[\"path\"] == \"/hook\" and r[\"body\"].get(\"type\") == \"incident_opened\" and r[\"body\"][\"data\"][\"severity\"] == \"$1\" for r in d)"
}

received_type() {
	received "any(r[\"body\"].get(\"type\") == \"$1\" for r in d)"
}

test_expect_success 'incident opened: a signed standard webhook and a Slack message' '
	"$GANTRY" incident open -s P1 -t "checkout down" --env staging >/dev/null &&
	wait_for 15 "received \"len(d) >= 2\"" &&
	received "any(r[\"path\"] == \"/hook\" and r[\"valid\"] is True and r[\"body\"][\"type\"] == \"incident_opened\"
		and r[\"body\"][\"data\"][\"severity\"] == \"P1\" and r[\"body\"][\"timestamp\"].endswith(\"Z\") for r in d)" &&
	received "any(r[\"path\"] == \"/slack\" and r[\"valid\"] is None and \"checkout down\" in r[\"body\"][\"text\"] for r in d)"
'

test_expect_success 'a receiver answering 500 with a body: notify_failed with the status, no trace of the body' '
	wait_for 30 "\"$GANTRY\" events -o json | grep notify_failed | grep -q /fail" &&
	"$GANTRY" events -o json | grep notify_failed | grep /fail | grep "after 3 attempts: HTTP 500" &&
	"$GANTRY" events >events.txt && "$GANTRY" events -o json >events.json &&
	grep -q notify_failed events.txt &&
	! grep -q SECRET-BODY-TEXT events.txt &&
	! grep -q SECRET-BODY-TEXT events.json &&
	! grep -q SECRET-BODY-TEXT serve.log
'

test_expect_success 'events filter what a webhook receives; a dead endpoint becomes notify_failed after retries' '
	"$GANTRY" incident close 1 >/dev/null &&
	wait_for 15 "received \"any(r[\\\"body\\\"].get(\\\"type\\\") == \\\"incident_closed\\\" for r in d)\"" &&
	received "not any(r[\"path\"] == \"/slack\" and \"closed\" in r[\"body\"][\"text\"] for r in d)" &&
	wait_for 30 "\"$GANTRY\" events -o json | grep notify_failed | grep -q 127.0.0.1:$DEAD" &&
	"$GANTRY" events -o json | grep notify_failed | grep "127.0.0.1:$DEAD" | grep "after 3 attempts" &&
	"$GANTRY" events -o json | grep -q notify_sent
'

test_expect_success 'delivery never delays the API: an operation answers while a delivery retries' '
	"$GANTRY" incident open -s P3 -t "second" >/dev/null &&
	"$GANTRY" incident close 2 >/dev/null &&
	"$GANTRY" incident list --all -o json >inc.json &&
	jcheck inc.json "len(d) == 2"
'

test_expect_success 'a canary: its traffic step and its pause are delivered' '
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	"$GANTRY" deploy hello --env staging --version v2 &&
	wait_for 30 "received_type rollout_paused" &&
	received "any(r[\"path\"] == \"/hook\" and r[\"valid\"] is True and r[\"body\"].get(\"type\") == \"rollout_step\"
		and r[\"body\"][\"data\"][\"message\"] == \"revision 2 at 50%\" for r in d)" &&
	received "any(r[\"body\"].get(\"type\") == \"rollout_paused\" and \"gantry resume\" in r[\"body\"][\"data\"][\"message\"]
		and r[\"body\"][\"data\"][\"revision\"] == 2 for r in d)"
'

test_expect_success 'a delivery still pending when the controller is killed is made after the restart' '
	kill_bg receiver && wait_bg receiver 10;
	"$GANTRY" incident open -s P2 -t "while the receiver was down" --env staging >/dev/null &&
	kill9_serve &&
	spawn_bg receiver2 timeout 120 python3 "$ROOT/tests/e2e/helpers/receiver.py" "$RPORT" "$TRASH/received.jsonl" &&
	wait_for 10 "curl -s -o /dev/null -X POST -H Content-Length:2 -d {} http://127.0.0.1:$RPORT/ping" &&
	start_serve &&
	wait_for 30 "received_incident P2" &&
	received "any(r[\"path\"] == \"/hook\" and r[\"valid\"] is True and \"while the receiver was down\" in r[\"body\"][\"data\"][\"message\"] for r in d)"
'

received_hook() {
	received "any(r[\"path\"] == \"/hook\" and r[\"valid\"] is $1 and \"$2\" in r[\"body\"][\"data\"].get(\"message\", \"\") for r in d)"
}

test_expect_success 'the secrets file is read at each delivery: a rotation needs no restart, a bad mode fails it' '
	ROTATED=whsec_$(printf rotated-key-0123456789 | base64) &&
	printf "hook=%s\n" "$ROTATED" >"$GANTRY_HOME/webhook-secrets" &&
	"$GANTRY" incident open -s P3 -t "after rotation" --env staging >/dev/null &&
	wait_for 15 "received_hook False \"after rotation\"" &&
	chmod 644 "$GANTRY_HOME/webhook-secrets" &&
	"$GANTRY" incident open -s P3 -t "while readable" --env staging >/dev/null &&
	wait_for 15 "\"$GANTRY\" events -o json | grep notify_failed | grep -q \"chmod 600\"" &&
	"$GANTRY" events -o json | grep notify_failed | grep "/hook refused: .*webhook-secrets: group or others may access it" &&
	! received_hook None "while readable" && ! received_hook False "while readable" &&
	! "$GANTRY" events -o json | grep -qF "$ROTATED" &&
	! grep -qF "$ROTATED" serve.log
'

test_expect_success 'stop' '
	stop_serve &&
	kill_bg receiver2 TERM
'

test_done
