#!/bin/sh
test_description='per-environment flag definitions: environments.E.flags.NAME replaces the keys it sets in E only; bad overrides at FILE:LINE:COL; OFREP, flag list and flag set use the environment definition; a changed override takes effect with gantry apply'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl
require_gantry

FLAGS_PORT=$(free_port)
FL=http://127.0.0.1:$FLAGS_PORT

# value ENV FLAG CONTEXT: the value OFREP serves
value() {
	curl -s --max-time 10 -X POST -H "Authorization: Bearer $(cat "$1.token")" -H "Content-Type: application/json" \
		-d "{\"context\":$3}" "$FL/flags/$1/ofrep/v1/evaluate/flags/$2" | json_get value
}

test_expect_success 'bad overrides are refused at FILE:LINE:COL' '
	cat >bad.yaml <<-EOF &&
	environments:
	  staging:
	    flags:
	      chekout: { default: on }
	  production:
	    flags:
	      checkout: { default: of }
	      banner: { variants: { green: 3 } }
	services:
	  hello:
	    run: ./hello
	flags:
	  checkout: {}
	  banner: { variants: { blue: 1, red: 2 }, default: blue }
	EOF
	test_expect_code 2 "$GANTRY" validate -f bad.yaml 2>err &&
	cat err &&
	grep "bad.yaml:4:7: error: environments.staging.flags.chekout: no flag .chekout. under flags: to override (did you mean .checkout.?)" err &&
	grep "bad.yaml:7:28: error: environments.production.flags.checkout.default: unknown variant .of." err &&
	grep "bad.yaml:8:15: error: environments.production.flags.banner: unknown variant .blue. (variants: green)" err
'

test_expect_success 'setup: checkout on by default in staging, for pro users only in production' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging:
	    flags:
	      checkout: { default: on }
	  production:
	    flags:
	      checkout:
	        rules: [ { if: { attr: plan, in: [pro] }, serve: on } ]
	      banner: { variants: { blue: 1, red: 2, green: 3 }, default: green }
	  dev: {}
	services:
	  hello:
	    run: ./hello
	flags:
	  checkout:
	    default: off
	  banner: { variants: { blue: 1, red: 2 }, default: blue }
	EOF
	"$GANTRY" validate -f "$TRASH/gantry.yaml" &&
	start_serve --flags-listen "127.0.0.1:$FLAGS_PORT" &&
	for e in staging production dev; do "$GANTRY" flag token --env $e >$e.token || return 1; done
'

test_expect_success 'OFREP serves each environment its definition' '
	test "$(value staging checkout "{\"targetingKey\":\"u\",\"plan\":\"free\"}")" = true &&
	test "$(value production checkout "{\"targetingKey\":\"u\",\"plan\":\"free\"}")" = false &&
	test "$(value production checkout "{\"targetingKey\":\"u\",\"plan\":\"pro\"}")" = true &&
	test "$(value dev checkout "{\"targetingKey\":\"u\",\"plan\":\"pro\"}")" = false &&
	test "$(value production banner "{}")" = 3 &&
	test "$(value staging banner "{}")" = 1
'

test_expect_success 'flag list shows the environment default; flag set takes a variant of the environment only' '
	"$GANTRY" flag list -o json >list.json &&
	jcheck list.json "{(f[\"environment\"], f[\"name\"]): f[\"default\"] for f in d}[(\"staging\", \"checkout\")] == \"on\"" &&
	jcheck list.json "{(f[\"environment\"], f[\"name\"]): f[\"default\"] for f in d}[(\"production\", \"banner\")] == \"green\"" &&
	"$GANTRY" flag set banner green --env production >/dev/null &&
	test_expect_code 2 "$GANTRY" flag set banner green --env staging 2>err &&
	grep "unknown variant .green." err &&
	"$GANTRY" flag set checkout off --env staging >/dev/null &&
	test "$(value staging checkout "{\"targetingKey\":\"u\"}")" = false
'

test_expect_success 'a changed override takes effect with gantry apply' '
	"$GANTRY" flag set checkout spec --env staging >/dev/null &&
	sed -i "s/checkout: { default: on }/checkout: { default: off }/" "$TRASH/gantry.yaml" &&
	"$GANTRY" apply -f "$TRASH/gantry.yaml" >/dev/null &&
	test "$(value staging checkout "{\"targetingKey\":\"u\"}")" = false
'

test_expect_success 'the controller stops cleanly, no sanitizer report' '
	stop_serve &&
	sanitizer_clean "$TRASH/serve.log" "$TRASH/serve-all.txt"
'

test_done
