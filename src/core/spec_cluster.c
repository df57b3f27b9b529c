/*
 * spec_cluster.c — the fleet keys: environments.E.cluster (where an
 * environment's container services run when it is not this host) and
 * services.S.placement (where the cluster may put a service's tasks).
 *
 *   environments:
 *     production:
 *       cluster:
 *         engine: swarm                         # the only engine today
 *         manager: unix:///run/docker.sock      # or tcp://HOST:PORT: a manager's Engine
 *         network: app-overlay                  # the attachable overlay tasks join (optional)
 *         nodes:                                # each node's Engine, by its hostname
 *           node-1: unix:///run/docker.sock
 *           node-2: tcp://10.0.0.12:2375
 *         proxy: {port: 80, admin_port: 9180, registry: reg.example:5000}   # a proxy on every node
 *   services:
 *     web:
 *       placement: {constraints: [node.role==worker], spread: node.labels.zone}
 *
 * Who may change them: cluster is a policy key (admin, spec_class.c), as
 * every key that decides where things run; placement is config.
 */
#include "common.h"
#include "core/spec.h"
#include "core/spec-int.h"

static bool engine_url_ok(const char *s)
{
	if (!strncmp(s, "unix:///", 8))
		return s[8] != 0;
	if (!strncmp(s, "tcp://", 6)) {
		const char *colon = strrchr(s + 6, ':');
		char *end;
		long p;
		if (!colon || colon == s + 6)
			return false;
		p = strtol(colon + 1, &end, 10);
		return !*end && p > 0 && p <= 65535;
	}
	return false;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = xstrdup(s);
}

static int want_port(struct walker *w, const struct ynode *k, const struct ynode *v)
{
	const char *s = spec__want_scalar(w, v, k);
	char *end;
	long p;
	if (!s)
		return 0;
	p = strtol(s, &end, 10);
	if (!*s || *end || p < 1 || p > 65535) {
		report(w, v, "expected a port (1 to 65535), got '%s'", s);
		return 0;
	}
	return (int)p;
}

/* cluster.proxy: {port, admin_port, registry}, all three required */
static void apply_proxy(struct walker *w, const struct ynode *k, const struct ynode *v, struct cluster_config *n)
{
	int before = w->nerr;
	const char *s;
	char msg[160];
	size_t off;

	if (!spec__want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *pk = v->kids[i], *pv = v->kids[i + 1];
		size_t old;
		if (!spec__key_ok(w, v, i))
			continue;
		old = spec__path_key(w, pk->text);
		if (!strcmp(pk->text, "port")) {
			n->proxy_port = want_port(w, pk, pv);
		} else if (!strcmp(pk->text, "admin_port")) {
			n->proxy_admin_port = want_port(w, pk, pv);
		} else if (!strcmp(pk->text, "registry")) {
			if ((s = spec__want_scalar(w, pv, pk))) {
				if (spec__registry_check(s, &off, msg, sizeof(msg)) < 0)
					report(w, pv, "expected the registry every node pulls from as HOST:PORT: %s", msg);
				else
					set_str(&n->proxy_registry, s);
			}
		} else {
			static const char *const keys[] = { "port", "admin_port", "registry" };
			spec__report_unknown(w, pk, "cluster.proxy key", keys, ARRAY_SIZE(keys));
		}
		spec__path_pop(w, old);
	}
	if (w->nerr != before)
		return;
	if (!n->proxy_port || !n->proxy_admin_port || !n->proxy_registry)
		report(w, v, "cluster.proxy needs port, admin_port and registry (HOST:PORT every node pulls from)");
	else if (n->proxy_port == n->proxy_admin_port)
		report(w, v, "cluster.proxy: port and admin_port must differ (both %d)", n->proxy_port);
}

