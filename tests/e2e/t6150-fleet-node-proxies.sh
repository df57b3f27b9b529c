#!/bin/sh
test_description='fleet: cluster.proxy runs a gantry proxy on every node of a real 3-node Swarm (a global service made from the running gantry, host-mode ports, the admin token a Swarm secret); each node address serves clients; the canary split, a header match and the sticky cookie one node set hold on every node; the canary shield answers from stable through every node while each node proxy counts the canary 5xx answers and the summed windows show them; errors sent through node 2 only roll a canary back (summed windows); a node proxy killed is restarted by Swarm, refuses until the controller pushes, then serves the current table; a controller of another build replaces the node proxies with its image, a node at a time'
# e2e: slow (a 3-node cluster, an image built from the gantry binary)
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$TEST_DIRECTORY/lib/fleet-lib.sh"

require_cmd python3 curl setsid
require_gantry
start_fleet
echo "# figure: cluster up in $FLEET_UP_MS ms" >&7

# the node proxies' ports: free on this host, hence on the nodes' fresh namespaces
NP_PORT=$(free_port)
NP_ADMIN=$(free_port)
PSVC=gantry-proxy-staging

# nget N PATH: GET through node N's proxy (its address, the published port)
nget() {
	eval "_na=\$NODE$1_ADDR"
	curl -sS --max-time 5 -H "Host: $HOST" "http://$_na:$NP_PORT$2"
}

# nhead N: the response head of a GET through node N's proxy
nhead() {
	eval "_na=\$NODE$1_ADDR"
	curl -sS -D - -o /dev/null --max-time 5 -H "Host: $HOST" "http://$_na:$NP_PORT/"
}

ncode() {
	eval "_na=\$NODE$1_ADDR"
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $HOST" "http://$_na:$NP_PORT/"
	return 0
}

# in_node N CMD...: CMD in node N's network namespace, where the published
# ports listen on every address, loopback too (loadgen talks to loopback only)
in_node() {
	eval "_nn=\$NODE$1_NETNS"
	shift
	ip netns exec "$_nn" "$@"
}

# nsplit N COUNT [ARGS]: COUNT requests through node N's proxy (loadgen's
# ARGS added: --header); JSON in split.json
nsplit() {
	_sn=$1 _sc=$2
	shift 2
	in_node "$_sn" "$LOADGEN" --url "http://127.0.0.1:$NP_PORT/" --host "$HOST" -c 1 -n "$_sc" \
		--max-duration 30s "$@" >"$TRASH/split.json" 2>"$TRASH/split.err" &&
	cat "$TRASH/split.json"
}

# nwindows N: node N's proxy's /windows (cumulative per-revision counters)
nwindows() {
	eval "_na=\$NODE$1_ADDR"
	curl -s --max-time 5 -H "Authorization: Bearer $(cat "$GANTRY_HOME/nodeproxy/staging.token")" \
		"http://$_na:$NP_ADMIN/windows"
}

# rev_status FILE REV: "requests 5xx" of revision REV in the /windows document FILE
rev_status() {
	python3 - "$1" "$2" <<-'PYEOF'
	import json, sys
	d = json.load(open(sys.argv[1]))
	r = [x for x in d.get("revisions", []) if str(x.get("revision")) == sys.argv[2]]
	print("%d %d" % (r[0]["requests"], r[0]["status"][5]) if r else "0 0")
	PYEOF
}

# nstatus N: node N's proxy's /status (with the token the controller made)
nstatus() {
	eval "_na=\$NODE$1_ADDR"
	curl -s --max-time 5 -H "Authorization: Bearer $(cat "$GANTRY_HOME/nodeproxy/staging.token")" \
		"http://$_na:$NP_ADMIN/status"
}

proxies_check() {
	gst >"$TRASH/stall.json" &&
	jcheck "$TRASH/stall.json" "(lambda p: $1)(d[\"proxy\"][\"proxies\"])"
}

local_gen() {
	curl -s --max-time 5 -H "Authorization: Bearer $(cat "$GANTRY_HOME/proxy-admin.token")" \
		"http://127.0.0.1:$ADMIN_PORT/status" | json_get generation
}

# every node proxy runs the local proxy's generation
all_at_local_gen() {
	_g=$(local_gen) &&
	test "$(nstatus 1 | json_get generation)" = "$_g" &&
	test "$(nstatus 2 | json_get generation)" = "$_g" &&
	test "$(nstatus 3 | json_get generation)" = "$_g"
}

