#!/bin/sh
test_description='examples/gates-demo.sh (the transcript of issue 6): a deploy waits for an approval, is refused in a window, an emergency override goes through; history, audit and DORA show it'
. "$(dirname "$0")/lib/test-lib.sh"

require_cmd python3
require_gantry

test_expect_success 'the demo runs to the end' '
	TMPDIR=$TRASH sh "$ROOT/examples/gates-demo.sh" >demo.out 2>&1 ||
	{ cat demo.out; false; }
'

test_expect_success 'v1 waited for an approval by someone other than the requester' '
	grep "waiting for approval: deployment 1" demo.out &&
	grep "alice (role deployer) cannot run .approve." demo.out &&
	grep "deployment 1 approved (1 of 1): rollout 1 started" demo.out
'

test_expect_success 'v2 was refused on Friday evening, with the next allowed time' '
	grep "not allowed now (Fri 2024-05-10 18:30 CEST" demo.out &&
	grep "next allowed at Mon 2024-05-13 08:00 CEST" demo.out
'

test_expect_success 'a deployer may not override; an approver did, and it rolled out' '
	grep "an emergency deploy needs role approver or admin (alice is deployer)" demo.out &&
	grep "rollout 2 complete: revision 2 serves 100%" demo.out
'

test_expect_success 'history, audit and DORA record it' '
	grep "^2 .* carol .* succeeded .*window overridden" demo.out &&
	grep "^1 .* alice .* succeeded .*approvals passed (bob)" demo.out &&
	grep "^- .* refused .*window refused" demo.out &&
	grep "carol .*emergency_override" demo.out &&
	grep "carol .* deploy .*\"deployed_by\":\"carol\"" demo.out &&
	grep -E "the audit chain is intact \([0-9]+ entries\)" demo.out &&
	grep "^hello@production  *2 " demo.out
'

test_done
