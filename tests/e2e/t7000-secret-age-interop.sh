#!/bin/sh
test_description='age files both ways with the age CLI (Debian age 1.1): binary, armored, keys of either tool'
. "$(dirname "$0")/lib/test-lib.sh"
require_gantry
require_cmd age age-keygen cmp head

test_expect_success 'keys: gantry secret keygen and age-keygen, each recipient as the other tool derives it' '
	"$GANTRY" secret keygen -o g.key 2>keygen.err &&
	test "$(stat -c %a g.key)" = 600 &&
	grep -q "^AGE-SECRET-KEY-1" g.key &&
	GR=$(age-keygen -y g.key) &&
	grep -qx "# public key: $GR" g.key &&
	grep -qx "Public key: $GR" keygen.err &&
	age-keygen -o a.key 2>/dev/null &&
	AR=$(age-keygen -y a.key) &&
	echo "$GR" >g.rcp && echo "$AR" >a.rcp &&
	test_must_fail "$GANTRY" secret keygen -o g.key 2>exists.err &&
	grep -q "File exists" exists.err
'

# payloads: text, empty, exactly one chunk (64 KiB), one chunk and a byte, 1 MiB
test_expect_success 'payloads' '
	printf "hello, age\n" >p.txt &&
	: >p.empty &&
	head -c 65536 /dev/urandom >p.64k &&
	head -c 65537 /dev/urandom >p.64k1 &&
	head -c 1048576 /dev/urandom >p.1m
'

test_expect_success 'age decrypts what gantry encrypts (binary and armored, to both keys)' '
	for p in p.txt p.empty p.64k p.64k1 p.1m; do
		"$GANTRY" secret encrypt -r "$(cat a.rcp)" -r "$(cat g.rcp)" -o "$p.age" "$p" &&
		age -d -i a.key "$p.age" | cmp - "$p" &&
		age -d -i g.key "$p.age" | cmp - "$p" &&
		"$GANTRY" secret encrypt -a -r "$(cat a.rcp)" <"$p" >"$p.asc" &&
		head -n 1 "$p.asc" | grep -qx -- "-----BEGIN AGE ENCRYPTED FILE-----" &&
		age -d -i a.key "$p.asc" | cmp - "$p" || return 1
	done
'

test_expect_success 'gantry decrypts what age encrypts (binary and armored, its key and age-keygen'"'"'s)' '
	for p in p.txt p.empty p.64k p.64k1 p.1m; do
		age -e -r "$(cat g.rcp)" -r "$(cat a.rcp)" -o "$p.a.age" "$p" &&
		"$GANTRY" secret decrypt -i g.key "$p.a.age" | cmp - "$p" &&
		"$GANTRY" secret decrypt -i a.key -o "$p.out" "$p.a.age" && cmp "$p.out" "$p" &&
		age -e -a -r "$(cat g.rcp)" "$p" | "$GANTRY" secret decrypt -i g.key | cmp - "$p" || return 1
	done
'

test_expect_success 'the wrong key, a changed byte, a truncated file: refused with one line, nothing on stdout' '
	age-keygen -o other.key 2>/dev/null &&
	test_expect_code 1 "$GANTRY" secret decrypt -i other.key p.txt.a.age >out 2>err &&
	test ! -s out &&
	grep -qx "error: age: no identity matches any recipient" err &&
	cp p.1m.a.age t.age &&
	size=$(stat -c %s t.age) &&
	printf "\001" | dd of=t.age bs=1 seek=$((size - 70000)) conv=notrunc 2>/dev/null &&
	test_expect_code 1 "$GANTRY" secret decrypt -i g.key t.age >out 2>err &&
	test ! -s out &&
	grep -q "^error: age: payload corrupted at chunk" err &&
	head -c $((size - 65552)) p.1m.a.age >trunc.age &&
	test_expect_code 1 "$GANTRY" secret decrypt -i g.key trunc.age >out 2>err &&
	test ! -s out &&
	grep -q "^error: age: payload corrupted at chunk 14" err &&
	test "$(wc -l <err)" = 1
'

test_expect_success 'usage errors: no recipient, a bad recipient, no identity file' '
	test_expect_code 2 "$GANTRY" secret encrypt -a p.txt 2>err &&
	grep -q "at least one -r RECIPIENT" err &&
	test_expect_code 2 "$GANTRY" secret encrypt -a -r age1notarecipient p.txt 2>err &&
	grep -q "age1notarecipient" err &&
	test_expect_code 2 "$GANTRY" secret decrypt p.txt.a.age 2>err &&
	grep -q "\-i IDENTITY_FILE" err &&
	test_expect_code 2 "$GANTRY" secret decrypt -i missing.key p.txt.a.age 2>err &&
	grep -q "missing.key" err
'

test_expect_success 'figures: 1 MiB encrypt and decrypt, gantry and age (printed, not asserted)' '
	t0=$(_now_ms) && "$GANTRY" secret encrypt -r "$(cat g.rcp)" -o f.age p.1m && t1=$(_now_ms) &&
	"$GANTRY" secret decrypt -i g.key -o f.out f.age && t2=$(_now_ms) &&
	age -e -r "$(cat g.rcp)" -o f2.age p.1m && t3=$(_now_ms) &&
	age -d -i g.key -o f2.out f2.age && t4=$(_now_ms) &&
	say "1 MiB: gantry encrypt $((t1 - t0)) ms, decrypt $((t2 - t1)) ms; age encrypt $((t3 - t2)) ms, decrypt $((t4 - t3)) ms" >&7
'

test_done
