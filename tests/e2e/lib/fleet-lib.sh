# fleet-lib.sh — a 3-node Docker Swarm (tests/fleet/cluster.sh) for an e2e
# test. Source it after test-lib.sh:
#
#   . "$(dirname "$0")/lib/fleet-lib.sh"
#   start_fleet                # or the whole script is skipped, with the reason
#   fleet_image hello:1        # FLEET_IMAGE=REGISTRY/hello:1@sha256:… (pushed)
#   fleet_image hello:2 'ENV BUILD=2'   # another image (a Dockerfile line more)
#   fleet_spec 3 <<EOF         # gantry.yaml: hello@staging on the fleet (FLEET_IMAGE)
#       strategy: ...          # with its own keys from stdin (see fleet_spec)
#   EOF
#
# figure TEXT prints a measured figure; evs prints hello@staging's events
# as one JSON array.
#
# Faults: kill_node_dockerd N (SIGKILL), stop_node_dockerd N / start_node_dockerd N
# (SIGTERM by pid, then the same dockerd started again), cut_node_link N /
# restore_node_link N (the root-namespace end of node N's veth down / up),
# stop_registry / start_registry (by pid; the same address and storage).
#
# start_fleet runs `cluster.sh up` on a fresh /tmp/gt-fl.XXXXXX (named before
# it starts, so an interrupted start is still torn down) and exports what
# its env file says: FLEET_DIR, FLEET_REGISTRY (HOST:PORT on the cluster's
# bridge), FLEET_NET (the attachable overlay network), FLEET_SUBNET,
# NODE{1,2,3}_DOCKER_HOST (unix sockets: node 1 is the manager),
# NODE{1,2,3}_ADDR, NODE{1,2,3}_NETNS. DOCKER_HOST is set to node 1's.
# FLEET_UP_MS is how long `up` took.
#
# The cluster is torn down (`cluster.sh down`, by pid) when the script exits:
# the traps of test-lib.sh are wrapped, ours run first.

FLEET_DIR=
SWARMC=$ROOT/tests/e2e/helpers/swarmc

stop_fleet() {
	if [ -n "$FLEET_DIR" ]; then
		"$ROOT/tests/fleet/cluster.sh" down "$FLEET_DIR" >&7 2>&1
		FLEET_DIR=
	fi
	:
}

trap '_fl_rc=$?; stop_fleet; (exit $_fl_rc); _on_exit' EXIT
trap 'stop_fleet; _on_signal INT' INT
trap 'stop_fleet; _on_signal TERM' TERM
trap 'stop_fleet; _on_signal HUP' HUP

# start_fleet: the cluster, up within cluster.sh's bounds, or skip_all with why
start_fleet() {
	[ "$(id -u)" -eq 0 ] || skip_all "a fleet needs root (uid $(id -u)): network namespaces and dockerd"
	for _c in dockerd containerd docker docker-registry ip nsenter unshare; do
		command -v "$_c" >/dev/null 2>&1 || skip_all "no $_c (scripts/install-deps.sh)"
	done
	[ -x "$SWARMC" ] || skip_all "$SWARMC not built (make examples)"
	FLEET_DIR=$(mktemp -d /tmp/gt-fl.XXXXXX) || skip_all "cannot make a directory under /tmp"
	_t0=$(_now_ms)
	if ! "$ROOT/tests/fleet/cluster.sh" up "$FLEET_DIR" >"$TRASH/fleet-up.out" 2>"$TRASH/fleet-up.err"; then
		_why=$(grep '^cluster:' "$TRASH/fleet-up.err" | tail -n 1)
		[ -n "$_why" ] || _why=$(tail -n 1 "$TRASH/fleet-up.err")
		FLEET_DIR=
		skip_all "the fleet cannot start: ${_why#cluster: }"
	fi
	FLEET_UP_MS=$(($(_now_ms) - _t0))
	# shellcheck disable=SC1091
	. "$FLEET_DIR/env"
	DOCKER_HOST=$NODE1_DOCKER_HOST
	export DOCKER_HOST
	say "$(cat "$TRASH/fleet-up.err")"
}

