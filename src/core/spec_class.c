/*
 * spec_class.c — the class (config or policy) of every spec key, the spec's
 * tree as JSON, and the diff of two trees that `gantry apply` checks.
 *
 * Pure: no I/O.
 */
#include "common.h"
#include <jansson.h>
#include "core/spec.h"
#include "core/spec_class.h"

/* deeper JSON than this (never a valid spec: spec.c stops at 32) is compared whole */
#define DIFF_MAX_DEPTH 64

struct class_row {
	const char *pattern;  /* as spec_print_keys() prints it */
	enum spec_class cls;
	bool subtree;         /* every path below has this class */
};

#define CONFIG SPEC_CLASS_CONFIG
#define POLICY SPEC_CLASS_POLICY

/*
 * One row per key path that spec_print_keys() prints, written as it prints
 * it, plus the name levels (environments.E...) and policy keys that are on
 * their way. A NEW SPEC KEY MUST GET A ROW HERE: tests/unit/core/
 * test_spec_class.c fails for any printed path that classifies as unknown
 * (and apply would treat it as policy).
 *
 * POLICY keys decide whether a change may happen, so only an admin may
 * change them (a deployer who could edit them could approve, unfreeze or
 * ungate their own deploys):
 *   environments.E.protection   approvals, approval_ttl, windows, freezes,
 *                               rollback_incident,
 *                               checklist: the gates of a deploy to E
 *   environments.E.promote_from only versions proven in another environment
 *   environments.E.min_soak     ... for at least this long
 *   environments.E.secrets      recipients who can decrypt the environment's secrets
 *   services.S.checks           pre/post checks a deploy must pass
 *   notify                      who is told about deploys (auditing)
 *   roles, users (coming)       who may deploy, approve, administer
 * They are subtree rows: whatever is below them (a window, a check, a role)
 * is policy too, whatever shape gspec.c accepts today or tomorrow.
 *
 * CONFIG keys say what runs and how (run, env, replicas, probes, resources,
 * strategy, analyses...): a deployer changes them with every release.
 * A CONFIG row without child rows whose value is a map or a list (env,
 * hosts, steps, metrics, match, rollback_on...) covers what is below it.
 */
