/*
 * route.c — route table parsing (jansson, both forms of the routes file),
 * host and tag matching, and the balancer: header rules, tags, sticky
 * cookie, smooth weighted round-robin between revisions, fewest in-flight
 * requests within one.
 */
#include "common.h"
#include "proxy/route.h"
#include "proxy/proxy.h"
#include "http/http.h"
#include <jansson.h>

static const char *jtype(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "something else";
}

/* "routes[1].backends: expected an array, got a string" */
static int type_err(struct gerr *err, const char *path, const char *suffix, const char *want,
		    const json_t *got)
{
	return gerr_set(err, "%s%s: expected %s, got %s", path, suffix, want, jtype(got));
}

/* optional string member: NULL when absent, -1 on a wrong type */
static int opt_string(const json_t *obj, const char *key, const char *path,
		      const char **out, struct gerr *err)
{
	const json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		char p[256];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		return type_err(err, p, "", "a string", v);
	}
	*out = json_string_value(v);
	return 0;
}

static int cmp_exact(const void *a, const void *b)
{
	return strcmp(((const struct route_host *)a)->host, ((const struct route_host *)b)->host);
}

static int cmp_wild(const void *a, const void *b)
{
	size_t la = strlen(((const struct route_host *)a)->host);
	size_t lb = strlen(((const struct route_host *)b)->host);
	return la < lb ? 1 : la > lb ? -1 : cmp_exact(a, b);
}

/* everything a route owns but its names (caller's storage; left with no revisions) */
static void route_release_revs(struct route *r)
{
	for (size_t k = 0; k < r->nrevs; k++) {
		struct route_rev *rv = &r->revs[k];
		for (size_t j = 0; j < rv->nbackends; j++)
			backend_put(rv->backends[j].be);
		for (size_t j = 0; j < rv->ntags; j++)
			free(rv->tags[j]);
		free(rv->tags);
		free(rv->backends);
		free(rv->revision);
		metric_series_put(rv->ms);
	}
	for (size_t k = 0; k < r->nrules; k++) {
		free(r->rules[k].name);
		free(r->rules[k].value);
	}
	free(r->rules);
	for (size_t k = 0; k < r->nhost_tags; k++)
		free(r->host_tags[k]);
	free(r->host_tags);
	free(r->revs);
	free(r->sticky_cookie);
	free(r->hc.path);
	maint_release(&r->maint);
	r->revs = NULL;
	r->nrevs = 0;
	r->rules = NULL;
	r->nrules = 0;
	r->host_tags = NULL;
	r->nhost_tags = 0;
	r->tag_hosts_all = false;
	r->sticky_cookie = NULL;
	r->hc.path = NULL;
	r->shield_canary = r->shield_stable = -1;
}

static void free_routes(struct route_table *t)
{
	for (size_t i = 0; i < t->nroutes; i++) {
		struct route *r = &t->routes[i];
		route_release_revs(r);
		free(r->service);
		free(r->environment);
		metric_series_put(r->ms);
	}
	for (size_t i = 0; i < t->nexact; i++)
		free(t->exact[i].host);
	for (size_t i = 0; i < t->nwild; i++)
		free(t->wild[i].host);
	for (size_t i = 0; i < t->ndropped; i++) {
		free(t->dropped[i].host);
		free(t->dropped[i].service);
		free(t->dropped[i].environment);
	}
	free(t->dropped);
	free(t->exact);
	free(t->wild);
	free(t->routes);
	cidr_set_release(&t->trusted);
	free(t->ws);
	free(t->slotmem);
	free(t);
}

/* a revision label: a string, or an integer written in decimal */
static int rev_label(const json_t *v, const char *path, const char *key, char *buf, size_t bufsz,
		     const char **out, struct gerr *err)
{
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		snprintf(buf, bufsz, "%lld", (long long)json_integer_value(v));
		*out = buf;
		return 0;
	}
	if (!json_is_string(v))
		return type_err(err, path, key, "a string", v);
	*out = json_string_value(v);
	return 0;
}

/* the revision labelled label, appended when absent (flat form grouping) */
static struct route_rev *rev_for(struct route *r, const char *label, size_t cap)
{
	for (size_t i = 0; i < r->nrevs; i++)
		if (!strcmp(r->revs[i].revision, label))
			return &r->revs[i];
	BUG_ON(r->nrevs >= cap);
	r->revs[r->nrevs].revision = xstrdup(label);
	r->revs[r->nrevs].ms = metric_series_get(r->service, r->environment, label);
	return &r->revs[r->nrevs++];
}

static int add_backend(struct route *r, struct route_rev *rv, size_t cap, const char *path,
		       const char *addr, int weight, struct gerr *err)
{
	struct route_backend *rb;
	struct backend *be;

	be = backend_get(addr, r->service, r->environment, rv->revision, err);
	if (!be) {
		struct gerr e2 = *err;
		return gerr_set(err, "%s.address: %s", path, e2.msg);
	}
	for (size_t i = 0; i < rv->nbackends; i++)
		if (rv->backends[i].be == be) {
			backend_put(be);
			return gerr_set(err, "%s.address: '%s' is already listed in this revision", path, addr);
		}
	if (!rv->backends)
		rv->backends = xcalloc(cap, sizeof(*rv->backends));
	BUG_ON(rv->nbackends >= cap);
	rb = &rv->backends[rv->nbackends++];
	rb->be = be;
	rb->weight = weight;
	return 0;
}

