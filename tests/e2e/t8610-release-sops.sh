#!/bin/sh
test_description='a release carries the environment SOPS file as a deploy does: decrypted by the controller, {sops: PATH} values reach every service of the release; a bad file refuses the release; no value in the record or the audit'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# the value of $2 in the environment of the ready replica of service $1 (staging)
env_of_svc() {
	"$GANTRY" status "$1" --env staging -o json >st.json &&
	pid=$(python3 -c "import json; print([r[\"pid\"] for r in json.load(open(\"st.json\"))[\"replicas\"] if r[\"ready\"]][0])") &&
	tr "\0" "\n" <"/proc/$pid/environ" | sed -n "s/^$2=//p"
}
# a SOPS file of the plain YAML on stdin, to recipient $1, at $2 (the plain text never stays in a file)
sops_to() {
	cat >plain.yaml && "$GANTRY" secret sops-encrypt -r "$1" -o "$2" plain.yaml; rc=$?; rm -f plain.yaml; return $rc
}

V1=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
V2=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")

test_expect_success 'setup: a → b, both read db.password from the SOPS file of staging' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging:
	    secrets: { file: secrets/staging.sops.yaml }
	services:
	  a:
	    artifact: app
	    run: exec ./hello
	    env: { DB_PASSWORD: { sops: db.password } }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	  b:
	    artifact: app
	    run: exec ./hello
	    depends_on: [a]
	    env: { DB_PASSWORD: { sops: db.password } }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
	mkdir -p secrets &&
	start_serve &&
	"$GANTRY" secret recipient >ctl.rcp
'

test_expect_success 'a file the controller cannot decrypt refuses the release (exit 2): nothing recorded' '
	"$GANTRY" secret keygen -o team.key 2>/dev/null &&
	team=$(sed -n "s/^# public key: //p" team.key) &&
	printf "db:\n  password: %s\n" "$V1" | sops_to "$team" secrets/staging.sops.yaml &&
	test_expect_code 2 "$GANTRY" release --env staging --wait 2>err &&
	cat err &&
	grep "secrets/staging.sops.yaml (environments.staging.secrets.file): sops: no age recipient" err &&
	"$GANTRY" release history --env staging -o json >h.json &&
	jcheck h.json "d == []"
'

test_expect_success 'the release sends the file: a and b run with the value' '
	printf "db:\n  password: %s\n" "$V1" | sops_to "$(cat ctl.rcp)" secrets/staging.sops.yaml &&
	"$GANTRY" release --env staging --wait >out &&
	cat out &&
	test "$(env_of_svc a DB_PASSWORD)" = "$V1" &&
	test "$(env_of_svc b DB_PASSWORD)" = "$V1"
'

test_expect_success 'the same file again: nothing to release' '
	test_expect_code 2 "$GANTRY" release --env staging 2>err &&
	grep "nothing to release" err
'

test_expect_success 'a new value in the file: both services change, in order, with the new value' '
	printf "db:\n  password: %s\n" "$V2" | sops_to "$(cat ctl.rcp)" secrets/staging.sops.yaml &&
	"$GANTRY" release --env staging --wait >out &&
	"$GANTRY" release status --env staging -o json >r.json &&
	jcheck r.json "[(s[\"service\"], s[\"state\"], s[\"revision\"]) for s in d[\"services\"]] == [(\"a\", \"succeeded\", 2), (\"b\", \"succeeded\", 2)]" &&
	test "$(env_of_svc a DB_PASSWORD)" = "$V2" &&
	test "$(env_of_svc b DB_PASSWORD)" = "$V2"
'

test_expect_success 'no value in the release records, the audit, the events or the log' '
	"$GANTRY" release history --env staging -o json >h.json &&
	"$GANTRY" audit -o json >audit.json &&
	"$GANTRY" events --env staging -o json >ev.json &&
	"$GANTRY" deployments -o json >d.json &&
	for f in h.json audit.json ev.json d.json serve.log; do
		! grep -q "$V1" $f && ! grep -q "$V2" $f || { echo "a value in $f"; return 1; }
	done
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_done
