/*
 * spec.c — gantry.yaml: parse (libfyaml events into a small tree that keeps
 * line:column for every node), validate against the key tables below, and
 * resolve one service in one environment into struct svc_config.
 *
 * One walker does both validation and resolution: it applies a YAML mapping
 * onto a struct svc_config through the key tables, reporting each problem
 * (loud walker) or silently skipping it (quiet walker; used by spec_resolve
 * once spec_load has proved the spec valid). So what validates is exactly
 * what resolves.
 *
 * Precedence when resolving SERVICE in ENV (lowest first):
 *   the defaults in the key tables,
 *   environments.ENV (replicas, hosts),
 *   services.SERVICE.*,
 *   services.SERVICE.environments.ENV.*
 * A scalar replaces, `env` merges key by key, `probes.*` and `resources`
 * merge per sub-key, lists replace.
 */
#include "common.h"
#include "core/spec.h"
#include "core/condition.h"
#include "gates/gspec.h"
#include "util/parse.h"
#include <inttypes.h>
#include <jansson.h>
#include <libfyaml.h>
#include <math.h>

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
/* the YAML tree                                                            */

enum ytype { Y_SCALAR, Y_MAP, Y_SEQ, Y_ALIAS };

struct ynode {
	enum ytype type;
	int line, col;     /* 1-based; 0 when libfyaml gave no mark */
	char *text;        /* scalar text (NUL-terminated), alias name; owned */
	bool plain;        /* plain (unquoted) scalar: may be null/bool/number */
	struct ynode **kids; /* map: key, value, key, value...; seq: items; owned */
	size_t nkids;
};

static void ynode_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		ynode_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

static void ynode_add(struct ynode *parent, struct ynode *kid)
{
	/* grow by doubling: a long flow sequence must not cost O(n^2) */
	if (!(parent->nkids & (parent->nkids - 1)))
		parent->kids = xrealloc(parent->kids,
					(parent->nkids ? parent->nkids * 2 : 1) * sizeof(*parent->kids));
	parent->kids[parent->nkids++] = kid;
}

static bool y_is_null(const struct ynode *n)
{
	if (!n)
		return true;
	if (n->type != Y_SCALAR || !n->plain)
		return false;
	return !*n->text || !strcmp(n->text, "~") || !strcmp(n->text, "null") ||
	       !strcmp(n->text, "Null") || !strcmp(n->text, "NULL");
}

static const char *y_type_name(const struct ynode *n)
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

/* value node of KEY in map, or NULL (the map has no duplicates once validated) */
static struct ynode *y_lookup(const struct ynode *map, const char *key, struct ynode **keynode)
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
/* diagnostics                                                              */

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

