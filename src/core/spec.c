/*
 * spec.c — gantry.yaml: validate against the key tables below, and resolve
 * one service in one environment into struct svc_config. The other rooms
 * of the spec parser (behind core/spec-int.h):
 *   spec_load.c      reading the file, environments: and services:, and
 *                    running every check in turn
 *   yaml.c           the YAML tree with line:column of every node, built
 *                    from libfyaml's events, and its read-only view (spec.h)
 *   spec_delivery.c  canary, blue-green, analyses, rollback_on
 *   spec_docker.c    the container keys (runtime, image, build: {...},
 *                    command, entrypoint, port, registry) and their rules
 *   config_json.c    svc_config as JSON (stored with each revision)
 *   spec_gates.c     the gate keys (protection, checks, notify, roles)
 *   spec_hosts.c     host collisions between services
 *   spec_template.c  the starter spec of `gantry init`
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
#include "core/spec-int.h"
#include "util/parse.h"
#include <inttypes.h>

/* ------------------------------------------------------------------------ */
/* diagnostics                                                              */

void spec__report_at(struct walker *w, int line, int col, const char *fmt, ...)
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

size_t spec__path_push(struct walker *w, const char *fmt, ...)
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

size_t spec__path_key(struct walker *w, const char *key)
{
	return w->plen ? spec__path_push(w, ".%s", key) : spec__path_push(w, "%s", key);
}

void spec__path_pop(struct walker *w, size_t old)
{
	w->plen = old;
	w->path[old] = 0;
}
/* ------------------------------------------------------------------------ */
/* the key tables                                                           */

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

static const struct keydef strategy_keys[] = {
	{ "rolling", KT_MAP, 0, 0, 0, NULL, rolling_keys, 0, "replace replicas a few at a time" },
	{ "recreate", KT_MAP, 0, 0, 0, NULL, NULL, 0, "stop every old replica, then start the new ones" },
	{ "canary", KT_ANY, 0, 0, 0, NULL, spec__canary_keys, 0, "shift traffic by steps" },
	{ "bluegreen", KT_ANY, 0, 0, 0, NULL, spec__bluegreen_keys, 0, "start the full new set, then switch" },
	END_KEYS
};

static const struct keydef migrations_keys[] = {
	{ "dir", KT_STR, offsetof(struct migrations_config, dir), 0, 0, NULL, NULL, 0,
	  "directory of NNN_name.up.sql / NNN_name.down.sql files, relative to the artifact (golang-migrate's layout)" },
	{ "database_env", KT_STR, offsetof(struct migrations_config, database_env), 0, 0, "DATABASE_URL", NULL, 0,
	  "the variable of the service's env holding the database URL (postgres://, sqlite3://)" },
	{ "lock_timeout", KT_DUR, offsetof(struct migrations_config, lock_timeout_ms), 0, HOUR_MS, "60s", NULL, 0,
	  "how long a deploy waits for the migration lock another runner holds" },
	{ "snapshot", KT_BOOL, offsetof(struct migrations_config, snapshot), 0, 0, "false", NULL, 0,
	  "back the database up before up-migrations (SQLite backup API, pg_dump), kept with the revision" },
	{ "auto_down", KT_BOOL, offsetof(struct migrations_config, auto_down), 0, 0, "false", NULL, 0,
	  "an automatic rollback may run down-migrations (otherwise it keeps the schema)" },
	{ "mode", KT_STR, offsetof(struct migrations_config, mode), 0, 0, "online", NULL, 0,
	  "online (the old revision serves during the migration) or maintenance (maintenance on, old replicas "
	  "stopped, migrate, new revision up, maintenance off)" },
	{ "maintenance_message", KT_STR, offsetof(struct migrations_config, maintenance_message), 0, 0, NULL, NULL, 0,
	  "mode maintenance: the text of the 503 page during the flow" },
	{ "maintenance_allow", KT_MAINT_ALLOW, 0, 0, 0, NULL, NULL, 0,
	  "mode maintenance: [{header: NAME, value: {secret: NAME, version: N}}], requests carrying one pass the "
	  "flow's 503 (at most 8; the value is a secret of the environment's store, never written in the spec)" },
	END_KEYS
};

