/*
 * driver_pg.c — migrations on PostgreSQL through libpq.
 *
 * The lock is golang-migrate's: a session-level pg_advisory_lock whose key
 * is crc32("<schema>\0schema_migrations\0<database>") * 1486364155 (its
 * GenerateAdvisoryLockId), so gantry and golang-migrate exclude each other
 * on the same database. It is taken with pg_try_advisory_lock every 100 ms
 * until the timeout (a blocking pg_advisory_lock could not be given up),
 * and it ends with the session: a controller killed mid-migration leaves
 * no lock once the server sees the connection gone; the session sets
 * client_connection_check_interval so that happens within a second even
 * while a statement runs (PostgreSQL 14+; older servers notice when the
 * statement ends), and the file's transaction, never committed, is rolled
 * back.
 *
 * Each file's statements are sent as one simple query inside an explicit
 * BEGIN .. COMMIT of their own: DDL is transactional in PostgreSQL. A file
 * must not hold its own BEGIN/COMMIT. A `-- gantry:no-transaction` file
 * (CREATE INDEX CONCURRENTLY, ALTER TYPE .. ADD VALUE on old servers) is
 * sent alone, outside a transaction; PostgreSQL runs a multi-statement
 * query as one implicit transaction, so such a file holds one statement.
 */
#include "common.h"
#include "migrate/migrate-int.h"
#include "util/buf.h"
#include "util/clock.h"
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

static PGconn *C(struct mig_db *db)
{
	return db->conn;
}

static void notice(void *arg, const char *msg)
{
	struct mig_db *db = arg;
	if (db->notices)
		hbuf_addstr(db->notices, msg); /* past the bound: dropped */
}

/* the server's message, one line (libpq's ends with a newline) */
static void pg_msg(char *buf, size_t len, const char *m)
{
	size_t n;
	strlcpy_g(buf, m ? m : "unknown error", len);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

int mig__pg_open(const char *url, struct mig_db *db, struct gerr *err)
{
	const char *kw[] = { "dbname", "fallback_application_name", "connect_timeout", NULL };
	const char *val[] = { url, "gantry-migrate", "10", NULL };
	PGconn *c = PQconnectdbParams(kw, val, 1);
	PGresult *r;
	char m[512];

	if (!c || PQstatus(c) != CONNECTION_OK) {
		char *red = mig__redact(url);
		pg_msg(m, sizeof(m), c ? PQerrorMessage(c) : "out of memory");
		gerr_set(err, "postgres %s: cannot connect: %s", red, m);
		free(red);
		PQfinish(c);
		return -1;
	}
	db->drv = &mig__postgres;
	db->conn = c;
	PQsetNoticeProcessor(c, notice, db);
	/* PostgreSQL 14+: a dead client is noticed mid-statement (see the top) */
	if (PQserverVersion(c) >= 140000) {
		r = PQexec(c, "SET client_connection_check_interval = '1s'");
		PQclear(r);
	}
	return 0;
}

static int exec(struct mig_db *db, const char *sql, struct gerr *err)
{
	PGresult *r = PQexec(C(db), sql);
	int st = PQresultStatus(r), rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		char m[512];
		pg_msg(m, sizeof(m), PQresultErrorMessage(r));
		rc = gerr_set(err, "postgres: %s", m);
	}
	PQclear(r);
	return rc;
}

static int p_query(struct mig_db *db, const char *sql, int n,
		   const char *const *params, mig__row_fn fn, void *arg,
		   struct gerr *err)
{
	PGresult *r = PQexecParams(C(db), sql, n, NULL, params, NULL, NULL, 0);
	int st = PQresultStatus(r), rc = -1;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		char m[512];
		pg_msg(m, sizeof(m), PQresultErrorMessage(r));
		gerr_set(err, "postgres: %s", m);
		goto out;
	}
	for (int i = 0; fn && i < PQntuples(r); i++) {
		const char *cols[16];
		int nc = MIN(PQnfields(r), 16);
		for (int j = 0; j < nc; j++)
			cols[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
		if (fn(arg, nc, cols) < 0)
			goto out;
	}
	rc = 0;
out:
	PQclear(r);
	return rc;
}

