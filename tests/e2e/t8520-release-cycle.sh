#!/bin/sh
test_description='depends_on: a cycle and an unknown name are refused at FILE:LINE:COL'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3
require_gantry

test_expect_success 'a cycle: validate exits 2 naming it at the name that closes it' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  a:
	    artifact: app
	    run: ./hello
	    depends_on: [c]
	  b:
	    artifact: app
	    run: ./hello
	    depends_on: [a]
	  c:
	    artifact: app
	    run: ./hello
	    depends_on: [b]
	EOF
	test_expect_code 2 "$GANTRY" validate 2>err &&
	cat err &&
	grep "gantry.yaml:12:18: error: services.b.depends_on: dependency cycle: a → c → b → a (→: depends on)" err
'

test_expect_success 'release refuses the same spec before sending anything' '
	test_expect_code 2 "$GANTRY" release --env staging 2>err &&
	grep "dependency cycle" err
'

test_expect_success 'an unknown name: validate names it, with a suggestion' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  api:
	    artifact: app
	    run: ./hello
	    depends_on: [dbb]
	  db:
	    artifact: app
	    run: ./hello
	EOF
	test_expect_code 2 "$GANTRY" validate 2>err &&
	cat err &&
	grep "gantry.yaml:8:18: error: services.api.depends_on: unknown service .dbb. (did you mean .db.?)" err
'

test_done
