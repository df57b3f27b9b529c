/*
 * analysis.c — analysis runs (see analysis.h for the semantics).
 */
#include "common.h"
#include "rollout/analysis.h"
#include "rollout/stats.h"
#include <inttypes.h>
#include <jansson.h>
#include <math.h>

/* Mann-Whitney's normal approximation needs this many samples per side */
#define MWU_MIN_SAMPLES 8

static const char *const phase_names[] = { "running", "successful", "failed", "inconclusive", "error" };
static const char *const meas_names[] = { "successful", "failed", "inconclusive", "error" };

const char *analysis_phase_name(enum analysis_phase p)
{
	return (unsigned)p < ARRAY_SIZE(phase_names) ? phase_names[p] : "?";
}

int analysis_phase_from_name(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(phase_names); i++)
		if (!strcmp(s, phase_names[i]))
			return (int)i;
	return -1;
}

const char *meas_phase_name(enum meas_phase p)
{
	return (unsigned)p < ARRAY_SIZE(meas_names) ? meas_names[p] : "?";
}

double builtin_metric_value(enum cond_metric m, const struct rev_window *w)
{
	if (!w)
		return NAN;
	switch (m) {
	case CM_ERROR_RATE: return window_error_rate(w);
	case CM_AVAILABILITY: return window_availability(w);
	case CM_REQUEST_RATE: return window_request_rate(w);
	case CM_LATENCY_P50:
	case CM_LATENCY_P90:
	case CM_LATENCY_P95:
	case CM_LATENCY_P99: return window_quantile(w, cond_metric_quantile(m));
	default: return NAN;
	}
}

void analysis_input_from_windows(struct analysis_input *in, enum cond_metric m, const struct rev_window *canary,
				 const struct rev_window *baseline)
{
	memset(in, 0, sizeof(*in));
	in->value = builtin_metric_value(m, canary);
	in->baseline = builtin_metric_value(m, baseline);
	in->requests = canary ? canary->requests : 0;
	in->baseline_requests = baseline ? baseline->requests : 0;
	in->canary_window = canary;
	in->baseline_window = baseline;
}

/* the condition of metric am: fail_if, with the metric implied by a builtin query */
static int parse_metric_condition(const struct analysis_metric *am, struct condition *c, struct gerr *err)
{
	/* a builtin query names the metric; another provider's number is a plain value */
	int implied = am->query && am->provider == PROVIDER_BUILTIN ? cond_metric_from_name(am->query)
		      : am->provider != PROVIDER_BUILTIN ? CM_VALUE : -1;
	struct gerr e2;

	if (!am->fail_if)
		return gerr_set(err, "metric '%s': no fail_if condition", am->name ? am->name : "?");
	if (condition_parse_implied(am->fail_if, implied, am->compare_baseline, c, &e2) < 0)
		return gerr_set(err, "metric '%s': fail_if: %s", am->name ? am->name : "?", e2.msg);
	return 0;
}

int analysis_run_init(struct analysis_run *r, const struct analysis_def *def, int revision, int64_t now,
		      struct gerr *err)
{
	int ret = -1;

	memset(r, 0, sizeof(*r));
	analysis_def_copy(&r->def, def);
	r->revision = revision;
	r->started_ms = now;
	r->next_ms = now + MAX(def->initial_delay_ms, 0);
	r->phase = AN_RUNNING;
	if (!def->nmetrics) {
		gerr_set(err, "analysis '%s' has no metric", def->name ? def->name : "?");
		goto out;
	}
	r->m = xcalloc(def->nmetrics, sizeof(*r->m));
	r->meas_cap = def->nmetrics * ANALYSIS_KEEP_ROUNDS;
	r->meas = xcalloc(r->meas_cap, sizeof(*r->meas));
	for (size_t i = 0; i < def->nmetrics; i++) {
		const struct analysis_metric *am = &def->metrics[i];
		struct condition c;
		if (parse_metric_condition(am, &c, err) < 0)
			goto out;
		cond_eval_init(&r->m[i].eval, &c);
		r->m[i].eval.min_requests = am->min_requests > 0 ? (uint64_t)am->min_requests : 0;
		/* a missed round (controller down) breaks a for-window */
		if (def->interval_ms > 0)
			r->m[i].eval.max_gap_ms = 3 * def->interval_ms;
	}
	ret = 0;
out:
	if (ret < 0)
		analysis_run_release(r);
	return ret;
}

