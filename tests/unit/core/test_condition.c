#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include "core/condition.h"

static struct condition parse_ok(const char *s)
{
	struct condition c;
	struct gerr err = { { 0 } };
	if (condition_parse(s, &c, &err) < 0)
		fail_msg("'%s': %s", s, err.msg);
	return c;
}

static void parse_err(const char *s, const char *want)
{
	struct condition c;
	struct gerr err = { { 0 } };
	if (condition_parse(s, &c, &err) == 0)
		fail_msg("'%s' parsed", s);
	if (!strstr(err.msg, want))
		fail_msg("'%s': got \"%s\", want \"%s\"", s, err.msg, want);
}

static void test_runbook_examples(void **state)
{
	(void)state;
	const char *all[] = {
		"error_rate > 0.1%",          "error_rate > 5% for 2m",      "latency_p99 > 500ms",
		"latency_p95 > 1000ms for 5m", "availability < 99% for 1m",  "request_rate < 1",
		"restarts > 5 in 5m",         "ready_ratio < 50% for 30s",   "latency_p95 > 1.10x baseline",
		"error_rate > baseline + 1%", "latency_p50 >= 1.5s",         "latency_p90 <= 20ms",
		"  error_rate>5%  for  2m ",  "latency_p99 > baseline - 10ms", "value >= 0.5 for 1m",
	};
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		parse_ok(all[i]);

	struct condition c = parse_ok("error_rate > 5% for 2m");
	assert_int_equal(c.metric, CM_ERROR_RATE);
	assert_int_equal(c.op, CO_GT);
	assert_int_equal(c.rhs, CR_VALUE);
	assert_true(fabs(c.value - 0.05) < 1e-12);
	assert_int_equal(c.window, CW_FOR);
	assert_int_equal(c.window_ms, 120000);
	assert_string_equal(c.threshold_text, "5%");
	assert_string_equal(c.window_text, "2m");

	c = parse_ok("latency_p95 > 1.10x baseline");
	assert_int_equal(c.metric, CM_LATENCY_P95);
	assert_int_equal(c.rhs, CR_BASELINE_RATIO);
	assert_true(fabs(c.value - 1.10) < 1e-12);
	assert_string_equal(c.threshold_text, "1.10x baseline");

	c = parse_ok("error_rate > baseline + 1%");
	assert_int_equal(c.rhs, CR_BASELINE_DELTA);
	assert_true(fabs(c.value - 0.01) < 1e-12);

	c = parse_ok("latency_p50 >= 1.5s");
	assert_int_equal(c.op, CO_GE);
	assert_true(fabs(c.value - 1500) < 1e-9);

	c = parse_ok("restarts > 5 in 5m");
	assert_int_equal(c.window, CW_IN);
	assert_int_equal(c.window_ms, 300000);
	assert_true(fabs(c.value - 5) < 1e-12);

	c = parse_ok("latency_p99 > baseline - 10ms");
	assert_true(fabs(c.value + 10) < 1e-12);
	assert_string_equal(parse_ok("  error_rate>5%  for  2m ").text, "error_rate>5%  for  2m");
}

static void test_errors_name_the_column(void **state)
{
	(void)state;
	parse_err("error_rate > 5% for", "col 20: expected a duration after 'for'");
	parse_err("error_rate > 5% for 2x", "col 21: expected a duration after 'for'");
	parse_err("eror_rate > 5%", "col 1: unknown metric 'eror_rate' (did you mean 'error_rate'?)");
	parse_err("error_rate = 5%", "col 12: expected an operator");
	parse_err("error_rate > 5", "col 14: error_rate needs a percentage");
	parse_err("error_rate > 150%", "col 14: a percentage is at most 100%");
	parse_err("latency_p99 > 500", "col 15: latency_p99 needs a duration with its unit");
	parse_err("latency_p99 > 500 ms", "col 15: latency_p99 needs a duration");
	parse_err("restarts > 5% in 5m", "col 13: restarts takes a plain number");
	parse_err("error_rate > 5% in 5m", "col 17: 'in' counts events");
	parse_err("latency_p95 > 1.10x", "col 20: expected 'baseline' after '1.1x'");
	parse_err("latency_p95 > 0x baseline", "col 15: the factor must be above 0");
	parse_err("error_rate > 5% for 2m please", "col 24: unexpected 'please'");
	parse_err("", "col 1: expected a metric");
	parse_err("error_rate >", "col 13: expected a threshold");
	parse_err("error_rate > -5%", "col 14: expected a threshold");
	parse_err("error_rate > baseline + ", "col 25: expected a number");
	parse_err("error_rate > 5% for\n2m", "col 20: control character");
	parse_err("restarts > 1 in 0s", "'in' needs a window longer than 0");
	parse_err("value > 5ms", "col 10: value takes a plain number (no unit)");
	parse_err("error_rate > 5% for 8d", "a window is at most 7d");
}

