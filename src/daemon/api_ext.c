/*
 * api_ext.c — API operations beyond the core deploy/rollback/status set
 * (gates, records, promotion), and the hooks the controller calls
 * (src/gates/hooks.h). See api.h for how to add an operation and
 * docs/internals/records.md for the rules.
 *
 * Every mutating operation here appends its own audit entry (gates_audit_op
 * skips them), so the log is complete even before the controller calls the
 * audit hook for its own operations.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/api.h"
#include "daemon/audit_anchor.h"
#include "gates/checks.h"
#include "gates/gates.h"
#include "gates/gspec.h"
#include "gates/hooks.h"
#include "gates/window.h"
#include "records/audit.h"
#include "records/dora.h"
#include "records/notify.h"
#include "store/store_records.h"
#include "util/log.h"
#include <jansson.h>
#include <sodium.h>

#define TOKEN_BYTES 24

extern const struct api_op api_ops_ext[];

static bool is_ext_op(const char *op)
{
	for (const struct api_op *t = api_ops_ext; t->name; t++)
		if (!strcmp(t->name, op))
			return true;
	/* the spec's operations audit their own decisions (spec_owner.c) */
	for (const struct api_op *t = api_ops_spec; t->name; t++)
		if (!strcmp(t->name, op))
			return true;
	return false;
}

static void sha256_hex(const char *s, char out[AUDIT_HASH_HEX])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
	sodium_bin2hex(out, AUDIT_HASH_HEX, h, sizeof(h));
}

static char *db_path(void)
{
	return xasprintf("%s/state.db", gd->home);
}

/* ---- identity ---- */

/* the caller's identity; *deny set (code 3) for an unknown token */
static int identify(json_t *req, const struct api_caller *caller, struct identity *id, json_t **deny)
{
	const char *token = json_string_value(json_object_get(req, "token"));
	struct user_row u;
	struct gerr err;
	int r;

	memset(id, 0, sizeof(*id));
	id->caller = caller;
	if (token && *token) {
		char h[AUDIT_HASH_HEX];
		sha256_hex(token, h);
		r = store_user_by_token(gd->store, h, &u, &err);
		if (r < 0) {
			*deny = api_error(1, "%s", err.msg);
			return -1;
		}
		if (!r || role_parse(u.role) < 0) {
			*deny = api_error(3, "permission denied: unknown or revoked API token (GANTRY_TOKEN)");
			return -1;
		}
		strlcpy_g(id->name, u.name, sizeof(id->name));
		id->role = role_parse(u.role);
		id->by_token = true;
		strlcpy_g(id->environments, u.environments, sizeof(id->environments));
		strlcpy_g(id->services, u.services, sizeof(id->services));
		return 0;
	}
	if (caller->remote) {
		*deny = api_error(3, "permission denied: the TCP API needs a token (Authorization: Bearer ...)");
		return -1;
	}
	if (caller->uid == 0 || caller->uid == geteuid()) {
		/* the daemon's owner could edit the state database anyway */
		strlcpy_g(id->name, api_actor(caller), sizeof(id->name));
		id->role = ROLE_ADMIN;
		return 0;
	}
	strlcpy_g(id->name, caller->user, sizeof(id->name));
	r = store_user_get(gd->store, caller->user, &u, &err);
	id->role = r == 1 && role_parse(u.role) >= 0 ? role_parse(u.role) : ROLE_VIEWER;
	if (r == 1) {
		strlcpy_g(id->environments, u.environments, sizeof(id->environments));
		strlcpy_g(id->services, u.services, sizeof(id->services));
	}
	return 0;
}

/* what an operation concerns, for a refusal: "web@production", "web in every environment", ... */
static const char *target_text(const char *svc, const char *env, char *buf, size_t len)
{
	const char *s = svc ? (*svc ? svc : "every service") : NULL;
	const char *e = env ? (*env ? env : "every environment") : NULL;
	if (s && e)
		snprintf(buf, len, "%s%s%s", s, *svc && *env ? "@" : " in ", e);
	else
		snprintf(buf, len, "%s", s ? s : e ? e : "anything");
	return buf;
}

/*
 * The refusal (code 3) when id's scope does not cover svc@env (see
 * identity_covers: NULL = not restricted, "" = every one), else NULL.
 * what completes "cannot ...", e.g. "run 'deploy' on".
 */
static json_t *need_scope(const struct identity *id, const char *what, const char *svc, const char *env)
{
	char rt[2 * USER_SCOPE_LEN + 64], tt[160];
	if (identity_covers(id, svc, env))
		return NULL;
	return api_error(3, "permission denied: %s (role %s) cannot %s %s", id->name,
			 identity_role_text(id, rt, sizeof(rt)), what, target_text(svc, env, tt, sizeof(tt)));
}

json_t *gates_authorize(const char *op, bool mutating, json_t *req, struct api_caller *caller)
{
	struct identity id;
	json_t *deny = NULL;
	int need = gates_op_role(op, mutating);
	if (identify(req, caller, &id, &deny) < 0)
		return deny;
	if (id.by_token || caller->uid != geteuid())
		strlcpy_g(caller->claimed, id.name, sizeof(caller->claimed));
	if (id.role < need)
		return api_error(3, "permission denied: %s (role %s) cannot run '%s' (needs role %s)", id.name,
				 role_name(id.role), op, role_name(need));
	if (mutating) {
		/* a scoped role changes only what its scope covers; reads are not scoped */
		char what[96];
		snprintf(what, sizeof(what), "run '%s' on", op);
		return need_scope(&id, what, json_string_value(json_object_get(req, "service")),
				  json_string_value(json_object_get(req, "environment")));
	}
	return NULL;
}

int gates_identify(json_t *req, const struct api_caller *caller, struct identity *id, json_t **deny)
{
	return identify(req, caller, id, deny);
}

/* ---- audit and notifications ---- */

/* details consumed; failures are logged, never fatal to the operation. caller:
 * who, from the kernel (uid/pid by SO_PEERCRED, or the TCP peer); NULL: the
 * controller's own decision (audit_anchor.h publishes the new head) */
static void audit(const struct api_caller *caller, const char *actor, const char *action, const char *target,
		  json_t *details)
{
	struct audit_entry e = { 0 };
	struct gerr err;
	e.time = gates_now();
	e.uid = caller && !caller->remote ? (int64_t)caller->uid : caller ? -1 : (int64_t)geteuid();
	e.pid = caller && !caller->remote ? (int64_t)caller->pid : caller ? 0 : (int64_t)getpid();
	strlcpy_g(e.peer, !caller ? "controller" : caller->remote ? caller->user : "unix", sizeof(e.peer));
	strlcpy_g(e.actor, actor ? actor : "unknown", sizeof(e.actor));
	strlcpy_g(e.action, action, sizeof(e.action));
	strlcpy_g(e.target, target ? target : "", sizeof(e.target));
	if (!details)
		details = json_object();
	e.details = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(details);
	if (store_audit_append(gd->store, &e, gd->audit_key, &err) < 0)
		log_error("audit", "action=%s target=%s: %s", action, target, err.msg);
	else
		audit_anchor_publish(gd->home, gd->audit_export, &e);
	audit_entry_release(&e);
}

void gates_audit(const char *actor, const char *action, const char *target, json_t *details)
{
	audit(NULL, actor, action, target, details);
}

void gates_audit_as(const struct api_caller *caller, const char *actor, const char *action, const char *target,
		    json_t *details)
{
	audit(caller, actor, action, target, details);
}

void gates_audit_refusal(const char *op, json_t *req, const struct api_caller *caller, json_t *reply)
{
	const char *svc = json_string_value(json_object_get(req, "service"));
	const char *env = json_string_value(json_object_get(req, "environment"));
	char target[160];
	/* a refused spec change is audited with its diff where it was decided */
	if (json_integer_value(json_object_get(reply, "code")) != 3 || json_object_get(reply, "pending_approval") ||
	    json_object_get(reply, "diff"))
		return;
	snprintf(target, sizeof(target), "%s@%s", svc ? svc : "", env ? env : "");
	audit(caller, api_actor(caller), "refused", svc ? target : "",
	      json_pack("{s:s, s:s, s:O*}", "op", op, "error", json_string_value(json_object_get(reply, "error")),
			"deployment", json_object_get(reply, "deployment")));
}

void gates_audit_op(const char *op, json_t *req, const struct api_caller *caller, json_t *reply)
{
	json_t *d;
	const char *svc = json_string_value(json_object_get(req, "service"));
	const char *env = json_string_value(json_object_get(req, "environment"));
	char target[160];
	const char *k;
	json_t *v;
	if (is_ext_op(op) || !json_is_true(json_object_get(reply, "ok")))
		return;
	d = json_object();
	json_object_foreach(req, k, v) {
		/* the resolved config is in the revision; a token never goes in the log */
		if (strcmp(k, "op") && strcmp(k, "token") && strcmp(k, "spec"))
			json_object_set(d, k, v);
	}
	json_object_foreach(reply, k, v) {
		if (strcmp(k, "ok") && (json_is_integer(v) || json_is_string(v)))
			json_object_set(d, k, v);
	}
	/* the name the client claimed is only a claim: the entry's actor is who it was */
	if (json_object_get(d, "deployed_by"))
		json_object_set_new(d, "deployed_by", json_string(api_actor(caller)));
	snprintf(target, sizeof(target), "%s@%s", svc ? svc : "", env ? env : "");
	audit(caller, api_actor(caller), op, svc ? target : "", d);
}

/* data consumed: the stored spec's webhooks that want event hear it */
static void emit(const char *event, json_t *data)
{
	json_t *cfg = gd->spec ? gspec_notify(gd->spec) : NULL;
	char *path;
	if (cfg) {
		path = db_path();
		notify_send(gd->store, path, cfg, event, data);
		free(path);
	}
	json_decref(cfg);
	json_decref(data);
}

