#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include "rollout/stats.h"

static void test_bounds_and_bucket(void **state)
{
	(void)state;
	for (size_t i = 1; i < METRIC_LATENCY_BUCKETS; i++)
		assert_true(METRIC_LATENCY_BOUNDS_US[i] > METRIC_LATENCY_BOUNDS_US[i - 1]);
	assert_int_equal(METRIC_LATENCY_BOUNDS_US[0], 100);
	assert_int_equal(METRIC_LATENCY_BOUNDS_US[METRIC_LATENCY_BUCKETS - 1], 60000000);
	assert_int_equal(metric_latency_bucket(0), 0);
	assert_int_equal(metric_latency_bucket(100), 0);
	assert_int_equal(metric_latency_bucket(101), 1);
	assert_int_equal(metric_latency_bucket(1000), 6);
	assert_int_equal(metric_latency_bucket(1001), 7);
	assert_int_equal(metric_latency_bucket(UINT64_MAX), METRIC_LATENCY_BUCKETS - 1);
}

static void test_rates(void **state)
{
	(void)state;
	struct rev_window w = { .start_ms = 1000, .end_ms = 11000, .requests = 200 };
	w.status[2] = 180;
	w.status[4] = 10; /* client errors: not the revision's fault */
	w.status[5] = 6;
	w.status[0] = 4;
	assert_true(fabs(window_error_rate(&w) - 0.05) < 1e-12);
	assert_true(fabs(window_availability(&w) - 0.95) < 1e-12);
	assert_true(fabs(window_request_rate(&w) - 20.0) < 1e-12);

	struct rev_window empty = { .start_ms = 5, .end_ms = 5 };
	assert_true(isnan(window_error_rate(&empty)));
	assert_true(isnan(window_availability(&empty)));
	assert_true(isnan(window_request_rate(&empty)));
	assert_true(isnan(window_quantile(&empty, 0.99)));
}

static void test_merge(void **state)
{
	(void)state;
	struct rev_window a = { .start_ms = 2000, .end_ms = 3000, .requests = 10 };
	struct rev_window b = { .start_ms = 1000, .end_ms = 2000, .requests = 30 };
	struct rev_window z = { 0 };
	a.status[2] = 10;
	a.latency[3] = 10;
	b.status[5] = 30;
	b.latency[3] = 5;
	window_merge(&z, &a);
	window_merge(&z, &b);
	assert_int_equal(z.start_ms, 1000);
	assert_int_equal(z.end_ms, 3000);
	assert_int_equal(z.requests, 40);
	assert_int_equal(z.status[5], 30);
	assert_int_equal(z.latency[3], 15);
	assert_true(fabs(window_error_rate(&z) - 0.75) < 1e-12);
}

static void test_quantile(void **state)
{
	(void)state;
	struct rev_window w = { 0 };
	/* 100 samples in (1ms, 1.5ms]: p50 is halfway, 1.25ms */
	w.latency[7] = 100;
	assert_true(fabs(window_quantile(&w, 0.5) - 1.25) < 1e-9);
	assert_true(fabs(window_quantile(&w, 1.0) - 1.5) < 1e-9);
	assert_true(fabs(window_quantile(&w, 0.0) - 1.0) < 1e-9);
	/* 90 fast (first bucket, 0..0.1ms), 10 slow in (500ms, 750ms] */
	memset(&w, 0, sizeof(w));
	w.latency[0] = 90;
	w.latency[23] = 10;
	assert_true(window_quantile(&w, 0.5) <= 0.1);
	assert_true(fabs(window_quantile(&w, 0.95) - 625.0) < 1e-9);
	assert_true(fabs(window_quantile(&w, 0.99) - 725.0) < 1e-9);
}

static void test_mwu_scipy_example(void **state)
{
	(void)state;
	/* scipy.stats.mannwhitneyu docs: U = 17, asymptotic two-sided p = 0.11134688653314041 */
	const double males[] = { 19, 22, 16, 29, 24 }, females[] = { 20, 11, 17, 12 };
	struct mwu_result r;
	struct gerr err;
	assert_int_equal(mwu_test(males, 5, females, 4, MWU_TWO_SIDED, &r, &err), 0);
	assert_true(fabs(r.u - 17) < 1e-12);
	assert_true(fabs(r.p - 0.11134688653314041) < 1e-9);
}

static void test_mwu_separated(void **state)
{
	(void)state;
	const double lo[] = { 1, 2, 3, 4, 5, 6, 7, 8 }, hi[] = { 9, 10, 11, 12, 13, 14, 15, 16 };
	struct mwu_result r;
	struct gerr err;
	/* n = 8 + 8, no ties: sigma = sqrt(64 * 17 / 12), z = (64 - 32 - 0.5) / sigma */
	assert_int_equal(mwu_test(hi, 8, lo, 8, MWU_TWO_SIDED, &r, &err), 0);
	assert_true(fabs(r.u - 64) < 1e-12);
	assert_true(fabs(r.p - 0.0009391056991171905) < 1e-9);
	assert_int_equal(mwu_test(hi, 8, lo, 8, MWU_GREATER, &r, &err), 0);
	assert_true(fabs(r.p - 0.0004695528495585953) < 1e-9);
	/* canary lower than baseline: "greater" is not supported at all */
	assert_int_equal(mwu_test(lo, 8, hi, 8, MWU_GREATER, &r, &err), 0);
	assert_true(r.p > 0.99);
}

