#!/bin/sh
test_description='fleet: revisions run as Swarm services on a real 3-node Swarm; replicas spread over the nodes, probed and routed by the built-in proxy; a bad canary rolled back (weight 0, then its service scaled away) under load with zero failed requests; a good one promoted; gantry nodes'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$TEST_DIRECTORY/lib/fleet-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_fleet
echo "# figure: cluster up in $FLEET_UP_MS ms" >&7

# our Swarm services: "NAME REPLICAS" a line, sorted
services() {
	fleet_docker 1 service ls --filter "label=gantry.tag=$(cat "$GANTRY_HOME/instance-id")" \
		--format '{{.Name}} {{.Replicas}}' | sort
}

# ms_of ISO8601: milliseconds since the epoch
ms_of() {
	python3 -c 'import sys, datetime; print(int(datetime.datetime.strptime(sys.argv[1].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))' "$1"
}

spec() {
	fleet_spec 3 <<-EOF
	    env: { HOST: 0.0.0.0, ACCESS_LOG: "1" }
	    placement: { spread: node.id }
	    progress_deadline: 90s
	    shield: true
	    strategy:
	      canary:
	        steps: [ {weight: 34}, {pause: $1} ]
	    rollback_on: [ "error_rate > 5% for 2s" ]
	EOF
}

test_expect_success 'setup: the image in the fleet registry; v1 deployed as a 3-replica Swarm service' '
	fleet_image hello:1 &&
	spec 2s &&
	start_serve &&
	t0=$(_now_ms) &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	figure "deploy v1 (service created, 3 tasks pulled, started, probed ready): $(($(_now_ms) - t0)) ms" &&
	st_check "d[\"ready_replicas\"] == 3 and d[\"stable_revision\"] == 1" &&
	services >svc &&
	cat svc &&
	test "$(cat svc)" = "g$(cut -c1-6 "$GANTRY_HOME/instance-id")-hello-staging-r1 3/3"
'

test_expect_success 'the service: pinned by digest, labelled, dnsrr, restart none, never root' '
	name=$(cut -d" " -f1 svc) &&
	fleet_docker 1 service inspect "$name" >inspect.json &&
	jcheck inspect.json "d[0][\"Spec\"][\"TaskTemplate\"][\"ContainerSpec\"][\"Image\"] == \"$FLEET_IMAGE\"" &&
	jcheck inspect.json "d[0][\"Spec\"][\"Labels\"][\"gantry.service\"] == \"hello\" and d[0][\"Spec\"][\"Labels\"][\"gantry.revision\"] == \"1\"" &&
	jcheck inspect.json "d[0][\"Spec\"][\"EndpointSpec\"][\"Mode\"] == \"dnsrr\"" &&
	jcheck inspect.json "d[0][\"Spec\"][\"TaskTemplate\"][\"RestartPolicy\"][\"Condition\"] == \"none\"" &&
	jcheck inspect.json "d[0][\"Spec\"][\"TaskTemplate\"][\"ContainerSpec\"][\"User\"] == \"1000:1000\"" &&
	jcheck inspect.json "\"GANTRY_REVISION=1\" in d[0][\"Spec\"][\"TaskTemplate\"][\"ContainerSpec\"][\"Env\"]"
'

test_expect_success 'status shows each replica on its node: one per node' '
	gst >st.json &&
	jcheck st.json "sorted(r[\"node\"] for r in d[\"replicas\"]) == [\"gf$FLEET_TAG-1\", \"gf$FLEET_TAG-2\", \"gf$FLEET_TAG-3\"]" &&
	"$GANTRY" status hello --env staging >st.txt &&
	cat st.txt &&
	grep -q "NODE" st.txt &&
	grep -q " gf$FLEET_TAG-2 " st.txt
'

test_expect_success 'gantry nodes: three ready nodes, one replica of ours on each' '
	"$GANTRY" nodes >nodes.txt &&
	cat nodes.txt &&
	"$GANTRY" nodes --env staging -o json >nodes.json &&
	jcheck nodes.json "len(d) == 3 and all(n[\"state\"] == \"ready\" and n[\"availability\"] == \"active\" and n[\"replicas\"] == 1 for n in d)" &&
	jcheck nodes.json "sorted(n[\"role\"] for n in d) == [\"manager\", \"worker\", \"worker\"]" &&
	"$GANTRY" nodes --env production -o json >none.json &&
	jcheck none.json "d == []"
