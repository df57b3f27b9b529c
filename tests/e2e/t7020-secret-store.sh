#!/bin/sh
test_description='gantry secret: set/list/get/rm/rotate with roles; env and file secrets reach the replica; a missing one refuses the deploy at FILE:LINE:COL; rollback restores the old version'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# the value a replica sees: its environment variable, from /proc (the test runs as root or as the replicas' user)
replica_pids() {
	gst >st.json &&
	python3 -c 'import json, sys; print(" ".join(str(r["pid"]) for r in json.load(open("st.json"))["replicas"] if r["revision"] == int(sys.argv[1])))' "$1"
}
env_of() {
	tr "\0" "\n" <"/proc/$1/environ" | sed -n "s/^$2=//p"
}

# a team's own age key, a recipient of the environment's secrets (Debian's age, when installed)
HAVE_AGE=
if command -v age >/dev/null && command -v age-keygen >/dev/null; then
	HAVE_AGE=1
	age-keygen -o "$TRASH/team.key" 2>/dev/null
	TEAM=$(sed -n "s/^# public key: //p" "$TRASH/team.key")
	RECIPIENTS=", secrets: { recipients: [$TEAM] }"
fi

test_expect_success 'setup: spec, daemon' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1$RECIPIENTS }
	services:
	  hello:
	    artifact: app
	    run: exec ./hello
	    env:
	      GREETING: hi
	      DB_PASSWORD: { secret: db_password }
	    files:
	      api_key: { secret: api_key }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
	start_serve
'

test_expect_success 'a secret referenced but missing: the deploy is refused at FILE:LINE:COL, exit 2, nothing deployed' '
	test_expect_code 2 "$GANTRY" deploy hello --env staging --wait 2>err &&
	cat err &&
	grep "gantry.yaml:10:20: error: services.hello.env.DB_PASSWORD: secret .db_password. does not exist in environment .staging." err &&
	ghist >h.json &&
	jcheck h.json "d == []"
'

test_expect_success 'set: from stdin and --from-file, never --value; list shows names and versions, no value' '
	printf "s3cret-one\n" | "$GANTRY" secret set db_password --env staging &&
	printf "key-AAA" >key.txt &&
	"$GANTRY" secret set api_key --env staging --from-file key.txt &&
	test_expect_code 2 "$GANTRY" secret set x --env staging --value oops 2>err &&
	grep "never given on the command line" err &&
	"$GANTRY" secret list --env staging -o json >l.json &&
	jcheck l.json "[(s[\"name\"], s[\"version\"]) for s in d] == [(\"api_key\", 1), (\"db_password\", 1)]" &&
	! grep -q "s3cret-one" l.json &&
	"$GANTRY" secret list >l.txt && grep "db_password" l.txt
'

