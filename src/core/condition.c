/*
 * condition.c — parser and evaluator of the condition language (condition.h).
 */
#include "common.h"
#include "core/condition.h"
#include "core/diag.h"
#include "util/parse.h"
#include <math.h>

static const char *const metric_names[CM__COUNT] = {
	[CM_ERROR_RATE] = "error_rate",   [CM_AVAILABILITY] = "availability", [CM_REQUEST_RATE] = "request_rate",
	[CM_LATENCY_P50] = "latency_p50", [CM_LATENCY_P90] = "latency_p90",   [CM_LATENCY_P95] = "latency_p95",
	[CM_LATENCY_P99] = "latency_p99", [CM_RESTARTS] = "restarts",         [CM_READY_RATIO] = "ready_ratio",
	[CM_VALUE] = "value",             [CM_MEMORY] = "memory",             [CM_CPU] = "cpu",
};

static const char *const op_names[] = { ">", ">=", "<", "<=" };

const char *cond_metric_name(enum cond_metric m)
{
	return (unsigned)m < CM__COUNT ? metric_names[m] : NULL;
}

int cond_metric_from_name(const char *name)
{
	for (int i = 0; i < CM__COUNT; i++)
		if (!strcmp(name, metric_names[i]))
			return i;
	return -1;
}

double cond_metric_quantile(enum cond_metric m)
{
	switch (m) {
	case CM_LATENCY_P50: return 0.50;
	case CM_LATENCY_P90: return 0.90;
	case CM_LATENCY_P95: return 0.95;
	case CM_LATENCY_P99: return 0.99;
	default: return NAN;
	}
}

static bool is_pct_metric(enum cond_metric m)
{
	return m == CM_ERROR_RATE || m == CM_AVAILABILITY || m == CM_READY_RATIO || m == CM_MEMORY || m == CM_CPU;
}

static bool is_latency(enum cond_metric m)
{
	return m >= CM_LATENCY_P50 && m <= CM_LATENCY_P99;
}

bool cond_metric_needs_requests(enum cond_metric m)
{
	return m == CM_ERROR_RATE || m == CM_AVAILABILITY || is_latency(m);
}

const char *cond_format_value(enum cond_metric m, double v, char *buf, size_t len)
{
	if (isnan(v))
		snprintf(buf, len, "no data");
	else if (is_pct_metric(m))
		snprintf(buf, len, "%.4g%%", v * 100);
	else if (is_latency(m) && fabs(v) >= 1000)
		snprintf(buf, len, "%.4gs", v / 1000);
	else if (is_latency(m))
		snprintf(buf, len, "%.4gms", v);
	else
		snprintf(buf, len, "%.4g", v);
	return buf;
}

const char *cond_verdict_name(enum cond_verdict v)
{
	switch (v) {
	case COND_NO_DATA: return "no_data";
	case COND_CLEAR: return "clear";
	case COND_HOLDS: return "holds";
	case COND_BREACHED: return "breached";
	}
	return "?";
}

/* ------------------------------------------------------------------------ */
/* parsing                                                                  */

struct lexer {
	const char *s; /* borrowed */
	size_t pos;
};

static void skip_space(struct lexer *l)
{
	while (l->s[l->pos] == ' ' || l->s[l->pos] == '\t')
		l->pos++;
}

static int col(const struct lexer *l)
{
	return (int)l->pos + 1;
}

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* the word at the cursor (letters, digits, '_') into buf; its length (0: none) */
static size_t peek_word(const struct lexer *l, char *buf, size_t len)
{
	size_t n = 0;
	while (is_word_char(l->s[l->pos + n]))
		n++;
	if (buf && len) {
		size_t c = MIN(n, len - 1);
		memcpy(buf, l->s + l->pos, c);
		buf[c] = 0;
	}
	return n;
}

