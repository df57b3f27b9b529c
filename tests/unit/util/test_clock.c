/* util/clock.c: the wall clock honours GANTRY_NOW and GANTRY_NOW_FILE, the monotonic and steady
 * ones never step; RFC 3339 */
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

static void write_step(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_now_file(void **state)
{
	char path[] = "/tmp/gantry-test-clock-XXXXXX";
	int fd = mkstemp(path);
	int64_t real;
	(void)state;
	assert_true(fd >= 0);
	close(fd);
	unsetenv("GANTRY_NOW");
	setenv("GANTRY_NOW_FILE", path, 1);
	/* empty: no step */
	real = clock_now_s();
	assert_true(real > ts("2024-01-01T00:00:00Z"));
	/* an hour forward, then back, read at each call */
	write_step(path, "3600\n");
	assert_true(clock_now_s() - real >= 3600 && clock_now_s() - real <= 3602);
	assert_true(clock_now_ms() / 1000 - real >= 3600 && clock_now_ms() / 1000 - real <= 3602);
	write_step(path, "-3600");
	assert_true(real - clock_now_s() >= 3598 && real - clock_now_s() <= 3600);
	/* added to GANTRY_NOW too */
	setenv("GANTRY_NOW", "2024-05-10T15:00:00Z", 1);
	assert_int_equal(clock_now_s(), ts("2024-05-10T14:00:00Z"));
	assert_int_equal(clock_now_ms(), ts("2024-05-10T14:00:00Z") * 1000);
	/* malformed or missing: ignored */
	static const char *const bad[] = { "", "+1h", "3600x", "99999999999999999999", "36 00" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		write_step(path, bad[i]);
		if (clock_now_s() != ts("2024-05-10T15:00:00Z"))
			fail_msg("GANTRY_NOW_FILE holding '%s' was not ignored", bad[i]);
	}
	unlink(path);
	assert_int_equal(clock_now_s(), ts("2024-05-10T15:00:00Z"));
	unsetenv("GANTRY_NOW");
	unsetenv("GANTRY_NOW_FILE");
}

/* the steady clock's arithmetic with an injected clock: anchored once, then monotonic */
static void test_steady_anchor(void **state)
{
	struct clock_anchor a = { 0 };
	const int64_t wall = ts("2024-05-10T15:00:00Z") * 1000, mono = 400LL * 86400 * 1000;
	(void)state;
	assert_int_equal(clock_anchor_read(&a, wall, mono), wall);
	/* 20 s later the wall clock stepped an hour forward: 20 s passed */
	assert_int_equal(clock_anchor_read(&a, wall + 3600000 + 20000, mono + 20000), wall + 20000);
	/* and an hour back: still only elapsed time */
	assert_int_equal(clock_anchor_read(&a, wall - 3600000 + 30000, mono + 30000), wall + 30000);
	/* a deadline 20 s after the first read expires 20 s of elapsed time later, whatever the wall says */
	assert_true(clock_anchor_read(&a, wall + 7200000, mono + 19999) < wall + 20000);
	assert_true(clock_anchor_read(&a, wall - 7200000, mono + 20000) >= wall + 20000);
	/* a new process (a restart) anchors to the wall clock again: the step counts as time passed */
	struct clock_anchor b = { 0 };
	assert_int_equal(clock_anchor_read(&b, wall + 3600000, 5), wall + 3600000);
}

/* the real steady clock: a step written to GANTRY_NOW_FILE moves the wall clock, not it */
static void test_steady(void **state)
{
	char path[] = "/tmp/gantry-test-clock-XXXXXX";
	int fd = mkstemp(path);
	int64_t s0, m0, s1, m1;
	(void)state;
	assert_true(fd >= 0);
	close(fd);
	unsetenv("GANTRY_NOW");
	setenv("GANTRY_NOW_FILE", path, 1);
	s0 = clock_steady_ms();
	m0 = clock_mono_ms();
	write_step(path, "3600");
	usleep(20 * 1000);
	s1 = clock_steady_ms();
	m1 = clock_mono_ms();
	assert_true(s1 - s0 >= 20 && s1 - s0 <= m1 - m0 + 1);
	write_step(path, "-3600");
	assert_true(clock_steady_ms() >= s1);
	assert_true(clock_steady_ms() - s1 < 1000);
	unlink(path);
	unsetenv("GANTRY_NOW_FILE");
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
		cmocka_unit_test(test_calendar),   cmocka_unit_test(test_now_file),
		cmocka_unit_test(test_steady_anchor), cmocka_unit_test(test_steady),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
