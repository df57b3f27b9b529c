#!/bin/sh
test_description='the controller owns the spec: approvals bind to what was approved; pre-checks run in the controller (even for curl); a rollback runs post-checks; an automatic rollback opens an incident'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry
grep -q daemon_spec_apply "$ROOT/src/daemon/spec_owner.c" 2>/dev/null ||
	skip_all "the controller does not own the spec yet (src/daemon/spec_owner.c)"

BACKOFF=100ms
API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT

as() {
	_who=$1
	shift
	GANTRY_TOKEN=$(cat "$TRASH/$_who.token") "$@"
}

# post OP JSON: POST /v1/OP with dan's (deployer) token; prints the HTTP
# status, the body in $TRASH/body.json
post() {
	curl -s -o "$TRASH/body.json" -w '%{http_code}' --max-time 20 -X POST \
		-H "Authorization: Bearer $(cat "$TRASH/dan.token")" -d "$2" "$API/v1/$1"
}

# records ENV: the deployment records of hello@ENV (newest first), JSON
records() {
	python3 - "$GANTRY_HOME/api.sock" "$1" <<-\PY
	import json, socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.connect(sys.argv[1])
	s.sendall(json.dumps({"op": "deployments", "service": "hello", "environment": sys.argv[2]}).encode() + b"\n")
	data = b""
	while True:
	    chunk = s.recv(65536)
	    if not chunk:
	        break
	    data += chunk
	print(json.dumps(json.loads(data)["deployments"]))
	PY
}

# rec_check ENV EXPR: Python EXPR over d = records ENV
rec_check() {
	records "$1" >"$TRASH/rec.json" && jcheck "$TRASH/rec.json" "$2"
}

lines() {
	if [ -f "$1" ]; then wc -l <"$1" | tr -d " "; else echo 0; fi
}

# the spec, GREETING in production's override ($1). The checks write to
# absolute paths: they run in the artifact snapshot directory in the
# controller. The pre-check logs the directory it ran in and fails while
# $TRASH/fail-pre exists. Checks run as the workload user (gantry-run when
# serve is root): the logs they append to are made writable for it first.
spec() {
	cat <<-EOF
	project: t
	environments:
	  staging: {}
	  production:
	    protection: { approvals: 2, approval_ttl: 1h }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 500ms
	    progress_deadline: 40s
	    checks:
	      pre:
	        - { run: "echo pre \$(pwd -P) >>$TRASH/pre.log; test ! -f $TRASH/fail-pre", timeout: 10s }
	      post:
	        - { run: "echo post \$(pwd -P) >>$TRASH/post.log", timeout: 10s }
	    environments:
	      production: { env: { GREETING: $1 } }
	EOF
}

test_expect_success 'setup: production needs 2 approvals; checks; serve --api; users' '
	spec one | write_svc_spec &&
	: >pre.log && : >post.log && chmod 666 pre.log post.log &&
	start_serve --api "127.0.0.1:$API_PORT" &&
	for u in alice bob carol; do "$GANTRY" user add $u --role approver >$u.token || return 1; done &&
	"$GANTRY" user add dan --role deployer >dan.token
'