/* the token at the cursor for messages: up to the next space, at most 24 bytes */
static const char *token_at(const struct lexer *l, char *buf, size_t len)
{
	size_t n = 0;
	while (l->s[l->pos + n] && l->s[l->pos + n] != ' ' && l->s[l->pos + n] != '\t' && n < 24)
		n++;
	if (!n)
		return "the end";
	snprintf(buf, len, "'%.*s'", (int)n, l->s + l->pos);
	return buf;
}

/* DIGITS[.DIGITS], no sign, no exponent; advances */
static int read_number(struct lexer *l, double *out)
{
	const char *s = l->s + l->pos;
	size_t n = 0, digits = 0;
	char buf[48];

	while (s[n] >= '0' && s[n] <= '9')
		n++, digits++;
	if (!digits)
		return -1;
	if (s[n] == '.') {
		size_t f = 0;
		n++;
		while (s[n] >= '0' && s[n] <= '9')
			n++, f++;
		if (!f)
			return -1;
	}
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	*out = strtod(buf, NULL);
	if (!isfinite(*out))
		return -1;
	l->pos += n;
	return 0;
}

/*
 * A VALUE with m's unit at the cursor, into the base unit. delta: a
 * percentage may exceed 100 (no: percentage points stay within 0..100 too).
 */
static int read_value(struct lexer *l, enum cond_metric m, double *out, struct gerr *err)
{
	size_t start = l->pos;
	double v;
	char tok[40];

	if (read_number(l, &v) < 0)
		return gerr_set(err, "col %d: expected a number, got %s", col(l), token_at(l, tok, sizeof(tok)));
	if (is_pct_metric(m)) {
		if (l->s[l->pos] != '%') {
			l->pos = start;
			return gerr_set(err, "col %d: %s needs a percentage (e.g. 5%%), got %s", col(l),
					metric_names[m], token_at(l, tok, sizeof(tok)));
		}
		l->pos++;
		/* cpu without a limit counts against one core: 250% is 2.5 cores */
		if (v > 100 && m != CM_CPU) {
			l->pos = start;
			return gerr_set(err, "col %d: a percentage is at most 100%%", col(l));
		}
		*out = v / 100;
	} else if (is_latency(m)) {
		if (!strncmp(l->s + l->pos, "ms", 2) && !is_word_char(l->s[l->pos + 2])) {
			l->pos += 2;
			*out = v;
		} else if (l->s[l->pos] == 's' && !is_word_char(l->s[l->pos + 1])) {
			l->pos += 1;
			*out = v * 1000;
		} else {
			l->pos = start;
			return gerr_set(err, "col %d: %s needs a duration with its unit (e.g. 500ms or 1.5s), got %s",
					col(l), metric_names[m], token_at(l, tok, sizeof(tok)));
		}
	} else {
		if (is_word_char(l->s[l->pos]) || l->s[l->pos] == '%') {
			size_t at = l->pos;
			l->pos = start;
			gerr_set(err, "col %d: %s takes a plain number (%s), got %s", (int)at + 1, metric_names[m],
				 m == CM_RESTARTS ? "a count" : m == CM_VALUE ? "no unit" : "requests per second", token_at(l, tok, sizeof(tok)));
			return -1;
		}
		*out = v;
	}
	return 0;
}

static void copy_span(char *dst, size_t len, const char *s, size_t from, size_t to)
{
	while (to > from && (s[to - 1] == ' ' || s[to - 1] == '\t'))
		to--;
	snprintf(dst, len, "%.*s", (int)(to - from), s + from);
}

