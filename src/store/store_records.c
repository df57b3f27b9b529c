/*
 * store_records.c — SQLite queries for the gates' and records' tables
 * (store_records.h). The schema is migration 3 in store_sqlite.c.
 */
#include "common.h"
#include "store/store_records.h"
#include "store/store-int.h"

/* ---- users ---- */

#define USER_COLS "name, role, token_hash, created_at, created_by, environments, services"

int store_user_put(struct store *s, const struct user_row *u, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT OR REPLACE INTO users (name, role, token_hash, created_at, created_by, "
				    "environments, services) VALUES (?, ?, ?, ?, ?, ?, ?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, u->name);
	store__bind_text(st, 2, u->role);
	store__bind_text(st, 3, u->token_hash);
	sqlite3_bind_int64(st, 4, u->created_at);
	store__bind_text(st, 5, u->created_by);
	store__bind_text(st, 6, u->environments);
	store__bind_text(st, 7, u->services);
	return store__step_done(s, st, err);
}

static void user_from(sqlite3_stmt *st, void *row)
{
	struct user_row *u = row;
	memset(u, 0, sizeof(*u));
	store__col_text(st, 0, u->name, sizeof(u->name));
	store__col_text(st, 1, u->role, sizeof(u->role));
	store__col_text(st, 2, u->token_hash, sizeof(u->token_hash));
	u->created_at = sqlite3_column_int64(st, 3);
	store__col_text(st, 4, u->created_by, sizeof(u->created_by));
	store__col_text(st, 5, u->environments, sizeof(u->environments));
	store__col_text(st, 6, u->services, sizeof(u->services));
}

static int user_one(struct store *s, const char *sql, const char *arg, struct user_row *out, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, sql, err);
	if (st)
		store__bind_text(st, 1, arg);
	return store__one(s, st, user_from, out, "read", err);
}

int store_user_get(struct store *s, const char *name, struct user_row *out, struct gerr *err)
{
	return user_one(s, "SELECT " USER_COLS " FROM users WHERE name = ?",
			name, out, err);
}

int store_user_by_token(struct store *s, const char *token_hash, struct user_row *out, struct gerr *err)
{
	if (!token_hash || !*token_hash)
		return 0;
	return user_one(s, "SELECT " USER_COLS " FROM users WHERE token_hash = ?",
			token_hash, out, err);
}

int store_user_delete(struct store *s, const char *name, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "DELETE FROM users WHERE name = ?", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, name);
	return store__step_changed(s, st, err);
}

int store_user_list(struct store *s, struct user_row **out, size_t *n, struct gerr *err)
{
	return store__rows(s, store__prep(s, "SELECT " USER_COLS " FROM users ORDER BY name", err), user_from, NULL,
			   sizeof(**out), (void **)out, n, "read", err);
}

/* ---- incidents ---- */

#define INCIDENT_COLS "id, severity, title, service, environment, opened_by, opened_at, closed_by, closed_at, resolution"

static void incident_from(sqlite3_stmt *st, void *row)
{
	struct incident_row *r = row;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, r->severity, sizeof(r->severity));
	store__col_text(st, 2, r->title, sizeof(r->title));
	store__col_text(st, 3, r->service, sizeof(r->service));
	store__col_text(st, 4, r->environment, sizeof(r->environment));
	store__col_text(st, 5, r->opened_by, sizeof(r->opened_by));
	r->opened_at = sqlite3_column_int64(st, 6);
	store__col_text(st, 7, r->closed_by, sizeof(r->closed_by));
	r->closed_at = sqlite3_column_int64(st, 8);
	store__col_text(st, 9, r->resolution, sizeof(r->resolution));
}

int store_incident_open(struct store *s, struct incident_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT INTO incidents (severity, title, service, environment, opened_by, opened_at) "
				    "VALUES (?, ?, ?, ?, ?, ?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->severity);
	store__bind_text(st, 2, r->title);
	store__bind_text(st, 3, r->service);
	store__bind_text(st, 4, r->environment);
	store__bind_text(st, 5, r->opened_by);
	sqlite3_bind_int64(st, 6, r->opened_at);
	return store__step_insert(s, st, &r->id, err);
}

