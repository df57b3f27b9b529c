/*
 * probe.c — one readiness/liveness probe attempt, asynchronous on the
 * controller's libuv loop (never blocks it): http GET, tcp connect, or a
 * command. A run owns its handles; it reports once (unless cancelled) and
 * frees itself in the last close callback.
 */
#include "common.h"
#include "runtime/runtime.h"
#include "util/log.h"

#include <signal.h>


/* enough for a status line; the rest of the response is not read */
#define RESP_MAX 1024
#define DEFAULT_TIMEOUT_MS 1000
/* a timeout timer this late says the loop was blocked (see on_timer) */
#define STALL_MS 100

struct probe_run {
	uv_loop_t *loop;
	enum probe_kind kind;
	probe_cb cb;
	void *data;
	int64_t timeout_ms;
	uint64_t started;  /* uv_now when the timer was started */
	bool extended;     /* the timeout was given again after a stalled loop */
	char *path;        /* http target, owned */
	char *req;         /* http request bytes, owned */
	uv_timer_t timer;
	uv_tcp_t tcp;
	uv_connect_t conn;
	uv_write_t wreq;
	uv_process_t proc;
	char resp[RESP_MAX];
	size_t len;
	int open;          /* handles initialised whose close_cb has not run */
	bool timer_live, tcp_live, proc_live; /* initialised, not yet closing */
	bool proc_running; /* exec child not yet reaped */
	bool done;         /* result decided (reported, or cancelled) */
	bool cancelled;
	/* a result found while starting, reported from the loop (cb is never
	 * called from inside probe_start) */
	bool early;
	bool early_ok;
	char early_detail[128];
};

static void on_close(uv_handle_t *h)
{
	struct probe_run *r = h->data;

	if (--r->open > 0)
		return;
	free(r->path);
	free(r->req);
	free(r);
}

static void close_handle(struct probe_run *r, uv_handle_t *h, bool *live)
{
	if (!*live)
		return;
	*live = false;
	uv_close(h, on_close);
}

/* Closes what can be closed. A running exec child is killed (its whole
 * process group) and its handle closed in the exit callback: closing it
 * before it is reaped would leave a zombie nobody waits for. */
static void teardown(struct probe_run *r)
{
	close_handle(r, (uv_handle_t *)&r->timer, &r->timer_live);
	close_handle(r, (uv_handle_t *)&r->tcp, &r->tcp_live);
	if (r->proc_live) {
		if (r->proc_running) {
			if (r->proc.pid > 0)
				(void)kill(-r->proc.pid, SIGKILL);
		} else {
			close_handle(r, (uv_handle_t *)&r->proc, &r->proc_live);
		}
	}
}

static void finish(struct probe_run *r, bool ok, const char *detail)
{
	if (r->done)
		return;
	r->done = true;
	if (!r->cancelled && r->cb)
		r->cb(r->data, ok, detail);
	teardown(r);
}

static void on_timer(uv_timer_t *t)
{
	struct probe_run *r = t->data;
	char detail[64];

	if (r->early) {
		finish(r, r->early_ok, r->early_detail);
		return;
	}
	/*
	 * libuv runs due timers before it polls for I/O: after the loop was
	 * blocked (a slow disk write, a busy machine) this fires although the
	 * answer may be waiting unread in the socket. A timer that fires
	 * STALL_MS or more late measured the controller, not the replica: the
	 * probe gets its whole timeout again, once, from now.
	 */
	if (!r->extended && uv_now(r->loop) >= r->started + (uint64_t)r->timeout_ms + STALL_MS) {
		r->extended = true;
		log_debug("runtime", "probe timer fired %llums late (the loop was blocked): timeout restarted",
			  (unsigned long long)(uv_now(r->loop) - r->started - (uint64_t)r->timeout_ms));
		uv_timer_start(&r->timer, on_timer, (uint64_t)r->timeout_ms, 0);
		return;
	}
	snprintf(detail, sizeof(detail), "timeout after %lldms", (long long)r->timeout_ms);
	finish(r, false, detail);
}

/* Reports a result found while starting at the next loop iteration. */
static void report_early(struct probe_run *r, bool ok, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void report_early(struct probe_run *r, bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->early_detail, sizeof(r->early_detail), fmt, ap);
	va_end(ap);
	r->early = true;
	r->early_ok = ok;
	uv_timer_stop(&r->timer);
	uv_timer_start(&r->timer, on_timer, 0, 0);
}

/* ---- http / tcp ---- */

