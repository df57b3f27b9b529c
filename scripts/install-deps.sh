#!/bin/sh
# Installs the Debian packages gantry builds, tests and demos with.
# Idempotent and quiet when everything is already present.
set -eu
pkgs="build-essential pkg-config clang libclang-rt-14-dev git curl procps iproute2
libuv1-dev libfyaml-dev libjansson-dev libsqlite3-dev sqlite3 node-llhttp
libcmocka-dev libcurl4-openssl-dev libsodium-dev nettle-dev libpq-dev wrk python3 age
docker.io docker-registry busybox-static
postgresql-15 postgresql-client-15"
# postgresql-15 and postgresql-client-15: the migration tests (t65*) initdb
# and start a server of their own in the test's directory, on its own port
# and socket, stopped by pid (tests/e2e/lib/pg-lib.sh); pg_dump/pg_restore
# take and restore migrations.snapshot. Debian's postinst creates and starts
# a cluster on 5432 where an init system runs; the tests never use it.
# docker.io (dockerd, containerd, runc) and docker-registry: the container
# tests start their own private dockerd and registry (tests/e2e/lib/docker-lib.sh)
# and stop them by pid; busybox-static is the shell (/bin/sh) of the test
# image whose exec probes run inside the container (t6040). Installing them
# starts nothing where there is no init system (CI containers); where
# systemd runs, the packages' own units start a system dockerd on
# /var/run/docker.sock and a registry on :5000, which the tests never use.
# --peers: the test peers that are system services elsewhere (prometheus, for
# t3200). CI installs them; on a workstation they stay opt-in, because the
# package starts a prometheus on :9090 where an init system runs, which is
# gantry serve's default admin port.
[ "${1:-}" = "--peers" ] && pkgs="$pkgs prometheus"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