static const struct class_row class_rows[] = {
	/* name levels: an environment or override written as "E:" (null) or "{}" */
	{ "environments.E", CONFIG, false },
	{ "services.S", CONFIG, false },
	{ "services.S.environments.E", CONFIG, false },
	{ "services.S.analysis.NAME", CONFIG, false },
	{ "analysis_templates.NAME", CONFIG, false },
	/* policy keys the parser does not know yet */
	{ "users", POLICY, true },
	/* the keys of spec_print_keys(), in its order */
	{ "project", CONFIG, false },
	{ "environments", CONFIG, false },
	{ "environments.E.replicas", CONFIG, false },
	{ "environments.E.hosts", CONFIG, false },
	{ "environments.E.protection", POLICY, true },
	{ "environments.E.promote_from", POLICY, true },
	{ "environments.E.min_soak", POLICY, true },
	/* who can decrypt an environment's secrets besides the controller */
	{ "environments.E.secrets", POLICY, true },
	/* where the environment's containers run (a cluster's manager, its nodes' Engines) */
	{ "environments.E.cluster", POLICY, true },
	/* a flag's definition in one environment: as flags: */
	{ "environments.E.flags", CONFIG, true },
	{ "services", CONFIG, false },
	{ "services.S.run", CONFIG, false },
	{ "services.S.build", CONFIG, false },
	{ "services.S.build.dockerfile", CONFIG, false },
	{ "services.S.build.context", CONFIG, false },
	{ "services.S.build.args", CONFIG, false },
	/* the container keys: what runs (an image names its registry anyway) */
	{ "services.S.runtime", CONFIG, false },
	{ "services.S.image", CONFIG, false },
	{ "services.S.command", CONFIG, false },
	{ "services.S.entrypoint", CONFIG, false },
	{ "services.S.port", CONFIG, false },
	{ "services.S.registry", CONFIG, false },
	/* where a cluster may put the tasks (the cluster itself is environments.E.cluster, policy) */
	{ "services.S.placement", CONFIG, false },
	{ "services.S.artifact", CONFIG, false },
	{ "services.S.replicas", CONFIG, false },
	{ "services.S.env", CONFIG, false },
	{ "services.S.files", CONFIG, false },
	{ "services.S.hosts", CONFIG, false },
	{ "services.S.tag_hosts", CONFIG, false },
	{ "services.S.probes", CONFIG, false },
	{ "services.S.probes.readiness", CONFIG, false },
	{ "services.S.probes.readiness.http", CONFIG, false },
	{ "services.S.probes.readiness.tcp", CONFIG, false },
	{ "services.S.probes.readiness.exec", CONFIG, false },
	{ "services.S.probes.readiness.period", CONFIG, false },
	{ "services.S.probes.readiness.timeout", CONFIG, false },
	{ "services.S.probes.readiness.failure_threshold", CONFIG, false },
	{ "services.S.probes.readiness.initial_delay", CONFIG, false },
	{ "services.S.probes.liveness", CONFIG, false },
	{ "services.S.probes.liveness.http", CONFIG, false },
	{ "services.S.probes.liveness.tcp", CONFIG, false },
	{ "services.S.probes.liveness.exec", CONFIG, false },
	{ "services.S.probes.liveness.period", CONFIG, false },
	{ "services.S.probes.liveness.timeout", CONFIG, false },
	{ "services.S.probes.liveness.failure_threshold", CONFIG, false },
	{ "services.S.probes.liveness.initial_delay", CONFIG, false },
	{ "services.S.resources", CONFIG, false },
	{ "services.S.resources.cpu", CONFIG, false },
	{ "services.S.resources.memory", CONFIG, false },
	{ "services.S.resources.pids", CONFIG, false },
	{ "services.S.stop_grace", CONFIG, false },
	{ "services.S.drain_timeout", CONFIG, false },
	{ "services.S.progress_deadline", CONFIG, false },
	{ "services.S.keep_revisions", CONFIG, false },
	/* who a service runs as decides what it can reach on the host */
	{ "services.S.user", POLICY, false },
	{ "services.S.strategy", CONFIG, false },
	{ "services.S.strategy.rolling", CONFIG, false },
	{ "services.S.strategy.rolling.max_surge", CONFIG, false },
	{ "services.S.strategy.rolling.max_unavailable", CONFIG, false },
	{ "services.S.strategy.recreate", CONFIG, false },
	{ "services.S.strategy.canary", CONFIG, false },
	{ "services.S.strategy.canary.steps", CONFIG, false },
	{ "services.S.strategy.canary.steps[].weight", CONFIG, false },
	{ "services.S.strategy.canary.steps[].pause", CONFIG, false },
	{ "services.S.strategy.canary.steps[].analysis", CONFIG, false },
	{ "services.S.strategy.canary.steps[].match", CONFIG, false },
	{ "services.S.strategy.canary.steps[].replicas", CONFIG, false },
	{ "services.S.strategy.canary.match", CONFIG, false },
	{ "services.S.strategy.canary.analysis", CONFIG, false },
	{ "services.S.strategy.canary.analysis.name", CONFIG, false },
	{ "services.S.strategy.canary.analysis.starting_step", CONFIG, false },
	{ "services.S.strategy.bluegreen", CONFIG, false },
	{ "services.S.strategy.bluegreen.preview_tag", CONFIG, false },
	{ "services.S.strategy.bluegreen.auto_promote", CONFIG, false },
	{ "services.S.strategy.bluegreen.auto_promote_after", CONFIG, false },
	{ "services.S.strategy.bluegreen.pre_promotion_analysis", CONFIG, false },
	{ "services.S.strategy.bluegreen.post_promotion_analysis", CONFIG, false },
	{ "services.S.strategy.bluegreen.keep_previous", CONFIG, false },
	{ "services.S.rollback_on", CONFIG, false },
	{ "services.S.watch", CONFIG, false },
	{ "services.S.analysis", CONFIG, false },
	{ "services.S.analysis.NAME.interval", CONFIG, false },
	{ "services.S.analysis.NAME.count", CONFIG, false },
	{ "services.S.analysis.NAME.initial_delay", CONFIG, false },
	{ "services.S.analysis.NAME.failure_limit", CONFIG, false },
	{ "services.S.analysis.NAME.inconclusive_limit", CONFIG, false },
	{ "services.S.analysis.NAME.error_limit", CONFIG, false },
	{ "services.S.analysis.NAME.flag_off", CONFIG, false },
	{ "services.S.analysis.NAME.metrics", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].name", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].provider", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].query", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].fail_if", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].for", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].compare", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].method", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].confidence", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].min_requests", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].address", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].url", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].json_path", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].command", CONFIG, false },
	{ "services.S.analysis.NAME.metrics[].timeout", CONFIG, false },
	{ "services.S.shield", CONFIG, false },
	/* how the proxy picks a revision for a client, as the weights: config */
	{ "services.S.sticky", CONFIG, false },
	{ "services.S.on_error", CONFIG, false },
	{ "services.S.checks", POLICY, true },
	/* the order of a release: what deploys, not who may (gantry release) */
	{ "services.S.depends_on", CONFIG, false },
	/* what runs against the service's own database, as its env does: config */
	{ "services.S.migrations", CONFIG, true },
	{ "services.S.environments", CONFIG, false },
	{ "analysis_templates", CONFIG, false },
	{ "analysis_templates.NAME.interval", CONFIG, false },
	{ "analysis_templates.NAME.count", CONFIG, false },
	{ "analysis_templates.NAME.initial_delay", CONFIG, false },
	{ "analysis_templates.NAME.failure_limit", CONFIG, false },
	{ "analysis_templates.NAME.inconclusive_limit", CONFIG, false },
	{ "analysis_templates.NAME.error_limit", CONFIG, false },
	{ "analysis_templates.NAME.flag_off", CONFIG, false },
	{ "analysis_templates.NAME.metrics", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].name", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].provider", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].query", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].fail_if", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].for", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].compare", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].method", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].confidence", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].min_requests", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].address", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].url", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].json_path", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].command", CONFIG, false },
	{ "analysis_templates.NAME.metrics[].timeout", CONFIG, false },
	{ "notify", POLICY, true },
	{ "roles", POLICY, true },
	{ "registry", CONFIG, false },
	{ "release", CONFIG, false },
	/* feature flags: a deployer changes them (and their state, gantry flag set) */
	{ "flags", CONFIG, true },
};

