#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "gates/window.h"

static int64_t ts(const char *s)
{
	int64_t t = 0;
	if (parse_rfc3339(s, &t) < 0)
		fail_msg("bad timestamp %s", s);
	return t;
}

static struct tz *zone(const char *name)
{
	struct tz *tz = NULL;
	struct gerr err;
	if (tz_load(name, &tz, &err) < 0)
		fail_msg("%s", err.msg);
	return tz;
}

static void expect_local(const struct tz *tz, const char *utc, int hour, int min, int utoff, const char *abbr)
{
	struct local_time lt;
	tz_local(tz, ts(utc), &lt);
	if (lt.hour != hour || lt.min != min || lt.utoff != utoff || strcmp(lt.abbr, abbr))
		fail_msg("%s in %s: got %02d:%02d %d %s, want %02d:%02d %d %s", utc, tz_name(tz), lt.hour,
			 lt.min, lt.utoff, lt.abbr, hour, min, utoff, abbr);
}

static void test_zones(void **state)
{
	struct tz *berlin = zone("Europe/Berlin"), *ny = zone("America/New_York"),
		  *syd = zone("Australia/Sydney"), *utc = zone(NULL), *kolkata = zone("Asia/Kolkata");
	struct tz *bad = NULL;
	struct gerr err;
	(void)state;
	/* the spring-forward instant in Berlin, 2024-03-31 01:00 UTC */
	expect_local(berlin, "2024-03-31T00:59:00Z", 1, 59, 3600, "CET");
	expect_local(berlin, "2024-03-31T01:00:00Z", 3, 0, 7200, "CEST");
	expect_local(berlin, "2024-10-27T00:59:00Z", 2, 59, 7200, "CEST");
	expect_local(berlin, "2024-10-27T01:00:00Z", 2, 0, 3600, "CET");
	/* past the last transition in the file: the POSIX footer rule */
	expect_local(berlin, "2061-07-01T12:00:00Z", 14, 0, 7200, "CEST");
	expect_local(berlin, "2061-12-01T12:00:00Z", 13, 0, 3600, "CET");
	expect_local(ny, "2024-03-10T06:59:00Z", 1, 59, -18000, "EST");
	expect_local(ny, "2024-03-10T07:00:00Z", 3, 0, -14400, "EDT");
	expect_local(ny, "2055-11-07T05:59:00Z", 1, 59, -14400, "EDT");
	expect_local(ny, "2055-11-07T06:00:00Z", 1, 0, -18000, "EST");
	/* southern hemisphere: daylight time over the new year */
	expect_local(syd, "2024-01-15T00:00:00Z", 11, 0, 39600, "AEDT");
	expect_local(syd, "2024-07-15T00:00:00Z", 10, 0, 36000, "AEST");
	expect_local(syd, "2060-01-15T00:00:00Z", 11, 0, 39600, "AEDT");
	expect_local(syd, "2060-07-15T00:00:00Z", 10, 0, 36000, "AEST");
	expect_local(kolkata, "2024-05-10T12:00:00Z", 17, 30, 19800, "IST");
	expect_local(utc, "2024-05-10T12:00:00Z", 12, 0, 0, "UTC");
	assert_int_equal(tz_load("Mars/Olympus", &bad, &err), -1);
	assert_non_null(strstr(err.msg, "unknown time zone"));
	assert_int_equal(tz_load("../../etc/passwd", &bad, &err), -1);
	assert_int_equal(tz_load("/etc/localtime", &bad, &err), -1);
	assert_null(bad);
	tz_free(berlin);
	tz_free(ny);
	tz_free(syd);
	tz_free(utc);
	tz_free(kolkata);
}

static struct windows make(const char *allow, const char *deny, const char *tz)
{
	struct windows w;
	struct gerr err;
	const char *a[] = { allow }, *d[] = { deny };
	if (windows_init(&w, a, allow ? 1 : 0, d, deny ? 1 : 0, tz, &err) < 0)
		fail_msg("%s", err.msg);
	return w;
}

