#!/bin/sh
test_description='one active controller per cluster environment: the lease gantry-lease-ENV in the Swarm. A kill -9ed controller restarted with its home takes its lease back at once; a standby (a copy of the home, elsewhere) sees the lease held, says so and changes nothing; A kill -9ed: the standby takes over after the TTL and adopts the same services and tasks; A restarted does not drive; stopping the standby leaves the cluster alone'
# e2e: slow
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"
. "$TEST_DIRECTORY/lib/fleet-lib.sh"

require_cmd python3 curl setsid sqlite3
require_gantry
start_fleet

HB=$TRASH/home-b
B_PORT= B_ADMIN=

# gb ARGS: the CLI against controller B (its home)
gb() {
	GANTRY_HOME=$HB "$GANTRY" "$@"
}

# start_b: controller B on its own home and ports
start_b() {
	if [ -z "$B_PORT" ]; then
		B_PORT=$(free_port) && B_ADMIN=$(free_port) || return 1
	fi
	spawn_bg serveb env GANTRY_HOME="$HB" "$GANTRY" serve --listen "127.0.0.1:$B_PORT" \
		--admin "127.0.0.1:$B_ADMIN" --restart-backoff "$BACKOFF" &&
	wait_for 10 "gb status >/dev/null 2>&1"
}

# the Swarm as it is: every service with its version and UpdatedAt, and
# every task that should run (what "changes nothing" compares)
world() {
	for s in $(fleet_docker 1 service ls --filter "label=gantry.tag=$(cat "$GANTRY_HOME/instance-id")" \
			--format '{{.Name}}' | sort); do
		fleet_docker 1 service inspect --format "$s {{.Version.Index}} {{.UpdatedAt}} {{.Spec.Mode.Replicated.Replicas}}" "$s"
		fleet_docker 1 service ps --filter desired-state=running --format "$s {{.ID}} {{.Node}}" "$s" | sort
	done
}

# lease_label KEY: a label of the lease service
lease_label() {
	fleet_docker 1 service inspect --format "{{index .Spec.Labels \"gantry.lease.$1\"}}" gantry-lease-staging
}

spec() {
	fleet_spec 2 <<-EOF
	    env: { HOST: 0.0.0.0 }
	    placement: { spread: node.id }
	EOF
}

test_expect_success 'setup: A deploys v1 on the Swarm and holds the lease' '
	fleet_image hello:1 &&
	spec &&
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	wait_for 20 "\"$GANTRY\" status | grep -q \"^cluster staging: driven by this controller (lease gantry-lease-staging)\"" &&
	test "$(lease_label holder | cut -d: -f2)" = "$(pid_of serve)" &&
	fleet_docker 1 service inspect --format "{{.Spec.Mode.Replicated.Replicas}}" gantry-lease-staging >n &&
	test "$(cat n)" = 0 &&
	ev_check "any(e[\"kind\"] == \"lease_acquired\" and \"created\" in e[\"message\"] for e in ev)"
'

test_expect_success 'A kill -9ed and restarted with its home: takes its own lease back at once' '
	OLD=$(lease_label holder) && EXP=$(lease_label expires) &&
	kill9_serve &&
	T0=$(_now_ms) &&
	start_serve &&
	wait_for 20 "\"$GANTRY\" status | grep -q \"^cluster staging: driven by this controller\"" &&
	T1=$(_now_ms) &&
	figure "kill -9 + restart of A -> its lease back in $((T1 - T0)) ms (the old one would have expired at $((EXP - T0)) ms)" &&
	test "$(lease_label holder)" != "$OLD" &&
	ev_check "any(e[\"kind\"] == \"lease_acquired\" and \"previous process: taken back at once\" in e[\"message\"] for e in ev)" &&
	"$GANTRY" status >st.txt && cat st.txt &&
	st_check "len([r for r in d[\"replicas\"] if r[\"ready\"]]) == 2"
'

