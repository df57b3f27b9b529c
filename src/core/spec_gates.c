/*
 * spec_gates.c — checking the gate keys of the spec (spec_gates.h) through
 * the read-only view of the YAML tree, and the words they share with
 * gates/: roles, severities, check objects.
 */
#include "common.h"
#include "core/spec_gates.h"
#include "core/spec.h"
#include "core/notify_target.h"
#include "core/tz.h"
#include "core/window.h"
#include "util/parse.h"
#include <jansson.h>

/* ------------------------------------------------------------------------ */
/* roles and severities                                                     */

static const char *const role_names[] = { "viewer", "deployer", "approver", "admin" };

int role_parse(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(role_names); i++)
		if (!strcmp(s, role_names[i]))
			return (int)i;
	return -1;
}

const char *role_name(int role)
{
	return role >= 0 && role < (int)ARRAY_SIZE(role_names) ? role_names[role] : "none";
}

bool severity_valid(const char *s)
{
	return s && s[0] == 'P' && s[1] >= '0' && s[1] <= '3' && !s[2];
}

/* ------------------------------------------------------------------------ */
/* check objects                                                            */

int check_timeout(const json_t *c, int64_t *ms, struct gerr *err)
{
	const json_t *t = json_object_get(c, "timeout");
	*ms = CHECK_DEFAULT_TIMEOUT_MS;
	if (!t || json_is_null(t))
		return 0;
	if (!json_is_string(t) || parse_duration_ms(json_string_value(t), ms) < 0 || *ms < 1 ||
	    *ms > CHECK_MAX_TIMEOUT_MS)
		return gerr_set(err, "timeout: must be a duration between 1ms and 30m");
	return 0;
}

int check_validate(const json_t *c, struct gerr *err)
{
	const json_t *run = json_object_get(c, "run"), *http = json_object_get(c, "http"),
		     *expect = json_object_get(c, "expect");
	const char *key;
	const json_t *v;
	int64_t ms;
	if (!json_is_object(c))
		return gerr_set(err, "a check must be a mapping with 'run' or 'http'");
	json_object_foreach((json_t *)c, key, v) {
		if (strcmp(key, "run") && strcmp(key, "http") && strcmp(key, "expect") && strcmp(key, "timeout") &&
		    strcmp(key, "name"))
			return gerr_set(err, "unknown key '%s' (run, http, expect, timeout, name)", key);
	}
	if (!run == !http)
		return gerr_set(err, "a check needs exactly one of 'run' or 'http'");
	if (run && (!json_is_string(run) || !*json_string_value(run)))
		return gerr_set(err, "run: must be a command line");
	if (http) {
		const char *s = json_is_string(http) ? json_string_value(http) : "";
		if (strncmp(s, "GET /", 5) && strncmp(s, "HEAD /", 6))
			return gerr_set(err, "http: must be \"GET /path\" (or HEAD), got '%s'", s);
		if (strpbrk(s + 4, " \r\n\t"))
			return gerr_set(err, "http: the path must not contain spaces");
	}
	if (expect && (!json_is_integer(expect) || json_integer_value(expect) < 100 || json_integer_value(expect) > 599))
		return gerr_set(err, "expect: must be an HTTP status code (100..599)");
	if (expect && !http)
		return gerr_set(err, "expect: only for http checks");
	return check_timeout(c, &ms, err);
}

/* ------------------------------------------------------------------------ */
/* the gate keys                                                            */

struct gck {
	const char *file, *src;
	size_t srclen;
	struct diags *diags;
	int nerr;
	const struct spec *spec;
};

