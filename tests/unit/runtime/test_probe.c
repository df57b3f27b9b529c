/*
 * test_probe.c — http/tcp/exec probes against a tiny server on the test's
 * own loop, timeouts, cancellation (no callback, no leak under ASan).
 */
#include "rt_test.h"

/* ---- a tiny HTTP server on 127.0.0.1 ---- */

struct server {
	uv_tcp_t listener;
	int port;
	const char *reply; /* sent after the request head; NULL = never answer */
	char req[2048];    /* the last request head received */
	size_t reqlen;
	int conns;
};

struct conn {
	uv_tcp_t tcp;
	uv_write_t w;
	struct server *s;
	char buf[2048];
	size_t len;
	bool answered;
};

static void conn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void conn_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	struct conn *c = h->data;

	(void)sz;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void conn_written(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	(void)status;
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = st->data;
	uv_buf_t out;

	(void)b;
	if (n < 0) {
		if (!uv_is_closing((uv_handle_t *)st))
			uv_close((uv_handle_t *)st, conn_closed);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (c->answered || !strstr(c->buf, "\r\n\r\n"))
		return;
	c->answered = true;
	memcpy(c->s->req, c->buf, c->len + 1);
	c->s->reqlen = c->len;
	if (!c->s->reply)
		return; /* a hung server */
	out = uv_buf_init((char *)c->s->reply, (unsigned)strlen(c->s->reply));
	c->w.data = c;
	uv_write(&c->w, st, &out, 1, conn_written);
}

static void on_conn(uv_stream_t *l, int status)
{
	struct server *s = l->data;
	struct conn *c;

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	uv_tcp_init(l->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) == 0) {
		s->conns++;
		uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
	} else {
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
	}
}

static void server_start(uv_loop_t *loop, struct server *s)
{
	struct sockaddr_in sa;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 16, on_conn), 0);
	assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len), 0);
	s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- probe results ---- */

struct result {
	int calls;
	bool done;
	bool ok;
	char detail[256];
};

static void on_probe(void *data, bool ok, const char *detail)
{
	struct result *r = data;

	r->calls++;
	r->done = true;
	r->ok = ok;
	strlcpy_g(r->detail, detail, sizeof(r->detail));
}

static struct probe mk(enum probe_kind kind, const char *target, int64_t timeout_ms)
{
	struct probe p = { 0 };

	p.kind = kind;
	p.target = (char *)target;
	p.timeout_ms = timeout_ms;
	return p;
}

/* runs one probe to completion, then lets the loop settle (frees) */
static void run_probe(uv_loop_t *loop, const struct probe *p, int port, struct result *res)
{
	struct probe_run *r;

	memset(res, 0, sizeof(*res));
	r = probe_start(loop, p, port, on_probe, res);
	assert_non_null(r);
	/* never called from inside probe_start */
	assert_int_equal(res->calls, 0);
	assert_true(rt_run_until(loop, &res->done, 10000));
	/* a few more turns: exactly once */
	uv_run(loop, UV_RUN_NOWAIT);
	uv_run(loop, UV_RUN_NOWAIT);
	assert_int_equal(res->calls, 1);
}

static void test_http(void **state)
{
	uv_loop_t loop;
	struct server s = { 0 };
	struct result res;
	struct probe p = mk(PROBE_HTTP, "/ready", 2000);

	(void)state;
	uv_loop_init(&loop);
	server_start(&loop, &s);

	s.reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	run_probe(&loop, &p, s.port, &res);
	assert_true(res.ok);
	assert_string_equal(res.detail, "GET /ready: 200");
	/* the request a server sees */
	assert_true(!strncmp(s.req, "GET /ready HTTP/1.1\r\n", 21));
	assert_non_null(strstr(s.req, "\r\nHost: 127.0.0.1\r\n"));
	assert_non_null(strstr(s.req, "\r\nConnection: close\r\n"));

	s.reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
	run_probe(&loop, &p, s.port, &res);
	assert_false(res.ok);
	assert_string_equal(res.detail, "GET /ready: 503");

	s.reply = "HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n";
	run_probe(&loop, &p, s.port, &res);
	assert_true(res.ok);
	assert_string_equal(res.detail, "GET /ready: 302");

	s.reply = "HTTP/1.1 404 Not Found\r\n\r\n";
	run_probe(&loop, &p, s.port, &res);
	assert_false(res.ok);

	s.reply = "SSH-2.0-OpenSSH\r\n";
	run_probe(&loop, &p, s.port, &res);
	assert_false(res.ok);
	assert_string_equal(res.detail, "GET /ready: malformed response");

	s.reply = "";
	run_probe(&loop, &p, s.port, &res);
	assert_false(res.ok);
	assert_string_equal(res.detail, "GET /ready: connection closed without a response");

	/* a server that accepts and never answers */
	s.reply = NULL;
	p.timeout_ms = 200;
	run_probe(&loop, &p, s.port, &res);
	assert_false(res.ok);
	assert_string_equal(res.detail, "timeout after 200ms");

	/* a path that would break the request line */
	p = mk(PROBE_HTTP, "/a b\r\nX: y", 1000);
	run_probe(&loop, &p, s.port, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.detail, "invalid path"));

	rt_loop_close(&loop);
}

