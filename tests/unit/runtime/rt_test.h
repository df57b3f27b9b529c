/*
 * rt_test.h — helpers shared by the runtime unit tests (header-only: the
 * Makefile builds each tests/unit/DIR/test_*.c into its own binary).
 *
 * Every process a test starts is recorded with rt_track() and killed (its
 * whole process group) by rt_teardown(), even when an assertion failed.
 */
#ifndef RT_TEST_H
#define RT_TEST_H
#include "common.h"
#include "runtime/runtime.h"

#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#define RT_MAX_TRACKED 64

static pid_t rt_pids[RT_MAX_TRACKED];
static size_t rt_npids;
static char rt_dir[PATH_MAX]; /* this test's scratch directory */

static UNUSED void rt_track(pid_t pid)
{
	if (pid > 0 && rt_npids < RT_MAX_TRACKED)
		rt_pids[rt_npids++] = pid;
}

static UNUSED int rt_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* a fresh scratch directory under $TMPDIR (default /tmp) */
static UNUSED int rt_setup(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	snprintf(rt_dir, sizeof(rt_dir), "%s/gantry-rt-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(rt_dir))
		return -1;
	{
		/* canonical, to compare with /proc/PID/cwd */
		char real[PATH_MAX];
		if (realpath(rt_dir, real))
			strlcpy_g(rt_dir, real, sizeof(rt_dir));
	}
	rt_npids = 0;
	return 0;
}

static UNUSED int rt_teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < rt_npids; i++) {
		(void)kill(-rt_pids[i], SIGKILL);
		(void)kill(rt_pids[i], SIGKILL);
	}
	rt_npids = 0;
	if (rt_dir[0])
		(void)nftw(rt_dir, rt_rm, 16, FTW_DEPTH | FTW_PHYS);
	rt_dir[0] = '\0';
	return 0;
}

/* rt_dir/name into a static buffer per call site (owned by caller) */
static UNUSED char *rt_path(const char *name)
{
	return xasprintf("%s/%s", rt_dir, name);
}

/* whole file as a NUL-terminated string (owned by caller), "" if missing */
static UNUSED char *rt_read(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = xcalloc(1, 1);
	size_t len = 0, n;
	char chunk[4096];

	if (!f)
		return buf;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf = xrealloc(buf, len + n + 1);
		memcpy(buf + len, chunk, n);
		len += n;
		buf[len] = '\0';
	}
	fclose(f);
	return buf;
}

static UNUSED void rt_write(const char *path, const char *s, bool append)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
}

static UNUSED int64_t rt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static UNUSED void rt_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	(void)nanosleep(&ts, NULL);
}

/* true once file path contains needle, polling up to ms */
static UNUSED bool rt_wait_file_has(const char *path, const char *needle, int ms)
{
	int64_t end = rt_now_ms() + ms;

	for (;;) {
		char *s = rt_read(path);
		bool ok = strstr(s, needle) != NULL;
		free(s);
		if (ok)
			return true;
		if (rt_now_ms() > end)
			return false;
		rt_sleep_ms(20);
	}
}

/* true once pid is gone (or a zombie), polling up to ms */
static UNUSED bool rt_wait_gone(pid_t pid, int ms)
{
	int64_t end = rt_now_ms() + ms;

	while (proc_start_time(pid) != 0) {
		if (rt_now_ms() > end)
			return false;
		rt_sleep_ms(20);
	}
	return true;
}

static void rt_guard_cb(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* runs loop until *flag is true or ms pass; returns *flag */
static UNUSED bool rt_run_until(uv_loop_t *loop, const bool *flag, int ms)
{
	uv_timer_t guard;
	bool expired = false;

	uv_timer_init(loop, &guard);
	guard.data = &expired;
	uv_timer_start(&guard, rt_guard_cb, (uint64_t)ms, 0);
	while (!*flag && !expired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *flag;
}

static void rt_close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* closes every handle left and the loop (handles are test storage) */
static UNUSED void rt_loop_close(uv_loop_t *loop)
{
	uv_walk(loop, rt_close_walk, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

/* test binaries are their own `gantry __exec` (see runtime_spawn) */
#define RT_EXEC_HOOK(argc, argv)                                              \
	do {                                                                  \
		if ((argc) > 1 && !strcmp((argv)[1], "__exec"))               \
			return runtime_exec_main((argc) - 1, (argv) + 1);     \
	} while (0)

#define RT_TEST(f) cmocka_unit_test_setup_teardown(f, rt_setup, rt_teardown)

#endif
