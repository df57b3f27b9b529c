#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include "rollout/analysis.h"

static struct analysis_metric metric(const char *name, const char *query, const char *fail_if)
{
	struct analysis_metric m = { .name = (char *)name, .query = (char *)query, .fail_if = (char *)fail_if,
				     .confidence = 0.98, .timeout_ms = 10000 };
	return m;
}

static struct analysis_def def_of(struct analysis_metric *ms, size_t n, int count)
{
	struct analysis_def d = { .name = (char *)"slo", .interval_ms = 10000, .count = count, .error_limit = 4,
				  .metrics = ms, .nmetrics = n };
	return d;
}

static struct analysis_input val(double v, uint64_t requests)
{
	struct analysis_input in = { .value = v, .baseline = NAN, .requests = requests };
	return in;
}

static void test_schedule_and_success(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("errors", NULL, "error_rate > 1%"), metric("p99", "latency_p99", "> 500ms") };
	struct analysis_def d = def_of(ms, 2, 3);
	struct analysis_run r;
	struct gerr err;
	struct analysis_input in[2] = { val(0.001, 100), val(120, 100) };

	d.initial_delay_ms = 5000;
	assert_int_equal(analysis_run_init(&r, &d, 42, 1000, &err), 0);
	assert_int_equal(analysis_run_next_due(&r), 6000);
	assert_int_equal(analysis_run_round(&r, 6000, in), AN_RUNNING);
	assert_int_equal(analysis_run_next_due(&r), 16000);
	assert_int_equal(analysis_run_round(&r, 16000, in), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 26000, in), AN_SUCCESSFUL);
	assert_int_equal(analysis_run_next_due(&r), INT64_MAX);
	assert_string_equal(r.reason, "3 measurements of 2 metrics passed");
	assert_int_equal(r.nmeas, 6);
	assert_int_equal(analysis_run_measurement(&r, 5)->phase, MEAS_SUCCESSFUL);
	assert_int_equal(analysis_run_measurement(&r, 5)->metric, 1);
	/* a finished run ignores more rounds */
	assert_int_equal(analysis_run_round(&r, 36000, in), AN_SUCCESSFUL);
	assert_int_equal(r.nmeas, 6);
	analysis_run_release(&r);
}

static void test_first_failure_fails(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("errors", NULL, "error_rate > 1%") };
	struct analysis_def d = def_of(ms, 1, 0);
	struct analysis_run r;
	struct gerr err;
	struct analysis_input good = val(0.001, 100), bad = val(0.073, 100);

	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	assert_int_equal(analysis_run_round(&r, 0, &good), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 10000, &bad), AN_FAILED);
	assert_string_equal(r.reason, "error_rate 7.3% > 1% (canary revision 42) (failed 1 time, failure_limit 0)");
	analysis_run_release(&r);

	/* failure_limit 2: the third failure fails */
	d.failure_limit = 2;
	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	assert_int_equal(analysis_run_round(&r, 0, &bad), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 10000, &good), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 20000, &bad), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 30000, &bad), AN_FAILED);
	assert_non_null(strstr(r.reason, "failed 3 times, failure_limit 2"));
	analysis_run_release(&r);
}

static void test_min_requests_inconclusive(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("errors", NULL, "error_rate > 1%") };
	struct analysis_def d = def_of(ms, 1, 0);
	struct analysis_run r;
	struct gerr err;
	struct analysis_input few = val(0.5, 3);

	ms[0].min_requests = 50;
	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	/* 50% errors out of 3 requests: neither a pass nor a failure */
	assert_int_equal(analysis_run_round(&r, 0, &few), AN_INCONCLUSIVE);
	assert_string_equal(r.reason, "errors: too little data (3 requests, need 50) (inconclusive 1 time, inconclusive_limit 0)");
	analysis_run_release(&r);

	d.inconclusive_limit = 2;
	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	assert_int_equal(analysis_run_round(&r, 0, &few), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 10000, &few), AN_RUNNING);
	/* never a pass: stopping a run with only inconclusive data is still judged by the limit */
	assert_int_equal(analysis_run_round(&r, 20000, &few), AN_INCONCLUSIVE);
	analysis_run_release(&r);
}

