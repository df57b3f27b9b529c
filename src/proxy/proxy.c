/*
 * proxy.c — listener, client connections, upstream connections and pools,
 * retries, reloads and graceful stop. One libuv loop; see
 * docs/internals/proxy.md for the state machines and invariants.
 *
 * Lifetime rule: a struct client or struct upconn is freed only in the
 * close callback of its last handle, so after client_close()/upconn_close()
 * the pointer stays valid until the current callback returns; code that may
 * close checks `state == *_CLOSING` before touching more.
 */
#include "common.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "proxy/metrics.h"
#include "http/http.h"
#include "util/log.h"
#include <uv.h>
#include <signal.h>
#include <sys/random.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#define container_of(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

#define RBUF_CAP (HTTP_MAX_HEAD + 4096) /* > HTTP_MAX_HEAD so 431 fires first */
#define WATERMARK (256 * 1024)          /* stop reading the other side above */
#define OUT_MAX (64u << 20)             /* hard cap of one write queue */
#define REPLAY_MAX (64 * 1024)          /* request bodies replayable on retry */
#define POOL_MAX 256                    /* idle upstream connections per backend */
#define UP_IDLE_MS 30000
#define MAX_RETRIES 2
#define LINGER_MS 2000                  /* read and drop what a client still sends */

struct proxy;

/* A write queue: q collects bytes, w is being written by uv_write. */
struct out {
	uv_stream_t *s;
	struct hbuf q, w;
	uv_write_t req;
	bool writing, ready;
	void (*done)(struct out *o, int status);
};

/*
 * C_IDLE between requests, C_HEAD reading a head, C_BODY from a complete
 * head until the response is queued, C_FLUSH writing the last response,
 * C_LINGER after our FIN while the client may still be sending a request
 * we did not read (closing at once would turn our answer into a reset).
 */
enum cstate { C_IDLE, C_HEAD, C_BODY, C_FLUSH, C_LINGER, C_CLOSING };

struct client {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shut;
	struct proxy *px;
	struct client *next, *prev;
	int handles;
	enum cstate state;
	char *rbuf;
	size_t rlen, rpos;
	struct http_msg msg;
	struct out out;
	bool reading, in_process, keep_alive, close_after, http10, linger;
	char ip[INET6_ADDRSTRLEN];

	/* the exchange in progress (valid while in_req) */
	bool in_req, req_done, resp_done, resp_head_sent, resp_chunked, head_req, req_chunked;
	bool replayable;
	int status, tries;
	uint64_t t0;
	struct route_table *table; /* reference */
	struct route *route;       /* borrowed from table */
	struct backend *be;        /* reference, counted in be->inflight */
	struct metric_series *ms;  /* where the answer is counted */
	struct upconn *up;
	struct hbuf uphead, replay;
	char host[256];
};

enum ustate { U_CONNECTING, U_BUSY, U_IDLE, U_CLOSING };

struct upconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	struct proxy *px;
	struct backend *be; /* reference */
	struct client *c;   /* while busy */
	struct plink link;  /* in be->pool while idle */
	int handles;
	enum ustate state;
	char *rbuf;
	size_t rlen, rpos;
	struct http_msg msg;
	struct out out;
	bool reading, reused, got_bytes;
};

struct admin_conn {
	uv_tcp_t tcp;
	struct proxy *px;
	struct admin_conn *next, *prev;
	char buf[8192];
	size_t len;
	struct http_msg msg;
	struct out out;
	bool closing;
};

struct proxy {
	uv_loop_t loop;
	struct proxy_config cfg;
	uv_tcp_t listener, admin;
	bool has_admin;
	uv_signal_t sighup, sigterm, sigint;
	uv_timer_t stop_timer;
	struct route_table *table; /* current; one reference */
	struct metric_series *ms_none;
	struct client *clients;
	size_t nclients;
	struct admin_conn *admins;
	bool stopping, finished;
	uint64_t rng[2];
};

static void client_close(struct client *c);
static void client_process(struct client *c);
static void client_update_read(struct client *c);
static void exchange_maybe_finish(struct client *c);
static void upconn_close(struct upconn *u);
static void upconn_update_read(struct upconn *u);
static void upstream_failed(struct client *c, int why, const char *detail);
static void maybe_stopped(struct proxy *px);
static void upconn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void upconn_timer_cb(uv_timer_t *t);

enum { FAIL_CONNECT, FAIL_REUSED, FAIL_BROKEN, FAIL_TIMEOUT, FAIL_PROTOCOL };

/* ---------------------------------------------------------------- utils */

static uint64_t rng_next(struct proxy *px)
{
	/* xorshift128+: request ids need to be unique, not secret */
	uint64_t s1 = px->rng[0];
	const uint64_t s0 = px->rng[1];
	px->rng[0] = s0;
	s1 ^= s1 << 23;
	px->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return px->rng[1] + s0;
}

static int parse_listen(const char *addr, struct sockaddr_storage *sa)
{
	char buf[128];
	if (addr[0] == ':') {
		snprintf(buf, sizeof(buf), "0.0.0.0%s", addr);
		addr = buf;
	}
	return backend_parse_addr(addr, sa);
}

/* ---------------------------------------------------------------- out */

static void out_init(struct out *o, uv_stream_t *s, void (*done)(struct out *, int))
{
	memset(o, 0, sizeof(*o));
	o->s = s;
	o->done = done;
	hbuf_init(&o->q, OUT_MAX);
	hbuf_init(&o->w, OUT_MAX);
}

static void out_release(struct out *o)
{
	hbuf_release(&o->q);
	hbuf_release(&o->w);
}

static size_t out_pending(const struct out *o)
{
	return o->q.len + (o->writing ? o->w.len : 0);
}

static void out_write_cb(uv_write_t *req, int status)
{
	struct out *o = container_of(req, struct out, req);
	o->writing = false;
	o->w.len = 0;
	o->done(o, status);
}