void analysis_run_release(struct analysis_run *r)
{
	if (!r)
		return;
	analysis_def_release(&r->def);
	free(r->m);
	free(r->meas);
	memset(r, 0, sizeof(*r));
}

int64_t analysis_run_next_due(const struct analysis_run *r)
{
	return r->phase == AN_RUNNING ? r->next_ms : INT64_MAX;
}

const struct measurement *analysis_run_measurement(const struct analysis_run *r, uint64_t i)
{
	if (i >= r->nmeas || i < r->first_kept || r->nmeas - i > r->meas_cap)
		return NULL;
	return &r->meas[i % r->meas_cap];
}

static struct measurement *new_measurement(struct analysis_run *r)
{
	struct measurement *m = &r->meas[r->nmeas % r->meas_cap];
	r->nmeas++;
	memset(m, 0, sizeof(*m));
	m->value = m->baseline = m->p = NAN;
	return m;
}

static bool mann_whitney_applies(const struct analysis_metric *am, const struct condition *c)
{
	return am->mann_whitney && c->rhs != CR_VALUE;
}

/* measures metric i into m */
static void measure_one(struct analysis_run *r, size_t i, const struct analysis_input *in, struct measurement *m)
{
	const struct analysis_metric *am = &r->def.metrics[i];
	struct analysis_metric_state *st = &r->m[i];
	struct cond_eval *e = &st->eval;
	const struct condition *c = &e->cond;
	struct cond_sample s = { .t_ms = m->t_ms, .value = in->value, .baseline = in->baseline,
				 .requests = in->requests, .baseline_requests = in->baseline_requests };
	char desc[160];

	m->value = in->value;
	m->baseline = in->baseline;
	if (in->error) {
		m->phase = MEAS_ERROR;
		snprintf(m->msg, sizeof(m->msg), "%s: cannot measure: %.150s", am->name, in->error);
		return;
	}
	if (mann_whitney_applies(am, c)) {
		struct mwu_result res;
		struct gerr err;
		double conf = am->confidence > 0 && am->confidence < 1 ? am->confidence : 0.98;
		const struct rev_window *cw = in->canary_window, *bw = in->baseline_window;
		uint64_t nc = cw ? window_latency_count(cw) : 0, nb = bw ? window_latency_count(bw) : 0;
		bool holds;

		(void)cond_eval_feed(e, &s); /* keeps the last values for the description */
		if (nc < MAX((uint64_t)MWU_MIN_SAMPLES, e->min_requests) ||
		    nb < MAX((uint64_t)MWU_MIN_SAMPLES, e->min_requests) || isnan(in->value) || isnan(in->baseline)) {
			m->phase = MEAS_INCONCLUSIVE;
			snprintf(m->msg, sizeof(m->msg), "%s: too little data (%" PRIu64 " canary and %" PRIu64
				 " baseline samples, need %" PRIu64 ")", am->name, nc, nb,
				 MAX((uint64_t)MWU_MIN_SAMPLES, e->min_requests));
			return;
		}
		if (mwu_test_windows(cw, bw, MWU_GREATER, &res, &err) < 0) {
			m->phase = MEAS_INCONCLUSIVE;
			snprintf(m->msg, sizeof(m->msg), "%s: %.150s", am->name, err.msg);
			return;
		}
		m->p = res.p;
		holds = condition_holds(c, in->value, in->baseline);
		cond_eval_describe(e, "canary", r->revision, desc, sizeof(desc));
		if (holds && res.p < 1 - conf) {
			m->phase = MEAS_FAILED;
			snprintf(m->msg, sizeof(m->msg), "%s, mann-whitney p=%.3g < %.3g", desc, res.p, 1 - conf);
		} else {
			m->phase = MEAS_SUCCESSFUL;
			snprintf(m->msg, sizeof(m->msg), "%s: %s (mann-whitney p=%.3g)", am->name,
				 holds ? "higher but not significantly" : "within the threshold", res.p);
		}
		return;
	}
	switch (cond_eval_feed(e, &s)) {
	case COND_NO_DATA:
		m->phase = MEAS_INCONCLUSIVE;
		if (e->min_requests && cond_metric_needs_requests(c->metric) && !isnan(in->value))
			snprintf(m->msg, sizeof(m->msg), "%s: too little data (%" PRIu64 " requests, need %" PRIu64 ")",
				 am->name, in->requests, e->min_requests);
		else
			snprintf(m->msg, sizeof(m->msg), "%s: no data", am->name);
		break;
	case COND_CLEAR:
	case COND_HOLDS:
		m->phase = MEAS_SUCCESSFUL;
		cond_eval_describe(e, "canary", r->revision, desc, sizeof(desc));
		snprintf(m->msg, sizeof(m->msg), "%s: ok (%s)", am->name, desc);
		break;
	case COND_BREACHED:
		m->phase = MEAS_FAILED;
		cond_eval_describe(e, "canary", r->revision, desc, sizeof(desc));
		/* a provider's plain `value` says nothing by itself: name the metric */
		if (c->metric == CM_VALUE)
			snprintf(m->msg, sizeof(m->msg), "%s: %s", am->name, desc);
		else
			snprintf(m->msg, sizeof(m->msg), "%s", desc);
		break;
	}
}

