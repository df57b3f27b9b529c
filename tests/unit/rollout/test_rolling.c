#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "rollout/rolling.h"

static struct strategy rolling(double surge, bool surge_pct, double unavail, bool unavail_pct)
{
	struct strategy s = { .kind = STRATEGY_ROLLING };
	s.max_surge.value = surge;
	s.max_surge.is_pct = surge_pct;
	s.max_unavailable.value = unavail;
	s.max_unavailable.is_pct = unavail_pct;
	return s;
}

/* simulate a whole rollout: each started replica becomes ready next tick,
 * each stop takes effect at once; check invariants at every tick */
static int simulate(int desired, int old, struct strategy s, int *max_total, int *min_ready)
{
	struct rolling_counts c = { .desired = desired, .old_total = old, .old_ready = old };
	int starting = 0, ticks = 0;
	struct rolling_plan p;

	*max_total = old;
	*min_ready = old;
	for (;;) {
		/* replicas started last tick are ready now */
		c.new_ready += starting;
		starting = 0;
		rolling_plan(&c, &s, &p);
		if (p.done)
			return ticks;
		c.old_total -= p.stop_old_unready + p.stop_old_ready;
		c.old_ready -= p.stop_old_ready;
		c.new_total += p.start_new;
		starting = p.start_new;
		*max_total = MAX(*max_total, c.new_total + c.old_total);
		*min_ready = MIN(*min_ready, c.new_ready + c.old_ready);
		if (++ticks > 100)
			return -1;
	}
}

static void test_default_3_replicas(void **state)
{
	(void)state;
	int max_total, min_ready;
	/* default: max_surge 25% (rounds up to 1), max_unavailable 0 */
	int t = simulate(3, 3, rolling(25, true, 0, false), &max_total, &min_ready);
	assert_true(t > 0);
	assert_int_equal(max_total, 4);
	assert_int_equal(min_ready, 3);
}

static void test_percent_rounding(void **state)
{
	(void)state;
	struct intpct p = { .is_pct = true, .value = 25 };
	assert_int_equal(intpct_resolve(&p, 3, true), 1);
	assert_int_equal(intpct_resolve(&p, 3, false), 0);
	assert_int_equal(intpct_resolve(&p, 8, true), 2);
	p.value = 100;
	assert_int_equal(intpct_resolve(&p, 3, false), 3);
}

static void test_surge_and_unavailable(void **state)
{
	(void)state;
	int max_total, min_ready;
	int t = simulate(4, 4, rolling(2, false, 1, false), &max_total, &min_ready);
	assert_true(t > 0);
	assert_true(max_total <= 6);
	assert_true(min_ready >= 3);
}

static void test_zero_zero_still_progresses(void **state)
{
	(void)state;
	int max_total, min_ready;
	int t = simulate(2, 2, rolling(0, false, 0, false), &max_total, &min_ready);
	assert_true(t > 0);
	assert_int_equal(max_total, 3);
	assert_int_equal(min_ready, 2);
}

static void test_first_deploy(void **state)
{
	(void)state;
	struct rolling_counts c = { .desired = 3 };
	struct strategy s = rolling(25, true, 0, false);
	struct rolling_plan p;
	rolling_plan(&c, &s, &p);
	/* nothing old: start everything up to desired + surge, but only desired */
	assert_int_equal(p.start_new, 3);
	assert_false(p.done);
}

static void test_unready_old_stopped_first(void **state)
{
	(void)state;
	struct rolling_counts c = { .desired = 2, .old_total = 2, .old_ready = 0 };
	struct strategy s = rolling(1, false, 0, false);
	struct rolling_plan p;
	rolling_plan(&c, &s, &p);
	assert_int_equal(p.stop_old_unready, 2);
	assert_int_equal(p.stop_old_ready, 0);
}

static void test_no_old_stop_before_new_ready(void **state)
{
	(void)state;
	struct rolling_counts c = { .desired = 1, .old_total = 1, .old_ready = 1, .new_total = 1 };
	struct strategy s = rolling(1, false, 0, false);
	struct rolling_plan p;
	rolling_plan(&c, &s, &p);
	assert_int_equal(p.stop_old_ready, 0);
	c.new_ready = 1;
	rolling_plan(&c, &s, &p);
	assert_int_equal(p.stop_old_ready, 1);
}

static void test_more_old_than_desired(void **state)
{
	(void)state;
	/* warm replicas of two old revisions (4) for a target of 2 with surge 1:
	 * no room to start, so old ones beyond what availability needs must go */
	struct rolling_counts c = { .desired = 2, .old_total = 4, .old_ready = 4 };
	struct strategy s = rolling(1, false, 0, false);
	struct rolling_plan p;
	int max_total, min_ready;
	rolling_plan(&c, &s, &p);
	assert_int_equal(p.start_new, 0);
	assert_int_equal(p.stop_old_ready, 2);
	assert_true(simulate(2, 4, s, &max_total, &min_ready) > 0);
	assert_true(min_ready >= 2);
}

static void test_recreate(void **state)
{
	(void)state;
	struct rolling_counts c = { .desired = 2, .old_total = 2, .old_ready = 2 };
	struct strategy s = { .kind = STRATEGY_RECREATE };
	struct rolling_plan p;
	rolling_plan(&c, &s, &p);
	assert_int_equal(p.stop_old_ready, 2);
	assert_int_equal(p.start_new, 0);
	c.old_total = c.old_ready = 0;
	rolling_plan(&c, &s, &p);
	assert_int_equal(p.start_new, 2);
}

static void test_scale_down(void **state)
{
	(void)state;
	struct rolling_counts c = { .desired = 1, .new_total = 3, .new_ready = 3 };
	struct strategy s = rolling(25, true, 0, false);
	struct rolling_plan p;
	rolling_plan(&c, &s, &p);
	assert_int_equal(p.stop_new, 2);
	assert_false(p.done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_3_replicas),
		cmocka_unit_test(test_percent_rounding),
		cmocka_unit_test(test_surge_and_unavailable),
		cmocka_unit_test(test_zero_zero_still_progresses),
		cmocka_unit_test(test_first_deploy),
		cmocka_unit_test(test_unready_old_stopped_first),
		cmocka_unit_test(test_no_old_stop_before_new_ready),
		cmocka_unit_test(test_more_old_than_desired),
		cmocka_unit_test(test_recreate),
		cmocka_unit_test(test_scale_down),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
