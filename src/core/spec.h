/*
 * spec.h — gantry.yaml, parsed (libfyaml) and resolved.
 *
 * The spec is parsed once into struct spec, which keeps the raw per-service
 * and per-environment settings. spec_resolve() then produces the fully
 * resolved configuration of one service in one environment (struct
 * svc_config), lowest precedence first: the defaults, environments.E
 * (replicas, hosts), services.S, services.S.environments.E (see
 * docs/gantry.yaml.5.md for the merge rules). A revision stores that resolved
 * config as JSON (svc_config_to_json), so a rollback runs exactly the old
 * configuration, whatever the spec says today.
 *
 * Pure: no I/O except reading the spec file in spec_load() and the zone
 * of a windows.timezone (core/tz.h) while checking it.
 */
#ifndef GANTRY_CORE_SPEC_H
#define GANTRY_CORE_SPEC_H
#include "common.h"
#include "core/diag.h"

struct json_t;

struct kv {
	char *key;
	char *value;
};

/* a count that may be given as an integer or a percentage ("25%") */
struct intpct {
	bool is_pct;
	double value; /* count, or percent (25 for "25%") */
};

enum probe_kind { PROBE_NONE = 0, PROBE_HTTP, PROBE_TCP, PROBE_EXEC };

struct probe {
	enum probe_kind kind;
	char *target;            /* http: path ("/ready"); exec: shell command; tcp: NULL */
	int64_t period_ms;       /* default 1000 (readiness), 5000 (liveness) */
	int64_t timeout_ms;      /* default 1000 */
	int64_t initial_delay_ms;/* default 0 */
	int failure_threshold;   /* default 3 */
};

struct resources {
	int64_t cpu_millis;   /* "500m" -> 500, "2" -> 2000; 0 = no limit */
	int64_t memory_bytes; /* "256Mi"; 0 = no limit */
	int64_t pids;         /* 0 = no limit */
};

/*
 * environments.E.cluster: where the environment's container services run
 * when it is not this host (core/spec_cluster.c; docs/fleet.md). engine
 * NULL: no cluster (one host, as without the key).
 */
struct cluster_config {
	char *engine;         /* "swarm" (the only engine today) */
	char *manager;        /* a manager's Engine: unix:///PATH or tcp://HOST:PORT */
	char *network;        /* the (attachable) overlay network tasks join; NULL: none */
	struct kv *nodes;     /* node hostname -> its Engine (gateway addresses, a task's stop) */
	size_t nnodes;
	/* cluster.proxy: a gantry proxy on every node (daemon/nodeproxy.c); port 0: none */
	int proxy_port;       /* the client port each node publishes (host mode) */
	int proxy_admin_port; /* the admin port each node publishes (the controller pushes tables there) */
	char *proxy_registry; /* HOST:PORT every node pulls the proxy image from */
};

/* services.S.placement: where a cluster may put a service's tasks */
struct placement {
	char **constraints;   /* Swarm constraints ("node.role==worker"); NULL: none */
	size_t nconstraints;
	char *spread;         /* a spread preference ("node.labels.zone", "node.id"); NULL: none */
};

/* services.S.sticky: a cookie keeps a client on the revision it first got */
struct sticky {
	char *cookie;         /* the cookie's name; NULL: not sticky */
	int64_t max_age_ms;   /* the cookie's Max-Age (whole seconds); 0: a session cookie */
};

enum strategy_kind { STRATEGY_ROLLING = 0, STRATEGY_RECREATE, STRATEGY_CANARY, STRATEGY_BLUEGREEN };

struct strategy {
	enum strategy_kind kind;
	struct intpct max_surge;       /* rolling; default 25% */
	struct intpct max_unavailable; /* rolling; default 0 */
};

/*
 * Progressive delivery: canary and blue-green strategies, named
 * analyses and the rollback policy, as resolved from the spec; rollout/
 * interprets them (docs/gantry.yaml.5.md and docs/internals/rollout.md).
 */
enum metric_provider { PROVIDER_BUILTIN = 0, PROVIDER_PROMETHEUS, PROVIDER_HTTP, PROVIDER_COMMAND };