/* Hands queued bytes to the kernel: try_write first, uv_write the rest. */
static int out_flush(struct out *o)
{
	uv_buf_t buf;
	struct hbuf t;
	int n;

	if (o->writing || !o->ready || !o->q.len)
		return 0;
	buf = uv_buf_init(o->q.data, (unsigned)o->q.len);
	n = uv_try_write(o->s, &buf, 1);
	if (n == UV_EAGAIN || n == UV_ENOSYS)
		n = 0;
	if (n < 0)
		return n;
	if ((size_t)n == o->q.len) {
		o->q.len = 0;
		return 0;
	}
	t = o->w;
	o->w = o->q;
	o->q = t;
	o->q.len = 0;
	buf = uv_buf_init(o->w.data + n, (unsigned)(o->w.len - (size_t)n));
	n = uv_write(&o->req, o->s, &buf, 1, out_write_cb);
	if (n < 0)
		return n;
	o->writing = true;
	return 0;
}

/* ---------------------------------------------------------------- exchange accounting */

static void attach_backend(struct client *c, struct backend *be)
{
	backend_ref(be);
	c->be = be;
	c->ms = be->ms;
	be->inflight++;
	be->requests++;
	be->ms->inflight++;
}

static void detach_backend(struct client *c)
{
	struct backend *be = c->be;
	if (!be)
		return;
	be->inflight--;
	be->ms->inflight--;
	c->be = NULL;
	backend_put(be);
}

/* Ends the exchange's bookkeeping once; counts it if an answer was given. */
static void req_end(struct client *c)
{
	if (!c->in_req)
		return;
	c->in_req = false;
	if (c->status)
		metric_observe(c->ms, c->status, (double)(uv_hrtime() - c->t0) / 1e9);
	detach_backend(c);
	route_table_unref(c->table);
	c->table = NULL;
	c->route = NULL;
}

/* ---------------------------------------------------------------- upstream connections */

static void upconn_close_cb(uv_handle_t *h)
{
	struct upconn *u = h->data;
	if (--u->handles > 0)
		return;
	backend_put(u->be);
	out_release(&u->out);
	free(u->rbuf);
	free(u);
}

static void pool_unlink(struct upconn *u)
{
	u->link.prev->next = u->link.next;
	u->link.next->prev = u->link.prev;
	u->link.next = u->link.prev = &u->link;
	u->be->npool--;
}

static void upconn_close(struct upconn *u)
{
	if (u->state == U_CLOSING)
		return;
	if (u->state == U_IDLE)
		pool_unlink(u);
	u->state = U_CLOSING;
	u->c = NULL;
	uv_close((uv_handle_t *)&u->tcp, upconn_close_cb);
	uv_close((uv_handle_t *)&u->timer, upconn_close_cb);
}

static void pool_close_all(struct backend *be)
{
	while (be->pool.next != &be->pool)
		upconn_close(container_of(be->pool.next, struct upconn, link));
}

static void upconn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct upconn *u = h->data;
	*buf = uv_buf_init(u->rbuf + u->rlen, (unsigned)(RBUF_CAP - u->rlen));
}

static void upconn_update_read(struct upconn *u)
{
	bool want = u->state == U_IDLE ||
		    (u->state == U_BUSY && u->c && out_pending(&u->c->out) <= WATERMARK &&
		     u->rlen < RBUF_CAP);
	if (want == u->reading)
		return;
	u->reading = want;
	if (want)
		uv_read_start((uv_stream_t *)&u->tcp, upconn_alloc, upconn_read_cb);
	else
		uv_read_stop((uv_stream_t *)&u->tcp);
}

/* response body data from the upstream parser */
static int resp_body(void *ctx, const char *at, size_t len)
{
	struct upconn *u = ctx;
	struct client *c = u->c;
	char hdr[24];
	int n;

	if (!c)
		return -1;
	if (!c->resp_chunked)
		return hbuf_append(&c->out.q, at, len);
	n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
	if (hbuf_append(&c->out.q, hdr, (size_t)n) < 0 || hbuf_append(&c->out.q, at, len) < 0 ||
	    hbuf_append(&c->out.q, "\r\n", 2) < 0)
		return -1;
	return 0;
}

static bool is_hop(const struct http_msg *m, struct http_span name)
{
	static const char *const hop[] = {
		"connection", "keep-alive", "proxy-connection", "te", "trailer",
		"transfer-encoding", "upgrade", "http2-settings", "content-length",
	};
	for (size_t i = 0; i < ARRAY_SIZE(hop); i++)
		if (http_span_eq(m, name, hop[i]))
			return true;
	return false;
}

/* headers named in a Connection header are hop-by-hop too */
static bool conn_listed(const struct http_msg *m, struct http_span name)
{
	char n[64];
	int i = -1;
	if (name.len >= sizeof(n))
		return false;
	memcpy(n, http_span_ptr(m, name), name.len);
	n[name.len] = 0;
	while ((i = http_find_header(m, "connection", i + 1)) >= 0)
		if (http_list_has(http_span_ptr(m, m->hdr[i].value), m->hdr[i].value.len, n))
			return true;
	return false;
}

static int put_header(struct hbuf *b, const struct http_msg *m, const struct http_header *h)
{
	if (hbuf_append(b, http_span_ptr(m, h->name), h->name.len) < 0 ||
	    hbuf_append(b, ": ", 2) < 0 ||
	    hbuf_append(b, http_span_ptr(m, h->value), h->value.len) < 0 ||
	    hbuf_append(b, "\r\n", 2) < 0)
		return -1;
	return 0;
}

