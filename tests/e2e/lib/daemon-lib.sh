# daemon-lib.sh - helpers for the controller's e2e scripts (t05*, t1*, t5*).
# Source it after lib/test-lib.sh:
#
#   . "$(dirname "$0")/lib/test-lib.sh"
#   . "$ROOT/tests/e2e/lib/daemon-lib.sh"
#
# Every helper returns non-zero on failure, so that bodies can chain with &&.
#
#   SVC, ENV, HOST          the service environment under test (hello, staging,
#                           hello.staging.localhost); set them before use to change
#   start_serve [ARG...]    spawn_bg "serve" (gantry serve on PROXY_PORT/ADMIN_PORT,
#                           chosen once per script, so a restarted daemon keeps its
#                           addresses; --restart-backoff $BACKOFF, default 200ms),
#                           then wait until `gantry status` answers
#   stop_serve [TIMEOUT_S]  SIGTERM to serve; wait for it; fails unless it exits 0
#                           and serve.log and the proxy's log have no sanitizer report
#   sanitizer_clean FILE... no ASan/LSan/UBSan report in the files
#   gantry_sanitized        $GANTRY was built with SANITIZE=address
#   kill9_serve             SIGKILL to serve and wait until it is gone
#   write_svc_spec          $TRASH/gantry.yaml from stdin, and the hello binary in
#                           $TRASH/app: specs say `artifact: app` (not `.`, which
#                           holds serve.log and other files that change while a
#                           deploy snapshots them)
#   write_release_chain [LINE]... NAME [LINE]... [NAME [LINE]...]... <TOP
#                           write_svc_spec of a release script's spec: TOP (its keys
#                           but services: project, release, environments, notify),
#                           then services NAME... as a chain, each depends_on the one
#                           before, each with artifact: app, run: ./hello, readiness
#                           on /ready every 100ms, stop_grace: 2s, drain_timeout: 1s;
#                           a LINE ("KEY: VALUE") before the first NAME is a key of
#                           every service, after a NAME of that service; it replaces
#                           a shared key of the same KEY (drain_timeout: 2s);
#                           "NAME held": a pre-check of NAME fails while
#                           $TRASH/hold-NAME exists
#   gst                     `gantry status $SVC --env $ENV -o json` (the object)
#   ghist                   `gantry history $SVC --env $ENV -o json`
#   gevents                 `gantry events $SVC --env $ENV -o json`
#   jcheck FILE EXPR        Python EXPR over d = json.load(FILE) must be true;
#                           prints EXPR and the JSON when it is not
#   st_check EXPR           jcheck over a fresh status (kept in $TRASH/st.json)
#   pget PATH / pcode PATH  GET through the proxy with Host: $HOST (body / code)
#   start_load NAME [ARG..] loadgen through the proxy (-c 4, --rate 500, bounded at
#                           120 s) until stop_load NAME; extra args to loadgen
#   stop_load NAME          stops it; its JSON line goes to $TRASH/NAME.json
#   load_clean NAME         NAME.json says zero non-2xx and zero errors
#   check_processes         no orphan and nothing running twice: every process
#                           tagged GANTRY_TAG=$(cat $GANTRY_HOME/instance-id) or
#                           GANTRY_HOME=$GANTRY_HOME (outside this shell's
#                           own session and spawn_bg's sessions) is the proxy or in
#                           the session of a replica listed in status, and each
#                           GANTRY_REPLICA id leads exactly one session
#   tagged_pids             pids of session leaders tagged with our GANTRY_TAG
#                           (replicas) or GANTRY_HOME (the proxy)
#   proxy_pid               the pid of our `gantry proxy` (fails unless exactly one)
#   api JSON                one raw request over HOME/api.sock; prints the reply
#   as USER CMD [ARG...]    CMD run with GANTRY_TOKEN from $TRASH/USER.token (the
#                           token `gantry user add USER ... >USER.token` printed)
#   rstatus ID ENV EXPR     jcheck EXPR over `gantry release status ID --env ENV -o json`
#                           (kept in $TRASH/rs.json)
#   sql STATEMENT           runs it on HOME/state.db behind the daemon's back (attacks
#                           on the store); prints the rows

SVC=hello
ENV=staging
HOST=hello.staging.localhost
BACKOFF=200ms
PROXY_PORT=
ADMIN_PORT=

start_serve() {
	if [ -z "$PROXY_PORT" ]; then
		PROXY_PORT=$(free_port) && ADMIN_PORT=$(free_port) || return 1
	fi
	spawn_bg serve "$GANTRY" serve --listen "127.0.0.1:$PROXY_PORT" \
		--admin "127.0.0.1:$ADMIN_PORT" --restart-backoff "$BACKOFF" "$@"
	wait_for 10 '"$GANTRY" status >/dev/null 2>&1' || {
		echo "gantry serve did not answer within 10 s" >&2
		return 1
	}
}

