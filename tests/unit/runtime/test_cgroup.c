/*
 * test_cgroup.c — memory, pids limits and cleanup of replica cgroups, with
 * real processes. Skipped without usable cgroups or root.
 */
#include "rt_test.h"

struct exit_rec {
	bool exited;
	int64_t status;
	int sig;
};

static char cg_name[64];

static void on_exit_rec(uv_process_t *p, int64_t status, int sig)
{
	struct exit_rec *e = p->data;

	e->exited = true;
	e->status = status;
	e->sig = sig;
	uv_close((uv_handle_t *)p, NULL);
}

static int cg_setup(void **state)
{
	static int seq;

	snprintf(cg_name, sizeof(cg_name), "test-%d-%d", (int)getpid(), ++seq);
	return rt_setup(state);
}

/* kills and removes the test's cgroup even when an assertion failed */
static int cg_teardown(void **state)
{
	int i;

	if (cgroup_mode() != CGROUP_NONE) {
		for (i = 0; i < 100 && cgroup_kill(cg_name, SIGKILL) > 0; i++)
			rt_sleep_ms(20);
		cgroup_destroy(cg_name);
	}
	return rt_teardown(state);
}

static bool usable(void)
{
	return geteuid() == 0 && cgroup_mode() != CGROUP_NONE;
}

static pid_t spawn_in(uv_loop_t *loop, uv_process_t *proc, struct exit_rec *rec, const char *cmd,
		      const char *log)
{
	struct spawn_opts o = { 0 };
	struct gerr err = { { 0 } };
	uint64_t st = 0;
	pid_t pid = 0;

	o.cmd = cmd;
	o.cwd = rt_dir;
	o.log_path = log;
	o.cgroup = cg_name;
	if (runtime_spawn(loop, proc, &o, on_exit_rec, &pid, &st, &err) < 0)
		fail_msg("runtime_spawn: %s", err.msg);
	proc->data = rec;
	rt_track(pid);
	return pid;
}

static bool wait_empty(int ms)
{
	int64_t end = rt_now_ms() + ms;

	while (cgroup_nprocs(cg_name) > 0) {
		if (rt_now_ms() > end)
			return false;
		rt_sleep_ms(20);
	}
	return true;
}

