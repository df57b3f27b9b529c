/*
 * spec-int.h — private to the spec parser (core/spec.c, spec_load.c,
 * yaml.c, spec_delivery.c, spec_docker.c, config_json.c): the YAML tree, the walker that applies
 * it to structs through the key tables, and what those files call in each
 * other. Nothing outside src/core/ includes it; others read the tree
 * through the read-only view in spec.h (struct spec_node).
 *
 * Lifetime of the tree: spec__yaml_parse builds it, and from then on it is
 * never changed. Every node owns its text and its kids (and so the nodes
 * below it); the root is owned by whoever parsed it, which is struct spec
 * (spec->doc) from spec_load until spec_free. Every other pointer to a node
 * is borrowed and must not outlive the spec: spec_service.node, a struct
 * spec_node of the view, the k/v/at arguments of the walker's functions.
 * A svc_config never points into the tree (it copies what it keeps).
 */
#ifndef GANTRY_CORE_SPEC_INT_H
#define GANTRY_CORE_SPEC_INT_H
#include "common.h"
#include "core/spec.h"

#define SPEC_MAX_BYTES (1024 * 1024) /* a spec is a config file, not a data set */
#define SPEC_MAX_DEPTH 32
/*
 * Bounds on the shape, so that validation stays fast whatever the input:
 * duplicate detection is quadratic in a mapping's size, and every service
 * is resolved in every environment.
 */
#define SPEC_MAX_KEYS 512   /* per mapping */
#define SPEC_MAX_ITEMS 512  /* per list */
#define SPEC_MAX_ENVS 64
#define PATH_LEN 512

/* ------------------------------------------------------------------------ */
/* the YAML tree (built and freed in yaml.c)                                */

enum ytype { Y_SCALAR, Y_MAP, Y_SEQ, Y_ALIAS };

struct ynode {
	enum ytype type;
	int line, col;     /* 1-based; 0 when libfyaml gave no mark */
	char *text;        /* scalar text (NUL-terminated), alias name; owned */
	bool plain;        /* plain (unquoted) scalar: may be null/bool/number */
	struct ynode **kids; /* map: key, value, key, value...; seq: items; owned */
	size_t nkids;
};

static inline bool y_is_null(const struct ynode *n)
{
	if (!n)
		return true;
	if (n->type != Y_SCALAR || !n->plain)
		return false;
	return !*n->text || !strcmp(n->text, "~") || !strcmp(n->text, "null") ||
	       !strcmp(n->text, "Null") || !strcmp(n->text, "NULL");
}

static inline const char *y_type_name(const struct ynode *n)
{
	if (y_is_null(n))
		return "nothing (null)";
	switch (n->type) {
	case Y_SCALAR:
		return "a scalar";
	case Y_MAP:
		return "a mapping";
	case Y_SEQ:
		return "a list";
	case Y_ALIAS:
		return "an alias";
	}
	return "?";
}

