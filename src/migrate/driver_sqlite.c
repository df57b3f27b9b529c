/*
 * driver_sqlite.c — migrations on a SQLite file. The lock is each file's
 * BEGIN EXCLUSIVE (waiting up to the lock timeout as the busy timeout):
 * one writer at a time, and a process killed mid-file leaves a journal that
 * the next opener rolls back, so a SQLite database is never dirty unless a
 * no-transaction file failed. schema_migrations is golang-migrate's sqlite3
 * DDL (version uint64, dirty bool, a unique index on version).
 */
#include "common.h"
#include "migrate/migrate-int.h"
#include <sqlite3.h>

static sqlite3 *H(struct mig_db *db)
{
	return db->conn;
}

static int exec(struct mig_db *db, const char *sql, struct gerr *err)
{
	char *msg = NULL;
	if (sqlite3_exec(H(db), sql, NULL, NULL, &msg) != SQLITE_OK) {
		gerr_set(err, "sqlite: %s", msg ? msg : sqlite3_errmsg(H(db)));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int mig__sqlite_open(const char *path, struct mig_db *db, struct gerr *err)
{
	sqlite3 *h = NULL;
	char *p = xstrdup(path), *q = strchr(p, '?');

	if (q) /* golang-migrate's ?x-... options: none of them apply here */
		*q = 0;
	if (!*p) {
		free(p);
		return gerr_set(err, "database url: sqlite3:// needs a file path");
	}
	if (sqlite3_open_v2(p, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				       SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		gerr_set(err, "sqlite %s: %s", p, h ? sqlite3_errmsg(h) : "cannot open");
		sqlite3_close(h);
		free(p);
		return -1;
	}
	free(p);
	db->drv = &mig__sqlite;
	db->conn = h;
	sqlite3_busy_timeout(h, 5000);
	return 0;
}

static int s_lock(struct mig_db *db, int timeout_ms, struct gerr *err)
{
	sqlite3_busy_timeout(H(db), timeout_ms);
	/* can it be locked now (or within the timeout)? each file locks again */
	if (exec(db, "BEGIN EXCLUSIVE", err) < 0) {
		char m[sizeof(err->msg)];
		strlcpy_g(m, err->msg, sizeof(m));
		return gerr_set(err, "migration lock: the database is locked by another writer (waited %d ms): %s",
				timeout_ms, m);
	}
	exec(db, "ROLLBACK", NULL);
	return 0;
}

static void s_unlock(struct mig_db *db)
{
	(void)db;
}

static int s_ensure(struct mig_db *db, struct gerr *err)
{
	return exec(db,
		    "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64, dirty bool);"
		    "CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);"
		    "CREATE TABLE IF NOT EXISTS gantry_migrations (version bigint PRIMARY KEY, "
		    " name text NOT NULL, checksum text NOT NULL, contract integer NOT NULL, "
		    " applied_at text NOT NULL, applied_by text NOT NULL, revision integer NOT NULL);"
		    "CREATE TABLE IF NOT EXISTS gantry_migrations_log (id INTEGER PRIMARY KEY AUTOINCREMENT, "
		    " at text NOT NULL, direction text NOT NULL, version bigint NOT NULL, name text NOT NULL, "
		    " checksum text NOT NULL, applied_by text NOT NULL, revision integer NOT NULL, "
		    " result text NOT NULL, output text NOT NULL);",
		    err);
}

static int s_begin(struct mig_db *db, struct gerr *err)
{
	if (exec(db, "BEGIN EXCLUSIVE", err) < 0) {
		char m[sizeof(err->msg)];
		strlcpy_g(m, err->msg, sizeof(m));
		return gerr_set(err, "migration lock: %s", m);
	}
	return 0;
}

static int s_commit(struct mig_db *db, struct gerr *err)
{
	if (exec(db, "COMMIT", err) < 0) {
		exec(db, "ROLLBACK", NULL);
		return -1;
	}
	return 0;
}

static void s_rollback(struct mig_db *db)
{
	if (!sqlite3_get_autocommit(H(db)))
		exec(db, "ROLLBACK", NULL);
}

static int s_query(struct mig_db *db, const char *sql, int n,
		   const char *const *params, mig__row_fn fn, void *arg,
		   struct gerr *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	if (sqlite3_prepare_v2(H(db), sql, -1, &st, NULL) != SQLITE_OK) {
		gerr_set(err, "sqlite: %s", sqlite3_errmsg(H(db)));
		goto out;
	}
	for (int i = 0; i < n; i++)
		sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_TRANSIENT);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int nc = sqlite3_column_count(st);
		const char *cols[16];
		if (nc > 16)
			nc = 16;
		for (int i = 0; i < nc; i++)
			cols[i] = (const char *)sqlite3_column_text(st, i);
		if (fn && fn(arg, nc, cols) < 0)
			goto out;
	}
	if (r != SQLITE_DONE) {
		gerr_set(err, "sqlite: %s", sqlite3_errmsg(H(db)));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int s_set_version(struct mig_db *db, int64_t version, bool dirty,
			 struct gerr *err)
{
	char v[24];
	if (s_query(db, "DELETE FROM schema_migrations", 0, NULL, NULL, NULL, err) < 0)
		return -1;
	if (version == MIG_NIL_VERSION)
		return 0;
	snprintf(v, sizeof(v), "%" PRId64, version);
	/* dirty as 0/1, what golang-migrate's sqlite3 driver stores for a bool */
	return s_query(db, dirty ? "INSERT INTO schema_migrations (version, dirty) VALUES (CAST($1 AS INTEGER), 1)"
				 : "INSERT INTO schema_migrations (version, dirty) VALUES (CAST($1 AS INTEGER), 0)",
		       1, (const char *[]){ v }, NULL, NULL, err);
}

/* where the statement that starts at p really starts: blanks and comments skipped */
static const char *stmt_start(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			if (!e)
				return p;
			p = e + 2;
		} else
			return p;
	}
}

/* statement by statement, so an error names its line in the file */
static int s_run(struct mig_db *db, const char *name, const char *text,
		 struct hbuf *out, struct gerr *err)
{
	const char *p = text, *tail;
	(void)out;
	while (*p) {
		sqlite3_stmt *st = NULL;
		int r;
		if (sqlite3_prepare_v2(H(db), p, -1, &st, &tail) != SQLITE_OK) {
			/* the error is in the statement that starts at p */
			const char *s = stmt_start(p);
			return gerr_set(err, "%s:%d: %s", name, mig__line_of(text, (size_t)(s - text)),
					sqlite3_errmsg(H(db)));
		}
		if (!st) { /* only comments or blanks */
			if (tail == p)
				break;
			p = tail;
			continue;
		}
		while ((r = sqlite3_step(st)) == SQLITE_ROW)
			;
		if (r != SQLITE_DONE) {
			const char *s = stmt_start(p);
			gerr_set(err, "%s:%d: %s", name, mig__line_of(text, (size_t)(s - text)),
				 sqlite3_errmsg(H(db)));
			sqlite3_finalize(st);
			return -1;
		}
		sqlite3_finalize(st);
		p = tail;
	}
	return 0;
}

static int s_backup(sqlite3 *from, sqlite3 *to, struct gerr *err)
{
	sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
	int r;
	if (!b)
		return gerr_set(err, "sqlite backup: %s", sqlite3_errmsg(to));
	while ((r = sqlite3_backup_step(b, 256)) == SQLITE_OK || r == SQLITE_BUSY ||
	       r == SQLITE_LOCKED)
		sqlite3_sleep(10);
	sqlite3_backup_finish(b);
	if (r != SQLITE_DONE)
		return gerr_set(err, "sqlite backup: %s", sqlite3_errstr(r));
	return 0;
}

static int s_snapshot(struct mig_db *db, const char *url, const char *path,
		      struct gerr *err)
{
	sqlite3 *to = NULL;
	int rc;
	(void)url;
	if (sqlite3_open(path, &to) != SQLITE_OK) {
		gerr_set(err, "snapshot %s: %s", path, to ? sqlite3_errmsg(to) : "cannot open");
		sqlite3_close(to);
		return -1;
	}
	rc = s_backup(H(db), to, err);
	sqlite3_close(to);
	return rc;
}

static int s_restore(struct mig_db *db, const char *url, const char *path,
		     struct gerr *err)
{
	sqlite3 *from = NULL;
	int rc;
	(void)url;
	if (access(path, R_OK) < 0)
		return gerr_set(err, "snapshot %s: %s", path, strerror(errno));
	if (sqlite3_open_v2(path, &from, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		gerr_set(err, "snapshot %s: %s", path, from ? sqlite3_errmsg(from) : "cannot open");
		sqlite3_close(from);
		return -1;
	}
	rc = s_backup(from, H(db), err);
	sqlite3_close(from);
	return rc;
}

static void s_close(struct mig_db *db)
{
	sqlite3_close(H(db));
}

const struct mig_driver mig__sqlite = {
	.name = "sqlite",
	.lock = s_lock,
	.unlock = s_unlock,
	.ensure = s_ensure,
	.begin = s_begin,
	.commit = s_commit,
	.rollback = s_rollback,
	.set_version = s_set_version,
	.query = s_query,
	.run = s_run,
	.snapshot = s_snapshot,
	.restore = s_restore,
	.close = s_close,
};