void gates_notify(const char *event, const char *svc, const char *env, int revision, const char *message)
{
	emit(event, json_pack("{s:s, s:s, s:i, s:s}", "service", svc, "environment", env, "revision", revision,
			      "message", message));
}

static void event(const char *svc, const char *env, int revision, const char *kind, const char *msg)
{
	struct gerr err;
	struct svcenv *se = svc && env && *svc ? daemon_svcenv(svc, env, false) : NULL;
	if (se)
		daemon_event(se, revision, kind, "%s", msg);
	else
		store_event_add(gd->store, svc ? svc : "", env ? env : "", revision, kind, &err, "%s", msg);
}

/* ---- users ---- */

static json_t *op_whoami(json_t *req, const struct api_caller *caller)
{
	struct identity id;
	json_t *deny = NULL;
	if (identify(req, caller, &id, &deny) < 0)
		return deny;
	return json_pack("{s:b, s:s, s:s, s:b, s:s, s:o, s:o}", "ok", 1, "name", id.name, "role", role_name(id.role),
			 "token", id.by_token, "os_user", caller->user, "environments", scope_to_json(id.environments),
			 "services", scope_to_json(id.services));
}

static bool valid_user_name(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 63)
		return false;
	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@", *p))
			return false;
	return true;
}

static json_t *op_user_add(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL;
	const char *name = api_str(req, "name", true, &err);
	const char *role = api_str(req, "role", true, &err);
	bool no_token = json_is_true(json_object_get(req, "no_token"));
	struct user_row u = { 0 };
	struct gerr gerr;
	unsigned char raw[TOKEN_BYTES];
	char hex[2 * TOKEN_BYTES + 1], token[2 * TOKEN_BYTES + 8] = "";

	if (err)
		return err;
	if (!valid_user_name(name))
		return api_error(2, "/name: '%s' is not a valid user name (letters, digits, . _ - @)", name);
	if (role_parse(role) < 0)
		return api_error(2, "/role: unknown role '%s' (viewer, deployer, approver, admin)", role);
	if (scope_from_json(json_object_get(req, "environments"), "/environments", "environment", u.environments,
			    sizeof(u.environments), &gerr) < 0 ||
	    scope_from_json(json_object_get(req, "services"), "/services", "service", u.services, sizeof(u.services),
			    &gerr) < 0)
		return api_error(2, "%s", gerr.msg);
	strlcpy_g(u.name, name, sizeof(u.name));
	strlcpy_g(u.role, role, sizeof(u.role));
	if (!no_token) {
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
		snprintf(token, sizeof(token), "gnt_%s", hex);
		sha256_hex(token, u.token_hash);
	}
	u.created_at = gates_now();
	strlcpy_g(u.created_by, api_actor(caller), sizeof(u.created_by));
	if (store_user_put(gd->store, &u, &gerr) < 0)
		return api_error(1, "%s", gerr.msg);
	audit(caller, api_actor(caller), "user_add", name, json_pack("{s:s, s:b, s:o, s:o}", "role", role, "token", !no_token,
							      "environments", scope_to_json(u.environments), "services",
							      scope_to_json(u.services)));
	return json_pack("{s:b, s:s, s:s, s:s, s:o, s:o}", "ok", 1, "name", name, "role", role, "token", token,
			 "environments", scope_to_json(u.environments), "services", scope_to_json(u.services));
}

static json_t *op_user_remove(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL;
	const char *name = api_str(req, "name", true, &err);
	struct gerr gerr;
	int r;
	if (err)
		return err;
	r = store_user_delete(gd->store, name, &gerr);
	if (r < 0)
		return api_error(1, "%s", gerr.msg);
	if (!r)
		return api_error(2, "no user '%s'", name);
	audit(caller, api_actor(caller), "user_remove", name, NULL);
	return json_pack("{s:b}", "ok", 1);
}

static json_t *op_user_list(json_t *req, const struct api_caller *caller)
{
	struct user_row *u;
	size_t n;
	struct gerr gerr;
	json_t *list = json_array();
	(void)req;
	(void)caller;
	if (store_user_list(gd->store, &u, &n, &gerr) < 0) {
		json_decref(list);
		return api_error(1, "%s", gerr.msg);
	}
	for (size_t i = 0; i < n; i++) {
		char ts[40];
		format_rfc3339(u[i].created_at, ts, sizeof(ts));
		json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:s, s:o, s:o}", "name", u[i].name, "role",
						      u[i].role, "token", u[i].token_hash[0] != 0, "created_at", ts,
						      "created_by", u[i].created_by, "environments",
						      scope_to_json(u[i].environments), "services",
						      scope_to_json(u[i].services)));
	}
	free(u);
	return json_pack("{s:b, s:o}", "ok", 1, "users", list);
}

/* ---- incidents ---- */

static json_t *incident_json(const struct incident_row *r)
{
	char o[40], c[40];
	format_rfc3339(r->opened_at, o, sizeof(o));
	format_rfc3339(r->closed_at, c, sizeof(c));
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id", (json_int_t)r->id,
			 "severity", r->severity, "title", r->title, "service", r->service, "environment",
			 r->environment, "status", r->closed_at ? "closed" : "open", "opened_by", r->opened_by,
			 "opened_at", o, "closed_at", r->closed_at ? json_string(c) : json_null(), "closed_by",
			 r->closed_by, "resolution", r->resolution);
}

static json_t *op_incident_open(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL;
	const char *sev = api_str(req, "severity", true, &err);
	const char *title = api_str(req, "title", true, &err);
	const char *svc = api_str(req, "service", false, &err);
	const char *env = api_str(req, "environment", false, &err);
	struct incident_row r = { 0 };
	struct gerr gerr;
	char msg[512];
	if (err)
		return err;
	if (!severity_valid(sev))
		return api_error(2, "/severity: '%s' is not a severity (P0, P1, P2 or P3)", sev);
	if (!*title || strlen(title) >= sizeof(r.title))
		return api_error(2, "/title: must be 1..%zu characters", sizeof(r.title) - 1);
	strlcpy_g(r.severity, sev, sizeof(r.severity));
	strlcpy_g(r.title, title, sizeof(r.title));
	strlcpy_g(r.service, svc ? svc : "", sizeof(r.service));
	strlcpy_g(r.environment, env ? env : "", sizeof(r.environment));
	strlcpy_g(r.opened_by, api_actor(caller), sizeof(r.opened_by));
	r.opened_at = gates_now();
	if (store_incident_open(gd->store, &r, &gerr) < 0)
		return api_error(1, "%s", gerr.msg);
	snprintf(msg, sizeof(msg), "incident %lld opened (%s: %s) by %s", (long long)r.id, sev, title, r.opened_by);
	event(r.service, r.environment, 0, "incident_opened", msg);
	audit(caller, r.opened_by, "incident_open", "", incident_json(&r));
	emit("incident_opened", json_pack("{s:s, s:s, s:s, s:I, s:s}", "service", r.service, "environment",
					  r.environment, "message", msg, "incident", (json_int_t)r.id, "severity", sev));
	return json_pack("{s:b, s:o}", "ok", 1, "incident", incident_json(&r));
}

static json_t *op_incident_close(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL;
	int id = api_int(req, "id", 0, &err);
	const char *res = api_str(req, "resolution", false, &err);
	struct incident_row r;
	struct gerr gerr;
	char msg[512];
	int found;
	if (err)
		return err;
	found = store_incident_get(gd->store, id, &r, &gerr);
	if (found < 0)
		return api_error(1, "%s", gerr.msg);
	if (!found)
		return api_error(2, "no incident %d", id);
	if (r.closed_at)
		return api_error(2, "incident %d is already closed", id);
	if (store_incident_close(gd->store, id, api_actor(caller), gates_now(), res ? res : "", &gerr) <= 0)
		return api_error(1, "incident %d: %s", id, gerr.msg);
	store_incident_get(gd->store, id, &r, &gerr);
	snprintf(msg, sizeof(msg), "incident %d closed (%s: %s) by %s", id, r.severity, r.title, r.closed_by);
	event(r.service, r.environment, 0, "incident_closed", msg);
	audit(caller, r.closed_by, "incident_close", "", incident_json(&r));
	emit("incident_closed", json_pack("{s:s, s:s, s:s, s:i}", "service", r.service, "environment", r.environment,
					  "message", msg, "incident", id));
	return json_pack("{s:b, s:o}", "ok", 1, "incident", incident_json(&r));
}

static json_t *op_incident_list(json_t *req, const struct api_caller *caller)
{
	struct incident_row *r;
	size_t n;
	struct gerr gerr;
	json_t *list = json_array();
	(void)caller;
	if (store_incident_list(gd->store, !json_is_true(json_object_get(req, "all")), &r, &n, &gerr) < 0) {
		json_decref(list);
		return api_error(1, "%s", gerr.msg);
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, incident_json(&r[i]));
	free(r);
	return json_pack("{s:b, s:o}", "ok", 1, "incidents", list);
}

/* ---- deployment records ---- */

