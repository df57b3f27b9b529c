#!/bin/sh
test_description='feature flags: gantry flag set/list/history, OFREP single and bulk (ETag, 304), tokens per environment, the OpenFeature SDK sees a flip, state survives a restart, bad definitions at FILE:LINE:COL'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl
require_gantry

API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
FLAGS_PORT=$(free_port)
FL=http://127.0.0.1:$FLAGS_PORT

# ofrep ENV TOKEN [KEY] [CURL ARG...]: POST .../evaluate/flags[/KEY]; the body in $TRASH/o.json, the code on stdout
ofrep() {
	_env=$1 _tok=$2 _key=${3:+/$3}
	shift 3
	curl -s -D "$TRASH/o.h" -o "$TRASH/o.json" -w '%{http_code}' --max-time 10 -X POST \
		-H "Authorization: Bearer $_tok" -H 'Content-Type: application/json' "$@" \
		"$API/flags/$_env/ofrep/v1/evaluate/flags$_key"
}

test_expect_success 'bad flag definitions are refused at FILE:LINE:COL' '
	cat >bad.yaml <<-EOF &&
	environments:
	  staging: {}
	services:
	  hello:
	    run: ./hello
	flags:
	  checkout:
	    default: of
	  beta:
	    rules:
	      - { if: { attr: plan, in: [pro] }, serve: "125%" }
	  color:
	    variants: { blue: "#00f", red: "#f00" }
	    default: blue
	    rules:
	      - { if: { attr: version, semver: ">= 2.x" }, serve: red }
	EOF
	test_expect_code 2 "$GANTRY" validate -f bad.yaml 2>err &&
	cat err &&
	grep "bad.yaml:8:14: error: flags.checkout.default: unknown variant .of. (variants: on, off)" err &&
	grep "bad.yaml:11:49: error: flags.beta.rules\[0\].serve: bad percentage .125%." err &&
	grep "bad.yaml:16:40: error: flags.color.rules\[0\].if.semver: invalid semver range" err
'

