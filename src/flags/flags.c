/*
 * flags.c — feature flag definitions, evaluation and OFREP answers (flags.h).
 */
#include "common.h"
#include "flags/flags.h"
#include <ctype.h>
#include <math.h>

bool flag_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > FLAG_NAME_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

int flag_pct_parse(const char *s, double *pct)
{
	size_t n = s ? strlen(s) : 0, digits = 0, decimals = 0;
	bool dot = false;
	char *end;
	double v;

	if (n < 2 || s[n - 1] != '%')
		return -1;
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] == '.' && !dot && digits) {
			dot = true;
		} else if (isdigit((unsigned char)s[i])) {
			digits++;
			decimals += dot;
		} else {
			return -1;
		}
	}
	if (!digits || decimals > 2 || s[n - 2] == '.')
		return -1;
	v = strtod(s, &end);
	if (end != s + n - 1 || !(v >= 0 && v <= 100))
		return -1;
	*pct = v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* semver                                                                   */

static int num(const char **p, long *out)
{
	const char *s = *p;
	long v = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	if (s[0] == '0' && isdigit((unsigned char)s[1]))
		return -1;
	while (isdigit((unsigned char)*s)) {
		if (v > 100000000)
			return -1;
		v = v * 10 + (*s++ - '0');
	}
	*out = v;
	*p = s;
	return 0;
}

int semver_parse(const char *s, struct semver *out)
{
	const char *p = s;
	size_t n;
	memset(out, 0, sizeof(*out));
	if (!s)
		return -1;
	if (*p == 'v' || *p == 'V')
		p++;
	if (num(&p, &out->major) < 0)
		return -1;
	if (*p == '.') {
		p++;
		if (num(&p, &out->minor) < 0)
			return -1;
		if (*p == '.') {
			p++;
			if (num(&p, &out->patch) < 0)
				return -1;
		}
	}
	if (*p == '-') {
		p++;
		n = strcspn(p, "+");
		if (!n || n >= sizeof(out->pre))
			return -1;
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '.' && p[i] != '-')
				return -1;
		memcpy(out->pre, p, n);
		out->pre[n] = 0;
		p += n;
	}
	if (*p == '+') {
		p++;
		if (!*p)
			return -1;
		for (; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
				return -1;
	}
	return *p ? -1 : 0;
}

/* pre-release identifiers: numeric ones numerically, below alphanumeric ones (semver 11.4) */
static int pre_cmp(const char *a, const char *b)
{
	if (!*a || !*b)
		return !*a && !*b ? 0 : !*a ? 1 : -1; /* a release is above its pre-releases */
	while (*a || *b) {
		size_t la = strcspn(a, "."), lb = strcspn(b, ".");
		bool na = la && strspn(a, "0123456789") >= la, nb = lb && strspn(b, "0123456789") >= lb;
		int c;
		if (!la || !lb)
			return la ? 1 : lb ? -1 : 0;
		if (na && nb)
			c = la != lb ? (la < lb ? -1 : 1) : strncmp(a, b, la);
		else if (na != nb)
			c = na ? -1 : 1;
		else {
			c = strncmp(a, b, MIN(la, lb));
			if (!c && la != lb)
				c = la < lb ? -1 : 1;
		}
		if (c)
			return c < 0 ? -1 : 1;
		a += la + (a[la] == '.');
		b += lb + (b[lb] == '.');
	}
	return 0;
}

int semver_cmp(const struct semver *a, const struct semver *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return pre_cmp(a->pre, b->pre);
}

