#!/bin/sh
test_description='gantry deploy --wait: traffic, status JSON, history JSON, version rules, --set'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid git
require_gantry

# outside a git repository even if TMPDIR is inside one
GIT_CEILING_DIRECTORIES=$(dirname "$TRASH")
export GIT_CEILING_DIRECTORIES

test_expect_success 'setup: spec, daemon' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 2 }
	services:
	  hello:
	    artifact: app
	    run: echo "GREETING=\$GREETING"; exec ./hello
	    env: { GREETING: hello }
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	    progress_deadline: 20s
	EOF
	start_serve
'

test_expect_success 'deploy --wait --version v7 exits 0 and the proxy serves v7' '
	"$GANTRY" deploy hello --env staging --version v7 --wait >out &&
	cat out &&
	test "$(pcode /)" = 200 &&
	pget / >body &&
	grep "v7" body
'

test_expect_success 'status -o json: service, phase, traffic, replicas, rollout' '
	st_check "d[\"service\"] == \"hello\" and d[\"environment\"] == \"staging\"" &&
	st_check "d[\"phase\"] == \"healthy\" and d[\"stable_revision\"] == 1" &&
	st_check "d[\"version\"] == \"v7\"" &&
	st_check "d[\"traffic\"] == [{\"revision\": 1, \"weight\": 100}]" &&
	st_check "len(d[\"replicas\"]) == 2 and d[\"ready_replicas\"] == 2" &&
	st_check "all(isinstance(r[\"pid\"], int) and r[\"pid\"] > 1 and 0 < r[\"port\"] < 65536
		and r[\"ready\"] is True and r[\"restarts\"] == 0 and r[\"revision\"] == 1
		for r in d[\"replicas\"])" &&
	st_check "len(set(r[\"port\"] for r in d[\"replicas\"])) == 2" &&
	st_check "set(d[\"rollout\"]) >= {\"id\", \"revision\", \"strategy\", \"step\", \"steps\", \"phase\", \"message\"}" &&
	st_check "d[\"rollout\"][\"revision\"] == 1 and d[\"rollout\"][\"strategy\"] == \"rolling\"
		and d[\"rollout\"][\"phase\"] == \"complete\" and d[\"rollout\"][\"step\"] == d[\"rollout\"][\"steps\"]
		and isinstance(d[\"rollout\"][\"message\"], str)"
'

test_expect_success 'the status pids are the running replicas' '
	gst >st.json &&
	for p in $(python3 -c "import json; print(\" \".join(str(r[\"pid\"]) for r in json.load(open(\"st.json\"))[\"replicas\"]))"); do
		kill -0 "$p" || return 1
	done &&
	check_processes
'

test_expect_success '--set env.GREETING reaches the replicas (gantry logs)' '
	"$GANTRY" deploy hello --env staging --version v8 --set env.GREETING=bonjour --wait &&
	"$GANTRY" logs hello --env staging --revision 2 >logs &&
	grep "GREETING=bonjour" logs &&
	! grep "GREETING=hello" logs &&
	"$GANTRY" logs hello --env staging --revision 1 >logs1 &&
	grep "GREETING=hello" logs1
'

test_expect_success 'outside git: the version is the first 12 hex digits of the artifact digest' '
	"$GANTRY" deploy hello --env staging --wait &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 3 and len(d[0][\"digest\"]) >= 12
		and d[0][\"version\"] == d[0][\"digest\"][:12]" &&
	st_check "d[\"version\"] == d[\"version\"].lower() and len(d[\"version\"]) == 12 and d[\"stable_revision\"] == 3"
'

test_expect_success 'in a git repo: the short SHA, then -dirty after a change to a tracked file' '
	git init -q . &&
	printf "home/\n" >.gitignore &&
	git add gantry.yaml app/hello .gitignore &&
	git -c user.name=t -c user.email=t@example.com commit -q -m one &&
	sha=$(git rev-parse --short=12 HEAD) &&
	"$GANTRY" deploy hello --env staging --wait &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 4 and d[0][\"version\"] == \"$sha\"" &&
	echo "# a comment" >>gantry.yaml &&
	"$GANTRY" deploy hello --env staging --wait &&
	ghist >hist.json &&
	jcheck hist.json "d[0][\"revision\"] == 5 and d[0][\"version\"] == \"$sha-dirty\"" &&
	pget / >body &&
	grep -- "$sha-dirty" body
'

test_expect_success 'history -o json: newest first, every field' '
	ghist >hist.json &&
	jcheck hist.json "[r[\"revision\"] for r in d] == [5, 4, 3, 2, 1]" &&
	jcheck hist.json "d[4][\"version\"] == \"v7\" and d[3][\"version\"] == \"v8\"" &&
	jcheck hist.json "d[0][\"status\"] == \"serving\"" &&
	jcheck hist.json "all(r[\"status\"] != \"serving\" for r in d[1:])" &&
	jcheck hist.json "all(r[\"deployed_by\"] and isinstance(r[\"reason\"], str) and r[\"kind\"] == \"deploy\" for r in d)" &&
	python3 - hist.json <<-\EOF
	import json, re, sys
	d = json.load(open(sys.argv[1]))
	rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
	bad = [r["created_at"] for r in d if not rfc3339.match(r["created_at"])]
	assert not bad, bad
	times = [r["created_at"] for r in d]
	assert times == sorted(times, reverse=True), times
	EOF
'

test_expect_success 'table output of history and status names the revisions' '
	"$GANTRY" history hello --env staging >hist.txt &&
	grep v7 hist.txt && grep v8 hist.txt &&
	"$GANTRY" status hello --env staging >st.txt &&
	grep healthy st.txt
'

test_expect_success 'SIGTERM stops the daemon with exit 0' '
	stop_serve
'

test_done