int store_incident_close(struct store *s, int64_t id, const char *by, int64_t at, const char *resolution,
			 struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "UPDATE incidents SET closed_by = ?, closed_at = ?, resolution = ? "
				    "WHERE id = ? AND closed_at = 0", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, by);
	sqlite3_bind_int64(st, 2, at > 0 ? at : 1);
	store__bind_text(st, 3, resolution);
	sqlite3_bind_int64(st, 4, id);
	return store__step_changed(s, st, err);
}

int store_incident_get(struct store *s, int64_t id, struct incident_row *out, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " INCIDENT_COLS " FROM incidents WHERE id = ?", err);
	if (st)
		sqlite3_bind_int64(st, 1, id);
	return store__one(s, st, incident_from, out, "read", err);
}

int store_incident_list(struct store *s, bool open_only, struct incident_row **out, size_t *n, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, open_only ? "SELECT " INCIDENT_COLS " FROM incidents WHERE closed_at = 0 ORDER BY id DESC"
					: "SELECT " INCIDENT_COLS " FROM incidents ORDER BY id DESC", err);
	return store__rows(s, st, incident_from, NULL, sizeof(**out), (void **)out, n, "read", err);
}

/* ---- deployments ---- */

#define DEPLOY_COLS "id, service, environment, kind, requester, state, request, gates, approvals_needed, " \
	"approval_ttl, version, digest, emergency, reason, commit_time, created_at, rollout_id, revision, " \
	"from_revision, started_at, ended_at, result, result_reason, checks, strategy, spec_version, config_digest, " \
	"config"

void deployment_row_release(struct deployment_row *r)
{
	free(r->request);
	free(r->gates);
	free(r->checks);
	free(r->config);
	r->request = r->gates = r->checks = r->config = NULL;
}

static void deployment_release(void *row)
{
	deployment_row_release(row);
}

static void deployment_from(sqlite3_stmt *st, void *row)
{
	struct deployment_row *r = row;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, r->service, sizeof(r->service));
	store__col_text(st, 2, r->environment, sizeof(r->environment));
	store__col_text(st, 3, r->kind, sizeof(r->kind));
	store__col_text(st, 4, r->requester, sizeof(r->requester));
	store__col_text(st, 5, r->state, sizeof(r->state));
	r->request = store__col_dup(st, 6);
	r->gates = store__col_dup(st, 7);
	r->approvals_needed = sqlite3_column_int(st, 8);
	r->approval_ttl = sqlite3_column_int64(st, 9);
	store__col_text(st, 10, r->version, sizeof(r->version));
	store__col_text(st, 11, r->digest, sizeof(r->digest));
	r->emergency = sqlite3_column_int(st, 12) != 0;
	store__col_text(st, 13, r->reason, sizeof(r->reason));
	r->commit_time = sqlite3_column_int64(st, 14);
	r->created_at = sqlite3_column_int64(st, 15);
	r->rollout_id = sqlite3_column_int64(st, 16);
	r->revision = sqlite3_column_int(st, 17);
	r->from_revision = sqlite3_column_int(st, 18);
	r->started_at = sqlite3_column_int64(st, 19);
	r->ended_at = sqlite3_column_int64(st, 20);
	store__col_text(st, 21, r->result, sizeof(r->result));
	store__col_text(st, 22, r->result_reason, sizeof(r->result_reason));
	r->checks = store__col_dup(st, 23);
	store__col_text(st, 24, r->strategy, sizeof(r->strategy));
	r->spec_version = sqlite3_column_int64(st, 25);
	store__col_text(st, 26, r->config_digest, sizeof(r->config_digest));
	r->config = store__col_dup(st, 27);
}

