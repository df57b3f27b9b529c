#!/bin/sh
test_description='every command has its usage line in docs/gantry.1.md, and -h prints it'
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

test_done