/* golang-migrate's key; see the top */
static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

struct names {
	char schema[128], dbname[128];
};

static int names_row(void *arg, int n, const char *const *c)
{
	struct names *nm = arg;
	if (n >= 2) {
		strlcpy_g(nm->schema, c[0] ? c[0] : "public", sizeof(nm->schema));
		strlcpy_g(nm->dbname, c[1] ? c[1] : "", sizeof(nm->dbname));
	}
	return 0;
}

static int lock_key(struct mig_db *db, char *key, size_t len, struct gerr *err)
{
	struct names nm = { "public", "" };
	unsigned char buf[300];
	size_t n;
	uint32_t sum;

	if (p_query(db, "SELECT current_schema(), current_database()", 0, NULL,
		    names_row, &nm, err) < 0)
		return -1;
	n = (size_t)snprintf((char *)buf, sizeof(buf), "%s%cschema_migrations%c%s",
			     nm.schema, 0, 0, nm.dbname);
	sum = crc32_ieee(buf, MIN(n, sizeof(buf) - 1));
	sum = sum * (uint32_t)1486364155u;
	snprintf(key, len, "%u", sum);
	return 0;
}

static int got_row(void *arg, int n, const char *const *c)
{
	*(bool *)arg = n >= 1 && c[0] && !strcmp(c[0], "t");
	return 0;
}

static int holder_row(void *arg, int n, const char *const *c)
{
	char *out = arg;
	if (n >= 3)
		snprintf(out, 200, " (held by backend pid %s, application '%s', since %s)",
			 c[0] ? c[0] : "?", c[1] ? c[1] : "", c[2] ? c[2] : "?");
	return 0;
}

static int p_lock(struct mig_db *db, int timeout_ms, struct gerr *err)
{
	char key[16], who[200] = "";
	int64_t deadline = clock_mono_ms() + timeout_ms;
	bool got = false;

	if (lock_key(db, key, sizeof(key), err) < 0)
		return -1;
	for (;;) {
		if (p_query(db, "SELECT pg_try_advisory_lock($1::bigint)", 1,
			    (const char *[]){ key }, got_row, &got, err) < 0)
			return -1;
		if (got)
			return 0;
		if (clock_mono_ms() >= deadline)
			break;
		usleep(100 * 1000);
	}
	p_query(db,
		"SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l "
		"JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
		"AND l.granted AND l.classid = 0 AND l.objid = $1::bigint::oid LIMIT 1",
		1, (const char *[]){ key }, holder_row, who, NULL);
	return gerr_set(err, "migration lock: another migration runner holds the lock%s; "
			"gave up after %d ms (migrations.lock_timeout)", who, timeout_ms);
}

static void p_unlock(struct mig_db *db)
{
	char key[16];
	if (lock_key(db, key, sizeof(key), NULL) == 0)
		p_query(db, "SELECT pg_advisory_unlock($1::bigint)", 1,
			(const char *[]){ key }, NULL, NULL, NULL);
}

static int p_ensure(struct mig_db *db, struct gerr *err)
{
	/* golang-migrate's DDL for schema_migrations, exactly */
	return exec(db,
		    "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, "
		    " dirty boolean not null);"
		    "CREATE TABLE IF NOT EXISTS gantry_migrations (version bigint PRIMARY KEY, "
		    " name text NOT NULL, checksum text NOT NULL, contract integer NOT NULL, "
		    " applied_at text NOT NULL, applied_by text NOT NULL, revision integer NOT NULL);"
		    "CREATE TABLE IF NOT EXISTS gantry_migrations_log (id bigserial PRIMARY KEY, "
		    " at text NOT NULL, direction text NOT NULL, version bigint NOT NULL, name text NOT NULL, "
		    " checksum text NOT NULL, applied_by text NOT NULL, revision integer NOT NULL, "
		    " result text NOT NULL, output text NOT NULL);",
		    err);
}