static void destroy_and_check(void)
{
	char path[PATH_MAX];

	assert_true(wait_empty(5000));
	assert_int_equal(cgroup_path(cg_name, path, sizeof(path)), 0);
	cgroup_destroy(cg_name);
	assert_int_equal(cgroup_path(cg_name, path, sizeof(path)), -1);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_none_is_harmless(void **state)
{
	struct gerr err = { { 0 } };
	struct resources res = { 0 };

	(void)state;
	/* whatever the mode, bad names are refused and unknown groups are empty */
	assert_int_equal(cgroup_create("../escape", &res, &err), -1);
	assert_int_equal(cgroup_create("", &res, &err), -1);
	assert_int_equal(cgroup_nprocs("no-such-group"), 0);
	assert_int_equal(cgroup_kill("no-such-group", 0), 0);
	assert_int_equal(cgroup_oom_kills("no-such-group"), 0);
	cgroup_destroy("no-such-group");
}

static void test_memory_oom(void **state)
{
	struct resources res = { .memory_bytes = 32 * 1024 * 1024 };
	struct gerr err = { { 0 } };
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	char *log = rt_path("oom.log"), path[PATH_MAX], *s;

	(void)state;
	if (!usable())
		skip();
	if (cgroup_create(cg_name, &res, &err) < 0)
		fail_msg("cgroup_create: %s", err.msg);
	/* the limit is what was asked */
	assert_int_equal(cgroup_path(cg_name, path, sizeof(path)), 0);
	{
		char *f = xasprintf("%s/%s", path, cgroup_mode() == CGROUP_V2 ? "memory.max" :
									      "memory.limit_in_bytes");
		s = rt_read(f);
		assert_int_equal(strtoll(s, NULL, 10), 32 * 1024 * 1024);
		free(s);
		free(f);
	}
	assert_int_equal(cgroup_oom_kills(cg_name), 0);
	uv_loop_init(&loop);
	/* tail keeps a line without '\n' whole in memory: 200 MB */
	(void)spawn_in(&loop, &proc, &rec, "head -c 200M /dev/zero | tail; echo survived=$?", log);
	assert_true(rt_run_until(&loop, &rec.exited, 20000));
	assert_true(cgroup_oom_kills(cg_name) > 0);
	s = rt_read(log);
	/* tail was killed (SIGKILL: 137) */
	assert_non_null(strstr(s, "survived=137"));
	free(s);
	destroy_and_check();
	rt_loop_close(&loop);
	free(log);
}

static void test_pids_limit(void **state)
{
	struct resources res = { .pids = 5 };
	struct gerr err = { { 0 } };
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	char *log = rt_path("pids.log"), *s;
	pid_t pid;

	(void)state;
	if (!usable())
		skip();
	if (cgroup_create(cg_name, &res, &err) < 0)
		fail_msg("cgroup_create: %s", err.msg);
	uv_loop_init(&loop);
	pid = spawn_in(&loop, &proc, &rec,
		       "for i in $(seq 20); do sleep 30 & done; echo forked-all; wait", log);
	/* the shell gives up when fork fails */
	assert_true(rt_run_until(&loop, &rec.exited, 10000));
	assert_int_not_equal(rec.status, 0);
	s = rt_read(log);
	assert_null(strstr(s, "forked-all"));
	assert_true(strstr(s, "fork") != NULL || strstr(s, "Resource temporarily unavailable"));
	free(s);
	/* the sleeps that did start are at most the limit */
	assert_true(cgroup_nprocs(cg_name) <= 5);
	assert_true(cgroup_nprocs(cg_name) >= 1);
	/* the leader is gone but its group and cgroup remain: kill them */
	proc_kill_tree(pid, cg_name, SIGKILL);
	destroy_and_check();
	rt_loop_close(&loop);
	free(log);
}

/* a grandchild that left the process group (setsid) is still in the cgroup */
static void test_kill_tree_reaches_setsid(void **state)
{
	struct resources res = { .memory_bytes = 256 * 1024 * 1024, .cpu_millis = 500, .pids = 64 };
	struct gerr err = { { 0 } };
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	char *log = rt_path("setsid.log"), *gcfile = rt_path("gc.pid"), *s;
	pid_t pid, gc;

	(void)state;
	if (!usable())
		skip();
	if (cgroup_create(cg_name, &res, &err) < 0)
		fail_msg("cgroup_create: %s", err.msg);
	uv_loop_init(&loop);
	pid = spawn_in(&loop, &proc, &rec, "setsid sleep 300 & echo $! > gc.pid; exec sleep 300", log);
	assert_true(rt_wait_file_has(gcfile, "\n", 5000));
	s = rt_read(gcfile);
	gc = (pid_t)atoi(s);
	free(s);
	rt_track(gc);
	assert_true(gc > 0);
	/* wait until setsid has run: gc leads its own session */
	{
		int64_t end = rt_now_ms() + 5000;
		while (getsid(gc) != gc && rt_now_ms() < end)
			rt_sleep_ms(10);
	}
	assert_int_equal(getsid(gc), gc);
	assert_int_equal(cgroup_nprocs(cg_name), 2);

	proc_kill_tree(pid, cg_name, SIGKILL);
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	assert_true(rt_wait_gone(gc, 5000));
	destroy_and_check();
	rt_loop_close(&loop);
	free(log);
	free(gcfile);
}

/* joining a cgroup that does not exist: one line in the log, runs anyway */
static void test_join_failure_runs_anyway(void **state)
{
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	char *log = rt_path("nojoin.log"), *s;

	(void)state;
	uv_loop_init(&loop);
	(void)spawn_in(&loop, &proc, &rec, "echo ran", log); /* cg_name never created */
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	assert_int_equal(rec.status, 0);
	s = rt_read(log);
	assert_non_null(strstr(s, "ran\n"));
	assert_non_null(strstr(s, "without resource limits"));
	/* exactly one line besides the output */
	assert_int_equal(strchr(s, '\n') - s + 1 + (int)strlen("ran\n"), (int)strlen(s));
	free(s);
	rt_loop_close(&loop);
	free(log);
}

/* keeps b, and every cgroup that is not this test's (the machine's other
 * users of gantry/ are none of our business) */
static bool keep_b(const char *name, void *data)
{
	return !strcmp(name, (const char *)data) || strncmp(name, cg_name, strlen(cg_name));
}

/* makes NAME look created two hours ago (sweep spares young cgroups) */
static void age(const char *name)
{
	char path[PATH_MAX];
	struct timespec ts[2];

	assert_int_equal(cgroup_path(name, path, sizeof(path)), 0);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= 7200;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_sweep(void **state)
{
	struct resources res = { 0 };
	struct gerr err = { { 0 } };
	char a[80], b[80], c[80], d[80], path[PATH_MAX];
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	char *log = rt_path("sweep.log");
	pid_t pid;

	(void)state;
	if (!usable())
		skip();
	snprintf(a, sizeof(a), "%s-a", cg_name);
	snprintf(b, sizeof(b), "%s-b", cg_name);
	snprintf(c, sizeof(c), "%s-c", cg_name);
	snprintf(d, sizeof(d), "%s", cg_name); /* cleaned by the teardown */
	assert_int_equal(cgroup_create(a, &res, &err), 0);
	assert_int_equal(cgroup_create(b, &res, &err), 0);
	assert_int_equal(cgroup_create(c, &res, &err), 0);
	assert_int_equal(cgroup_create(d, &res, &err), 0);
	uv_loop_init(&loop);
	pid = spawn_in(&loop, &proc, &rec, "exec sleep 300", log);
	{
		int64_t end = rt_now_ms() + 5000;
		while (cgroup_nprocs(d) < 1 && rt_now_ms() < end)
			rt_sleep_ms(10);
	}
	assert_int_equal(cgroup_nprocs(d), 1);
	age(a);
	age(b);
	age(d);
	/* c is young */
	assert_true(cgroup_sweep(keep_b, b) >= 1);
	assert_int_equal(cgroup_path(a, path, sizeof(path)), -1);
	assert_int_equal(cgroup_path(b, path, sizeof(path)), 0); /* kept */
	assert_int_equal(cgroup_path(c, path, sizeof(path)), 0); /* young */
	assert_int_equal(cgroup_path(d, path, sizeof(path)), 0); /* in use */

	proc_kill_tree(pid, d, SIGKILL);
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	cgroup_destroy(a);
	cgroup_destroy(b);
	cgroup_destroy(c);
	assert_int_equal(cgroup_path(b, path, sizeof(path)), -1);
	assert_int_equal(cgroup_path(c, path, sizeof(path)), -1);
	rt_loop_close(&loop);
	free(log);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_none_is_harmless, cg_setup, cg_teardown),
		cmocka_unit_test_setup_teardown(test_memory_oom, cg_setup, cg_teardown),
		cmocka_unit_test_setup_teardown(test_pids_limit, cg_setup, cg_teardown),
		cmocka_unit_test_setup_teardown(test_kill_tree_reaches_setsid, cg_setup, cg_teardown),
		cmocka_unit_test_setup_teardown(test_join_failure_runs_anyway, cg_setup, cg_teardown),
		cmocka_unit_test_setup_teardown(test_sweep, cg_setup, cg_teardown),
	};

	RT_EXEC_HOOK(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