/* Decides on the response so far; eof: nothing more will come. */
static void http_check(struct probe_run *r, bool eof)
{
	const char *nl = memchr(r->resp, '\n', r->len);
	char detail[128];
	const char *p;
	int status = 0, i;

	if (!nl && !eof && r->len < RESP_MAX)
		return; /* wait for the whole status line */
	if (r->len == 0) {
		snprintf(detail, sizeof(detail), "GET %s: connection closed without a response",
			 r->path);
		finish(r, false, detail);
		return;
	}
	/* HTTP/1.x SP 3DIGIT */
	p = r->resp;
	if (r->len < 12 || strncmp(p, "HTTP/", 5) || !(p = memchr(p, ' ', r->len)) ||
	    (size_t)(p - r->resp) + 4 > r->len) {
		snprintf(detail, sizeof(detail), "GET %s: malformed response", r->path);
		finish(r, false, detail);
		return;
	}
	for (i = 1; i <= 3; i++) {
		if (p[i] < '0' || p[i] > '9') {
			snprintf(detail, sizeof(detail), "GET %s: malformed response", r->path);
			finish(r, false, detail);
			return;
		}
		status = status * 10 + (p[i] - '0');
	}
	snprintf(detail, sizeof(detail), "GET %s: %d", r->path, status);
	finish(r, status >= 200 && status <= 399, detail);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct probe_run *r = h->data;

	(void)suggested;
	*buf = uv_buf_init(r->resp + r->len, (unsigned)(RESP_MAX - r->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct probe_run *r = s->data;
	char detail[128];

	(void)buf;
	if (r->done)
		return;
	if (n == UV_EOF) {
		http_check(r, true);
	} else if (n < 0) {
		snprintf(detail, sizeof(detail), "GET %s: read: %s", r->path, uv_strerror((int)n));
		finish(r, false, detail);
	} else {
		r->len += (size_t)n;
		http_check(r, false);
	}
}

static void on_write(uv_write_t *w, int status)
{
	struct probe_run *r = w->data;
	char detail[128];

	if (r->done || status == 0)
		return;
	snprintf(detail, sizeof(detail), "GET %s: write: %s", r->path, uv_strerror(status));
	finish(r, false, detail);
}

static void on_connect(uv_connect_t *c, int status)
{
	struct probe_run *r = c->data;
	char detail[128];
	uv_buf_t b;
	int e;

	if (r->done) /* UV_ECANCELED after a timeout or cancel */
		return;
	if (status < 0) {
		snprintf(detail, sizeof(detail), "connect: %s", uv_strerror(status));
		finish(r, false, detail);
		return;
	}
	if (r->kind == PROBE_TCP) {
		finish(r, true, "connect: ok");
		return;
	}
	b = uv_buf_init(r->req, (unsigned)strlen(r->req));
	r->wreq.data = r;
	e = uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, on_write);
	if (e == 0)
		e = uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read);
	if (e < 0) {
		snprintf(detail, sizeof(detail), "GET %s: %s", r->path, uv_strerror(e));
		finish(r, false, detail);
	}
}

static int start_net(struct probe_run *r, const char *host, int port)
{
	struct sockaddr_in sa;
	int e;

	if (r->kind == PROBE_HTTP) {
		const char *t = r->path;
		/* the target comes from the spec: keep it on one line */
		if (t[0] != '/' || strpbrk(t, " \r\n\t")) {
			report_early(r, false, "GET %s: invalid path", t);
			return 0;
		}
		r->req = xasprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: gantry-probe\r\n"
				   "Connection: close\r\n\r\n",
				   t);
	}
	if (port <= 0 || port > 65535) {
		report_early(r, false, "connect: invalid port %d", port);
		return 0;
	}
	e = uv_tcp_init(r->loop, &r->tcp);
	if (e < 0)
		return e;
	r->tcp.data = r;
	r->open++;
	r->tcp_live = true;
	if (uv_ip4_addr(host && *host ? host : "127.0.0.1", port, &sa) < 0) {
		report_early(r, false, "connect: invalid address %s", host);
		return 0;
	}
	r->conn.data = r;
	e = uv_tcp_connect(&r->conn, &r->tcp, (const struct sockaddr *)&sa, on_connect);
	if (e < 0)
		report_early(r, false, "connect: %s", uv_strerror(e));
	return 0;
}

/* ---- exec ---- */

static void exec_on_exit(uv_process_t *p, int64_t status, int sig)
{
	struct probe_run *r = p->data;
	char detail[64];

	r->proc_running = false;
	if (!r->done) {
		if (sig)
			snprintf(detail, sizeof(detail), "killed by signal %d", sig);
		else
			snprintf(detail, sizeof(detail), "exit status %lld", (long long)status);
		finish(r, sig == 0 && status == 0, detail);
	}
	/* finished before (timeout, cancel): the child is reaped now */
	close_handle(r, (uv_handle_t *)&r->proc, &r->proc_live);
}

