# pg-lib.sh - a PostgreSQL 15 server of the test's own (t65*). Source it
# after lib/test-lib.sh:
#
#   . "$ROOT/tests/e2e/lib/pg-lib.sh"
#   start_postgres                  # or skip_all with the reason
#
#   start_postgres   initdb into $TRASH/pg, a port from free_port, a unix
#                    socket dir of its own ($TRASH/pgsock), pg_ctl start -w;
#                    sets PG_PORT, PG_SOCK, PG_URL (postgres://gantry@/app?...,
#                    database "app", user "gantry", trust over the socket only)
#                    and records the postmaster's pid for test-lib's cleanup.
#                    It never uses a cluster the system may run (Debian's
#                    postgresql package may start one on 5432).
#   stop_postgres    pg_ctl stop -m fast; the cleanup kills the pid otherwise
#   psql_q SQL       one query through psql as gantry on app; rows, fields joined by |
#
# The binaries come from PATH, else /usr/lib/postgresql/15/bin (Debian).
# initdb refuses to run as root: as root, the server runs as gantry-run
# (scripts/install-deps.sh creates it), which owns $TRASH/pg.

PG_BIN=
PG_PORT=
PG_SOCK=
PG_URL=
PG_USER=

_pg_find() {
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		PG_BIN=$(dirname "$(command -v pg_ctl)")
	elif [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
		PG_BIN=/usr/lib/postgresql/15/bin
	else
		return 1
	fi
	command -v psql >/dev/null 2>&1 || [ -x "$PG_BIN/psql" ] || return 1
}

# _pg_as CMD...: runs CMD as the server's user
_pg_as() {
	if [ -n "$PG_USER" ]; then
		setpriv --reuid="$PG_USER" --regid="$(id -g "$PG_USER")" --clear-groups -- env HOME="$TRASH" "$@"
	else
		"$@"
	fi
}

start_postgres() {
	_pg_find || skip_all "PostgreSQL 15 binaries not found (apt-get install postgresql-15 postgresql-client-15)"
	if [ "$(id -u)" = 0 ]; then
		id gantry-run >/dev/null 2>&1 || skip_all "running as root and there is no gantry-run user for the server"
		command -v setpriv >/dev/null 2>&1 || skip_all "running as root without setpriv"
		PG_USER=gantry-run
	fi
	PG_PORT=$(free_port) || skip_all "no free port"
	PG_SOCK=$TRASH/pgsock
	mkdir -p "$TRASH/pg" "$PG_SOCK" || return 1
	[ -z "$PG_USER" ] || chown "$PG_USER" "$TRASH/pg" "$PG_SOCK" || return 1
	_pg_as "$PG_BIN/initdb" -D "$TRASH/pg/data" -U gantry --auth=trust -E UTF8 --no-locale \
		>"$TRASH/initdb.log" 2>&1 || skip_all "initdb failed: $(tail -n 3 "$TRASH/initdb.log" | tr '\n' ' ')"
	_pg_as "$PG_BIN/pg_ctl" -D "$TRASH/pg/data" -w -t 30 -l "$TRASH/pg/postgres.log" \
		-o "-k $PG_SOCK -p $PG_PORT -c listen_addresses= -c fsync=off -c full_page_writes=off" start \
		>"$TRASH/pg_ctl.log" 2>&1 || skip_all "postgres did not start: $(tail -n 3 "$TRASH/pg/postgres.log" | tr '\n' ' ')"
	_pg_pid=$(head -n 1 "$TRASH/pg/data/postmaster.pid") || return 1
	echo "$_pg_pid postgres" >>"$TRASH/pids"
	PG_URL="postgres://gantry@/app?host=$PG_SOCK&port=$PG_PORT"
	psql_q "SELECT 1" postgres >/dev/null &&
	psql_q "CREATE DATABASE app" postgres >/dev/null
}

stop_postgres() {
	_pg_as "$PG_BIN/pg_ctl" -D "$TRASH/pg/data" -m fast -w stop >>"$TRASH/pg_ctl.log" 2>&1
}

psql_q() {
	_psql=psql
	command -v psql >/dev/null 2>&1 || _psql=$PG_BIN/psql
	"$_psql" -X -q -t -A -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U gantry -d "${2:-app}" -c "$1"
}
