#!/bin/sh
test_description='the operations added with maintenance mode, migrations, secrets and releases keep their roles: a viewer, or a deployer outside its scope or below admin, is refused (exit 3) and nothing changes'
. "$(dirname "$0")/lib/test-lib.sh"
. "$ROOT/tests/e2e/lib/daemon-lib.sh"

require_cmd python3 curl setsid
require_gantry

# the state a refused request must not change
snapshot() {
	"$GANTRY" maintenance status hello --env staging -o json >"$1.maint" &&
	"$GANTRY" secret list --env staging -o json >"$1.secrets" &&
	"$GANTRY" release history --env staging -o json >"$1.releases" &&
	"$GANTRY" history hello --env staging -o json >"$1.history"
}

test_expect_success 'setup: staging and production; a viewer, a staging deployer, a production deployer' '
	write_svc_spec <<-EOF &&
	project: t
	environments:
	  staging: { replicas: 1 }
	  production: { replicas: 1 }
	services:
	  hello:
	    artifact: app
	    run: ./hello
	    probes:
	      readiness: { http: /ready, period: 100ms }
	    stop_grace: 2s
	    drain_timeout: 1s
	EOF
	start_serve &&
	"$GANTRY" user add vic --role viewer >vic.token &&
	"$GANTRY" user add ana --role deployer --env staging >ana.token &&
	"$GANTRY" user add wes --role deployer --env production >wes.token &&
	"$GANTRY" deploy hello --env staging --version v1 --wait &&
	snapshot before
'

test_expect_success 'maintenance: a viewer and a deployer of another environment are refused' '
	as vic test_expect_code 3 "$GANTRY" maintenance on hello --env staging 2>err &&
	grep "permission denied: vic" err &&
	as wes test_expect_code 3 "$GANTRY" maintenance on hello --env staging 2>err &&
	grep "permission denied: wes" err &&
	test "$(pcode /)" = 200
'

test_expect_success 'db up and down are for admins: a deployer of the environment is refused' '
	as ana test_expect_code 3 "$GANTRY" db up hello --env staging 2>err &&
	grep "permission denied: ana" err &&
	as ana test_expect_code 3 "$GANTRY" db down hello --env staging --to 0 2>err &&
	grep "permission denied: ana" err
'

test_expect_success 'secrets: a viewer cannot set one, a deployer cannot read one' '
	echo s3cret-value | as vic test_expect_code 3 "$GANTRY" secret set db_password --env staging 2>err &&
	grep "permission denied: vic" err &&
	echo s3cret-value | "$GANTRY" secret set db_password --env staging &&
	as ana test_expect_code 3 "$GANTRY" secret get db_password --env staging >out 2>err &&
	grep "permission denied: ana" err &&
	! grep s3cret-value out err &&
	"$GANTRY" secret rm db_password --env staging
'

test_expect_success 'release: a viewer is refused' '
	as vic test_expect_code 3 "$GANTRY" release --env staging 2>err &&
	grep "permission denied: vic" err
'

test_expect_success '... and nothing changed: maintenance off, the same releases and history' '
	snapshot after &&
	test_cmp before.maint after.maint &&
	test_cmp before.releases after.releases &&
	test_cmp before.history after.history
'

test_expect_success 'SIGTERM stops the daemon' '
	stop_serve
'

test_expect_success 'a proxy peer given the wrong token: it never gets a table, status shows its push failing, no token in a log' '
	printf "%s\n" 0123456789abcdef0123456789abcdef >peer.token &&
	printf "%s\n" fedcba9876543210fedcba9876543210 >wrong.token &&
	PEER_PORT=$(free_port) && PEER_ADMIN=$(free_port) &&
	spawn_bg peer "$GANTRY" proxy --listen "127.0.0.1:$PEER_PORT" --admin "127.0.0.1:$PEER_ADMIN" \
		--admin-token-file "$TRASH/peer.token" --routes "$TRASH/peer-routes.json" --await-routes &&
	wait_for 10 "curl -s http://127.0.0.1:$PEER_ADMIN/healthz | grep -q \"waiting for routes\"" &&
	start_serve --proxy-peer "127.0.0.1:$PEER_ADMIN" --proxy-peer-token-file "$TRASH/wrong.token" &&
	wait_for 20 "\"$GANTRY\" status -o json >all.json && jcheck all.json \"[p.get(\\\"error\\\") for p in d[0][\\\"proxy\\\"][\\\"proxies\\\"]][1] == \\\"HTTP 401\\\"\"" &&
	"$GANTRY" status >st.txt &&
	cat st.txt &&
	grep "127.0.0.1:$PEER_ADMIN .*STALE.*push: HTTP 401" st.txt &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 -H "Host: $HOST" http://127.0.0.1:$PEER_PORT/)" = 000 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 http://127.0.0.1:$PEER_ADMIN/healthz)" = 503 &&
	test "$(curl -s --max-time 5 http://127.0.0.1:$PEER_ADMIN/healthz)" = "waiting for routes" &&
	! test -e peer-routes.json &&
	grep "peer=127.0.0.1:$PEER_ADMIN push of generation [0-9]* failed: HTTP 401" serve.log &&
	! grep -rF -e "$(cat peer.token)" -e "$(cat wrong.token)" serve.log peer.log "$GANTRY_HOME/logs" st.txt all.json
'

test_expect_success 'SIGTERM stops the daemon and the peer' '
	stop_serve &&
	kill_bg peer TERM && wait_bg peer 10 &&
	sanitizer_clean peer.log
'

test_done
