#!/bin/sh
# cluster.sh — a real 3-node Docker Swarm on this one machine, for tests and
# by hand (docs/internals/fleet.md).
#
#   tests/fleet/cluster.sh up [DIR]       start it; prints DIR (default: a new
#                                         /tmp/gt-fl.XXXXXX); DIR/env is a
#                                         sourceable file of the variables below
#   tests/fleet/cluster.sh down DIR       stop everything it started (idempotent)
#   tests/fleet/cluster.sh status DIR     the nodes as the manager sees them
#   tests/fleet/cluster.sh stop-node DIR N     SIGTERM to node N's dockerd (by pid), as a
#                                         restart does: it stops its containers and leaves
#   tests/fleet/cluster.sh start-node DIR N    start it again with the same arguments, until
#                                         its API answers
#   tests/fleet/cluster.sh restart-node DIR N  both
#   tests/fleet/cluster.sh stop-registry DIR   SIGTERM to the registry (by pid)
#   tests/fleet/cluster.sh start-registry DIR  start it again (same address, same storage)
#
# What `up` makes, with TAG the directory's 6-character suffix:
#   * a bridge gfTAG in the root namespace with 10.X.Y.1/24 (a /24 no
#     interface of this host uses);
#   * three network namespaces gfTAG-1..3, each joined by a veth pair
#     (gfTAGh1 in the root namespace, eth0 inside) to the bridge, with
#     10.X.Y.11..13, a default route via .1, and ip_forward on;
#   * in each, under its own mount and UTS namespace (hostname gfTAG-N;
#     /sys remounted for that network namespace, the cgroup mounts put back),
#     a dockerd of its own: data-root, exec-root, socket, pid file in
#     DIR/nN, its own containerd namespaces, --iptables=false, the host's
#     daemon.json ignored, the registry below as an insecure registry, a
#     docker_gwbridge of its own subnet (10.X.Y+1.(64*N)/26 — made before the
#     swarm so the three do not all take 172.18.0.0/16), routed from the root
#     namespace via the node's address;
#   * `docker swarm init` on node 1, nodes 2 and 3 joined as workers;
#   * Debian's docker-registry in the root namespace on 10.X.Y.1:PORT;
#   * an attachable overlay network gfTAG (10.X.Y+2.0/24, no ingress).
#
# DIR/env: FLEET_DIR FLEET_TAG FLEET_SUBNET FLEET_REGISTRY FLEET_NET
# NODE{1,2,3}_DOCKER_HOST NODE{1,2,3}_ADDR NODE{1,2,3}_NETNS.
#
# Exit status: 0, or 1 with one line on stderr that says why ("cluster: …").
# `up` that fails takes down what it started. Everything is stopped by pid
# (dockerd, the containerd it manages, the shims of its namespace, the
# registry); nothing of a system dockerd is touched.

set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

die() {
	echo "cluster: $*" >&2
	exit 1
}

now_ms() {
	_t=$(date +%s%N 2>/dev/null)
	echo $((_t / 1000000))
}

# dk N ARGS...: the docker CLI against node N
dk() {
	_n=$1
	shift
	DOCKER_HOST=unix://$D/n$_n/docker.sock docker "$@"
}

# api N METHOD PATH [CURL ARGS]: a raw Engine API call to node N
api() {
	_n=$1
	_m=$2
	_p=$3
	shift 3
	curl -sS --max-time 30 --unix-socket "$D/n$_n/docker.sock" -X "$_m" "$@" "http://d/v1.41$_p"
}

# pid_alive PID
pid_alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

# ours PID: PID lives and its command line names DIR (a pid file that
# outlived its process must not make us signal whoever has the pid now)
ours() {
	pid_alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$D/"
}

# wait_gone PID TENTHS
wait_gone() {
	_i=0
	while kill -0 "$1" 2>/dev/null; do
		[ "$_i" -ge "$2" ] && return 1
		sleep 0.1
		_i=$((_i + 1))
	done
	return 0
}

# shims NS: pids of the containerd-shims of containerd namespace NS (one
# pgrep: a loop over /proc in sh took seconds)
shims() {
	pgrep -f -- "containerd-shim.* -namespace $1( |\$)"
}

load_env() {
	[ -f "$D/env" ] || return 1
	# shellcheck disable=SC1091
	. "$D/env"
}

