/*
 * spec_delivery.c — the progressive-delivery keys of gantry.yaml: the
 * canary and blue-green strategies (steps, header matches, background
 * analysis, preview), named analyses and their metrics, rollback_on, and
 * what resolution adds per environment (templates, references between
 * them). Called by the walker of spec.c through core/spec-int.h; rollout/
 * interprets the result (docs/gantry.yaml.5.md, docs/internals/rollout.md).
 */
#include "common.h"
#include "core/spec.h"
#include "core/spec-int.h"
#include "core/condition.h"
#include "flags/flags.h"
#include "util/parse.h"
#include <math.h>

/* ------------------------------------------------------------------------ */
/* the key tables                                                           */

/* parsed by spec__apply_delivery and the apply_* functions below */
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

const struct keydef spec__analysis_keys[] = {
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
	{ "flag_off", KT_STR, offsetof(struct analysis_def, flag_off), 0, 0, NULL, NULL, 0,
	  "a flag of flags: a failure turns it off and pauses the rollout instead of rolling back" },
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

const struct keydef spec__canary_keys[] = {
	{ "steps", KT_STEPS, 0, 0, 0, NULL, canary_step_keys, 0, "the steps, in order" },
	{ "match", KT_MATCH, offsetof(struct canary_config, match), 0, 0, NULL, NULL, 0,
	  "{header: {NAME: VALUE}}: always route these to the canary" },
	{ "analysis", KT_CANARY_ANALYSIS, 0, 0, 0, NULL, canary_analysis_keys, 0,
	  "background analysis: NAME or {name, starting_step}" },
	END_KEYS
};

const struct keydef spec__bluegreen_keys[] = {
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


/* ------------------------------------------------------------------------ */
/* copying and releasing                                                    */

void spec__header_matches_release(struct header_match *h, size_t n)
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
	dst->flag_off = xstrdup_null(src->flag_off);
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
	free(d->flag_off);
	memset(d, 0, sizeof(*d));
}

static void canary_steps_release(struct canary_step *st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(st[i].analysis);
		spec__header_matches_release(st[i].headers, st[i].nheaders);
	}
	free(st);
}

void spec__delivery_release(struct svc_config *c)
{
	canary_steps_release(c->canary.steps, c->canary.nsteps);
	spec__header_matches_release(c->canary.match, c->canary.nmatch);
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


/* ------------------------------------------------------------------------ */
/* parsing: canary, blue-green, analyses, rollback_on                       */

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
	spec__report_at(w, n ? n->line : 0, n && n->line ? n->col + (n->plain ? 0 : 1) + ccol - 1 : 0,
		  "invalid condition \"%s\": %s", s, msg);
}

/* a rollback_on entry: a condition, optionally "then flag_off NAME" (flags/flags.h; the flag's
 * existence is checked by core/spec_flags.c) */
static void check_rollback_entry(struct walker *w, const struct ynode *n, const char *s)
{
	char cond[CONDITION_MAX_LEN * 2 + 1], flag[FLAG_NAME_MAX + 1];
	struct gerr err;
	if (flag_action_split(s, cond, sizeof(cond), flag, sizeof(flag), &err) < 0) {
		report(w, n, "invalid rollback_on action in \"%s\": %s", s, err.msg);
		return;
	}
	check_condition(w, n, cond, -1, false);
}