/* binds every column but id, in DEPLOY_COLS order, from 1 */
static void deployment_bind(sqlite3_stmt *st, const struct deployment_row *r)
{
	store__bind_text(st, 1, r->service);
	store__bind_text(st, 2, r->environment);
	store__bind_text(st, 3, r->kind);
	store__bind_text(st, 4, r->requester);
	store__bind_text(st, 5, r->state);
	store__bind_text(st, 6, r->request ? r->request : "{}");
	store__bind_text(st, 7, r->gates ? r->gates : "{}");
	sqlite3_bind_int(st, 8, r->approvals_needed);
	sqlite3_bind_int64(st, 9, r->approval_ttl);
	store__bind_text(st, 10, r->version);
	store__bind_text(st, 11, r->digest);
	sqlite3_bind_int(st, 12, r->emergency);
	store__bind_text(st, 13, r->reason);
	sqlite3_bind_int64(st, 14, r->commit_time);
	sqlite3_bind_int64(st, 15, r->created_at);
	sqlite3_bind_int64(st, 16, r->rollout_id);
	sqlite3_bind_int(st, 17, r->revision);
	sqlite3_bind_int(st, 18, r->from_revision);
	sqlite3_bind_int64(st, 19, r->started_at);
	sqlite3_bind_int64(st, 20, r->ended_at);
	store__bind_text(st, 21, r->result);
	store__bind_text(st, 22, r->result_reason);
	store__bind_text(st, 23, r->checks ? r->checks : "[]");
	store__bind_text(st, 24, r->strategy);
	sqlite3_bind_int64(st, 25, r->spec_version);
	store__bind_text(st, 26, r->config_digest);
	store__bind_text(st, 27, r->config ? r->config : "");
}

int store_deployment_add(struct store *s, struct deployment_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT INTO deployments (service, environment, kind, requester, state, request, "
				    "gates, approvals_needed, approval_ttl, version, digest, emergency, reason, commit_time, "
				    "created_at, rollout_id, revision, from_revision, started_at, ended_at, result, "
				    "result_reason, checks, strategy, spec_version, config_digest, config) "
				    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", err);
	if (!st)
		return -1;
	deployment_bind(st, r);
	return store__step_insert(s, st, &r->id, err);
}

int store_deployment_update(struct store *s, const struct deployment_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "UPDATE deployments SET service=?, environment=?, kind=?, requester=?, state=?, "
				    "request=?, gates=?, approvals_needed=?, approval_ttl=?, version=?, digest=?, emergency=?, "
				    "reason=?, commit_time=?, created_at=?, rollout_id=?, revision=?, from_revision=?, "
				    "started_at=?, ended_at=?, result=?, result_reason=?, checks=?, strategy=?, spec_version=?, "
				    "config_digest=?, config=? WHERE id = ?", err);
	if (!st)
		return -1;
	deployment_bind(st, r);
	sqlite3_bind_int64(st, 28, r->id);
	return store__step_done(s, st, err);
}

static int deployment_one(struct store *s, const char *where, int64_t arg, struct deployment_row *out,
			  struct gerr *err)
{
	char *sql = xasprintf("SELECT " DEPLOY_COLS " FROM deployments WHERE %s ORDER BY id DESC LIMIT 1", where);
	sqlite3_stmt *st = store__prep(s, sql, err);
	free(sql);
	if (st)
		sqlite3_bind_int64(st, 1, arg);
	return store__one(s, st, deployment_from, out, "read", err);
}

int store_deployment_get(struct store *s, int64_t id, struct deployment_row *out, struct gerr *err)
{
	return deployment_one(s, "id = ?", id, out, err);
}

int store_deployment_by_rollout(struct store *s, int64_t rollout_id, struct deployment_row *out, struct gerr *err)
{
	if (rollout_id <= 0)
		return 0;
	return deployment_one(s, "rollout_id = ?", rollout_id, out, err);
}

/* sql selects DEPLOY_COLS with ?1 service, ?2 environment ('' = any), ?3 created_at >= */
static int deployment_query(struct store *s, const char *sql, const char *svc, const char *env, int64_t since,
			    struct deployment_row **out, size_t *n, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, sql, err);
	if (st) {
		store__bind_text(st, 1, svc);
		store__bind_text(st, 2, env);
		sqlite3_bind_int64(st, 3, since);
	}
	return store__rows(s, st, deployment_from, deployment_release, sizeof(**out), (void **)out, n, "read", err);
}

int store_deployment_list(struct store *s, const char *svc, const char *env, int64_t since,
			  struct deployment_row **out, size_t *n, struct gerr *err)
{
	return deployment_query(s, "SELECT " DEPLOY_COLS " FROM deployments WHERE (?1 = '' OR service = ?1) "
				"AND (?2 = '' OR environment = ?2) AND created_at >= ?3 ORDER BY id DESC",
				svc, env, since, out, n, err);
}