static void test_implied(void **state)
{
	(void)state;
	struct condition c;
	struct gerr err;
	assert_int_equal(condition_parse_implied("> 0.1%", CM_ERROR_RATE, false, &c, &err), 0);
	assert_int_equal(c.metric, CM_ERROR_RATE);
	assert_true(fabs(c.value - 0.001) < 1e-12);
	assert_int_equal(condition_parse_implied("> 1.10x", CM_LATENCY_P95, true, &c, &err), 0);
	assert_int_equal(c.rhs, CR_BASELINE_RATIO);
	assert_string_equal(c.threshold_text, "1.10x baseline");
	/* an explicit metric still wins */
	assert_int_equal(condition_parse_implied("latency_p99 > 1s", CM_ERROR_RATE, false, &c, &err), 0);
	assert_int_equal(c.metric, CM_LATENCY_P99);
	assert_int_equal(condition_parse_implied("> 1.10x", CM_LATENCY_P95, false, &c, &err), -1);
}

static void test_holds(void **state)
{
	(void)state;
	struct condition c = parse_ok("availability < 99%");
	assert_true(condition_holds(&c, 0.98, NAN));
	assert_false(condition_holds(&c, 0.995, NAN));
	assert_false(condition_holds(&c, NAN, NAN));
	c = parse_ok("latency_p95 > 1.10x baseline");
	assert_true(condition_holds(&c, 111, 100));
	assert_false(condition_holds(&c, 109, 100));
	assert_false(condition_holds(&c, 500, NAN));
	c = parse_ok("error_rate > baseline + 1%");
	assert_true(condition_holds(&c, 0.025, 0.01));
	assert_false(condition_holds(&c, 0.015, 0.01));
	c = parse_ok("latency_p99 <= 20ms");
	assert_true(condition_holds(&c, 20, NAN));
}

static enum cond_verdict feed(struct cond_eval *e, int64_t t, double v, uint64_t req)
{
	struct cond_sample s = { .t_ms = t, .value = v, .baseline = NAN, .requests = req };
	return cond_eval_feed(e, &s);
}

static void test_for_window(void **state)
{
	(void)state;
	struct condition c = parse_ok("error_rate > 5% for 2m");
	struct cond_eval e;
	char buf[160];

	cond_eval_init(&e, &c);
	/* holding from t=10s: breached once samples span 2m, not before */
	assert_int_equal(feed(&e, 0, 0.01, 100), COND_CLEAR);
	assert_int_equal(cond_eval_since(&e), -1);
	for (int64_t t = 10000; t < 130000; t += 10000)
		assert_int_equal(feed(&e, t, 0.073, 100), COND_HOLDS);
	assert_int_equal(cond_eval_since(&e), 10000);
	assert_int_equal(feed(&e, 130000, 0.073, 100), COND_BREACHED);
	assert_string_equal(cond_eval_describe(&e, "canary", 42, buf, sizeof(buf)),
			    "error_rate 7.3% > 5% for 2m (canary revision 42)");

	/* one good sample restarts the window */
	cond_eval_init(&e, &c);
	for (int64_t t = 0; t <= 110000; t += 10000)
		feed(&e, t, 0.2, 100);
	assert_int_equal(feed(&e, 115000, 0.01, 100), COND_CLEAR);
	assert_int_equal(feed(&e, 120000, 0.2, 100), COND_HOLDS);
	assert_int_equal(feed(&e, 235000, 0.2, 100), COND_HOLDS);
	assert_int_equal(feed(&e, 240000, 0.2, 100), COND_BREACHED);

	/* a sample older than the last is ignored */
	assert_int_equal(feed(&e, 1000, 0.0, 100), COND_BREACHED);

	/* a gap longer than max_gap_ms breaks the run: two samples 2m apart prove nothing */
	cond_eval_init(&e, &c);
	e.max_gap_ms = 30000;
	assert_int_equal(feed(&e, 0, 0.2, 100), COND_HOLDS);
	assert_int_equal(feed(&e, 120000, 0.2, 100), COND_HOLDS);
	assert_int_equal(cond_eval_since(&e), 120000);
}

