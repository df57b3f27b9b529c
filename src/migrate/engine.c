/*
 * engine.c — what runs, in which transaction, with which records.
 *
 * One file = one transaction holding: the file's statements, the new
 * schema_migrations row (dirty false) and the gantry_migrations row (or its
 * removal, going down), so the database is always at a clean version: a
 * failure (or a dead connection, or kill -9 of the controller) rolls all of
 * it back. A file marked `-- gantry:no-transaction` cannot have that: as
 * golang-migrate does for every file, schema_migrations is set to
 * (target, dirty=true) and committed first, then the file runs, then the
 * version is made clean; a failure in between leaves it dirty, and a dirty
 * database is refused until someone fixes it by hand (docs).
 *
 * The outcome of every file, good or bad, is a gantry_migrations_log row
 * (written after the file's transaction: a failed one is rolled back).
 */
#include "common.h"
#include "migrate/migrate-int.h"
#include "util/clock.h"
#include <inttypes.h>

#define OUTPUT_MAX 4096

int mig_open(const char *url, struct mig_db **out, struct gerr *err)
{
	struct mig_db *db = xcalloc(1, sizeof(*db));
	int rc;

	if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13))
		rc = mig__pg_open(url, db, err);
	else if (!strncmp(url, "sqlite3://", 10))
		rc = mig__sqlite_open(url + 10, db, err);
	else if (!strncmp(url, "sqlite://", 9))
		rc = mig__sqlite_open(url + 9, db, err);
	else {
		char *r = mig__redact(url);
		rc = gerr_set(err, "database url %s: unknown scheme (postgres://, postgresql://, sqlite3://)", r);
		free(r);
	}
	if (rc < 0) {
		free(db);
		return -1;
	}
	*out = db;
	return 0;
}

void mig_close(struct mig_db *db)
{
	if (!db)
		return;
	if (db->locked)
		mig_unlock(db);
	db->drv->close(db);
	free(db);
}

const char *mig_driver_name(const struct mig_db *db)
{
	return db->drv->name;
}

char *mig__redact(const char *url)
{
	const char *s = strstr(url, "://"), *at, *colon;
	if (!s)
		return xstrdup(url);
	s += 3;
	at = strchr(s, '@');
	colon = strchr(s, ':');
	if (!at || !colon || colon > at)
		return xstrdup(url);
	return xasprintf("%.*s:xxx%s", (int)(colon - url), url, at);
}