int store_deployment_pending(struct store *s, const char *svc, const char *env, struct deployment_row **out,
			     size_t *n, struct gerr *err)
{
	/* the literal state lets SQLite use the partial index deployments_pending */
	return deployment_query(s, "SELECT " DEPLOY_COLS " FROM deployments WHERE state = 'pending_approval' "
				"AND (?1 = '' OR service = ?1) AND (?2 = '' OR environment = ?2) "
				"AND created_at >= ?3 ORDER BY id DESC",
				svc, env, 0, out, n, err);
}

/* ---- approvals ---- */

int store_approval_put(struct store *s, const struct approval_row *a, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT OR REPLACE INTO approvals (deployment_id, approver, decision, at, comment, "
				    "binding) VALUES (?, ?, ?, ?, ?, ?)", err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, a->deployment_id);
	store__bind_text(st, 2, a->approver);
	store__bind_text(st, 3, a->decision);
	sqlite3_bind_int64(st, 4, a->at);
	store__bind_text(st, 5, a->comment);
	store__bind_text(st, 6, a->binding);
	return store__step_done(s, st, err);
}

static void approval_from(sqlite3_stmt *st, void *row)
{
	struct approval_row *a = row;
	memset(a, 0, sizeof(*a));
	a->deployment_id = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, a->approver, sizeof(a->approver));
	store__col_text(st, 2, a->decision, sizeof(a->decision));
	a->at = sqlite3_column_int64(st, 3);
	store__col_text(st, 4, a->comment, sizeof(a->comment));
	store__col_text(st, 5, a->binding, sizeof(a->binding));
}

int store_approval_list(struct store *s, int64_t deployment_id, struct approval_row **out, size_t *n,
			struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT deployment_id, approver, decision, at, comment, binding FROM approvals "
				    "WHERE deployment_id = ? ORDER BY at, approver", err);
	if (st)
		sqlite3_bind_int64(st, 1, deployment_id);
	return store__rows(s, st, approval_from, NULL, sizeof(**out), (void **)out, n, "read", err);
}

/* ---- audit ---- */

#define AUDIT_COLS "seq, ts, actor, action, target, details, prev, hash, uid, pid, peer"

int store_audit_head(struct store *s, int64_t *seq, char hash[AUDIT_HASH_HEX], struct gerr *err)
{
	char buf[128];
	int r = store_meta_get(s, "audit_head", buf, sizeof(buf), err);
	char *sp;
	*seq = 0;
	hash[0] = 0;
	if (r <= 0)
		return r;
	*seq = strtoll(buf, &sp, 10);
	if (*sp == ' ')
		strlcpy_g(hash, sp + 1, AUDIT_HASH_HEX);
	return 1;
}

int store_audit_mac_from(struct store *s, int64_t *seq, struct gerr *err)
{
	char buf[32];
	int r = store_meta_get(s, "audit_mac_from", buf, sizeof(buf), err);
	*seq = r > 0 ? strtoll(buf, NULL, 10) : 0;
	return r;
}

int store_audit_mac_start(struct store *s, int64_t *seq, struct gerr *err)
{
	sqlite3_stmt *st;
	char buf[32];
	int r = store_audit_mac_from(s, seq, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	st = store__prep(s, "SELECT COALESCE(MAX(seq), 0) FROM audit", err);
	if (!st)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return store__err(s, err, "read");
	}
	*seq = sqlite3_column_int64(st, 0) + 1;
	sqlite3_finalize(st);
	snprintf(buf, sizeof(buf), "%lld", (long long)*seq);
	return store_meta_set(s, "audit_mac_from", buf, err) < 0 ? -1 : 1;
}

void audit_entry_release(struct audit_entry *e)
{
	free(e->details);
	e->details = NULL;
}

int store_audit_append(struct store *s, struct audit_entry *e,
		       int (*seal)(struct audit_entry *e, const unsigned char *key), const unsigned char *key,
		       struct gerr *err)
{
	sqlite3_stmt *st = NULL;
	bool own_tx = !store__in_tx(s);
	char head[128];
	int64_t last = 0;
	int rc, ret = -1;