test_expect_success 'setup: a spec with flags, serve with --api (OFREP there too) and --flags-listen, revision 1 in staging and production' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	  production: { replicas: 1 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	flags:
	  new_checkout:
	    default: off
	    rules:
	      - { if: { attr: plan, in: [pro, team] }, serve: on }
	      - { if: { attr: version, semver: ">= 2.1" }, serve: "25%" }
	  banner:
	    variants: { blue: "#00f", red: "#f00" }
	    default: blue
	EOF
	start_serve --api "127.0.0.1:$API_PORT" --flags-listen "127.0.0.1:$FLAGS_PORT" &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null &&
	"$GANTRY" deploy hello --env production --version v1 --wait >/dev/null &&
	"$GANTRY" flag token --env staging >staging.token &&
	"$GANTRY" flag token --env production >production.token &&
	test -s staging.token && ! cmp -s staging.token production.token
'

test_expect_success 'flag list: every flag in every environment, state spec' '
	"$GANTRY" flag list >list.txt &&
	cat list.txt &&
	test "$(grep -c " spec " list.txt)" = 4 &&
	"$GANTRY" flag list --env staging -o json >list.json &&
	python3 -c "import json,sys; l=json.load(open(sys.argv[1])); assert len(l)==2 and all(f[\"state\"]==\"spec\" and f[\"environment\"]==\"staging\" for f in l), l" list.json
'

test_expect_success 'OFREP single evaluation: rules, a percentage, errors' '
	T=$(cat staging.token) &&
	test "$(ofrep staging "$T" new_checkout -d "{\"context\":{\"targetingKey\":\"u1\",\"plan\":\"pro\"}}")" = 200 &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d==dict(key=\"new_checkout\",value=True,reason=\"TARGETING_MATCH\",variant=\"on\",metadata={}), d" o.json &&
	test "$(ofrep staging "$T" new_checkout -d "{\"context\":{\"targetingKey\":\"u1\",\"plan\":\"free\"}}")" = 200 &&
	test "$(json_get value <o.json)" = false && test "$(json_get reason <o.json)" = DEFAULT &&
	test "$(ofrep staging "$T" new_checkout -d "{\"context\":{\"version\":\"2.3.0\"}}")" = 400 &&
	test "$(json_get errorCode <o.json)" = TARGETING_KEY_MISSING &&
	test "$(ofrep staging "$T" nope -d "{}")" = 404 &&
	test "$(json_get errorCode <o.json)" = FLAG_NOT_FOUND && test "$(json_get key <o.json)" = nope &&
	test "$(ofrep staging "$T" banner -d "{")" = 400 &&
	test "$(json_get errorCode <o.json)" = PARSE_ERROR &&
	test "$(ofrep staging "$T" banner -d "{\"context\":7}")" = 400 &&
	test "$(json_get errorCode <o.json)" = INVALID_CONTEXT &&
	test "$(ofrep staging "$T" banner -d "{}")" = 200 && test "$(json_get value <o.json)" = "#00f"
'

test_expect_success 'tokens: a wrong one 401, another environment'\''s 403, none 401' '
	test "$(ofrep staging wrong-token banner -d "{}")" = 401 &&
	test "$(ofrep staging "$(cat production.token)" banner -d "{}")" = 403 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X POST -d "{}" "$API/flags/staging/ofrep/v1/evaluate/flags/banner")" = 401 &&
	test "$(ofrep production "$(cat production.token)" banner -d "{}")" = 200 &&
	test "$(ofrep nowhere "$(cat production.token)" banner -d "{}")" = 403 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $(cat staging.token)" "$API/flags/staging/ofrep/v1/evaluate/flags/banner")" = 405
'

test_expect_success 'a flag token changes nothing: the API refuses it' '
	test "$(curl -s -o /dev/null -w "%{http_code}" -X POST -H "Authorization: Bearer $(cat staging.token)" \
		-d "{\"environment\":\"staging\",\"name\":\"banner\",\"state\":\"red\"}" "$API/v1/flag_set")" -ge 401 &&
	"$GANTRY" flag list --env staging -o json | grep -v "\"red\"" >/dev/null
'

test_expect_success 'bulk evaluation: every flag, an ETag, 304 with If-None-Match, a new ETag after a change' '
	T=$(cat staging.token) &&
	test "$(ofrep staging "$T" "" -d "{\"context\":{\"targetingKey\":\"u1\"}}")" = 200 &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert sorted(f[\"key\"] for f in d[\"flags\"])==[\"banner\",\"new_checkout\"], d" o.json &&
	etag=$(sed -n "s/^ETag: //p" o.h | tr -d "\r") && test -n "$etag" &&
	rm -f o.json &&
	test "$(ofrep staging "$T" "" -d "{\"context\":{\"targetingKey\":\"u1\"}}" -H "If-None-Match: $etag")" = 304 &&
	test ! -s o.json &&
	test "$(ofrep staging "$T" "" -d "{\"context\":{\"targetingKey\":\"u2\",\"plan\":\"pro\"}}" -H "If-None-Match: $etag")" = 200 &&
	"$GANTRY" flag set banner red --env staging --reason "test" >/dev/null &&
	test "$(ofrep staging "$T" "" -d "{\"context\":{\"targetingKey\":\"u1\"}}" -H "If-None-Match: $etag")" = 200 &&
	grep "\"value\":\"#f00\"" o.json
'

test_expect_success 'flag set: refusals name the problem, nothing changes' '
	test_expect_code 2 "$GANTRY" flag set banner green --env staging 2>err &&
	grep "unknown variant .green." err &&
	test_expect_code 2 "$GANTRY" flag set banner 25% --env staging 2>err &&
	grep "needs both variants" err &&
	test_expect_code 2 "$GANTRY" flag set nope on --env staging 2>err &&
	grep "no flag .nope." err &&
	test_expect_code 2 "$GANTRY" flag set new_checkout 101% --env staging 2>err &&
	grep "bad percentage" err &&
	test_expect_code 2 "$GANTRY" flag set new_checkout on --env nowhere 2>err &&
	test_expect_code 2 "$GANTRY" flag set new_checkout on 2>err && grep -- "--env is required" err
'

test_expect_success 'roles: a viewer may list but not set; a deployer scoped to production cannot set staging' '
	"$GANTRY" user add vic --role viewer >vic.token &&
	"$GANTRY" user add pat --role deployer --env production >pat.token &&
	GANTRY_API=$API GANTRY_TOKEN=$(cat vic.token) "$GANTRY" flag list --env staging >/dev/null &&
	test_expect_code 3 env GANTRY_API=$API GANTRY_TOKEN=$(cat vic.token) "$GANTRY" flag set banner blue --env staging 2>err &&
	cat err &&
	test_expect_code 3 env GANTRY_API=$API GANTRY_TOKEN=$(cat pat.token) "$GANTRY" flag set banner blue --env staging 2>err &&
	cat err &&
	test_expect_code 3 env GANTRY_API=$API GANTRY_TOKEN=$(cat pat.token) "$GANTRY" flag token --env staging 2>err &&
	GANTRY_API=$API GANTRY_TOKEN=$(cat pat.token) "$GANTRY" flag set banner red --env production --reason scoped >/dev/null &&
	GANTRY_API=$API GANTRY_TOKEN=$(cat pat.token) "$GANTRY" flag set banner spec --env production >/dev/null &&
	"$GANTRY" flag history banner --env production -o json | grep "\"by\": *\"pat\"" &&
	"$GANTRY" flag list --env staging -o json | python3 -c "import json,sys; l={f[\"name\"]:f[\"state\"] for f in json.load(sys.stdin)}; assert l[\"banner\"]==\"red\", l"
'

test_expect_success 'the OpenFeature SDK (OFREP provider, on --flags-listen) sees a flip made with gantry flag set' '
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "SKIP: node or npm missing" >&2; false
	fi &&
	{ timeout 120 npm install --silent --no-audit --no-fund --prefix "$TRASH/node" @openfeature/server-sdk @openfeature/ofrep-provider >npm.log 2>&1 ||
		{ cat npm.log; echo "npm cannot install the SDK" >&2; false; }; } &&
	cat >"$TRASH/node/watch.js" <<-"JS" &&
	// evaluates new_checkout for a free-plan user every 20 ms; prints each value it sees with the time
	const { OpenFeature } = require("@openfeature/server-sdk");
	const { OFREPProvider } = require("@openfeature/ofrep-provider");
	(async () => {
	  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: process.env.GANTRY_FLAGS_URL,
	    headers: [["Authorization", "Bearer " + process.env.GANTRY_FLAGS_TOKEN]] }));
	  const client = OpenFeature.getClient();
	  let last;
	  const end = Date.now() + 30000;
	  while (Date.now() < end) {
	    const d = await client.getBooleanDetails("new_checkout", false, { targetingKey: "u9", plan: "free" });
	    if (d.value !== last) { console.log(Date.now(), d.value, d.reason, d.variant || "-", d.errorCode || "-"); last = d.value; }
	    if (d.value === true) break;
	    await new Promise(r => setTimeout(r, 20));
	  }
	})().catch(e => { console.error(e); process.exit(1); });
	JS
	GANTRY_FLAGS_URL="$FL/flags/staging" GANTRY_FLAGS_TOKEN=$(cat staging.token) \
		node "$TRASH/node/watch.js" >sdk.out 2>sdk.err &
	echo $! >sdk.pid &&
	wait_for 20 "test -s sdk.out" &&
	head -1 sdk.out | grep " false DEFAULT off" &&
	t_call=$(date +%s%3N) &&
	"$GANTRY" flag set new_checkout on --env staging --reason "launch" >/dev/null &&
	t_set=$(date +%s%3N) &&
	wait_for 20 "grep -q \" true \" sdk.out" &&
	cat sdk.out &&
	t_seen=$(grep " true " sdk.out | cut -d" " -f1) &&
	grep " true STATIC on" sdk.out &&
	echo "figure: gantry flag set ran $((t_set - t_call)) ms; the SDK saw true $((t_seen - t_call)) ms after it was called, $((t_seen - t_set)) ms after it returned (negative: before)" &&
	wait "$(cat sdk.pid)"