/* measure_one, and a pass that cannot be trusted (in->no_pass) made inconclusive */
static void measure(struct analysis_run *r, size_t i, const struct analysis_input *in, struct measurement *m)
{
	measure_one(r, i, in, m);
	if (in->no_pass && m->phase == MEAS_SUCCESSFUL) {
		char was[MEASUREMENT_MSG_LEN];
		m->phase = MEAS_INCONCLUSIVE;
		strlcpy_g(was, m->msg, sizeof(was));
		snprintf(m->msg, sizeof(m->msg), "%.90s: inconclusive: %.60s", was, in->no_pass);
	}
}

static void update_metric(struct analysis_run *r, size_t i, const struct measurement *m)
{
	struct analysis_metric_state *st = &r->m[i];
	const struct analysis_def *d = &r->def;

	st->measured++;
	switch (m->phase) {
	case MEAS_SUCCESSFUL: st->successes++; st->consecutive_errors = 0; break;
	case MEAS_FAILED: st->failures++; st->consecutive_errors = 0; break;
	case MEAS_INCONCLUSIVE: st->inconclusives++; st->consecutive_errors = 0; break;
	case MEAS_ERROR: st->errors++; st->consecutive_errors++; break;
	}
	if (st->failures > d->failure_limit) {
		st->phase = AN_FAILED;
		snprintf(st->reason, sizeof(st->reason), "%s (failed %d time%s, failure_limit %d)", m->msg,
			 st->failures, st->failures == 1 ? "" : "s", d->failure_limit);
	} else if (st->consecutive_errors > d->error_limit) {
		st->phase = AN_ERROR;
		snprintf(st->reason, sizeof(st->reason), "%s (%d errors in a row, error_limit %d)", m->msg,
			 st->consecutive_errors, d->error_limit);
	} else if (st->inconclusives > d->inconclusive_limit) {
		st->phase = AN_INCONCLUSIVE;
		snprintf(st->reason, sizeof(st->reason), "%s (inconclusive %d time%s, inconclusive_limit %d)", m->msg,
			 st->inconclusives, st->inconclusives == 1 ? "" : "s", d->inconclusive_limit);
	}
}

enum analysis_phase analysis_run_round(struct analysis_run *r, int64_t now, const struct analysis_input *inputs)
{
	enum analysis_phase worst = AN_RUNNING;

