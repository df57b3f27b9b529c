#!/bin/sh
test_description='gantry logs: replica output, --tail, --revision, without the daemon'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: replicas that print numbered lines' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    artifact: app
	    run: for i in 1 2 3 4 5 6 7 8 9 10; do echo "line \$i of \$GANTRY_VERSION"; done; echo "to stderr \$GANTRY_VERSION" >&2; exec ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 1s
	    drain_timeout: 500ms
	EOF
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	"$GANTRY" deploy hello --env staging --version v2 --wait
'

test_expect_success 'logs shows both stdout and stderr of the replicas' '
	"$GANTRY" logs hello --env staging >all.txt &&
	cat all.txt &&
	grep "line 1 of v2" all.txt &&
	grep "line 10 of v2" all.txt &&
	grep "to stderr v2" all.txt &&
	grep "hello: listening" all.txt
'

test_expect_success 'logs --tail 5: the last 5 lines of each replica' '
	"$GANTRY" logs hello --env staging --revision 2 --tail 5 >tail.txt &&
	cat tail.txt &&
	! grep "line 1 of" tail.txt &&
	! grep "line 5 of" tail.txt &&
	grep "to stderr v2" tail.txt &&
	test "$(grep -v "^==> " tail.txt | grep -vc "^$")" -eq 10 &&
	test "$(grep -c "^==> " tail.txt)" -eq 2
'

test_expect_success 'logs --revision filters' '
	"$GANTRY" logs hello --env staging --revision 1 >r1.txt &&
	grep "line 3 of v1" r1.txt &&
	! grep "of v2" r1.txt &&
	"$GANTRY" logs hello --env staging --revision 2 >r2.txt &&
	grep "line 3 of v2" r2.txt &&
	! grep "of v1" r2.txt
'

test_expect_success 'logs of an unknown revision or service fail clearly' '
	test_must_fail "$GANTRY" logs nope --env staging 2>err &&
	cat err && test -s err &&
	test_must_fail "$GANTRY" logs hello 2>err &&
	grep -- "--env" err
'

test_expect_success 'logs work after the daemon is stopped' '
	stop_serve &&
	test_expect_code 1 "$GANTRY" status &&
	"$GANTRY" logs hello --env staging --revision 2 --tail 3 >after.txt &&
	cat after.txt &&
	grep "of v2\|hello:" after.txt &&
	"$GANTRY" logs hello --env staging >after-all.txt &&
	grep "line 10 of v1" after-all.txt
'

test_done