/* Writes the response head for the client; decides the body framing. */
static int client_response_head(struct client *c, struct upconn *u)
{
	struct http_msg *m = &u->msg;
	struct hbuf *b = &c->out.q;
	int st = llhttp_get_status_code(&m->llp);
	bool has_conn = http_find_header(m, "connection", 0) >= 0;
	bool bodyless = c->head_req || st == 204 || st == 304 || st < 200;
	bool close;

	if (st == 101 || st < 100)
		return -1; /* we never ask for an upgrade */
	if (st < 200 && c->http10)
		return 0; /* HTTP/1.0 clients do not get interim responses */
	if (hbuf_printf(b, "HTTP/1.1 %d ", st) < 0)
		return -1;
	if (m->reason.len)
		hbuf_append(b, http_span_ptr(m, m->reason), m->reason.len);
	else
		hbuf_addstr(b, http_reason(st));
	hbuf_append(b, "\r\n", 2);
	for (unsigned i = 0; i < m->nhdr; i++) {
		const struct http_header *h = &m->hdr[i];
		if (is_hop(m, h->name) || (has_conn && conn_listed(m, h->name)))
			continue;
		if (put_header(b, m, h) < 0)
			return -1;
	}
	if (st < 200)
		return hbuf_append(b, "\r\n", 2);

	c->status = st;
	c->resp_head_sent = true;
	c->resp_chunked = false;
	if (m->has_cl && st != 204)
		hbuf_printf(b, "Content-Length: %llu\r\n", (unsigned long long)m->content_length);
	if (!bodyless && !m->has_cl) {
		/* chunked or close-delimited upstream body */
		if (c->http10)
			c->close_after = true;
		else
			c->resp_chunked = true;
	}
	if (c->resp_chunked)
		hbuf_addstr(b, "Transfer-Encoding: chunked\r\n");
	close = c->close_after || !c->keep_alive || c->px->stopping;
	if (close)
		c->close_after = true;
	if (close)
		hbuf_addstr(b, "Connection: close\r\n");
	else if (c->http10)
		hbuf_addstr(b, "Connection: keep-alive\r\n");
	return hbuf_append(b, "\r\n", 2);
}

static void pool_put(struct upconn *u)
{
	struct backend *be = u->be;
	if (u->px->stopping || !be->in_table || be->npool >= POOL_MAX) {
		upconn_close(u);
		return;
	}
	u->c = NULL;
	u->state = U_IDLE;
	u->reused = true;
	u->rlen = u->rpos = 0;
	u->link.next = be->pool.next;
	u->link.prev = &be->pool;
	be->pool.next->prev = &u->link;
	be->pool.next = &u->link;
	be->npool++;
	uv_timer_start(&u->timer, upconn_timer_cb, UP_IDLE_MS, 0);
	upconn_update_read(u);
}

static void response_done(struct client *c, struct upconn *u)
{
	bool reusable = llhttp_should_keep_alive(&u->msg.llp) && u->rpos == u->rlen &&
			c->req_done && !out_pending(&u->out);

	if (c->resp_chunked)
		hbuf_append(&c->out.q, "0\r\n\r\n", 5);
	c->up = NULL;
	uv_timer_stop(&u->timer);
	if (reusable)
		pool_put(u);
	else
		upconn_close(u);
	c->resp_done = true;
	exchange_maybe_finish(c);
}

/* Parses what the upstream sent and forwards it to the client. */
static void upconn_process(struct upconn *u)
{
	struct client *c = u->c;

	while (u->state == U_BUSY && u->c == c &&
	       (u->rpos < u->rlen || (u->msg.paused && u->msg.head_done && !u->msg.done))) {
		size_t used;
		int ev = http_msg_feed(&u->msg, u->rbuf + u->rpos, u->rlen - u->rpos, &used);
		u->rpos += used;
		if (ev & HTTP_EV_ERROR) {
			const char *why = u->msg.err;
			upconn_close(u);
			upstream_failed(c, FAIL_PROTOCOL, why);
			return;
		}
		if ((ev & HTTP_EV_HEAD) && client_response_head(c, u) < 0) {
			upconn_close(u);
			upstream_failed(c, FAIL_PROTOCOL, "unexpected response");
			return;
		}
		if (ev & HTTP_EV_DONE) {
			if (llhttp_get_status_code(&u->msg.llp) < 200) {
				/* interim response: the final one follows */
				memmove(u->rbuf, u->rbuf + u->rpos, u->rlen - u->rpos);
				u->rlen -= u->rpos;
				u->rpos = 0;
				http_msg_next(&u->msg, u->rbuf);
				u->msg.skip_body = c->head_req;
				continue;
			}
			response_done(c, u);
			break;
		}
		if (!(ev & HTTP_EV_HEAD) && used == 0)
			break;
	}
	if (u->state == U_BUSY && u->msg.head_done && u->rpos == u->rlen)
		u->rlen = u->rpos = 0; /* body bytes were copied out */
	if (c && c->state != C_CLOSING)
		out_flush(&c->out);
}

static void upconn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct upconn *u = s->data;
	struct client *c = u->c;

	if (nread == 0)
		return;
	if (u->state == U_IDLE || !c) {
		upconn_close(u); /* EOF or stray bytes on an idle connection */
		return;
	}
	if (nread < 0) {
		if (u->msg.head_done && http_msg_finish(&u->msg) == HTTP_EV_DONE) {
			upconn_process(u); /* close-delimited body ended */
			if (u->state == U_BUSY && u->c == c) {
				u->rpos = u->rlen = 0;
				response_done(c, u); /* finish() completed it */
			}
			return;
		}
		upconn_close(u);
		if (!u->got_bytes && u->reused)
			upstream_failed(c, FAIL_REUSED, "connection closed before the response");
		else
			upstream_failed(c, FAIL_BROKEN, "connection closed before the response ended");
		return;
	}
	u->got_bytes = true;
	u->rlen += (size_t)nread;
	uv_timer_again(&u->timer);
	upconn_process(u);
	if (u->state != U_CLOSING)
		upconn_update_read(u);
}

static void upconn_out_done(struct out *o, int status)
{
	struct upconn *u = container_of(o, struct upconn, out);
	struct client *c = u->c;
	if (u->state == U_CLOSING)
		return;
	if (status < 0 || out_flush(o) < 0) {
		upconn_close(u);
		if (c)
			upstream_failed(c, !u->got_bytes && u->reused ? FAIL_REUSED : FAIL_BROKEN,
					"write to upstream failed");
		return;
	}
	if (c)
		client_update_read(c);
}