# ---- down ----

stop_node() {
	_n=$1
	_nd=$D/n$_n
	[ -d "$_nd" ] || return 0
	_pid=$(cat "$_nd/pid" 2>/dev/null)
	if ours "$_pid"; then
		# it stops its containers (--shutdown-timeout 2), then leaves
		kill -TERM "$_pid" 2>/dev/null
		wait_gone "$_pid" 60 || {
			kill -KILL "$_pid" 2>/dev/null
			wait_gone "$_pid" 50
		}
	fi
	_cp=$(cat "$_nd/exec/containerd/containerd.pid" 2>/dev/null)
	if ours "$_cp"; then
		kill -KILL "$_cp" 2>/dev/null
		wait_gone "$_cp" 50
	fi
	for _p in $(shims "gf$TAG-$_n"); do
		# what runs in its container, then the shim (else init adopts them)
		pkill -KILL -P "$_p" 2>/dev/null
		kill -KILL "$_p" 2>/dev/null
	done
	:
}

do_down() {
	[ -d "$D" ] || return 0
	TAG=${D##*.}
	case $TAG in
	??????) ;;
	*) die "$D is not a directory cluster.sh made (/tmp/gt-fl.XXXXXX)" ;;
	esac
	_rp=$(cat "$D/registry.pid" 2>/dev/null)
	if ours "$_rp"; then
		kill -TERM "$_rp" 2>/dev/null
		wait_gone "$_rp" 50 || kill -KILL "$_rp" 2>/dev/null
	fi
	# the three at once: a dockerd in swarm mode takes seconds to stop
	for _n in 3 2 1; do
		stop_node "$_n" &
	done
	wait
	# mounts under DIR seen from here (the nodes' own live in their mount
	# namespaces and went with their last process), deepest first
	awk -v d="$D/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r _m; do umount -l "$_m" 2>/dev/null; done
	for _n in 1 2 3; do
		ip netns del "gf$TAG-$_n" 2>/dev/null
		ip link del "gf${TAG}h$_n" 2>/dev/null
	done
	ip link del "gf$TAG" 2>/dev/null
	for _r in $(cat "$D/routes" 2>/dev/null); do
		ip route del "$_r" 2>/dev/null
	done
	rm -rf "$D"
	:
}

# ---- up ----

# the last error line of node N's dockerd log
node_err() {
	_l=$D/n$1/dockerd.log
	[ -f "$_l" ] || return 0
	_e=$(grep -E 'level=(error|fatal)|failed to start' "$_l" | tail -n 1 |
		sed -e 's/.*msg="\{0,1\}//' -e 's/"$//' | cut -c1-200)
	[ -n "$_e" ] || _e=$(tail -n 1 "$_l" | cut -c1-200)
	echo "$_e"
}

fail_up() {
	echo "cluster: $*" >&2
	[ "${FLEET_KEEP:-}" = 1 ] || do_down
	exit 1
}

start_node() {
	_n=$1
	_nd=$D/n$_n
	_ns=gf$TAG-$_n
	mkdir -p "$_nd/data" "$_nd/exec" "$_nd/cg" || return 1
	printf '{"insecure-registries": ["%s"]}\n' "$REG" >"$_nd/daemon.json"
	# A mount namespace of our own (slave: nothing leaks back), /sys of
	# the node's network namespace (dockerd reads /sys/class/net), the
	# host's cgroup hierarchies bound back under it, its own hostname.
	# dockerd is exec'd: setsid's pid is dockerd's (the pid file says so too).
	setsid nsenter --net="/run/netns/$_ns" -- unshare --mount --uts --propagation slave -- sh -c '
		nd=$1; shift
		hostname "$HN" &&
		mount --rbind /sys/fs/cgroup "$nd/cg" &&
		mount -t sysfs sysfs /sys &&
		mount --rbind "$nd/cg" /sys/fs/cgroup &&
		umount -l "$nd/cg" || exit 1
		exec dockerd "$@"' sh "$_nd" \
		--data-root "$_nd/data" --exec-root "$_nd/exec" \
		-H "unix://$_nd/docker.sock" --pidfile "$_nd/docker.pid" \
		--iptables=false --ip6tables=false --ip-masq=false \
		--containerd-namespace "$_ns" --containerd-plugins-namespace "$_ns-p" \
		--config-file "$_nd/daemon.json" --shutdown-timeout 2 --log-level info \
		>>"$_nd/dockerd.log" 2>&1 </dev/null &
	# setsid, nsenter, unshare and sh all exec: $! is dockerd
	echo $! >"$_nd/pid"
}