'

test_expect_success 'flag history: versions, who, from -> to, reason; the audit log and events have it' '
	"$GANTRY" flag history new_checkout --env staging -o json >h.json &&
	python3 -c "import json,sys; h=json.load(open(sys.argv[1])); assert [(c[\"version\"],c[\"from\"],c[\"to\"],c[\"reason\"]) for c in h]==[(1,\"spec\",\"on\",\"launch\")], h" h.json &&
	"$GANTRY" flag history new_checkout --env staging | grep "launch" &&
	"$GANTRY" audit >audit.txt && grep "flag_set" audit.txt &&
	"$GANTRY" events hello --env staging >ev.txt && grep "flag new_checkout in staging: spec -> on" ev.txt
'

test_expect_success 'a restarted controller keeps the state; production never changed' '
	stop_serve &&
	start_serve --api "127.0.0.1:$API_PORT" --flags-listen "127.0.0.1:$FLAGS_PORT" &&
	"$GANTRY" flag list --env staging -o json >list.json &&
	python3 -c "import json,sys; l={f[\"name\"]:f for f in json.load(open(sys.argv[1]))}; assert l[\"new_checkout\"][\"state\"]==\"on\" and l[\"new_checkout\"][\"version\"]==1 and l[\"banner\"][\"state\"]==\"red\", l" list.json &&
	test "$(ofrep staging "$(cat staging.token)" new_checkout -d "{\"context\":{\"targetingKey\":\"x\"}}")" = 200 &&
	test "$(json_get value <o.json)" = true &&
	test "$(ofrep production "$(cat production.token)" new_checkout -d "{\"context\":{\"targetingKey\":\"x\"}}")" = 200 &&
	test "$(json_get value <o.json)" = false &&
	"$GANTRY" flag set new_checkout spec --env staging >/dev/null &&
	test "$(ofrep staging "$(cat staging.token)" new_checkout -d "{\"context\":{\"targetingKey\":\"x\"}}")" = 200 &&
	test "$(json_get value <o.json)" = false
'

test_expect_success 'gantry status: a flags line per environment, and flags in -o json' '
	"$GANTRY" status >st.txt &&
	cat st.txt &&
	grep "^flags staging: new_checkout=spec banner=red$" st.txt &&
	grep "^flags production: new_checkout=spec banner=spec$" st.txt &&
	"$GANTRY" status hello --env staging -o json >st.json &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert {f[\"name\"]:f[\"state\"] for f in d[\"flags\"]}=={\"new_checkout\":\"spec\",\"banner\":\"red\"}, d[\"flags\"]" st.json
'

test_expect_success 'the controller stops cleanly, no sanitizer report' '
	stop_serve &&
	sanitizer_clean "$TRASH/serve.log" "$TRASH/serve-all.txt" "$GANTRY_HOME/logs/proxy.log"
'

test_done