int semver_range_parse(const char *s, struct semver_range *out, struct gerr *err)
{
	static const struct { const char *op; enum semver_op v; } ops[] = {
		{ ">=", SV_GE }, { "<=", SV_LE }, { "!=", SV_NE }, { "==", SV_EQ }, { ">", SV_GT },
		{ "<", SV_LT }, { "=", SV_EQ }, { "^", SV_CARET }, { "~", SV_TILDE },
	};
	const char *p = s ? s : "";
	size_t i;

	while (*p == ' ')
		p++;
	for (i = 0; i < ARRAY_SIZE(ops); i++)
		if (!strncmp(p, ops[i].op, strlen(ops[i].op)))
			break;
	if (i == ARRAY_SIZE(ops))
		return gerr_set(err, "invalid semver range '%s': start with >=, >, <=, <, =, !=, ^ or ~", s ? s : "");
	out->op = ops[i].v;
	p += strlen(ops[i].op);
	while (*p == ' ')
		p++;
	if (semver_parse(p, &out->v) < 0)
		return gerr_set(err, "invalid semver range '%s': '%s' is not a version (MAJOR[.MINOR[.PATCH]][-PRE])", s, p);
	return 0;
}

bool semver_range_match(const struct semver_range *r, const struct semver *v)
{
	int c = semver_cmp(v, &r->v);
	switch (r->op) {
	case SV_GE: return c >= 0;
	case SV_GT: return c > 0;
	case SV_LE: return c <= 0;
	case SV_LT: return c < 0;
	case SV_EQ: return c == 0;
	case SV_NE: return c != 0;
	case SV_CARET: return c >= 0 && v->major == r->v.major;
	case SV_TILDE: return c >= 0 && v->major == r->v.major && v->minor == r->v.minor;
	}
	return false;
}

/* ------------------------------------------------------------------------ */
/* definitions                                                              */

int flag_serve_parse(const struct flag_def *def, const char *s, struct flag_serve *out, struct gerr *err)
{
	memset(out, 0, sizeof(*out));
	out->pct = -1;
	if (!s || !*s)
		return gerr_set(err, "expected a variant or a percentage (\"25%%\")");
	if (strchr(s, '%')) {
		if (flag_pct_parse(s, &out->pct) < 0)
			return gerr_set(err, "bad percentage '%s' (0%% to 100%%, at most two decimals: \"12.5%%\")", s);
		if (def && (!json_object_get(def->variants, "on") || !json_object_get(def->variants, "off")))
			return gerr_set(err, "a percentage serves 'on' to a share and 'off' to the others: "
				       "the flag needs both variants");
		return 0;
	}
	if (def && !json_object_get(def->variants, s)) {
		char names[256] = "";
		const char *k;
		json_t *v;
		json_object_foreach(def->variants, k, v)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", names[0] ? ", " : "", k);
		return gerr_set(err, "unknown variant '%s' (variants: %s)", s, names);
	}
	if (!flag_name_valid(s))
		return gerr_set(err, "invalid variant name '%s'", s);
	strlcpy_g(out->variant, s, sizeof(out->variant));
	return 0;
}

const char *flag_serve_text(const struct flag_serve *s, char *buf, size_t len)
{
	if (s->pct >= 0)
		snprintf(buf, len, "%g%%", s->pct);
	else
		snprintf(buf, len, "%s", s->variant);
	return buf;
}

static void def_release(struct flag_def *d)
{
	json_decref(d->variants);
	for (size_t i = 0; i < d->nrules; i++)
		json_decref(d->rules[i].values);
	free(d->rules);
	memset(d, 0, sizeof(*d));
}

void flag_defs_release(struct flag_defs *d)
{
	for (size_t i = 0; i < d->n; i++)
		def_release(&d->defs[i]);
	free(d->defs);
	memset(d, 0, sizeof(*d));
}

const struct flag_def *flag_defs_find(const struct flag_defs *d, const char *name)
{
	for (size_t i = 0; d && name && i < d->n; i++)
		if (!strcmp(d->defs[i].name, name))
			return &d->defs[i];
	return NULL;
}

