/*
 * upgrade.c — `gantry upgrade`: the running controller hands everything to
 * the gantry binary now on disk, without a refused connection or a
 * restarted replica.
 *
 * The old controller (daemon_upgrade_start, on its loop):
 *   1. runs `BINARY version` (5 s at most): a binary that cannot run at all
 *      is refused before anything changes;
 *   2. stops acting: no tick, no reconcile, replica exits only noted (the
 *      next controller sees them by polling), the API's listeners paused
 *      (connections wait in their backlogs);
 *   3. starts `BINARY <its own arguments>` with GANTRY_TAKEOVER naming the
 *      descriptors it inherits: serve.lock (the flock is the open file's,
 *      so the lock passes with it), HOME/api.sock's and --api's listeners,
 *      the proxy's public listeners and admin listener, and a pipe;
 *   4. waits for "ready" on the pipe (30 s at most). Then it exits, leaving
 *      replicas and the proxy running: they are the next controller's now.
 *      If the next one exits, closes the pipe, or times out first, it is
 *      killed and the old controller takes back its listeners and goes on
 *      as before (upgrade_state "failed", the reason in upgrade_error, an
 *      audit entry and a log line).
 *
 * The new controller starts as after a kill -9 (the store says everything;
 * replicas are adopted by pid and start time; rollouts resume), with the
 * listeners handed over instead of binding, and replaces the old proxy:
 * SIGTERM to it (it closes its copies of the listeners and the admin
 * listener at once, and finishes the requests it has), and a new proxy of
 * the new binary on the same sockets at once (proxyctl.c). Connections that
 * arrive in between wait in the backlog. Then it writes "ready".
 *
 * Why a child and not execve() in place (which keeps the pid, as a service
 * manager likes): a binary that execs but then fails to start (a store it
 * cannot read, a missing library, a crash) would leave no controller at
 * all; as a child, the old one is still there to go on. nginx's binary
 * upgrade (USR2) starts the new master the same way, as a child holding
 * the inherited listeners.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "util/log.h"
#include "util/clock.h"
#include "util/buf.h"
#include "daemon/gates_flow.h"
#include <jansson.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#define UPGRADE_READY_TIMEOUT_MS 30000
#define UPGRADE_CHECK_TIMEOUT_MS 5000

struct upgrade {
	uv_process_t proc;
	uv_pipe_t sync;
	uv_timer_t timer;
	int nopen;                 /* handles above not closed yet */
	pid_t pid;
	bool exited, ready, failed, eof;
	int unix_fd, tcp_fd;       /* our listeners' descriptors, kept to listen again */
	char buf[64];
	size_t len;
};

struct takeover {
	int lock, sync, api, tcp, admin;
	int proxy[64];
	int nproxy;
};

extern char **environ;

/* the executable on disk at our path (a binary replaced by rename shows as "PATH (deleted)") */
static int exe_path(char *out, size_t size, struct gerr *err)
{
	ssize_t k = readlink("/proc/self/exe", out, size - 1);
	static const char deleted[] = " (deleted)";
	if (k <= 0)
		return gerr_set(err, "cannot find our own executable: %s", strerror(errno));
	out[k] = 0;
	if ((size_t)k > sizeof(deleted) - 1 && !strcmp(out + k - (sizeof(deleted) - 1), deleted))
		out[k - (sizeof(deleted) - 1)] = 0;
	if (access(out, X_OK) < 0)
		return gerr_set(err, "the gantry binary at %s: %s", out, strerror(errno));
	return 0;
}

/*
 * `BINARY version` must print "gantry ..." and exit 0 within 5 s; its
 * first line goes to version. Blocking, but short and before anything
 * changes.
 */