_save_serve_log() {
	cat "$TRASH/serve.log" >>"$TRASH/serve-all.txt" 2>/dev/null
	:
}

# sanitizer_clean FILE...: no AddressSanitizer/LeakSanitizer/UBSan report in
# the files (a SANITIZE= build of gantry reports into serve.log and the
# proxy's log; nothing else would notice a report of a daemon's exit)
sanitizer_clean() {
	! grep -sE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$@"
}

# gantry_sanitized: $GANTRY is a SANITIZE=address build
gantry_sanitized() {
	grep -qa __asan_init "$GANTRY"
}

stop_serve() {
	kill_bg serve TERM || return 1
	wait_bg serve "${1:-20}"
	_ss_rc=$?
	_save_serve_log
	[ $_ss_rc -eq 0 ] || return $_ss_rc
	sanitizer_clean "$TRASH/serve.log" "$GANTRY_HOME"/logs/proxy.log*
}

kill9_serve() {
	_k9=$(pid_of serve) || return 1
	kill -KILL "$_k9" || return 1
	wait_for 5 "! kill -0 $_k9" || return 1
	wait "$_k9" 2>/dev/null
	_save_serve_log
	return 0
}

# api JSON: one raw request over HOME/api.sock (as the test's own user); the reply on stdout
api() {
	python3 - "$GANTRY_HOME/api.sock" "$1" <<-PY
	import json, socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.connect(sys.argv[1])
	s.sendall(sys.argv[2].encode() + b"\n")
	data = b""
	while True:
	    chunk = s.recv(65536)
	    if not chunk:
	        break
	    data += chunk
	print(data.decode().strip())
	PY
}

# sql STATEMENT: runs it on the state database behind the daemon's back
# (tests that attack the store); prints the rows, fields joined by |
sql() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
r = c.execute(sys.argv[2]).fetchall()
c.commit()
print("\n".join("|".join(str(x) for x in row) for row in r))' "$GANTRY_HOME/state.db" "$1"
}

write_svc_spec() {
	cat >"$TRASH/gantry.yaml" && mkdir -p "$TRASH/app" && cp "$HELLO" "$TRASH/app/hello"
}

write_release_chain() {
	_rc_yaml=$(cat && echo "services:" && _release_chain_services "$@") &&
	printf '%s\n' "$_rc_yaml" | write_svc_spec
}

# _release_chain_services ARG...: the services of write_release_chain ARG...
_release_chain_services() {
	_rc_every=
	while [ $# -gt 0 ] && _rc_is_line "$1"; do
		_rc_every="$_rc_every$1
"
		shift
	done
	[ $# -gt 0 ] || { echo "write_release_chain: no service" >&2; return 1; }
	_rc_prev=
	while [ $# -gt 0 ]; do
		case $1 in
		*" held") _rc_name=${1% held} _rc_held=1 ;;
		*" "*) echo "write_release_chain: \"$1\" is neither NAME nor \"NAME held\"" >&2; return 1 ;;
		*) _rc_name=$1 _rc_held= ;;
		esac
		shift
		_rc_lines=$_rc_every
		while [ $# -gt 0 ] && _rc_is_line "$1"; do
			_rc_lines="$_rc_lines$1
"
			shift
		done
		echo "  $_rc_name:"
		echo "    artifact: app"
		echo "    run: ./hello"
		[ -z "$_rc_prev" ] || echo "    depends_on: [$_rc_prev]"
		_rc_given probes || printf '    probes:\n      readiness: { http: /ready, period: 100ms }\n'
		_rc_given stop_grace || echo "    stop_grace: 2s"
		_rc_given drain_timeout || echo "    drain_timeout: 1s"
		printf '%s' "$_rc_lines" | sed 's/^/    /'
		[ -z "$_rc_held" ] || cat <<-EOF
		    checks:
		      pre:
		        - { run: "test ! -e '$TRASH/hold-$_rc_name' || { echo $_rc_name is held; exit 1; }", timeout: 10s }
		EOF
		_rc_prev=$_rc_name
	done
}

# _rc_is_line ARG: ARG is a LINE ("KEY: VALUE"), not a NAME
_rc_is_line() {
	case $1 in *:*) return 0 ;; esac
	return 1
}

# _rc_given KEY: one of the LINEs of this service sets KEY
_rc_given() {
	printf '%s' "$_rc_lines" | grep -q "^$1:"
}

