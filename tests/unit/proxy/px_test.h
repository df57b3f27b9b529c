/*
 * px_test.h — helpers shared by the proxy's request-path unit tests
 * (header-only: the Makefile builds each tests/unit/DIR/test_*.c into its
 * own binary).
 *
 *  - pt_up: a scripted upstream, a thread serving 127.0.0.1 on an ephemeral
 *    port with plain sockets; it counts connections, requests and closes,
 *    keeps the last request head, and answers as its mode says.
 *  - pt_px: a proxy run in-process (proxy__start, then proxy__serve on a
 *    thread), listening on 127.0.0.1 on an ephemeral port; stopped with
 *    SIGTERM, as `gantry proxy` is.
 *  - pt_conn: a blocking client connection that reads whole responses.
 *
 * Every wait is for an event (a count reached, a response, an EOF) and is
 * bounded by PT_WAIT_MS so that a broken proxy fails a test instead of
 * hanging it; no test asserts how long anything took. Traffic stays on
 * 127.0.0.1. pt_teardown stops whatever a test started, also after a
 * failed assertion.
 */
#ifndef PX_TEST_H
#define PX_TEST_H
#include "common.h"
#include "proxy/proxy-int.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <cmocka.h>

#define PT_WAIT_MS 10000 /* the bound of every wait: reached only when something is broken */
#define PT_MAX_UPS 4
#define PT_MAX_CONNS 16
#define PT_BUF (128 * 1024)

/* ---------------------------------------------------------------- the upstream */

enum pt_mode {
	UP_OK,           /* 200, body = its name, keep-alive */
	UP_STATUS,       /* the status in ->status, body = its name */
	UP_RESET,        /* reads the request, then resets the connection (RST) */
	UP_CLOSE_SECOND, /* answers a connection's first request, closes it at the second */
	UP_HANG,         /* reads the request and never answers */
	UP_HOLD,         /* answers once pt_up_release() was called */
	UP_UPGRADE,      /* 101 Switching Protocols, then echoes bytes back */
	UP_CLOSE_DELIM,  /* 200 without Content-Length: the body ends with the close */
};

struct pt_upconn {
	int fd;
	char buf[PT_BUF];
	size_t len;
	int nreq;
	bool echo, held, held_head;
};

struct pt_up {
	char name[32];
	enum pt_mode mode; /* and status: under mu once it runs (pt_up_set_mode) */
	int status;
	int lfd, wake[2];
	uint16_t port;
	pthread_t th;
	bool running, quit, release;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pt_upconn *conn[PT_MAX_CONNS];
	/* under mu */
	int conns, closed, requests;
	char head[16384]; /* the last request head, NUL-terminated */
};

static struct pt_up pt_ups[PT_MAX_UPS];
static int pt_nups;

static UNUSED void pt_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the peer is gone: what it did not get is the test's failure */
		p += w;
		n -= (size_t)w;
	}
}

/* status, body = up's name (none for HEAD) */
static UNUSED void pt_up_reply(struct pt_up *up, int fd, int status, bool head)
{
	char b[512];
	int n = snprintf(b, sizeof(b), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nX-Upstream: %s\r\n\r\n%s",
			 status, status == 200 ? "OK" : "Status", strlen(up->name), up->name,
			 head ? "" : up->name);
	pt_write_all(fd, b, (size_t)n);
}

