#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "util/parse.h"

static void test_duration_good(void **state)
{
	static const struct {
		const char *in;
		int64_t ms;
	} cases[] = {
		{ "0", 0 },          { "0s", 0 },           { "250ms", 250 },       { "90s", 90000 },
		{ "10m", 600000 },   { "1m30s", 90000 },    { "2h", 7200000 },      { "1d", 86400000 },
		{ "1.5m", 90000 },   { "0.5s", 500 },       { "1h30m15s", 5415000 }, { "1s500ms", 1500 },
		{ "100000d", 8640000000000LL },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t v = -1;
		assert_int_equal(parse_duration_ms(cases[i].in, &v), 0);
		assert_int_equal(v, cases[i].ms);
	}
}

static void test_duration_bad(void **state)
{
	/* a bare number is ambiguous (seconds? ms?): only "0" is accepted */
	static const char *const bad[] = {
		"", "10", "10x", "-1s", "+1s", " 1s", "1s ", "1 s", "s", "1.s", ".5s", "1.0005s",
		"1e3s", "0x10s", "1s1s", "1m1m", "1S", "99999999999999999999s", "200000000000d", "nan", "inf",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t v = 42;
		if (parse_duration_ms(bad[i], &v) != -1)
			fail_msg("duration '%s' accepted", bad[i]);
		assert_int_equal(v, 42); /* out untouched on error */
	}
}

static void test_size(void **state)
{
	static const struct {
		const char *in;
		int64_t bytes;
	} good[] = {
		{ "1024", 1024 },     { "64k", 64000 },          { "64K", 64000 },
		{ "1Ki", 1024 },      { "256Mi", 268435456 },    { "1Gi", 1073741824 },
		{ "512M", 512000000 }, { "2G", 2000000000 },     { "1.5Ki", 1536 },
		{ "1Ti", 1099511627776LL }, { "0", 0 },
	};
	static const char *const bad[] = { "", "Mi", "256MB", "256mi", "1 Gi", "-1", "1.5", "0.1", "1e3", "Gi1",
					   "99999999999Ti" };
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		int64_t v = -1;
		if (parse_size(good[i].in, &v))
			fail_msg("size '%s' rejected", good[i].in);
		assert_int_equal(v, good[i].bytes);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t v;
		if (!parse_size(bad[i], &v))
			fail_msg("size '%s' accepted", bad[i]);
	}
}

static void test_cpu(void **state)
{
	static const struct {
		const char *in;
		int64_t m;
	} good[] = { { "500m", 500 }, { "2", 2000 }, { "0.5", 500 }, { "1.25", 1250 }, { "0.001", 1 }, { "1m", 1 } };
	static const char *const bad[] = { "", "m", "0.0005", "0.5m", "500 m", "-1", "1c", "1.", "2x" };
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		int64_t v = -1;
		if (parse_cpu_millis(good[i].in, &v))
			fail_msg("cpu '%s' rejected", good[i].in);
		assert_int_equal(v, good[i].m);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t v;
		if (!parse_cpu_millis(bad[i], &v))
			fail_msg("cpu '%s' accepted", bad[i]);
	}
}

static void test_percent(void **state)
{
	double v = -1;
	static const char *const bad[] = { "", "25", "25 %", "%", "-5%", "+5%", "25%%", "1e2%", "0x1%", "nan%" };
	(void)state;
	assert_int_equal(parse_percent("25%", &v), 0);
	assert_true(v == 25.0);
	assert_int_equal(parse_percent("0.1%", &v), 0);
	assert_true(v > 0.0999999 && v < 0.1000001);
	assert_int_equal(parse_percent("0%", &v), 0);
	assert_true(v == 0.0);
	assert_int_equal(parse_percent("100%", &v), 0);
	assert_true(v == 100.0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (!parse_percent(bad[i], &v))
			fail_msg("percent '%s' accepted", bad[i]);
}

static void test_format_duration(void **state)
{
	char buf[32];
	int64_t back;
	static const int64_t values[] = { 0, 1, 250, 1000, 90000, 600000, 3600000, 86400000, 90061001 };
	(void)state;
	assert_string_equal(format_duration(90000, buf, sizeof(buf)), "1m30s");
	assert_string_equal(format_duration(250, buf, sizeof(buf)), "250ms");
	assert_string_equal(format_duration(0, buf, sizeof(buf)), "0s");
	assert_string_equal(format_duration(90061001, buf, sizeof(buf)), "1d1h1m1s1ms");
	/* whatever it prints parses back to the same value */
	for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
		format_duration(values[i], buf, sizeof(buf));
		assert_int_equal(parse_duration_ms(buf, &back), 0);
		assert_int_equal(back, values[i]);
	}
	/* a short buffer is cut, never overrun */
	format_duration(90061001, buf, 4);
	assert_true(strlen(buf) < 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_good), cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_size),          cmocka_unit_test(test_cpu),
		cmocka_unit_test(test_percent),       cmocka_unit_test(test_format_duration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
