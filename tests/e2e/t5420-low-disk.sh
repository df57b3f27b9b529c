#!/bin/sh
test_description='low disk: HOME on a 64 MiB tmpfs filled below the 5% threshold: gantry status warns, one disk_low event, webhook and log line per crossing (hysteresis: 5.5% free stays low); freed: disk_ok, the warning goes; a size threshold, low at start'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid fallocate truncate mount umount
require_gantry

[ "$(id -u)" = 0 ] || skip_all "mounting a tmpfs as HOME needs root"
mount -t tmpfs -o size=64m,mode=0700 tmpfs "$GANTRY_HOME" 2>/dev/null ||
	skip_all "mount -t tmpfs is not permitted here"
# unmounted whatever happens, before test-lib's cleanup removes $TRASH: lazily,
# so that a daemon still holding files in it (stopped by that cleanup) does not
# keep it mounted
_t5420_umount() {
	umount -l "$GANTRY_HOME" 2>/dev/null
	:
}
trap '_t5420_rc=$?; _t5420_umount; (exit $_t5420_rc); _on_exit' EXIT
trap '_t5420_umount; _on_signal INT' INT
trap '_t5420_umount; _on_signal TERM' TERM
trap '_t5420_umount; _on_signal HUP' HUP

HOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
export HOOK_SECRET

# fs FIELD: HOME's filesystem, as statvfs tells an unprivileged writer
fs() {
	python3 -c "import os, sys; s = os.statvfs(sys.argv[1]); print({\"avail\": s.f_bavail * s.f_frsize, \"total\": s.f_blocks * s.f_frsize}[sys.argv[2]])" "$GANTRY_HOME" "$1"
}

# fill_to PERMILLE: HOME/fill (re)sized so that PERMILLE/10 % of the filesystem is left free
fill_to() {
	_total=$(fs total) && _avail=$(fs avail) &&
	_size=$(stat -c %s "$GANTRY_HOME/fill" 2>/dev/null || echo 0) &&
	_want=$((_size + _avail - _total * $1 / 1000)) &&
	if [ "$_want" -gt "$_size" ]; then
		fallocate -l "$_want" "$GANTRY_HOME/fill"
	else
		truncate -s "$_want" "$GANTRY_HOME/fill"
	fi
}

# the raw status reply (its top-level "disk") into status.json
status_json() {
	api '{"op": "status"}' >status.json
}

received() {
	python3 -c "import json; print(json.dumps([json.loads(l) for l in open(\"received.jsonl\")]))" >received.json 2>/dev/null &&
	jcheck received.json "$1" 2>/dev/null
}

events_of() {
	"$GANTRY" events -o json | grep -c "\"kind\": *\"$1\""
}

test_expect_success '--low-disk without a unit is refused before anything starts' '
	test_expect_code 2 "$GANTRY" serve --low-disk 5 2>err &&
	grep "error: --low-disk: .5.: expected a percentage of HOME.s filesystem (5%) or a size with its unit (500Mi, 2G)" err &&
	test_expect_code 2 "$GANTRY" serve --low-disk 100% 2>err &&
	test ! -e "$GANTRY_HOME/state.db"
'

test_expect_success 'setup: receiver, spec with a webhook, daemon on a tmpfs HOME, hello deployed' '
	RPORT=$(free_port) &&
	spawn_bg receiver timeout 120 python3 "$ROOT/tests/e2e/helpers/receiver.py" "$RPORT" "$TRASH/received.jsonl" &&
	wait_for 10 "curl -s -o /dev/null -X POST -H Content-Length:2 -d {} http://127.0.0.1:$RPORT/ping" &&
	rm -f received.jsonl &&
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: {}
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	notify:
	  - { url: "http://127.0.0.1:$RPORT/hook", secret: hook, events: [disk_low, disk_ok], allow_private: true }
	EOF
	printf "hook=%s\n" "$HOOK_SECRET" >"$GANTRY_HOME/webhook-secrets" &&
	chmod 600 "$GANTRY_HOME/webhook-secrets" &&
	start_serve &&
	"$GANTRY" deploy hello --env staging --version v1 --wait
'

