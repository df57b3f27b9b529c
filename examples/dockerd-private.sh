# dockerd-private.sh — a private Docker Engine for `make demo-docker`
# (sourced by examples/demo.sh; the e2e tests have their own,
# tests/e2e/lib/docker-lib.sh). Nothing of a system dockerd is touched:
#
#   dk_start DIR    dockerd with its data root, exec root, socket and pid file
#                   under DIR (short: unix socket paths are limited to 108
#                   bytes), a bridge device of its own, no iptables rules;
#                   exports DOCKER_HOST. 0, or 1 with the reason on stderr
#   dk_image TAG    an image FROM scratch around examples/hello/hello-static,
#                   built through the Engine API (curl), not with a docker CLI
#   dk_stop         stops it by pid, removes its mounts, bridge and DIR
DK_DIR=
DK_PID=
DK_BRIDGE=

dk_start() {
	DK_DIR=$1
	command -v dockerd >/dev/null 2>&1 || { echo "no dockerd (Debian package docker.io)" >&2; return 1; }
	[ "$(id -u)" -eq 0 ] || { echo "dockerd needs root" >&2; return 1; }
	mkdir -p "$DK_DIR/data" "$DK_DIR/exec" || return 1
	DK_BRIDGE=gtdemo$$
	DK_BRIDGE=$(printf '%.15s' "$DK_BRIDGE")
	_x=$(( $$ % 50 + 200 ))
	ip link add "$DK_BRIDGE" type bridge && ip addr add "10.$_x.77.1/24" dev "$DK_BRIDGE" &&
		ip link set "$DK_BRIDGE" up || { echo "cannot make bridge $DK_BRIDGE" >&2; return 1; }
	echo '{}' >"$DK_DIR/daemon.json"
	dockerd --data-root "$DK_DIR/data" --exec-root "$DK_DIR/exec" -H "unix://$DK_DIR/docker.sock" \
		--pidfile "$DK_DIR/docker.pid" --iptables=false --ip6tables=false --ip-masq=false \
		--bridge="$DK_BRIDGE" --containerd-namespace "gantry-demo-$$" \
		--containerd-plugins-namespace "gantry-demo-$$-p" --config-file "$DK_DIR/daemon.json" \
		>"$DK_DIR/dockerd.log" 2>&1 </dev/null &
	DK_PID=$!
	DOCKER_HOST=unix://$DK_DIR/docker.sock
	export DOCKER_HOST
	_i=0
	until curl -sf --max-time 2 --unix-socket "$DK_DIR/docker.sock" http://d/_ping >/dev/null 2>&1; do
		_i=$((_i + 1))
		if ! kill -0 "$DK_PID" 2>/dev/null || [ $_i -gt 300 ]; then
			echo "dockerd did not start: $(tail -n 1 "$DK_DIR/dockerd.log")" >&2
			return 1
		fi
		sleep 0.2
	done
}

dk_image() {
	_ctx=$DK_DIR/ctx
	rm -rf "$_ctx" && mkdir -p "$_ctx" && cp "$ROOT/examples/hello/hello-static" "$_ctx/hello" &&
		printf 'FROM scratch\nCOPY hello /hello\nENV HOST=0.0.0.0\nENTRYPOINT ["/hello"]\n' >"$_ctx/Dockerfile" &&
		tar -C "$_ctx" -cf "$DK_DIR/ctx.tar" . &&
		curl -sS --max-time 120 --unix-socket "$DK_DIR/docker.sock" -X POST \
			-H 'Content-Type: application/x-tar' --data-binary "@$DK_DIR/ctx.tar" \
			"http://d/v1.41/build?t=$1&rm=1" >"$DK_DIR/build.out" &&
		grep -q 'Successfully tagged' "$DK_DIR/build.out" || { cat "$DK_DIR/build.out" >&2; return 1; }
}

dk_stop() {
	if [ -n "$DK_PID" ]; then
		kill -TERM "$DK_PID" 2>/dev/null
		_i=0
		while kill -0 "$DK_PID" 2>/dev/null && [ $_i -lt 200 ]; do sleep 0.1; _i=$((_i + 1)); done
		kill -KILL "$DK_PID" 2>/dev/null
		DK_PID=
	fi
	if [ -n "$DK_DIR" ] && [ -d "$DK_DIR" ]; then
		awk -v d="$DK_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
			while read -r _m; do umount -l "$_m" 2>/dev/null; done
		rm -rf "$DK_DIR"
	fi
	DK_DIR=
	[ -n "$DK_BRIDGE" ] && ip link del "$DK_BRIDGE" 2>/dev/null
	DK_BRIDGE=
	:
}