	if (r->phase != AN_RUNNING)
		return r->phase;
	r->rounds++;
	for (size_t i = 0; i < r->def.nmetrics; i++) {
		struct measurement *m;
		if (r->m[i].phase != AN_RUNNING)
			continue;
		m = new_measurement(r);
		m->t_ms = now;
		m->round = r->rounds;
		m->metric = i;
		measure(r, i, &inputs[i], m);
		update_metric(r, i, m);
	}
	/* failed beats error beats inconclusive: the most serious verdict decides */
	for (size_t i = 0; i < r->def.nmetrics; i++) {
		enum analysis_phase p = r->m[i].phase;
		if (p == AN_FAILED || (p == AN_ERROR && worst != AN_FAILED) ||
		    (p == AN_INCONCLUSIVE && worst == AN_RUNNING))
			worst = p;
	}
	if (worst != AN_RUNNING) {
		/* the reason is the first metric's with the deciding verdict */
		for (size_t i = 0; i < r->def.nmetrics; i++)
			if (r->m[i].phase == worst) {
				snprintf(r->reason, sizeof(r->reason), "%s", r->m[i].reason);
				break;
			}
		r->phase = worst;
		return r->phase;
	}
	if (r->def.count > 0 && r->rounds >= r->def.count) {
		/* the round that would end it as a pass must be trusted: below the
		 * fleet's quorum it ends inconclusive instead (never a pass) */
		for (size_t i = 0; i < r->def.nmetrics; i++)
			if (inputs[i].no_pass) {
				r->phase = AN_INCONCLUSIVE;
				snprintf(r->reason, sizeof(r->reason), "%d measurement%s of %zu metric%s passed or "
					 "were inconclusive, the last one inconclusive: %.100s", r->rounds,
					 r->rounds == 1 ? "" : "s", r->def.nmetrics, r->def.nmetrics == 1 ? "" : "s",
					 inputs[i].no_pass);
				return r->phase;
			}
		r->phase = AN_SUCCESSFUL;
		snprintf(r->reason, sizeof(r->reason), "%d measurement%s of %zu metric%s passed", r->rounds,
			 r->rounds == 1 ? "" : "s", r->def.nmetrics, r->def.nmetrics == 1 ? "" : "s");
		return r->phase;
	}
	r->next_ms = (r->def.interval_ms > 0 ? MAX(r->next_ms, now - r->def.interval_ms) + r->def.interval_ms
					     : now + 10000);
	if (r->next_ms <= now)
		r->next_ms = now + MAX(r->def.interval_ms, 1);
	return r->phase;
}

enum analysis_phase analysis_run_stop(struct analysis_run *r, int64_t now)
{
	(void)now;
	if (r->phase == AN_RUNNING) {
		r->phase = AN_SUCCESSFUL;
		snprintf(r->reason, sizeof(r->reason), "stopped after %d round%s without a failure", r->rounds,
			 r->rounds == 1 ? "" : "s");
	}
	return r->phase;
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */

json_t *analysis_run_to_json(const struct analysis_run *r)
{
	json_t *ms = json_array();

	for (size_t i = 0; i < r->def.nmetrics; i++) {
		const struct analysis_metric_state *st = &r->m[i];
		json_array_append_new(ms, json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:b, s:I, s:b, s:I}",
						    "name", r->def.metrics[i].name ? r->def.metrics[i].name : "",
						    "measured", st->measured, "successes", st->successes,
						    "failures", st->failures, "inconclusives", st->inconclusives,
						    "errors", st->errors, "consecutive_errors", st->consecutive_errors,
						    "phase", analysis_phase_name(st->phase), "in_run", st->eval.in_run,
						    "run_start_ms", (json_int_t)st->eval.run_start_ms, "have_last",
						    st->eval.have_last, "last_ms", (json_int_t)st->eval.last_ms));
	}
	return json_pack("{s:s, s:i, s:I, s:I, s:i, s:s, s:s, s:I, s:o}", "analysis",
			 r->def.name ? r->def.name : "", "revision", r->revision, "started_ms",
			 (json_int_t)r->started_ms, "next_ms", (json_int_t)r->next_ms, "rounds", r->rounds, "phase",
			 analysis_phase_name(r->phase), "reason", r->reason, "measurements", (json_int_t)r->nmeas,
			 "metrics", ms);
}

static int j_int_at(const json_t *o, const char *key, int64_t min, int64_t max, int64_t *out, struct gerr *err)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return gerr_set(err, "analysis run: '%s' must be an integer between %" PRId64 " and %" PRId64, key,
				min, max);
	*out = json_integer_value(v);
	return 0;
}

