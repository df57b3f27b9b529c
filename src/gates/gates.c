/*
 * gates.c — roles, the gate policy sent with a deploy, and the evaluation
 * of all gates (see gates.h for the order and the rules).
 */
#include "common.h"
#include "gates/gates.h"
#include "gates/window.h"
#include "core/spec.h"
#include "util/parse.h"
#include <jansson.h>

#define MAX_WINDOWS 64
#define MAX_APPROVALS 100

const char *caller_actor(const struct caller *caller)
{
	return caller->claimed[0] ? caller->claimed : caller->user;
}

/* ---- scopes ---- */

/* whether a comma-separated scope list covers name (see identity_covers) */
static bool scope_covers(const char *list, const char *name)
{
	size_t n;
	if (!name || !*list)
		return true;
	if (!*name)
		return false;
	n = strlen(name);
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && !memcmp(p, name, n))
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

bool identity_covers(const struct identity *id, const char *svc, const char *env)
{
	return id && scope_covers(id->services, svc) && scope_covers(id->environments, env);
}

const char *identity_role_text(const struct identity *id, char *buf, size_t len)
{
	const char *e = id->environments, *s = id->services;
	snprintf(buf, len, "%s%s%s%s%s%s", role_name(id->role), *e || *s ? " for " : "", e, *e && *s ? " and " : "",
		 *s ? "services " : "", s);
	return buf;
}

int scope_from_json(const json_t *a, const char *ptr, const char *what, char *out, size_t len, struct gerr *err)
{
	size_t i, used = 0;
	const json_t *v;
	if (len)
		out[0] = 0;
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return gerr_set(err, "%s: must be a list of %s names", ptr, what);
	json_array_foreach(a, i, v) {
		const char *name = json_string_value(v);
		size_t n;
		if (!name || !spec_name_valid(name))
			return gerr_set(err, "%s/%zu: %s%s%s is not a valid %s name (lowercase letters, digits and '-', "
					"at most 63 characters)", ptr, i, name ? "'" : "", name ? name : "not a string",
					name ? "'" : "", what);
		n = strlen(name);
		if (used + (used ? 1 : 0) + n + 1 > len)
			return gerr_set(err, "%s: too many %s names (at most %zu characters together)", ptr, what,
					len - 1);
		if (used)
			out[used++] = ',';
		memcpy(out + used, name, n + 1);
		used += n;
	}
	return 0;
}

json_t *scope_to_json(const char *list)
{
	json_t *a = json_array();
	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		json_array_append_new(a, json_stringn(p, n));
		if (!comma)
			break;
		p = comma + 1;
	}
	return a;
}

/* ---- the policy ---- */

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void gate_policy_release(struct gate_policy *p)
{
	free_strv(p->allow, p->nallow);
	free_strv(p->deny, p->ndeny);
	free_strv(p->freeze, p->nfreeze);
	json_decref(p->checks);
	memset(p, 0, sizeof(*p));
}

static int strv_from(const json_t *a, const char *where, char ***out, size_t *n, struct gerr *err)
{
	size_t i;
	const json_t *v;
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a) || json_array_size(a) > MAX_WINDOWS)
		return gerr_set(err, "%s: must be a list of at most %d strings", where, MAX_WINDOWS);
	*out = xcalloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach(a, i, v) {
		if (!json_is_string(v))
			return gerr_set(err, "%s/%zu: must be a string", where, i);
		(*out)[(*n)++] = xstrdup(json_string_value(v));
	}
	return 0;
}

/* a duration: "24h" (string) or seconds (integer) */
static int dur_from(const json_t *v, const char *where, int64_t *out, struct gerr *err)
{
	int64_t ms;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) || parse_duration_ms(json_string_value(v), &ms) < 0)
		return gerr_set(err, "%s: must be a duration (e.g. 30m, 24h)", where);
	*out = ms / 1000;
	return 0;
}

