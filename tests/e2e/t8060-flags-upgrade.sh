#!/bin/sh
test_description='gantry upgrade with --flags-listen: the new controller takes the flags port over once the old one exits; replicas keep evaluating through it'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# serve runs the binary at $BIN (a copy): the upgrade puts another file there by rename
mkdir -p "$TRASH/bin"
BIN=$TRASH/bin/gantry
cp "$GANTRY" "$BIN"
REAL=$GANTRY
FLAGS_PORT=$(free_port)
FL=http://127.0.0.1:$FLAGS_PORT

serve_now() {
	cat "$GANTRY_HOME/serve.lock"
}

ofrep_code() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H "Authorization: Bearer $(cat staging.token)" \
		-d '{"context":{"targetingKey":"u"}}' "$FL/flags/staging/ofrep/v1/evaluate/flags/risky"
}

test_expect_success 'setup: serve --flags-listen, a replica that fails while risky is on' '
	write_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    run: ./hello
	    env: { FAIL_WHEN_FLAG: risky }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	flags:
	  risky:
	    default: off
	EOF
	GANTRY=$BIN &&
	start_serve --flags-listen "127.0.0.1:$FLAGS_PORT" &&
	"$GANTRY" deploy hello --env staging --version v1 --wait >/dev/null &&
	"$GANTRY" flag token --env staging >staging.token &&
	test "$(ofrep_code)" = 200
'

test_expect_success 'gantry upgrade: the new controller listens on the flags port once the old one is gone' '
	old=$(serve_now) &&
	cp "$REAL" "$BIN.new" && mv "$BIN.new" "$BIN" &&
	"$GANTRY" upgrade >up.out &&
	cat up.out &&
	test "$(serve_now)" != "$old" &&
	wait_for 10 "grep -q \"listen=127.0.0.1:$FLAGS_PORT taken over after\" serve.log" &&
	grep "listen=127.0.0.1:$FLAGS_PORT in use (the controller before this one)" serve.log &&
	echo "figure: $(grep -o "taken over after [0-9]* ms" serve.log)" &&
	test "$(ofrep_code)" = 200
'

test_expect_success 'the replica evaluates through the new controller: a flip is seen' '
	"$GANTRY" flag set risky on --env staging >/dev/null &&
	wait_for 10 "test \"\$(pcode /)\" = 500" &&
	"$GANTRY" flag set risky off --env staging >/dev/null &&
	wait_for 10 "test \"\$(pcode /)\" = 200"
'

test_expect_success 'the new controller stops on SIGTERM' '
	pid=$(serve_now) &&
	kill -TERM "$pid" &&
	wait_for 30 "! kill -0 $pid 2>/dev/null" &&
	sanitizer_clean "$TRASH/serve.log"
'

test_done