test_expect_success 'the store holds age files: never the value in plain text; the identity is 0600' '
	! grep -r -a -q "s3cret-one" "$GANTRY_HOME" &&
	test "$(stat -c %a "$GANTRY_HOME/secrets/identity")" = 600 &&
	test "$(stat -c %a "$GANTRY_HOME/secrets")" = 700 &&
	python3 -c "import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for (ct,) in c.execute(\"SELECT ciphertext FROM secrets\"):
    assert bytes(ct).startswith(b\"age-encryption.org/v1\n\"), ct[:30]" "$GANTRY_HOME/state.db"
'

if test -n "$HAVE_AGE"; then
test_expect_success 'an exported version decrypts with age -d -i: the team key and the controller identity' '
	python3 -c "import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
sys.stdout.buffer.write(c.execute(\"SELECT ciphertext FROM secrets WHERE name = '"'"'db_password'"'"' AND version = 1\").fetchone()[0])" \
		"$GANTRY_HOME/state.db" >db_password.age &&
	test "$(age -d -i team.key db_password.age)" = s3cret-one &&
	test "$(age -d -i "$GANTRY_HOME/secrets/identity" db_password.age)" = s3cret-one &&
	age-keygen -o other.key 2>/dev/null && ! age -d -i other.key db_password.age 2>/dev/null
'
else
test_skip 'an exported version decrypts with age -d -i' 'no age CLI (scripts/install-deps.sh installs it)'
fi

test_expect_success 'deploy: the replica gets DB_PASSWORD in its environment and api_key as a private file' '
	"$GANTRY" deploy hello --env staging --wait &&
	pid=$(replica_pids 1) && test -n "$pid" &&
	test "$(env_of $pid DB_PASSWORD)" = s3cret-one &&
	test "$(env_of $pid GREETING)" = hi &&
	dir=$(env_of $pid GANTRY_SECRETS_DIR) &&
	case "$dir" in /dev/shm/*) ;; *) false ;; esac &&
	test "$(cat "$dir/api_key")" = key-AAA &&
	test "$(stat -c %a "$dir")" = 700 &&
	test "$(stat -c %U "$dir")" = "$(stat -c %U /proc/$pid)"
'

test_expect_success 'the revision records {secret, version}, never the value' '
	ghist >h.json &&
	! grep -q "s3cret-one" h.json &&
	sql "SELECT config FROM revisions WHERE number = 1" >cfg.json &&
	jcheck cfg.json "d[\"env\"][\"DB_PASSWORD\"] == {\"secret\": \"db_password\", \"version\": 1}
		and d[\"files\"][\"api_key\"] == {\"secret\": \"api_key\", \"version\": 1}"
'

test_expect_success 'rotate makes version 2; a deploy pins it; rollback restores version 1' '
	printf "s3cret-two" | "$GANTRY" secret rotate db_password --env staging -o json >r.json &&
	jcheck r.json "d[\"version\"] == 2" &&
	"$GANTRY" deploy hello --env staging --wait &&
	pid=$(replica_pids 2) && test "$(env_of $pid DB_PASSWORD)" = s3cret-two &&
	"$GANTRY" rollback hello --env staging --wait &&
	pid=$(replica_pids 3) && test -n "$pid" &&
	test "$(env_of $pid DB_PASSWORD)" = s3cret-one
'

test_expect_success 'roles: a deployer sets and rotates but cannot get; an admin gets (audited, without the value)' '
	"$GANTRY" user add dan --role deployer >dan.token &&
	printf "v3" | GANTRY_TOKEN=$(cat dan.token) "$GANTRY" secret rotate db_password --env staging &&
	GANTRY_TOKEN=$(cat dan.token) test_expect_code 3 "$GANTRY" secret get db_password --env staging >out 2>err &&
	grep "permission denied" err && ! test -s out &&
	test "$("$GANTRY" secret get db_password --env staging)" = v3 &&
	test "$("$GANTRY" secret get db_password --env staging --version 1)" = s3cret-one &&
	"$GANTRY" audit -o json >a.json &&
	jcheck a.json "[e[\"details\"][\"name\"] for e in d if e[\"action\"] == \"secret_get\"] == [\"db_password\", \"db_password\"]" &&
	! grep -q -e s3cret -e "\"v3\"" a.json
'

test_expect_success 'versions no kept revision uses are pruned; rm keeps what revisions use' '
	"$GANTRY" secret list --env staging -o json >l.json &&
	jcheck l.json "[v[\"version\"] for v in [s for s in d if s[\"name\"] == \"db_password\"][0][\"versions\"]] == [1, 2, 3]" &&
	printf "v4" | "$GANTRY" secret rotate db_password --env staging &&
	"$GANTRY" secret list --env staging -o json >l.json &&
	jcheck l.json "[v[\"version\"] for v in [s for s in d if s[\"name\"] == \"db_password\"][0][\"versions\"]] == [1, 2, 4]" &&
	"$GANTRY" secret rm api_key --env staging >out && cat out && grep "kept" out &&
	test_expect_code 2 "$GANTRY" deploy hello --env staging 2>err && grep "secret .api_key. does not exist" err &&
	"$GANTRY" restart hello --env staging --wait &&
	pid=$(replica_pids 4) && dir=$(env_of $pid GANTRY_SECRETS_DIR) && test "$(cat "$dir/api_key")" = key-AAA
'

test_expect_success 'a stopped replica leaves no secret directory behind' '
	stop_serve &&
	! test -e /dev/shm/gantry-$(cat "$GANTRY_HOME/instance-id")
'

test_expect_success 'secret edit: SOPS file decrypted to a private temp file, $EDITOR, encrypted again; a bad edit changes nothing' '
	"$GANTRY" secret keygen -o id.txt 2>/dev/null &&
	r=$(sed -n "s/^# public key: //p" id.txt) &&
	printf "db:\n  password: one\nuser: bob\n" >plain.yaml &&
	"$GANTRY" secret sops-encrypt -r "$r" -o s.sops.yaml plain.yaml &&
	rm plain.yaml &&
	cat >ed.sh <<-\EOF &&
	#!/bin/sh
	case "$1" in /dev/shm/gantry-edit.*|/tmp/gantry-edit.*) ;; *) exit 9 ;; esac
	test "$(stat -c %a "$(dirname "$1")")" = 700 || exit 8
	echo "$1" >editor-saw
	sed -i "s/one/two/" "$1"
	EOF
	chmod +x ed.sh &&
	EDITOR=$TRASH/ed.sh "$GANTRY" secret edit s.sops.yaml -i id.txt &&
	! grep -q "two" s.sops.yaml &&
	"$GANTRY" secret sops-decrypt -i id.txt s.sops.yaml >out.yaml &&
	grep "password: two" out.yaml && grep "user: bob" out.yaml &&
	! test -e "$(cat editor-saw)" &&
	cp s.sops.yaml before.yaml &&
	printf "#!/bin/sh\nprintf \"db: [\" >\"\$1\"\n" >bad.sh && chmod +x bad.sh &&
	EDITOR=$TRASH/bad.sh test_expect_code 1 "$GANTRY" secret edit s.sops.yaml -i id.txt 2>err &&
	cat err && grep "left unchanged" err &&
	cmp s.sops.yaml before.yaml
'

test_done