/* copy of source line LINE (1-based) into buf, or NULL */
static void report_at(struct walker *w, int line, int col, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void report_at(struct walker *w, int line, int col, const char *fmt, ...)
{
	char msg[1024], src[256];
	va_list ap;

	w->nerr++;
	if (!w->diags)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diags_add(w->diags, w->file, line, col, w->plen ? w->path : NULL,
		  diag_source_line(w->src, w->srclen, line, src, sizeof(src)), "%s", msg);
}

#define report(w, node, ...) report_at((w), (node) ? (node)->line : 0, (node) ? (node)->col : 0, __VA_ARGS__)

static size_t path_push(struct walker *w, const char *fmt, ...) PRINTF_LIKE(2, 3);
static size_t path_push(struct walker *w, const char *fmt, ...)
{
	size_t old = w->plen;
	va_list ap;
	int n;

	if (w->plen >= sizeof(w->path) - 1)
		return old;
	va_start(ap, fmt);
	n = vsnprintf(w->path + w->plen, sizeof(w->path) - w->plen, fmt, ap);
	va_end(ap);
	if (n > 0)
		w->plen = MIN(w->plen + (size_t)n, sizeof(w->path) - 1);
	return old;
}

static size_t path_key(struct walker *w, const char *key)
{
	return w->plen ? path_push(w, ".%s", key) : path_push(w, "%s", key);
}

static void path_pop(struct walker *w, size_t old)
{
	w->plen = old;
	w->path[old] = 0;
}

/* ------------------------------------------------------------------------ */
/* the key tables                                                           */

enum ktype {
	KT_STR,        /* non-empty string */
	KT_INT,        /* int, min..max */
	KT_INT64,      /* int64_t, min..max */
	KT_DUR,        /* int64_t milliseconds, min..max */
	KT_SIZE,       /* int64_t bytes */
	KT_CPU,        /* int64_t millicores */
	KT_INTPCT,     /* struct intpct: count (min..max) or percentage 0..100% */
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
	/* progressive delivery (apply_delivery) */
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

#define PROBE_KEYS(period_def)                                                                       \
	{ "http", KT_PROBE_HTTP, 0, 0, 0, NULL, NULL, 0, "HTTP GET of this path; passes on 2xx/3xx" },   \
	{ "tcp", KT_PROBE_TCP, 0, 0, 0, NULL, NULL, 0, "`true`: passes when the port accepts a connection" }, \
	{ "exec", KT_PROBE_EXEC, 0, 0, 0, NULL, NULL, 0, "shell command; passes when it exits 0" },      \
	{ "period", KT_DUR, offsetof(struct probe, period_ms), 1, HOUR_MS, period_def, NULL, 0,       \
	  "time between two probes" },                                                                 \
	{ "timeout", KT_DUR, offsetof(struct probe, timeout_ms), 1, HOUR_MS, "1s", NULL, 0,            \
	  "a probe slower than this fails" },                                                          \
	{ "failure_threshold", KT_INT, offsetof(struct probe, failure_threshold), 1, 1000, "3", NULL, 0, \
	  "consecutive failures before the replica counts as failed" },                                \
	{ "initial_delay", KT_DUR, offsetof(struct probe, initial_delay_ms), 0, HOUR_MS, "0s", NULL, 0, \
	  "wait this long after start before the first probe" },                                       \
	END_KEYS

static const struct keydef readiness_keys[] = { PROBE_KEYS("1s") };
static const struct keydef liveness_keys[] = { PROBE_KEYS("5s") };

static const struct keydef probes_keys[] = {
	{ "readiness", KT_PROBE, offsetof(struct svc_config, readiness), 0, 0, "none", readiness_keys,
	  KF_DOC_ONLY, "when a replica may receive traffic; none: once its port accepts TCP" },
	{ "liveness", KT_PROBE, offsetof(struct svc_config, liveness), 0, 0, "none", liveness_keys,
	  KF_DOC_ONLY, "a replica failing it is restarted" },
	END_KEYS
};

static const struct keydef resources_keys[] = {
	{ "cpu", KT_CPU, offsetof(struct resources, cpu_millis), 1, 1024000, NULL, NULL, 0,
	  "CPU limit: 500m, 1, 1.5 (absent: no limit)" },
	{ "memory", KT_SIZE, offsetof(struct resources, memory_bytes), 1 << 20, 1LL << 40, NULL, NULL, 0,
	  "memory limit: 256Mi, 1Gi, 512M (absent: no limit)" },
	{ "pids", KT_INT64, offsetof(struct resources, pids), 1, 4194304, NULL, NULL, 0,
	  "limit on processes and threads (absent: no limit)" },
	END_KEYS
};

static const struct keydef rolling_keys[] = {
	{ "max_surge", KT_INTPCT, offsetof(struct strategy, max_surge), 0, 1000, "25%", NULL, 0,
	  "extra replicas started above the desired count (count or % of replicas)" },
	{ "max_unavailable", KT_INTPCT, offsetof(struct strategy, max_unavailable), 0, 1000, "0", NULL, 0,
	  "replicas that may be missing during the rollout (count or %)" },
	END_KEYS
};

/* progressive delivery (issue 5); parsed by apply_delivery and friends */
static const struct keydef analysis_metric_keys[] = {
	{ "name", KT_STR, offsetof(struct analysis_metric, name), 0, 0, NULL, NULL, 0,
	  "unique within the analysis; default: the query of a builtin metric" },
	{ "provider", KT_PROVIDER, offsetof(struct analysis_metric, provider), 0, 0, "builtin", NULL, 0,
	  "builtin | prometheus | http | command" },
	{ "query", KT_STR, offsetof(struct analysis_metric, query), 0, 0, NULL, NULL, 0,
	  "builtin: the metric (error_rate, latency_p99...); prometheus: PromQL" },
	{ "fail_if", KT_STR, offsetof(struct analysis_metric, fail_if), 0, 0, NULL, NULL, 0,
	  "required: the condition failing a measurement" },
	{ "for", KT_ANY, 0, 0, 0, NULL, NULL, 0, "the condition must hold this long (as \"... for D\")" },
	{ "compare", KT_COMPARE, offsetof(struct analysis_metric, compare_baseline), 0, 0, NULL, NULL, 0,
	  "baseline: compare with the stable revision over the same window" },
	{ "method", KT_METHOD, offsetof(struct analysis_metric, mann_whitney), 0, 0, NULL, NULL, 0,
	  "mann-whitney: a Mann-Whitney U test on the latency samples" },
	{ "confidence", KT_CONFIDENCE, offsetof(struct analysis_metric, confidence), 0, 0, "98%", NULL, 0,
	  "confidence of the Mann-Whitney test" },
	{ "min_requests", KT_INT64, offsetof(struct analysis_metric, min_requests), 0, 1000000000, "0", NULL, 0,
	  "fewer requests in the window is inconclusive" },
	{ "address", KT_STR, offsetof(struct analysis_metric, address), 0, 0, NULL, NULL, 0, "prometheus: base URL" },
	{ "url", KT_STR, offsetof(struct analysis_metric, url), 0, 0, NULL, NULL, 0, "http: the URL to GET" },
	{ "json_path", KT_STR, offsetof(struct analysis_metric, json_path), 0, 0, NULL, NULL, 0,
	  "http: where the number is in the JSON answer" },
	{ "command", KT_STR, offsetof(struct analysis_metric, command), 0, 0, NULL, NULL, 0,
	  "command: shell command line" },
	{ "timeout", KT_DUR, offsetof(struct analysis_metric, timeout_ms), 1, HOUR_MS, "10s", NULL, 0,
	  "provider timeout" },
	END_KEYS
};

static const struct keydef analysis_keys[] = {
	{ "interval", KT_DUR, offsetof(struct analysis_def, interval_ms), 100, DAY_MS, "10s", NULL, 0,
	  "time between two measurements" },
	{ "count", KT_INT, offsetof(struct analysis_def, count), 0, 100000, "0", NULL, 0,
	  "measurements; 0: until the step ends" },
	{ "initial_delay", KT_DUR, offsetof(struct analysis_def, initial_delay_ms), 0, DAY_MS, "0s", NULL, 0,
	  "wait before the first measurement" },
	{ "failure_limit", KT_INT, offsetof(struct analysis_def, failure_limit), 0, 100000, "0", NULL, 0,
	  "failed measurements tolerated" },
	{ "inconclusive_limit", KT_INT, offsetof(struct analysis_def, inconclusive_limit), 0, 100000, "0", NULL, 0,
	  "inconclusive measurements tolerated" },
	{ "error_limit", KT_INT, offsetof(struct analysis_def, error_limit), 0, 100000, "4", NULL, 0,
	  "consecutive measurement errors tolerated" },
	{ "metrics", KT_METRICS, 0, 0, 0, NULL, analysis_metric_keys, 0, "required: the metrics measured" },
	END_KEYS
};

static const struct keydef canary_step_keys[] = {
	{ "weight", KT_INT, offsetof(struct canary_step, weight), 0, 100, NULL, NULL, 0,
	  "route this percentage to the canary" },
	{ "pause", KT_PAUSE, 0, 0, 0, NULL, NULL, 0, "wait a duration, or {} until resumed" },
	{ "analysis", KT_STR, offsetof(struct canary_step, analysis), 0, 0, NULL, NULL, 0,
	  "run this analysis and wait for its verdict" },
	{ "match", KT_MATCH, offsetof(struct canary_step, headers), 0, 0, NULL, NULL, 0,
	  "{header: {NAME: VALUE}}: route matching requests to the canary" },
	{ "replicas", KT_INT, offsetof(struct canary_step, replicas), 1, 1000, NULL, NULL, 0,
	  "canary replicas from now on, whatever the weight" },
	END_KEYS
};

static const struct keydef canary_analysis_keys[] = {
	{ "name", KT_STR, offsetof(struct canary_config, analysis), 0, 0, NULL, NULL, 0, "the analysis" },
	{ "starting_step", KT_INT, offsetof(struct canary_config, analysis_starting_step), 0, 99, "0", NULL, 0,
	  "step (0-based) from which it runs" },
	END_KEYS
};

static const struct keydef canary_keys[] = {
	{ "steps", KT_STEPS, 0, 0, 0, NULL, canary_step_keys, 0, "the steps, in order" },
	{ "match", KT_MATCH, offsetof(struct canary_config, match), 0, 0, NULL, NULL, 0,
	  "{header: {NAME: VALUE}}: always route these to the canary" },
	{ "analysis", KT_CANARY_ANALYSIS, 0, 0, 0, NULL, canary_analysis_keys, 0,
	  "background analysis: NAME or {name, starting_step}" },
	END_KEYS
};

static const struct keydef bluegreen_keys[] = {
	{ "preview_tag", KT_STR, offsetof(struct bluegreen_config, preview_tag), 0, 0, "preview", NULL, 0,
	  "the new revision answers at TAG---SVC.ENV.localhost before the switch" },
	{ "auto_promote", KT_BOOL, offsetof(struct bluegreen_config, auto_promote), 0, 0, "true", NULL, 0,
	  "switch without a gantry resume" },
	{ "auto_promote_after", KT_DUR, offsetof(struct bluegreen_config, auto_promote_after_ms), 0, 7 * DAY_MS, "0s",
	  NULL, 0, "wait this long once the preview is ready" },
	{ "pre_promotion_analysis", KT_STR, offsetof(struct bluegreen_config, pre_promotion_analysis), 0, 0, NULL,
	  NULL, 0, "must pass before the switch" },
	{ "post_promotion_analysis", KT_STR, offsetof(struct bluegreen_config, post_promotion_analysis), 0, 0, NULL,
	  NULL, 0, "failing after the switch switches back" },
	{ "keep_previous", KT_DUR, offsetof(struct bluegreen_config, keep_previous_ms), 0, 7 * DAY_MS, "10m", NULL, 0,
	  "the old revision stays warm this long" },
	END_KEYS
};

static const struct keydef strategy_keys[] = {
	{ "rolling", KT_MAP, 0, 0, 0, NULL, rolling_keys, 0, "replace replicas a few at a time" },
	{ "recreate", KT_MAP, 0, 0, 0, NULL, NULL, 0, "stop every old replica, then start the new ones" },
	{ "canary", KT_ANY, 0, 0, 0, NULL, canary_keys, 0, "shift traffic by steps" },
	{ "bluegreen", KT_ANY, 0, 0, 0, NULL, bluegreen_keys, 0, "start the full new set, then switch" },
	END_KEYS
};

/* every key of a service, also valid in services.S.environments.E unless KF_NO_OVERRIDE */
static const struct keydef service_keys[] = {
	{ "run", KT_STR, offsetof(struct svc_config, run), 0, 0, NULL, NULL, 0,
	  "required: shell command line (sh -c); gets the port in $PORT" },
	{ "build", KT_STR, offsetof(struct svc_config, build), 0, 0, NULL, NULL, 0,
	  "shell command run in the spec directory before the artifact is snapshotted" },
	{ "artifact", KT_STR, offsetof(struct svc_config, artifact), 0, 0, ".", NULL, 0,
	  "path (relative to the spec directory) snapshotted for each revision" },
	{ "replicas", KT_INT, offsetof(struct svc_config, replicas), 0, 1000, "1", NULL, KF_DOC_ONLY,
	  "replica count; default: environments.E.replicas, else 1" },
	{ "env", KT_ENVMAP, offsetof(struct svc_config, env), 0, 0, NULL, NULL, 0,
	  "environment variables (scalars; numbers and booleans are kept as written)" },
	{ "hosts", KT_HOSTS, offsetof(struct svc_config, hosts), 0, 0, "[SVC.ENV.localhost]", NULL,
	  KF_DOC_ONLY, "Host names routed to the service; default: environments.E.hosts; SVC.ENV.localhost is always added" },
	{ "tag_hosts", KT_BOOL, offsetof(struct svc_config, tag_hosts), 0, 0, "false", NULL, 0,
	  "every ready revision N also answers at rN---HOST (and stable---, canary---); the blue-green preview tag answers either way" },
	{ "probes", KT_MAP, 0, 0, 0, NULL, probes_keys, 0, "health probes" },
	{ "resources", KT_MAP, offsetof(struct svc_config, resources), 0, 0, NULL, resources_keys, 0,
	  "limits per replica" },
	{ "stop_grace", KT_DUR, offsetof(struct svc_config, stop_grace_ms), 0, HOUR_MS, "10s", NULL, 0,
	  "SIGTERM to SIGKILL" },
	{ "drain_timeout", KT_DUR, offsetof(struct svc_config, drain_timeout_ms), 0, HOUR_MS, "30s", NULL, 0,
	  "how long in-flight requests may finish before the replica is stopped" },
	{ "progress_deadline", KT_DUR, offsetof(struct svc_config, progress_deadline_ms), 1000, 7 * DAY_MS,
	  "10m", NULL, 0, "a rollout that makes no progress for this long fails" },
	{ "keep_revisions", KT_INT, offsetof(struct svc_config, keep_revisions), 1, 1000, "10", NULL, 0,
	  "revisions whose artifacts are kept (for rollback)" },
	{ "user", KT_STR, offsetof(struct svc_config, user), 0, 0, "gantry-run", NULL, KF_NO_OVERRIDE,
	  "user name or numeric uid the replicas and exec probes run as (never root)" },
	{ "strategy", KT_STRATEGY, offsetof(struct svc_config, strategy), 0, 0, "rolling", strategy_keys, 0,
	  "rolling | recreate | {rolling: {max_surge, max_unavailable}} | {recreate: {}} | {canary: ...} | {bluegreen: ...}" },
	{ "rollback_on", KT_CONDLIST, offsetof(struct svc_config, rollback_on), 0, 0, NULL, NULL, 0,
	  "conditions (\"error_rate > 5% for 2m\") that roll the service back" },
	{ "watch", KT_DUR, offsetof(struct svc_config, watch_ms), 0, 7 * DAY_MS, "30m", NULL, 0,
	  "rollback_on stays armed this long after a rollout completes" },
	{ "analysis", KT_ANALYSES, 0, 0, 0, NULL, analysis_keys, 0, "named analyses: NAME: {interval, ..., metrics}" },
	{ "shield", KT_BOOL, offsetof(struct svc_config, shield), 0, 0, "false", NULL, 0,
	  "canary shield: retry a failed idempotent canary request on stable" },
	{ "on_error", KT_ONERROR, offsetof(struct svc_config, on_error), 0, 0, "pause", NULL, 0,
	  "analysis errors past error_limit: pause | rollback" },
	{ "checks", KT_ANY, 0, 0, 0, NULL, NULL, KF_NO_OVERRIDE,
	  "pre- and post-deployment checks (checked by src/gates/gspec.c)" },
	{ "environments", KT_OVERRIDES, 0, 0, 0, NULL, NULL, KF_NO_OVERRIDE,
	  "per-environment overrides of any key above" },
	END_KEYS
};

static const struct keydef env_keys[] = {
	{ "replicas", KT_INT, offsetof(struct spec_env, replicas), 1, 1000, NULL, NULL, 0,
	  "default replica count of the services in this environment" },
	{ "hosts", KT_HOSTS, offsetof(struct spec_env, hosts), 0, 0, NULL, NULL, 0,
	  "default Host names of the services in this environment" },
	/* gate keys: checked and read by src/gates/gspec.c */
	{ "protection", KT_ANY, 0, 0, 0, NULL, NULL, 0,
	  "gates: approvals, approval_ttl, windows, freeze_on_incident, checklist" },
	{ "promote_from", KT_ANY, 0, 0, 0, NULL, NULL, 0,
	  "only versions serving healthily in this environment may be deployed here" },
	{ "min_soak", KT_ANY, 0, 0, 0, NULL, NULL, 0,
	  "how long the promoted revision must have served in promote_from" },
	END_KEYS
};

static const struct keydef top_keys[] = {
	{ "project", KT_NAME, 0, 0, 0, "default", NULL, 0, "project name" },
	{ "environments", KT_MAP, 0, 0, 0, NULL, env_keys, 0,
	  "required: at least one environment, each a mapping (or empty)" },
	{ "services", KT_MAP, 0, 0, 0, NULL, service_keys, 0, "required: at least one service" },
	{ "analysis_templates", KT_ANALYSES, 0, 0, 0, NULL, analysis_keys, 0,
	  "analyses every service may use by name" },
	{ "notify", KT_ANY, 0, 0, 0, NULL, NULL, 0, "webhooks on events (checked by src/gates/gspec.c)" },
	{ "roles", KT_ANY, 0, 0, 0, NULL, NULL, 0, "OS user name: role, or {role, environments, services} (checked by src/gates/gspec.c)" },
	END_KEYS
};

/* ------------------------------------------------------------------------ */
/* typed values                                                             */

#define FIELD(base, def, T) ((T *)(void *)((char *)(base) + (def)->off))

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

bool spec_name_valid(const char *s)
{
	return s && valid_name(s);
}

/* host pattern: "*", or [*.]label(.label)* with lowercase labels */
static bool valid_host(const char *s)
{
	size_t n = strlen(s);
	if (!strcmp(s, "*"))
		return true;
	if (!n || n > 253)
		return false;
	if (!strncmp(s, "*.", 2))
		s += 2;
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		char label[64];
		if (!l || l > 63)
			return false;
		memcpy(label, s, l);
		label[l] = 0;
		if (!valid_name(label))
			return false;
		s += l;
		if (*s == '.' && !s[1])
			return false; /* trailing dot */
		if (*s)
			s++;
	}
	return true;
}

static bool valid_env_key(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static int parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;
	const char *p = s;

	if (*p == '-')
		p++;
	if (!*p)
		return -1;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int parse_intpct(const char *s, struct intpct *out)
{
	int64_t n;
	double p;
	if (parse_percent(s, &p) == 0) {
		out->is_pct = true;
		out->value = p;
		return 0;
	}
	if (parse_int64(s, &n) == 0) {
		out->is_pct = false;
		out->value = (double)n;
		return 0;
	}
	return -1;
}

/* the scalar text of n, or NULL after reporting why it is not one */
static const char *want_scalar(struct walker *w, const struct ynode *n, const struct ynode *at)
{
	if (n && n->type == Y_SCALAR && !y_is_null(n))
		return n->text;
	if (n && n->type == Y_ALIAS)
		report(w, n, "YAML aliases are not supported (write the value out)");
	else if (y_is_null(n))
		report(w, n && n->line ? n : at, "expected a value, got nothing");
	else
		report(w, n, "expected a scalar value, got %s", y_type_name(n));
	return NULL;
}

static void dur_range(struct walker *w, const struct ynode *n, const struct keydef *d, int64_t v, bool *ok)
{
	char a[32], b[32], c[32];
	if (v >= d->min && v <= d->max)
		return;
	*ok = false;
	report(w, n, "must be between %s and %s, got %s", format_duration(d->min, a, sizeof(a)),
	       format_duration(d->max, b, sizeof(b)), format_duration(v, c, sizeof(c)));
}

/*
 * Sets the scalar-typed field of def at base from text s. Reports through w
 * at n (quiet walkers just count). Used for spec values and for the defaults
 * in the tables (with a walker that must never report: a bad default is a bug).
 */
static void set_scalar(struct walker *w, const struct keydef *d, const struct ynode *n, const char *s,
		       void *base)
{
	int64_t v = 0;
	bool ok = true;

	switch (d->type) {
	case KT_STR:
		if (!*s) {
			report(w, n, "must not be empty");
			return;
		}
		free(*FIELD(base, d, char *));
		*FIELD(base, d, char *) = xstrdup(s);
		return;
	case KT_INT:
	case KT_INT64:
		if (parse_int64(s, &v) < 0) {
			report(w, n, "expected an integer, got '%s'", s);
			return;
		}
		if (v < d->min || v > d->max) {
			report(w, n, "must be between %" PRId64 " and %" PRId64 ", got %s", d->min, d->max, s);
			return;
		}
		if (d->type == KT_INT)
			*FIELD(base, d, int) = (int)v;
		else
			*FIELD(base, d, int64_t) = v;
		return;
	case KT_DUR:
		if (parse_duration_ms(s, &v) < 0) {
			report(w, n, "invalid duration '%s' (expected e.g. 500ms, 10s, 1m30s)", s);
			return;
		}
		dur_range(w, n, d, v, &ok);
		if (ok)
			*FIELD(base, d, int64_t) = v;
		return;
	case KT_SIZE:
		if (parse_size(s, &v) < 0) {
			report(w, n, "invalid size '%s' (expected e.g. 256Mi, 1Gi, 512M)", s);
			return;
		}
		if (v < d->min || v > d->max) {
			report(w, n, "must be between 1Mi and 1Ti, got %s", s);
			return;
		}
		*FIELD(base, d, int64_t) = v;
		return;
	case KT_CPU:
		if (parse_cpu_millis(s, &v) < 0) {
			report(w, n, "invalid CPU quantity '%s' (expected e.g. 500m, 1, 1.5)", s);
			return;
		}
		if (v < d->min || v > d->max) {
			report(w, n, "must be between 1m and 1024, got %s", s);
			return;
		}
		*FIELD(base, d, int64_t) = v;
		return;
	case KT_INTPCT: {
		struct intpct ip;
		if (parse_intpct(s, &ip) < 0) {
			report(w, n, "invalid percentage '%s' (expected e.g. 25%% or 2)", s);
			return;
		}
		if (ip.is_pct && ip.value > 100) {
			report(w, n, "must be between 0%% and 100%%, got %s", s);
			return;
		}
		if (!ip.is_pct && (ip.value < (double)d->min || ip.value > (double)d->max)) {
			report(w, n, "must be between %" PRId64 " and %" PRId64 ", got %s", d->min, d->max, s);
			return;
		}
		*FIELD(base, d, struct intpct) = ip;
		return;
	}
	default:
		BUG_ON(1);
	}
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* a list of strings (hosts when hosts is set); replaces the list at *vp only when all items are valid */
static void set_strlist(struct walker *w, const struct ynode *n, const struct ynode *at, bool hosts,
			char ***vp, size_t *np)
{
	char **v;
	size_t cnt = 0;
	int before = w->nerr;

	if (!n || n->type != Y_SEQ) {
		if (n && n->type == Y_ALIAS)
			report(w, n, "YAML aliases are not supported (write the value out)");
		else
			report(w, n && n->line ? n : at, "expected a list of strings, got %s", y_type_name(n));
		return;
	}
	v = xcalloc(n->nkids + 1, sizeof(*v));
	for (size_t i = 0; i < n->nkids; i++) {
		size_t old = path_push(w, "[%zu]", i);
		const char *s = want_scalar(w, n->kids[i], n);
		if (s && !*s) {
			report(w, n->kids[i], "must not be empty");
		} else if (s && hosts && !valid_host(s)) {
			report(w, n->kids[i],
			       "invalid host name '%s' (lowercase labels of letters, digits and '-', optionally \"*.\" first)", s);
		} else if (s) {
			bool dup = false;
			for (size_t j = 0; hosts && j < cnt; j++)
				dup |= !strcmp(v[j], s);
			if (dup)
				report(w, n->kids[i], "host '%s' is listed twice", s);
			else
				v[cnt++] = xstrdup(s);
		}
		path_pop(w, old);
	}
	if (w->nerr != before) {
		free_strv(v, cnt);
		return;
	}
	free_strv(*vp, *np);
	*vp = v;
	*np = cnt;
}

void svc_config_set_env(struct svc_config *c, const char *key, const char *value)
{
	size_t i;

	/* kept sorted by key: resolution and the JSON round trip are then deterministic */
	for (i = 0; i < c->nenv; i++) {
		int cmp = strcmp(c->env[i].key, key);
		if (!cmp) {
			free(c->env[i].value);
			c->env[i].value = xstrdup(value);
			return;
		}
		if (cmp > 0)
			break;
	}
	c->env = xrealloc(c->env, (c->nenv + 1) * sizeof(*c->env));
	memmove(&c->env[i + 1], &c->env[i], (c->nenv - i) * sizeof(*c->env));
	c->env[i].key = xstrdup(key);
	c->env[i].value = xstrdup(value);
	c->nenv++;
}

/* ------------------------------------------------------------------------ */
/* walking mappings through the tables                                      */

enum walk_mode { MODE_BASE, MODE_OVERRIDE };

static void walk_map(struct walker *w, const struct ynode *map, const struct ynode *at,
		     const struct keydef *tab, void *base, enum walk_mode mode);
/* progressive delivery (defined further down) */
static void apply_canary(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c);
static void apply_bluegreen(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c);
static void header_matches_release(struct header_match *h, size_t n);
static void canary_steps_release(struct canary_step *st, size_t n);
static void analysis_metric_release(struct analysis_metric *m);
static void delivery_release(struct svc_config *c);
static void delivery_to_json(json_t *o, const struct svc_config *c);

static const struct keydef *find_key(const struct keydef *tab, const char *name)
{
	for (; tab && tab->name; tab++)
		if (!strcmp(tab->name, name))
			return tab;
	return NULL;
}

static void report_unknown(struct walker *w, const struct ynode *k, const char *what,
			   const char *const *cands, size_t n)
{
	const char *s = diag_suggest(k->text, cands, n);
	if (s)
		report(w, k, "unknown %s '%s' (did you mean '%s'?)", what, k->text, s);
	else
		report(w, k, "unknown %s '%s'", what, k->text);
}

static void unknown_key(struct walker *w, const struct ynode *k, const struct keydef *tab)
{
	const char *cands[32];
	size_t n = 0;
	for (; tab && tab->name && n < ARRAY_SIZE(cands); tab++)
		cands[n++] = tab->name;
	report_unknown(w, k, "key", cands, n);
}

/*
 * Checks that k is a usable mapping key and not a repeat of an earlier key of
 * map (index i of kids). Returns false after reporting.
 */
static bool key_ok(struct walker *w, const struct ynode *map, size_t i)
{
	const struct ynode *k = map->kids[i];

	if (k->type == Y_ALIAS) {
		report(w, k, "YAML aliases are not supported (write the value out)");
		return false;
	}
	if (k->type != Y_SCALAR) {
		report(w, k, "mapping keys must be strings, got %s", y_type_name(k));
		return false;
	}
	for (size_t j = 0; j < i; j += 2) {
		const struct ynode *p = map->kids[j];
		if (p->type == Y_SCALAR && !strcmp(p->text, k->text)) {
			report(w, k, "duplicate key '%s' (first given on line %d)", k->text, p->line);
			return false;
		}
	}
	return true;
}

static bool want_map(struct walker *w, const struct ynode *n, const struct ynode *at, bool null_ok)
{
	if (n && n->type == Y_MAP)
		return true;
	if (null_ok && y_is_null(n))
		return false;
	if (n && n->type == Y_ALIAS)
		report(w, n, "YAML aliases are not supported (write the value out)");
	else
		report(w, n && n->line ? n : at, "expected a mapping, got %s", y_type_name(n));
	return false;
}

static void apply_probe(struct walker *w, const struct keydef *d, const struct ynode *k,
			const struct ynode *v, void *base, enum walk_mode mode)
{
	struct probe *p = FIELD(base, d, struct probe);
	const char *kinds[3];
	size_t nk = 0;

	if (!want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *pk = v->kids[i];
		if (pk->type == Y_SCALAR && (!strcmp(pk->text, "http") || !strcmp(pk->text, "tcp") ||
					     !strcmp(pk->text, "exec")) && nk < ARRAY_SIZE(kinds))
			kinds[nk++] = pk->text;
	}
	if (nk > 1) {
		report(w, v, "give only one of http, tcp or exec (got %s and %s)", kinds[0], kinds[1]);
		return;
	}
	walk_map(w, v, k, d->sub, p, mode);
	if (!nk && p->kind == PROBE_NONE)
		report(w, v, "needs one of http, tcp or exec");
}

static void apply_strategy(struct walker *w, const struct keydef *d, const struct ynode *k,
			   const struct ynode *v, void *base, enum walk_mode mode)
{
	static const char *const names[] = { "rolling", "recreate", "canary", "bluegreen" };
	struct strategy *st = FIELD(base, d, struct strategy);
	const struct ynode *sk, *sv;
	size_t i;

	if (v && v->type == Y_SCALAR && !y_is_null(v)) {
		for (i = 0; i < ARRAY_SIZE(names); i++)
			if (!strcmp(v->text, names[i]))
				break;
		if (i == ARRAY_SIZE(names)) {
			const char *s = diag_suggest(v->text, names, ARRAY_SIZE(names));
			report(w, v, "unknown strategy '%s'%s%s%s (expected rolling, recreate, canary or bluegreen)",
			       v->text, s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
			return;
		}
		st->kind = (enum strategy_kind)i;
		return;
	}
	if (!want_map(w, v, k, false))
		return;
	if (v->nkids != 2) {
		report(w, v, "give exactly one strategy: rolling, recreate, canary or bluegreen");
		return;
	}
	sk = v->kids[0];
	sv = v->kids[1];
	if (!key_ok(w, v, 0))
		return;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(sk->text, names[i]))
			break;
	if (i == ARRAY_SIZE(names)) {
		report_unknown(w, sk, "strategy", names, ARRAY_SIZE(names));
		return;
	}
	{
		size_t old = path_key(w, sk->text);
		int before = w->nerr;
		if (i == STRATEGY_ROLLING) {
			struct strategy tmp = *st;
			if (!y_is_null(sv) || sv->type != Y_SCALAR) {
				if (want_map(w, sv, sk, true))
					walk_map(w, sv, sk, rolling_keys, &tmp, mode);
			}
			if (w->nerr == before && tmp.max_surge.value == 0 && tmp.max_unavailable.value == 0)
				report(w, sv->line ? sv : sk,
				       "max_surge and max_unavailable cannot both be 0 (the rollout could never progress)");
			if (w->nerr == before)
				*st = tmp;
		} else if (i == STRATEGY_RECREATE) {
			if (want_map(w, sv, sk, true))
				walk_map(w, sv, sk, NULL, st, mode);
		} else if (i == STRATEGY_CANARY) {
			apply_canary(w, sk, sv, base);
		} else {
			apply_bluegreen(w, sk, sv, base);
		}
		path_pop(w, old);
		if (w->nerr == before)
			st->kind = (enum strategy_kind)i;
	}
}

static void apply_envmap(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c)
{
	if (!want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *ek = v->kids[i], *ev = v->kids[i + 1];
		size_t old;
		const char *s;

		if (!key_ok(w, v, i))
			continue;
		old = path_key(w, ek->text);
		if (!valid_env_key(ek->text)) {
			report(w, ek, "invalid environment variable name '%s' (letters, digits and '_', not starting with a digit)",
			       ek->text);
		} else if (y_is_null(ev) && ev->type == Y_SCALAR) {
			report(w, ev->line ? ev : ek, "value is empty (null); write \"\" for an empty string");
		} else if ((s = want_scalar(w, ev, ek))) {
			svc_config_set_env(c, ek->text, s);
		}
		path_pop(w, old);
	}
}

/* services.S.environments: at the base level only checks names and shapes */
static void check_overrides(struct walker *w, const struct ynode *k, const struct ynode *v,
			    const struct spec *spec)
{
	if (!want_map(w, v, k, true))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *ek = v->kids[i], *ev = v->kids[i + 1];
		size_t old;

		if (!key_ok(w, v, i))
			continue;
		old = path_key(w, ek->text);
		if (!spec_find_env(spec, ek->text)) {
			const char *cands[64];
			size_t n = 0;
			for (size_t j = 0; j < spec->nenvs && n < ARRAY_SIZE(cands); j++)
				cands[n++] = spec->envs[j].name;
			report_unknown(w, ek, "environment", cands, n);
			/* (an undeclared environment: declare it under the top-level environments) */
		} else {
			want_map(w, ev, ek, true);
		}
		path_pop(w, old);
	}
}

/* ------------------------------------------------------------------------ */
/* progressive delivery: canary, blue-green, analyses, rollback_on (issue 5) */

/* a condition string at node n, checked by core/condition.c; errors point into the string */
static void check_condition(struct walker *w, const struct ynode *n, const char *s, int implied_metric,
			    bool implied_baseline)
{
	struct condition c;
	struct gerr err;
	int ccol = 1;
	const char *msg;

	if (condition_parse_implied(s, implied_metric, implied_baseline, &c, &err) == 0)
		return;
	msg = err.msg;
	if (sscanf(err.msg, "col %d: ", &ccol) == 1 && (msg = strstr(err.msg, ": ")))
		msg += 2;
	else
		msg = err.msg, ccol = 1;
	/* a quoted scalar's column is its opening quote */
	report_at(w, n ? n->line : 0, n && n->line ? n->col + (n->plain ? 0 : 1) + ccol - 1 : 0,
		  "invalid condition \"%s\": %s", s, msg);
}

static void apply_condlist(struct walker *w, const struct keydef *d, const struct ynode *k, const struct ynode *v,
			   void *base)
{
	char ***vp = FIELD(base, d, char **);
	size_t *np = (size_t *)(void *)((char *)base + d->off + sizeof(char **));
	int before = w->nerr;

	set_strlist(w, v, k, false, vp, np);
	if (w->nerr != before)
		return;
	for (size_t i = 0; i < *np && v && v->type == Y_SEQ && i < v->nkids; i++) {
		size_t old = path_push(w, "[%zu]", i);
		check_condition(w, v->kids[i], (*vp)[i], -1, false);
		path_pop(w, old);
	}
}

static void apply_bool(struct walker *w, const struct keydef *d, const struct ynode *v, const char *s, void *base)
{
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		*FIELD(base, d, bool) = true;
	else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		*FIELD(base, d, bool) = false;
	else
		report(w, v, "expected true or false, got '%s'", s);
}

/* a choice among names (for enum fields); returns the index or -1 after reporting */
static int want_choice(struct walker *w, const struct ynode *v, const char *s, const char *const *names, size_t n)
{
	const char *sug;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	sug = diag_suggest(s, names, n);
	if (sug)
		report(w, v, "unknown value '%s' (did you mean '%s'?)", s, sug);
	else if (n == 2)
		report(w, v, "unknown value '%s' (expected %s or %s)", s, names[0], names[1]);
	else
		report(w, v, "unknown value '%s'", s);
	return -1;
}

static bool valid_header_name(const char *s)
{
	if (!*s || strlen(s) > 128)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

/* match: {header: {NAME: VALUE, ...}}; replaces *hp on success */
static void apply_match(struct walker *w, const struct ynode *k, const struct ynode *v, struct header_match **hp,
			size_t *np)
{
	const struct ynode *hk = NULL, *hv;
	struct header_match *h = NULL;
	size_t n = 0, old;
	int before = w->nerr;

	if (!want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		if (!key_ok(w, v, i))
			continue;
		if (strcmp(v->kids[i]->text, "header")) {
			static const char *const cands[] = { "header" };
			report_unknown(w, v->kids[i], "key", cands, 1);
			continue;
		}
		hk = v->kids[i];
	}
	if (!hk) {
		if (w->nerr == before)
			report(w, v, "needs header: {NAME: VALUE}");
		return;
	}
	hv = y_lookup(v, "header", NULL);
	old = path_key(w, "header");
	if (want_map(w, hv, hk, false)) {
		if (!hv->nkids)
			report(w, hv, "needs at least one header");
		h = xcalloc(hv->nkids / 2 + 1, sizeof(*h));
		for (size_t i = 0; i + 1 < hv->nkids; i += 2) {
			const struct ynode *nk = hv->kids[i], *nv = hv->kids[i + 1];
			const char *s;
			size_t o2;
			if (!key_ok(w, hv, i))
				continue;
			o2 = path_key(w, nk->text);
			if (!valid_header_name(nk->text)) {
				report(w, nk, "invalid header name '%s'", nk->text);
			} else if ((s = want_scalar(w, nv, nk))) {
				size_t l = strlen(s);
				if (l > 1024 || strpbrk(s, "\r\n")) {
					report(w, nv, "invalid header value");
				} else {
					h[n].name = xstrdup(nk->text);
					for (char *p = h[n].name; *p; p++)
						*p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
					h[n].prefix = l && s[l - 1] == '*';
					h[n].value = xstrndup(s, h[n].prefix ? l - 1 : l);
					n++;
				}
			}
			path_pop(w, o2);
		}
	}
	path_pop(w, old);
	if (w->nerr != before) {
		header_matches_release(h, n);
		return;
	}
	header_matches_release(*hp, *np);
	*hp = h;
	*np = n;
}

static const char *const step_names[] = { "weight", "pause", "analysis", "match", "replicas" };

static void apply_steps(struct walker *w, const struct ynode *k, const struct ynode *v, struct canary_config *cc)
{
	struct canary_step *steps;
	size_t n = 0;
	int before = w->nerr;

	if (!v || v->type != Y_SEQ) {
		report(w, v && v->line ? v : k, "expected a list of steps, got %s", y_type_name(v));
		return;
	}
	if (v->nkids > 100) {
		report(w, v, "at most 100 steps");
		return;
	}
	steps = xcalloc(v->nkids + 1, sizeof(*steps));
	for (size_t i = 0; i < v->nkids; i++) {
		const struct ynode *it = v->kids[i], *sk;
		struct canary_step *st = &steps[n];
		size_t old = path_push(w, "[%zu]", i), j;

		if (!want_map(w, it, v, false))
			goto next;
		if (it->nkids != 2) {
			report(w, it, "a step has exactly one key: weight, pause, analysis, match or replicas");
			goto next;
		}
		sk = it->kids[0];
		if (!key_ok(w, it, 0))
			goto next;
		for (j = 0; j < ARRAY_SIZE(step_names); j++)
			if (!strcmp(sk->text, step_names[j]))
				break;
		if (j == ARRAY_SIZE(step_names)) {
			report_unknown(w, sk, "step", step_names, ARRAY_SIZE(step_names));
			goto next;
		}
		st->kind = (enum canary_step_kind)j;
		{
			int b2 = w->nerr;
			walk_map(w, it, sk, canary_step_keys, st, MODE_BASE);
			if (w->nerr == b2) {
				n++;
			} else {
				free(st->analysis);
				header_matches_release(st->headers, st->nheaders);
				memset(st, 0, sizeof(*st));
			}
		}
next:
		path_pop(w, old);
	}
	if (w->nerr != before) {
		canary_steps_release(steps, n);
		return;
	}
	canary_steps_release(cc->steps, cc->nsteps);
	cc->steps = steps;
	cc->nsteps = n;
}

static void apply_metrics(struct walker *w, const struct ynode *k, const struct ynode *v, struct analysis_def *d)
{
	struct analysis_metric *ms;
	size_t n = 0;
	int before = w->nerr;

	if (!v || v->type != Y_SEQ || !v->nkids) {
		report(w, v && v->line ? v : k, "expected a list of at least one metric, got %s",
		       v && v->type == Y_SEQ ? "an empty list" : y_type_name(v));
		return;
	}
	ms = xcalloc(v->nkids, sizeof(*ms));
	for (size_t i = 0; i < v->nkids; i++) {
		const struct ynode *it = v->kids[i], *fv, *forv;
		struct ynode *fk = NULL;
		struct analysis_metric *m = &ms[n];
		size_t old = path_push(w, "[%zu]", i);
		int b2 = w->nerr, implied;
		int64_t for_ms;

		memset(m, 0, sizeof(*m));
		m->confidence = 0.98;
		m->timeout_ms = 10000;
		if (!want_map(w, it, v, false))
			goto next;
		walk_map(w, it, v, analysis_metric_keys, m, MODE_BASE);
		fv = y_lookup(it, "fail_if", &fk);
		forv = y_lookup(it, "for", NULL);
		if (w->nerr != b2)
			goto next;
		if (!m->name)
			m->name = m->query && m->provider == PROVIDER_BUILTIN ? xstrdup(m->query) : xasprintf("metric%zu", i);
		for (size_t j = 0; j < n; j++)
			if (!strcmp(ms[j].name, m->name))
				report(w, it, "metric name '%s' is used twice (give each a name:)", m->name);
		if (!m->fail_if) {
			report(w, it, "missing required key 'fail_if' (e.g. \"error_rate > 1%%\")");
			goto next;
		}
		switch (m->provider) {
		case PROVIDER_BUILTIN:
			if (m->query && cond_metric_from_name(m->query) < 0)
				report(w, y_lookup(it, "query", NULL), "unknown builtin metric '%s' (error_rate, availability, request_rate, latency_p50/p90/p95/p99, restarts, ready_ratio)",
				       m->query);
			break;
		case PROVIDER_PROMETHEUS:
			if (!m->address || !m->query)
				report(w, it, "a prometheus metric needs address and query");
			break;
		case PROVIDER_HTTP:
			if (!m->url)
				report(w, it, "an http metric needs url");
			break;
		case PROVIDER_COMMAND:
			if (!m->command)
				report(w, it, "a command metric needs command");
			break;
		}
		if (forv) {
			const char *fs = want_scalar(w, forv, it);
			if (fs && parse_duration_ms(fs, &for_ms) < 0) {
				report(w, forv, "invalid duration '%s' (expected e.g. 30s, 2m)", fs);
			} else if (fs) {
				char *t = xasprintf("%s for %s", m->fail_if, fs);
				free(m->fail_if);
				m->fail_if = t;
			}
		}
		implied = m->query && m->provider == PROVIDER_BUILTIN ? cond_metric_from_name(m->query)
			  : m->provider != PROVIDER_BUILTIN ? CM_VALUE : -1;
		{
			size_t o2 = path_key(w, "fail_if");
			/* a `for:` is appended at the end: columns in fail_if stay right */
			check_condition(w, fv, m->fail_if, implied, m->compare_baseline);
			path_pop(w, o2);
		}
		if (w->nerr == b2 && m->mann_whitney) {
			struct condition c;
			struct gerr e;
			if (condition_parse_implied(m->fail_if, implied, m->compare_baseline, &c, &e) == 0 &&
			    (c.rhs == CR_VALUE || isnan(cond_metric_quantile(c.metric))))
				report(w, it, "method: mann-whitney compares latencies with the baseline: use a latency metric and compare: baseline");
		}
next:
		if (w->nerr == b2)
			n++;
		else
			analysis_metric_release(m);
		path_pop(w, old);
	}
	if (w->nerr != before) {
		for (size_t i = 0; i < n; i++)
			analysis_metric_release(&ms[i]);
		free(ms);
		return;
	}
	for (size_t i = 0; i < d->nmetrics; i++)
		analysis_metric_release(&d->metrics[i]);
	free(d->metrics);
	d->metrics = ms;
	d->nmetrics = n;
}

/* NAME: {analysis} entries, each replacing an analysis of the same name in *vp */
static void apply_analyses(struct walker *w, const struct ynode *k, const struct ynode *v, struct analysis_def **vp,
			   size_t *np)
{
	if (!want_map(w, v, k, false))
		return;
	if (v->nkids / 2 > 64) {
		report(w, v, "at most 64 analyses");
		return;
	}
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *ak = v->kids[i], *av = v->kids[i + 1];
		struct analysis_def d = { 0 };
		size_t old, j;
		int before = w->nerr;

		if (!key_ok(w, v, i))
			continue;
		old = path_key(w, ak->text);
		if (!valid_name(ak->text)) {
			report(w, ak, "invalid analysis name '%s' (lowercase letters, digits and '-')", ak->text);
			goto next;
		}
		if (!want_map(w, av, ak, false))
			goto next;
		d.interval_ms = 10000;
		d.error_limit = 4;
		walk_map(w, av, ak, analysis_keys, &d, MODE_BASE);
		if (w->nerr == before && !d.nmetrics)
			report(w, av, "missing required key 'metrics'");
		if (w->nerr != before) {
			analysis_def_release(&d);
			goto next;
		}
		d.name = xstrdup(ak->text);
		for (j = 0; j < *np; j++)
			if (!strcmp((*vp)[j].name, d.name))
				break;
		if (j < *np) {
			analysis_def_release(&(*vp)[j]);
		} else {
			*vp = xrealloc(*vp, (*np + 1) * sizeof(**vp));
			(*np)++;
		}
		(*vp)[j] = d;
next:
		path_pop(w, old);
	}
}

static void apply_canary_analysis(struct walker *w, const struct ynode *k, const struct ynode *v,
				  struct canary_config *cc)
{
	const char *s;

	if (v && v->type == Y_MAP) {
		struct canary_config tmp = { 0 };
		int before = w->nerr;
		walk_map(w, v, k, canary_analysis_keys, &tmp, MODE_BASE);
		if (w->nerr == before && !tmp.analysis)
			report(w, v, "missing required key 'name'");
		if (w->nerr != before) {
			free(tmp.analysis);
			return;
		}
		free(cc->analysis);
		cc->analysis = tmp.analysis;
		cc->analysis_starting_step = tmp.analysis_starting_step;
		return;
	}
	if ((s = want_scalar(w, v, k))) {
		free(cc->analysis);
		cc->analysis = xstrdup(s);
		cc->analysis_starting_step = 0;
	}
}

static void delivery_defaults(struct svc_config *c)
{
	free(c->bluegreen.preview_tag);
	c->bluegreen.preview_tag = xstrdup("preview");
	c->bluegreen.auto_promote = true;
	c->bluegreen.auto_promote_after_ms = 0;
	c->bluegreen.keep_previous_ms = 10 * 60 * 1000;
}

/* strategy: {canary: {...}} (a mapping or nothing); lists replace, so an override starts afresh */
static void apply_canary(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c)
{
	struct canary_config tmp = { 0 };
	int before = w->nerr;

	if (!y_is_null(v) || v->type != Y_SCALAR) {
		if (!want_map(w, v, k, true))
			return;
		walk_map(w, v, k, canary_keys, &tmp, MODE_BASE);
	}
	if (w->nerr != before) {
		canary_steps_release(tmp.steps, tmp.nsteps);
		header_matches_release(tmp.match, tmp.nmatch);
		free(tmp.analysis);
		return;
	}
	canary_steps_release(c->canary.steps, c->canary.nsteps);
	header_matches_release(c->canary.match, c->canary.nmatch);
	free(c->canary.analysis);
	c->canary = tmp;
}

static void apply_bluegreen(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c)
{
	struct svc_config tmp = { 0 };
	int before = w->nerr;

	delivery_defaults(&tmp);
	if (!y_is_null(v) || v->type != Y_SCALAR) {
		if (want_map(w, v, k, true))
			walk_map(w, v, k, bluegreen_keys, &tmp.bluegreen, MODE_BASE);
	}
	if (w->nerr == before && tmp.bluegreen.preview_tag && !valid_name(tmp.bluegreen.preview_tag))
		report(w, y_lookup(v, "preview_tag", NULL), "invalid preview_tag '%s' (a host name label: lowercase letters, digits and '-')",
		       tmp.bluegreen.preview_tag);
	if (w->nerr != before) {
		delivery_release(&tmp);
		return;
	}
	free(c->bluegreen.preview_tag);
	free(c->bluegreen.pre_promotion_analysis);
	free(c->bluegreen.post_promotion_analysis);
	c->bluegreen = tmp.bluegreen;
}

static void apply_delivery(struct walker *w, const struct keydef *d, const struct ynode *k, const struct ynode *v,
			   void *base)
{
	static const char *const on_error_names[] = { "pause", "rollback" };
	static const char *const provider_names[] = { "builtin", "prometheus", "http", "command" };
	static const char *const compare_names[] = { "baseline" };
	static const char *const method_names[] = { "mann-whitney" };
	const char *s;
	int i;

	switch (d->type) {
	case KT_BOOL:
		if ((s = want_scalar(w, v, k)))
			apply_bool(w, d, v, s, base);
		return;
	case KT_ONERROR:
		if ((s = want_scalar(w, v, k)) && (i = want_choice(w, v, s, on_error_names, 2)) >= 0)
			*FIELD(base, d, enum on_error_policy) = (enum on_error_policy)i;
		return;
	case KT_PROVIDER:
		if ((s = want_scalar(w, v, k)) && (i = want_choice(w, v, s, provider_names, 4)) >= 0)
			*FIELD(base, d, enum metric_provider) = (enum metric_provider)i;
		return;
	case KT_COMPARE:
		if ((s = want_scalar(w, v, k)) && want_choice(w, v, s, compare_names, 1) >= 0)
			*FIELD(base, d, bool) = true;
		return;
	case KT_METHOD:
		if ((s = want_scalar(w, v, k)) && want_choice(w, v, s, method_names, 1) >= 0)
			*FIELD(base, d, bool) = true;
		return;
	case KT_CONFIDENCE:
		if ((s = want_scalar(w, v, k))) {
			double p;
			if (parse_percent(s, &p) < 0 || !(p >= 50 && p < 100))
				report(w, v, "expected a percentage from 50%% to 99.99%% (e.g. 98%%), got '%s'", s);
			else
				*FIELD(base, d, double) = p / 100;
		}
		return;
	case KT_CONDLIST:
		apply_condlist(w, d, k, v, base);
		return;
	case KT_ANALYSES: {
		struct svc_config *c = base;
		apply_analyses(w, k, v, &c->analyses, &c->nanalyses);
		return;
	}
	case KT_METRICS:
		apply_metrics(w, k, v, base);
		return;
	case KT_STEPS:
		apply_steps(w, k, v, base);
		return;
	case KT_PAUSE: {
		struct canary_step *st = base;
		if (y_is_null(v) || (v->type == Y_MAP && !v->nkids)) {
			st->pause_ms = -1;
		} else if ((s = want_scalar(w, v, k))) {
			int64_t ms;
			if (parse_duration_ms(s, &ms) < 0 || ms > 7 * DAY_MS)
				report(w, v, "invalid pause '%s' (a duration up to 7d, or {} to wait for gantry resume)", s);
			else
				st->pause_ms = ms;
		}
		return;
	}
	case KT_MATCH: {
		struct header_match **hp = FIELD(base, d, struct header_match *);
		apply_match(w, k, v, hp, (size_t *)(void *)((char *)base + d->off + sizeof(*hp)));
		return;
	}
	case KT_CANARY_ANALYSIS:
		apply_canary_analysis(w, k, v, base);
		return;
	default:
		BUG_ON(1);
	}
}

/*
 * After resolution: templates not defined by the service join its analyses,
 * and every analysis named by the strategy must exist.
 */
static void resolve_delivery(struct walker *w, const struct spec *spec, const struct spec_service *s,
			     const struct spec_env *e, struct svc_config *c)
{
	const struct ynode *root = spec ? spec->doc : NULL, *tv;
	struct ynode *tk = NULL;
	struct walker quiet = { 0 };
	struct analysis_def *tpl = NULL;
	size_t ntpl = 0;
	const char *refs[104];
	const char *where[104];
	size_t nrefs = 0;

	tv = y_lookup(root, "analysis_templates", &tk);
	if (tk && tv && tv->type == Y_MAP)
		apply_analyses(&quiet, tk, tv, &tpl, &ntpl);
	for (size_t i = 0; i < ntpl; i++) {
		bool have = false;
		for (size_t j = 0; j < c->nanalyses; j++)
			have |= !strcmp(c->analyses[j].name, tpl[i].name);
		if (have) {
			analysis_def_release(&tpl[i]);
			continue;
		}
		c->analyses = xrealloc(c->analyses, (c->nanalyses + 1) * sizeof(*c->analyses));
		c->analyses[c->nanalyses++] = tpl[i];
	}
	free(tpl);
	if (c->strategy.kind == STRATEGY_CANARY) {
		for (size_t i = 0; i < c->canary.nsteps && nrefs < 100; i++)
			if (c->canary.steps[i].kind == CSTEP_ANALYSIS)
				refs[nrefs] = c->canary.steps[i].analysis, where[nrefs++] = "strategy.canary.steps";
		if (c->canary.analysis)
			refs[nrefs] = c->canary.analysis, where[nrefs++] = "strategy.canary.analysis";
	} else if (c->strategy.kind == STRATEGY_BLUEGREEN) {
		if (c->bluegreen.pre_promotion_analysis)
			refs[nrefs] = c->bluegreen.pre_promotion_analysis,
			where[nrefs++] = "strategy.bluegreen.pre_promotion_analysis";
		if (c->bluegreen.post_promotion_analysis)
			refs[nrefs] = c->bluegreen.post_promotion_analysis,
			where[nrefs++] = "strategy.bluegreen.post_promotion_analysis";
	}
	for (size_t i = 0; i < nrefs; i++) {
		bool found = false;
		for (size_t j = 0; j < c->nanalyses; j++)
			found |= !strcmp(c->analyses[j].name, refs[i]);
		if (!found) {
			size_t old = path_push(w, "services.%s.%s", s->name, where[i]);
			report_at(w, s->line, s->col,
				  "no analysis '%s' in environment '%s' (define it under services.%s.analysis or analysis_templates)",
				  refs[i], e->name, s->name);
			path_pop(w, old);
		}
	}
}

static void apply_value(struct walker *w, const struct keydef *d, const struct ynode *k,
			const struct ynode *v, void *base, enum walk_mode mode)
{
	const char *s;

	switch (d->type) {
	case KT_STR:
	case KT_INT:
	case KT_INT64:
	case KT_DUR:
	case KT_SIZE:
	case KT_CPU:
	case KT_INTPCT:
		if ((s = want_scalar(w, v, k)))
			set_scalar(w, d, v, s, base);
		return;
	case KT_NAME:
		if ((s = want_scalar(w, v, k)) && !valid_name(s))
			report(w, v, "invalid name '%s' (lowercase letters, digits and '-', at most 63 characters)", s);
		return;
	case KT_STRLIST:
	case KT_HOSTS:
		set_strlist(w, v, k, d->type == KT_HOSTS, FIELD(base, d, char **),
			    (size_t *)(void *)((char *)base + d->off + sizeof(char **)));
		if (d->type == KT_HOSTS)
			w->hosts_given = true;
		return;
	case KT_ENVMAP:
		apply_envmap(w, k, v, base);
		return;
	case KT_MAP:
		if (want_map(w, v, k, false))
			walk_map(w, v, k, d->sub, (char *)base + d->off, mode);
		return;
	case KT_PROBE:
		apply_probe(w, d, k, v, base, mode);
		return;
	case KT_PROBE_HTTP:
		if ((s = want_scalar(w, v, k))) {
			struct probe *p = base;
			if (s[0] != '/') {
				report(w, v, "HTTP probe path must start with '/', got '%s'", s);
				return;
			}
			free(p->target);
			p->target = xstrdup(s);
			p->kind = PROBE_HTTP;
		}
		return;
	case KT_PROBE_TCP:
		if ((s = want_scalar(w, v, k))) {
			struct probe *p = base;
			if (strcmp(s, "true") && strcmp(s, "True") && strcmp(s, "TRUE")) {
				report(w, v, "expected 'true', got '%s' (to have no probe, remove it)", s);
				return;
			}
			free(p->target);
			p->target = NULL;
			p->kind = PROBE_TCP;
		}
		return;
	case KT_PROBE_EXEC:
		if ((s = want_scalar(w, v, k))) {
			struct probe *p = base;
			free(p->target);
			p->target = xstrdup(s);
			p->kind = PROBE_EXEC;
		}
		return;
	case KT_STRATEGY:
		apply_strategy(w, d, k, v, base, mode);
		return;
	case KT_OVERRIDES:
		if (mode == MODE_OVERRIDE)
			report(w, k, "overrides cannot be nested (services.S.environments.E.environments)");
		else if (w->spec)
			check_overrides(w, k, v, w->spec);
		return;
	case KT_ANY:
		return;
	case KT_BOOL:
	case KT_ONERROR:
	case KT_CONDLIST:
	case KT_ANALYSES:
	case KT_METRICS:
	case KT_PROVIDER:
	case KT_COMPARE:
	case KT_METHOD:
	case KT_CONFIDENCE:
	case KT_STEPS:
	case KT_PAUSE:
	case KT_MATCH:
	case KT_CANARY_ANALYSIS:
		apply_delivery(w, d, k, v, base);
		return;
	}
}

static void walk_map(struct walker *w, const struct ynode *map, const struct ynode *at,
		     const struct keydef *tab, void *base, enum walk_mode mode)
{
	(void)at;
	for (size_t i = 0; i + 1 < map->nkids; i += 2) {
		const struct ynode *k = map->kids[i], *v = map->kids[i + 1];
		const struct keydef *d;
		size_t old;

		if (!key_ok(w, map, i))
			continue;
		d = find_key(tab, k->text);
		if (!d) {
			unknown_key(w, k, tab);
			continue;
		}
		old = path_key(w, k->text);
		if (mode == MODE_OVERRIDE && (d->flags & KF_NO_OVERRIDE) && d->type != KT_OVERRIDES)
			report(w, k, "cannot be overridden per environment");
		else
			apply_value(w, d, k, v, base, mode);
		path_pop(w, old);
	}
}

/* ------------------------------------------------------------------------ */
/* defaults                                                                 */

static void apply_defaults(const struct keydef *tab, void *base)
{
	struct walker quiet = { 0 };

	for (; tab->name; tab++) {
		if (tab->sub && (tab->type == KT_MAP || tab->type == KT_PROBE))
			apply_defaults(tab->sub, (char *)base + tab->off);
		if (!tab->def || (tab->flags & KF_DOC_ONLY))
			continue;
		switch (tab->type) {
		case KT_STR:
		case KT_INT:
		case KT_INT64:
		case KT_DUR:
		case KT_SIZE:
		case KT_CPU:
		case KT_INTPCT:
			set_scalar(&quiet, tab, NULL, tab->def, base);
			break;
		case KT_STRATEGY: {
			struct strategy *st = FIELD(base, tab, struct strategy);
			st->kind = STRATEGY_ROLLING;
			apply_defaults(rolling_keys, st);
			break;
		}
		default:
			break;
		}
	}
	BUG_ON(quiet.nerr);
}

static void svc_config_defaults(struct svc_config *c, const char *service, const char *env)
{
	memset(c, 0, sizeof(*c));
	apply_defaults(service_keys, c);
	delivery_defaults(c);
	c->replicas = 1;
	c->service = xstrdup(service);
	c->environment = xstrdup(env);
}

/* ------------------------------------------------------------------------ */
/* resolution                                                               */

static void add_host(struct svc_config *c, const char *h)
{
	for (size_t i = 0; i < c->nhosts; i++)
		if (!strcmp(c->hosts[i], h))
			return;
	c->hosts = xrealloc(c->hosts, (c->nhosts + 1) * sizeof(*c->hosts));
	c->hosts[c->nhosts++] = xstrdup(h);
}

/*
 * Resolves service s in environment e into c (caller's storage), reporting
 * problems of the service mapping through wbase and of its override for e
 * through wover (either may be quiet). Returns the number of problems.
 */
static int resolve_into(const struct spec *spec, const struct spec_service *s, const struct spec_env *e,
			struct svc_config *c, struct walker *wbase, struct walker *wover)
{
	const struct ynode *node = s->node, *overrides, *ov;
	struct ynode *ovk = NULL;
	char *dflt;
	int nerr = 0;

	svc_config_defaults(c, s->name, e->name);
	if (e->replicas > 0)
		c->replicas = e->replicas;
	wbase->spec = spec;
	wover->spec = spec;
	wbase->hosts_given = false;
	if (node && node->type == Y_MAP) {
		size_t old = path_push(wbase, "services.%s", s->name);
		int before = wbase->nerr;
		walk_map(wbase, node, NULL, service_keys, c, MODE_BASE);
		nerr += wbase->nerr - before;
		path_pop(wbase, old);
	}
	wover->hosts_given = wbase->hosts_given;
	overrides = y_lookup(node, "environments", NULL);
	ov = y_lookup(overrides, e->name, &ovk);
	if (ov && ov->type == Y_MAP) {
		size_t old = path_push(wover, "services.%s.environments.%s", s->name, e->name);
		int before = wover->nerr;
		walk_map(wover, ov, ovk, service_keys, c, MODE_OVERRIDE);
		nerr += wover->nerr - before;
		path_pop(wover, old);
	}
	{
		/* per environment (an override may change the strategy): through the loud-for-every-env walker */
		int before = wover->nerr;
		resolve_delivery(wover, spec, s, e, c);
		nerr += wover->nerr - before;
	}
	if (!wover->hosts_given)
		for (size_t i = 0; i < e->nhosts; i++)
			add_host(c, e->hosts[i]);
	dflt = xasprintf("%s.%s.localhost", s->name, e->name);
	add_host(c, dflt);
	free(dflt);
	return nerr;
}

int spec_resolve(const struct spec *spec, const char *service, const char *env,
		 struct svc_config *out, struct gerr *err)
{
	const struct spec_service *s = spec_find_service(spec, service);
	const struct spec_env *e = spec_find_env(spec, env);
	struct walker q1 = { 0 }, q2 = { 0 };

	memset(out, 0, sizeof(*out));
	if (!s)
		return gerr_set(err, "no service '%s' in %s", service, spec->path);
	if (!e)
		return gerr_set(err, "no environment '%s' in %s", env, spec->path);
	if (resolve_into(spec, s, e, out, &q1, &q2) || !out->run) {
		/* spec_load validated this spec: only a bug lands here */
		svc_config_release(out);
		return gerr_set(err, "%s: service '%s' does not resolve in environment '%s'", spec->path,
				service, env);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* progressive delivery: canary, blue-green, analyses (issue 5)             */

static void header_matches_release(struct header_match *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

static char *xstrdup_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void analysis_def_copy(struct analysis_def *dst, const struct analysis_def *src)
{
	*dst = *src;
	dst->name = xstrdup_null(src->name);
	dst->metrics = src->nmetrics ? xcalloc(src->nmetrics, sizeof(*dst->metrics)) : NULL;
	for (size_t i = 0; i < src->nmetrics; i++) {
		const struct analysis_metric *a = &src->metrics[i];
		struct analysis_metric *b = &dst->metrics[i];
		*b = *a;
		b->name = xstrdup_null(a->name);
		b->query = xstrdup_null(a->query);
		b->fail_if = xstrdup_null(a->fail_if);
		b->address = xstrdup_null(a->address);
		b->url = xstrdup_null(a->url);
		b->json_path = xstrdup_null(a->json_path);
		b->command = xstrdup_null(a->command);
	}
}

static void analysis_metric_release(struct analysis_metric *m)
{
	free(m->name);
	free(m->query);
	free(m->fail_if);
	free(m->address);
	free(m->url);
	free(m->json_path);
	free(m->command);
	memset(m, 0, sizeof(*m));
}

void analysis_def_release(struct analysis_def *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nmetrics; i++)
		analysis_metric_release(&d->metrics[i]);
	free(d->metrics);
	free(d->name);
	memset(d, 0, sizeof(*d));
}

static void canary_steps_release(struct canary_step *st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(st[i].analysis);
		header_matches_release(st[i].headers, st[i].nheaders);
	}
	free(st);
}

static void delivery_release(struct svc_config *c)
{
	canary_steps_release(c->canary.steps, c->canary.nsteps);
	header_matches_release(c->canary.match, c->canary.nmatch);
	free(c->canary.analysis);
	memset(&c->canary, 0, sizeof(c->canary));
	free(c->bluegreen.preview_tag);
	free(c->bluegreen.pre_promotion_analysis);
	free(c->bluegreen.post_promotion_analysis);
	memset(&c->bluegreen, 0, sizeof(c->bluegreen));
	for (size_t i = 0; i < c->nanalyses; i++)
		analysis_def_release(&c->analyses[i]);
	free(c->analyses);
	c->analyses = NULL;
	c->nanalyses = 0;
}

void svc_config_release(struct svc_config *c)
{
	if (!c)
		return;
	free(c->service);
	free(c->environment);
	free(c->run);
	free(c->build);
	free(c->user);
	free(c->artifact);
	for (size_t i = 0; i < c->nenv; i++) {
		free(c->env[i].key);
		free(c->env[i].value);
	}
	free(c->env);
	free_strv(c->hosts, c->nhosts);
	free(c->readiness.target);
	free(c->liveness.target);
	free_strv(c->rollback_on, c->nrollback_on);
	delivery_release(c);
	memset(c, 0, sizeof(*c));
}

/* ------------------------------------------------------------------------ */
/* parsing YAML into the tree                                               */

static void fy_quiet_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	(void)diag, (void)user, (void)buf, (void)len;
}

static struct ynode *ynode_new(enum ytype t, const struct fy_mark *m)
{
	struct ynode *n = xcalloc(1, sizeof(*n));
	n->type = t;
	if (m) {
		n->line = m->line + 1;
		n->col = m->column + 1;
	}
	return n;
}

/*
 * The value of a single-quoted scalar whose content (between the quotes) is
 * raw[0..len): '' is a quote, a line break folds to a space, n empty lines
 * to n newlines, whitespace around line breaks is dropped. Done here because
 * libfyaml 0.7.12 gets runs of '' wrong ('a''''b' gives a''' ) and leaks
 * memory on some (found by fuzz_spec). Returns an owned string.
 */
static char *single_quoted(const char *raw, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0, i = 0, empties = 0;
	bool first = true;

	while (i <= len) {
		const char *nl = memchr(raw + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - raw) : len, b = i, e = end;
		bool last = !nl;

		if (e > b && raw[e - 1] == '\r')
			e--;
		if (!first)
			while (b < e && (raw[b] == ' ' || raw[b] == '\t'))
				b++;
		if (!last)
			while (e > b && (raw[e - 1] == ' ' || raw[e - 1] == '\t'))
				e--;
		if (!first && !last && b == e) {
			empties++;
		} else {
			if (!first) {
				if (!empties)
					out[o++] = ' ';
				for (; empties; empties--)
					out[o++] = '\n';
			}
			for (size_t k = b; k < e; k++) {
				out[o++] = raw[k];
				if (raw[k] == '\'' && k + 1 < e && raw[k + 1] == '\'')
					k++;
			}
		}
		first = false;
		i = end + 1;
	}
	out[o] = 0;
	return out;
}

/* length of the UTF-8 sequence at s (at most n bytes), or 0 when invalid */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2, cp = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3, cp = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/*
 * A spec is UTF-8 text: refuse NUL bytes and invalid UTF-8. And refuse YAML
 * directives (a line starting with '%'): gantry has no use for %YAML/%TAG,
 * and libfyaml 0.7.12 can loop forever scanning a malformed one (found by
 * fuzz_spec). Every YAML line break counts (\n, \r, NEL, LS, PS).
 */
static int check_text(struct walker *w, const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0;
	int line = 1, col = 1;
	bool bol = true;

	if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
		i = 3; /* a byte order mark */
	while (i < len) {
		size_t n = utf8_len(s + i, len - i);
		if (!s[i] || !n) {
			report_at(w, line, col, s[i] ? "the file is not valid UTF-8 text" :
						     "the file contains a NUL byte (a spec is text)");
			return -1;
		}
		if (bol && s[i] == '%') {
			report_at(w, line, 1, "YAML directives ('%%...') are not supported");
			return -1;
		}
		bol = s[i] == '\n' || s[i] == '\r' || (n == 2 && s[i] == 0xC2 && s[i + 1] == 0x85) ||
		      (n == 3 && s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9));
		col++;
		if (s[i] == '\n' || (s[i] == '\r' && (i + 1 >= len || s[i + 1] != '\n'))) {
			line++;
			col = 1;
		}
		i += n;
	}
	return 0;
}

/*
 * Builds the tree of buf. Returns the root (owned by the caller; NULL for an
 * empty document) and 0, or -1 after reporting libfyaml's errors.
 */
static int yaml_parse(struct walker *w, const char *buf, size_t len, struct ynode **rootp)
{
	struct fy_diag_cfg dcfg;
	struct fy_diag *diag = NULL;
	struct fy_parse_cfg pcfg = { 0 };
	struct fy_parser *fyp = NULL;
	struct fy_event *ev;
	struct ynode *stack[SPEC_MAX_DEPTH + 1], *root = NULL;
	int depth = 0, ndocs = 0, ret = -1;
	bool failed = false;

	*rootp = NULL;
	if (check_text(w, buf, len) < 0)
		goto out;
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = fy_quiet_output;
	dcfg.level = FYET_ERROR;
	dcfg.colorize = false;
	diag = fy_diag_create(&dcfg);
	if (!diag) {
		report_at(w, 0, 0, "cannot create the YAML parser");
		goto out;
	}
	fy_diag_set_collect_errors(diag, true);
	pcfg.flags = FYPCF_QUIET;
	pcfg.diag = diag;
	fyp = fy_parser_create(&pcfg);
	if (!fyp || fy_parser_set_string(fyp, buf, len)) {
		report_at(w, 0, 0, "cannot create the YAML parser");
		goto out;
	}
	while (!failed && (ev = fy_parser_parse(fyp))) {
		const struct fy_mark *m = fy_event_start_mark(ev);
		struct ynode *n = NULL;
		size_t tl = 0;
		const char *t;

		switch (ev->type) {
		case FYET_DOCUMENT_START:
			if (++ndocs > 1) {
				report_at(w, m ? m->line + 1 : 0, m ? m->column + 1 : 0,
					  "more than one YAML document (remove the '---')");
				failed = true;
			}
			break;
		case FYET_SCALAR: {
			enum fy_scalar_style style = ev->scalar.value ? fy_token_scalar_style(ev->scalar.value) : FYSS_PLAIN;
			n = ynode_new(Y_SCALAR, m);
			if (style == FYSS_SINGLE_QUOTED) {
				const struct fy_mark *ts = fy_token_start_mark(ev->scalar.value);
				const struct fy_mark *te = fy_token_end_mark(ev->scalar.value);
				if (ts && te && ts->input_pos <= te->input_pos && te->input_pos <= len)
					n->text = single_quoted(buf + ts->input_pos, te->input_pos - ts->input_pos);
				else
					n->text = xstrdup("");
			} else {
				t = ev->scalar.value ? fy_token_get_text(ev->scalar.value, &tl) : NULL;
				n->text = xstrndup(t ? t : "", t ? tl : 0);
			}
			/* "!!str 1" is a string: never a null */
			n->plain = style == FYSS_PLAIN && !ev->scalar.tag;
			/* libfyaml marks a quoted scalar at its first character: point at the quote */
			if (n->col > 1 && (style == FYSS_SINGLE_QUOTED || style == FYSS_DOUBLE_QUOTED))
				n->col--;
			break;
		}
		case FYET_ALIAS:
			n = ynode_new(Y_ALIAS, m);
			t = ev->alias.anchor ? fy_token_get_text(ev->alias.anchor, &tl) : NULL;
			n->text = xstrndup(t ? t : "", t ? tl : 0);
			break;
		case FYET_MAPPING_START:
		case FYET_SEQUENCE_START:
			n = ynode_new(ev->type == FYET_MAPPING_START ? Y_MAP : Y_SEQ, m);
			break;
		case FYET_MAPPING_END:
		case FYET_SEQUENCE_END:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		if (n && depth > 0) {
			struct ynode *p = stack[depth - 1];
			if (p->type == Y_MAP ? p->nkids >= 2 * SPEC_MAX_KEYS : p->nkids >= SPEC_MAX_ITEMS) {
				report_at(w, p->line, p->col, "too many entries (at most %d)",
					  p->type == Y_MAP ? SPEC_MAX_KEYS : SPEC_MAX_ITEMS);
				failed = true;
			}
		}
		if (n) {
			if (depth > 0)
				ynode_add(stack[depth - 1], n);
			else if (!root)
				root = n;
			else
				ynode_free(n); /* cannot happen: one root per document */
			if (n->type == Y_MAP || n->type == Y_SEQ) {
				if (depth >= SPEC_MAX_DEPTH) {
					report_at(w, n->line, n->col, "nesting deeper than %d levels", SPEC_MAX_DEPTH);
					failed = true;
				} else {
					stack[depth++] = n;
				}
			}
		}
		fy_parser_event_free(fyp, ev);
	}
	if (!failed && fy_parser_get_stream_error(fyp)) {
		void *it = NULL;
		struct fy_diag_error *e;
		int n = 0;
		while ((e = fy_diag_errors_iterate(diag, &it))) {
			char src[256];
			/* libfyaml's marks are 1-based here */
			if (w->diags)
				diags_add(w->diags, w->file, e->line, e->column, NULL,
					  diag_source_line(w->src, w->srclen, e->line, src, sizeof(src)), "invalid YAML: %s",
					  e->msg ? e->msg : "syntax error");
			w->nerr++;
			n++;
		}
		if (!n)
			report_at(w, 0, 0, "invalid YAML");
		failed = true;
	}
	if (failed)
		goto out;
	*rootp = root;
	root = NULL;
	ret = 0;
out:
	ynode_free(root);
	if (fyp)
		fy_parser_destroy(fyp);
	if (diag)
		fy_diag_destroy(diag);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* loading                                                                  */

static void load_envs(struct walker *w, struct spec *spec, const struct ynode *k, const struct ynode *v)
{
	size_t old = path_key(w, "environments");

	if (!want_map(w, v, k, false))
		goto out;
	if (!v->nkids) {
		report(w, v, "needs at least one environment (e.g. staging: {} and production: {})");
		goto out;
	}
	if (v->nkids > 2 * SPEC_MAX_ENVS) {
		report(w, v, "too many environments (at most %d)", SPEC_MAX_ENVS);
		goto out;
	}
	spec->envs = xcalloc(v->nkids / 2, sizeof(*spec->envs));
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *ek = v->kids[i], *ev = v->kids[i + 1];
		struct spec_env *e;
		size_t o2;

		if (!key_ok(w, v, i))
			continue;
		if (!valid_name(ek->text)) {
			report(w, ek, "invalid environment name '%s' (lowercase letters, digits and '-', at most 63 characters; it becomes a host name label)",
			       ek->text);
			continue;
		}
		e = &spec->envs[spec->nenvs++];
		e->name = xstrdup(ek->text);
		e->line = ek->line;
		e->col = ek->col;
		o2 = path_key(w, ek->text);
		if (want_map(w, ev, ek, true))
			walk_map(w, ev, ek, env_keys, e, MODE_BASE);
		path_pop(w, o2);
	}
out:
	path_pop(w, old);
}

static void load_services(struct walker *w, struct spec *spec, const struct ynode *k, const struct ynode *v)
{
	size_t old = path_key(w, "services");

	if (!want_map(w, v, k, false))
		goto out;
	if (!v->nkids) {
		report(w, v, "needs at least one service");
		goto out;
	}
	spec->services = xcalloc(v->nkids / 2, sizeof(*spec->services));
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *sk = v->kids[i], *sv = v->kids[i + 1];
		struct spec_service *s;
		size_t o2;

		if (!key_ok(w, v, i))
			continue;
		if (!valid_name(sk->text)) {
			report(w, sk, "invalid service name '%s' (lowercase letters, digits and '-', at most 63 characters; it becomes a host name label)",
			       sk->text);
			continue;
		}
		o2 = path_key(w, sk->text);
		if (y_is_null(sv) && sv->type == Y_SCALAR) {
			report(w, sk, "missing required key 'run'");
		} else if (want_map(w, sv, sk, false)) {
			s = &spec->services[spec->nservices++];
			s->name = xstrdup(sk->text);
			s->line = sk->line;
			s->col = sk->col;
			s->node = (void *)sv;
		}
		path_pop(w, o2);
	}
out:
	path_pop(w, old);
}

/* resolves every service in every environment, loudly, once per problem */
static void check_services(struct walker *w, struct spec *spec)
{
	struct walker quiet = { 0 };
	/* without a valid environment, still check the services' own keys */
	struct spec_env placeholder = { .name = (char *)"-" };
	size_t nenvs = spec->nenvs ? spec->nenvs : 1;

	for (size_t i = 0; i < spec->nservices; i++) {
		const struct spec_service *s = &spec->services[i];
		const char *norun = NULL;
		for (size_t j = 0; j < nenvs; j++) {
			struct svc_config c;
			const struct spec_env *e = spec->nenvs ? &spec->envs[j] : &placeholder;
			/* the service's own keys are reported once, with the first environment */
			resolve_into(spec, s, e, &c, j ? &quiet : w, w);
			if (!c.run && !norun)
				norun = e->name;
			svc_config_release(&c);
		}
		if (norun) {
			const struct ynode *node = s->node;
			size_t old = path_push(w, "services.%s", s->name);
			if (y_lookup(node, "run", NULL))
				; /* present but invalid: already reported */
			else
				report_at(w, s->line, s->col, "missing required key 'run'%s%s%s",
					  spec->nenvs > 1 ? " (needed in environment '" : "",
					  spec->nenvs > 1 ? norun : "", spec->nenvs > 1 ? "')" : "");
			path_pop(w, old);
		}
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
	if (yaml_parse(&w, buf, len, &root) < 0)
		goto out;
	spec->doc = root;
	if (!root || y_is_null(root)) {
		report_at(&w, 1, 1, "the file is empty (expected project, environments and services)");
		goto out;
	}
	if (root->type != Y_MAP) {
		report(&w, root, "the top level must be a mapping (project, environments, services), got %s",
		       y_type_name(root));
		goto out;
	}
	/* unknown and duplicate top-level keys, and the project name */
	for (size_t i = 0; i + 1 < root->nkids; i += 2) {
		const struct ynode *tk = root->kids[i];
		if (!key_ok(&w, root, i))
			continue;
		if (!find_key(top_keys, tk->text)) {
			unknown_key(&w, tk, top_keys);
		} else if (!strcmp(tk->text, "project")) {
			size_t old = path_key(&w, "project");
			apply_value(&w, &top_keys[0], tk, root->kids[i + 1], NULL, MODE_BASE);
			path_pop(&w, old);
		}
	}
	v = y_lookup(root, "project", NULL);
	spec->project = xstrdup(v && v->type == Y_SCALAR && !y_is_null(v) ? v->text : top_keys[0].def);

	k = NULL;
	v = y_lookup(root, "environments", &k);
	if (!k)
		report_at(&w, root->line, root->col, "missing required key 'environments' (at least one, e.g. production: {})");
	else
		load_envs(&w, spec, k, v);
	k = NULL;
	v = y_lookup(root, "services", &k);
	if (!k)
		report_at(&w, root->line, root->col, "missing required key 'services'");
	else
		load_services(&w, spec, k, v);
	k = NULL;
	v = y_lookup(root, "analysis_templates", &k);
	if (k) {
		struct svc_config tmp = { 0 };
		size_t old = path_key(&w, "analysis_templates");
		apply_analyses(&w, k, v, &tmp.analyses, &tmp.nanalyses);
		path_pop(&w, old);
		delivery_release(&tmp);
	}
	check_services(&w, spec);
	w.nerr += gspec_check(spec, name, buf, len, diags);
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

int spec_load_buf(const char *name, const char *buf, size_t len, struct spec **out, struct diags *diags)
{
	if (len > SPEC_MAX_BYTES) {
		*out = NULL;
		diags_add(diags, name, 0, 0, NULL, NULL, "file too large (%zu bytes, at most %d)", len,
			  SPEC_MAX_BYTES);
		return -1;
	}
	return load(name, buf, len, ".", false, out, diags);
}

int spec_load_stored(const char *name, const char *buf, size_t len, struct spec **out, struct diags *diags)
{
	if (len > SPEC_MAX_BYTES) {
		*out = NULL;
		diags_add(diags, name, 0, 0, NULL, NULL, "file too large (%zu bytes, at most %d)", len,
			  SPEC_MAX_BYTES);
		return -1;
	}
	return load(name, buf, len, ".", true, out, diags);
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
		free_strv(spec->envs[i].hosts, spec->envs[i].nhosts);
	}
	free(spec->envs);
	for (size_t i = 0; i < spec->nservices; i++)
		free(spec->services[i].name);
	free(spec->services);
	ynode_free(spec->doc);
	free(spec);
}

const struct spec_env *spec_find_env(const struct spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->nenvs; i++)
		if (!strcmp(spec->envs[i].name, name))
			return &spec->envs[i];
	return NULL;
}

/* ---- read-only view of the YAML tree (spec.h) ---- */

static const struct ynode *node_y(const struct spec_node *n)
{
	return (const struct ynode *)(const void *)n;
}

const struct spec_node *spec_root(const struct spec *spec)
{
	return spec ? (const struct spec_node *)spec->doc : NULL;
}

enum spec_node_kind spec_node_kind(const struct spec_node *n)
{
	const struct ynode *y = node_y(n);
	if (!y || y_is_null(y))
		return SPEC_NODE_NULL;
	return y->type == Y_SCALAR ? SPEC_NODE_SCALAR : y->type == Y_MAP ? SPEC_NODE_MAP
		: y->type == Y_SEQ ? SPEC_NODE_SEQ : SPEC_NODE_OTHER;
}

const char *spec_node_text(const struct spec_node *n)
{
	return node_y(n) && node_y(n)->type == Y_SCALAR ? node_y(n)->text : NULL;
}

bool spec_node_quoted(const struct spec_node *n)
{
	return node_y(n) && node_y(n)->type == Y_SCALAR && !node_y(n)->plain;
}

size_t spec_node_count(const struct spec_node *n)
{
	const struct ynode *y = node_y(n);
	return !y ? 0 : y->type == Y_MAP ? y->nkids / 2 : y->type == Y_SEQ ? y->nkids : 0;
}

const struct spec_node *spec_node_key(const struct spec_node *n, size_t i)
{
	const struct ynode *y = node_y(n);
	return y && y->type == Y_MAP && 2 * i + 1 < y->nkids ? (const struct spec_node *)y->kids[2 * i] : NULL;
}

const struct spec_node *spec_node_item(const struct spec_node *n, size_t i)
{
	const struct ynode *y = node_y(n);
	if (y && y->type == Y_MAP && 2 * i + 1 < y->nkids)
		return (const struct spec_node *)y->kids[2 * i + 1];
	return y && y->type == Y_SEQ && i < y->nkids ? (const struct spec_node *)y->kids[i] : NULL;
}

const struct spec_node *spec_node_get(const struct spec_node *map, const char *key)
{
	return (const struct spec_node *)y_lookup(node_y(map), key, NULL);
}

void spec_node_pos(const struct spec_node *n, int *line, int *col)
{
	*line = node_y(n) ? node_y(n)->line : 0;
	*col = node_y(n) ? node_y(n)->col : 0;
}

const struct spec_service *spec_find_service(const struct spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->nservices; i++)
		if (!strcmp(spec->services[i].name, name))
			return &spec->services[i];
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* svc_config as JSON (stored with each revision)                            */
/*
 * Format (version 1): durations as integer milliseconds ("stop_grace_ms"),
 * probes as {"kind": "none|http|tcp|exec", "target", "period_ms", ...},
 * counts-or-percentages as {"percent": bool, "value": number}. Reading is
 * strict about types and ranges of the keys present and names the key it
 * rejects; a missing key takes its default, so a revision written before a
 * key existed still loads. Unknown keys are ignored (written by a newer gantry).
 */

static const char *const probe_kind_names[] = { "none", "http", "tcp", "exec" };
static const char *const strategy_kind_names[] = { "rolling", "recreate", "canary", "bluegreen" };

static json_t *strv_to_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *probe_to_json(const struct probe *p)
{
	return json_pack("{s:s, s:s?, s:I, s:I, s:I, s:i}", "kind", probe_kind_names[p->kind], "target",
			 p->target, "period_ms", (json_int_t)p->period_ms, "timeout_ms", (json_int_t)p->timeout_ms,
			 "initial_delay_ms", (json_int_t)p->initial_delay_ms, "failure_threshold",
			 p->failure_threshold);
}

static json_t *intpct_to_json(const struct intpct *v)
{
	return json_pack("{s:b, s:f}", "percent", v->is_pct, "value", v->value);
}

json_t *svc_config_to_json(const struct svc_config *c)
{
	json_t *env = json_object(), *o;

	for (size_t i = 0; i < c->nenv; i++)
		json_object_set_new(env, c->env[i].key, json_string(c->env[i].value));
	/* s? for every string: a NULL gives null (which from_json rejects, naming the key), never a NULL return */
	o = json_pack("{s:i, s:s?, s:s?, s:s?, s:s?, s:s, s:i, s:o, s:o, s:o, s:o,"
			 " s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:{s:s, s:o, s:o}, s:o, s:i}",
			 "format", 1, "service", c->service, "environment", c->environment, "run", c->run,
			 "build", c->build, "artifact", c->artifact ? c->artifact : ".", "replicas", c->replicas,
			 "env", env, "hosts", strv_to_json(c->hosts, c->nhosts), "readiness",
			 probe_to_json(&c->readiness), "liveness", probe_to_json(&c->liveness),
			 "resources", "cpu_millis", (json_int_t)c->resources.cpu_millis, "memory_bytes",
			 (json_int_t)c->resources.memory_bytes, "pids", (json_int_t)c->resources.pids,
			 "stop_grace_ms", (json_int_t)c->stop_grace_ms, "drain_timeout_ms",
			 (json_int_t)c->drain_timeout_ms, "progress_deadline_ms",
			 (json_int_t)c->progress_deadline_ms, "strategy", "kind",
			 strategy_kind_names[c->strategy.kind], "max_surge",
			 intpct_to_json(&c->strategy.max_surge), "max_unavailable",
			 intpct_to_json(&c->strategy.max_unavailable), "rollback_on",
			 strv_to_json(c->rollback_on, c->nrollback_on), "keep_revisions", c->keep_revisions);
	/* only when set: configs stored before the key existed read back the same */
	if (o && c->user)
		json_object_set_new(o, "user", json_string(c->user));
	if (o)
		delivery_to_json(o, c);
	return o;
}

/* the readers below return 0 when the key is absent (default kept), -1 with err set */

static int j_str(const json_t *o, const char *prefix, const char *key, bool nullable, char **out,
		 struct gerr *err)
{
	const json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (nullable && json_is_null(v)) {
		free(*out);
		*out = NULL;
		return 0;
	}
	if (!json_is_string(v) || (!nullable && !*json_string_value(v)) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return gerr_set(err, "svc_config: '%s%s' must be a %sstring", prefix, key,
				nullable ? "" : "non-empty ");
	free(*out);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int j_int(const json_t *o, const char *prefix, const char *key, int64_t min, int64_t max,
		 int64_t *out, struct gerr *err)
{
	const json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return gerr_set(err, "svc_config: '%s%s' must be an integer between %" PRId64 " and %" PRId64,
				prefix, key, min, max);
	*out = json_integer_value(v);
	return 0;
}

static int j_intv(const json_t *o, const char *prefix, const char *key, int64_t min, int64_t max, int *out,
		  struct gerr *err)
{
	int64_t v = *out;
	if (j_int(o, prefix, key, min, max, &v, err) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

static int j_strv(const json_t *o, const char *key, bool nonempty, char ***vp, size_t *np, struct gerr *err)
{
	const json_t *a = json_object_get(o, key), *it;
	char **v;
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return gerr_set(err, "svc_config: '%s' must be an array of strings", key);
	json_array_foreach(a, i, it) {
		if (!json_is_string(it) || (nonempty && !*json_string_value(it)) ||
		    strlen(json_string_value(it)) != json_string_length(it))
			return gerr_set(err, "svc_config: '%s[%zu]' must be a non-empty string", key, i);
	}
	v = xcalloc(json_array_size(a) + 1, sizeof(*v));
	json_array_foreach(a, i, it)
		v[i] = xstrdup(json_string_value(it));
	free_strv(*vp, *np);
	*vp = v;
	*np = json_array_size(a);
	return 0;
}

static int j_kind(const json_t *o, const char *prefix, const char *key, const char *const *names, size_t n,
		  int *out, struct gerr *err)
{
	const json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	for (size_t i = 0; json_is_string(v) && i < n; i++)
		if (!strcmp(json_string_value(v), names[i])) {
			*out = (int)i;
			return 0;
		}
	return gerr_set(err, "svc_config: '%s%s' has an unknown value", prefix, key);
}

static int j_probe(const json_t *o, const char *key, struct probe *p, struct gerr *err)
{
	const json_t *v = json_object_get(o, key);
	char prefix[32];
	int kind = (int)p->kind;

	if (!v)
		return 0;
	snprintf(prefix, sizeof(prefix), "%s.", key);
	if (!json_is_object(v))
		return gerr_set(err, "svc_config: '%s' must be an object", key);
	if (j_kind(v, prefix, "kind", probe_kind_names, ARRAY_SIZE(probe_kind_names), &kind, err) < 0 ||
	    j_str(v, prefix, "target", true, &p->target, err) < 0 ||
	    j_int(v, prefix, "period_ms", 1, 100 * DAY_MS, &p->period_ms, err) < 0 ||
	    j_int(v, prefix, "timeout_ms", 1, 100 * DAY_MS, &p->timeout_ms, err) < 0 ||
	    j_int(v, prefix, "initial_delay_ms", 0, 100 * DAY_MS, &p->initial_delay_ms, err) < 0 ||
	    j_intv(v, prefix, "failure_threshold", 1, 1000000, &p->failure_threshold, err) < 0)
		return -1;
	p->kind = (enum probe_kind)kind;
	if ((p->kind == PROBE_HTTP || p->kind == PROBE_EXEC) && (!p->target || !*p->target))
		return gerr_set(err, "svc_config: '%starget' is required for a %s probe", prefix,
				probe_kind_names[kind]);
	if (p->kind == PROBE_HTTP && p->target[0] != '/')
		return gerr_set(err, "svc_config: '%starget' must start with '/'", prefix);
	if (p->kind == PROBE_TCP || p->kind == PROBE_NONE) {
		free(p->target);
		p->target = NULL;
	}
	return 0;
}

static int j_intpct(const json_t *o, const char *key, struct intpct *out, struct gerr *err)
{
	const json_t *v = json_object_get(o, key), *pct, *val;
	if (!v)
		return 0;
	pct = json_object_get(v, "percent");
	val = json_object_get(v, "value");
	if (!json_is_object(v) || !json_is_boolean(pct) || !json_is_number(val) ||
	    !isfinite(json_number_value(val)) || json_number_value(val) < 0 ||
	    json_number_value(val) > (json_is_true(pct) ? 100 : 1e6))
		return gerr_set(err, "svc_config: 'strategy.%s' must be {\"percent\": bool, \"value\": number in range}",
				key);
	out->is_pct = json_is_true(pct);
	out->value = json_number_value(val);
	return 0;
}

/*
 * Progressive delivery in JSON: "canary" {steps: [{"weight": N} | {"pause_ms": MS (-1: until resumed)} |
 * {"analysis": NAME} | {"match": [HEADER...]} | {"replicas": N}], "match": [HEADER...], "analysis",
 * "analysis_starting_step"}, HEADER = {"name", "value", "prefix"}; "bluegreen" {...}; "analyses"
 * [{name, interval_ms, ..., metrics: [...]}]; "watch_ms", "shield", "on_error".
 */
static const char *const provider_names_json[] = { "builtin", "prometheus", "http", "command" };
static const char *const on_error_names_json[] = { "pause", "rollback" };

static json_t *headers_to_json(const struct header_match *h, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s?, s:s?, s:b}", "name", h[i].name, "value", h[i].value, "prefix",
						   h[i].prefix));
	return a;
}

static void delivery_to_json(json_t *o, const struct svc_config *c)
{
	json_t *steps = json_array(), *an = json_array();

	for (size_t i = 0; i < c->canary.nsteps; i++) {
		const struct canary_step *st = &c->canary.steps[i];
		switch (st->kind) {
		case CSTEP_WEIGHT: json_array_append_new(steps, json_pack("{s:i}", "weight", st->weight)); break;
		case CSTEP_PAUSE: json_array_append_new(steps, json_pack("{s:I}", "pause_ms", (json_int_t)st->pause_ms)); break;
		case CSTEP_ANALYSIS: json_array_append_new(steps, json_pack("{s:s?}", "analysis", st->analysis)); break;
		case CSTEP_MATCH: json_array_append_new(steps, json_pack("{s:o}", "match", headers_to_json(st->headers, st->nheaders))); break;
		case CSTEP_REPLICAS: json_array_append_new(steps, json_pack("{s:i}", "replicas", st->replicas)); break;
		}
	}
	json_object_set_new(o, "canary", json_pack("{s:o, s:o, s:s?, s:i}", "steps", steps, "match",
						   headers_to_json(c->canary.match, c->canary.nmatch), "analysis",
						   c->canary.analysis, "analysis_starting_step",
						   c->canary.analysis_starting_step));
	json_object_set_new(o, "bluegreen",
			    json_pack("{s:s?, s:b, s:I, s:s?, s:s?, s:I}", "preview_tag", c->bluegreen.preview_tag,
				      "auto_promote", c->bluegreen.auto_promote, "auto_promote_after_ms",
				      (json_int_t)c->bluegreen.auto_promote_after_ms, "pre_promotion_analysis",
				      c->bluegreen.pre_promotion_analysis, "post_promotion_analysis",
				      c->bluegreen.post_promotion_analysis, "keep_previous_ms",
				      (json_int_t)c->bluegreen.keep_previous_ms));
	for (size_t i = 0; i < c->nanalyses; i++) {
		const struct analysis_def *d = &c->analyses[i];
		json_t *ms = json_array();
		for (size_t k = 0; k < d->nmetrics; k++) {
			const struct analysis_metric *m = &d->metrics[k];
			json_array_append_new(ms, json_pack("{s:s?, s:s, s:s?, s:s?, s:b, s:b, s:f, s:I, s:s?, s:s?, s:s?, s:s?, s:I}",
							    "name", m->name, "provider", provider_names_json[m->provider],
							    "query", m->query, "fail_if", m->fail_if, "compare_baseline",
							    m->compare_baseline, "mann_whitney", m->mann_whitney,
							    "confidence", m->confidence, "min_requests",
							    (json_int_t)m->min_requests, "address", m->address, "url", m->url,
							    "json_path", m->json_path, "command", m->command, "timeout_ms",
							    (json_int_t)m->timeout_ms));
		}
		json_array_append_new(an, json_pack("{s:s?, s:I, s:i, s:I, s:i, s:i, s:i, s:o}", "name", d->name,
						    "interval_ms", (json_int_t)d->interval_ms, "count", d->count,
						    "initial_delay_ms", (json_int_t)d->initial_delay_ms, "failure_limit",
						    d->failure_limit, "inconclusive_limit", d->inconclusive_limit,
						    "error_limit", d->error_limit, "metrics", ms));
	}
	json_object_set_new(o, "analyses", an);
	json_object_set_new(o, "watch_ms", json_integer(c->watch_ms));
	json_object_set_new(o, "shield", json_boolean(c->shield));
	json_object_set_new(o, "tag_hosts", json_boolean(c->tag_hosts));
	json_object_set_new(o, "on_error", json_string(on_error_names_json[c->on_error]));
}

static int j_bool(const json_t *o, const char *prefix, const char *key, bool *out, struct gerr *err)
{
	const json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return gerr_set(err, "svc_config: '%s%s' must be a boolean", prefix, key);
	*out = json_is_true(v);
	return 0;
}

static int j_headers(const json_t *a, const char *what, struct header_match **hp, size_t *np, struct gerr *err)
{
	const json_t *it;
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > 1000)
		return gerr_set(err, "svc_config: '%s' must be an array of headers", what);
	header_matches_release(*hp, *np);
	*hp = NULL;
	*np = 0;
	if (!json_array_size(a))
		return 0;
	*hp = xcalloc(json_array_size(a), sizeof(**hp));
	json_array_foreach(a, i, it) {
		struct header_match *h = &(*hp)[*np];
		if (!json_is_object(it))
			return gerr_set(err, "svc_config: '%s[%zu]' must be an object", what, i);
		if (j_str(it, "", "name", false, &h->name, err) < 0 || j_str(it, "", "value", false, &h->value, err) < 0 ||
		    j_bool(it, "", "prefix", &h->prefix, err) < 0)
			goto bad;
		if (!h->name || !h->value) {
			gerr_set(err, "svc_config: '%s[%zu]' needs name and value", what, i);
			goto bad;
		}
		(*np)++;
		continue;
bad:
		free(h->name);
		free(h->value);
		memset(h, 0, sizeof(*h));
		return -1;
	}
	return 0;
}

static int j_analysis(const json_t *o, struct analysis_def *d, struct gerr *err)
{
	const json_t *ms = json_object_get(o, "metrics"), *it;
	size_t i;

	d->interval_ms = 10000;
	d->error_limit = 4;
	if (!json_is_object(o) || j_str(o, "analyses.", "name", false, &d->name, err) < 0 ||
	    j_int(o, "analyses.", "interval_ms", 1, 100 * DAY_MS, &d->interval_ms, err) < 0 ||
	    j_intv(o, "analyses.", "count", 0, 1000000, &d->count, err) < 0 ||
	    j_int(o, "analyses.", "initial_delay_ms", 0, 100 * DAY_MS, &d->initial_delay_ms, err) < 0 ||
	    j_intv(o, "analyses.", "failure_limit", 0, 1000000, &d->failure_limit, err) < 0 ||
	    j_intv(o, "analyses.", "inconclusive_limit", 0, 1000000, &d->inconclusive_limit, err) < 0 ||
	    j_intv(o, "analyses.", "error_limit", 0, 1000000, &d->error_limit, err) < 0)
		return -1;
	if (!d->name)
		return gerr_set(err, "svc_config: an analysis needs a name");
	if (!json_is_array(ms) || json_array_size(ms) > 1000)
		return gerr_set(err, "svc_config: 'analyses.metrics' must be an array");
	d->metrics = xcalloc(json_array_size(ms) + 1, sizeof(*d->metrics));
	json_array_foreach(ms, i, it) {
		struct analysis_metric *m = &d->metrics[d->nmetrics++];
		const json_t *conf;
		int prov = 0;
		m->confidence = 0.98;
		m->timeout_ms = 10000;
		if (!json_is_object(it))
			return gerr_set(err, "svc_config: 'analyses.metrics[%zu]' must be an object", i);
		conf = json_object_get(it, "confidence");
		if (j_str(it, "analyses.metrics.", "name", false, &m->name, err) < 0 ||
		    j_kind(it, "analyses.metrics.", "provider", provider_names_json, 4, &prov, err) < 0 ||
		    j_str(it, "analyses.metrics.", "query", true, &m->query, err) < 0 ||
		    j_str(it, "analyses.metrics.", "fail_if", false, &m->fail_if, err) < 0 ||
		    j_bool(it, "analyses.metrics.", "compare_baseline", &m->compare_baseline, err) < 0 ||
		    j_bool(it, "analyses.metrics.", "mann_whitney", &m->mann_whitney, err) < 0 ||
		    j_int(it, "analyses.metrics.", "min_requests", 0, INT64_MAX, &m->min_requests, err) < 0 ||
		    j_str(it, "analyses.metrics.", "address", true, &m->address, err) < 0 ||
		    j_str(it, "analyses.metrics.", "url", true, &m->url, err) < 0 ||
		    j_str(it, "analyses.metrics.", "json_path", true, &m->json_path, err) < 0 ||
		    j_str(it, "analyses.metrics.", "command", true, &m->command, err) < 0 ||
		    j_int(it, "analyses.metrics.", "timeout_ms", 1, 100 * DAY_MS, &m->timeout_ms, err) < 0)
			return -1;
		m->provider = (enum metric_provider)prov;
		if (conf && (!json_is_number(conf) || !(json_number_value(conf) > 0 && json_number_value(conf) < 1)))
			return gerr_set(err, "svc_config: 'analyses.metrics.confidence' must be a number in (0, 1)");
		if (conf)
			m->confidence = json_number_value(conf);
		if (!m->name || !m->fail_if)
			return gerr_set(err, "svc_config: 'analyses.metrics[%zu]' needs name and fail_if", i);
	}
	return 0;
}

static int delivery_from_json(const json_t *j, struct svc_config *c, struct gerr *err)
{
	const json_t *cn = json_object_get(j, "canary"), *bg = json_object_get(j, "bluegreen"),
		     *an = json_object_get(j, "analyses"), *it;
	int oe = (int)c->on_error;
	size_t i;

	if (cn) {
		const json_t *steps = json_object_get(cn, "steps");
		if (!json_is_object(cn) || (steps && (!json_is_array(steps) || json_array_size(steps) > 1000)))
			return gerr_set(err, "svc_config: 'canary' must be an object with a 'steps' array");
		if (j_headers(json_object_get(cn, "match"), "canary.match", &c->canary.match, &c->canary.nmatch, err) < 0 ||
		    j_str(cn, "canary.", "analysis", true, &c->canary.analysis, err) < 0 ||
		    j_intv(cn, "canary.", "analysis_starting_step", 0, 1000, &c->canary.analysis_starting_step, err) < 0)
			return -1;
		if (steps && json_array_size(steps)) {
			c->canary.steps = xcalloc(json_array_size(steps), sizeof(*c->canary.steps));
			json_array_foreach(steps, i, it) {
				struct canary_step *st = &c->canary.steps[c->canary.nsteps++];
				const char *key = json_is_object(it) && json_object_size(it) == 1 ? json_object_iter_key(json_object_iter((json_t *)it)) : "";
				if (!strcmp(key, "weight")) {
					st->kind = CSTEP_WEIGHT;
					if (j_intv(it, "canary.steps.", "weight", 0, 100, &st->weight, err) < 0)
						return -1;
				} else if (!strcmp(key, "pause_ms")) {
					st->kind = CSTEP_PAUSE;
					if (j_int(it, "canary.steps.", "pause_ms", -1, 100 * DAY_MS, &st->pause_ms, err) < 0)
						return -1;
				} else if (!strcmp(key, "analysis")) {
					st->kind = CSTEP_ANALYSIS;
					if (j_str(it, "canary.steps.", "analysis", false, &st->analysis, err) < 0)
						return -1;
				} else if (!strcmp(key, "match")) {
					st->kind = CSTEP_MATCH;
					if (j_headers(json_object_get(it, "match"), "canary.steps.match", &st->headers,
						      &st->nheaders, err) < 0)
						return -1;
				} else if (!strcmp(key, "replicas")) {
					st->kind = CSTEP_REPLICAS;
					if (j_intv(it, "canary.steps.", "replicas", 0, 1000000, &st->replicas, err) < 0)
						return -1;
				} else {
					return gerr_set(err, "svc_config: 'canary.steps[%zu]' must be one of weight, pause_ms, analysis, match, replicas", i);
				}
			}
		}
	}
	if (bg) {
		if (!json_is_object(bg) ||
		    j_str(bg, "bluegreen.", "preview_tag", false, &c->bluegreen.preview_tag, err) < 0 ||
		    j_bool(bg, "bluegreen.", "auto_promote", &c->bluegreen.auto_promote, err) < 0 ||
		    j_int(bg, "bluegreen.", "auto_promote_after_ms", 0, 100 * DAY_MS, &c->bluegreen.auto_promote_after_ms, err) < 0 ||
		    j_str(bg, "bluegreen.", "pre_promotion_analysis", true, &c->bluegreen.pre_promotion_analysis, err) < 0 ||
		    j_str(bg, "bluegreen.", "post_promotion_analysis", true, &c->bluegreen.post_promotion_analysis, err) < 0 ||
		    j_int(bg, "bluegreen.", "keep_previous_ms", 0, 100 * DAY_MS, &c->bluegreen.keep_previous_ms, err) < 0)
			return json_is_object(bg) ? -1 : gerr_set(err, "svc_config: 'bluegreen' must be an object");
	}
	if (an) {
		if (!json_is_array(an) || json_array_size(an) > 1000)
			return gerr_set(err, "svc_config: 'analyses' must be an array");
		c->analyses = json_array_size(an) ? xcalloc(json_array_size(an), sizeof(*c->analyses)) : NULL;
		json_array_foreach(an, i, it) {
			if (j_analysis(it, &c->analyses[c->nanalyses++], err) < 0)
				return -1;
		}
	}
	if (j_int(j, "", "watch_ms", 0, 100 * DAY_MS, &c->watch_ms, err) < 0 ||
	    j_bool(j, "", "shield", &c->shield, err) < 0 ||
	    j_bool(j, "", "tag_hosts", &c->tag_hosts, err) < 0 ||
	    j_kind(j, "", "on_error", on_error_names_json, 2, &oe, err) < 0)
		return -1;
	c->on_error = (enum on_error_policy)oe;
	return 0;
}

int svc_config_from_json(const json_t *j, struct svc_config *out, struct gerr *err)
{
	struct svc_config c;
	const json_t *v, *res, *st;
	const char *key;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j))
		return gerr_set(err, "svc_config: expected a JSON object");
	svc_config_defaults(&c, "", "");
	free(c.service);
	free(c.environment);
	c.service = c.environment = NULL;
	if (j_str(j, "", "service", false, &c.service, err) < 0 ||
	    j_str(j, "", "environment", false, &c.environment, err) < 0 ||
	    j_str(j, "", "run", false, &c.run, err) < 0 ||
	    j_str(j, "", "build", true, &c.build, err) < 0 ||
	    j_str(j, "", "user", true, &c.user, err) < 0 ||
	    j_str(j, "", "artifact", false, &c.artifact, err) < 0 ||
	    j_intv(j, "", "replicas", 0, 1000000, &c.replicas, err) < 0 ||
	    j_strv(j, "hosts", true, &c.hosts, &c.nhosts, err) < 0 ||
	    j_probe(j, "readiness", &c.readiness, err) < 0 ||
	    j_probe(j, "liveness", &c.liveness, err) < 0 ||
	    j_int(j, "", "stop_grace_ms", 0, 100 * DAY_MS, &c.stop_grace_ms, err) < 0 ||
	    j_int(j, "", "drain_timeout_ms", 0, 100 * DAY_MS, &c.drain_timeout_ms, err) < 0 ||
	    j_int(j, "", "progress_deadline_ms", 0, 100 * DAY_MS, &c.progress_deadline_ms, err) < 0 ||
	    j_strv(j, "rollback_on", false, &c.rollback_on, &c.nrollback_on, err) < 0 ||
	    j_intv(j, "", "keep_revisions", 0, 1000000, &c.keep_revisions, err) < 0)
		goto out;
	if (!c.service || !c.environment || !c.run) {
		gerr_set(err, "svc_config: '%s' is required",
			 !c.service ? "service" : !c.environment ? "environment" : "run");
		goto out;
	}
	if ((v = json_object_get(j, "env"))) {
		const json_t *ev;
		if (!json_is_object(v)) {
			gerr_set(err, "svc_config: 'env' must be an object of strings");
			goto out;
		}
		json_object_foreach((json_t *)v, key, ev) {
			if (!json_is_string(ev) || strlen(json_string_value(ev)) != json_string_length(ev) ||
			    !valid_env_key(key)) {
				gerr_set(err, "svc_config: 'env.%.64s' must be a string under a valid name", key);
				goto out;
			}
			svc_config_set_env(&c, key, json_string_value(ev));
		}
	}
	if ((res = json_object_get(j, "resources"))) {
		if (!json_is_object(res)) {
			gerr_set(err, "svc_config: 'resources' must be an object");
			goto out;
		}
		if (j_int(res, "resources.", "cpu_millis", 0, INT64_MAX, &c.resources.cpu_millis, err) < 0 ||
		    j_int(res, "resources.", "memory_bytes", 0, INT64_MAX, &c.resources.memory_bytes, err) < 0 ||
		    j_int(res, "resources.", "pids", 0, INT64_MAX, &c.resources.pids, err) < 0)
			goto out;
	}
	if ((st = json_object_get(j, "strategy"))) {
		int kind = (int)c.strategy.kind;
		if (!json_is_object(st)) {
			gerr_set(err, "svc_config: 'strategy' must be an object");
			goto out;
		}
		if (j_kind(st, "strategy.", "kind", strategy_kind_names, ARRAY_SIZE(strategy_kind_names), &kind,
			   err) < 0 ||
		    j_intpct(st, "max_surge", &c.strategy.max_surge, err) < 0 ||
		    j_intpct(st, "max_unavailable", &c.strategy.max_unavailable, err) < 0)
			goto out;
		c.strategy.kind = (enum strategy_kind)kind;
	}
	if (delivery_from_json(j, &c, err) < 0)
		goto out;
	*out = c;
	memset(&c, 0, sizeof(c));
	ret = 0;