wait_node() {
	_n=$1
	_nd=$D/n$_n
	_t0=$(now_ms)
	while ! curl -sf --max-time 2 --unix-socket "$_nd/docker.sock" http://d/_ping >/dev/null 2>&1; do
		pid_alive "$(cat "$_nd/pid" 2>/dev/null)" ||
			{ echo "dockerd of node $_n exited at start: $(node_err "$_n")"; return 1; }
		[ $(($(now_ms) - _t0)) -lt 60000 ] ||
			{ echo "dockerd of node $_n did not answer within 60 s: $(node_err "$_n")"; return 1; }
		sleep 0.2
	done
}

start_registry() {
	setsid docker-registry serve "$D/registry.yml" >>"$D/registry.log" 2>&1 </dev/null &
	echo $! >"$D/registry.pid"
}

wait_registry() {
	_i=0
	while ! curl -sf --max-time 2 "http://$REG/v2/" >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || { echo "docker-registry did not answer on $REG: $(tail -n 1 "$D/registry.log")"; return 1; }
		sleep 0.2
	done
}

do_up() {
	[ "$(id -u)" -eq 0 ] || die "needs root (uid $(id -u)): network namespaces and dockerd"
	for _c in dockerd containerd docker docker-registry ip nsenter unshare setsid curl python3; do
		command -v "$_c" >/dev/null 2>&1 || die "missing $_c (scripts/install-deps.sh)"
	done
	if [ -z "$D" ]; then
		D=$(mktemp -d /tmp/gt-fl.XXXXXX) || die "cannot make a directory under /tmp"
	else
		[ ! -e "$D" ] || [ -z "$(ls -A "$D")" ] || die "$D exists and is not empty"
		case ${D##*.} in
		??????) ;;
		*) die "DIR must end in .XXXXXX (six characters: the cluster's tag)" ;;
		esac
		mkdir -p "$D" || die "cannot make $D"
	fi
	TAG=${D##*.}
	case $TAG in
	*[!a-zA-Z0-9]*) fail_up "the tag $TAG has characters an interface name cannot" ;;
	esac
	chmod 711 "$D"
	T0=$(now_ms)

	# a /24 for the nodes, the next one for the gateway bridges, one more for the overlay
	_i=0
	while :; do
		_x=$(( $(od -An -N1 -tu1 /dev/urandom) % 50 + 150 ))
		_y=$(( $(od -An -N1 -tu1 /dev/urandom) % 84 * 3 ))
		if ! ip -4 addr show | grep -Eq "inet 10\.$_x\.($_y|$((_y + 1))|$((_y + 2)))\." &&
			! ip -4 route show | grep -Eq "^10\.$_x\.($_y|$((_y + 1))|$((_y + 2)))\."; then
			break
		fi
		_i=$((_i + 1))
		[ $_i -lt 30 ] || fail_up "no free 10.x.y.0/24 subnet for the cluster"
	done
	NET=10.$_x.$_y
	GWNET=10.$_x.$((_y + 1))
	OVNET=10.$_x.$((_y + 2))
	: >"$D/routes"

	ip link add "gf$TAG" type bridge 2>"$D/ip.err" || fail_up "cannot create bridge gf$TAG: $(cat "$D/ip.err")"
	ip addr add "$NET.1/24" dev "gf$TAG" && ip link set "gf$TAG" up || fail_up "cannot configure bridge gf$TAG"
	for _n in 1 2 3; do
		_ns=gf$TAG-$_n
		ip netns add "$_ns" 2>"$D/ip.err" || fail_up "cannot add network namespace $_ns: $(cat "$D/ip.err")"
		ip link add "gf${TAG}h$_n" type veth peer name eth0 netns "$_ns" 2>"$D/ip.err" ||
			fail_up "cannot create veth gf${TAG}h$_n: $(cat "$D/ip.err")"
		ip link set "gf${TAG}h$_n" master "gf$TAG" up &&
			ip -n "$_ns" link set lo up &&
			ip -n "$_ns" addr add "$NET.1$_n/24" dev eth0 &&
			ip -n "$_ns" link set eth0 up &&
			ip -n "$_ns" route add default via "$NET.1" &&
			ip netns exec "$_ns" sysctl -qw net.ipv4.ip_forward=1 ||
			fail_up "cannot configure node $_n's network"
		# its gateway bridge's /26, reached through the node
		ip route add "$GWNET.$((64 * _n))/26" via "$NET.1$_n" 2>"$D/ip.err" ||
			fail_up "cannot route $GWNET.$((64 * _n))/26: $(cat "$D/ip.err")"
		echo "$GWNET.$((64 * _n))/26" >>"$D/routes"
	done

	# the registry, on the bridge's address
	_rp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	REG=$NET.1:$_rp
	mkdir -p "$D/registry"
	cat >"$D/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $D/registry
  delete:
    enabled: true
