/*
 * test_process.c — identity by (pid, start time), spawn, kill trees,
 * tagged scan, free ports. Runs real processes.
 */
#include "rt_test.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

struct exit_rec {
	bool exited;
	int64_t status;
	int sig;
};

static void on_exit_rec(uv_process_t *p, int64_t status, int sig)
{
	struct exit_rec *e = p->data;

	e->exited = true;
	e->status = status;
	e->sig = sig;
	uv_close((uv_handle_t *)p, NULL);
}

/* spawns cmd in rt_dir with the given extra env; returns pid */
static pid_t spawn(uv_loop_t *loop, uv_process_t *proc, struct exit_rec *rec, const char *cmd,
		   char **env, const char *cwd, const char *log, uint64_t *st)
{
	struct spawn_opts o = { 0 };
	struct gerr err = { { 0 } };
	pid_t pid = 0;
	int r;

	o.cmd = cmd;
	o.cwd = cwd;
	o.env = env;
	o.log_path = log;
	r = runtime_spawn(loop, proc, &o, on_exit_rec, &pid, st, &err);
	if (r < 0)
		fail_msg("runtime_spawn: %s", err.msg);
	proc->data = rec;
	rt_track(pid);
	return pid;
}

static void test_start_time_self(void **state)
{
	uint64_t st = proc_start_time(getpid());

	(void)state;
	assert_true(st > 0);
	assert_true(proc_alive(getpid(), st));
	/* a recycled pid: same number, another start time */
	assert_false(proc_alive(getpid(), st + 1));
	assert_false(proc_alive(getpid(), 0));
	assert_int_equal(proc_start_time(0), 0);
	assert_int_equal(proc_start_time(-1), 0);
}

static void test_dead_and_zombie(void **state)
{
	siginfo_t si;
	uint64_t st;
	pid_t pid;
	int ws;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	rt_track(pid);
	st = proc_start_time(pid);
	assert_true(st > 0);
	assert_true(proc_alive(pid, st));
	kill(pid, SIGKILL);
	/* exited but not reaped: a zombie is dead */
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(proc_start_time(pid), 0);
	assert_false(proc_alive(pid, st));
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_int_equal(proc_start_time(pid), 0);
	assert_false(proc_alive(pid, st));
}

static uint64_t uptime_ticks(void)
{
	char *s = rt_read("/proc/uptime");
	double up = strtod(s, NULL);

	free(s);
	return (uint64_t)(up * (double)sysconf(_SC_CLK_TCK)) + 1;
}

/* comm may hold spaces and parentheses: parse from the last ')' */
static void test_start_time_odd_comm(void **state)
{
	int pfd[2];
	uint64_t self, st;
	pid_t pid;
	char c = 0;

	(void)state;
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		prctl(PR_SET_NAME, "a) b (c) d", 0, 0, 0);
		(void)write(pfd[1], "x", 1);
		pause();
		_exit(0);
	}
	rt_track(pid);
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	{
		char path[64], *stat;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		stat = rt_read(path);
		assert_non_null(strstr(stat, "(a) b (c) d)"));
		free(stat);
	}
	self = proc_start_time(getpid());
	st = proc_start_time(pid);
	/* started after us, before now */
	assert_true(st >= self);
	assert_true(st <= uptime_ticks());
	assert_true(proc_alive(pid, st));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_false(proc_alive(pid, st));
}

