#!/bin/sh
test_description='make demo-fleet (examples/demo.sh, GANTRY_DEMO_RUNTIME=fleet) on a real 3-node Swarm: under load through the three node proxies, the bad v2 is rolled back by its analysis over the summed windows, the good v3 promoted 10% -> 50% -> 100%, zero failed requests'
# e2e: slow (a 3-node cluster, two images, two canaries)
. "$(dirname "$0")/lib/test-lib.sh"
. "$TEST_DIRECTORY/lib/fleet-lib.sh"

require_cmd python3 curl
require_gantry
start_fleet

test_expect_success 'the demo runs to the end on the cluster the test started' '
	t0=$(_now_ms) &&
	{ TMPDIR=$TRASH GANTRY_DEMO_RUNTIME=fleet GANTRY_DEMO_FLEET_DIR=$FLEET_DIR GANTRY_DEMO_RATE=450 \
		sh "$ROOT/examples/demo.sh" >demo.out 2>&1 || { cat demo.out; false; }; } &&
	figure "make demo-fleet on the running cluster: $(($(_now_ms) - t0)) ms" &&
	sed -n "/what the clients saw/,\$p" demo.out | sed 1d | while read -r l; do figure "$l"; done
'

test_expect_success 'each node proxy served v1 before the load started' '
	test "$(grep -c "^node [123] (.*): hello from v1 (revision 1)" demo.out)" = 3 &&
	grep "^HOSTNAME .*ROLE" demo.out
'

test_expect_success 'v2 was rolled back by its analysis, v3 promoted through both analysis steps' '
	grep "^2 .* v2 .* failed .* rolled_back .*analysis slo failed: error_rate" demo.out &&
	grep "^3 .* v3 .* serving .* succeeded .*promoted: 100% on the new revision" demo.out &&
	test "$(grep -c "analysis  *analysis slo successful" demo.out)" = 2 &&
	grep "service_created .*revision 2: Swarm service" demo.out
'

test_expect_success 'zero failed requests, through each of the three node proxies' '
	grep "^requests: [1-9][0-9]*  failed: 0 " demo.out &&
	grep "^through each node proxy: [1-9][0-9]* (0 failed), [1-9][0-9]* (0 failed), [1-9][0-9]* (0 failed)$" demo.out &&
	grep "^demo: OK" demo.out
'

test_expect_success 'the demo left the cluster as it found it: none of its services' '
	test -z "$(DOCKER_HOST=$NODE1_DOCKER_HOST docker service ls -q --filter label=gantry.service)"
'

test_done
