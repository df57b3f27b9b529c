/*
 * master.c — the master process of the standalone `gantry proxy` (see
 * master.h and docs/internals/proxy.md, "Who holds the listeners").
 *
 * Small on purpose, so that nothing the serving process does can take it
 * down: one thread, no event loop, nothing kept on the heap. The signals
 * it acts on (SIGCHLD, SIGHUP, SIGTERM, SIGINT) are blocked and taken one at
 * a time with sigtimedwait(), so no code runs in a signal handler and a
 * signal that arrives while it is busy waits for the next turn of the loop.
 * The only ways out are a stop signal (after the child has exited), a first
 * child that could not start, and SIGKILL (the child then gets SIGTERM from
 * PR_SET_PDEATHSIG and drains).
 */
#include "common.h"
#include "proxy/master.h"
#include "proxy/proxy-int.h"
#include "util/clock.h"
#include "util/log.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

/* a child still there this long after the drain deadline is killed */
#define STOP_GRACE_MS 5000
/* how often a SIGHUP waiting for the child to catch it is retried */
#define HUP_RETRY_MS 20

int64_t proxy_restart_delay(int64_t prev_ms, int64_t lived_ms)
{
	if (lived_ms >= PROXY_RESTART_QUICK_MS)
		return 0;
	if (prev_ms <= 0)
		return PROXY_RESTART_FIRST_MS;
	return MIN(prev_ms * 2, PROXY_RESTART_MAX_MS);
}

struct master {
	const struct proxy_config *cfg;
	const char *exe;
	char *const *argv;
	int fds[PROXY_MAX_WORKERS]; /* the listeners, above the fds the child gets them on */
	int nfds;
	sigset_t sigs;       /* the signals the loop takes */
	sigset_t saved_mask; /* the caller's, for the child and for our return */
	pid_t self;
	pid_t child;         /* 0: none running */
	int64_t started_ms;  /* when child was started */
	int starts;          /* children started so far */
	int64_t delay_ms;    /* the last restart delay chosen */
	int64_t respawn_at;  /* when no child runs: start the next one then */
	bool hup_pending;    /* a SIGHUP to pass on once the child catches it */
	bool stopping;
	int stop_sig;        /* the signal that stops us, passed on to the child */
	int64_t kill_at;     /* stopping: SIGKILL a child still there then */
	int status;          /* what proxy_master_run returns */
};

/*
 * Whether process pid has a handler for sig (/proc/PID/status, SigCgt). A
 * proxy that has not installed its SIGHUP handler yet would die of one: the
 * master holds a SIGHUP until this says the child catches it.
 */
static bool catches(pid_t pid, int sig)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "SigCgt:", 7)) {
			found = sscanf(line + 7, "%llx", &mask) == 1;
			break;
		}
	fclose(f);
	return found && (mask >> (sig - 1) & 1);
}

/*
 * In the child, between fork and exec (we are single-threaded, so any call
 * is safe here): die with the master, the listeners on fds 3.. (dup2 clears
 * their CLOEXEC), the caller's signal mask and default dispositions back.
 */
static void NORETURN child_exec(const struct master *m)
{
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		_exit(127);
	/* the master died before prctl took effect: nobody would tell us */
	if (getppid() != m->self)
		_exit(127);
	for (int i = 0; i < m->nfds; i++)
		if (dup2(m->fds[i], PROXY_LISTEN_FDS_START + i) < 0)
			_exit(127);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, &m->saved_mask, NULL);
	execv(m->exe, m->argv);
	dprintf(STDERR_FILENO, "error: gantry proxy: cannot run %s: %s\n", m->exe, strerror(errno));
	_exit(127);
}

static void spawn(struct master *m)
{
	pid_t pid = fork();

	if (pid < 0) {
		m->delay_ms = proxy_restart_delay(m->delay_ms, 0);
		m->respawn_at = clock_mono_ms() + m->delay_ms;
		log_error("master", "cannot start a child: fork: %s; trying again in %lldms", strerror(errno),
			  (long long)m->delay_ms);
		return;
	}
	if (pid == 0)
		child_exec(m);
	m->child = pid;
	m->started_ms = clock_mono_ms();
	m->starts++;
	m->hup_pending = false; /* the new child reads the routes file as it starts */
	log_info("master", "child started pid=%d", (int)pid);
}