static int get_address(const json_t *jb, const char *path, const char **addr, struct gerr *err)
{
	const json_t *v;
	if (!json_is_object(jb))
		return type_err(err, path, "", "an object", jb);
	v = json_object_get(jb, "address");
	if (!v)
		return gerr_set(err, "%s.address: missing", path);
	if (!json_is_string(v))
		return type_err(err, path, ".address", "a string", v);
	*addr = json_string_value(v);
	return 0;
}

static int get_int(const json_t *obj, const char *key, const char *path, json_int_t lo,
		   json_int_t hi, json_int_t *out, struct gerr *err)
{
	const json_t *v = json_object_get(obj, key);
	char suffix[32];
	if (!v)
		return 0;
	snprintf(suffix, sizeof(suffix), ".%s", key);
	if (!json_is_integer(v))
		return type_err(err, path, suffix, "an integer", v);
	*out = json_integer_value(v);
	if (*out < lo || *out > hi)
		return gerr_set(err, "%s.%s: %lld is out of range %lld..%lld", path, key,
				(long long)*out, (long long)lo, (long long)hi);
	return 0;
}

/* the flat form: "backends": [{"address", "weight", "revision"}] */
static int parse_flat(struct route *r, size_t ri, const json_t *backends, struct gerr *err)
{
	size_t n = json_array_size(backends), i;
	const json_t *jb;

	r->revs = xcalloc(n + 1, sizeof(*r->revs));
	json_array_foreach(backends, i, jb) {
		char path[128], buf[32];
		const char *addr, *label;
		json_int_t w = 1;
		struct route_rev *rv;

		snprintf(path, sizeof(path), "routes[%zu].backends[%zu]", ri, i);
		if (get_address(jb, path, &addr, err) < 0 ||
		    get_int(jb, "weight", path, 0, ROUTE_MAX_WEIGHT, &w, err) < 0 ||
		    rev_label(json_object_get(jb, "revision"), path, ".revision", buf, sizeof(buf),
			      &label, err) < 0)
			return -1;
		rv = rev_for(r, label ? label : "", n);
		if (add_backend(r, rv, n, path, addr, (int)w, err) < 0)
			return -1;
		rv->weight += w;
	}
	for (size_t k = 0; k < r->nrevs; k++) {
		struct route_rev *rv = &r->revs[k];
		int first = 0;
		for (size_t j = 0; j < rv->nbackends; j++) {
			int bw = rv->backends[j].weight;
			if (!bw)
				continue;
			if (first && bw != first)
				rv->weighted = true;
			first = bw;
		}
	}
	return 0;
}

/* a tag is the first label of a host name: TAG---SVC.ENV.localhost */
static bool valid_tag(const char *s, size_t n)
{
	return n && n <= 63 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n &&
	       !strstr(s, "---") && s[0] != '-' && s[n - 1] != '-';
}
#define TAG_EXPECTED "is not a tag (letters, digits, '-', '_'; no '---')"