static void upconn_timer_cb(uv_timer_t *t)
{
	struct upconn *u = t->data;
	struct client *c = u->c;
	enum ustate st = u->state;

	upconn_close(u);
	if (!c)
		return;
	if (st == U_CONNECTING) {
		if (backend_connect_result(u->be, false, uv_now(&u->px->loop)))
			log_warn("proxy", "ejected backend=%s for=%ds reason=connect-timeout",
				 u->be->address, BACKEND_EJECT_MS / 1000);
		upstream_failed(c, FAIL_CONNECT, "connect timeout");
	} else {
		upstream_failed(c, FAIL_TIMEOUT, "upstream timeout");
	}
}

static void upconn_connect_cb(uv_connect_t *req, int status)
{
	struct upconn *u = req->data;
	struct client *c = u->c;

	if (u->state == U_CLOSING)
		return;
	if (status < 0) {
		if (backend_connect_result(u->be, false, uv_now(&u->px->loop)))
			log_warn("proxy", "ejected backend=%s for=%ds reason=%s", u->be->address,
				 BACKEND_EJECT_MS / 1000, uv_err_name(status));
		upconn_close(u);
		if (c)
			upstream_failed(c, FAIL_CONNECT, uv_strerror(status));
		return;
	}
	backend_connect_result(u->be, true, 0);
	uv_tcp_nodelay(&u->tcp, 1);
	u->state = U_BUSY;
	u->out.ready = true;
	uv_timer_start(&u->timer, upconn_timer_cb, u->px->cfg.upstream_timeout_ms,
		       u->px->cfg.upstream_timeout_ms);
	if (out_flush(&u->out) < 0) {
		upconn_close(u);
		upstream_failed(c, FAIL_CONNECT, "write failed");
		return;
	}
	upconn_update_read(u);
}

static struct upconn *upconn_new(struct proxy *px, struct backend *be)
{
	struct upconn *u = xcalloc(1, sizeof(*u));
	int r;

	u->px = px;
	u->be = be;
	backend_ref(be);
	u->rbuf = xmalloc(RBUF_CAP);
	u->link.next = u->link.prev = &u->link;
	uv_tcp_init(&px->loop, &u->tcp);
	uv_timer_init(&px->loop, &u->timer);
	u->handles = 2;
	u->tcp.data = u->timer.data = u->creq.data = u;
	http_msg_init(&u->msg, HTTP_KIND_RESPONSE, u->rbuf);
	u->msg.on_body = resp_body;
	u->msg.ctx = u;
	out_init(&u->out, (uv_stream_t *)&u->tcp, upconn_out_done);
	u->state = U_CONNECTING;
	r = uv_tcp_connect(&u->creq, &u->tcp, (const struct sockaddr *)&be->sa, upconn_connect_cb);
	if (r < 0) {
		upconn_close(u);
		return NULL;
	}
	uv_timer_start(&u->timer, upconn_timer_cb, px->cfg.connect_timeout_ms, 0);
	return u;
}

/* Sends the current request (head + replayable body so far) to c->be. */
static void dispatch(struct client *c)
{
	struct backend *be = c->be;
	struct upconn *u = NULL;

	while (be->pool.next != &be->pool) {
		u = container_of(be->pool.next, struct upconn, link);
		pool_unlink(u);
		u->state = U_BUSY;
		break;
	}
	if (!u) {
		u = upconn_new(c->px, be);
		if (!u) {
			upstream_failed(c, FAIL_CONNECT, "cannot create a connection");
			return;
		}
	} else {
		uv_timer_start(&u->timer, upconn_timer_cb, c->px->cfg.upstream_timeout_ms,
			       c->px->cfg.upstream_timeout_ms);
	}
	u->c = c;
	c->up = u;
	u->got_bytes = false;
	u->rlen = u->rpos = 0;
	http_msg_next(&u->msg, u->rbuf);
	u->msg.skip_body = c->head_req;
	if (hbuf_append(&u->out.q, c->uphead.data, c->uphead.len) < 0 ||
	    hbuf_append(&u->out.q, c->replay.data, c->replay.len) < 0 || out_flush(&u->out) < 0) {
		upconn_close(u);
		c->up = NULL;
		upstream_failed(c, FAIL_REUSED, "write failed");
		return;
	}
	upconn_update_read(u);
}

/* ---------------------------------------------------------------- client connections */

static void client_close_cb(uv_handle_t *h)
{
	struct client *c = h->data;
	if (--c->handles > 0)
		return;
	out_release(&c->out);
	hbuf_release(&c->uphead);
	hbuf_release(&c->replay);
	free(c->rbuf);
	free(c);
}

static void client_close(struct client *c)
{
	struct proxy *px = c->px;
	if (c->state == C_CLOSING)
		return;
	c->state = C_CLOSING;
	if (c->up) {
		upconn_close(c->up);
		c->up = NULL;
	}
	req_end(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		px->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	px->nclients--;
	uv_close((uv_handle_t *)&c->tcp, client_close_cb);
	uv_close((uv_handle_t *)&c->timer, client_close_cb);
	maybe_stopped(px);
}

static void client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct client *c = h->data;
	*buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(RBUF_CAP - c->rlen));
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void client_update_read(struct client *c)
{
	bool want = false;
	switch (c->state) {
	case C_IDLE:
	case C_HEAD:
		want = c->rlen < RBUF_CAP;
		break;
	case C_LINGER:
		want = true;
		break;
	case C_BODY:
		want = c->in_req && !c->req_done && c->up &&
		       out_pending(&c->up->out) <= WATERMARK && c->rlen < RBUF_CAP;
		break;
	default:
		break;
	}
	if (want == c->reading)
		return;
	c->reading = want;
	if (want)
		uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read_cb);
	else
		uv_read_stop((uv_stream_t *)&c->tcp);
}

static void client_timer_cb(uv_timer_t *t);

/* An exchange for an answer made before any routing (bad or late head). */
static void begin_unrouted(struct client *c)
{
	if (c->in_req)
		return;
	c->in_req = true;
	c->t0 = uv_hrtime();
	c->ms = c->px->ms_none;
	c->table = c->px->table;
	route_table_ref(c->table);
}

