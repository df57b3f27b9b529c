#!/bin/sh
test_description='tag hosts: rN---HOST reaches revision N only when the spec says tag_hosts: true'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# hcode HOST: the status code of GET / through the proxy with that Host
hcode() {
	curl -s -o /dev/null -w "%{http_code}" --max-time 5 -H "Host: $1" "http://127.0.0.1:$PROXY_PORT/"
}

spec() { # spec [tag_hosts line]
	write_app_spec <<-EOF
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    drain_timeout: 1s
	    progress_deadline: 30s
	    ${1:-}
	EOF
}

test_expect_success 'setup: v1 without tag_hosts' '
	spec &&
	start_serve &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v1 --wait &&
	test "$(pcode /)" = 200
'

test_expect_success 'by default r1---HOST answers as an unknown host does (404), and nothing names r1' '
	test "$(hcode "r1---$HOST")" = 404 &&
	test "$(hcode "nope---$HOST")" = 404 &&
	test "$(hcode "stable---$HOST")" = 404 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 -H "Host: $HOST" -H "X-Gantry-Tag: r1" \
		"http://127.0.0.1:$PROXY_PORT/")" = 404 &&
	jcheck "$GANTRY_HOME/routes.json" "all(\"tag_hosts\" not in r for r in d[\"routes\"])" &&
	jcheck "$GANTRY_HOME/routes.json" "not [t for r in d[\"routes\"] for v in r[\"revisions\"] for t in v[\"tags\"] if t.startswith(\"r\")]"
'

test_expect_success 'tag_hosts: true: r2---HOST reaches revision 2' '
	spec "tag_hosts: true" &&
	"$GANTRY" validate -f "$SPEC" &&
	"$GANTRY" -f "$SPEC" deploy hello --env staging --version v2 --wait &&
	test "$(hcode "r2---$HOST")" = 200 &&
	curl -s --max-time 5 -H "Host: r2---$HOST" "http://127.0.0.1:$PROXY_PORT/" | grep "hello from v2" &&
	test "$(hcode "r1---$HOST")" = 404 &&
	jcheck "$GANTRY_HOME/routes.json" "[r[\"tag_hosts\"] for r in d[\"routes\"]] == [True]"
'

test_expect_success 'tag_hosts must be a boolean' '
	spec "tag_hosts: sometimes" &&
	test_expect_code 2 "$GANTRY" validate -f "$SPEC" 2>err &&
	grep "tag_hosts" err
'

test_expect_success 'stop' '
	stop_serve
'

test_done
