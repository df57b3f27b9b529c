/*
 * config_json.c — svc_config as JSON, the codec of the resolved
 * configuration stored with each revision (svc_config_to_json,
 * svc_config_from_json in spec.h), so that a rollback runs exactly the old
 * configuration whatever the spec says today.
 *
 * Format (version 1): durations as integer milliseconds ("stop_grace_ms"),
 * probes as {"kind": "none|http|tcp|exec", "target", "period_ms", ...},
 * counts-or-percentages as {"percent": bool, "value": number}. Reading is
 * strict about types and ranges of the keys present and names the key it
 * rejects; a missing key takes its default, so a revision written before a
 * key existed still loads. Unknown keys are ignored (written by a newer gantry).
 *
 * The container fields are written only when set ("runtime": "docker",
 * "image", "image_build" {"dockerfile", "context", "args": {K: V}},
 * "command", "entrypoint", "port", "registry"), so a process service's
 * config, and its digest, read the same as before they existed; without
 * "runtime" a config is a process one, which needs "run"; a docker one
 * needs "image" or "image_build" and may lack "run".
 */
#include "common.h"
#include "core/spec.h"
#include "core/spec-int.h"
#include <inttypes.h>
#include <jansson.h>
#include <math.h>

static void delivery_to_json(json_t *o, const struct svc_config *c);
static void docker_to_json(json_t *o, const struct svc_config *c);
static int docker_from_json(const json_t *j, struct svc_config *c, struct gerr *err);

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

/* {"secret": NAME, "version": N} or {"sops": PATH, "version": N} as env KEY (file false) or file KEY */
static int secret_ref_from_json(struct svc_config *c, const char *key, const json_t *o, bool file, struct gerr *err)
{
	const json_t *name = json_object_get(o, "secret"), *ver = json_object_get(o, "version");
	const json_t *sops = json_object_get(o, "sops");
	struct secret_ref ref = { .target = (char *)key, .file = file };
	if (json_is_string(sops) && !name && secret_sops_path_valid(json_string_value(sops)) && strlen(key) <= 128 &&
	    *key && key[0] != '.' && !strchr(key, '/')) {
		ref.sops = (char *)json_string_value(sops);
		ref.secret = (char *)SECRET_SOPS;
		if (ver && (!json_is_integer(ver) || json_integer_value(ver) < 1 || json_integer_value(ver) > 1000000000))
			return gerr_set(err, "svc_config: '%s.%.64s': bad SOPS version", file ? "files" : "env", key);
		ref.version = ver ? (int)json_integer_value(ver) : 0;
		svc_config_set_secret(c, &ref);
		return 0;
	}
	if (!json_is_object(o) || !json_is_string(name) || !secret_name_valid(json_string_value(name)) ||
	    (ver && (!json_is_integer(ver) || json_integer_value(ver) < 1 || json_integer_value(ver) > 1000000000)) ||
	    strlen(key) > 128 || !*key || key[0] == '.' || strchr(key, '/'))
		return gerr_set(err, "svc_config: '%s.%.64s' must be {\"secret\": NAME, \"version\": N}",
				file ? "files" : "env", key);
	ref.secret = (char *)json_string_value(name);
	ref.version = ver ? (int)json_integer_value(ver) : 0;
	svc_config_set_secret(c, &ref);
	return 0;
}