struct analysis_metric {
	char *name;                 /* unique within its analysis */
	enum metric_provider provider; /* default builtin */
	char *query;                /* builtin: the metric (error_rate...); prometheus: PromQL; may be NULL */
	char *fail_if;              /* condition (core/condition.h); may leave out the metric (query's) */
	bool compare_baseline;      /* compare: baseline */
	bool mann_whitney;          /* method: mann-whitney */
	double confidence;          /* default 0.98 */
	int64_t min_requests;       /* default 0 */
	char *address;              /* prometheus: base URL */
	char *url;                  /* http: GET this */
	char *json_path;            /* http: "data.value", "$.a.b[0]"; NULL: the whole body is a number */
	char *command;              /* command: sh -c */
	int64_t timeout_ms;         /* provider timeout; default 10s */
};

struct analysis_def {
	char *name;
	int64_t interval_ms;        /* default 10s */
	int count;                  /* measurements; 0 = until the step ends (or forever, background) */
	int64_t initial_delay_ms;   /* default 0 */
	int failure_limit;          /* a metric fails when failures > failure_limit; default 0 */
	int inconclusive_limit;     /* inconclusive when inconclusives > inconclusive_limit; default 0 */
	int error_limit;            /* consecutive measurement errors tolerated; default 4 */
	char *flag_off;             /* a flag of the spec: a failure turns it off instead of rolling back; may be NULL */
	struct analysis_metric *metrics;
	size_t nmetrics;
};

enum canary_step_kind { CSTEP_WEIGHT = 0, CSTEP_PAUSE, CSTEP_ANALYSIS, CSTEP_MATCH, CSTEP_REPLICAS };

struct header_match {
	char *name;                 /* header name, lowercase */
	char *value;                /* exact value, or a prefix when prefix is set ("VALUE*" in the spec) */
	bool prefix;
};

struct canary_step {
	enum canary_step_kind kind;
	int weight;                 /* weight: 0..100 */
	int64_t pause_ms;           /* pause: a duration, or -1 (pause: {}) until resumed */
	char *analysis;             /* analysis: NAME */
	struct header_match *headers; /* match: {header: {...}} */
	size_t nheaders;
	int replicas;               /* replicas: N */
};

struct canary_config {
	struct canary_step *steps;
	size_t nsteps;
	struct header_match *match; /* requests always routed to the canary during the rollout */
	size_t nmatch;
	char *analysis;             /* background analysis: runs from starting_step to the end */
	int analysis_starting_step; /* 0-based step index; default 0 */
};

struct bluegreen_config {
	char *preview_tag;               /* default "preview" */
	bool auto_promote;               /* default true */
	int64_t auto_promote_after_ms;   /* default 0: switch once ready (and the analysis passed) */
	char *pre_promotion_analysis;
	char *post_promotion_analysis;
	int64_t keep_previous_ms;        /* default 10m */
};

enum on_error_policy { ON_ERROR_PAUSE = 0, ON_ERROR_ROLLBACK };

/* how a service's replicas run: host processes from a directory snapshot,
 * or containers of an OCI image through the Docker Engine */
enum svc_runtime { RUNTIME_PROCESS = 0, RUNTIME_DOCKER };

/* services.S.build as a map: an image built through the Engine API */
struct image_build {
	char *dockerfile;          /* relative to context; default "Dockerfile" */
	char *context;             /* relative to the spec dir; default "." */
	struct kv *args;           /* build args */
	size_t nargs;
};

/*
 * A secret a replica gets (issue 17): env KEY = its value, or a file in the
 * replica's private secrets directory. Only the reference is in a config;
 * the value is decrypted by the controller when a replica starts
 * (src/daemon/secrets.c, docs/security.md).
 */
#define SECRET_NAME_MAX 63
/* the store name of an environment's SOPS file (environments.E.secrets.file): each deploy that
 * carries a changed file makes a new version; no user secret can have it (starts with '.') */