int mig__line_of(const char *text, size_t off)
{
	int line = 1;
	for (size_t i = 0; i < off && text[i]; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

int mig_lock(struct mig_db *db, int timeout_ms, struct gerr *err)
{
	if (db->locked) /* the caller's: mig_up/mig_down run under it */
		return 0;
	db->timeout_ms = timeout_ms;
	if (db->drv->lock(db, timeout_ms, err) < 0)
		return -1;
	db->locked = true;
	return 0;
}

void mig_unlock(struct mig_db *db)
{
	if (db->locked)
		db->drv->unlock(db);
	db->locked = false;
}

/* ---- reading the state ------------------------------------------------- */

static bool truthy(const char *s)
{
	return s && (!strcmp(s, "t") || !strcmp(s, "1") || !strcasecmp(s, "true"));
}

static int version_row(void *arg, int n, const char *const *cols)
{
	struct mig_state *st = arg;
	if (n >= 2 && cols[0]) {
		st->version = strtoll(cols[0], NULL, 10);
		st->dirty = truthy(cols[1]);
	}
	return 0;
}

static int applied_row(void *arg, int n, const char *const *cols)
{
	struct mig_state *st = arg;
	struct mig_applied *a;
	if (n < 7)
		return 0;
	st->applied = xrealloc(st->applied, (st->n_applied + 1) * sizeof(*st->applied));
	a = &st->applied[st->n_applied++];
	memset(a, 0, sizeof(*a));
	a->version = strtoll(cols[0] ? cols[0] : "0", NULL, 10);
	a->name = xstrdup(cols[1] ? cols[1] : "");
	strlcpy_g(a->sum, cols[2] ? cols[2] : "", sizeof(a->sum));
	a->contract = truthy(cols[3]);
	a->applied_at = xstrdup(cols[4] ? cols[4] : "");
	a->applied_by = xstrdup(cols[5] ? cols[5] : "");
	a->revision = cols[6] ? atoi(cols[6]) : 0;
	return 0;
}

int mig_state_read(struct mig_db *db, struct mig_state *st, struct gerr *err)
{
	memset(st, 0, sizeof(*st));
	st->version = MIG_NIL_VERSION;
	if (db->drv->ensure(db, err) < 0)
		return -1;
	if (db->drv->query(db, "SELECT version, dirty FROM schema_migrations LIMIT 1",
			   0, NULL, version_row, st, err) < 0)
		return -1;
	return db->drv->query(db,
			      "SELECT version, name, checksum, contract, applied_at, applied_by, revision "
			      "FROM gantry_migrations ORDER BY version",
			      0, NULL, applied_row, st, err);
}

void mig_state_release(struct mig_state *st)
{
	for (size_t i = 0; i < st->n_applied; i++) {
		free(st->applied[i].name);
		free(st->applied[i].applied_at);
		free(st->applied[i].applied_by);
	}
	free(st->applied);
	memset(st, 0, sizeof(*st));
}

int mig_verify(const struct mig_set *set, const struct mig_state *st,
	       struct gerr *err)
{
	for (size_t i = 0; i < st->n_applied; i++) {
		const struct mig_applied *a = &st->applied[i];
		ssize_t at = mig_set_find(set, a->version);
		if (at < 0 || a->version > st->version)
			continue;
		if (strcmp(set->v[at].up_sum, a->sum))
			return gerr_set(err,
					"%s changed after it was applied (sha256 %.12s recorded, %.12s now): "
					"refused; restore the file or add a new migration",
					set->v[at].up_name, a->sum, set->v[at].up_sum);
	}
	return 0;
}

/* ---- running ----------------------------------------------------------- */

static void now_str(char *buf, size_t len)
{
	format_rfc3339(clock_now_s(), buf, len);
}

static void log_row(struct mig_db *db, const char *direction,
		    const struct mig_file *f, const struct mig_who *who,
		    const char *result, const char *output)
{
	char at[40], v[24], rev[16];
	struct gerr e;
	const char *name = !strcmp(direction, "down") ? f->down_name : f->up_name;
	const char *sum = !strcmp(direction, "down") ? f->down_sum : f->up_sum;
	const char *p[9];

	now_str(at, sizeof(at));
	snprintf(v, sizeof(v), "%" PRId64, f->version);
	snprintf(rev, sizeof(rev), "%d", who->revision);
	p[0] = at; p[1] = direction; p[2] = v; p[3] = name ? name : "";
	p[4] = sum; p[5] = who->by; p[6] = rev; p[7] = result; p[8] = output;
	/* a record: its failure is logged by the caller's error, never fatal */
	db->drv->query(db,
		       "INSERT INTO gantry_migrations_log (at, direction, version, name, checksum, "
		       "applied_by, revision, result, output) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		       9, p, NULL, NULL, &e);
}

static int record_applied(struct mig_db *db, const struct mig_file *f,
			  const struct mig_who *who, struct gerr *err)
{
	char at[40], v[24], rev[16];
	const char *p[7];

	now_str(at, sizeof(at));
	snprintf(v, sizeof(v), "%" PRId64, f->version);
	snprintf(rev, sizeof(rev), "%d", who->revision);
	if (db->drv->query(db, "DELETE FROM gantry_migrations WHERE version = $1", 1,
			   (const char *[]){ v }, NULL, NULL, err) < 0)
		return -1;
	p[0] = v; p[1] = f->up_name; p[2] = f->up_sum;
	p[3] = (f->up_marks & MIG_MARK_CONTRACT) ? "1" : "0";
	p[4] = at; p[5] = who->by; p[6] = rev;
	return db->drv->query(db,
			      "INSERT INTO gantry_migrations (version, name, checksum, contract, applied_at, "
			      "applied_by, revision) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			      7, p, NULL, NULL, err);
}

/*
 * Runs one file: direction up (to f->version) or down (to `to`, the version
 * below f's). Returns 0, or -1 with err naming the file.
 */
static int run_one(struct mig_db *db, const struct mig_set *set,
		   const struct mig_file *f, bool up, int64_t to,
		   const struct mig_who *who, mig_report_fn report, void *arg,
		   struct gerr *err)
{
	const char *name = up ? f->up_name : f->down_name;
	unsigned marks = up ? f->up_marks : f->down_marks;
	bool notx = marks & MIG_MARK_NO_TX;
	char *text = NULL, *line, *out_s;
	size_t len;
	struct hbuf out;
	int64_t t0 = clock_mono_ms();
	int rc = -1;
	bool in_tx = false, dirty_set = false;
	char v[24];

	hbuf_init(&out, OUTPUT_MAX);
	if (mig_set_read(set, name, &text, &len, err) < 0)
		goto out;
	/* the file read now is the file checked: refuse one edited since the set was loaded */
	{
		char sum[65];
		mig_sha256_hex(text, len, sum);
		if (strcmp(sum, up ? f->up_sum : f->down_sum)) {
			gerr_set(err, "%s changed while migrations were running: refused", name);
			goto out;
		}
	}
	if (notx) {
		/* golang-migrate's order: dirty first, committed, then the file */
		if (db->drv->set_version(db, to, true, err) < 0)
			goto out;
		dirty_set = true;
		db->notices = &out;
		rc = db->drv->run(db, name, text, &out, err);
		db->notices = NULL;
		if (rc < 0)
			goto out;
		rc = -1;
	}
	if (db->drv->begin(db, err) < 0)
		goto out;
	in_tx = true;
	if (!notx) {
		db->notices = &out;
		rc = db->drv->run(db, name, text, &out, err);
		db->notices = NULL;
		if (rc < 0)
			goto out;
		rc = -1;
	}
	if (db->drv->set_version(db, to, false, err) < 0)
		goto out;
	if (up) {
		if (record_applied(db, f, who, err) < 0)
			goto out;
	} else {
		snprintf(v, sizeof(v), "%" PRId64, f->version);
		if (db->drv->query(db, "DELETE FROM gantry_migrations WHERE version = $1", 1,
				   (const char *[]){ v }, NULL, NULL, err) < 0)
			goto out;
	}
	if (db->drv->commit(db, err) < 0) {
		in_tx = false;
		goto out;
	}
	in_tx = false;
	rc = 0;
out:
	if (in_tx)
		db->drv->rollback(db);
	out_s = hbuf_detach(&out, NULL);
	log_row(db, up ? "up" : "down", f, who, rc == 0 ? "ok" : "failed",
		rc == 0 ? out_s : err->msg);
	if (rc == 0)
		line = xasprintf("%s %" PRId64 " %s ok %" PRId64 "ms%s%s",
			 up ? "up" : "down", f->version, name, clock_mono_ms() - t0,
			 *out_s ? ": " : "", out_s);
	else if (dirty_set)
		line = xasprintf("%s %" PRId64 " %s failed, database left dirty at version %" PRId64 ": %s",
			 up ? "up" : "down", f->version, name, to, err->msg);
	else
		line = xasprintf("%s %" PRId64 " %s failed, rolled back: %s",
			 up ? "up" : "down", f->version, name, err->msg);
	if (report)
		report(arg, line);
	free(line);
	if (rc < 0 && dirty_set) {
		char msg[sizeof(err->msg)];
		strlcpy_g(msg, err->msg, sizeof(msg));
		gerr_set(err, "%s; %s runs outside a transaction (gantry:no-transaction): "
			 "the database is dirty at version %" PRId64 ", fix it by hand", msg, name, to);
	}
	free(out_s);
	free(text);
	return rc;
}

static int prepare(struct mig_db *db, const struct mig_set *set,
		   struct mig_state *st, int timeout_ms, bool *took, struct gerr *err)
{
	*took = !db->locked;
	if (mig_lock(db, timeout_ms, err) < 0) {
		*took = false;
		return -1;
	}
	if (mig_state_read(db, st, err) < 0)
		return -1;
	if (st->dirty)
		return gerr_set(err, "database is dirty at version %" PRId64
				" (a migration outside a transaction failed half-way): fix the schema by hand, "
				"then set schema_migrations.dirty to false", st->version);
	return mig_verify(set, st, err);
}

int mig_up(struct mig_db *db, const struct mig_set *set, int64_t to,
	   const struct mig_who *who, int timeout_ms, mig_report_fn report,
	   void *arg, int *ran, struct gerr *err)
{
	struct mig_state st = { .version = MIG_NIL_VERSION };
	int rc = -1;
	bool took = false;

	*ran = 0;
	if (prepare(db, set, &st, timeout_ms, &took, err) < 0)
		goto out;
	for (size_t i = 0; i < set->n; i++) {
		const struct mig_file *f = &set->v[i];
		if (f->version <= st.version || f->version > to)
			continue;
		if (run_one(db, set, f, true, f->version, who, report, arg, err) < 0)
			goto out;
		(*ran)++;
	}
	rc = 0;
out:
	if (took)
		mig_unlock(db);
	mig_state_release(&st);
	return rc;
}

int mig_down(struct mig_db *db, const struct mig_set *set, int64_t to,
	     const struct mig_who *who, int timeout_ms, mig_report_fn report,
	     void *arg, int *ran, struct gerr *err)
{
	struct mig_state st = { .version = MIG_NIL_VERSION };
	int rc = -1;
	bool took = false;

	*ran = 0;
	if (prepare(db, set, &st, timeout_ms, &took, err) < 0)
		goto out;
	if (st.version <= to) {
		rc = 0;
		goto out;
	}
	if (mig_down_check(set, st.version, to, err) < 0)
		goto out;
	for (size_t i = set->n; i-- > 0;) {
		const struct mig_file *f = &set->v[i];
		int64_t below = i ? set->v[i - 1].version : MIG_NIL_VERSION;
		if (f->version > st.version || f->version <= to)
			continue;
		if (run_one(db, set, f, false, below, who, report, arg, err) < 0)
			goto out;
		(*ran)++;
	}
	rc = 0;
out:
	if (took)
		mig_unlock(db);
	mig_state_release(&st);
	return rc;
}

/* ---- history ----------------------------------------------------------- */

struct hist_acc {
	struct mig_log_row *rows;
	size_t n;
};

static char *dup0(const char *s)
{
	return xstrdup(s ? s : "");
}

static int hist_row(void *arg, int n, const char *const *c)
{
	struct hist_acc *h = arg;
	struct mig_log_row *r;
	if (n < 10)
		return 0;
	h->rows = xrealloc(h->rows, (h->n + 1) * sizeof(*h->rows));
	r = &h->rows[h->n++];
	r->id = strtoll(c[0] ? c[0] : "0", NULL, 10);
	r->at = dup0(c[1]);
	r->direction = dup0(c[2]);
	r->version = strtoll(c[3] ? c[3] : "0", NULL, 10);
	r->name = dup0(c[4]);
	r->sum = dup0(c[5]);
	r->by = dup0(c[6]);
	r->revision = c[7] ? atoi(c[7]) : 0;
	r->result = dup0(c[8]);
	r->output = dup0(c[9]);
	return 0;
}

int mig_history(struct mig_db *db, int limit, struct mig_log_row **rows,
		size_t *n, struct gerr *err)
{
	struct hist_acc h = { 0 };
	char lim[16];

	*rows = NULL;
	*n = 0;
	if (db->drv->ensure(db, err) < 0)
		return -1;
	snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit : 100);
	if (db->drv->query(db,
			   "SELECT id, at, direction, version, name, checksum, applied_by, revision, result, output "
			   "FROM gantry_migrations_log ORDER BY id DESC LIMIT $1",
			   1, (const char *[]){ lim }, hist_row, &h, err) < 0) {
		mig_history_release(h.rows, h.n);
		return -1;
	}
	*rows = h.rows;
	*n = h.n;
	return 0;
}

void mig_history_release(struct mig_log_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].at);
		free(rows[i].direction);
		free(rows[i].name);
		free(rows[i].sum);
		free(rows[i].by);
		free(rows[i].result);
		free(rows[i].output);
	}
	free(rows);
}

int mig_snapshot(struct mig_db *db, const char *url, const char *path,
		 struct gerr *err)
{
	return db->drv->snapshot(db, url, path, err);
}

int mig_restore(struct mig_db *db, const char *url, const char *path,
		struct gerr *err)
{
	return db->drv->restore(db, url, path, err);
}
