/*
 * test_store_maint — maintenance rows (store_maint.h): put replaces the
 * row of its service environment, delete says whether there was one, and
 * a row survives closing and opening the store again.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "store/store_maint.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/gantry-maint-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static struct store *open_db(void)
{
	struct store *s;
	struct gerr err;
	char *path = xasprintf("%s/state.db", dir);
	if (store_open(path, &s, &err) < 0)
		fail_msg("%s", err.msg);
	free(path);
	return s;
}

static void test_put_list_delete(void **state)
{
	struct store *s = open_db();
	struct maintenance_row r = { .retry_after_s = 120, .set_at_ms = 1700000000000 }, *rows = NULL;
	struct gerr err;
	size_t n = 0;
	(void)state;
	strlcpy_g(r.service, "web", sizeof(r.service));
	strlcpy_g(r.environment, "prod", sizeof(r.environment));
	strlcpy_g(r.message, "back soon", sizeof(r.message));
	strlcpy_g(r.allow_headers, "[{\"header\":\"x-bypass\",\"value\":\"s3cret-value\"}]", sizeof(r.allow_headers));
	strlcpy_g(r.set_by, "alice", sizeof(r.set_by));
	assert_int_equal(store_maintenance_put(s, &r, &err), 0);
	strlcpy_g(r.message, "back at 10:00", sizeof(r.message));
	r.retry_after_s = 300;
	assert_int_equal(store_maintenance_put(s, &r, &err), 0); /* replaces */
	strlcpy_g(r.service, "api", sizeof(r.service));
	assert_int_equal(store_maintenance_put(s, &r, &err), 0);
	store_close(s);

	s = open_db();
	assert_int_equal(store_maintenance_list(s, &rows, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].service, "api");
	assert_string_equal(rows[1].service, "web");
	assert_string_equal(rows[1].message, "back at 10:00");
	assert_int_equal(rows[1].retry_after_s, 300);
	assert_string_equal(rows[1].set_by, "alice");
	assert_int_equal(rows[1].set_at_ms, 1700000000000);
	assert_non_null(strstr(rows[1].allow_headers, "s3cret-value"));
	free(rows);
	assert_int_equal(store_maintenance_delete(s, "web", "prod", &err), 1);
	assert_int_equal(store_maintenance_delete(s, "web", "prod", &err), 0);
	assert_int_equal(store_maintenance_list(s, &rows, &n, &err), 0);
	assert_int_equal(n, 1);
	free(rows);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_list_delete, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