static json_t *deployment_json(const struct deployment_row *d)
{
	char c[40], s[40], e[40];
	struct approval_row *a = NULL;
	size_t na = 0;
	struct gerr gerr;
	json_t *approvals = json_array(), *gates = json_loads(d->gates ? d->gates : "{}", 0, NULL),
	       *checks = json_loads(d->checks ? d->checks : "[]", 0, NULL);
	format_rfc3339(d->created_at, c, sizeof(c));
	format_rfc3339(d->started_at, s, sizeof(s));
	format_rfc3339(d->ended_at, e, sizeof(e));
	if (store_approval_list(gd->store, d->id, &a, &na, &gerr) == 0) {
		for (size_t i = 0; i < na; i++) {
			char at[40];
			format_rfc3339(a[i].at, at, sizeof(at));
			json_array_append_new(approvals, json_pack("{s:s, s:s, s:s, s:s}", "by", a[i].approver, "decision",
								   a[i].decision, "at", at, "comment", a[i].comment));
		}
		free(a);
	}
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:I, s:b, s:s, s:o, s:o, s:o, s:i,"
			 " s:s, s:o, s:o, s:s, s:s, s:s, s:I, s:s}",
			 "id", (json_int_t)d->id, "service", d->service, "environment", d->environment, "kind", d->kind,
			 "requester", d->requester, "state", d->state, "from_revision", d->from_revision, "revision",
			 d->revision, "version", d->version, "digest", d->digest, "rollout", (json_int_t)d->rollout_id,
			 "emergency", d->emergency, "reason", d->reason, "gates", gates ? gates : json_object(),
			 "approvals", approvals, "checks", checks ? checks : json_array(), "approvals_needed",
			 d->approvals_needed, "created_at", c, "started_at", d->started_at ? json_string(s) : json_null(),
			 "ended_at", d->ended_at ? json_string(e) : json_null(), "result", d->result, "result_reason",
			 d->result_reason, "strategy", d->strategy, "spec_version", (json_int_t)d->spec_version,
			 "config_digest", d->config_digest);
}

static json_t *op_deployments(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL, *list;
	const char *svc = api_str(req, "service", false, &err);
	const char *env = api_str(req, "environment", false, &err);
	const char *state = api_str(req, "state", false, &err);
	int limit = api_int(req, "limit", 50, &err);
	struct deployment_row *d;
	size_t n;
	struct gerr gerr;
	(void)caller;
	if (err)
		return err;
	if (store_deployment_list(gd->store, svc, env, 0, &d, &n, &gerr) < 0)
		return api_error(1, "%s", gerr.msg);
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		if ((!state || !strcmp(state, d[i].state)) && (int)json_array_size(list) < limit)
			json_array_append_new(list, deployment_json(&d[i]));
		deployment_row_release(&d[i]);
	}
	free(d);
	return json_pack("{s:b, s:o}", "ok", 1, "deployments", list);
}

/* the identity of the caller if it has at least role `need`, else the refusal */
static json_t *need_role(json_t *req, const struct api_caller *caller, int need, const char *what,
			 struct identity *id)
{
	json_t *deny = NULL;
	if (identify(req, caller, id, &deny) < 0)
		return deny;
	if (id->role < need)
		return api_error(3, "permission denied: %s (role %s) cannot %s (needs role %s)", id->name,
				 role_name(id->role), what, role_name(need));
	return NULL;
}

/* ---- gates before a rollout ---- */

/* what from_env says about revision want_rev, or else the newest revision with digest */
static int find_promotion(const char *svc, const char *from_env, const char *digest, int want_rev,
			  struct promotion_fact *f, struct gerr *err)
{
	struct revision_row *list;
	size_t n;
	memset(f, 0, sizeof(*f));
	if (store_revision_list(gd->store, svc, from_env, &list, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!f->found && ((want_rev > 0 && list[i].number == want_rev) ||
				  (want_rev <= 0 && digest && !strcmp(list[i].digest, digest)))) {
			int64_t ms = 0;
			f->found = true;
			f->revision = list[i].number;
			strlcpy_g(f->status, list[i].status, sizeof(f->status));
			if (store_rollout_completed_at(gd->store, svc, from_env, list[i].number, &ms, err) == 1)
				f->serving_since = ms / 1000;
		}
		revision_row_release(&list[i]);
	}
	free(list);
	return 0;
}

static bool concerns(const struct incident_row *r, const char *svc, const char *env)
{
	return (!r->service[0] || !svc || !strcmp(r->service, svc)) &&
	       (!r->environment[0] || !env || !strcmp(r->environment, env));
}

/*
 * Evaluates the gates of req for svc@env (no records). *pol and *v are the
 * caller's to release; returns -1 with *reply set on bad input.
 */
static int evaluate(json_t *req, const struct identity *id, const char *svc, const char *env, const char *kind,
		    bool all, struct gate_policy *pol, struct gate_verdict *v, json_t **reply)
{
	struct incident_row *inc = NULL;
	size_t ninc = 0;
	struct promotion_fact pf;
	struct gate_input in = { 0 };
	struct gerr gerr;
	json_t *promo = json_object_get(req, "promotion");
	const char *digest = json_string_value(json_object_get(req, "digest"));

	json_t *stored = gd->spec ? gspec_gates(gd->spec, svc, env) : NULL;
	int pr;

	memset(v, 0, sizeof(*v));
	/* the controller's stored policy; never anything the request says */
	pr = gate_policy_from_json(stored, pol, &gerr);
	json_decref(stored);
	if (pr < 0) {
		*reply = api_error(1, "the stored policy of %s: %s", env, gerr.msg);
		return -1;
	}
	if (store_incident_list(gd->store, true, &inc, &ninc, &gerr) < 0) {
		*reply = api_error(1, "%s", gerr.msg);
		gate_policy_release(pol);
		return -1;
	}
	in.policy = gd->spec ? pol : NULL;
	in.service = svc;
	in.environment = env;
	in.kind = kind;
	in.who = id;
	in.emergency = json_is_true(json_object_get(req, "emergency"));
	in.reason = json_string_value(json_object_get(req, "reason"));
	in.now = gates_now();
	in.incidents = inc;
	in.nincidents = ninc;
	in.all = all;
	if (pol->promote_from[0]) {
		int want = promo ? (int)json_integer_value(json_object_get(promo, "revision")) : 0;
		const char *from = promo ? json_string_value(json_object_get(promo, "from")) : NULL;
		if (from && strcmp(from, pol->promote_from)) {
			*reply = api_error(3, "%s only accepts versions promoted from %s, not from %s", env,
					   pol->promote_from, from);
			free(inc);
			gate_policy_release(pol);
			return -1;
		}
		if (find_promotion(svc, pol->promote_from, digest, want, &pf, &gerr) < 0) {
			*reply = api_error(1, "%s", gerr.msg);
			free(inc);
			gate_policy_release(pol);
			return -1;
		}
		if (pf.found && want > 0 && digest) {
			/* the revision named must be the artifact deployed */
			struct revision_row r;
			if (store_revision_get(gd->store, svc, pol->promote_from, want, &r, &gerr) == 1) {
				if (strcmp(r.digest, digest))
					pf.found = false;
				revision_row_release(&r);
			}
		}
		in.promotion = &pf;
	}
	gates_evaluate(&in, v);
	free(inc);
	return 0;
}

static char *request_text(json_t *req, const char *requester)
{
	json_t *c = json_deep_copy(req);
	char *t;
	json_object_del(c, "token");
	json_object_del(c, "approved_deployment");
	json_object_set_new(c, "deployed_by", json_string(requester));
	t = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	return t;
}

json_t *gates_before_raise(json_t *req, const struct api_caller *caller, const char *svc, const char *env,
			   const char *op)
{
	struct identity id;
	struct gate_policy pol;
	struct gate_input in = { 0 };
	struct gate_verdict v;
	struct incident_row *inc = NULL;
	size_t ninc = 0;
	struct gerr gerr;
	json_t *reply = NULL, *g;
	int pr;
	if (identify(req, caller, &id, &reply) < 0)
		return reply;
	if (!gd->spec)
		return NULL;
	g = gspec_gates(gd->spec, svc, env);
	pr = gate_policy_from_json(g, &pol, &gerr);
	json_decref(g);
	if (pr < 0)
		return api_error(1, "the stored policy of %s: %s", env, gerr.msg);
	if (store_incident_list(gd->store, true, &inc, &ninc, &gerr) < 0) {
		gate_policy_release(&pol);
		return api_error(1, "%s", gerr.msg);
	}
	in.policy = &pol;
	in.service = svc;
	in.environment = env;
	in.kind = "deploy";
	in.who = &id;
	in.emergency = json_is_true(json_object_get(req, "emergency"));
	in.reason = json_string_value(json_object_get(req, "reason"));
	in.now = gates_now();
	in.incidents = inc;
	in.nincidents = ninc;
	if (in.emergency && (id.role < ROLE_APPROVER || !in.reason || !*in.reason)) {
		/* as for a deploy: an emergency is an approver's call, with a reason */
		reply = api_error(3, "--emergency needs the approver or admin role and a --reason (%s is %s)", id.name,
				  role_name(id.role));
		goto out;
	}
	gates_evaluate_step(&in, &v);
	if (v.result == GATE_REFUSE) {
		reply = api_error(3, "%s would raise a new revision's share of %s@%s: %s", op, svc, env, v.reason);
		if (v.next_allowed > 0) {
			char iso[40];
			format_rfc3339(v.next_allowed, iso, sizeof(iso));
			json_object_set_new(reply, "next_allowed", json_string(iso));
		}
		json_object_set(reply, "gates", v.gates);
	} else if (in.emergency) {
		audit(caller, id.name, "emergency_override", "", json_pack("{s:s, s:s, s:s, s:s, s:O}", "service", svc,
								    "environment", env, "operation", op, "reason", in.reason,
								    "gates", v.gates));
		event(svc, env, 0, "emergency_override", "EMERGENCY: gates overridden");
	}
	gate_verdict_release(&v);
out:
	gate_policy_release(&pol);
	free(inc);
	return reply;
}

