/* util/clock.c: the wall clock honours GANTRY_NOW, the monotonic one never does; RFC 3339 */
#include "common.h"
#include "util/clock.h"
#include <setjmp.h>
#include <cmocka.h>

static int64_t ts(const char *s)
{
	int64_t t = 0;
	if (parse_rfc3339(s, &t) < 0)
		fail_msg("bad timestamp %s", s);
	return t;
}

static void test_gantry_now(void **state)
{
	int64_t m0, m1, real;
	(void)state;
	unsetenv("GANTRY_NOW");
	real = clock_now_s();
	assert_true(real > ts("2024-01-01T00:00:00Z"));
	assert_true(clock_now_ms() / 1000 - real <= 1);
	setenv("GANTRY_NOW", "2024-05-10T15:00:00Z", 1);
	assert_int_equal(clock_now_s(), ts("2024-05-10T15:00:00Z"));
	assert_int_equal(clock_now_ms(), ts("2024-05-10T15:00:00Z") * 1000);
	/* fractions are ignored, offsets applied */
	setenv("GANTRY_NOW", "2024-05-10T17:00:00.750+02:00", 1);
	assert_int_equal(clock_now_s(), ts("2024-05-10T15:00:00Z"));
	/* the monotonic clock runs on: a fixed GANTRY_NOW never freezes a deadline */
	m0 = clock_mono_ms();
	usleep(20 * 1000);
	m1 = clock_mono_ms();
	assert_true(m1 - m0 >= 20);
	assert_true(m1 - m0 < 60 * 1000);
	assert_int_equal(clock_now_s(), ts("2024-05-10T15:00:00Z"));
	/* a file's age is measured on the real clock, whatever GANTRY_NOW says */
	assert_true(clock_file_age_s((time_t)real) >= 0);
	assert_true(clock_file_age_s((time_t)real) < 60);
	unsetenv("GANTRY_NOW");
}

static void test_gantry_now_malformed(void **state)
{
	static const char *const bad[] = { "", "yesterday", "2024-05-10", "2024-05-10T15:00:00",
					   "2024-13-10T15:00:00Z", "2024-05-10T15:00:00Zjunk" };
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		setenv("GANTRY_NOW", bad[i], 1);
		/* ignored: the real clock */
		if (clock_now_s() < ts("2024-06-01T00:00:00Z"))
			fail_msg("GANTRY_NOW=%s was not ignored", bad[i]);
		assert_true(clock_now_ms() > ts("2024-06-01T00:00:00Z") * 1000);
	}
	unsetenv("GANTRY_NOW");
}

static void test_mono(void **state)
{
	struct timespec a, b;
	(void)state;
	/* far from zero: a zero "last time" is long ago */
	assert_true(clock_mono_ms() > 365LL * 86400 * 1000);
	/* a wait's deadline is on CLOCK_MONOTONIC itself */
	clock_gettime(CLOCK_MONOTONIC, &a);
	b = clock_mono_deadline(1500);
	assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= 1500);
	assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 1600);
	assert_true(b.tv_nsec >= 0 && b.tv_nsec < 1000000000);
	b = clock_mono_deadline(-5);
	assert_true(b.tv_sec - a.tv_sec < 2);
}

static void test_rfc3339(void **state)
{
	int64_t t;
	char buf[40];
	(void)state;
	assert_int_equal(ts("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(ts("2024-05-10T17:00:00+02:00"), ts("2024-05-10T15:00:00Z"));
	assert_int_equal(ts("2024-05-10t15:00:00-00:30"), ts("2024-05-10T15:30:00Z"));
	assert_int_equal(ts("2024-05-10T15:00:00.123Z"), ts("2024-05-10T15:00:00Z"));
	assert_int_equal(ts("1969-12-31T23:59:59Z"), -1);
	format_rfc3339(ts("2024-02-29T23:59:58Z"), buf, sizeof(buf));
	assert_string_equal(buf, "2024-02-29T23:59:58Z");
	assert_int_equal(parse_rfc3339("2023-02-29T00:00:00Z", &t), -1);
	assert_int_equal(parse_rfc3339("2024-05-10 15:00", &t), -1);
	assert_int_equal(parse_rfc3339("2024-05-10T15:00:00", &t), -1);
	assert_int_equal(parse_rfc3339("2024-13-10T15:00:00Z", &t), -1);
	assert_int_equal(parse_rfc3339("2024-05-10T15:00:00+2:00", &t), -1);
	/* round trips, also before 1970 and across leap days and centuries */
	for (int64_t x = -2208988800LL; x < 4102444800LL; x += 86400 * 37 + 3599) {
		format_rfc3339(x, buf, sizeof(buf));
		assert_int_equal(parse_rfc3339(buf, &t), 0);
		assert_int_equal(t, x);
	}
	format_rfc3339(-1, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31T23:59:59Z");
	format_rfc3339(ts("2000-02-29T12:00:00Z"), buf, sizeof(buf));
	assert_string_equal(buf, "2000-02-29T12:00:00Z");
}

static void test_calendar(void **state)
{
	int y, m, d;
	(void)state;
	assert_int_equal(days_from_civil(1970, 1, 1), 0);
	assert_int_equal(days_from_civil(2000, 3, 1), 11017);
	civil_from_days(-1, &y, &m, &d);
	assert_true(y == 1969 && m == 12 && d == 31);
	assert_true(is_leap(2000) && is_leap(2024) && !is_leap(1900) && !is_leap(2023));
	assert_int_equal(month_days(2024, 2), 29);
	assert_int_equal(month_days(2100, 2), 28);
	assert_int_equal(floor_div(-1, 60), -1);
	assert_int_equal(floor_div(59, 60), 0);
	assert_int_equal(floor_div(-60, 60), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gantry_now), cmocka_unit_test(test_gantry_now_malformed),
		cmocka_unit_test(test_mono),       cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_calendar),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
