#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "records/dora.h"

/* the module counts in ms; these tests write seconds (ro, inc, dc convert) */
#define H 3600
#define D 86400

static struct dora_rollout ro(int64_t start, int64_t end, const char *kind, const char *result, int64_t commit)
{
	struct dora_rollout r = { start * 1000, end * 1000, "", "", false, commit * 1000 };
	strlcpy_g(r.kind, kind, sizeof(r.kind));
	strlcpy_g(r.result, result, sizeof(r.result));
	return r;
}

static void dc(const struct dora_rollout *r, size_t n, struct dora_incident *inc, size_t ninc, int64_t since,
	       int64_t until, struct dora_figures *f)
{
	for (size_t i = 0; i < ninc; i++)
		inc[i].opened_at *= 1000, inc[i].closed_at *= 1000;
	dora_compute(r, n, inc, ninc, since * 1000, until * 1000, 0, f);
}

static void test_scripted_history(void **state)
{
	/* ten days; times in seconds from 0 */
	struct dora_rollout r[] = {
		ro(1 * D, 1 * D + 600, "deploy", "succeeded", 1 * D - 2 * H),     /* lead 2h10m */
		ro(2 * D, 2 * D + 300, "deploy", "rolled_back", 0),                /* failed at once, restored at once */
		ro(3 * D, 3 * D + 600, "deploy", "succeeded", 3 * D - 4 * H),     /* lead 4h10m; a rollback follows */
		ro(3 * D + 2 * H, 3 * D + 2 * H + 120, "rollback", "succeeded", 0), /* restore 120s */
		ro(5 * D, 5 * D + 600, "restart", "succeeded", 0),                 /* not a deploy */
		ro(6 * D, 6 * D + 600, "promote", "succeeded", 6 * D - 1 * H),    /* lead 1h10m; an incident follows */
		ro(8 * D, 8 * D + 60, "deploy", "succeeded", 0),                   /* no commit time */
		ro(9 * D, 0, "deploy", "running", 0),
	};
	struct dora_incident inc[] = { { 6 * D + 3 * H, 6 * D + 5 * H } };
	struct dora_figures f;
	json_t *j;
	(void)state;
	dc(r, ARRAY_SIZE(r), inc, 1, 0, 10 * D, &f);
	assert_int_equal(f.deployments, 4);
	assert_true(f.per_day > 0.39 && f.per_day < 0.41);
	assert_int_equal(f.finished, 5);
	assert_int_equal(f.failures, 3);              /* the rolled back one, the rolled back from, the incident */
	assert_true(f.change_failure_rate > 0.59 && f.change_failure_rate < 0.61);
	assert_int_equal(f.lead_samples, 3);
	assert_int_equal(f.lead_median, 2 * H + 600);
	assert_int_equal(f.lead_p90, 4 * H + 600);
	assert_int_equal(f.restored, 3);
	/* restores: the rolled back deploy at once (0), the manual rollback after 120s,
	 * the incident when it closed, after 2h */
	assert_int_equal(f.unrestored, 0);
	assert_int_equal(f.restore_median, 120);
	j = dora_json(&f);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "deployment_frequency"), "deployments")), 4);
	assert_true(json_is_real(json_object_get(json_object_get(j, "change_failure_rate"), "rate")));
	json_decref(j);
}

static void test_restore_times(void **state)
{
	struct dora_rollout r[] = {
		ro(100, 200, "deploy", "succeeded", 0),
		ro(1000, 1100, "rollback", "succeeded", 0),
		ro(5000, 5100, "deploy", "failed", 0),
		ro(7000, 7300, "deploy", "succeeded", 0),
	};
	struct dora_figures f;
	(void)state;
	dc(r, ARRAY_SIZE(r), NULL, 0, 0, D, &f);
	assert_int_equal(f.failures, 2);
	assert_int_equal(f.finished, 3);
	assert_int_equal(f.restored, 2);
	/* 1000 -> 1100 (100s) and 5100 -> 7300 (2200s): median 1150 */
	assert_int_equal(f.restore_median, 1150);
}

static void test_outside_window_and_open_incident(void **state)
{
	struct dora_rollout r[] = {
		ro(100, 200, "deploy", "succeeded", 0),
		ro(100 + 2 * D, 100 + 2 * D + 10, "rollback", "succeeded", 0), /* two days later: not counted */
		ro(10 * D, 10 * D + 10, "deploy", "succeeded", 0),
	};
	struct dora_incident inc[] = { { 10 * D + 100, 0 } };
	struct dora_figures f;
	(void)state;
	dc(r, ARRAY_SIZE(r), inc, 1, 0, 11 * D, &f);
	assert_int_equal(f.deployments, 2);
	assert_int_equal(f.failures, 1);
	assert_int_equal(f.unrestored, 1);
	assert_int_equal(f.restore_median, -1);
	assert_int_equal(f.lead_median, -1);
	/* nothing at all */
	dc(NULL, 0, NULL, 0, 0, D, &f);
	assert_int_equal(f.deployments, 0);
	assert_true(f.change_failure_rate < 0);
}

/* a release (releases_dora): a failed one followed by its own rollback, kind "restore" */
static void test_release_restore(void **state)
{
	struct dora_rollout r[] = {
		ro(1 * D, 1 * D + 600, "deploy", "succeeded", 0),
		ro(2 * D, 2 * D + 300, "deploy", "failed", 0),            /* its service failed at +300 s */
		ro(2 * D + 300, 2 * D + 420, "restore", "succeeded", 0),  /* its rollback took 120 s */
	};
	struct dora_figures f;
	(void)state;
	dc(r, 3, NULL, 0, 0, 10 * D, &f);
	/* the restore is no rollback away from the release before it, nor a deployment */
	assert_int_equal(f.deployments, 1);
	assert_int_equal(f.finished, 2);
	assert_int_equal(f.failures, 1);
	assert_int_equal(f.restored, 1);
	assert_int_equal(f.unrestored, 0);
	assert_int_equal(f.restore_median, 120);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scripted_history),
		cmocka_unit_test(test_restore_times),
		cmocka_unit_test(test_outside_window_and_open_incident),
		cmocka_unit_test(test_release_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