	if (own_tx && store_begin(s, err) < 0)
		return -1;
	/* the chain continues from the newest stored entry */
	st = store__prep(s, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", err);
	if (!st)
		goto out;
	rc = sqlite3_step(st);
	memset(e->prev, '0', 64);
	e->prev[64] = 0;
	if (rc == SQLITE_ROW) {
		last = sqlite3_column_int64(st, 0);
		store__col_text(st, 1, e->prev, sizeof(e->prev));
	} else if (rc != SQLITE_DONE) {
		store__err(s, err, "read");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	e->seq = last + 1;
	if (!key) {
		/* a v1 entry (tests of the upgrade): no caller recorded */
		e->uid = -1;
		e->pid = 0;
		e->peer[0] = 0;
	} else if (!*e->peer) {
		strlcpy_g(e->peer, "controller", sizeof(e->peer));
	}
	if (seal(e, key) < 0) {
		gerr_set(err, "audit: details must be a JSON object");
		goto out;
	}
	st = store__prep(s, "INSERT INTO audit (" AUDIT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, e->seq);
	sqlite3_bind_int64(st, 2, e->time);
	store__bind_text(st, 3, e->actor);
	store__bind_text(st, 4, e->action);
	store__bind_text(st, 5, e->target);
	store__bind_text(st, 6, e->details ? e->details : "{}");
	store__bind_text(st, 7, e->prev);
	store__bind_text(st, 8, e->hash);
	if (key) {
		sqlite3_bind_int64(st, 9, e->uid);
		sqlite3_bind_int64(st, 10, e->pid);
	} else {
		sqlite3_bind_null(st, 9);
		sqlite3_bind_null(st, 10);
	}
	store__bind_text(st, 11, e->peer);
	ret = store__step_done(s, st, err);
	st = NULL;
	if (ret < 0)
		goto out;
	snprintf(head, sizeof(head), "%lld %s", (long long)e->seq, e->hash);
	ret = store_meta_set(s, "audit_head", head, err);
out:
	if (st)
		sqlite3_finalize(st);
	if (own_tx) {
		if (ret == 0 && store_commit(s, err) < 0)
			ret = -1;
		if (ret < 0)
			store_rollback(s);
	}
	return ret;
}

static void audit_release(void *row)
{
	audit_entry_release(row);
}

static void audit_from(sqlite3_stmt *st, void *row)
{
	struct audit_entry *e = row;
	memset(e, 0, sizeof(*e));
	e->seq = sqlite3_column_int64(st, 0);
	e->time = sqlite3_column_int64(st, 1);
	store__col_text(st, 2, e->actor, sizeof(e->actor));
	store__col_text(st, 3, e->action, sizeof(e->action));
	store__col_text(st, 4, e->target, sizeof(e->target));
	e->details = store__col_dup(st, 5);
	store__col_text(st, 6, e->prev, sizeof(e->prev));
	store__col_text(st, 7, e->hash, sizeof(e->hash));
	e->uid = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 8);
	e->pid = sqlite3_column_int64(st, 9);
	store__col_text(st, 10, e->peer, sizeof(e->peer));
}

int store_audit_list(struct store *s, struct audit_entry **out, size_t *n, struct gerr *err)
{
	return store__rows(s, store__prep(s, "SELECT " AUDIT_COLS " FROM audit ORDER BY seq", err), audit_from,
			   audit_release, sizeof(**out), (void **)out, n, "read", err);
}

int store_audit_each(struct store *s, int (*fn)(void *ctx, const struct audit_entry *e), void *ctx,
		     struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " AUDIT_COLS " FROM audit ORDER BY seq", err);
	int rc, r = 0;
	if (!st)
		return -1;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct audit_entry e;
		audit_from(st, &e);
		r = fn(ctx, &e);
		audit_entry_release(&e);
	}
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE)
		return store__err(s, err, "read");
	return r > 0 ? r : 0;
}

int store_audit_get(struct store *s, int64_t seq, struct audit_entry *e, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " AUDIT_COLS " FROM audit WHERE seq = ?", err);
	if (st)
		sqlite3_bind_int64(st, 1, seq);
	return store__one(s, st, audit_from, e, "read", err);
}