/* every key of a service, also valid in services.S.environments.E unless KF_NO_OVERRIDE */
static const struct keydef service_keys[] = {
	{ "run", KT_STR, offsetof(struct svc_config, run), 0, 0, NULL, NULL, 0,
	  "required (process): shell command line (sh -c); gets the port in $PORT" },
	{ "build", KT_BUILD, 0, 0, 0, NULL, spec__build_keys, 0,
	  "process: shell command run in the spec directory before the artifact is snapshotted; "
	  "docker: {dockerfile, context, args}, the image built" },
	{ "runtime", KT_RUNTIME, offsetof(struct svc_config, runtime), 0, 0, "process", NULL, KF_DOC_ONLY,
	  "process | docker; image: and build: {...} imply docker" },
	{ "image", KT_IMAGE, offsetof(struct svc_config, image), 0, 0, NULL, NULL, 0,
	  "docker: the image run, [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST]" },
	{ "command", KT_ARGV, offsetof(struct svc_config, command), 0, 0, NULL, NULL, 0,
	  "docker: replaces the image's CMD (a list of strings)" },
	{ "entrypoint", KT_ARGV, offsetof(struct svc_config, entrypoint), 0, 0, NULL, NULL, 0,
	  "docker: replaces the image's ENTRYPOINT (a list of strings)" },
	{ "port", KT_INT, offsetof(struct svc_config, port), 1, 65535, NULL, NULL, 0,
	  "docker: the port the container listens on (given as $PORT); default: the published port's number" },
	{ "registry", KT_REGISTRY, offsetof(struct svc_config, registry), 0, 0, NULL, NULL, 0,
	  "docker: HOST:PORT images are pushed to and pulled from; default: the top-level registry" },
	{ "artifact", KT_STR, offsetof(struct svc_config, artifact), 0, 0, ".", NULL, 0,
	  "path (relative to the spec directory) snapshotted for each revision" },
	{ "replicas", KT_INT, offsetof(struct svc_config, replicas), 0, 1000, "1", NULL, KF_DOC_ONLY,
	  "replica count; default: environments.E.replicas, else 1" },
	{ "env", KT_ENVMAP, offsetof(struct svc_config, env), 0, 0, NULL, NULL, 0,
	  "environment variables (scalars; numbers and booleans are kept as written), or {secret: NAME, version: N} from the secret store, or {sops: PATH} from environments.E.secrets.file" },
	{ "files", KT_SECFILES, 0, 0, 0, NULL, NULL, 0,
	  "FILE: {secret: NAME, version: N} or {sops: PATH}: a secret as the file $GANTRY_SECRETS_DIR/FILE (private, in memory)" },
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
	{ "analysis", KT_ANALYSES, 0, 0, 0, NULL, spec__analysis_keys, 0, "named analyses: NAME: {interval, ..., metrics}" },
	{ "sticky", KT_STICKY, offsetof(struct svc_config, sticky), 0, 0, "false", NULL, 0,
	  "true | {cookie: NAME, max_age: DUR}: a cookie (default gantry_rev, a session cookie) keeps a client "
	  "on the revision it was first sent to while that revision has traffic, on every proxy" },
	{ "shield", KT_BOOL, offsetof(struct svc_config, shield), 0, 0, "false", NULL, 0,
	  "canary shield: retry a failed idempotent canary request on stable" },
	{ "on_error", KT_ONERROR, offsetof(struct svc_config, on_error), 0, 0, "pause", NULL, 0,
	  "analysis errors past error_limit: pause | rollback" },
	{ "migrations", KT_MAP, offsetof(struct svc_config, migrations), 0, 0, NULL, migrations_keys, 0,
	  "database migrations run by deploys and rollbacks: {dir, database_env, lock_timeout, snapshot, auto_down, mode, maintenance_message, maintenance_allow}" },
	{ "placement", KT_PLACEMENT, offsetof(struct svc_config, placement), 0, 0, NULL, NULL, 0,
	  "docker, in an environment with a cluster: {constraints: [node.role==worker], spread: node.labels.zone}, where its tasks may run" },
	{ "checks", KT_ANY, 0, 0, 0, NULL, NULL, KF_NO_OVERRIDE,
	  "pre- and post-deployment checks (checked by src/core/spec_gates.c)" },
	{ "depends_on", KT_ANY, 0, 0, 0, NULL, NULL, KF_NO_OVERRIDE,
	  "[SVC, ...]: services a release deploys before this one (checked by src/core/spec_release.c)" },
	{ "environments", KT_OVERRIDES, 0, 0, 0, NULL, NULL, KF_NO_OVERRIDE,
	  "per-environment overrides of any key above" },
	END_KEYS
};

static const struct keydef env_secret_keys[] = {
	{ "recipients", KT_RECIPIENTS, 0, 0, 0, NULL, NULL, 0,
	  "age recipients (age1...) the environment's secrets are also encrypted to, besides the controller" },
	{ "file", KT_STR, offsetof(struct spec_env, secrets_file), 0, 0, NULL, NULL, 0,
	  "a SOPS file (age recipients; relative to the spec's directory) whose values env/files name as {sops: PATH}" },
	END_KEYS
};

