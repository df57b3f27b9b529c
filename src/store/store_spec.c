/*
 * store_spec.c — numbered spec versions (store_spec.h).
 */
#include "common.h"
#include "store/store-int.h"
#include "store/store_spec.h"

#define SPEC_COLS "version, digest, name, actor, created_at, diff"
#define MAX_VERSIONS 100000

void spec_version_row_release(struct spec_version_row *r)
{
	free(r->text);
	free(r->diff);
	r->text = r->diff = NULL;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return xstrdup(t ? (const char *)t : "");
}

static void row_from(sqlite3_stmt *st, struct spec_version_row *r, bool with_text)
{
	memset(r, 0, sizeof(*r));
	r->version = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, r->digest, sizeof(r->digest));
	store__col_text(st, 2, r->name, sizeof(r->name));
	store__col_text(st, 3, r->actor, sizeof(r->actor));
	r->created_at = sqlite3_column_int64(st, 4);
	r->diff = col_dup(st, 5);
	if (with_text)
		r->text = col_dup(st, 6);
}

int store_spec_add(struct store *s, struct spec_version_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT INTO spec_versions (version, digest, name, text, actor, created_at, diff) "
				    "VALUES ((SELECT IFNULL(MAX(version), 0) + 1 FROM spec_versions), ?, ?, ?, ?, ?, ?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->digest);
	store__bind_text(st, 2, r->name);
	store__bind_text(st, 3, r->text);
	store__bind_text(st, 4, r->actor);
	sqlite3_bind_int64(st, 5, r->created_at);
	store__bind_text(st, 6, r->diff ? r->diff : "[]");
	if (store__step_done(s, st, err) < 0)
		return -1;
	r->version = sqlite3_last_insert_rowid(store__db(s));
	return 0;
}

int store_spec_get(struct store *s, int64_t version, struct spec_version_row *out, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, version > 0
		? "SELECT " SPEC_COLS ", text FROM spec_versions WHERE version = ?"
		: "SELECT " SPEC_COLS ", text FROM spec_versions ORDER BY version DESC LIMIT 1", err);
	int rc;
	memset(out, 0, sizeof(*out));
	if (!st)
		return -1;
	if (version > 0)
		sqlite3_bind_int64(st, 1, version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_from(st, out, true);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store__err(s, err, "read the spec");
}

int store_spec_list(struct store *s, struct spec_version_row **out, size_t *n, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " SPEC_COLS " FROM spec_versions ORDER BY version DESC", err);
	int rc;
	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < MAX_VERSIONS) {
		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		row_from(st, &(*out)[(*n)++], false);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		for (size_t i = 0; i < *n; i++)
			spec_version_row_release(&(*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
		return store__err(s, err, "read the spec versions");
	}
	return 0;
}
