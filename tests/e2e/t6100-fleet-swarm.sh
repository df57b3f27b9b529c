#!/bin/sh
test_description='fleet: a real 3-node Swarm, the Swarm client (runtime/swarm.c) creates, lists, reaches, scales and removes a service; a worker dockerd killed'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$TEST_DIRECTORY/lib/fleet-lib.sh"

start_fleet
echo "# figure: cluster up (3 dockerds, swarm, registry, overlay) in $FLEET_UP_MS ms" >&7

# figure TEXT: a measured figure, printed whether or not the body's output is shown
# tasks SERVICE [NET] > file: "ID SLOT NODE STATE DESIRED CONTAINER ADDR ERROR"
# running_tasks FILE: the lines of tasks that run and should
running_tasks() {
	awk '$4 == "running" && $5 == "running"' "$1"
}

# web_containers: the ids of containers labelled gantry.service=web on any node
web_containers() {
	for _n in 1 2 3; do
		fleet_docker $_n ps -aq --filter label=gantry.service=web
	done
}

test_expect_success 'the hello image is built on node 1 and pushed to the fleet registry' '
	fleet_image hello:1 &&
	say "image $FLEET_IMAGE" &&
	curl -sf "http://$FLEET_REGISTRY/v2/hello/tags/list" | grep -q "\"1\""
'

test_expect_success 'swarm info: node 1 is the manager of a 3-node swarm, node 2 a worker' '
	"$SWARMC" info >info1 &&
	grep "state=active manager=1 " info1 &&
	grep " nodes=3 managers=1" info1 &&
	grep " addr=$NODE1_ADDR " info1 &&
	DOCKER_HOST=$NODE2_DOCKER_HOST "$SWARMC" info >info2 &&
	grep "state=active manager=0 " info2
'

test_expect_success 'nodes: three, ready, active, each at its address, node 1 the leader' '
	"$SWARMC" nodes >nodes &&
	cat nodes &&
	test $(wc -l <nodes) = 3 &&
	test $(awk "\$5 == \"ready\" && \$6 == \"active\"" nodes | wc -l) = 3 &&
	grep " gf$FLEET_TAG-1 $NODE1_ADDR manager ready active leader$" nodes &&
	grep " gf$FLEET_TAG-2 $NODE2_ADDR worker ready active -$" nodes &&
	grep " gf$FLEET_TAG-3 $NODE3_ADDR worker ready active -$" nodes
'

test_expect_success 'a worker refuses service calls: the Engine'"'"'s message, one line' '
	test_must_fail env DOCKER_HOST=$NODE2_DOCKER_HOST "$SWARMC" list 2>err &&
	cat err &&
	test $(wc -l <err) = 1 &&
	grep "^list services labelled (any): This node is not a swarm manager" err
'

test_expect_success 'create: 3 replicas spread over the nodes, dnsrr, on the overlay, until all run' '
	"$SWARMC" create web "$FLEET_IMAGE" -r 3 --spread node.id --dnsrr -n "$FLEET_NET" \
		-e PORT=8080 -e APP_VERSION=v1 -l gantry.service=web -l gantry.revision=1 \
		-m 67108864 --cpus 500 --pids 64 >web.id &&
	CREATE_MS=$("$SWARMC" wait web 3 60) &&
	figure "create a 3-replica service until its 3 tasks run: $CREATE_MS ms" &&
	"$SWARMC" inspect web >web.inspect &&
	grep "^id=$(cat web.id)$" web.inspect &&
	grep "^replicas=3$" web.inspect &&
	grep "^image=$FLEET_IMAGE$" web.inspect &&
	grep "^label.gantry.service=web$" web.inspect &&
	# the service of the node failure test below, starting meanwhile
	"$SWARMC" create sv "$FLEET_IMAGE" -r 3 --spread node.id --dnsrr -n "$FLEET_NET" -e PORT=8080 >sv.id
'

test_expect_success 'tasks: one per node, each with a container and an overlay address' '
	"$SWARMC" tasks web "$FLEET_NET" >tasks &&
	cat tasks &&
	running_tasks tasks >run &&
	test $(wc -l <run) = 3 &&
	test $(awk "{print \$3}" run | sort -u | wc -l) = 3 &&
	test $(awk "\$6 != \"-\" && \$7 != \"-\"" run | wc -l) = 3 &&
	test $(awk "{print \$7}" run | sort -u | wc -l) = 3
'

test_expect_success 'the limits and labels reach the task containers' '
	for n in 1 2 3; do
		fleet_docker $n ps -q --filter label=gantry.service=web >c$n &&
		test $(wc -l <c$n) = 1 &&
		fleet_docker $n inspect --format "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}" $(cat c$n) >lim$n &&
		cat lim$n &&
		grep "^67108864 500000000 64 " lim$n || return 1
	done
'