/* allowed at `at`? If not, the next allowed instant must be `next` */
static void expect(const struct windows *w, const char *at, bool allowed, const char *next)
{
	int64_t nx;
	char why[128] = "";
	int r = windows_check(w, ts(at), &nx, why, sizeof(why));
	if (r != (allowed ? 1 : 0))
		fail_msg("%s: got %s, want %s", at, r ? "allowed" : "refused", allowed ? "allowed" : "refused");
	if (!allowed) {
		assert_true(why[0] != 0);
		if (nx != (next ? ts(next) : -1)) {
			char got[40];
			format_rfc3339(nx, got, sizeof(got));
			fail_msg("%s: next allowed %s, want %s", at, nx < 0 ? "none" : got, next ? next : "none");
		}
	}
}

static void test_friday_freeze_berlin(void **state)
{
	struct windows w = make(NULL, "Fri 17:00-Mon 08:00", "Europe/Berlin");
	(void)state;
	/* 2024-05-10 is a Friday; Berlin is UTC+2 in May */
	expect(&w, "2024-05-10T14:59:00Z", true, NULL);
	expect(&w, "2024-05-10T15:00:00Z", false, "2024-05-13T06:00:00Z");
	expect(&w, "2024-05-11T12:00:00Z", false, "2024-05-13T06:00:00Z");
	expect(&w, "2024-05-13T05:59:59Z", false, "2024-05-13T06:00:00Z");
	expect(&w, "2024-05-13T06:00:00Z", true, NULL);
	expect(&w, "2024-05-15T12:00:00Z", true, NULL);
	/* in January (UTC+1) the same wall-clock times are an hour later in UTC */
	expect(&w, "2024-01-12T15:30:00Z", true, NULL);
	expect(&w, "2024-01-12T16:00:00Z", false, "2024-01-15T07:00:00Z");
	windows_release(&w);
}

static void test_week_boundary_and_daily(void **state)
{
	struct windows w = make(NULL, "Sun 22:00-Mon 02:00", NULL), d = make(NULL, "Mon-Fri 22:00-06:00", NULL);
	(void)state;
	/* 2024-05-12 is a Sunday */
	expect(&w, "2024-05-12T21:59:00Z", true, NULL);
	expect(&w, "2024-05-12T23:00:00Z", false, "2024-05-13T02:00:00Z");
	expect(&w, "2024-05-13T01:00:00Z", false, "2024-05-13T02:00:00Z");
	expect(&w, "2024-05-13T02:00:00Z", true, NULL);
	/* nightly, the Friday night running into Saturday */
	expect(&d, "2024-05-10T23:00:00Z", false, "2024-05-11T06:00:00Z");
	expect(&d, "2024-05-11T05:00:00Z", false, "2024-05-11T06:00:00Z");
	expect(&d, "2024-05-11T23:00:00Z", true, NULL); /* Saturday night is not listed */
	expect(&d, "2024-05-13T03:00:00Z", true, NULL); /* Monday 03:00: Sunday night is not listed */
	expect(&d, "2024-05-13T12:00:00Z", true, NULL);
	windows_release(&w);
	windows_release(&d);
}

static void test_dst_gap(void **state)
{
	/* the deny window ends at 02:30 local on the night the clocks skip 02:00-03:00 */
	struct windows w = make(NULL, "Sat 20:00-Sun 02:30", "Europe/Berlin");
	(void)state;
	expect(&w, "2024-03-31T00:45:00Z", false, "2024-03-31T01:00:00Z"); /* 01:45 CET -> 03:00 CEST */
	expect(&w, "2024-03-31T01:00:00Z", true, NULL);
	/* autumn: 02:00-03:00 happens twice; wall-clock rules apply to both passes */
	expect(&w, "2024-10-27T00:15:00Z", false, "2024-10-27T00:30:00Z"); /* 02:15 CEST */
	expect(&w, "2024-10-27T00:45:00Z", true, NULL);                     /* 02:45 CEST */
	expect(&w, "2024-10-27T01:15:00Z", false, "2024-10-27T01:30:00Z");
	expect(&w, "2024-10-27T01:30:00Z", true, NULL);
	windows_release(&w);
}

