#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "daemon/disk.h"

/* the --low-disk values a user writes, and the ones refused */
static void test_threshold_parse(void **state)
{
	struct disk_threshold t;
	struct gerr err;
	(void)state;

	assert_int_equal(disk_threshold_parse("5%", &t, &err), 0);
	assert_false(t.is_size);
	assert_true(t.pct == 5.0);
	assert_string_equal(t.text, "5%");
	assert_int_equal(disk_threshold_parse("0.5%", &t, &err), 0);
	assert_true(t.pct == 0.5);
	assert_int_equal(disk_threshold_parse("0%", &t, &err), 0);
	assert_true(disk_threshold_pct(&t, 1 << 30) == 0);
	assert_int_equal(disk_threshold_parse("500Mi", &t, &err), 0);
	assert_true(t.is_size);
	assert_int_equal(t.bytes, 500LL << 20);
	assert_int_equal(disk_threshold_parse("2G", &t, &err), 0);
	assert_int_equal(t.bytes, 2000000000LL);

	/* a bare number: percent or bytes? refused, naming the flag */
	assert_int_equal(disk_threshold_parse("5", &t, &err), -1);
	assert_non_null(strstr(err.msg, "--low-disk: '5'"));
	assert_non_null(strstr(err.msg, "500Mi"));
	assert_int_equal(disk_threshold_parse("100%", &t, &err), -1);
	assert_int_equal(disk_threshold_parse("-1%", &t, &err), -1);
	assert_int_equal(disk_threshold_parse("5 %", &t, &err), -1);
	assert_int_equal(disk_threshold_parse("lots", &t, &err), -1);
	assert_int_equal(disk_threshold_parse("", &t, &err), -1);
	assert_int_equal(disk_threshold_parse("500Mb", &t, &err), -1);
}

/* a size is a share of the filesystem it is measured on */
static void test_threshold_pct_of_size(void **state)
{
	struct disk_threshold t;
	struct gerr err;
	(void)state;

	assert_int_equal(disk_threshold_parse("1Gi", &t, &err), 0);
	assert_true(disk_threshold_pct(&t, 20ULL << 30) == 5.0);
	/* larger than the filesystem: always low */
	assert_true(disk_threshold_pct(&t, 512ULL << 20) == 200.0);
	assert_int_equal(disk_threshold_parse("5%", &t, &err), 0);
	assert_true(disk_threshold_pct(&t, 20ULL << 30) == 5.0);
}

/* low strictly below the threshold; back to ok only at threshold + 1 point */
static void test_hysteresis(void **state)
{
	(void)state;
	assert_false(disk_low_next(false, 5.0, 5.0));
	assert_true(disk_low_next(false, 4.99, 5.0));
	assert_true(disk_low_next(true, 5.0, 5.0));
	assert_true(disk_low_next(true, 5.99, 5.0));
	assert_false(disk_low_next(true, 6.0, 5.0));
	assert_false(disk_low_next(true, 50.0, 5.0));
	/* off */
	assert_false(disk_low_next(false, 0.0, 0.0));
	assert_false(disk_low_next(true, 0.0, 0.0));
	/* a threshold above 100% (a size larger than the filesystem) never clears */
	assert_true(disk_low_next(false, 100.0, 200.0));
	assert_true(disk_low_next(true, 100.0, 200.0));
}

/* a disk hovering around the threshold crosses once, not at every measurement */
static void test_hovering_crosses_once(void **state)
{
	static const double free_pct[] = { 9, 7, 5.2, 4.9, 5.1, 4.8, 5.5, 5.9, 4.7, 5.95, 6.0, 5.9, 5.1, 4.99, 10 };
	static const bool want[] = { 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0 };
	bool low = false;
	int crossings = 0;
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(free_pct); i++) {
		bool next = disk_low_next(low, free_pct[i], 5.0);
		crossings += next != low;
		low = next;
		assert_int_equal(low, want[i]);
	}
	/* low, ok, low, ok */
	assert_int_equal(crossings, 4);
}

static void test_format_bytes(void **state)
{
	char b[32];
	(void)state;
	assert_string_equal(disk_format_bytes(0, b, sizeof(b)), "0 B");
	assert_string_equal(disk_format_bytes(1023, b, sizeof(b)), "1023 B");
	assert_string_equal(disk_format_bytes(1024, b, sizeof(b)), "1.0 KiB");
	assert_string_equal(disk_format_bytes(412ULL << 20, b, sizeof(b)), "412 MiB");
	/* rounded down: never more than there is */
	assert_string_equal(disk_format_bytes((uint64_t)(19.69 * (1 << 30)), b, sizeof(b)), "19.6 GiB");
	assert_string_equal(disk_format_bytes(16ULL << 20, b, sizeof(b)), "16.0 MiB");
	assert_string_equal(disk_format_bytes(3ULL << 40, b, sizeof(b)), "3.0 TiB");
}

static void test_describe(void **state)
{
	char b[512];
	uint64_t total = (uint64_t)(19.6 * (1 << 30)) + (1 << 20);
	(void)state;
	disk_describe("/var/lib/gantry", 412ULL << 20, total, "5%", true, b, sizeof(b));
	assert_string_equal(b, "HOME (/var/lib/gantry) has 2.0% free (412 MiB of 19.6 GiB), below the 5% threshold: "
			       "free space before the state store fills");
	disk_describe("/h", 1900ULL << 20, 16ULL << 30, "1Gi", false, b, sizeof(b));
	assert_string_equal(b, "HOME (/h) has 11.5% free (1.8 GiB of 16.0 GiB), above the 1Gi threshold again");
	/* 4.96% is not shown as 5.0%, below a 5% threshold */
	disk_describe("/h", 496, 10000, "5%", true, b, sizeof(b));
	assert_non_null(strstr(b, "has 4.9% free"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_parse),
		cmocka_unit_test(test_threshold_pct_of_size),
		cmocka_unit_test(test_hysteresis),
		cmocka_unit_test(test_hovering_crosses_once),
		cmocka_unit_test(test_format_bytes),
		cmocka_unit_test(test_describe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
