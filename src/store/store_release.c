/*
 * store_release.c — release records (store_release.h).
 */
#include "common.h"
#include "store/store-int.h"
#include "store/store_release.h"

#define RELEASE_COLS "id, environment, state, on_failure, created_by, created_at, updated_at, message, gates, services"

void release_row_release(struct release_row *r)
{
	free(r->gates);
	free(r->services);
	r->gates = r->services = NULL;
}

static void release_from(sqlite3_stmt *st, void *row)
{
	struct release_row *r = row;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, r->environment, sizeof(r->environment));
	store__col_text(st, 2, r->state, sizeof(r->state));
	store__col_text(st, 3, r->on_failure, sizeof(r->on_failure));
	store__col_text(st, 4, r->created_by, sizeof(r->created_by));
	r->created_at = sqlite3_column_int64(st, 5);
	r->updated_at = sqlite3_column_int64(st, 6);
	store__col_text(st, 7, r->message, sizeof(r->message));
	r->gates = store__col_dup(st, 8);
	r->services = store__col_dup(st, 9);
}

static void release_free_row(void *row)
{
	release_row_release(row);
}

int store_release_create(struct store *s, struct release_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT INTO releases (environment, state, on_failure, created_by, created_at,"
				       " updated_at, message, gates, services) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->environment);
	store__bind_text(st, 2, r->state);
	store__bind_text(st, 3, r->on_failure);
	store__bind_text(st, 4, r->created_by);
	sqlite3_bind_int64(st, 5, r->created_at);
	sqlite3_bind_int64(st, 6, r->updated_at);
	store__bind_text(st, 7, r->message);
	store__bind_text(st, 8, r->gates);
	store__bind_text(st, 9, r->services);
	return store__step_insert(s, st, &r->id, err);
}

int store_release_update(struct store *s, const struct release_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "UPDATE releases SET state = ?, message = ?, updated_at = ?, gates = ?,"
				       " services = ? WHERE id = ?", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->state);
	store__bind_text(st, 2, r->message);
	sqlite3_bind_int64(st, 3, r->updated_at);
	store__bind_text(st, 4, r->gates);
	store__bind_text(st, 5, r->services);
	sqlite3_bind_int64(st, 6, r->id);
	return store__step_done(s, st, err);
}

int store_release_get(struct store *s, int64_t id, struct release_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " RELEASE_COLS " FROM releases WHERE id = ?", err);
	if (st)
		sqlite3_bind_int64(st, 1, id);
	return store__one(s, st, release_from, r, "read a release", err);
}

int store_release_list(struct store *s, const char *env, bool active, struct release_row **out, size_t *n,
		       struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, active ? "SELECT " RELEASE_COLS " FROM releases WHERE (? = '' OR environment = ?)"
				       " AND state IN ('pending', 'running', 'rolling_back') ORDER BY id"
				       : "SELECT " RELEASE_COLS " FROM releases WHERE (? = '' OR environment = ?)"
				       " ORDER BY id DESC LIMIT 200", err);
	if (st) {
		store__bind_text(st, 1, env ? env : "");
		store__bind_text(st, 2, env ? env : "");
	}
	return store__rows(s, st, release_from, release_free_row, sizeof(**out), (void **)out, n, "read releases", err);
}
