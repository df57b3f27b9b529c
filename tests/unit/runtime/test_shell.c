/*
 * test_shell.c — the one-off shell runner: exit status, the workload's
 * environment, bounded output (kill or keep the tail), the timeout that
 * kills the whole process group. Runs real processes.
 */
#include "rt_test.h"
#include "runtime/shell.h"
#include "util/clock.h"
#include <sys/prctl.h>
#include <sys/wait.h>

static const struct workload_env env_port = { .port = 1234, .url = true };
static const struct workload_env env_vars = { .service = "api", .environment = "production", .revision = 42 };

static struct shell_result run(const char *cmd, const struct workload_env *env, int64_t timeout_ms, size_t max,
			       bool with_stderr, bool keep_tail)
{
	struct shell_opts o = { .cmd = cmd, .env = env, .timeout_ms = timeout_ms, .max_output = max,
				.with_stderr = with_stderr, .keep_tail = keep_tail };
	struct shell_result r;
	struct gerr err = { { 0 } };
	if (shell_run(&o, &r, &err) < 0)
		fail_msg("%s: %s", cmd, err.msg);
	return r;
}

static void test_status_and_output(void **state)
{
	struct shell_result r;
	(void)state;
	r = run("echo out; echo err >&2; exit 3", &env_port, 5000, 1024, false, false);
	assert_int_equal(r.end, SHELL_EXITED);
	assert_int_equal(r.code, 3);
	assert_string_equal(r.out, "out\n"); /* stderr: /dev/null */
	assert_false(r.cut);
	shell_result_release(&r);
	r = run("echo out; echo err >&2", &env_port, 5000, 1024, true, true);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.out, "out\nerr\n");
	shell_result_release(&r);
	r = run("kill -9 $$", &env_port, 5000, 1024, false, false);
	assert_int_equal(r.end, SHELL_SIGNALED);
	assert_int_equal(r.code, 9);
	shell_result_release(&r);
	r = run("no-such-command-gantry", &env_port, 5000, 1024, false, false);
	assert_int_equal(r.end, SHELL_EXITED);
	assert_int_equal(r.code, 127);
	shell_result_release(&r);
	/* stdin is /dev/null: a read ends at once */
	r = run("cat; echo done", &env_port, 5000, 1024, false, false);
	assert_string_equal(r.out, "done\n");
	shell_result_release(&r);
}

static void test_environment_and_cwd(void **state)
{
	struct shell_opts o = { .cmd = "pwd", .cwd = rt_dir, .env = &env_port, .timeout_ms = 5000, .max_output = 4096 };
	struct shell_result r;
	struct gerr err;
	char *want;
	(void)state;
	/* only what the workload is given: nothing of ours */
	setenv("GANTRY_TEST_SHELL_SECRET", "leak", 1);
	r = run("echo \"$PORT $GANTRY_URL [$GANTRY_TEST_SHELL_SECRET] $PATH\"", &env_port, 5000, 1024, false, false);
	assert_string_equal(r.out, "1234 http://127.0.0.1:1234 [] " WORKLOAD_PATH "\n");
	shell_result_release(&r);
	unsetenv("GANTRY_TEST_SHELL_SECRET");
	r = run("echo $GANTRY_SERVICE/$GANTRY_ENVIRONMENT/$GANTRY_REVISION; umask", &env_vars, 5000, 1024, false, false);
	assert_string_equal(r.out, "api/production/42\n0022\n");
	shell_result_release(&r);
	assert_int_equal(shell_run(&o, &r, &err), 0);
	want = xasprintf("%s\n", rt_dir);
	assert_string_equal(r.out, want);
	free(want);
	shell_result_release(&r);
	/* a directory it cannot enter: 126, nothing run */
	o.cwd = "/nonexistent/gantry";
	o.cmd = "echo ran";
	assert_int_equal(shell_run(&o, &r, &err), 0);
	assert_int_equal(r.end, SHELL_EXITED);
	assert_int_equal(r.code, 126);
	assert_string_equal(r.out, "");
	shell_result_release(&r);
}