/* a pass below the fleet's quorum is inconclusive; a failure still fails */
static void test_no_pass(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("errors", NULL, "error_rate > 1%") };
	struct analysis_def d = def_of(ms, 1, 0);
	struct analysis_run r;
	struct gerr err;
	struct analysis_input good = val(0.001, 100), bad = val(0.073, 100);

	good.no_pass = bad.no_pass = "fewer than a quorum of the proxies report";
	d.inconclusive_limit = 1;
	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	assert_int_equal(analysis_run_round(&r, 0, &good), AN_RUNNING);
	assert_int_equal(analysis_run_measurement(&r, 0)->phase, MEAS_INCONCLUSIVE);
	assert_non_null(strstr(analysis_run_measurement(&r, 0)->msg, "inconclusive: fewer than a quorum"));
	assert_int_equal(analysis_run_round(&r, 10000, &bad), AN_FAILED);
	assert_int_equal(analysis_run_measurement(&r, 1)->phase, MEAS_FAILED);
	analysis_run_release(&r);

	/* never a pass: all rounds below the quorum end inconclusive */
	d.count = 2;
	d.inconclusive_limit = 2;
	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	assert_int_equal(analysis_run_round(&r, 0, &good), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 10000, &good), AN_INCONCLUSIVE);
	assert_non_null(strstr(r.reason, "the last one inconclusive: fewer than a quorum"));
	/* with the quorum back, the same run would have passed */
	analysis_run_release(&r);
	good.no_pass = NULL;
	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	assert_int_equal(analysis_run_round(&r, 0, &good), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 10000, &good), AN_SUCCESSFUL);
	analysis_run_release(&r);
}

static void test_errors(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("prom", NULL, "error_rate > 1%") };
	struct analysis_def d = def_of(ms, 1, 0);
	struct analysis_run r;
	struct gerr err;
	struct analysis_input e = { .error = "connection refused", .value = NAN, .baseline = NAN };
	struct analysis_input good = val(0, 100);

	ms[0].provider = PROVIDER_PROMETHEUS;
	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(analysis_run_round(&r, i * 10000, &e), AN_RUNNING);
	/* a success resets the consecutive count */
	assert_int_equal(analysis_run_round(&r, 40000, &good), AN_RUNNING);
	for (int i = 5; i < 9; i++)
		assert_int_equal(analysis_run_round(&r, i * 10000, &e), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 90000, &e), AN_ERROR);
	assert_string_equal(r.reason, "prom: cannot measure: connection refused (5 errors in a row, error_limit 4)");
	analysis_run_release(&r);
}

static void test_until_stopped(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("errors", NULL, "error_rate > 1%") };
	struct analysis_def d = def_of(ms, 1, 0);
	struct analysis_run r;
	struct gerr err;
	struct analysis_input good = val(0, 100);

	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	for (int i = 0; i < 300; i++)
		assert_int_equal(analysis_run_round(&r, i * 10000, &good), AN_RUNNING);
	/* the ring keeps the newest ones */
	assert_null(analysis_run_measurement(&r, 0));
	assert_non_null(analysis_run_measurement(&r, 299));
	assert_int_equal(analysis_run_stop(&r, 3000000), AN_SUCCESSFUL);
	assert_string_equal(r.reason, "stopped after 300 rounds without a failure");
	analysis_run_release(&r);
}

static void test_for_window(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("errors", NULL, "error_rate > 5% for 20s") };
	struct analysis_def d = def_of(ms, 1, 0);
	struct analysis_run r;
	struct gerr err;
	struct analysis_input bad = val(0.2, 100);

	assert_int_equal(analysis_run_init(&r, &d, 42, 0, &err), 0);
	assert_int_equal(analysis_run_round(&r, 0, &bad), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 10000, &bad), AN_RUNNING);
	assert_int_equal(analysis_run_round(&r, 20000, &bad), AN_FAILED);
	assert_non_null(strstr(r.reason, "error_rate 20% > 5% for 20s (canary revision 42)"));
	analysis_run_release(&r);
}

static void fill(struct rev_window *w, int bucket, uint64_t n)
{
	w->latency[bucket] += n;
	w->requests += n;
	w->status[2] += n;
}