#define SECRET_SOPS ".sops"
struct secret_ref {
	char *target;   /* env: the variable's name; file: the file's name in $GANTRY_SECRETS_DIR */
	char *secret;   /* the secret's name in the environment's store; SECRET_SOPS for a SOPS value */
	char *sops;     /* a SOPS value: the path in the environment's SOPS file ("db.password");
	                 * its file is version `version` of SECRET_SOPS in the store; NULL otherwise */
	int version;    /* > 0: that version; 0: the newest, pinned by the controller at deploy */
	bool file;
	int line, col;  /* where the spec names it; 0 in a config read back from JSON */
};
/* a secret's name: [A-Za-z0-9_.-], 1..SECRET_NAME_MAX, starting with a letter or digit */
bool secret_name_valid(const char *s);
/* a path in a SOPS file: [A-Za-z0-9_.-], 1..256, no empty component */
bool secret_sops_path_valid(const char *s);

/* services.S.migrations.maintenance_allow: a header whose value is a secret of the store */
#define SPEC_MAINT_ALLOW_MAX 8 /* as the proxy's MAINT_HEADERS_MAX */
struct mig_maint_allow {
	char *header;              /* an HTTP token, as written */
	char *secret;              /* the name of the secret holding the value (never the value) */
	int version;               /* 0: the newest when the flow turns maintenance on */
	int line, col;             /* of the value in the spec; 0 when read back from JSON */
};

/* services.S.migrations (src/migrate/, docs/internals/migrate.md) */
struct migrations_config {
	char *dir;                 /* relative to the artifact; NULL: the service has no migrations */
	char *database_env;        /* the env variable holding the database URL; default DATABASE_URL */
	int64_t lock_timeout_ms;   /* waiting for the migration lock; default 60s */
	bool snapshot;             /* back the database up before up-migrations; default false */
	bool auto_down;            /* an automatic rollback may run down-migrations; default false */
	char *mode;                /* "online" (NULL: the default) | "maintenance": runbook 001's flow */
	char *maintenance_message; /* mode maintenance: the 503 page's text; NULL: gantry's default */
	struct mig_maint_allow *allow; /* mode maintenance: requests with one of these headers pass the flow's 503 */
	size_t nallow;
};

/* One service in one environment, fully resolved. */
struct svc_config {
	char *service;
	char *environment;
	char *run;                 /* process: required, run with sh -c, $PORT set; docker: not allowed */
	char *build;               /* optional; run with sh -c in the spec dir before snapshot
	                            * (build: as a string; as a map it is image_build) */
	enum svc_runtime runtime;  /* runtime: process|docker; image: or build: {…} imply docker */
	char *image;               /* docker: the image reference run (a revision pins its id) */
	struct image_build *image_build; /* docker: build: {dockerfile, context, args}; NULL if none */
	char **command;            /* docker: overrides the image's CMD (a list); NULL: the image's */
	size_t ncommand;
	char **entrypoint;         /* docker: overrides the image's ENTRYPOINT (a list) */
	size_t nentrypoint;
	int port;                  /* docker: the port the container listens on, given as $PORT;
	                            * 0 = the published host port's number */
	char *registry;            /* HOST:PORT (top-level registry:, or the service's): images
	                            * built are pushed there, pulled from there; NULL for a
	                            * process service (it ignores the top-level one) */
	/* the rules between these fields hold in every resolved config (core/spec_docker.c):
	 * docker: run NULL, build NULL, exactly one of image and image_build;
	 * process: run set, image, image_build, command, entrypoint, port, registry unset */
	char *user;                /* user name or uid replicas run as; NULL: the default workload
	                            * user (process), the image's USER (docker: NULL unless given) */
	char *artifact;            /* process: path relative to the spec dir; default "." (also
	                            * in a docker config, which does not use it) */
	int replicas;              /* default: environment's replicas, else 1 */
	struct kv *env;            /* KEY=VALUE given to replicas */
	size_t nenv;
	struct secret_ref *secrets; /* env: {KEY: {secret: NAME}} and files: {NAME: {secret: NAME}},
	                            * sorted by (file, target); an env KEY is in env or here, not both */
	size_t nsecrets;
	char **hosts;              /* Host names routed here; default SVC.ENV.localhost */
	size_t nhosts;
	struct probe readiness;    /* default: none (ready once the port accepts TCP) */
	struct probe liveness;     /* default: none */
	struct resources resources;
	int64_t stop_grace_ms;     /* SIGTERM -> SIGKILL; default 10s */
	int64_t drain_timeout_ms;  /* wait for in-flight requests; default 30s */
	int64_t progress_deadline_ms; /* default 10m */
	struct strategy strategy;
	char **rollback_on;        /* raw condition strings, parsed by rollout/ */
	size_t nrollback_on;
	int keep_revisions;        /* revisions whose artifacts are kept; default 10 */
	struct canary_config canary;       /* strategy.canary */
	struct bluegreen_config bluegreen; /* strategy.bluegreen */
	struct analysis_def *analyses;     /* analysis_templates, then services.S.analysis (same name: the service's) */
	size_t nanalyses;
	int64_t watch_ms;          /* rollback_on stays armed this long after completion; default 30m */
	bool shield;               /* canary shield: retry a failed idempotent canary request on stable */
	bool tag_hosts;            /* rN---HOST (and stable/canary) reach revisions; default false */
	struct sticky sticky;      /* sticky revisions by cookie; default off */
	enum on_error_policy on_error; /* analysis errors past their limit; default pause */
	struct migrations_config migrations;
	/* a docker service in an environment with a cluster (environments.E.cluster; engine NULL:
	 * this host) and where its tasks may go; both only in a docker service's config */
	struct cluster_config cluster;
	struct placement placement;
};