int store_audit_seq_after(struct store *s, const char *hash, int64_t *seq, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT seq FROM audit WHERE prev = ? LIMIT 1", err);
	*seq = 0;
	if (st)
		store__bind_text(st, 1, hash);
	return store__one(s, st, store__decode_int64, seq, "read", err);
}

/* ---- webhook outbox ---- */

void outbox_row_release(struct outbox_row *r)
{
	free(r->url);
	free(r->body);
	free(r->msg_id);
	free(r->signature);
	free(r->secret);
	r->url = r->body = r->msg_id = r->signature = r->secret = NULL;
}

static void outbox_release(void *row)
{
	outbox_row_release(row);
}

#define OUTBOX_COLS "id, event, url, body, msg_id, ts, signature, attempts, next_at_ms, secret, allow_private"

static void outbox_from(sqlite3_stmt *st, void *row)
{
	struct outbox_row *r = row;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	store__col_text(st, 1, r->event, sizeof(r->event));
	r->url = store__col_dup(st, 2);
	r->body = store__col_dup(st, 3);
	r->msg_id = store__col_dup(st, 4);
	r->ts = sqlite3_column_int64(st, 5);
	r->signature = sqlite3_column_type(st, 6) == SQLITE_NULL ? NULL : store__col_dup(st, 6);
	r->attempts = sqlite3_column_int(st, 7);
	r->next_at_ms = sqlite3_column_int64(st, 8);
	r->secret = sqlite3_column_type(st, 9) == SQLITE_NULL ? NULL : store__col_dup(st, 9);
	r->allow_private = sqlite3_column_int(st, 10) != 0;
}

int store_outbox_add(struct store *s, struct outbox_row *r, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "INSERT INTO outbox (event, url, body, msg_id, ts, signature, attempts, "
				    "next_at_ms, secret, allow_private) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
	if (!st)
		return -1;
	store__bind_text(st, 1, r->event);
	store__bind_text(st, 2, r->url);
	store__bind_text(st, 3, r->body);
	store__bind_text(st, 4, r->msg_id);
	sqlite3_bind_int64(st, 5, r->ts);
	if (r->signature)
		store__bind_text(st, 6, r->signature);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int(st, 7, r->attempts);
	sqlite3_bind_int64(st, 8, r->next_at_ms);
	if (r->secret)
		store__bind_text(st, 9, r->secret);
	else
		sqlite3_bind_null(st, 9);
	sqlite3_bind_int(st, 10, r->allow_private);
	return store__step_insert(s, st, &r->id, err);
}

int store_outbox_due(struct store *s, int64_t now, size_t max, struct outbox_row **out, size_t *n,
		     struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT " OUTBOX_COLS " FROM outbox WHERE next_at_ms <= ? "
				    "ORDER BY next_at_ms, id LIMIT ?", err);
	if (st) {
		sqlite3_bind_int64(st, 1, now);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)MIN(max, (size_t)STORE_MAX_ROWS));
	}
	return store__rows(s, st, outbox_from, outbox_release, sizeof(**out), (void **)out, n, "read", err);
}

int store_outbox_retry(struct store *s, int64_t id, int attempts, int64_t next_at_ms, const char *why,
		       struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "UPDATE outbox SET attempts = ?, next_at_ms = ?, last_error = ? WHERE id = ?",
				       err);
	if (!st)
		return -1;
	sqlite3_bind_int(st, 1, attempts);
	sqlite3_bind_int64(st, 2, next_at_ms);
	store__bind_text(st, 3, why);
	sqlite3_bind_int64(st, 4, id);
	return store__step_done(s, st, err);
}

int store_outbox_delete(struct store *s, int64_t id, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "DELETE FROM outbox WHERE id = ?", err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return store__step_done(s, st, err);
}

int store_outbox_pending(struct store *s, int64_t *count, int64_t *next_at_ms, struct gerr *err)
{
	sqlite3_stmt *st = store__prep(s, "SELECT count(*), min(next_at_ms) FROM outbox", err);
	int rc;
	*count = 0;
	*next_at_ms = INT64_MAX;
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			*next_at_ms = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return store__err(s, err, "read");
	return 0;
}
