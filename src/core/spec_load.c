/*
 * spec_load.c — loading a spec: reading the file (spec_load), the top
 * level, environments and services, then every check in turn (each
 * service resolved in each environment, the gate keys, host collisions),
 * with the diagnostics sorted in file order.
 */
#include "common.h"
#include "core/spec.h"
#include "core/spec-int.h"
#include "core/spec_gates.h"
#include "core/spec_flags.h"

/*
 * environments: and services: are mappings of NAME: {...} whose names become
 * host name labels. load_named checks what both share and calls one() for
 * each entry with a valid name (map: the mapping, i: the entry's key index),
 * under the entry's path. what: "environment"; max: at most this many (0: no
 * bound but the parser's).
 */
typedef void load_one_fn(struct walker *w, struct spec *spec, const struct ynode *map, size_t i);

static void load_named(struct walker *w, struct spec *spec, const struct ynode *k, const struct ynode *v,
		       const char *what, const char *empty, size_t max, load_one_fn *one)
{
	size_t old = spec__path_key(w, k->text);

	if (!spec__want_map(w, v, k, false))
		goto out;
	if (!v->nkids) {
		report(w, v, "%s", empty);
		goto out;
	}
	if (max && v->nkids > 2 * max) {
		report(w, v, "too many %ss (at most %zu)", what, max);
		goto out;
	}
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *nk = v->kids[i];
		size_t o2;

		if (!spec__key_ok(w, v, i))
			continue;
		if (!spec__valid_name(nk->text)) {
			report(w, nk, "invalid %s name '%s' (lowercase letters, digits and '-', at most 63 characters; it becomes a host name label)",
			       what, nk->text);
			continue;
		}
		o2 = spec__path_key(w, nk->text);
		one(w, spec, v, i);
		spec__path_pop(w, o2);
	}
out:
	spec__path_pop(w, old);
}

static void load_env(struct walker *w, struct spec *spec, const struct ynode *map, size_t i)
{
	const struct ynode *ek = map->kids[i], *ev = map->kids[i + 1];
	struct spec_env *e;

	if (!spec->envs)
		spec->envs = xcalloc(map->nkids / 2, sizeof(*spec->envs));
	e = &spec->envs[spec->nenvs++];
	e->name = xstrdup(ek->text);
	e->line = ek->line;
	e->col = ek->col;
	if (spec__want_map(w, ev, ek, true))
		spec__walk_map(w, ev, ek, spec__env_keys, e, MODE_BASE);
}

static void load_service(struct walker *w, struct spec *spec, const struct ynode *map, size_t i)
{
	const struct ynode *sk = map->kids[i], *sv = map->kids[i + 1];
	struct spec_service *s;

	if (!spec->services)
		spec->services = xcalloc(map->nkids / 2, sizeof(*spec->services));
	if (y_is_null(sv) && sv->type == Y_SCALAR) {
		report(w, sk, "missing required key 'run'");
	} else if (spec__want_map(w, sv, sk, false)) {
		s = &spec->services[spec->nservices++];
		s->name = xstrdup(sk->text);
		s->line = sk->line;
		s->col = sk->col;
		s->node = (void *)sv;
	}
}

static bool diag_before(const struct diag *a, const struct diag *b)
{
	/* a diagnostic without a position goes last */
	long la = a->line ? a->line : INT_MAX, lb = b->line ? b->line : INT_MAX;
	return la < lb || (la == lb && a->col < b->col);
}

/* stable sort of d->items[first..]: the walk is by topic, the reader wants file order */
static void sort_diags(struct diags *d, size_t first)
{
	for (size_t i = first + 1; d && i < d->n; i++) {
		struct diag t = d->items[i];
		size_t j = i;
		while (j > first && diag_before(&t, &d->items[j - 1])) {
			d->items[j] = d->items[j - 1];
			j--;
		}
		d->items[j] = t;
	}
}

static int load(const char *name, const char *buf, size_t len, const char *dir, bool stored,
		struct spec **out, struct diags *diags)
{
	size_t first = diags ? diags->n : 0;
	struct walker w = { 0 };
	struct spec *spec = xcalloc(1, sizeof(*spec));
	struct ynode *root = NULL, *k;
	const struct ynode *v;
	int ret = -1;

	*out = NULL;
	w.file = name;
	w.src = buf;
	w.srclen = len;
	w.diags = diags;
	spec->path = xstrdup(name);
	spec->dir = xstrdup(dir);
	if (spec__yaml_parse(&w, buf, len, &root) < 0)
		goto out;
	spec->doc = root;
	if (!root || y_is_null(root)) {
		spec__report_at(&w, 1, 1, "the file is empty (expected project, environments and services)");
		goto out;
	}
	if (root->type != Y_MAP) {
		report(&w, root, "the top level must be a mapping (project, environments, services), got %s",
		       y_type_name(root));
		goto out;
	}
	spec->project = spec__top_level(&w, root);