struct spec_env {
	char *name;
	int replicas;   /* 0 = unset */
	char **hosts;
	size_t nhosts;
	char **recipients;  /* secrets.recipients: age1... the store's values are also encrypted to */
	char *secrets_file; /* secrets.file: the SOPS file (relative to the spec's directory) whose
	                     * values {sops: PATH} name; sent with a deploy, decrypted by the controller */
	size_t nrecipients;
	struct cluster_config cluster; /* cluster: {engine, manager, network, nodes}; engine NULL: none */
	int line, col;
};

/* what a release does when one of its services fails (release.on_failure) */
enum release_on_failure { RELEASE_ROLLBACK = 0, RELEASE_PAUSE, RELEASE_CONTINUE };
const char *release_on_failure_name(enum release_on_failure f);

/*
 * The levels of a dependency graph of n nodes (pure; spec_release.c):
 * deps[i][0..ndeps[i]) are the nodes i depends on. level[i] = 0 when i
 * has none, else 1 + the highest level of its dependencies. Returns 0, or
 * -1 on a cycle: cycle[0..*ncycle) (cycle has room for n + 1) names its
 * nodes in order, the first repeated last (a, b, a); level is then undefined.
 */
int release_levels(size_t n, const size_t *ndeps, size_t *const *deps, int *level, size_t *cycle,
		   size_t *ncycle);

struct spec_service {
	char *name;
	int line, col;
	char **depends_on;   /* services.S.depends_on, as written (owned) */
	size_t ndepends;
	int level;           /* a release's order: 0 = no dependencies, else 1 + the highest of its dependencies */
	/* private to the parser: the service's node in the YAML tree (core/spec-int.h; owned by spec->doc) */
	void *node;
};

struct spec {
	char *path;      /* as given */
	char *dir;       /* directory of the spec file */
	char *project;
	struct spec_env *envs;
	size_t nenvs;
	struct spec_service *services;
	size_t nservices;
	enum release_on_failure release_on_failure; /* release.on_failure (default rollback) */
	void *doc;       /* private: the YAML tree (core/spec-int.h), with line:column of every node */
};

/*
 * Loads and validates FILE. On any problem, every diagnostic is added to
 * diags (FILE:LINE:COL, path, message, source line) and -1 is returned;
 * *out is then NULL. On success *out is owned by the caller (spec_free).
 */
int spec_load(const char *path, struct spec **out, struct diags *diags);
/* Same, from a buffer (used by tests and the fuzzer); name is the file name shown. */
int spec_load_buf(const char *name, const char *buf, size_t len, struct spec **out,
		  struct diags *diags);
/*
 * spec_load_buf for a spec the controller stored before: the checks added
 * since (host collisions, spec_hosts_check) do not refuse it, so an upgraded
 * controller still reads what it accepted. New specs go through spec_load_buf.
 */
int spec_load_stored(const char *name, const char *buf, size_t len, struct spec **out,
		     struct diags *diags);
void spec_free(struct spec *spec);

/*
 * Host collisions (spec_hosts.c): the same host pattern resolved for two
 * (service, environment) pairs. Adds one diagnostic per colliding host at
 * the host's node, naming the other pair, and returns how many. src is the
 * spec's text (for the excerpts; may be NULL). spec_load runs it on a spec
 * without other problems.
 */