gst() {
	"$GANTRY" status "$SVC" --env "$ENV" -o json
}

ghist() {
	"$GANTRY" history "$SVC" --env "$ENV" -o json
}

gevents() {
	"$GANTRY" events "$SVC" --env "$ENV" -o json
}

jcheck() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
ok = eval("(" + sys.argv[2] + ")", {"d": d, "any": any, "all": all, "len": len, "set": set, "sorted": sorted})
if not ok:
    print("jcheck failed: " + sys.argv[2], file=sys.stderr)
    # a line per top-level key: CI shows only a part of a failed test
    for k, v in (d.items() if isinstance(d, dict) else enumerate(d)):
        print(" %s: %s" % (k, json.dumps(v, separators=(",", ":"))), file=sys.stderr)
    sys.exit(1)
EOF
}

st_check() {
	gst >"$TRASH/st.json" && jcheck "$TRASH/st.json" "$1"
}

pget() {
	curl -sS --max-time 5 -H "Host: $HOST" "http://127.0.0.1:$PROXY_PORT$1"
}

pcode() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $HOST" \
		"http://127.0.0.1:$PROXY_PORT$1"
	return 0
}

start_load() {
	_ln=$1
	shift
	rm -f "$TRASH/stop-$_ln"
	spawn_bg "$_ln" "$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --host "$HOST" \
		-c 4 --rate 500 --max-duration 120s --stop-file "$TRASH/stop-$_ln" "$@" &&
	# it has started once it has sent a request (its log is empty until it stops)
	sleep 0.3 && kill -0 "$SPAWNED_PID"
}

stop_load() {
	touch "$TRASH/stop-$1" &&
	wait_bg "$1" 15 &&
	grep '^{' "$TRASH/$1.log" | tail -n 1 >"$TRASH/$1.json" &&
	test -s "$TRASH/$1.json" &&
	cat "$TRASH/$1.json"
}

load_clean() {
	jcheck "$TRASH/$1.json" 'd["requests"] > 0 and d["non2xx"] == 0 and d["errors"] == 0'
}

# Both use the tags of this test's controller: GANTRY_TAG=<HOME/instance-id>
# on replicas (which must not learn where HOME is), GANTRY_HOME=<home> on
# the proxy (it inherits serve's environment, which the test library set).
tagged_pids() {
	python3 - "$GANTRY_HOME" <<'EOF'
import os, sys
tags = [("GANTRY_HOME=" + sys.argv[1]).encode()]
try:
    tags.append(("GANTRY_TAG=" + open(sys.argv[1] + "/instance-id").read().strip()).encode())
except OSError:
    pass
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        env = open("/proc/%s/environ" % p, "rb").read().split(b"\0")
        stat = open("/proc/%s/stat" % p).read()
    except OSError:
        continue
    f = stat[stat.rindex(")") + 2:].split()
    if any(t in env for t in tags) and f[0] not in "ZX" and int(f[3]) == int(p):
        print(p)
EOF
}

# an orphan stays; a child caught between fork and exec (its cmdline still
# the controller's) does not: a failed check is taken again, up to 3 times
check_processes() {
	_cp_i=0
	while ! _check_processes_once; do
		_cp_i=$((_cp_i + 1))
		[ $_cp_i -lt 3 ] || return 1
		sleep 0.5
	done
}

