/*
 * store_sqlite.c — the SQLite store (WAL mode, one transaction per state
 * transition, versioned schema migrations).
 */
#include "common.h"
#include "store/store.h"
#include "store/store-int.h"
#include "util/clock.h"
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

struct store {
	sqlite3 *db;
	int in_tx;
	/* a write inside store_begin failed: the rest of the transaction is
	 * refused and store_commit rolls it back (all or nothing, even for a
	 * caller that did not check each step) */
	bool tx_failed;
	/* the store cannot write (store_fault in store.h): set by a write that
	 * failed so, cleared by one that was committed */
	bool faulted;
	int fault_code;
	int64_t fault_since_ms;
	char fault_msg[256];
};

/* Append-only: never edit a shipped migration, add a new one. */
static const char *const migrations[] = {
	/* 1 */
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE revisions ("
	"  id INTEGER PRIMARY KEY, service TEXT NOT NULL, environment TEXT NOT NULL,"
	"  number INTEGER NOT NULL, version TEXT NOT NULL, digest TEXT NOT NULL,"
	"  config TEXT NOT NULL, kind TEXT NOT NULL, source INTEGER NOT NULL DEFAULT 0,"
	"  status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', deployed_by TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL, artifact_pruned INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (service, environment, number));"
	"CREATE TABLE replicas ("
	"  id TEXT PRIMARY KEY, service TEXT NOT NULL, environment TEXT NOT NULL,"
	"  revision INTEGER NOT NULL, port INTEGER NOT NULL, pid INTEGER NOT NULL,"
	"  start_time INTEGER NOT NULL, state TEXT NOT NULL, restarts INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL, ready_since INTEGER NOT NULL, last_exit TEXT NOT NULL);"
	"CREATE TABLE svcenvs ("
	"  service TEXT NOT NULL, environment TEXT NOT NULL, target_revision INTEGER NOT NULL,"
	"  stable_revision INTEGER NOT NULL, replicas INTEGER NOT NULL, phase TEXT NOT NULL,"
	"  message TEXT NOT NULL, PRIMARY KEY (service, environment));"
	"CREATE TABLE rollouts ("
	"  id INTEGER PRIMARY KEY, service TEXT NOT NULL, environment TEXT NOT NULL,"
	"  revision INTEGER NOT NULL, from_revision INTEGER NOT NULL, strategy TEXT NOT NULL,"
	"  phase TEXT NOT NULL, step INTEGER NOT NULL, steps INTEGER NOT NULL,"
	"  message TEXT NOT NULL, started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
	"  deadline_at INTEGER NOT NULL);"
	"CREATE INDEX rollouts_svcenv ON rollouts (service, environment, id);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, service TEXT NOT NULL,"
	"  environment TEXT NOT NULL, revision INTEGER NOT NULL, kind TEXT NOT NULL,"
	"  message TEXT NOT NULL);",
	/* 2: traffic overrides and strategy state (canary/blue-green), analysis measurements */
	"ALTER TABLE svcenvs ADD COLUMN traffic TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE rollouts ADD COLUMN state TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE measurements ("
	"  id INTEGER PRIMARY KEY, rollout_id INTEGER NOT NULL, ts INTEGER NOT NULL,"
	"  analysis TEXT NOT NULL, metric TEXT NOT NULL, revision INTEGER NOT NULL,"
	"  value REAL, verdict TEXT NOT NULL, message TEXT NOT NULL);"
	"CREATE INDEX measurements_rollout ON measurements (rollout_id, id);",
	/* 3: gates and records (src/store/store_records.c) */
	"CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL, created_by TEXT NOT NULL);"
	"CREATE TABLE incidents (id INTEGER PRIMARY KEY, severity TEXT NOT NULL, title TEXT NOT NULL,"
	"  service TEXT NOT NULL, environment TEXT NOT NULL, opened_by TEXT NOT NULL,"
	"  opened_at INTEGER NOT NULL, closed_by TEXT NOT NULL DEFAULT '', closed_at INTEGER NOT NULL DEFAULT 0,"
	"  resolution TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE deployments (id INTEGER PRIMARY KEY, service TEXT NOT NULL, environment TEXT NOT NULL,"
	"  kind TEXT NOT NULL, requester TEXT NOT NULL, state TEXT NOT NULL, request TEXT NOT NULL,"
	"  gates TEXT NOT NULL, approvals_needed INTEGER NOT NULL, approval_ttl INTEGER NOT NULL,"
	"  version TEXT NOT NULL, digest TEXT NOT NULL, emergency INTEGER NOT NULL, reason TEXT NOT NULL,"
	"  commit_time INTEGER NOT NULL, created_at INTEGER NOT NULL, rollout_id INTEGER NOT NULL DEFAULT 0,"
	"  revision INTEGER NOT NULL DEFAULT 0, from_revision INTEGER NOT NULL DEFAULT 0,"
	"  started_at INTEGER NOT NULL DEFAULT 0, ended_at INTEGER NOT NULL DEFAULT 0,"
	"  result TEXT NOT NULL DEFAULT '', result_reason TEXT NOT NULL DEFAULT '',"
	"  checks TEXT NOT NULL DEFAULT '[]');"
	"CREATE INDEX deployments_svcenv ON deployments (service, environment, id);"
	"CREATE INDEX deployments_rollout ON deployments (rollout_id);"
	"CREATE TABLE approvals (deployment_id INTEGER NOT NULL, approver TEXT NOT NULL,"
	"  decision TEXT NOT NULL, at INTEGER NOT NULL, comment TEXT NOT NULL,"
	"  PRIMARY KEY (deployment_id, approver));"
	"CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, actor TEXT NOT NULL,"
	"  action TEXT NOT NULL, target TEXT NOT NULL, details TEXT NOT NULL, prev TEXT NOT NULL,"
	"  hash TEXT NOT NULL);",
	/* 4: the strategy a deployment rolled out with (canary, bluegreen, rolling, recreate) */
	"ALTER TABLE deployments ADD COLUMN strategy TEXT NOT NULL DEFAULT '';",
	/* 5: webhook deliveries not yet made (src/records/notify.c): they survive a restart */
	"CREATE TABLE outbox (id INTEGER PRIMARY KEY, event TEXT NOT NULL, url TEXT NOT NULL,"
	"  body TEXT NOT NULL, msg_id TEXT NOT NULL, ts INTEGER NOT NULL, signature TEXT,"
	"  attempts INTEGER NOT NULL DEFAULT 0, next_at_ms INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX outbox_due ON outbox (next_at_ms, id);",
	/* 6: `gantry status` looks for deployments waiting for approval on every call */
	"CREATE INDEX deployments_pending ON deployments (service, environment) WHERE state = 'pending_approval';",
	/* 7: the controller owns the spec: numbered immutable spec versions (store_spec.c); a
	 * deployment records what it resolved from them, an approval what it approved */
	"CREATE TABLE spec_versions (version INTEGER PRIMARY KEY, digest TEXT NOT NULL, name TEXT NOT NULL,"
	"  text TEXT NOT NULL, actor TEXT NOT NULL, created_at INTEGER NOT NULL, diff TEXT NOT NULL);"
	"ALTER TABLE deployments ADD COLUMN spec_version INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE deployments ADD COLUMN config_digest TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE deployments ADD COLUMN config TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE approvals ADD COLUMN binding TEXT NOT NULL DEFAULT '';",
	/* 8: a user's role scoped to environments and services (comma-separated names, '' = all) */
	"ALTER TABLE users ADD COLUMN environments TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE users ADD COLUMN services TEXT NOT NULL DEFAULT '';",
	/* 9: a webhook is signed when it is posted, with the secret it names (never its value here),
	 * and may reach a private address only when its target said allow_private */
	"ALTER TABLE outbox ADD COLUMN secret TEXT;"
	"ALTER TABLE outbox ADD COLUMN allow_private INTEGER NOT NULL DEFAULT 0;",
	/* 10: who made an audit entry, from the kernel (SO_PEERCRED): NULL uid/pid and '' peer on the
	 * entries written before (v1, records/audit.h) */
	"ALTER TABLE audit ADD COLUMN uid INTEGER;"
	"ALTER TABLE audit ADD COLUMN pid INTEGER;"
	"ALTER TABLE audit ADD COLUMN peer TEXT NOT NULL DEFAULT '';",
	/* 11: a replica run as a container of the Docker Engine names it ('' for a process) */
	"ALTER TABLE replicas ADD COLUMN container TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE replicas ADD COLUMN host TEXT NOT NULL DEFAULT '';",
	/* 12: the secret store (store_secret.c): each version an age file, never a plain value */
	"CREATE TABLE secrets ("
	"  environment TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,"
	"  ciphertext BLOB NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,"
	"  removed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (environment, name, version));",
	/* 13: maintenance mode of a service environment (store_maint.c): a row while it is on.
	 * allow_headers holds the bypass secrets: the file is 0600, like the routes file */
	"CREATE TABLE maintenance (service TEXT NOT NULL, environment TEXT NOT NULL,"
	"  message TEXT NOT NULL DEFAULT '', retry_after_s INTEGER NOT NULL,"
	"  allow_headers TEXT NOT NULL DEFAULT '[]', set_by TEXT NOT NULL, set_at_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (service, environment));",
	/* 14: a release (store_release.c, daemon/releases.c): several services of an environment in
	 * dependency order; services is the JSON the controller drives it from (the record is the state) */
	"CREATE TABLE releases (id INTEGER PRIMARY KEY, environment TEXT NOT NULL, state TEXT NOT NULL,"
	"  on_failure TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL, message TEXT NOT NULL DEFAULT '', gates TEXT NOT NULL DEFAULT '',"
	"  services TEXT NOT NULL);",
	/* 15: feature flags (store_flags.c): every change of a flag's state in an environment,
	 * versioned (the newest row is the state), and each environment's OFREP token */
	"CREATE TABLE flag_changes (environment TEXT NOT NULL, flag TEXT NOT NULL, version INTEGER NOT NULL,"
	"  from_state TEXT NOT NULL, to_state TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',"
	"  at_ms INTEGER NOT NULL, PRIMARY KEY (environment, flag, version));"
	"CREATE TABLE flag_tokens (environment TEXT PRIMARY KEY, token TEXT NOT NULL, created_at_ms INTEGER NOT NULL);",
	/* 16: a flag turned off as a rollback lever (rollback_on or an analysis), on the deployment
	 * record that rolled out the revision it protected (store_flags.c) */
	"CREATE TABLE deployment_flag_offs (deployment_id INTEGER NOT NULL, environment TEXT NOT NULL,"
	"  flag TEXT NOT NULL, revision INTEGER NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL,"
	"  flag_version INTEGER NOT NULL, at_ms INTEGER NOT NULL);"
	"CREATE INDEX deployment_flag_offs_id ON deployment_flag_offs (deployment_id);",
};

sqlite3 *store__db(struct store *s)
{
	return s->db;
}

/*
 * Whether an (extended) result code says the store cannot write at all: a
 * full disk, an I/O error, a read-only file or directory, a journal it
 * cannot create. SQLITE_BUSY/LOCKED is contention, CONSTRAINT and the
 * like a bad row: neither is a fault of the store.
 */
bool store_code_is_fault(int code)
{
	switch (code & 0xff) {
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
		return true;
	default:
		return false;
	}
}

/* a write failed with code: note the fault (its first message and since
 * when) when it is one; the first message is kept until a write succeeds */
static void note_write_failed(struct store *s, int code)
{
	if (s->in_tx)
		s->tx_failed = true;
	if (!store_code_is_fault(code) || s->faulted)
		return;
	s->faulted = true;
	s->fault_code = code;
	s->fault_since_ms = clock_now_ms();
	strlcpy_g(s->fault_msg, sqlite3_errstr(code), sizeof(s->fault_msg));
}

/* a write reached the disk: outside a transaction, a statement's success;
 * inside one, only its commit */
static void note_write_ok(struct store *s)
{
	s->faulted = false;
	s->fault_code = 0;
	s->fault_since_ms = 0;
	s->fault_msg[0] = 0;
}

bool store_fault(const struct store *s, struct store_fault_info *out)
{
	if (out) {
		memset(out, 0, sizeof(*out));
		if (s->faulted) {
			out->code = s->fault_code;
			out->since_ms = s->fault_since_ms;
			strlcpy_g(out->msg, s->fault_msg, sizeof(out->msg));
		}
	}
	return s->faulted;
}

int store_probe(struct store *s, struct gerr *err)
{
	char now[32];
	snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
	return store_meta_set(s, "store.probe", now, err);
}

int store__err(struct store *s, struct gerr *err, const char *what)
{
	int code = sqlite3_extended_errcode(s->db);
	const char *hint = "";
	if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
		hint = " (the database is locked by another process; is another gantry running?)";
	else if ((code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB)
		hint = " (the state database is corrupt: restore it from a backup or move it aside)";
	return gerr_set(err, "state store: %s: %s%s", what, sqlite3_errmsg(s->db), hint);
}

static int exec_sql(struct store *s, const char *sql, struct gerr *err)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int r = store__err(s, err, msg ? msg : "exec");
		note_write_failed(s, sqlite3_extended_errcode(s->db));
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

sqlite3_stmt *store__prep(struct store *s, const char *sql, struct gerr *err)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		store__err(s, err, "prepare");
		return NULL;
	}
	return st;
}

