#!/bin/sh
test_description='release events delivered to webhooks: started, succeeded; failed and rolled_back with the record; an events filter'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

BACKOFF=100ms
HOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
export HOOK_SECRET

# a → b; $1: the env of b (a YAML mapping), $2: the MARK of a
spec() {
	write_release_chain a "env: { MARK: \"$2\" }" b "env: $1" "progress_deadline: 40s" <<-EOF
	project: t
	environments:
	  staging: {}
	notify:
	  - { url: "http://127.0.0.1:$RPORT/hook", format: standard, secret: hook, allow_private: true }
	  - { url: "http://127.0.0.1:$RPORT/rolled-back", events: [release_rolled_back], allow_private: true }
	EOF
}

received() {
	python3 -c "import json; print(json.dumps([json.loads(l) for l in open(\"received.jsonl\")]))" >received.json 2>/dev/null &&
	jcheck received.json "$1" 2>/dev/null
}

# the standard deliveries of type $1 for release $2
release_hook() {
	received "any(r[\"path\"] == \"/hook\" and r[\"body\"][\"type\"] == \"$1\" and r[\"body\"][\"data\"][\"id\"] == $2 for r in d)"
}

test_expect_success 'setup: a receiver, a signing key, the daemon' '
	RPORT=$(free_port) &&
	spawn_bg receiver timeout 150 python3 "$ROOT/tests/e2e/helpers/receiver.py" "$RPORT" "$TRASH/received.jsonl" &&
	wait_for 10 "curl -s -o /dev/null -X POST -H Content-Length:2 -d {} http://127.0.0.1:$RPORT/ping" &&
	rm -f received.jsonl &&
	spec "{ MARK: one }" one &&
	printf "hook=%s\n" "$HOOK_SECRET" >"$GANTRY_HOME/webhook-secrets" &&
	chmod 600 "$GANTRY_HOME/webhook-secrets" &&
	start_serve
'

test_expect_success 'a release that succeeds: release_started and release_succeeded, signed, with the record' '
	"$GANTRY" release --env staging --wait >out &&
	wait_for 20 "release_hook release_succeeded 1" &&
	release_hook release_started 1 &&
	received "all(r[\"valid\"] is True for r in d if r[\"path\"] == \"/hook\")" &&
	received "[r[\"body\"][\"data\"] for r in d if r[\"path\"] == \"/hook\" and r[\"body\"][\"type\"] == \"release_succeeded\"][0][\"environment\"] == \"staging\"" &&
	received "[[(s[\"service\"], s[\"state\"], s[\"revision\"]) for s in r[\"body\"][\"data\"][\"services\"]] for r in d if r[\"body\"][\"type\"] == \"release_succeeded\"][0] == [(\"a\", \"succeeded\", 1), (\"b\", \"succeeded\", 1)]" &&
	received "not any(r[\"path\"] == \"/rolled-back\" for r in d)"
'

test_expect_success 'b crash-loops: release_failed, then release_rolled_back (a rolled back), to both targets' '
	spec "{ MARK: two, CRASH_AFTER_S: \"0\" }" two &&
	test_expect_code 1 "$GANTRY" release --env staging --wait >out &&
	wait_for 20 "release_hook release_rolled_back 2" &&
	release_hook release_failed 2 &&
	received "[r[\"body\"][\"data\"][\"state\"] for r in d if r[\"path\"] == \"/hook\" and r[\"body\"][\"type\"] == \"release_failed\" and r[\"body\"][\"data\"][\"id\"] == 2] == [\"rolling_back\"]" &&
	received "[{s[\"service\"]: s[\"state\"] for s in r[\"body\"][\"data\"][\"services\"]} for r in d if r[\"path\"] == \"/hook\" and r[\"body\"][\"type\"] == \"release_rolled_back\"] == [{\"a\": \"rolled_back\", \"b\": \"failed\"}]" &&
	wait_for 20 "received \"any(r[\\\"path\\\"] == \\\"/rolled-back\\\" for r in d)\"" &&
	received "[(r[\"body\"][\"type\"], r[\"body\"][\"data\"][\"id\"]) for r in d if r[\"path\"] == \"/rolled-back\"] == [(\"release_rolled_back\", 2)]" &&
	received "[r[\"body\"][\"type\"] for r in d if r[\"path\"] == \"/hook\" and r[\"body\"][\"type\"].startswith(\"release_\")] == [\"release_started\", \"release_succeeded\", \"release_started\", \"release_failed\", \"release_rolled_back\"]"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