json_t *svc_config_to_json(const struct svc_config *c)
{
	json_t *env = json_object(), *files = NULL, *o;

	for (size_t i = 0; i < c->nenv; i++)
		json_object_set_new(env, c->env[i].key, json_string(c->env[i].value));
	/* a secret is kept as its reference, never its value: {secret, version} */
	for (size_t i = 0; i < c->nsecrets; i++) {
		const struct secret_ref *r = &c->secrets[i];
		json_t *ref = r->sops ? json_pack("{s:s}", "sops", r->sops) : json_pack("{s:s}", "secret", r->secret);
		if (r->version > 0)
			json_object_set_new(ref, "version", json_integer(r->version));
		if (r->file && !files)
			files = json_object();
		json_object_set_new(r->file ? files : env, r->target, ref);
	}
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
	/* only when there are some: a config without files keeps its digest */
	if (o && files)
		json_object_set_new(o, "files", files);
	else
		json_decref(files);
	/* a docker service has no run: no "run": null, which reads as a bad run */
	if (o && !c->run)
		json_object_del(o, "run");
	/* only when set: configs stored before the key existed read back the same */
	if (o && c->user)
		json_object_set_new(o, "user", json_string(c->user));
	if (o)
		delivery_to_json(o, c);
	if (o)
		docker_to_json(o, c);
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
	spec__free_strv(*vp, *np);
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
		/* only with a flag_off: configs stored before it read (and digest) the same */
		if (d->flag_off)
			json_object_set_new(json_array_get(an, json_array_size(an) - 1), "flag_off",
					    json_string(d->flag_off));
	}
	json_object_set_new(o, "analyses", an);
	json_object_set_new(o, "watch_ms", json_integer(c->watch_ms));
	json_object_set_new(o, "shield", json_boolean(c->shield));
	json_object_set_new(o, "tag_hosts", json_boolean(c->tag_hosts));
	json_object_set_new(o, "on_error", json_string(on_error_names_json[c->on_error]));
	/* only when on: configs stored before it read (and digest) the same */
	if (c->sticky.cookie)
		json_object_set_new(o, "sticky", json_pack("{s:s, s:I}", "cookie", c->sticky.cookie, "max_age_ms",
							   (json_int_t)c->sticky.max_age_ms));
	/* only with migrations: configs stored before them read the same */
	if (c->migrations.dir)
		json_object_set_new(o, "migrations",
				    json_pack("{s:s, s:s?, s:I, s:b, s:b}", "dir", c->migrations.dir,
					      "database_env", c->migrations.database_env, "lock_timeout_ms",
					      (json_int_t)c->migrations.lock_timeout_ms, "snapshot",
					      c->migrations.snapshot, "auto_down", c->migrations.auto_down));
	if (c->migrations.dir && c->migrations.mode && strcmp(c->migrations.mode, "online"))
		json_object_set_new(json_object_get(o, "migrations"), "mode", json_string(c->migrations.mode));
	if (c->migrations.dir && c->migrations.maintenance_message)
		json_object_set_new(json_object_get(o, "migrations"), "maintenance_message",
				    json_string(c->migrations.maintenance_message));
	if (c->migrations.dir && c->migrations.nallow) {
		/* the header and the secret's name, never its value */
		json_t *a = json_array();
		for (size_t i = 0; i < c->migrations.nallow; i++) {
			json_t *e = json_pack("{s:s, s:s}", "header", c->migrations.allow[i].header, "secret",
					      c->migrations.allow[i].secret);
			if (c->migrations.allow[i].version)
				json_object_set_new(e, "version", json_integer(c->migrations.allow[i].version));
			json_array_append_new(a, e);
		}
		json_object_set_new(json_object_get(o, "migrations"), "maintenance_allow", a);
	}
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
	spec__header_matches_release(*hp, *np);
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
	    j_intv(o, "analyses.", "error_limit", 0, 1000000, &d->error_limit, err) < 0 ||
	    j_str(o, "analyses.", "flag_off", true, &d->flag_off, err) < 0)
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
		     *an = json_object_get(j, "analyses"), *it, *mg, *al;
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
	if ((mg = json_object_get(j, "sticky"))) {
		if (!json_is_object(mg) || j_str(mg, "sticky.", "cookie", false, &c->sticky.cookie, err) < 0 ||
		    j_int(mg, "sticky.", "max_age_ms", 0, 400 * DAY_MS, &c->sticky.max_age_ms, err) < 0)
			return json_is_object(mg) ? -1 : gerr_set(err, "svc_config: 'sticky' must be an object");
		if (!c->sticky.cookie)
			return gerr_set(err, "svc_config: 'sticky.cookie' is missing");
	}
	if ((mg = json_object_get(j, "migrations"))) {
		if (!json_is_object(mg))
			return gerr_set(err, "svc_config: 'migrations' must be an object");
		if (j_str(mg, "migrations.", "dir", false, &c->migrations.dir, err) < 0 ||
		    j_str(mg, "migrations.", "database_env", true, &c->migrations.database_env, err) < 0 ||
		    j_int(mg, "migrations.", "lock_timeout_ms", 0, 100 * DAY_MS, &c->migrations.lock_timeout_ms, err) < 0 ||
		    j_bool(mg, "migrations.", "snapshot", &c->migrations.snapshot, err) < 0 ||
		    j_bool(mg, "migrations.", "auto_down", &c->migrations.auto_down, err) < 0 ||
		    j_str(mg, "migrations.", "mode", true, &c->migrations.mode, err) < 0 ||
		    j_str(mg, "migrations.", "maintenance_message", true, &c->migrations.maintenance_message, err) < 0)
			return -1;
		if ((al = json_object_get(mg, "maintenance_allow"))) {
			if (!json_is_array(al) || json_array_size(al) > SPEC_MAINT_ALLOW_MAX)
				return gerr_set(err, "svc_config: 'migrations.maintenance_allow' must be an array of at most %d",
						SPEC_MAINT_ALLOW_MAX);
			c->migrations.allow = xcalloc(json_array_size(al) + 1, sizeof(*c->migrations.allow));
			json_array_foreach(al, i, it) {
				struct mig_maint_allow *m = &c->migrations.allow[c->migrations.nallow];
				const char *h = json_string_value(json_object_get(it, "header"));
				const char *sn = json_string_value(json_object_get(it, "secret"));
				json_int_t ver = json_integer_value(json_object_get(it, "version"));
				if (!spec_maint_header_valid(h) || !secret_name_valid(sn) || ver < 0 || ver > 1000000000)
					return gerr_set(err, "svc_config: 'migrations.maintenance_allow[%zu]' is invalid", i);
				m->header = xstrdup(h);
				m->secret = xstrdup(sn);
				m->version = (int)ver;
				c->migrations.nallow++;
			}
		}
	}
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
	spec__svc_config_defaults(&c, "", "");
	free(c.service);
	free(c.environment);
	c.service = c.environment = NULL;
	if (j_str(j, "", "service", false, &c.service, err) < 0 ||
	    j_str(j, "", "environment", false, &c.environment, err) < 0 ||
	    j_str(j, "", "run", false, &c.run, err) < 0 ||
	    docker_from_json(j, &c, err) < 0 ||
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
	if (!c.service || !c.environment || (c.runtime == RUNTIME_PROCESS && !c.run)) {
		gerr_set(err, "svc_config: '%s' is required",
			 !c.service ? "service" : !c.environment ? "environment" : "run");
		goto out;
	}
	if (c.runtime == RUNTIME_DOCKER && !json_object_get(j, "user")) {
		/* a container without user: runs as its image's USER, not the host's workload user */
		free(c.user);
		c.user = NULL;
	}
	if (c.runtime == RUNTIME_DOCKER && !c.image && !c.image_build) {
		gerr_set(err, "svc_config: 'image' or 'image_build' is required with runtime docker");
		goto out;
	}
	if ((v = json_object_get(j, "env"))) {
		const json_t *ev;
		if (!json_is_object(v)) {
			gerr_set(err, "svc_config: 'env' must be an object of strings");
			goto out;
		}
		json_object_foreach((json_t *)v, key, ev) {
			if (json_is_object(ev) && spec__valid_env_key(key)) {
				if (secret_ref_from_json(&c, key, ev, false, err) < 0)
					goto out;
				continue;
			}
			if (!json_is_string(ev) || strlen(json_string_value(ev)) != json_string_length(ev) ||
			    !spec__valid_env_key(key)) {
				gerr_set(err, "svc_config: 'env.%.64s' must be a string under a valid name", key);
				goto out;
			}
			svc_config_set_env(&c, key, json_string_value(ev));
		}
	}
	if ((v = json_object_get(j, "files"))) {
		const json_t *ev;
		if (!json_is_object(v)) {
			gerr_set(err, "svc_config: 'files' must be an object");
			goto out;
		}
		json_object_foreach((json_t *)v, key, ev) {
			if (secret_ref_from_json(&c, key, ev, true, err) < 0)
				goto out;
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
/* the container fields                                                     */

static const char *const runtime_names_json[] = { "process", "docker" };

static void docker_to_json(json_t *o, const struct svc_config *c)
{
	if (c->runtime != RUNTIME_PROCESS)
		json_object_set_new(o, "runtime", json_string(runtime_names_json[c->runtime]));
	if (c->image)
		json_object_set_new(o, "image", json_string(c->image));
	if (c->image_build) {
		const struct image_build *b = c->image_build;
		json_t *args = json_object();
		for (size_t i = 0; i < b->nargs; i++)
			json_object_set_new(args, b->args[i].key, json_string(b->args[i].value));
		json_object_set_new(o, "image_build", json_pack("{s:s?, s:s?, s:o}", "dockerfile", b->dockerfile,
								"context", b->context, "args", args));
	}
	if (c->command)
		json_object_set_new(o, "command", strv_to_json(c->command, c->ncommand));
	if (c->entrypoint)
		json_object_set_new(o, "entrypoint", strv_to_json(c->entrypoint, c->nentrypoint));
	if (c->port)
		json_object_set_new(o, "port", json_integer(c->port));
	if (c->registry)
		json_object_set_new(o, "registry", json_string(c->registry));
	if (c->cluster.engine) {
		json_t *nodes = json_object();
		for (size_t i = 0; i < c->cluster.nnodes; i++)
			json_object_set_new(nodes, c->cluster.nodes[i].key, json_string(c->cluster.nodes[i].value));
		json_object_set_new(o, "cluster", json_pack("{s:s, s:s, s:s?, s:o}", "engine", c->cluster.engine,
							    "manager", c->cluster.manager, "network",
							    c->cluster.network, "nodes", nodes));
		if (c->cluster.proxy_port)
			json_object_set_new(json_object_get(o, "cluster"), "proxy",
					    json_pack("{s:i, s:i, s:s}", "port", c->cluster.proxy_port, "admin_port",
						      c->cluster.proxy_admin_port, "registry",
						      c->cluster.proxy_registry ? c->cluster.proxy_registry : ""));
	}
	if (c->placement.nconstraints || c->placement.spread) {
		json_t *p = json_object();
		if (c->placement.nconstraints)
			json_object_set_new(p, "constraints",
					    strv_to_json(c->placement.constraints, c->placement.nconstraints));
		if (c->placement.spread)
			json_object_set_new(p, "spread", json_string(c->placement.spread));
		json_object_set_new(o, "placement", p);
	}
}

/* "cluster": {"engine", "manager", "network", "nodes": {HOST: ENGINE}}, "placement": {"constraints", "spread"} */
static int cluster_from_json(const json_t *j, struct svc_config *c, struct gerr *err)
{
	const json_t *cl = json_object_get(j, "cluster"), *pl = json_object_get(j, "placement"), *nodes, *v;
	const char *key;

	if (cl) {
		if (!json_is_object(cl) || j_str(cl, "cluster.", "engine", false, &c->cluster.engine, err) < 0 ||
		    j_str(cl, "cluster.", "manager", false, &c->cluster.manager, err) < 0 ||
		    j_str(cl, "cluster.", "network", true, &c->cluster.network, err) < 0)
			return json_is_object(cl) ? -1 : gerr_set(err, "svc_config: 'cluster' must be an object");
		if (!c->cluster.engine || strcmp(c->cluster.engine, "swarm") || !c->cluster.manager)
			return gerr_set(err, "svc_config: 'cluster' needs engine swarm and a manager");
		if ((v = json_object_get(cl, "proxy"))) {
			json_t *pp = json_object_get(v, "port"), *pa = json_object_get(v, "admin_port");
			if (!json_is_object(v) || !json_is_integer(pp) || !json_is_integer(pa) ||
			    json_integer_value(pp) < 1 || json_integer_value(pp) > 65535 || json_integer_value(pa) < 1 ||
			    json_integer_value(pa) > 65535 || !json_is_string(json_object_get(v, "registry")))
				return gerr_set(err, "svc_config: 'cluster.proxy' must be {port, admin_port, registry}");
			c->cluster.proxy_port = (int)json_integer_value(pp);
			c->cluster.proxy_admin_port = (int)json_integer_value(pa);
			c->cluster.proxy_registry = xstrdup(json_string_value(json_object_get(v, "registry")));
		}
		if ((nodes = json_object_get(cl, "nodes"))) {
			if (!json_is_object(nodes))
				return gerr_set(err, "svc_config: 'cluster.nodes' must be an object of strings");
			json_object_foreach((json_t *)nodes, key, v) {
				if (!json_is_string(v))
					return gerr_set(err, "svc_config: 'cluster.nodes.%.64s' must be a string", key);
				c->cluster.nodes = xrealloc(c->cluster.nodes, (c->cluster.nnodes + 1) * sizeof(*c->cluster.nodes));
				c->cluster.nodes[c->cluster.nnodes].key = xstrdup(key);
				c->cluster.nodes[c->cluster.nnodes].value = xstrdup(json_string_value(v));
				c->cluster.nnodes++;
			}
		}
	}
	if (pl) {
		if (!json_is_object(pl) ||
		    j_strv(pl, "constraints", false, &c->placement.constraints, &c->placement.nconstraints, err) < 0 ||
		    j_str(pl, "placement.", "spread", false, &c->placement.spread, err) < 0)
			return json_is_object(pl) ? -1 : gerr_set(err, "svc_config: 'placement' must be an object");
	}
	return 0;
}

static int docker_from_json(const json_t *j, struct svc_config *c, struct gerr *err)
{
	const json_t *b = json_object_get(j, "image_build"), *args, *v;
	int rt = (int)c->runtime;
	char msg[256];
	size_t off;
	const char *key;

	if (j_kind(j, "", "runtime", runtime_names_json, ARRAY_SIZE(runtime_names_json), &rt, err) < 0 ||
	    j_str(j, "", "image", false, &c->image, err) < 0 ||
	    j_strv(j, "command", true, &c->command, &c->ncommand, err) < 0 ||
	    j_strv(j, "entrypoint", true, &c->entrypoint, &c->nentrypoint, err) < 0 ||
	    j_intv(j, "", "port", 1, 65535, &c->port, err) < 0 ||
	    j_str(j, "", "registry", false, &c->registry, err) < 0 || cluster_from_json(j, c, err) < 0)
		return -1;
	c->runtime = (enum svc_runtime)rt;
	if (c->image && spec__image_ref_check(c->image, &off, msg, sizeof(msg)) < 0)
		return gerr_set(err, "svc_config: 'image' is not an image reference: %s", msg);
	if (c->registry && spec__registry_check(c->registry, &off, msg, sizeof(msg)) < 0)
		return gerr_set(err, "svc_config: 'registry' is not HOST:PORT: %s", msg);
	if ((c->command && !c->ncommand) || (c->entrypoint && !c->nentrypoint))
		return gerr_set(err, "svc_config: '%s' must not be empty", c->command && !c->ncommand ? "command" : "entrypoint");
	if (!b)
		return 0;
	if (!json_is_object(b))
		return gerr_set(err, "svc_config: 'image_build' must be an object");
	spec__image_build_free(c->image_build);
	c->image_build = spec__image_build_new();
	if (j_str(b, "image_build.", "dockerfile", false, &c->image_build->dockerfile, err) < 0 ||
	    j_str(b, "image_build.", "context", false, &c->image_build->context, err) < 0)
		return -1;
	if (!(args = json_object_get(b, "args")))
		return 0;
	if (!json_is_object(args))
		return gerr_set(err, "svc_config: 'image_build.args' must be an object of strings");
	json_object_foreach((json_t *)args, key, v) {
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
		    !spec__valid_env_key(key))
			return gerr_set(err, "svc_config: 'image_build.args.%.64s' must be a string under a valid name", key);
		spec__image_build_set_arg(c->image_build, key, json_string_value(v));
	}
	return 0;
}
