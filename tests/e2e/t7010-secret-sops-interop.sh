#!/bin/sh
test_description='SOPS files: the npm sops-age decoder (node) reads what gantry writes; gantry reads what the real sops wrote'
. "$(dirname "$0")/lib/test-lib.sh"
require_gantry
require_cmd python3

FIX=$ROOT/tests/unit/secrets/fixtures

test_expect_success 'a key, and plain YAML and JSON documents' '
	"$GANTRY" secret keygen -o g.key 2>/dev/null &&
	"$GANTRY" secret keygen -o other.key 2>/dev/null &&
	sed -n "s/^# public key: //p" g.key >g.rcp &&
	sed -n "s/^# public key: //p" other.key >other.rcp &&
	cat >plain.yaml <<-\EOT &&
	db:
	    password: "hunter2: #1"
	    port: 5432
	    ratio: 0.25
	    tls: true
	    empty: ""
	    none: null
	    user_unencrypted: admin
	hosts:
	    - name: a
	      ip: 10.0.0.1
	    - b
	cert: |
	    -----BEGIN-----
	    abc
	zeta: last
	EOT
	cat >plain.json <<-\EOT
	{"db": {"password": "hunter2", "port": 5432, "ratio": 0.25, "tls": false, "none": null,
	        "user_unencrypted": "admin"}, "list": [1, "two", {"k": "v"}], "u": "\u00e9\"q\""}
	EOT
'

test_expect_success 'gantry: plain -> SOPS -> plain, to two recipients, each of which decrypts' '
	for f in plain.yaml plain.json; do
		"$GANTRY" secret sops-encrypt -r "$(cat g.rcp)" -r "$(cat other.rcp)" -o "enc.$f" "$f" &&
		test "$(stat -c %a "enc.$f")" = 600 &&
		! grep -q hunter2 "enc.$f" &&
		grep -q admin "enc.$f" &&
		"$GANTRY" secret sops-decrypt -i g.key "enc.$f" >"dec.$f" &&
		"$GANTRY" secret sops-decrypt -i other.key "enc.$f" >"dec2.$f" &&
		test_cmp "dec.$f" "dec2.$f" || return 1
	done &&
	python3 -c "import json,sys; a=json.load(open(\"plain.json\")); b=json.load(open(\"dec.plain.json\")); sys.exit(a!=b)" &&
	test "$("$GANTRY" secret sops-decrypt -i g.key --extract db.password enc.plain.yaml)" = "hunter2: #1" &&
	test "$("$GANTRY" secret sops-decrypt -i g.key --extract hosts.0.ip enc.plain.yaml)" = "10.0.0.1"
'

test_expect_success 'a value changed by hand: MAC mismatch, exit 1, nothing on stdout; the wrong key' '
	sed "s/user_unencrypted: admin/user_unencrypted: root/" enc.plain.yaml >tampered.yaml &&
	test_expect_code 1 "$GANTRY" secret sops-decrypt -i g.key tampered.yaml >out 2>err &&
	test ! -s out &&
	grep -qx "error: tampered.yaml: sops: MAC mismatch: the file was changed after it was encrypted" err &&
	"$GANTRY" secret keygen -o third.key 2>/dev/null &&
	test_expect_code 1 "$GANTRY" secret sops-decrypt -i third.key enc.plain.yaml >out 2>err &&
	grep -q "no age recipient of the file matches" err
'

test_expect_success 'gantry decrypts the files the real sops wrote (3.8.1 YAML, 3.9.2 JSON), MAC checked' '
	"$GANTRY" secret sops-decrypt -i "$FIX/sops-age-key.txt" "$FIX/sops-age-secret.enc.yaml" >real.yaml &&
	grep -qx "secret: this is a secret" real.yaml &&
	grep -qx "boolean: true" real.yaml &&
	"$GANTRY" secret sops-decrypt -i "$FIX/sops-age-key.txt" -o real.json "$FIX/sops-age-secret.enc.json" &&
	python3 -c "import json,sys; a=json.load(open(\"$FIX/sops-age-secret.json\")); b=json.load(open(\"real.json\")); sys.exit(a!=b)"
'

# the independent decoder: npm sops-age, installed here (never a global install)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	test_skip "sops-age (node) decrypts gantry's SOPS files" "node or npm missing"
elif ! npm install --no-audit --no-fund --prefix "$TRASH/node" sops-age >npm.log 2>&1; then
	test_skip "sops-age (node) decrypts gantry's SOPS files" "npm install sops-age failed: $(tail -n 1 npm.log)"
else
	test_expect_success "sops-age $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$TRASH/node/node_modules/sops-age/package.json") (node) decrypts gantry's SOPS files, YAML and JSON, to the same values" '
		cat >dec.cjs <<-\EOT &&
		const { decryptSops } = require(process.argv[2]);
		const fs = require("fs");
		decryptSops(fs.readFileSync(process.argv[3], "utf8"), { secretKey: process.argv[4], fileType: process.argv[5] })
			.then((v) => console.log(JSON.stringify(v)))
			.catch((e) => { console.error("sops-age: " + e.message); process.exit(1); });
		EOT
		key=$(grep "^AGE-SECRET-KEY-1" g.key) &&
		node dec.cjs "$TRASH/node/node_modules/sops-age" enc.plain.yaml "$key" yaml >node.yaml.json &&
		node dec.cjs "$TRASH/node/node_modules/sops-age" enc.plain.json "$key" json >node.json.json &&
		"$GANTRY" secret sops-decrypt -i g.key enc.plain.json >gantry.json &&
		python3 - <<-\EOT
		import json, sys
		y = json.load(open("node.yaml.json"))
		want = {"db": {"password": "hunter2: #1", "port": 5432, "ratio": 0.25, "tls": True, "empty": "",
		               "none": None, "user_unencrypted": "admin"},
		        "hosts": [{"name": "a", "ip": "10.0.0.1"}, "b"], "cert": "-----BEGIN-----\nabc\n", "zeta": "last"}
		if y != want:
		    sys.exit("yaml: sops-age gave %r" % y)
		if list(y) != list(want) or list(y["db"]) != list(want["db"]):
		    sys.exit("yaml: key order differs: %r" % list(y))
		j, g, p = json.load(open("node.json.json")), json.load(open("gantry.json")), json.load(open("plain.json"))
		if not (j == g == p):
		    sys.exit("json: sops-age %r, gantry %r, plain %r" % (j, g, p))
		EOT
	'
fi
test_skip "gantry decrypts a file sops-age encrypted" "sops-age only decrypts (its API has no encrypt); the real sops's files above stand in"

test_done