const struct keydef spec__env_keys[] = {
	{ "secrets", KT_MAP, 0, 0, 0, NULL, env_secret_keys, 0, "the secret store of this environment" },
	{ "replicas", KT_INT, offsetof(struct spec_env, replicas), 1, 1000, NULL, NULL, 0,
	  "default replica count of the services in this environment" },
	{ "hosts", KT_HOSTS, offsetof(struct spec_env, hosts), 0, 0, NULL, NULL, 0,
	  "default Host names of the services in this environment" },
	{ "cluster", KT_CLUSTER, offsetof(struct spec_env, cluster), 0, 0, NULL, NULL, 0,
	  "{engine: swarm, manager: unix:///PATH | tcp://HOST:PORT, network: OVERLAY, nodes: {HOSTNAME: ENGINE}, "
	  "proxy: {port: N, admin_port: N, registry: HOST:PORT}}: "
	  "the environment's container services run as Swarm services there, a gantry proxy on every node with proxy "
	  "(docs/fleet.md)" },
	/* gate keys: checked by core/spec_gates.c, read by gates/gspec.c */
	{ "protection", KT_ANY, 0, 0, 0, NULL, NULL, 0,
	  "gates: approvals, approval_ttl, windows, freeze_on_incident, checklist" },
	{ "promote_from", KT_ANY, 0, 0, 0, NULL, NULL, 0,
	  "only versions serving healthily in this environment may be deployed here" },
	{ "min_soak", KT_ANY, 0, 0, 0, NULL, NULL, 0,
	  "how long the promoted revision must have served in promote_from" },
	{ "flags", KT_ANY, 0, 0, 0, NULL, NULL, 0,
	  "NAME: {default, variants, rules}: this environment's definition of a flag of flags: (checked by src/core/spec_flags.c)" },
	END_KEYS
};

static const struct keydef top_keys[] = {
	{ "project", KT_NAME, 0, 0, 0, "default", NULL, 0, "project name" },
	{ "environments", KT_MAP, 0, 0, 0, NULL, spec__env_keys, 0,
	  "required: at least one environment, each a mapping (or empty)" },
	{ "services", KT_MAP, 0, 0, 0, NULL, service_keys, 0, "required: at least one service" },
	{ "analysis_templates", KT_ANALYSES, 0, 0, 0, NULL, spec__analysis_keys, 0,
	  "analyses every service may use by name" },
	{ "notify", KT_ANY, 0, 0, 0, NULL, NULL, 0, "webhooks on events (checked by src/core/spec_gates.c)" },
	{ "roles", KT_ANY, 0, 0, 0, NULL, NULL, 0, "OS user name: role, or {role, environments, services} (checked by src/core/spec_gates.c)" },
	{ "registry", KT_REGISTRY, 0, 0, 0, NULL, NULL, 0, "HOST:PORT: the registry of every docker service" },
	{ "release", KT_ANY, 0, 0, 0, NULL, NULL, 0,
	  "{on_failure: rollback | pause | continue}: what gantry release does when a service fails (checked by src/core/spec_release.c)" },
	{ "flags", KT_ANY, 0, 0, 0, NULL, NULL, 0,
	  "feature flags: NAME: {default, variants, rules}, served over OFREP (checked by src/core/spec_flags.c)" },
	END_KEYS
};

/* ------------------------------------------------------------------------ */
/* typed values                                                             */

bool spec__valid_name(const char *s)
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
	return s && spec__valid_name(s);
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
		if (!spec__valid_name(label))
			return false;
		s += l;
		if (*s == '.' && !s[1])
			return false; /* trailing dot */
		if (*s)
			s++;
	}
	return true;
}