static UNUSED void pt_up_drop(struct pt_up *up, int i, bool reset)
{
	struct pt_upconn *k = up->conn[i];
	if (reset) {
		struct linger lg = { 1, 0 };
		setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(k->fd);
	free(k);
	up->conn[i] = NULL;
	pthread_mutex_lock(&up->mu);
	up->closed++;
	pthread_cond_broadcast(&up->cv);
	pthread_mutex_unlock(&up->mu);
}

/* a whole request (head and Content-Length body) at the start of k->buf: its length, else 0 */
static UNUSED size_t pt_up_request_len(const struct pt_upconn *k, size_t *head_len)
{
	const char *end = memmem(k->buf, k->len, "\r\n\r\n", 4);
	size_t hl, cl = 0;
	if (!end)
		return 0;
	hl = (size_t)(end - k->buf) + 4;
	for (const char *p = k->buf; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
		if (*p == '\n')
			p++;
		if (!strncasecmp(p, "content-length:", 15))
			cl = strtoul(p + 15, NULL, 10);
	}
	*head_len = hl;
	return k->len >= hl + cl ? hl + cl : 0;
}

/* what the upstream does with the requests in connection i; false if it closed it */
static UNUSED bool pt_up_serve(struct pt_up *up, int i)
{
	struct pt_upconn *k = up->conn[i];
	size_t hl, n;

	if (k->echo) {
		pt_write_all(k->fd, k->buf, k->len);
		k->len = 0;
		return true;
	}
	while (!k->held && (n = pt_up_request_len(k, &hl)) > 0) {
		bool head = !strncmp(k->buf, "HEAD ", 5);
		enum pt_mode mode;
		int status;
		pthread_mutex_lock(&up->mu);
		mode = up->mode;
		status = up->status;
		memcpy(up->head, k->buf, MIN(hl, sizeof(up->head) - 1));
		up->head[MIN(hl, sizeof(up->head) - 1)] = 0;
		up->requests++;
		pthread_cond_broadcast(&up->cv);
		pthread_mutex_unlock(&up->mu);
		k->nreq++;
		memmove(k->buf, k->buf + n, k->len - n);
		k->len -= n;
		switch (mode) {
		case UP_OK:
			pt_up_reply(up, k->fd, 200, head);
			break;
		case UP_STATUS:
			pt_up_reply(up, k->fd, status, head);
			break;
		case UP_RESET:
			pt_up_drop(up, i, true);
			return false;
		case UP_CLOSE_SECOND:
			if (k->nreq == 2) {
				pt_up_drop(up, i, false);
				return false;
			}
			pt_up_reply(up, k->fd, 200, head);
			break;
		case UP_HANG:
			break;
		case UP_HOLD:
			if (up->release)
				pt_up_reply(up, k->fd, 200, head);
			else
				k->held = true, k->held_head = head;
			break;
		case UP_UPGRADE: {
			static const char h[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
						"Upgrade: pt-echo\r\n\r\n";
			pt_write_all(k->fd, h, sizeof(h) - 1);
			k->echo = true;
			return pt_up_serve(up, i);
		}
		case UP_CLOSE_DELIM: {
			static const char h[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
			pt_write_all(k->fd, h, sizeof(h) - 1);
			pt_write_all(k->fd, up->name, strlen(up->name));
			pt_up_drop(up, i, false);
			return false;
		}
		}
	}
	return true;
}

static UNUSED void *pt_up_main(void *arg)
{
	struct pt_up *up = arg;

	for (;;) {
		struct pollfd p[PT_MAX_CONNS + 2];
		int idx[PT_MAX_CONNS + 2], n = 0;

		p[n].fd = up->wake[0], p[n].events = POLLIN, idx[n++] = -2;
		p[n].fd = up->lfd, p[n].events = POLLIN, idx[n++] = -1;
		for (int i = 0; i < PT_MAX_CONNS; i++)
			if (up->conn[i])
				p[n].fd = up->conn[i]->fd, p[n].events = POLLIN, idx[n++] = i;
		if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			char c;
			if (read(up->wake[0], &c, 1) <= 0 || up->quit)
				break;
			for (int i = 0; i < PT_MAX_CONNS; i++) /* pt_up_release */
				if (up->conn[i] && up->conn[i]->held && up->release) {
					up->conn[i]->held = false;
					pt_up_reply(up, up->conn[i]->fd, 200, up->conn[i]->held_head);
					pt_up_serve(up, i);
				}
		}
		for (int j = 1; j < n; j++) {
			if (!p[j].revents)
				continue;
			if (idx[j] == -1) {
				int fd = accept4(up->lfd, NULL, NULL, SOCK_CLOEXEC);
				int slot = 0;
				if (fd < 0)
					continue;
				while (slot < PT_MAX_CONNS && up->conn[slot])
					slot++;
				if (slot == PT_MAX_CONNS) {
					close(fd);
					continue;
				}
				up->conn[slot] = xcalloc(1, sizeof(struct pt_upconn));
				up->conn[slot]->fd = fd;
				pthread_mutex_lock(&up->mu);
				up->conns++;
				pthread_cond_broadcast(&up->cv);
				pthread_mutex_unlock(&up->mu);
			} else {
				struct pt_upconn *k = up->conn[idx[j]];
				ssize_t r;
				if (!k)
					continue;
				r = recv(k->fd, k->buf + k->len, sizeof(k->buf) - k->len, 0);
				if (r <= 0) {
					if (k->echo)
						shutdown(k->fd, SHUT_WR);
					pt_up_drop(up, idx[j], false);
					continue;
				}
				k->len += (size_t)r;
				pt_up_serve(up, idx[j]);
			}
		}
	}
	return NULL;
}

/* a new upstream on 127.0.0.1:ephemeral answering as mode says */
static UNUSED struct pt_up *pt_up_start(const char *name, enum pt_mode mode)
{
	struct pt_up *up;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	assert_true(pt_nups < PT_MAX_UPS);
	up = &pt_ups[pt_nups++];
	memset(up, 0, sizeof(*up));
	snprintf(up->name, sizeof(up->name), "%s", name);
	up->mode = mode;
	up->status = 200;
	pthread_mutex_init(&up->mu, NULL);
	pthread_cond_init(&up->cv, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	up->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(up->lfd >= 0);
	assert_int_equal(bind(up->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(up->lfd, 64), 0);
	assert_int_equal(getsockname(up->lfd, (struct sockaddr *)&sa, &len), 0);
	up->port = ntohs(sa.sin_port);
	assert_int_equal(pipe2(up->wake, O_CLOEXEC), 0);
	assert_int_equal(pthread_create(&up->th, NULL, pt_up_main, up), 0);
	up->running = true;
	return up;
}

static UNUSED void pt_up_stop(struct pt_up *up)
{
	if (!up->running)
		return;
	up->quit = true;
	if (write(up->wake[1], "q", 1) != 1)
		fail_msg("cannot wake the upstream");
	pthread_join(up->th, NULL);
	for (int i = 0; i < PT_MAX_CONNS; i++)
		if (up->conn[i]) {
			close(up->conn[i]->fd);
			free(up->conn[i]);
		}
	close(up->lfd);
	close(up->wake[0]);
	close(up->wake[1]);
	pthread_mutex_destroy(&up->mu);
	pthread_cond_destroy(&up->cv);
	up->running = false;
}

/* how up answers the requests it reads from now on */
static UNUSED void pt_up_set_mode(struct pt_up *up, enum pt_mode mode, int status)
{
	pthread_mutex_lock(&up->mu);
	up->mode = mode;
	up->status = status;
	pthread_mutex_unlock(&up->mu);
}

/* UP_HOLD: answer the requests held so far and the ones to come */
static UNUSED void pt_up_release(struct pt_up *up)
{
	up->release = true;
	if (write(up->wake[1], "r", 1) != 1)
		fail_msg("cannot wake the upstream");
}

/* waits until *what (one of up's counts) is at least n; false if it never got there */
static UNUSED bool pt_up_wait(struct pt_up *up, const int *what, int n)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += PT_WAIT_MS / 1000;
	pthread_mutex_lock(&up->mu);
	while (*what < n)
		if (pthread_cond_timedwait(&up->cv, &up->mu, &ts) == ETIMEDOUT)
			break;
	ok = *what >= n;
	pthread_mutex_unlock(&up->mu);
	return ok;
}

/* one of up's counts, read under its lock */
static UNUSED int pt_up_count(struct pt_up *up, const int *what)
{
	int v;
	pthread_mutex_lock(&up->mu);
	v = *what;
	pthread_mutex_unlock(&up->mu);
	return v;
}

/* a copy of the last request head up read */
static UNUSED void pt_up_head(struct pt_up *up, char *out, size_t n)
{
	pthread_mutex_lock(&up->mu);
	snprintf(out, n, "%s", up->head);
	pthread_mutex_unlock(&up->mu);
}

/* a port on 127.0.0.1 that refuses connections: bound, never listening (close it when done) */
static UNUSED int pt_refusing_port(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* ---------------------------------------------------------------- the proxy */

struct pt_px {
	struct proxy_config cfg;
	struct proxy *px;
	pthread_t th;
	uint16_t port, admin_port;
	char routes[128], listen[32], admin[32];
	bool running;
};

/*
 * A port for the proxy to listen on: `--listen` wants a port above 0, so
 * the test reserves one the kernel picked (bound with SO_REUSEADDR, not
 * listening: the proxy's own SO_REUSEADDR bind may share it, nobody's
 * bind(0) gets it) until the proxy listens there. Close the fd then.
 */
static UNUSED int pt_reserve_port(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static struct pt_px pt_proxy;

/*
 * The defaults of `gantry proxy`, one worker, on 127.0.0.1 (the port is
 * reserved by pt_px_start; a test that sets cfg.admin to PT_ADMIN gets an
 * admin listener on 127.0.0.1 too).
 */
#define PT_ADMIN "127.0.0.1"
static UNUSED struct proxy_config *pt_px_config(void)
{
	struct pt_px *p = &pt_proxy;
	memset(p, 0, sizeof(*p));
	proxy_config_defaults(&p->cfg);
	p->cfg.workers = 1;
	p->cfg.drain_timeout_ms = 2000;
	return &p->cfg;
}

static UNUSED void *pt_px_main(void *arg)
{
	proxy__serve(arg);
	return NULL;
}

static UNUSED uint16_t pt_handle_port(uv_tcp_t *h)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	assert_int_equal(uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len), 0);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* writes routes_json to a file and starts the proxy configured by pt_px_config() */
static UNUSED int pt_px_start(const char *routes_json)
{
	struct pt_px *p = &pt_proxy;
	const char *tmp = getenv("TMPDIR");
	struct gerr err = { { 0 } };
	int fd, r, lfd, afd = -1;
	uint16_t port;

	lfd = pt_reserve_port(&port);
	snprintf(p->listen, sizeof(p->listen), "127.0.0.1:%u", port);
	p->cfg.listen = p->listen;
	if (p->cfg.admin && !strcmp(p->cfg.admin, PT_ADMIN)) {
		afd = pt_reserve_port(&port);
		snprintf(p->admin, sizeof(p->admin), "127.0.0.1:%u", port);
		p->cfg.admin = p->admin;
	}
	snprintf(p->routes, sizeof(p->routes), "%s/gantry-pt-routes-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(p->routes);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, routes_json, strlen(routes_json)), (ssize_t)strlen(routes_json));
	close(fd);
	p->cfg.routes_path = p->routes;
	r = proxy__start(&p->cfg, &p->px, &err);
	close(lfd);
	if (afd >= 0)
		close(afd);
	if (r < 0) {
		unlink(p->routes);
		p->routes[0] = 0;
		print_message("# proxy__start: %s\n", err.msg);
		return r;
	}
	/* --await-routes: bound, not listening yet (its port is the reserved one) */
	p->port = p->cfg.await_routes ? (uint16_t)atoi(strrchr(p->listen, ':') + 1)
				      : pt_handle_port(&p->px->workers[0].listener);
	if (p->px->has_admin)
		p->admin_port = pt_handle_port(&p->px->admin);
	assert_int_equal(pthread_create(&p->th, NULL, pt_px_main, p->px), 0);
	p->running = true;
	return 0;
}

/*
 * A proxy stops on SIGTERM; once its last watcher stops, libuv puts the
 * signal back to its default (the end of this process). This loop, never
 * run, keeps a watcher on SIGTERM and SIGHUP for the whole test binary, so
 * that a signal sent to a proxy that already returned (a failed test's
 * teardown) ends nothing.
 */
static UNUSED void pt_no_signal_cb(uv_signal_t *h, int sig)
{
	(void)h;
	(void)sig;
}

static UNUSED void pt_keep_signals(void)
{
	static uv_loop_t loop;
	static uv_signal_t term, hup;
	static bool done;
	if (done)
		return;
	done = true;
	uv_loop_init(&loop);
	uv_signal_init(&loop, &term);
	uv_signal_init(&loop, &hup);
	uv_signal_start(&term, pt_no_signal_cb, SIGTERM);
	uv_signal_start(&hup, pt_no_signal_cb, SIGHUP);
}

/* SIGTERM: the proxy drains and proxy__serve returns */
static UNUSED void pt_px_signal_stop(void)
{
	if (pt_proxy.running)
		kill(getpid(), SIGTERM);
}

static UNUSED void pt_px_stop(void)
{
	struct pt_px *p = &pt_proxy;
	if (p->running) {
		kill(getpid(), SIGTERM);
		pthread_join(p->th, NULL);
		p->running = false;
	}
	if (p->routes[0])
		unlink(p->routes);
	p->routes[0] = 0;
}

/* waits for proxy__serve to return after pt_px_signal_stop */
static UNUSED void pt_px_join(void)
{
	struct pt_px *p = &pt_proxy;
	if (p->running) {
		pthread_join(p->th, NULL);
		p->running = false;
	}
}

/* ---------------------------------------------------------------- clients */

struct pt_conn {
	int fd;
	char buf[PT_BUF];
	size_t len;
};

struct pt_resp {
	int status;
	char head[16384];
	char body[PT_BUF];
	size_t body_len;
};

#define PT_MAX_CLIENTS 8
static struct pt_conn *pt_clients[PT_MAX_CLIENTS];

static UNUSED struct pt_conn *pt_connect(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { PT_WAIT_MS / 1000, 0 };
	struct pt_conn *c = xcalloc(1, sizeof(*c));
	int slot = 0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	while (slot < PT_MAX_CLIENTS && pt_clients[slot])
		slot++;
	assert_true(slot < PT_MAX_CLIENTS);
	pt_clients[slot] = c;
	return c;
}

static UNUSED void pt_close(struct pt_conn *c)
{
	for (int i = 0; i < PT_MAX_CLIENTS; i++)
		if (pt_clients[i] == c)
			pt_clients[i] = NULL;
	close(c->fd);
	free(c);
}

static UNUSED void pt_send(struct pt_conn *c, const char *s)
{
	pt_write_all(c->fd, s, strlen(s));
}

/* reads more into c->buf; 0 at EOF (or reset), -1 after PT_WAIT_MS without a byte */
static UNUSED int pt_fill(struct pt_conn *c)
{
	ssize_t r;
	if (c->len == sizeof(c->buf))
		return -1;
	do
		r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == ECONNRESET ? 0 : -1;
	c->len += (size_t)r;
	return r > 0 ? 1 : 0;
}

static UNUSED void pt_consume(struct pt_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* the value of header name in a head (the first one), or NULL */
static UNUSED const char *pt_hdr(const char *head, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2, *end = strstr(line, "\r\n");
		if (end && !strncasecmp(line, name, nl) && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			snprintf(out, n, "%.*s", (int)(end - v), v);
			return out;
		}
	}
	return NULL;
}

/*
 * Reads one whole response (Content-Length, chunked or close-delimited
 * body; none for 1xx, 204, 304 and answers to HEAD when head_req). 0 on
 * success; -1 if the connection ended or went quiet first.
 */
static UNUSED int pt_read_resp_ex(struct pt_conn *c, struct pt_resp *r, bool head_req)
{
	char v[64];
	const char *end;
	size_t hl;

	memset(r, 0, sizeof(*r));
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (pt_fill(c) <= 0)
			return -1;
	hl = (size_t)(end - c->buf) + 4;
	if (hl >= sizeof(r->head))
		return -1;
	memcpy(r->head, c->buf, hl);
	r->head[hl] = 0;
	pt_consume(c, hl);
	if (sscanf(r->head, "HTTP/1.%*c %d", &r->status) != 1)
		return -1;
	if (head_req || r->status < 200 || r->status == 204 || r->status == 304)
		return 0;
	if (pt_hdr(r->head, "content-length", v, sizeof(v))) {
		size_t n = strtoul(v, NULL, 10);
		if (n > sizeof(r->body))
			return -1;
		while (c->len < n)
			if (pt_fill(c) <= 0)
				return -1;
		memcpy(r->body, c->buf, n);
		r->body_len = n;
		pt_consume(c, n);
	} else if (pt_hdr(r->head, "transfer-encoding", v, sizeof(v))) {
		for (;;) {
			size_t size;
			while (!(end = memmem(c->buf, c->len, "\r\n", 2)))
				if (pt_fill(c) <= 0)
					return -1;
			size = strtoul(c->buf, NULL, 16);
			pt_consume(c, (size_t)(end - c->buf) + 2);
			while (c->len < size + 2)
				if (pt_fill(c) <= 0)
					return -1;
			if (r->body_len + size > sizeof(r->body))
				return -1;
			memcpy(r->body + r->body_len, c->buf, size);
			r->body_len += size;
			pt_consume(c, size + 2);
			if (!size)
				break;
		}
	} else {
		int k;
		while ((k = pt_fill(c)) > 0)
			;
		if (k < 0)
			return -1;
		r->body_len = MIN(c->len, sizeof(r->body));
		memcpy(r->body, c->buf, r->body_len);
		pt_consume(c, c->len);
	}
	r->body[MIN(r->body_len, sizeof(r->body) - 1)] = 0;
	return 0;
}

static UNUSED int pt_read_resp(struct pt_conn *c, struct pt_resp *r)
{
	return pt_read_resp_ex(c, r, false);
}

/* true once the peer closed (EOF or reset), with nothing more to read; false if it did not */
static UNUSED bool pt_eof(struct pt_conn *c)
{
	int k;
	while ((k = pt_fill(c)) > 0)
		;
	return k == 0 && c->len == 0;
}

/* ---------------------------------------------------------------- setup and teardown */

static UNUSED int pt_setup(void **state)
{
	(void)state;
	log_max_level = LOG_WARN;
	pt_keep_signals();
	pt_nups = 0;
	memset(pt_clients, 0, sizeof(pt_clients));
	pt_px_config();
	return 0;
}

static UNUSED int pt_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < PT_MAX_CLIENTS; i++)
		if (pt_clients[i])
			pt_close(pt_clients[i]);
	pt_px_stop();
	for (int i = 0; i < pt_nups; i++)
		pt_up_stop(&pt_ups[i]);
	pt_nups = 0;
	return 0;
}

#define PT_TEST(f) cmocka_unit_test_setup_teardown(f, pt_setup, pt_teardown)

#endif
