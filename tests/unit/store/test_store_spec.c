/*
 * test_store_spec — the numbered, immutable spec versions (store_spec.h):
 * each add is the next version; get names one (0: the newest) with its
 * text; a list is newest first and carries no text.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "store/store_spec.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/gantry-spec-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
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

static void add(struct store *s, const char *text, const char *actor, int64_t want)
{
	struct spec_version_row r = { .created_at = 100 + want };
	struct gerr err;
	strlcpy_g(r.digest, "d", sizeof(r.digest));
	strlcpy_g(r.name, "gantry.yaml", sizeof(r.name));
	strlcpy_g(r.actor, actor, sizeof(r.actor));
	r.text = (char *)text;
	assert_int_equal(store_spec_add(s, &r, &err), 0);
	assert_int_equal(r.version, want);
}

static void test_versions(void **state)
{
	struct store *s = open_db();
	struct spec_version_row got, *list;
	struct gerr err;
	size_t n;
	(void)state;
	assert_int_equal(store_spec_get(s, 0, &got, &err), 0);
	assert_null(got.text); /* zeroed when there is none */
	add(s, "project: a\n", "alice", 1);
	add(s, "project: b\n", "bob", 2);

	assert_int_equal(store_spec_get(s, 0, &got, &err), 1);
	assert_int_equal(got.version, 2);
	assert_string_equal(got.text, "project: b\n");
	assert_string_equal(got.diff, "[]"); /* none given */
	assert_string_equal(got.actor, "bob");
	spec_version_row_release(&got);
	assert_int_equal(store_spec_get(s, 1, &got, &err), 1);
	assert_string_equal(got.text, "project: a\n");
	assert_int_equal(got.created_at, 101);
	spec_version_row_release(&got);
	assert_int_equal(store_spec_get(s, 3, &got, &err), 0);

	assert_int_equal(store_spec_list(s, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].version, 2);
	assert_null(list[0].text);
	assert_string_equal(list[1].actor, "alice");
	for (size_t i = 0; i < n; i++)
		spec_version_row_release(&list[i]);
	free(list);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