void store__bind_text(sqlite3_stmt *st, int i, const char *v)
{
	sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT);
}

void store__col_text(sqlite3_stmt *st, int i, char *dst, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	strlcpy_g(dst, t ? (const char *)t : "", len);
}

char *store__col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return xstrdup(t ? (const char *)t : "");
}

/* runs a statement that returns no rows, as its own transaction unless inside one */
int store__step_done(struct store *s, sqlite3_stmt *st, struct gerr *err)
{
	int rc, ret = 0;
	if (s->in_tx && s->tx_failed) {
		/* an earlier write of this transaction failed: SQLite may have
		 * rolled it back already, and this one would then commit alone */
		sqlite3_finalize(st);
		return gerr_set(err, "state store: write: %s (an earlier write of this transaction failed)",
				s->faulted ? s->fault_msg : "refused");
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		ret = store__err(s, err, "write");
		note_write_failed(s, sqlite3_extended_errcode(s->db));
	} else if (!s->in_tx && !sqlite3_stmt_readonly(st)) {
		note_write_ok(s);
	}
	sqlite3_finalize(st);
	return ret;
}

int store__step_insert(struct store *s, sqlite3_stmt *st, int64_t *id, struct gerr *err)
{
	if (store__step_done(s, st, err) < 0)
		return -1;
	*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int store__step_changed(struct store *s, sqlite3_stmt *st, struct gerr *err)
{
	if (store__step_done(s, st, err) < 0)
		return -1;
	return sqlite3_changes(s->db) > 0;
}

int store__one(struct store *s, sqlite3_stmt *st, store__decode_fn *decode, void *row, const char *what,
	       struct gerr *err)
{
	int rc;
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		decode(st, row);
	else if (rc != SQLITE_DONE)
		store__err(s, err, what);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

void store__decode_int64(sqlite3_stmt *st, void *row)
{
	*(int64_t *)row = sqlite3_column_int64(st, 0);
}

int store__rows(struct store *s, sqlite3_stmt *st, store__decode_fn *decode, void (*release)(void *row), size_t sz,
		void **out, size_t *n, const char *what, struct gerr *err)
{
	char *rows = NULL;
	size_t cap = 0;
	int rc;
	bool ok;
	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < STORE_MAX_ROWS) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			rows = xrealloc(rows, cap * sz);
		}
		decode(st, rows + (*n)++ * sz);
	}
	/* ROW: stopped at STORE_MAX_ROWS */
	ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
	if (!ok) {
		store__err(s, err, what);
		for (size_t i = 0; release && i < *n; i++)
			release(rows + i * sz);
		free(rows);
		rows = NULL;
		*n = 0;
	}
	sqlite3_finalize(st);
	*out = rows;
	return ok ? 0 : -1;
}

