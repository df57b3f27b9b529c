/*
 * test_artifact — artifact_clean_temp() at the daemon's start: an
 * interrupted upload (.tmp-up-*) and the snapshot of a process that is gone
 * (.tmp-PID-*) are removed; a snapshot in progress and finished artifacts
 * are kept.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "artifact/artifact.h"

static bool exists(const char *home, const char *name)
{
	struct stat st;
	char *p = xasprintf("%s/artifacts/%s", home, name);
	bool r = stat(p, &st) == 0;
	free(p);
	return r;
}

static void mk(const char *home, const char *name, bool with_file)
{
	char *p = xasprintf("%s/artifacts/%s", home, name), *f = xasprintf("%s/run.sh", p);
	assert_int_equal(mkdir(p, 0700), 0);
	if (with_file) {
		FILE *fp = fopen(f, "w");
		assert_non_null(fp);
		fputs("echo hi\n", fp);
		fclose(fp);
	}
	free(p);
	free(f);
}

static void test_clean(void **state)
{
	(void)state;
	char home[256], *adir, *cmd, dead[128], alive[128];
	pid_t child;

	snprintf(home, sizeof(home), "%s/gantry-clean-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(home));
	adir = xasprintf("%s/artifacts", home);
	assert_int_equal(mkdir(adir, 0700), 0);
	/* a pid that no longer runs: a child that has exited and been reaped */
	child = fork();
	assert_true(child >= 0);
	if (!child)
		_exit(0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	snprintf(dead, sizeof(dead), ".tmp-%d-%064d", (int)child, 0);
	snprintf(alive, sizeof(alive), ".tmp-%d-%064d", (int)getpid(), 1);
	mk(home, ".tmp-up-Ab12Cd", true);
	mk(home, dead, true);
	mk(home, alive, true);
	mk(home, "4f00d1b2c3", true);
	assert_int_equal(artifact_clean_temp(home), 2);
	assert_false(exists(home, ".tmp-up-Ab12Cd"));
	assert_false(exists(home, dead));
	assert_true(exists(home, alive));
	assert_true(exists(home, "4f00d1b2c3/run.sh"));
	/* nothing left to do: 0; a home without artifacts: 0 */
	assert_int_equal(artifact_clean_temp(home), 0);
	assert_int_equal(artifact_clean_temp("/nonexistent-gantry-home"), 0);
	cmd = xasprintf("rm -rf '%s'", home);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(adir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