int condition_parse_implied(const char *s, int implied_metric, bool implied_baseline, struct condition *out,
			    struct gerr *err)
{
	struct lexer l = { s, 0 };
	struct condition c;
	char word[64], tok[40];
	size_t n, rhs_start;
	int m;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	if (strlen(s) > CONDITION_MAX_LEN)
		return gerr_set(err, "col %d: a condition is at most %d characters", CONDITION_MAX_LEN + 1,
				CONDITION_MAX_LEN);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return gerr_set(err, "col %d: control character in the condition", (int)(p - s) + 1);
	skip_space(&l);
	/* METRIC */
	n = peek_word(&l, word, sizeof(word));
	if (!n && implied_metric >= 0 && implied_metric < CM__COUNT && strchr("<>", s[l.pos]) && s[l.pos]) {
		m = implied_metric;
	} else if (!n) {
		return gerr_set(err, "col %d: expected a metric (error_rate, availability, request_rate, latency_p50/p90/p95/p99, restarts, ready_ratio, memory, cpu, value), got %s",
				col(&l), token_at(&l, tok, sizeof(tok)));
	} else if ((m = cond_metric_from_name(word)) < 0) {
		const char *sug = diag_suggest(word, metric_names, CM__COUNT);
		if (sug)
			return gerr_set(err, "col %d: unknown metric '%s' (did you mean '%s'?)", col(&l), word, sug);
		return gerr_set(err, "col %d: unknown metric '%s' (expected error_rate, availability, request_rate, latency_p50/p90/p95/p99, restarts, ready_ratio, memory, cpu or value)",
				col(&l), word);
	} else {
		l.pos += n;
	}
	c.metric = (enum cond_metric)m;
	/* OP */
	skip_space(&l);
	if (s[l.pos] == '>' || s[l.pos] == '<') {
		bool gt = s[l.pos] == '>';
		l.pos++;
		if (s[l.pos] == '=') {
			l.pos++;
			c.op = gt ? CO_GE : CO_LE;
		} else {
			c.op = gt ? CO_GT : CO_LT;
		}
	} else {
		return gerr_set(err, "col %d: expected an operator (>, >=, <, <=) after '%s', got %s", col(&l),
				metric_names[m], token_at(&l, tok, sizeof(tok)));
	}
	/* RHS */
	skip_space(&l);
	rhs_start = l.pos;
	n = peek_word(&l, word, sizeof(word));
	if (n == 8 && !strcmp(word, "baseline")) {
		l.pos += n;
		c.rhs = CR_BASELINE_DELTA;
		skip_space(&l);
		if (s[l.pos] == '+' || s[l.pos] == '-') {
			bool minus = s[l.pos] == '-';
			l.pos++;
			skip_space(&l);
			if (read_value(&l, c.metric, &c.value, err) < 0)
				return -1;
			if (minus)
				c.value = -c.value;
		}
	} else if (s[l.pos] >= '0' && s[l.pos] <= '9') {
		size_t numpos = l.pos;
		double v;
		if (read_number(&l, &v) < 0)
			return gerr_set(err, "col %d: expected a number, got %s", col(&l), token_at(&l, tok, sizeof(tok)));
		if (s[l.pos] == 'x' && !is_word_char(s[l.pos + 1])) {
			l.pos++;
			if (!(v > 0))
				return gerr_set(err, "col %d: the factor must be above 0", (int)numpos + 1);
			c.rhs = CR_BASELINE_RATIO;
			c.value = v;
			skip_space(&l);
			n = peek_word(&l, word, sizeof(word));
			if (n == 8 && !strcmp(word, "baseline"))
				l.pos += n;
			else if (!implied_baseline)
				return gerr_set(err, "col %d: expected 'baseline' after '%gx', got %s", col(&l), v,
						token_at(&l, tok, sizeof(tok)));
		} else {
			l.pos = numpos;
			if (read_value(&l, c.metric, &c.value, err) < 0)
				return -1;
			c.rhs = CR_VALUE;
		}
	} else {
		return gerr_set(err, "col %d: expected a threshold (a value like 5%%, 500ms or 10, 'N x baseline' or 'baseline + VALUE'), got %s",
				col(&l), token_at(&l, tok, sizeof(tok)));
	}
	copy_span(c.threshold_text, sizeof(c.threshold_text), s, rhs_start, l.pos);
	if (c.rhs == CR_BASELINE_RATIO && implied_baseline && !strstr(c.threshold_text, "baseline")) {
		size_t tl = strlen(c.threshold_text);
		snprintf(c.threshold_text + tl, sizeof(c.threshold_text) - tl, " baseline");
	}
	/* WINDOW */
	skip_space(&l);
	n = peek_word(&l, word, sizeof(word));
	if (n && (!strcmp(word, "for") || !strcmp(word, "in"))) {
		bool is_in = word[0] == 'i';
		size_t dstart, dn = 0;
		char dur[32];
		int kwcol = col(&l);

		l.pos += n;
		if (s[l.pos] && s[l.pos] != ' ' && s[l.pos] != '\t')
			return gerr_set(err, "col %d: expected a space after '%s'", col(&l), word);
		if (is_in && c.metric != CM_RESTARTS)
			return gerr_set(err, "col %d: 'in' counts events (restarts); use 'for' with %s", kwcol,
					metric_names[m]);
		skip_space(&l);
		dstart = l.pos;
		while (s[l.pos + dn] && s[l.pos + dn] != ' ' && s[l.pos + dn] != '\t')
			dn++;
		if (!dn || dn >= sizeof(dur))
			return gerr_set(err, "col %d: expected a duration after '%s'", col(&l), word);
		memcpy(dur, s + dstart, dn);
		dur[dn] = 0;
		if (parse_duration_ms(dur, &c.window_ms) < 0)
			return gerr_set(err, "col %d: expected a duration after '%s' (e.g. 30s, 2m), got '%s'", col(&l),
					word, dur);
		if (c.window_ms > 7 * 86400000LL)
			return gerr_set(err, "col %d: a window is at most 7d", col(&l));
		if (is_in && c.window_ms == 0)
			return gerr_set(err, "col %d: 'in' needs a window longer than 0", col(&l));
		l.pos += dn;
		c.window = is_in ? CW_IN : CW_FOR;
		snprintf(c.window_text, sizeof(c.window_text), "%s", dur);
	}
	skip_space(&l);
	if (s[l.pos])
		return gerr_set(err, "col %d: unexpected %s after the condition", col(&l), token_at(&l, tok, sizeof(tok)));
	{
		size_t b = 0, e = strlen(s);
		while (s[b] == ' ' || s[b] == '\t')
			b++;
		copy_span(c.text, sizeof(c.text), s, b, e);
	}
	*out = c;
	return 0;
}