bool store__in_tx(struct store *s)
{
	return s->in_tx || !sqlite3_get_autocommit(s->db);
}

int store_begin(struct store *s, struct gerr *err)
{
	/* inside a transaction whose write failed (SQLite may have rolled it
	 * back, so a BEGIN would succeed): refused, as every write in it is */
	if (s->in_tx)
		return gerr_set(err, "state store: begin: inside a transaction%s", s->tx_failed ? " that failed" : "");
	if (exec_sql(s, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	s->in_tx = 1;
	s->tx_failed = false;
	return 0;
}

/*
 * A COMMIT that fails (SQLITE_FULL, an I/O error) may leave the transaction
 * open: it is rolled back here, so that a failed commit changed nothing and
 * the next store_begin starts afresh.
 */
int store_commit(struct store *s, struct gerr *err)
{
	int ret;
	bool failed = s->tx_failed;
	s->in_tx = 0;
	s->tx_failed = false;
	if (failed) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return gerr_set(err, "state store: commit: %s (a write of the transaction failed; nothing changed)",
				s->faulted ? s->fault_msg : "refused");
	}
	ret = exec_sql(s, "COMMIT", err);
	if (ret < 0) {
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	} else {
		note_write_ok(s);
	}
	return ret;
}

void store_rollback(struct store *s)
{
	s->in_tx = 0;
	s->tx_failed = false;
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int migrate(struct store *s, struct gerr *err)
{
	sqlite3_stmt *st;
	int version = 0;

	st = store__prep(s, "PRAGMA user_version", err);
	if (!st)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > (int)ARRAY_SIZE(migrations))
		return gerr_set(err, "state store: schema version %d is newer than this gantry (%zu): upgrade gantry",
				version, ARRAY_SIZE(migrations));
	for (int v = version; v < (int)ARRAY_SIZE(migrations); v++) {
		char pragma[64];
		if (store_begin(s, err) < 0)
			return -1;
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		if (exec_sql(s, migrations[v], err) < 0 || exec_sql(s, pragma, err) < 0) {
			store_rollback(s);
			return -1;
		}
		if (store_commit(s, err) < 0)
			return -1;
	}
	return 0;
}

int store_open(const char *path, struct store **out, struct gerr *err)
{
	struct store *s = xcalloc(1, sizeof(*s));
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		gerr_set(err, "state store: cannot open %s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* integrity first: a corrupt file fails here with a clear message */
	st = store__prep(s, "PRAGMA quick_check", err);
	if (!st)
		goto fail;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok")) {
		sqlite3_finalize(st);
		gerr_set(err, "state store: %s is corrupt or not a gantry database (%s): move it aside or restore a backup",
			 path, rc == SQLITE_ROW ? (const char *)"integrity check failed" : sqlite3_errmsg(s->db));
		goto fail;
	}
	sqlite3_finalize(st);
	if (exec_sql(s, "PRAGMA journal_mode=WAL", err) < 0 ||
	    exec_sql(s, "PRAGMA synchronous=NORMAL", err) < 0 ||
	    exec_sql(s, "PRAGMA foreign_keys=ON", err) < 0)
		goto fail;
	chmod(path, 0600);
	if (migrate(s, err) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return -1;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	free(s);
}

/* ---- revisions ---- */

void revision_row_release(struct revision_row *r)
{
	free(r->config_json);
	r->config_json = NULL;
}

static void revision_release(void *row)
{
	revision_row_release(row);
}

#define REV_COLS "id, service, environment, number, version, digest, config, kind, source, status, " \
		 "reason, deployed_by, created_at, artifact_pruned"

static void revision_from(sqlite3_stmt *st, void *row)
{
	struct revision_row *r = row;
	const unsigned char *cfg;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, r->service, sizeof(r->service));
	store__col_text(st, 2, r->environment, sizeof(r->environment));
	r->number = sqlite3_column_int(st, 3);
	store__col_text(st, 4, r->version, sizeof(r->version));
	store__col_text(st, 5, r->digest, sizeof(r->digest));
	cfg = sqlite3_column_text(st, 6);
	r->config_json = xstrdup(cfg ? (const char *)cfg : "{}");
	store__col_text(st, 7, r->kind, sizeof(r->kind));
	r->source = sqlite3_column_int(st, 8);
	store__col_text(st, 9, r->status, sizeof(r->status));
	store__col_text(st, 10, r->reason, sizeof(r->reason));
	store__col_text(st, 11, r->deployed_by, sizeof(r->deployed_by));
	r->created_at = sqlite3_column_int64(st, 12);
	r->artifact_pruned = sqlite3_column_int(st, 13) != 0;
}

int store_revision_create(struct store *s, struct revision_row *r, struct gerr *err)
{
	sqlite3_stmt *st;
	int number = 1;

	st = store__prep(s, "SELECT COALESCE(MAX(number), 0) + 1 FROM revisions WHERE service = ? AND environment = ?", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->service);
	store__bind_text(st, 2, r->environment);
	if (sqlite3_step(st) == SQLITE_ROW)
		number = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = store__prep(s, "INSERT INTO revisions (service, environment, number, version, digest, config, kind, source,"
		  " status, reason, deployed_by, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->service);
	store__bind_text(st, 2, r->environment);
	sqlite3_bind_int(st, 3, number);
	store__bind_text(st, 4, r->version);
	store__bind_text(st, 5, r->digest);
	store__bind_text(st, 6, r->config_json);
	store__bind_text(st, 7, r->kind);
	sqlite3_bind_int(st, 8, r->source);
	store__bind_text(st, 9, r->status);
	store__bind_text(st, 10, r->reason);
	store__bind_text(st, 11, r->deployed_by);
	if (!r->created_at)
		r->created_at = clock_now_s();
	sqlite3_bind_int64(st, 12, r->created_at);
	if (store__step_insert(s, st, &r->id, err) < 0)
		return -1;
	r->number = number;
	return 0;
}

int store_revision_get(struct store *s, const char *svc, const char *env, int number,
		       struct revision_row *out, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " REV_COLS " FROM revisions WHERE service = ? AND environment = ? AND number = ?", err);
	if (st) {
		store__bind_text(st, 1, svc);
		store__bind_text(st, 2, env);
		sqlite3_bind_int(st, 3, number);
	}
	return store__one(s, st, revision_from, out, "read revision", err);
}

int store_revision_set_status(struct store *s, const char *svc, const char *env, int number,
			      const char *status, const char *reason, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "UPDATE revisions SET status = ?, reason = CASE WHEN ? IS NULL THEN reason ELSE ? END"
				" WHERE service = ? AND environment = ? AND number = ?", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, status);
	if (reason) {
		store__bind_text(st, 2, reason);
		store__bind_text(st, 3, reason);
	}
	store__bind_text(st, 4, svc);
	store__bind_text(st, 5, env);
	sqlite3_bind_int(st, 6, number);
	return store__step_done(s, st, err);
}

int store_revision_set_pruned(struct store *s, const char *svc, const char *env, int number,
			      struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "UPDATE revisions SET artifact_pruned = 1 WHERE service = ? AND environment = ? AND number = ?", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, svc);
	store__bind_text(st, 2, env);
	sqlite3_bind_int(st, 3, number);
	return store__step_done(s, st, err);
}

