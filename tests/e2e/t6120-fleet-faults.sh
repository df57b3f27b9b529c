#!/bin/sh
test_description='fleet faults: a worker dockerd SIGKILLed mid-canary (its replicas out of the routes once the node is down, their slots replaced on the nodes that are up, failed requests counted); the controller kill -9ed mid-rollout and restarted (the same services, the same tasks, none created twice)'
# e2e: slow (one of the longest scripts: run.sh starts it first in a pool)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$TEST_DIRECTORY/lib/fleet-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_fleet

services() {
	fleet_docker 1 service ls --filter "label=gantry.tag=$(cat "$GANTRY_HOME/instance-id")" \
		--format '{{.ID}} {{.Name}} {{.Replicas}}' | sort -k2
}

# the tasks that should run, of every service of ours: "SERVICE TASK NODE" sorted
tasks() {
	for s in $(services | cut -d" " -f2); do
		fleet_docker 1 service ps --filter desired-state=running --format "$s {{.ID}} {{.Node}}" "$s"
	done | sort
}

# evs > FILE: the events of hello@staging as one JSON list
# a canary that holds at weight 34 until `gantry resume`
spec() {
	fleet_spec 3 <<-EOF
	    env: { HOST: 0.0.0.0, ACCESS_LOG: "1" }
	    placement: { spread: node.id }
	    progress_deadline: 90s
	    strategy:
	      canary:
	        steps: [ {weight: 34}, {pause: {}} ]
	EOF
}

test_expect_success 'setup: v1 on the 3 nodes, under load' '
	fleet_image hello:1 &&
	spec &&
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	st_check "sorted(r[\"node\"] for r in d[\"replicas\"] if r[\"ready\"]) == [\"gf$FLEET_TAG-1\", \"gf$FLEET_TAG-2\", \"gf$FLEET_TAG-3\"]" &&
	start_load load
'

# 3 of v1 and 2 of the canary (34% of 3, rounded up), all ready
test_expect_success 'a canary holds at weight 34' '
	spawn_bg deploy2 "$GANTRY" deploy hello --env staging --version v2 --wait --timeout 120s &&
	wait_for 60 "st_check \"d.get(\\\"canary\\\", {}).get(\\\"wait\\\") == \\\"pause\\\" and len([r for r in d[\\\"replicas\\\"] if r[\\\"ready\\\"]]) >= 5\"" &&
	gst >before.json &&
	python3 -c "import json; print(sorted((r[\"revision\"], r.get(\"node\")) for r in json.load(open(\"before.json\"))[\"replicas\"]))"
'

test_expect_success 'node 3 dockerd SIGKILLed: node_down, its replicas out of the routes, their slots replaced on nodes 1 and 2' '
	n3=$(python3 -c "import json; print(sum(1 for r in json.load(open(\"before.json\"))[\"replicas\"] if r[\"node\"] == \"gf$FLEET_TAG-3\"))") &&
	nb=$(python3 -c "import json; print(sum(1 for r in json.load(open(\"before.json\"))[\"replicas\"] if r[\"ready\"]))") &&
	say "replicas on node 3: $n3 (of $nb ready)" &&
	test "$n3" -ge 1 &&
	t0=$(_now_ms) &&
	kill_node_dockerd 3 &&
	wait_for 60 "evs >ev.json && jcheck ev.json \"any(e[\\\"kind\\\"] == \\\"node_down\\\" and \\\"gf$FLEET_TAG-3\\\" in e[\\\"message\\\"] for e in d)\"" &&
	t_down=$(_now_ms) &&
	figure "node 3 dockerd SIGKILLed -> node_down event: $((t_down - t0)) ms" &&
	# out of the routes: no replica on node 3 is ready from the node_down on
	st_check "not [r for r in d[\"replicas\"] if r.get(\"node\") == \"gf$FLEET_TAG-3\" and r[\"ready\"]]" &&
	# each of them bound to a new task on another node (task_rescheduled) and ready there
	wait_for 90 "st_check \"len([r for r in d[\\\"replicas\\\"] if r[\\\"ready\\\"]]) >= $nb and not [r for r in d[\\\"replicas\\\"] if r.get(\\\"node\\\") == \\\"gf$FLEET_TAG-3\\\"]\"" &&
	figure "node_down -> its replicas running and ready again on nodes 1 and 2: $(($(_now_ms) - t_down)) ms" &&
	"$GANTRY" events hello --env staging >ev.txt &&
	grep "task_rescheduled" ev.txt &&
	test "$(grep -c task_rescheduled ev.txt)" = "$n3" &&
	"$GANTRY" nodes -o json >nodes.json &&
	jcheck nodes.json "[n[\"state\"] for n in d if n[\"hostname\"] == \"gf$FLEET_TAG-3\"] == [\"down\"]" &&
	jcheck nodes.json "[n[\"replicas\"] for n in d if n[\"hostname\"] == \"gf$FLEET_TAG-3\"] == [0]"
