/*
 * test_logfile.c — copy-truncate rotation, tail, follow.
 */
#include "rt_test.h"

#include <pthread.h>

static char *f_at(const char *base, int i)
{
	return i ? xasprintf("%s.%d", base, i) : xstrdup(base);
}

static void assert_file(const char *path, const char *want)
{
	char *s = rt_read(path);

	assert_string_equal(s, want);
	free(s);
}

static void test_rotate(void **state)
{
	char *log = rt_path("app.log"), *p;
	struct stat st;
	int fd, i;

	(void)state;
	/* no file, or small enough: nothing happens */
	assert_int_equal(logfile_rotate(log, 10, 3), 0);
	rt_write(log, "12345\n", false);
	assert_int_equal(logfile_rotate(log, 10, 3), 0);
	assert_file(log, "12345\n");

	/* a writer with O_APPEND, as a replica's stdout */
	fd = open(log, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "first-generation\n", 17), 17);
	assert_int_equal(logfile_rotate(log, 10, 3), 1);
	assert_file(log, "");
	p = f_at(log, 1);
	assert_file(p, "12345\nfirst-generation\n");
	free(p);
	/* the writer continues at the new end: no hole of NULs */
	assert_int_equal(write(fd, "after\n", 6), 6);
	assert_file(log, "after\n");
	assert_int_equal(stat(log, &st), 0);
	assert_int_equal(st.st_size, 6);
	close(fd);

	/* generations shift; at most keep are kept */
	for (i = 2; i <= 5; i++) {
		char line[64];
		snprintf(line, sizeof(line), "generation-%d-padding\n", i);
		rt_write(log, line, false);
		assert_int_equal(logfile_rotate(log, 10, 3), 1);
	}
	p = f_at(log, 1);
	assert_file(p, "generation-5-padding\n");
	free(p);
	p = f_at(log, 2);
	assert_file(p, "generation-4-padding\n");
	free(p);
	p = f_at(log, 3);
	assert_file(p, "generation-3-padding\n");
	free(p);
	p = f_at(log, 4);
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	p = xasprintf("%s.1.tmp", log);
	assert_int_equal(access(p, F_OK), -1);
	free(p);

	/* keep 0: truncate only */
	rt_write(log, "0123456789abcdef\n", false);
	assert_int_equal(logfile_rotate(log, 10, 0), 1);
	assert_file(log, "");
	p = f_at(log, 1);
	assert_file(p, "generation-5-padding\n");
	free(p);
	free(log);
}

/* the copy cannot be made (a full disk; here: its temporary name is taken
 * by a directory): the log is truncated anyway, the older copies stay */
static void test_rotate_copy_fails(void **state)
{
	char *log = rt_path("full.log"), *p, *tmp;

	(void)state;
	rt_write(log, "older-generation-padding\n", false);
	assert_int_equal(logfile_rotate(log, 10, 3), 1);
	tmp = xasprintf("%s.1.tmp", log);
	assert_int_equal(mkdir(tmp, 0700), 0);
	rt_write(log, "0123456789abcdef\n", false);
	assert_int_equal(logfile_rotate(log, 10, 3), 1);
	assert_file(log, "");
	p = f_at(log, 2); /* shifted before the copy was tried */
	assert_file(p, "older-generation-padding\n");
	free(p);
	assert_int_equal(rmdir(tmp), 0);
	free(tmp);
	free(log);
}

static char *tail_of(const char *path, int n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	assert_non_null(out);
	assert_int_equal(logfile_tail(path, n, out), 0);
	fclose(out);
	return buf;
}

static void assert_tail(const char *path, int n, const char *want)
{
	char *s = tail_of(path, n);

	assert_string_equal(s, want);
	free(s);
}