void spec__apply_cluster(struct walker *w, const struct ynode *k, const struct ynode *v, struct cluster_config *c)
{
	struct cluster_config n = { 0 };
	int before = w->nerr;
	const struct ynode *proxy_node = NULL;
	const char *s;

	if (!spec__want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *ck = v->kids[i], *cv = v->kids[i + 1];
		size_t old;
		if (!spec__key_ok(w, v, i))
			continue;
		old = spec__path_key(w, ck->text);
		if (!strcmp(ck->text, "engine")) {
			if ((s = spec__want_scalar(w, cv, ck))) {
				if (strcmp(s, "swarm"))
					report(w, cv, "unknown cluster engine '%s' (swarm is the only one)", s);
				else
					set_str(&n.engine, s);
			}
		} else if (!strcmp(ck->text, "manager")) {
			if ((s = spec__want_scalar(w, cv, ck))) {
				if (!engine_url_ok(s))
					report(w, cv, "expected a manager's Engine as unix:///PATH or tcp://HOST:PORT, got '%s'", s);
				else
					set_str(&n.manager, s);
			}
		} else if (!strcmp(ck->text, "network")) {
			if ((s = spec__want_scalar(w, cv, ck))) {
				if (!*s || strlen(s) > 128 || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(s))
					report(w, cv, "invalid network name '%s'", s);
				else
					set_str(&n.network, s);
			}
		} else if (!strcmp(ck->text, "nodes")) {
			if (spec__want_map(w, cv, ck, false)) {
				for (size_t j = 0; j + 1 < cv->nkids; j += 2) {
					const struct ynode *nk = cv->kids[j], *nv = cv->kids[j + 1];
					size_t o2;
					if (!spec__key_ok(w, cv, j))
						continue;
					o2 = spec__path_key(w, nk->text);
					if ((s = spec__want_scalar(w, nv, nk))) {
						if (!engine_url_ok(s)) {
							report(w, nv, "expected the node's Engine as unix:///PATH or tcp://HOST:PORT, got '%s'", s);
						} else {
							n.nodes = xrealloc(n.nodes, (n.nnodes + 1) * sizeof(*n.nodes));
							n.nodes[n.nnodes].key = xstrdup(nk->text);
							n.nodes[n.nnodes].value = xstrdup(s);
							n.nnodes++;
						}
					}
					spec__path_pop(w, o2);
				}
			}
		} else if (!strcmp(ck->text, "proxy")) {
			proxy_node = cv;
			apply_proxy(w, ck, cv, &n);
		} else {
			static const char *const keys[] = { "engine", "manager", "network", "nodes", "proxy" };
			spec__report_unknown(w, ck, "cluster key", keys, ARRAY_SIZE(keys));
		}
		spec__path_pop(w, old);
	}
	if (w->nerr == before && (!n.engine || !n.manager))
		report(w, v, "a cluster needs engine (swarm) and manager (its Engine, unix:///PATH or tcp://HOST:PORT)");
	if (w->nerr == before && proxy_node && !n.network)
		report(w, proxy_node, "cluster.proxy needs cluster.network: the node proxies reach the tasks on that overlay");
	if (w->nerr != before) {
		cluster_config_release(&n);
		return;
	}
	cluster_config_release(c);
	*c = n;
}

void spec__apply_placement(struct walker *w, const struct ynode *k, const struct ynode *v, struct placement *p)
{
	const struct ynode *ck, *cv;
	int before = w->nerr;
	struct placement n = { 0 };
	const char *s;

	if (!spec__want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		size_t old;
		ck = v->kids[i];
		cv = v->kids[i + 1];
		if (!spec__key_ok(w, v, i))
			continue;
		old = spec__path_key(w, ck->text);
		if (!strcmp(ck->text, "constraints")) {
			spec__set_strlist(w, cv, ck, false, &n.constraints, &n.nconstraints);
			for (size_t j = 0; j < n.nconstraints; j++)
				if (!strstr(n.constraints[j], "==") && !strstr(n.constraints[j], "!="))
					report(w, cv->type == Y_SEQ && j < cv->nkids ? cv->kids[j] : cv,
					       "a constraint is ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE (node.role==worker), got '%s'",
					       n.constraints[j]);
		} else if (!strcmp(ck->text, "spread")) {
			if ((s = spec__want_scalar(w, cv, ck))) {
				if (strncmp(s, "node.", 5) || !s[5])
					report(w, cv, "a spread is over a node attribute (node.id, node.labels.zone), got '%s'", s);
				else
					set_str(&n.spread, s);
			}
		} else {
			static const char *const keys[] = { "constraints", "spread" };
			spec__report_unknown(w, ck, "placement key", keys, ARRAY_SIZE(keys));
		}
		spec__path_pop(w, old);
	}
	if (w->nerr != before) {
		placement_release(&n);
		return;
	}
	placement_release(p);
	*p = n;
}

void cluster_config_copy(struct cluster_config *dst, const struct cluster_config *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->engine = src->engine ? xstrdup(src->engine) : NULL;
	dst->manager = src->manager ? xstrdup(src->manager) : NULL;
	dst->network = src->network ? xstrdup(src->network) : NULL;
	dst->proxy_port = src->proxy_port;
	dst->proxy_admin_port = src->proxy_admin_port;
	dst->proxy_registry = src->proxy_registry ? xstrdup(src->proxy_registry) : NULL;
	if (src->nnodes) {
		dst->nodes = xcalloc(src->nnodes, sizeof(*dst->nodes));
		for (size_t i = 0; i < src->nnodes; i++) {
			dst->nodes[i].key = xstrdup(src->nodes[i].key);
			dst->nodes[i].value = xstrdup(src->nodes[i].value);
		}
		dst->nnodes = src->nnodes;
	}
}

void cluster_config_release(struct cluster_config *c)
{
	free(c->engine);
	free(c->manager);
	free(c->network);
	free(c->proxy_registry);
	for (size_t i = 0; i < c->nnodes; i++) {
		free(c->nodes[i].key);
		free(c->nodes[i].value);
	}
	free(c->nodes);
	memset(c, 0, sizeof(*c));
}

void placement_release(struct placement *p)
{
	spec__free_strv(p->constraints, p->nconstraints);
	free(p->spread);
	memset(p, 0, sizeof(*p));
}

const char *cluster_node_engine(const struct cluster_config *c, const char *hostname)
{
	for (size_t i = 0; i < c->nnodes; i++)
		if (!strcmp(c->nodes[i].key, hostname))
			return c->nodes[i].value;
	return NULL;
}
