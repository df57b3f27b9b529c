/*
 * fuzz_condition.c — the condition language: any bytes either parse or give
 * a "col N: ..." error; a parsed condition re-parses from its own text to
 * the same meaning; the evaluator, fed samples drawn from the input after a
 * NUL byte, never crashes and keeps its invariants (a breach only while the
 * condition holds; since <= now; bounded memory).
 */
#include "common.h"
#include "core/condition.h"
#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static double take(const uint8_t **p, const uint8_t *end)
{
	double v;
	if (end - *p < 2)
		return NAN;
	v = (double)((*p)[0] | ((*p)[1] << 8));
	*p += 2;
	if (v == 65535)
		return NAN;
	return v / 1000.0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size), *p, *end = data + size;
	size_t len = nul ? (size_t)(nul - data) : size;
	char *s;
	struct condition c, c2;
	struct gerr err;
	struct cond_eval e;
	char buf[256];
	int64_t t = 0;

	if (len > 4 * CONDITION_MAX_LEN)
		return 0;
	s = xstrndup((const char *)data, len);
	if (condition_parse_implied(s, size & 1 ? CM_LATENCY_P95 : -1, size & 2, &c, &err) < 0) {
		BUG_ON(strncmp(err.msg, "col ", 4));
		goto out;
	}
	BUG_ON(c.metric >= CM__COUNT || !cond_metric_name(c.metric));
	BUG_ON(!isfinite(c.value));
	BUG_ON(c.window_ms < 0);
	BUG_ON(c.window == CW_IN && c.metric != CM_RESTARTS);
	/* its own text means the same thing (when nothing was implied) */
	if (condition_parse(c.text, &c2, &err) == 0) {
		BUG_ON(c2.metric != c.metric || c2.op != c.op || c2.rhs != c.rhs || c2.value != c.value ||
		       c2.window != c.window || c2.window_ms != c.window_ms);
	}
	cond_eval_init(&e, &c);
	e.min_requests = size % 7;
	e.max_gap_ms = (int64_t)(size % 3) * 1000;
	p = nul ? nul + 1 : end;
	while (p < end) {
		struct cond_sample smp;
		enum cond_verdict v;
		t += *p++ * 100;
		smp.t_ms = t;
		smp.value = take(&p, end);
		smp.baseline = take(&p, end);
		smp.requests = p < end ? *p++ : 0;
		smp.baseline_requests = p < end ? *p++ : 0;
		v = cond_eval_feed(&e, &smp);
		BUG_ON(v > COND_BREACHED);
		BUG_ON(e.npts > COND_COUNT_POINTS);
		if (v == COND_BREACHED || v == COND_HOLDS) {
			BUG_ON(cond_eval_since(&e) < 0 || cond_eval_since(&e) > t);
			BUG_ON(c.window != CW_IN && !condition_holds(&c, smp.value, smp.baseline));
		}
		if (v == COND_HOLDS)
			BUG_ON(c.window != CW_FOR || t - cond_eval_since(&e) >= c.window_ms);
		cond_eval_describe(&e, "canary", 42, buf, sizeof(buf));
		BUG_ON(strlen(buf) >= sizeof(buf));
	}
out:
	free(s);
	return 0;
}
