/*
 * spec_docker.c — the spec's container keys: runtime, image, build as a
 * map, command, entrypoint, port and registry (services.S.* and the
 * top-level registry), their syntax (an image reference, HOST:PORT) and
 * the rules between them and the process keys (run, artifact, build as a
 * shell command), checked on each resolved (service, environment).
 *
 * Keys are applied by the walker of spec.c like any other (KT_RUNTIME ..
 * KT_BUILDARGS); the rules need the whole resolved service, so they run at
 * the end of resolve_into (spec__check_docker), reading which node won each
 * key (the override's, else the service's) to report at that key.
 *
 * Pure: no I/O.
 */
#include "common.h"
#include "core/spec.h"
#include "core/spec-int.h"

#define IMAGE_NAME_MAX 255 /* the Engine's bound on a repository name */
#define IMAGE_TAG_MAX 128

const struct keydef spec__build_keys[] = {
	{ "dockerfile", KT_STR, offsetof(struct image_build, dockerfile), 0, 0, "Dockerfile", NULL, KF_DOC_ONLY,
	  "the Dockerfile, relative to the context (inside it)" },
	{ "context", KT_STR, offsetof(struct image_build, context), 0, 0, ".", NULL, KF_DOC_ONLY,
	  "the build context directory, relative to the spec directory" },
	{ "args", KT_BUILDARGS, offsetof(struct image_build, args), 0, 0, NULL, NULL, 0,
	  "build arguments (ARG in the Dockerfile), NAME: VALUE, merged key by key" },
	END_KEYS
};