int store_revision_list(struct store *s, const char *svc, const char *env,
			struct revision_row **out, size_t *n, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " REV_COLS " FROM revisions WHERE service = ? AND environment = ? ORDER BY number DESC", err);
	if (st) {
		store__bind_text(st, 1, svc);
		store__bind_text(st, 2, env);
	}
	return store__rows(s, st, revision_from, revision_release, sizeof(**out), (void **)out, n, "list revisions",
			   err);
}

int store_digest_in_use(struct store *s, const char *digest, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT 1 FROM revisions WHERE digest = ? AND artifact_pruned = 0 LIMIT 1", err);
	int64_t one;
	if (st)
		store__bind_text(st, 1, digest);
	return store__one(s, st, store__decode_int64, &one, "read digest", err);
}

/* ---- replicas ---- */

#define REPLICA_COLS "id, service, environment, revision, port, pid, start_time, state, restarts, created_at, " \
		     "ready_since, last_exit, container, host"

static void replica_from(sqlite3_stmt *st, void *row)
{
	struct replica_row *r = row;
	memset(r, 0, sizeof(*r));
	store__col_text(st, 0, r->id, sizeof(r->id));
	store__col_text(st, 1, r->service, sizeof(r->service));
	store__col_text(st, 2, r->environment, sizeof(r->environment));
	r->revision = sqlite3_column_int(st, 3);
	r->port = sqlite3_column_int(st, 4);
	r->pid = sqlite3_column_int(st, 5);
	r->start_time = (uint64_t)sqlite3_column_int64(st, 6);
	store__col_text(st, 7, r->state, sizeof(r->state));
	r->restarts = sqlite3_column_int(st, 8);
	r->created_at = sqlite3_column_int64(st, 9);
	r->ready_since = sqlite3_column_int64(st, 10);
	store__col_text(st, 11, r->last_exit, sizeof(r->last_exit));
	store__col_text(st, 12, r->container, sizeof(r->container));
	store__col_text(st, 13, r->host, sizeof(r->host));
}