#undef CONFIG
#undef POLICY

const char *spec_class_name(enum spec_class c)
{
	return c == SPEC_CLASS_CONFIG ? "config" : c == SPEC_CLASS_POLICY ? "policy" : "unknown";
}

/* ------------------------------------------------------------------------ */
/* classification                                                           */

/* the row whose pattern is exactly pat[0..len), or NULL */
static const struct class_row *find_row(const char *pat, size_t len)
{
	const struct class_row *r = NULL;
	for (size_t i = 0; !r && i < ARRAY_SIZE(class_rows); i++)
		if (strlen(class_rows[i].pattern) == len && !memcmp(class_rows[i].pattern, pat, len))
			r = &class_rows[i];
	return r;
}

/* a row with named children (a "R.x" row): a path below it must match one of them */
static bool row_has_children(const struct class_row *r)
{
	size_t len = strlen(r->pattern);
	bool kids = false;
	for (size_t i = 0; !kids && i < ARRAY_SIZE(class_rows); i++)
		kids = !strncmp(class_rows[i].pattern, r->pattern, len) && class_rows[i].pattern[len] == '.';
	return kids;
}

/*
 * The class of the path made of the n segments seg[] (borrowed; idx[i]: seg
 * i is a list index, NULL: none is). Segments are mapped to the pattern form
 * (names -> E, S, NAME; an override services.S.environments.E.K -> services.S.K;
 * an index -> "[]"), then matched against the table.
 */
