#!/bin/sh
# t0100-validate: `gantry validate` and `gantry init` on specs made in a temp dir.
# Standalone: GANTRY=path/to/gantry sh tests/e2e/t0100-validate.sh (default ./gantry).
set -e

GANTRY=${GANTRY:-./gantry}
case $GANTRY in /*) ;; *) GANTRY=$(pwd)/$GANTRY ;; esac
if [ ! -x "$GANTRY" ]; then
	echo "Bail out! no gantry binary at $GANTRY (build it, or set GANTRY)"
	exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/gantry-t0100.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
cd "$T"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
# runs gantry with the rest of the arguments; sets rc, out (stdout), err (stderr)
run() {
	rc=0
	"$GANTRY" "$@" >out.txt 2>err.txt || rc=$?
	out=$(cat out.txt)
	err=$(cat err.txt)
}
has() { grep -F -q -- "$1" "$2"; }

cat >good.yaml <<'YAML'
project: shop
environments:
  staging: { replicas: 2 }
  production: { replicas: 3, hosts: [shop.example.com] }
services:
  web:
    run: ./hello --port $PORT
    probes:
      readiness: { http: /ready, period: 1s }
    strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
    environments:
      production: { replicas: 4 }
  worker:
    run: ./worker
    hosts: []   # not the environment's: those are web's
YAML

run validate -f good.yaml
check "a valid spec exits 0" test "$rc" -eq 0
check "a valid spec prints FILE: ok (N services, M environments)" \
	test "$out" = "good.yaml: ok (2 services, 2 environments)"

run -f good.yaml validate
check "-f also works before the command" test "$rc" -eq 0

cat >bad.yaml <<'YAML'
environments:
  staging: {}
  production: {}
services:
  api:
    run: ./api
    relicas: 3
    stop_grace: 10
    strategy:
      rolling: { max_surge: 25 %, max_unavailable: 0 }
    environments:
      prod: { replicas: 1 }
  web:
    build: make
YAML

run validate -f bad.yaml
check "an invalid spec exits 2" test "$rc" -eq 2
check "diagnostics go to stderr, not stdout" test -z "$out"
check "unknown key with FILE:LINE:COL and did-you-mean" \
	has "bad.yaml:7:5: error: services.api: unknown key 'relicas' (did you mean 'replicas'?)" err.txt
check "bad duration" \
	has "bad.yaml:8:17: error: services.api.stop_grace: invalid duration '10' (expected e.g. 500ms, 10s, 1m30s)" err.txt
check "bad percentage, with source line and caret" \
	has "bad.yaml:10:29: error: services.api.strategy.rolling.max_surge: invalid percentage '25 %' (expected e.g. 25% or 2)" err.txt
check "the source line is shown" has "      rolling: { max_surge: 25 %, max_unavailable: 0 }" err.txt
check "the caret is under the column" has "|                             ^" err.txt
check "unknown environment in overrides" \
	has "bad.yaml:12:7: error: services.api.environments.prod: unknown environment 'prod' (did you mean 'production'?)" err.txt
check "service without run, at the service key" \
	has "bad.yaml:13:3: error: services.web: missing required key 'run'" err.txt
check "all five errors are reported at once" test "$(grep -c ': error: ' err.txt)" -eq 5

run -o json validate -f bad.yaml
check "-o json: exit 2 when invalid" test "$rc" -eq 2
check "-o json: valid is false" has '"valid": false' out.txt
check "-o json: errors carry file, line, column, path, message" \
	has '"path": "services.api.stop_grace"' out.txt
check "-o json: five errors" test "$(grep -c '"message"' out.txt)" -eq 5

run -o json validate -f good.yaml
check "-o json: valid spec" has '"valid": true' out.txt

cat >clash.yaml <<'YAML'
environments:
  production: {}
services:
  web:
    run: ./web
    hosts: [shop.example.com, "*.example.com"]
  api:
    run: ./api
    environments:
      production:
        hosts: [api.example.com, shop.example.com]
YAML
run validate -f clash.yaml
check "a host routed to two services: exit 2" test "$rc" -eq 2
check "the collision is reported at the second host, naming the first" \
	has "clash.yaml:11:34: error: services.api.environments.production.hosts[1]: host 'shop.example.com' is also routed to web@production (services.web.hosts[0], line 6)" err.txt
check "api.example.com under web's *.example.com is no collision (the exact host wins)" \
	test "$(grep -c ': error: ' err.txt)" -eq 1

printf 'environments:\n  production: {}\nservices:\n  web:\n    run: [unclosed\n' >syntax.yaml
run validate -f syntax.yaml
check "YAML syntax error: exit 2" test "$rc" -eq 2
check "YAML syntax error has a position" grep -q '^syntax.yaml:[0-9][0-9]*:[0-9][0-9]*: error: invalid YAML' err.txt

: >empty.yaml
run validate -f empty.yaml
check "empty file: exit 2 with a message" test "$rc" -eq 2 -a -n "$err"

run validate -f missing.yaml
check "missing file: exit 2" test "$rc" -eq 2
check "missing file: the message names the file" has "missing.yaml" err.txt

run validate
check "no -f: reads ./gantry.yaml (missing here: exit 2)" test "$rc" -eq 2
check "no -f: names gantry.yaml" has "gantry.yaml" err.txt

run init
check "init writes gantry.yaml" test "$rc" -eq 0 -a -s gantry.yaml
run validate
check "the starter validates" test "$rc" -eq 0
cp gantry.yaml before.yaml
echo "# local edit" >>gantry.yaml
run init
check "init refuses to overwrite (exit 2)" test "$rc" -eq 2
check "init names the existing file" has "gantry.yaml" err.txt
check "the existing file is untouched" has "# local edit" gantry.yaml
run init --force
check "init --force overwrites" test "$rc" -eq 0
check "init --force wrote the starter again" cmp -s gantry.yaml before.yaml
run init -f sub.yaml
check "init -f FILE writes FILE" test "$rc" -eq 0 -a -s sub.yaml

echo "1..$n"
if [ "$failed" -ne 0 ]; then
	echo "# $failed of $n failed" >&2
	exit 1
fi
exit 0
