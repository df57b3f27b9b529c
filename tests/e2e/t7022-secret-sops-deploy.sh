#!/bin/sh
test_description='SOPS files at deploy: environments.E.secrets.file sent as ciphertext, decrypted by the controller, {sops: PATH} values reach the replica; refusals (plain file, no recipient for the controller, MAC failure, missing path) exit 2 naming the file and FILE:LINE:COL; rollback uses the same file'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

replica_pids() {
	gst >st.json &&
	python3 -c 'import json, sys; print(" ".join(str(r["pid"]) for r in json.load(open("st.json"))["replicas"] if r["revision"] == int(sys.argv[1])))' "$1"
}
env_of() {
	tr "\0" "\n" <"/proc/$1/environ" | sed -n "s/^$2=//p"
}
# a SOPS file of the plain YAML on stdin, to recipient $1, at $2 (the plain text never stays in a file)
sops_to() {
	cat >plain.yaml && "$GANTRY" secret sops-encrypt -r "$1" -o "$2" plain.yaml; rc=$?; rm -f plain.yaml; return $rc
}

# random values: only in shell variables of the test
V1=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
V2=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
K1=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")

test_expect_success 'setup: spec with environments.staging.secrets.file, daemon, the controller recipient' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging:
	    replicas: 1
	    secrets: { file: secrets/staging.sops.yaml }
	services:
	  hello:
	    artifact: app
	    run: exec ./hello
	    env:
	      GREETING: hi
	      DB_PASSWORD: { sops: db.password }
	    files:
	      api_key: { sops: api.key }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
	mkdir -p secrets &&
	start_serve &&
	"$GANTRY" secret recipient >ctl.rcp &&
	grep -q "^age1[a-z0-9]*$" ctl.rcp &&
	test "$(stat -c %a "$GANTRY_HOME/secrets/identity")" = 600
'

test_expect_success 'a plain (not encrypted) file is never sent: exit 2, nothing deployed' '
	printf "db:\n  password: %s\napi:\n  key: %s\n" "$V1" "$K1" >secrets/staging.sops.yaml &&
	test_expect_code 2 "$GANTRY" deploy hello --env staging --wait 2>err &&
	rm secrets/staging.sops.yaml &&
	cat err && grep "secrets/staging.sops.yaml is not encrypted" err &&
	ghist >h.json && jcheck h.json "d == []"
'

test_expect_success 'a file the controller is no recipient of: refused before anything starts, naming file and spec line' '
	"$GANTRY" secret keygen -o team.key 2>/dev/null &&
	team=$(sed -n "s/^# public key: //p" team.key) &&
	printf "db:\n  password: %s\napi:\n  key: %s\n" "$V1" "$K1" | sops_to "$team" secrets/staging.sops.yaml &&
	test_expect_code 2 "$GANTRY" deploy hello --env staging --wait 2>err &&
	cat err &&
	grep "gantry.yaml:[0-9]*:[0-9]*: error: services.hello..*{sops: .*}: secrets/staging.sops.yaml (environments.staging.secrets.file): sops: no age recipient of the file matches the identity; add the controller.s recipient" err &&
	grep -F "$(cat ctl.rcp)" err && grep "nothing was deployed" err &&
	ghist >h.json && jcheck h.json "d == []"
'

test_expect_success 'a tampered file (MAC failure): refused, exit 2' '
	printf "db:\n  password: %s\napi:\n  key: %s\n" "$V1" "$K1" | sops_to "$(cat ctl.rcp)" good.yaml &&
	python3 - good.yaml secrets/staging.sops.yaml <<-\EOF &&
	import re, sys
	t = open(sys.argv[1]).read()
	# lastmodified is covered by the MAC only: a changed date is a MAC failure
	t2 = re.sub(r"lastmodified: \"?([0-9-]+)T", lambda m: m.group(0).replace(m.group(1), "2001-01-01"), t, count=1)
	assert t2 != t
	open(sys.argv[2], "w").write(t2)
	EOF
	test_expect_code 2 "$GANTRY" deploy hello --env staging --wait 2>err &&
	cat err && grep "secrets/staging.sops.yaml (environments.staging.secrets.file): sops: MAC mismatch" err &&
	ghist >h.json && jcheck h.json "d == []"
'

test_expect_success 'a path missing in the file: refused at the reference position, exit 2' '
	printf "db:\n  password: %s\n" "$V1" | sops_to "$(cat ctl.rcp)" secrets/staging.sops.yaml &&
	test_expect_code 2 "$GANTRY" deploy hello --env staging --wait 2>err &&
	cat err &&
	grep "gantry.yaml:14:16: error: services.hello.files.api_key: secrets/staging.sops.yaml (environments.staging.secrets.file) has no value at .api.key." err &&
	ghist >h.json && jcheck h.json "d == []"
'

test_expect_success 'deploy: DB_PASSWORD in the environment, api_key as a private file; the revision names the file version' '
	cp good.yaml secrets/staging.sops.yaml &&
	"$GANTRY" deploy hello --env staging --wait &&
	pid=$(replica_pids 1) && test -n "$pid" &&
	test "$(env_of $pid DB_PASSWORD)" = "$V1" &&
	dir=$(env_of $pid GANTRY_SECRETS_DIR) &&
	test "$(cat "$dir/api_key")" = "$K1" &&
	sql "SELECT config FROM revisions WHERE number = 1" >cfg.json &&
	jcheck cfg.json "d[\"env\"][\"DB_PASSWORD\"] == {\"sops\": \"db.password\", \"version\": 1}
		and d[\"files\"][\"api_key\"] == {\"sops\": \"api.key\", \"version\": 1}" &&
	"$GANTRY" secret list --env staging -o json >l.json &&
	jcheck l.json "[(s[\"name\"], [v[\"version\"] for v in s[\"versions\"]]) for s in d] == [(\".sops\", [1])]"
'

test_expect_success 'the same file again pins the same version; nowhere but the replica holds a value' '
	"$GANTRY" restart hello --env staging --wait &&
	"$GANTRY" deploy hello --env staging --wait &&
	sql "SELECT config FROM revisions WHERE number = 3" >cfg.json &&
	jcheck cfg.json "d[\"env\"][\"DB_PASSWORD\"][\"version\"] == 1" &&
	ghist >h.json && "$GANTRY" deployments hello --env staging -o json >d.json &&
	"$GANTRY" audit -o json >a.json && "$GANTRY" events hello --env staging -o json >e.json &&
	for v in "$V1" "$K1"; do
		! grep -r -a -q "$v" "$TRASH" || { grep -r -a -l "$v" "$TRASH"; false; } || return 1
	done &&
	sql "SELECT request FROM deployments" >req.txt && ! grep -q "ENC\[" req.txt &&
	! grep -q "ENC\[" a.json
'

test_expect_success 'a new file makes version 2; rollback restores the value of the file its revision used' '
	printf "db:\n  password: %s\napi:\n  key: %s\n" "$V2" "$K1" | sops_to "$(cat ctl.rcp)" secrets/staging.sops.yaml &&
	"$GANTRY" deploy hello --env staging --wait &&
	pid=$(replica_pids 4) && test "$(env_of $pid DB_PASSWORD)" = "$V2" &&
	"$GANTRY" rollback hello --env staging --wait &&
	pid=$(replica_pids 5) && test -n "$pid" &&
	test "$(env_of $pid DB_PASSWORD)" = "$V1"
'

test_expect_success 'a stopped replica leaves no secret directory behind' '
	stop_serve &&
	! test -e /dev/shm/gantry-$(cat "$GANTRY_HOME/instance-id")
'

test_done
