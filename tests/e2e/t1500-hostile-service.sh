#!/bin/sh
test_description='a hostile service cannot reach the controller: not its state, socket, logs or keys, not its own or another service'"'"'s artifact, not another service'"'"'s scratch; workloads, exec probes and checks get a clean environment'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid sqlite3 stat
require_gantry

if [ "$(id -u)" != 0 ]; then
	skip_all "needs root: as another user gantry serve cannot switch users (workloads then run as it, documented)"
fi

SVC=evil
ENV=staging
HOST=evil.staging.localhost

# evil/attack.sh: one line per attempt to reach what is not its own; every
# ATTEMPT must be denied. CONTROL lines are what it may do (its scratch).
test_expect_success 'setup: a victim, a hostile service, a check that snoops; serve with a canary variable' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	services:
	  victim:
	    artifact: app
	    user: "65534"
	    run: echo s3cret >"\$TMPDIR/secret" && exec ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 1s
	    drain_timeout: 200ms
	  evil:
	    artifact: evil
	    run: exec sh ./attack.sh
	    env: { GREETING: declared-hi, REAL_HOME: "$GANTRY_HOME" }
	    probes:
	      readiness: { exec: sh ./probe.sh, period: 100ms }
	    stop_grace: 1s
	    drain_timeout: 200ms
	  checker:
	    artifact: app
	    run: exec ./hello
	    checks:
	      pre:
	        - run: echo "CHECK-UID \$(id -u)"; env | sed "s/^/CENV /"; if cat ../../state.db >/dev/null 2>&1; then echo CHECK-STATE-READ; fi; if touch ./pwned 2>/dev/null; then echo CHECK-ARTIFACT-WRITTEN; fi; exit 1
	EOF
	mkdir -p evil &&
	cp app/hello evil/hello &&
	cat >evil/attack.sh <<-\EOF &&
	#!/bin/sh
	try() {
		name=$1
		shift
		if "$@" >/dev/null 2>&1; then echo "ATTEMPT $name: SUCCEEDED"; else echo "ATTEMPT $name: denied"; fi
	}
	echo "WHOAMI $(id -u)"
	env | sed "s/^/ENV /"
	try gantry-home-set test -n "$GANTRY_HOME"
	try list-home ls "$REAL_HOME"
	try read-state cat "$REAL_HOME/state.db"
	try read-state-relative cat ../../state.db
	try write-state sh -c "echo x >>\"$REAL_HOME/state.db\""
	try sqlite-insert-admin sqlite3 "$REAL_HOME/state.db" "create table pwned(x); insert into pwned values(1)"
	try api-socket python3 -c "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$REAL_HOME/api.sock"
	try read-instance-id cat "$REAL_HOME/instance-id"
	try list-logs ls "$REAL_HOME/logs"
	try read-routes cat "$REAL_HOME/routes.json"
	try write-own-artifact touch ./pwned
	try modify-own-binary sh -c "echo x >>./hello"
	try chmod-own-artifact chmod u+w .
	try write-victim-artifact touch "$VICTIM_ART/pwned"
	try read-victim-scratch cat "$VICTIM_SCRATCH/secret"
	try list-victim-scratch ls "$VICTIM_SCRATCH"
	try list-scratch-root ls "$REAL_HOME/scratch"
	try list-artifacts ls "$REAL_HOME/artifacts"
	if echo mine >"$TMPDIR/mine" && test "$HOME" = "$TMPDIR" && test "$GANTRY_SCRATCH" = "$TMPDIR"; then
		echo "CONTROL write-scratch: ok"
	fi
	echo "ATTACK DONE"
	exec ./hello
	EOF
	cat >evil/probe.sh <<-\EOF &&
	#!/bin/sh
	{
		echo "PROBE-UID $(id -u)"
		env | sed "s/^/PENV /"
		if cat ../../state.db >/dev/null 2>&1; then echo PROBE-STATE-READ; fi
		cat /proc/self/cgroup | sed "s/^/PCG /"
	} >"$TMPDIR/probe.tmp" 2>&1
	# whole files only: the probe runs every 100ms while the test reads
	mv "$TMPDIR/probe.tmp" "$TMPDIR/probe.out"
	exit 0
	EOF
	FOO_CANARY=leak-me &&
	export FOO_CANARY &&
	start_serve &&
	unset FOO_CANARY &&
	"$GANTRY" deploy victim --env staging --version v1 --wait
'

test_expect_success 'HOME is 0711, the state 0600/0700 and the controller'"'"'s; artifacts read-only' '
	test "$(stat -c %a "$GANTRY_HOME")" = 711 &&
	test "$(stat -c %a "$GANTRY_HOME/state.db")" = 600 &&
	test "$(stat -c %a "$GANTRY_HOME/api.sock")" = 600 &&
	test "$(stat -c %a "$GANTRY_HOME/instance-id")" = 600 &&
	test "$(stat -c %a "$GANTRY_HOME/logs")" = 700 &&
	test "$(stat -c %a "$GANTRY_HOME/artifacts")" = 711 &&
	test "$(stat -c %a "$GANTRY_HOME/scratch")" = 711 &&
	for f in "$GANTRY_HOME"/state.db* "$GANTRY_HOME"/routes.json; do
		test -e "$f" || continue
		m=$(stat -c %a "$f") && test "${m#?}" = 00 || { echo "$f is $m"; return 1; }
	done &&
	test -z "$(find "$GANTRY_HOME/artifacts" -mindepth 1 -perm /222 ! -type l)" &&
	test -z "$(find "$GANTRY_HOME/artifacts" ! -user 0)"
'

