/*
 * test_master.c — the standalone proxy's master (src/proxy/master.c): the
 * restart rule as a pure function, then the master itself with /bin/sh
 * scripts standing in for the serving proxy (what it hands the child, what
 * it returns, the crash-loop delay, stop signals and SIGHUP passed on).
 */
#include "common.h"
#include "proxy/master.h"
#include "util/clock.h"
#include "px_test.h"

static void test_restart_delay(void **state)
{
	(void)state;
	/* lived a second or more: at once, whatever came before */
	assert_int_equal(proxy_restart_delay(0, 1000), 0);
	assert_int_equal(proxy_restart_delay(8000, 5000), 0);
	assert_int_equal(proxy_restart_delay(4000, 3600 * 1000), 0);
	/* a crash loop: 1 s, 2, 4, 8, 8 */
	assert_int_equal(proxy_restart_delay(0, 999), 1000);
	assert_int_equal(proxy_restart_delay(1000, 0), 2000);
	assert_int_equal(proxy_restart_delay(2000, 10), 4000);
	assert_int_equal(proxy_restart_delay(4000, 10), 8000);
	assert_int_equal(proxy_restart_delay(8000, 10), 8000);
	/* a child that lived a second resets it: the next crash waits 1 s again */
	assert_int_equal(proxy_restart_delay(proxy_restart_delay(8000, 1500), 10), 1000);
}

/* the master on 127.0.0.1:0 with `sh -c SCRIPT` as its child */
static int run_master(int workers, const char *script)
{
	struct proxy_config cfg;
	struct gerr err;
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)script, NULL };
	char listen[32];
	uint16_t port;
	int r, reserved = pt_reserve_port(&port);

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	proxy_config_defaults(&cfg);
	cfg.listen = listen;
	cfg.workers = workers;
	r = proxy_master_run(&cfg, "/bin/sh", argv, &err);
	close(reserved);
	if (r < 0)
		fail_msg("proxy_master_run: %s", err.msg);
	return r;
}

static void test_first_child_cannot_start(void **state)
{
	(void)state;
	/* a proxy that exits by itself at once could not start: its status, no retry */
	assert_int_equal(run_master(1, "exit 3"), 3);
}

static void test_listeners_on_fds_3(void **state)
{
	(void)state;
	/* fds 3 and 4 are sockets, and they are the only ones: the master's
	 * own copies are CLOEXEC */
	assert_int_equal(run_master(2, "[ -S /proc/$$/fd/3 ] && [ -S /proc/$$/fd/4 ] && "
				       "[ \"$(ls -l /proc/$$/fd | grep -c socket:)\" = 2 ] && exit 42; exit 1"),
			 42);
}

static void test_stop_signal_passed_on(void **state)
{
	(void)state;
	/* SIGTERM to the master reaches the child; its exit status is the master's */
	assert_int_equal(run_master(1, "trap 'exit 9' TERM; kill -TERM $PPID; "
				       "while :; do sleep 0.05; done"),
			 9);
}

static void test_hup_waits_for_a_handler(void **state)
{
	char dir[] = "/tmp/gantry-test-master.XXXXXX", script[512], mark[64];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(mark, sizeof(mark), "%s/started", dir);
	/* the child asks for a SIGHUP before it catches SIGHUP (a proxy still
	 * starting): the master holds it until the trap is set, then the
	 * child exits 7. Passed on at once, the SIGHUP would kill the child
	 * (the second one then stops the master: 0) */
	snprintf(script, sizeof(script),
		 "if [ -e %s ]; then kill -TERM $PPID; exec sleep 5; fi; : >%s; "
		 "kill -HUP $PPID; sleep 0.3; trap 'exit 7' HUP; while :; do sleep 0.05; done",
		 mark, mark);
	assert_int_equal(run_master(1, script), 7);
	unlink(mark);
	rmdir(dir);
}

static void test_crash_loop_waits(void **state)
{
	char dir[] = "/tmp/gantry-test-master.XXXXXX", script[512], mark[64];
	int64_t t0, took;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(mark, sizeof(mark), "%s/started", dir);
	/* the first child dies of SIGKILL at once (a crash loop: the next one
	 * starts 1 s later); the second stops the master and is stopped by it */
	snprintf(script, sizeof(script),
		 "if [ -e %s ]; then kill -TERM $PPID; exec sleep 5; fi; : >%s; kill -KILL $$", mark, mark);
	t0 = clock_mono_ms();
	assert_int_equal(run_master(1, script), 0);
	took = clock_mono_ms() - t0;
	assert_true(took >= PROXY_RESTART_FIRST_MS);
	unlink(mark);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restart_delay),
		cmocka_unit_test(test_first_child_cannot_start),
		cmocka_unit_test(test_listeners_on_fds_3),
		cmocka_unit_test(test_stop_signal_passed_on),
		cmocka_unit_test(test_hup_waits_for_a_handler),
		cmocka_unit_test(test_crash_loop_waits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
