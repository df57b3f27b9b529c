#!/bin/sh
test_description='gantry checklist: done, failing and manual items from the spec and live state'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

item() {
	jcheck list.json "[i[\"status\"] for i in d if i[\"item\"] == \"$1\"] == [\"$2\"]"
}

test_expect_success 'setup: spec with gates, checks and manual items; daemon' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	  production:
	    promote_from: staging
	    protection:
	      approvals: 1
	      windows: { deny: ["Mon-Sun"] }
	      freeze_on_incident: [P0]
	      checklist: ["announce in #deploys", "on-call engineer knows"]
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    checks:
	      pre: [ { run: "true" } ]
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait
'

test_expect_success 'production: window failing, promotion done, approvals and items manual; exit 1' '
	test_expect_code 1 "$GANTRY" checklist hello --env production -o json >list.json &&
	item "spec is valid" done &&
	item "inside a deploy window" failing &&
	item "no incident freezes the environment" done &&
	item "version promoted and soaked" done &&
	item "approvals" manual &&
	item "pre-deployment checks defined" done &&
	item "post-deployment checks defined" manual &&
	item "rollback target warm" manual &&
	item "announce in #deploys" manual &&
	item "on-call engineer knows" manual
'

test_expect_success 'an open P0 makes the freeze item fail' '
	"$GANTRY" incident open -s P0 -t "all down" >/dev/null &&
	test_expect_code 1 "$GANTRY" checklist hello --env production -o json >list.json &&
	item "no incident freezes the environment" failing &&
	"$GANTRY" incident close 1 >/dev/null
'

test_expect_success 'staging: nothing failing; the serving revision is a warm rollback target' '
	"$GANTRY" checklist hello --env staging -o json >list.json &&
	item "rollback target warm" done &&
	item "inside a deploy window" done
'

test_expect_success 'markdown and table output' '
	test_expect_code 1 "$GANTRY" checklist hello --env production --markdown >md &&
	grep "^## Release checklist: hello to production" md &&
	grep "^- \[x\] spec is valid" md &&
	grep "^- \[ \] inside a deploy window \*\*(failing)\*\*" md &&
	grep "^- \[ \] announce in #deploys \*(manual)\*" md &&
	"$GANTRY" checklist hello --env staging >table &&
	grep "^\[done\]" table
'

test_expect_success 'an invalid spec is a failing item, and usage errors exit 2' '
	cp gantry.yaml good.yaml &&
	echo "bogus: 1" >>gantry.yaml &&
	test_expect_code 1 "$GANTRY" checklist hello --env staging -o json >list.json &&
	item "spec is valid" failing &&
	cp good.yaml gantry.yaml &&
	test_expect_code 2 "$GANTRY" checklist hello &&
	test_expect_code 2 "$GANTRY" checklist --env staging
'

test_expect_success 'stop' '
	stop_serve
'

test_done
