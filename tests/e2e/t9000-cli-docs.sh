#!/bin/sh
test_description='every command has its usage line and each option -h lists in docs/gantry.1.md'
. "$(dirname "$0")/lib/test-lib.sh"
require_gantry

test_expect_success 'each command in gantry --help is documented with its exact usage line' '
	"$GANTRY" --help >help &&
	sed -n "s/^  \([a-z]*\) .*/\1/p" help >commands &&
	test -s commands &&
	missing=0 &&
	for c in $(cat commands); do
		"$GANTRY" "$c" -h >usage 2>&1 || { echo "$c -h failed"; missing=1; continue; }
		line=$(sed -n "1s/^usage: //p" usage)
		if ! grep -qF "    $line" "$ROOT/docs/gantry.1.md"; then
			echo "docs/gantry.1.md lacks: $line"
			missing=1
		fi
	done &&
	test $missing = 0
'

test_expect_success 'each option a command lists with -h is in its section of docs/gantry.1.md' '
	missing=0 &&
	for c in $(cat commands); do
		"$GANTRY" "$c" --help >usage &&
		sed -n "/^options:/,/^\$/p" usage | grep -o -- "--[a-z][a-z-]*" | sort -u >flags &&
		awk -v h="### $c" "\$0 == h { p = 1; next } /^### / { p = 0 } p" "$ROOT/docs/gantry.1.md" >section &&
		test -s section || { echo "docs/gantry.1.md has no section for $c"; missing=1; continue; }
		for f in $(cat flags); do
			grep -qF -- "$f" section || { echo "docs/gantry.1.md, $c: lacks $f"; missing=1; }
		done
	done &&
	test $missing = 0
'

test_expect_success '-h lists the options and the global flags' '
	"$GANTRY" deploy -h >usage &&
	grep -- "^  -e, --env ENV " usage &&
	grep -- "^  -w, --wait " usage &&
	grep -- "^      --timeout DUR " usage &&
	grep -- "^  -f, --file FILE " usage &&
	"$GANTRY" events --help >usage &&
	grep -- "^  -f, --follow " usage &&
	grep -- "^      --file FILE " usage
'

test_done