static int p_begin(struct mig_db *db, struct gerr *err)
{
	return exec(db, "BEGIN", err);
}

static int p_commit(struct mig_db *db, struct gerr *err)
{
	return exec(db, "COMMIT", err);
}

static void p_rollback(struct mig_db *db)
{
	exec(db, "ROLLBACK", NULL);
}

static int p_set_version(struct mig_db *db, int64_t version, bool dirty,
			 struct gerr *err)
{
	char v[24];
	if (exec(db, "DELETE FROM schema_migrations", err) < 0)
		return -1;
	if (version == MIG_NIL_VERSION)
		return 0;
	snprintf(v, sizeof(v), "%" PRId64, version);
	return p_query(db, "INSERT INTO schema_migrations (version, dirty) VALUES ($1::bigint, $2::boolean)",
		       2, (const char *[]){ v, dirty ? "true" : "false" }, NULL, NULL, err);
}

static int p_run(struct mig_db *db, const char *name, const char *text,
		 struct hbuf *out, struct gerr *err)
{
	PGresult *r;
	int rc = 0;

	(void)out;
	/* PQexec returns the last result; an error stops the rest */
	r = PQexec(C(db), text);
	if (!r || PQresultStatus(r) == PGRES_FATAL_ERROR ||
	    PQresultStatus(r) == PGRES_NONFATAL_ERROR || PQresultStatus(r) == PGRES_BAD_RESPONSE) {
		const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
		const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		char m[512];
		pg_msg(m, sizeof(m), prim ? prim : PQerrorMessage(C(db)));
		if (pos) {
			long off = strtol(pos, NULL, 10);
			rc = gerr_set(err, "%s:%d: %s", name,
				      mig__line_of(text, off > 0 ? (size_t)off - 1 : 0), m);
		} else
			rc = gerr_set(err, "%s: %s", name, m);
	}
	PQclear(r);
	return rc;
}