http:
  addr: $REG
EOF
	start_registry

	for _n in 1 2 3; do
		HN=gf$TAG-$_n
		export HN
		start_node "$_n" || fail_up "cannot start node $_n"
	done
	for _n in 1 2 3; do
		_e=$(wait_node "$_n") || fail_up "$_e"
	done
	T_DOCKERD=$(($(now_ms) - T0))
	_e=$(wait_registry) || fail_up "$_e"

	# gateway bridges before the swarm: each node its own /26
	for _n in 1 2 3; do
		dk "$_n" network create --driver bridge --subnet "$GWNET.$((64 * _n))/26" \
			--gateway "$GWNET.$((64 * _n + 1))" \
			-o com.docker.network.bridge.name=docker_gwbridge \
			-o com.docker.network.bridge.enable_icc=true \
			-o com.docker.network.bridge.enable_ip_masquerade=false \
			docker_gwbridge >/dev/null 2>"$D/err" ||
			fail_up "node $_n: cannot create docker_gwbridge: $(tail -n 1 "$D/err")"
	done

	# heartbeats every 2 s (default 5 s): a dead node is noticed sooner
	dk 1 swarm init --advertise-addr "$NET.11" --listen-addr "$NET.11:2377" --dispatcher-heartbeat 2s \
		--default-addr-pool "$OVNET.0/24" --default-addr-pool-mask-length 26 >/dev/null 2>"$D/err" ||
		fail_up "swarm init on node 1: $(tail -n 1 "$D/err")"
	_tok=$(dk 1 swarm join-token -q worker 2>"$D/err") || fail_up "join token: $(tail -n 1 "$D/err")"
	for _n in 2 3; do
		dk "$_n" swarm join --token "$_tok" --advertise-addr "$NET.1$_n" --listen-addr "$NET.1$_n:2377" \
			"$NET.11:2377" >/dev/null 2>"$D/err" ||
			fail_up "node $_n: swarm join: $(tail -n 1 "$D/err")"
	done
	# the routing mesh needs IPVS, which this kernel lacks: no ingress network
	echo y | dk 1 network rm ingress >/dev/null 2>&1
	dk 1 network create --driver overlay --attachable --subnet "$OVNET.128/25" "gf$TAG" >/dev/null 2>"$D/err" ||
		fail_up "overlay network gf$TAG: $(tail -n 1 "$D/err")"
	# every node Ready
	_i=0
	while [ "$(dk 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c Ready)" != 3 ]; do
		_i=$((_i + 1))
		[ $_i -lt 300 ] || fail_up "the three nodes are not all Ready after 60 s: $(dk 1 node ls 2>&1 | tr '\n' ';')"
		sleep 0.2
	done
	T_UP=$(($(now_ms) - T0))

	{
		echo "FLEET_DIR=$D"
		echo "FLEET_TAG=$TAG"
		echo "FLEET_SUBNET=$NET.0/24"
		echo "FLEET_REGISTRY=$REG"
		echo "FLEET_NET=gf$TAG"
		for _n in 1 2 3; do
			echo "NODE${_n}_DOCKER_HOST=unix://$D/n$_n/docker.sock"
			echo "NODE${_n}_ADDR=$NET.1$_n"
			echo "NODE${_n}_NETNS=gf$TAG-$_n"
		done
		echo "export FLEET_DIR FLEET_TAG FLEET_SUBNET FLEET_REGISTRY FLEET_NET"
		echo "export NODE1_DOCKER_HOST NODE2_DOCKER_HOST NODE3_DOCKER_HOST NODE1_ADDR NODE2_ADDR NODE3_ADDR"
		echo "export NODE1_NETNS NODE2_NETNS NODE3_NETNS"
	} >"$D/env"
	echo "cluster: up in $T_UP ms (dockerds answering after $T_DOCKERD ms): $NET.0/24, registry $REG, network gf$TAG" >&2
	echo "$D"
}