test_expect_success 'with room to spare: no warning; status has the figures' '
	"$GANTRY" status >status.txt &&
	cat status.txt &&
	! grep -i "warning" status.txt &&
	status_json &&
	jcheck status.json "d[\"disk\"][\"path\"] == \"$GANTRY_HOME\" and d[\"disk\"][\"low\"] is False
		and d[\"disk\"][\"total_bytes\"] == 64 * 1024 * 1024 and d[\"disk\"][\"threshold\"] == \"5%\"
		and d[\"disk\"][\"threshold_pct\"] == 5 and d[\"disk\"][\"free_pct\"] > 80
		and d[\"disk\"][\"free_bytes\"] > 0.8 * d[\"disk\"][\"total_bytes\"] and d[\"disk\"][\"error\"] is None
		and d[\"status\"][0][\"disk\"] == d[\"disk\"]"
'

test_expect_success 'filled to 2% free: status warns within one measurement (10 s)' '
	t0=$(_now_ms) &&
	fill_to 20 &&
	wait_for 25 "\"$GANTRY\" status | grep -q ^warning:" &&
	echo "# t5420: low disk seen by status $(($(_now_ms) - t0)) ms after the fill (measured every 10 s)" >&7 &&
	"$GANTRY" status >status.txt &&
	cat status.txt &&
	head -n 1 status.txt | grep -E "^warning: HOME \($GANTRY_HOME\) has [12]\.[0-9]% free \([0-9.]+ (KiB|MiB) of 64\.0 MiB\), below the 5% threshold: free space before the state store fills$" &&
	grep -q "^hello@staging  healthy" status.txt &&
	st_check "d[\"disk\"][\"low\"] is True and 1 < d[\"disk\"][\"free_pct\"] < 3 and d[\"disk\"][\"threshold_pct\"] == 5"
'

test_expect_success 'one disk_low event (the controller'"'"'s), one signed webhook, one warning in the log' '
	wait_for 10 "test \$(events_of disk_low) = 1" &&
	"$GANTRY" events -o json | grep "\"disk_low\"" >ev &&
	grep "\"service\": *\"\"" ev &&
	grep "below the 5% threshold" ev &&
	wait_for 15 "grep -q disk_low received.jsonl" &&
	received "[r[\"body\"][\"type\"] for r in d] == [\"disk_low\"] and d[0][\"valid\"] is True
		and d[0][\"body\"][\"data\"][\"path\"] == \"$GANTRY_HOME\" and d[0][\"body\"][\"data\"][\"free_pct\"] < 5
		and d[0][\"body\"][\"data\"][\"threshold_pct\"] == 5 and d[0][\"body\"][\"data\"][\"total_bytes\"] == 64 * 1024 * 1024
		and \"below the 5% threshold\" in d[0][\"body\"][\"data\"][\"message\"]" &&
	test $(grep -c "level=warn sys=disk" serve.log) = 1
'

test_expect_success 'hysteresis: at 5.5% free (above 5%, below 6%) it stays low, and is not announced again' '
	fill_to 55 &&
	wait_for 25 "\"$GANTRY\" status | grep -q \"^warning: HOME ($GANTRY_HOME) has 5\.[2-7]% free\"" &&
	test $(events_of disk_low) = 1 &&
	test $(events_of disk_ok) = 0 &&
	test $(grep -c "level=warn sys=disk" serve.log) = 1
'

test_expect_success 'freed: the warning goes, one disk_ok event and webhook' '
	t0=$(_now_ms) &&
	rm "$GANTRY_HOME/fill" &&
	wait_for 25 "! \"$GANTRY\" status | grep -q ^warning:" &&
	echo "# t5420: recovery seen by status $(($(_now_ms) - t0)) ms after the space was freed" >&7 &&
	wait_for 10 "test \$(events_of disk_ok) = 1" &&
	"$GANTRY" events -o json | grep "\"disk_ok\"" | grep "above the 5% threshold again" &&
	wait_for 15 "grep -q disk_ok received.jsonl" &&
	received "[r[\"body\"][\"type\"] for r in d] == [\"disk_low\", \"disk_ok\"] and d[1][\"valid\"] is True" &&
	status_json &&
	jcheck status.json "d[\"disk\"][\"low\"] is False and d[\"disk\"][\"free_pct\"] > 80" &&
	test $(events_of disk_low) = 1 &&
	grep "level=info sys=disk .*above the 5% threshold again" serve.log
'

test_expect_success 'restarted with --low-disk 100Mi (more than the filesystem): low from its first answer, announced once' '
	stop_serve &&
	start_serve --low-disk 100Mi &&
	"$GANTRY" status >status.txt &&
	head -n 1 status.txt | grep "^warning: HOME ($GANTRY_HOME) has .* of 64\.0 MiB), below the 100Mi threshold" &&
	wait_for 10 "test \$(events_of disk_low) = 2" &&
	status_json &&
	jcheck status.json "d[\"disk\"][\"low\"] is True and d[\"disk\"][\"threshold\"] == \"100Mi\"
		and d[\"disk\"][\"threshold_pct\"] > 150" &&
	stop_serve
'

test_done