static void test_allow_and_deny(void **state)
{
	struct windows w;
	struct gerr err;
	const char *allow[] = { "Mon-Thu 09:00-17:00", "Fri 09:00-12:00" };
	const char *deny[] = { "Wed 12:00-13:00" };
	(void)state;
	assert_int_equal(windows_init(&w, allow, 2, deny, 1, "UTC", &err), 0);
	expect(&w, "2024-05-08T10:00:00Z", true, NULL);                      /* Wed 10:00 */
	expect(&w, "2024-05-08T12:30:00Z", false, "2024-05-08T13:00:00Z");   /* lunch */
	expect(&w, "2024-05-10T12:00:00Z", false, "2024-05-13T09:00:00Z");   /* Fri after noon */
	expect(&w, "2024-05-12T12:00:00Z", false, "2024-05-13T09:00:00Z");   /* Sunday */
	windows_release(&w);
	/* deny everything: no next time */
	w = make(NULL, "Mon-Sun", NULL);
	expect(&w, "2024-05-12T12:00:00Z", false, NULL);
	windows_release(&w);
}

static void test_parse(void **state)
{
	static const struct {
		const char *text;
		size_t nspans;
		int start0, end0;
	} good[] = {
		{ "Fri 17:00-Mon 08:00", 2, 4 * 1440 + 1020, WEEK_MINUTES },
		{ "fri 17:00 - mon 08:00", 2, 4 * 1440 + 1020, WEEK_MINUTES },
		{ "Friday 17:00-Monday 08:00", 2, 4 * 1440 + 1020, WEEK_MINUTES },
		{ "Mon 09:00-Mon 17:00", 1, 540, 1020 },
		{ "Tue 09:00-12:00", 1, 1440 + 540, 1440 + 720 },
		{ "Sat,Sun", 2, 5 * 1440, 6 * 1440 },
		{ "Sat-Sun", 2, 5 * 1440, 6 * 1440 },
		{ "Sun-Mon", 2, 0, 1440 },
		{ "09:00-17:00", 7, 540, 1020 },
		{ "22:00-24:00", 7, 1320, 1440 },
		{ "Mon,Wed-Thu 10:00-12:00", 3, 600, 720 },
	};
	static const char *const bad[] = {
		"", "Funday", "Fri 25:00-Mon 08:00", "Fri 17:00-", "Fri 17:00-Mon", "Fri 17:00-Fri 17:00",
		"17:00", "17:00-17:00", "Mon 9-17", "Mon-Fri 09:00-17:00 x", "24:00-01:00", "Mon,", "Mo 10:00-11:00",
		"Fri 17:60-Mon 08:00",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct window_set s = { 0 };
		struct gerr err;
		if (window_parse(good[i].text, &s, &err) < 0)
			fail_msg("'%s': %s", good[i].text, err.msg);
		if (s.n != good[i].nspans || s.spans[0].start != good[i].start0 || s.spans[0].end != good[i].end0)
			fail_msg("'%s': %zu spans, first [%d,%d)", good[i].text, s.n, s.n ? s.spans[0].start : -1,
				 s.n ? s.spans[0].end : -1);
		window_set_release(&s);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct window_set s = { 0 };
		struct gerr err;
		int r = window_parse(bad[i], &s, &err);
		if (r == 0) {
			fail_msg("'%s' was accepted", bad[i]);
		} else {
			assert_non_null(strchr(err.msg, '\''));
		}
		window_set_release(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zones),
		cmocka_unit_test(test_friday_freeze_berlin),
		cmocka_unit_test(test_week_boundary_and_daily),
		cmocka_unit_test(test_dst_gap),
		cmocka_unit_test(test_allow_and_deny),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