int store_replica_put(struct store *s, const struct replica_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT OR REPLACE INTO replicas (" REPLICA_COLS ")"
				" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->id);
	store__bind_text(st, 2, r->service);
	store__bind_text(st, 3, r->environment);
	sqlite3_bind_int(st, 4, r->revision);
	sqlite3_bind_int(st, 5, r->port);
	sqlite3_bind_int(st, 6, r->pid);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->start_time);
	store__bind_text(st, 8, r->state);
	sqlite3_bind_int(st, 9, r->restarts);
	sqlite3_bind_int64(st, 10, r->created_at);
	sqlite3_bind_int64(st, 11, r->ready_since);
	store__bind_text(st, 12, r->last_exit);
	store__bind_text(st, 13, r->container);
	store__bind_text(st, 14, r->host);
	return store__step_done(s, st, err);
}

int store_replica_delete(struct store *s, const char *id, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "DELETE FROM replicas WHERE id = ?", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, id);
	return store__step_done(s, st, err);
}

int store_replica_list(struct store *s, const char *svc, const char *env,
		       struct replica_row **out, size_t *n, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " REPLICA_COLS " FROM replicas"
				" WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR environment = ?2)"
				" ORDER BY service, environment, revision, created_at, id", err);
	if (st && svc)
		store__bind_text(st, 1, svc);
	if (st && env)
		store__bind_text(st, 2, env);
	return store__rows(s, st, replica_from, NULL, sizeof(**out), (void **)out, n, "list replicas", err);
}