static void test_bounded_output(void **state)
{
	struct shell_result r;
	(void)state;
	/* exactly the bound is fine; one byte more kills it */
	r = run("head -c 4096 /dev/zero | tr '\\0' x", &env_port, 5000, 4096, false, false);
	assert_int_equal(r.end, SHELL_EXITED);
	assert_int_equal(r.len, 4096);
	shell_result_release(&r);
	r = run("head -c 4097 /dev/zero | tr '\\0' x", &env_port, 5000, 4096, false, false);
	assert_int_equal(r.end, SHELL_TOO_MUCH);
	shell_result_release(&r);
	/* an endless writer is stopped at the bound, not at the timeout */
	{
		int64_t t0 = clock_mono_ms();
		r = run("yes", &env_port, 20000, 65536, false, false);
		assert_int_equal(r.end, SHELL_TOO_MUCH);
		assert_true(clock_mono_ms() - t0 < 10000);
		shell_result_release(&r);
	}
	/* keeping the tail: the end is where the error is */
	r = run("seq 1 100000; echo THE-END", &env_port, 5000, 4096, true, true);
	assert_int_equal(r.end, SHELL_EXITED);
	assert_true(r.cut);
	assert_int_equal(r.len, 4096);
	assert_int_equal(strlen(r.out), 4096);
	assert_non_null(strstr(r.out, "99999\n100000\nTHE-END\n"));
	shell_result_release(&r);
	r = run("seq 1 10", &env_port, 5000, 4096, true, true);
	assert_false(r.cut);
	assert_int_equal(r.len, 21);
	shell_result_release(&r);
}

/* the pid printed on the first line of out */
static pid_t first_pid(const char *out)
{
	long p = strtol(out, NULL, 10);
	assert_true(p > 1);
	return (pid_t)p;
}

static void test_timeout_kills_the_group(void **state)
{
	struct shell_result r;
	int64_t t0 = clock_mono_ms(), end;
	pid_t bg;
	(void)state;
	r = run("sleep 30 & echo $!; sleep 30", &env_port, 300, 1024, false, false);
	assert_int_equal(r.end, SHELL_TIMED_OUT);
	assert_true(clock_mono_ms() - t0 < 5000);
	bg = first_pid(r.out);
	rt_track(bg);
	shell_result_release(&r);
	/* what it started is gone too (a zombie waiting for its reaper counts as gone) */
	end = clock_mono_ms() + 5000;
	while (proc_start_time(bg) && clock_mono_ms() < end)
		usleep(10000);
	assert_int_equal(proc_start_time(bg), 0);

	/* a background child holding stdout after the shell exited: the timeout still ends it */
	r = run("sleep 30 & echo $!", &env_port, 300, 1024, false, false);
	assert_int_equal(r.end, SHELL_TIMED_OUT);
	bg = first_pid(r.out);
	rt_track(bg);
	shell_result_release(&r);
	end = clock_mono_ms() + 5000;
	while (proc_start_time(bg) && clock_mono_ms() < end)
		usleep(10000);
	assert_int_equal(proc_start_time(bg), 0);

	/* a command that ends in time leaves nothing running in its group either */
	r = run("sleep 30 >/dev/null 2>&1 & echo $!", &env_port, 5000, 1024, false, false);
	assert_int_equal(r.end, SHELL_EXITED);
	bg = first_pid(r.out);
	rt_track(bg);
	shell_result_release(&r);
	end = clock_mono_ms() + 5000;
	while (proc_start_time(bg) && clock_mono_ms() < end)
		usleep(10000);
	assert_int_equal(proc_start_time(bg), 0);
}

/* the pid of the first child of pid (its /proc children list), 0 if none yet */
static pid_t first_child(pid_t pid)
{
	char path[64], buf[64] = "";
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return (pid_t)atoi(buf);
}

static bool is_sleep(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = 0;
	fclose(f);
	return !strcmp(comm, "sleep\n");
}

static void test_dies_with_its_controller(void **state)
{
	pid_t ctl, cmd = 0;
	int64_t end;
	int st;
	(void)state;
	/* we reap what the "controller" leaves behind, so we see how it ended */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ctl = fork();
	assert_true(ctl >= 0);
	if (ctl == 0) {
		struct shell_result r = run("exec sleep 30", &env_port, 60000, 1024, false, false);
		shell_result_release(&r);
		_exit(0);
	}
	/* until the command runs (exec'd: sleep), not just forked */
	end = clock_mono_ms() + 5000;
	while (!((cmd = first_child(ctl)) && is_sleep(cmd)) && clock_mono_ms() < end)
		usleep(10000);
	assert_true(cmd > 0 && is_sleep(cmd));
	/* the controller is killed -9 while its command runs */
	kill(ctl, SIGKILL);
	assert_int_equal(waitpid(ctl, &st, 0), ctl);
	/* the command is killed too, not left sleeping (it would exit 0 in 30 s) */
	assert_int_equal(waitpid(cmd, &st, 0), cmd);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_and_output, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_environment_and_cwd, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_bounded_output, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_timeout_kills_the_group, rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_dies_with_its_controller, rt_setup, rt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