bool spec__valid_env_key(const char *s)
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
const char *spec__want_scalar(struct walker *w, const struct ynode *n, const struct ynode *at)
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
		/* migrations.mode: one of two flows, told apart here, not at the deploy */
		if (d >= migrations_keys && d < migrations_keys + ARRAY_SIZE(migrations_keys) &&
		    !strcmp(d->name, "mode") && strcmp(s, "online") && strcmp(s, "maintenance")) {
			report(w, n, "expected online or maintenance, got '%s'", s);
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
	case KT_CPU: {
		bool size = d->type == KT_SIZE;
		if ((size ? parse_size(s, &v) : parse_cpu_millis(s, &v)) < 0) {
			report(w, n, size ? "invalid size '%s' (expected e.g. 256Mi, 1Gi, 512M)"
					  : "invalid CPU quantity '%s' (expected e.g. 500m, 1, 1.5)", s);
			return;
		}
		if (v < d->min || v > d->max) {
			report(w, n, "must be between %s, got %s", size ? "1Mi and 1Ti" : "1m and 1024", s);
			return;
		}
		*FIELD(base, d, int64_t) = v;
		return;
	}
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

void spec__free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* a list of strings (hosts when hosts is set); replaces the list at *vp only when all items are valid */
void spec__set_strlist(struct walker *w, const struct ynode *n, const struct ynode *at, bool hosts,
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
		size_t old = spec__path_push(w, "[%zu]", i);
		const char *s = spec__want_scalar(w, n->kids[i], n);
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
		spec__path_pop(w, old);
	}
	if (w->nerr != before) {
		spec__free_strv(v, cnt);
		return;
	}
	spec__free_strv(*vp, *np);
	*vp = v;
	*np = cnt;
}

void svc_config_set_env(struct svc_config *c, const char *key, const char *value)
{
	size_t i;

	spec__secret_drop(c, key, false);
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

static const struct keydef *find_key(const struct keydef *tab, const char *name)
{
	for (; tab && tab->name; tab++)
		if (!strcmp(tab->name, name))
			return tab;
	return NULL;
}

void spec__report_unknown(struct walker *w, const struct ynode *k, const char *what,
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
	spec__report_unknown(w, k, "key", cands, n);
}

/*
 * Checks that k is a usable mapping key and not a repeat of an earlier key of
 * map (index i of kids). Returns false after reporting.
 */
bool spec__key_ok(struct walker *w, const struct ynode *map, size_t i)
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

bool spec__want_map(struct walker *w, const struct ynode *n, const struct ynode *at, bool null_ok)
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

	if (!spec__want_map(w, v, k, false))
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
	spec__walk_map(w, v, k, d->sub, p, mode);
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
	if (!spec__want_map(w, v, k, false))
		return;
	if (v->nkids != 2) {
		report(w, v, "give exactly one strategy: rolling, recreate, canary or bluegreen");
		return;
	}
	sk = v->kids[0];
	sv = v->kids[1];
	if (!spec__key_ok(w, v, 0))
		return;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(sk->text, names[i]))
			break;
	if (i == ARRAY_SIZE(names)) {
		spec__report_unknown(w, sk, "strategy", names, ARRAY_SIZE(names));
		return;
	}
	{
		size_t old = spec__path_key(w, sk->text);
		int before = w->nerr;
		if (i == STRATEGY_ROLLING) {
			struct strategy tmp = *st;
			if (!y_is_null(sv) || sv->type != Y_SCALAR) {
				if (spec__want_map(w, sv, sk, true))
					spec__walk_map(w, sv, sk, rolling_keys, &tmp, mode);
			}
			if (w->nerr == before && tmp.max_surge.value == 0 && tmp.max_unavailable.value == 0)
				report(w, sv->line ? sv : sk,
				       "max_surge and max_unavailable cannot both be 0 (the rollout could never progress)");
			if (w->nerr == before)
				*st = tmp;
		} else if (i == STRATEGY_RECREATE) {
			if (spec__want_map(w, sv, sk, true))
				spec__walk_map(w, sv, sk, NULL, st, mode);
		} else if (i == STRATEGY_CANARY) {
			spec__apply_canary(w, sk, sv, base);
		} else {
			spec__apply_bluegreen(w, sk, sv, base);
		}
		spec__path_pop(w, old);
		if (w->nerr == before)
			st->kind = (enum strategy_kind)i;
	}
}

void spec_maint_allow_release(struct mig_maint_allow *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].header);
		free(a[i].secret);
	}
	free(a);
}