static void test_tcp(void **state)
{
	uv_loop_t loop;
	struct server s = { 0 };
	struct result res;
	struct probe p = mk(PROBE_TCP, NULL, 1000);
	int closed = runtime_free_port();

	(void)state;
	uv_loop_init(&loop);
	server_start(&loop, &s);
	run_probe(&loop, &p, s.port, &res);
	assert_true(res.ok);
	assert_string_equal(res.detail, "connect: ok");

	assert_true(closed > 0);
	run_probe(&loop, &p, closed, &res);
	assert_false(res.ok);
	assert_string_equal(res.detail, "connect: connection refused");

	/* http to a closed port: the same detail */
	p = mk(PROBE_HTTP, "/", 1000);
	run_probe(&loop, &p, closed, &res);
	assert_false(res.ok);
	assert_string_equal(res.detail, "connect: connection refused");
	rt_loop_close(&loop);
}

static void test_exec(void **state)
{
	uv_loop_t loop;
	struct result res;
	struct probe p;
	char *pidfile = rt_path("bg.pid"), *cmd, *s;
	pid_t bg;

	(void)state;
	uv_loop_init(&loop);
	p = mk(PROBE_EXEC, "exit 0", 2000);
	run_probe(&loop, &p, 1, &res);
	assert_true(res.ok);
	assert_string_equal(res.detail, "exit status 0");

	p = mk(PROBE_EXEC, "exit 1", 2000);
	run_probe(&loop, &p, 1, &res);
	assert_false(res.ok);
	assert_string_equal(res.detail, "exit status 1");

	/* PORT is the replica's */
	p = mk(PROBE_EXEC, "test \"$PORT\" = 4321", 2000);
	run_probe(&loop, &p, 4321, &res);
	assert_true(res.ok);
	run_probe(&loop, &p, 4322, &res);
	assert_false(res.ok);

	/* exec probes run in the given directory */
	{
		struct probe_run *r;
		char *missing = rt_path("missing"), *marker = rt_path("marker");
		p = mk(PROBE_EXEC, "test -f marker", 2000);
		rt_write(marker, "", false);
		memset(&res, 0, sizeof(res));
		r = probe_start_in(&loop, &p, 1, rt_dir, on_probe, &res);
		assert_non_null(r);
		assert_true(rt_run_until(&loop, &res.done, 5000));
		assert_true(res.ok);
		/* a directory that does not exist: reported through cb */
		memset(&res, 0, sizeof(res));
		r = probe_start_in(&loop, &p, 1, missing, on_probe, &res);
		assert_non_null(r);
		assert_int_equal(res.calls, 0);
		assert_true(rt_run_until(&loop, &res.done, 5000));
		assert_false(res.ok);
		assert_string_equal(res.detail, "exec: no such file or directory");
		free(missing);
		free(marker);
	}

	/* timeout kills the probe's whole process group */
	cmd = xasprintf("sleep 5 & echo $! > %s; wait", pidfile);
	p = mk(PROBE_EXEC, cmd, 200);
	run_probe(&loop, &p, 1, &res);
	assert_false(res.ok);
	assert_string_equal(res.detail, "timeout after 200ms");
	s = rt_read(pidfile);
	bg = (pid_t)atoi(s);
	free(s);
	rt_track(bg);
	assert_true(bg > 0);
	assert_true(rt_wait_gone(bg, 5000));
	/* the loop ends by itself: every handle closed, the child reaped */
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);

	rt_loop_close(&loop);
	free(cmd);
	free(pidfile);
}