static bool scalar(const json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

static int rule_parse(struct flag_def *d, const json_t *r, const char *path, struct flag_rule *out, struct gerr *err)
{
	const json_t *c = json_object_get(r, "if"), *serve = json_object_get(r, "serve"), *v;
	const char *k;
	struct gerr e2;
	int nconds = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(r))
		return gerr_set(err, "%s: expected a mapping {if, serve}", path);
	json_object_foreach((json_t *)r, k, v)
		if (strcmp(k, "if") && strcmp(k, "serve"))
			return gerr_set(err, "%s: unknown key '%s' (if, serve)", path, k);
	if (!serve)
		return gerr_set(err, "%s: missing key 'serve'", path);
	if (!json_is_string(serve) || flag_serve_parse(d, json_string_value(serve), &out->serve, &e2) < 0)
		return gerr_set(err, "%s.serve: %s", path, json_is_string(serve) ? e2.msg : "expected a variant or a percentage");
	if (!c) {
		out->cond = FC_ALWAYS;
		return 0;
	}
	if (!json_is_object(c))
		return gerr_set(err, "%s.if: expected a mapping {attr, in|equals|semver}", path);
	json_object_foreach((json_t *)c, k, v) {
		if (!strcmp(k, "attr")) {
			if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > FLAG_NAME_MAX)
				return gerr_set(err, "%s.if.attr: expected an attribute name (at most %d characters)", path,
						FLAG_NAME_MAX);
			strlcpy_g(out->attr, json_string_value(v), sizeof(out->attr));
		} else if (!strcmp(k, "in")) {
			size_t i;
			json_t *it;
			if (!json_is_array(v) || !json_array_size(v) || json_array_size(v) > FLAG_LIST_MAX)
				return gerr_set(err, "%s.if.in: expected a list of 1 to %d values", path, FLAG_LIST_MAX);
			json_array_foreach(v, i, it)
				if (!scalar(it))
					return gerr_set(err, "%s.if.in[%zu]: expected a plain value", path, i);
			out->cond = FC_IN;
			out->values = json_deep_copy(v);
			nconds++;
		} else if (!strcmp(k, "equals")) {
			if (!scalar(v))
				return gerr_set(err, "%s.if.equals: expected a plain value", path);
			out->cond = FC_EQUALS;
			json_decref(out->values);
			out->values = json_deep_copy(v);
			nconds++;
		} else if (!strcmp(k, "semver")) {
			if (!json_is_string(v) || semver_range_parse(json_string_value(v), &out->range, &e2) < 0)
				return gerr_set(err, "%s.if.semver: %s", path, json_is_string(v) ? e2.msg : "expected a range like \">= 2.1\"");
			out->cond = FC_SEMVER;
			nconds++;
		} else {
			return gerr_set(err, "%s.if: unknown key '%s' (attr, in, equals, semver)", path, k);
		}
	}
	if (!out->attr[0])
		return gerr_set(err, "%s.if: missing key 'attr'", path);
	if (nconds != 1)
		return gerr_set(err, "%s.if: give exactly one of in, equals, semver", path);
	return 0;
}

static int def_parse(const char *name, const json_t *j, struct flag_def *d, struct gerr *err)
{
	const json_t *vars = json_object_get(j, "variants"), *def = json_object_get(j, "default"),
		     *rules = json_object_get(j, "rules"), *v;
	const char *k;
	char path[128];
	struct gerr e2;

	snprintf(path, sizeof(path), "flags.%s", name);
	if (!flag_name_valid(name))
		return gerr_set(err, "%s: invalid flag name (letters, digits, '_', '-', '.', at most %d)", path, FLAG_NAME_MAX);
	strlcpy_g(d->name, name, sizeof(d->name));
	if (j && !json_is_null(j) && !json_is_object(j))
		return gerr_set(err, "%s: expected a mapping {default, variants, rules}", path);
	json_object_foreach((json_t *)j, k, v)
		if (strcmp(k, "default") && strcmp(k, "variants") && strcmp(k, "rules") && strcmp(k, "description"))
			return gerr_set(err, "%s: unknown key '%s' (default, variants, rules, description)", path, k);
	if (!vars || json_is_null(vars)) {
		d->variants = json_pack("{s:b, s:b}", "on", 1, "off", 0);
	} else {
		if (!json_is_object(vars) || !json_object_size(vars) || json_object_size(vars) > FLAG_VARIANTS_MAX)
			return gerr_set(err, "%s.variants: expected a mapping of 1 to %d variants (name: value)", path,
					FLAG_VARIANTS_MAX);
		json_object_foreach((json_t *)vars, k, v)
			if (!flag_name_valid(k))
				return gerr_set(err, "%s.variants: invalid variant name '%s'", path, k);
		d->variants = json_deep_copy(vars);
	}
	if (!def || json_is_null(def)) {
		if (!json_object_get(d->variants, "off"))
			return gerr_set(err, "%s: missing key 'default' (there is no variant 'off' to default to)", path);
		flag_serve_parse(d, "off", &d->def, &e2);
	} else if (!json_is_string(def) || flag_serve_parse(d, json_string_value(def), &d->def, &e2) < 0) {
		return gerr_set(err, "%s.default: %s", path, json_is_string(def) ? e2.msg : "expected a variant or a percentage");
	}
	if (rules && !json_is_null(rules)) {
		size_t i;
		json_t *r;
		if (!json_is_array(rules) || json_array_size(rules) > FLAG_RULES_MAX)
			return gerr_set(err, "%s.rules: expected a list of at most %d rules", path, FLAG_RULES_MAX);
		d->rules = xcalloc(json_array_size(rules) + 1, sizeof(*d->rules));
		json_array_foreach(rules, i, r) {
			char rp[160];
			snprintf(rp, sizeof(rp), "%s.rules[%zu]", path, i);
			d->nrules = i + 1;
			if (rule_parse(d, r, rp, &d->rules[i], err) < 0)
				return -1;
		}
	}
	return 0;
}