bool spec_maint_header_valid(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

/*
 * migrations.maintenance_allow: [{header: NAME, value: {secret: NAME, version: N}}].
 * The value is a reference to the secret store, never the secret itself: a
 * spec is stored, diffed and shown. Replaces the list only when all is valid.
 */
#define STICKY_DEFAULT_COOKIE "gantry_rev"
#define STICKY_MAX_AGE_MS (400LL * DAY_MS) /* browsers cap Max-Age at 400 days */

/*
 * services.S.sticky: true (the cookie gantry_rev, for the session), false,
 * or {cookie: NAME, max_age: DUR}. The proxy sets the cookie to the
 * revision it picked and honours it while that revision has traffic.
 * Replaces *st only when all is valid.
 */
static void apply_sticky(struct walker *w, const struct ynode *k, const struct ynode *v, struct sticky *st)
{
	struct sticky n = { 0 };
	int before = w->nerr;
	const char *s;

	if (v && v->type == Y_SCALAR) {
		s = v->text;
		if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
			n.cookie = xstrdup(STICKY_DEFAULT_COOKIE);
		} else if (strcmp(s, "false") && strcmp(s, "False") && strcmp(s, "FALSE")) {
			report(w, v, "expected true, false or {cookie: NAME, max_age: DUR}, got '%s'", s);
			return;
		}
	} else if (spec__want_map(w, v, k, false)) {
		n.cookie = xstrdup(STICKY_DEFAULT_COOKIE);
		for (size_t i = 0; i + 1 < v->nkids; i += 2) {
			const struct ynode *ck = v->kids[i], *cv = v->kids[i + 1];
			size_t old;
			int64_t ms;
			if (!spec__key_ok(w, v, i))
				continue;
			old = spec__path_key(w, ck->text);
			if (!strcmp(ck->text, "cookie")) {
				if ((s = spec__want_scalar(w, cv, ck))) {
					if (!*s || strlen(s) > 64 ||
					    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
						    strlen(s))
						report(w, cv, "a cookie name is 1 to 64 letters, digits, '-', '_' or '.', got '%s'", s);
					else {
						free(n.cookie);
						n.cookie = xstrdup(s);
					}
				}
			} else if (!strcmp(ck->text, "max_age")) {
				if ((s = spec__want_scalar(w, cv, ck))) {
					if (parse_duration_ms(s, &ms) < 0)
						report(w, cv, "invalid duration '%s' (expected e.g. 30m, 24h)", s);
					else if (ms < 0 || ms > STICKY_MAX_AGE_MS || ms % 1000)
						report(w, cv, "must be whole seconds from 0s to 400d (0s: a session cookie), got '%s'", s);
					else
						n.max_age_ms = ms;
				}
			} else {
				static const char *const keys[] = { "cookie", "max_age" };
				spec__report_unknown(w, ck, "sticky key", keys, ARRAY_SIZE(keys));
			}
			spec__path_pop(w, old);
		}
	} else {
		return;
	}
	if (w->nerr != before) {
		free(n.cookie);
		return;
	}
	free(st->cookie);
	*st = n;
}

static void apply_maint_allow(struct walker *w, const struct ynode *k, const struct ynode *v,
			      struct migrations_config *mc)
{
	struct mig_maint_allow *a = NULL;
	size_t n = 0;
	int before = w->nerr;