int condition_parse(const char *s, struct condition *out, struct gerr *err)
{
	return condition_parse_implied(s, -1, false, out, err);
}

bool condition_holds(const struct condition *c, double value, double baseline)
{
	double t;

	if (isnan(value))
		return false;
	switch (c->rhs) {
	case CR_VALUE:
		t = c->value;
		break;
	case CR_BASELINE_RATIO:
		if (isnan(baseline))
			return false;
		t = baseline * c->value;
		break;
	case CR_BASELINE_DELTA:
		if (isnan(baseline))
			return false;
		t = baseline + c->value;
		break;
	default:
		return false;
	}
	switch (c->op) {
	case CO_GT: return value > t;
	case CO_GE: return value >= t;
	case CO_LT: return value < t;
	case CO_LE: return value <= t;
	}
	return false;
}

/* ------------------------------------------------------------------------ */
/* evaluating                                                               */

void cond_eval_init(struct cond_eval *e, const struct condition *c)
{
	memset(e, 0, sizeof(*e));
	e->cond = *c;
	e->last = COND_NO_DATA;
	e->last_value = NAN;
	e->last_baseline = NAN;
	e->run_start_ms = -1;
}

/* `in`: records the counter, returns the increase within the window */
static double count_in_window(struct cond_eval *e, int64_t t, double v)
{
	int64_t from = t - e->cond.window_ms;
	double then;
	size_t keep = 0;

	if (!e->npts || e->pts[e->npts - 1].v != v) {
		if (e->npts == COND_COUNT_POINTS) {
			/*
			 * full: forget the second oldest change. The window's start
			 * then reads an older (lower) value, so the count can only
			 * be overestimated for a while: a crash loop is never missed.
			 */
			memmove(&e->pts[1], &e->pts[2], (COND_COUNT_POINTS - 2) * sizeof(e->pts[0]));
			e->npts--;
		}
		e->pts[e->npts].t_ms = t;
		e->pts[e->npts].v = v;
		e->npts++;
	}
	/* drop points older than the newest one at or before `from` */
	while (keep + 1 < e->npts && e->pts[keep + 1].t_ms <= from)
		keep++;
	if (keep) {
		memmove(&e->pts[0], &e->pts[keep], (e->npts - keep) * sizeof(e->pts[0]));
		e->npts -= keep;
	}
	then = e->pts[0].v;
	/* a counter that went down was reset: count from zero */
	return v >= then ? v - then : v;
}

