/*
 * store_spec.c — numbered spec versions (store_spec.h).
 */
#include "common.h"
#include "store/store-int.h"
#include "store/store_spec.h"

#define SPEC_COLS "version, digest, name, actor, created_at, diff"

void spec_version_row_release(struct spec_version_row *r)
{
	free(r->text);
	free(r->diff);
	r->text = r->diff = NULL;
}

static void spec_version_release(void *row)
{
	spec_version_row_release(row);
}

/* SPEC_COLS, and the text when the query selects it after them */
static void spec_version_from(sqlite3_stmt *st, void *row)
{
	struct spec_version_row *r = row;
	memset(r, 0, sizeof(*r));
	r->version = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, r->digest, sizeof(r->digest));
	store__col_text(st, 2, r->name, sizeof(r->name));
	store__col_text(st, 3, r->actor, sizeof(r->actor));
	r->created_at = sqlite3_column_int64(st, 4);
	r->diff = store__col_dup(st, 5);
	if (sqlite3_column_count(st) > 6)
		r->text = store__col_dup(st, 6);
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
	return store__step_insert(s, st, &r->version, err);
}

int store_spec_get(struct store *s, int64_t version, struct spec_version_row *out, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, version > 0
		? "SELECT " SPEC_COLS ", text FROM spec_versions WHERE version = ?"
		: "SELECT " SPEC_COLS ", text FROM spec_versions ORDER BY version DESC LIMIT 1", err);
	memset(out, 0, sizeof(*out));
	if (st && version > 0)
		sqlite3_bind_int64(st, 1, version);
	return store__one(s, st, spec_version_from, out, "read the spec", err);
}

int store_spec_list(struct store *s, struct spec_version_row **out, size_t *n, struct gerr *err)
{
	return store__rows(s, store__prep(s, "SELECT " SPEC_COLS " FROM spec_versions ORDER BY version DESC", err),
			   spec_version_from, spec_version_release, sizeof(**out), (void **)out, n,
			   "read the spec versions", err);
}