static int check_binary(const char *path, char *version, size_t vsize, struct gerr *err)
{
	int pfd[2], status = 0;
	pid_t pid;
	char out[256];
	size_t n = 0;
	int64_t deadline = clock_mono_ms() + UPGRADE_CHECK_TIMEOUT_MS;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return gerr_set(err, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return gerr_set(err, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(pfd[1], 1);
		dup2(nul, 2);
		execl(path, path, "version", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t left = deadline - clock_mono_ms();
		ssize_t k;
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(pfd[0]);
			return gerr_set(err, "the new binary %s: 'version' did not answer within %ds", path,
					UPGRADE_CHECK_TIMEOUT_MS / 1000);
		}
		k = read(pfd[0], out + n, sizeof(out) - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n == sizeof(out) - 1)
			break;
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	out[n] = 0;
	out[strcspn(out, "\n")] = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return gerr_set(err, "the new binary %s does not run: 'version' %s %d", path,
				WIFEXITED(status) ? "exited with status" : "was killed by signal",
				WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	if (strncmp(out, "gantry ", 7))
		return gerr_set(err, "the new binary %s is not gantry ('version' printed '%.60s')", path, out);
	strlcpy_g(version, out + 7, vsize);
	return 0;
}

static void up_closed(uv_handle_t *h)
{
	struct upgrade *u = h->data;
	if (--u->nopen == 0)
		free(u);
}

static void up_close(struct upgrade *u)
{
	if (!uv_is_closing((uv_handle_t *)&u->sync))
		uv_close((uv_handle_t *)&u->sync, up_closed);
	if (!uv_is_closing((uv_handle_t *)&u->timer))
		uv_close((uv_handle_t *)&u->timer, up_closed);
	if (u->exited && !uv_is_closing((uv_handle_t *)&u->proc))
		uv_close((uv_handle_t *)&u->proc, up_closed);
}

/* the controller's own act (the request that asked for it was audited when it came) */
static void audit_upgrade(const char *result, const struct upgrade *u, const char *why)
{
	json_t *d = json_pack("{s:s, s:i, s:i}", "result", result, "old_pid", (int)getpid(), "new_pid", (int)u->pid);
	if (why)
		json_object_set_new(d, "error", json_string(why));
	gates_audit("gantry", "upgrade", "controller", d); /* consumes d */
}

/* the next controller did not take over: carry on as before */
static void upgrade_failed(struct upgrade *u, const char *why)
{
	struct gerr err;
	if (u->failed || u->ready)
		return;
	u->failed = true;
	if (!u->exited && u->pid > 0)
		kill(u->pid, SIGKILL);
	log_error("upgrade", "the new controller (pid %d) did not take over: %s; this one (pid %d) goes on",
		  (int)u->pid, why, (int)getpid());
	snprintf(gd->upgrade_state, sizeof(gd->upgrade_state), "failed");
	snprintf(gd->upgrade_error, sizeof(gd->upgrade_error), "%s", why);
	gd->upgrading = false;
	if (gd->api_hooks->listen_fds(u->unix_fd, u->tcp_fd, &err) < 0)
		log_error("upgrade", "cannot listen again: %s", err.msg);
	u->unix_fd = u->tcp_fd = -1; /* the listeners own them now */
	proxyctl_resume();
	audit_upgrade("failed", u, why);
	up_close(u);
	gd->upgrade = NULL;
	daemon_kick();
}

static void upgrade_done(struct upgrade *u)
{
	u->ready = true;
	log_info("upgrade", "the new controller (pid %d) took over: this one (pid %d) exits, leaving replicas and "
		 "the proxy running", (int)u->pid, (int)getpid());
	/* the new controller audits it: two writers never append to the chain at once */
	gd->handed_over = true;
	if (u->unix_fd >= 0)
		close(u->unix_fd);
	if (u->tcp_fd >= 0)
		close(u->tcp_fd);
	u->unix_fd = u->tcp_fd = -1;
	up_close(u);
	gd->upgrade = NULL;
	uv_stop(gd->loop);
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
	struct upgrade *u = p->data;
	char why[96];
	u->exited = true;
	if (!uv_is_closing((uv_handle_t *)p))
		uv_close((uv_handle_t *)p, up_closed);
	if (sig)
		snprintf(why, sizeof(why), "it was killed by signal %d before it was ready", sig);
	else
		snprintf(why, sizeof(why), "it exited with status %lld before it was ready", (long long)status);
	upgrade_failed(u, why);
}

static void on_timeout(uv_timer_t *t);

static void on_sync_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct upgrade *u = h->data;
	(void)hint;
	b->base = u->buf + u->len;
	b->len = sizeof(u->buf) - 1 - u->len;
}

static void on_sync_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct upgrade *u = s->data;
	(void)b;
	if (n > 0) {
		u->len += (size_t)n;
		u->buf[u->len] = 0;
		if (strstr(u->buf, "ready\n")) {
			uv_read_stop(s);
			upgrade_done(u);
		} else if (u->len >= sizeof(u->buf) - 1) {
			upgrade_failed(u, "it wrote something else than 'ready' on the handover pipe");
		}
	} else if (n < 0) {
		/* closed without "ready": it died (its exit callback says how,
		 * soon) or closed it; 2 s more to hear which */
		uv_read_stop(s);
		u->eof = true;
		if (!u->exited && !u->failed)
			uv_timer_start(&u->timer, on_timeout, 2000, 0);
	}
}

static void on_timeout(uv_timer_t *t)
{
	struct upgrade *u = t->data;
	char why[96];
	if (u->eof)
		snprintf(why, sizeof(why), "it closed the handover pipe before it was ready");
	else
		snprintf(why, sizeof(why), "it was not ready within %ds", UPGRADE_READY_TIMEOUT_MS / 1000);
	upgrade_failed(u, why);
}

/* our own command line (argv), NULL-terminated; caller frees [0] and the array */
static char **own_args(void)
{
	char *buf = NULL, **argv;
	size_t len = 0, cap = 0, n = 0;
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0)
		return NULL;
	for (;;) {
		if (cap - len < 4096)
			buf = xrealloc(buf, cap += 8192);
		k = read(fd, buf + len, cap - len - 1);
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	close(fd);
	if (!len) {
		free(buf);
		return NULL;
	}
	buf[len] = 0;
	for (size_t i = 0; i < len; i++)
		n += !buf[i];
	argv = xcalloc(n + 2, sizeof(*argv));
	n = 0;
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
		argv[n++] = buf + i;
	/* argv[0] is buf's start (freed with it); opts.file runs the binary by path */
	argv[n] = NULL;
	return argv;
}

/* fd becomes the child's fd 3 + *nfds, named in GANTRY_TAKEOVER as NAME=N */
static void add_fd(struct hbuf *list, int *fds, int *nfds, const char *name, int fd)
{
	hbuf_printf(list, "%s%s=%d", list->len ? " " : "", name, 3 + *nfds);
	fds[(*nfds)++] = fd;
}

int daemon_upgrade_start(pid_t *new_pid, char *binary, size_t binsz, struct gerr *err)
{
	char version[128], *fdlist, **args, **env;
	int fds[3 + 64 + 3], nfds = 0, pfd[2] = { -1, -1 }, r;
	uv_stdio_container_t stdio[3 + ARRAY_SIZE(fds)];
	uv_process_options_t opts;
	struct upgrade *u;
	struct hbuf fl;
	size_t nenv = 0;

	if (gd->upgrade || gd->upgrading)
		return gerr_set(err, "an upgrade is already in progress");
	if (gd->shutting_down)
		return gerr_set(err, "gantry serve is shutting down");
	if (exe_path(binary, binsz, err) < 0 || check_binary(binary, version, sizeof(version), err) < 0)
		return -1;
	if (proxyctl_hold(err) < 0)
		return -1;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return gerr_set(err, "pipe: %s", strerror(errno));

	u = xcalloc(1, sizeof(*u));
	u->unix_fd = u->tcp_fd = -1;
	gd->api_hooks->fds(&u->unix_fd, &u->tcp_fd);
	/* our own copies: pausing closes the listeners' */
	if (u->unix_fd >= 0)
		u->unix_fd = fcntl(u->unix_fd, F_DUPFD_CLOEXEC, 3);
	if (u->tcp_fd >= 0)
		u->tcp_fd = fcntl(u->tcp_fd, F_DUPFD_CLOEXEC, 3);

	/* the child's fds 3.. in this order; GANTRY_TAKEOVER names them */
	hbuf_init(&fl, 4096);
	add_fd(&fl, fds, &nfds, "sync", pfd[1]);
	add_fd(&fl, fds, &nfds, "lock", gd->lock_fd);
	if (u->unix_fd >= 0)
		add_fd(&fl, fds, &nfds, "api", u->unix_fd);
	if (u->tcp_fd >= 0)
		add_fd(&fl, fds, &nfds, "tcp", u->tcp_fd);
	if (gd->proxy_admin_fd >= 0)
		add_fd(&fl, fds, &nfds, "admin", gd->proxy_admin_fd);
	for (int i = 0; i < gd->proxy_nlfds; i++)
		add_fd(&fl, fds, &nfds, "proxy", gd->proxy_lfds[i]);
	{
		char *names = hbuf_detach(&fl, NULL);
		fdlist = xasprintf("GANTRY_TAKEOVER=%s", names);
		free(names);
		hbuf_release(&fl);
	}
	for (char **e = environ; *e; e++)
		nenv++;
	env = xcalloc(nenv + 2, sizeof(*env));
	nenv = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "GANTRY_TAKEOVER=", 16))
			env[nenv++] = *e;
	env[nenv++] = fdlist;

	args = own_args();
	if (!args) {
		gerr_set(err, "cannot read our own command line: %s", strerror(errno));
		goto fail;
	}
	memset(stdio, 0, sizeof(stdio));
	for (int i = 0; i < 3; i++) {
		stdio[i].flags = UV_INHERIT_FD;
		stdio[i].data.fd = i;
	}
	for (int i = 0; i < nfds; i++) {
		stdio[3 + i].flags = UV_INHERIT_FD;
		stdio[3 + i].data.fd = fds[i];
	}
	memset(&opts, 0, sizeof(opts));
	opts.file = binary;
	opts.args = args;
	opts.env = env;
	opts.stdio = stdio;
	opts.stdio_count = 3 + nfds;
	opts.exit_cb = on_child_exit;

	/* stop acting before it starts: it reads the store as we leave it */
	gd->upgrading = true;
	gd->api_hooks->pause();
	u->proc.data = u;
	r = uv_spawn(gd->loop, &u->proc, &opts);
	free(args[0]);
	free(args);
	if (r < 0) {
		uv_close((uv_handle_t *)&u->proc, NULL);
		gd->upgrading = false;
		gd->api_hooks->listen_fds(u->unix_fd, u->tcp_fd, err);
		u->unix_fd = u->tcp_fd = -1;
		gerr_set(err, "cannot start %s: %s", binary, uv_strerror(r));
		goto fail;
	}
	u->nopen = 3;
	u->pid = u->proc.pid;
	close(pfd[1]);
	pfd[1] = -1;
	uv_pipe_init(gd->loop, &u->sync, 0);
	u->sync.data = u;
	uv_pipe_open(&u->sync, pfd[0]);
	pfd[0] = -1;
	uv_read_start((uv_stream_t *)&u->sync, on_sync_alloc, on_sync_read);
	uv_timer_init(gd->loop, &u->timer);
	u->timer.data = u;
	uv_timer_start(&u->timer, on_timeout, UPGRADE_READY_TIMEOUT_MS, 0);
	gd->upgrade = u;
	snprintf(gd->upgrade_state, sizeof(gd->upgrade_state), "upgrading");
	gd->upgrade_error[0] = 0;
	log_info("upgrade", "starting the new controller: %s (gantry %s), pid %d; this one (pid %d) stopped acting",
		 binary, version, (int)u->pid, (int)getpid());
	*new_pid = u->pid;
	free(env);
	free(fdlist);
	return 0;