enum cond_verdict cond_eval_feed(struct cond_eval *e, const struct cond_sample *s)
{
	const struct condition *c = &e->cond;
	double value = s->value;
	bool nodata, holds;
	enum cond_verdict v;

	if (e->have_last && s->t_ms < e->last_ms)
		return e->last;
	if (e->have_last && e->max_gap_ms > 0 && s->t_ms - e->last_ms > e->max_gap_ms)
		e->in_run = false;
	if (c->window == CW_IN && !isnan(value))
		value = count_in_window(e, s->t_ms, value);
	nodata = isnan(value) || (c->rhs != CR_VALUE && isnan(s->baseline));
	if (!nodata && e->min_requests && cond_metric_needs_requests(c->metric))
		nodata = s->requests < e->min_requests ||
			 (c->rhs != CR_VALUE && s->baseline_requests < e->min_requests);
	holds = !nodata && condition_holds(c, value, s->baseline);
	if (nodata) {
		v = COND_NO_DATA;
		e->in_run = false;
	} else if (!holds) {
		v = COND_CLEAR;
		e->in_run = false;
	} else {
		if (!e->in_run) {
			e->in_run = true;
			e->run_start_ms = s->t_ms;
		}
		v = c->window == CW_FOR && s->t_ms - e->run_start_ms < c->window_ms ? COND_HOLDS : COND_BREACHED;
	}
	if (!e->in_run)
		e->run_start_ms = -1;
	e->have_last = true;
	e->last_ms = s->t_ms;
	e->last = v;
	e->last_value = value;
	e->last_baseline = s->baseline;
	return v;
}

int64_t cond_eval_since(const struct cond_eval *e)
{
	return e->in_run ? e->run_start_ms : -1;
}

const char *cond_eval_describe(const struct cond_eval *e, const char *who, int revision, char *buf, size_t len)
{
	const struct condition *c = &e->cond;
	char val[32], base[32], tail[64] = "", win[48] = "";

	cond_format_value(c->metric, e->last_value, val, sizeof(val));
	if (c->rhs != CR_VALUE)
		snprintf(tail, sizeof(tail), " (baseline %s)", cond_format_value(c->metric, e->last_baseline, base, sizeof(base)));
	if (c->window != CW_NONE)
		snprintf(win, sizeof(win), " %s %s", c->window == CW_IN ? "in" : "for", c->window_text);
	if (revision > 0)
		snprintf(buf, len, "%s %s %s %s%s%s (%s revision %d)", metric_names[c->metric], val, op_names[c->op],
			 c->threshold_text, tail, win, who ? who : "canary", revision);
	else
		snprintf(buf, len, "%s %s %s %s%s%s", metric_names[c->metric], val, op_names[c->op], c->threshold_text,
			 tail, win);
	return buf;
}