test_expect_success 'the victim runs as its user, with a private scratch directory' '
	"$GANTRY" status victim --env staging -o json >v.json &&
	vpid=$(python3 -c "import json; print(json.load(open(\"v.json\"))[\"replicas\"][0][\"pid\"])") &&
	vid=$(python3 -c "import json; print(json.load(open(\"v.json\"))[\"replicas\"][0][\"id\"])") &&
	test "$(stat -c %u /proc/$vpid)" = 65534 &&
	VICTIM_ART=$(readlink /proc/$vpid/cwd) &&
	VICTIM_SCRATCH=$GANTRY_HOME/scratch/$vid &&
	case "$VICTIM_ART" in "$GANTRY_HOME"/artifacts/*) ;; *) false ;; esac &&
	test "$(stat -c %u:%a "$VICTIM_SCRATCH")" = 65534:700 &&
	grep -x s3cret "$VICTIM_SCRATCH/secret" &&
	echo "$VICTIM_ART" >victim-art &&
	echo "$VICTIM_SCRATCH" >victim-scratch &&
	"$GANTRY" user list >users-before &&
	"$GANTRY" audit verify
'

test_expect_success 'deploy the hostile service; it tries everything' '
	"$GANTRY" deploy evil --env staging --version v1 --wait \
		--set "env.VICTIM_ART=$(cat victim-art)" --set "env.VICTIM_SCRATCH=$(cat victim-scratch)" &&
	wait_for 10 "\"$GANTRY\" logs evil --env staging >evil.log 2>&1 && grep -q \"ATTACK DONE\" evil.log" &&
	cat evil.log
'

test_expect_success 'every attempt failed, and the service could use its scratch' '
	grep "^ATTEMPT" evil.log >attempts &&
	test "$(wc -l <attempts)" -ge 18 &&
	! grep -v ": denied$" attempts &&
	grep -x "CONTROL write-scratch: ok" evil.log &&
	! grep -x "WHOAMI 0" evil.log
'

test_expect_success 'nothing changed: users, audit chain, state, artifacts' '
	"$GANTRY" user list >users-after &&
	test_cmp users-before users-after &&
	"$GANTRY" audit verify &&
	test -z "$(sqlite3 "$GANTRY_HOME/state.db" "select name from sqlite_master where name = '"'"'pwned'"'"'")" &&
	! test -e "$(cat victim-art)/pwned" &&
	test -z "$(find "$GANTRY_HOME/artifacts" -name pwned)" &&
	cmp "$(cat victim-art)/hello" app/hello
'

test_expect_success 'the canary and GANTRY_HOME never reach a replica; the declared env and PORT do' '
	! grep "leak-me" evil.log &&
	! grep "^ENV GANTRY_HOME=" evil.log &&
	grep -x "ENV GREETING=declared-hi" evil.log &&
	grep "^ENV PORT=[0-9][0-9]*$" evil.log &&
	grep -x "ENV PATH=/usr/local/bin:/usr/bin:/bin" evil.log &&
	grep "^ENV GANTRY_REPLICA=evil-staging-1-" evil.log &&
	grep -x "ENV GANTRY_SERVICE=evil" evil.log &&
	grep "^ENV GANTRY_TAG=$(cat "$GANTRY_HOME/instance-id")$" evil.log &&
	# nothing else: the declared keys, the documented ones, and what sh sets
	sed -n "s/^ENV \([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p" evil.log | sort >keys &&
	! grep -vxE "GREETING|REAL_HOME|VICTIM_ART|VICTIM_SCRATCH|PORT|PATH|HOME|TMPDIR|LANG|PWD|SHLVL|OLDPWD|_|GANTRY_(TAG|REPLICA|SERVICE|ENVIRONMENT|REVISION|VERSION|SCRATCH)" keys
'

test_expect_success 'exec probes: the workload user, a clean environment, the replica'"'"'s cgroup' '
	gst >e.json &&
	eid=$(python3 -c "import json; print(json.load(open(\"e.json\"))[\"replicas\"][0][\"id\"])") &&
	wait_for 5 "test -s \"$GANTRY_HOME/scratch/$eid/probe.out\"" &&
	cp "$GANTRY_HOME/scratch/$eid/probe.out" probe.out &&
	out=probe.out &&
	cat "$out" &&
	grep -x "PROBE-UID $(id -u gantry-run)" "$out" &&
	! grep -x PROBE-STATE-READ "$out" &&
	! grep "leak-me" "$out" &&
	! grep "^PENV GANTRY_HOME=" "$out" &&
	grep -x "PENV GREETING=declared-hi" "$out" &&
	if grep -q "sys=runtime cgroups=v" serve.log && ! grep -q "cgroups unavailable" serve.log; then
		grep "^PCG .*gantry/$eid" "$out"
	fi
'

test_expect_success 'run checks: the workload user, a clean environment, no state, no artifact writes' '
	test_expect_code 3 "$GANTRY" deploy checker --env staging --version v1 2>check.err &&
	cat check.err &&
	grep "CHECK-UID $(id -u gantry-run)" check.err &&
	! grep -x CHECK-STATE-READ check.err &&
	! grep -x CHECK-ARTIFACT-WRITTEN check.err &&
	! grep "leak-me" check.err &&
	! grep "CENV GANTRY_HOME=" check.err &&
	grep "CENV PATH=/usr/local/bin:/usr/bin:/bin" check.err
'

test_expect_success 'a removed replica takes its scratch directory with it' '
	vs=$(cat victim-scratch) &&
	test -d "$vs" &&
	"$GANTRY" scale victim --env staging --replicas 0 &&
	wait_for 10 "! test -e \"$vs\""
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