int spec_hosts_check(const struct spec *spec, const char *file, const char *src, size_t srclen,
		     struct diags *diags);

/* core/spec_cluster.c: copies and releases (the structs' storage is the caller's) */
void cluster_config_copy(struct cluster_config *dst, const struct cluster_config *src);
void cluster_config_release(struct cluster_config *c);
void placement_release(struct placement *p);
/* a node's Engine in c (hostname borrowed): the nodes map's, NULL if absent */
const char *cluster_node_engine(const struct cluster_config *c, const char *hostname);

const struct spec_env *spec_find_env(const struct spec *spec, const char *name);
const struct spec_service *spec_find_service(const struct spec *spec, const char *name);
/* a service or environment name: a lowercase DNS label (a-z, 0-9, '-' inside), 1..63 characters */
bool spec_name_valid(const char *s);

/*
 * Resolves SERVICE in ENV into *out (caller's storage; svc_config_release).
 * Returns -1 with err set when the service or environment does not exist.
 */
int spec_resolve(const struct spec *spec, const char *service, const char *env,
		 struct svc_config *out, struct gerr *err);

void svc_config_release(struct svc_config *c);
/* migrations.maintenance_allow: frees the list; whether s is a header name it takes (an HTTP token, 1..64) */
void spec_maint_allow_release(struct mig_maint_allow *a, size_t n);
bool spec_maint_header_valid(const char *s);
/* deep copy (dst: caller's storage) and release of an analysis definition */
void analysis_def_copy(struct analysis_def *dst, const struct analysis_def *src);
void analysis_def_release(struct analysis_def *d);
/* JSON round trip of the resolved config (stored with each revision). */
struct json_t *svc_config_to_json(const struct svc_config *c);          /* new reference */
int svc_config_from_json(const struct json_t *j, struct svc_config *out, struct gerr *err);
/* sets or replaces env KEY (for `deploy --set env.KEY=VALUE`); a secret given as KEY is dropped */
void svc_config_set_env(struct svc_config *c, const char *key, const char *value);
/* sets or replaces the secret reference (ref->file, ref->target) with a copy of ref;
 * an env KEY of the same name given as a plain value is dropped */
void svc_config_set_secret(struct svc_config *c, const struct secret_ref *ref);

/*
 * Read-only view of the spec's YAML tree, for modules that validate and read
 * their own keys (protection, checks, notify, roles: core/spec_gates.c
 * checks them, gates/gspec.c reads them).
 * Nodes are borrowed from the spec; NULL stands for an absent node.
 */
struct spec_node;
enum spec_node_kind { SPEC_NODE_NULL, SPEC_NODE_SCALAR, SPEC_NODE_MAP, SPEC_NODE_SEQ, SPEC_NODE_OTHER };
const struct spec_node *spec_root(const struct spec *spec);
enum spec_node_kind spec_node_kind(const struct spec_node *n);
const char *spec_node_text(const struct spec_node *n);   /* a scalar's text, else NULL */
bool spec_node_quoted(const struct spec_node *n);        /* a quoted scalar (never a number) */
size_t spec_node_count(const struct spec_node *n);       /* map: pairs; list: items */
const struct spec_node *spec_node_key(const struct spec_node *n, size_t i);  /* map: key i */
const struct spec_node *spec_node_item(const struct spec_node *n, size_t i); /* map: value i; list: item i */
const struct spec_node *spec_node_get(const struct spec_node *map, const char *key);
void spec_node_pos(const struct spec_node *n, int *line, int *col);
/* n as JSON (new reference): plain integers become numbers, other scalars strings, null for NULL */
struct json_t *spec_node_to_json(const struct spec_node *n);

/* A starter spec (gantry init); it must validate. */
extern const char spec_starter[];

/*
 * Prints every spec key, one per line: "PATH<TAB>DEFAULT<TAB>DESCRIPTION"
 * (PATH like services.S.probes.readiness.period, with "-" for no default),
 * from the same tables the validator uses; docs/gantry.yaml.5.md is checked
 * against it.
 */
void spec_print_keys(FILE *f);

#endif
