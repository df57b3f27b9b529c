/*
 * spec_flags.c — the spec's `flags:` (spec_flags.h): the YAML, typed into
 * JSON, is checked by flags/ (flag_defs_parse), whose message names the
 * path of the problem ("flags.x.rules[1].serve: ..."); the diagnostic is
 * placed at that path's node.
 */
#include "common.h"
#include "core/spec_flags.h"
#include "core/spec.h"
#include "core/condition.h"
#include "flags/flags.h"
#include <ctype.h>

static bool plain_number(const char *s)
{
	char *end;
	if (!*s || isspace((unsigned char)*s))
		return false;
	(void)strtod(s, &end);
	return !*end && strspn(s, "0123456789+-.eE") == strlen(s);
}

/* a variant's value: typed scalars, nested mappings and lists */
static json_t *typed(const struct spec_node *n)
{
	json_t *o;
	const char *t;
	switch (spec_node_kind(n)) {
	case SPEC_NODE_MAP:
		o = json_object();
		for (size_t i = 0; i < spec_node_count(n); i++)
			if (spec_node_text(spec_node_key(n, i)))
				json_object_set_new(o, spec_node_text(spec_node_key(n, i)), typed(spec_node_item(n, i)));
		return o;
	case SPEC_NODE_SEQ:
		o = json_array();
		for (size_t i = 0; i < spec_node_count(n); i++)
			json_array_append_new(o, typed(spec_node_item(n, i)));
		return o;
	case SPEC_NODE_SCALAR:
		t = spec_node_text(n);
		if (spec_node_quoted(n))
			return json_string(t);
		if (!strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE"))
			return json_true();
		if (!strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE"))
			return json_false();
		if (!strcmp(t, "~") || !strcmp(t, "null") || !*t)
			return json_null();
		if (plain_number(t)) {
			char *end;
			long long v = strtoll(t, &end, 10);
			return *end ? json_real(strtod(t, NULL)) : json_integer(v);
		}
		return json_string(t);
	default:
		return json_null();
	}
}

/* every scalar a string, as the rules compare them, except the values of variants and rule lists */
static json_t *flag_json(const struct spec_node *n, int depth, bool in_variants)
{
	json_t *o;
	if (in_variants || depth > 8)
		return typed(n);
	switch (spec_node_kind(n)) {
	case SPEC_NODE_MAP:
		o = json_object();
		for (size_t i = 0; i < spec_node_count(n); i++) {
			const char *k = spec_node_text(spec_node_key(n, i));
			if (!k)
				continue;
			json_object_set_new(o, k, flag_json(spec_node_item(n, i), depth + 1,
							    !strcmp(k, "variants") || !strcmp(k, "in") ||
								    !strcmp(k, "equals")));
		}
		return o;
	case SPEC_NODE_SEQ:
		o = json_array();
		for (size_t i = 0; i < spec_node_count(n); i++)
			json_array_append_new(o, flag_json(spec_node_item(n, i), depth + 1, false));
		return o;
	case SPEC_NODE_SCALAR:
		return json_string(spec_node_text(n));
	default:
		return json_null();
	}
}

json_t *spec_flags_json(const struct spec *spec)
{
	const struct spec_node *n = spec_node_get(spec_root(spec), "flags");
	return n ? flag_json(n, 0, false) : NULL;
}

/* environments.ENV.flags, or NULL */
static const struct spec_node *env_flags(const struct spec_node *root, const char *env)
{
	return spec_node_get(spec_node_get(spec_node_get(root, "environments"), env), "flags");
}

/* into all (the top-level flags as JSON): each NAME of ov (environments.E.flags) replaces
 * the keys it sets of flag NAME; names all does not have are left out */
static void merge(json_t *all, const struct spec_node *ov)
{
	for (size_t i = 0; spec_node_kind(ov) == SPEC_NODE_MAP && i < spec_node_count(ov); i++) {
		const char *name = spec_node_text(spec_node_key(ov, i)), *k;
		json_t *def = name ? json_object_get(all, name) : NULL, *o, *v;
		if (!json_is_object(def))
			continue;
		o = flag_json(spec_node_item(ov, i), 1, false);
		json_object_foreach(o, k, v)
			json_object_set(def, k, v);
		json_decref(o);
	}
}

json_t *spec_flags_json_env(const struct spec *spec, const char *env)
{
	json_t *all = spec_flags_json(spec);
	if (all && env)
		merge(all, env_flags(spec_root(spec), env));
	return all;
}

/* the node at path "flags.x.rules[1].if.semver" (as far as it exists), and its key node for unknown keys */
static const struct spec_node *node_at(const struct spec_node *root, const char *path, const char *msg)
{
	const struct spec_node *n = root, *best = root;
	char seg[128];
	const char *p = path;
	while (*p && n) {
		size_t len = strcspn(p, ".[");
		if (len) {
			snprintf(seg, sizeof(seg), "%.*s", (int)len, p);
			n = spec_node_get(n, seg);
			p += len;
		} else if (*p == '[') {
			size_t i = strtoul(p + 1, NULL, 10);
			n = i < spec_node_count(n) && spec_node_kind(n) == SPEC_NODE_SEQ ? spec_node_item(n, i) : NULL;
			p = strchr(p, ']') ? strchr(p, ']') + 1 : p + strlen(p);
		} else {
			p++;
		}
		if (n)
			best = n;
	}
	/* "unknown key 'k'": at the key itself */
	if (n && spec_node_kind(n) == SPEC_NODE_MAP && !strncmp(msg, "unknown key '", 13)) {
		size_t kl = strcspn(msg + 13, "'");
		for (size_t i = 0; i < spec_node_count(n); i++) {
			const char *k = spec_node_text(spec_node_key(n, i));
			if (k && strlen(k) == kl && !strncmp(k, msg + 13, kl))
				return spec_node_key(n, i);
		}
	}
	return best;
}

static void report(struct diags *diags, const char *file, const char *src, size_t srclen,
		   const struct spec_node *at, const char *path, const char *msg)
{
	char line_text[256];
	int line, col;
	spec_node_pos(at, &line, &col);
	diags_add(diags, file, line, col, path, diag_source_line(src, srclen, line, line_text, sizeof(line_text)),
		  "%s", msg);
}

/* "flag_off: no flag 'X' under flags:" with a did-you-mean among the spec's flags into msg */
static void no_flag(const struct spec_node *flags, const char *name, char *msg, size_t len)
{
	const char *cands[FLAGS_MAX], *sug;
	size_t n = 0;
	for (size_t i = 0; spec_node_kind(flags) == SPEC_NODE_MAP && i < spec_node_count(flags) && n < FLAGS_MAX; i++)
		if (spec_node_text(spec_node_key(flags, i)))
			cands[n++] = spec_node_text(spec_node_key(flags, i));
	sug = diag_suggest(name, cands, n);
	snprintf(msg, len, "flag_off: no flag '%s' under flags:%s%s%s", name, sug ? " (did you mean '" : "",
		 sug ? sug : "", sug ? "'?)" : "");
}

/* the flag_off: of each analysis of a NAME: {analysis} mapping names a flag of the spec */
static int check_analyses(const struct spec_node *flags, const struct spec_node *an, const char *path,
			  const char *file, const char *src, size_t srclen, struct diags *diags)
{
	int nerr = 0;
	for (size_t i = 0; spec_node_kind(an) == SPEC_NODE_MAP && i < spec_node_count(an); i++) {
		const char *name = spec_node_text(spec_node_key(an, i));
		const struct spec_node *fo = spec_node_get(spec_node_item(an, i), "flag_off");
		const char *t = fo ? spec_node_text(fo) : NULL;
		char p[300], msg[300];
		if (!t || !*t || (spec_node_kind(flags) == SPEC_NODE_MAP && spec_node_get(flags, t)))
			continue;
		snprintf(p, sizeof(p), "%s.%s.flag_off", path, name ? name : "?");
		no_flag(flags, t, msg, sizeof(msg));
		report(diags, file, src, srclen, fo, p, msg);
		nerr++;
	}
	return nerr;
}

/* the flag_off actions of one rollback_on list name flags of the spec */
static int check_actions(const struct spec_node *flags, const struct spec_node *rb, const char *path, const char *file,
			 const char *src, size_t srclen, struct diags *diags)
{
	int nerr = 0;
	for (size_t i = 0; spec_node_kind(rb) == SPEC_NODE_SEQ && i < spec_node_count(rb); i++) {
		const char *t = spec_node_text(spec_node_item(rb, i));
		char cond[CONDITION_MAX_LEN * 2 + 1], flag[FLAG_NAME_MAX + 1], p[300], msg[300];
		struct gerr err;
		if (!t || flag_action_split(t, cond, sizeof(cond), flag, sizeof(flag), &err) != 1)
			continue;
		if (spec_node_kind(flags) == SPEC_NODE_MAP && spec_node_get(flags, flag))
			continue;
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		no_flag(flags, flag, msg, sizeof(msg));
		report(diags, file, src, srclen, spec_node_item(rb, i), p, msg);
		nerr++;
	}
	return nerr;
}

/*
 * environments.E.flags.NAME: {default, variants, rules}: NAME is a flag of
 * the top-level flags:, and the flag with the keys given replaced is valid.
 * A problem in a key the override sets is placed there, one in a key it
 * inherits at the override (the combination is what fails).
 */
static int check_env_overrides(const struct spec_node *root, const struct spec_node *flags, const char *file,
			       const char *src, size_t srclen, struct diags *diags)
{
	const struct spec_node *envs = spec_node_get(root, "environments");
	int nerr = 0;
	for (size_t e = 0; spec_node_kind(envs) == SPEC_NODE_MAP && e < spec_node_count(envs); e++) {
		const char *en = spec_node_text(spec_node_key(envs, e));
		const struct spec_node *ov = spec_node_get(spec_node_item(envs, e), "flags");
		char base[200];
		if (!en || !ov)
			continue;
		snprintf(base, sizeof(base), "environments.%s.flags", en);
		if (spec_node_kind(ov) != SPEC_NODE_MAP) {
			report(diags, file, src, srclen, ov, base, "expected a mapping of NAME: {default, variants, rules}");
			nerr++;
			continue;
		}
		for (size_t i = 0; i < spec_node_count(ov); i++) {
			const char *name = spec_node_text(spec_node_key(ov, i));
			const struct spec_node *item = spec_node_item(ov, i);
			json_t *one, *def, *o;
			struct flag_defs defs;
			struct gerr err;
			char p[300], msg[300];
			const char *k;
			json_t *v;
			if (!name)
				continue;
			snprintf(p, sizeof(p), "%s.%s", base, name);
			if (spec_node_kind(flags) != SPEC_NODE_MAP || !spec_node_get(flags, name)) {
				const char *cands[FLAGS_MAX], *sug;
				size_t n = 0;
				for (size_t j = 0; spec_node_kind(flags) == SPEC_NODE_MAP && j < spec_node_count(flags) &&
						   n < FLAGS_MAX; j++)
					if (spec_node_text(spec_node_key(flags, j)))
						cands[n++] = spec_node_text(spec_node_key(flags, j));
				sug = diag_suggest(name, cands, n);
				snprintf(msg, sizeof(msg), "no flag '%s' under flags: to override%s%s%s", name,
					 sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
				report(diags, file, src, srclen, spec_node_key(ov, i), p, msg);
				nerr++;
				continue;
			}
			if (spec_node_kind(item) != SPEC_NODE_MAP) {
				report(diags, file, src, srclen, item, p, "expected a mapping of {default, variants, rules}");
				nerr++;
				continue;
			}
			def = flag_json(spec_node_get(flags, name), 1, false);
			if (!json_is_object(def)) {
				json_decref(def);
				def = json_object();
			}
			o = flag_json(item, 1, false);
			json_object_foreach(o, k, v)
				json_object_set(def, k, v);
			one = json_object();
			json_object_set_new(one, name, def);
			if (flag_defs_parse(one, &defs, &err) < 0) {
				/* "flags.NAME.KEY...: msg" */
				const char *sep = strstr(err.msg, ": "), *rest = err.msg + strlen("flags.") + strlen(name);
				const char *m = sep ? sep + 2 : err.msg;
				char path[300], key[64];
				size_t kl = 0;
				if (!strncmp(err.msg, "flags.", 6) && *rest == '.')
					kl = strcspn(rest + 1, ".[:");
				snprintf(key, sizeof(key), "%.*s", (int)MIN(kl, sizeof(key) - 1), kl ? rest + 1 : "");
				if (!strncmp(m, "unknown key '", 13) || (kl && json_object_get(o, key)))
					snprintf(path, sizeof(path), "environments.%s.%.*s", en,
						 sep ? (int)(sep - err.msg) : (int)strlen(err.msg), err.msg);
				else
					snprintf(path, sizeof(path), "%s", p);
				report(diags, file, src, srclen, node_at(root, path, m), path, m);
				nerr++;
			} else {
				flag_defs_release(&defs);
			}
			json_decref(one);
			json_decref(o);
		}
	}
	return nerr;
}

int spec_flags_check(const struct spec *spec, const char *file, const char *src, size_t srclen, struct diags *diags)
{
	const struct spec_node *root = spec_root(spec), *flags = spec_node_get(root, "flags");
	const struct spec_node *svcs = spec_node_get(root, "services");
	int nerr = 0;

	for (size_t i = 0; spec_node_kind(svcs) == SPEC_NODE_MAP && i < spec_node_count(svcs); i++) {
		const char *sn = spec_node_text(spec_node_key(svcs, i));
		const struct spec_node *sv = spec_node_item(svcs, i), *envs = spec_node_get(sv, "environments");
		char p[300];
		if (!sn)
			continue;
		snprintf(p, sizeof(p), "services.%s.rollback_on", sn);
		nerr += check_actions(flags, spec_node_get(sv, "rollback_on"), p, file, src, srclen, diags);
		snprintf(p, sizeof(p), "services.%s.analysis", sn);
		nerr += check_analyses(flags, spec_node_get(sv, "analysis"), p, file, src, srclen, diags);
		for (size_t j = 0; spec_node_kind(envs) == SPEC_NODE_MAP && j < spec_node_count(envs); j++) {
			const char *en = spec_node_text(spec_node_key(envs, j));
			snprintf(p, sizeof(p), "services.%s.environments.%s.rollback_on", sn, en ? en : "?");
			nerr += check_actions(flags, spec_node_get(spec_node_item(envs, j), "rollback_on"), p, file, src,
					      srclen, diags);
			snprintf(p, sizeof(p), "services.%s.environments.%s.analysis", sn, en ? en : "?");
			nerr += check_analyses(flags, spec_node_get(spec_node_item(envs, j), "analysis"), p, file, src,
					       srclen, diags);
		}
	}
	nerr += check_analyses(flags, spec_node_get(root, "analysis_templates"), "analysis_templates", file, src,
			       srclen, diags);
	nerr += check_env_overrides(root, flags, file, src, srclen, diags);
	if (!flags)
		return nerr;
	if (spec_node_kind(flags) != SPEC_NODE_MAP) {
		report(diags, file, src, srclen, flags, "flags", "expected a mapping of NAME: {default, variants, rules}");
		return nerr + 1;
	}
	/* one flag at a time, so that each bad flag gets its diagnostic */
	for (size_t i = 0; i < spec_node_count(flags); i++) {
		const char *name = spec_node_text(spec_node_key(flags, i));
		json_t *one, *j;
		struct flag_defs defs;
		struct gerr err;
		if (!name)
			continue;
		j = flag_json(spec_node_item(flags, i), 1, false);
		one = json_object();
		json_object_set_new(one, name, j);
		if (flag_defs_parse(one, &defs, &err) < 0) {
			const char *sep = strstr(err.msg, ": ");
			char path[256];
			snprintf(path, sizeof(path), "%.*s", sep ? (int)(sep - err.msg) : (int)strlen(err.msg), err.msg);
			report(diags, file, src, srclen, node_at(root, path, sep ? sep + 2 : err.msg), path,
			       sep ? sep + 2 : err.msg);
			nerr++;
		} else {
			flag_defs_release(&defs);
		}
		json_decref(one);
	}
	return nerr;
}
