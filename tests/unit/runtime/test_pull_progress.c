/*
 * test_pull_progress.c — the aggregation of a pull's progress stream, and
 * when an event is due.
 */
#include "rt_test.h"
#include "runtime/pull_progress.h"

static void test_layers_and_bytes(void **state)
{
	struct pull_progress p = { 0 };
	struct pull_summary s;
	char line[160];
	(void)state;
	pull_progress_update(&p, "v1", "Pulling from hello", 0, 0);
	pull_progress_update(&p, "aaa", "Pulling fs layer", 0, 0);
	pull_progress_update(&p, "bbb", "Pulling fs layer", 0, 0);
	pull_progress_update(&p, "ccc", "Already exists", 0, 0);
	pull_progress_summary(&p, &s);
	assert_int_equal(s.layers_total, 3);
	assert_int_equal(s.layers_done, 1);
	assert_int_equal(s.percent, 33); /* sizes unknown: by layers */
	pull_progress_update(&p, "aaa", "Downloading", 250, 1000);
	pull_progress_update(&p, "bbb", "Downloading", 0, 3000);
	pull_progress_summary(&p, &s);
	assert_int_equal(s.bytes_done, 250);
	assert_int_equal(s.bytes_total, 4000);
	assert_int_equal(s.percent, 6);
	pull_progress_update(&p, "aaa", "Download complete", 0, 0);
	pull_progress_update(&p, "aaa", "Extracting", 100, 1000);
	pull_progress_update(&p, "aaa", "Pull complete", 0, 0);
	pull_progress_update(&p, "bbb", "Downloading", 1500, 3000);
	pull_progress_summary(&p, &s);
	assert_int_equal(s.layers_done, 2);
	assert_int_equal(s.bytes_done, 2500);
	assert_int_equal(s.percent, 62);
	pull_summary_format(&s, line, sizeof(line));
	assert_string_equal(line, "layers 2/3, 2.5 kB/4.0 kB (62%)");
	pull_progress_update(&p, "bbb", "Pull complete", 0, 0);
	pull_progress_update(&p, "", "Digest: sha256:00", 0, 0);
	pull_progress_update(&p, "", "Status: Downloaded newer image for hello:v1", 0, 0);
	pull_progress_summary(&p, &s);
	assert_int_equal(s.layers_done, 3);
	assert_int_equal(s.percent, 100);
}

static void test_many_layers(void **state)
{
	struct pull_progress p = { 0 };
	struct pull_summary s;
	char id[16];
	(void)state;
	for (int i = 0; i < PULL_LAYERS_MAX + 6; i++) {
		snprintf(id, sizeof(id), "l%d", i);
		pull_progress_update(&p, id, "Pulling fs layer", 0, 0);
	}
	for (int i = 0; i < PULL_LAYERS_MAX + 6; i += 2) {
		snprintf(id, sizeof(id), "l%d", i);
		pull_progress_update(&p, id, "Pull complete", 0, 0);
	}
	pull_progress_summary(&p, &s);
	assert_int_equal(s.layers_total, PULL_LAYERS_MAX + 6);
	assert_int_equal(s.layers_done, (PULL_LAYERS_MAX + 6) / 2);
	assert_int_equal(s.percent, 50);
}

static void test_due(void **state)
{
	struct pull_summary s = { .layers_done = 1, .layers_total = 4, .bytes_done = 100, .bytes_total = 1000,
				  .percent = 10 };
	(void)state;
	assert_true(pull_progress_due(&s, 0, 0, 0, 0, 10));     /* a further 10% */
	assert_false(pull_progress_due(&s, 10, 50, 1, 0, 4999)); /* not 10% more, not 5 s */
	assert_true(pull_progress_due(&s, 10, 50, 1, 0, 5000));  /* 5 s, and it moved */
	assert_false(pull_progress_due(&s, 10, 100, 1, 0, 60000)); /* 5 s, but nothing moved */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layers_and_bytes),
		cmocka_unit_test(test_many_layers),
		cmocka_unit_test(test_due),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
