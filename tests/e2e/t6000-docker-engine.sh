#!/bin/sh
test_description='the Docker Engine client (src/runtime/docker.c) against a real, private dockerd'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/docker-lib.sh"

DOCKERC=$ROOT/tests/e2e/helpers/dockerc
[ -x "$DOCKERC" ] || skip_all "$DOCKERC not built (make examples)"
[ -x "$ROOT/examples/hello/hello-static" ] || skip_all "examples/hello/hello-static not built (make examples)"
require_cmd curl python3
start_dockerd

# the name every container of this script carries, so that list finds only ours
RUN_LABEL=gantry.test=t6000-$$

test_expect_success 'ping: the negotiated API version' '
	"$DOCKERC" ping >ping.out &&
	cat ping.out &&
	grep -E "^api 1\.(4[0-3])$" ping.out &&
	server=$(curl -sfI --unix-socket "${DOCKER_HOST#unix://}" http://d/_ping | tr -d "\r" |
		sed -n "s/^[Aa]pi-[Vv]ersion: //p") &&
	say "server API $server, client uses $(cut -d" " -f2 ping.out)" &&
	case $server in
	1.4[0-3]) test "$(cut -d" " -f2 ping.out)" = "$server" ;;
	*) test "$(cut -d" " -f2 ping.out)" = 1.43 ;;
	esac
'

test_expect_success 'a daemon that is not there: one clear line' '
	test_expect_code 1 env DOCKER_HOST=unix://$TRASH/none.sock "$DOCKERC" ping 2>err &&
	test "$(wc -l <err)" = 1 &&
	grep "^docker: cannot reach unix://$TRASH/none.sock: No such file or directory$" err
'

test_expect_success 'the scratch image around hello: inspect gives its id' '
	t0=$(_now_ms) &&
	docker_scratch_image gt-hello:1 &&
	say "scratch image built in $(($(_now_ms) - t0)) ms" &&
	"$DOCKERC" inspect gt-hello:1 >img.out &&
	cat img.out &&
	grep -E "^id=sha256:[0-9a-f]{64} size=[0-9]+ repo_digest=$" img.out
'

test_expect_success 'inspect of a missing image: absent (exit 3), not an error' '
	test_expect_code 3 "$DOCKERC" inspect gt-nope:1 2>err &&
	grep "no such image: gt-nope:1" err
'

test_expect_success 'create from a missing image: one clear line' '
	test_expect_code 1 "$DOCKERC" create gt-missing-$$ gt-nope:1 2>err &&
	cat err &&
	test "$(wc -l <err)" = 1 &&
	grep "^create container gt-missing-$$: No such image: gt-nope:1" err
'