'

test_expect_success 'resume: the canary is promoted on the nodes that are up; failed requests counted' '
	"$GANTRY" resume hello --env staging &&
	wait_bg deploy2 120 &&
	stop_load load &&
	figure "failed requests during the node failure and the rest of the canary: $(python3 -c "import json; d = json.load(open(\"load.json\")); print(d[\"non2xx\"] + d[\"errors\"], \"of\", d[\"requests\"])")" &&
	load_clean load &&
	st_check "d[\"stable_revision\"] == 2" &&
	st_check "sorted(r[\"node\"] for r in d[\"replicas\"] if r[\"revision\"] == 2 and r[\"ready\"]) != [] and not [r for r in d[\"replicas\"] if r.get(\"node\") == \"gf$FLEET_TAG-3\"]"
'

test_expect_success 'kill -9 of the controller mid-rollout, restarted: the same services, the same tasks' '
	start_load load2 &&
	spawn_bg deploy3 "$GANTRY" deploy hello --env staging --version v3 --wait --timeout 120s &&
	wait_for 60 "st_check \"d.get(\\\"canary\\\", {}).get(\\\"wait\\\") == \\\"pause\\\" and all(r[\\\"state\\\"] == \\\"ready\\\" for r in d[\\\"replicas\\\"])\" && test \"\$(services | wc -l)\" = 2" &&
	services >svc-before && tasks >tasks-before &&
	cat svc-before tasks-before &&
	gst >st-before.json &&
	kill9_serve &&
	start_serve &&
	wait_for 30 "st_check \"d.get(\\\"canary\\\", {}).get(\\\"wait\\\") == \\\"pause\\\" and all(r[\\\"state\\\"] == \\\"ready\\\" and r.get(\\\"node\\\") for r in d[\\\"replicas\\\"])\"" &&
	sleep 2 &&
	services >svc-after && tasks >tasks-after &&
	diff svc-before svc-after &&
	diff tasks-before tasks-after &&
	gst >st-after.json &&
	python3 - st-before.json st-after.json <<-\EOF &&
	import json, sys
	b, a = (json.load(open(f)) for f in sys.argv[1:3])
	key = lambda d: sorted((r["id"], r.get("container"), r.get("node"), r["restarts"]) for r in d["replicas"])
	assert key(b) == key(a), (key(b), key(a))
	EOF
	evs >ev3.json &&
	jcheck ev3.json "len([e for e in d if e[\"kind\"] == \"service_created\" and e[\"revision\"] == 3]) == 1" &&
	# the adopted tasks output is followed again (the load goes on)
	n0=$("$GANTRY" logs hello --env staging --tail 10000000 | grep -c "hello: GET / 200") &&
	wait_for 20 "test \$(\"\$GANTRY\" logs hello --env staging --tail 10000000 | grep -c \"hello: GET / 200\") -gt $((n0 + 100))"
'

test_expect_success 'resume after the restart: v3 promoted; no failed request' '
	"$GANTRY" resume hello --env staging &&
	wait_for 90 "st_check \"d[\\\"stable_revision\\\"] == 3 and d[\\\"ready_replicas\\\"] >= 3\"" &&
	stop_load load2 &&
	figure "failed requests across the controller kill -9 and restart: $(python3 -c "import json; d = json.load(open(\"load2.json\")); print(d[\"non2xx\"] + d[\"errors\"], \"of\", d[\"requests\"])")" &&
	load_clean load2
'

test_expect_success 'SIGTERM stops the daemon: services removed' '
	stop_serve 60 &&
	test -z "$(services)"
'

test_done