static int start_exec(struct probe_run *r, const char *cmd, int port, const struct probe_exec *x)
{
	uv_process_options_t o;
	uv_stdio_container_t stdio[3];
	char *args[10], portenv[32], ids[64], *defenv[3], **env;
	int rc, k = 0;
	bool helper = x && ((x->user && x->user->drop) || x->cgroup);

	if (!cmd || !*cmd) {
		report_early(r, false, "exec: empty command");
		return 0;
	}
	/* nothing of ours: the environment the caller built, else PORT and PATH */
	snprintf(portenv, sizeof(portenv), "PORT=%d", port);
	defenv[0] = portenv;
	defenv[1] = (char *)"PATH=" WORKLOAD_PATH;
	defenv[2] = NULL;
	env = x && x->env ? x->env : defenv;

	if (helper) {
		/* through __exec, as a replica: it joins the replica's cgroup
		 * (with our rights), then drops to the workload's user */
		args[k++] = (char *)"gantry";
		args[k++] = (char *)"__exec";
		args[k++] = (char *)(x->cgroup ? x->cgroup : "-");
		if (x->user && x->user->drop) {
			snprintf(ids, sizeof(ids), "%u:%u", (unsigned)x->user->uid, (unsigned)x->user->gid);
			args[k++] = (char *)"-u";
			args[k++] = ids;
		}
		args[k++] = (char *)"--";
	}
	args[k++] = (char *)"sh";
	args[k++] = (char *)"-c";
	args[k++] = (char *)cmd;
	args[k] = NULL;
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_IGNORE;
	stdio[2].flags = UV_IGNORE;
	memset(&o, 0, sizeof(o));
	o.exit_cb = exec_on_exit;
	o.file = helper ? "/proc/self/exe" : "/bin/sh";
	o.args = args;
	o.env = env;
	o.cwd = x ? x->cwd : NULL;
	/* own process group, so a timeout kills everything it started */
	o.flags = UV_PROCESS_DETACHED;
	o.stdio_count = 3;
	o.stdio = stdio;
	r->proc.data = r;
	rc = uv_spawn(r->loop, &r->proc, &o);
	/* libuv initialises the handle even when spawning fails: it must be
	 * closed either way */
	r->open++;
	r->proc_live = true;
	if (rc < 0) {
		report_early(r, false, "exec: %s", uv_strerror(rc));
		return 0;
	}
	r->proc_running = true;
	return 0;
}

struct probe_run *probe_start_exec(uv_loop_t *loop, const struct probe *probe, int port,
				   const struct probe_exec *x, probe_cb cb, void *data)
{
	struct probe_run *r;
	int e;

	if (!probe || (probe->kind != PROBE_HTTP && probe->kind != PROBE_TCP &&
		       probe->kind != PROBE_EXEC))
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->kind = probe->kind;
	r->cb = cb;
	r->data = data;
	r->timeout_ms = probe->timeout_ms > 0 ? probe->timeout_ms : DEFAULT_TIMEOUT_MS;
	r->path = xstrdup(probe->kind == PROBE_HTTP && probe->target && *probe->target ?
				  probe->target : "/");
	e = uv_timer_init(loop, &r->timer);
	if (e < 0) {
		free(r->path);
		free(r);
		return NULL;
	}
	r->timer.data = r;
	r->open++;
	r->timer_live = true;
	r->started = uv_now(loop);
	uv_timer_start(&r->timer, on_timer, (uint64_t)r->timeout_ms, 0);

	if (probe->kind == PROBE_EXEC)
		e = start_exec(r, probe->target, port, x);
	else
		e = start_net(r, x ? x->host : NULL, port);
	if (e < 0) {
		log_warn("runtime", "probe start failed: %s", uv_strerror(e));
		r->done = true;
		r->cancelled = true;
		teardown(r);
		return NULL;
	}
	return r;
}

struct probe_run *probe_start_in(uv_loop_t *loop, const struct probe *probe, int port,
				 const char *cwd, probe_cb cb, void *data)
{
	struct probe_exec x = { .cwd = cwd };
	return probe_start_exec(loop, probe, port, &x, cb, data);
}

struct probe_run *probe_start(uv_loop_t *loop, const struct probe *probe, int port,
			      probe_cb cb, void *data)
{
	return probe_start_exec(loop, probe, port, NULL, cb, data);
}

void probe_cancel(struct probe_run *r)
{
	if (!r)
		return;
	r->cancelled = true;
	if (!r->done) {
		r->done = true;
		teardown(r);
	}
}