do_status() {
	load_env || die "$D: no cluster there (no $D/env)"
	for _n in 1 2 3; do
		_pid=$(cat "$D/n$_n/pid" 2>/dev/null)
		if pid_alive "$_pid"; then
			echo "node $_n: dockerd pid $_pid, $(eval echo "\$NODE${_n}_ADDR")"
		else
			echo "node $_n: dockerd not running"
		fi
	done
	dk 1 node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}' 2>&1
}

# ---- one part stopped and started again (faults) ----

# stop_dockerd N: SIGTERM to node N's dockerd by pid (it stops its
# containers, --shutdown-timeout 2, and leaves; its containerd with it)
do_stop_node() {
	_nd=$D/n$1
	_pid=$(cat "$_nd/pid" 2>/dev/null)
	ours "$_pid" || die "node $1: dockerd is not running"
	kill -TERM "$_pid" 2>/dev/null
	wait_gone "$_pid" 200 || die "node $1: dockerd $_pid still runs 20 s after SIGTERM"
	_cp=$(cat "$_nd/exec/containerd/containerd.pid" 2>/dev/null)
	if ours "$_cp"; then
		wait_gone "$_cp" 50 || { kill -KILL "$_cp" 2>/dev/null; wait_gone "$_cp" 50; }
	fi
	:
}

# start_dockerd N: node N's dockerd again, as `up` started it (same data-root,
# socket, namespaces, arguments), until its API answers
do_start_node() {
	load_env || die "$D: no cluster there (no $D/env)"
	TAG=${D##*.}
	REG=$FLEET_REGISTRY
	ours "$(cat "$D/n$1/pid" 2>/dev/null)" && die "node $1: dockerd already runs"
	HN=gf$TAG-$1
	export HN
	start_node "$1" || die "cannot start node $1"
	_e=$(wait_node "$1") || die "$_e"
}

do_stop_registry() {
	_rp=$(cat "$D/registry.pid" 2>/dev/null)
	ours "$_rp" || die "the registry is not running"
	kill -TERM "$_rp" 2>/dev/null
	wait_gone "$_rp" 50 || { kill -KILL "$_rp" 2>/dev/null; wait_gone "$_rp" 50; }
	:
}

do_start_registry() {
	load_env || die "$D: no cluster there (no $D/env)"
	REG=$FLEET_REGISTRY
	ours "$(cat "$D/registry.pid" 2>/dev/null)" && die "the registry already runs"
	start_registry
	_e=$(wait_registry) || die "$_e"
}

node_arg() {
	case ${1:-} in
	1 | 2 | 3) ;;
	*) die "usage: cluster.sh $cmd DIR 1|2|3" ;;
	esac
	[ -d "$D/n$1" ] || die "$D: no node $1 there"
}

cmd=${1:-}
D=${2:-}
N=${3:-}
case $cmd in
up) do_up ;;
down)
	[ -n "$D" ] || die "usage: cluster.sh down DIR"
	do_down
	;;
status)
	[ -n "$D" ] || die "usage: cluster.sh status DIR"
	do_status
	;;
stop-node | start-node | restart-node)
	[ -n "$D" ] || die "usage: cluster.sh $cmd DIR N"
	node_arg "$N"
	case $cmd in
	stop-node) do_stop_node "$N" ;;
	start-node) do_start_node "$N" ;;
	restart-node) do_stop_node "$N" && do_start_node "$N" ;;
	esac
	;;
stop-registry)
	[ -n "$D" ] || die "usage: cluster.sh stop-registry DIR"
	do_stop_registry
	;;
start-registry)
	[ -n "$D" ] || die "usage: cluster.sh start-registry DIR"
	do_start_registry
	;;
*) die "usage: cluster.sh up [DIR] | down DIR | status DIR | stop-node|start-node|restart-node DIR N | stop-registry|start-registry DIR" ;;
esac
