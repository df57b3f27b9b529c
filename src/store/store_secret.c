/*
 * store_secret.c — secret versions, encrypted (store_secret.h).
 */
#include "common.h"
#include "store/store-int.h"
#include "store/store_secret.h"

#define SECRET_COLS "environment, name, version, created_by, created_at, removed"

void secret_row_release(struct secret_row *r)
{
	free(r->ciphertext);
	r->ciphertext = NULL;
	r->ciphertext_len = 0;
}

/* SECRET_COLS, and the ciphertext when the query selects it after them */
static void secret_from(sqlite3_stmt *st, void *row)
{
	struct secret_row *r = row;
	memset(r, 0, sizeof(*r));
	store__col_text(st, 0, r->environment, sizeof(r->environment));
	store__col_text(st, 1, r->name, sizeof(r->name));
	r->version = sqlite3_column_int(st, 2);
	store__col_text(st, 3, r->created_by, sizeof(r->created_by));
	r->created_at = sqlite3_column_int64(st, 4);
	r->removed = sqlite3_column_int(st, 5) != 0;
	if (sqlite3_column_count(st) > 6) {
		const void *b = sqlite3_column_blob(st, 6);
		int n = sqlite3_column_bytes(st, 6);
		if (b && n > 0) {
			r->ciphertext = xmalloc((size_t)n);
			memcpy(r->ciphertext, b, (size_t)n);
			r->ciphertext_len = (size_t)n;
		}
	}
}

int store_secret_add(struct store *s, struct secret_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT IFNULL(MAX(version), 0) FROM secrets WHERE environment = ? AND name = ?", err);
	int64_t v = 0;
	if (st) {
		store__bind_text(st, 1, r->environment);
		store__bind_text(st, 2, r->name);
	}
	if (store__one(s, st, store__decode_int64, &v, "read the secret versions", err) < 0)
		return -1;
	st = store__prep(s, "INSERT INTO secrets (environment, name, version, ciphertext, created_by, created_at) "
			 "VALUES (?1, ?2, ?6, ?3, ?4, ?5)",
			 err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->environment);
	store__bind_text(st, 2, r->name);
	sqlite3_bind_blob(st, 3, r->ciphertext, (int)r->ciphertext_len, SQLITE_TRANSIENT);
	store__bind_text(st, 4, r->created_by);
	sqlite3_bind_int64(st, 5, r->created_at);
	sqlite3_bind_int64(st, 6, v + 1);
	if (store__step_done(s, st, err) < 0)
		return -1;
	r->version = (int)v + 1;
	st = store__prep(s, "UPDATE secrets SET removed = 0 WHERE environment = ? AND name = ?", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->environment);
	store__bind_text(st, 2, r->name);
	return store__step_changed(s, st, err) < 0 ? -1 : 0;
}

int store_secret_get(struct store *s, const char *env, const char *name, int version, struct secret_row *out,
		     struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, version > 0
		? "SELECT " SECRET_COLS ", ciphertext FROM secrets WHERE environment = ? AND name = ? AND version = ?"
		: "SELECT " SECRET_COLS ", ciphertext FROM secrets WHERE environment = ? AND name = ? AND removed = 0 "
		  "ORDER BY version DESC LIMIT 1", err);
	memset(out, 0, sizeof(*out));
	if (st) {
		store__bind_text(st, 1, env);
		store__bind_text(st, 2, name);
		if (version > 0)
			sqlite3_bind_int(st, 3, version);
	}
	return store__one(s, st, secret_from, out, "read a secret", err);
}

int store_secret_list(struct store *s, const char *env, struct secret_row **out, size_t *n, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, env
		? "SELECT " SECRET_COLS " FROM secrets WHERE environment = ? ORDER BY environment, name, version"
		: "SELECT " SECRET_COLS " FROM secrets ORDER BY environment, name, version", err);
	if (st && env)
		store__bind_text(st, 1, env);
	return store__rows(s, st, secret_from, NULL, sizeof(**out), (void **)out, n, "read the secrets", err);
}

int store_secret_delete(struct store *s, const char *env, const char *name, int version, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "DELETE FROM secrets WHERE environment = ? AND name = ? AND version = ?", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, env);
	store__bind_text(st, 2, name);
	sqlite3_bind_int(st, 3, version);
	return store__step_changed(s, st, err);
}

int store_secret_mark_removed(struct store *s, const char *env, const char *name, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "UPDATE secrets SET removed = 1 WHERE environment = ? AND name = ? AND removed = 0", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, env);
	store__bind_text(st, 2, name);
	return store__step_changed(s, st, err);
}