_check_processes_once() {
	gst >"$TRASH/procs-st.json" || return 1
	python3 - "$GANTRY_HOME" "$TRASH/procs-st.json" "$TRASH/pids" "$$" <<'EOF'
import json, os, sys
home, stfile, pidsfile, me = sys.argv[1:5]
tags = [("GANTRY_HOME=" + home).encode()]
try:
    tags.append(("GANTRY_TAG=" + open(home + "/instance-id").read().strip()).encode())
except OSError:
    pass
st = json.load(open(stfile))
listed = {r["pid"]: r["id"] for r in st.get("replicas", [])
          if r.get("pid") and r.get("state") != "backoff"}

def stat(p):
    s = open("/proc/%d/stat" % p).read()
    f = s[s.rindex(")") + 2:].split()
    return f[0], int(f[3])          # state, session (fields 3 and 6)

ours = set()                        # sessions of this test's own processes
for line in open(pidsfile):
    if line.split():
        ours.add(int(line.split()[0]))
try:
    ours.add(stat(int(me))[1])
except OSError:
    pass

procs = {}
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    p = int(d)
    try:
        env = open("/proc/%d/environ" % p, "rb").read().split(b"\0")
        state, sid = stat(p)
        cmd = open("/proc/%d/cmdline" % p, "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        continue
    if not any(t in env for t in tags) or state in "ZX" or sid in ours:
        continue
    rep = [e[15:].decode() for e in env if e.startswith(b"GANTRY_REPLICA=")]
    procs[p] = (sid, rep[0] if rep else None, cmd)

bad = []
leaders = {p: v for p, v in procs.items() if v[0] == p}
proxies = [p for p, v in leaders.items() if "gantry proxy" in v[2]]
if len(proxies) > 1:
    bad.append("more than one proxy: %s" % proxies)
seen = {}
for p, (sid, rep, cmd) in leaders.items():
    if p in proxies:
        continue
    if p not in listed:
        bad.append("orphan: pid %d (%s) replica=%s is not in status" % (p, cmd, rep))
    elif rep != listed[p]:
        bad.append("pid %d is tagged %s but status says %s" % (p, rep, listed[p]))
    if rep:
        seen.setdefault(rep, []).append(p)
for rep, ps in seen.items():
    if len(ps) > 1:
        bad.append("replica %s runs %d times: %s" % (rep, len(ps), ps))
for p, (sid, rep, cmd) in procs.items():
    if sid != p and sid not in leaders:
        bad.append("orphan: pid %d (%s) in session %d, which no replica leads" % (p, cmd, sid))
for p, rid in listed.items():
    if p not in leaders:
        bad.append("status lists replica %s pid %d, which is not running" % (rid, p))
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

proxy_pid() {
	_pp=$(tagged_pids | while read -r _p; do
		tr '\0' ' ' <"/proc/$_p/cmdline" 2>/dev/null | grep -q "gantry proxy " && echo "$_p"
	done)
	test -n "$_pp" && test "$(echo "$_pp" | wc -l)" -eq 1 && echo "$_pp"
}

# ---- progressive delivery (t3*) ----
#
#   write_app_spec          like write_spec, but into $TRASH/app (gantry.yaml and
#                           hello), so that the artifact (the spec's directory)
#                           does not hold the logs that change while it is
#                           copied; sets SPEC; deploy with "$GANTRY" -f "$SPEC" deploy
#   split_count N [ARG...]  N requests by one keep-alive client through the proxy
#                           (loadgen -c 1, bounded at 20 s); prints its JSON line
#                           and keeps it in $TRASH/split.json; extra args to loadgen
#   split_pct VERSION       VERSION's share (integer percent) of the last split_count
#   canary_check EXPR       st_check over the status's "canary" object (c = it);
#                           fails when there is none
#   ev_check EXPR           Python EXPR over ev = the list of `gantry events -o json`
#                           (each {id, time, kind, revision, message}) must be true

write_app_spec() {
	mkdir -p "$TRASH/app" &&
	SPEC=$TRASH/app/gantry.yaml &&
	cat >"$SPEC" && cp "$HELLO" "$TRASH/app/hello"
}

split_count() {
	_sc_n=$1
	shift
	"$LOADGEN" --url "http://127.0.0.1:$PROXY_PORT/" --host "$HOST" -c 1 -n "$_sc_n" \
		--max-duration 20s "$@" >"$TRASH/split.json" 2>/dev/null &&
	cat "$TRASH/split.json"
}

split_pct() {
	python3 - "$TRASH/split.json" "$1" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
n = sum(d["versions"].values())
print(round(100.0 * d["versions"].get(sys.argv[2], 0) / n) if n else -1)
PYEOF
}

canary_check() {
	gst >"$TRASH/st.json" &&
	jcheck "$TRASH/st.json" "\"canary\" in d and (lambda c: $1)(d[\"canary\"])"
}

ev_check() {
	gevents >"$TRASH/ev.jsonl" &&
	python3 - "$TRASH/ev.jsonl" "$1" <<'PYEOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not eval("(" + sys.argv[2] + ")", {"ev": ev, "any": any, "all": all, "len": len, "sorted": sorted, "set": set}):
    print("ev_check failed: " + sys.argv[2], file=sys.stderr)
    for e in ev:
        print("  %s %s r%s %s" % (e["time"], e["kind"], e.get("revision"), e["message"]), file=sys.stderr)
    sys.exit(1)
PYEOF
}

# as USER CMD [ARG...]: CMD as USER, by the token in $TRASH/USER.token
as() {
	_who=$1
	shift
	GANTRY_TOKEN=$(cat "$TRASH/$_who.token") "$@"
}

# rstatus ID ENV EXPR: Python EXPR over release ID of ENV (d; kept in $TRASH/rs.json)
rstatus() {
	"$GANTRY" release status "$1" --env "$2" -o json >"$TRASH/rs.json" && jcheck "$TRASH/rs.json" "$3"
}
