/*
 * spec_hosts.c — no two (service, environment) pairs of a spec route the
 * same host.
 *
 * The proxy has one table for every environment, so a host pattern names at
 * most one service environment. Its matching order (src/proxy/route.c:
 * route_match) settles every overlap between *different* patterns: an exact
 * name first, then "*.suffix" wildcards, the longest suffix first, then "*".
 * An exact host therefore always wins over a wildcard that covers it, and a
 * longer wildcard over a shorter one. The rule is then:
 *
 *   the same pattern (an exact name, the same "*.suffix", or "*") resolved
 *   for two pairs is an error; different patterns that overlap are allowed.
 *
 * Where a resolved host comes from (resolve_into in spec.c): the list
 * services.S.environments.E.hosts when given, else services.S.hosts, else
 * environments.E.hosts; then the default S.E.localhost. A list that several
 * pairs resolve to (services.S.hosts in two environments, environments.E.hosts
 * inherited by two services) collides with itself: reported once, at the
 * list's first host.
 *
 * Pure: the spec tree and spec_resolve, no I/O.
 */
#include "common.h"
#include "core/spec.h"

enum origin { FROM_OVERRIDE, FROM_SERVICE, FROM_ENV, FROM_DEFAULT };

struct claim {
	const char *host;              /* borrowed from the tree, or = owned */
	char *owned;                   /* the default host */
	size_t svc, env;               /* indexes into spec->services, spec->envs */
	enum origin from;
	const struct spec_node *item;  /* the host's node; NULL for the default */
	size_t index;                  /* its index in its list */
	size_t seq;                    /* claiming order: services, then environments, in file order */
};

struct hck {
	const struct spec *spec;
	const char *file, *src;
	size_t srclen;
	struct diags *diags;
	int nerr;
	struct claim *claims;
	size_t n, cap;
};

static const struct spec_node *svc_node(const struct spec *spec, size_t s)
{
	return (const struct spec_node *)spec->services[s].node;
}

/* where claim c is, as a spec path and a position */
static void claim_where(const struct hck *h, const struct claim *c, char *path, size_t len, int *line,
			int *col)
{
	const char *s = h->spec->services[c->svc].name, *e = h->spec->envs[c->env].name;

	switch (c->from) {
	case FROM_OVERRIDE:
		snprintf(path, len, "services.%s.environments.%s.hosts[%zu]", s, e, c->index);
		break;
	case FROM_SERVICE:
		snprintf(path, len, "services.%s.hosts[%zu]", s, c->index);
		break;
	case FROM_ENV:
		snprintf(path, len, "environments.%s.hosts[%zu]", e, c->index);
		break;
	case FROM_DEFAULT:
		snprintf(path, len, "services.%s", s);
		break;
	}
	if (c->item) {
		spec_node_pos(c->item, line, col);
	} else {
		*line = h->spec->services[c->svc].line;
		*col = h->spec->services[c->svc].col;
	}
}

static void report(struct hck *h, const char *path, int line, int col, const char *fmt, ...) PRINTF_LIKE(5, 6);
static void report(struct hck *h, const char *path, int line, int col, const char *fmt, ...)
{
	char msg[1024], src[256];
	va_list ap;

	h->nerr++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diags_add(h->diags, h->file, line, col, path, diag_source_line(h->src, h->srclen, line, src, sizeof(src)),
		  "%s", msg);
}

static void add_claim(struct hck *h, const struct claim *c)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 32;
		h->claims = xrealloc(h->claims, h->cap * sizeof(*h->claims));
	}
	h->claims[h->n] = *c;
	h->claims[h->n].seq = h->n;
	h->n++;
}

/* a list shared by two pairs: every host of it is routed to both */
static void report_shared(struct hck *h, const struct spec_node *list, enum origin from, size_t s, size_t e,
			  size_t s2, size_t e2)
{
	const struct spec *spec = h->spec;
	struct claim c = { .svc = s, .env = e, .from = from, .item = spec_node_item(list, 0) };
	const char *host = spec_node_text(c.item);
	char path[512], more[64] = "";
	int line, col;
	size_t n = spec_node_count(list);

	claim_where(h, &c, path, sizeof(path), &line, &col);
	if (n > 1)
		snprintf(more, sizeof(more), " (and the %zu other host%s of this list)", n - 1, n > 2 ? "s" : "");
	if (from == FROM_SERVICE)
		report(h, path, line, col,
		       "host '%s'%s is routed to both %s@%s and %s@%s: services.%s.hosts applies in every environment "
		       "(give each environment its own under services.%s.environments.ENV.hosts)",
		       host ? host : "", more, spec->services[s].name, spec->envs[e].name, spec->services[s2].name,
		       spec->envs[e2].name, spec->services[s].name, spec->services[s].name);
	else
		report(h, path, line, col,
		       "host '%s'%s is routed to both %s@%s and %s@%s: every service without hosts of its own gets "
		       "environments.%s.hosts (give the others their own under services.SERVICE.hosts)",
		       host ? host : "", more, spec->services[s].name, spec->envs[e].name, spec->services[s2].name,
		       spec->envs[e2].name, spec->envs[e].name);
}