out:
	svc_config_release(&c);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* the starter spec (gantry init) and the key reference                     */

const char spec_starter[] =
	"# gantry.yaml: what to run and how to roll it out. Check it with `gantry validate`;\n"
	"# every key is described in docs/gantry.yaml.5.md.\n"
	"project: myapp\n"
	"\n"
	"# Environments, each with its own replicas and state. A service is reachable\n"
	"# through the proxy as SERVICE.ENVIRONMENT.localhost (or the hosts listed here).\n"
	"environments:\n"
	"  staging: { replicas: 1 }\n"
	"  production: { replicas: 2 }\n"
	"\n"
	"services:\n"
	"  web:\n"
	"    # a shell command line; gantry gives each replica its port in $PORT\n"
	"    run: python3 -m http.server $PORT --bind 127.0.0.1\n"
	"    # build: make                 # run in this directory before each deploy\n"
	"    env:\n"
	"      PYTHONUNBUFFERED: \"1\"\n"
	"    probes:\n"
	"      # ready once the port accepts connections; for an HTTP check: { http: /health }\n"
	"      readiness: { tcp: true, period: 1s }\n"
	"    stop_grace: 10s              # SIGTERM, then SIGKILL after this long\n"
	"    strategy:\n"
	"      rolling: { max_surge: 25%, max_unavailable: 0 }\n"
	"    environments:                # per-environment overrides of the keys above\n"
	"      production:\n"
	"        env: { PYTHONUNBUFFERED: \"1\" }\n";

static void print_keys(FILE *f, const char *prefix, const struct keydef *tab)
{
	for (; tab->name; tab++) {
		char path[256];
		snprintf(path, sizeof(path), "%s%s", prefix, tab->name);
		fprintf(f, "%s\t%s\t%s\n", path, tab->def ? tab->def : "-", tab->doc ? tab->doc : "");
		if (tab->sub) {
			char p2[sizeof(path) + 8];
			/* environments.E.replicas, services.S.run: a name level between */
			snprintf(p2, sizeof(p2), "%s%s", path,
				 tab->sub == env_keys ? ".E." : tab->sub == service_keys ? ".S." :
				 tab->sub == analysis_keys ? ".NAME." :
				 tab->type == KT_STEPS || tab->type == KT_METRICS ? "[]." : ".");
			print_keys(f, p2, tab->sub);
		}
	}
}

void spec_print_keys(FILE *f)
{
	print_keys(f, "", top_keys);
}
