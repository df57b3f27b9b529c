#!/bin/sh
test_description='the controller owns the spec: a deployer cannot drop the policy it deploys under (CLI or raw API); apply classes changes config/policy; --expect-version; an invalid spec stores nothing'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry
grep -q daemon_spec_apply "$ROOT/src/daemon/spec_owner.c" 2>/dev/null ||
	skip_all "the controller does not own the spec yet (src/daemon/spec_owner.c)"

API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT

# as USER CMD...: CMD with USER's API token
as() {
	_who=$1
	shift
	GANTRY_TOKEN=$(cat "$TRASH/$_who.token") "$@"
}

# post OP JSON: POST /v1/OP with dan's (deployer) token; prints the HTTP status,
# the body in $TRASH/body.json
post() {
	curl -s -o "$TRASH/body.json" -w '%{http_code}' --max-time 20 -X POST \
		-H "Authorization: Bearer $(cat "$TRASH/dan.token")" -d "$2" "$API/v1/$1"
}

# state: one line of what a refusal must leave as it was: the stored spec
# version and the number of versions, the revisions and traffic of
# hello@staging and hello@production, the open incidents
state() {
	"$GANTRY" spec history -o json >"$TRASH/sh.json" &&
	"$GANTRY" history hello --env staging -o json >"$TRASH/hs.json" &&
	"$GANTRY" history hello --env production -o json >"$TRASH/hp.json" &&
	"$GANTRY" status -o json >"$TRASH/sa.json" &&
	"$GANTRY" incident list -o json >"$TRASH/inc.json" &&
	python3 - "$TRASH" <<-\PY
	import json, sys
	t = sys.argv[1]
	ld = lambda n: json.load(open(t + "/" + n))
	sh, st = ld("sh.json"), ld("sa.json")
	traffic = sorted((s["environment"], json.dumps(s.get("traffic"))) for s in st)
	print(sh["current"], len(sh["versions"]), [r["revision"] for r in ld("hs.json")],
	      [r["revision"] for r in ld("hp.json")], traffic, [i["id"] for i in ld("inc.json")])
	PY
}

# audit_since N: the audit entries after the first N, into $TRASH/new-audit.json
audit_since() {
	"$GANTRY" audit -o json >"$TRASH/audit.json" &&
	python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))[int(sys.argv[2]):]))' \
		"$TRASH/audit.json" "$1" >"$TRASH/new-audit.json"
}

audit_count() {
	"$GANTRY" audit -o json >"$TRASH/audit.json" &&
	python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$TRASH/audit.json"
}