static void test_no_window_breaches_at_once(void **state)
{
	(void)state;
	struct condition c = parse_ok("latency_p99 > 500ms");
	struct cond_eval e;
	char buf[160];
	cond_eval_init(&e, &c);
	assert_int_equal(feed(&e, 0, 499, 100), COND_CLEAR);
	assert_int_equal(feed(&e, 1000, 1250, 100), COND_BREACHED);
	assert_string_equal(cond_eval_describe(&e, "canary", 7, buf, sizeof(buf)),
			    "latency_p99 1.25s > 500ms (canary revision 7)");
}

static void test_min_requests_inconclusive(void **state)
{
	(void)state;
	struct condition c = parse_ok("error_rate > 5% for 20s");
	struct cond_eval e;
	cond_eval_init(&e, &c);
	e.min_requests = 50;
	/* 1 error out of 3 requests is 33%, but 3 requests prove nothing */
	assert_int_equal(feed(&e, 0, 0.33, 3), COND_NO_DATA);
	assert_int_equal(feed(&e, 10000, NAN, 0), COND_NO_DATA);
	assert_int_equal(feed(&e, 20000, 0.33, 60), COND_HOLDS);
	/* no data breaks the run: a breach needs 20s of observed bad samples */
	assert_int_equal(feed(&e, 30000, 0.33, 10), COND_NO_DATA);
	assert_int_equal(feed(&e, 40000, 0.33, 60), COND_HOLDS);
	assert_int_equal(feed(&e, 60000, 0.33, 60), COND_BREACHED);
	/* request_rate does not need requests to be judged */
	c = parse_ok("request_rate < 1");
	cond_eval_init(&e, &c);
	e.min_requests = 50;
	assert_int_equal(feed(&e, 0, 0.2, 0), COND_BREACHED);
}

static void test_baseline_eval(void **state)
{
	(void)state;
	struct condition c = parse_ok("latency_p95 > 1.10x baseline");
	struct cond_eval e;
	struct cond_sample s = { .t_ms = 0, .value = 612, .baseline = 480, .requests = 100, .baseline_requests = 1000 };
	char buf[160];

	cond_eval_init(&e, &c);
	e.min_requests = 20;
	assert_int_equal(cond_eval_feed(&e, &s), COND_BREACHED);
	assert_string_equal(cond_eval_describe(&e, "canary", 3, buf, sizeof(buf)),
			    "latency_p95 612ms > 1.10x baseline (baseline 480ms) (canary revision 3)");
	s.t_ms = 1000;
	s.baseline_requests = 5; /* too little on stable */
	assert_int_equal(cond_eval_feed(&e, &s), COND_NO_DATA);
	s.t_ms = 2000;
	s.baseline_requests = 500;
	s.baseline = NAN;
	assert_int_equal(cond_eval_feed(&e, &s), COND_NO_DATA);
}

static void test_restarts_in(void **state)
{
	(void)state;
	struct condition c = parse_ok("restarts > 5 in 5m");
	struct cond_eval e;
	char buf[160];

	cond_eval_init(&e, &c);
	/* the counter is cumulative; 3 restarts long ago do not count */
	assert_int_equal(feed(&e, 0, 3, 0), COND_CLEAR);
	assert_int_equal(feed(&e, 600000, 3, 0), COND_CLEAR);
	assert_int_equal(feed(&e, 610000, 6, 0), COND_CLEAR);  /* +3 */
	assert_int_equal(feed(&e, 700000, 9, 0), COND_BREACHED); /* +6 within 5m */
	assert_string_equal(cond_eval_describe(&e, "canary", 5, buf, sizeof(buf)),
			    "restarts 6 > 5 in 5m (canary revision 5)");
	/* 5 minutes later those restarts are out of the window */
	assert_int_equal(feed(&e, 1100000, 9, 0), COND_CLEAR);
	/* many single restarts, each counted */
	cond_eval_init(&e, &c);
	for (int i = 0; i <= 5; i++)
		assert_int_equal(feed(&e, i * 10000, i, 0), COND_CLEAR);
	assert_int_equal(feed(&e, 60000, 6, 0), COND_BREACHED);
	/* a counter reset (controller restart) counts from zero */
	assert_int_equal(feed(&e, 70000, 1, 0), COND_CLEAR);
	/* without `in`: the total */
	c = parse_ok("restarts > 5");
	cond_eval_init(&e, &c);
	assert_int_equal(feed(&e, 0, 6, 0), COND_BREACHED);
}