/* Queues an answer made by the proxy itself. */
static void local_reply(struct client *c, int status, const char *why)
{
	struct hbuf *b = &c->out.q;
	if (c->up) {
		upconn_close(c->up);
		c->up = NULL;
	}
	if (c->in_req && !c->req_done && c->msg.head_done && !c->msg.chunked &&
	    !c->msg.content_length && !c->msg.err_status) {
		/* a request without a body: let the parser finish it so the
		 * connection can stay open */
		size_t used;
		if (http_msg_feed(&c->msg, c->rbuf + c->rpos, 0, &used) & HTTP_EV_DONE)
			c->req_done = true;
	}
	if (!c->in_req || !c->req_done) {
		c->close_after = true; /* the rest of the request is not read */
		c->linger = true;
	}
	if (!c->keep_alive || c->px->stopping)
		c->close_after = true;
	hbuf_printf(b, "HTTP/1.1 %d %s\r\nServer: gantry\r\nContent-Type: text/plain; charset=utf-8\r\n"
		       "Content-Length: %zu\r\n%s\r\n",
		    status, http_reason(status), strlen(why) + 1,
		    c->close_after ? "Connection: close\r\n" : "");
	if (!c->head_req) {
		hbuf_addstr(b, why);
		hbuf_addstr(b, "\n");
	}
	c->status = status;
	c->resp_head_sent = true;
	c->resp_done = true;
	exchange_maybe_finish(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
}

/* The last response is out: close, or send FIN and drain for a while. */
static void client_done_writing(struct client *c)
{
	if (!c->linger && c->rpos == c->rlen) {
		client_close(c);
		return;
	}
	c->state = C_LINGER;
	c->rlen = c->rpos = 0;
	if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
		client_close(c);
		return;
	}
	uv_timer_start(&c->timer, client_timer_cb, LINGER_MS, 0);
	client_update_read(c);
}

static void begin_flush_close(struct client *c)
{
	c->state = C_FLUSH;
	client_update_read(c);
	if (out_flush(&c->out) < 0) {
		client_close(c);
		return;
	}
	if (!out_pending(&c->out)) {
		client_done_writing(c);
		return;
	}
	uv_timer_start(&c->timer, client_timer_cb, c->px->cfg.idle_timeout_ms, 0);
}

/* After the response is queued: close, or get ready for the next request. */
static void exchange_maybe_finish(struct client *c)
{
	if (!c->resp_done)
		return;
	if (!c->req_done) {
		c->close_after = true;
		c->linger = true;
	}
	req_end(c);
	if (c->close_after || !c->keep_alive || c->px->stopping) {
		begin_flush_close(c);
		return;
	}
	c->state = C_IDLE;
	memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
	c->rlen -= c->rpos;
	c->rpos = 0;
	http_msg_next(&c->msg, c->rbuf);
	uv_timer_start(&c->timer, client_timer_cb, c->px->cfg.idle_timeout_ms, 0);
	if (out_flush(&c->out) < 0) {
		client_close(c);
		return;
	}
	if (!c->in_process)
		client_process(c); /* pipelined requests already buffered */
}

/* Request body bytes: to the upstream, and kept for a replay while small. */
static int up_body(struct client *c, const char *p, size_t n)
{
	if (!c->up)
		return 0; /* answered locally: discard */
	if (c->replayable && hbuf_append(&c->replay, p, n) < 0)
		c->replayable = false;
	return hbuf_append(&c->up->out.q, p, n);
}

static int req_body(void *ctx, const char *at, size_t len)
{
	struct client *c = ctx;
	char hdr[24];
	int n;
	if (!c->req_chunked)
		return up_body(c, at, len);
	n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
	if (up_body(c, hdr, (size_t)n) < 0 || up_body(c, at, len) < 0 || up_body(c, "\r\n", 2) < 0)
		return -1;
	return 0;
}

static int build_uphead(struct client *c)
{
	const struct http_msg *m = &c->msg;
	struct hbuf *b = &c->uphead;
	bool has_conn = http_find_header(m, "connection", 0) >= 0, rid = false;
	int i;
	uint64_t r0, r1;

	b->len = 0;
	hbuf_printf(b, "%s ", llhttp_method_name((llhttp_method_t)m->llp.method));
	hbuf_append(b, http_span_ptr(m, m->url), m->url.len);
	hbuf_addstr(b, " HTTP/1.1\r\n");
	for (unsigned k = 0; k < m->nhdr; k++) {
		const struct http_header *h = &m->hdr[k];
		if (is_hop(m, h->name) || http_span_eq(m, h->name, "x-forwarded-for") ||
		    http_span_eq(m, h->name, "x-forwarded-proto") ||
		    http_span_eq(m, h->name, "x-forwarded-host") || http_span_eq(m, h->name, "via") ||
		    (has_conn && conn_listed(m, h->name)))
			continue;
		if (http_span_eq(m, h->name, "x-request-id"))
			rid = true;
		if (put_header(b, m, h) < 0)
			return -1;
	}
	hbuf_addstr(b, "X-Forwarded-For: ");
	for (i = -1; (i = http_find_header(m, "x-forwarded-for", i + 1)) >= 0;) {
		hbuf_append(b, http_span_ptr(m, m->hdr[i].value), m->hdr[i].value.len);
		hbuf_addstr(b, ", ");
	}
	hbuf_addstr(b, c->ip);
	hbuf_addstr(b, "\r\nX-Forwarded-Proto: http\r\n");
	if (m->host_idx >= 0) {
		hbuf_addstr(b, "X-Forwarded-Host: ");
		hbuf_append(b, http_span_ptr(m, m->hdr[m->host_idx].value), m->hdr[m->host_idx].value.len);
		hbuf_addstr(b, "\r\n");
	}
	if (!rid) {
		r0 = rng_next(c->px);
		r1 = rng_next(c->px);
		hbuf_printf(b, "X-Request-Id: %016llx%016llx\r\n", (unsigned long long)r0,
			    (unsigned long long)r1);
	}
	hbuf_addstr(b, "Via: ");
	for (i = -1; (i = http_find_header(m, "via", i + 1)) >= 0;) {
		hbuf_append(b, http_span_ptr(m, m->hdr[i].value), m->hdr[i].value.len);
		hbuf_addstr(b, ", ");
	}
	hbuf_addstr(b, "1.1 gantry\r\n");
	if (m->chunked)
		hbuf_addstr(b, "Transfer-Encoding: chunked\r\n");
	else if (m->has_cl)
		hbuf_printf(b, "Content-Length: %llu\r\n", (unsigned long long)m->content_length);
	return hbuf_append(b, "\r\n", 2);
}