	if (v->type != Y_SEQ) {
		report(w, v, "expected a list of {header: NAME, value: {secret: NAME}}");
		return;
	}
	if (v->nkids > SPEC_MAINT_ALLOW_MAX) {
		report(w, v, "at most %d headers, got %zu", SPEC_MAINT_ALLOW_MAX, v->nkids);
		return;
	}
	a = xcalloc(v->nkids + 1, sizeof(*a));
	for (size_t i = 0; i < v->nkids; i++) {
		const struct ynode *it = v->kids[i], *hv = NULL, *vv = NULL;
		size_t old = spec__path_push(w, "[%zu]", i);
		int b2 = w->nerr;
		if (!spec__want_map(w, it, k, false)) {
			spec__path_pop(w, old);
			continue;
		}
		for (size_t j = 0; j + 1 < it->nkids; j += 2) {
			if (!spec__key_ok(w, it, j))
				continue;
			if (!strcmp(it->kids[j]->text, "header"))
				hv = it->kids[j + 1];
			else if (!strcmp(it->kids[j]->text, "value"))
				vv = it->kids[j + 1];
			else {
				static const char *const cands[] = { "header", "value" };
				spec__report_unknown(w, it->kids[j], "key", cands, 2);
			}
		}
		if (w->nerr != b2) {
			spec__path_pop(w, old);
			continue;
		}
		if (!hv || !vv) {
			report(w, it, "missing required key '%s' ({header: NAME, value: {secret: NAME}})",
			       hv ? "value" : "header");
			spec__path_pop(w, old);
			continue;
		}
		{
			size_t o2 = spec__path_key(w, "header");
			const char *h = spec__want_scalar(w, hv, it);
			if (h && !spec_maint_header_valid(h))
				report(w, hv, "invalid header name '%.80s' (an HTTP token, at most 64 bytes)", h);
			for (size_t j = 0; h && j < n; j++)
				if (!strcasecmp(a[j].header, h))
					report(w, hv, "header '%.80s' is given twice", h);
			if (h && w->nerr == b2)
				a[n].header = xstrdup(h);
			spec__path_pop(w, o2);
		}
		{
			size_t o2 = spec__path_key(w, "value");
			if (vv->type != Y_MAP) {
				/* never echo it: it may be the secret itself */
				report(w, vv, "the value is a secret: write value: {secret: NAME} (gantry secret set NAME "
					      "--env ENV), never the value itself");
			} else {
				for (size_t j = 0; j + 1 < vv->nkids; j += 2) {
					const struct ynode *sk = vv->kids[j], *sv = vv->kids[j + 1];
					const char *s;
					if (!spec__key_ok(w, vv, j))
						continue;
					if (!strcmp(sk->text, "secret")) {
						if ((s = spec__want_scalar(w, sv, sk)) && !secret_name_valid(s))
							report(w, sv, "invalid secret name '%.80s' (letters, digits, '_', "
								      "'-' and '.', starting with a letter or digit)", s);
						else if (s)
							a[n].secret = xstrdup(s);
					} else if (!strcmp(sk->text, "version")) {
						char *end;
						long ver;
						if ((s = spec__want_scalar(w, sv, sk))) {
							ver = strtol(s, &end, 10);
							if (*end || end == s || ver < 1 || ver > 1000000000)
								report(w, sv, "expected a version number >= 1, got '%.40s'", s);
							else
								a[n].version = (int)ver;
						}
					} else {
						static const char *const cands[] = { "secret", "version" };
						spec__report_unknown(w, sk, "key", cands, 2);
					}
				}
				if (!a[n].secret && w->nerr == b2)
					report(w, vv, "missing required key 'secret' (the name of a secret: gantry secret set "
						      "NAME --env ENV)");
				a[n].line = vv->line;
				a[n].col = vv->col;
			}
			spec__path_pop(w, o2);
		}
		if (w->nerr == b2)
			n++;
		else {
			free(a[n].header);
			free(a[n].secret);
			memset(&a[n], 0, sizeof(a[n]));
		}
		spec__path_pop(w, old);
	}
	if (w->nerr != before) {
		spec_maint_allow_release(a, n);
		return;
	}
	spec_maint_allow_release(mc->allow, mc->nallow);
	mc->allow = a;
	mc->nallow = n;
}

static void apply_envmap(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c)
{
	if (!spec__want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *ek = v->kids[i], *ev = v->kids[i + 1];
		size_t old;
		const char *s;

		if (!spec__key_ok(w, v, i))
			continue;
		old = spec__path_key(w, ek->text);
		if (!spec__valid_env_key(ek->text)) {
			report(w, ek, "invalid environment variable name '%s' (letters, digits and '_', not starting with a digit)",
			       ek->text);
		} else if (y_is_null(ev) && ev->type == Y_SCALAR) {
			report(w, ev->line ? ev : ek, "value is empty (null); write \"\" for an empty string");
		} else if (ev->type == Y_MAP) {
			spec__apply_secret_ref(w, ek, ev, c, false);
		} else if ((s = spec__want_scalar(w, ev, ek))) {
			svc_config_set_env(c, ek->text, s);
		}
		spec__path_pop(w, old);
	}
}

