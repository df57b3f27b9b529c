/*
 * shell.c — one-off shell commands with a timeout, a process-group kill and
 * bounded output (shell.h).
 */
#include "common.h"
#include "runtime/shell.h"
#include "util/buf.h"
#include "util/clock.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

/*
 * The capture: within max, or, keeping the tail, in a buffer of twice max
 * that drops its older half when full (each byte is moved at most once).
 */
struct capture {
	struct hbuf b;
	size_t max;
	bool keep_tail, cut;
};

/* false: it does not fit (not keep_tail) */
static bool capture_add(struct capture *c, const char *p, size_t n)
{
	if (!c->keep_tail)
		return hbuf_append(&c->b, p, n) == 0;
	while (n) {
		size_t k = MIN(c->b.max - c->b.len, n);
		hbuf_append(&c->b, p, k); /* fits: k <= room */
		p += k;
		n -= k;
		if (c->b.len == c->b.max) {
			memmove(c->b.data, c->b.data + c->b.len - c->max, c->max);
			c->b.len = c->max;
			c->cut = true;
		}
	}
	return true;
}

/* the last max bytes as the result's string */
static void capture_detach(struct capture *c, struct shell_result *r)
{
	size_t len;
	char *s = hbuf_detach(&c->b, &len);
	if (len > c->max) {
		memmove(s, s + len - c->max, c->max + 1);
		len = c->max;
		c->cut = true;
	}
	r->out = s;
	r->len = len;
	r->cut = c->cut;
}

static void NORETURN child(const struct shell_opts *o, const struct workload_cmd *wc, int out_fd, pid_t parent)
{
	const char *argv[] = { "sh", "-c", o->cmd, NULL };
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	/* its own process group: a timeout kills what it started too */
	setpgid(0, 0);
	if (devnull >= 0) {
		dup2(devnull, 0);
		/* without the capture, stderr would end up in the controller's log, interleaved */
		dup2(devnull, 2);
	}
	dup2(out_fd, 1);
	if (o->with_stderr)
		dup2(out_fd, 2);
	if (o->cwd && chdir(o->cwd) < 0)
		_exit(126);
	umask(022);
	if (workload_drop(&wc->user) < 0)
		_exit(126);
	/*
	 * A one-off command dies with the controller (kill -9 included): the
	 * controller runs it again after its restart, and an orphan would
	 * hold on to what it measured or checked. Set after the user switch,
	 * which clears it; a parent already gone is caught by getppid().
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(126);
	execve("/bin/sh", (char *const *)argv, wc->env);
	_exit(127);
}

int shell_run(const struct shell_opts *o, struct shell_result *r, struct gerr *err)
{
	struct capture cap = { .max = o->max_output, .keep_tail = o->keep_tail };
	int pfd[2] = { -1, -1 }, status = 0, ret = -1;
	int64_t deadline = clock_mono_ms() + o->timeout_ms;
	bool reaped = false, killed = false;
	struct workload_cmd wc;
	pid_t pid, parent = getpid();

	memset(r, 0, sizeof(*r));
	hbuf_init(&cap.b, o->keep_tail ? 2 * o->max_output : o->max_output);
	/* built before the fork: the child must not allocate */
	if (workload_cmd_prepare(&wc, o->env, err) < 0)
		goto out;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		gerr_set(err, "pipe: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		gerr_set(err, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child(o, &wc, pfd[1], parent);
	setpgid(pid, pid); /* also here: no race with the kill below */
	close(pfd[1]);
	pfd[1] = -1;
	r->end = SHELL_EXITED;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t left = deadline - clock_mono_ms();
		char buf[4096];
		ssize_t n;
		if (left <= 0) {
			r->end = SHELL_TIMED_OUT;
			break;
		}
		if (poll(&p, 1, (int)MIN(left, 1000)) < 0 && errno != EINTR)
			break;
		if (!p.revents)
			continue;
		n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (!capture_add(&cap, buf, (size_t)n)) {
			r->end = SHELL_TOO_MUCH;
			break;
		}
	}
	close(pfd[0]);
	pfd[0] = -1;
	if (r->end != SHELL_EXITED) {
		kill(-pid, SIGKILL);
		killed = true;
	}
	/* the output closed: the shell is done or about to be; wait, still within the deadline */
	while (!reaped) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			reaped = true;
		} else if (w < 0 && errno != EINTR) {
			break;
		} else if (w == 0) {
			if (!killed && clock_mono_ms() >= deadline) {
				r->end = SHELL_TIMED_OUT;
				kill(-pid, SIGKILL);
				killed = true;
			}
			usleep(10000);
		}
	}
	/* whatever the command left behind in its group goes too */
	kill(-pid, SIGKILL);
	if (!reaped) {
		gerr_set(err, "lost the child process");
		goto out;
	}
	if (r->end == SHELL_EXITED && WIFSIGNALED(status)) {
		r->end = SHELL_SIGNALED;
		r->code = WTERMSIG(status);
	} else if (r->end == SHELL_EXITED) {
		r->code = WEXITSTATUS(status);
	}
	capture_detach(&cap, r);
	ret = 0;
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	hbuf_release(&cap.b);
	workload_cmd_release(&wc);
	return ret;
}

void shell_result_release(struct shell_result *r)
{
	free(r->out);
	memset(r, 0, sizeof(*r));
}
