#!/bin/sh
test_description='a tagged process the state store does not know is killed when serve starts'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# replicas carry GANTRY_TAG=<HOME/instance-id>, never HOME itself: the test
# makes the id before serve does (serve keeps an existing one)
TAG=0123456789abcdef0123456789abcdef

test_expect_success 'setup: a ghost replica (session leader, tagged with our home)' '
	echo $TAG >"$GANTRY_HOME/instance-id" &&
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 1s
	    drain_timeout: 500ms
	EOF
	spawn_bg ghost env GANTRY_TAG=$TAG GANTRY_REPLICA=ghost-1 sleep 300 &&
	ghost=$SPAWNED_PID &&
	wait_for 5 "tagged_pids | grep -qx $ghost" &&
	tr "\0" "\n" <"/proc/$ghost/environ" | grep -x GANTRY_REPLICA=ghost-1
'

test_expect_success 'an untagged process of another home is left alone' '
	# short-lived: the library only hunts processes tagged with our own home
	spawn_bg other env GANTRY_TAG=fedcba9876543210fedcba9876543210 GANTRY_REPLICA=ghost-2 sleep 30 &&
	other=$SPAWNED_PID
'

test_expect_success 'serve starts and kills the ghost' '
	start_serve &&
	wait_for 10 "! kill -0 $ghost" &&
	grep -i "ghost-1" serve.log
'

test_expect_success 'the process of another home still runs' '
	kill -0 $other &&
	kill $other
'

test_expect_success 'a deploy works, and nothing but its replica and the proxy remains' '
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	test "$(pcode /)" = 200 &&
	check_processes
'

# (its scratch directory lies under HOME, so the path is no secret: what
# protects HOME is its modes, t1500)
test_expect_success 'the replica carries the tag, not GANTRY_HOME' '
	pid=$(gst | python3 -c "import json,sys; print(json.load(sys.stdin)[\"replicas\"][0][\"pid\"])") &&
	tr "\0" "\n" <"/proc/$pid/environ" >renv &&
	grep -x "GANTRY_TAG=$TAG" renv &&
	! grep "^GANTRY_HOME=" renv
'

test_expect_success 'a ghost started while serve runs is killed at the next start' '
	spawn_bg ghost2 env GANTRY_TAG=$TAG GANTRY_REPLICA=ghost-3 sleep 300 &&
	ghost2=$SPAWNED_PID &&
	kill9_serve &&
	start_serve &&
	wait_for 10 "! kill -0 $ghost2" &&
	grep "orphan.*ghost-3" serve.log &&
	st_check "d[\"ready_replicas\"] == 1" &&
	check_processes
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
