/*
 * maintenance.c — maintenance mode of a service environment (maintenance.h):
 * the store's rows, kept in memory once read (at the first use after a
 * start), the routes file's "maintenance" object, and the announcements
 * of a change (event, webhook, audit entry).
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/maintenance.h"
#include "daemon/gates_flow.h"
#include "store/store_maint.h"
#include "util/clock.h"
#include "util/log.h"

struct mentry {
	char service[64], environment[64];
	bool on;
	struct maintenance m;
	char set_by[64];
	int64_t set_at_ms;
	uint64_t gen;          /* the routes generation that carries this state (0: any the proxy confirmed) */
	struct mentry *next;
};

static struct mentry *entries;
static bool loaded;

static int header_from_json(json_t *h, struct maintenance_header *out)
{
	const char *n = json_string_value(json_object_get(h, "header"));
	const char *v = json_string_value(json_object_get(h, "value"));
	if (!n || !v || strlen(n) >= sizeof(out->name) || strlen(v) >= sizeof(out->value))
		return -1;
	strlcpy_g(out->name, n, sizeof(out->name));
	strlcpy_g(out->value, v, sizeof(out->value));
	return 0;
}

static struct mentry *find(const char *svc, const char *env, bool create)
{
	struct mentry *e;
	for (e = entries; e; e = e->next)
		if (!strcmp(e->service, svc) && !strcmp(e->environment, env))
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof(*e));
	strlcpy_g(e->service, svc, sizeof(e->service));
	strlcpy_g(e->environment, env, sizeof(e->environment));
	e->next = entries;
	entries = e;
	return e;
}

/* the stored rows, once: a restarted controller goes on where the last one was */
static void load(struct daemon *d)
{
	struct maintenance_row *rows = NULL;
	struct gerr err;
	size_t n = 0;

	if (loaded)
		return;
	if (store_maintenance_list(d->store, &rows, &n, &err) < 0) {
		log_error("maintenance", "cannot read the maintenance state: %s (retrying at the next use)", err.msg);
		return;
	}
	loaded = true;
	for (size_t i = 0; i < n; i++) {
		struct mentry *e = find(rows[i].service, rows[i].environment, true);
		json_t *ah = json_loads(rows[i].allow_headers, 0, NULL), *h;
		size_t k;
		e->on = true;
		strlcpy_g(e->m.message, rows[i].message, sizeof(e->m.message));
		e->m.retry_after_s = rows[i].retry_after_s;
		json_array_foreach(ah, k, h)
			if (e->m.nallow < MAINT_HEADERS_MAX && header_from_json(h, &e->m.allow[e->m.nallow]) == 0)
				e->m.nallow++;
		json_decref(ah);
		strlcpy_g(e->set_by, rows[i].set_by, sizeof(e->set_by));
		e->set_at_ms = rows[i].set_at_ms;
		log_info("maintenance", "service=%s environment=%s maintenance=on since_ms=%lld by=%s", e->service,
			 e->environment, (long long)e->set_at_ms, e->set_by);
	}
	free(rows);
}

int maintenance_check(const struct maintenance *m, struct gerr *err)
{
	struct gerr e2;
	if (m->message[0] && maint_check_message(m->message, &e2) < 0)
		return gerr_set(err, "/message: %s", e2.msg);
	if (m->retry_after_s && maint_check_retry_after(m->retry_after_s, &e2) < 0)
		return gerr_set(err, "/retry_after_s: %s", e2.msg);
	if (m->nallow > MAINT_HEADERS_MAX)
		return gerr_set(err, "/allow_headers: at most %d headers", MAINT_HEADERS_MAX);
	for (size_t i = 0; i < m->nallow; i++) {
		if (maint_check_header_name(m->allow[i].name, &e2) < 0 ||
		    maint_check_header_value(m->allow[i].value, &e2) < 0)
			return gerr_set(err, "/allow_headers/%zu: %s", i, e2.msg);
		for (size_t j = 0; j < i; j++)
			if (!strcasecmp(m->allow[i].name, m->allow[j].name))
				return gerr_set(err, "/allow_headers/%zu: header '%s' is given twice", i, m->allow[i].name);
	}
	return 0;
}