int flag_defs_parse(const json_t *flags, struct flag_defs *out, struct gerr *err)
{
	const char *k;
	json_t *v;

	memset(out, 0, sizeof(*out));
	if (!flags || json_is_null(flags))
		return 0;
	if (!json_is_object(flags))
		return gerr_set(err, "flags: expected a mapping of NAME: {default, variants, rules}");
	if (json_object_size(flags) > FLAGS_MAX)
		return gerr_set(err, "flags: at most %d flags", FLAGS_MAX);
	out->defs = xcalloc(json_object_size(flags) + 1, sizeof(*out->defs));
	json_object_foreach((json_t *)flags, k, v) {
		if (def_parse(k, v, &out->defs[out->n++], err) < 0) {
			flag_defs_release(out);
			return -1;
		}
	}
	return 0;
}

int flag_action_split(const char *s, char *cond, size_t clen, char *flag, size_t flen, struct gerr *err)
{
	const char *then = strstr(s, " then "), *a;
	size_t n;
	flag[0] = 0;
	if (!then) {
		strlcpy_g(cond, s, clen);
		return 0;
	}
	n = (size_t)(then - s);
	snprintf(cond, clen, "%.*s", (int)n, s);
	a = then + 6;
	while (*a == ' ')
		a++;
	if (strncmp(a, "flag_off ", 9))
		return gerr_set(err, "unknown action '%s' after 'then' (flag_off NAME)", a);
	a += 9;
	while (*a == ' ')
		a++;
	n = strcspn(a, " ");
	if (a[n] && a[n + strspn(a + n, " ")])
		return gerr_set(err, "flag_off takes one flag name, got '%s'", a);
	snprintf(flag, flen, "%.*s", (int)n, a);
	if (!flag_name_valid(flag))
		return gerr_set(err, "flag_off: invalid flag name '%s'", flag);
	return 1;
}

/* ------------------------------------------------------------------------ */
/* evaluation                                                               */