test_expect_success 'setup: production protected (2 approvals, frozen by P0); serve --api applies it; staging v1' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	  production:
	    protection: { approvals: 2, freeze_on_incident: [P0] }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 500ms
	EOF
	start_serve --api "127.0.0.1:$API_PORT" &&
	grep "gantry serve: spec version 1" serve.log &&
	"$GANTRY" user whoami -o json >me.json &&
	admin=$(json_get name <me.json) &&
	"$GANTRY" spec history -o json >sh.json &&
	jcheck sh.json "d[\"current\"] == 1 and [v[\"version\"] for v in d[\"versions\"]] == [1]
		and d[\"versions\"][0][\"applied_by\"] == \"$admin\"" &&
	"$GANTRY" user add dan --role deployer >dan.token &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	ghist >hist.json &&
	digest=$(json_get 0.digest <hist.json) &&
	"$GANTRY" incident open -s P0 -t "database down" &&
	mkdir -p elsewhere
'

test_expect_success 'the bypass: a deployer deletes production.protection from its copy and deploys: exit 3, nothing changed' '
	before=$(state) && echo "$before" &&
	n=$(audit_count) &&
	sed "/protection:/d" gantry.yaml >bypass.yaml &&
	! grep protection bypass.yaml &&
	as dan test_expect_code 3 "$GANTRY" -f bypass.yaml deploy hello --env production --version v2 2>err &&
	cat err &&
	grep "permission denied" err &&
	grep "environments.production.protection.approvals: 2" err &&
	grep "environments.production.protection.freeze_on_incident" err &&
	test "$(state)" = "$before" &&
	audit_since "$n" &&
	jcheck new-audit.json "[(e[\"actor\"], e[\"action\"]) for e in d] == [(\"dan\", \"apply_refused\")]
		and d[0][\"details\"][\"via\"] == \"deploy\"
		and sorted(r[\"path\"] for r in d[0][\"details\"][\"diff\"]) == [\"environments.production.protection.approvals\",
			\"environments.production.protection.freeze_on_incident\"]
		and all(r[\"class\"] == \"policy\" and r[\"old\"] is not None for r in d[0][\"details\"][\"diff\"])"
'

test_expect_success 'with the unmodified spec the deploy is refused by the freeze (exit 3), nothing changed' '
	before=$(state) &&
	n=$(audit_count) &&
	as dan test_expect_code 3 "$GANTRY" deploy hello --env production --version v2 2>err &&
	cat err &&
	grep "frozen by open incident 1" err &&
	test "$(state)" = "$before" &&
	audit_since "$n" &&
	jcheck new-audit.json "[(e[\"actor\"], e[\"action\"], e[\"target\"]) for e in d] == [(\"dan\", \"refused\", \"hello@production\")]
		and d[0][\"details\"][\"op\"] == \"deploy\" and \"frozen\" in d[0][\"details\"][\"error\"]"
'

test_expect_success 'with no spec at hand (--version of a known artifact): the stored policy refuses it too' '
	before=$(state) &&
	n=$(audit_count) &&
	(cd elsewhere && as dan test_expect_code 3 "$GANTRY" deploy hello --env production --version v1 2>../err) &&
	grep "frozen by open incident 1" err &&
	test "$(state)" = "$before" &&
	audit_since "$n" &&
	jcheck new-audit.json "[(e[\"actor\"], e[\"action\"]) for e in d] == [(\"dan\", \"refused\")]"
'

test_expect_success 'raw API: POST /v1/deploy with no gates field is refused by the stored freeze (403, code 3)' '
	before=$(state) &&
	n=$(audit_count) &&
	test "$(post deploy "{\"service\": \"hello\", \"environment\": \"production\", \"digest\": \"$digest\", \"version\": \"v2\"}")" = 403 &&
	cat body.json &&
	jcheck body.json "d[\"ok\"] is False and d[\"code\"] == 3 and \"frozen by open incident 1\" in d[\"error\"]" &&
	test "$(state)" = "$before" &&
	audit_since "$n" &&
	jcheck new-audit.json "[(e[\"actor\"], e[\"action\"], e[\"target\"]) for e in d] == [(\"dan\", \"refused\", \"hello@production\")]"
'

test_expect_success 'raw API: a request carrying gates, notify or config is refused (400) naming the field; nothing changed' '
	before=$(state) &&
	n=$(audit_count) &&
	body="\"service\": \"hello\", \"environment\": \"production\", \"digest\": \"$digest\", \"version\": \"v2\"" &&
	test "$(post deploy "{$body, \"gates\": {}}")" = 400 &&
	jcheck body.json "d[\"code\"] == 2 and d[\"error\"].startswith(\"/gates:\")" &&
	test "$(post deploy "{$body, \"notify\": [{\"url\": \"http://127.0.0.1:1/hook\"}]}")" = 400 &&
	jcheck body.json "d[\"code\"] == 2 and d[\"error\"].startswith(\"/notify:\")" &&
	test "$(post incident_open "{\"severity\": \"P3\", \"title\": \"x\", \"notify\": [{\"url\": \"http://127.0.0.1:1/hook\"}]}")" = 400 &&
	jcheck body.json "d[\"code\"] == 2 and d[\"error\"].startswith(\"/notify:\")" &&
	test "$(post deploy "{\"service\": \"hello\", \"environment\": \"staging\", \"digest\": \"$digest\", \"version\": \"v2\",
		\"config\": {\"run\": \"./hello\", \"replicas\": 3}}")" = 400 &&
	jcheck body.json "d[\"code\"] == 2 and d[\"error\"].startswith(\"/config:\")" &&
	test "$(state)" = "$before" &&
	audit_since "$n" &&
	jcheck new-audit.json "not [e for e in d if e[\"action\"] in (\"deploy\", \"apply\", \"incident_open\")]"
'

test_expect_success 'a deployer applies a config change (services.hello.env): a new version, changed' '
	n=$(audit_count) &&
	sed "s|^    run: ./hello$|    run: ./hello\n    env: { GREETING: two }|" gantry.yaml >v2.yaml &&
	grep "GREETING: two" v2.yaml &&
	as dan "$GANTRY" apply -f v2.yaml >out &&
	cat out &&
	grep "spec version 2 applied (was 1)" out &&
	grep "services.hello.env.GREETING" out &&
	! grep "(policy)" out &&
	"$GANTRY" spec history -o json >sh.json &&
	jcheck sh.json "d[\"current\"] == 2 and d[\"versions\"][0][\"applied_by\"] == \"dan\"
		and [(r[\"path\"], r[\"class\"]) for r in d[\"versions\"][0][\"diff\"]] == [(\"services.hello.env.GREETING\", \"config\")]" &&
	audit_since "$n" &&
	jcheck new-audit.json "[(e[\"actor\"], e[\"action\"]) for e in d] == [(\"dan\", \"apply\")] and d[0][\"details\"][\"version\"] == 2" &&
	as dan "$GANTRY" apply -f v2.yaml -o json >again.json &&
	jcheck again.json "d[\"changed\"] is False and d[\"version\"] == 2"
'

test_expect_success 'a deployer changing protection is refused (exit 3) naming the key, its stored and proposed value' '
	before=$(state) &&
	n=$(audit_count) &&
	sed "s/approvals: 2/approvals: 1/" v2.yaml >v3.yaml &&
	as dan test_expect_code 3 "$GANTRY" apply -f v3.yaml 2>err &&
	cat err &&
	grep "permission denied" err &&
	grep "environments.production.protection.approvals: 2 -> 1" err &&
	test "$(state)" = "$before" &&
	audit_since "$n" &&
	jcheck new-audit.json "[(e[\"actor\"], e[\"action\"]) for e in d] == [(\"dan\", \"apply_refused\")]
		and d[0][\"details\"][\"via\"] == \"apply\"
		and [(r[\"path\"], r[\"old\"], r[\"new\"], r[\"class\"]) for r in d[0][\"details\"][\"diff\"]]
			== [(\"environments.production.protection.approvals\", \"2\", \"1\", \"policy\")]"
'

test_expect_success 'an admin applies the same protection change: accepted, audited with the policy row' '
	n=$(audit_count) &&
	"$GANTRY" apply -f v3.yaml >out &&
	cat out &&
	grep "spec version 3 applied (was 2)" out &&
	grep -E "environments.production.protection.approvals: \"?2\"? -> \"?1\"? \(policy\)" out &&
	audit_since "$n" &&
	jcheck new-audit.json "[(e[\"actor\"], e[\"action\"]) for e in d] == [(\"$admin\", \"apply\")]
		and d[0][\"details\"][\"version\"] == 3
		and [(r[\"path\"], r[\"old\"], r[\"new\"], r[\"class\"]) for r in d[0][\"details\"][\"diff\"]]
			== [(\"environments.production.protection.approvals\", \"2\", \"1\", \"policy\")]" &&
	"$GANTRY" spec diff -o json >sd.json &&
	jcheck sd.json "d[\"from\"] == 2 and d[\"to\"] == 3 and len(d[\"diff\"]) == 1"
'

test_expect_success 'diff shows what an apply would change and stores nothing' '
	before=$(state) &&
	sed "s/GREETING: two/GREETING: three/" v3.yaml >v4.yaml &&
	as dan "$GANTRY" diff -f v4.yaml >out &&
	cat out &&
	grep -E "services.hello.env.GREETING: \"?two\"? -> \"?three\"?" out &&
	test "$(state)" = "$before"
'

test_expect_success '--expect-version: a stale version is refused (exit 1) naming the current one; nothing stored' '
	before=$(state) &&
	n=$(audit_count) &&
	as dan test_expect_code 1 "$GANTRY" apply -f v4.yaml --expect-version 2 2>err &&
	cat err &&
	grep "the stored spec is version 3, not 2" err &&
	test "$(state)" = "$before" &&
	audit_since "$n" &&
	jcheck new-audit.json "[(e[\"actor\"], e[\"action\"]) for e in d] == [(\"dan\", \"apply_refused\")]"
'

test_expect_success '--expect-version: the current version is accepted' '
	as dan "$GANTRY" apply -f v4.yaml --expect-version 3 >out &&
	grep "spec version 4 applied (was 3)" out &&
	"$GANTRY" spec history -o json >sh.json &&
	jcheck sh.json "d[\"current\"] == 4 and len(d[\"versions\"]) == 4"
'

test_expect_success 'an invalid spec: exit 2 with FILE:LINE:COL, spec history unchanged, the attempt audited' '
	before=$(state) &&
	n=$(audit_count) &&
	sed "s/^  staging: {}$/  staging: { replicas: many }/" v4.yaml >bad.yaml &&
	line=$(grep -n "replicas: many" bad.yaml | cut -d: -f1) &&
	as dan test_expect_code 2 "$GANTRY" apply -f bad.yaml 2>err &&
	cat err &&
	grep "bad.yaml:$line:[0-9][0-9]*: error: environments.staging.replicas" err &&
	test_expect_code 2 "$GANTRY" apply -f bad.yaml 2>err &&
	grep "bad.yaml:$line:[0-9][0-9]*:" err &&
	test "$(state)" = "$before" &&
	audit_since "$n" &&
	jcheck new-audit.json "[e[\"action\"] for e in d] == [\"apply_refused\", \"apply_refused\"]
		and \"bad.yaml:$line:\" in d[0][\"details\"][\"error\"]"
'

test_expect_success 'stop' '
	stop_serve
'

test_done