static char *lower_dup(const char *s)
{
	char *low = xstrdup(s);
	for (char *p = low; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return low;
}

/*
 * "tag_hosts": which tags answer as TAG---HOST. Absent or false: none;
 * true: every tag of the route; ["preview", ...]: those (a tag no revision
 * carries yet is allowed: a blue-green preview before its first replica).
 */
static int parse_tag_hosts(struct route *r, size_t ri, const json_t *v, struct gerr *err)
{
	const json_t *it;
	size_t i;

	if (!v || json_is_null(v) || json_is_false(v))
		return 0;
	if (json_is_true(v)) {
		r->tag_hosts_all = true;
		return 0;
	}
	if (!json_is_array(v))
		return gerr_set(err, "routes[%zu].tag_hosts: expected true, false or an array of tags, got %s", ri,
				jtype(v));
	r->host_tags = xcalloc(json_array_size(v) + 1, sizeof(*r->host_tags));
	json_array_foreach(v, i, it) {
		const char *s = json_string_value(it);
		if (!s)
			return gerr_set(err, "routes[%zu].tag_hosts[%zu]: expected a string, got %s", ri, i, jtype(it));
		if (!valid_tag(s, strlen(s)))
			return gerr_set(err, "routes[%zu].tag_hosts[%zu]: '%s' " TAG_EXPECTED, ri, i, s);
		r->host_tags[r->nhost_tags++] = lower_dup(s);
	}
	return 0;
}

static int parse_tags(struct route *r, struct route_rev *rv, const json_t *tags, const char *path,
		      struct gerr *err)
{
	size_t i;
	const json_t *v;

	if (!tags || json_is_null(tags))
		return 0;
	if (!json_is_array(tags))
		return type_err(err, path, ".tags", "an array", tags);
	rv->tags = xcalloc(json_array_size(tags) + 1, sizeof(*rv->tags));
	json_array_foreach(tags, i, v) {
		const char *s;
		size_t n;
		char *low;
		if (!json_is_string(v)) {
			char p[160];
			snprintf(p, sizeof(p), "%s.tags[%zu]", path, i);
			return type_err(err, p, "", "a string", v);
		}
		s = json_string_value(v);
		n = strlen(s);
		if (!valid_tag(s, n))
			return gerr_set(err, "%s.tags[%zu]: '%s' " TAG_EXPECTED, path, i, s);
		low = lower_dup(s);
		for (size_t k = 0; k < r->nrevs; k++)
			for (size_t j = 0; j < r->revs[k].ntags; j++)
				if (!strcmp(r->revs[k].tags[j], low)) {
					free(low);
					return gerr_set(err, "%s.tags[%zu]: '%s' is already used by revision '%s'",
							path, i, s, r->revs[k].revision);
				}
		for (size_t j = 0; j < rv->ntags; j++)
			if (!strcmp(rv->tags[j], low)) {
				free(low);
				return gerr_set(err, "%s.tags[%zu]: '%s' is repeated", path, i, s);
			}
		rv->tags[rv->ntags++] = low;
	}
	return 0;
}

/* version 2: "revisions": [{"revision", "weight", "tags", "backends"}] */
static int parse_revisions(struct route *r, size_t ri, const json_t *revs, struct gerr *err)
{
	size_t i;
	const json_t *jr;

	r->revs = xcalloc(json_array_size(revs) + 1, sizeof(*r->revs));
	json_array_foreach(revs, i, jr) {
		char path[96], buf[32];
		const char *label;
		const json_t *bks, *jb;
		json_int_t w = 0;
		struct route_rev *rv = &r->revs[i];
		size_t j;

		snprintf(path, sizeof(path), "routes[%zu].revisions[%zu]", ri, i);
		if (!json_is_object(jr))
			return type_err(err, path, "", "an object", jr);
		if (rev_label(json_object_get(jr, "revision"), path, ".revision", buf, sizeof(buf),
			      &label, err) < 0)
			return -1;
		if (!label)
			return gerr_set(err, "%s.revision: missing", path);
		if (route_rev_index(r, label) >= 0)
			return gerr_set(err, "%s.revision: '%s' is repeated", path, label);
		if (!json_object_get(jr, "weight"))
			return gerr_set(err, "%s.weight: missing", path);
		if (get_int(jr, "weight", path, 0, 100, &w, err) < 0)
			return -1;
		rv->revision = xstrdup(label);
		rv->ms = metric_series_get(r->service, r->environment, label);
		rv->weight = w;
		r->nrevs = i + 1;
		if (parse_tags(r, rv, json_object_get(jr, "tags"), path, err) < 0)
			return -1;
		bks = json_object_get(jr, "backends");
		if (!bks || json_is_null(bks))
			continue;
		if (!json_is_array(bks))
			return type_err(err, path, ".backends", "an array", bks);
		json_array_foreach(bks, j, jb) {
			char bpath[128];
			const char *addr;
			snprintf(bpath, sizeof(bpath), "%s.backends[%zu]", path, j);
			if (get_address(jb, bpath, &addr, err) < 0 ||
			    add_backend(r, rv, json_array_size(bks), bpath, addr, 1, err) < 0)
				return -1;
		}
	}
	return 0;
}

static int parse_rules(struct route *r, size_t ri, const json_t *rules, struct gerr *err)
{
	size_t i;
	const json_t *jr;
	char path[96];

	snprintf(path, sizeof(path), "routes[%zu]", ri);
	if (!rules || json_is_null(rules))
		return 0;
	if (!json_is_array(rules))
		return type_err(err, path, ".header_rules", "an array", rules);
	r->rules = xcalloc(json_array_size(rules) + 1, sizeof(*r->rules));
	json_array_foreach(rules, i, jr) {
		char p[128], buf[32], *low;
		const char *name, *value, *label;
		const json_t *pre;
		struct route_hrule *h;
		int rev;

		snprintf(p, sizeof(p), "routes[%zu].header_rules[%zu]", ri, i);
		if (!json_is_object(jr))
			return type_err(err, p, "", "an object", jr);
		if (opt_string(jr, "header", p, &name, err) < 0 || opt_string(jr, "value", p, &value, err) < 0 ||
		    rev_label(json_object_get(jr, "revision"), p, ".revision", buf, sizeof(buf), &label, err) < 0)
			return -1;
		if (!name || !*name || strlen(name) > 128 || strpbrk(name, " \t:\r\n"))
			return gerr_set(err, "%s.header: missing or not a header name", p);
		if (!value)
			return gerr_set(err, "%s.value: missing", p);
		if (!label)
			return gerr_set(err, "%s.revision: missing", p);
		rev = route_rev_index(r, label);
		if (rev < 0)
			return gerr_set(err, "%s.revision: '%s' is not a revision of this route", p, label);
		pre = json_object_get(jr, "prefix");
		if (pre && !json_is_boolean(pre))
			return type_err(err, p, ".prefix", "a boolean", pre);
		low = xstrdup(name);
		for (char *q = low; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
		h = &r->rules[r->nrules++];
		h->name = low;
		h->value = xstrdup(value);
		h->prefix = pre && json_is_true(pre);
		h->rev = rev;
	}
	return 0;
}

static int parse_sticky_shield(struct route *r, size_t ri, const json_t *jr, struct gerr *err)
{
	const json_t *st = json_object_get(jr, "sticky"), *sh = json_object_get(jr, "shield");
	char path[96];

	if (st && !json_is_null(st)) {
		const char *cookie;
		json_int_t age = 0;
		snprintf(path, sizeof(path), "routes[%zu].sticky", ri);
		if (!json_is_object(st))
			return type_err(err, path, "", "an object", st);
		if (opt_string(st, "cookie", path, &cookie, err) < 0 ||
		    get_int(st, "max_age_s", path, 0, 400LL * 86400, &age, err) < 0)
			return -1;
		if (!cookie)
			cookie = "gantry_rev";
		if (!*cookie || strlen(cookie) > 64 ||
		    strspn(cookie, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(cookie))
			return gerr_set(err, "%s.cookie: '%s' is not a cookie name", path, cookie);
		r->sticky_cookie = xstrdup(cookie);
		r->sticky_max_age = age;
	}
	r->shield_canary = r->shield_stable = -1;
	if (sh && !json_is_null(sh)) {
		char b1[32], b2[32];
		const char *canary, *stable;
		snprintf(path, sizeof(path), "routes[%zu].shield", ri);
		if (!json_is_object(sh))
			return type_err(err, path, "", "an object", sh);
		if (rev_label(json_object_get(sh, "canary"), path, ".canary", b1, sizeof(b1), &canary, err) < 0 ||
		    rev_label(json_object_get(sh, "stable"), path, ".stable", b2, sizeof(b2), &stable, err) < 0)
			return -1;
		if (!canary || !stable)
			return gerr_set(err, "%s: needs both canary and stable", path);
		r->shield_canary = route_rev_index(r, canary);
		r->shield_stable = route_rev_index(r, stable);
		if (r->shield_canary < 0)
			return gerr_set(err, "%s.canary: '%s' is not a revision of this route", path, canary);
		if (r->shield_stable < 0)
			return gerr_set(err, "%s.stable: '%s' is not a revision of this route", path, stable);
		if (r->shield_canary == r->shield_stable)
			return gerr_set(err, "%s: canary and stable are the same revision", path);
	}
	return 0;
}
/*
 * "health_check": {"path", "interval_ms", "timeout_ms", "fall", "rise"}.
 * Unlike the rest of the file, unknown keys are errors here: a misspelt
 * interval would otherwise silently check at the default rate.
 */
static int parse_health_check(struct route *r, size_t ri, const json_t *hc, struct gerr *err)
{
	static const char *const known[] = { "path", "interval_ms", "timeout_ms", "fall", "rise" };
	json_int_t interval = ROUTE_HC_INTERVAL_MS, timeout = ROUTE_HC_TIMEOUT_MS;
	json_int_t fall = ROUTE_HC_FALL, rise = ROUTE_HC_RISE;
	const char *key, *hpath;
	const json_t *v;
	char path[96];
	size_t n;

	if (!hc || json_is_null(hc))
		return 0;
	snprintf(path, sizeof(path), "routes[%zu].health_check", ri);
	if (!json_is_object(hc))
		return type_err(err, path, "", "an object", hc);
	json_object_foreach((json_t *)hc, key, v) {
		size_t k;
		for (k = 0; k < ARRAY_SIZE(known); k++)
			if (!strcmp(key, known[k]))
				break;
		if (k == ARRAY_SIZE(known))
			return gerr_set(err, "%s: unknown key '%s' (known: path, interval_ms, timeout_ms, fall, rise)",
					path, key);
	}
	if (opt_string(hc, "path", path, &hpath, err) < 0)
		return -1;
	if (!hpath)
		return gerr_set(err, "%s.path: missing", path);
	n = strlen(hpath);
	if (!n || hpath[0] != '/' || n > 1024)
		return gerr_set(err, "%s.path: '%.64s' is not a path (it starts with '/', at most 1024 bytes)",
				path, hpath);
	for (size_t i = 0; i < n; i++)
		if (hpath[i] <= ' ' || hpath[i] == 0x7f)
			return gerr_set(err, "%s.path: spaces and control characters are not allowed", path);
	if (get_int(hc, "interval_ms", path, 100, 3600000, &interval, err) < 0 ||
	    get_int(hc, "timeout_ms", path, 10, 3600000, &timeout, err) < 0 ||
	    get_int(hc, "fall", path, 1, 100, &fall, err) < 0 ||
	    get_int(hc, "rise", path, 1, 100, &rise, err) < 0)
		return -1;
	if (timeout > interval)
		return gerr_set(err, "%s.timeout_ms: %lld is longer than interval_ms (%lld)", path,
				(long long)timeout, (long long)interval);
	r->hc.path = xstrdup(hpath);
	r->hc.interval_ms = interval;
	r->hc.timeout_ms = timeout;
	r->hc.fall = (int)fall;
	r->hc.rise = (int)rise;
	return 0;
}

/*
 * "maintenance": {"message", "retry_after_s", "allow_headers": [{"header",
 * "value"}]} (proxy/maint.h). Unknown keys are errors, as in health_check:
 * a misspelt allow_headers would lock out the people it should let in.
 * The answers are built here, once per load.
 */
static int parse_maintenance(struct route *r, size_t ri, const json_t *jm, struct gerr *err)
{
	static const char *const known[] = { "message", "retry_after_s", "allow_headers" };
	json_int_t retry = MAINT_RETRY_AFTER_DEFAULT;
	const json_t *v, *ah;
	const char *key, *msg;
	struct gerr e2;
	char path[96];
	size_t i;

	if (!jm || json_is_null(jm) || json_is_false(jm))
		return 0;
	snprintf(path, sizeof(path), "routes[%zu].maintenance", ri);
	if (!json_is_object(jm))
		return type_err(err, path, "", "an object", jm);
	json_object_foreach((json_t *)jm, key, v) {
		size_t k;
		for (k = 0; k < ARRAY_SIZE(known); k++)
			if (!strcmp(key, known[k]))
				break;
		if (k == ARRAY_SIZE(known))
			return gerr_set(err, "%s: unknown key '%s' (known: message, retry_after_s, allow_headers)", path,
					key);
	}
	if (opt_string(jm, "message", path, &msg, err) < 0 ||
	    get_int(jm, "retry_after_s", path, 1, MAINT_RETRY_AFTER_MAX, &retry, err) < 0)
		return -1;
	if (msg && maint_check_message(msg, &e2) < 0)
		return gerr_set(err, "%s.message: %s", path, e2.msg);
	ah = json_object_get(jm, "allow_headers");
	if (ah && !json_is_null(ah)) {
		if (!json_is_array(ah))
			return type_err(err, path, ".allow_headers", "an array", ah);
		if (json_array_size(ah) > MAINT_HEADERS_MAX)
			return gerr_set(err, "%s.allow_headers: %zu headers (at most %d)", path, json_array_size(ah),
					MAINT_HEADERS_MAX);
		r->maint.allow = xcalloc(json_array_size(ah) + 1, sizeof(*r->maint.allow));
		json_array_foreach(ah, i, v) {
			char p[160];
			const char *name, *value;
			struct maint_allow *a;
			snprintf(p, sizeof(p), "%s.allow_headers[%zu]", path, i);
			if (!json_is_object(v))
				return type_err(err, p, "", "an object", v);
			if (opt_string(v, "header", p, &name, err) < 0 || opt_string(v, "value", p, &value, err) < 0)
				return -1;
			if (!name)
				return gerr_set(err, "%s.header: missing", p);
			if (!value)
				return gerr_set(err, "%s.value: missing", p);
			if (maint_check_header_name(name, &e2) < 0)
				return gerr_set(err, "%s.header: %s", p, e2.msg);
			if (maint_check_header_value(value, &e2) < 0)
				return gerr_set(err, "%s.value: %s", p, e2.msg);
			a = &r->maint.allow[r->maint.nallow++];
			a->name = lower_dup(name);
			a->value = xstrdup(value);
			a->vlen = strlen(value);
		}
	}
	r->maint.on = true;
	r->maint.message = msg ? xstrdup(msg) : NULL;
	r->maint.retry_after_s = (int)retry;
	maint_build(&r->maint);
	return 0;
}

/*
 * Checks host h (routes[ri].hosts[hi]) and, when insert is set, adds it for
 * route r. *owner is set to the index of an earlier route that already has
 * the host (nothing is added then), else to -1.
 */
static int add_host(struct route_table *t, struct route *r, size_t ri, size_t hi, const char *h,
		    bool insert, ssize_t *owner, size_t *cap_exact, size_t *cap_wild, struct gerr *err)
{
	char lower[256], norm[256];
	size_t n = strlen(h);
	struct route_host **arr;
	size_t *cnt, *cap;
	const char *key = lower;

	*owner = -1;
	if (!n || n >= sizeof(lower))
		return gerr_set(err, "routes[%zu].hosts[%zu]: empty or too long", ri, hi);
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] - 'A' + 'a' : h[i]);
	if (!strcmp(lower, "*")) {
		if (t->any)
			*owner = t->any - t->routes;
		else if (insert)
			t->any = r;
		return 0;
	}
	if (lower[0] == '*') {
		if (lower[1] != '.' || !lower[2])
			return gerr_set(err, "routes[%zu].hosts[%zu]: '%s': a wildcard must look like '*.example.com'",
					ri, hi, h);
		key = lower + 1; /* ".example.com" */
		arr = &t->wild;
		cnt = &t->nwild;
		cap = cap_wild;
	} else {
		arr = &t->exact;
		cnt = &t->nexact;
		cap = cap_exact;
	}
	/* the same rules as a request's Host, and no port */
	if (http_host_normalize(key, strlen(key), norm, sizeof(norm)) < 0 || strcmp(norm, key))
		return gerr_set(err, "routes[%zu].hosts[%zu]: '%s' is not a host name (no port, no '*' inside)",
				ri, hi, h);
	for (size_t i = 0; i < *cnt; i++)
		if (!strcmp((*arr)[i].host, key)) {
			*owner = (*arr)[i].route - t->routes;
			return 0;
		}
	if (!insert)
		return 0;
	if (*cnt == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*arr = xrealloc(*arr, *cap * sizeof(**arr));
	}
	(*arr)[*cnt].host = xstrdup(key);
	(*arr)[*cnt].route = r;
	(*cnt)++;
	return 0;
}

/*
 * The hosts of routes[ri]: all of them are added, or, when one is already
 * an earlier route's, none (*clash: its index in hosts, else -1; *owner:
 * that route).
 */
static int add_hosts(struct route_table *t, struct route *r, size_t ri, const json_t *hosts, ssize_t *clash,
		     ssize_t *owner, size_t *cap_exact, size_t *cap_wild, struct gerr *err)
{
	const json_t *v;
	size_t i;

	*clash = *owner = -1;
	json_array_foreach(hosts, i, v) {
		ssize_t o;
		if (!json_is_string(v)) {
			char p[96];
			snprintf(p, sizeof(p), "routes[%zu].hosts[%zu]", ri, i);
			return type_err(err, p, "", "a string", v);
		}
		for (size_t k = 0; k < i; k++)
			if (!strcasecmp(json_string_value(json_array_get(hosts, k)), json_string_value(v)))
				return gerr_set(err, "routes[%zu].hosts[%zu]: '%s' is already listed in this route",
						ri, i, json_string_value(v));
		if (add_host(t, r, ri, i, json_string_value(v), false, &o, cap_exact, cap_wild, err) < 0)
			return -1;
		if (o >= 0 && *clash < 0) {
			*clash = (ssize_t)i;
			*owner = o;
		}
	}
	if (*clash >= 0)
		return 0;
	json_array_foreach(hosts, i, v) {
		ssize_t o;
		if (add_host(t, r, ri, i, json_string_value(v), true, &o, cap_exact, cap_wild, err) < 0)
			return -1;
	}
	return 0;
}

static int parse_route(struct route_table *t, size_t ri, const json_t *jr,
		       size_t *cap_exact, size_t *cap_wild, struct gerr *err)
{
	char path[64];
	const json_t *hosts, *backends, *revs;
	const char *svc, *env;
	struct route *r = &t->routes[ri];
	ssize_t clash, owner;

	snprintf(path, sizeof(path), "routes[%zu]", ri);
	r->shield_canary = r->shield_stable = -1;
	if (!json_is_object(jr))
		return type_err(err, path, "", "an object", jr);
	if (opt_string(jr, "service", path, &svc, err) < 0 ||
	    opt_string(jr, "environment", path, &env, err) < 0)
		return -1;
	r->service = xstrdup(svc ? svc : "");
	r->environment = xstrdup(env ? env : "");
	r->ms = metric_series_get(r->service, r->environment, "");
	t->nroutes = ri + 1;

	hosts = json_object_get(jr, "hosts");
	if (!hosts)
		return gerr_set(err, "%s.hosts: missing", path);
	if (!json_is_array(hosts))
		return type_err(err, path, ".hosts", "an array", hosts);
	if (add_hosts(t, r, ri, hosts, &clash, &owner, cap_exact, cap_wild, err) < 0)
		return -1;

	backends = json_object_get(jr, "backends");
	revs = json_object_get(jr, "revisions");
	if (backends && !json_is_null(backends) && revs && !json_is_null(revs))
		return gerr_set(err, "%s: has both backends and revisions (use one form)", path);
	if (revs && !json_is_null(revs)) {
		if (!json_is_array(revs))
			return type_err(err, path, ".revisions", "an array", revs);
		if (parse_revisions(r, ri, revs, err) < 0)
			return -1;
	} else if (backends && !json_is_null(backends)) {
		if (!json_is_array(backends))
			return type_err(err, path, ".backends", "an array", backends);
		if (parse_flat(r, ri, backends, err) < 0)
			return -1;
	}
	if (parse_tag_hosts(r, ri, json_object_get(jr, "tag_hosts"), err) < 0 ||
	    parse_rules(r, ri, json_object_get(jr, "header_rules"), err) < 0 ||
	    parse_health_check(r, ri, json_object_get(jr, "health_check"), err) < 0 ||
	    parse_maintenance(r, ri, json_object_get(jr, "maintenance"), err) < 0 ||
	    parse_sticky_shield(r, ri, jr, err) < 0)
		return -1;
	if (clash >= 0) {
		/* valid, but another route has one of its hosts: left out, no backends, no checks */
		struct route_drop *d;
		t->dropped = xrealloc(t->dropped, (t->ndropped + 1) * sizeof(*t->dropped));
		d = &t->dropped[t->ndropped++];
		d->route = ri;
		d->kept_by = (size_t)owner;
		d->host = lower_dup(json_string_value(json_array_get(hosts, (size_t)clash)));
		d->service = xstrdup(r->service);
		d->environment = xstrdup(r->environment);
		route_release_revs(r);
	}
	return 0;
}

/* numbers the per-worker slots and allocates them */
static void alloc_slots(struct route_table *t)
{
	unsigned n = 0, stride;
	for (size_t i = 0; i < t->nroutes; i++)
		for (size_t k = 0; k < t->routes[i].nrevs; k++) {
			struct route_rev *rv = &t->routes[i].revs[k];
			rv->slot = n;
			n += 2;
			if (rv->weighted) {
				rv->bslot = n;
				n += (unsigned)rv->nbackends;
			}
		}
	t->nslots = n;
	stride = (n + 7) & ~7u; /* a cache line per worker at least */
	if (!stride)
		stride = 8;
	t->ws = proxy__calloc_aligned((size_t)proxy_nworkers, sizeof(*t->ws));
	t->slotmem = proxy__calloc_aligned((size_t)proxy_nworkers * stride, sizeof(int64_t));
	for (int w = 0; w < proxy_nworkers; w++)
		t->ws[w].st = t->slotmem + (size_t)w * stride;
}

/*
 * "trusted_proxies": "CIDR,..." (as --trusted-proxies) or ["CIDR", ...];
 * "" or [] is an empty set that overrides the flag.
 */
static int parse_trusted(struct route_table *t, const json_t *v, struct gerr *err)
{
	char bad[80];
	const json_t *it;
	size_t i;

	t->has_trusted = true;
	if (json_is_string(v)) {
		if (cidr_set_add_list(&t->trusted, json_string_value(v), bad, sizeof(bad)) < 0)
			return gerr_set(err, "trusted_proxies: '%s' " CIDR_EXPECTED, bad);
		return 0;
	}
	if (!json_is_array(v))
		return type_err(err, "trusted_proxies", "", "a string or an array of strings", v);
	json_array_foreach(v, i, it) {
		struct cidr c;
		const char *s = json_string_value(it);
		if (!s)
			return gerr_set(err, "trusted_proxies[%zu]: expected a string, got %s", i, jtype(it));
		if (cidr_parse(s, strlen(s), &c) < 0)
			return gerr_set(err, "trusted_proxies[%zu]: '%s' " CIDR_EXPECTED, i, s);
		cidr_set_add(&t->trusted, &c);
	}
	return 0;
}

struct route_table *route_table_parse(const char *text, size_t len, const char *name,
				      struct gerr *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	struct route_table *t = NULL;
	const json_t *routes, *v;
	size_t cap_exact = 0, cap_wild = 0, i;

	if (!root) {
		gerr_set(err, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
		goto out;
	}
	t = xcalloc(1, sizeof(*t));
	atomic_init(&t->refs, 1);
	if (!json_is_object(root)) {
		type_err(err, "(top level)", "", "an object", root);
		goto fail;
	}
	v = json_object_get(root, "generation");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			if (json_is_integer(v))
				gerr_set(err, "generation: must not be negative");
			else
				type_err(err, "generation", "", "an integer", v);
			goto fail;
		}
		t->generation = json_integer_value(v);
	}
	t->forward_headers = -1;
	v = json_object_get(root, "forward_headers");
	if (v) {
		unsigned fwd;
		char bad[80];
		if (!json_is_string(v)) {
			type_err(err, "forward_headers", "", "a string", v);
			goto fail;
		}
		if (proxy_parse_forward_headers(json_string_value(v), &fwd, bad, sizeof(bad)) < 0) {
			gerr_set(err, "forward_headers: '%s' " PROXY_FWD_EXPECTED, bad);
			goto fail;
		}
		t->forward_headers = (int)fwd;
	}
	v = json_object_get(root, "trusted_proxies");
	if (v && parse_trusted(t, v, err) < 0)
		goto fail;
	routes = json_object_get(root, "routes");
	if (!routes) {
		gerr_set(err, "routes: missing");
		goto fail;
	}
	if (!json_is_array(routes)) {
		type_err(err, "routes", "", "an array", routes);
		goto fail;
	}
	t->routes = xcalloc(json_array_size(routes) + 1, sizeof(*t->routes));
	json_array_foreach(routes, i, v)
		if (parse_route(t, i, v, &cap_exact, &cap_wild, err) < 0)
			goto fail;
	if (t->nexact)
		qsort(t->exact, t->nexact, sizeof(*t->exact), cmp_exact);
	if (t->nwild)
		qsort(t->wild, t->nwild, sizeof(*t->wild), cmp_wild);
	alloc_slots(t);
	goto out;
fail:
	free_routes(t);
	t = NULL;
out:
	json_decref(root);
	return t;
}