static void report(struct gck *g, const struct spec_node *at, const char *path, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void report(struct gck *g, const struct spec_node *at, const char *path, const char *fmt, ...)
{
	char msg[1024], src[256];
	int line, col;
	va_list ap;
	g->nerr++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	spec_node_pos(at, &line, &col);
	diags_add(g->diags, g->file, line, col, path, diag_source_line(g->src, g->srclen, line, src, sizeof(src)), "%s", msg);
}

static bool want(struct gck *g, const struct spec_node *n, const struct spec_node *at, enum spec_node_kind k,
		 const char *path, const char *what)
{
	if (spec_node_kind(n) == k)
		return true;
	report(g, n ? n : at, path, "expected %s", what);
	return false;
}

static void unknown_keys(struct gck *g, const struct spec_node *map, const char *path, const char *const *known,
			 size_t nknown)
{
	for (size_t i = 0; i < spec_node_count(map); i++) {
		const char *k = spec_node_text(spec_node_key(map, i));
		bool ok = false;
		for (size_t j = 0; j < nknown && k; j++)
			ok |= !strcmp(k, known[j]);
		if (!ok) {
			const char *s = k ? diag_suggest(k, known, nknown) : NULL;
			report(g, spec_node_key(map, i), path, "unknown key '%s'%s%s%s", k ? k : "?",
			       s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
		}
	}
}

static void check_duration(struct gck *g, const struct spec_node *n, const char *path, int64_t max_ms)
{
	int64_t ms;
	const char *t = spec_node_text(n);
	if (!t || parse_duration_ms(t, &ms) < 0)
		report(g, n, path, "invalid duration '%s' (expected e.g. 30m, 24h)", t ? t : "");
	else if (ms <= 0 || ms > max_ms)
		report(g, n, path, "must be between 1s and %lldd", (long long)(max_ms / 86400000));
}

static void check_strlist(struct gck *g, const struct spec_node *n, const char *path,
			  void (*each)(struct gck *, const struct spec_node *, const char *))
{
	char p[1400];
	if (!want(g, n, n, SPEC_NODE_SEQ, path, "a list"))
		return;
	for (size_t i = 0; i < spec_node_count(n); i++) {
		const struct spec_node *it = spec_node_item(n, i);
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (spec_node_kind(it) != SPEC_NODE_SCALAR)
			report(g, it, p, "expected a string");
		else if (each)
			each(g, it, p);
	}
}

static void each_window(struct gck *g, const struct spec_node *n, const char *path)
{
	struct window_set s = { 0 };
	struct gerr err;
	if (window_parse(spec_node_text(n), &s, &err) < 0)
		report(g, n, path, "invalid window %s (e.g. \"Fri 17:00-Mon 08:00\", \"Mon-Fri 09:00-17:00\")", err.msg);
	window_set_release(&s);
}

static void each_severity(struct gck *g, const struct spec_node *n, const char *path)
{
	if (!severity_valid(spec_node_text(n)))
		report(g, n, path, "'%s' is not a severity (P0, P1, P2 or P3)", spec_node_text(n));
}

static void check_protection(struct gck *g, const struct spec_node *pr, const char *path)
{
	static const char *const keys[] = { "approvals", "approval_ttl", "windows", "freeze_on_incident", "checklist",
					    "rollback_incident" };
	static const char *const wkeys[] = { "allow", "deny", "timezone" };
	const struct spec_node *n;
	char p[1024];
	if (spec_node_kind(pr) == SPEC_NODE_NULL || !want(g, pr, pr, SPEC_NODE_MAP, path, "a mapping"))
		return;
	unknown_keys(g, pr, path, keys, ARRAY_SIZE(keys));
	if ((n = spec_node_get(pr, "approvals"))) {
		const char *t = spec_node_text(n);
		char *end = NULL;
		long v = t ? strtol(t, &end, 10) : -1;
		snprintf(p, sizeof(p), "%s.approvals", path);
		if (!t || !*t || *end || v < 0 || v > 100)
			report(g, n, p, "expected an integer between 0 and 100");
	}
	if ((n = spec_node_get(pr, "approval_ttl"))) {
		snprintf(p, sizeof(p), "%s.approval_ttl", path);
		check_duration(g, n, p, 30LL * 86400000);
	}
	if ((n = spec_node_get(pr, "freeze_on_incident"))) {
		snprintf(p, sizeof(p), "%s.freeze_on_incident", path);
		check_strlist(g, n, p, each_severity);
	}
	if ((n = spec_node_get(pr, "checklist"))) {
		snprintf(p, sizeof(p), "%s.checklist", path);
		check_strlist(g, n, p, NULL);
	}
	if ((n = spec_node_get(pr, "rollback_incident"))) {
		snprintf(p, sizeof(p), "%s.rollback_incident", path);
		if (!spec_node_text(n) || (strcmp(spec_node_text(n), "none") && !severity_valid(spec_node_text(n))))
			report(g, n, p, "expected a severity (P0, P1, P2 or P3) or none");
	}
	if ((n = spec_node_get(pr, "windows"))) {
		const struct spec_node *w;
		snprintf(p, sizeof(p), "%s.windows", path);
		if (!want(g, n, n, SPEC_NODE_MAP, p, "a mapping (allow, deny, timezone)"))
			return;
		unknown_keys(g, n, p, wkeys, ARRAY_SIZE(wkeys));
		if ((w = spec_node_get(n, "allow"))) {
			snprintf(p, sizeof(p), "%s.windows.allow", path);
			check_strlist(g, w, p, each_window);
		}
		if ((w = spec_node_get(n, "deny"))) {
			snprintf(p, sizeof(p), "%s.windows.deny", path);
			check_strlist(g, w, p, each_window);
		}
		if ((w = spec_node_get(n, "timezone"))) {
			struct tz *tz = NULL;
			struct gerr err;
			snprintf(p, sizeof(p), "%s.windows.timezone", path);
			if (!spec_node_text(w) || tz_load(spec_node_text(w), &tz, &err) < 0)
				report(g, w, p, "%s", spec_node_text(w) ? err.msg : "expected a time zone name");
			tz_free(tz);
		}
	}
}

static bool env_declared(const struct spec *spec, const char *name)
{
	return name && spec_find_env(spec, name) != NULL;
}

static void check_checks(struct gck *g, const struct spec_node *c, const char *path)
{
	static const char *const keys[] = { "pre", "post" };
	char p[1024];
	if (!want(g, c, c, SPEC_NODE_MAP, path, "a mapping (pre, post)"))
		return;
	unknown_keys(g, c, path, keys, ARRAY_SIZE(keys));
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		const struct spec_node *l = spec_node_get(c, keys[k]);
		if (!l)
			continue;
		snprintf(p, sizeof(p), "%s.%s", path, keys[k]);
		if (!want(g, l, l, SPEC_NODE_SEQ, p, "a list of checks ({run: CMD} or {http: \"GET /path\", expect: 200})"))
			continue;
		for (size_t i = 0; i < spec_node_count(l); i++) {
			const struct spec_node *it = spec_node_item(l, i);
			json_t *j = spec_node_to_json(it);
			struct gerr err;
			snprintf(p, sizeof(p), "%s.%s[%zu]", path, keys[k], i);
			if (check_validate(j, &err) < 0)
				report(g, it, p, "%s", err.msg);
			else if (k == 0 && json_object_get(j, "http"))
				/* nothing of the new revision runs before its pre-checks */
				report(g, spec_node_get(it, "http"), p, "an http check needs the new revision running: "
				       "put it under post, or use {run: ...} here");
			json_decref(j);
		}
	}
}

static void each_scope_env(struct gck *g, const struct spec_node *n, const char *path)
{
	const char *t = spec_node_text(n);
	if (!spec_name_valid(t))
		report(g, n, path, "invalid environment name '%s' (lowercase letters, digits and '-', at most 63 characters)", t);
	else if (!env_declared(g->spec, t))
		report(g, n, path, "'%s' is not an environment of this spec", t);
}

static void each_scope_svc(struct gck *g, const struct spec_node *n, const char *path)
{
	const char *t = spec_node_text(n);
	if (!spec_name_valid(t))
		report(g, n, path, "invalid service name '%s' (lowercase letters, digits and '-', at most 63 characters)", t);
	else if (!spec_find_service(g->spec, t))
		report(g, n, path, "'%s' is not a service of this spec", t);
}

/* roles.USER: a role, or {role: R, environments: [..], services: [..]} (a scoped role) */
static void check_role(struct gck *g, const struct spec_node *v, const char *path)
{
	static const char *const keys[] = { "role", "environments", "services" };
	const struct spec_node *r;
	char p[1024];
	if (spec_node_kind(v) == SPEC_NODE_SCALAR) {
		if (role_parse(spec_node_text(v)) < 0)
			report(g, v, path, "unknown role '%s' (viewer, deployer, approver, admin)",
			       spec_node_text(v) ? spec_node_text(v) : "");
		return;
	}
	if (!want(g, v, v, SPEC_NODE_MAP, path, "a role or a mapping {role, environments, services}"))
		return;
	unknown_keys(g, v, path, keys, ARRAY_SIZE(keys));
	snprintf(p, sizeof(p), "%s.role", path);
	if (!(r = spec_node_get(v, "role")))
		report(g, v, path, "missing key 'role'");
	else if (spec_node_kind(r) != SPEC_NODE_SCALAR || role_parse(spec_node_text(r)) < 0)
		report(g, r, p, "unknown role '%s' (viewer, deployer, approver, admin)",
		       spec_node_text(r) ? spec_node_text(r) : "");
	if ((r = spec_node_get(v, "environments"))) {
		snprintf(p, sizeof(p), "%s.environments", path);
		check_strlist(g, r, p, each_scope_env);
	}
	if ((r = spec_node_get(v, "services"))) {
		snprintf(p, sizeof(p), "%s.services", path);
		check_strlist(g, r, p, each_scope_svc);
	}
}

/*
 * notify[i]: notify.c decides (the daemon checks the same list with it);
 * its message "notify[i].KEY: what" becomes a diagnostic at KEY's value.
 */
static void check_notify_target(struct gck *g, const struct spec_node *it, const json_t *t, size_t i)
{
	struct gerr err;
	char path[128];
	const char *sep, *dot;
	const struct spec_node *at = it;
	if (notify_target_check(t, i, &err) == 0)
		return;
	sep = strstr(err.msg, ": ");
	if (!sep || (size_t)(sep - err.msg) >= sizeof(path)) {
		snprintf(path, sizeof(path), "notify[%zu]", i);
		report(g, it, path, "%s", err.msg);
		return;
	}
	snprintf(path, sizeof(path), "%.*s", (int)(sep - err.msg), err.msg);
	if ((dot = strstr(path, "].")) && spec_node_get(it, dot + 2))
		at = spec_node_get(it, dot + 2);
	report(g, at, path, "%s", sep + 2);
}

int spec_gates_check(const struct spec *spec, const char *file, const char *src, size_t srclen, struct diags *diags)
{
	struct gck g = { file, src, srclen, diags, 0, spec };
	const struct spec_node *root = spec_root(spec), *envs = spec_node_get(root, "environments"),
			       *svcs = spec_node_get(root, "services"), *n;
	char p[300];

	for (size_t i = 0; i < spec_node_count(envs) && spec_node_kind(envs) == SPEC_NODE_MAP; i++) {
		const char *e = spec_node_text(spec_node_key(envs, i));
		const struct spec_node *ev = spec_node_item(envs, i);
		if (!e || spec_node_kind(ev) != SPEC_NODE_MAP)
			continue;
		snprintf(p, sizeof(p), "environments.%s.protection", e);
		check_protection(&g, spec_node_get(ev, "protection"), p);
		if ((n = spec_node_get(ev, "promote_from"))) {
			snprintf(p, sizeof(p), "environments.%s.promote_from", e);
			if (!spec_node_text(n) || !env_declared(spec, spec_node_text(n)))
				report(&g, n, p, "'%s' is not an environment of this spec", spec_node_text(n) ? spec_node_text(n) : "");
			else if (!strcmp(spec_node_text(n), e))
				report(&g, n, p, "an environment cannot be promoted from itself");
		}
		if ((n = spec_node_get(ev, "min_soak"))) {
			snprintf(p, sizeof(p), "environments.%s.min_soak", e);
			check_duration(&g, n, p, 30LL * 86400000);
			if (!spec_node_get(ev, "promote_from"))
				report(&g, n, p, "min_soak needs promote_from");
		}
	}
	for (size_t i = 0; i < spec_node_count(svcs) && spec_node_kind(svcs) == SPEC_NODE_MAP; i++) {
		const char *s = spec_node_text(spec_node_key(svcs, i));
		if (s && (n = spec_node_get(spec_node_item(svcs, i), "checks"))) {
			snprintf(p, sizeof(p), "services.%s.checks", s);
			check_checks(&g, n, p);
		}
	}
	if ((n = spec_node_get(root, "notify"))) {
		json_t *j = spec_node_to_json(n);
		if (want(&g, n, n, SPEC_NODE_SEQ, "notify", "a list of webhooks ({url, format, secret, allow_private, events})")) {
			for (size_t i = 0; i < spec_node_count(n); i++)
				check_notify_target(&g, spec_node_item(n, i), json_array_get(j, i), i);
			if (spec_node_count(n) > 32)
				report(&g, n, "notify", "at most 32 webhooks");
		}
		json_decref(j);
	}
	if ((n = spec_node_get(root, "roles")) && want(&g, n, n, SPEC_NODE_MAP, "roles", "a mapping of user: role")) {
		for (size_t i = 0; i < spec_node_count(n); i++) {
			snprintf(p, sizeof(p), "roles.%s", spec_node_text(spec_node_key(n, i)) ? spec_node_text(spec_node_key(n, i)) : "?");
			check_role(&g, spec_node_item(n, i), p);
		}
	}
	return g.nerr;
}