/* services.S.environments: at the base level only checks names and shapes */
static void check_overrides(struct walker *w, const struct ynode *k, const struct ynode *v,
			    const struct spec *spec)
{
	if (!spec__want_map(w, v, k, true))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *ek = v->kids[i], *ev = v->kids[i + 1];
		size_t old;

		if (!spec__key_ok(w, v, i))
			continue;
		old = spec__path_key(w, ek->text);
		if (!spec_find_env(spec, ek->text)) {
			const char *cands[64];
			size_t n = 0;
			for (size_t j = 0; j < spec->nenvs && n < ARRAY_SIZE(cands); j++)
				cands[n++] = spec->envs[j].name;
			spec__report_unknown(w, ek, "environment", cands, n);
			/* (an undeclared environment: declare it under the top-level environments) */
		} else {
			spec__want_map(w, ev, ek, true);
		}
		spec__path_pop(w, old);
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
		if ((s = spec__want_scalar(w, v, k)))
			set_scalar(w, d, v, s, base);
		return;
	case KT_NAME:
		if ((s = spec__want_scalar(w, v, k)) && !spec__valid_name(s))
			report(w, v, "invalid name '%s' (lowercase letters, digits and '-', at most 63 characters)", s);
		return;
	case KT_STRLIST:
	case KT_HOSTS:
		spec__set_strlist(w, v, k, d->type == KT_HOSTS, FIELD(base, d, char **),
			    (size_t *)(void *)((char *)base + d->off + sizeof(char **)));
		if (d->type == KT_HOSTS)
			w->hosts_given = true;
		return;
	case KT_ENVMAP:
		apply_envmap(w, k, v, base);
		return;
	case KT_MAP:
		if (spec__want_map(w, v, k, false))
			spec__walk_map(w, v, k, d->sub, (char *)base + d->off, mode);
		return;
	case KT_PROBE:
		apply_probe(w, d, k, v, base, mode);
		return;
	case KT_PROBE_HTTP:
		if ((s = spec__want_scalar(w, v, k))) {
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
		if ((s = spec__want_scalar(w, v, k))) {
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
		if ((s = spec__want_scalar(w, v, k))) {
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
	case KT_SECFILES:
		spec__apply_secret_files(w, k, v, base);
		return;
	case KT_RECIPIENTS:
		spec__apply_recipients(w, k, v, base);
		return;
	case KT_MAINT_ALLOW:
		apply_maint_allow(w, k, v, base);
		return;
	case KT_CLUSTER:
		spec__apply_cluster(w, k, v, FIELD(base, d, struct cluster_config));
		return;
	case KT_PLACEMENT:
		spec__apply_placement(w, k, v, FIELD(base, d, struct placement));
		return;
	case KT_STICKY:
		apply_sticky(w, k, v, FIELD(base, d, struct sticky));
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
		spec__apply_delivery(w, d, k, v, base);
		return;
	case KT_RUNTIME:
	case KT_IMAGE:
	case KT_BUILD:
	case KT_REGISTRY:
	case KT_ARGV:
	case KT_BUILDARGS:
		spec__apply_docker(w, d, k, v, base, mode);
		return;
	}
}

void spec__walk_map(struct walker *w, const struct ynode *map, const struct ynode *at,
		     const struct keydef *tab, void *base, enum walk_mode mode)
{
	(void)at;
	for (size_t i = 0; i + 1 < map->nkids; i += 2) {
		const struct ynode *k = map->kids[i], *v = map->kids[i + 1];
		const struct keydef *d;
		size_t old;

		if (!spec__key_ok(w, map, i))
			continue;
		d = find_key(tab, k->text);
		if (!d) {
			unknown_key(w, k, tab);
			continue;
		}
		old = spec__path_key(w, k->text);
		if (mode == MODE_OVERRIDE && (d->flags & KF_NO_OVERRIDE) && d->type != KT_OVERRIDES)
			report(w, k, "cannot be overridden per environment");
		else
			apply_value(w, d, k, v, base, mode);
		spec__path_pop(w, old);
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
		if (tab->type <= KT_SCALAR_LAST) {
			set_scalar(&quiet, tab, NULL, tab->def, base);
		} else if (tab->type == KT_STRATEGY) {
			struct strategy *st = FIELD(base, tab, struct strategy);
			st->kind = STRATEGY_ROLLING;
			apply_defaults(rolling_keys, st);
		}
	}
	BUG_ON(quiet.nerr);
}

void spec__svc_config_defaults(struct svc_config *c, const char *service, const char *env)
{
	memset(c, 0, sizeof(*c));
	apply_defaults(service_keys, c);
	spec__delivery_defaults(c);
	c->replicas = 1;
	c->service = xstrdup(service);
	c->environment = xstrdup(env);
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
	free(c->migrations.dir);
	free(c->migrations.database_env);
	free(c->migrations.mode);
	free(c->migrations.maintenance_message);
	spec_maint_allow_release(c->migrations.allow, c->migrations.nallow);
	for (size_t i = 0; i < c->nenv; i++) {
		free(c->env[i].key);
		free(c->env[i].value);
	}
	free(c->env);
	spec__secrets_release(c);
	spec__free_strv(c->hosts, c->nhosts);
	free(c->readiness.target);
	free(c->liveness.target);
	spec__free_strv(c->rollback_on, c->nrollback_on);
	spec__delivery_release(c);
	spec__docker_release(c);
	cluster_config_release(&c->cluster);
	placement_release(&c->placement);
	free(c->sticky.cookie);
	memset(c, 0, sizeof(*c));
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
	const struct ynode *node = s->node, *overrides, *ov, *reg;
	struct ynode *ovk = NULL;
	struct walker quiet = { 0 };
	char *dflt;
	int nerr = 0;

	spec__svc_config_defaults(c, s->name, e->name);
	if (e->replicas > 0)
		c->replicas = e->replicas;
	/* the top-level registry, below the service's (checked by spec__top_level) */
	reg = y_lookup(spec->doc, "registry", NULL);
	if (reg && spec__top_registry(&quiet, NULL, reg))
		c->registry = xstrdup(reg->text);
	wbase->spec = spec;
	wover->spec = spec;
	wbase->hosts_given = false;
	if (node && node->type == Y_MAP) {
		size_t old = spec__path_push(wbase, "services.%s", s->name);
		int before = wbase->nerr;
		spec__walk_map(wbase, node, NULL, service_keys, c, MODE_BASE);
		nerr += wbase->nerr - before;
		spec__path_pop(wbase, old);
	}
	wover->hosts_given = wbase->hosts_given;
	overrides = y_lookup(node, "environments", NULL);
	ov = y_lookup(overrides, e->name, &ovk);
	if (ov && ov->type == Y_MAP) {
		size_t old = spec__path_push(wover, "services.%s.environments.%s", s->name, e->name);
		int before = wover->nerr;
		spec__walk_map(wover, ov, ovk, service_keys, c, MODE_OVERRIDE);
		nerr += wover->nerr - before;
		spec__path_pop(wover, old);
	}
	{
		/* per environment (an override may change the strategy): through the loud-for-every-env walker */
		int before = wover->nerr;
		spec__resolve_delivery(wover, spec, s, e, c);
		nerr += wover->nerr - before;
	}
	{
		int before = wbase->nerr + wover->nerr;
		spec__check_docker(wbase, wover, s, e, ov, c);
		nerr += wbase->nerr + wover->nerr - before;
	}
	/* the cluster and placement are a docker service's only: a process
	 * service's config (and its digest) stays as on one host */
	if (c->runtime == RUNTIME_DOCKER && e->cluster.engine)
		cluster_config_copy(&c->cluster, &e->cluster);
	if (!c->cluster.engine)
		placement_release(&c->placement);
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
	if (resolve_into(spec, s, e, out, &q1, &q2) || (out->runtime == RUNTIME_PROCESS && !out->run)) {
		/* spec_load validated this spec: only a bug lands here */
		svc_config_release(out);
		return gerr_set(err, "%s: service '%s' does not resolve in environment '%s'", spec->path,
				service, env);
	}
	return 0;
}

/* resolves every service in every environment, loudly, once per problem */
void spec__check_services(struct walker *w, struct spec *spec)
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
			if (c.runtime == RUNTIME_PROCESS && !c.run && !norun)
				norun = e->name;
			svc_config_release(&c);
		}
		if (norun) {
			const struct ynode *node = s->node;
			size_t old = spec__path_push(w, "services.%s", s->name);
			if (y_lookup(node, "run", NULL))
				; /* present but invalid: already reported */
			else
				spec__report_at(w, s->line, s->col, "missing required key 'run'%s%s%s",
					  spec->nenvs > 1 ? " (needed in environment '" : "",
					  spec->nenvs > 1 ? norun : "", spec->nenvs > 1 ? "')" : "");
			spec__path_pop(w, old);
		}
	}
}