/* ------------------------------------------------------------------------ */
/* syntax                                                                   */

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool alnum(char c)
{
	return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static void bad_char(char c, char *msg, size_t msglen, const char *where)
{
	if (c >= 'A' && c <= 'Z')
		snprintf(msg, msglen, "%s must be lowercase, got '%c'", where, c);
	else if (c == ' ')
		snprintf(msg, msglen, "a space in %s", where);
	else if (c > ' ' && c < 0x7f)
		snprintf(msg, msglen, "invalid character '%c' in %s", c, where);
	else
		snprintf(msg, msglen, "invalid byte 0x%02x in %s", (unsigned char)c, where);
}

/* one path component s[b, e): [a-z0-9]+ ((. | _ | __ | -+) [a-z0-9]+)* */
static int check_component(const char *s, size_t b, size_t e, size_t *off, char *msg, size_t msglen)
{
	size_t i = b;

	if (b == e) {
		*off = b;
		snprintf(msg, msglen, "empty name component (nothing between two '/')");
		return -1;
	}
	while (i < e) {
		size_t j = i;
		if (lower_alnum(s[i])) {
			i++;
			continue;
		}
		if (s[i] != '.' && s[i] != '_' && s[i] != '-') {
			*off = i;
			bad_char(s[i], msg, msglen, "an image name");
			return -1;
		}
		if (i == b) {
			*off = i;
			snprintf(msg, msglen, "a name component must start with a letter or digit, got '%c'", s[i]);
			return -1;
		}
		if (s[i] == '.')
			j = i + 1;
		else if (s[i] == '_')
			j = i + 1 < e && s[i + 1] == '_' ? i + 2 : i + 1;
		else
			while (j < e && s[j] == '-')
				j++;
		if (j == e) {
			*off = i;
			snprintf(msg, msglen, "a name component must end with a letter or digit, got '%c'", s[i]);
			return -1;
		}
		if (!lower_alnum(s[j])) {
			*off = j;
			if (s[j] == '.' || s[j] == '_' || s[j] == '-') {
				*off = i;
				snprintf(msg, msglen, "invalid separator '%.*s' (one '.', one or two '_', or '-'s)",
					 (int)(j + 1 - i), s + i);
			} else {
				bad_char(s[j], msg, msglen, "an image name");
			}
			return -1;
		}
		i = j;
	}
	return 0;
}

/* a port s[b, e): 1..65535 */
static int check_port(const char *s, size_t b, size_t e, size_t *off, char *msg, size_t msglen)
{
	long v = 0;

	for (size_t i = b; i < e; i++) {
		if (s[i] < '0' || s[i] > '9') {
			*off = i;
			snprintf(msg, msglen, "the port must be a number, got '%.*s'", (int)(e - b), s + b);
			return -1;
		}
		if (v <= 65535)
			v = v * 10 + (s[i] - '0');
	}
	if (b == e || v < 1 || v > 65535) {
		*off = b;
		snprintf(msg, msglen, "the port must be between 1 and 65535, got '%.*s'", (int)(e - b), s + b);
		return -1;
	}
	return 0;
}

/* a registry host s[b, e), with its optional :PORT: labels [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? */
static int check_host(const char *s, size_t b, size_t e, size_t *off, char *msg, size_t msglen)
{
	size_t colon = e, lb = b;

	for (size_t i = b; i < e; i++)
		if (s[i] == ':') {
			colon = i;
			break;
		}
	for (size_t i = b; i <= colon; i++) {
		if (i < colon && (alnum(s[i]) || (s[i] == '-' && i > lb)))
			continue;
		if (i < colon && s[i] != '.') {
			*off = i;
			bad_char(s[i], msg, msglen, "a registry host");
			return -1;
		}
		/* the end of a label */
		if (i == lb || s[i - 1] == '-') {
			*off = i == lb ? i : i - 1;
			snprintf(msg, msglen, i == lb ? "empty label in the registry host" :
				 "a registry host label must not end with '-'");
			return -1;
		}
		lb = i + 1;
	}
	if (colon < e)
		return check_port(s, colon + 1, e, off, msg, msglen);
	return 0;
}

int spec__image_ref_check(const char *s, size_t *off, char *msg, size_t msglen)
{
	size_t len = strlen(s), end, name_end, path_b = 0, slash = SIZE_MAX, colon = SIZE_MAX;
	const char *at = strchr(s, '@');

	*off = 0;
	end = at ? (size_t)(at - s) : len;
	if (at) {
		const char *d = at + 1;
		size_t n = 0;
		if (strncmp(d, "sha256:", 7)) {
			*off = (size_t)(d - s);
			snprintf(msg, msglen, "a digest must be sha256:<64 hex digits>");
			return -1;
		}
		for (d += 7; *d; d++, n++) {
			if (!((*d >= '0' && *d <= '9') || (*d >= 'a' && *d <= 'f')) || n == 64) {
				*off = (size_t)(d - s);
				snprintf(msg, msglen, n == 64 ? "a sha256 digest has 64 hex digits, got more" :
					 "a sha256 digest has 64 lowercase hex digits, got '%c'", *d);
				return -1;
			}
		}
		if (n != 64) {
			*off = len;
			snprintf(msg, msglen, "a sha256 digest has 64 hex digits, got %zu", n);
			return -1;
		}
	}
	if (!end) {
		snprintf(msg, msglen, "missing the image name");
		return -1;
	}
	for (size_t i = 0; i < end; i++) {
		if (s[i] == '/') {
			if (slash == SIZE_MAX)
				slash = i;
			colon = SIZE_MAX; /* a ':' before a '/' is a registry's port */
		} else if (s[i] == ':') {
			colon = i;
		}
	}
	name_end = colon != SIZE_MAX ? colon : end;
	/* the first component is a registry if it looks like a host: a '.', a ':port' or localhost */
	if (slash != SIZE_MAX && slash < name_end &&
	    (memchr(s, '.', slash) || memchr(s, ':', slash) || (slash == 9 && !strncmp(s, "localhost", 9)))) {
		if (check_host(s, 0, slash, off, msg, msglen) < 0)
			return -1;
		path_b = slash + 1;
	}
	for (size_t b = path_b, i = path_b; i <= name_end; i++) {
		if (i < name_end && s[i] != '/')
			continue;
		if (check_component(s, b, i, off, msg, msglen) < 0)
			return -1;
		b = i + 1;
	}
	if (name_end > IMAGE_NAME_MAX) {
		*off = IMAGE_NAME_MAX;
		snprintf(msg, msglen, "the image name is longer than %d characters", IMAGE_NAME_MAX);
		return -1;
	}
	if (colon != SIZE_MAX) {
		size_t tb = colon + 1;
		if (tb == end) {
			*off = colon;
			snprintf(msg, msglen, "empty tag after ':'");
			return -1;
		}
		for (size_t i = tb; i < end; i++) {
			if (alnum(s[i]) || s[i] == '_' || (i > tb && (s[i] == '.' || s[i] == '-')))
				continue;
			*off = i;
			if (i == tb && (s[i] == '.' || s[i] == '-'))
				snprintf(msg, msglen, "a tag must start with a letter, digit or '_', got '%c'", s[i]);
			else
				bad_char(s[i], msg, msglen, "a tag");
			return -1;
		}
		if (end - tb > IMAGE_TAG_MAX) {
			*off = tb + IMAGE_TAG_MAX;
			snprintf(msg, msglen, "a tag is at most %d characters, got %zu", IMAGE_TAG_MAX, end - tb);
			return -1;
		}
	}
	return 0;
}

int spec__registry_check(const char *s, size_t *off, char *msg, size_t msglen)
{
	const char *p;
	size_t len = strlen(s);

	*off = 0;
	if ((p = strstr(s, "://"))) {
		snprintf(msg, msglen, "write HOST:PORT, without a scheme ('%.*s')", (int)(p + 3 - s), s);
		return -1;
	}
	if ((p = strchr(s, '/'))) {
		*off = (size_t)(p - s);
		snprintf(msg, msglen, "write HOST:PORT, without a path");
		return -1;
	}
	if (check_host(s, 0, len, off, msg, msglen) < 0)
		return -1;
	if (!strchr(s, ':') && !strchr(s, '.') && strcmp(s, "localhost")) {
		snprintf(msg, msglen, "'%s' would name a Docker Hub namespace, not a registry: write HOST:PORT "
			 "(e.g. 127.0.0.1:5000) or a host name with a dot", s);
		return -1;
	}
	return 0;
}

/*
 * The column of byte off of scalar n's text, when the source shows that
 * text there (a plain or quoted scalar on one line, without escapes before
 * off); else the scalar's own column.
 */
static int text_col(const struct walker *w, const struct ynode *n, size_t off)
{
	char line[1024];
	const char *src = diag_source_line(w->src, w->srclen, n->line, line, sizeof(line));
	size_t tl = strlen(n->text), sl, col0 = (size_t)n->col - 1 + (n->plain ? 0 : 1) + off;

	if (!n->col || !src || off > tl)
		return n->col;
	sl = strlen(src);
	if (off < tl && (col0 >= sl || src[col0] != n->text[off]))
		return n->col;
	if (off && (col0 - 1 >= sl || src[col0 - 1] != n->text[off - 1]))
		return n->col;
	return (int)col0 + 1;
}

/* reports a syntax problem of scalar n at the byte it names */
static void report_in(struct walker *w, const struct ynode *n, size_t off, const char *what, const char *msg)
{
	spec__report_at(w, n->line, text_col(w, n, off), "invalid %s '%s': %s", what, n->text, msg);
}

/* the registry's text, or NULL after reporting (k: the key, v: its value) */
static const char *want_registry(struct walker *w, const struct ynode *k, const struct ynode *v)
{
	char msg[256];
	size_t off;
	const char *s = spec__want_scalar(w, v, k);

	if (s && spec__registry_check(s, &off, msg, sizeof(msg)) < 0) {
		report_in(w, v, off, "registry", msg);
		return NULL;
	}
	return s;
}

const char *spec__top_registry(struct walker *w, const struct ynode *k, const struct ynode *v)
{
	size_t old = spec__path_key(w, "registry");
	const char *s = want_registry(w, k, v);
	spec__path_pop(w, old);
	return s;
}

/* ------------------------------------------------------------------------ */
/* applying the keys                                                        */

static void kv_set(struct kv **vp, size_t *np, const char *key, const char *value)
{
	size_t i;

	/* sorted by key, as env: the JSON of a revision is then deterministic */
	for (i = 0; i < *np; i++) {
		int cmp = strcmp((*vp)[i].key, key);
		if (!cmp) {
			free((*vp)[i].value);
			(*vp)[i].value = xstrdup(value);
			return;
		}
		if (cmp > 0)
			break;
	}
	*vp = xrealloc(*vp, (*np + 1) * sizeof(**vp));
	memmove(&(*vp)[i + 1], &(*vp)[i], (*np - i) * sizeof(**vp));
	(*vp)[i].key = xstrdup(key);
	(*vp)[i].value = xstrdup(value);
	(*np)++;
}

void spec__image_build_free(struct image_build *b)
{
	if (!b)
		return;
	free(b->dockerfile);
	free(b->context);
	for (size_t i = 0; i < b->nargs; i++) {
		free(b->args[i].key);
		free(b->args[i].value);
	}
	free(b->args);
	free(b);
}

struct image_build *spec__image_build_new(void)
{
	struct image_build *b = xcalloc(1, sizeof(*b));
	b->dockerfile = xstrdup("Dockerfile");
	b->context = xstrdup(".");
	return b;
}

void spec__image_build_set_arg(struct image_build *b, const char *key, const char *value)
{
	kv_set(&b->args, &b->nargs, key, value);
}

static void apply_buildargs(struct walker *w, const struct ynode *k, const struct ynode *v, struct image_build *b)
{
	if (!spec__want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *ak = v->kids[i], *av = v->kids[i + 1];
		size_t old;
		const char *s;

		if (!spec__key_ok(w, v, i))
			continue;
		old = spec__path_key(w, ak->text);
		if (!spec__valid_env_key(ak->text))
			report(w, ak, "invalid build argument name '%s' (letters, digits and '_', not starting with a digit)",
			       ak->text);
		else if (y_is_null(av) && av->type == Y_SCALAR)
			report(w, av->line ? av : ak, "value is empty (null); write \"\" for an empty string");
		else if ((s = spec__want_scalar(w, av, ak)))
			spec__image_build_set_arg(b, ak->text, s);
		spec__path_pop(w, old);
	}
}

/* a path inside the build context: relative, without '..' */
static bool path_inside(const char *s)
{
	const char *p = s;

	if (*s == '/')
		return false;
	while (*p) {
		size_t l = strcspn(p, "/");
		if (l == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += l;
		p += *p == '/';
	}
	return true;
}

static void apply_build(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c,
			enum walk_mode mode)
{
	const char *s;
	struct ynode *dk = NULL;
	const struct ynode *df;

	if (v && v->type == Y_MAP) {
		/* a map merges per sub-key onto the service's (as resources), and replaces a command */
		if (!c->image_build)
			c->image_build = spec__image_build_new();
		free(c->build);
		c->build = NULL;
		spec__walk_map(w, v, k, spec__build_keys, c->image_build, mode);
		df = y_lookup(v, "dockerfile", &dk);
		if (df && df->type == Y_SCALAR && *df->text && !path_inside(df->text)) {
			size_t old = spec__path_key(w, "dockerfile");
			report(w, df, "the Dockerfile must be inside the context (a relative path without '..'), got '%s'",
			       df->text);
			spec__path_pop(w, old);
		}
		return;
	}
	if (!(s = spec__want_scalar(w, v, k)))
		return;
	if (!*s) {
		report(w, v, "must not be empty");
		return;
	}
	free(c->build);
	c->build = xstrdup(s);
	spec__image_build_free(c->image_build);
	c->image_build = NULL;
}

void spec__apply_docker(struct walker *w, const struct keydef *d, const struct ynode *k, const struct ynode *v,
			void *base, enum walk_mode mode)
{
	struct svc_config *c = base;
	char msg[256];
	size_t off;
	const char *s;

	switch (d->type) {
	case KT_RUNTIME:
		if (!(s = spec__want_scalar(w, v, k)))
			return;
		if (!strcmp(s, "process"))
			c->runtime = RUNTIME_PROCESS;
		else if (!strcmp(s, "docker"))
			c->runtime = RUNTIME_DOCKER;
		else
			report(w, v, "unknown runtime '%s' (expected process or docker)", s);
		return;
	case KT_IMAGE:
		if (!(s = spec__want_scalar(w, v, k)))
			return;
		if (spec__image_ref_check(s, &off, msg, sizeof(msg)) < 0) {
			report_in(w, v, off, "image reference", msg);
			return;
		}
		free(c->image);
		c->image = xstrdup(s);
		return;
	case KT_BUILD:
		apply_build(w, k, v, c, mode);
		return;
	case KT_REGISTRY:
		if ((s = want_registry(w, k, v))) {
			free(c->registry);
			c->registry = xstrdup(s);
		}
		return;
	case KT_ARGV: {
		char ***vp = FIELD(base, d, char **);
		size_t *np = (size_t *)(void *)((char *)base + d->off + sizeof(char **));
		if (v && v->type == Y_SEQ && !v->nkids) {
			report(w, v, "must not be empty (leave the key out to keep the image's %s)",
			       !strcmp(d->name, "entrypoint") ? "ENTRYPOINT" : "CMD");
			return;
		}
		spec__set_strlist(w, v, k, false, vp, np);
		return;
	}
	case KT_BUILDARGS:
		apply_buildargs(w, k, v, base);
		return;
	default:
		BUG_ON(1);
	}
}

void spec__docker_release(struct svc_config *c)
{
	free(c->image);
	spec__image_build_free(c->image_build);
	spec__free_strv(c->command, c->ncommand);
	spec__free_strv(c->entrypoint, c->nentrypoint);
	free(c->registry);
	c->image = NULL;
	c->image_build = NULL;
	c->command = c->entrypoint = NULL;
	c->ncommand = c->nentrypoint = 0;
	c->registry = NULL;
}

/* ------------------------------------------------------------------------ */
/* the rules between the keys, on a resolved service                        */

struct dctx {
	struct walker *wbase, *wover;
	const struct ynode *node, *ov; /* the service's mapping, its override for env (or NULL) */
	const char *service, *env;
};

/* where the winning value of a key was written */
struct loc {
	const struct ynode *k, *v; /* NULL k: not given */
	bool over;                 /* in services.S.environments.E */
};

static struct loc locate(const struct dctx *x, const char *key)
{
	struct loc l = { 0 };
	struct ynode *kn = NULL;
	const struct ynode *v;

	if ((v = y_lookup(x->ov, key, &kn))) {
		l.k = kn;
		l.v = v;
		l.over = true;
	} else if ((v = y_lookup(x->node, key, &kn))) {
		l.k = kn;
		l.v = v;
	}
	return l;
}

static bool scalar_is(const struct loc *l, const char *s)
{
	return l->k && l->v && l->v->type == Y_SCALAR && !strcmp(l->v->text, s);
}

/*
 * Reports at the key of at; cause is the other key that makes it wrong (may
 * be NULL or not given). Through the override's walker when either was
 * written in the override (it is loud in every environment), else through
 * the service's (loud once): so each problem is reported once, where it is.
 */
static void rule(const struct dctx *x, const struct loc *at, const struct loc *cause, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
static void rule(const struct dctx *x, const struct loc *at, const struct loc *cause, const char *fmt, ...)
{
	bool over = at->over || (cause && cause->k && cause->over);
	struct walker *w = over ? x->wover : x->wbase;
	char msg[768];
	size_t old;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	old = at->over ? spec__path_push(w, "services.%s.environments.%s.%s", x->service, x->env, at->k->text)
		       : spec__path_push(w, "services.%s.%s", x->service, at->k->text);
	if (over && !at->over)
		spec__report_at(w, at->k->line, at->k->col, "%s (in environment '%s', with its overrides)", msg, x->env);
	else
		spec__report_at(w, at->k->line, at->k->col, "%s", msg);
	spec__path_pop(w, old);
}

void spec__check_docker(struct walker *wbase, struct walker *wover, const struct spec_service *s,
			const struct spec_env *e, const struct ynode *ov, struct svc_config *c)
{
	struct dctx x = { wbase, wover, s->node, ov && ov->type == Y_MAP ? ov : NULL, s->name, e->name };
	struct loc rt = locate(&x, "runtime"), image = locate(&x, "image"), build = locate(&x, "build");
	struct loc run = locate(&x, "run"), user = locate(&x, "user");
	struct loc *cause;
	bool build_map = build.k && build.v && build.v->type == Y_MAP;
	bool docker;

	/* the tree decides, not c: a key given with a bad value was reported already, and must not cascade */
	if (scalar_is(&rt, "process") && (image.k || build_map)) {
		rule(&x, &rt, image.k ? &image : &build,
		     "runtime process cannot run an image (image: and build: {dockerfile, ...} imply runtime docker)");
		c->runtime = RUNTIME_DOCKER; /* no "missing run" on top */
		return;
	}
	docker = scalar_is(&rt, "docker") || image.k || build_map;
	/* what made it docker, preferring the service's own keys */
	cause = image.k && !image.over ? &image : build_map && !build.over ? &build :
		scalar_is(&rt, "docker") && !rt.over ? &rt : image.k ? &image : build_map ? &build : &rt;
	if (!docker) {
		static const char *const docker_only[] = { "command", "entrypoint", "port", "registry" };
		c->runtime = RUNTIME_PROCESS;
		for (size_t i = 0; i < ARRAY_SIZE(docker_only); i++) {
			struct loc l = locate(&x, docker_only[i]);
			if (l.k)
				rule(&x, &l, &rt, "only a docker service takes %s: this one runs a process "
				     "(give image: REF or build: {dockerfile, ...} to run a container)", docker_only[i]);
		}
		/* a process service ignores the top-level registry (so its stored config is unchanged by it) */
		free(c->registry);
		c->registry = NULL;
		return;
	}
	c->runtime = RUNTIME_DOCKER;
	if (!image.k && !build_map)
		rule(&x, &rt, NULL, "runtime docker needs image: REF or build: {dockerfile, context, args}");
	if (image.k && build_map)
		rule(&x, &image, &build, "give image: or build: {dockerfile, ...}, not both (build: on line %d)",
		     build.k->line);
	if (build.k && !build_map)
		rule(&x, &build, cause,
		     "a docker service is built from a Dockerfile: write build: {dockerfile, context, args} "
		     "(a build command is for process services)");
	if (run.k)
		rule(&x, &run, cause, "a docker service runs its image's command: use command: [...]");
	{
		struct loc art = locate(&x, "artifact");
		if (art.k)
			rule(&x, &art, cause, "a docker service has no artifact directory: its image is the artifact");
	}
	/* exec: probes are allowed: they run inside the container (dockrt.c, /bin/sh -c) */
	/* no user: the controller picks (dockrt.c: the default workload user's uid:gid, never root) */
	if (!user.k) {
		free(c->user);
		c->user = NULL;
	}
}
