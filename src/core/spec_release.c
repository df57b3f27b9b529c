/*
 * spec_release.c — what a release needs from the spec: services.S.depends_on
 * (known names, no cycle) and the levels they give (release_levels, pure),
 * and the top-level release: {on_failure}. Called by spec_load after the
 * services are resolved.
 */
#include "common.h"
#include "core/spec.h"
#include "core/spec-int.h"

const char *release_on_failure_name(enum release_on_failure f)
{
	switch (f) {
	case RELEASE_PAUSE: return "pause";
	case RELEASE_CONTINUE: return "continue";
	default: return "rollback";
	}
}

enum { WHITE, GREY, BLACK };

/* depth first from i; on a grey node (a back edge) the stack from it is the cycle */
static int visit(size_t i, const size_t *ndeps, size_t *const *deps, int *level, char *color, size_t *stack,
		 size_t depth, size_t *cycle, size_t *ncycle)
{
	int best = -1;
	color[i] = GREY;
	stack[depth] = i;
	for (size_t k = 0; k < ndeps[i]; k++) {
		size_t j = deps[i][k];
		if (color[j] == GREY) {
			size_t from = depth;
			while (stack[from] != j)
				from--;
			*ncycle = 0;
			for (size_t d = from; d <= depth; d++)
				cycle[(*ncycle)++] = stack[d];
			cycle[(*ncycle)++] = j;
			return -1;
		}
		if (color[j] == WHITE && visit(j, ndeps, deps, level, color, stack, depth + 1, cycle, ncycle) < 0)
			return -1;
		if (level[j] > best)
			best = level[j];
	}
	level[i] = best + 1;
	color[i] = BLACK;
	return 0;
}

int release_levels(size_t n, const size_t *ndeps, size_t *const *deps, int *level, size_t *cycle,
		   size_t *ncycle)
{
	char *color = xcalloc(n ? n : 1, 1);
	size_t *stack = xcalloc(n ? n : 1, sizeof(*stack));
	int ret = 0;
	*ncycle = 0;
	for (size_t i = 0; i < n; i++)
		level[i] = 0;
	for (size_t i = 0; i < n && !ret; i++)
		if (color[i] == WHITE)
			ret = visit(i, ndeps, deps, level, color, stack, 0, cycle, ncycle);
	free(color);
	free(stack);
	return ret;
}

static ssize_t service_index(const struct spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->nservices; i++)
		if (!strcmp(spec->services[i].name, name))
			return (ssize_t)i;
	return -1;
}

/* services.S.depends_on of s: names kept in s->depends_on, edges in idx; returns how many */
static size_t load_depends(struct walker *w, struct spec *spec, struct spec_service *s, size_t *idx,
			   const struct ynode **at)
{
	struct ynode *k = NULL;
	const struct ynode *v = y_lookup(s->node, "depends_on", &k);
	size_t n = 0;
	size_t old;
	if (!k)
		return 0;
	old = spec__path_push(w, "services.%s.depends_on", s->name);
	if (y_is_null(v)) {
		; /* depends_on: (nothing) */
	} else if (v->type != Y_SEQ) {
		report(w, v, "expected a list of service names, got %s", y_type_name(v));
	} else {
		s->depends_on = xcalloc(v->nkids ? v->nkids : 1, sizeof(*s->depends_on));
		for (size_t i = 0; i < v->nkids; i++) {
			const char *name = spec__want_scalar(w, v->kids[i], v);
			ssize_t j;
			bool dup = false;
			if (!name)
				continue;
			j = service_index(spec, name);
			for (size_t d = 0; d < s->ndepends; d++)
				dup |= !strcmp(s->depends_on[d], name);
			if (j < 0) {
				const char **cands = xcalloc(spec->nservices + 1, sizeof(*cands));
				const char *sug;
				for (size_t c = 0; c < spec->nservices; c++)
					cands[c] = spec->services[c].name;
				sug = diag_suggest(name, cands, spec->nservices);
				report(w, v->kids[i], "unknown service '%s'%s%s%s", name, sug ? " (did you mean '" : "",
				       sug ? sug : "", sug ? "'?)" : "");
				free(cands);
			} else if (!strcmp(name, s->name)) {
				report(w, v->kids[i], "a service cannot depend on itself: %s \u2192 %s", name, name);
			} else if (dup) {
				report(w, v->kids[i], "service '%s' is listed twice", name);
			} else {
				s->depends_on[s->ndepends++] = xstrdup(name);
				at[n] = v->kids[i];
				idx[n++] = (size_t)j;
			}
		}
	}
	spec__path_pop(w, old);
	return n;
}