static void test_spawn_env_cwd_session_kill_tree(void **state)
{
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	char *log = rt_path("replica.log"), *snap = rt_path("snap"), *gcfile = rt_path("snap/gc.pid");
	char *home = xasprintf("GANTRY_HOME=%s", rt_dir);
	char *env[] = { (char *)"PORT=1234", home, (char *)"GANTRY_REPLICA=r-kill", NULL };
	char cwd[PATH_MAX], link[64], *s;
	uint64_t st = 0;
	pid_t pid, gc;
	ssize_t n;

	(void)state;
	assert_int_equal(mkdir(snap, 0755), 0);
	uv_loop_init(&loop);
	pid = spawn(&loop, &proc, &rec,
		    "echo port=$PORT; echo replica=$GANTRY_REPLICA; "
		    "sleep 300 & echo $! > gc.pid; sleep 300",
		    env, snap, log, &st);
	assert_true(pid > 0);
	assert_true(st > 0);
	assert_true(proc_alive(pid, st));
	assert_true(rt_wait_file_has(log, "port=1234\n", 5000));
	assert_true(rt_wait_file_has(log, "replica=r-kill\n", 5000));
	assert_true(rt_wait_file_has(gcfile, "\n", 5000));
	s = rt_read(gcfile);
	gc = (pid_t)atoi(s);
	free(s);
	rt_track(gc);
	assert_true(gc > 0);
	assert_true(proc_start_time(gc) > 0);

	/* its own session and process group, and the grandchild in it */
	assert_int_equal(getsid(pid), pid);
	assert_int_equal(getpgid(pid), pid);
	assert_int_equal(getpgid(gc), pid);
	/* cwd is the snapshot */
	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
	n = readlink(link, cwd, sizeof(cwd) - 1);
	assert_true(n > 0);
	cwd[n] = '\0';
	assert_string_equal(cwd, snap);

	proc_kill_tree(pid, NULL, SIGTERM);
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	assert_int_equal(rec.sig, SIGTERM);
	assert_false(proc_alive(pid, st));
	assert_true(rt_wait_gone(gc, 5000));

	rt_loop_close(&loop);
	free(log);
	free(snap);
	free(gcfile);
	free(home);
}

static void test_spawn_exit_status(void **state)
{
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	char *log = rt_path("x.log");
	uint64_t st = 0;
	pid_t pid;

	(void)state;
	uv_loop_init(&loop);
	pid = spawn(&loop, &proc, &rec, "echo out; echo err >&2; exit 3", NULL, rt_dir, log, &st);
	assert_true(st > 0);
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	assert_int_equal(rec.status, 3);
	assert_int_equal(rec.sig, 0);
	/* exited and reaped */
	assert_false(proc_alive(pid, st));
	{
		char *s = rt_read(log);
		assert_non_null(strstr(s, "out\n"));
		assert_non_null(strstr(s, "err\n"));
		free(s);
	}
	/* appends, never truncates the log */
	memset(&rec, 0, sizeof(rec));
	(void)spawn(&loop, &proc, &rec, "echo again", NULL, rt_dir, log, &st);
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	{
		char *s = rt_read(log);
		assert_string_equal(s, "out\nerr\nagain\n");
		free(s);
	}
	rt_loop_close(&loop);
	free(log);
}

/* pass_fds: inherited as fds 3, 4 in that order (the proxy's listening
 * sockets); the caller's copies stay open and CLOEXEC */