/* the top level: unknown and duplicate keys; returns the project name (owned), or its default */
char *spec__top_level(struct walker *w, const struct ynode *root)
{
	const struct ynode *v;

	for (size_t i = 0; i + 1 < root->nkids; i += 2) {
		const struct ynode *tk = root->kids[i];
		if (!spec__key_ok(w, root, i))
			continue;
		if (!find_key(top_keys, tk->text)) {
			unknown_key(w, tk, top_keys);
		} else if (!strcmp(tk->text, "project")) {
			size_t old = spec__path_key(w, "project");
			apply_value(w, &top_keys[0], tk, root->kids[i + 1], NULL, MODE_BASE);
			spec__path_pop(w, old);
		} else if (!strcmp(tk->text, "registry")) {
			spec__top_registry(w, tk, root->kids[i + 1]);
		}
	}
	v = y_lookup(root, "project", NULL);
	return xstrdup(v && v->type == Y_SCALAR && !y_is_null(v) ? v->text : top_keys[0].def);
}

/* ------------------------------------------------------------------------ */
/* the key reference (gantry validate --keys, docs/gantry.yaml.5.md)        */

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
				 tab->sub == spec__env_keys ? ".E." : tab->sub == service_keys ? ".S." :
				 tab->sub == spec__analysis_keys ? ".NAME." :
				 tab->type == KT_STEPS || tab->type == KT_METRICS ? "[]." : ".");
			print_keys(f, p2, tab->sub);
		}
	}
}

void spec_print_keys(FILE *f)
{
	print_keys(f, "", top_keys);
}