static enum spec_class classify_segs(const char *const *seg, const bool *idx, size_t n)
{
	enum spec_class cls = SPEC_CLASS_UNKNOWN;
	const char **p = NULL;
	bool *pidx = NULL;
	size_t *bound = NULL, np = 0, i = 0, len = 0, k;
	char *pat = NULL;
	const struct class_row *r;

#define IS_KEY(j, s) ((j) < n && !(idx && idx[j]) && !strcmp(seg[j], (s)))
#define IS_NAME(j) ((j) < n && !(idx && idx[j]))
#define PUSH(s, ix) (p[np] = (s), pidx[np] = (ix), np++)
	if (!n)
		goto out;
	p = xcalloc(n, sizeof(*p));
	pidx = xcalloc(n, sizeof(*pidx));
	bound = xcalloc(n, sizeof(*bound));
	if ((IS_KEY(0, "environments") || IS_KEY(0, "analysis_templates")) && IS_NAME(1)) {
		PUSH(seg[0], false);
		PUSH(!strcmp(seg[0], "environments") ? "E" : "NAME", false);
		i = 2;
	} else if (IS_KEY(0, "services") && IS_NAME(1)) {
		PUSH("services", false);
		PUSH("S", false);
		i = 2;
		if (IS_KEY(2, "environments") && IS_NAME(3)) {
			if (n == 4) {
				/* the override itself (written as "E:" or "E: {}") */
				PUSH("environments", false);
				PUSH("E", false);
			}
			i = 4; /* services.S.environments.E.K is services.S.K (only once) */
		}
		if (IS_KEY(i, "analysis") && IS_NAME(i + 1)) {
			PUSH("analysis", false);
			PUSH("NAME", false);
			i += 2;
		}
	}
	for (; i < n; i++)
		PUSH(idx && idx[i] ? "[]" : seg[i], idx && idx[i]);
#undef PUSH
#undef IS_NAME
#undef IS_KEY

	for (k = 0; k < np; k++)
		len += strlen(p[k]) + 1;
	pat = xmalloc(len + 1);
	len = 0;
	for (k = 0; k < np; k++) {
		size_t l = strlen(p[k]);
		if (k && !pidx[k])
			pat[len++] = '.';
		memcpy(pat + len, p[k], l);
		len += l;
		bound[k] = len;
	}
	pat[len] = 0;

	if ((r = find_row(pat, len))) {
		cls = r->cls;
		goto out;
	}
	/* the longest enclosing subtree row: policy keys cover all below them */
	for (k = np - 1; k-- > 0;)
		if ((r = find_row(pat, bound[k])) && r->subtree) {
			cls = r->cls;
			goto out;
		}
	/* the longest enclosing row, when its value is a map/list of values */
	for (k = np - 1; k-- > 0;)
		if ((r = find_row(pat, bound[k]))) {
			if (!row_has_children(r))
				cls = r->cls;
			break;
		}
out:
	free(pat);
	free(bound);
	free(pidx);
	free(p);
	return cls;
}

enum spec_class spec_key_class(const char *path)
{
	enum spec_class cls = SPEC_CLASS_UNKNOWN;
	const char **seg = NULL, *s = path;
	char *buf = NULL, *w;
	bool *idx = NULL;
	size_t n = 0, max;

	if (!path || !*path)
		goto out;
	max = strlen(path) + 1;
	buf = xmalloc(2 * max); /* every key and its NUL */
	seg = xcalloc(max, sizeof(*seg));
	idx = xcalloc(max, sizeof(*idx));
	/* "a.b[2].c" -> a, b, [], c: a key ends at '.' or '[' and is never empty */
	for (w = buf; *s;) {
		if (*s == '[') {
			const char *end = s + 1;
			while (*end >= '0' && *end <= '9')
				end++;
			if (*end != ']')
				goto out; /* not a list index ("[]" is: the pattern form) */
			idx[n] = true;
			seg[n++] = "[]";
			s = end + 1;
		} else {
			size_t l = strcspn(s, ".[");
			if (!l)
				goto out; /* "a..b", ".a" */
			memcpy(w, s, l);
			w[l] = 0;
			seg[n++] = w;
			w += l + 1;
			s += l;
		}
		/* after a key or index: the end, '[', or '.' and more */
		if (*s == '.') {
			if (!*++s)
				goto out; /* "a." */
		} else if (*s && *s != '[') {
			goto out; /* "a[2]x" */
		}
	}
	cls = classify_segs(seg, idx, n);
out:
	free(idx);
	free(seg);
	free(buf);
	return cls;
}

/* ------------------------------------------------------------------------ */
/* the tree as JSON                                                         */