/* value node of KEY in map, or NULL (the map has no duplicates once validated); borrowed */
static inline struct ynode *y_lookup(const struct ynode *map, const char *key, struct ynode **keynode)
{
	if (!map || map->type != Y_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->nkids; i += 2) {
		const struct ynode *k = map->kids[i];
		if (k->type == Y_SCALAR && !strcmp(k->text, key)) {
			if (keynode)
				*keynode = map->kids[i];
			return map->kids[i + 1];
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* the walker (spec.c): diagnostics with the key path of what it walks      */

struct walker {
	const char *file;   /* borrowed */
	const char *src;    /* the source text, for excerpts; borrowed, may be NULL */
	size_t srclen;
	struct diags *diags; /* NULL: quiet walker */
	int nerr;
	char path[PATH_LEN];
	size_t plen;
	bool hosts_given;   /* a hosts key was applied (resolution of default hosts) */
	const struct spec *spec; /* for the environment names of overrides; borrowed, may be NULL */
};

/* counts a problem; a loud walker also adds the diagnostic at line:col under its path */
void spec__report_at(struct walker *w, int line, int col, const char *fmt, ...) PRINTF_LIKE(4, 5);
#define report(w, node, ...) spec__report_at((w), (node) ? (node)->line : 0, (node) ? (node)->col : 0, __VA_ARGS__)
/* push returns the old length of the path, for spec__path_pop */
size_t spec__path_push(struct walker *w, const char *fmt, ...) PRINTF_LIKE(2, 3);
size_t spec__path_key(struct walker *w, const char *key);
void spec__path_pop(struct walker *w, size_t old);

/* ------------------------------------------------------------------------ */
/* the key tables (spec.c; the progressive-delivery ones in spec_delivery.c) */

enum ktype {
	/* the scalars first, up to KT_SCALAR_LAST: set from text by set_scalar */
	KT_STR,        /* non-empty string */
	KT_INT,        /* int, min..max */
	KT_INT64,      /* int64_t, min..max */
	KT_DUR,        /* int64_t milliseconds, min..max */
	KT_SIZE,       /* int64_t bytes */
	KT_CPU,        /* int64_t millicores */
	KT_INTPCT,     /* struct intpct: count (min..max) or percentage 0..100% */
	KT_SCALAR_LAST = KT_INTPCT,
	KT_STRLIST,    /* char ** + size_t count right after it */
	KT_HOSTS,      /* char ** + size_t, host patterns */
	KT_ENVMAP,     /* struct kv * + size_t, merged key by key */
	KT_MAP,        /* nested table at off */
	KT_PROBE,      /* struct probe at off, nested table */
	KT_PROBE_HTTP, /* probe kind + path */
	KT_PROBE_TCP,  /* probe kind, value must be true */
	KT_PROBE_EXEC, /* probe kind + command */
	KT_STRATEGY,   /* struct strategy at off */
	KT_OVERRIDES,  /* services.S.environments */
	KT_NAME,       /* project name: a host label */
	KT_ANY,        /* accepted and ignored here (handled by the parent's code) */
	/* progressive delivery (spec__apply_delivery) */
	KT_BOOL,       /* bool: true | false */
	KT_ONERROR,    /* enum on_error_policy: pause | rollback */
	KT_CONDLIST,   /* char ** + size_t: conditions (core/condition.h) */
	KT_ANALYSES,   /* NAME: analysis, merged by name into struct svc_config analyses */
	KT_METRICS,    /* list of metrics of an analysis */
	KT_PROVIDER,   /* enum metric_provider */
	KT_COMPARE,    /* bool: compare: baseline */
	KT_METHOD,     /* bool: method: mann-whitney */
	KT_CONFIDENCE, /* double: "98%" -> 0.98 */
	KT_STEPS,      /* canary steps */
	KT_PAUSE,      /* a step's pause: duration or {} */
	KT_MATCH,      /* struct header_match * + size_t: {header: {NAME: VALUE}} */
	KT_CANARY_ANALYSIS, /* canary background analysis: NAME or {name, starting_step} */
	/* containers (spec__apply_docker) */
	KT_RUNTIME,    /* enum svc_runtime: process | docker */
	KT_IMAGE,      /* char *: an image reference */
	KT_BUILD,      /* svc_config build (a shell command) or image_build (a map: spec__build_keys) */
	KT_REGISTRY,   /* char *: HOST[:PORT] */
	KT_ARGV,       /* char ** + size_t: a non-empty list of strings (command, entrypoint) */
	KT_BUILDARGS,  /* struct image_build args: NAME: VALUE, merged key by key */
	/* secrets (spec_secret.c) */
	KT_SECFILES,   /* files: {FILE: {secret: NAME, version: N}} into svc_config secrets */
	KT_RECIPIENTS, /* environments.E.secrets.recipients: age1... */
	KT_MAINT_ALLOW, /* migrations.maintenance_allow: [{header: NAME, value: {secret: NAME, version: N}}] */
	/* fleets (spec_cluster.c) */
	KT_CLUSTER,    /* struct cluster_config at off: {engine, manager, network, nodes} */
	KT_PLACEMENT,  /* svc_config placement: {constraints, spread} */
	KT_STICKY,     /* struct sticky at off: true | false | {cookie, max_age} */
};

#define KF_NO_OVERRIDE 1u /* not allowed under services.S.environments.E */
#define KF_DOC_ONLY 2u    /* the default is documented but applied in code */

struct keydef {
	const char *name;
	enum ktype type;
	size_t off;
	int64_t min, max;
	const char *def;           /* default, as it would be written in the spec */
	const struct keydef *sub;  /* KT_MAP, KT_PROBE, KT_STRATEGY */
	unsigned flags;
	const char *doc;           /* one line for gantry.yaml(5) */
};

#define END_KEYS { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL }
#define DAY_MS (86400000LL)
#define HOUR_MS (3600000LL)

/* the field of def in the struct at base */
#define FIELD(base, def, T) ((T *)(void *)((char *)(base) + (def)->off))

/* spec_delivery.c's tables that spec.c's tables name */
extern const struct keydef spec__canary_keys[];
extern const struct keydef spec__bluegreen_keys[];
extern const struct keydef spec__analysis_keys[];

/* ------------------------------------------------------------------------ */
/* typed values and walking (spec.c)                                        */

enum walk_mode { MODE_BASE, MODE_OVERRIDE };

/* applies map (at: where to report a problem of the map as a whole) onto base through tab */
void spec__walk_map(struct walker *w, const struct ynode *map, const struct ynode *at,
		    const struct keydef *tab, void *base, enum walk_mode mode);
/* each returns NULL / false / -1 after reporting why n is not what is wanted */
const char *spec__want_scalar(struct walker *w, const struct ynode *n, const struct ynode *at);
bool spec__want_map(struct walker *w, const struct ynode *n, const struct ynode *at, bool null_ok);
bool spec__key_ok(struct walker *w, const struct ynode *map, size_t i);
void spec__report_unknown(struct walker *w, const struct ynode *k, const char *what,
			  const char *const *cands, size_t n);
/* a list of strings (host patterns when hosts is set) replacing *vp, *np only when all items are valid */
void spec__set_strlist(struct walker *w, const struct ynode *n, const struct ynode *at, bool hosts,
		       char ***vp, size_t *np);
bool spec__valid_name(const char *s);     /* a lowercase DNS label */
bool spec__valid_env_key(const char *s);  /* an environment variable name */
void spec__free_strv(char **v, size_t n);
/* the defaults of the key tables into c (caller's storage, overwritten) */
void spec__svc_config_defaults(struct svc_config *c, const char *service, const char *env);
/* the keys of environments.E (struct spec_env) */
extern const struct keydef spec__env_keys[];
/* the top level: unknown and duplicate keys; returns the project name (owned), or its default */
char *spec__top_level(struct walker *w, const struct ynode *root);
/* resolves every service in every environment, loudly, once per problem */
void spec__check_services(struct walker *w, struct spec *spec);
/* services.S.depends_on (names, cycles; fills depends_on and level) and release: (spec_release.c) */
void spec__check_release(struct walker *w, struct spec *spec);

/* ------------------------------------------------------------------------ */
/* progressive delivery (spec_delivery.c)                                   */

/* the KT_BOOL .. KT_CANARY_ANALYSIS values */
void spec__apply_delivery(struct walker *w, const struct keydef *d, const struct ynode *k, const struct ynode *v,
			  void *base);
/* strategy: {canary: ...} and {bluegreen: ...}; c is changed only when the whole value is valid */
void spec__apply_canary(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c);
void spec__apply_bluegreen(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c);
/* NAME: {analysis} entries, each replacing an analysis of the same name in *vp */
void spec__apply_analyses(struct walker *w, const struct ynode *k, const struct ynode *v, struct analysis_def **vp,
			  size_t *np);
/* after resolution: the templates join, every analysis named must exist */
void spec__resolve_delivery(struct walker *w, const struct spec *spec, const struct spec_service *s,
			    const struct spec_env *e, struct svc_config *c);
void spec__delivery_defaults(struct svc_config *c);
void spec__delivery_release(struct svc_config *c);
void spec__header_matches_release(struct header_match *h, size_t n);

/* ------------------------------------------------------------------------ */
/* secrets (spec_secret.c)                                                  */

/* {secret: NAME, version: N} at v for env KEY / file k->text, applied to c when valid */
void spec__apply_secret_ref(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c,
			    bool file);
void spec__apply_secret_files(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c);
void spec__apply_recipients(struct walker *w, const struct ynode *k, const struct ynode *v, void *base);
/* removes the reference (file, target) if c has it */
void spec__secret_drop(struct svc_config *c, const char *target, bool file);
void spec__secrets_release(struct svc_config *c);

/* ------------------------------------------------------------------------ */
/* containers (spec_docker.c)                                               */

/* services.S.build as a map */
extern const struct keydef spec__build_keys[];
/* the KT_RUNTIME .. KT_BUILDARGS values */
void spec__apply_docker(struct walker *w, const struct keydef *d, const struct ynode *k, const struct ynode *v,
			void *base, enum walk_mode mode);
/*
 * After resolving service s in env e into c (ov: s's override for e, or
 * NULL): the rules between the container and process keys, reported at the
 * key they name; sets c->runtime (image: or build: {...} imply docker), and
 * clears what the runtime does not use (a process service's registry, a
 * docker service's default user).
 */
void spec__check_docker(struct walker *wbase, struct walker *wover, const struct spec_service *s,
			const struct spec_env *e, const struct ynode *ov, struct svc_config *c);
/* the top-level registry: its text (borrowed from v), or NULL after reporting */
const char *spec__top_registry(struct walker *w, const struct ynode *k, const struct ynode *v);
/*
 * Syntax of an image reference ([HOST[:PORT]/]NAME[:TAG][@sha256:HEX64],
 * lowercase name components) and of a registry (HOST[:PORT]): 0, or -1 with
 * *off the byte of s at fault and msg saying why.
 */
int spec__image_ref_check(const char *s, size_t *off, char *msg, size_t msglen);
int spec__registry_check(const char *s, size_t *off, char *msg, size_t msglen);
/* an image_build with the defaults (Dockerfile, "."), owned by the caller; its free; an arg set in order */
struct image_build *spec__image_build_new(void);
void spec__image_build_free(struct image_build *b);
void spec__image_build_set_arg(struct image_build *b, const char *key, const char *value);
/* frees the container fields of c and clears them */
void spec__docker_release(struct svc_config *c);

/* spec_cluster.c: environments.E.cluster and services.S.placement */
void spec__apply_cluster(struct walker *w, const struct ynode *k, const struct ynode *v, struct cluster_config *c);
void spec__apply_placement(struct walker *w, const struct ynode *k, const struct ynode *v, struct placement *p);

/* ------------------------------------------------------------------------ */
/* parsing (yaml.c)                                                         */

/*
 * Builds the tree of buf. Returns the root (owned by the caller; NULL for an
 * empty document) and 0, or -1 after reporting through w.
 */
int spec__yaml_parse(struct walker *w, const char *buf, size_t len, struct ynode **rootp);
void spec__ynode_free(struct ynode *n);

#endif
