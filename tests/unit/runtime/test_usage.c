/*
 * test_usage.c — a cgroup's usage read from fake cgroup directories
 * (runtime/usage.c): the files are written as the kernel writes them, into
 * a scratch directory, and the readers are pointed at it.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <sys/stat.h>
#include "runtime/usage.h"
#include "runtime/runtime.h"
#include <unistd.h>

static char dir[PATH_MAX];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/gantry-test-usage-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* DIR/SUB/FILE := text (SUB made when missing) */
static void put(const char *sub, const char *file, const char *text)
{
	char path[PATH_MAX + 128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	(void)mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, file);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char *sub(const char *name)
{
	static char path[4][PATH_MAX + 64];
	static int i;
	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	return path[i];
}

/* a v2 memory.stat as 6.x kernels write it (abridged, order kept) */
static const char v2_stat[] =
	"anon 52428800\n"
	"file 20971520\n"
	"kernel 1048576\n"
	"shmem 0\n"
	"active_anon 52428800\n"
	"inactive_anon 0\n"
	"active_file 4194304\n"
	"inactive_file 16777216\n"
	"unevictable 0\n"
	"pgfault 12345\n";

static void test_v2_limited(void **state)
{
	struct cgroup_usage u;
	(void)state;
	put("a", "memory.current", "74448896\n");
	put("a", "memory.stat", v2_stat);
	put("a", "memory.max", "134217728\n");
	put("a", "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 10\n");
	put("a", "cpu.max", "50000 100000\n");
	assert_int_equal(cgroup_usage_read_v2(sub("a"), &u), 0);
	/* memory.current less inactive_file */
	assert_int_equal(u.memory_bytes, 74448896 - 16777216);
	assert_int_equal(u.memory_limit, 134217728);
	assert_int_equal(u.cpu_usec, 2500000);
	assert_int_equal(u.cpu_limit_millis, 500);
}

static void test_v2_unlimited(void **state)
{
	struct cgroup_usage u;
	(void)state;
	put("b", "memory.current", "4096\n");
	/* more inactive file cache than charged (the two are read apart): 0, not negative */
	put("b", "memory.stat", "anon 0\ninactive_file 8192\n");
	put("b", "memory.max", "max\n");
	put("b", "cpu.stat", "usage_usec 17\n");
	put("b", "cpu.max", "max 100000\n");
	assert_int_equal(cgroup_usage_read_v2(sub("b"), &u), 0);
	assert_int_equal(u.memory_bytes, 0);
	assert_int_equal(u.memory_limit, 0);
	assert_int_equal(u.cpu_usec, 17);
	assert_int_equal(u.cpu_limit_millis, 0);
}

static void test_v2_partial_and_gone(void **state)
{
	struct cgroup_usage u;
	(void)state;
	/* no cpu controller: memory only */
	put("c", "memory.current", "1048576\n");
	assert_int_equal(cgroup_usage_read_v2(sub("c"), &u), 0);
	assert_int_equal(u.memory_bytes, 1048576);
	assert_int_equal(u.memory_limit, 0);
	assert_int_equal(u.cpu_usec, -1);
	assert_int_equal(u.cpu_limit_millis, 0);
	/* a cgroup that is gone */
	assert_int_equal(cgroup_usage_read_v2(sub("nothere"), &u), -1);
	assert_int_equal(u.memory_bytes, -1);
	/* garbage is not a number */
	put("d", "memory.current", "lots\n");
	assert_int_equal(cgroup_usage_read_v2(sub("d"), &u), -1);
}

static void test_v1(void **state)
{
	struct cgroup_usage u;
	(void)state;
	put("mem", "memory.usage_in_bytes", "104857600\n");
	/* hierarchical total_ is preferred to the cgroup's own */
	put("mem", "memory.stat",
	    "cache 10485760\nrss 83886080\ninactive_file 1\nactive_file 0\n"
	    "hierarchical_memory_limit 209715200\ntotal_cache 10485760\ntotal_inactive_file 6291456\n");
	put("mem", "memory.limit_in_bytes", "209715200\n");
	put("cpu", "cpu.cfs_quota_us", "200000\n");
	put("cpu", "cpu.cfs_period_us", "100000\n");
	put("acct", "cpuacct.usage", "3000000123\n");
	assert_int_equal(cgroup_usage_read_v1(sub("mem"), sub("cpu"), sub("acct"), &u), 0);
	assert_int_equal(u.memory_bytes, 104857600 - 6291456);
	assert_int_equal(u.memory_limit, 209715200);
	assert_int_equal(u.cpu_usec, 3000000);
	assert_int_equal(u.cpu_limit_millis, 2000);
}

static void test_v1_unlimited(void **state)
{
	struct cgroup_usage u;
	(void)state;
	put("mem2", "memory.usage_in_bytes", "2097152\n");
	put("mem2", "memory.stat", "cache 0\ninactive_file 1048576\n");
	put("mem2", "memory.limit_in_bytes", "9223372036854771712\n");
	put("cpu2", "cpu.cfs_quota_us", "-1\n");
	put("cpu2", "cpu.cfs_period_us", "100000\n");
	/* no cpuacct hierarchy, and no cpu one */
	assert_int_equal(cgroup_usage_read_v1(sub("mem2"), sub("cpu2"), NULL, &u), 0);
	assert_int_equal(u.memory_bytes, 1048576); /* inactive_file when there is no total_ */
	assert_int_equal(u.memory_limit, 0);
	assert_int_equal(u.cpu_usec, -1);
	assert_int_equal(u.cpu_limit_millis, 0);
	assert_int_equal(cgroup_usage_read_v1(sub("mem2"), NULL, NULL, &u), 0);
	assert_int_equal(u.cpu_limit_millis, 0);
	assert_int_equal(cgroup_usage_read_v1(sub("gone"), sub("cpu2"), NULL, &u), -1);
}

/* our own cgroup, found from our pid, as a container's is: some memory in
 * use; a pid that does not exist: -1 */
static void test_by_pid(void **state)
{
	struct cgroup_usage u;

	(void)state;
	assert_int_equal(cgroup_usage_read_pid(0, &u), -1);
	assert_int_equal(cgroup_usage_read_pid(-5, &u), -1);
	if (cgroup_mode() == CGROUP_NONE) {
		assert_int_equal(cgroup_usage_read_pid(getpid(), &u), -1);
		return;
	}
	assert_int_equal(cgroup_usage_read_pid(getpid(), &u), 0);
	assert_true(u.memory_bytes > 0);
}

static void test_keyed(void **state)
{
	(void)state;
	assert_int_equal(cgroup_usage_keyed("a 1\ninactive_file 5\n", "inactive_file"), 5);
	/* a key is matched whole, at the start of a line */
	assert_int_equal(cgroup_usage_keyed("total_inactive_file 7\n", "inactive_file"), -1);
	assert_int_equal(cgroup_usage_keyed("inactive_filex 7\n", "inactive_file"), -1);
	assert_int_equal(cgroup_usage_keyed("usage_usec x\n", "usage_usec"), -1);
	assert_int_equal(cgroup_usage_keyed("", "usage_usec"), -1);
	assert_int_equal(cgroup_usage_keyed("usage_usec 99999999999999999999999\n", "usage_usec"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v2_limited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_unlimited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_partial_and_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1_unlimited, setup, teardown),
		cmocka_unit_test(test_keyed),
		cmocka_unit_test(test_by_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