static void apply_condlist(struct walker *w, const struct keydef *d, const struct ynode *k, const struct ynode *v,
			   void *base)
{
	char ***vp = FIELD(base, d, char **);
	size_t *np = (size_t *)(void *)((char *)base + d->off + sizeof(char **));
	int before = w->nerr;

	spec__set_strlist(w, v, k, false, vp, np);
	if (w->nerr != before)
		return;
	for (size_t i = 0; i < *np && v && v->type == Y_SEQ && i < v->nkids; i++) {
		size_t old = spec__path_push(w, "[%zu]", i);
		check_rollback_entry(w, v->kids[i], (*vp)[i]);
		spec__path_pop(w, old);
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

	if (!spec__want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		if (!spec__key_ok(w, v, i))
			continue;
		if (strcmp(v->kids[i]->text, "header")) {
			static const char *const cands[] = { "header" };
			spec__report_unknown(w, v->kids[i], "key", cands, 1);
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
	old = spec__path_key(w, "header");
	if (spec__want_map(w, hv, hk, false)) {
		if (!hv->nkids)
			report(w, hv, "needs at least one header");
		h = xcalloc(hv->nkids / 2 + 1, sizeof(*h));
		for (size_t i = 0; i + 1 < hv->nkids; i += 2) {
			const struct ynode *nk = hv->kids[i], *nv = hv->kids[i + 1];
			const char *s;
			size_t o2;
			if (!spec__key_ok(w, hv, i))
				continue;
			o2 = spec__path_key(w, nk->text);
			if (!valid_header_name(nk->text)) {
				report(w, nk, "invalid header name '%s'", nk->text);
			} else if ((s = spec__want_scalar(w, nv, nk))) {
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
			spec__path_pop(w, o2);
		}
	}
	spec__path_pop(w, old);
	if (w->nerr != before) {
		spec__header_matches_release(h, n);
		return;
	}
	spec__header_matches_release(*hp, *np);
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
		size_t old = spec__path_push(w, "[%zu]", i), j;

		if (!spec__want_map(w, it, v, false))
			goto next;
		if (it->nkids != 2) {
			report(w, it, "a step has exactly one key: weight, pause, analysis, match or replicas");
			goto next;
		}
		sk = it->kids[0];
		if (!spec__key_ok(w, it, 0))
			goto next;
		for (j = 0; j < ARRAY_SIZE(step_names); j++)
			if (!strcmp(sk->text, step_names[j]))
				break;
		if (j == ARRAY_SIZE(step_names)) {
			spec__report_unknown(w, sk, "step", step_names, ARRAY_SIZE(step_names));
			goto next;
		}
		st->kind = (enum canary_step_kind)j;
		{
			int b2 = w->nerr;
			spec__walk_map(w, it, sk, canary_step_keys, st, MODE_BASE);
			if (w->nerr == b2) {
				n++;
			} else {
				free(st->analysis);
				spec__header_matches_release(st->headers, st->nheaders);
				memset(st, 0, sizeof(*st));
			}
		}
next:
		spec__path_pop(w, old);
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
		size_t old = spec__path_push(w, "[%zu]", i);
		int b2 = w->nerr, implied;
		int64_t for_ms;

		memset(m, 0, sizeof(*m));
		m->confidence = 0.98;
		m->timeout_ms = 10000;
		if (!spec__want_map(w, it, v, false))
			goto next;
		spec__walk_map(w, it, v, analysis_metric_keys, m, MODE_BASE);
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
			const char *fs = spec__want_scalar(w, forv, it);
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
			size_t o2 = spec__path_key(w, "fail_if");
			/* a `for:` is appended at the end: columns in fail_if stay right */
			check_condition(w, fv, m->fail_if, implied, m->compare_baseline);
			spec__path_pop(w, o2);
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
		spec__path_pop(w, old);
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
void spec__apply_analyses(struct walker *w, const struct ynode *k, const struct ynode *v, struct analysis_def **vp,
			   size_t *np)
{
	if (!spec__want_map(w, v, k, false))
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

		if (!spec__key_ok(w, v, i))
			continue;
		old = spec__path_key(w, ak->text);
		if (!spec__valid_name(ak->text)) {
			report(w, ak, "invalid analysis name '%s' (lowercase letters, digits and '-')", ak->text);
			goto next;
		}
		if (!spec__want_map(w, av, ak, false))
			goto next;
		d.interval_ms = 10000;
		d.error_limit = 4;
		spec__walk_map(w, av, ak, spec__analysis_keys, &d, MODE_BASE);
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
		spec__path_pop(w, old);
	}
}

static void apply_canary_analysis(struct walker *w, const struct ynode *k, const struct ynode *v,
				  struct canary_config *cc)
{
	const char *s;

	if (v && v->type == Y_MAP) {
		struct canary_config tmp = { 0 };
		int before = w->nerr;
		spec__walk_map(w, v, k, canary_analysis_keys, &tmp, MODE_BASE);
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
	if ((s = spec__want_scalar(w, v, k))) {
		free(cc->analysis);
		cc->analysis = xstrdup(s);
		cc->analysis_starting_step = 0;
	}
}

void spec__delivery_defaults(struct svc_config *c)
{
	free(c->bluegreen.preview_tag);
	c->bluegreen.preview_tag = xstrdup("preview");
	c->bluegreen.auto_promote = true;
	c->bluegreen.auto_promote_after_ms = 0;
	c->bluegreen.keep_previous_ms = 10 * 60 * 1000;
}

/* strategy: {canary: {...}} (a mapping or nothing); lists replace, so an override starts afresh */
void spec__apply_canary(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c)
{
	struct canary_config tmp = { 0 };
	int before = w->nerr;

	if (!y_is_null(v) || v->type != Y_SCALAR) {
		if (!spec__want_map(w, v, k, true))
			return;
		spec__walk_map(w, v, k, spec__canary_keys, &tmp, MODE_BASE);
	}
	if (w->nerr != before) {
		canary_steps_release(tmp.steps, tmp.nsteps);
		spec__header_matches_release(tmp.match, tmp.nmatch);
		free(tmp.analysis);
		return;
	}
	canary_steps_release(c->canary.steps, c->canary.nsteps);
	spec__header_matches_release(c->canary.match, c->canary.nmatch);
	free(c->canary.analysis);
	c->canary = tmp;
}

void spec__apply_bluegreen(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c)
{
	struct svc_config tmp = { 0 };
	int before = w->nerr;

	spec__delivery_defaults(&tmp);
	if (!y_is_null(v) || v->type != Y_SCALAR) {
		if (spec__want_map(w, v, k, true))
			spec__walk_map(w, v, k, spec__bluegreen_keys, &tmp.bluegreen, MODE_BASE);
	}
	if (w->nerr == before && tmp.bluegreen.preview_tag && !spec__valid_name(tmp.bluegreen.preview_tag))
		report(w, y_lookup(v, "preview_tag", NULL), "invalid preview_tag '%s' (a host name label: lowercase letters, digits and '-')",
		       tmp.bluegreen.preview_tag);
	if (w->nerr != before) {
		spec__delivery_release(&tmp);
		return;
	}
	free(c->bluegreen.preview_tag);
	free(c->bluegreen.pre_promotion_analysis);
	free(c->bluegreen.post_promotion_analysis);
	c->bluegreen = tmp.bluegreen;
}

void spec__apply_delivery(struct walker *w, const struct keydef *d, const struct ynode *k, const struct ynode *v,
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
		if ((s = spec__want_scalar(w, v, k)))
			apply_bool(w, d, v, s, base);
		return;
	case KT_ONERROR:
		if ((s = spec__want_scalar(w, v, k)) && (i = want_choice(w, v, s, on_error_names, 2)) >= 0)
			*FIELD(base, d, enum on_error_policy) = (enum on_error_policy)i;
		return;
	case KT_PROVIDER:
		if ((s = spec__want_scalar(w, v, k)) && (i = want_choice(w, v, s, provider_names, 4)) >= 0)
			*FIELD(base, d, enum metric_provider) = (enum metric_provider)i;
		return;
	case KT_COMPARE:
		if ((s = spec__want_scalar(w, v, k)) && want_choice(w, v, s, compare_names, 1) >= 0)
			*FIELD(base, d, bool) = true;
		return;
	case KT_METHOD:
		if ((s = spec__want_scalar(w, v, k)) && want_choice(w, v, s, method_names, 1) >= 0)
			*FIELD(base, d, bool) = true;
		return;
	case KT_CONFIDENCE:
		if ((s = spec__want_scalar(w, v, k))) {
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
		spec__apply_analyses(w, k, v, &c->analyses, &c->nanalyses);
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
		} else if ((s = spec__want_scalar(w, v, k))) {
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
void spec__resolve_delivery(struct walker *w, const struct spec *spec, const struct spec_service *s,
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
		spec__apply_analyses(&quiet, tk, tv, &tpl, &ntpl);
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
			size_t old = spec__path_push(w, "services.%s.%s", s->name, where[i]);
			spec__report_at(w, s->line, s->col,
				  "no analysis '%s' in environment '%s' (define it under services.%s.analysis or analysis_templates)",
				  refs[i], e->name, s->name);
			spec__path_pop(w, old);
		}
	}
}