/* ---- service environments ---- */

#define SVCENV_COLS "service, environment, target_revision, stable_revision, replicas, phase, message, traffic"

static void svcenv_from(sqlite3_stmt *st, void *row)
{
	struct svcenv_row *r = row;
	memset(r, 0, sizeof(*r));
	store__col_text(st, 0, r->service, sizeof(r->service));
	store__col_text(st, 1, r->environment, sizeof(r->environment));
	r->target_revision = sqlite3_column_int(st, 2);
	r->stable_revision = sqlite3_column_int(st, 3);
	r->replicas = sqlite3_column_int(st, 4);
	store__col_text(st, 5, r->phase, sizeof(r->phase));
	store__col_text(st, 6, r->message, sizeof(r->message));
	store__col_text(st, 7, r->traffic, sizeof(r->traffic));
}

int store_svcenv_get(struct store *s, const char *svc, const char *env, struct svcenv_row *out,
		     struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " SVCENV_COLS " FROM svcenvs WHERE service = ? AND environment = ?", err);
	if (st) {
		store__bind_text(st, 1, svc);
		store__bind_text(st, 2, env);
	}
	return store__one(s, st, svcenv_from, out, "read service environment", err);
}

int store_svcenv_put(struct store *s, const struct svcenv_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT OR REPLACE INTO svcenvs (" SVCENV_COLS ") VALUES (?,?,?,?,?,?,?,?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->service);
	store__bind_text(st, 2, r->environment);
	sqlite3_bind_int(st, 3, r->target_revision);
	sqlite3_bind_int(st, 4, r->stable_revision);
	sqlite3_bind_int(st, 5, r->replicas);
	store__bind_text(st, 6, r->phase);
	store__bind_text(st, 7, r->message);
	store__bind_text(st, 8, r->traffic);
	return store__step_done(s, st, err);
}