static void on_request_head(struct client *c)
{
	struct proxy *px = c->px;
	struct http_msg *m = &c->msg;
	struct backend *be;

	uv_timer_stop(&c->timer);
	c->state = C_BODY;
	c->in_req = true;
	c->t0 = uv_hrtime();
	c->req_done = c->resp_done = c->resp_head_sent = c->resp_chunked = false;
	c->status = c->tries = 0;
	c->replayable = true;
	c->replay.len = 0;
	c->keep_alive = llhttp_should_keep_alive(&m->llp);
	c->http10 = m->llp.http_minor == 0;
	c->head_req = m->llp.method == HTTP_HEAD;
	c->req_chunked = m->chunked;
	c->ms = px->ms_none;
	c->table = px->table;
	route_table_ref(c->table);

	c->host[0] = 0;
	if (m->host_idx >= 0 &&
	    http_host_normalize(http_span_ptr(m, m->hdr[m->host_idx].value),
				m->hdr[m->host_idx].value.len, c->host, sizeof(c->host)) < 0) {
		c->close_after = true; /* like every other malformed request */
		local_reply(c, 400, "header 'host': invalid");
		return;
	}
	c->route = c->host[0] ? route_match(c->table, c->host) : c->table->any;
	if (!c->route) {
		local_reply(c, 404, "no route for this host");
		return;
	}
	c->ms = c->route->ms;
	be = route_pick(c->route, uv_now(&px->loop), NULL);
	if (!be) {
		local_reply(c, 503, "no backend for this route");
		return;
	}
	if (build_uphead(c) < 0) {
		local_reply(c, 431, "request head too large");
		return;
	}
	attach_backend(c, be);
	dispatch(c);
}

static void upstream_failed(struct client *c, int why, const char *detail)
{
	struct proxy *px = c->px;
	struct backend *old = c->be, *be = NULL;
	struct route *r;

	c->up = NULL;
	if (!c->in_req || c->state == C_CLOSING)
		return;
	if (old)
		old->errors++;
	if (!c->resp_head_sent && c->replayable && c->tries < MAX_RETRIES &&
	    (why == FAIL_CONNECT || why == FAIL_REUSED)) {
		/* route again with the current table: the old one may point at a
		 * backend that is being drained or is already gone */
		r = c->host[0] ? route_match(px->table, c->host) : px->table->any;
		if (r)
			be = route_pick(r, uv_now(&px->loop), old);
		if (be) {
			c->tries++;
			route_table_ref(px->table);
			route_table_unref(c->table);
			c->table = px->table;
			c->route = r;
			detach_backend(c);
			attach_backend(c, be);
			dispatch(c);
			return;
		}
	}
	log_debug("proxy", "upstream=%s error=%s", old ? old->address : "-", detail);
	if (c->resp_head_sent) {
		client_close(c); /* the response was cut short: the client must see it */
		return;
	}
	local_reply(c, why == FAIL_TIMEOUT ? 504 : 502,
		    why == FAIL_TIMEOUT ? "upstream timed out" : "upstream unavailable");
}

static void client_process(struct client *c)
{
	c->in_process = true;
	while (c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY) {
		size_t used;
		int ev;
		bool zero_ok = c->state == C_BODY && c->msg.paused && !c->msg.done;

		if (c->rpos == c->rlen && !zero_ok)
			break;
		if (c->state == C_BODY && c->req_done)
			break; /* pipelined bytes wait for the response */
		if (c->state == C_IDLE) {
			c->state = C_HEAD;
			uv_timer_start(&c->timer, client_timer_cb, c->px->cfg.header_timeout_ms, 0);
		}
		ev = http_msg_feed(&c->msg, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
		c->rpos += used;
		if (ev & HTTP_EV_ERROR) {
			if (c->in_req && c->resp_head_sent) {
				client_close(c);
				break;
			}
			begin_unrouted(c);
			local_reply(c, c->msg.err_status, c->msg.err);
			break;
		}
		if (ev & HTTP_EV_HEAD)
			on_request_head(c);
		if (c->state != C_BODY)
			continue;
		if (ev & HTTP_EV_DONE) {
			c->req_done = true;
			if (c->req_chunked)
				up_body(c, "0\r\n\r\n", 5);
			exchange_maybe_finish(c);
		} else if (!(ev & HTTP_EV_HEAD) && used == 0) {
			break;
		}
	}
	c->in_process = false;
	if (c->state == C_CLOSING)
		return;
	if (c->state == C_BODY && c->msg.head_done && c->rpos == c->rlen)
		c->rlen = c->rpos = 0;
	if (c->up && c->up->state != U_CLOSING && out_flush(&c->up->out) < 0) {
		struct upconn *u = c->up;
		upconn_close(u);
		upstream_failed(c, u->reused && !u->got_bytes ? FAIL_REUSED : FAIL_BROKEN, "write failed");
		if (c->state == C_CLOSING)
			return;
	}
	client_update_read(c);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;
	if (nread == 0)
		return;
	if (c->state == C_LINGER) {
		if (nread < 0)
			client_close(c);
		c->rlen = 0; /* dropped */
		return;
	}
	if (nread < 0) {
		/* EOF or reset: nothing can be answered any more */
		client_close(c);
		return;
	}
	c->rlen += (size_t)nread;
	client_process(c);
}

static void client_out_done(struct out *o, int status)
{
	struct client *c = container_of(o, struct client, out);
	if (c->state == C_CLOSING)
		return;
	if (status < 0 || out_flush(o) < 0) {
		client_close(c);
		return;
	}
	if (c->state == C_FLUSH && !out_pending(o)) {
		client_done_writing(c);
		return;
	}
	if (c->up)
		upconn_update_read(c->up);
}

static void client_timer_cb(uv_timer_t *t)
{
	struct client *c = t->data;
	if (c->state == C_HEAD) {
		c->close_after = true;
		begin_unrouted(c);
		local_reply(c, 408, "request head not received in time");
		return;
	}
	client_close(c); /* idle keep-alive, or a client not reading */
}

static void on_connection(uv_stream_t *server, int status)
{
	struct proxy *px = server->data;
	struct client *c;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (status < 0 || px->stopping)
		return;
	c = xcalloc(1, sizeof(*c));
	c->px = px;
	uv_tcp_init(&px->loop, &c->tcp);
	uv_timer_init(&px->loop, &c->timer);
	c->handles = 2;
	c->tcp.data = c->timer.data = c;
	c->rbuf = xmalloc(RBUF_CAP);
	http_msg_init(&c->msg, HTTP_KIND_REQUEST, c->rbuf);
	c->msg.on_body = req_body;
	c->msg.ctx = c;
	out_init(&c->out, (uv_stream_t *)&c->tcp, client_out_done);
	hbuf_init(&c->uphead, HTTP_MAX_HEAD + 8192);
	hbuf_init(&c->replay, REPLAY_MAX);
	c->next = px->clients;
	if (px->clients)
		px->clients->prev = c;
	px->clients = c;
	px->nclients++;
	c->state = C_IDLE;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		client_close(c);
		return;
	}
	c->out.ready = true;
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
		else
			uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
	}
	uv_timer_start(&c->timer, client_timer_cb, px->cfg.header_timeout_ms, 0);
	client_update_read(c);
}