/* runs argv with PATH, its output to log (a file), and waits */
static int run_tool(char *const argv[], const char *log, struct gerr *err)
{
	pid_t pid = fork();
	int status;
	if (pid < 0)
		return gerr_set(err, "%s: fork: %s", argv[0], strerror(errno));
	if (pid == 0) {
		FILE *f = log ? freopen(log, "w", stderr) : NULL;
		(void)f;
		execvp(argv[0], argv);
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return gerr_set(err, "%s: not found (Debian: postgresql-client)", argv[0]);
	return gerr_set(err, "%s failed (exit %d), see %s", argv[0],
			WIFEXITED(status) ? WEXITSTATUS(status) : -1, log ? log : "stderr");
}

static int p_snapshot(struct mig_db *db, const char *url, const char *path,
		      struct gerr *err)
{
	char *log = xasprintf("%s.log", path);
	char *argv[] = { (char *)"pg_dump", (char *)"--format=custom", (char *)"--file",
			 (char *)path, (char *)"--dbname", (char *)url, NULL };
	int rc = run_tool(argv, log, err);
	(void)db;
	free(log);
	return rc;
}

/*
 * pg_restore --clean drops and recreates what the dump holds, and leaves
 * alone what was created after it (a table a later migration made): those
 * relations are dropped here, so the schema is the snapshot's. The dump's
 * table of contents (pg_restore --list) says what it holds.
 */
static int drop_newer(struct mig_db *db, const char *path, const char *log, struct gerr *err)
{
	static const struct { char kind; const char *toc, *drop; } kinds[] = {
		{ 'r', " TABLE ", "TABLE" }, { 'p', " TABLE ", "TABLE" }, { 'v', " VIEW ", "VIEW" },
		{ 'm', " MATERIALIZED VIEW ", "MATERIALIZED VIEW" }, { 'S', " SEQUENCE ", "SEQUENCE" },
	};
	char *toc_path = xasprintf("%s.toc", path), *toc = NULL;
	char *argv[] = { (char *)"pg_restore", (char *)"--list", (char *)"--file", toc_path, (char *)path, NULL };
	PGresult *res = NULL;
	struct hbuf sql;
	int ret = -1;
	FILE *f;
	long n;

	hbuf_init(&sql, 1 << 20);
	if (run_tool(argv, log, err) < 0)
		goto out;
	if (!(f = fopen(toc_path, "r")) || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
		if (f)
			fclose(f);
		gerr_set(err, "%s: %s", toc_path, strerror(errno));
		goto out;
	}
	toc = xcalloc(1, (size_t)n + 1);
	if (fread(toc, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		gerr_set(err, "%s: short read", toc_path);
		goto out;
	}
	fclose(f);
	res = PQexec(C(db), "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON "
			    "n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname NOT IN "
			    "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND NOT EXISTS "
			    "(SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		gerr_set(err, "restore: listing relations: %s", PQerrorMessage(C(db)));
		goto out;
	}
	hbuf_printf(&sql, "BEGIN;");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *nsp = PQgetvalue(res, i, 0), *rel = PQgetvalue(res, i, 1);
		char kind = PQgetvalue(res, i, 2)[0], *pat, *qn, *qr;
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			if (kinds[k].kind != kind)
				continue;
			pat = xasprintf("%s%s %s ", kinds[k].toc, nsp, rel);
			if (!strstr(toc, pat)) {
				qn = PQescapeIdentifier(C(db), nsp, strlen(nsp));
				qr = PQescapeIdentifier(C(db), rel, strlen(rel));
				if (qn && qr)
					hbuf_printf(&sql, "DROP %s IF EXISTS %s.%s CASCADE;", kinds[k].drop, qn, qr);
				PQfreemem(qn);
				PQfreemem(qr);
			}
			free(pat);
		}
	}
	hbuf_printf(&sql, "COMMIT;");
	hbuf_append(&sql, "", 1); /* a C string for PQexec */
	PQclear(res);
	res = PQexec(C(db), sql.data);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		gerr_set(err, "restore: dropping what the snapshot does not hold: %s", PQerrorMessage(C(db)));
		PQclear(PQexec(C(db), "ROLLBACK"));
		goto out;
	}
	ret = 0;
out:
	PQclear(res);
	hbuf_release(&sql);
	unlink(toc_path);
	free(toc_path);
	free(toc);
	return ret;
}

static int p_restore(struct mig_db *db, const char *url, const char *path,
		     struct gerr *err)
{
	char *log = xasprintf("%s.restore.log", path);
	char *argv[] = { (char *)"pg_restore", (char *)"--clean", (char *)"--if-exists",
			 (char *)"--single-transaction", (char *)"--dbname", (char *)url,
			 (char *)path, NULL };
	int rc;
	(void)db;
	if (access(path, R_OK) < 0) {
		free(log);
		return gerr_set(err, "snapshot %s: %s", path, strerror(errno));
	}
	rc = run_tool(argv, log, err);
	if (rc == 0)
		rc = drop_newer(db, path, log, err);
	free(log);
	return rc;
}

static void p_close(struct mig_db *db)
{
	PQfinish(C(db));
}

const struct mig_driver mig__postgres = {
	.name = "postgres",
	.lock = p_lock,
	.unlock = p_unlock,
	.ensure = p_ensure,
	.begin = p_begin,
	.commit = p_commit,
	.rollback = p_rollback,
	.set_version = p_set_version,
	.query = p_query,
	.run = p_run,
	.snapshot = p_snapshot,
	.restore = p_restore,
	.close = p_close,
};