test_expect_success 'B, a standby with a copy of the home: says the cluster is held by A and changes nothing' '
	mkdir -p "$HB" && chmod 700 "$HB" &&
	(cd "$GANTRY_HOME" && for f in *; do
		case $f in state.db*|api.sock|serve.lock|logs) ;; *) cp -a "$f" "$HB/";; esac
	done) &&
	sqlite3 "$GANTRY_HOME/state.db" ".backup \"$HB/state.db\"" &&
	# a copy on the same host must not adopt (and replace) A'\''s local proxy
	sqlite3 "$HB/state.db" "UPDATE meta SET value = '\''0'\'' WHERE key = '\''proxy.pid'\''" &&
	world >world0 && cat world0 &&
	start_b &&
	wait_for 20 "gb status | grep -q \"^cluster staging: held by .*:$(pid_of serve):.* until .*: not driven by this controller\"" &&
	gb status >stb.txt && cat stb.txt &&
	GANTRY_HOME=$HB "$GANTRY" events hello --env staging -o json >evb.jsonl &&
	grep -q "lease_held_elsewhere" evb.jsonl &&
	# the copy holds A'\''s history: its service_created events are counted now
	{ grep -c service_created evb.jsonl >created0 || :; } &&
	grep "lease=.*cluster held by" "$TRASH/serveb.log" | head -1 &&
	# longer than a TTL: A renews, B never takes over
	sleep 20 &&
	gb status | grep "^cluster staging: held by .*:$(pid_of serve):" &&
	world >world1 && test_cmp world0 world1 &&
	test "$(lease_label holder | cut -d: -f2)" = "$(pid_of serve)"
'

test_expect_success 'A kill -9ed: B takes over after the TTL and adopts the same services and tasks' '
	kill9_serve &&
	T0=$(_now_ms) &&
	wait_for 60 "gb status | grep -q \"^cluster staging: driven by this controller\"" &&
	T1=$(_now_ms) &&
	figure "kill -9 of A -> B drives in $((T1 - T0)) ms (TTL 15000 ms, B reads the lease every 1000 ms)" &&
	test "$(lease_label holder | cut -d: -f2)" = "$(pid_of serveb)" &&
	GANTRY_HOME=$HB "$GANTRY" events hello --env staging -o json >evb.jsonl &&
	grep -q "not renewed for a whole TTL: taken over" evb.jsonl &&
	# not before A'\''s right ran out: its last renewal (at most 5 s before
	# the kill) + the TTL, as B saw it
	test $((T1 - T0)) -ge 9000 &&
	# B reconciles: its replicas follow the same tasks (a few polls)
	sleep 5 &&
	GANTRY_HOME=$HB "$GANTRY" status hello --env staging -o json >stb.json &&
	jcheck stb.json "len([r for r in d[\"replicas\"] if r[\"ready\"]]) == 2" &&
	world >world2 && cat world2 &&
	test_cmp world0 world2 &&
	{ grep -c service_created evb.jsonl >created1 || :; } &&
	test_cmp created0 created1
'

test_expect_success 'A restarted with its home: does not drive (B holds the lease)' '
	start_serve &&
	wait_for 20 "\"$GANTRY\" status | grep -q \"^cluster staging: held by .*:$(pid_of serveb):.*: not driven by this controller\"" &&
	ev_check "any(e[\"kind\"] == \"lease_held_elsewhere\" for e in ev)" &&
	sleep 20 &&
	test "$(lease_label holder | cut -d: -f2)" = "$(pid_of serveb)" &&
	world >world3 && test_cmp world0 world3
'

test_expect_success 'A (standby) stops at once and leaves the cluster alone; B stops, removes its services and releases the lease' '
	stop_serve 30 &&
	world >world4 && test_cmp world0 world4 &&
	kill_bg serveb TERM && wait_bg serveb 60 &&
	sanitizer_clean serveb.log &&
	grep "lease=gantry-lease-staging released" serveb.log &&
	test -z "$(lease_label holder)" &&
	test -z "$(world)"
'

test_done