/* ---------------------------------------------------------------- admin */

static void admin_close_cb(uv_handle_t *h)
{
	struct admin_conn *a = h->data;
	out_release(&a->out);
	free(a);
}

static void admin_close(struct admin_conn *a)
{
	if (a->closing)
		return;
	a->closing = true;
	if (a->prev)
		a->prev->next = a->next;
	else
		a->px->admins = a->next;
	if (a->next)
		a->next->prev = a->prev;
	uv_close((uv_handle_t *)&a->tcp, admin_close_cb);
}

static void admin_out_done(struct out *o, int status)
{
	struct admin_conn *a = container_of(o, struct admin_conn, out);
	if (status < 0 || out_flush(o) < 0 || !out_pending(o))
		admin_close(a);
}

static void admin_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct admin_conn *a = h->data;
	*buf = uv_buf_init(a->buf + a->len, (unsigned)(sizeof(a->buf) - a->len));
}

static void admin_answer(struct admin_conn *a, int status, const char *ctype, const struct hbuf *body)
{
	hbuf_printf(&a->out.q, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			       "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
		    status, http_reason(status), ctype, body->len);
	hbuf_append(&a->out.q, body->data, body->len);
	if (out_flush(&a->out) < 0 || !out_pending(&a->out))
		admin_close(a);
}

static void admin_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct admin_conn *a = s->data;
	struct proxy *px = a->px;
	struct hbuf body;
	size_t used;
	int ev;

	if (nread == 0)
		return;
	if (nread < 0 || a->len + (size_t)nread >= sizeof(a->buf)) {
		admin_close(a);
		return;
	}
	ev = http_msg_feed(&a->msg, a->buf + a->len, (size_t)nread, &used);
	a->len += (size_t)nread;
	if (!(ev & (HTTP_EV_HEAD | HTTP_EV_ERROR)))
		return;
	uv_read_stop(s);
	hbuf_init(&body, 16u << 20);
	if (ev & HTTP_EV_ERROR) {
		hbuf_printf(&body, "%s\n", a->msg.err);
		admin_answer(a, a->msg.err_status, "text/plain", &body);
	} else if (a->msg.llp.method != HTTP_GET && a->msg.llp.method != HTTP_HEAD) {
		hbuf_addstr(&body, "only GET\n");
		admin_answer(a, 405, "text/plain", &body);
	} else if (http_span_eq(&a->msg, a->msg.url, "/healthz")) {
		hbuf_addstr(&body, "ok\n");
		admin_answer(a, 200, "text/plain", &body);
	} else if (http_span_eq(&a->msg, a->msg.url, "/status")) {
		status_render(&body, (long)getpid(), px->table->generation, uv_now(&px->loop));
		admin_answer(a, 200, "application/json", &body);
	} else if (http_span_eq(&a->msg, a->msg.url, "/metrics")) {
		metrics_render(&body, px->table->generation);
		admin_answer(a, 200, "text/plain; version=0.0.4; charset=utf-8", &body);
	} else {
		hbuf_addstr(&body, "not found (try /healthz, /status, /metrics)\n");
		admin_answer(a, 404, "text/plain", &body);
	}
	hbuf_release(&body);
}

static void on_admin_connection(uv_stream_t *server, int status)
{
	struct proxy *px = server->data;
	struct admin_conn *a;

	if (status < 0)
		return;
	a = xcalloc(1, sizeof(*a));
	a->px = px;
	uv_tcp_init(&px->loop, &a->tcp);
	a->tcp.data = a;
	http_msg_init(&a->msg, HTTP_KIND_REQUEST, a->buf);
	out_init(&a->out, (uv_stream_t *)&a->tcp, admin_out_done);
	a->next = px->admins;
	if (px->admins)
		px->admins->prev = a;
	px->admins = a;
	if (uv_accept(server, (uv_stream_t *)&a->tcp) < 0) {
		admin_close(a);
		return;
	}
	a->out.ready = true;
	uv_read_start((uv_stream_t *)&a->tcp, admin_alloc, admin_read_cb);
}

/* ---------------------------------------------------------------- tables, signals, stop */

static size_t count_backends(const struct route_table *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->nroutes; i++)
		n += t->routes[i].nbackends;
	return n;
}

