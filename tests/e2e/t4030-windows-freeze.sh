#!/bin/sh
test_description='gates: a deploy window refuses with the next allowed time; emergency override recorded; incident freeze blocks deploys, not rollbacks; a viewer cannot deploy'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

ENV=production
HOST=hello.production.localhost

# the daemon's clock (GANTRY_NOW, tests only): Friday 2024-05-10 18:00 in Berlin
GANTRY_NOW=2024-05-10T16:00:00Z
export GANTRY_NOW

test_expect_success 'setup: spec with a Friday freeze window and incident freeze, daemon' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	  production:
	    protection:
	      windows: { deny: ["Fri 17:00-Mon 08:00"], timezone: Europe/Berlin }
	      freeze_on_incident: [P0, P1]
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
	start_serve &&
	"$GANTRY" user add dan --role deployer >dan.token &&
	"$GANTRY" user add vic --role viewer >vic.token
'

test_expect_success 'Friday 18:00: refused (exit 3) with the next allowed time; nothing deployed' '
	test_expect_code 3 "$GANTRY" deploy hello --env production --version v1 2>err &&
	cat err &&
	grep "not allowed now" err &&
	grep "next allowed at Mon 2024-05-13 08:00 CEST" err &&
	ghist >hist.json &&
	jcheck hist.json "d == []"
'

test_expect_success 'staging has no window: deploys' '
	"$GANTRY" deploy hello --env staging --version v1 --wait
'

test_expect_success 'emergency: needs a reason, and approver or admin' '
	test_expect_code 2 "$GANTRY" deploy hello --env production --version v1 --emergency 2>err &&
	grep "reason" err &&
	GANTRY_TOKEN=$(cat dan.token) test_expect_code 3 "$GANTRY" deploy hello --env production --version v1 \
		--emergency --reason "payments down" 2>err &&
	grep "approver or admin" err
'

test_expect_success 'emergency by an admin goes through, loudly recorded' '
	GANTRY_USER=alice "$GANTRY" deploy hello --env production --version v1 --emergency --reason "payments down" --wait &&
	st_check "d[\"stable_revision\"] == 1 and d[\"version\"] == \"v1\"" &&
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "any(e[\"action\"] == \"emergency_override\" and e[\"actor\"] == \"alice\"
		and e[\"details\"][\"reason\"] == \"payments down\" and e[\"details\"][\"gates\"][\"window\"] == \"overridden\" for e in d)" &&
	gevents >ev.jsonl &&
	grep "emergency_deploy" ev.jsonl | grep "payments down"
'

test_expect_success 'a rollback is never blocked by the window' '
	GANTRY_USER=alice "$GANTRY" deploy hello --env production --version v2 --emergency --reason "second fix" --wait &&
	"$GANTRY" rollback hello --env production --wait &&
	st_check "d[\"version\"] == \"v1\""
'

test_expect_success 'Monday 12:00: allowed; a viewer is still refused, and changes nothing' '
	stop_serve &&
	GANTRY_NOW=2024-05-13T10:00:00Z start_serve &&
	GANTRY_TOKEN=$(cat vic.token) test_expect_code 3 "$GANTRY" deploy hello --env production --version v3 2>err &&
	grep "permission denied" err &&
	ghist >hist.json &&
	jcheck hist.json "len(d) == 3" &&
	GANTRY_TOKEN=$(cat dan.token) "$GANTRY" deploy hello --env production --version v3 --wait &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"version\"] == \"v3\" and d[0][\"deployed_by\"] == \"dan\""
'

test_expect_success 'an open P1 freezes production: deploys refused (exit 3) naming the incident' '
	"$GANTRY" incident open -s P1 -t "checkout down" --env production >/dev/null &&
	test_expect_code 3 "$GANTRY" deploy hello --env production --version v4 2>err &&
	grep "frozen by open incident 1 (P1: checkout down)" err &&
	"$GANTRY" deploy hello --env staging --version v4 --wait
'

test_expect_success 'the freeze does not block a rollback' '
	"$GANTRY" rollback hello --env production --wait &&
	st_check "d[\"version\"] == \"v1\""
'

test_expect_success 'a P2 does not freeze; closing the P1 lifts the freeze' '
	"$GANTRY" incident open -s P2 -t "slow search" --env production >/dev/null &&
	test_expect_code 3 "$GANTRY" deploy hello --env production --version v4 &&
	"$GANTRY" incident close 1 >/dev/null &&
	"$GANTRY" deploy hello --env production --version v4 --wait &&
	st_check "d[\"version\"] == \"v4\""
'

test_expect_success 'refusals are events' '
	gevents >ev.jsonl &&
	grep gate_refused ev.jsonl | grep -q "not allowed now" &&
	grep gate_refused ev.jsonl | grep -q "frozen by open incident"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
