/*
 * store_maint.c — maintenance mode rows (store_maint.h).
 */
#include "common.h"
#include "store/store-int.h"
#include "store/store_maint.h"

#define MAINT_COLS "service, environment, message, retry_after_s, allow_headers, set_by, set_at_ms"

static void maintenance_from(sqlite3_stmt *st, void *row)
{
	struct maintenance_row *r = row;
	memset(r, 0, sizeof(*r));
	store__col_text(st, 0, r->service, sizeof(r->service));
	store__col_text(st, 1, r->environment, sizeof(r->environment));
	store__col_text(st, 2, r->message, sizeof(r->message));
	r->retry_after_s = sqlite3_column_int(st, 3);
	store__col_text(st, 4, r->allow_headers, sizeof(r->allow_headers));
	store__col_text(st, 5, r->set_by, sizeof(r->set_by));
	r->set_at_ms = sqlite3_column_int64(st, 6);
}

int store_maintenance_put(struct store *s, const struct maintenance_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT OR REPLACE INTO maintenance (" MAINT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)",
				       err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->service);
	store__bind_text(st, 2, r->environment);
	store__bind_text(st, 3, r->message);
	sqlite3_bind_int(st, 4, r->retry_after_s);
	store__bind_text(st, 5, r->allow_headers[0] ? r->allow_headers : "[]");
	store__bind_text(st, 6, r->set_by);
	sqlite3_bind_int64(st, 7, r->set_at_ms);
	return store__step_done(s, st, err);
}

int store_maintenance_delete(struct store *s, const char *svc, const char *env, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "DELETE FROM maintenance WHERE service = ? AND environment = ?", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, svc);
	store__bind_text(st, 2, env);
	return store__step_changed(s, st, err);
}

int store_maintenance_list(struct store *s, struct maintenance_row **out, size_t *n, struct gerr *err)
{
	return store__rows(s, store__prep(s, "SELECT " MAINT_COLS " FROM maintenance ORDER BY service, environment", err),
			   maintenance_from, NULL, sizeof(**out), (void **)out, n, "read maintenance", err);
}