# spec [ROLLBACK_ON]: the spec, rollback_on's condition "error_rate > 5% for 2s" unless given
spec() {
	fleet_spec 3 "proxy: { port: $NP_PORT, admin_port: $NP_ADMIN, registry: \"$FLEET_REGISTRY\" }" <<-EOF
	    env: { HOST: 0.0.0.0 }
	    placement: { spread: node.id }
	    progress_deadline: 90s
	    shield: true
	    sticky: true
	    strategy:
	      canary:
	        match: { header: { x-canary: "true" } }
	        steps: [ {weight: 50}, {pause: 5m} ]
	    rollback_on: [ "${1:-error_rate > 5% for 2s}" ]
	EOF
}

test_expect_success 'setup: v1 deployed; the node proxies made, one per node, each at the local generation' '
	fleet_image hello:1 &&
	spec &&
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	wait_for 120 "grep -q \"service $PSVC created\" serve.log" &&
	t0=$(_now_ms) &&
	wait_for 60 "all_at_local_gen" &&
	figure "service created (seen in serve.log) -> the 3 node proxies run the current table: $(($(_now_ms) - t0)) ms" &&
	wait_for 60 "proxies_check \"len(p) == 4 and not any(x[\\\"stale\\\"] or x[\\\"awaiting_routes\\\"] for x in p)\"" &&
	wait_for 10 all_at_local_gen &&
	img_ms=$(sed -n "s/.*environment=staging image=.* ready in \([0-9]*\)ms.*/\1/p" serve.log | head -n 1) &&
	svc_ms=$(sed -n "s/.*service $PSVC created .* in \([0-9]*\)ms.*/\1/p" serve.log | head -n 1) &&
	figure "the proxy image made from the running gantry, built and pushed: $img_ms ms" &&
	figure "the global service $PSVC created: $svc_ms ms" &&
	grep "image .*gantry-proxy:.* built from [0-9]* files and pushed" serve.log
'

test_expect_success 'the proxy service: global, pinned by digest, host-mode ports, token a secret, not root, awaiting routes' '
	fleet_docker 1 service inspect "$PSVC" >ps.json &&
	jcheck ps.json "\"Global\" in d[0][\"Spec\"][\"Mode\"]" &&
	jcheck ps.json "\"@sha256:\" in d[0][\"Spec\"][\"TaskTemplate\"][\"ContainerSpec\"][\"Image\"] and d[0][\"Spec\"][\"TaskTemplate\"][\"ContainerSpec\"][\"Image\"].startswith(\"$FLEET_REGISTRY/gantry-proxy\")" &&
	jcheck ps.json "sorted((p[\"PublishedPort\"], p[\"PublishMode\"]) for p in d[0][\"Spec\"][\"EndpointSpec\"][\"Ports\"]) == sorted([($NP_PORT, \"host\"), ($NP_ADMIN, \"host\")])" &&
	jcheck ps.json "d[0][\"Spec\"][\"TaskTemplate\"][\"ContainerSpec\"][\"User\"] == \"65534\"" &&
	jcheck ps.json "d[0][\"Spec\"][\"TaskTemplate\"][\"ContainerSpec\"][\"Secrets\"][0][\"File\"][\"Name\"] == \"gantry-proxy-token\"" &&
	jcheck ps.json "\"--await-routes\" in d[0][\"Spec\"][\"TaskTemplate\"][\"ContainerSpec\"][\"Args\"]" &&
	jcheck ps.json "d[0][\"Spec\"][\"TaskTemplate\"][\"Networks\"][0][\"Target\"] != \"\"" &&
	test "$(fleet_docker 1 service ps "$PSVC" --filter desired-state=running -q | wc -l)" = 3 &&
	# without the token the admin API answers 401
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "http://$NODE2_ADDR:$NP_ADMIN/status")" = 401
'

test_expect_success 'each node address serves the app; every node proxy reaches the tasks on all three nodes' '
	for n in 1 2 3; do
		nget $n / | grep -q "^hello from v1" || return 1
	done &&
	for n in 1 2 3; do
		nsplit $n 30 && jcheck split.json "d[\"versions\"] == {\"v1\": 30} and d[\"non2xx\"] == 0 and d[\"errors\"] == 0" || return 1
	done &&
	nstatus 1 >ns1.json && cat ns1.json &&
	pget / | grep -q "^hello from v1"
'