static void test_mann_whitney(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("p95", "latency_p95", "> 1.10x") };
	struct analysis_def d = def_of(ms, 1, 0);
	struct analysis_run r;
	struct gerr err;
	struct rev_window base = { 0 }, slow = { 0 }, same = { 0 }, tiny = { 0 };
	struct analysis_input in;

	ms[0].compare_baseline = true;
	ms[0].mann_whitney = true;
	fill(&base, 12, 500);
	fill(&base, 14, 100);
	fill(&slow, 14, 50);
	fill(&slow, 16, 20);
	fill(&same, 12, 50);
	fill(&same, 14, 10);
	fill(&tiny, 16, 3);

	/* the same shape passes */
	assert_int_equal(analysis_run_init(&r, &d, 9, 0, &err), 0);
	analysis_input_from_windows(&in, CM_LATENCY_P95, &same, &base);
	assert_int_equal(analysis_run_round(&r, 0, &in), AN_RUNNING);
	assert_int_equal(analysis_run_measurement(&r, 0)->phase, MEAS_SUCCESSFUL);
	assert_true(analysis_run_measurement(&r, 0)->p > 0.02);
	/* a slower canary fails, with the p-value in the reason */
	analysis_input_from_windows(&in, CM_LATENCY_P95, &slow, &base);
	assert_int_equal(analysis_run_round(&r, 10000, &in), AN_FAILED);
	assert_non_null(strstr(r.reason, "latency_p95"));
	assert_non_null(strstr(r.reason, "mann-whitney p="));
	analysis_run_release(&r);

	/* 3 slow samples: too few to judge */
	assert_int_equal(analysis_run_init(&r, &d, 9, 0, &err), 0);
	analysis_input_from_windows(&in, CM_LATENCY_P95, &tiny, &base);
	assert_int_equal(analysis_run_round(&r, 0, &in), AN_INCONCLUSIVE);
	assert_non_null(strstr(r.reason, "too little data (3 canary and 600 baseline samples, need 8)"));
	analysis_run_release(&r);
}

static void test_json_round_trip(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("errors", NULL, "error_rate > 5% for 20s"), metric("p99", "latency_p99", "> 1s") };
	struct analysis_def d = def_of(ms, 2, 10);
	struct analysis_run a, b;
	struct gerr err;
	struct analysis_input in[2] = { val(0.2, 100), val(100, 100) };
	json_t *j;

	d.failure_limit = 1;
	assert_int_equal(analysis_run_init(&a, &d, 7, 0, &err), 0);
	assert_int_equal(analysis_run_round(&a, 0, in), AN_RUNNING);
	assert_int_equal(analysis_run_round(&a, 10000, in), AN_RUNNING);
	j = analysis_run_to_json(&a);
	assert_non_null(j);
	assert_int_equal(analysis_run_from_json(&b, &d, j, &err), 0);
	json_decref(j);
	assert_int_equal(b.rounds, 2);
	assert_int_equal(b.next_ms, a.next_ms);
	assert_int_equal(b.nmeas, 4);
	assert_null(analysis_run_measurement(&b, 3));
	assert_int_equal(b.m[0].eval.run_start_ms, 0);
	/* both continue identically: the for-window survived the restart */
	for (int t = 20000; t <= 40000; t += 10000) {
		enum analysis_phase pa = analysis_run_round(&a, t, in), pb = analysis_run_round(&b, t, in);
		assert_int_equal(pa, pb);
	}
	assert_int_equal(a.phase, AN_FAILED);
	assert_string_equal(a.reason, b.reason);
	j = analysis_run_to_json(&a);
	{
		char *s = json_dumps(j, JSON_COMPACT);
		json_t *mj = measurement_to_json(analysis_run_measurement(&a, a.nmeas - 1), &a);
		char *ms_ = json_dumps(mj, JSON_COMPACT);
		assert_non_null(strstr(s, "\"phase\":\"failed\""));
		assert_non_null(strstr(ms_, "\"metric\":\"p99\""));
		free(s);
		free(ms_);
		json_decref(mj);
	}
	json_decref(j);
	analysis_run_release(&a);
	analysis_run_release(&b);
	/* wrong definition or garbage */
	j = json_pack("{s:s}", "analysis", "x");
	assert_int_equal(analysis_run_from_json(&b, &d, j, &err), -1);
	json_decref(j);
}

static void test_bad_condition(void **state)
{
	(void)state;
	struct analysis_metric ms[] = { metric("errors", NULL, "error_rat > 1%") };
	struct analysis_def d = def_of(ms, 1, 0);
	struct analysis_run r;
	struct gerr err;
	assert_int_equal(analysis_run_init(&r, &d, 1, 0, &err), -1);
	assert_string_equal(err.msg, "metric 'errors': fail_if: col 1: unknown metric 'error_rat' (did you mean 'error_rate'?)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedule_and_success), cmocka_unit_test(test_first_failure_fails),
		cmocka_unit_test(test_min_requests_inconclusive), cmocka_unit_test(test_errors),
		cmocka_unit_test(test_until_stopped),        cmocka_unit_test(test_for_window),
		cmocka_unit_test(test_mann_whitney),         cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_bad_condition),
		cmocka_unit_test(test_no_pass),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
