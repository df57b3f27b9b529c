# docker-lib.sh — a private Docker Engine (and registry) for an e2e test.
# Source it after test-lib.sh:
#
#   . "$(dirname "$0")/lib/docker-lib.sh"
#   start_dockerd              # or the whole script is skipped, with dockerd's reason
#   docker_scratch_image TAG   # FROM scratch around examples/hello/hello-static
#   start_registry             # sets REGISTRY=127.0.0.1:PORT
#
# start_dockerd runs its own dockerd (and the containerd it manages) with
# everything private: data-root, exec-root, socket and pid file in a short
# directory /tmp/gt-dk.XXXXXX (Unix socket paths are limited to 108 bytes,
# $TRASH may be longer), a bridge device of its own with a unique name and
# a 10.x.y.0/24 subnet, its own containerd namespaces, no iptables rules.
# It exports DOCKER_HOST=unix://…/docker.sock, so the client under test and
# the docker CLI both talk to it. Nothing here touches a system dockerd.
#
# Everything is stopped by pid when the script exits (the traps of
# test-lib.sh are wrapped): the registry, then dockerd (SIGTERM, a wait,
# SIGKILL), the containerd-shims of our namespace, leftover mounts, the
# bridge, the directory.

DK_DIR=
DK_PID=
DK_BRIDGE=
DK_NS=
REG_PID=
REGISTRY=

# _dk_stop_all: everything this file started (idempotent; runs on exit)
_dk_stop_all() {
	stop_registry
	stop_dockerd
}

# wrap test-lib.sh's traps: ours first, then its cleanup (with the status kept)
trap '_dk_rc=$?; _dk_stop_all; (exit $_dk_rc); _on_exit' EXIT
trap '_dk_stop_all; _on_signal INT' INT
trap '_dk_stop_all; _on_signal TERM' TERM
trap '_dk_stop_all; _on_signal HUP' HUP

# _dk_wait_gone PID TENTHS: waits until PID is gone (0) or TENTHS/10 s pass (1)
_dk_wait_gone() {
	_i=0
	while kill -0 "$1" 2>/dev/null; do
		[ "$_i" -ge "$2" ] && return 1
		sleep 0.1
		_i=$((_i + 1))
	done
	return 0
}

