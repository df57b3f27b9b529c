#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "core/diag.h"

/* prints d into a string (owned by the caller) */
static char *print_to_string(const struct diags *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	diags_print(d, f);
	fclose(f);
	return buf;
}

static void test_format(void **state)
{
	struct diags d = { 0 };
	char *out;
	(void)state;

	diags_add(&d, "gantry.yaml", 12, 18, "services.api.strategy.rolling.max_surge", "      max_surge: 25 %",
		  "invalid percentage '%s' (expected e.g. 25%% or 2)", "25 %");
	diags_add(&d, "gantry.yaml", 0, 0, NULL, NULL, "cannot open: %s", "No such file or directory");
	assert_int_equal(d.n, 2);
	out = print_to_string(&d);
	assert_string_equal(out,
			    "gantry.yaml:12:18: error: services.api.strategy.rolling.max_surge: invalid percentage '25 %' (expected e.g. 25% or 2)\n"
			    " 12 |       max_surge: 25 %\n"
			    "    |                  ^\n"
			    "gantry.yaml: error: cannot open: No such file or directory\n");
	free(out);
	diags_release(&d);
	assert_int_equal(d.n, 0);
	assert_null(d.items);
}

static void test_caret_keeps_tabs(void **state)
{
	struct diags d = { 0 };
	char *out;
	(void)state;

	diags_add(&d, "f", 1, 3, NULL, "\t\tx: 1", "bad");
	out = print_to_string(&d);
	assert_string_equal(out, "f:1:3: error: bad\n 1 | \t\tx: 1\n   | \t\t^\n");
	free(out);
	diags_release(&d);
}

static void test_bounded(void **state)
{
	struct diags d = { 0 };
	(void)state;
	for (int i = 0; i < 1000; i++)
		diags_add(&d, "f", i + 1, 1, "p", NULL, "error %d", i);
	assert_true(d.n <= 200);
	assert_string_equal(d.items[d.n - 1].message, "too many errors, stopping here");
	diags_release(&d);
	/* a NULL list is ignored, not a crash */
	diags_add(NULL, "f", 1, 1, NULL, NULL, "x");
}

static void test_suggest(void **state)
{
	static const char *const keys[] = { "replicas", "run", "readiness", "production", "staging", "env" };
	(void)state;
	assert_string_equal(diag_suggest("relicas", keys, ARRAY_SIZE(keys)), "replicas");
	assert_string_equal(diag_suggest("replcias", keys, ARRAY_SIZE(keys)), "replicas");
	assert_string_equal(diag_suggest("rn", keys, ARRAY_SIZE(keys)), "run");
	assert_string_equal(diag_suggest("prod", keys, ARRAY_SIZE(keys)), "production");
	assert_string_equal(diag_suggest("stagin", keys, ARRAY_SIZE(keys)), "staging");
	assert_null(diag_suggest("completely-different", keys, ARRAY_SIZE(keys)));
	assert_null(diag_suggest("x", keys, ARRAY_SIZE(keys)));
	assert_null(diag_suggest("", keys, ARRAY_SIZE(keys)));
	assert_null(diag_suggest("re", keys, ARRAY_SIZE(keys))); /* too short to guess */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_caret_keeps_tabs),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_suggest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