int store_svcenv_list(struct store *s, struct svcenv_row **out, size_t *n, struct gerr *err)
{
	return store__rows(s, store__prep(s, "SELECT " SVCENV_COLS " FROM svcenvs ORDER BY service, environment", err),
			   svcenv_from, NULL, sizeof(**out), (void **)out, n, "list service environments", err);
}

/* ---- rollouts ---- */

#define ROLLOUT_COLS "id, service, environment, revision, from_revision, strategy, phase, step, steps, message, " \
		     "started_at, updated_at, deadline_at, state"

static void rollout_from(sqlite3_stmt *st, void *row)
{
	struct rollout_row *r = row;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, r->service, sizeof(r->service));
	store__col_text(st, 2, r->environment, sizeof(r->environment));
	r->revision = sqlite3_column_int(st, 3);
	r->from_revision = sqlite3_column_int(st, 4);
	store__col_text(st, 5, r->strategy, sizeof(r->strategy));
	store__col_text(st, 6, r->phase, sizeof(r->phase));
	r->step = sqlite3_column_int(st, 7);
	r->steps = sqlite3_column_int(st, 8);
	store__col_text(st, 9, r->message, sizeof(r->message));
	r->started_at = sqlite3_column_int64(st, 10);
	r->updated_at = sqlite3_column_int64(st, 11);
	r->deadline_at = sqlite3_column_int64(st, 12);
	store__col_text(st, 13, r->state, sizeof(r->state));
}

int store_rollout_put(struct store *s, struct rollout_row *r, struct gerr *err)
{
	sqlite3_stmt *st;
	int64_t id;
	r->updated_at = clock_now_ms();
	if (!r->id)
		st = store__prep(s, "INSERT INTO rollouts (service, environment, revision, from_revision, strategy, phase,"
			  " step, steps, message, started_at, updated_at, deadline_at, state) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", err);
	else
		st = store__prep(s, "UPDATE rollouts SET service=?, environment=?, revision=?, from_revision=?, strategy=?,"
			  " phase=?, step=?, steps=?, message=?, started_at=?, updated_at=?, deadline_at=?, state=? WHERE id=?14", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->service);
	store__bind_text(st, 2, r->environment);
	sqlite3_bind_int(st, 3, r->revision);
	sqlite3_bind_int(st, 4, r->from_revision);
	store__bind_text(st, 5, r->strategy);
	store__bind_text(st, 6, r->phase);
	sqlite3_bind_int(st, 7, r->step);
	sqlite3_bind_int(st, 8, r->steps);
	store__bind_text(st, 9, r->message);
	sqlite3_bind_int64(st, 10, r->started_at);
	sqlite3_bind_int64(st, 11, r->updated_at);
	sqlite3_bind_int64(st, 12, r->deadline_at);
	store__bind_text(st, 13, r->state);
	if (r->id)
		sqlite3_bind_int64(st, 14, r->id);
	if (store__step_insert(s, st, &id, err) < 0)
		return -1;
	if (!r->id)
		r->id = id;
	return 0;
}

int store_rollout_latest(struct store *s, const char *svc, const char *env,
			 struct rollout_row *out, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " ROLLOUT_COLS " FROM rollouts"
				" WHERE service = ? AND environment = ? ORDER BY id DESC LIMIT 1", err);
	if (st) {
		store__bind_text(st, 1, svc);
		store__bind_text(st, 2, env);
	}
	return store__one(s, st, rollout_from, out, "read rollout", err);
}

int store_rollout_completed_at(struct store *s, const char *svc, const char *env, int revision,
			       int64_t *at_ms, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT updated_at FROM rollouts WHERE service = ? AND environment = ? "
				    "AND revision = ? AND phase = 'complete' ORDER BY id DESC LIMIT 1", err);
	if (st) {
		store__bind_text(st, 1, svc);
		store__bind_text(st, 2, env);
		sqlite3_bind_int(st, 3, revision);
	}
	return store__one(s, st, store__decode_int64, at_ms, "read", err);
}

int store_rollout_list(struct store *s, const char *svc, const char *env, int64_t since_ms,
		       struct rollout_row **out, size_t *n, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " ROLLOUT_COLS " FROM rollouts "
				    "WHERE (?1 = '' OR service = ?1) AND (?2 = '' OR environment = ?2) AND started_at >= ?3 "
				    "ORDER BY id", err);
	if (st) {
		store__bind_text(st, 1, svc);
		store__bind_text(st, 2, env);
		sqlite3_bind_int64(st, 3, since_ms);
	}
	return store__rows(s, st, rollout_from, NULL, sizeof(**out), (void **)out, n, "read", err);
}

/* ---- events ---- */

#define EVENT_COLS "id, ts, service, environment, revision, kind, message"

