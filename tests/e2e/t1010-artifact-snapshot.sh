#!/bin/sh
test_description='a revision runs from a snapshot of its artifact: rollback serves the old files'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

test_expect_success 'setup: a static file server, daemon' '
	mkdir site &&
	cat >gantry.yaml <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    artifact: site
	    run: exec python3 -m http.server "\$PORT" --bind 127.0.0.1
	    probes:
	      readiness: { tcp: true, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
	start_serve
'

test_expect_success 'revision 1 serves page.txt = one' '
	echo one >site/page.txt &&
	"$GANTRY" deploy hello --env staging --version one --wait &&
	test "$(pget /page.txt)" = one
'

test_expect_success 'revision 2 serves page.txt = two' '
	echo two >site/page.txt &&
	"$GANTRY" deploy hello --env staging --version two --wait &&
	test "$(pget /page.txt)" = two
'

test_expect_success 'a change in the working tree does not reach the running revision' '
	echo three >site/page.txt &&
	echo new >site/new.txt &&
	test "$(pget /page.txt)" = two &&
	test "$(pcode /new.txt)" = 404
'

test_expect_success 'rollback serves "one" again while the working tree says three' '
	"$GANTRY" rollback hello --env staging --wait &&
	test "$(pget /page.txt)" = one &&
	test "$(cat site/page.txt)" = three &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 3 and d[0][\"kind\"] == \"rollback\" and d[0][\"version\"] == \"one\"" &&
	jcheck hist.json "d[0][\"digest\"] == d[2][\"digest\"] and d[0][\"digest\"] != d[1][\"digest\"]" &&
	st_check "d[\"stable_revision\"] == 3 and d[\"traffic\"] == [{\"revision\": 3, \"weight\": 100}]"
'

test_expect_success 'rollback --to-revision 2 serves "two"' '
	"$GANTRY" rollback hello --env staging --to-revision 2 --wait &&
	test "$(pget /page.txt)" = two
'

test_expect_success 'rollback to a revision that does not exist: exit 2, still serving' '
	ghist >hist-before.json &&
	test_expect_code 2 "$GANTRY" rollback hello --env staging --to-revision 99 2>err &&
	grep "revision 99" err &&
	test_expect_code 2 "$GANTRY" rollback hello --env staging --to-revision 4 2>err &&
	grep "already" err &&
	test "$(pget /page.txt)" = two &&
	st_check "d[\"stable_revision\"] == 4 and d[\"phase\"] == \"healthy\""
'

# api.md: "A failed request changes nothing." op_rollback (src/api/ops_service.c)
# marks the current revision rolled_back ("rollback to revision 99") before
# it checks that the target revision exists.
test_expect_success 'a refused rollback leaves the history unchanged' '
	ghist >hist-after.json &&
	test_cmp hist-before.json hist-after.json
'

test_expect_success 'the snapshot is content-addressed: same content, same digest' '
	echo one >site/page.txt &&
	rm site/new.txt &&
	"$GANTRY" deploy hello --env staging --version one-again --wait &&
	test "$(pget /page.txt)" = one &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"digest\"] == [r for r in d if r[\"revision\"] == 1][0][\"digest\"]"
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