static void test_tail(void **state)
{
	char *log = rt_path("t.log"), *s, *big;
	FILE *out;
	size_t i, len;
	int fd;

	(void)state;
	rt_write(log, "one\ntwo\nthree\nfour\nfive\n", false);
	assert_tail(log, 2, "four\nfive\n");
	assert_tail(log, 1, "five\n");
	assert_tail(log, 5, "one\ntwo\nthree\nfour\nfive\n");
	assert_tail(log, 50, "one\ntwo\nthree\nfour\nfive\n");
	assert_tail(log, 0, "");

	/* a last line without newline is a line */
	rt_write(log, "one\ntwo\nthree", false);
	assert_tail(log, 2, "two\nthree");
	assert_tail(log, 1, "three");
	/* empty lines count */
	rt_write(log, "a\n\n\nb\n", false);
	assert_tail(log, 3, "\n\nb\n");
	rt_write(log, "", false);
	assert_tail(log, 3, "");

	/* a file far larger than one read block: 20000 numbered lines */
	fd = open(log, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	for (i = 1; i <= 20000; i++) {
		char line[32];
		int n = snprintf(line, sizeof(line), "line %zu\n", i);
		assert_int_equal(write(fd, line, (size_t)n), n);
	}
	close(fd);
	assert_tail(log, 3, "line 19998\nline 19999\nline 20000\n");
	s = tail_of(log, 10000);
	assert_true(!strncmp(s, "line 10001\n", 11));
	free(s);
	/* a single line longer than a block */
	len = 200000;
	big = xmalloc(len + 1);
	memset(big, 'x', len);
	big[len - 1] = '\n';
	big[len] = '\0';
	rt_write(log, "before\n", false);
	rt_write(log, big, true);
	s = tail_of(log, 1);
	assert_int_equal(strlen(s), len);
	free(s);
	free(big);

	/* a missing file is an error */
	free(log);
	log = rt_path("missing.log");
	out = fopen("/dev/null", "w");
	assert_int_equal(logfile_tail(log, 3, out), -1);
	assert_int_equal(errno, ENOENT);
	fclose(out);
	free(log);
}

struct follower {
	const char *paths[2];
	size_t n;
	FILE *out;
	volatile sig_atomic_t stop;
};

static void *follow_thread(void *arg)
{
	struct follower *f = arg;

	logfile_follow(f->paths, f->n, f->out, &f->stop);
	return NULL;
}

/* the running follower, stopped by the teardown even when a test failed */
static struct follower *running;
static pthread_t running_th;

static void follow_start(struct follower *f)
{
	assert_int_equal(pthread_create(&running_th, NULL, follow_thread, f), 0);
	running = f;
}

static void follow_stop(void)
{
	if (!running)
		return;
	running->stop = 1;
	pthread_join(running_th, NULL);
	fclose(running->out);
	running = NULL;
}

static int follow_teardown(void **state)
{
	follow_stop();
	return rt_teardown(state);
}

/*
 * Follow starts at the end of the file as it is when the thread gets to
 * it: append numbered "sync" lines until one comes out, so the lines that
 * follow are surely after that point.
 */
static void sync_follow(const char *log, const char *outp)
{
	int i;

	for (i = 1; i <= 50; i++) {
		char line[32];
		snprintf(line, sizeof(line), "sync %d\n", i);
		rt_write(log, line, true);
		if (rt_wait_file_has(outp, "sync ", 300))
			return;
	}
	fail_msg("follow printed nothing");
}

/* the output after the last sync line (owned by caller) */
static char *after_sync(const char *outp)
{
	char *s = rt_read(outp), *p = s, *q, *out;

	while ((q = strstr(p, "sync ")))
		p = q + 5;
	q = strchr(p, '\n');
	out = xstrdup(q ? q + 1 : "");
	free(s);
	return out;
}

static void test_follow(void **state)
{
	char *log = rt_path("f.log"), *outp = rt_path("follow.out"), *s;
	struct follower f = { { 0 }, 0, NULL, 0 };
	int fd;

	(void)state;
	rt_write(log, "old line\n", false);
	f.paths[0] = log;
	f.n = 1;
	f.out = fopen(outp, "w");
	assert_non_null(f.out);
	follow_start(&f);
	sync_follow(log, outp);

	/* a replica's O_APPEND writer */
	fd = open(log, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "new line 1\n", 11), 11);
	assert_true(rt_wait_file_has(outp, "new line 1\n", 5000));
	/* copy-truncate: continues from 0 */
	assert_int_equal(logfile_rotate(log, 1, 2), 1);
	assert_int_equal(write(fd, "after rotation, a longer line\n", 30), 30);
	assert_true(rt_wait_file_has(outp, "after rotation, a longer line\n", 5000));
	/* truncated and regrown past the old offset between two polls */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(write(fd, "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ\n", 41), 41);
	assert_true(rt_wait_file_has(outp, "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ\n", 5000));
	close(fd);

	follow_stop();
	s = rt_read(outp);
	/* what was there before is not printed */
	assert_null(strstr(s, "old line"));
	free(s);
	/* the rest exactly once */
	s = after_sync(outp);
	assert_string_equal(s, "new line 1\nafter rotation, a longer line\n"
			       "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ\n");
	free(s);
	free(log);
	free(outp);
}

static void test_follow_several(void **state)
{
	char *a = rt_path("a.log"), *b = rt_path("b.log"), *outp = rt_path("several.out"), *s, *want;
	struct follower f = { { 0 }, 0, NULL, 0 };

	(void)state;
	f.paths[0] = a;
	f.paths[1] = b; /* appears later */
	f.n = 2;
	rt_write(a, "", false);
	f.out = fopen(outp, "w");
	assert_non_null(f.out);
	follow_start(&f);
	sync_follow(a, outp);
	rt_write(a, "from a\n", true);
	assert_true(rt_wait_file_has(outp, "from a\n", 5000));
	rt_write(b, "from b\n", true);
	assert_true(rt_wait_file_has(outp, "from b\n", 5000));
	follow_stop();
	s = rt_read(outp);
	want = xasprintf("==> %s <==\nsync ", a);
	assert_true(!strncmp(s, want, strlen(want)));
	free(want);
	free(s);
	s = after_sync(outp);
	want = xasprintf("from a\n\n==> %s <==\nfrom b\n", b);
	assert_string_equal(s, want);
	free(want);
	free(s);
	free(a);
	free(b);
	free(outp);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		RT_TEST(test_rotate),
		RT_TEST(test_rotate_copy_fails),
		RT_TEST(test_tail),
		cmocka_unit_test_setup_teardown(test_follow, rt_setup, follow_teardown),
		cmocka_unit_test_setup_teardown(test_follow_several, rt_setup, follow_teardown),
	};

	RT_EXEC_HOOK(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