static void load_release(struct walker *w, struct spec *spec)
{
	struct ynode *k = NULL;
	const struct ynode *v = y_lookup(spec->doc, "release", &k), *fk = NULL, *fv;
	static const char *const names[] = { "rollback", "pause", "continue" };
	size_t old;
	if (!k)
		return;
	old = spec__path_key(w, "release");
	if (!spec__want_map(w, v, k, true))
		goto out;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		if (!spec__key_ok(w, v, i))
			continue;
		if (strcmp(v->kids[i]->text, "on_failure")) {
			static const char *const keys[] = { "on_failure" };
			spec__report_unknown(w, v->kids[i], "key", keys, 1);
			continue;
		}
		fk = v->kids[i];
		fv = v->kids[i + 1];
		const char *s = spec__want_scalar(w, fv, fk);
		size_t j;
		if (!s)
			continue;
		for (j = 0; j < ARRAY_SIZE(names) && strcmp(names[j], s); j++)
			;
		if (j == ARRAY_SIZE(names))
			report(w, fv, "release.on_failure: expected rollback, pause or continue, got '%s'", s);
		else
			spec->release_on_failure = (enum release_on_failure)j;
	}
out:
	spec__path_pop(w, old);
}

void spec__check_release(struct walker *w, struct spec *spec)
{
	size_t n = spec->nservices;
	size_t *ndeps = xcalloc(n ? n : 1, sizeof(*ndeps));
	size_t **deps = xcalloc(n ? n : 1, sizeof(*deps));
	const struct ynode ***at = xcalloc(n ? n : 1, sizeof(*at));
	int *level = xcalloc(n ? n : 1, sizeof(*level));
	size_t *cycle = xcalloc(n + 1, sizeof(*cycle)), ncycle = 0;

	load_release(w, spec);
	for (size_t i = 0; i < n; i++) {
		const struct ynode *v = y_lookup(spec->services[i].node, "depends_on", NULL);
		size_t cap = v && v->type == Y_SEQ && v->nkids ? v->nkids : 1;
		deps[i] = xcalloc(cap, sizeof(**deps));
		at[i] = xcalloc(cap, sizeof(**at));
		ndeps[i] = load_depends(w, spec, &spec->services[i], deps[i], at[i]);
	}
	if (release_levels(n, ndeps, deps, level, cycle, &ncycle) < 0) {
		/* reported once, at the edge that closes it: cycle[0] -> ... -> cycle[0] */
		char text[1024] = "";
		size_t len = 0, a = cycle[ncycle - 2], b = cycle[ncycle - 1];
		const struct ynode *node = NULL;
		for (size_t i = 0; i < ncycle && len < sizeof(text); i++)
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", i ? " \u2192 " : "",
						spec->services[cycle[i]].name);
		for (size_t k = 0; k < ndeps[a]; k++)
			if (deps[a][k] == b)
				node = at[a][k];
		size_t old = spec__path_push(w, "services.%s.depends_on", spec->services[a].name);
		report(w, node, "dependency cycle: %s (\u2192: depends on)", text);
		spec__path_pop(w, old);
	} else {
		for (size_t i = 0; i < n; i++)
			spec->services[i].level = level[i];
	}
	for (size_t i = 0; i < n; i++) {
		free(deps[i]);
		free(at[i]);
	}
	free(ndeps);
	free(deps);
	free(at);
	free(level);
	free(cycle);
}