fail:
	if (u->unix_fd >= 0)
		close(u->unix_fd);
	if (u->tcp_fd >= 0)
		close(u->tcp_fd);
	free(u);
	free(env);
	free(fdlist);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return -1;
}

/* ---- the new controller's side ---- */

static int take_fd(const char *name, const char *val, struct gerr *err)
{
	char *end;
	long fd = strtol(val, &end, 10);
	if (*end || fd < 3 || fd > 1024 || fcntl((int)fd, F_GETFD) < 0)
		return gerr_set(err, "GANTRY_TAKEOVER: %s=%s is not an open descriptor", name, val);
	/* ours alone from now on: nothing we start inherits it by accident */
	if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)
		return gerr_set(err, "GANTRY_TAKEOVER: %s=%ld: %s", name, fd, strerror(errno));
	return (int)fd;
}

int daemon_takeover_parse(const char *spec, struct gerr *err)
{
	struct takeover *t = xcalloc(1, sizeof(*t));
	char *copy = xstrdup(spec), *save = NULL, *tok;
	int ret = -1;

	t->lock = t->sync = t->api = t->tcp = t->admin = -1;
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		int fd;
		if (!eq) {
			gerr_set(err, "GANTRY_TAKEOVER: '%s' is not NAME=FD", tok);
			goto out;
		}
		*eq = 0;
		if ((fd = take_fd(tok, eq + 1, err)) < 0)
			goto out;
		if (!strcmp(tok, "lock"))
			t->lock = fd;
		else if (!strcmp(tok, "sync"))
			t->sync = fd;
		else if (!strcmp(tok, "api"))
			t->api = fd;
		else if (!strcmp(tok, "tcp"))
			t->tcp = fd;
		else if (!strcmp(tok, "admin"))
			t->admin = fd;
		else if (!strcmp(tok, "proxy") && t->nproxy < (int)ARRAY_SIZE(t->proxy))
			t->proxy[t->nproxy++] = fd;
		else {
			gerr_set(err, "GANTRY_TAKEOVER: unknown descriptor '%s'", tok);
			goto out;
		}
	}
	if (t->lock < 0 || t->sync < 0) {
		gerr_set(err, "GANTRY_TAKEOVER: no lock or sync descriptor");
		goto out;
	}
	gd->takeover = t;
	t = NULL;
	ret = 0;