test_expect_success 'create with labels, a published port and a memory limit; start' '
	HP=$(free_port) &&
	"$DOCKERC" create gt-web-$$ gt-hello:1 -l "$RUN_LABEL" -l gantry.replica=r1 \
		-e PORT=8080 -e GANTRY_VERSION=v6 -e HOST=0.0.0.0 \
		-p 127.0.0.1:$HP:8080 -m 67108864 --cpus 500 --pids 64 >id.out &&
	WEB=$(cat id.out) &&
	test ${#WEB} = 64 &&
	"$DOCKERC" inspect-container "$WEB" >st.out &&
	grep "^status=created$" st.out &&
	t0=$(_now_ms) &&
	"$DOCKERC" start "$WEB" &&
	"$DOCKERC" start "$WEB" &&
	wait_for 30 "test \"\$(http_get http://127.0.0.1:$HP/)\" = \"hello from v6 (revision -)\"" &&
	say "start to first answer through the published port: $(($(_now_ms) - t0)) ms" &&
	"$DOCKERC" inspect-container "$WEB" >st.out &&
	cat st.out &&
	grep "^status=running$" st.out &&
	grep "^running=1$" st.out &&
	grep "^host_port=$HP$" st.out &&
	grep "^name=gt-web-$$\$" st.out &&
	grep "^image=$(sed -n "s/^id=\([^ ]*\) .*/\1/p" img.out)$" st.out &&
	grep -E "^ip=10\.[0-9]+\.[0-9]+\.[0-9]+$" st.out &&
	grep -E "^pid=[1-9][0-9]*$" st.out &&
	grep -E "^started_at_ms=1[0-9]{12}$" st.out &&
	# the limits the Engine was given
	dk_api GET "/containers/$WEB/json" >raw.json &&
	python3 -c "
import json, sys
h = json.load(open(\"raw.json\"))[\"HostConfig\"]
assert h[\"Memory\"] == 64 << 20, h[\"Memory\"]
assert h[\"NanoCpus\"] == 500000000, h[\"NanoCpus\"]
assert h[\"PidsLimit\"] == 64, h[\"PidsLimit\"]
assert h[\"RestartPolicy\"][\"Name\"] == \"no\", h[\"RestartPolicy\"]
"
'

test_expect_success 'logs: hello said it listens; a follow ends when told' '
	"$DOCKERC" logs "$WEB" >logs.out &&
	cat logs.out &&
	grep "hello: listening on 0.0.0.0:8080 version=v6" logs.out &&
	t0=$(_now_ms) &&
	"$DOCKERC" logs "$WEB" --follow-ms 700 >follow.out &&
	el=$(($(_now_ms) - t0)) &&
	say "a follow told to stop after 700 ms returned after $el ms" &&
	grep "listening on 0.0.0.0:8080" follow.out
'

test_expect_success 'stats: memory under the limit, cpu a number' '
	"$DOCKERC" stats "$WEB" >stats.out &&
	cat stats.out &&
	grep "^memory_limit=67108864$" stats.out &&
	m=$(sed -n "s/^memory_bytes=//p" stats.out) &&
	test "$m" -gt 0 && test "$m" -lt 67108864 &&
	grep -E "^cpu_percent=[0-9]+\.[0-9]$" stats.out
'

test_expect_success 'list by label finds it, with its labels' '
	"$DOCKERC" list "$RUN_LABEL" >list.out &&
	cat list.out &&
	test "$(wc -l <list.out)" = 1 &&
	grep "^$WEB gt-web-$$ running " list.out &&
	grep " gantry.replica=r1" list.out &&
	"$DOCKERC" list "gantry.test=nobody-$$" >none.out &&
	test ! -s none.out
'

test_expect_success 'kill SIGTERM: exited, exit code 0 (hello drains and exits)' '
	"$DOCKERC" kill "$WEB" 15 &&
	wait_for 20 "\"$DOCKERC\" inspect-container $WEB | grep -q ^status=exited$" &&
	"$DOCKERC" inspect-container "$WEB" >st.out &&
	grep "^running=0$" st.out &&
	grep "^exit_code=0$" st.out &&
	grep "^oom_killed=0$" st.out &&
	grep -E "^finished_at_ms=1[0-9]{12}$" st.out &&
	# a kill of a stopped container is not an error
	"$DOCKERC" kill "$WEB" 15 &&
	"$DOCKERC" logs "$WEB" >logs.out &&
	grep "stopped by signal 15" logs.out
'

# The Engine's OOMKilled is not reliable: docker.io 20.10 on this kernel
# (cgroup v1) reported false for 9 of 25 containers the kernel OOM-killed,
# and the flag never turned true later (nor did an "oom" event come). So
# this asserts the kill (137) and that the flag is read as 0 or 1; reading
# true is tested in tests/unit/runtime/test_docker.c
test_expect_success 'OOM: 8 MiB limit, HOLD_MB=64 -> killed (137), oom_killed as the Engine says' '
	"$DOCKERC" create gt-oom-$$ gt-hello:1 -l "$RUN_LABEL" -e PORT=8080 -e HOLD_MB=64 \
		-m 8388608 >oom.id &&
	OOM=$(cat oom.id) &&
	"$DOCKERC" start "$OOM" &&
	wait_for 30 "\"$DOCKERC\" inspect-container $OOM | grep -q ^status=exited$" &&
	"$DOCKERC" inspect-container "$OOM" >oom.out &&
	cat oom.out &&
	grep -E "^oom_killed=(0|1)$" oom.out &&
	grep "^exit_code=137$" oom.out
'

test_expect_success 'remove: removed, then absent' '
	test "$("$DOCKERC" rm "$WEB")" = removed &&
	test "$("$DOCKERC" rm "$OOM")" = removed &&
	test "$("$DOCKERC" rm "$WEB")" = absent &&
	test_expect_code 3 "$DOCKERC" inspect-container "$WEB" &&
	"$DOCKERC" list "$RUN_LABEL" >list.out &&
	test ! -s list.out
'

test_expect_success 'build a small context (with .dockerignore and a build arg)' '
	mkdir -p ctx/sub &&
	cp "$ROOT/examples/hello/hello-static" ctx/hello &&
	echo data >ctx/sub/file &&
	echo secret >ctx/secret.key &&
	printf "*.key\n" >ctx/.dockerignore &&
	printf "FROM scratch\nARG V=none\nLABEL v=\$V\nCOPY . /\nENV HOST=0.0.0.0\nENTRYPOINT [\"/hello\"]\n" >ctx/Dockerfile &&
	t0=$(_now_ms) &&
	"$DOCKERC" build ctx gt-built:1 --arg V=42 >built.id 2>build.err &&
	say "build of a $(du -sk ctx | cut -f1) KiB context: $(($(_now_ms) - t0)) ms" &&
	cat build.err &&
	grep -E "^sha256:[0-9a-f]{64}$" built.id &&
	grep "build gt-built:1: Step 1/6 : FROM scratch" build.err &&
	"$DOCKERC" inspect gt-built:1 >b.out &&
	grep "^id=$(cat built.id) " b.out &&
	dk_api GET "/images/gt-built:1/json" >bimg.json &&
	python3 -c "
import json
c = json.load(open(\"bimg.json\"))[\"Config\"]
assert c[\"Labels\"][\"v\"] == \"42\", c[\"Labels\"]
"
'

test_expect_success 'a failing build: the error and its last lines, one line' '
	mkdir -p bad &&
	printf "FROM scratch\nCOPY nothing-here /x\n" >bad/Dockerfile &&
	test_expect_code 1 "$DOCKERC" build bad gt-bad:1 >/dev/null 2>bad.err &&
	tail -n 1 bad.err >bad.line &&
	cat bad.line &&
	grep "^build gt-bad:1: .*nothing-here.*(last lines: .*Step 2/2 : COPY nothing-here /x" bad.line
'

test_expect_success 'push to a local registry, remove, pull back: the same id' '
	start_registry &&
	"$DOCKERC" tag gt-built:1 "$REGISTRY/gt-built" 1 &&
	"$DOCKERC" push "$REGISTRY/gt-built:1" 2>push.err &&
	cat push.err &&
	grep "push $REGISTRY/gt-built:1: " push.err &&
	test "$("$DOCKERC" rmi "$REGISTRY/gt-built:1")" = removed &&
	test "$("$DOCKERC" rmi gt-built:1)" = removed &&
	test_expect_code 3 "$DOCKERC" inspect "$REGISTRY/gt-built:1" &&
	"$DOCKERC" pull "$REGISTRY/gt-built:1" 2>pull.err &&
	cat pull.err &&
	"$DOCKERC" inspect "$REGISTRY/gt-built:1" >pulled.out &&
	cat pulled.out &&
	grep "^id=$(cat built.id) " pulled.out &&
	grep "repo_digest=$REGISTRY/gt-built@sha256:" pulled.out
'

test_expect_success 'pull of a tag the registry does not have: one clear line' '
	test_expect_code 1 "$DOCKERC" pull "$REGISTRY/gt-built:nope" 2>err &&
	tail -n 1 err >err.line &&
	cat err.line &&
	grep "^pull $REGISTRY/gt-built:nope: .*manifest unknown" err.line
'

test_done