'

test_expect_success 'requests through the built-in proxy reach the replicas on all three nodes' '
	for i in $(seq 1 30); do pget / >>bodies || return 1; done &&
	test "$(grep -c "hello from v1" bodies)" = 30 &&
	gst >st.json &&
	python3 -c "import json; [print(r[\"node\"], r[\"container\"]) for r in json.load(open(\"st.json\"))[\"replicas\"]]" >where &&
	while read node cid; do
		n=${node##*-} &&
		fleet_docker "$n" logs "$cid" 2>&1 | grep -c "hello: GET / 200" >count || return 1
		say "node $node: $(cat count) requests" &&
		test "$(cat count)" -ge 1 || return 1
	done <where
'

test_expect_success 'gantry logs: the output of the tasks on all three nodes, read from their Engines' '
	python3 -c "import json; [print(r[\"id\"]) for r in json.load(open(\"st.json\"))[\"replicas\"]]" >ids &&
	test "$(wc -l <ids)" = 3 &&
	wait_for 20 "\"\$GANTRY\" logs hello --env staging >logs.txt && test \$(grep -c \"listening on 0.0.0.0\" logs.txt) -ge 3" &&
	wait_for 20 "\"\$GANTRY\" logs hello --env staging >logs.txt && test \$(grep -c \"hello: GET / 200\" logs.txt) -ge 30" &&
	grep -c "hello: GET / 200" logs.txt
'

test_expect_success 'scale 3 -> 5 and back to 3: new slots on the nodes, then the extra tasks stopped' '
	t0=$(_now_ms) &&
	"$GANTRY" scale hello --env staging --replicas 5 &&
	wait_for 60 "st_check \"d[\\\"ready_replicas\\\"] == 5\"" &&
	figure "scale 3 -> 5 until 5 ready: $(($(_now_ms) - t0)) ms" &&
	wait_for 10 "services | grep -q -- \"-r1 5/5\"" &&
	t0=$(_now_ms) &&
	"$GANTRY" scale hello --env staging --replicas 3 &&
	wait_for 60 "st_check \"len(d[\\\"replicas\\\"]) == 3\" && services | grep -q -- \"-r1 3/3\"" &&
	figure "scale 5 -> 3 until 3 replicas and 3 tasks: $(($(_now_ms) - t0)) ms" &&
	# Swarm chose no victim: the 3 replicas left are ready, never restarted
	st_check "d[\"ready_replicas\"] == 3 and all(r[\"restarts\"] == 0 and r[\"state\"] == \"ready\" for r in d[\"replicas\"])"
'

test_expect_success 'a bad canary (FAIL_RATE=0.5) under load: rolled back, zero failed requests' '
	start_load bad &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v2 --set env.FAIL_RATE=0.5 \
		--wait --timeout 60s >deploy-v2.out 2>&1;
	rc=$? && cat deploy-v2.out && test $rc = 0 &&
	stop_load bad &&
	load_clean bad &&
	jcheck bad.json "d[\"versions\"].get(\"v2\", 0) > 0" &&
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"stable_revision\"] == 1" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 1, \"weight\": 100}]"
'

test_expect_success 'the canary: weight 0 first, then its replicas stopped and its service removed' '
	wait_for 30 "test \"\$(services | wc -l)\" = 1" &&
	services >svc2 && cat svc2 &&
	grep -q -- "-r1 3/3" svc2 &&
	st_check "all(r[\"revision\"] == 1 for r in d[\"replicas\"]) and len(d[\"replicas\"]) == 3" &&
	gevents >ev.json &&
	python3 - ev.json "$TRASH/serve.log" "$GANTRY_HOME/logs/proxy.log" >fig <<-\EOF &&
	import json, re, sys, datetime
	ev = json.load(open(sys.argv[1])) if open(sys.argv[1]).read(1) == "[" else [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
	def ms(s):
	    return int(datetime.datetime.strptime(s.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
	rb = [e for e in ev if e["kind"] == "rollout_rolled_back" and e["revision"] == 2]
	assert rb, "no rollout_rolled_back event"
	# the instant the for window fired: the log line of the verdict in serve.log
	breach = [ms(l.split()[0]) for l in open(sys.argv[2]) if "rollback_on breached" in l]
	assert breach, "no rollback_on breached line in serve.log"
	t_b = breach[-1]
	reload = [ms(l.split()[0]) for l in open(sys.argv[3]) if "reload=ok" in l]
	after = [t for t in reload if t >= t_b]
	assert after, "no proxy reload after the verdict"
	gone = [ms(l.split()[0]) for l in open(sys.argv[2]) if "service g" in l and "-r2 removed" in l]
	assert gone, "no removal of the canary service in serve.log"
	print("rollback after the for window: verdict -> the proxy runs the table without the canary: %d ms" % (after[0] - t_b))
	print("verdict -> the canary replicas drained, stopped and its service removed from the swarm: %d ms" % (gone[-1] - t_b))
	EOF
	while read l; do figure "$l"; done <fig
'

test_expect_success 'a good v3 canary is promoted under load: v3 on the 3 nodes serves 100%, v1 kept warm at 0%' '
	start_load good &&
	"$GANTRY" deploy hello --env staging --version v3 --wait --timeout 90s &&
	stop_load good &&
	load_clean good &&
	st_check "d[\"stable_revision\"] == 3" &&
	st_check "[t for t in d[\"traffic\"] if t[\"weight\"] > 0] == [{\"revision\": 3, \"weight\": 100}]" &&
	st_check "sorted(r[\"node\"] for r in d[\"replicas\"] if r[\"revision\"] == 3 and r[\"ready\"]) == [\"gf$FLEET_TAG-1\", \"gf$FLEET_TAG-2\", \"gf$FLEET_TAG-3\"]" &&
	# the previous revision stays warm after a promotion (a rollback is then a route change)
	wait_for 30 "services | grep -q -- \"-r3 3/3\"" &&
	services >svc3 && cat svc3 &&
	test "$(wc -l <svc3)" = 2 &&
	grep -q -- "-r1 3/3" svc3
'

# live CMD: the spec with a liveness exec probe CMD (an override: the
# shared spec has the readiness probe)
live() {
	spec 1s &&
	cat >>gantry.yaml <<-EOF
	    environments:
	      staging:
	        probes:
	          liveness: { exec: "$1", period: 300ms, failure_threshold: 2 }
	EOF
}

test_expect_success 'an exec liveness probe runs in each task, through the Engine of its node' '
	live "test \$PORT = 8080 && test -x /hello" &&
	since=$(date +%s) &&
	"$GANTRY" deploy hello --env staging --version v4 --wait --timeout 90s &&
	rev=$(gst | json_get stable_revision) &&
	sleep 2 &&
	st_check "d[\"ready_replicas\"] == 3 and all(r[\"restarts\"] == 0 for r in d[\"replicas\"] if r[\"revision\"] == $rev)" &&
	gst >st4.json &&
	python3 -c "import json; [print(r[\"node\"], r[\"container\"]) for r in json.load(open(\"st4.json\"))[\"replicas\"] if r[\"revision\"] == $rev]" >where4 &&
	test "$(wc -l <where4)" = 3 &&
	while read node cid; do
		n=${node##*-} &&
		# the probes as the node Engine saw them: exec_die events of that container
		execs=$(fleet_docker "$n" events --since "$since" --until "$(date +%s)" --filter "container=$cid" \
			--filter event=exec_die | wc -l) &&
		say "node $node: $execs execs ended in the container" &&
		test "$execs" -ge 2 || return 1
	done <where4
'

test_expect_success 'an exec liveness probe that fails in the task restarts it (exit status 1)' '
	live "test \$PORT = 9999" &&
	"$GANTRY" deploy hello --env staging --version v5 &&
	wait_for 60 "evs >ev5.json && jcheck ev5.json \"any(e[\\\"kind\\\"] == \\\"replica_unhealthy\\\" and \\\"exit status 1\\\" in e[\\\"message\\\"] for e in d)\"" &&
	"$GANTRY" abort hello --env staging --reason "the exec probe was seen failing" &&
	wait_for 60 "st_check \"d[\\\"ready_replicas\\\"] >= 3 and all(r[\\\"revision\\\"] == $(gst | json_get stable_revision) for r in d[\\\"replicas\\\"])\""
'

test_expect_success 'SIGTERM stops the daemon: its services are removed from the swarm' '
	stop_serve 60 &&
	test -z "$(services)"
'

test_done