/* the stored spec's checks of svc for phase "pre" or "post": a new reference, NULL when none */
static json_t *stored_checks(const char *svc, const char *env, const char *phase)
{
	json_t *g = gd->spec ? gspec_gates(gd->spec, svc, env) : NULL;
	json_t *list = json_object_get(json_object_get(g, "checks"), phase);
	if (json_is_array(list) && json_array_size(list))
		json_incref(list);
	else
		list = NULL;
	json_decref(g);
	return list;
}

/*
 * A deployment whose gates passed: its pre-deployment checks run on the
 * checks' worker threads (gates_tick takes it on), else it starts now.
 * d is updated in the store either way.
 */
static json_t *deployment_go(struct deployment_row *d)
{
	json_t *pre = stored_checks(d->service, d->environment, "pre");
	struct gerr gerr;
	char *dir;
	if (pre) {
		strlcpy_g(d->state, "pre_checks", sizeof(d->state));
		if (store_deployment_update(gd->store, d, &gerr) < 0) {
			json_decref(pre);
			return api_error(1, "%s", gerr.msg);
		}
		dir = xasprintf("%s/artifacts/%s", gd->home, d->digest);
		if (checks_start(d->id, pre, dir, 0) < 0) {
			free(dir);
			return api_error(1, "cannot start the pre-deployment checks");
		}
		free(dir);
		event(d->service, d->environment, 0, "pre_checks_started", "pre-deployment checks running");
		return json_pack("{s:b, s:I, s:s, s:s}", "ok", 1, "deployment", (json_int_t)d->id, "state", "pre_checks",
				 "version", d->version);
	}
	strlcpy_g(d->state, "started", sizeof(d->state));
	d->started_at = gates_now();
	if (store_deployment_update(gd->store, d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	return daemon_deploy_start(d);
}

json_t *gates_before_rollout(json_t *req, const struct api_caller *caller, const char *svc, const char *env,
			     const char *kind, const struct deploy_intent *intent, int64_t *ticket)
{
	struct identity id;
	struct gate_policy pol = { 0 };
	struct gate_verdict v = { 0 };
	struct deployment_row d = { 0 };
	struct gerr gerr;
	json_t *reply = NULL, *deny = NULL;
	const char *reason = json_string_value(json_object_get(req, "reason"));
	bool promote = json_object_get(req, "promotion") && !strcmp(kind, "deploy");
	char msg[1024];
	int64_t now = gates_now();

	*ticket = 0;
	if (identify(req, caller, &id, &deny) < 0)
		return deny;
	if (evaluate(req, &id, svc, env, promote ? "promote" : kind, false, &pol, &v, &reply) < 0)
		goto out;
	strlcpy_g(d.service, svc, sizeof(d.service));
	strlcpy_g(d.environment, env, sizeof(d.environment));
	strlcpy_g(d.kind, promote ? "promote" : kind, sizeof(d.kind));
	strlcpy_g(d.requester, id.name, sizeof(d.requester));
	d.request = request_text(req, id.name);
	d.gates = json_dumps(v.gates, JSON_COMPACT | JSON_SORT_KEYS);
	d.approvals_needed = pol.approvals;
	d.approval_ttl = pol.approval_ttl;
	if (intent) {
		strlcpy_g(d.version, intent->version, sizeof(d.version));
		strlcpy_g(d.digest, intent->digest, sizeof(d.digest));
		strlcpy_g(d.config_digest, intent->config_digest, sizeof(d.config_digest));
		d.config = xstrdup(intent->config);
		d.spec_version = intent->spec_version;
	}
	d.emergency = json_is_true(json_object_get(req, "emergency"));
	strlcpy_g(d.reason, reason ? reason : "", sizeof(d.reason));
	d.commit_time = json_integer_value(json_object_get(req, "commit_time"));
	if (!d.commit_time && json_is_object(json_object_get(req, "promotion"))) {
		/* a promotion deploys the source's commit: its lead time starts there */
		json_t *pr = json_object_get(req, "promotion");
		const char *from = json_string_value(json_object_get(pr, "from"));
		int rv = (int)json_integer_value(json_object_get(pr, "revision"));
		struct deployment_row *l;
		size_t ln;
		if (from && store_deployment_list(gd->store, svc, from, 0, &l, &ln, &gerr) == 0) {
			for (size_t i = 0; i < ln; i++) {
				if (!d.commit_time && l[i].revision == rv && l[i].commit_time > 0)
					d.commit_time = l[i].commit_time;
				deployment_row_release(&l[i]);
			}
			free(l);
		}
	}
	d.created_at = now;
	if (v.result == GATE_REFUSE) {
		strlcpy_g(d.state, "refused", sizeof(d.state));
		strlcpy_g(d.result, "refused", sizeof(d.result));
		strlcpy_g(d.result_reason, v.reason, sizeof(d.result_reason));
		if (store_deployment_add(gd->store, &d, &gerr) < 0)
			log_error("gates", "%s", gerr.msg);
		snprintf(msg, sizeof(msg), "%s by %s refused: %s", d.kind, id.name, v.reason);
		event(svc, env, 0, "gate_refused", msg);
		reply = api_error(v.code ? v.code : 3, "%s", v.reason);
		if (v.next_allowed > 0) {
			char iso[40];
			format_rfc3339(v.next_allowed, iso, sizeof(iso));
			json_object_set_new(reply, "next_allowed", json_string(iso));
		}
		json_object_set(reply, "gates", v.gates);
		json_object_set_new(reply, "deployment", json_integer(d.id));
		goto out;
	}
	if (v.result == GATE_PENDING_APPROVAL) {
		strlcpy_g(d.state, "pending_approval", sizeof(d.state));
		if (store_deployment_add(gd->store, &d, &gerr) < 0) {
			reply = api_error(1, "%s", gerr.msg);
			goto out;
		}
		snprintf(msg, sizeof(msg), "deployment %lld (%s %s) waits for approval: %s", (long long)d.id, d.kind,
			 d.version, v.reason);
		event(svc, env, 0, "approval_requested", msg);
		emit("approval_requested", json_pack("{s:s, s:s, s:s, s:I, s:s}", "service", svc, "environment", env,
						     "message", msg, "deployment", (json_int_t)d.id, "requester", id.name));
		reply = api_error(3, "waiting for approval: deployment %lld: %s; an approver runs 'gantry approve %lld'",
				  (long long)d.id, v.reason, (long long)d.id);
		json_object_set_new(reply, "pending_approval", json_integer(d.id));
		json_object_set_new(reply, "deployment", json_integer(d.id));
		goto out;
	}
	strlcpy_g(d.state, "started", sizeof(d.state));
	d.started_at = now;
	if (store_deployment_add(gd->store, &d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	*ticket = d.id;
	if (d.emergency) {
		snprintf(msg, sizeof(msg), "EMERGENCY %s of %s@%s by %s, gates overridden: %s", d.kind, svc, env, id.name,
			 d.reason);
		event(svc, env, 0, "emergency_deploy", msg);
		log_warn("gates", "service=%s environment=%s emergency by=%s reason=%s", svc, env, id.name, d.reason);
		audit(caller, id.name, "emergency_override", "", json_pack("{s:s, s:s, s:s, s:I, s:O}", "service", svc,
								    "environment", env, "reason", d.reason, "deployment",
								    (json_int_t)d.id, "gates", v.gates));
		emit("emergency_deploy", json_pack("{s:s, s:s, s:s, s:s, s:s}", "service", svc, "environment", env,
						   "message", msg, "requester", id.name, "reason", d.reason));
	}
	if (intent)
		reply = deployment_go(&d);
out:
	deployment_row_release(&d);
	gate_policy_release(&pol);
	gate_verdict_release(&v);
	return reply;
}

void gates_rollout_created(int64_t ticket, json_t *reply)
{
	struct deployment_row d;
	struct gerr gerr;
	struct svcenv *se;
	if (ticket <= 0 || store_deployment_get(gd->store, ticket, &d, &gerr) != 1)
		return;
	if (json_is_true(json_object_get(reply, "ok"))) {
		d.rollout_id = json_integer_value(json_object_get(reply, "rollout"));
		d.revision = (int)json_integer_value(json_object_get(reply, "revision"));
		se = daemon_svcenv(d.service, d.environment, false);
		if (se && se->rollout.id == d.rollout_id) {
			d.from_revision = se->rollout.from_revision;
			strlcpy_g(d.strategy, se->rollout.strategy, sizeof(d.strategy));
		}
		if (json_is_string(json_object_get(reply, "version")))
			strlcpy_g(d.version, json_string_value(json_object_get(reply, "version")), sizeof(d.version));
		emit("rollout_started", json_pack("{s:s, s:s, s:s, s:i, s:I}", "service", d.service, "environment",
						  d.environment, "message", d.version, "revision", d.revision, "rollout",
						  (json_int_t)d.rollout_id));
	} else {
		strlcpy_g(d.state, "failed", sizeof(d.state));
		strlcpy_g(d.result, "failed", sizeof(d.result));
		strlcpy_g(d.result_reason, json_string_value(json_object_get(reply, "error")) ?
			  json_string_value(json_object_get(reply, "error")) : "", sizeof(d.result_reason));
		d.ended_at = gates_now();
	}
	if (store_deployment_update(gd->store, &d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	deployment_row_release(&d);
}

/* a ready replica of revision rev of svc@env: its port, else 0 */
static int ready_port(const char *svc, const char *env, int rev)
{
	struct svcenv *se = daemon_svcenv(svc, env, false);
	for (struct replica *r = se ? se->replicas : NULL; r; r = r->next)
		if (r->row.revision == rev && replica_is_ready(r))
			return r->row.port;
	return 0;
}

void gates_rollout_finished(const struct rollout_row *ro)
{
	struct deployment_row d;
	struct gerr gerr;
	json_t *post = NULL;
	const char *res = !strcmp(ro->phase, "complete") ? "succeeded" : ro->phase;
	char msg[1024];

	if (store_deployment_by_rollout(gd->store, ro->id, &d, &gerr) != 1)
		return;
	if (d.ended_at || !strcmp(d.state, "post_checks")) {
		deployment_row_release(&d);
		return;
	}
	/* the stored spec's post-checks verify whatever now serves: a deploy,
	 * a promotion, and a rollback's target too */
	if (!strcmp(res, "succeeded"))
		post = stored_checks(d.service, d.environment, "post");
	if (post) {
		char *dir = xasprintf("%s/artifacts/%s", gd->home, d.digest[0] ? d.digest : "-");
		if (!d.digest[0]) {
			struct revision_row r;
			if (store_revision_get(gd->store, d.service, d.environment, ro->revision, &r, &gerr) == 1) {
				free(dir);
				dir = xasprintf("%s/artifacts/%s", gd->home, r.digest);
				revision_row_release(&r);
			}
		}
		strlcpy_g(d.state, "post_checks", sizeof(d.state));
		if (checks_start(d.id, post, dir, ready_port(d.service, d.environment, ro->revision)) < 0)
			log_error("gates", "deployment=%lld cannot start the post-checks", (long long)d.id);
		free(dir);
		event(d.service, d.environment, ro->revision, "post_checks_started", "post-deployment checks running");
	} else {
		strlcpy_g(d.state, res, sizeof(d.state));
		strlcpy_g(d.result, res, sizeof(d.result));
		strlcpy_g(d.result_reason, ro->message, sizeof(d.result_reason));
		d.ended_at = gates_now();
		if (strcmp(res, "superseded")) {
			snprintf(msg, sizeof(msg), "revision %d %s: %s", ro->revision, res, ro->message);
			emit(!strcmp(res, "succeeded") ? "rollout_succeeded" : !strcmp(res, "rolled_back") ?
			     "rollout_rolled_back" : "rollout_failed",
			     json_pack("{s:s, s:s, s:s, s:i, s:I}", "service", d.service, "environment", d.environment,
				       "message", msg, "revision", ro->revision, "rollout", (json_int_t)ro->id));
		}
	}
	if (!d.revision)
		d.revision = ro->revision;
	if (store_deployment_update(gd->store, &d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	deployment_row_release(&d);
}

/*
 * Rollbacks the controller made itself wait here until a replica of their
 * target is ready; then their post-checks run (gates_tick). A record left
 * in state "verifying" by a crash comes back with gates_resume_checks.
 */
#define VERIFY_MAX 64
#define VERIFY_GIVE_UP_S 600
static int64_t verifying[VERIFY_MAX];
static size_t nverifying;

static void verify_later(int64_t id)
{
	for (size_t i = 0; i < nverifying; i++)
		if (verifying[i] == id)
			return;
	if (nverifying < VERIFY_MAX)
		verifying[nverifying++] = id;
	else
		log_warn("gates", "deployment=%lld: too many rollbacks waiting to be verified", (long long)id);
}

/* a record of a rollback gantry made to revision `to`, verified when it is ready */
static void verify_rollback(const char *svc, const char *env, int from, int to, const char *why)
{
	struct deployment_row d = { 0 };
	struct gerr gerr;
	json_t *post = stored_checks(svc, env, "post");
	struct revision_row r;
	strlcpy_g(d.service, svc, sizeof(d.service));
	strlcpy_g(d.environment, env, sizeof(d.environment));
	strlcpy_g(d.kind, "rollback", sizeof(d.kind));
	strlcpy_g(d.requester, "gantry", sizeof(d.requester));
	d.request = xstrdup("{}");
	d.gates = xstrdup("{}");
	d.revision = to;
	d.from_revision = from;
	snprintf(d.reason, sizeof(d.reason), "%s", why);
	if (store_revision_get(gd->store, svc, env, to, &r, &gerr) == 1) {
		strlcpy_g(d.version, r.version, sizeof(d.version));
		strlcpy_g(d.digest, r.digest, sizeof(d.digest));
		revision_row_release(&r);
	}
	d.created_at = d.started_at = gates_now();
	if (post) {
		strlcpy_g(d.state, "verifying", sizeof(d.state));
	} else {
		strlcpy_g(d.state, "succeeded", sizeof(d.state));
		strlcpy_g(d.result, "succeeded", sizeof(d.result));
		d.ended_at = d.started_at;
	}
	if (store_deployment_add(gd->store, &d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	else if (post)
		verify_later(d.id);
	json_decref(post);
	deployment_row_release(&d);
}

/* from the tick: rollbacks whose target became ready start their post-checks */
static void verify_tick(void)
{
	size_t k = 0;
	for (size_t i = 0; i < nverifying; i++) {
		struct deployment_row d;
		struct gerr gerr;
		int port;
		bool keep = false;
		if (store_deployment_get(gd->store, verifying[i], &d, &gerr) != 1)
			continue;
		if (!strcmp(d.state, "verifying")) {
			port = ready_port(d.service, d.environment, d.revision);
			if (port > 0) {
				json_t *post = stored_checks(d.service, d.environment, "post");
				char *dir = xasprintf("%s/artifacts/%s", gd->home, d.digest);
				strlcpy_g(d.state, "post_checks", sizeof(d.state));
				store_deployment_update(gd->store, &d, &gerr);
				if (checks_start(d.id, post ? post : json_array(), dir, port) < 0)
					log_error("gates", "deployment=%lld cannot start the post-checks", (long long)d.id);
				free(dir);
				event(d.service, d.environment, d.revision, "post_checks_started",
				      "post-deployment checks of the automatic rollback running");
			} else if (gates_now() - d.started_at > VERIFY_GIVE_UP_S) {
				strlcpy_g(d.state, "failed", sizeof(d.state));
				strlcpy_g(d.result, "failed", sizeof(d.result));
				snprintf(d.result_reason, sizeof(d.result_reason),
					 "revision %d was not ready within %ds: its post-checks could not run", d.revision,
					 VERIFY_GIVE_UP_S);
				d.ended_at = gates_now();
				store_deployment_update(gd->store, &d, &gerr);
				event(d.service, d.environment, d.revision, "post_check_failed", d.result_reason);
			} else {
				keep = true;
			}
		}
		if (keep)
			verifying[k++] = verifying[i];
		deployment_row_release(&d);
	}
	nverifying = k;
}

void gates_auto_rollback(const char *svc, const char *env, int from, int to, const char *why)
{
	struct gate_policy pol;
	struct incident_row r = { 0 };
	struct gerr gerr;
	json_t *g = gd->spec ? gspec_gates(gd->spec, svc, env) : NULL;
	char msg[1024];
	int pr = gate_policy_from_json(g, &pol, &gerr);
	json_decref(g);
	if (pr < 0)
		gate_policy_from_json(NULL, &pol, &gerr); /* the defaults: P2 */
	audit(NULL, "gantry", "auto_rollback", "", json_pack("{s:s, s:s, s:i, s:s}", "service", svc, "environment", env,
							"revision", from, "reason", why));
	if (to > 0)
		verify_rollback(svc, env, from, to, why);
	if (!strcmp(pol.rollback_incident, "none")) {
		gate_policy_release(&pol);
		return;
	}
	strlcpy_g(r.severity, pol.rollback_incident, sizeof(r.severity));
	snprintf(r.title, sizeof(r.title), "automatic rollback of %s@%s revision %d: %.180s", svc, env, from, why);
	strlcpy_g(r.service, svc, sizeof(r.service));
	strlcpy_g(r.environment, env, sizeof(r.environment));
	strlcpy_g(r.opened_by, "gantry", sizeof(r.opened_by));
	r.opened_at = gates_now();
	gate_policy_release(&pol);
	if (store_incident_open(gd->store, &r, &gerr) < 0) {
		log_error("gates", "cannot open the incident of an automatic rollback: %s", gerr.msg);
		return;
	}
	snprintf(msg, sizeof(msg), "incident %lld opened (%s: %s) by gantry", (long long)r.id, r.severity, r.title);
	event(svc, env, from, "incident_opened", msg);
	audit(NULL, "gantry", "incident_open", "", incident_json(&r));
	emit("incident_opened", json_pack("{s:s, s:s, s:s, s:I, s:s}", "service", svc, "environment", env, "message",
					  msg, "incident", (json_int_t)r.id, "severity", r.severity));
}

/* the failing check's output (borrowed from results) */
static const char *failed_output(json_t *results)
{
	const char *out = "";
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r)
		if (!json_is_true(json_object_get(r, "ok")) && !json_object_get(r, "skipped"))
			out = json_string_value(json_object_get(r, "output"));
	return out ? out : "";
}

/* pre-deployment checks done: start the deployment, or record why not */
static void pre_checks_done(struct deployment_row *d, json_t *results, bool ok)
{
	struct gerr gerr;
	char msg[1024];
	json_t *rep;
	if (ok) {
		event(d->service, d->environment, 0, "pre_checks_passed", "pre-deployment checks passed");
		strlcpy_g(d->state, "started", sizeof(d->state));
		d->started_at = gates_now();
		if (store_deployment_update(gd->store, d, &gerr) < 0)
			log_error("gates", "%s", gerr.msg);
		rep = daemon_deploy_start(d);
		if (!json_is_true(json_object_get(rep, "ok")))
			log_error("gates", "deployment=%lld cannot start after its pre-checks: %s", (long long)d->id,
				  json_string_value(json_object_get(rep, "error")));
		json_decref(rep);
		return;
	}
	snprintf(msg, sizeof(msg), "pre-deployment check failed: %.900s", failed_output(results));
	strlcpy_g(d->state, "failed", sizeof(d->state));
	strlcpy_g(d->result, "failed", sizeof(d->result));
	strlcpy_g(d->result_reason, msg, sizeof(d->result_reason));
	d->ended_at = gates_now();
	if (store_deployment_update(gd->store, d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	event(d->service, d->environment, 0, "pre_check_failed", msg);
	emit("deployment_failed", json_pack("{s:s, s:s, s:s, s:I}", "service", d->service, "environment",
					    d->environment, "message", msg, "deployment", (json_int_t)d->id));
}

/* post-deployment checks done: a failure rolls a deploy back (a rollback's
 * own target failing is recorded and announced, never rolled back again) */
static void post_checks_done(struct deployment_row *d, json_t *results, bool ok)
{
	struct gerr gerr;
	char msg[1024];
	bool rollback = !ok && strcmp(d->kind, "rollback");
	d->ended_at = gates_now();
	if (ok) {
		strlcpy_g(d->state, "succeeded", sizeof(d->state));
		strlcpy_g(d->result, "succeeded", sizeof(d->result));
		event(d->service, d->environment, d->revision, "post_checks_passed", "post-deployment checks passed");
	} else {
		snprintf(msg, sizeof(msg), "post-deployment check failed: %.900s", failed_output(results));
		strlcpy_g(d->state, rollback ? "rolled_back" : "failed", sizeof(d->state));
		strlcpy_g(d->result, "failed", sizeof(d->result));
		strlcpy_g(d->result_reason, msg, sizeof(d->result_reason));
		event(d->service, d->environment, d->revision, "post_check_failed", msg);
		emit("rollout_failed", json_pack("{s:s, s:s, s:s, s:i}", "service", d->service, "environment",
						 d->environment, "message", msg, "revision", d->revision));
	}
	if (store_deployment_update(gd->store, d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	if (rollback) {
		json_t *rq = json_pack("{s:s, s:s, s:s, s:s}", "op", "rollback", "service", d->service,
				       "environment", d->environment, "reason", "post-deployment check failed");
		json_t *rep = api_dispatch_as(rq, "gantry");
		if (!json_is_true(json_object_get(rep, "ok")))
			log_error("gates", "deployment=%lld rollback after a failed post-check: %s", (long long)d->id,
				  json_string_value(json_object_get(rep, "error")));
		else
			gates_auto_rollback(d->service, d->environment, d->revision, 0, d->result_reason);
		json_decref(rep);
		json_decref(rq);
	}
}

void gates_resume_checks(void)
{
	struct deployment_row *d;
	struct gerr gerr;
	size_t n;
	if (store_deployment_list(gd->store, NULL, NULL, 0, &d, &n, &gerr) < 0) {
		log_error("gates", "cannot resume checks: %s", gerr.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		bool pre = !strcmp(d[i].state, "pre_checks"), post = !strcmp(d[i].state, "post_checks");
		if (!strcmp(d[i].state, "verifying"))
			verify_later(d[i].id);
		json_t *list = pre || post ? stored_checks(d[i].service, d[i].environment, pre ? "pre" : "post") : NULL;
		if (pre || post) {
			char *dir = xasprintf("%s/artifacts/%s", gd->home, d[i].digest);
			log_info("gates", "deployment=%lld %s-deployment checks run again after a restart", (long long)d[i].id,
				 pre ? "pre" : "post");
			if (!list)
				list = json_array(); /* no checks any more: an empty list passes */
			if (checks_start(d[i].id, list, dir, pre ? 0 : ready_port(d[i].service, d[i].environment,
										  d[i].revision)) < 0)
				log_error("gates", "deployment=%lld cannot start its checks", (long long)d[i].id);
			free(dir);
		}
		deployment_row_release(&d[i]);
	}
	free(d);
}

void gates_tick(void)
{
	int64_t key;
	json_t *results;
	bool ok;
	if (nverifying)
		verify_tick();
	while (checks_poll(&key, &results, &ok)) {
		struct deployment_row d;
		struct gerr gerr;
		json_t *all, *r;
		size_t i;
		bool pre;
		if (store_deployment_get(gd->store, key, &d, &gerr) != 1) {
			json_decref(results);
			continue;
		}
		pre = !strcmp(d.state, "pre_checks");
		all = json_loads(d.checks ? d.checks : "[]", 0, NULL);
		if (!json_is_array(all)) {
			json_decref(all);
			all = json_array();
		}
		json_array_foreach(results, i, r) {
			json_object_set_new(r, "phase", json_string(pre ? "pre" : "post"));
			json_array_append(all, r);
		}
		free(d.checks);
		d.checks = json_dumps(all, JSON_COMPACT);
		json_decref(all);
		if (pre)
			pre_checks_done(&d, results, ok);
		else if (!strcmp(d.state, "post_checks"))
			post_checks_done(&d, results, ok);
		deployment_row_release(&d);
		json_decref(results);
	}
}

static bool expired(const struct deployment_row *d, int64_t now)
{
	return now - d->created_at >= d->approval_ttl;
}

json_t *gates_pending_json(const struct deployment_row *d)
{
	char msg[512];
	if (expired(d, gates_now()))
		return NULL;
	snprintf(msg, sizeof(msg), "waiting for %d approval%s by someone other than %s: gantry approve %lld",
		 d->approvals_needed, d->approvals_needed > 1 ? "s" : "", d->requester, (long long)d->id);
	{
		char exp[40];
		format_rfc3339(d->created_at + d->approval_ttl, exp, sizeof(exp));
		return json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:I}", "deployment", (json_int_t)d->id, "phase",
				 "pending_approval", "message", msg, "version", d->version, "requester", d->requester,
				 "approvals_needed", d->approvals_needed, "expires_at", exp, "spec_version",
				 (json_int_t)d->spec_version);
	}
}

json_t *gates_pending_rollout(const char *svc, const char *env)
{
	struct deployment_row *d;
	size_t n;
	struct gerr gerr;
	json_t *o = NULL;
	if (store_deployment_pending(gd->store, svc, env, &d, &n, &gerr) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!o)
			o = gates_pending_json(&d[i]);
		deployment_row_release(&d[i]);
	}
	free(d);
	return o;
}

/* ---- approvals ---- */

/* what an approval of d binds to: service, environment, artifact, resolved config, spec version */
static void deployment_binding(const struct deployment_row *d, char *out, size_t len)
{
	char b[400];
	snprintf(b, sizeof(b), "%s@%s artifact=%s config=%s spec=%lld", d->service, d->environment, d->digest,
		 d->config_digest, (long long)d->spec_version);
	strlcpy_g(out, b, len);
}

/*
 * Resolves d's config again from the stored spec (with the request's set
 * and strategy): 0 unchanged, 1 changed (d updated, why says what), -1 it
 * cannot be resolved any more (why).
 */
static int rebind(struct deployment_row *d, char *why, size_t len)
{
	json_t *req = json_loads(d->request ? d->request : "{}", 0, NULL), *err = NULL;
	char *config = NULL, cd[72];
	int ret = 0;
	if (daemon_resolve(d->service, d->environment, req, &config, cd, &err) < 0) {
		snprintf(why, len, "%s", json_string_value(json_object_get(err, "error")));
		json_decref(err);
		json_decref(req);
		return -1;
	}
	if (strcmp(cd, d->config_digest) || d->spec_version != gd->spec_version) {
		snprintf(why, len, "what it rolls out changed since it was requested (spec version %lld -> %lld%s)",
			 (long long)d->spec_version, (long long)gd->spec_version,
			 strcmp(cd, d->config_digest) ? ", its config too" : ", same config");
		free(d->config);
		d->config = config;
		config = NULL;
		strlcpy_g(d->config_digest, cd, sizeof(d->config_digest));
		d->spec_version = gd->spec_version;
		ret = 1;
	}
	free(config);
	json_decref(req);
	return ret;
}

static json_t *decide(json_t *req, const struct api_caller *caller, bool approve)
{
	json_t *err = NULL, *reply = NULL, *deny;
	int id = api_int(req, "deployment", 0, &err);
	const char *comment = api_str(req, "comment", false, &err);
	struct identity who;
	struct deployment_row d = { 0 };
	struct approval_row a = { 0 }, *list = NULL;
	struct gerr gerr;
	size_t n = 0;
	int64_t now = gates_now();
	char by[64] = "", msg[1024], target[64];
	int count, found;

	if (err)
		return err;
	if ((deny = need_role(req, caller, ROLE_APPROVER, approve ? "approve deployments" : "reject deployments", &who)))
		return deny;
	found = store_deployment_get(gd->store, id, &d, &gerr);
	if (found < 0)
		return api_error(1, "%s", gerr.msg);
	if (!found)
		return api_error(2, "no deployment %d (see 'gantry status' or 'gantry approve' for pending ones)", id);
	snprintf(target, sizeof(target), "deployment %d", id);
	{
		char what[64];
		snprintf(what, sizeof(what), "%s deployment %d of", approve ? "approve" : "reject", id);
		if ((reply = need_scope(&who, what, d.service, d.environment)))
			goto out;
	}
	if (strcmp(d.state, "pending_approval")) {
		reply = api_error(2, "deployment %d is %s, not waiting for approval", id, d.state);
		goto out;
	}
	if (expired(&d, now)) {
		strlcpy_g(d.state, "expired", sizeof(d.state));
		strlcpy_g(d.result, "expired", sizeof(d.result));
		d.ended_at = now;
		store_deployment_update(gd->store, &d, &gerr);
		reply = api_error(3, "deployment %d expired: it waited longer than its approval_ttl; deploy again", id);
		goto out;
	}
	if (approve && !strcmp(who.name, d.requester)) {
		reply = api_error(3, "%s requested deployment %d and cannot approve it: another approver must", who.name, id);
		goto out;
	}
	if (approve) {
		/* the approval binds to what the deployment would roll out now */
		char why[512];
		int rb = rebind(&d, why, sizeof(why));
		if (rb < 0) {
			strlcpy_g(d.state, "failed", sizeof(d.state));
			strlcpy_g(d.result, "failed", sizeof(d.result));
			strlcpy_g(d.result_reason, why, sizeof(d.result_reason));
			d.ended_at = now;
			store_deployment_update(gd->store, &d, &gerr);
			reply = api_error(2, "deployment %d cannot start: %s", id, why);
			goto out;
		}
		if (rb > 0) {
			if (store_deployment_update(gd->store, &d, &gerr) < 0) {
				reply = api_error(1, "%s", gerr.msg);
				goto out;
			}
			snprintf(msg, sizeof(msg), "deployment %d: %s; approvals given before no longer count", id, why);
			event(d.service, d.environment, 0, "approvals_reset", msg);
		}
		deployment_binding(&d, a.binding, sizeof(a.binding));
	}
	a.deployment_id = id;
	strlcpy_g(a.approver, who.name, sizeof(a.approver));
	strlcpy_g(a.decision, approve ? "approve" : "reject", sizeof(a.decision));
	a.at = now;
	strlcpy_g(a.comment, comment ? comment : "", sizeof(a.comment));
	if (store_approval_put(gd->store, &a, &gerr) < 0) {
		reply = api_error(1, "%s", gerr.msg);
		goto out;
	}
	audit(caller, who.name, approve ? "approve" : "reject", target,
	      json_pack("{s:s, s:s, s:s, s:s}", "service", d.service, "environment", d.environment, "version", d.version,
			"comment", a.comment));
	if (!approve) {
		strlcpy_g(d.state, "rejected", sizeof(d.state));
		strlcpy_g(d.result, "rejected", sizeof(d.result));
		snprintf(d.result_reason, sizeof(d.result_reason), "rejected by %s%s%s", who.name, a.comment[0] ? ": " : "",
			 a.comment);
		d.ended_at = now;
		store_deployment_update(gd->store, &d, &gerr);
		snprintf(msg, sizeof(msg), "deployment %d %s", id, d.result_reason);
		event(d.service, d.environment, 0, "deployment_rejected", msg);
		emit("deployment_rejected", json_pack("{s:s, s:s, s:s, s:i}", "service", d.service, "environment",
						      d.environment, "message", msg, "deployment", id));
		reply = json_pack("{s:b, s:i, s:s}", "ok", 1, "deployment", id, "state", "rejected");
		goto out;
	}
	if (store_approval_list(gd->store, id, &list, &n, &gerr) < 0) {
		reply = api_error(1, "%s", gerr.msg);
		goto out;
	}
	{
		/* only approvals of exactly this (artifact, config, spec version) count;
		 * a rejection counts whatever it rejected */
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (strcmp(list[i].decision, "approve") || !strcmp(list[i].binding, a.binding))
				list[k++] = list[i];
		n = k;
	}
	count = approvals_count(list, n, d.requester, now, d.approval_ttl, by, sizeof(by));
	snprintf(msg, sizeof(msg), "deployment %d approved by %s (%d of %d)", id, who.name, MAX(count, 0),
		 d.approvals_needed);
	event(d.service, d.environment, 0, "approval_given", msg);
	if (count < d.approvals_needed) {
		reply = json_pack("{s:b, s:i, s:i, s:i, s:s, s:b}", "ok", 1, "deployment", id, "approvals", MAX(count, 0),
				  "needed", d.approvals_needed, "state", "pending_approval", "started", 0);
		goto out;
	}
	strlcpy_g(d.state, "approved", sizeof(d.state));
	if (store_deployment_update(gd->store, &d, &gerr) < 0) {
		reply = api_error(1, "%s", gerr.msg);
		goto out;
	}
	{
		json_t *rep = deployment_go(&d);
		if (!json_is_true(json_object_get(rep, "ok"))) {
			struct deployment_row again;
			if (store_deployment_get(gd->store, id, &again, &gerr) == 1 && !again.ended_at) {
				strlcpy_g(again.state, "failed", sizeof(again.state));
				strlcpy_g(again.result, "failed", sizeof(again.result));
				strlcpy_g(again.result_reason, json_string_value(json_object_get(rep, "error")) ?
					  json_string_value(json_object_get(rep, "error")) : "", sizeof(again.result_reason));
				again.ended_at = now;
				store_deployment_update(gd->store, &again, &gerr);
			}
			if (store_deployment_get(gd->store, id, &again, &gerr) == 1)
				deployment_row_release(&again);
			reply = rep;
			goto out;
		}
		reply = json_pack("{s:b, s:i, s:i, s:i, s:s, s:b, s:O, s:O, s:O}", "ok", 1, "deployment", id, "approvals",
				  count, "needed", d.approvals_needed, "state",
				  json_object_get(rep, "state") ? "pre_checks" : "started", "started", 1, "rollout",
				  json_object_get(rep, "rollout") ? json_object_get(rep, "rollout") : json_null(), "revision",
				  json_object_get(rep, "revision") ? json_object_get(rep, "revision") : json_null(), "version",
				  json_object_get(rep, "version") ? json_object_get(rep, "version") : json_null());
		json_decref(rep);
	}
out:
	free(list);
	deployment_row_release(&d);
	return reply;
}

static json_t *op_approve(json_t *req, const struct api_caller *caller)
{
	return decide(req, caller, true);
}

static json_t *op_reject(json_t *req, const struct api_caller *caller)
{
	return decide(req, caller, false);
}

/* ---- audit ---- */

static json_t *op_audit(json_t *req, const struct api_caller *caller)
{
	struct audit_entry *e;
	size_t n;
	struct gerr gerr;
	json_t *list = json_array();
	(void)req;
	(void)caller;
	if (store_audit_list(gd->store, &e, &n, &gerr) < 0) {
		json_decref(list);
		return api_error(1, "%s", gerr.msg);
	}
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(list, audit_entry_json(&e[i]));
		audit_entry_release(&e[i]);
	}
	free(e);
	return json_pack("{s:b, s:o}", "ok", 1, "audit", list);
}

static json_t *op_audit_verify(json_t *req, const struct api_caller *caller)
{
	struct gerr gerr;
	json_t *reply;
	(void)req;
	(void)caller;
	reply = audit_anchor_verify(gd->store, gd->home, gd->audit_export, gd->audit_key, &gerr);
	if (!reply)
		return api_error(1, "%s", gerr.msg);
	json_object_set_new(reply, "ok", json_true());
	return reply;
}

/* ---- promotion, dry runs, DORA ---- */

static json_t *op_promotion_source(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *from = api_str(req, "from", true, &err);
	int want = api_int(req, "revision", 0, &err);
	struct svcenv *se;
	struct revision_row r;
	struct promotion_fact pf;
	struct gerr gerr;
	char since[40];
	json_t *reply;
	(void)caller;
	if (err)
		return err;
	if (!want) {
		se = daemon_svcenv(svc, from, false);
		if (!se || !se->row.stable_revision)
			return api_error(3, "%s has never served healthily in %s: nothing to promote", svc, from);
		want = se->row.stable_revision;
	}
	if (find_promotion(svc, from, NULL, want, &pf, &gerr) < 0)
		return api_error(1, "%s", gerr.msg);
	if (!pf.found)
		return api_error(2, "%s@%s has no revision %d", svc, from, want);
	if (store_revision_get(gd->store, svc, from, want, &r, &gerr) != 1)
		return api_error(1, "revision %d: %s", want, gerr.msg);
	if (strcmp(pf.status, "serving") || !pf.serving_since) {
		reply = api_error(3, "revision %d of %s@%s is %s, not serving healthily: only what serves in %s can be promoted",
				  want, svc, from, pf.status, from);
		revision_row_release(&r);
		return reply;
	}
	format_rfc3339(pf.serving_since, since, sizeof(since));
	reply = json_pack("{s:b, s:i, s:s, s:s, s:s, s:s, s:I}", "ok", 1, "revision", want, "version", r.version, "digest",
			  r.digest, "status", pf.status, "serving_since", since, "served_seconds",
			  (json_int_t)(gates_now() - pf.serving_since));
	revision_row_release(&r);
	return reply;
}

static json_t *op_gates_check(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL, *reply = NULL, *deny = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	const char *kind = api_str(req, "kind", false, &err);
	struct identity id;
	struct gate_policy pol;
	struct gate_verdict v;
	if (err)
		return err;
	if (identify(req, caller, &id, &deny) < 0)
		return deny;
	if (evaluate(req, &id, svc, env, kind ? kind : "deploy", true, &pol, &v, &reply) < 0)
		return reply;
	reply = json_pack("{s:b, s:s, s:s, s:O, s:s, s:s}", "ok", 1, "result",
			  v.result == GATE_ALLOW ? "allowed" : v.result == GATE_REFUSE ? "refused" : "pending_approval",
			  "reason", v.reason, "gates", v.gates, "who", id.name, "role", role_name(id.role));
	json_object_set_new(reply, "policy", gd->spec ? gspec_gates(gd->spec, svc, env) : json_object());
	json_object_set_new(reply, "spec_version", json_integer(gd->spec_version));
	if (v.next_allowed > 0) {
		char iso[40];
		format_rfc3339(v.next_allowed, iso, sizeof(iso));
		json_object_set_new(reply, "next_allowed", json_string(iso));
	}
	gate_policy_release(&pol);
	gate_verdict_release(&v);
	return reply;
}

static const char *dora_result(const char *phase)
{
	if (!strcmp(phase, "complete"))
		return "succeeded";
	if (!strcmp(phase, "progressing"))
		return "running";
	return phase; /* failed, rolled_back, superseded */
}

static json_t *op_dora(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL, *list;
	const char *svc = api_str(req, "service", false, &err);
	const char *env = api_str(req, "environment", false, &err);
	json_t *sj = json_object_get(req, "since");
	int64_t since_s = json_is_integer(sj) ? json_integer_value(sj) : 30 * 86400;
	int64_t until_ms = gates_now_ms(), until = until_ms / 1000, since = until - since_s;
	struct rollout_row *ro;
	struct incident_row *inc;
	size_t n, ninc;
	struct gerr gerr;
	char a[40], b[40];
	(void)caller;
	if (err)
		return err;
	if (sj && (!json_is_integer(sj) || since_s < 1 || since_s > 3650LL * 86400))
		return api_error(2, "/since: must be a number of seconds (1 .. 10 years)");
	if (store_rollout_list(gd->store, svc, env, since * 1000, &ro, &n, &gerr) < 0)
		return api_error(1, "%s", gerr.msg);
	if (store_incident_list(gd->store, false, &inc, &ninc, &gerr) < 0) {
		free(ro);
		return api_error(1, "%s", gerr.msg);
	}
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		struct dora_rollout *dr;
		struct dora_incident *di;
		struct dora_figures f;
		size_t k = 0, m = 0;
		json_t *o;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(ro[j].service, ro[i].service) && !strcmp(ro[j].environment, ro[i].environment);
		if (seen)
			continue;
		dr = xcalloc(n, sizeof(*dr));
		di = xcalloc(ninc + 1, sizeof(*di));
		for (size_t j = i; j < n; j++) {
			struct revision_row rev;
			struct deployment_row d;
			if (strcmp(ro[j].service, ro[i].service) || strcmp(ro[j].environment, ro[i].environment))
				continue;
			dr[k].started_at = ro[j].started_at;
			dr[k].ended_at = strcmp(ro[j].phase, "progressing") ? ro[j].updated_at : 0;
			strlcpy_g(dr[k].result, dora_result(ro[j].phase), sizeof(dr[k].result));
			strlcpy_g(dr[k].kind, "deploy", sizeof(dr[k].kind));
			if (store_revision_get(gd->store, ro[j].service, ro[j].environment, ro[j].revision, &rev, &gerr) == 1) {
				strlcpy_g(dr[k].kind, rev.kind, sizeof(dr[k].kind));
				revision_row_release(&rev);
			}
			if (store_deployment_by_rollout(gd->store, ro[j].id, &d, &gerr) == 1) {
				if (!strcmp(d.kind, "promote"))
					strlcpy_g(dr[k].kind, "promote", sizeof(dr[k].kind));
				dr[k].emergency = d.emergency;
				dr[k].commit_time = d.commit_time * 1000;
				if (!strcmp(d.result, "failed") && !strcmp(dr[k].result, "succeeded"))
					strlcpy_g(dr[k].result, "failed", sizeof(dr[k].result)); /* post-check */
				deployment_row_release(&d);
			}
			k++;
		}
		for (size_t j = 0; j < ninc; j++) {
			if (!concerns(&inc[j], ro[i].service, ro[i].environment) || inc[j].opened_at < since)
				continue;
			di[m].opened_at = inc[j].opened_at * 1000;
			di[m].closed_at = inc[j].closed_at * 1000;
			m++;
		}
		dora_compute(dr, k, di, m, since * 1000, until_ms, 0, &f);
		o = dora_json(&f);
		json_object_set_new(o, "service", json_string(ro[i].service));
		json_object_set_new(o, "environment", json_string(ro[i].environment));
		json_array_append_new(list, o);
		free(dr);
		free(di);
	}
	free(ro);
	free(inc);
	format_rfc3339(since, a, sizeof(a));
	format_rfc3339(until, b, sizeof(b));
	return json_pack("{s:b, s:s, s:s, s:o}", "ok", 1, "since", a, "until", b, "dora", list);
}

/* the mutating operations here check their own role as well: the dispatch
 * hook (gates_authorize) may not be installed yet */
/* a scoped admin could grant itself more: managing users needs an unscoped admin */
static json_t *need_user_admin(json_t *req, const struct api_caller *caller, const char *what)
{
	struct identity id;
	char rt[2 * USER_SCOPE_LEN + 64];
	json_t *deny = need_role(req, caller, ROLE_ADMIN, what, &id);
	if (!deny && !identity_covers(&id, "", ""))
		deny = api_error(3, "permission denied: %s (role %s) cannot %s (needs an admin of every service and "
				 "environment)", id.name, identity_role_text(&id, rt, sizeof(rt)), what);
	return deny;
}

static json_t *op_user_add_checked(json_t *req, const struct api_caller *caller)
{
	json_t *deny = need_user_admin(req, caller, "add users");
	return deny ? deny : op_user_add(req, caller);
}

static json_t *op_user_remove_checked(json_t *req, const struct api_caller *caller)
{
	json_t *deny = need_user_admin(req, caller, "remove users");
	return deny ? deny : op_user_remove(req, caller);
}

static json_t *op_user_list_checked(json_t *req, const struct api_caller *caller)
{
	struct identity id;
	json_t *deny = need_role(req, caller, ROLE_ADMIN, "list users", &id);
	return deny ? deny : op_user_list(req, caller);
}

static json_t *op_incident_open_checked(json_t *req, const struct api_caller *caller)
{
	struct identity id;
	json_t *deny = need_role(req, caller, ROLE_DEPLOYER, "open incidents", &id);
	struct api_caller c = *caller;
	const char *svc = json_string_value(json_object_get(req, "service"));
	const char *env = json_string_value(json_object_get(req, "environment"));
	/* an incident without an environment (service) freezes every one: only an unscoped axis covers it */
	if (deny || (deny = need_scope(&id, "open an incident on", svc ? svc : "", env ? env : "")))
		return deny;
	strlcpy_g(c.claimed, id.name, sizeof(c.claimed));
	return op_incident_open(req, &c);
}

/* the environments of the stored spec that incident id freezes, comma-separated ("" none) */
static void frozen_by(int64_t id, char *out, size_t len)
{
	struct incident_row r;
	struct gerr gerr;
	*out = 0;
	if (!gd->spec || store_incident_get(gd->store, id, &r, &gerr) != 1 || r.closed_at)
		return;
	for (size_t i = 0; i < gd->spec->nenvs; i++) {
		const char *env = gd->spec->envs[i].name;
		json_t *g = gspec_gates(gd->spec, "", env);
		struct gate_policy pol;
		bool freezes = false;
		if (gate_policy_from_json(g, &pol, &gerr) == 0) {
			for (size_t k = 0; k < pol.nfreeze; k++)
				freezes |= !strcmp(pol.freeze[k], r.severity);
			gate_policy_release(&pol);
		}
		json_decref(g);
		if (freezes && concerns(&r, NULL, env))
			snprintf(out + strlen(out), len - strlen(out), "%s%s", *out ? "," : "", env);
	}
}

static json_t *op_incident_close_checked(json_t *req, const struct api_caller *caller)
{
	struct identity id;
	char frozen[512];
	json_t *deny;
	/* lifting a freeze is a gate decision: the approver role, as approvals */
	frozen_by(json_integer_value(json_object_get(req, "id")), frozen, sizeof(frozen));
	if (*frozen) {
		char what[600];
		snprintf(what, sizeof(what), "close an incident that freezes %s", frozen);
		deny = need_role(req, caller, ROLE_APPROVER, what, &id);
	} else {
		deny = need_role(req, caller, ROLE_DEPLOYER, "close incidents", &id);
	}
	struct api_caller c = *caller;
	struct incident_row r;
	struct gerr gerr;
	json_int_t iid = json_integer_value(json_object_get(req, "id"));
	if (deny)
		return deny;
	/* an unknown id is op_incident_close's error */
	if (iid > 0 && store_incident_get(gd->store, iid, &r, &gerr) == 1) {
		char what[64];
		snprintf(what, sizeof(what), "close incident %lld on", (long long)iid);
		if ((deny = need_scope(&id, what, r.service, r.environment)))
			return deny;
	}
	strlcpy_g(c.claimed, id.name, sizeof(c.claimed));
	return op_incident_close(req, &c);
}

/* reads need a valid identity too (an unknown token is refused) */
#define VIEWER_OP(name)                                                                      \
	static json_t *name##_viewer(json_t *req, const struct api_caller *caller)          \
	{                                                                                    \
		struct identity id;                                                          \
		json_t *deny = need_role(req, caller, ROLE_VIEWER, "read", &id);             \
		return deny ? deny : name(req, caller);                                      \
	}
VIEWER_OP(op_incident_list)
VIEWER_OP(op_deployments)
VIEWER_OP(op_audit)
VIEWER_OP(op_audit_verify)
VIEWER_OP(op_promotion_source)
VIEWER_OP(op_dora)

const struct api_op api_ops_ext[] = {
	{ "whoami", op_whoami, false },
	{ "user_add", op_user_add_checked, true },
	{ "user_remove", op_user_remove_checked, true },
	{ "user_list", op_user_list_checked, false },
	{ "incident_open", op_incident_open_checked, true },
	{ "incident_close", op_incident_close_checked, true },
	{ "incident_list", op_incident_list_viewer, false },
	{ "approve", op_approve, true },
	{ "reject", op_reject, true },
	{ "deployments", op_deployments_viewer, false },
	{ "audit", op_audit_viewer, false },
	{ "audit_verify", op_audit_verify_viewer, false },
	{ "promotion_source", op_promotion_source_viewer, false },
	{ "gates_check", op_gates_check, false },
	{ "dora", op_dora_viewer, false },
	{ NULL, NULL, false },
};
