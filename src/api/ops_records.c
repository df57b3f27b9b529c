/*
 * ops_records.c — the API operations on users, incidents, deployments and
 * their approvals, the audit log, promotion sources, gate dry runs and DORA
 * figures (docs/api.md, docs/internals/records.md). Roles and scopes are
 * checked by the dispatcher from the table; what depends on the data (the
 * deployment an approval names, the environments an incident freezes) is
 * checked here.
 */
#include "common.h"
#include "api/api.h"
#include "store/store_flags.h"
#include "daemon/daemon.h"
#include "daemon/audit_anchor.h"
#include "daemon/gates_flow.h"
#include "daemon/flags.h"
#include "daemon/releases.h"
#include "gates/gates.h"
#include "gates/gspec.h"
#include "util/clock.h"
#include "records/audit.h"
#include "records/dora.h"
#include "store/store_records.h"
#include "util/log.h"
#include <jansson.h>
#include <sodium.h>

#define TOKEN_BYTES 24

/* ---- users ---- */

json_t *op_whoami(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	const struct identity *id = &c->who;
	(void)ctl;
	(void)req;
	return json_pack("{s:b, s:s, s:s, s:b, s:s, s:o, s:o}", "ok", 1, "name", id->name, "role", role_name(id->role),
			 "token", id->by_token, "os_user", c->caller->user, "environments", scope_to_json(id->environments),
			 "services", scope_to_json(id->services));
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

json_t *op_user_add(struct daemon *ctl, json_t *req, const struct api_ctx *c)
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
		return reply_error(2, "/name: '%s' is not a valid user name (letters, digits, . _ - @)", name);
	if (role_parse(role) < 0)
		return reply_error(2, "/role: unknown role '%s' (viewer, deployer, approver, admin)", role);
	if (scope_from_json(json_object_get(req, "environments"), "/environments", "environment", u.environments,
			    sizeof(u.environments), &gerr) < 0 ||
	    scope_from_json(json_object_get(req, "services"), "/services", "service", u.services, sizeof(u.services),
			    &gerr) < 0)
		return reply_error(2, "%s", gerr.msg);
	strlcpy_g(u.name, name, sizeof(u.name));
	strlcpy_g(u.role, role, sizeof(u.role));
	if (!no_token) {
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
		snprintf(token, sizeof(token), "gnt_%s", hex);
		gates_token_hash(token, u.token_hash);
	}
	u.created_at = clock_now_s();
	strlcpy_g(u.created_by, caller_actor(c->caller), sizeof(u.created_by));
	if (store_user_put(ctl->store, &u, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	gates_audit_as(c->caller, caller_actor(c->caller), "user_add", name, json_pack("{s:s, s:b, s:o, s:o}", "role", role, "token", !no_token,
							      "environments", scope_to_json(u.environments), "services",
							      scope_to_json(u.services)));
	return json_pack("{s:b, s:s, s:s, s:s, s:o, s:o}", "ok", 1, "name", name, "role", role, "token", token,
			 "environments", scope_to_json(u.environments), "services", scope_to_json(u.services));
}

json_t *op_user_remove(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *name = api_str(req, "name", true, &err);
	struct gerr gerr;
	int r;
	if (err)
		return err;
	r = store_user_delete(ctl->store, name, &gerr);
	if (r < 0)
		return reply_error(1, "%s", gerr.msg);
	if (!r)
		return reply_error(2, "no user '%s'", name);
	gates_audit_as(c->caller, caller_actor(c->caller), "user_remove", name, NULL);
	return json_pack("{s:b}", "ok", 1);
}

json_t *op_user_list(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	struct user_row *u;
	size_t n;
	struct gerr gerr;
	json_t *list;
	(void)req;
	(void)c;
	if (store_user_list(ctl->store, &u, &n, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	list = json_array();
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

/* the environments of the stored spec that incident id freezes, comma-separated ("" none) */
static void frozen_by(struct daemon *ctl, const struct incident_row *r, char *out, size_t len)
{
	struct gerr gerr;
	*out = 0;
	if (!ctl->spec)
		return;
	for (size_t i = 0; i < ctl->spec->nenvs; i++) {
		const char *env = ctl->spec->envs[i].name;
		json_t *g = gspec_gates(ctl->spec, "", env);
		struct gate_policy pol;
		bool freezes = false;
		if (gate_policy_from_json(g, &pol, &gerr) == 0) {
			for (size_t k = 0; k < pol.nfreeze; k++)
				freezes |= !strcmp(pol.freeze[k], r->severity);
			gate_policy_release(&pol);
		}
		json_decref(g);
		if (freezes && gates_concerns(r, NULL, env))
			snprintf(out + strlen(out), len - strlen(out), "%s%s", *out ? "," : "", env);
	}
}

json_t *op_incident_open(struct daemon *ctl, json_t *req, const struct api_ctx *c)
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
		return reply_error(2, "/severity: '%s' is not a severity (P0, P1, P2 or P3)", sev);
	if (!*title || strlen(title) >= sizeof(r.title))
		return reply_error(2, "/title: must be 1..%zu characters", sizeof(r.title) - 1);
	/* an incident without an environment (service) freezes every one: only an unscoped axis covers it */
	if ((err = gates_need_scope(&c->who, "open an incident on", svc ? svc : "", env ? env : "")))
		return err;
	strlcpy_g(r.severity, sev, sizeof(r.severity));
	strlcpy_g(r.title, title, sizeof(r.title));
	strlcpy_g(r.service, svc ? svc : "", sizeof(r.service));
	strlcpy_g(r.environment, env ? env : "", sizeof(r.environment));
	strlcpy_g(r.opened_by, caller_actor(c->caller), sizeof(r.opened_by));
	r.opened_at = clock_now_s();
	if (store_incident_open(ctl->store, &r, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	snprintf(msg, sizeof(msg), "incident %lld opened (%s: %s) by %s", (long long)r.id, sev, title, r.opened_by);
	gates_event(r.service, r.environment, 0, "incident_opened", msg);
	gates_audit_as(c->caller, r.opened_by, "incident_open", "", gates_incident_json(&r));
	gates_emit("incident_opened", json_pack("{s:s, s:s, s:s, s:I, s:s}", "service", r.service, "environment",
					  r.environment, "message", msg, "incident", (json_int_t)r.id, "severity", sev));
	return json_pack("{s:b, s:o}", "ok", 1, "incident", gates_incident_json(&r));
}

json_t *op_incident_close(struct daemon *ctl, json_t *req, const struct api_ctx *c)
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
	found = store_incident_get(ctl->store, id, &r, &gerr);
	if (found < 0)
		return reply_error(1, "%s", gerr.msg);
	if (!found)
		return reply_error(2, "no incident %d", id);
	if (r.closed_at)
		return reply_error(2, "incident %d is already closed", id);
	{
		/* lifting a freeze is a gate decision: the approver role, as approvals */
		char frozen[512], what[600];
		frozen_by(ctl, &r, frozen, sizeof(frozen));
		if (*frozen && c->who.role < ROLE_APPROVER)
			return reply_error(3, "permission denied: %s (role %s) cannot close an incident that freezes %s "
					 "(needs role approver)", c->who.name, role_name(c->who.role), frozen);
		snprintf(what, sizeof(what), "close incident %d on", id);
		if ((err = gates_need_scope(&c->who, what, r.service, r.environment)))
			return err;
	}
	if (store_incident_close(ctl->store, id, caller_actor(c->caller), clock_now_s(), res ? res : "", &gerr) <= 0)
		return reply_error(1, "incident %d: %s", id, gerr.msg);
	store_incident_get(ctl->store, id, &r, &gerr);
	snprintf(msg, sizeof(msg), "incident %d closed (%s: %s) by %s", id, r.severity, r.title, r.closed_by);
	gates_event(r.service, r.environment, 0, "incident_closed", msg);
	gates_audit_as(c->caller, r.closed_by, "incident_close", "", gates_incident_json(&r));
	gates_emit("incident_closed", json_pack("{s:s, s:s, s:s, s:i}", "service", r.service, "environment", r.environment,
					  "message", msg, "incident", id));
	return json_pack("{s:b, s:o}", "ok", 1, "incident", gates_incident_json(&r));
}

json_t *op_incident_list(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	struct incident_row *r;
	size_t n;
	struct gerr gerr;
	json_t *list;
	(void)c;
	if (store_incident_list(ctl->store, !json_is_true(json_object_get(req, "all")), &r, &n, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, gates_incident_json(&r[i]));
	free(r);
	return json_pack("{s:b, s:o}", "ok", 1, "incidents", list);
}

/* ---- deployment records ---- */

static json_t *deployment_json(struct daemon *ctl, const struct deployment_row *d)
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
	if (store_approval_list(ctl->store, d->id, &a, &na, &gerr) == 0) {
		for (size_t i = 0; i < na; i++) {
			char at[40];
			format_rfc3339(a[i].at, at, sizeof(at));
			json_array_append_new(approvals, json_pack("{s:s, s:s, s:s, s:s}", "by", a[i].approver, "decision",
								   a[i].decision, "at", at, "comment", a[i].comment));
		}
		free(a);
	}
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:I, s:b, s:s, s:o, s:o, s:o, s:i,"
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
	/* the flags turned off instead of rolling this deployment back (daemon/flags.h) */
	json_object_set_new(o, "flag_offs", daemon_flags_record_json(ctl, d->id));
	if (!strcmp(d->state, "pending_approval")) {
		char x[40];
		format_rfc3339(d->created_at + d->approval_ttl, x, sizeof(x));
		json_object_set_new(o, "expires_at", json_string(x));
	}
	return o;
}

json_t *op_deployments(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *list;
	const char *svc = api_str(req, "service", false, &err);
	const char *env = api_str(req, "environment", false, &err);
	const char *state = api_str(req, "state", false, &err);
	int limit = api_int(req, "limit", 50, &err);
	struct deployment_row *d;
	size_t n;
	struct gerr gerr;
	if (err)
		return err;
	if (store_deployment_list(ctl->store, svc, env, 0, &d, &n, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		if ((!state || !strcmp(state, d[i].state)) && (int)json_array_size(list) < limit) {
			json_t *o = deployment_json(ctl, &d[i]), *chk;
			size_t k;
			/* a check's output may print what the service knows (its env, a
			 * token in a URL): people who may change the service see it, a
			 * viewer sees whether it passed */
			if (c->who.role < ROLE_DEPLOYER)
				json_array_foreach(json_object_get(o, "checks"), k, chk)
					if (json_object_get(chk, "output"))
						json_object_set_new(chk, "output", json_string("(hidden: needs role deployer)"));
			json_array_append_new(list, o);
		}
		deployment_row_release(&d[i]);
	}
	free(d);
	return json_pack("{s:b, s:o}", "ok", 1, "deployments", list);
}

static json_t *decide(struct daemon *ctl, json_t *req, const struct api_ctx *c, bool approve)
{
	json_t *err = NULL, *reply = NULL;
	const struct identity who = c->who;
	int id = api_int(req, "deployment", 0, &err);
	const char *comment = api_str(req, "comment", false, &err);
	struct deployment_row d = { 0 };
	struct approval_row a = { 0 }, *list = NULL;
	struct gerr gerr;
	size_t n = 0;
	int64_t now = clock_now_s();
	char by[64] = "", msg[1024], target[64];
	int count, found;

	if (err)
		return err;
	found = store_deployment_get(ctl->store, id, &d, &gerr);
	if (found < 0)
		return reply_error(1, "%s", gerr.msg);
	if (!found)
		return reply_error(2, "no deployment %d (see 'gantry status' or 'gantry approve' for pending ones)", id);
	snprintf(target, sizeof(target), "deployment %d", id);
	{
		char what[64];
		snprintf(what, sizeof(what), "%s deployment %d of", approve ? "approve" : "reject", id);
		if ((reply = gates_need_scope(&who, what, d.service, d.environment)))
			goto out;
	}
	if (!strcmp(d.state, "expired")) {
		reply = reply_error(3, "deployment %d expired: it waited longer than its approval_ttl; deploy again", id);
		goto out;
	}
	if (strcmp(d.state, "pending_approval")) {
		reply = reply_error(2, "deployment %d is %s, not waiting for approval", id, d.state);
		goto out;
	}
	if (gates_expired(&d, now)) {
		strlcpy_g(d.state, "expired", sizeof(d.state));
		strlcpy_g(d.result, "expired", sizeof(d.result));
		d.ended_at = now;
		store_deployment_update(ctl->store, &d, &gerr);
		reply = reply_error(3, "deployment %d expired: it waited longer than its approval_ttl; deploy again", id);
		goto out;
	}
	if (approve && !strcmp(who.name, d.requester)) {
		reply = reply_error(3, "%s requested deployment %d and cannot approve it: another approver must", who.name, id);
		goto out;
	}
	if (approve) {
		/* the approval binds to what the deployment would roll out now */
		char why[512];
		int rb = gates_rebind(&d, why, sizeof(why));
		if (rb < 0) {
			strlcpy_g(d.state, "failed", sizeof(d.state));
			strlcpy_g(d.result, "failed", sizeof(d.result));
			strlcpy_g(d.result_reason, why, sizeof(d.result_reason));
			d.ended_at = now;
			store_deployment_update(ctl->store, &d, &gerr);
			reply = reply_error(2, "deployment %d cannot start: %s", id, why);
			goto out;
		}
		if (rb > 0) {
			if (store_deployment_update(ctl->store, &d, &gerr) < 0) {
				reply = reply_error(1, "%s", gerr.msg);
				goto out;
			}
			snprintf(msg, sizeof(msg), "deployment %d: %s; approvals given before no longer count", id, why);
			gates_event(d.service, d.environment, 0, "approvals_reset", msg);
		}
		gates_deployment_binding(&d, a.binding, sizeof(a.binding));
	}
	a.deployment_id = id;
	strlcpy_g(a.approver, who.name, sizeof(a.approver));
	strlcpy_g(a.decision, approve ? "approve" : "reject", sizeof(a.decision));
	a.at = now;
	strlcpy_g(a.comment, comment ? comment : "", sizeof(a.comment));
	if (store_approval_put(ctl->store, &a, &gerr) < 0) {
		reply = reply_error(1, "%s", gerr.msg);
		goto out;
	}
	gates_audit_as(c->caller, who.name, approve ? "approve" : "reject", target,
	      json_pack("{s:s, s:s, s:s, s:s}", "service", d.service, "environment", d.environment, "version", d.version,
			"comment", a.comment));
	if (!approve) {
		strlcpy_g(d.state, "rejected", sizeof(d.state));
		strlcpy_g(d.result, "rejected", sizeof(d.result));
		snprintf(d.result_reason, sizeof(d.result_reason), "rejected by %s%s%s", who.name, a.comment[0] ? ": " : "",
			 a.comment);
		d.ended_at = now;
		store_deployment_update(ctl->store, &d, &gerr);
		snprintf(msg, sizeof(msg), "deployment %d %s", id, d.result_reason);
		gates_event(d.service, d.environment, 0, "deployment_rejected", msg);
		gates_emit("deployment_rejected", json_pack("{s:s, s:s, s:s, s:i}", "service", d.service, "environment",
						      d.environment, "message", msg, "deployment", id));
		reply = json_pack("{s:b, s:i, s:s}", "ok", 1, "deployment", id, "state", "rejected");
		goto out;
	}
	if (store_approval_list(ctl->store, id, &list, &n, &gerr) < 0) {
		reply = reply_error(1, "%s", gerr.msg);
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
	gates_event(d.service, d.environment, 0, "approval_given", msg);
	if (count < d.approvals_needed) {
		reply = json_pack("{s:b, s:i, s:i, s:i, s:s, s:b}", "ok", 1, "deployment", id, "approvals", MAX(count, 0),
				  "needed", d.approvals_needed, "state", "pending_approval", "started", 0);
		goto out;
	}
	strlcpy_g(d.state, "approved", sizeof(d.state));
	{
		/* the record says how the approvals gate was passed */
		json_t *g = json_loads(d.gates ? d.gates : "{}", 0, NULL);
		if (json_is_object(g)) {
			json_object_set_new(g, "approvals", json_string("passed"));
			free(d.gates);
			d.gates = json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS);
		}
		json_decref(g);
	}
	if (store_deployment_update(ctl->store, &d, &gerr) < 0) {
		reply = reply_error(1, "%s", gerr.msg);
		goto out;
	}
	{
		json_t *rep = gates_deployment_go(&d);
		if (!json_is_true(json_object_get(rep, "ok"))) {
			struct deployment_row again;
			if (store_deployment_get(ctl->store, id, &again, &gerr) == 1 && !again.ended_at) {
				strlcpy_g(again.state, "failed", sizeof(again.state));
				strlcpy_g(again.result, "failed", sizeof(again.result));
				strlcpy_g(again.result_reason, json_string_value(json_object_get(rep, "error")) ?
					  json_string_value(json_object_get(rep, "error")) : "", sizeof(again.result_reason));
				again.ended_at = now;
				store_deployment_update(ctl->store, &again, &gerr);
			}
			if (store_deployment_get(ctl->store, id, &again, &gerr) == 1)
				deployment_row_release(&again);
			reply = rep;
			goto out;
		}
		reply = json_pack("{s:b, s:i, s:i, s:i, s:s, s:b, s:O, s:O, s:O}", "ok", 1, "deployment", id, "approvals",
				  count, "needed", d.approvals_needed, "state",
				  json_string_value(json_object_get(rep, "state")) ?: "started", "started", 1, "rollout",
				  json_object_get(rep, "rollout") ? json_object_get(rep, "rollout") : json_null(), "revision",
				  json_object_get(rep, "revision") ? json_object_get(rep, "revision") : json_null(), "version",
				  json_object_get(rep, "version") ? json_object_get(rep, "version") : json_null());
		if (json_object_get(rep, "release")) /* the approval of a whole release (releases.c) */
			json_object_set(reply, "release", json_object_get(rep, "release"));
		json_decref(rep);
	}
out:
	free(list);
	deployment_row_release(&d);
	return reply;
}

json_t *op_approve(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	return decide(ctl, req, c, true);
}

json_t *op_reject(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	return decide(ctl, req, c, false);
}

/* ---- audit ---- */

json_t *op_audit(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	struct audit_entry *e;
	size_t n;
	struct gerr gerr;
	json_t *list;
	(void)req;
	(void)c;
	if (store_audit_list(ctl->store, &e, &n, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(list, audit_entry_json(&e[i]));
		audit_entry_release(&e[i]);
	}
	free(e);
	return json_pack("{s:b, s:o}", "ok", 1, "audit", list);
}

json_t *op_audit_verify(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	struct gerr gerr;
	json_t *reply;
	(void)req;
	(void)c;
	reply = audit_anchor_verify(ctl->store, ctl->home, ctl->audit_export, ctl->audit_key, &gerr);
	if (!reply)
		return reply_error(1, "%s", gerr.msg);
	json_object_set_new(reply, "ok", json_true());
	return reply;
}

/* ---- promotion, dry runs, DORA ---- */

json_t *op_promotion_source(struct daemon *ctl, json_t *req, const struct api_ctx *c)
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
	(void)c;
	if (err)
		return err;
	if (!want) {
		se = daemon_svcenv(svc, from, false);
		if (!se || !se->row.stable_revision)
			return reply_error(3, "%s has never served healthily in %s: nothing to promote", svc, from);
		want = se->row.stable_revision;
	}
	if (gates_find_promotion(svc, from, NULL, want, &pf, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	if (!pf.found)
		return reply_error(2, "%s@%s has no revision %d", svc, from, want);
	if (store_revision_get(ctl->store, svc, from, want, &r, &gerr) != 1)
		return reply_error(1, "revision %d: %s", want, gerr.msg);
	if (strcmp(pf.status, "serving") || !pf.serving_since) {
		reply = reply_error(3, "revision %d of %s@%s is %s, not serving healthily: only what serves in %s can be promoted",
				  want, svc, from, pf.status, from);
		revision_row_release(&r);
		return reply;
	}
	format_rfc3339(pf.serving_since, since, sizeof(since));
	reply = json_pack("{s:b, s:i, s:s, s:s, s:s, s:s, s:I}", "ok", 1, "revision", want, "version", r.version, "digest",
			  r.digest, "status", pf.status, "serving_since", since, "served_seconds",
			  (json_int_t)(clock_now_s() - pf.serving_since));
	revision_row_release(&r);
	return reply;
}

json_t *op_gates_check(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *reply = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	const char *kind = api_str(req, "kind", false, &err);
	const struct identity id = c->who;
	struct gate_policy pol;
	struct gate_verdict v;
	if (err)
		return err;
	if (gates_evaluate_request(req, &id, svc, env, kind ? kind : "deploy", true, &pol, &v, &reply) < 0)
		return reply;
	reply = json_pack("{s:b, s:s, s:s, s:O, s:s, s:s}", "ok", 1, "result",
			  v.result == GATE_ALLOW ? "allowed" : v.result == GATE_REFUSE ? "refused" : "pending_approval",
			  "reason", v.reason, "gates", v.gates, "who", id.name, "role", role_name(id.role));
	json_object_set_new(reply, "policy", ctl->spec ? gspec_gates(ctl->spec, svc, env) : json_object());
	json_object_set_new(reply, "spec_version", json_integer(ctl->spec_version));
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

static int dora_by_start(const void *a, const void *b)
{
	const struct dora_rollout *x = a, *y = b;
	return x->started_at < y->started_at ? -1 : x->started_at > y->started_at;
}

json_t *op_dora(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *list;
	const char *svc = api_str(req, "service", false, &err);
	const char *env = api_str(req, "environment", false, &err);
	json_t *sj = json_object_get(req, "since");
	int64_t since_s = json_is_integer(sj) ? json_integer_value(sj) : 30 * 86400;
	int64_t until_ms = clock_now_ms(), until = until_ms / 1000, since = until - since_s;
	struct rollout_row *ro;
	struct incident_row *inc;
	size_t n, ninc;
	struct gerr gerr;
	char a[40], b[40];
	(void)c;
	if (err)
		return err;
	if (sj && (!json_is_integer(sj) || since_s < 1 || since_s > 3650LL * 86400))
		return reply_error(2, "/since: must be a number of seconds (1 .. 10 years)");
	if (json_is_true(json_object_get(req, "releases"))) {
		/* a release as one deployment (daemon/releases.c) */
		list = releases_dora(env, since, until);
		if (json_is_object(list))
			return list;
		format_rfc3339(since, a, sizeof(a));
		format_rfc3339(until, b, sizeof(b));
		return json_pack("{s:b, s:s, s:s, s:o}", "ok", 1, "since", a, "until", b, "dora", list);
	}
	if (store_rollout_list(ctl->store, svc, env, since * 1000, &ro, &n, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	if (store_incident_list(ctl->store, false, &inc, &ninc, &gerr) < 0) {
		free(ro);
		return reply_error(1, "%s", gerr.msg);
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
		int64_t *offs = NULL;
		size_t noffs = 0;
		/* a flag turned off by rollback_on (daemon/flags.c) restored service like a rollback
		 * that completed at once: a recovery of the deploy before it */
		if (store_flag_off_times(ctl->store, ro[i].service, ro[i].environment, since * 1000, &offs, &noffs,
					 &gerr) < 0)
			noffs = 0;
		dr = xcalloc(n + noffs + 1, sizeof(*dr));
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
			if (store_revision_get(ctl->store, ro[j].service, ro[j].environment, ro[j].revision, &rev, &gerr) == 1) {
				strlcpy_g(dr[k].kind, rev.kind, sizeof(dr[k].kind));
				revision_row_release(&rev);
			}
			if (store_deployment_by_rollout(ctl->store, ro[j].id, &d, &gerr) == 1) {
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
		for (size_t j = 0; j < noffs; j++) {
			dr[k].started_at = dr[k].ended_at = offs[j];
			strlcpy_g(dr[k].kind, "rollback", sizeof(dr[k].kind));
			strlcpy_g(dr[k].result, "succeeded", sizeof(dr[k].result));
			k++;
		}
		free(offs);
		if (noffs)
			qsort(dr, k, sizeof(*dr), dora_by_start);
		for (size_t j = 0; j < ninc; j++) {
			if (!gates_concerns(&inc[j], ro[i].service, ro[i].environment) || inc[j].opened_at < since)
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