	k = NULL;
	v = y_lookup(root, "environments", &k);
	if (!k)
		spec__report_at(&w, root->line, root->col, "missing required key 'environments' (at least one, e.g. production: {})");
	else
		load_named(&w, spec, k, v, "environment", "needs at least one environment (e.g. staging: {} and production: {})",
			   SPEC_MAX_ENVS, load_env);
	k = NULL;
	v = y_lookup(root, "services", &k);
	if (!k)
		spec__report_at(&w, root->line, root->col, "missing required key 'services'");
	else
		load_named(&w, spec, k, v, "service", "needs at least one service", 0, load_service);
	k = NULL;
	v = y_lookup(root, "analysis_templates", &k);
	if (k) {
		struct svc_config tmp = { 0 };
		size_t old = spec__path_key(&w, "analysis_templates");
		spec__apply_analyses(&w, k, v, &tmp.analyses, &tmp.nanalyses);
		spec__path_pop(&w, old);
		spec__delivery_release(&tmp);
	}
	spec__check_services(&w, spec);
	spec__check_release(&w, spec);
	w.nerr += spec_gates_check(spec, name, buf, len, diags);
	w.nerr += spec_flags_check(spec, name, buf, len, diags);
	/* every pair resolves only once the rest is valid */
	if (!w.nerr && !stored)
		w.nerr += spec_hosts_check(spec, name, buf, len, diags);
	if (w.nerr)
		goto out;
	*out = spec;
	spec = NULL;
	ret = 0;
out:
	sort_diags(diags, first);
	spec_free(spec);
	return ret;
}

/* a spec in a buffer (no directory of its own); stored: one the controller accepted before */
static int load_buf(const char *name, const char *buf, size_t len, bool stored, struct spec **out,
		    struct diags *diags)
{
	if (len > SPEC_MAX_BYTES) {
		*out = NULL;
		diags_add(diags, name, 0, 0, NULL, NULL, "file too large (%zu bytes, at most %d)", len,
			  SPEC_MAX_BYTES);
		return -1;
	}
	return load(name, buf, len, ".", stored, out, diags);
}

int spec_load_buf(const char *name, const char *buf, size_t len, struct spec **out, struct diags *diags)
{
	return load_buf(name, buf, len, false, out, diags);
}

int spec_load_stored(const char *name, const char *buf, size_t len, struct spec **out, struct diags *diags)
{
	return load_buf(name, buf, len, true, out, diags);
}

int spec_load(const char *path, struct spec **out, struct diags *diags)
{
	FILE *f = NULL;
	char *buf = NULL, *dir = NULL, *slash;
	size_t len = 0;
	int ret = -1;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		diags_add(diags, path, 0, 0, NULL, NULL, "cannot open: %s%s", strerror(errno),
			  errno == ENOENT ? " (create one with 'gantry init', or name it with -f FILE)" : "");
		goto out;
	}
	buf = xmalloc(SPEC_MAX_BYTES + 1);
	len = fread(buf, 1, SPEC_MAX_BYTES + 1, f);
	if (ferror(f)) {
		diags_add(diags, path, 0, 0, NULL, NULL, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (len > SPEC_MAX_BYTES) {
		diags_add(diags, path, 0, 0, NULL, NULL, "file too large (more than %d bytes)", SPEC_MAX_BYTES);
		goto out;
	}
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = 0;
	else if (slash)
		*slash = 0;
	else {
		free(dir);
		dir = xstrdup(".");
	}
	ret = load(path, buf, len, dir, false, out, diags);
out:
	if (f)
		fclose(f);
	free(buf);
	free(dir);
	return ret;
}

void spec_free(struct spec *spec)
{
	if (!spec)
		return;
	free(spec->path);
	free(spec->dir);
	free(spec->project);
	for (size_t i = 0; i < spec->nenvs; i++) {
		free(spec->envs[i].name);
		spec__free_strv(spec->envs[i].hosts, spec->envs[i].nhosts);
		spec__free_strv(spec->envs[i].recipients, spec->envs[i].nrecipients);
		free(spec->envs[i].secrets_file);
		cluster_config_release(&spec->envs[i].cluster);
	}
	free(spec->envs);
	for (size_t i = 0; i < spec->nservices; i++) {
		free(spec->services[i].name);
		spec__free_strv(spec->services[i].depends_on, spec->services[i].ndepends);
	}
	free(spec->services);
	spec__ynode_free(spec->doc);
	free(spec);
}

const struct spec_env *spec_find_env(const struct spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->nenvs; i++)
		if (!strcmp(spec->envs[i].name, name))
			return &spec->envs[i];
	return NULL;
}

const struct spec_service *spec_find_service(const struct spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->nservices; i++)
		if (!strcmp(spec->services[i].name, name))
			return &spec->services[i];
	return NULL;
}