test_expect_success 'a canary at 50% with a header match: on every node proxy x-canary requests all go to the canary, the others split by weight; a sticky cookie set by node 1 holds through nodes 2 and 3' '
	"$GANTRY" deploy hello --env staging --version v2 &&
	wait_for 60 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	wait_for 10 all_at_local_gen &&
	for n in 1 2 3; do
		nsplit $n 200 && P=$(split_pct v2) && figure "canary at 50%, through node $n: v2 $P% of 200" &&
		test "$P" -ge 30 && test "$P" -le 70 || return 1
		nsplit $n 100 --header "x-canary: true" && cat split.json &&
		jcheck split.json "d[\"versions\"] == {\"v2\": 100} and d[\"non2xx\"] == 0 and d[\"errors\"] == 0" &&
		figure "x-canary: true through node $n: 100 of 100 to the canary v2" || return 1
		nsplit $n 20 --header "x-canary: false" &&
		jcheck split.json "set(d[\"versions\"]) <= {\"v1\", \"v2\"} and d[\"non2xx\"] == 0" || return 1
	done &&
	: >cookies &&
	for i in $(seq 50); do
		nhead 1 >h || return 1
		sed -n "s/^[Ss]et-[Cc]ookie: gantry_rev=\([0-9]*\);.*/\1/p" h >>cookies
		test $(sort -u cookies | wc -l) -eq 2 && break
	done &&
	sort -u cookies && test $(sort -u cookies | wc -l) -eq 2 &&
	for r in 1 2; do
		for n in 2 3; do
			nsplit $n 20 --header "Cookie: gantry_rev=$r" &&
			jcheck split.json "d[\"versions\"] == {\"v$r\": 20} and d[\"non2xx\"] == 0 and d[\"errors\"] == 0" || return 1
		done
		figure "sticky: the cookie node 1 set for revision $r kept 20 of 20 requests on it through node 2 and through node 3"
	done &&
	"$GANTRY" abort hello --env staging --reason "next: a failing one behind the shield" &&
	wait_for 30 "st_check \"[t for t in d[\\\"traffic\\\"] if t[\\\"weight\\\"] > 0] == [{\\\"revision\\\": 1, \\\"weight\\\": 100}]\""
'

test_expect_success 'the canary shield on every node proxy: a canary failing every GET, clients get 200 from v1 through each node; its 5xx are counted per node and in the summed windows' '
	# rollback_on with a long window: the failures are measured (holds) but
	# the canary stays, held at its pause, for the three nodes
	spec "error_rate > 5% for 10m" &&
	"$GANTRY" deploy hello --env staging --version v3 --set env.FAIL_RATE=1 &&
	wait_for 60 "canary_check \"c[\\\"weight\\\"] == 50 and c[\\\"wait\\\"] == \\\"pause\\\"\"" &&
	wait_for 10 all_at_local_gen &&
	# a steady load through node 1 feeds the controller a sample every
	# 100 ms (rollback_on reads the trailing second) while the checks run
	spawn_bg sload ip netns exec "$NODE1_NETNS" "$LOADGEN" --url "http://127.0.0.1:$NP_PORT/" --host "$HOST" \
		-c 2 --rate 50 --max-duration 120s --stop-file "$TRASH/stop-sload" &&
	ts=$(_now_ms) &&
	for n in 1 2 3; do
		nsplit $n 100 && cat split.json &&
		jcheck split.json "d[\"versions\"] == {\"v1\": 100} and d[\"non2xx\"] == 0 and d[\"errors\"] == 0" &&
		nwindows $n >w$n.json && set -- $(rev_status w$n.json 3) &&
		figure "shield through node $n: 100 of 100 answered 200 by v1; node $n windows: canary revision 3 had $1 requests, $2 of them 5xx" &&
		test "$2" -ge 20 && test "$2" = "$1" || return 1
	done &&
	# the summed windows: the controller measures the canary failing (all
	# of its requests were 5xx, whichever node proxy sent them)
	t0=$(_now_ms) &&
	wait_for 20 "canary_check \"c[\\\"rollback_on\\\"][0][\\\"verdict\\\"] == \\\"holds\\\"\"" &&
	figure "shield: the loop over the nodes took $((t0 - ts)) ms, the verdict holds $(($(_now_ms) - t0)) ms later" &&
	gst >st3.json &&
	touch stop-sload && { wait_bg sload 15 || :; } &&
	grep "^{" sload.log | tail -n 1 >sload.json && cat sload.json &&
	figure "shield under load through node 1: $(json_get requests <sload.json) requests, $(json_get non2xx <sload.json) non-2xx, $(json_get errors <sload.json) errors" &&
	jcheck sload.json "d[\"requests\"] > 0 and d[\"non2xx\"] == 0 and d[\"errors\"] == 0 and list(d[\"versions\"]) == [\"v1\"]" &&
	jcheck st3.json "d[\"canary\"][\"rollback_on\"][0][\"last\"].startswith(\"error_rate 100\")" &&
	figure "summed windows, status: $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"canary\"][\"rollback_on\"][0][\"last\"])" st3.json)" &&
	# the local proxy saw none of it: the sums come from the node proxies
	curl -s --max-time 5 -H "Authorization: Bearer $(cat "$GANTRY_HOME/proxy-admin.token")" "http://127.0.0.1:$ADMIN_PORT/windows" >lw3.json &&
	test "$(rev_status lw3.json 3)" = "0 0" &&
	"$GANTRY" abort hello --env staging --reason "shield checked" &&
	wait_for 30 "st_check \"[t for t in d[\\\"traffic\\\"] if t[\\\"weight\\\"] > 0] == [{\\\"revision\\\": 1, \\\"weight\\\": 100}]\"" &&
	spec