int gate_policy_from_json(const json_t *j, struct gate_policy *p, struct gerr *err)
{
	const json_t *w, *v;
	struct windows probe;
	const char *key;
	memset(p, 0, sizeof(*p));
	p->approval_ttl = 86400;
	strlcpy_g(p->rollback_incident, "P2", sizeof(p->rollback_incident));
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_object(j))
		return gerr_set(err, "/gates: must be an object");
	json_object_foreach((json_t *)j, key, v) {
		static const char *const known[] = { "approvals", "approval_ttl", "windows", "freeze_on_incident",
						     "promote_from", "min_soak", "checks", "environment",
						     "rollback_incident" };
		bool ok = false;
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			ok |= !strcmp(key, known[i]);
		if (!ok) {
			gerr_set(err, "/gates/%s: unknown gate", key);
			goto fail;
		}
	}
	v = json_object_get(j, "approvals");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > MAX_APPROVALS) {
			gerr_set(err, "/gates/approvals: must be an integer 0..%d", MAX_APPROVALS);
			goto fail;
		}
		p->approvals = (int)json_integer_value(v);
	}
	if (dur_from(json_object_get(j, "approval_ttl"), "/gates/approval_ttl", &p->approval_ttl, err) < 0 ||
	    dur_from(json_object_get(j, "min_soak"), "/gates/min_soak", &p->min_soak, err) < 0)
		goto fail;
	if (p->approval_ttl <= 0) {
		gerr_set(err, "/gates/approval_ttl: must be positive");
		goto fail;
	}
	w = json_object_get(j, "windows");
	if (w && !json_is_null(w)) {
		if (!json_is_object(w)) {
			gerr_set(err, "/gates/windows: must be an object (allow, deny, timezone)");
			goto fail;
		}
		if (strv_from(json_object_get(w, "allow"), "/gates/windows/allow", &p->allow, &p->nallow, err) < 0 ||
		    strv_from(json_object_get(w, "deny"), "/gates/windows/deny", &p->deny, &p->ndeny, err) < 0)
			goto fail;
		v = json_object_get(w, "timezone");
		if (v && !json_is_null(v)) {
			if (!json_is_string(v)) {
				gerr_set(err, "/gates/windows/timezone: must be a string");
				goto fail;
			}
			strlcpy_g(p->timezone, json_string_value(v), sizeof(p->timezone));
		}
		if (windows_init(&probe, (const char *const *)p->allow, p->nallow, (const char *const *)p->deny,
				 p->ndeny, p->timezone, err) < 0) {
			char msg[sizeof(err->msg)];
			strlcpy_g(msg, err->msg, sizeof(msg));
			gerr_set(err, "/gates/windows: %s", msg);
			goto fail;
		}
		windows_release(&probe);
	}
	if (strv_from(json_object_get(j, "freeze_on_incident"), "/gates/freeze_on_incident", &p->freeze,
		      &p->nfreeze, err) < 0)
		goto fail;
	for (size_t i = 0; i < p->nfreeze; i++) {
		if (!severity_valid(p->freeze[i])) {
			gerr_set(err, "/gates/freeze_on_incident/%zu: '%s' is not a severity (P0..P3)", i, p->freeze[i]);
			goto fail;
		}
	}
	v = json_object_get(j, "promote_from");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || !*json_string_value(v)) {
			gerr_set(err, "/gates/promote_from: must be an environment name");
			goto fail;
		}
		strlcpy_g(p->promote_from, json_string_value(v), sizeof(p->promote_from));
	}
	v = json_object_get(j, "rollback_incident");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || (strcmp(json_string_value(v), "none") && !severity_valid(json_string_value(v)))) {
			gerr_set(err, "/gates/rollback_incident: must be a severity (P0..P3) or none");
			goto fail;
		}
		strlcpy_g(p->rollback_incident, json_string_value(v), sizeof(p->rollback_incident));
	}
	v = json_object_get(j, "checks");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v)) {
			gerr_set(err, "/gates/checks: must be an object (pre, post)");
			goto fail;
		}
		p->checks = json_deep_copy(v);
	}
	return 0;
fail:
	gate_policy_release(p);
	return -1;
}

/* ---- evaluation ---- */

static void mark(struct gate_verdict *v, const char *gate, const char *state)
{
	json_object_set_new(v->gates, gate, json_string(state));
}