static void test_cancel(void **state)
{
	uv_loop_t loop;
	struct server s = { 0 };
	struct result res = { 0 };
	struct probe_run *r;
	struct probe p;
	char *pidfile = rt_path("c.pid"), *cmd, *txt;
	pid_t bg;

	(void)state;
	uv_loop_init(&loop);
	server_start(&loop, &s);

	/* http, cancelled before anything happened */
	s.reply = "HTTP/1.1 200 OK\r\n\r\n";
	p = mk(PROBE_HTTP, "/", 1000);
	r = probe_start(&loop, &p, s.port, on_probe, &res);
	assert_non_null(r);
	probe_cancel(r);
	/* http, cancelled while the server holds the request */
	s.reply = NULL;
	r = probe_start(&loop, &p, s.port, on_probe, &res);
	assert_non_null(r);
	{
		int64_t end = rt_now_ms() + 5000;
		while (s.reqlen == 0 && rt_now_ms() < end)
			uv_run(&loop, UV_RUN_NOWAIT);
	}
	assert_true(s.reqlen > 0);
	probe_cancel(r);

	/* exec, cancelled while running: its process group is killed */
	cmd = xasprintf("sleep 5 & echo $! > %s; wait", pidfile);
	p = mk(PROBE_EXEC, cmd, 5000);
	r = probe_start(&loop, &p, 1, on_probe, &res);
	assert_non_null(r);
	assert_true(rt_wait_file_has(pidfile, "\n", 5000));
	probe_cancel(r);
	txt = rt_read(pidfile);
	bg = (pid_t)atoi(txt);
	free(txt);
	rt_track(bg);

	/* tcp to a closed port, cancelled before the refusal is delivered */
	p = mk(PROBE_TCP, NULL, 1000);
	r = probe_start(&loop, &p, runtime_free_port(), on_probe, &res);
	assert_non_null(r);
	probe_cancel(r);

	/* let everything wind down: no callback ever */
	uv_close((uv_handle_t *)&s.listener, NULL);
	{
		int64_t end = rt_now_ms() + 5000;
		while (uv_run(&loop, UV_RUN_NOWAIT) && rt_now_ms() < end)
			rt_sleep_ms(5);
	}
	assert_int_equal(res.calls, 0);
	assert_true(bg > 0);
	assert_true(rt_wait_gone(bg, 5000));
	rt_loop_close(&loop);
	free(cmd);
	free(pidfile);
}

/*
 * A controller whose loop was blocked past a probe's timeout (a slow disk
 * write) must not fail a replica that answers at once: libuv runs the due
 * timer before it polls the socket. A hung server still times out.
 */
static void test_stalled_loop(void **state)
{
	uv_loop_t loop;
	struct server s = { 0 };
	struct result res = { 0 };
	struct probe p = mk(PROBE_HTTP, "/health", 200);

	(void)state;
	uv_loop_init(&loop);
	server_start(&loop, &s);
	s.reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	assert_non_null(probe_start(&loop, &p, s.port, on_probe, &res));
	usleep(600 * 1000); /* the loop is blocked three times the timeout */
	assert_true(rt_run_until(&loop, &res.done, 10000));
	assert_true(res.ok);
	assert_string_equal(res.detail, "GET /health: 200");

	memset(&res, 0, sizeof(res));
	s.reply = NULL;
	assert_non_null(probe_start(&loop, &p, s.port, on_probe, &res));
	usleep(600 * 1000);
	assert_true(rt_run_until(&loop, &res.done, 10000));
	assert_false(res.ok);
	assert_string_equal(res.detail, "timeout after 200ms");
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(res.calls, 1);
	rt_loop_close(&loop);
}

static void test_not_started(void **state)
{
	uv_loop_t loop;
	struct result res = { 0 };
	struct probe p = mk(PROBE_NONE, NULL, 1000);

	(void)state;
	uv_loop_init(&loop);
	assert_null(probe_start(&loop, &p, 1, on_probe, &res));
	assert_null(probe_start(&loop, NULL, 1, on_probe, &res));
	probe_cancel(NULL);
	assert_int_equal(res.calls, 0);
	rt_loop_close(&loop);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		RT_TEST(test_http),
		RT_TEST(test_tcp),
		RT_TEST(test_exec),
		RT_TEST(test_cancel),
		RT_TEST(test_stalled_loop),
		RT_TEST(test_not_started),
	};

	RT_EXEC_HOOK(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