struct route_table *route_table_load(const char *path, struct gerr *err)
{
	FILE *f = fopen(path, "rb");
	struct route_table *t = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	const size_t max = 16u << 20;

	if (!f) {
		gerr_set(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= max) {
				gerr_set(err, "%s: larger than %zu bytes", path, max);
				goto out;
			}
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len, f);
		if (!n)
			break;
		len += n;
	}
	if (ferror(f)) {
		gerr_set(err, "%s: read error", path);
		goto out;
	}
	t = route_table_parse(buf ? buf : "", len, path, err);
out:
	if (f)
		fclose(f);
	free(buf);
	return t;
}

void route_table_ref(struct route_table *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void route_table_unref(struct route_table *t)
{
	if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		free_routes(t);
}

void route_table_wref(struct route_table *t, int worker)
{
	if (t->ws[worker].refs++ == 0)
		route_table_ref(t);
}

void route_table_wunref(struct route_table *t, int worker)
{
	if (t && --t->ws[worker].refs == 0)
		route_table_unref(t);
}

struct route *route_match(const struct route_table *t, const char *host)
{
	struct route_host key = { .host = (char *)host }, *hit;
	size_t hl = strlen(host);

	if (t->nexact) {
		hit = bsearch(&key, t->exact, t->nexact, sizeof(*t->exact), cmp_exact);
		if (hit)
			return hit->route;
	}
	for (size_t i = 0; i < t->nwild; i++) {
		size_t sl = strlen(t->wild[i].host);
		if (hl > sl && !memcmp(host + hl - sl, t->wild[i].host, sl))
			return t->wild[i].route;
	}
	return t->any;
}

int route_rev_index(const struct route *r, const char *revision)
{
	for (size_t i = 0; i < r->nrevs; i++)
		if (!strcmp(r->revs[i].revision, revision))
			return (int)i;
	return -1;
}

int route_tag_index(const struct route *r, const char *tag, size_t len)
{
	for (size_t i = 0; i < r->nrevs; i++)
		for (size_t j = 0; j < r->revs[i].ntags; j++)
			if (strlen(r->revs[i].tags[j]) == len && !strncasecmp(r->revs[i].tags[j], tag, len))
				return (int)i;
	return -1;
}

bool route_tag_host_on(const struct route *r, const char *tag, size_t len)
{
	if (r->tag_hosts_all)
		return true;
	for (size_t i = 0; i < r->nhost_tags; i++)
		if (strlen(r->host_tags[i]) == len && !strncasecmp(r->host_tags[i], tag, len))
			return true;
	return false;
}

struct route *route_lookup(const struct route_table *t, const char *host, int *tag_rev)
{
	const char *sep = strstr(host, "---");
	*tag_rev = -1;
	if (sep && sep > host) {
		struct route *r = route_match(t, sep + 3);
		int idx = r && route_tag_host_on(r, host, (size_t)(sep - host)) ?
				  route_tag_index(r, host, (size_t)(sep - host)) : -1;
		if (idx >= 0) {
			*tag_rev = idx;
			return r;
		}
	}
	return route_match(t, host);
}

/* a backend that may take requests now: weight > 0, not ejected, not failing its checks */
static bool rev_healthy(const struct route_rev *rv, uint64_t now_ms)
{
	for (size_t i = 0; i < rv->nbackends; i++)
		if (rv->backends[i].weight && backend_usable(rv->backends[i].be, now_ms))
			return true;
	return false;
}

static bool rev_has_weighted_backend(const struct route_rev *rv)
{
	for (size_t i = 0; i < rv->nbackends; i++)
		if (rv->backends[i].weight)
			return true;
	return false;
}

int route_pick_rev(struct route_table *t, struct route *r, int worker, uint64_t now_ms)
{
	int64_t *st = t->ws[worker].st;
	/* pass 0: revisions with a healthy backend; 1: any with a backend */
	for (int pass = 0; pass < 2; pass++) {
		struct route_rev *best = NULL;
		int64_t total = 0;
		for (size_t i = 0; i < r->nrevs; i++) {
			struct route_rev *rv = &r->revs[i];
			if (!rv->weight || !rev_has_weighted_backend(rv))
				continue;
			if (pass == 0 && !rev_healthy(rv, now_ms))
				continue;
			st[rv->slot] += rv->weight;
			total += rv->weight;
			if (!best || st[rv->slot] > st[best->slot])
				best = rv;
		}
		if (best) {
			st[best->slot] -= total;
			return (int)(best - r->revs);
		}
	}
	return -1;
}

struct backend *route_pick_backend(struct route_table *t, struct route_rev *rv, int worker,
				   uint64_t now_ms, const struct backend *avoid)
{
	int64_t *st = t->ws[worker].st;
	size_t n = rv->nbackends;

	/* pass 0: healthy and not `avoid`; 1: healthy; 2: anything with weight */
	for (int pass = 0; pass < 3; pass++) {
		struct route_backend *best = NULL;
		int64_t total = 0, best_load = 0;
		size_t start = rv->weighted ? 0 : (size_t)st[rv->slot + 1] % (n ? n : 1), bi = 0;
		for (size_t k = 0; k < n; k++) {
			size_t i = (start + k) % n;
			struct route_backend *rb = &rv->backends[i];
			if (!rb->weight)
				continue;
			if (pass < 2 && !backend_usable(rb->be, now_ms))
				continue;
			if (pass < 1 && rb->be == avoid)
				continue;
			if (rv->weighted) {
				int64_t *cw = &st[rv->bslot + i];
				*cw += rb->weight;
				total += rb->weight;
				if (!best || *cw > st[rv->bslot + bi]) {
					best = rb;
					bi = i;
				}
			} else {
				int64_t load = CTR_GET(rb->be->w[worker].inflight);
				if (!best || load < best_load) {
					best = rb;
					best_load = load;
					bi = i;
				}
			}
		}
		if (best) {
			if (rv->weighted)
				st[rv->bslot + bi] -= total;
			else
				st[rv->slot + 1] = (int64_t)(bi + 1);
			return best->be;
		}
	}
	return NULL;
}

struct backend *route_pick(struct route_table *t, struct route *r, uint64_t now_ms,
			   const struct backend *avoid)
{
	int rev = route_pick_rev(t, r, 0, now_ms);
	return rev < 0 ? NULL : route_pick_backend(t, &r->revs[rev], 0, now_ms, avoid);
}

/* the value of cookie name in the request's Cookie headers, or NULL */
static const char *find_cookie(const struct http_msg *m, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	for (int i = -1; (i = http_find_header(m, "cookie", i + 1)) >= 0;) {
		const char *p = http_span_ptr(m, m->hdr[i].value);
		const char *end = p + m->hdr[i].value.len;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p)), *stop = semi ? semi : end;
			while (p < stop && (*p == ' ' || *p == '\t'))
				p++;
			if ((size_t)(stop - p) > nl && !memcmp(p, name, nl) && p[nl] == '=') {
				const char *v = p + nl + 1, *ve = stop;
				while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
					ve--;
				if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') {
					v++;
					ve--;
				}
				*vlen = (size_t)(ve - v);
				return v;
			}
			p = semi ? semi + 1 : end;
		}
	}
	return NULL;
}