static json_t *node_json(const struct spec_node *n)
{
	json_t *j = NULL;
	size_t i;

	switch (spec_node_kind(n)) {
	case SPEC_NODE_SCALAR:
		j = json_string(spec_node_text(n));
		break;
	case SPEC_NODE_MAP:
		j = json_object();
		for (i = 0; i < spec_node_count(n); i++) {
			const char *k = spec_node_text(spec_node_key(n, i));
			/* complex keys do not validate; a repeated key keeps its last value */
			if (k)
				json_object_set_new(j, k, node_json(spec_node_item(n, i)));
		}
		break;
	case SPEC_NODE_SEQ:
		j = json_array();
		for (i = 0; i < spec_node_count(n); i++)
			json_array_append_new(j, node_json(spec_node_item(n, i)));
		break;
	case SPEC_NODE_NULL:
	case SPEC_NODE_OTHER:
		break;
	}
	/* json_string() refuses invalid UTF-8 (libfyaml hands out UTF-8): null then */
	return j ? j : json_null();
}

json_t *spec_tree_json(const struct spec *spec)
{
	return spec ? node_json(spec_root(spec)) : NULL;
}

/* ------------------------------------------------------------------------ */
/* diff                                                                     */

struct diff_row {
	json_t *row;      /* owned until moved into the result */
	char *path;       /* owned */
	size_t seq;       /* walk order, to sort stably */
};

struct diff_walk {
	const char **keys; /* the path so far (borrowed from the trees) */
	size_t depth, keys_cap;
	struct diff_row *rows;
	size_t nrows, rows_cap;
};

static void walk_push(struct diff_walk *w, const char *key)
{
	if (w->depth == w->keys_cap) {
		w->keys_cap = w->keys_cap ? 2 * w->keys_cap : 16;
		w->keys = xrealloc(w->keys, w->keys_cap * sizeof(*w->keys));
	}
	w->keys[w->depth++] = key;
}

/* a row at the current path; a, b: borrowed, NULL = absent on that side */
static void add_row(struct diff_walk *w, const json_t *a, const json_t *b)
{
	size_t len = 0, i;
	char *path, *p;
	json_t *row;

	for (i = 0; i < w->depth; i++)
		len += strlen(w->keys[i]) + 1;
	p = path = xmalloc(len + 1);
	for (i = 0; i < w->depth; i++) {
		size_t l = strlen(w->keys[i]);
		if (i)
			*p++ = '.';
		memcpy(p, w->keys[i], l);
		p += l;
	}
	*p = 0;
	row = json_object();
	json_object_set_new(row, "path", json_string(path));
	json_object_set_new(row, "op", json_string(!a ? "add" : !b ? "remove" : "change"));
	json_object_set_new(row, "old", a ? json_deep_copy(a) : json_null());
	json_object_set_new(row, "new", b ? json_deep_copy(b) : json_null());
	json_object_set_new(row, "class",
			    json_string(spec_class_name(classify_segs(w->keys, NULL, w->depth))));
	if (w->nrows == w->rows_cap) {
		w->rows_cap = w->rows_cap ? 2 * w->rows_cap : 16;
		w->rows = xrealloc(w->rows, w->rows_cap * sizeof(*w->rows));
	}
	w->rows[w->nrows].row = row;
	w->rows[w->nrows].path = path;
	w->rows[w->nrows].seq = w->nrows;
	w->nrows++;
}

/* a, b: the values at the current path (borrowed), NULL when absent */
static void diff_walk(struct diff_walk *w, const json_t *a, const json_t *b)
{
	const json_t *obj, *other;
	const char *k;
	json_t *v;

	obj = json_is_object(a) ? a : json_is_object(b) ? b : NULL;
	if (!a && !b) {
		/* nothing on either side */
	} else if (json_is_object(a) && json_is_object(b) && w->depth < DIFF_MAX_DEPTH) {
		json_object_foreach((json_t *)a, k, v) {
			walk_push(w, k);
			diff_walk(w, v, json_object_get(b, k));
			w->depth--;
		}
		json_object_foreach((json_t *)b, k, v) {
			if (json_object_get(a, k))
				continue;
			walk_push(w, k);
			diff_walk(w, NULL, v);
			w->depth--;
		}
	} else if (!obj || !json_object_size(obj) || w->depth >= DIFF_MAX_DEPTH) {
		/* scalars, lists, empty maps: whole values */
		if (!(a && b && json_equal(a, b)))
			add_row(w, a, b);
	} else {
		/* a map on one side only: every leaf below it is a row of its own */
		other = obj == a ? b : a;
		if (other && !json_is_null(other))
			add_row(w, obj == a ? NULL : other, obj == a ? other : NULL);
		json_object_foreach((json_t *)obj, k, v) {
			walk_push(w, k);
			diff_walk(w, obj == a ? v : NULL, obj == a ? NULL : v);
			w->depth--;
		}
	}
}