uint32_t flags_murmur3(const void *data, size_t len, uint32_t seed)
{
	const uint8_t *p = data;
	uint32_t h = seed, k;
	size_t i, nblocks = len / 4;
	const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;

	for (i = 0; i < nblocks; i++) {
		k = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
		    (uint32_t)p[4 * i + 3] << 24;
		k *= c1;
		k = (k << 15) | (k >> 17);
		k *= c2;
		h ^= k;
		h = (h << 13) | (h >> 19);
		h = h * 5 + 0xe6546b64;
	}
	k = 0;
	switch (len & 3) {
	case 3: k ^= (uint32_t)p[4 * nblocks + 2] << 16; /* fall through */
	case 2: k ^= (uint32_t)p[4 * nblocks + 1] << 8;  /* fall through */
	case 1:
		k ^= p[4 * nblocks];
		k *= c1;
		k = (k << 15) | (k >> 17);
		k *= c2;
		h ^= k;
	}
	h ^= (uint32_t)len;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

unsigned flags_bucket(const char *flag, const char *targeting_key)
{
	size_t lf = strlen(flag), lt = strlen(targeting_key);
	char stack[256], *buf = lf + lt <= sizeof(stack) ? stack : xmalloc(lf + lt + 1);
	uint32_t h;
	memcpy(buf, flag, lf);
	memcpy(buf + lf, targeting_key, lt);
	h = flags_murmur3(buf, lf + lt, 0);
	if (buf != stack)
		free(buf);
	return (unsigned)(((uint64_t)h * 10000) >> 32);
}

const char *flag_error_code(enum flag_error e)
{
	switch (e) {
	case FE_NONE: return "";
	case FE_FLAG_NOT_FOUND: return "FLAG_NOT_FOUND";
	case FE_PARSE_ERROR: return "PARSE_ERROR";
	case FE_TARGETING_KEY_MISSING: return "TARGETING_KEY_MISSING";
	case FE_INVALID_CONTEXT: return "INVALID_CONTEXT";
	case FE_GENERAL: return "GENERAL";
	}
	return "GENERAL";
}

static int fail(struct flag_result *out, enum flag_error e, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int fail(struct flag_result *out, enum flag_error e, const char *fmt, ...)
{
	va_list ap;
	out->error = e;
	out->reason = "ERROR";
	va_start(ap, fmt);
	vsnprintf(out->details, sizeof(out->details), fmt, ap);
	va_end(ap);
	return -1;
}

/* the attribute's text for comparisons: strings as they are, numbers and booleans as JSON writes them */
static bool attr_text(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else
		return false;
	return true;
}

static bool same_value(const json_t *a, const json_t *b)
{
	char x[256], y[256];
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return attr_text(a, x, sizeof(x)) && attr_text(b, y, sizeof(y)) && !strcmp(x, y);
}

static const json_t *attr_of(const json_t *ctx, const char *attr)
{
	return json_object_get(ctx, attr);
}

static bool rule_matches(const struct flag_rule *r, const json_t *ctx)
{
	const json_t *v = r->cond == FC_ALWAYS ? NULL : attr_of(ctx, r->attr), *it;
	struct semver sv;
	size_t i;

	switch (r->cond) {
	case FC_ALWAYS:
		return true;
	case FC_IN:
		json_array_foreach(r->values, i, it)
			if (v && same_value(v, it))
				return true;
		return false;
	case FC_EQUALS:
		return v && same_value(v, r->values);
	case FC_SEMVER:
		return json_is_string(v) && semver_parse(json_string_value(v), &sv) == 0 &&
		       semver_range_match(&r->range, &sv);
	}
	return false;
}

/* serve s of d into out: -1 when a percentage has no targeting key */
static int serve(const struct flag_def *d, const struct flag_serve *s, const json_t *ctx, const char *reason,
		 struct flag_result *out)
{
	const char *var = s->variant;
	if (s->pct >= 0) {
		const json_t *tk = json_object_get(ctx, "targetingKey");
		if (!json_is_string(tk) || !json_string_length(tk))
			return fail(out, FE_TARGETING_KEY_MISSING,
				    "flag '%s' serves a percentage: the context needs a targetingKey", d->name);
		var = (double)flags_bucket(d->name, json_string_value(tk)) < s->pct * 100.0 ? "on" : "off";
		reason = "SPLIT";
	}
	out->value = json_object_get(d->variants, var);
	if (!out->value)
		return fail(out, FE_GENERAL, "flag '%s' has no variant '%s'", d->name, var);
	/* the key stored in the object: borrowed from the definition, whatever var pointed to */
	out->variant = json_object_iter_key(json_object_iter_at(d->variants, var));
	out->reason = reason;
	return 0;
}

int flag_evaluate(const struct flag_def *def, const char *state, const json_t *ctx, struct flag_result *out)
{
	struct flag_serve st;
	struct gerr err;

	memset(out, 0, sizeof(*out));
	if (ctx && !json_is_object(ctx))
		return fail(out, FE_INVALID_CONTEXT, "the context must be an object");
	if (state && *state && strcmp(state, "spec")) {
		if (flag_serve_parse(def, state, &st, &err) < 0)
			return fail(out, FE_GENERAL, "flag '%s': state '%s': %s", def->name, state, err.msg);
		return serve(def, &st, ctx, "STATIC", out);
	}
	for (size_t i = 0; i < def->nrules; i++)
		if (rule_matches(&def->rules[i], ctx))
			return serve(def, &def->rules[i].serve, ctx, "TARGETING_MATCH", out);
	return serve(def, &def->def, ctx, def->nrules ? "DEFAULT" : "STATIC", out);
}

/* ------------------------------------------------------------------------ */
/* OFREP                                                                    */

static json_t *success(const char *key, const struct flag_result *r)
{
	return json_pack("{s:s, s:O, s:s, s:s, s:{}}", "key", key, "value", r->value, "reason", r->reason, "variant",
			 r->variant, "metadata");
}

static json_t *failure(const char *key, enum flag_error e, const char *details)
{
	json_t *o = json_pack("{s:s, s:s}", "errorCode", flag_error_code(e), "errorDetails", details);
	if (key)
		json_object_set_new(o, "key", json_string(key));
	return o;
}

void ofrep_evaluate(const struct flag_defs *defs, flag_state_fn state, void *arg, uint64_t version,
		    const char *key, const char *body, size_t len, const char *if_none_match, struct ofrep_answer *out)
{
	(void)version; /* the ETag hashes the answer itself (see below) */
	json_error_t jerr;
	json_t *req = NULL, *ctx;
	struct flag_result r;

	memset(out, 0, sizeof(*out));
	if (len) {
		req = json_loadb(body, len, 0, &jerr);
		if (!req) {
			out->status = 400;
			out->body = failure(key, FE_PARSE_ERROR, "the request body is not JSON");
			return;
		}
	}
	if (req && !json_is_object(req)) {
		out->status = 400;
		out->body = failure(key, FE_PARSE_ERROR, "the request body must be an object {\"context\": {...}}");
		goto out;
	}
	ctx = json_object_get(req, "context");
	if (ctx && !json_is_null(ctx) && !json_is_object(ctx)) {
		out->status = 400;
		out->body = failure(key, FE_INVALID_CONTEXT, "context must be an object");
		goto out;
	}
	if (json_is_null(ctx))
		ctx = NULL;
	if (key) {
		const struct flag_def *d = flag_defs_find(defs, key);
		if (!d) {
			out->status = 404;
			out->body = failure(key, FE_FLAG_NOT_FOUND, "no flag of this name in the environment");
			goto out;
		}
		if (flag_evaluate(d, state(arg, key), ctx, &r) < 0) {
			out->status = r.error == FE_GENERAL ? 500 : 400;
			out->body = failure(key, r.error, r.details);
		} else {
			out->status = 200;
			out->body = success(key, &r);
		}
	} else {
		char *text;
		uint32_t h1, h2;
		json_t *list = json_array();
		for (size_t i = 0; defs && i < defs->n; i++) {
			const struct flag_def *d = &defs->defs[i];
			if (flag_evaluate(d, state(arg, d->name), ctx, &r) < 0)
				json_array_append_new(list, failure(d->name, r.error, r.details));
			else
				json_array_append_new(list, success(d->name, &r));
		}
		/* the ETag is a hash of the answer itself: equal exactly when the
		 * flags evaluate the same for this context, across restarts too */
		text = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);
		h1 = flags_murmur3(text ? text : "", text ? strlen(text) : 0, 0x9747b28c);
		h2 = flags_murmur3(text ? text : "", text ? strlen(text) : 0, h1);
		free(text);
		snprintf(out->etag, sizeof(out->etag), "\"%08x%08x\"", h1, h2);
		if (if_none_match && !strcmp(if_none_match, out->etag)) {
			json_decref(list);
			out->status = 304;
			goto out;
		}
		out->status = 200;
		out->body = json_pack("{s:o}", "flags", list);
	}
out:
	json_decref(req);
}