static bool same(const struct mentry *e, const struct maintenance *m)
{
	if (!e || !e->on)
		return !m;
	if (!m || strcmp(e->m.message, m->message) || e->m.retry_after_s != m->retry_after_s ||
	    e->m.nallow != m->nallow)
		return false;
	for (size_t i = 0; i < m->nallow; i++)
		if (strcmp(e->m.allow[i].name, m->allow[i].name) || strcmp(e->m.allow[i].value, m->allow[i].value))
			return false;
	return true;
}

/* "x-bypass, x-ops" or "none" (names only: never a value) */
static void header_names(const struct maintenance *m, char *out, size_t len)
{
	out[0] = 0;
	for (size_t i = 0; i < m->nallow; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? ", " : "", m->allow[i].name);
	if (!out[0])
		strlcpy_g(out, "none", len);
}

static json_t *names_json(const struct maintenance *m)
{
	json_t *a = json_array();
	for (size_t i = 0; i < m->nallow; i++)
		json_array_append_new(a, json_string(m->allow[i].name));
	return a;
}

static int retry_of(const struct maintenance *m)
{
	return m->retry_after_s ? m->retry_after_s : MAINT_RETRY_AFTER_DEFAULT;
}

int daemon_maintenance_set_by(struct daemon *d, const char *svc, const char *env, const struct maintenance *m,
			      const char *actor, const struct caller *caller, bool *changed, struct gerr *err)
{
	struct svcenv *se = daemon_svcenv(svc, env, false);
	const char *kind = m ? "maintenance_on" : "maintenance_off";
	struct maintenance_row row;
	struct mentry *e;
	char names[MAINT_HEADERS_MAX * (MAINT_HEADER_NAME_MAX + 2) + 8], target[140];
	int revision;
	json_t *data;

	if (changed)
		*changed = false;
	if (!actor || !*actor)
		actor = "gantry";
	if (!se || !(se->row.target_revision || se->row.stable_revision))
		return gerr_set(err, "%s@%s has never been deployed", svc, env);
	if (m && maintenance_check(m, err) < 0)
		return -1;
	load(d);
	if (!loaded)
		return gerr_set(err, "state store: cannot read the maintenance state; nothing changed");
	e = find(svc, env, false);
	if (same(e, m))
		return 0;
	if (daemon_store_refusal(err) < 0)
		return -1;
	if (m) {
		json_t *ah = json_array();
		char *text;
		for (size_t i = 0; i < m->nallow; i++)
			json_array_append_new(ah, json_pack("{s:s, s:s}", "header", m->allow[i].name, "value",
							    m->allow[i].value));
		text = json_dumps(ah, JSON_COMPACT);
		json_decref(ah);
		memset(&row, 0, sizeof(row));
		strlcpy_g(row.service, svc, sizeof(row.service));
		strlcpy_g(row.environment, env, sizeof(row.environment));
		strlcpy_g(row.message, m->message, sizeof(row.message));
		row.retry_after_s = retry_of(m);
		strlcpy_g(row.allow_headers, text ? text : "[]", sizeof(row.allow_headers));
		strlcpy_g(row.set_by, actor, sizeof(row.set_by));
		row.set_at_ms = clock_now_ms();
		if (text)
			explicit_bzero(text, strlen(text));
		free(text);
		if (store_maintenance_put(d->store, &row, err) < 0) {
			explicit_bzero(&row, sizeof(row));
			return -1;
		}
		explicit_bzero(row.allow_headers, sizeof(row.allow_headers));
	} else if (store_maintenance_delete(d->store, svc, env, err) < 0) {
		return -1;
	}

	e = find(svc, env, true);
	e->on = m != NULL;
	if (m) {
		e->m = *m;
		e->m.retry_after_s = retry_of(m);
	} else {
		memset(&e->m, 0, sizeof(e->m));
	}
	strlcpy_g(e->set_by, actor, sizeof(e->set_by));
	e->set_at_ms = clock_now_ms();
	if (changed)
		*changed = true;

	revision = se->row.target_revision ? se->row.target_revision : se->row.stable_revision;
	header_names(&e->m, names, sizeof(names));
	if (m)
		daemon_event(se, revision, kind, "maintenance on by %s: clients get 503 (Retry-After %ds) with \"%s\"; "
			     "bypass headers: %s", actor, e->m.retry_after_s,
			     e->m.message[0] ? e->m.message : MAINT_DEFAULT_MESSAGE, names);
	else
		daemon_event(se, revision, kind, "maintenance off by %s: requests reach the replicas again", actor);
	data = json_pack("{s:s, s:s, s:i, s:s, s:b}", "service", svc, "environment", env, "revision", revision, "by",
			 actor, "on", m != NULL);
	if (m) {
		json_object_set_new(data, "message", json_string(e->m.message[0] ? e->m.message : MAINT_DEFAULT_MESSAGE));
		json_object_set_new(data, "retry_after_s", json_integer(e->m.retry_after_s));
		json_object_set_new(data, "allow_headers", names_json(&e->m));
	}
	snprintf(target, sizeof(target), "%s@%s", svc, env);
	gates_audit_as(caller, actor, kind, target, json_deep_copy(data));
	gates_emit(kind, data);
	proxyctl_write_routes();
	/* a write that failed is retried: the table that carries this is the next one */
	e->gen = d->routes_dirty ? d->route_gen + 1 : d->route_gen;
	log_info("maintenance", "service=%s environment=%s maintenance=%s by=%s headers=%s generation=%llu", svc, env,
		 m ? "on" : "off", actor, names, (unsigned long long)e->gen);
	return 0;
}