test_expect_success 'every task answers on its overlay address, from a container on node 1 (VXLAN across the namespaces)' '
	for a in $(awk "{print \$7}" run); do
		echo "printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 5 $a 8080" >>probe.sh || return 1
	done &&
	fleet_docker 1 run --rm --network "$FLEET_NET" -v "$TRASH/probe.sh:/probe.sh:ro" --entrypoint /bin/sh \
		"$FLEET_IMAGE" /probe.sh >probe.out 2>&1 &&
	cat probe.out &&
	test $(grep -c "^HTTP/1.1 200" probe.out) = 3 &&
	test $(grep -c "hello from v1" probe.out) = 3
'

test_expect_success 'every task answers from the root namespace on its gateway address (routed via its node)' '
	while read -r id slot node state desired cid addr error; do
		n=${node##*-} &&
		gw=$(DOCKER_HOST=$(eval echo "\$NODE${n}_DOCKER_HOST") "$SWARMC" gateway "$cid") &&
		say "task $slot on $node: overlay $addr, gateway $gw" &&
		curl -sf --max-time 5 "http://$gw:8080/" >body &&
		grep "hello from v1" body || return 1
	done <run
'

test_expect_success 'scale to 1: the version moves, two tasks stop, one keeps running' '
	v0=$(sed -n "s/^version=//p" web.inspect) &&
	t0=$(_now_ms) &&
	"$SWARMC" scale web 1 &&
	"$SWARMC" wait web 1 60 >/dev/null &&
	SCALE_MS=$(($(_now_ms) - t0)) &&
	figure "scale 3 -> 1 until 1 task runs and 2 are gone: $SCALE_MS ms" &&
	"$SWARMC" inspect web >web.inspect2 &&
	grep "^replicas=1$" web.inspect2 &&
	v1=$(sed -n "s/^version=//p" web.inspect2) &&
	test "$v1" -gt "$v0" &&
	"$SWARMC" tasks web >tasks2 &&
	test $(running_tasks tasks2 | wc -l) = 1
'

test_expect_success 'errors: a taken name, a missing service, each one line with the Engine'"'"'s words' '
	test_must_fail "$SWARMC" create web "$FLEET_IMAGE" 2>err1 &&
	cat err1 && test $(wc -l <err1) = 1 &&
	grep "^create service web: .*already exists" err1 &&
	test_must_fail "$SWARMC" scale nosuch 2 2>err2 &&
	cat err2 &&
	grep "^scale service nosuch to 2: no such service" err2 &&
	test_expect_code 3 "$SWARMC" inspect nosuch
'

test_expect_success 'remove: the service and its tasks go; a second remove finds nothing' '
	test "$("$SWARMC" rm web)" = removed &&
	test "$("$SWARMC" rm web)" = absent &&
	test_expect_code 3 "$SWARMC" inspect web &&
	wait_for 30 "test -z \"\$(web_containers)\""
'

test_expect_success 'node 3 dockerd SIGKILLed: the manager reports it down, its task is not desired any more and not replaced' '
	"$SWARMC" wait sv 3 60 &&
	"$SWARMC" tasks sv >sv.before &&
	grep " gf$FLEET_TAG-3 running running " sv.before &&
	t0=$(_now_ms) &&
	kill_node_dockerd 3 &&
	wait_for 60 "\"\$SWARMC\" nodes | grep -q \" gf$FLEET_TAG-3 $NODE3_ADDR worker down \"" &&
	DOWN_MS=$(($(_now_ms) - t0)) &&
	figure "node 3 reported down $DOWN_MS ms after its dockerd was killed" &&
	"$SWARMC" nodes | grep " gf$FLEET_TAG-3 " &&
	wait_for 60 "\"\$SWARMC\" tasks sv >sv.after && ! grep -q \" gf$FLEET_TAG-3 [a-z]* running \" sv.after" &&
	GONE_MS=$(($(_now_ms) - t0)) &&
	cat sv.after &&
	figure "node 3 task no longer desired running $GONE_MS ms after the kill" &&
	# Swarm decides at once (the same pass that sets desired=shutdown
	# would create the replacement): a few seconds show whether it did
	sleep 3 &&
	"$SWARMC" tasks sv >sv.later &&
	cat sv.later &&
	test $(wc -l <sv.later) = 3 &&
	test $(running_tasks sv.later | wc -l) = 2 &&
	figure "restart condition none: the slot of node 3 stays empty, no task replaces it (gantry must)"'

test_expect_success 'down leaves nothing: no dockerd, containerd or shim, no netns, veth, bridge, mount, directory' '
	dir=$FLEET_DIR && tag=$FLEET_TAG &&
	t0=$(_now_ms) &&
	stop_fleet &&
	figure "cluster down in $(($(_now_ms) - t0)) ms" &&
	test -z "$(pgrep -f "$dir/")" &&
	test -z "$(pgrep -f "containerd-shim.* -namespace gf$tag-")" &&
	! ip netns list | grep "gf$tag" &&
	! ip link show | grep "gf$tag" &&
	! grep "$dir" /proc/mounts &&
	! ip route | grep "dev gf$tag" &&
	test ! -e "$dir"
'

test_done
