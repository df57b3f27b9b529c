#!/bin/sh
test_description='scoped roles: a role limited to environments and services changes only what its scope covers; reads are not scoped'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

as() {
	_who=$1
	shift
	GANTRY_TOKEN=$(cat "$TRASH/$_who.token") "$@"
}

prod() {
	"$GANTRY" "$@" hello --env production -o json
}

test_expect_success 'setup: staging, production (1 approval); scoped and unscoped users' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	  production:
	    replicas: 1
	    protection: { approvals: 1, approval_ttl: 1h }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	roles:
	  olga: { role: deployer, environments: [production], services: [hello] }
	  otto: approver
	EOF
	start_serve &&
	"$GANTRY" user add ana --role deployer --env staging >ana.token 2>err &&
	grep "user ana (deployer for staging) added" err &&
	"$GANTRY" user add sam --role approver --env staging >sam.token &&
	"$GANTRY" user add paul --role approver >paul.token &&
	"$GANTRY" user add wes --role deployer --env staging,production --service web >wes.token &&
	"$GANTRY" user add ada --role admin --env staging >ada.token
'

test_expect_success 'user list and whoami show the scope' '
	"$GANTRY" user list -o json >users.json &&
	jcheck users.json "[(u[\"name\"], u[\"environments\"], u[\"services\"]) for u in d] == [
		(\"ada\", [\"staging\"], []), (\"ana\", [\"staging\"], []), (\"paul\", [], []),
		(\"sam\", [\"staging\"], []), (\"wes\", [\"staging\", \"production\"], [\"web\"])]" &&
	"$GANTRY" user list >users.txt &&
	head -1 users.txt | grep "ENVIRONMENTS *SERVICES" &&
	grep "^wes .* staging,production *web " users.txt &&
	grep "^paul .* \* *\* " users.txt &&
	as ana "$GANTRY" user whoami >me &&
	grep "^ana (deployer for staging, by API token)$" me &&
	as wes "$GANTRY" user whoami -o json >wes.json &&
	jcheck wes.json "d[\"environments\"] == [\"staging\", \"production\"] and d[\"services\"] == [\"web\"]"
'

test_expect_success 'a deployer scoped to staging deploys to staging' '
	as ana "$GANTRY" deploy hello --env staging --version v1 --wait &&
	"$GANTRY" history hello --env staging -o json >hist.json &&
	jcheck hist.json "len(d) == 1 and d[0][\"deployed_by\"] == \"ana\""
'

test_expect_success 'production runs v1 (deployed by the owner, approved by an unscoped approver)' '
	test_expect_code 3 "$GANTRY" deploy hello --env production --version v1 2>err &&
	grep "waiting for approval: deployment 2" err &&
	as paul "$GANTRY" approve 2 >out &&
	grep "started" out &&
	wait_for 30 "prod status >st.json && jcheck st.json \"d[\\\"phase\\\"] == \\\"healthy\\\" and d[\\\"stable_revision\\\"] == 1\"" &&
	prod history >before.json &&
	jcheck before.json "len(d) == 1"
'

test_expect_success 'the staging deployer cannot deploy, scale, roll back or restart production (exit 3)' '
	for cmd in "deploy hello --env production --version v2" "scale hello --env production --replicas 3" \
		"rollback hello --env production" "restart hello --env production"; do
		as ana test_expect_code 3 "$GANTRY" $cmd 2>err || return 1
		op=${cmd%% *}
		grep -F "permission denied: ana (role deployer for staging) cannot run '\''$op'\'' on hello@production" err || return 1
	done
'

test_expect_success '... and nothing changed: no revision, no deployment record, same replicas' '
	prod history >after.json &&
	test_cmp before.json after.json &&
	prod status >st.json &&
	jcheck st.json "d[\"desired_replicas\"] == 1 and d[\"stable_revision\"] == 1 and d[\"phase\"] == \"healthy\"" &&
	api "{\"op\": \"deployments\", \"environment\": \"production\"}" >recs.json &&
	jcheck recs.json "len(d[\"deployments\"]) == 1 and d[\"deployments\"][0][\"requester\"] != \"ana\""
'

test_expect_success 'reads are not scoped' '
	as ana "$GANTRY" status hello --env production >/dev/null &&
	as ana "$GANTRY" history hello --env production >/dev/null &&
	as ana "$GANTRY" events hello --env production >/dev/null
'

test_expect_success 'a service scope: web only, so hello is refused even in staging' '
	as wes test_expect_code 3 "$GANTRY" scale hello --env staging --replicas 2 2>err &&
	grep -F "wes (role deployer for staging,production and services web) cannot run '\''scale'\'' on hello@staging" err
'

test_expect_success 'an approver scoped to staging cannot approve or reject a production deployment' '
	test_expect_code 3 "$GANTRY" deploy hello --env production --version v2 2>err &&
	grep "waiting for approval: deployment 3" err &&
	as sam test_expect_code 3 "$GANTRY" approve 3 2>err &&
	grep -F "permission denied: sam (role approver for staging) cannot approve deployment 3 of hello@production" err &&
	as sam test_expect_code 3 "$GANTRY" reject 3 2>err &&
	grep "cannot reject deployment 3" err &&
	"$GANTRY" approve -o json >pending.json &&
	jcheck pending.json "[p[\"id\"] for p in d] == [3] and d[0][\"approvals\"] == []" &&
	as paul "$GANTRY" reject 3 --comment "not now" >/dev/null
'

test_expect_success 'incidents: in the scope only; a global incident needs an unscoped caller' '
	as ana "$GANTRY" incident open -s P2 -t "staging slow" --env staging >/dev/null &&
	as ana test_expect_code 3 "$GANTRY" incident open -s P2 -t "prod slow" --env production 2>err &&
	grep -F "ana (role deployer for staging) cannot open an incident on every service in production" err &&
	as ana test_expect_code 3 "$GANTRY" incident open -s P1 -t "all down" 2>err &&
	grep -F "ana (role deployer for staging) cannot open an incident on every service in every environment" err &&
	"$GANTRY" incident open -s P3 -t "prod typo" --env production >/dev/null &&
	"$GANTRY" incident list -o json >inc.json &&
	jcheck inc.json "sorted(i[\"title\"] for i in d) == [\"prod typo\", \"staging slow\"]" &&
	id=$(python3 -c "import json; print([i[\"id\"] for i in json.load(open(\"inc.json\")) if i[\"title\"] == \"prod typo\"][0])") &&
	as ana test_expect_code 3 "$GANTRY" incident close $id 2>err &&
	grep "cannot close incident $id on every service in production" err
'

test_expect_success 'a scoped admin cannot manage users' '
	as ada test_expect_code 3 "$GANTRY" user add eve --role admin 2>err &&
	grep "needs an admin of every service and environment" err &&
	"$GANTRY" user list -o json >users.json &&
	jcheck users.json "\"eve\" not in [u[\"name\"] for u in d]"
'

test_expect_success 'bad scopes: the CLI names the flag, the API the JSON pointer (exit 2)' '
	test_expect_code 2 "$GANTRY" user add zed --role deployer --env staging,Prod 2>err &&
	grep -F -- "--env: '\''Prod'\'' is not a valid environment name" err &&
	test_expect_code 2 "$GANTRY" user add zed --role deployer --service "" 2>err &&
	grep -F -- "--service:" err &&
	api "{\"op\": \"user_add\", \"name\": \"zed\", \"role\": \"deployer\", \"environments\": [\"staging\", \"no_such\"]}" >r.json &&
	jcheck r.json "d[\"ok\"] is False and d[\"code\"] == 2 and d[\"error\"].startswith(\"/environments/1: \")" &&
	api "{\"op\": \"user_add\", \"name\": \"zed\", \"role\": \"deployer\", \"services\": \"web\"}" >r.json &&
	jcheck r.json "d[\"code\"] == 2 and d[\"error\"].startswith(\"/services: \")" &&
	"$GANTRY" user list -o json >users.json &&
	jcheck users.json "\"zed\" not in [u[\"name\"] for u in d]"
'

test_expect_success 'user sync applies the scoped form of the spec roles' '
	"$GANTRY" user sync >out &&
	grep "^olga: deployer for production and services hello$" out &&
	grep "^otto: approver$" out &&
	"$GANTRY" user list -o json >users.json &&
	jcheck users.json "[(u[\"environments\"], u[\"services\"], u[\"token\"]) for u in d if u[\"name\"] == \"olga\"]
		== [([\"production\"], [\"hello\"], False)]"
'

test_expect_success 'a bad scope in the spec is a diagnostic with its line and column' '
	cat >bad.yaml <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello: { run: ./hello }
	roles:
	  ana: { role: deployer, environments: [prod] }
	EOF
	test_expect_code 2 "$GANTRY" validate -f bad.yaml 2>err &&
	grep "bad.yaml:7:41: .*roles.ana.environments\[0\]: '\''prod'\'' is not an environment of this spec" err
'

test_expect_success 'stop' '
	stop_serve
'

test_done