# fleet_image NAME:TAG [LINE]: examples/hello built static, FROM scratch, with
# busybox's sh and nc (a probe inside the overlay), built on node 1 and
# pushed to FLEET_REGISTRY; FLEET_IMAGE is its reference pinned by digest
fleet_image() {
	_ctx=$TRASH/fleet-ctx
	[ -x "$ROOT/examples/hello/hello-static" ] || { echo "examples/hello/hello-static not built" >&2; return 1; }
	[ -x /bin/busybox ] || { echo "no /bin/busybox (Debian package busybox-static)" >&2; return 1; }
	rm -rf "$_ctx" && mkdir -p "$_ctx/bin" &&
		cp "$ROOT/examples/hello/hello-static" "$_ctx/hello" &&
		cp /bin/busybox "$_ctx/bin/busybox" &&
		ln -s busybox "$_ctx/bin/sh" && ln -s busybox "$_ctx/bin/nc" || return 1
	printf 'FROM scratch\nCOPY hello /hello\nCOPY bin /bin\nENV HOST=0.0.0.0\n%s\nENTRYPOINT ["/hello"]\n' \
		"${2:-}" >"$_ctx/Dockerfile"
	DOCKER_BUILDKIT=0 DOCKER_HOST=$NODE1_DOCKER_HOST docker build -q -t "$FLEET_REGISTRY/$1" "$_ctx" \
		>"$TRASH/fleet-build.out" 2>&1 || { cat "$TRASH/fleet-build.out" >&2; return 1; }
	DOCKER_HOST=$NODE1_DOCKER_HOST docker push "$FLEET_REGISTRY/$1" >"$TRASH/fleet-push.out" 2>&1 ||
		{ cat "$TRASH/fleet-push.out" >&2; return 1; }
	_dg=$(sed -n 's/.*digest: \(sha256:[0-9a-f]*\).*/\1/p' "$TRASH/fleet-push.out" | tail -n 1)
	[ -n "$_dg" ] || { echo "no digest in the push's output" >&2; return 1; }
	# with the tag too: readable in `docker service ls`; the digest pins it
	FLEET_IMAGE=$FLEET_REGISTRY/$1@$_dg
}

# fleet_spec REPLICAS [CLUSTER-LINE] <SERVICE-KEYS: gantry.yaml (daemon-lib's
# write_svc_spec) of project t: the environment staging, REPLICAS replicas
# on this fleet's Swarm (node 1 the manager, FLEET_NET, the nodes gfTAG-1..3;
# CLUSTER-LINE one more key of its cluster block, e.g. a `proxy:`), and the
# service hello: FLEET_IMAGE (call it after fleet_image) as user 1000:1000,
# readiness GET /ready every 200ms, stop_grace and drain_timeout 2s, then
# the service's own keys as read from stdin, indented 4 spaces (env,
# placement, strategy, ...)
fleet_spec() {
	{
		cat <<-EOF
		project: t
		environments:
		  staging:
		    replicas: $1
		    cluster:
		      engine: swarm
		      manager: $NODE1_DOCKER_HOST
		      network: $FLEET_NET
		      nodes:
		        gf$FLEET_TAG-1: $NODE1_DOCKER_HOST
		        gf$FLEET_TAG-2: $NODE2_DOCKER_HOST
		        gf$FLEET_TAG-3: $NODE3_DOCKER_HOST
		EOF
		[ -z "${2:-}" ] || printf '      %s\n' "$2"
		cat <<-EOF
		services:
		  hello:
		    image: $FLEET_IMAGE
		    user: "1000:1000"
		    probes:
		      readiness: { http: /ready, period: 200ms }
		    stop_grace: 2s
		    drain_timeout: 2s
		EOF
		cat
	} | write_svc_spec
}

# figure TEXT: a measured figure, printed as "# figure: TEXT" in the report
figure() {
	echo "# figure: $*" >&7
}

# evs: the events of hello@staging as one JSON array
evs() {
	"$GANTRY" events hello --env staging -o json |
		python3 -c 'import json, sys; print(json.dumps([json.loads(l) for l in sys.stdin if l.strip()]))'
}

# fleet_docker N ARGS: the docker CLI against node N (test setup and checks only)
fleet_docker() {
	_fn=$1
	shift
	DOCKER_HOST=$(eval echo "\$NODE${_fn}_DOCKER_HOST") docker "$@"
}

# kill_node_dockerd N: SIGKILL node N's dockerd, as in a crash (its
# containerd and containers stay until cluster.sh down)
kill_node_dockerd() {
	_kp=$(cat "$FLEET_DIR/n$1/pid" 2>/dev/null)
	[ -n "$_kp" ] && kill -KILL "$_kp" || return 1
	while kill -0 "$_kp" 2>/dev/null; do sleep 0.1; done
}

# stop_node_dockerd N: SIGTERM to node N's dockerd by pid, as a restart does
# (it stops its containers and leaves); start_node_dockerd N starts it again
# with the same arguments and returns once its API answers
stop_node_dockerd() {
	"$ROOT/tests/fleet/cluster.sh" stop-node "$FLEET_DIR" "$1"
}

start_node_dockerd() {
	"$ROOT/tests/fleet/cluster.sh" start-node "$FLEET_DIR" "$1"
}

# cut_node_link N / restore_node_link N: node N's veth end in the root
# namespace (gfTAGhN, on the cluster's bridge) down / up: the node reaches
# nobody and nobody reaches it, its dockerd and containers go on running
cut_node_link() {
	ip link set "gf${FLEET_TAG}h$1" down
}

restore_node_link() {
	ip link set "gf${FLEET_TAG}h$1" up
}

# stop_registry / start_registry: the cluster's docker-registry, by pid
stop_registry() {
	"$ROOT/tests/fleet/cluster.sh" stop-registry "$FLEET_DIR"
}

start_registry() {
	"$ROOT/tests/fleet/cluster.sh" start-registry "$FLEET_DIR"
}