static void test_spawn_pass_fds(void **state)
{
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	struct spawn_opts o = { 0 };
	struct gerr err = { { 0 } };
	char *log = rt_path("fds.log"), buf[8];
	int a[2], b[2], pass[2];
	uint64_t st = 0;
	pid_t pid = 0;

	(void)state;
	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC), 0);
	pass[0] = a[1];
	pass[1] = b[1];
	uv_loop_init(&loop);
	o.cmd = "printf A >&3; printf B >&4";
	o.cwd = rt_dir;
	o.log_path = log;
	o.pass_fds = pass;
	o.npass_fds = 2;
	assert_int_equal(runtime_spawn(&loop, &proc, &o, on_exit_rec, &pid, &st, &err), 0);
	proc.data = &rec;
	rt_track(pid);
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	assert_int_equal(rec.status, 0);
	assert_int_equal(read(a[0], buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'A');
	assert_int_equal(read(b[0], buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'B');
	assert_true(fcntl(a[1], F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(a[1], "x", 1), 1);
	o.npass_fds = SPAWN_MAX_PASS_FDS + 1;
	assert_int_equal(runtime_spawn(&loop, &proc, &o, on_exit_rec, &pid, &st, &err), -1);
	assert_non_null(strstr(err.msg, "at most 65"));
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	rt_loop_close(&loop);
	free(log);
}

/* the controller ignores SIGPIPE and blocks signals it handles on the
 * loop: a replica must start with default dispositions and no mask */
static void test_spawn_signals_reset(void **state)
{
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	char *log = rt_path("sig.log"), *s;
	uint64_t st = 0;
	sigset_t set, old;
	void (*prev)(int);

	(void)state;
	prev = signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);
	uv_loop_init(&loop);
	(void)spawn(&loop, &proc, &rec, "exec grep -E '^Sig(Ign|Blk)' /proc/self/status", NULL, rt_dir, log,
		    &st);
	signal(SIGPIPE, prev);
	sigprocmask(SIG_SETMASK, &old, NULL);
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	s = rt_read(log);
	/* signals 1..31 only: 32 and 33 are glibc's own, and some parents
	 * (GNU make) start us with those ignored where no program can reset them */
	{
		const char *ign = strstr(s, "SigIgn:\t");
		assert_non_null(ign);
		assert_int_equal(strtoull(ign + 8, NULL, 16) & 0x7fffffffULL, 0);
	}
	assert_non_null(strstr(s, "SigBlk:\t0000000000000000\n"));
	free(s);
	rt_loop_close(&loop);
	free(log);
}

static void test_spawn_errors(void **state)
{
	uv_loop_t loop;
	uv_process_t proc;
	struct spawn_opts o = { 0 };
	struct gerr err = { { 0 } };
	char *log = rt_path("e.log"), *missing = rt_path("no/such/dir");
	uint64_t st = 0;
	pid_t pid = 0;

	(void)state;
	uv_loop_init(&loop);
	o.cmd = "true";
	o.cwd = missing;
	o.log_path = log;
	assert_int_equal(runtime_spawn(&loop, &proc, &o, on_exit_rec, &pid, &st, &err), -1);
	assert_non_null(strstr(err.msg, "no/such/dir"));
	assert_int_equal(pid, 0);
	uv_run(&loop, UV_RUN_NOWAIT);

	o.cwd = rt_dir;
	o.log_path = missing; /* its directory does not exist */
	assert_int_equal(runtime_spawn(&loop, &proc, &o, on_exit_rec, &pid, &st, &err), -1);
	assert_non_null(strstr(err.msg, "no/such/dir"));

	o.log_path = log;
	o.cmd = "";
	assert_int_equal(runtime_spawn(&loop, &proc, &o, on_exit_rec, &pid, &st, &err), -1);
	/* no handle left behind by any failure */
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(log);
	free(missing);
}

struct scan_rec {
	pid_t pids[16];
	char ids[16][32];
	int n;
};

static void on_scan(pid_t pid, const char *id, void *data)
{
	struct scan_rec *s = data;

	if (s->n < 16) {
		s->pids[s->n] = pid;
		strlcpy_g(s->ids[s->n], id, sizeof(s->ids[0]));
		s->n++;
	}
}

static void test_scan_tagged(void **state)
{
	uv_loop_t loop;
	uv_process_t p1, p2, p3;
	struct exit_rec r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct scan_rec found = { 0 };
	char *log = rt_path("scan.log");
	/* tags of this run only: another run of this test at once (two
	 * checkouts) must not find this one's processes */
	char tag[33];
	char *home, *other;
	snprintf(tag, sizeof(tag), "0011223344556677%016llx", (unsigned long long)getpid());
	home = xasprintf("GANTRY_TAG=%s", tag);
	other = xasprintf("GANTRY_TAG=%.31s%c", tag, tag[31] == '0' ? '1' : '0');
	/* the old tag (HOME's path) no longer counts */
	char *legacy = xasprintf("GANTRY_HOME=%s", rt_dir);
	char *tagged[] = { home, (char *)"GANTRY_REPLICA=r-scan-1", NULL };
	char *untagged[] = { home, legacy, NULL };
	char *elsewhere[] = { other, legacy, (char *)"GANTRY_REPLICA=r-scan-3", NULL };
	uint64_t st;
	pid_t pid1, pid2, pid3;
	int i, n;
	bool saw1 = false;

	(void)state;
	uv_loop_init(&loop);
	/* with a child, which inherits the tags but is not the replica */
	pid1 = spawn(&loop, &p1, &r1, "sleep 300 & echo $! > child.pid; exec sleep 300", tagged,
		     rt_dir, log, &st);
	pid2 = spawn(&loop, &p2, &r2, "exec sleep 300", untagged, rt_dir, log, &st);
	pid3 = spawn(&loop, &p3, &r3, "exec sleep 300", elsewhere, rt_dir, log, &st);
	{
		char *cf = rt_path("child.pid"), *txt;
		pid_t child;
		assert_true(rt_wait_file_has(cf, "\n", 5000));
		txt = rt_read(cf);
		child = (pid_t)atoi(txt);
		rt_track(child);
		assert_true(proc_start_time(child) > 0);
		free(txt);
		free(cf);
	}

	n = runtime_scan_tagged(tag, on_scan, &found);
	assert_int_equal(n, found.n);
	for (i = 0; i < found.n; i++) {
		assert_int_not_equal(found.pids[i], pid2);
		assert_int_not_equal(found.pids[i], pid3);
		assert_int_not_equal(found.pids[i], getpid());
		if (found.pids[i] == pid1) {
			assert_string_equal(found.ids[i], "r-scan-1");
			saw1 = true;
		}
	}
	assert_true(saw1);
	assert_int_equal(n, 1);

	proc_kill_tree(pid1, NULL, SIGKILL);
	proc_kill_tree(pid2, NULL, SIGKILL);
	proc_kill_tree(pid3, NULL, SIGKILL);
	assert_true(rt_run_until(&loop, &r1.exited, 5000));
	assert_true(rt_run_until(&loop, &r2.exited, 5000));
	assert_true(rt_run_until(&loop, &r3.exited, 5000));
	/* dead replicas are not found */
	assert_int_equal(runtime_scan_tagged(tag, NULL, NULL), 0);
	rt_loop_close(&loop);
	free(log);
	free(home);
	free(other);
	free(legacy);
}

static void test_kill_tree_refuses_self(void **state)
{
	(void)state;
	/* must not take the test (the controller) down */
	proc_kill_tree(getpid(), NULL, SIGKILL);
	proc_kill_tree(getpgrp(), NULL, SIGKILL);
	proc_kill_tree(1, NULL, 0);
	proc_kill_tree(0, NULL, SIGKILL);
	assert_true(proc_start_time(getpid()) > 0);
}

static void test_free_port(void **state)
{
	struct sockaddr_in sa;
	int port = runtime_free_port(), fd;

	(void)state;
	assert_true(port > 0 && port < 65536);
	/* it is free: we can bind it */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

/* ---- workloads: the environment builder and the user switch ---- */

static bool env_has(char **env, const char *entry)
{
	for (; env && *env; env++)
		if (!strcmp(*env, entry))
			return true;
	return false;
}

static bool env_has_key(char **env, const char *key)
{
	size_t k = strlen(key);
	for (; env && *env; env++)
		if (!strncmp(*env, key, k) && (*env)[k] == '=')
			return true;
	return false;
}

static size_t env_count(char **env)
{
	size_t n = 0;
	while (env && env[n])
		n++;
	return n;
}

static void test_env_build_exact(void **state)
{
	struct kv decl[] = {
		{ (char *)"GREETING", (char *)"hello" },
		{ (char *)"PORT", (char *)"1" },              /* the controller's: ignored */
		{ (char *)"GANTRY_HOME", (char *)"/evil" },   /* GANTRY_*: ignored */
		{ (char *)"GANTRY_REPLICA", (char *)"forged" },
		{ (char *)"EMPTY", (char *)"" },
	};
	struct workload_env w = {
		.decl = decl, .ndecl = ARRAY_SIZE(decl), .port = 4242, .scratch = "/s/r1",
		.tag = "00ff", .replica = "r1", .service = "api", .environment = "prod", .revision = 7,
		.version = "v7",
	};
	char **env;

	(void)state;
	/* what gantry serve has must not reach a workload */
	setenv("FOO_CANARY", "leak-me", 1);
	setenv("GANTRY_HOME", "/home-of-the-controller", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	env = workload_env_build(&w);
	/* the tags first: runtime_scan_tagged reads them there */
	assert_string_equal(env[0], "GANTRY_TAG=00ff");
	assert_string_equal(env[1], "GANTRY_REPLICA=r1");
	assert_true(env_has(env, "GANTRY_SERVICE=api"));
	assert_true(env_has(env, "GANTRY_ENVIRONMENT=prod"));
	assert_true(env_has(env, "GANTRY_REVISION=7"));
	assert_true(env_has(env, "GANTRY_VERSION=v7"));
	assert_true(env_has(env, "GANTRY_SCRATCH=/s/r1"));
	assert_true(env_has(env, "PORT=4242"));
	assert_true(env_has(env, "GREETING=hello"));
	assert_true(env_has(env, "EMPTY="));
	assert_true(env_has(env, "PATH=/usr/local/bin:/usr/bin:/bin"));
	assert_true(env_has(env, "LANG=C.UTF-8"));
	assert_true(env_has(env, "HOME=/s/r1"));
	assert_true(env_has(env, "TMPDIR=/s/r1"));
	/* nothing else: exactly these 14 */
	assert_int_equal(env_count(env), 14);
	assert_false(env_has_key(env, "FOO_CANARY"));
	assert_false(env_has_key(env, "GANTRY_HOME"));
	assert_false(env_has_key(env, "AWS_SECRET_ACCESS_KEY"));
	assert_false(env_has(env, "PORT=1"));
	assert_false(env_has(env, "GANTRY_REPLICA=forged"));
	assert_false(env_has_key(env, "GANTRY_URL"));
	workload_env_free(env);
	unsetenv("FOO_CANARY");
	unsetenv("GANTRY_HOME");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

static void test_env_build_overrides_and_minimal(void **state)
{
	struct kv decl[] = {
		{ (char *)"PATH", (char *)"/opt/app/bin:/usr/bin" },
		{ (char *)"LANG", (char *)"de_DE.UTF-8" },
		{ (char *)"TMPDIR", (char *)"/var/tmp" },
		{ (char *)"PATH", (char *)"/second" }, /* a repeated key: the first wins */
	};
	struct workload_env w = { .decl = decl, .ndecl = ARRAY_SIZE(decl), .scratch = "/s/x" };
	struct workload_env bare = { .port = 80, .url = true };
	char **env;

	(void)state;
	env = workload_env_build(&w);
	/* the spec may set PATH, LANG, TMPDIR: the defaults step aside */
	assert_true(env_has(env, "PATH=/opt/app/bin:/usr/bin"));
	assert_false(env_has(env, "PATH=/second"));
	assert_false(env_has(env, "PATH=/usr/local/bin:/usr/bin:/bin"));
	assert_true(env_has(env, "LANG=de_DE.UTF-8"));
	assert_true(env_has(env, "TMPDIR=/var/tmp"));
	assert_true(env_has(env, "HOME=/s/x"));
	assert_false(env_has_key(env, "PORT"));
	assert_false(env_has_key(env, "GANTRY_TAG"));
	assert_int_equal(env_count(env), 5); /* PATH LANG TMPDIR GANTRY_SCRATCH HOME */
	workload_env_free(env);

	/* a check: PORT and GANTRY_URL, PATH, LANG; no scratch, no HOME */
	env = workload_env_build(&bare);
	assert_true(env_has(env, "PORT=80"));
	assert_true(env_has(env, "GANTRY_URL=http://127.0.0.1:80"));
	assert_true(env_has(env, "PATH=/usr/local/bin:/usr/bin:/bin"));
	assert_true(env_has(env, "LANG=C.UTF-8"));
	assert_int_equal(env_count(env), 4);
	workload_env_free(env);
}

/* a replica sees exactly the environment it was given, nothing of ours */
static void test_spawn_clean_env(void **state)
{
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	struct kv decl[] = { { (char *)"DECLARED", (char *)"yes" } };
	struct workload_env w = { .decl = decl, .ndecl = 1, .port = 5555, .tag = "ab", .replica = "r-env" };
	char *log = rt_path("env.log"), *txt;
	char **env;
	uint64_t st;

	(void)state;
	setenv("FOO_CANARY", "leak-me", 1);
	setenv("GANTRY_HOME", rt_dir, 1);
	env = workload_env_build(&w);
	uv_loop_init(&loop);
	spawn(&loop, &proc, &rec, "env; echo done", env, rt_dir, log, &st);
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	assert_true(rt_wait_file_has(log, "done\n", 5000));
	txt = rt_read(log);
	assert_non_null(strstr(txt, "DECLARED=yes\n"));
	assert_non_null(strstr(txt, "PORT=5555\n"));
	assert_non_null(strstr(txt, "GANTRY_TAG=ab\n"));
	assert_null(strstr(txt, "leak-me"));
	assert_null(strstr(txt, "GANTRY_HOME"));
	free(txt);
	rt_loop_close(&loop);
	workload_env_free(env);
	unsetenv("FOO_CANARY");
	unsetenv("GANTRY_HOME");
	free(log);
}

/* as root: the replica runs as the given uid/gid with no supplementary
 * groups, and cannot get root back */
static void test_spawn_as_user(void **state)
{
	uv_loop_t loop;
	uv_process_t proc;
	struct exit_rec rec = { 0 };
	struct workload_user u = { .drop = true, .uid = 65534, .gid = 65534 };
	struct spawn_opts o = { 0 };
	struct gerr err = { { 0 } };
	char *log = rt_path("user.log"), *txt;
	char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	uint64_t st;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	chmod(rt_dir, 0755);
	uv_loop_init(&loop);
	o.cmd = "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); "
		"if cat /proc/1/environ >/dev/null 2>&1; then echo root-read; fi; echo done";
	o.cwd = rt_dir;
	o.env = env;
	o.user = &u;
	o.log_path = log;
	assert_int_equal(runtime_spawn(&loop, &proc, &o, on_exit_rec, &pid, &st, &err), 0);
	proc.data = &rec;
	rt_track(pid);
	assert_true(rt_run_until(&loop, &rec.exited, 5000));
	assert_int_equal(rec.status, 0);
	assert_true(rt_wait_file_has(log, "done\n", 5000));
	txt = rt_read(log);
	assert_non_null(strstr(txt, "uid=65534 gid=65534 groups=65534\n"));
	assert_null(strstr(txt, "root-read"));
	/* the log is the controller's: the workload only has the fd */
	{
		struct stat sb;
		assert_int_equal(stat(log, &sb), 0);
		assert_int_equal(sb.st_uid, 0);
		assert_int_equal(sb.st_mode & 0077, 0);
	}
	free(txt);
	rt_loop_close(&loop);
	free(log);
}

static void test_user_resolve(void **state)
{
	struct workload_user u;
	struct gerr err = { { 0 } };

	(void)state;
	if (geteuid() != 0) {
		/* not root: ourselves, whatever was asked */
		assert_int_equal(workload_user_resolve("65534", &u, &err), 0);
		assert_false(u.drop);
		return;
	}
	assert_int_equal(workload_user_resolve("65534", &u, &err), 0);
	assert_true(u.drop);
	assert_int_equal(u.uid, 65534);
	/* never root, by name or number */
	assert_int_equal(workload_user_resolve("0", &u, &err), -1);
	assert_non_null(strstr(err.msg, "controller's"));
	assert_int_equal(workload_user_resolve("root", &u, &err), -1);
	assert_int_equal(workload_user_resolve("no-such-user-gantry", &u, &err), -1);
	assert_non_null(strstr(err.msg, "does not exist"));
	/* no serve set a default up: ourselves (unit tests, tools) */
	assert_int_equal(workload_user_resolve(NULL, &u, &err), 0);
	assert_false(u.drop);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		RT_TEST(test_start_time_self),
		RT_TEST(test_dead_and_zombie),
		RT_TEST(test_start_time_odd_comm),
		RT_TEST(test_spawn_env_cwd_session_kill_tree),
		RT_TEST(test_spawn_exit_status),
		RT_TEST(test_spawn_pass_fds),
		RT_TEST(test_spawn_signals_reset),
		RT_TEST(test_spawn_errors),
		RT_TEST(test_scan_tagged),
		RT_TEST(test_kill_tree_refuses_self),
		RT_TEST(test_free_port),
		RT_TEST(test_env_build_exact),
		RT_TEST(test_env_build_overrides_and_minimal),
		RT_TEST(test_spawn_clean_env),
		RT_TEST(test_spawn_as_user),
		RT_TEST(test_user_resolve),
	};

	RT_EXEC_HOOK(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
