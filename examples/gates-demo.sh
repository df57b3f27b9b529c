#!/bin/sh
# The gates of a production environment, end to end (what issue 6's runbooks
# do by hand): a deploy that waits for an approval, one refused in a deploy
# window, an emergency override that is let through and recorded, then the
# history, the audit log (verified) and the DORA figures.
#
#   examples/gates-demo.sh        (after `make`; ~20 s; prints a transcript)
#
# The window needs a Friday evening: the daemon's clock is set with
# GANTRY_NOW (documented as for tests and demos only), first to a Thursday
# morning, then to a Friday evening, then to the Monday after, in
# Europe/Berlin (records and rollouts are timed by it). Everything runs on
# 127.0.0.1 in a temporary GANTRY_HOME and is stopped at the end.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=$ROOT/gantry
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gantry-gates-demo.XXXXXX")
# replicas run as an unprivileged user (gantry-run) when serve is root: they
# must be able to pass through to their scratch directory under HOME
chmod 711 "$WORK"
export GANTRY_HOME=$WORK/home
SERVE_PID=

stop_serve() {
	if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
		kill -TERM "$SERVE_PID" 2>/dev/null
		i=0
		while kill -0 "$SERVE_PID" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	fi
	SERVE_PID=
}
cleanup() {
	stop_serve
	[ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# run: prints the command as a user would type it, then runs it
run() {
	printf '\n$ %s\n' "$*" | sed "s|$G|gantry|g"
	"$@"
	rc=$?
	[ $rc -ne 0 ] && echo "(exit $rc)"
	return 0
}
as() { _u=$1; shift; printf '\n[%s]' "$_u"; GANTRY_TOKEN=$(cat "$WORK/$_u.token") run "$@"; }
start_serve() {
	GANTRY_NOW=$1 "$G" serve --listen "127.0.0.1:$(free_port)" --admin "127.0.0.1:$(free_port)" \
		>>"$WORK/serve.log" 2>&1 &
	SERVE_PID=$!
	i=0
	until "$G" status >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 100 ] && { echo "gates-demo: gantry serve did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
		sleep 0.1
	done
}

[ -x "$G" ] && [ -x "$ROOT/examples/hello/hello" ] || { echo "gates-demo: run 'make' first" >&2; exit 2; }
mkdir -p "$WORK/app" && cp "$ROOT/examples/hello/hello" "$WORK/app/"
cd "$WORK/app" || exit 1
cat >gantry.yaml <<'EOF'
project: shop
environments:
  production:
    replicas: 2
    protection:
      approvals: 1
      windows: { deny: ["Fri 17:00-Mon 08:00"], timezone: Europe/Berlin }
      freeze_on_incident: [P0]
services:
  hello:
    run: ./hello
    probes:
      readiness: { http: /ready, period: 100ms }
EOF
echo "== gantry.yaml"
cat gantry.yaml

echo
echo "== Thursday 2024-05-09 10:00 Berlin"
start_serve 2024-05-09T08:00:00Z
"$G" user add alice --role deployer >"$WORK/alice.token"
"$G" user add bob --role approver >"$WORK/bob.token"
"$G" user add carol --role approver >"$WORK/carol.token"
echo "(users: alice deployer, bob and carol approvers; each has a token in GANTRY_TOKEN)"
as alice "$G" deploy hello --env production --version v1
run "$G" status hello --env production
as alice "$G" approve 1
as bob "$G" approve 1 --comment "change ticket CHG-1041"
i=0
until "$G" status hello --env production -o json 2>/dev/null | grep -q '"phase": "healthy"'; do
	i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1
done
run "$G" status hello --env production
stop_serve

echo
echo "== Friday 2024-05-10 18:30 Berlin"
start_serve 2024-05-10T16:30:00Z
as alice "$G" deploy hello --env production --version v2
as alice "$G" deploy hello --env production --version v2 --emergency --reason "checkout 500s since 18:00"
as carol "$G" deploy hello --env production --version v2 --emergency --reason "checkout 500s since 18:00" --wait
run "$G" history hello --env production --all
stop_serve

echo
echo "== Monday 2024-05-13 11:00 Berlin"
start_serve 2024-05-13T09:00:00Z
run "$G" audit
run "$G" audit verify
run "$G" dora --env production --since 30d
stop_serve