static void refuse(struct gate_verdict *v, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void refuse(struct gate_verdict *v, int code, const char *fmt, ...)
{
	va_list ap;
	if (v->result == GATE_REFUSE)
		return; /* the first refusal is the reason (dry runs go on) */
	v->result = GATE_REFUSE;
	v->code = code;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

static bool freezes(const struct gate_policy *p, const char *severity)
{
	for (size_t i = 0; i < p->nfreeze; i++)
		if (!strcmp(p->freeze[i], severity))
			return true;
	return false;
}

static void check_window(const struct gate_input *in, struct gate_verdict *v)
{
	const struct gate_policy *p = in->policy;
	struct windows w;
	struct gerr err;
	char why[128] = "", when[96], iso[40];
	int64_t next;

	if (!p->nallow && !p->ndeny) {
		mark(v, "window", "none");
		return;
	}
	if (windows_init(&w, (const char *const *)p->allow, p->nallow, (const char *const *)p->deny, p->ndeny,
			 p->timezone, &err) < 0) {
		mark(v, "window", "refused");
		refuse(v, 2, "windows: %s", err.msg);
		return;
	}
	if (windows_check(&w, in->now, &next, why, sizeof(why))) {
		mark(v, "window", "passed");
	} else if (in->emergency) {
		mark(v, "window", "overridden");
	} else {
		mark(v, "window", "refused");
		tz_format(w.tz, in->now, when, sizeof(when));
		if (next > 0) {
			char nl[96];
			tz_format(w.tz, next, nl, sizeof(nl));
			format_rfc3339(next, iso, sizeof(iso));
			v->next_allowed = next;
			refuse(v, 3, "deploys to %s are not allowed now (%s, %s); next allowed at %s (%s)",
			       in->environment, when, why, nl, iso);
		} else {
			refuse(v, 3, "deploys to %s are not allowed now (%s, %s); no allowed time within 8 days",
			       in->environment, when, why);
		}
	}
	windows_release(&w);
}

static void check_freeze(const struct gate_input *in, struct gate_verdict *v)
{
	const struct gate_policy *p = in->policy;
	if (!p->nfreeze) {
		mark(v, "freeze", "none");
		return;
	}
	for (size_t i = 0; i < in->nincidents; i++) {
		const struct incident_row *r = &in->incidents[i];
		if (r->closed_at || !freezes(p, r->severity))
			continue;
		if ((r->service[0] && strcmp(r->service, in->service)) ||
		    (r->environment[0] && strcmp(r->environment, in->environment)))
			continue;
		if (in->emergency) {
			mark(v, "freeze", "overridden");
			return;
		}
		mark(v, "freeze", "refused");
		refuse(v, 3, "%s is frozen by open incident %lld (%s: %s); close it with 'gantry incident close %lld', "
		       "or deploy with --emergency --reason", in->environment, (long long)r->id, r->severity,
		       r->title, (long long)r->id);
		return;
	}
	mark(v, "freeze", "passed");
}

static void check_promotion(const struct gate_input *in, struct gate_verdict *v)
{
	const struct gate_policy *p = in->policy;
	const struct promotion_fact *f = in->promotion;
	char a[32], b[32], c[32];
	int64_t served;
	if (!p->promote_from[0]) {
		mark(v, "promotion", "none");
		return;
	}
	if (!f || !f->found) {
		mark(v, "promotion", "refused");
		refuse(v, 3, "%s only accepts versions promoted from %s: this artifact was never deployed to %s "
		       "(deploy it there first, then 'gantry promote %s --from %s --to %s')", in->environment,
		       p->promote_from, p->promote_from, in->service, p->promote_from, in->environment);
		return;
	}
	if (strcmp(f->status, "serving") || !f->serving_since) {
		mark(v, "promotion", "refused");
		refuse(v, 3, "%s only accepts versions serving healthily in %s: revision %d there is %s",
		       in->environment, p->promote_from, f->revision, f->status[0] ? f->status : "not serving");
		return;
	}
	/* a clock behind the rollout's (GANTRY_NOW in tests) counts as just started */
	served = MAX(0, in->now - f->serving_since);
	if (p->min_soak > 0 && served < p->min_soak) {
		mark(v, "promotion", "refused");
		refuse(v, 3, "revision %d has served in %s for %s; %s needs min_soak %s (try again in %s)",
		       f->revision, p->promote_from, format_duration(served * 1000, a, sizeof(a)),
		       in->environment, format_duration(p->min_soak * 1000, b, sizeof(b)),
		       format_duration((p->min_soak - served) * 1000, c, sizeof(c)));
		return;
	}
	mark(v, "promotion", "passed");
}

void gates_evaluate(const struct gate_input *in, struct gate_verdict *v)
{
	const struct gate_policy *p = in->policy;
	bool restore = in->kind && (!strcmp(in->kind, "rollback") || !strcmp(in->kind, "restart"));
	int need;

	memset(v, 0, sizeof(*v));
	v->gates = json_object();
	need = ROLE_DEPLOYER; /* as the API table says for deploy (src/api/table.c) */
	if (!in->who || in->who->role < need) {
		mark(v, "permission", "refused");
		refuse(v, 3, "permission denied: %s (role %s) cannot %s %s@%s (needs role %s)",
		       in->who ? in->who->name : "unknown", in->who ? role_name(in->who->role) : "none",
		       in->kind ? in->kind : "deploy", in->service, in->environment, role_name(need));
		return;
	}
	if (!identity_covers(in->who, in->service, in->environment)) {
		char rt[2 * USER_SCOPE_LEN + 64];
		mark(v, "permission", "refused");
		refuse(v, 3, "permission denied: %s (role %s) cannot %s %s@%s", in->who->name,
		       identity_role_text(in->who, rt, sizeof(rt)), in->kind ? in->kind : "deploy", in->service,
		       in->environment);
		return;
	}
	mark(v, "permission", "passed");
	if (in->emergency) {
		if (in->who->role < ROLE_APPROVER) {
			refuse(v, 3, "permission denied: an emergency deploy needs role approver or admin (%s is %s)",
			       in->who->name, role_name(in->who->role));
			return;
		}
		if (!in->reason || strlen(in->reason) < 3) {
			refuse(v, 2, "--emergency needs --reason \"...\" (it is recorded and notified)");
			return;
		}
		mark(v, "emergency", "yes");
	}
	if (!p) {
		mark(v, "window", "none");
		mark(v, "freeze", "none");
		mark(v, "promotion", "none");
		mark(v, "approvals", "none");
		return;
	}
	if (restore) {
		/* going back to what already ran: never blocked by time or incidents */
		mark(v, "window", "skipped (rollback)");
		mark(v, "freeze", "skipped (rollback)");
		mark(v, "promotion", "skipped (rollback)");
		mark(v, "approvals", "skipped (rollback)");
		return;
	}
	check_window(in, v);
	if (v->result != GATE_ALLOW && !in->all)
		return;
	check_freeze(in, v);
	if (v->result != GATE_ALLOW && !in->all)
		return;
	check_promotion(in, v);
	if (v->result != GATE_ALLOW && !in->all)
		return;
	if (!p->approvals) {
		mark(v, "approvals", "none");
	} else if (in->approved) {
		mark(v, "approvals", "passed");
	} else if (in->emergency) {
		mark(v, "approvals", "overridden");
	} else {
		mark(v, "approvals", "pending");
		if (v->result != GATE_ALLOW)
			return;
		v->result = GATE_PENDING_APPROVAL;
		v->code = 3;
		snprintf(v->reason, sizeof(v->reason), "%s@%s needs %d approval%s by approvers other than %s",
			 in->service, in->environment, p->approvals, p->approvals > 1 ? "s" : "", in->who->name);
	}
}

void gates_evaluate_step(const struct gate_input *in, struct gate_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->gates = json_object();
	if (!in->policy) {
		mark(v, "window", "none");
		mark(v, "freeze", "none");
		return;
	}
	check_window(in, v);
	if (v->result == GATE_ALLOW)
		check_freeze(in, v);
}

void gate_verdict_release(struct gate_verdict *v)
{
	json_decref(v->gates);
	v->gates = NULL;
}

int approvals_count(const struct approval_row *a, size_t n, const char *requester, int64_t now,
		    int64_t ttl, char *rejected_by, size_t len)
{
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		if (!strcmp(a[i].approver, requester))
			continue;
		if (!strcmp(a[i].decision, "reject")) {
			snprintf(rejected_by, len, "%s", a[i].approver);
			return -1;
		}
		if (strcmp(a[i].decision, "approve") || now - a[i].at >= ttl || a[i].at > now + 300)
			continue;
		for (size_t j = 0; j < i; j++)
			dup |= !strcmp(a[j].approver, a[i].approver) && !strcmp(a[j].decision, "approve") &&
			       now - a[j].at < ttl;
		if (!dup)
			count++;
	}
	return count;
}