static void on_child_exit(struct master *m, int st)
{
	int64_t now = clock_mono_ms(), lived = now - m->started_ms;
	pid_t pid = m->child;
	char how[64];

	m->child = 0;
	m->hup_pending = false;
	if (WIFSIGNALED(st))
		snprintf(how, sizeof(how), "killed by signal=%d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(how, sizeof(how), "exited status=%d", WEXITSTATUS(st));
	if (m->stopping) {
		if (WIFEXITED(st))
			m->status = WEXITSTATUS(st);
		else
			m->status = WTERMSIG(st) == m->stop_sig ? 0 : 128 + WTERMSIG(st);
		log_info("master", "child pid=%d %s after %lldms: stopped", (int)pid, how, (long long)lived);
		return;
	}
	/* the proxy exits by itself only when it cannot start (it said why) */
	if (m->starts == 1 && WIFEXITED(st) && WEXITSTATUS(st) != 0) {
		log_error("master", "child pid=%d %s after %lldms: the proxy could not start; stopping", (int)pid,
			  how, (long long)lived);
		m->status = WEXITSTATUS(st);
		m->stopping = true;
		return;
	}
	m->delay_ms = proxy_restart_delay(m->delay_ms, lived);
	m->respawn_at = now + m->delay_ms;
	if (!m->delay_ms)
		log_warn("master", "child pid=%d %s after %lldms: restarting now (connections wait in the listen backlog)",
			 (int)pid, how, (long long)lived);
	else
		log_warn("master", "child pid=%d %s after %lldms: crash loop, restarting in %lldms", (int)pid, how,
			 (long long)lived, (long long)m->delay_ms);
}

static void close_listeners(struct master *m)
{
	for (int i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

static void on_stop(struct master *m, int sig)
{
	if (!m->stopping) {
		int64_t now = clock_mono_ms();
		m->stopping = true;
		m->stop_sig = sig;
		m->hup_pending = false; /* a stopping proxy ignores it */
		/* INT64_MAX: never (a drain timeout too long to add) */
		m->kill_at = m->cfg->drain_timeout_ms + m->cfg->grace_ms < (uint64_t)(INT64_MAX - now - STOP_GRACE_MS)
				     ? now + (int64_t)(m->cfg->drain_timeout_ms + m->cfg->grace_ms) + STOP_GRACE_MS
				     : INT64_MAX;
		/* once the child closes its copies new connections are refused,
		 * not queued for a child that will never come */
		close_listeners(m);
		if (m->child)
			log_info("master", "stopping signal=%d: child pid=%d drains, then we exit", sig, (int)m->child);
		else
			log_info("master", "stopping signal=%d: no child running", sig);
	}
	if (m->child)
		kill(m->child, sig);
}

static void on_hup(struct master *m)
{
	if (m->stopping)
		return;
	if (!m->child) {
		log_info("master", "reload: no child running; the next one reads the routes file as it starts");
		return;
	}
	m->hup_pending = true;
}

/* the next signal of m->sigs, or 0 after timeout_ms (< 0: none) */
static int next_signal(struct master *m, int64_t timeout_ms)
{
	struct timespec ts;
	int sig;

	if (timeout_ms < 0) {
		sig = sigwaitinfo(&m->sigs, NULL);
	} else {
		ts.tv_sec = (time_t)(timeout_ms / 1000);
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
		sig = sigtimedwait(&m->sigs, NULL, &ts);
	}
	return sig > 0 ? sig : 0; /* EAGAIN (the timeout) or EINTR */
}

static void loop(struct master *m)
{
	for (;;) {
		int64_t now = clock_mono_ms(), timeout = -1;
		int sig, st;
		pid_t pid;

		if (!m->child && m->stopping)
			return;
		if (!m->child && now >= m->respawn_at) {
			spawn(m);
			continue;
		}
		if (m->hup_pending && catches(m->child, SIGHUP)) {
			kill(m->child, SIGHUP);
			m->hup_pending = false;
		}
		if (m->stopping && now >= m->kill_at) {
			log_warn("master", "child pid=%d still running %lldms after the stop signal: killing it",
				 (int)m->child, (long long)(m->cfg->drain_timeout_ms + STOP_GRACE_MS));
			kill(m->child, SIGKILL);
			m->kill_at = INT64_MAX;
		}
		if (!m->child)
			timeout = m->respawn_at - now;
		else if (m->stopping && m->kill_at != INT64_MAX)
			timeout = m->kill_at - now;
		if (m->hup_pending)
			timeout = timeout < 0 ? HUP_RETRY_MS : MIN(timeout, HUP_RETRY_MS);
		sig = next_signal(m, timeout);
		switch (sig) {
		case SIGCHLD:
			/* every exit since the last SIGCHLD (they coalesce) */
			while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
				if (pid == m->child && (WIFEXITED(st) || WIFSIGNALED(st)))
					on_child_exit(m, st);
			break;
		case SIGHUP:
			on_hup(m);
			break;
		case SIGTERM:
		case SIGINT:
			on_stop(m, sig);
			break;
		default:
			break;
		}
	}
}

static void noop(int sig)
{
	(void)sig;
}

int proxy_master_run(const struct proxy_config *cfg, const char *exe, char *const *argv, struct gerr *err)
{
	struct master m = { .cfg = cfg, .exe = exe, .argv = argv };
	struct sockaddr_storage sa;
	struct sigaction sa_chld = { .sa_handler = noop, .sa_flags = SA_NOCLDSTOP | SA_RESTART };
	struct sigaction old_chld, old_pipe, sa_pipe = { .sa_handler = SIG_IGN };
	int n = cfg->workers;

	if (proxy__parse_listen(cfg->listen, &sa) < 0) {
		gerr_set(err, "--listen: '%s' is not IP:PORT", cfg->listen);
		return -2;
	}
	if (n < 1 || n > PROXY_MAX_WORKERS) {
		gerr_set(err, "--workers: %d is not from 1 to %d", n, PROXY_MAX_WORKERS);
		return -2;
	}
	/* an inherited admin listener (--admin-fd) passes through to every
	 * child at its number, which the listeners must not take */
	if (cfg->admin_fd > 0 && cfg->admin_fd < PROXY_LISTEN_FDS_START + n) {
		gerr_set(err, "--admin-fd: %d is where the master hands its proxy the listeners (fds %d to %d): "
			 "pass a higher fd, or use --no-master", cfg->admin_fd, PROXY_LISTEN_FDS_START,
			 PROXY_LISTEN_FDS_START + n - 1);
		return -2;
	}
	/* --await-routes: bound, and listening once the child's first table arrives
	 * (listen() on its copy makes ours listen too) */
	if ((cfg->await_routes ? proxy_listeners_bind : proxy_listeners_open)(cfg->listen, n, m.fds, err) < 0)
		return -1;
	/* above 3..3+n-1, where the child wants them: dup2 there never
	 * overwrites one we still have to place */
	for (int i = 0; i < n; i++) {
		int hi = fcntl(m.fds[i], F_DUPFD_CLOEXEC, PROXY_LISTEN_FDS_START + n);
		if (hi < 0) {
			gerr_set(err, "--listen %s: %s", cfg->listen, strerror(errno));
			m.nfds = n;
			close_listeners(&m);
			return -1;
		}
		close(m.fds[i]);
		m.fds[i] = hi;
	}
	m.nfds = n;
	m.self = getpid();
	sigemptyset(&m.sigs);
	sigaddset(&m.sigs, SIGCHLD);
	sigaddset(&m.sigs, SIGHUP);
	sigaddset(&m.sigs, SIGTERM);
	sigaddset(&m.sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &m.sigs, &m.saved_mask);
	/* SIGCHLD must not be SIG_IGN (children would reap themselves); a
	 * closed stderr must not kill us in the middle of a log line */
	sigaction(SIGCHLD, &sa_chld, &old_chld);
	sigaction(SIGPIPE, &sa_pipe, &old_pipe);
	log_info("master", "pid=%d %s=%s sockets=%d: holding the listeners for the serving child", (int)m.self,
		 cfg->await_routes ? "bound" : "listening", cfg->listen, n);
	loop(&m);
	close_listeners(&m);
	/* a second stop signal still pending would end us as the mask is restored */
	while (next_signal(&m, 0) > 0)
		;
	sigaction(SIGCHLD, &old_chld, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigprocmask(SIG_SETMASK, &m.saved_mask, NULL);
	log_info("master", "exiting status=%d", m.status);
	return m.status;
}