static void test_restarts_ring_bounded(void **state)
{
	(void)state;
	struct condition c = parse_ok("restarts > 100 in 1h");
	struct cond_eval e;
	cond_eval_init(&e, &c);
	for (int i = 0; i < 1000; i++)
		feed(&e, i * 1000, i, 0);
	assert_true(e.npts <= COND_COUNT_POINTS);
	assert_int_equal(e.last, COND_BREACHED);
}

/* memory and cpu: percentages of the replica's limit (condition.h) */
static void test_usage_metrics(void **state)
{
	(void)state;
	struct condition c = parse_ok("memory > 85%");
	struct cond_eval e;
	char buf[160];
	struct gerr err;

	assert_int_equal(c.metric, CM_MEMORY);
	assert_true(fabs(c.value - 0.85) < 1e-12);
	assert_string_equal(cond_metric_name(CM_MEMORY), "memory");
	assert_int_equal(cond_metric_from_name("cpu"), CM_CPU);
	assert_false(cond_metric_needs_requests(CM_MEMORY));
	assert_false(cond_metric_needs_requests(CM_CPU));
	c = parse_ok("cpu > 90% for 5m");
	assert_int_equal(c.metric, CM_CPU);
	assert_int_equal(c.window, CW_FOR);
	assert_int_equal(c.window_ms, 300000);
	/* cpu without a limit counts against one core: above 100% is meaningful */
	c = parse_ok("cpu >= 250%");
	assert_true(fabs(c.value - 2.5) < 1e-12);
	parse_err("memory > 150%", "col 10: a percentage is at most 100%");
	parse_err("memory > 512Mi", "col 10: memory needs a percentage (e.g. 5%), got '512Mi'");
	parse_err("cpu > 0.5", "col 7: cpu needs a percentage");
	parse_err("memory > 50% in 5m", "col 14: 'in' counts events (restarts); use 'for' with memory");
	parse_err("memroy > 50%", "unknown metric 'memroy' (did you mean 'memory'?)");
	/* an analysis metric's query: memory, fail_if "> 80%" */
	assert_int_equal(condition_parse_implied("> 80%", CM_MEMORY, false, &c, &err), 0);
	assert_int_equal(c.metric, CM_MEMORY);

	/* no limit means no data (NAN): inconclusive, and it breaks a for-run */
	c = parse_ok("memory > 50% for 10s");
	cond_eval_init(&e, &c);
	e.min_requests = 5; /* not a request metric: ignored */
	assert_int_equal(feed(&e, 0, 0.8, 0), COND_HOLDS);
	assert_int_equal(feed(&e, 2000, NAN, 0), COND_NO_DATA);
	assert_int_equal(feed(&e, 4000, 0.8, 0), COND_HOLDS);
	assert_int_equal(feed(&e, 10000, 0.8, 0), COND_HOLDS);
	assert_int_equal(feed(&e, 14000, 0.8, 0), COND_BREACHED);
	assert_string_equal(cond_eval_describe(&e, "new", 3, buf, sizeof(buf)),
			    "memory 80% > 50% for 10s (new revision 3)");
	assert_int_equal(feed(&e, 16000, 0.4, 0), COND_CLEAR);
	assert_string_equal(cond_format_value(CM_CPU, 1.5, buf, sizeof(buf)), "150%");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runbook_examples),     cmocka_unit_test(test_errors_name_the_column),
		cmocka_unit_test(test_implied),              cmocka_unit_test(test_holds),
		cmocka_unit_test(test_for_window),           cmocka_unit_test(test_no_window_breaches_at_once),
		cmocka_unit_test(test_min_requests_inconclusive), cmocka_unit_test(test_baseline_eval),
		cmocka_unit_test(test_restarts_in),          cmocka_unit_test(test_restarts_ring_bounded),
		cmocka_unit_test(test_usage_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
