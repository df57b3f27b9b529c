#!/bin/sh
test_description='gantry proxy: behaviour as data (tests/e2e/proxy/*.case): malformed and smuggling requests, what reaches each wire'
. "$(dirname "$0")/lib/test-lib.sh"

require_cmd python3
[ -x "$GANTRY" ] || skip_all "gantry binary $GANTRY not built (make)"

# The runner starts its own fake upstream and proxy (--max-body 1Mi,
# --header-timeout 3) and prints one line per case; see its header for the
# .case format. PROXY_CASES="0001-x.case ..." runs only those.
test_expect_success 'at least 100 malformed-request cases assert that nothing reached the upstream' '
	test "$(grep -l "^upstream: none" "$ROOT"/tests/e2e/proxy/*.case | wc -l)" -ge 100
'

test_expect_success 'every case passes' '
	python3 "$ROOT/tests/e2e/helpers/proxy-cases.py" "$GANTRY" "$ROOT/tests/e2e/proxy" "$TRASH" ${PROXY_CASES:-} >cases.out 2>&1
	rc=$?
	grep -v "^ok " cases.out
	test $rc = 0
'

test_done
