/*
 * route.c — route table parsing (jansson), host matching and the smooth
 * weighted round-robin balancer.
 */
#include "common.h"
#include "proxy/route.h"
#include "http/http.h"
#include <jansson.h>

#define MAX_WEIGHT 1000000

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

static void free_routes(struct route_table *t)
{
	for (size_t i = 0; i < t->nroutes; i++) {
		struct route *r = &t->routes[i];
		for (size_t j = 0; j < r->nbackends; j++)
			backend_put(r->backends[j].be);
		free(r->backends);
		free(r->service);
		free(r->environment);
	}
	for (size_t i = 0; i < t->nexact; i++)
		free(t->exact[i].host);
	for (size_t i = 0; i < t->nwild; i++)
		free(t->wild[i].host);
	free(t->exact);
	free(t->wild);
	free(t->routes);
	free(t);
}

static int parse_backend(struct route *r, size_t ri, size_t bi, const json_t *jb, struct gerr *err)
{
	char path[128];
	const json_t *v;
	const char *addr, *rev = NULL;
	char revbuf[32];
	json_int_t w = 1;
	struct route_backend *rb = &r->backends[bi];

	snprintf(path, sizeof(path), "routes[%zu].backends[%zu]", ri, bi);
	if (!json_is_object(jb))
		return type_err(err, path, "", "an object", jb);
	v = json_object_get(jb, "address");
	if (!v)
		return gerr_set(err, "%s.address: missing", path);
	if (!json_is_string(v))
		return type_err(err, path, ".address", "a string", v);
	addr = json_string_value(v);
	v = json_object_get(jb, "weight");
	if (v) {
		if (!json_is_integer(v))
			return type_err(err, path, ".weight", "an integer", v);
		w = json_integer_value(v);
		if (w < 0 || w > MAX_WEIGHT)
			return gerr_set(err, "%s.weight: %lld is out of range 0..%d", path,
					(long long)w, MAX_WEIGHT);
	}
	v = json_object_get(jb, "revision");
	if (v && json_is_integer(v)) {
		snprintf(revbuf, sizeof(revbuf), "%lld", (long long)json_integer_value(v));
		rev = revbuf;
	} else if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return type_err(err, path, ".revision", "a string", v);
		rev = json_string_value(v);
	}
	rb->be = backend_get(addr, r->service, r->environment, rev, err);
	if (!rb->be) {
		struct gerr e2 = *err;
		return gerr_set(err, "%s.address: %s", path, e2.msg);
	}
	rb->weight = (int)w;
	rb->cw = 0;
	r->nbackends = bi + 1;
	return 0;
}

static int add_host(struct route_table *t, struct route *r, size_t ri, size_t hi,
		    const char *h, size_t *cap_exact, size_t *cap_wild, struct gerr *err)
{
	char lower[256], norm[256];
	size_t n = strlen(h);
	struct route_host **arr;
	size_t *cnt, *cap;
	const char *key = lower;

	if (!n || n >= sizeof(lower))
		return gerr_set(err, "routes[%zu].hosts[%zu]: empty or too long", ri, hi);
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] - 'A' + 'a' : h[i]);
	if (!strcmp(lower, "*")) {
		if (t->any)
			return gerr_set(err, "routes[%zu].hosts[%zu]: '*' is already used by routes[%zu]",
					ri, hi, (size_t)(t->any - t->routes));
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
		if (!strcmp((*arr)[i].host, key))
			return gerr_set(err, "routes[%zu].hosts[%zu]: '%s' is already used by routes[%zu]",
					ri, hi, h, (size_t)((*arr)[i].route - t->routes));
	if (*cnt == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*arr = xrealloc(*arr, *cap * sizeof(**arr));
	}
	(*arr)[*cnt].host = xstrdup(key);
	(*arr)[*cnt].route = r;
	(*cnt)++;
	return 0;
}

static int parse_route(struct route_table *t, size_t ri, const json_t *jr,
		       size_t *cap_exact, size_t *cap_wild, struct gerr *err)
{
	char path[64];
	const json_t *hosts, *backends, *v;
	const char *svc, *env;
	struct route *r = &t->routes[ri];
	size_t i;

	snprintf(path, sizeof(path), "routes[%zu]", ri);
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
	json_array_foreach(hosts, i, v) {
		if (!json_is_string(v)) {
			char p[96];
			snprintf(p, sizeof(p), "%s.hosts[%zu]", path, i);
			return type_err(err, p, "", "a string", v);
		}
		if (add_host(t, r, ri, i, json_string_value(v), cap_exact, cap_wild, err) < 0)
			return -1;
	}

	backends = json_object_get(jr, "backends");
	if (!backends || json_is_null(backends))
		return 0;
	if (!json_is_array(backends))
		return type_err(err, path, ".backends", "an array", backends);
	r->backends = xcalloc(json_array_size(backends) + 1, sizeof(*r->backends));
	json_array_foreach(backends, i, v)
		if (parse_backend(r, ri, i, v, err) < 0)
			return -1;
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
	t->refs = 1;
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
	t->refs++;
}

void route_table_unref(struct route_table *t)
{
	if (t && --t->refs == 0)
		free_routes(t);
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

struct backend *route_pick(struct route *r, uint64_t now_ms, const struct backend *avoid)
{
	/* pass 0: healthy and not `avoid`; 1: healthy; 2: anything with weight */
	for (int pass = 0; pass < 3; pass++) {
		struct route_backend *best = NULL;
		int total = 0;
		for (size_t i = 0; i < r->nbackends; i++) {
			struct route_backend *rb = &r->backends[i];
			if (!rb->weight)
				continue;
			if (pass < 2 && backend_ejected(rb->be, now_ms))
				continue;
			if (pass < 1 && rb->be == avoid)
				continue;
			rb->cw += rb->weight;
			total += rb->weight;
			if (!best || rb->cw > best->cw)
				best = rb;
		}
		if (best) {
			best->cw -= total;
			return best->be;
		}
	}
	return NULL;
}