static void event_from(sqlite3_stmt *st, void *row)
{
	struct event_row *e = row;
	memset(e, 0, sizeof(*e));
	e->id = sqlite3_column_int64(st, 0);
	e->ts_ms = sqlite3_column_int64(st, 1);
	store__col_text(st, 2, e->service, sizeof(e->service));
	store__col_text(st, 3, e->environment, sizeof(e->environment));
	e->revision = sqlite3_column_int(st, 4);
	store__col_text(st, 5, e->kind, sizeof(e->kind));
	store__col_text(st, 6, e->message, sizeof(e->message));
}

int store_event_add(struct store *s, const char *svc, const char *env, int revision,
		    const char *kind, struct gerr *err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	sqlite3_stmt *st;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st = store__prep(s, "INSERT INTO events (ts, service, environment, revision, kind, message) VALUES (?,?,?,?,?,?)", err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, clock_now_ms());
	store__bind_text(st, 2, svc);
	store__bind_text(st, 3, env);
	sqlite3_bind_int(st, 4, revision);
	store__bind_text(st, 5, kind);
	store__bind_text(st, 6, msg);
	return store__step_done(s, st, err);
}

int store_event_list(struct store *s, const char *svc, const char *env, int64_t after_id,
		     int limit, struct event_row **out, size_t *n, struct gerr *err)
{
	/* newest `limit` when after_id < 0, then returned oldest first */
	const char *sql = after_id < 0
		? "SELECT * FROM (SELECT " EVENT_COLS " FROM events"
		  " WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR environment = ?2)"
		  " ORDER BY id DESC LIMIT ?4) ORDER BY id"
		: "SELECT " EVENT_COLS " FROM events"
		  " WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR environment = ?2) AND id > ?3"
		  " ORDER BY id LIMIT ?4";
	sqlite3_stmt *st = store__prep(s, sql, err);
	if (st) {
		if (svc)
			store__bind_text(st, 1, svc);
		if (env)
			store__bind_text(st, 2, env);
		sqlite3_bind_int64(st, 3, after_id);
		sqlite3_bind_int(st, 4, limit > 0 ? limit : 1000);
	}
	return store__rows(s, st, event_from, NULL, sizeof(**out), (void **)out, n, "list events", err);
}

/* ---- meta ---- */

int store_meta_get(struct store *s, const char *key, char *buf, size_t len, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT value FROM meta WHERE key = ?", err);
	int rc, ret = 0;
	if (!st)
		return -1;
	store__bind_text(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		store__col_text(st, 0, buf, len);
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = store__err(s, err, "read meta");
	}
	sqlite3_finalize(st);
	return ret;
}

int store_meta_set(struct store *s, const char *key, const char *value, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, key);
	store__bind_text(st, 2, value);
	return store__step_done(s, st, err);
}

/* ---- analysis measurements ---- */

#define MEASUREMENT_COLS "id, rollout_id, ts, analysis, metric, revision, value, verdict, message"

static void measurement_from(sqlite3_stmt *st, void *row)
{
	struct measurement_row *m = row;
	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(st, 0);
	m->rollout_id = sqlite3_column_int64(st, 1);
	m->ts_ms = sqlite3_column_int64(st, 2);
	store__col_text(st, 3, m->analysis, sizeof(m->analysis));
	store__col_text(st, 4, m->metric, sizeof(m->metric));
	m->revision = sqlite3_column_int(st, 5);
	m->has_value = sqlite3_column_type(st, 6) != SQLITE_NULL;
	m->value = sqlite3_column_double(st, 6);
	store__col_text(st, 7, m->verdict, sizeof(m->verdict));
	store__col_text(st, 8, m->message, sizeof(m->message));
}

int store_measurement_add(struct store *s, const struct measurement_row *m, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT INTO measurements (rollout_id, ts, analysis, metric, revision, value,"
				" verdict, message) VALUES (?,?,?,?,?,?,?,?)", err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, m->rollout_id);
	sqlite3_bind_int64(st, 2, m->ts_ms ? m->ts_ms : clock_now_ms());
	store__bind_text(st, 3, m->analysis);
	store__bind_text(st, 4, m->metric);
	sqlite3_bind_int(st, 5, m->revision);
	if (m->has_value)
		sqlite3_bind_double(st, 6, m->value);
	store__bind_text(st, 7, m->verdict);
	store__bind_text(st, 8, m->message);
	return store__step_done(s, st, err);
}

int store_measurement_list(struct store *s, int64_t rollout_id, int limit, struct measurement_row **out,
			   size_t *n, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT * FROM (SELECT " MEASUREMENT_COLS " FROM measurements"
				" WHERE rollout_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id", err);
	if (st) {
		sqlite3_bind_int64(st, 1, rollout_id);
		sqlite3_bind_int(st, 2, limit > 0 ? limit : 100);
	}
	return store__rows(s, st, measurement_from, NULL, sizeof(**out), (void **)out, n, "list measurements", err);
}