static void test_mwu_ties(void **state)
{
	(void)state;
	/* tie groups of sizes 1,3,5,4,2,1 give sum(t^3 - t) = 210; U by pair counting = 18 */
	const double x[] = { 1, 2, 2, 3, 3, 3, 4, 5 }, y[] = { 2, 3, 3, 4, 4, 4, 5, 6 };
	struct mwu_result r;
	struct gerr err;
	assert_int_equal(mwu_test(x, 8, y, 8, MWU_TWO_SIDED, &r, &err), 0);
	assert_true(fabs(r.u - 18) < 1e-12);
	assert_true(fabs(r.p - 0.14546383348396352) < 1e-9);
	assert_int_equal(mwu_test(y, 8, x, 8, MWU_GREATER, &r, &err), 0);
	assert_true(fabs(r.p - 0.07273191674198176) < 1e-9);
	assert_int_equal(mwu_test(x, 8, y, 8, MWU_GREATER, &r, &err), 0);
	assert_true(fabs(r.p - 0.9410413199741288) < 1e-9);
}

/* the rank sum agrees with counting pairs, and weights agree with repeating samples */
static void test_mwu_properties(void **state)
{
	(void)state;
	unsigned seed = 12345;
	for (int round = 0; round < 200; round++) {
		double x[40], y[40], xv[6], xw[6], yv[6], yw[6], ex[400], ey[400];
		size_t nx = 8 + (size_t)(rand_r(&seed) % 30), ny = 8 + (size_t)(rand_r(&seed) % 30), nex = 0, ney = 0;
		double pairs = 0;
		struct mwu_result a, b;
		struct gerr err;

		for (size_t i = 0; i < nx; i++)
			x[i] = rand_r(&seed) % 10;
		for (size_t i = 0; i < ny; i++)
			y[i] = rand_r(&seed) % 10 + (round % 3);
		for (size_t i = 0; i < nx; i++)
			for (size_t j = 0; j < ny; j++)
				pairs += x[i] > y[j] ? 1 : x[i] == y[j] ? 0.5 : 0;
		assert_int_equal(mwu_test(x, nx, y, ny, MWU_TWO_SIDED, &a, &err), 0);
		assert_true(fabs(a.u - pairs) < 1e-9);
		assert_true(a.p >= 0 && a.p <= 1);

		for (size_t i = 0; i < 6; i++) {
			xv[i] = yv[i] = (double)i;
			xw[i] = rand_r(&seed) % 20;
			yw[i] = rand_r(&seed) % 20;
			for (int k = 0; k < xw[i]; k++)
				ex[nex++] = (double)i;
			for (int k = 0; k < yw[i]; k++)
				ey[ney++] = (double)i;
		}
		if (!nex || !ney)
			continue;
		assert_int_equal(mwu_test_weighted(xv, xw, 6, yv, yw, 6, MWU_GREATER, &a, &err), 0);
		assert_int_equal(mwu_test(ex, nex, ey, ney, MWU_GREATER, &b, &err), 0);
		assert_true(fabs(a.u - b.u) < 1e-9);
		assert_true(fabs(a.p - b.p) < 1e-9);
	}
}

static void test_mwu_errors(void **state)
{
	(void)state;
	const double x[] = { 1, 2, NAN }, y[] = { 1, 1, 1 };
	struct mwu_result r;
	struct gerr err;
	assert_int_equal(mwu_test(x, 3, y, 3, MWU_TWO_SIDED, &r, &err), -1);
	assert_non_null(strstr(err.msg, "sample 2 of the canary"));
	assert_int_equal(mwu_test(x, 2, y, 0, MWU_TWO_SIDED, &r, &err), -1);
	assert_non_null(strstr(err.msg, "baseline has no samples"));
	/* all tied: no evidence, p = 1 */
	assert_int_equal(mwu_test(y, 3, y, 3, MWU_GREATER, &r, &err), 0);
	assert_true(r.p == 1);
}

static void test_mwu_windows(void **state)
{
	(void)state;
	struct rev_window canary = { 0 }, base = { 0 };
	struct mwu_result r;
	struct gerr err;

	/* same shape: nothing to see */
	base.latency[10] = 500;
	base.latency[12] = 100;
	canary.latency[10] = 50;
	canary.latency[12] = 10;
	assert_int_equal(mwu_test_windows(&canary, &base, MWU_GREATER, &r, &err), 0);
	assert_true(r.p > 0.3);
	/* canary shifted two buckets up: significant at 98% */
	memset(&canary, 0, sizeof(canary));
	canary.latency[12] = 50;
	canary.latency[14] = 10;
	assert_int_equal(mwu_test_windows(&canary, &base, MWU_GREATER, &r, &err), 0);
	assert_true(r.p < 0.02);
	/* small noisy samples do not reach significance */
	memset(&canary, 0, sizeof(canary));
	canary.latency[10] = 3;
	canary.latency[14] = 2;
	assert_int_equal(mwu_test_windows(&canary, &base, MWU_GREATER, &r, &err), 0);
	assert_true(r.p > 0.02);
	/* no canary data is an error, not a pass */
	memset(&canary, 0, sizeof(canary));
	assert_int_equal(mwu_test_windows(&canary, &base, MWU_GREATER, &r, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds_and_bucket), cmocka_unit_test(test_rates),
		cmocka_unit_test(test_merge),             cmocka_unit_test(test_quantile),
		cmocka_unit_test(test_mwu_scipy_example), cmocka_unit_test(test_mwu_separated),
		cmocka_unit_test(test_mwu_ties),          cmocka_unit_test(test_mwu_properties),
		cmocka_unit_test(test_mwu_errors),        cmocka_unit_test(test_mwu_windows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
