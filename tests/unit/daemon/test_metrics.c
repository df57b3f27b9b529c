#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "daemon/metrics.h"

/* a /windows document with one revision's cumulative counters */
static char *doc(int rev, unsigned long long requests, unsigned long long s5xx, unsigned long long fast,
		 unsigned long long slow)
{
	char status[128], lat[512];
	size_t off = 0;
	snprintf(status, sizeof(status), "[0,0,%llu,0,0,%llu]", requests - s5xx, s5xx);
	off += (size_t)snprintf(lat + off, sizeof(lat) - off, "[%llu", fast);
	for (int i = 1; i < METRIC_LATENCY_BUCKETS; i++)
		off += (size_t)snprintf(lat + off, sizeof(lat) - off, ",%llu", i == 20 ? slow : 0ULL);
	snprintf(lat + off, sizeof(lat) - off, "]");
	return xasprintf("{\"now_ms\": 1, \"generation\": 3, \"revisions\": [{\"service\": \"web\", "
			 "\"environment\": \"prod\", \"revision\": \"%d\", \"requests\": %llu, \"status\": %s, "
			 "\"latency\": %s, \"bytes_in\": 0, \"bytes_out\": 0, \"inflight\": 0}]}",
			 rev, requests, status, lat);
}

static void feed(int64_t t, int rev, unsigned long long req, unsigned long long s5xx)
{
	char *d = doc(rev, req, s5xx, req - s5xx, s5xx);
	assert_int_equal(metrics__ingest(d, t), 1);
	free(d);
}

static void test_windows_by_subtraction(void **state)
{
	(void)state;
	struct rev_window w;
	/* 100 requests per 100 ms; errors only from t=2000 on, 50 per poll */
	unsigned long long req = 0, err = 0;
	for (int64_t t = 0; t <= 5000; t += 100) {
		req += 100;
		if (t >= 2000)
			err += 50;
		feed(t, 7, req, err);
	}
	assert_int_equal(metrics_window("web", "prod", 7, 1000, 5000, &w), 0);
	assert_int_equal(w.end_ms - w.start_ms, 1000);
	assert_int_equal(w.requests, 1000);
	assert_int_equal(w.status[5], 500);
	assert_int_equal(w.status[2], 500);
	/* a window reaching back before the errors began */
	assert_int_equal(metrics_window("web", "prod", 7, 4000, 5000, &w), 0);
	assert_int_equal(w.requests, 4000);
	assert_int_equal(w.status[5], 50 * 31);
	/* longer than history: everything since the first snapshot */
	assert_int_equal(metrics_window("web", "prod", 7, 60000, 5000, &w), 0);
	assert_int_equal(w.start_ms, 0);
	assert_int_equal(metrics_window("web", "prod", 8, 1000, 5000, &w), -1);
	metrics_free();
}

static void test_proxy_restart_resets_series(void **state)
{
	(void)state;
	struct rev_window w;
	feed(0, 3, 1000, 0);
	feed(100, 3, 2000, 0);
	feed(200, 3, 10, 5); /* counters started again */
	feed(300, 3, 20, 10);
	assert_int_equal(metrics_window("web", "prod", 3, 100, 300, &w), 0);
	assert_int_equal(w.requests, 10);
	assert_int_equal(w.status[5], 5);
	metrics_free();
}

/* the history keeps 32-bit counters: windows across 2^32 are still exact */
static void test_counters_past_32_bits(void **state)
{
	(void)state;
	struct rev_window w;
	unsigned long long base = 0xFFFFFF00ULL, req = base, err = 0;
	for (int64_t t = 0; t <= 3000; t += 100) {
		req += 100;
		err += 10;
		feed(t, 9, req, err);
	}
	/* the last second crosses 4294967296 */
	assert_true(req > 0x100000000ULL);
	assert_int_equal(metrics_window("web", "prod", 9, 1000, 3000, &w), 0);
	assert_int_equal(w.requests, 1000);
	assert_int_equal(w.status[5], 100);
	assert_int_equal(w.status[2], 900);
	assert_int_equal(w.latency[0], 900);
	assert_int_equal(w.latency[20], 100);
	/* and it is not mistaken for a proxy restart */
	assert_int_equal(metrics_window("web", "prod", 9, 60000, 3000, &w), 0);
	assert_int_equal(w.start_ms, 0);
	assert_int_equal(w.requests, 3000);
	metrics_free();
}

static void test_garbage_is_ignored(void **state)
{
	(void)state;
	assert_int_equal(metrics__ingest("not json", 0), -1);
	assert_int_equal(metrics__ingest("{\"revisions\": [{\"service\": \"a\"}, 5, null]}", 0), 0);
	assert_int_equal(metrics__ingest("{\"revisions\": [{\"service\": \"a\", \"environment\": \"b\", "
					 "\"revision\": \"x1\", \"requests\": 5, \"status\": [1], \"latency\": []}]}", 0), 0);
	metrics_free();
}

/* how fresh and how long: what a round and a rollback_on sample check first */
static void test_age_and_history(void **state)
{
	(void)state;
	assert_int_equal(metrics_age_ms(1000), -1);
	assert_int_equal(metrics_history_ms(1000), -1);
	assert_int_equal(metrics__ingest("not json", 1000), -1);
	assert_int_equal(metrics_age_ms(1000), -1); /* garbage is not a poll */
	feed(2000, 4, 10, 0);
	feed(2500, 4, 20, 0);
	assert_int_equal(metrics_age_ms(3000), 500);
	assert_int_equal(metrics_history_ms(3000), 1000);
	metrics_free();
	assert_int_equal(metrics_age_ms(3000), -1);
	assert_int_equal(metrics_history_ms(3000), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_windows_by_subtraction),
		cmocka_unit_test(test_proxy_restart_resets_series),
		cmocka_unit_test(test_counters_past_32_bits),
		cmocka_unit_test(test_garbage_is_ignored),
		cmocka_unit_test(test_age_and_history),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