int analysis_run_from_json(struct analysis_run *r, const struct analysis_def *def, const json_t *j,
			   struct gerr *err)
{
	int64_t v[6];
	const json_t *ms, *m;
	const char *phase, *reason, *name;
	int ph;
	size_t i;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(j))
		return gerr_set(err, "analysis run: expected an object");
	if (json_unpack((json_t *)j, "{s:s, s:s, s:s, s:o}", "analysis", &name, "phase", &phase, "reason", &reason,
			"metrics", &ms) < 0 || !json_is_array(ms))
		return gerr_set(err, "analysis run: 'analysis', 'phase', 'reason' and 'metrics' are required");
	if (strcmp(name, def->name ? def->name : ""))
		return gerr_set(err, "analysis run: of analysis '%.64s', not '%.64s'", name, def->name ? def->name : "");
	if ((ph = analysis_phase_from_name(phase)) < 0)
		return gerr_set(err, "analysis run: unknown phase '%.32s'", phase);
	if (j_int_at(j, "revision", 0, INT_MAX, &v[0], err) < 0 ||
	    j_int_at(j, "started_ms", INT64_MIN, INT64_MAX, &v[1], err) < 0 ||
	    j_int_at(j, "next_ms", INT64_MIN, INT64_MAX, &v[2], err) < 0 ||
	    j_int_at(j, "rounds", 0, INT_MAX, &v[3], err) < 0 ||
	    j_int_at(j, "measurements", 0, INT64_MAX, &v[4], err) < 0)
		return -1;
	if (json_array_size(ms) != def->nmetrics)
		return gerr_set(err, "analysis run: %zu metrics, the analysis has %zu", json_array_size(ms),
				def->nmetrics);
	if (analysis_run_init(r, def, (int)v[0], v[1], err) < 0)
		return -1;
	r->next_ms = v[2];
	r->rounds = (int)v[3];
	r->phase = (enum analysis_phase)ph;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	json_array_foreach(ms, i, m) {
		struct analysis_metric_state *st = &r->m[i];
		int64_t c[7], rs, lm;
		const char *mp;
		int mph;
		const json_t *inrun = json_object_get(m, "in_run"), *hl = json_object_get(m, "have_last");
		if (!json_is_object(m) || j_int_at(m, "measured", 0, INT_MAX, &c[0], err) < 0 ||
		    j_int_at(m, "successes", 0, INT_MAX, &c[1], err) < 0 ||
		    j_int_at(m, "failures", 0, INT_MAX, &c[2], err) < 0 ||
		    j_int_at(m, "inconclusives", 0, INT_MAX, &c[3], err) < 0 ||
		    j_int_at(m, "errors", 0, INT_MAX, &c[4], err) < 0 ||
		    j_int_at(m, "consecutive_errors", 0, INT_MAX, &c[5], err) < 0 ||
		    j_int_at(m, "run_start_ms", INT64_MIN, INT64_MAX, &rs, err) < 0 ||
		    j_int_at(m, "last_ms", INT64_MIN, INT64_MAX, &lm, err) < 0)
			goto bad;
		if (!json_is_string(json_object_get(m, "phase")) || !json_is_boolean(inrun) || !json_is_boolean(hl) ||
		    (mph = analysis_phase_from_name((mp = json_string_value(json_object_get(m, "phase"))))) < 0) {
			gerr_set(err, "analysis run: metrics[%zu]: bad 'phase', 'in_run' or 'have_last'", i);
			goto bad;
		}
		st->measured = (int)c[0];
		st->successes = (int)c[1];
		st->failures = (int)c[2];
		st->inconclusives = (int)c[3];
		st->errors = (int)c[4];
		st->consecutive_errors = (int)c[5];
		st->phase = (enum analysis_phase)mph;
		st->eval.in_run = json_is_true(inrun);
		st->eval.run_start_ms = rs;
		st->eval.have_last = json_is_true(hl);
		st->eval.last_ms = lm;
	}
	/* the ring restarts empty: older measurements are in the controller's store */
	r->nmeas = r->first_kept = (uint64_t)v[4];
	return 0;
bad:
	analysis_run_release(r);
	return -1;
}

json_t *measurement_to_json(const struct measurement *m, const struct analysis_run *r)
{
	const char *name = m->metric < r->def.nmetrics && r->def.metrics[m->metric].name ? r->def.metrics[m->metric].name : "";
	json_t *o = json_pack("{s:s, s:s, s:I, s:i, s:s, s:s}", "analysis", r->def.name ? r->def.name : "", "metric",
			      name, "t_ms", (json_int_t)m->t_ms, "round", m->round, "phase", meas_phase_name(m->phase),
			      "message", m->msg);
	json_object_set_new(o, "value", isfinite(m->value) ? json_real(m->value) : json_null());
	json_object_set_new(o, "baseline", isfinite(m->baseline) ? json_real(m->baseline) : json_null());
	json_object_set_new(o, "p", isfinite(m->p) ? json_real(m->p) : json_null());
	return o;
}