int daemon_maintenance_set(struct daemon *d, const char *svc, const char *env, const struct maintenance *m,
			   const char *actor, struct gerr *err)
{
	return daemon_maintenance_set_by(d, svc, env, m, actor, NULL, NULL, err);
}

bool daemon_maintenance_get(struct daemon *d, const char *svc, const char *env, struct maintenance *m)
{
	struct mentry *e;
	load(d);
	e = find(svc, env, false);
	if (!e || !e->on)
		return false;
	if (m)
		*m = e->m;
	return true;
}

bool daemon_maintenance_in_force(struct daemon *d, const char *svc, const char *env)
{
	struct mentry *e;
	load(d);
	e = find(svc, env, false);
	return d->proxy_pid && d->proxy_confirmed && d->proxy_gen_seen >= (e ? e->gen : 0);
}

json_t *daemon_maintenance_route(struct daemon *d, const char *svc, const char *env)
{
	struct mentry *e;
	json_t *o, *ah;
	load(d);
	e = find(svc, env, false);
	if (!e || !e->on)
		return NULL;
	o = json_pack("{s:i}", "retry_after_s", e->m.retry_after_s ? e->m.retry_after_s : MAINT_RETRY_AFTER_DEFAULT);
	if (e->m.message[0])
		json_object_set_new(o, "message", json_string(e->m.message));
	ah = json_array();
	for (size_t i = 0; i < e->m.nallow; i++)
		json_array_append_new(ah, json_pack("{s:s, s:s}", "header", e->m.allow[i].name, "value",
						    e->m.allow[i].value));
	json_object_set_new(o, "allow_headers", ah);
	return o;
}

static json_t *entry_json(struct daemon *d, const struct mentry *e, const char *svc, const char *env)
{
	char at[40] = "";
	json_t *o = json_pack("{s:s, s:s, s:b, s:b}", "service", e ? e->service : svc, "environment",
			      e ? e->environment : env, "on", e && e->on, "in_force",
			      daemon_maintenance_in_force(d, e ? e->service : svc, e ? e->environment : env));
	if (!e)
		return o;
	if (e->on) {
		json_object_set_new(o, "message", json_string(e->m.message[0] ? e->m.message : MAINT_DEFAULT_MESSAGE));
		json_object_set_new(o, "retry_after_s", json_integer(e->m.retry_after_s));
		json_object_set_new(o, "allow_headers", names_json(&e->m));
	}
	format_rfc3339(e->set_at_ms / 1000, at, sizeof(at));
	json_object_set_new(o, "set_by", json_string(e->set_by));
	json_object_set_new(o, "set_at", json_string(at));
	return o;
}

json_t *daemon_maintenance_json(struct daemon *d, const char *svc, const char *env)
{
	json_t *a = json_array();
	load(d);
	if (svc && env) {
		json_array_append_new(a, entry_json(d, find(svc, env, false), svc, env));
		return a;
	}
	for (struct mentry *e = entries; e; e = e->next)
		if (e->on && (!svc || !strcmp(e->service, svc)) && (!env || !strcmp(e->environment, env)))
			json_array_append_new(a, entry_json(d, e, NULL, NULL));
	return a;
}

void daemon_maintenance_free(void)
{
	while (entries) {
		struct mentry *e = entries;
		entries = e->next;
		explicit_bzero(e, sizeof(*e));
		free(e);
	}
	loaded = false;
}