'

test_expect_success 'errors sent through node 2 only roll a bad canary back (the summed windows), zero failed requests' '
	spawn_bg load ip netns exec "$NODE2_NETNS" "$LOADGEN" --url "http://127.0.0.1:$NP_PORT/" --host "$HOST" \
		-c 4 --rate 300 --max-duration 120s --stop-file "$TRASH/stop-load" &&
	test_expect_code 1 "$GANTRY" deploy hello --env staging --version v4 --set env.FAIL_RATE=0.5 \
		--wait --timeout 90s >deploy-v4.out 2>&1
	rc=$?
	cat deploy-v4.out
	touch stop-load && wait_bg load 15
	test $rc = 0 &&
	grep "^{" load.log | tail -n 1 >load.json && cat load.json &&
	figure "bad canary rolled back under load through node 2: $(json_get requests <load.json) requests, $(json_get non2xx <load.json) non-2xx, $(json_get errors <load.json) errors" &&
	jcheck load.json "d[\"requests\"] > 0 and d[\"non2xx\"] == 0 and d[\"errors\"] == 0" &&
	st_check "d[\"phase\"] == \"rolled_back\" and d[\"rollout\"][\"revision\"] == 4" &&
	ghist >hist.json && jcheck hist.json "d[0][\"revision\"] == 4 and \"error_rate\" in d[0][\"reason\"]" &&
	curl -s --max-time 5 -H "Authorization: Bearer $(cat "$GANTRY_HOME/proxy-admin.token")" "http://127.0.0.1:$ADMIN_PORT/windows" >lw.json &&
	jcheck lw.json "sum(r.get(\"requests\", 0) for r in d.get(\"revisions\", []) if str(r.get(\"revision\")) == \"4\") == 0"
'

test_expect_success 'node 3 proxy killed: Swarm restarts it, it refuses until the controller pushes, then serves the current table' '
	cid=$(fleet_docker 3 ps -q --filter "label=com.docker.swarm.service.name=$PSVC") &&
	test -n "$cid" &&
	SERVE=$(pid_of serve) &&
	kill -STOP "$SERVE" &&
	fleet_docker 3 kill "$cid" >/dev/null &&
	wait_for 60 "test -n \"\$(fleet_docker 3 ps -q --filter label=com.docker.swarm.service.name=$PSVC)\" && test \"\$(fleet_docker 3 ps -q --filter label=com.docker.swarm.service.name=$PSVC)\" != $cid" &&
	wait_for 20 "nstatus 3 | grep -q \"\\\"awaiting_routes\\\":true\"" &&
	test "$(ncode 3)" = 000 &&
	test "$(ncode 1)" = 200 &&
	T0=$(_now_ms) &&
	kill -CONT "$SERVE" &&
	wait_for 20 "test \"\$(ncode 3)\" = 200" &&
	T1=$(_now_ms) &&
	figure "a restarted node proxy served $((T1 - T0)) ms after the controller resumed (status poll + push)" &&
	wait_for 10 all_at_local_gen &&
	nsplit 3 20 && jcheck split.json "d[\"versions\"] == {\"v1\": 20}" &&
	grep "awaits its routes (it restarted): pushing generation" serve.log
'

test_expect_success 'status lists the three node proxies with the local one' '
	kill -CONT "$(pid_of serve)" 2>/dev/null
	wait_for 20 "proxies_check \"len(p) == 4 and sum(1 for x in p if x.get(\\\"node_proxy\\\") == \\\"$PSVC\\\") == 3 and not any(x[\\\"stale\\\"] for x in p)\"" &&
	"$GANTRY" status >st.txt && cat st.txt &&
	grep "^proxies: 4 of 4 reporting" st.txt