# _dk_shims: pids of the containerd-shims started for our namespace
_dk_shims() {
	[ -n "$DK_NS" ] || return 0
	for _f in /proc/[0-9]*/cmdline; do
		# arguments are NUL-separated: "-namespace NS" as two of them
		if { tr '\0' ' ' <"$_f"; } 2>/dev/null | grep -q "containerd-shim.* -namespace $DK_NS "; then
			_p=${_f#/proc/}
			echo "${_p%/cmdline}"
		fi
	done
}

# _dk_skip REASON: skip the whole script, saying why (with dockerd's last
# error if it wrote one), after stopping what was started
_dk_skip() {
	_why=$1
	if [ -f "$TRASH/dockerd.log" ]; then
		_last=$(grep -E 'level=(error|fatal)|failed to start' "$TRASH/dockerd.log" | tail -n 1 |
			sed -e 's/.*msg="\{0,1\}//' -e 's/"$//' | cut -c1-200)
		[ -n "$_last" ] || _last=$(tail -n 1 "$TRASH/dockerd.log" | cut -c1-200)
		[ -n "$_last" ] && _why="$_why: $_last"
	fi
	[ "${GANTRY_TEST_VERBOSE:-}" = 1 ] && [ -f "$TRASH/dockerd.log" ] && tail -n 20 "$TRASH/dockerd.log" >&7
	_dk_stop_all
	skip_all "$_why"
}

# start_dockerd: a private dockerd, up within 60 s, or skip_all with the reason
start_dockerd() {
	command -v dockerd >/dev/null 2>&1 || skip_all "no dockerd (Debian package docker.io: scripts/install-deps.sh)"
	command -v containerd >/dev/null 2>&1 || skip_all "no containerd (Debian package containerd)"
	command -v curl >/dev/null 2>&1 || skip_all "missing curl"
	[ "$(id -u)" -eq 0 ] || skip_all "dockerd needs root (uid $(id -u))"
	command -v ip >/dev/null 2>&1 || skip_all "missing ip (iproute2) for the test's bridge"
	grep -qw overlay /proc/filesystems 2>/dev/null ||
		say "no overlay filesystem: dockerd will fall back to a slower storage driver"

	DK_DIR=$(mktemp -d /tmp/gt-dk.XXXXXX) || skip_all "cannot make a directory under /tmp"
	_tag=${DK_DIR##*.}
	DK_NS=gantry-test-$_tag
	# a bridge of our own: a unique short name, a /24 nobody on this host uses
	DK_BRIDGE=gt$(printf '%s' "$_tag" | tr -dc 'a-zA-Z0-9' | cut -c1-10)
	_n=0
	while :; do
		_x=$(( $(od -An -N1 -tu1 /dev/urandom) % 50 + 200 ))
		_y=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
		ip -4 addr show 2>/dev/null | grep -q "inet 10\.$_x\.$_y\." || break
		_n=$((_n + 1))
		[ $_n -lt 20 ] || _dk_skip "no free 10.x.y.0/24 subnet for the test bridge"
	done
	DK_SUBNET=10.$_x.$_y
	ip link add "$DK_BRIDGE" type bridge 2>"$TRASH/bridge.err" ||
		_dk_skip "cannot create bridge $DK_BRIDGE: $(cat "$TRASH/bridge.err")"
	ip addr add "$DK_SUBNET.1/24" dev "$DK_BRIDGE" &&
		ip link set "$DK_BRIDGE" up ||
		_dk_skip "cannot configure bridge $DK_BRIDGE"

	mkdir -p "$DK_DIR/data" "$DK_DIR/exec"
	# not /etc/docker/daemon.json: nothing of the host's configuration
	echo '{}' >"$DK_DIR/daemon.json"
	_dk_launch || _dk_skip "dockerd did not start"
}

# _dk_launch: dockerd on DK_DIR (made by start_dockerd), up within 60 s;
# DK_OPTS adds options (e.g. --live-restore). 1 if it does not answer
_dk_launch() {
	# (no setsid: dockerd is stopped by pid below, and its containerd with it)
	# shellcheck disable=SC2086
	dockerd ${DK_OPTS:-} --data-root "$DK_DIR/data" --exec-root "$DK_DIR/exec" \
		-H "unix://$DK_DIR/docker.sock" --pidfile "$DK_DIR/docker.pid" \
		--iptables=false --ip6tables=false --ip-masq=false --bridge="$DK_BRIDGE" \
		--containerd-namespace "$DK_NS" --containerd-plugins-namespace "$DK_NS-p" \
		--config-file "$DK_DIR/daemon.json" --shutdown-timeout 5 --log-level info \
		>>"$TRASH/dockerd.log" 2>&1 </dev/null &
	DK_PID=$!
	DOCKER_HOST=unix://$DK_DIR/docker.sock
	export DOCKER_HOST
	_t0=$(_now_ms)
	while ! curl -sf --max-time 2 --unix-socket "$DK_DIR/docker.sock" http://d/_ping >/dev/null 2>&1; do
		kill -0 "$DK_PID" 2>/dev/null || { echo "dockerd exited at start" >&2; return 1; }
		[ $(($(_now_ms) - _t0)) -lt 60000 ] || { echo "dockerd did not answer /_ping within 60 s" >&2; return 1; }
		sleep 0.2
	done
	DOCKERD_START_MS=$(($(_now_ms) - _t0))
	say "dockerd pid $DK_PID up in $DOCKERD_START_MS ms (bridge $DK_BRIDGE $DK_SUBNET.1/24, $DOCKER_HOST," \
		"storage $(curl -s --unix-socket "$DK_DIR/docker.sock" http://d/info | python3 -c \
		'import json,sys; print(json.load(sys.stdin).get("Driver"))' 2>/dev/null))"
}

# kill_dockerd: dockerd dies (SIGKILL), as in a crash; its containers, their
# shims and its data stay for restart_dockerd
kill_dockerd() {
	[ -n "$DK_PID" ] || return 1
	kill -KILL "$DK_PID" && _dk_wait_gone "$DK_PID" 50 && wait "$DK_PID" 2>/dev/null
	DK_PID=
	:
}

# restart_dockerd: the same dockerd again (same data, exec root, socket, bridge)
restart_dockerd() {
	[ -z "$DK_PID" ] || return 1
	_dk_launch
}

# stop_dockerd: SIGTERM, up to 20 s, SIGKILL; then the shims, mounts, bridge
stop_dockerd() {
	# its containers first, through the API: with --live-restore a dockerd
	# that stops leaves them running, and a container whose shim is killed
	# below would be left to init
	if [ -n "$DK_PID" ] && [ -S "$DK_DIR/docker.sock" ]; then
		for _c in $(dk_api GET "/containers/json?all=1" 2>/dev/null |
			python3 -c 'import json,sys; [print(c["Id"]) for c in json.load(sys.stdin)]' 2>/dev/null); do
			dk_api DELETE "/containers/$_c?force=1" >/dev/null 2>&1
		done
	fi
	if [ -n "$DK_PID" ]; then
		kill -TERM "$DK_PID" 2>/dev/null
		_dk_wait_gone "$DK_PID" 200 || {
			echo "# dockerd $DK_PID ignored SIGTERM for 20 s: SIGKILL" >&7
			kill -KILL "$DK_PID" 2>/dev/null
			_dk_wait_gone "$DK_PID" 50
		}
		wait "$DK_PID" 2>/dev/null
		DK_PID=
	fi
	for _p in $(_dk_shims); do
		# what runs in its container, then the shim (else init adopts them)
		pkill -KILL -P "$_p" 2>/dev/null
		kill -KILL "$_p" 2>/dev/null
	done
	if [ -n "$DK_DIR" ] && [ -d "$DK_DIR" ]; then
		# the managed containerd is dockerd's child: it went with it; a
		# containerd left behind (dockerd killed) is found by its pid file
		for _pf in "$DK_DIR"/exec/containerd/containerd.pid; do
			[ -f "$_pf" ] || continue
			_cp=$(cat "$_pf")
			[ -n "$_cp" ] && kill -KILL "$_cp" 2>/dev/null
		done
		# mounts under our directory, deepest first
		awk -v d="$DK_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
			while read -r _m; do umount -l "$_m" 2>/dev/null; done
		rm -rf "$DK_DIR"
		DK_DIR=
	fi
	if [ -n "$DK_BRIDGE" ]; then
		ip link del "$DK_BRIDGE" 2>/dev/null
		DK_BRIDGE=
	fi
	:
}

# dk_api METHOD PATH [CURL ARGS...]: a raw Engine API call (test setup only)
dk_api() {
	_m=$1
	_path=$2
	shift 2
	curl -sS --max-time 120 --unix-socket "${DOCKER_HOST#unix://}" -X "$_m" "$@" "http://d/v1.41$_path"
}

# docker_scratch_image TAG [VARIANT [shell]]: an image FROM scratch with
# examples/hello built static as /hello, listening on 0.0.0.0 (HOST), its
# entrypoint; a VARIANT label makes another image (another id) of the same
# program. "shell" adds Debian's busybox-static as /bin/busybox and /bin/sh
# (with links for the applets the tests use: wget, test, cat, sleep), so
# exec probes have a shell; without it the image has none. Built through
# the API with curl, not with the client under test.
docker_scratch_image() {
	_ctx=$TRASH/scratch-ctx
	_static=$ROOT/examples/hello/hello-static
	[ -x "$_static" ] || { echo "$_static not built (make examples)" >&2; return 1; }
	rm -rf "$_ctx" && mkdir -p "$_ctx" &&
		cp "$_static" "$_ctx/hello" || return 1
	if [ "${3:-}" = shell ]; then
		[ -x /bin/busybox ] || { echo "no /bin/busybox (Debian package busybox-static)" >&2; return 1; }
		mkdir "$_ctx/bin" && cp /bin/busybox "$_ctx/bin/busybox" || return 1
		for _a in sh wget test cat sleep; do
			ln -s busybox "$_ctx/bin/$_a" || return 1
		done
	fi
	{
		printf 'FROM scratch\nCOPY hello /hello\n'
		[ "${3:-}" != shell ] || printf 'COPY bin /bin\n'
		printf 'ENV HOST=0.0.0.0\nENTRYPOINT ["/hello"]\nLABEL variant="%s"\n' "${2:-}"
	} >"$_ctx/Dockerfile" &&
		tar -C "$_ctx" -cf "$TRASH/scratch-ctx.tar" . &&
		dk_api POST "/build?t=$1&rm=1" -H 'Content-Type: application/x-tar' \
			--data-binary "@$TRASH/scratch-ctx.tar" >"$TRASH/scratch-build.out" || return 1
	if grep -q '"error"' "$TRASH/scratch-build.out"; then
		cat "$TRASH/scratch-build.out" >&2
		return 1
	fi
	grep -q 'Successfully tagged' "$TRASH/scratch-build.out"
}

# start_registry: Debian's docker-registry on 127.0.0.1:PORT with its storage
# in $TRASH; sets REGISTRY=127.0.0.1:PORT (an insecure registry dockerd
# accepts: 127.0.0.0/8). skip_all if it is not installed.
start_registry() {
	command -v docker-registry >/dev/null 2>&1 || _dk_skip "no docker-registry (Debian package docker-registry)"
	_rp=$(free_port) || return 1
	mkdir -p "$TRASH/registry"
	cat >"$TRASH/registry.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $TRASH/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$_rp
EOF
	docker-registry serve "$TRASH/registry.yml" >"$TRASH/registry.log" 2>&1 </dev/null &
	REG_PID=$!
	REGISTRY=127.0.0.1:$_rp
	wait_for 30 "curl -sf http://$REGISTRY/v2/" || {
		echo "docker-registry did not answer on $REGISTRY within 30 s" >&2
		return 1
	}
}

# stop_registry: by pid
stop_registry() {
	if [ -n "$REG_PID" ]; then
		kill -TERM "$REG_PID" 2>/dev/null
		_dk_wait_gone "$REG_PID" 50 || kill -KILL "$REG_PID" 2>/dev/null
		wait "$REG_PID" 2>/dev/null
		REG_PID=
	fi
	:
}
