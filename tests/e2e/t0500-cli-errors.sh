#!/bin/sh
test_description='gantry CLI: clear errors and exit codes (daemon down, bad flags, bad specs, bad values)'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: a valid spec' '
	write_svc_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
'

for cmd in "status" "status hello --env staging" "history hello --env staging" \
	"events" "scale hello --env staging --replicas 2"; do
	test_expect_success "daemon not running: gantry $cmd says one clear line and exits 1" '
		test_expect_code 1 "$GANTRY" $cmd >out 2>err &&
		test ! -s out &&
		test "$(wc -l <err)" -eq 1 &&
		grep "gantry serve" err &&
		grep "not running" err
	'
done

test_expect_success 'daemon not running: deploy fails with exit 1 and no daemon starts' '
	test_expect_code 1 "$GANTRY" deploy hello --env staging 2>err &&
	grep "gantry serve" err &&
	test_expect_code 1 "$GANTRY" status
'

test_expect_success 'unknown flag: exit 2 naming the flag' '
	test_expect_code 2 "$GANTRY" status --bogus 2>err &&
	grep -- "--bogus" err &&
	test_expect_code 2 "$GANTRY" deploy hello --env staging --frobnicate 2>err &&
	grep -- "--frobnicate" err &&
	test_expect_code 2 "$GANTRY" --nope status 2>err &&
	grep -- "--nope" err
'

test_expect_success 'unknown command: exit 2 naming it' '
	test_expect_code 2 "$GANTRY" deploi 2>err &&
	grep deploi err
'

test_expect_success 'serve --forward-headers with a bad list: exit 2 naming the flag and the word' '
	test_expect_code 2 "$GANTRY" serve --forward-headers via,xff 2>err &&
	grep "^error: --forward-headers: .xff. is not all, none or a list of" err
'

test_expect_success 'serve --trusted-proxies with a bad network: exit 2 naming the flag and the item' '
	test_expect_code 2 "$GANTRY" serve --trusted-proxies 10.0.0.0/8,10.0.0.0/33 2>err &&
	grep "^error: --trusted-proxies: .10.0.0.0/33. is not an address or CIDR" err
'

test_expect_success 'start the daemon' '
	start_serve --forward-headers x-forwarded-for,via --trusted-proxies 10.0.0.0/8,::1/128
'

test_expect_success 'deploy with an invalid spec: exit 2, FILE:LINE:COL, nothing deployed' '
	cp gantry.yaml good.yaml &&
	cat >gantry.yaml <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    replicaz: 3
	EOF
	test_expect_code 2 "$GANTRY" deploy hello --env staging 2>err &&
	grep -E "gantry\.yaml:8:5: error: .*replicaz" err &&
	test_expect_code 2 "$GANTRY" validate 2>err &&
	grep -E "gantry\.yaml:8:5: error" err &&
	"$GANTRY" status -o json >st.json &&
	jcheck st.json "d == []" &&
	ghist >hist.json &&
	jcheck hist.json "d == []" &&
	test_expect_code 2 "$GANTRY" status hello --env staging 2>err &&
	grep "never been deployed" err
'

test_expect_success 'deploy with a malformed YAML file: exit 2 with FILE:LINE:COL' '
	printf "services:\n  hello: [\n" >gantry.yaml &&
	test_expect_code 2 "$GANTRY" deploy hello --env staging 2>err &&
	grep -E "gantry\.yaml:[0-9]+:[0-9]+: error" err &&
	cp good.yaml gantry.yaml
'

test_expect_success 'deploy of an unknown service or environment: exit 2 naming it' '
	test_expect_code 2 "$GANTRY" deploy nope --env staging 2>err &&
	grep "nope" err &&
	test_expect_code 2 "$GANTRY" deploy hello --env prod 2>err &&
	grep "prod" err &&
	test_expect_code 2 "$GANTRY" deploy hello 2>err &&
	grep -- "--env" err
'

test_expect_success '--set foo=bar: exit 2 naming --set' '
	test_expect_code 2 "$GANTRY" deploy hello --env staging --set foo=bar 2>err &&
	grep -- "--set" err &&
	test_expect_code 2 "$GANTRY" deploy hello --env staging --set env.1X=y 2>err &&
	grep -- "--set" err
'

test_expect_success 'scale --replicas -1 and non-numbers: exit 2 naming --replicas' '
	test_expect_code 2 "$GANTRY" scale hello --env staging --replicas -1 2>err &&
	grep -- "--replicas" err &&
	test_expect_code 2 "$GANTRY" scale hello --env staging --replicas many 2>err &&
	grep -- "--replicas" err &&
	test_expect_code 2 "$GANTRY" scale hello --env staging --replicas 1001 2>err &&
	grep -- "--replicas" err
'

test_expect_success 'deploy --timeout with a bad duration: exit 2' '
	test_expect_code 2 "$GANTRY" deploy hello --env staging --timeout soon 2>err &&
	grep -- "--timeout" err
'

test_expect_success 'after all these errors nothing was deployed' '
	ghist >hist.json &&
	jcheck hist.json "d == []" &&
	"$GANTRY" status -o json >st.json &&
	jcheck st.json "d == []"
'

test_expect_success 'a good deploy still works, and the daemon stops cleanly' '
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	test "$(pcode /)" = 200 &&
	jcheck "$GANTRY_HOME/routes.json" "d[\"forward_headers\"] == \"x-forwarded-for,via\"" &&
	jcheck "$GANTRY_HOME/routes.json" "d[\"trusted_proxies\"] == \"10.0.0.0/8,::1/128\"" &&
	stop_serve
'

test_done