'

test_expect_success 'the controller kill -9ed and restarted: the image and the service adopted, not made again; the node proxies keep serving' '
	kill9_serve &&
	for n in 1 2 3; do
		test "$(ncode $n)" = 200 || return 1
	done &&
	start_serve &&
	wait_for 60 "grep -q \"service $PSVC adopted\" serve.log" &&
	grep -q "image .*gantry-proxy:.* is there already" serve.log &&
	! grep -q "built from [0-9]* files and pushed" serve.log &&
	test "$(fleet_docker 1 service ls -q --filter "label=gantry.proxy=staging" | wc -l)" = 1 &&
	wait_for 60 "proxies_check \"len(p) == 4 and not any(x[\\\"stale\\\"] or x[\\\"awaiting_routes\\\"] for x in p)\"" &&
	wait_for 10 all_at_local_gen &&
	nsplit 2 20 && jcheck split.json "d[\"versions\"] == {\"v1\": 20}"
'

# the image of another build of gantry: the same files at another path
# (the image digest covers the files' paths and contents)
test_expect_success 'a controller of another build: the node proxies get its image, one node at a time, and serve the current table' '
	old=$(fleet_docker 1 service inspect "$PSVC" --format "{{.Spec.TaskTemplate.ContainerSpec.Image}}") &&
	mkdir -p "$TRASH/next" && cp "$GANTRY" "$TRASH/next/gantry" &&
	if [ -x "$(dirname "$GANTRY")/gantry-secret-exec" ]; then
		cp "$(dirname "$GANTRY")/gantry-secret-exec" "$TRASH/next/"
	fi &&
	spawn_bg nload ip netns exec "$NODE2_NETNS" "$LOADGEN" --url "http://127.0.0.1:$NP_PORT/" --host "$HOST" \
		-c 2 --rate 200 --max-duration 300s --stop-file "$TRASH/stop-nload" &&
	kill9_serve &&
	_g=$GANTRY && GANTRY=$TRASH/next/gantry && start_serve; rc=$?; GANTRY=$_g; test $rc = 0 &&
	wait_for 180 "grep -q \"service $PSVC: its image .* replaced by this controller.s\" serve.log" &&
	t0=$(_now_ms) &&
	new=$(fleet_docker 1 service inspect "$PSVC" --format "{{.Spec.TaskTemplate.ContainerSpec.Image}}") &&
	echo "proxy image: $old -> $new" &&
	test "$new" != "$old" &&
	case "$new" in "$FLEET_REGISTRY"/gantry-proxy*@sha256:*) : ;; *) false ;; esac &&
	wait_for 180 "test \"\$(fleet_docker 1 service inspect $PSVC --format {{.UpdateStatus.State}})\" = completed" &&
	figure "node proxies updated to the new image, one node at a time: $(($(_now_ms) - t0)) ms" &&
	fleet_docker 1 service ps "$PSVC" --filter desired-state=running --format "{{.Node}} {{.CurrentState}}" >tasks &&
	cat tasks && test "$(grep -c Running tasks)" = 3 &&
	wait_for 60 "proxies_check \"len(p) == 4 and not any(x[\\\"stale\\\"] or x[\\\"awaiting_routes\\\"] for x in p)\"" &&
	wait_for 30 all_at_local_gen &&
	for n in 1 2 3; do
		nsplit $n 20 && jcheck split.json "d[\"versions\"] == {\"v1\": 20} and d[\"non2xx\"] == 0 and d[\"errors\"] == 0" || return 1
	done &&
	touch stop-nload && wait_bg nload 15 &&
	grep "^{" nload.log | tail -n 1 >nload.json &&
	figure "through node 2 during the update (its proxy stopped, then started and fed): $(json_get requests <nload.json) requests, $(json_get errors <nload.json) failed (connect: $(python3 -c "import json; print(json.load(open(\"nload.json\"))[\"error_kinds\"][\"connect\"])"))" &&
	jcheck nload.json "d[\"requests\"] > 0 and d[\"non2xx\"] == 0"
'

test_expect_success 'SIGTERM stops the daemon; no sanitizer report from any node proxy' '
	stop_serve 60 &&
	for n in 1 2 3; do
		for c in $(fleet_docker $n ps -aq --filter "label=com.docker.swarm.service.name=$PSVC"); do
			fleet_docker $n logs "$c" >>nodeproxies.log 2>&1 || return 1
		done
	done &&
	grep -q "the first route table arrived" nodeproxies.log &&
	sanitizer_clean nodeproxies.log
'

test_done