void route_choose(struct route_table *t, struct route *r, int worker, const struct http_msg *m,
		  int tag_rev, uint64_t now_ms, struct route_choice *out)
{
	int i;

	out->rev = -1;
	out->why = ROUTE_BY_WEIGHT;
	out->set_cookie = false;
	out->status = 0;
	for (size_t k = 0; k < r->nrules; k++) {
		const struct route_hrule *h = &r->rules[k];
		size_t vl = strlen(h->value);
		for (i = -1; (i = http_find_header(m, h->name, i + 1)) >= 0;) {
			struct http_span v = m->hdr[i].value;
			if (h->prefix ? v.len >= vl && !memcmp(http_span_ptr(m, v), h->value, vl)
				      : v.len == vl && !memcmp(http_span_ptr(m, v), h->value, vl)) {
				out->rev = h->rev;
				out->why = ROUTE_BY_HEADER;
				return;
			}
		}
	}
	if (tag_rev < 0 && (i = http_find_header(m, "x-gantry-tag", 0)) >= 0) {
		tag_rev = route_tag_index(r, http_span_ptr(m, m->hdr[i].value), m->hdr[i].value.len);
		if (tag_rev < 0) {
			out->status = 404;
			return;
		}
	}
	if (tag_rev >= 0) {
		out->rev = tag_rev;
		out->why = ROUTE_BY_TAG;
		return;
	}
	if (r->sticky_cookie) {
		size_t vl = 0;
		const char *v = find_cookie(m, r->sticky_cookie, &vl);
		if (v && vl < 64) {
			char label[64];
			int rev;
			memcpy(label, v, vl);
			label[vl] = 0;
			rev = route_rev_index(r, label);
			/* kept only while that revision still gets traffic */
			if (rev >= 0 && r->revs[rev].weight > 0 && rev_healthy(&r->revs[rev], now_ms)) {
				out->rev = rev;
				out->why = ROUTE_BY_STICKY;
				return;
			}
		}
		out->set_cookie = true;
	}
	out->rev = route_pick_rev(t, r, worker, now_ms);
	if (out->rev < 0)
		out->set_cookie = false;
}