/* the claims of service s in environment e; owner_* remember who took each shared list first */
static void claim_pair(struct hck *h, size_t s, size_t e, size_t *svc_owner, bool *svc_reported,
		       size_t *env_owner, bool *env_reported)
{
	const struct spec *spec = h->spec;
	const struct spec_node *sn = svc_node(spec, s), *list = NULL;
	const struct spec_node *ov = spec_node_get(spec_node_get(sn, "environments"), spec->envs[e].name);
	enum origin from = FROM_DEFAULT;
	struct svc_config c;
	struct gerr err;
	size_t nlist = 0;

	if (spec_resolve(spec, spec->services[s].name, spec->envs[e].name, &c, &err) < 0)
		return; /* reported by the validation proper */
	if ((list = spec_node_get(ov, "hosts"))) {
		from = FROM_OVERRIDE;
	} else if ((list = spec_node_get(sn, "hosts"))) {
		from = FROM_SERVICE;
	} else if ((list = spec_node_get(spec_node_get(spec_node_get(spec_root(spec), "environments"),
						      spec->envs[e].name), "hosts"))) {
		from = FROM_ENV;
	}
	if (list && spec_node_kind(list) == SPEC_NODE_SEQ)
		nlist = spec_node_count(list);
	/* a shared list: only its first pair claims it */
	if (nlist && from == FROM_SERVICE) {
		if (svc_owner[s] != SIZE_MAX) {
			if (!svc_reported[s])
				report_shared(h, list, from, s, svc_owner[s], s, e);
			svc_reported[s] = true;
			nlist = 0;
		} else {
			svc_owner[s] = e;
		}
	} else if (nlist && from == FROM_ENV) {
		if (env_owner[e] != SIZE_MAX) {
			if (!env_reported[e])
				report_shared(h, list, from, env_owner[e], e, s, e);
			env_reported[e] = true;
			nlist = 0;
		} else {
			env_owner[e] = s;
		}
	}
	for (size_t i = 0; i < c.nhosts; i++) {
		struct claim cl = { .svc = s, .env = e, .from = FROM_DEFAULT };
		/* resolution keeps the list's order and appends the default (unless listed) */
		for (size_t k = 0; k < nlist; k++) {
			const struct spec_node *it = spec_node_item(list, (k + i) % nlist);
			const char *t = spec_node_text(it);
			if (t && !strcmp(t, c.hosts[i])) {
				cl.from = from;
				cl.item = it;
				cl.index = (k + i) % nlist;
				cl.host = t;
				break;
			}
		}
		if (cl.from == FROM_DEFAULT) {
			/* a shared list already claimed, or the default host */
			if (nlist == 0 && list && i < spec_node_count(list))
				continue;
			cl.owned = xstrdup(c.hosts[i]);
			cl.host = cl.owned;
		}
		add_claim(h, &cl);
	}
	svc_config_release(&c);
}

static int cmp_claim(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;
	int c = strcmp(x->host, y->host);
	return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* at `at`, host is also routed to `other` */
static void report_clash(struct hck *h, const struct claim *at, const struct claim *other)
{
	const struct spec *spec = h->spec;
	char path[512], opath[512], where[600];
	int line, col, oline, ocol;

	claim_where(h, at, path, sizeof(path), &line, &col);
	claim_where(h, other, opath, sizeof(opath), &oline, &ocol);
	if (other->from == FROM_DEFAULT)
		snprintf(where, sizeof(where), "its default host");
	else
		snprintf(where, sizeof(where), "%s, line %d", opath, oline);
	report(h, path, line, col, "host '%s' is also routed to %s@%s (%s)", at->host,
	       spec->services[other->svc].name, spec->envs[other->env].name, where);
}

int spec_hosts_check(const struct spec *spec, const char *file, const char *src, size_t srclen,
		     struct diags *diags)
{
	struct hck h = { .spec = spec, .file = file, .src = src, .srclen = srclen, .diags = diags };
	size_t *svc_owner = xcalloc(spec->nservices + 1, sizeof(*svc_owner));
	size_t *env_owner = xcalloc(spec->nenvs + 1, sizeof(*env_owner));
	bool *svc_reported = xcalloc(spec->nservices + 1, sizeof(*svc_reported));
	bool *env_reported = xcalloc(spec->nenvs + 1, sizeof(*env_reported));

	for (size_t s = 0; s < spec->nservices; s++)
		svc_owner[s] = SIZE_MAX;
	for (size_t e = 0; e < spec->nenvs; e++)
		env_owner[e] = SIZE_MAX;
	for (size_t s = 0; s < spec->nservices; s++)
		for (size_t e = 0; e < spec->nenvs; e++)
			claim_pair(&h, s, e, svc_owner, svc_reported, env_owner, env_reported);
	if (h.n)
		qsort(h.claims, h.n, sizeof(*h.claims), cmp_claim);
	for (size_t i = 0; i < h.n;) {
		size_t j = i + 1;
		const struct claim *first = &h.claims[i];
		for (; j < h.n && !strcmp(h.claims[j].host, first->host); j++) {
			const struct claim *c = &h.claims[j];
			if (c->svc == first->svc && c->env == first->env)
				continue; /* a pair listing its own default host */
			/* point at a host someone wrote, not at a default */
			if (c->from == FROM_DEFAULT && first->from != FROM_DEFAULT)
				report_clash(&h, first, c);
			else
				report_clash(&h, c, first);
		}
		i = j;
	}
	for (size_t i = 0; i < h.n; i++)
		free(h.claims[i].owned);
	free(h.claims);
	free(svc_owner);
	free(env_owner);
	free(svc_reported);
	free(env_reported);
	return h.nerr;
}
