/*
 * store_flags.c — feature flag changes and tokens (store_flags.h).
 */
#include "common.h"
#include "store/store-int.h"
#include "store/store_flags.h"

#define FLAG_COLS "environment, flag, version, from_state, to_state, actor, reason, at_ms"

static void change_from(sqlite3_stmt *st, void *row)
{
	struct flag_change_row *r = row;
	memset(r, 0, sizeof(*r));
	store__col_text(st, 0, r->environment, sizeof(r->environment));
	store__col_text(st, 1, r->flag, sizeof(r->flag));
	r->version = sqlite3_column_int(st, 2);
	store__col_text(st, 3, r->from_state, sizeof(r->from_state));
	store__col_text(st, 4, r->to_state, sizeof(r->to_state));
	store__col_text(st, 5, r->actor, sizeof(r->actor));
	store__col_text(st, 6, r->reason, sizeof(r->reason));
	r->at_ms = sqlite3_column_int64(st, 7);
}

int store_flag_change_add(struct store *s, const struct flag_change_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT INTO flag_changes (" FLAG_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->environment);
	store__bind_text(st, 2, r->flag);
	sqlite3_bind_int(st, 3, r->version);
	store__bind_text(st, 4, r->from_state);
	store__bind_text(st, 5, r->to_state);
	store__bind_text(st, 6, r->actor);
	store__bind_text(st, 7, r->reason);
	sqlite3_bind_int64(st, 8, r->at_ms);
	return store__step_done(s, st, err);
}

int store_flag_states(struct store *s, struct flag_change_row **out, size_t *n, struct gerr *err)
{
	return store__rows(s, store__prep(s, "SELECT " FLAG_COLS " FROM flag_changes c WHERE version = "
				       "(SELECT MAX(version) FROM flag_changes d WHERE d.environment = c.environment "
				       "AND d.flag = c.flag) ORDER BY environment, flag", err),
			   change_from, NULL, sizeof(**out), (void **)out, n, "read flag states", err);
}

int store_flag_history(struct store *s, const char *env, const char *flag, struct flag_change_row **out, size_t *n,
		       struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " FLAG_COLS " FROM flag_changes WHERE environment = ? AND flag = ? "
				       "ORDER BY version", err);
	if (st) {
		store__bind_text(st, 1, env);
		store__bind_text(st, 2, flag);
	}
	return store__rows(s, st, change_from, NULL, sizeof(**out), (void **)out, n, "read flag history", err);
}

static void token_from(sqlite3_stmt *st, void *row)
{
	store__col_text(st, 0, row, 80);
}

int store_flag_token_get(struct store *s, const char *env, char *tok, size_t len, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT token FROM flag_tokens WHERE environment = ?", err);
	char buf[80] = "";
	int r;
	if (st)
		store__bind_text(st, 1, env);
	r = store__one(s, st, token_from, buf, "read flag token", err);
	if (r == 1)
		strlcpy_g(tok, buf, len);
	return r;
}

int store_flag_token_put(struct store *s, const char *env, const char *tok, int64_t at_ms, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT OR REPLACE INTO flag_tokens (environment, token, created_at_ms) "
				       "VALUES (?, ?, ?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, env);
	store__bind_text(st, 2, tok);
	sqlite3_bind_int64(st, 3, at_ms);
	return store__step_done(s, st, err);
}

int store_flag_off_times(struct store *s, const char *svc, const char *env, int64_t since_ms, int64_t **out,
			 size_t *n, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT ts FROM events WHERE service = ? AND environment = ? AND "
				       "kind = 'flag_off' AND ts >= ? ORDER BY ts", err);
	if (st) {
		store__bind_text(st, 1, svc);
		store__bind_text(st, 2, env);
		sqlite3_bind_int64(st, 3, since_ms);
	}
	return store__rows(s, st, store__decode_int64, NULL, sizeof(**out), (void **)out, n, "read flag_off events", err);
}

#define OFF_COLS "deployment_id, environment, flag, revision, source, reason, flag_version, at_ms"

static void off_from(sqlite3_stmt *st, void *row)
{
	struct deployment_flag_off_row *r = row;
	memset(r, 0, sizeof(*r));
	r->deployment_id = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, r->environment, sizeof(r->environment));
	store__col_text(st, 2, r->flag, sizeof(r->flag));
	r->revision = sqlite3_column_int(st, 3);
	store__col_text(st, 4, r->source, sizeof(r->source));
	store__col_text(st, 5, r->reason, sizeof(r->reason));
	r->flag_version = sqlite3_column_int(st, 6);
	r->at_ms = sqlite3_column_int64(st, 7);
}

int store_deployment_flag_off_add(struct store *s, const struct deployment_flag_off_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT INTO deployment_flag_offs (" OFF_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				       err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, r->deployment_id);
	store__bind_text(st, 2, r->environment);
	store__bind_text(st, 3, r->flag);
	sqlite3_bind_int(st, 4, r->revision);
	store__bind_text(st, 5, r->source);
	store__bind_text(st, 6, r->reason);
	sqlite3_bind_int(st, 7, r->flag_version);
	sqlite3_bind_int64(st, 8, r->at_ms);
	return store__step_done(s, st, err);
}

int store_deployment_flag_offs(struct store *s, int64_t id, struct deployment_flag_off_row **out, size_t *n,
			       struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " OFF_COLS " FROM deployment_flag_offs WHERE deployment_id = ? "
				       "ORDER BY at_ms, rowid", err);
	if (st)
		sqlite3_bind_int64(st, 1, id);
	return store__rows(s, st, off_from, NULL, sizeof(**out), (void **)out, n, "read deployment flag-offs", err);
}