test_expect_success 'a deploy to production waits: status has it under pending, rollout is no pending object' '
	as dan test_expect_code 3 "$GANTRY" deploy hello --env production --version v1 2>err &&
	cat err &&
	grep "waiting for approval: deployment 1" err &&
	ENV=production st_check "d[\"pending\"][\"deployment\"] == 1 and d[\"pending\"][\"phase\"] == \"pending_approval\"
		and d[\"pending\"][\"version\"] == \"v1\" and d[\"pending\"][\"expires_at\"]
		and \"gantry approve 1\" in d[\"pending\"][\"message\"]
		and (d[\"rollout\"] is None or d[\"rollout\"].get(\"phase\") != \"pending_approval\")
		and d[\"stable_revision\"] is None" &&
	as alice "$GANTRY" approve 1 >out &&
	grep "approved (1 of 2)" out
'

test_expect_success 'an admin changes production config after the first approval: the next approval does not start it' '
	spec two >spec2.yaml &&
	"$GANTRY" apply -f spec2.yaml >out &&
	cat out &&
	grep "spec version 2 applied" out &&
	cp spec2.yaml gantry.yaml &&
	as bob "$GANTRY" approve 1 >out &&
	cat out &&
	grep "approved (1 of 2)" out &&
	! grep "started" out &&
	ENV=production st_check "d[\"pending\"][\"deployment\"] == 1 and d[\"pending\"][\"spec_version\"] == 2
		and d[\"stable_revision\"] is None" &&
	ENV=production ev_check "any(e[\"kind\"] == \"approvals_reset\" and \"deployment 1\" in e[\"message\"] for e in ev)" &&
	"$GANTRY" history hello --env production -o json >hist.json &&
	jcheck hist.json "d == []"
'

test_expect_success 'two approvals of what it rolls out now start it, with the new config' '
	as alice "$GANTRY" approve 1 >approve2.out &&
	cat approve2.out &&
	grep "approved (2 of 2)" approve2.out &&
	wait_for 60 "ENV=production st_check \"d[\\\"phase\\\"] == \\\"healthy\\\" and d[\\\"stable_revision\\\"] == 1 and d[\\\"ready_replicas\\\"] == 1\"" &&
	pid=$(python3 -c "import json; print(json.load(open(\"st.json\"))[\"replicas\"][0][\"pid\"])") &&
	tr "\0" "\n" <"/proc/$pid/environ" | grep -x "GREETING=two" &&
	rec_check production "d[0][\"id\"] == 1 and set(a[\"by\"] for a in d[0][\"approvals\"] if a[\"decision\"] == \"approve\") == {\"alice\", \"bob\"}
		and d[0][\"state\"] in (\"post_checks\", \"succeeded\")"
'

test_expect_success 'the approval that starts a deploy with pre-checks says they run, claims no rollout' '
	grep "approved (2 of 2): its pre-deployment checks run in the controller" approve2.out &&
	! grep -E "rollout 0 |revision 0 " approve2.out
'

test_expect_success 'staging v1 from the CLI: the pre-check ran in the artifact snapshot, in the controller' '
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	ghist >hist.json &&
	digest=$(json_get 0.digest <hist.json) &&
	snap=$(cd "$GANTRY_HOME/artifacts/$digest" && pwd -P) &&
	grep -x "pre $snap" pre.log
'

test_expect_success 'a deploy through curl runs the pre-checks in the controller, then starts' '
	n=$(lines pre.log) &&
	test "$(post deploy "{\"service\": \"hello\", \"environment\": \"staging\", \"digest\": \"$digest\", \"version\": \"v2\"}")" = 200 &&
	cat body.json &&
	jcheck body.json "d[\"ok\"] is True and d[\"state\"] == \"pre_checks\" and d[\"deployment\"] > 1" &&
	dep=$(json_get deployment <body.json) &&
	wait_for 60 "st_check \"d[\\\"stable_revision\\\"] == 2 and d[\\\"phase\\\"] == \\\"healthy\\\"\"" &&
	test "$(lines pre.log)" = $((n + 1)) &&
	tail -n 1 pre.log | grep -x "pre $snap" &&
	wait_for 30 "rec_check staging \"[r for r in d if r[\\\"id\\\"] == $dep][0][\\\"state\\\"] == \\\"succeeded\\\"\"" &&
	jcheck rec.json "[c[\"phase\"] for c in [r for r in d if r[\"id\"] == $dep][0][\"checks\"]] == [\"pre\", \"post\"]
		and [r for r in d if r[\"id\"] == $dep][0][\"requester\"] == \"dan\""
'

test_expect_success 'a failing pre-check (deploy through curl): the deployment fails, no revision, traffic unchanged' '
	touch fail-pre &&
	n=$(lines pre.log) &&
	test "$(post deploy "{\"service\": \"hello\", \"environment\": \"staging\", \"digest\": \"$digest\", \"version\": \"v3\"}")" = 200 &&
	jcheck body.json "d[\"state\"] == \"pre_checks\"" &&
	dep=$(json_get deployment <body.json) &&
	wait_for 30 "rec_check staging \"[r for r in d if r[\\\"id\\\"] == $dep][0][\\\"state\\\"] == \\\"failed\\\"\"" &&
	jcheck rec.json "[r for r in d if r[\"id\"] == $dep][0][\"revision\"] in (None, 0)
		and \"pre-deployment check failed\" in [r for r in d if r[\"id\"] == $dep][0][\"result_reason\"]" &&
	test "$(lines pre.log)" = $((n + 1)) &&
	ghist >hist.json &&
	jcheck hist.json "[r[\"revision\"] for r in d] == [2, 1]" &&
	st_check "d[\"stable_revision\"] == 2 and d[\"traffic\"] == [{\"revision\": 2, \"weight\": 100}]" &&
	gevents >ev.jsonl && grep -q pre_check_failed ev.jsonl &&
	rm fail-pre
'

test_expect_success 'a rollback runs the post-checks on its target' '
	wait_for 30 "rec_check staging \"all(r[\\\"state\\\"] not in (\\\"post_checks\\\", \\\"pre_checks\\\") for r in d)\"" &&
	n=$(lines post.log) &&
	"$GANTRY" rollback hello --env staging --wait &&
	wait_for 30 "rec_check staging \"d[0][\\\"kind\\\"] == \\\"rollback\\\" and d[0][\\\"state\\\"] == \\\"succeeded\\\"\"" &&
	jcheck rec.json "[(c[\"phase\"], c[\"ok\"]) for c in d[0][\"checks\"]] == [(\"post\", True)] and d[0][\"revision\"] == 3" &&
	test "$(lines post.log)" = $((n + 1)) &&
	tail -n 1 post.log | grep -x "post $snap" &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 3 and d[0][\"kind\"] == \"rollback\" and d[0][\"digest\"] == \"$digest\""
'

test_expect_success 'an automatic rollback (crash loop) opens a P2 incident by gantry naming hello@staging' '
	"$GANTRY" incident list -o json >inc.json &&
	jcheck inc.json "d == []" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v4 --set env.CRASH_AFTER_S=0 --wait &&
	wait_for 30 "st_check \"d[\\\"phase\\\"] == \\\"rolled_back\\\" and d[\\\"stable_revision\\\"] == 3\"" &&
	wait_for 30 "\"\$GANTRY\" incident list -o json >inc.json && jcheck inc.json \"len(d) == 1\"" &&
	jcheck inc.json "d[0][\"severity\"] == \"P2\" and d[0][\"status\"] == \"open\" and d[0][\"opened_by\"] == \"gantry\"
		and d[0][\"service\"] == \"hello\" and d[0][\"environment\"] == \"staging\"
		and \"hello@staging\" in d[0][\"title\"]" &&
	"$GANTRY" audit -o json >audit.json &&
	jcheck audit.json "any(e[\"action\"] == \"auto_rollback\" and e[\"actor\"] == \"gantry\" for e in d)
		and any(e[\"action\"] == \"incident_open\" and e[\"actor\"] == \"gantry\" for e in d)"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