static int row_cmp(const void *x, const void *y)
{
	const struct diff_row *a = x, *b = y;
	int c = strcmp(a->path, b->path);
	return c ? c : a->seq < b->seq ? -1 : a->seq > b->seq;
}

json_t *spec_diff(const json_t *old_tree, const json_t *new_tree)
{
	struct diff_walk w = { 0 };
	json_t *out = json_array();

	diff_walk(&w, old_tree, new_tree);
	/* paths are unique unless keys contain dots: then walk order decides */
	if (w.nrows)
		qsort(w.rows, w.nrows, sizeof(*w.rows), row_cmp);
	for (size_t i = 0; i < w.nrows; i++) {
		json_array_append_new(out, w.rows[i].row);
		free(w.rows[i].path);
	}
	free(w.rows);
	free(w.keys);
	return out;
}

bool spec_diff_has_policy(const json_t *diff)
{
	bool policy = !json_is_array(diff);
	size_t i;
	json_t *row;

	json_array_foreach(diff, i, row) {
		const char *c = json_string_value(json_object_get(row, "class"));
		if (!c || strcmp(c, "config"))
			policy = true;
	}
	return policy;
}

/* ------------------------------------------------------------------------ */
/* the diff for people                                                      */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s)
{
	size_t l = strlen(s);
	if (b->len + l + 1 > b->cap) {
		b->cap = MAX(2 * b->cap, b->len + l + 1);
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, l + 1);
	b->len += l;
}

/* a word that reads the same unquoted: no blanks, quotes, brackets, commas, "->" */
static bool plain_word(const char *s, size_t len)
{
	bool plain = len && strlen(s) == len && strcmp(s, "null") && !strstr(s, "->");
	for (size_t i = 0; plain && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		plain = c > ' ' && c != 0x7f && !strchr("\"\\,{}[]", c);
	}
	return plain;
}

/* v (borrowed, NULL: null) as compact text; owned by the caller */
static char *value_text(const json_t *v)
{
	char *s;

	if (json_is_string(v) && plain_word(json_string_value(v), json_string_length(v)))
		s = xstrdup(json_string_value(v));
	else
		s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	return s ? s : xstrdup("null");
}

char *spec_diff_text(const json_t *diff)
{
	struct sbuf b = { 0 };
	size_t i;
	json_t *row;

	sb_add(&b, "");
	json_array_foreach(diff, i, row) {
		const char *path = json_string_value(json_object_get(row, "path"));
		const char *op = json_string_value(json_object_get(row, "op"));
		const char *cls = json_string_value(json_object_get(row, "class"));
		const json_t *o = json_object_get(row, "old"), *n = json_object_get(row, "new");
		char *ot = value_text(o), *nt = value_text(n);

		if (!op) /* rows without op: from the values */
			op = json_is_null(o) ? "add" : json_is_null(n) ? "remove" : "change";
		sb_add(&b, !strcmp(op, "add") ? "  + " : !strcmp(op, "remove") ? "  - " : "  ~ ");
		sb_add(&b, path ? path : "?");
		sb_add(&b, ": ");
		if (!strcmp(op, "add")) {
			sb_add(&b, nt);
		} else if (!strcmp(op, "remove")) {
			sb_add(&b, ot);
		} else {
			sb_add(&b, ot);
			sb_add(&b, " -> ");
			sb_add(&b, nt);
		}
		if (!cls || !strcmp(cls, "unknown"))
			sb_add(&b, " (unknown: treated as policy)");
		else if (!strcmp(cls, "policy"))
			sb_add(&b, " (policy)");
		sb_add(&b, "\n");
		free(nt);
		free(ot);
	}
	return b.p;
}