out:
	free(t);
	free(copy);
	return ret;
}

int daemon_takeover_fd(const char *name)
{
	const struct takeover *t = gd->takeover;
	if (!t)
		return -1;
	if (!strcmp(name, "lock"))
		return t->lock;
	if (!strcmp(name, "api"))
		return t->api;
	if (!strcmp(name, "tcp"))
		return t->tcp;
	if (!strcmp(name, "admin"))
		return t->admin;
	return -1;
}

int daemon_takeover_proxy_fds(int *fds, int max)
{
	const struct takeover *t = gd->takeover;
	int n = 0;
	if (!t)
		return 0;
	for (; n < t->nproxy && n < max; n++)
		fds[n] = t->proxy[n];
	return n;
}

void daemon_takeover_ready(void)
{
	struct takeover *t = gd->takeover;
	if (!t || t->sync < 0)
		return;
	if (write(t->sync, "ready\n", 6) != 6)
		log_warn("upgrade", "cannot tell the previous controller: %s", strerror(errno));
	close(t->sync);
	t->sync = -1;
	gates_audit("gantry", "upgrade", "controller",
		    json_pack("{s:s, s:i, s:i, s:s}", "result", "took_over", "old_pid", (int)getppid(), "new_pid",
			      (int)getpid(), "version", GANTRY_VERSION));
	log_info("upgrade", "took over from the previous controller (pid %d)", (int)getppid());
}

void daemon_upgrade_free(void)
{
	free(gd->takeover);
	gd->takeover = NULL;
}
