#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "core/spec.h"

static struct spec *must_load(const char *text)
{
	struct diags d = { 0 };
	struct spec *spec = NULL;
	if (spec_load_buf("g.yaml", text, strlen(text), &spec, &d) < 0) {
		diags_print(&d, stderr);
		fail_msg("does not load");
	}
	diags_release(&d);
	return spec;
}

/* exactly one diagnostic, at line:col, path, with msg in its message */
static void one_error(const char *text, int line, int col, const char *path, const char *msg)
{
	struct diags d = { 0 };
	struct spec *spec = NULL;
	assert_int_equal(spec_load_buf("g.yaml", text, strlen(text), &spec, &d), -1);
	if (d.n != 1)
		diags_print(&d, stderr);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.items[0].line, line);
	assert_int_equal(d.items[0].col, col);
	assert_string_equal(d.items[0].path, path);
	if (!strstr(d.items[0].message, msg))
		fail_msg("'%s' does not contain '%s'", d.items[0].message, msg);
	diags_release(&d);
}

static int level_of(const struct spec *spec, const char *name)
{
	const struct spec_service *s = spec_find_service(spec, name);
	assert_non_null(s);
	return s->level;
}

static void test_levels_pure(void **state)
{
	(void)state;
	/* 0 <- 1 <- 3, 0 <- 2 <- 3, 4 alone */
	size_t d1[] = { 0 }, d2[] = { 0 }, d3[] = { 1, 2 };
	size_t ndeps[] = { 0, 1, 1, 2, 0 };
	size_t *deps[] = { NULL, d1, d2, d3, NULL };
	int level[5];
	size_t cycle[6], ncycle = 9;
	assert_int_equal(release_levels(5, ndeps, deps, level, cycle, &ncycle), 0);
	assert_int_equal(ncycle, 0);
	assert_int_equal(level[0], 0);
	assert_int_equal(level[1], 1);
	assert_int_equal(level[2], 1);
	assert_int_equal(level[3], 2);
	assert_int_equal(level[4], 0);
	/* a chain given backwards: the level is the longest path, not the order */
	size_t c0[] = { 1 }, c1[] = { 2 };
	size_t n2[] = { 1, 1, 0 };
	size_t *deps2[] = { c0, c1, NULL };
	assert_int_equal(release_levels(3, n2, deps2, level, cycle, &ncycle), 0);
	assert_int_equal(level[0], 2);
	assert_int_equal(level[1], 1);
	assert_int_equal(level[2], 0);
	assert_int_equal(release_levels(0, NULL, NULL, level, cycle, &ncycle), 0);
}

static void test_cycle_pure(void **state)
{
	(void)state;
	/* 0 -> 1 -> 2 -> 1: the cycle is 1, 2, 1 (0 only leads to it) */
	size_t a[] = { 1 }, b[] = { 2 }, c[] = { 1 };
	size_t ndeps[] = { 1, 1, 1 };
	size_t *deps[] = { a, b, c };
	int level[3];
	size_t cycle[4], ncycle = 0;
	assert_int_equal(release_levels(3, ndeps, deps, level, cycle, &ncycle), -1);
	assert_int_equal(ncycle, 3);
	assert_int_equal(cycle[0], 1);
	assert_int_equal(cycle[1], 2);
	assert_int_equal(cycle[2], 1);
}

static void test_spec_levels(void **state)
{
	(void)state;
	struct spec *spec = must_load("environments: {production: {}}\n"
				      "release: {on_failure: pause}\n"
				      "services:\n"
				      "  c: {run: x, depends_on: [b1, b2]}\n"
				      "  b1: {run: x, depends_on: [a]}\n"
				      "  b2: {run: x, depends_on: [a]}\n"
				      "  a: {run: x}\n");
	assert_int_equal(level_of(spec, "a"), 0);
	assert_int_equal(level_of(spec, "b1"), 1);
	assert_int_equal(level_of(spec, "b2"), 1);
	assert_int_equal(level_of(spec, "c"), 2);
	assert_int_equal(spec_find_service(spec, "c")->ndepends, 2);
	assert_string_equal(spec_find_service(spec, "c")->depends_on[1], "b2");
	assert_int_equal(spec->release_on_failure, RELEASE_PAUSE);
	spec_free(spec);
	spec = must_load("environments: {production: {}}\nservices:\n  a: {run: x}\n");
	assert_int_equal(spec->release_on_failure, RELEASE_ROLLBACK);
	spec_free(spec);
}

static void test_spec_errors(void **state)
{
	(void)state;
	one_error("environments: {production: {}}\n"
		  "services:\n"
		  "  a:\n"
		  "    run: x\n"
		  "    depends_on: [b]\n"
		  "  b:\n"
		  "    run: x\n"
		  "    depends_on: [a]\n",
		  8, 18, "services.b.depends_on", "dependency cycle: a \u2192 b \u2192 a");
	one_error("environments: {production: {}}\n"
		  "services:\n"
		  "  api:\n"
		  "    run: x\n"
		  "    depends_on: [db, apj]\n"
		  "  db: {run: x}\n",
		  5, 22, "services.api.depends_on", "unknown service 'apj' (did you mean 'api'?)");
	one_error("environments: {production: {}}\n"
		  "services:\n"
		  "  a: {run: x, depends_on: [a]}\n",
		  3, 28, "services.a.depends_on", "cannot depend on itself");
	one_error("environments: {production: {}}\n"
		  "services:\n"
		  "  a: {run: x, depends_on: b}\n",
		  3, 27, "services.a.depends_on", "expected a list of service names");
	one_error("environments: {production: {}}\n"
		  "release: {on_failure: retry}\n"
		  "services:\n"
		  "  a: {run: x}\n",
		  2, 23, "release", "expected rollback, pause or continue");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels_pure),
		cmocka_unit_test(test_cycle_pure),
		cmocka_unit_test(test_spec_levels),
		cmocka_unit_test(test_spec_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