static void table_install(struct proxy *px, struct route_table *t)
{
	struct route_table *old = px->table;
	if (old)
		for (size_t i = 0; i < old->nroutes; i++)
			for (size_t j = 0; j < old->routes[i].nbackends; j++)
				old->routes[i].backends[j].be->in_table = false;
	for (size_t i = 0; i < t->nroutes; i++)
		for (size_t j = 0; j < t->routes[i].nbackends; j++)
			t->routes[i].backends[j].be->in_table = true;
	px->table = t;
	if (!old)
		return;
	for (size_t i = 0; i < old->nroutes; i++)
		for (size_t j = 0; j < old->routes[i].nbackends; j++)
			if (!old->routes[i].backends[j].be->in_table)
				pool_close_all(old->routes[i].backends[j].be);
	route_table_unref(old);
}

static void on_sighup(uv_signal_t *h, int sig)
{
	struct proxy *px = h->data;
	struct gerr err;
	struct route_table *t;

	if (px->stopping)
		return;
	t = route_table_load(px->cfg.routes_path, &err);
	if (!t) {
		log_error("proxy", "reload=failed keeping_generation=%lld error=\"%s\"",
			  (long long)px->table->generation, err.msg);
		return;
	}
	table_install(px, t);
	log_info("proxy", "reload=ok generation=%lld routes=%zu backends=%zu",
		 (long long)t->generation, t->nroutes, count_backends(t));
}

static void close_if_open(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void maybe_stopped(struct proxy *px)
{
	if (!px->stopping || px->finished || px->nclients)
		return;
	px->finished = true;
	for (struct backend *be = backend_first(); be; be = be->next)
		pool_close_all(be);
	while (px->admins)
		admin_close(px->admins);
	if (px->has_admin)
		close_if_open((uv_handle_t *)&px->admin);
	close_if_open((uv_handle_t *)&px->listener);
	close_if_open((uv_handle_t *)&px->sighup);
	close_if_open((uv_handle_t *)&px->sigterm);
	close_if_open((uv_handle_t *)&px->sigint);
	close_if_open((uv_handle_t *)&px->stop_timer);
	log_info("proxy", "stopped=1");
}

static void on_stop_timeout(uv_timer_t *t)
{
	struct proxy *px = t->data;
	log_warn("proxy", "drain=timeout closing=%zu", px->nclients);
	while (px->clients)
		client_close(px->clients);
}

static void on_stop_signal(uv_signal_t *h, int sig)
{
	struct proxy *px = h->data;
	struct client *c, *next;

	if (px->stopping)
		return;
	px->stopping = true;
	log_info("proxy", "stopping=1 signal=%d inflight_clients=%zu", sig, px->nclients);
	close_if_open((uv_handle_t *)&px->listener);
	for (struct backend *be = backend_first(); be; be = be->next)
		pool_close_all(be);
	for (c = px->clients; c; c = next) {
		next = c->next;
		if (c->state == C_IDLE && c->rlen == 0)
			client_close(c);
		else
			c->close_after = true;
	}
	uv_timer_start(&px->stop_timer, on_stop_timeout, px->cfg.drain_timeout_ms, 0);
	maybe_stopped(px);
}

static int listen_on(struct proxy *px, uv_tcp_t *tcp, const char *addr, uv_connection_cb cb,
		     const char *what, struct gerr *err)
{
	struct sockaddr_storage sa;
	int r;
	if (parse_listen(addr, &sa) < 0)
		return gerr_set(err, "--%s: '%s' is not IP:PORT", what, addr) - 1;
	uv_tcp_init(&px->loop, tcp);
	tcp->data = px;
	r = uv_tcp_bind(tcp, (const struct sockaddr *)&sa, 0);
	if (!r)
		r = uv_listen((uv_stream_t *)tcp, 1024, cb);
	if (r < 0)
		return gerr_set(err, "--%s %s: %s", what, addr, uv_strerror(r));
	return 0;
}

void proxy_config_defaults(struct proxy_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 1;
	cfg->header_timeout_ms = 10000;
	cfg->idle_timeout_ms = 60000;
	cfg->upstream_timeout_ms = 60000;
	cfg->connect_timeout_ms = 5000;
	cfg->drain_timeout_ms = 30000;
}

static void walk_close(uv_handle_t *h, void *arg)
{
	close_if_open(h);
}

int proxy_run(const struct proxy_config *cfg, struct gerr *err)
{
	struct proxy *px = xcalloc(1, sizeof(*px));
	struct route_table *t;
	int ret = -1;

	px->cfg = *cfg;
	if (getrandom(px->rng, sizeof(px->rng), 0) != sizeof(px->rng) || !(px->rng[0] | px->rng[1])) {
		px->rng[0] = (uint64_t)uv_hrtime() | 1;
		px->rng[1] = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
	}
	t = route_table_load(cfg->routes_path, err);
	if (!t) {
		free(px);
		return -2;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&px->loop);
	px->ms_none = metric_series_get("", "", "");
	table_install(px, t);

	ret = listen_on(px, &px->listener, cfg->listen, on_connection, "listen", err);
	if (ret < 0)
		goto out;
	if (cfg->admin) {
		px->has_admin = true;
		ret = listen_on(px, &px->admin, cfg->admin, on_admin_connection, "admin", err);
		if (ret < 0)
			goto out;
	}
	uv_signal_init(&px->loop, &px->sighup);
	uv_signal_init(&px->loop, &px->sigterm);
	uv_signal_init(&px->loop, &px->sigint);
	uv_timer_init(&px->loop, &px->stop_timer);
	px->sighup.data = px->sigterm.data = px->sigint.data = px->stop_timer.data = px;
	uv_signal_start(&px->sighup, on_sighup, SIGHUP);
	uv_signal_start(&px->sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&px->sigint, on_stop_signal, SIGINT);
	log_info("proxy", "listening=%s admin=%s generation=%lld routes=%zu backends=%zu pid=%ld",
		 cfg->listen, cfg->admin ? cfg->admin : "-", (long long)t->generation, t->nroutes,
		 count_backends(t), (long)getpid());
	uv_run(&px->loop, UV_RUN_DEFAULT);
	ret = 0;
out:
	uv_walk(&px->loop, walk_close, NULL);
	uv_run(&px->loop, UV_RUN_DEFAULT);
	uv_loop_close(&px->loop);
	route_table_unref(px->table);
	free(px);
	return ret;
}
