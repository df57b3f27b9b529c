/*
 * proxy.c — workers (one libuv loop and one SO_REUSEPORT listener each),
 * client connections, upstream connections and pools, retries, the canary
 * shield, tunnels (Upgrade), and the control thread (signals, reloads, the
 * admin listener, the access log). See docs/internals/proxy.md for the
 * state machines and invariants.
 *
 * Threads: a struct client, struct upconn and everything they point to
 * belong to one worker and are touched by its loop only. What is shared
 * (tables, backends, series) follows the rules in backend.h and route.h.
 * The control thread hands a worker a new table through wk->pending (under
 * wk->mtx) and uv_async_send.
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
#include "proxy/health.h"
#include "http/http.h"
#include "util/log.h"
#include "util/cidr.h"
#include <uv.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>

#define container_of(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

#define RBUF_SMALL 4096                 /* first read buffer; most heads fit */
#define RBUF_CAP (HTTP_MAX_HEAD + 4096) /* > HTTP_MAX_HEAD so 431 fires first */
#define BUFCACHE_MAX 256                /* small read buffers kept per worker */
#define SBUF_CAP 512                    /* a head buffer: most request and response heads fit */
#define SBUFCACHE_MAX 512               /* head buffers kept per worker */
#define WATERMARK (256 * 1024)          /* stop reading the other side above */
#define OUT_MAX (64u << 20)             /* hard cap of one write queue */
#define KEEP_CAP (16 * 1024)            /* idle connections keep buffers up to this */
#define REPLAY_MAX (64 * 1024)          /* request bodies replayable on retry */
#define POOL_MAX 256                    /* idle upstream connections per backend and worker */
#define UP_IDLE_MS 30000
#define MAX_RETRIES 2
#define LINGER_MS 2000                  /* read and drop what a client still sends */
#define ALOG_MAX (4u << 20)             /* access log bytes buffered per worker */
#define ALOG_FLUSH_MS 200
#define ADMIN_MAX_CONNS 64              /* admin connections at once; past it: accepted and closed */
#define ADMIN_TOKEN_MAX 1024            /* bytes of --admin-token-file */

struct proxy;
struct worker;

/* A write queue: q collects bytes, w is being written by uv_write. */
struct out {
	uv_stream_t *s;
	struct hbuf q, w;
	uv_write_t req;
	bool writing, ready;
	uint64_t flushed; /* bytes moved out of q so far (for bytes_out) */
	void (*done)(struct out *o, int status);
};

/*
 * C_IDLE between requests, C_HEAD reading a head, C_BODY from a complete
 * head until the response is queued, C_FLUSH writing the last response,
 * C_LINGER after our FIN while the client may still be sending a request
 * we did not read (closing at once would turn our answer into a reset),
 * C_TUNNEL after a 101: bytes are copied both ways.
 */
enum cstate { C_IDLE, C_HEAD, C_BODY, C_FLUSH, C_LINGER, C_TUNNEL, C_CLOSING };

struct client {
	uv_tcp_t tcp;
	uv_shutdown_t shut;
	uint64_t deadline; /* loop ms (uv_now) when client_timeout runs; 0 = none (see sweep) */
	struct worker *wk;
	struct client *next, *prev;
	enum cstate state;
	char *rbuf;        /* NULL while idle; RBUF_SMALL, grown to RBUF_CAP for big heads */
	size_t rlen, rpos, rcap;
	struct http_msg msg;
	struct out out;
	bool reading, in_process, keep_alive, close_after, http10, linger;
	bool shut_sent, eof;
	char ip[INET6_ADDRSTRLEN];
	uint8_t peer[16];   /* the peer's address (4 bytes for AF_INET), for --trusted-proxies */
	uint8_t peer_family;

	/* the exchange in progress (valid while in_req) */
	bool in_req, req_done, resp_done, resp_head_sent, resp_chunked, head_req, req_chunked;
	bool replayable, upgrade, shield_ok, shielded, set_cookie;
	int status, tries, cls;
	enum route_why why;
	uint64_t t0, t_fwd, latency_us, body_bytes, bytes_in, out_mark;
	struct route_table *table; /* a local reference of this worker */
	struct route *route;       /* borrowed from table */
	struct route_rev *rev;     /* borrowed from table */
	struct backend *be;        /* borrowed from table; counted in be->w[].inflight */
	struct metric_series *ms;  /* where the answer is counted */
	struct upconn *up;
	struct hbuf uphead, replay;
	char host[256];
	char reqid[40];
};

enum ustate { U_CONNECTING, U_BUSY, U_IDLE, U_TUNNEL, U_CLOSING };

struct upconn {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uint64_t deadline;   /* loop ms when upconn_timeout runs; 0 = none */
	struct upconn *wnext, *wprev; /* every upconn of the worker (the sweep walks them) */
	uv_shutdown_t shut;
	struct worker *wk;
	struct backend *be; /* reference */
	struct client *c;   /* while busy */
	struct plink link;  /* in be->w[wk->id].pool while idle */
	enum ustate state;
	char *rbuf;         /* NULL while idle in the pool */
	size_t rlen, rpos, rcap;
	struct http_msg msg;
	struct out out;
	bool reading, reused, got_bytes, shut_sent, eof;
};

struct admin_conn {
	uv_tcp_t tcp;
	struct proxy *px;
	struct admin_conn *next, *prev;
	uint64_t deadline; /* control loop ms: the head, then each write, must be done by then */
	char buf[8192];    /* the request head cap: past it, 431 */
	size_t len;
	struct http_msg msg;
	struct out out;
	bool closing;
};

struct worker {
	int id;
	struct proxy *px;
	const struct proxy_config *cfg; /* borrowed from px */
	uv_loop_t loop;
	uv_thread_t thread;
	uv_tcp_t listener;
	uv_async_t async;
	uv_timer_t stop_timer;
	uv_timer_t sweep;           /* the one timer behind every connection deadline */
	uint64_t tick_ms;
	bool sweeping;
	int listen_fd;
	struct route_table *table;  /* current; one local reference */
	pthread_mutex_t mtx;        /* guards pending, pending_seq, alog */
	struct route_table *pending; /* handed over by the control thread; one reference */
	uint64_t pending_seq;
	_Atomic uint64_t installed_seq;
	_Atomic bool stop_req;
	bool stopping, finished;
	struct client *clients;
	size_t nclients;
	struct upconn *upconns;
	struct metric_series *ms_none;
	uint64_t rng[2];
	char *bufcache[BUFCACHE_MAX];
	int nbufcache;
	struct http_hdr_pool hdrpool; /* header indexes of idle connections */
	char *sbuf[SBUFCACHE_MAX];    /* SBUF_CAP head buffers of idle and closed connections */
	int nsbuf;
	struct hbuf alog;           /* access log lines waiting for the control thread */
	uint64_t alog_dropped;
} __attribute__((aligned(CACHELINE))); /* workers' hot fields never share a cache line */

struct proxy {
	uv_loop_t loop; /* the control loop */
	struct proxy_config cfg;
	struct cidr_set trusted;   /* --trusted-proxies (a routes file's trusted_proxies wins) */
	uv_tcp_t admin;
	bool has_admin;
	uv_signal_t sighup, sigterm, sigint;
	uv_async_t worker_done;
	uv_timer_t alog_timer;
	uv_timer_t admin_sweep;    /* closes admin connections past their deadline */
	int nadmins;               /* open admin connections (<= ADMIN_MAX_CONNS) */
	char *admin_token;         /* --admin-token-file's token, or NULL: no authentication */
	size_t admin_token_len;
	struct health *health;     /* active health checks, on this loop */
	struct route_table *table; /* current; one reference */
	uint64_t seq;              /* tables installed so far */
	int64_t acked_generation;  /* the last generation every worker runs */
	struct admin_conn *admins;
	struct worker *workers;
	int nworkers;
	_Atomic int nfinished;
	bool stopping, closed;
	int alog_fd;
};

static void client_close(struct client *c);
static void client_process(struct client *c);
static void client_update_read(struct client *c);
static void exchange_maybe_finish(struct client *c);
static void upconn_close(struct upconn *u);
static void upconn_update_read(struct upconn *u);
static void upstream_failed(struct client *c, int why, const char *detail);
static void worker_maybe_stopped(struct worker *wk);
static void upconn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void upconn_timeout(struct upconn *u);
static void sweep_need(struct worker *wk);
static void dispatch(struct client *c);
static void tunnel_start(struct client *c, struct upconn *u);
static void tunnel_pump(struct client *c);

enum { FAIL_CONNECT, FAIL_REUSED, FAIL_BROKEN, FAIL_TIMEOUT, FAIL_PROTOCOL };

/* ---------------------------------------------------------------- utils */

static uint64_t rng_next(struct worker *wk)
{
	/* xorshift128+: request ids need to be unique, not secret */
	uint64_t s1 = wk->rng[0];
	const uint64_t s0 = wk->rng[1];
	wk->rng[0] = s0;
	s1 ^= s1 << 23;
	wk->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return wk->rng[1] + s0;
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

/* Read buffers: small ones are recycled per worker, so an idle connection holds none. */
static char *buf_get(struct worker *wk)
{
	if (wk->nbufcache)
		return wk->bufcache[--wk->nbufcache];
	return xmalloc(RBUF_SMALL);
}

static void buf_put(struct worker *wk, char *p, size_t cap)
{
	if (!p)
		return;
	if (cap == RBUF_SMALL && wk->nbufcache < BUFCACHE_MAX && !wk->stopping)
		wk->bufcache[wk->nbufcache++] = p;
	else
		free(p);
}

/*
 * Head buffers (the upstream request head, the client's write queue) go
 * back to a per-worker cache while a connection is idle or once it closed,
 * so that an idle keep-alive connection holds none and a new connection
 * allocates none. b must be empty (len 0).
 */
static void hbuf_park(struct worker *wk, struct hbuf *b)
{
	if (!b->data)
		return;
	if (b->cap == SBUF_CAP && wk->nsbuf < SBUFCACHE_MAX && !wk->stopping)
		wk->sbuf[wk->nsbuf++] = b->data;
	else
		free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* an empty b gets a head buffer, cached if possible (all of them SBUF_CAP, so they recycle) */
static void hbuf_unpark(struct worker *wk, struct hbuf *b)
{
	if (b->data || b->max < SBUF_CAP)
		return;
	b->data = wk->nsbuf ? wk->sbuf[--wk->nsbuf] : xmalloc(SBUF_CAP);
	b->cap = SBUF_CAP;
	b->len = 0;
}

static void sbuf_cache_free(struct worker *wk)
{
	while (wk->nsbuf)
		free(wk->sbuf[--wk->nsbuf]);
}

/*
 * Makes room for reading into *buf (used bytes *len, capacity *cap): the
 * first read gets a small buffer; a head that does not fit grows it to
 * RBUF_CAP. Returns the new base (the parser's spans are offsets).
 */
static char *rbuf_room(struct worker *wk, char **buf, size_t len, size_t *cap)
{
	if (!*buf) {
		*buf = buf_get(wk);
		*cap = RBUF_SMALL;
	} else if (len == *cap && *cap < RBUF_CAP) {
		char *n = xmalloc(RBUF_CAP);
		memcpy(n, *buf, len);
		buf_put(wk, *buf, *cap);
		*buf = n;
		*cap = RBUF_CAP;
	}
	return *buf;
}

/* dotted quad into out (>= 16 bytes): uv_ip4_name's snprintf was 12 % of a close-mode request */
static void ip4_name(const struct in_addr *a, char *out)
{
	const unsigned char *b = (const unsigned char *)&a->s_addr;
	char *p = out;
	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
		*p++ = i < 3 ? '.' : 0;
	}
}

/* appends prefix, v in decimal, suffix (no printf on the hot path) */
static int add_u64(struct hbuf *b, const char *prefix, uint64_t v, const char *suffix)
{
	char num[24], *p = num + sizeof(num);
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (hbuf_addstr(b, prefix) < 0 || hbuf_append(b, p, (size_t)(num + sizeof(num) - p)) < 0)
		return -1;
	return hbuf_addstr(b, suffix);
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

/* gives back big buffers once nothing is queued (idle connections stay small) */
static void out_trim(struct out *o)
{
	if (!o->q.len && o->q.cap > KEEP_CAP)
		hbuf_release(&o->q);
	if (!o->writing && o->w.cap > KEEP_CAP)
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

/*
 * What uv_try_write does, with send() instead of write(): a socket send
 * skips the VFS layer (about 3 % of the proxy's CPU per request). Only
 * valid while libuv has nothing queued on the stream (!o->writing) and the
 * stream is connected (o->ready). Returns bytes sent (0: would block) or a
 * libuv error.
 */
static int out_send(struct out *o, const char *p, size_t n)
{
	uv_os_fd_t fd;
	ssize_t r;

	if (uv_fileno((const uv_handle_t *)o->s, &fd) < 0)
		return UV_EBADF;
	do
		r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	return (int)MIN((size_t)r, (size_t)INT_MAX);
}

/* Hands queued bytes to the kernel: send first, uv_write the rest. */
static int out_flush(struct out *o)
{
	uv_buf_t buf;
	struct hbuf t;
	int n;

	if (o->writing || !o->ready || !o->q.len)
		return 0;
	o->flushed += o->q.len;
	n = out_send(o, o->q.data, MIN(o->q.len, (size_t)INT_MAX));
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

/* bytes that entered q since the mark (flushed or still queued) */
static uint64_t out_total(const struct out *o)
{
	return o->flushed + o->q.len;
}

/* ---------------------------------------------------------------- exchange accounting */

static void attach_backend(struct client *c, struct route_rev *rv, struct backend *be)
{
	int w = c->wk->id;
	c->rev = rv;
	c->be = be;
	c->ms = rv->ms;
	CTR_ADD(be->w[w].inflight, 1);
	CTR_ADD(be->w[w].requests, 1);
	CTR_ADD(rv->ms->w[w].inflight, 1);
}

static void detach_backend(struct client *c)
{
	int w = c->wk->id;
	if (!c->be)
		return;
	CTR_ADD(c->be->w[w].inflight, -1);
	CTR_ADD(c->rev->ms->w[w].inflight, -1);
	c->be = NULL;
}

/* counts an upstream failure against the revision that was tried */
static void count_upstream_error(struct client *c)
{
	if (!c->be)
		return;
	CTR_ADD(c->be->w[c->wk->id].errors, 1);
	CTR_ADD(c->rev->ms->w[c->wk->id].upstream_errors, 1);
}

/* a JSON string into the access log line, cut at max bytes */
static void alog_str(struct hbuf *b, const char *s, size_t n, size_t max)
{
	hbuf_append(b, "\"", 1);
	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			hbuf_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			hbuf_printf(b, "\\u%04x", ch);
		else
			hbuf_append(b, &s[i], 1);
	}
	hbuf_append(b, "\"", 1);
}

/* one JSON line into the worker's buffer; the control thread writes it out */
static void access_log(struct client *c, uint64_t dur_us, uint64_t bytes_out)
{
	struct worker *wk = c->wk;
	const struct http_msg *m = &c->msg;
	struct hbuf b;
	struct timespec ts;
	struct tm tm;
	char when[40];
	const char *method = m->head_done ? llhttp_method_name((llhttp_method_t)m->llp.method) : "";

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	hbuf_init(&b, 8192);
	hbuf_printf(&b, "{\"ts\":\"%s.%03ldZ\",\"worker\":%d,\"client\":\"%s\",\"method\":\"%s\",\"host\":",
		    when, ts.tv_nsec / 1000000, wk->id, c->ip, method);
	alog_str(&b, c->host, strlen(c->host), 255);
	hbuf_addstr(&b, ",\"path\":");
	if (m->head_done)
		alog_str(&b, http_span_ptr(m, m->url), m->url.len, 1024);
	else
		hbuf_addstr(&b, "\"\"");
	hbuf_printf(&b, ",\"status\":%d,\"service\":", c->status);
	alog_str(&b, c->ms->service, strlen(c->ms->service), 256);
	hbuf_addstr(&b, ",\"environment\":");
	alog_str(&b, c->ms->environment, strlen(c->ms->environment), 256);
	hbuf_addstr(&b, ",\"revision\":");
	alog_str(&b, c->ms->revision, strlen(c->ms->revision), 256);
	hbuf_printf(&b, ",\"duration_us\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"tries\":%d,\"shielded\":%s,\"request_id\":",
		    (unsigned long long)dur_us, (unsigned long long)c->bytes_in,
		    (unsigned long long)bytes_out, c->tries + 1, c->shielded ? "true" : "false");
	alog_str(&b, c->reqid, strlen(c->reqid), 64);
	hbuf_addstr(&b, "}\n");
	pthread_mutex_lock(&wk->mtx);
	if (hbuf_append(&wk->alog, b.data, b.len) < 0)
		wk->alog_dropped++;
	pthread_mutex_unlock(&wk->mtx);
	hbuf_release(&b);
}

/* Ends the exchange's bookkeeping once; counts it if an answer was given. */
static void req_end(struct client *c)
{
	uint64_t bytes_out;
	if (!c->in_req)
		return;
	c->in_req = false;
	bytes_out = out_total(&c->out) - c->out_mark;
	if (c->status || c->cls == 0)
		metric_count(c->ms, c->wk->id, c->cls, c->cls ? c->latency_us : UINT64_MAX,
			     c->bytes_in, bytes_out);
	if (c->wk->px->alog_fd >= 0)
		access_log(c, (uv_hrtime() - c->t0) / 1000, bytes_out);
	detach_backend(c);
	route_table_wunref(c->table, c->wk->id);
	c->table = NULL;
	c->route = NULL;
	c->rev = NULL;
}

/* ---------------------------------------------------------------- upstream connections */

static void upconn_close_cb(uv_handle_t *h)
{
	struct upconn *u = h->data;
	backend_put(u->be);
	out_release(&u->out);
	http_msg_release(&u->msg);
	buf_put(u->wk, u->rbuf, u->rcap);
	free(u);
}

static void pool_unlink(struct upconn *u)
{
	u->link.prev->next = u->link.next;
	u->link.next->prev = u->link.prev;
	u->link.next = u->link.prev = &u->link;
	u->be->w[u->wk->id].npool--;
}

static void upconn_close(struct upconn *u)
{
	if (u->state == U_CLOSING)
		return;
	if (u->state == U_IDLE)
		pool_unlink(u);
	u->state = U_CLOSING;
	u->c = NULL;
	u->deadline = 0;
	if (u->wprev)
		u->wprev->wnext = u->wnext;
	else
		u->wk->upconns = u->wnext;
	if (u->wnext)
		u->wnext->wprev = u->wprev;
	/* u->wnext is kept: a sweep in progress may still step over u */
	uv_close((uv_handle_t *)&u->tcp, upconn_close_cb);
}

static void pool_close_all(struct backend *be, int w)
{
	while (be->w[w].pool.next != &be->w[w].pool)
		upconn_close(container_of(be->w[w].pool.next, struct upconn, link));
}

static void upconn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct upconn *u = h->data;
	u->msg.base = rbuf_room(u->wk, &u->rbuf, u->rlen, &u->rcap);
	*buf = uv_buf_init(u->rbuf + u->rlen, (unsigned)(u->rcap - u->rlen));
}

static void upconn_update_read(struct upconn *u)
{
	bool want;
	if (u->state == U_TUNNEL)
		want = !u->eof && u->c && out_pending(&u->c->out) <= WATERMARK;
	else
		want = u->state == U_IDLE ||
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

/* hop-by-hop headers, and content-length (the proxy writes its own) */
static bool is_hop(const struct http_msg *m, struct http_span name)
{
	switch (name.len) {
	case 2:
		return http_span_eq(m, name, "te");
	case 7:
		return http_span_eq(m, name, "trailer") || http_span_eq(m, name, "upgrade");
	case 10:
		return http_span_eq(m, name, "connection") || http_span_eq(m, name, "keep-alive");
	case 14:
		return http_span_eq(m, name, "content-length") || http_span_eq(m, name, "http2-settings");
	case 16:
		return http_span_eq(m, name, "proxy-connection");
	case 17:
		return http_span_eq(m, name, "transfer-encoding");
	default:
		return false;
	}
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

/* true if some Connection header lists more than the usual keep-alive/close/upgrade */
static bool conn_has_extra(const struct http_msg *m)
{
	for (int i = -1; (i = http_find_header(m, "connection", i + 1)) >= 0;) {
		struct http_span v = m->hdr[i].value;
		if (v.len && !(http_span_eq(m, v, "keep-alive") || http_span_eq(m, v, "close") ||
			       http_span_eq(m, v, "upgrade")))
			return true;
	}
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

static int set_cookie_header(struct client *c, struct hbuf *b)
{
	const struct route *r = c->route;
	if (!c->set_cookie || !r || !r->sticky_cookie || !c->rev)
		return 0;
	hbuf_printf(b, "Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax", r->sticky_cookie,
		    c->rev->revision);
	if (r->sticky_max_age)
		hbuf_printf(b, "; Max-Age=%lld", (long long)r->sticky_max_age);
	return hbuf_append(b, "\r\n", 2);
}

/* Writes the response head for the client; decides the body framing. */
static int client_response_head(struct client *c, struct upconn *u)
{
	struct http_msg *m = &u->msg;
	struct hbuf *b = &c->out.q;
	int st = llhttp_get_status_code(&m->llp);
	bool has_conn = conn_has_extra(m);
	bool bodyless = c->head_req || st == 204 || st == 304 || st < 200;
	bool close, tunnel = st == 101 && c->upgrade;

	if ((st == 101 && !c->upgrade) || st < 100)
		return -1; /* an upgrade we did not ask for */
	if (st < 200 && !tunnel && c->http10)
		return 0; /* HTTP/1.0 clients do not get interim responses */
	if (add_u64(b, "HTTP/1.1 ", (uint64_t)st, " ") < 0)
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
	if (tunnel) {
		int up = http_find_header(m, "upgrade", 0);
		if (up < 0)
			return -1;
		hbuf_addstr(b, "Connection: upgrade\r\nUpgrade: ");
		hbuf_append(b, http_span_ptr(m, m->hdr[up].value), m->hdr[up].value.len);
		hbuf_addstr(b, "\r\n");
		c->status = st;
		c->resp_head_sent = true;
		return hbuf_append(b, "\r\n", 2);
	}
	if (st < 200)
		return hbuf_append(b, "\r\n", 2);

	c->status = st;
	c->resp_head_sent = true;
	c->resp_chunked = false;
	if (m->has_cl && st != 204)
		add_u64(b, "Content-Length: ", m->content_length, "\r\n");
	if (!bodyless && !m->has_cl) {
		/* chunked or close-delimited upstream body */
		if (c->http10)
			c->close_after = true;
		else
			c->resp_chunked = true;
	}
	if (c->resp_chunked)
		hbuf_addstr(b, "Transfer-Encoding: chunked\r\n");
	if (set_cookie_header(c, b) < 0)
		return -1;
	if (c->upgrade)
		c->close_after = true; /* the client's parser is past an upgrade request */
	close = c->close_after || !c->keep_alive || c->wk->stopping;
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
	struct backend_w *bw = &be->w[u->wk->id];
	if (u->wk->stopping || !atomic_load_explicit(&be->in_table, memory_order_relaxed) ||
	    bw->npool >= POOL_MAX) {
		upconn_close(u);
		return;
	}
	u->c = NULL;
	u->state = U_IDLE;
	u->reused = true;
	u->rlen = u->rpos = 0;
	buf_put(u->wk, u->rbuf, u->rcap);
	u->rbuf = NULL;
	u->rcap = 0;
	http_msg_next(&u->msg, NULL);
	http_msg_release(&u->msg);
	out_trim(&u->out);
	u->link.next = bw->pool.next;
	u->link.prev = &bw->pool;
	bw->pool.next->prev = &u->link;
	bw->pool.next = &u->link;
	bw->npool++;
	u->deadline = uv_now(&u->wk->loop) + UP_IDLE_MS;
	upconn_update_read(u);
}

static void response_done(struct client *c, struct upconn *u)
{
	bool reusable = llhttp_should_keep_alive(&u->msg.llp) && u->rpos == u->rlen &&
			c->req_done && !out_pending(&u->out);

	if (c->resp_chunked)
		hbuf_append(&c->out.q, "0\r\n\r\n", 5);
	c->up = NULL;
	u->deadline = 0;
	if (reusable)
		pool_put(u);
	else
		upconn_close(u);
	c->resp_done = true;
	exchange_maybe_finish(c);
}

/*
 * The canary shield: an idempotent request that got a 5xx (or a connect
 * error) from the shielded canary is sent once to the stable revision,
 * before any byte reached the client. The canary's failure is counted in
 * its own window (cls: 0 no response, 5 a 5xx). Returns true if the request
 * went to stable.
 */
static bool shield(struct client *c, int cls, struct upconn *u)
{
	struct worker *wk = c->wk;
	struct route *r = c->route;
	struct route_rev *stable;
	struct backend *be;
	uint64_t now = uv_now(&wk->loop);

	if (!c->shield_ok || c->shielded || c->resp_head_sent || !c->replayable || !r ||
	    r->shield_stable < 0 || c->rev != &r->revs[r->shield_canary])
		return false;
	stable = &r->revs[r->shield_stable];
	be = route_pick_backend(c->table, stable, wk->id, now, NULL);
	if (!be)
		return false;
	if (u) {
		upconn_close(u); /* the canary's body is not wanted */
		c->up = NULL;
	}
	metric_count(c->ms, wk->id, cls, cls ? c->latency_us : UINT64_MAX, c->bytes_in, 0);
	c->shielded = true;
	c->set_cookie = false; /* the client keeps its assignment */
	detach_backend(c);
	attach_backend(c, stable, be);
	log_debug("proxy", "shield=stable canary=%s stable=%s", r->revs[r->shield_canary].revision,
		  stable->revision);
	dispatch(c);
	return true;
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
		if (ev & HTTP_EV_HEAD) {
			int st = llhttp_get_status_code(&u->msg.llp);
			if (st >= 200 || st == 101) {
				c->latency_us = (uv_hrtime() - c->t_fwd) / 1000;
				c->cls = st / 100;
			}
			if (st >= 500 && c->shield_ok && shield(c, 5, u))
				return;
			if (client_response_head(c, u) < 0) {
				upconn_close(u);
				upstream_failed(c, FAIL_PROTOCOL, "unexpected response");
				return;
			}
			if (st == 101) {
				tunnel_start(c, u);
				return;
			}
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
	if (u->state == U_TUNNEL) {
		if (nread < 0) {
			u->eof = true;
			upconn_update_read(u);
		} else {
			u->rlen += (size_t)nread;
		}
		if (c)
			tunnel_pump(c);
		else
			upconn_close(u);
		return;
	}
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
	u->deadline = uv_now(&u->wk->loop) + u->wk->cfg->upstream_timeout_ms;
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
		if (u->state == U_TUNNEL) {
			if (c)
				client_close(c);
			upconn_close(u);
			return;
		}
		upconn_close(u);
		if (c)
			upstream_failed(c, !u->got_bytes && u->reused ? FAIL_REUSED : FAIL_BROKEN,
					"write to upstream failed");
		return;
	}
	if (c && u->state == U_TUNNEL) {
		tunnel_pump(c);
		return;
	}
	if (c)
		client_update_read(c);
}

/* u's deadline passed: connect timeout, upstream timeout (504) or pool idle */
static void upconn_timeout(struct upconn *u)
{
	struct client *c = u->c;
	enum ustate st = u->state;

	upconn_close(u);
	if (!c)
		return;
	if (st == U_CONNECTING) {
		if (backend_connect_result(u->be, false, uv_now(&u->wk->loop)))
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
		if (backend_connect_result(u->be, false, uv_now(&u->wk->loop)))
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
	u->deadline = uv_now(&u->wk->loop) + u->wk->cfg->upstream_timeout_ms;
	if (out_flush(&u->out) < 0) {
		upconn_close(u);
		if (c)
			upstream_failed(c, FAIL_CONNECT, "write failed");
		return;
	}
	upconn_update_read(u);
}

static struct upconn *upconn_new(struct worker *wk, struct backend *be)
{
	struct upconn *u = xcalloc(1, sizeof(*u));
	int r;

	u->wk = wk;
	u->be = be;
	backend_ref(be);
	u->link.next = u->link.prev = &u->link;
	uv_tcp_init(&wk->loop, &u->tcp);
	u->tcp.data = u->creq.data = u;
	u->wnext = wk->upconns;
	if (wk->upconns)
		wk->upconns->wprev = u;
	wk->upconns = u;
	u->deadline = uv_now(&wk->loop) + wk->cfg->connect_timeout_ms;
	sweep_need(wk);
	http_msg_init(&u->msg, HTTP_KIND_RESPONSE, NULL);
	u->msg.pool = &wk->hdrpool;
	u->msg.on_body = resp_body;
	u->msg.ctx = u;
	out_init(&u->out, (uv_stream_t *)&u->tcp, upconn_out_done);
	u->state = U_CONNECTING;
	r = uv_tcp_connect(&u->creq, &u->tcp, (const struct sockaddr *)&be->sa, upconn_connect_cb);
	if (r < 0) {
		upconn_close(u);
		return NULL;
	}
	return u;
}

/* Sends the current request (head + replayable body so far) to c->be. */
static void dispatch(struct client *c)
{
	struct backend *be = c->be;
	struct backend_w *bw = &be->w[c->wk->id];
	struct upconn *u = NULL;

	if (bw->pool.next != &bw->pool) {
		u = container_of(bw->pool.next, struct upconn, link);
		pool_unlink(u);
		u->state = U_BUSY;
		u->deadline = uv_now(&c->wk->loop) + c->wk->cfg->upstream_timeout_ms;
	} else {
		u = upconn_new(c->wk, be);
		if (!u) {
			upstream_failed(c, FAIL_CONNECT, "cannot create a connection");
			return;
		}
	}
	u->c = c;
	c->up = u;
	c->t_fwd = uv_hrtime();
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
	c->uphead.len = c->replay.len = c->out.q.len = c->out.w.len = 0;
	hbuf_park(c->wk, &c->uphead);
	hbuf_park(c->wk, &c->replay);
	hbuf_park(c->wk, &c->out.q);
	if (!c->out.writing)
		hbuf_park(c->wk, &c->out.w);
	out_release(&c->out);
	hbuf_release(&c->uphead);
	hbuf_release(&c->replay);
	http_msg_release(&c->msg);
	buf_put(c->wk, c->rbuf, c->rcap);
	free(c);
}

static void client_close(struct client *c)
{
	struct worker *wk = c->wk;
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
		wk->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	wk->nclients--;
	c->deadline = 0;
	/* c->next is kept: a sweep in progress may still step over c */
	uv_close((uv_handle_t *)&c->tcp, client_close_cb);
	worker_maybe_stopped(wk);
}

static void client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct client *c = h->data;
	c->msg.base = rbuf_room(c->wk, &c->rbuf, c->rlen, &c->rcap);
	*buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
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
		/*
		 * While the body streams, the upstream's queue paces us. Once the
		 * request is complete we go on reading (pipelined bytes wait in
		 * the buffer, which is bounded): stopping and restarting the read
		 * would cost two epoll_ctl calls per request.
		 */
		if (c->eof)
			want = false;
		else if (!c->reading && c->req_done && (!c->keep_alive || c->close_after))
			want = false; /* the last request, read speculatively: never watch this socket */
		else if (c->in_req && !c->req_done)
			want = c->up && out_pending(&c->up->out) <= WATERMARK && c->rlen < RBUF_CAP;
		else
			want = c->rlen < RBUF_CAP;
		break;
	case C_TUNNEL:
		want = !c->eof && c->up && out_pending(&c->up->out) <= WATERMARK;
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


/* The exchange's bookkeeping starts: a reference to the worker's table. */
static void begin_exchange(struct client *c)
{
	struct worker *wk = c->wk;
	c->in_req = true;
	c->t0 = wk->px->alog_fd >= 0 ? uv_hrtime() : 0; /* for the access log only */
	c->ms = wk->ms_none;
	c->table = wk->table;
	route_table_wref(c->table, wk->id);
	c->route = NULL;
	c->rev = NULL;
	c->be = NULL;
	c->cls = -1;
	c->status = c->tries = 0;
	c->latency_us = 0;
	c->bytes_in = c->msg.head_bytes;
	c->body_bytes = 0;
	c->out_mark = out_total(&c->out);
	hbuf_unpark(wk, &c->out.q);
	c->shield_ok = c->shielded = c->set_cookie = c->upgrade = false;
	c->req_done = c->resp_done = c->resp_head_sent = c->resp_chunked = false;
	c->reqid[0] = 0;
}

/* An exchange for an answer made before any routing (bad or late head). */
static void begin_unrouted(struct client *c)
{
	if (!c->in_req)
		begin_exchange(c);
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
	    !c->msg.content_length && !c->msg.err_status && !c->upgrade) {
		/* a request without a body: let the parser finish it so the
		 * connection can stay open */
		size_t used;
		if (http_msg_feed(&c->msg, c->rbuf + c->rpos, 0, &used) & HTTP_EV_DONE)
			c->req_done = true;
	}
	if (!c->in_req || !c->req_done || c->msg.err_status) {
		c->close_after = true; /* the rest of the request is not read */
		c->linger = true;
	}
	if (!c->keep_alive || c->wk->stopping || c->upgrade)
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
	if (c->cls < 0)
		c->cls = status / 100;
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
	c->deadline = uv_now(&c->wk->loop) + LINGER_MS;
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
	c->deadline = uv_now(&c->wk->loop) + c->wk->cfg->idle_timeout_ms;
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
	if (c->close_after || !c->keep_alive || c->wk->stopping) {
		begin_flush_close(c);
		return;
	}
	c->state = C_IDLE;
	if (c->rpos == c->rlen) {
		/* nothing pipelined: an idle connection holds no read buffer */
		buf_put(c->wk, c->rbuf, c->rcap);
		c->rbuf = NULL;
		c->rcap = c->rlen = c->rpos = 0;
	} else {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	http_msg_next(&c->msg, c->rbuf);
	if (!c->rbuf)
		http_msg_release(&c->msg); /* idle: no header index either */
	c->uphead.len = c->replay.len = 0;
	if (!c->rbuf) {
		/* idle: head buffers back to the worker too */
		hbuf_park(c->wk, &c->uphead);
		hbuf_park(c->wk, &c->replay);
	} else {
		if (c->uphead.cap > KEEP_CAP)
			hbuf_release(&c->uphead);
		if (c->replay.cap > KEEP_CAP)
			hbuf_release(&c->replay);
	}
	c->deadline = uv_now(&c->wk->loop) + c->wk->cfg->idle_timeout_ms;
	if (out_flush(&c->out) < 0) {
		client_close(c);
		return;
	}
	if (!c->rbuf && !out_pending(&c->out)) {
		hbuf_park(c->wk, &c->out.q);
		if (!c->out.writing)
			hbuf_park(c->wk, &c->out.w);
	}
	out_trim(&c->out);
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

	c->body_bytes += len;
	c->bytes_in += len;
	if (c->wk->cfg->max_body && c->body_bytes > c->wk->cfg->max_body)
		return HTTP_BODY_TOO_LARGE;
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
	bool has_conn = conn_has_extra(m);
	unsigned fwd = c->table->forward_headers >= 0 ? (unsigned)c->table->forward_headers
						      : c->wk->cfg->forward_headers;
	int i, rid = -1;
	uint64_t r0, r1;
	/*
	 * The client's X-Forwarded-For/-Proto/-Host are believed only from a
	 * trusted proxy (nginx's set_real_ip_from): from anyone else they are
	 * replaced, so an upstream never sees an address the client made up.
	 * One match per request, and none without trusted proxies.
	 */
	bool trust = (fwd & (PROXY_FWD_FOR | PROXY_FWD_PROTO | PROXY_FWD_HOST)) &&
		     route_trusts(c->table, &c->wk->px->trusted, c->peer_family, c->peer);

	b->len = 0;
	hbuf_unpark(c->wk, b);
	hbuf_addstr(b, llhttp_method_name((llhttp_method_t)m->llp.method));
	hbuf_append(b, " ", 1);
	hbuf_append(b, http_span_ptr(m, m->url), m->url.len);
	hbuf_addstr(b, " HTTP/1.1\r\n");
	for (unsigned k = 0; k < m->nhdr; k++) {
		const struct http_header *h = &m->hdr[k];
		const char *n = http_span_ptr(m, h->name);
		if (is_hop(m, h->name) || (has_conn && conn_listed(m, h->name)))
			continue;
		if ((n[0] | 0x20) == 'x' || (n[0] | 0x20) == 'v') {
			if (((fwd & PROXY_FWD_FOR) && http_span_eq(m, h->name, "x-forwarded-for")) ||
			    ((fwd & PROXY_FWD_VIA) && http_span_eq(m, h->name, "via")))
				continue;
			if ((fwd & PROXY_FWD_PROTO) && http_span_eq(m, h->name, "x-forwarded-proto")) {
				if (!trust)
					continue;
				fwd &= ~(unsigned)PROXY_FWD_PROTO; /* a trusted proxy's own is kept */
			} else if ((fwd & PROXY_FWD_HOST) && http_span_eq(m, h->name, "x-forwarded-host")) {
				if (!trust)
					continue;
				fwd &= ~(unsigned)PROXY_FWD_HOST;
			}
			if (rid < 0 && http_span_eq(m, h->name, "x-request-id"))
				rid = (int)k;
		}
		if (put_header(b, m, h) < 0)
			return -1;
	}
	if (fwd & PROXY_FWD_FOR) {
		hbuf_addstr(b, "X-Forwarded-For: ");
		for (i = -1; trust && (i = http_find_header(m, "x-forwarded-for", i + 1)) >= 0;) {
			hbuf_append(b, http_span_ptr(m, m->hdr[i].value), m->hdr[i].value.len);
			hbuf_addstr(b, ", ");
		}
		hbuf_addstr(b, c->ip);
		hbuf_addstr(b, "\r\n");
	}
	if (fwd & PROXY_FWD_PROTO)
		hbuf_addstr(b, "X-Forwarded-Proto: http\r\n");
	if ((fwd & PROXY_FWD_HOST) && m->host_idx >= 0) {
		hbuf_addstr(b, "X-Forwarded-Host: ");
		hbuf_append(b, http_span_ptr(m, m->hdr[m->host_idx].value), m->hdr[m->host_idx].value.len);
		hbuf_addstr(b, "\r\n");
	}
	if (rid < 0) { /* generated for the access log even when not sent */
		static const char hex[] = "0123456789abcdef";
		r0 = rng_next(c->wk);
		r1 = rng_next(c->wk);
		for (i = 0; i < 16; i++) { /* no printf on the hot path */
			c->reqid[15 - i] = hex[(r0 >> (4 * i)) & 15];
			c->reqid[31 - i] = hex[(r1 >> (4 * i)) & 15];
		}
		c->reqid[32] = 0;
		if (fwd & PROXY_FWD_REQID) {
			hbuf_addstr(b, "X-Request-Id: ");
			hbuf_append(b, c->reqid, 32);
			hbuf_addstr(b, "\r\n");
		}
	} else {
		struct http_span v = m->hdr[rid].value;
		size_t n = MIN((size_t)v.len, sizeof(c->reqid) - 1);
		memcpy(c->reqid, http_span_ptr(m, v), n);
		c->reqid[n] = 0;
	}
	if (fwd & PROXY_FWD_VIA) {
		hbuf_addstr(b, "Via: ");
		for (i = -1; (i = http_find_header(m, "via", i + 1)) >= 0;) {
			hbuf_append(b, http_span_ptr(m, m->hdr[i].value), m->hdr[i].value.len);
			hbuf_addstr(b, ", ");
		}
		hbuf_addstr(b, "1.1 gantry\r\n");
	}
	if (m->upgrade) {
		int up = http_find_header(m, "upgrade", 0);
		hbuf_addstr(b, "Connection: upgrade\r\nUpgrade: ");
		hbuf_append(b, http_span_ptr(m, m->hdr[up].value), m->hdr[up].value.len);
		hbuf_addstr(b, "\r\n");
	}
	if (m->chunked)
		hbuf_addstr(b, "Transfer-Encoding: chunked\r\n");
	else if (m->has_cl)
		add_u64(b, "Content-Length: ", m->content_length, "\r\n");
	return hbuf_append(b, "\r\n", 2);
}

static bool idempotent(const struct http_msg *m)
{
	int meth = m->llp.method;
	return meth == HTTP_GET || meth == HTTP_HEAD || meth == HTTP_OPTIONS ||
	       http_find_header(m, "idempotency-key", 0) >= 0;
}

static void on_request_head(struct client *c)
{
	struct worker *wk = c->wk;
	const struct proxy_config *cfg = wk->cfg;
	struct http_msg *m = &c->msg;
	struct route_choice ch;
	struct route_rev *rv;
	struct backend *be;
	uint64_t now = uv_now(&wk->loop);
	int tag_rev = -1;

	/* the client timer is left running: it ignores C_BODY once the request is complete */
	c->state = C_BODY;
	begin_exchange(c);
	c->req_done = c->resp_done = c->resp_head_sent = c->resp_chunked = false;
	c->replayable = true;
	c->replay.len = 0;
	c->keep_alive = llhttp_should_keep_alive(&m->llp);
	c->http10 = m->llp.http_minor == 0;
	c->head_req = m->llp.method == HTTP_HEAD;
	c->req_chunked = m->chunked;
	c->upgrade = m->upgrade;

	c->host[0] = 0;
	if (m->host_idx >= 0 &&
	    http_host_normalize(http_span_ptr(m, m->hdr[m->host_idx].value),
				m->hdr[m->host_idx].value.len, c->host, sizeof(c->host)) < 0) {
		c->close_after = true; /* like every other malformed request */
		local_reply(c, 400, "header 'host': invalid");
		return;
	}
	c->route = c->host[0] ? route_lookup(c->table, c->host, &tag_rev) : c->table->any;
	if (!c->route) {
		local_reply(c, 404, "no route for this host");
		return;
	}
	c->ms = c->route->ms;
	if (cfg->max_body && m->has_cl && m->content_length > cfg->max_body) {
		local_reply(c, 413, "request body larger than the limit");
		return;
	}
	route_choose(c->table, c->route, wk->id, m, tag_rev, now, &ch);
	if (ch.rev < 0) {
		local_reply(c, ch.status ? ch.status : 503,
			    ch.status == 404 ? "no revision has this tag" : "no backend for this route");
		return;
	}
	rv = &c->route->revs[ch.rev];
	be = route_pick_backend(c->table, rv, wk->id, now, NULL);
	if (!be) {
		local_reply(c, 503, "no backend for this revision");
		return;
	}
	c->set_cookie = ch.set_cookie;
	c->why = ch.why;
	c->shield_ok = c->route->shield_canary == ch.rev && !c->upgrade && idempotent(m);
	if (build_uphead(c) < 0) {
		local_reply(c, 431, "request head too large");
		return;
	}
	attach_backend(c, rv, be);
	dispatch(c);
}

/*
 * The backend for a retry: another replica of the same revision; when the
 * revision was chosen by weight (or cookie) and has no other, another
 * revision by weight (a connect failure never reached the application).
 * A revision named by a header rule or a tag is kept.
 */
static struct backend *retry_pick(struct client *c, struct route_table *t, struct route *r,
				  const struct backend *old, struct route_rev **rvp)
{
	int wid = c->wk->id, idx = route_rev_index(r, c->rev->revision);
	uint64_t now = uv_now(&c->wk->loop);
	struct backend *be = NULL;

	*rvp = NULL;
	if (idx >= 0) {
		*rvp = &r->revs[idx];
		be = route_pick_backend(t, *rvp, wid, now, old);
	}
	if ((!be || be == old) && (c->why == ROUTE_BY_WEIGHT || c->why == ROUTE_BY_STICKY)) {
		for (size_t k = 0; k < r->nrevs; k++) {
			int j = route_pick_rev(t, r, wid, now);
			struct backend *b2;
			if (j < 0)
				break;
			if (j == idx)
				continue;
			b2 = route_pick_backend(t, &r->revs[j], wid, now, old);
			if (b2 && b2 != old) {
				*rvp = &r->revs[j];
				return b2;
			}
		}
	}
	return be;
}

static void upstream_failed(struct client *c, int why, const char *detail)
{
	struct worker *wk = c->wk;
	struct backend *old = c->be, *be = NULL;
	struct route_rev *rv = NULL;
	struct route *r;

	c->up = NULL;
	if (!c->in_req || c->state == C_CLOSING)
		return;
	count_upstream_error(c);
	if (why == FAIL_CONNECT && c->shield_ok && shield(c, 0, NULL))
		return;
	if (!c->resp_head_sent && c->replayable && c->tries < MAX_RETRIES && c->rev &&
	    (why == FAIL_CONNECT || why == FAIL_REUSED)) {
		/* route again with the current table: the old one may point at a
		 * backend that is being drained or is already gone */
		int tag_rev;
		r = c->host[0] ? route_lookup(wk->table, c->host, &tag_rev) : wk->table->any;
		if (r)
			be = retry_pick(c, wk->table, r, old, &rv);
		if (be) {
			c->tries++;
			detach_backend(c);
			route_table_wref(wk->table, wk->id);
			route_table_wunref(c->table, wk->id);
			c->table = wk->table;
			c->route = r;
			attach_backend(c, rv, be);
			dispatch(c);
			return;
		}
	}
	log_debug("proxy", "upstream=%s error=%s", old ? old->address : "-", detail);
	if (c->resp_head_sent) {
		client_close(c); /* the response was cut short: the client must see it */
		return;
	}
	c->cls = 0;
	local_reply(c, why == FAIL_TIMEOUT ? 504 : 502,
		    why == FAIL_TIMEOUT ? "upstream timed out" : "upstream unavailable");
}

static void client_process(struct client *c)
{
	bool body_fed = false;

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
			c->deadline = uv_now(&c->wk->loop) + c->wk->cfg->header_timeout_ms;
		}
		ev = http_msg_feed(&c->msg, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
		c->rpos += used;
		if (ev & HTTP_EV_ERROR) {
			if (c->in_req && c->resp_head_sent) {
				client_close(c);
				break;
			}
			begin_unrouted(c);
			if (c->msg.err_status == 413 && c->up)
				c->cls = 4; /* the client's fault, not the replica's */
			local_reply(c, c->msg.err_status, c->msg.err);
			break;
		}
		if (ev & HTTP_EV_HEAD)
			on_request_head(c);
		else if (c->state == C_BODY && used)
			body_fed = true;
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
	if (c->state == C_BODY && !c->req_done && c->in_req) {
		/* a client that stops sending its body is cut off (408) */
		c->deadline = uv_now(&c->wk->loop) + c->wk->cfg->body_timeout_ms;
		if (body_fed && c->up && c->up->state == U_BUSY) /* progress: the upstream waits for us */
			c->up->deadline = uv_now(&c->wk->loop) + c->wk->cfg->upstream_timeout_ms;
	}
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
	if (c->state == C_TUNNEL) {
		if (nread < 0) {
			c->eof = true;
			client_update_read(c);
		} else {
			c->rlen += (size_t)nread;
		}
		tunnel_pump(c);
		return;
	}
	if (nread < 0) {
		if (nread == UV_EOF && c->state == C_BODY && c->req_done && !c->eof) {
			/* half-close after a complete request: answer, then close */
			c->eof = true;
			c->close_after = true;
			client_update_read(c);
			return;
		}
		/* EOF or reset: nothing can be answered any more */
		client_close(c);
		return;
	}
	c->rlen += (size_t)nread;
	client_process(c);
}

/*
 * A new connection: its client usually sent the request right after the
 * handshake, so read at once (HAProxy does the same) instead of waiting a
 * loop iteration for epoll to say so. A connection whose only request is
 * read here and asks to close is then never registered with epoll.
 */
static void client_read_now(struct client *c)
{
	uv_os_fd_t fd;
	ssize_t n;

	if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) < 0) {
		client_update_read(c);
		return;
	}
	c->msg.base = rbuf_room(c->wk, &c->rbuf, c->rlen, &c->rcap);
	do
		n = recv(fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		c->rlen += (size_t)n;
		client_process(c); /* ends with client_update_read */
		return;
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
		client_close(c); /* EOF or an error before any byte: nothing to answer */
		return;
	}
	buf_put(c->wk, c->rbuf, c->rcap); /* an idle connection holds no buffer */
	c->rbuf = NULL;
	c->rcap = 0;
	client_update_read(c);
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
	if (c->state == C_TUNNEL) {
		tunnel_pump(c);
		return;
	}
	if (c->state == C_FLUSH && !out_pending(o)) {
		client_done_writing(c);
		return;
	}
	if (c->up)
		upconn_update_read(c->up);
}

/* c's deadline passed: what it means depends on the state */
static void client_timeout(struct client *c)
{
	if (c->state == C_HEAD) {
		c->close_after = true;
		begin_unrouted(c);
		local_reply(c, 408, "request head not received in time");
		return;
	}
	if (c->state == C_BODY && c->in_req && !c->req_done && !c->resp_head_sent) {
		c->close_after = true;
		c->cls = 4; /* the client's fault, not the replica's */
		local_reply(c, 408, "request body not received in time");
		return;
	}
	if (c->state == C_BODY && (c->req_done || !c->in_req))
		return; /* waiting for the upstream: its own timer runs */
	client_close(c); /* idle keep-alive, a client not reading, an idle tunnel */
}

/* ---------------------------------------------------------------- tunnels (101 Switching Protocols) */

static void tunnel_start(struct client *c, struct upconn *u)
{
	u->state = U_TUNNEL;
	c->state = C_TUNNEL;
	c->resp_done = true;
	u->deadline = 0;
	/* bytes after the 101 head belong to the new protocol */
	if (u->rpos < u->rlen)
		hbuf_append(&c->out.q, u->rbuf + u->rpos, u->rlen - u->rpos);
	u->rlen = u->rpos = 0;
	tunnel_pump(c);
}

static void tunnel_shutdown_cb(uv_shutdown_t *req, int status)
{
}

/* Copies what each side sent to the other; FIN travels as a shutdown. */
static void tunnel_pump(struct client *c)
{
	struct upconn *u = c->up;

	if (c->state != C_TUNNEL || !u || u->state != U_TUNNEL)
		return;
	if (c->rpos < c->rlen && hbuf_append(&u->out.q, c->rbuf + c->rpos, c->rlen - c->rpos) < 0)
		goto fail;
	c->rlen = c->rpos = 0;
	if (u->rpos < u->rlen && hbuf_append(&c->out.q, u->rbuf + u->rpos, u->rlen - u->rpos) < 0)
		goto fail;
	u->rlen = u->rpos = 0;
	if (out_flush(&u->out) < 0 || out_flush(&c->out) < 0)
		goto fail;
	if (c->eof && !u->shut_sent && !out_pending(&u->out)) {
		u->shut_sent = true;
		if (uv_shutdown(&u->shut, (uv_stream_t *)&u->tcp, tunnel_shutdown_cb) < 0)
			goto fail;
	}
	if (u->eof && !c->shut_sent && !out_pending(&c->out)) {
		c->shut_sent = true;
		if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, tunnel_shutdown_cb) < 0)
			goto fail;
	}
	if (c->eof && u->eof && !out_pending(&u->out) && !out_pending(&c->out)) {
		client_close(c); /* closes u too */
		return;
	}
	c->deadline = uv_now(&c->wk->loop) + c->wk->cfg->tunnel_timeout_ms;
	client_update_read(c);
	upconn_update_read(u);
	return;
fail:
	client_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct worker *wk = server->data;
	struct client *c;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (status < 0 || wk->stopping)
		return;
	c = xcalloc(1, sizeof(*c));
	c->wk = wk;
	uv_tcp_init(&wk->loop, &c->tcp);
	c->tcp.data = c;
	http_msg_init(&c->msg, HTTP_KIND_REQUEST, NULL);
	c->msg.pool = &wk->hdrpool;
	c->msg.on_body = req_body;
	c->msg.ctx = c;
	out_init(&c->out, (uv_stream_t *)&c->tcp, client_out_done);
	hbuf_init(&c->uphead, HTTP_MAX_HEAD + 8192);
	hbuf_init(&c->replay, REPLAY_MAX);
	c->next = wk->clients;
	if (wk->clients)
		wk->clients->prev = c;
	wk->clients = c;
	wk->nclients++;
	c->state = C_IDLE;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		client_close(c);
		return;
	}
	c->out.ready = true; /* TCP_NODELAY comes from the listener (Linux copies it) */
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
			memcpy(c->peer, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
		} else {
			ip4_name(&((struct sockaddr_in *)&ss)->sin_addr, c->ip);
			memcpy(c->peer, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		}
		c->peer_family = (uint8_t)ss.ss_family;
	}
	c->deadline = uv_now(&wk->loop) + wk->cfg->header_timeout_ms;
	sweep_need(wk);
	client_read_now(c);
}

/* ---------------------------------------------------------------- admin (control thread) */

static void admin_close_cb(uv_handle_t *h)
{
	struct admin_conn *a = h->data;
	out_release(&a->out);
	http_msg_release(&a->msg);
	free(a);
}

static void admin_close(struct admin_conn *a)
{
	if (a->closing)
		return;
	a->closing = true;
	a->px->nadmins--;
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
	else /* a reader that keeps reading keeps its connection */
		a->deadline = uv_now(&a->px->loop) + a->px->cfg.header_timeout_ms;
}

static void admin_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct admin_conn *a = h->data;
	*buf = uv_buf_init(a->buf + a->len, (unsigned)(sizeof(a->buf) - a->len));
}

static void admin_answer(struct admin_conn *a, int status, const char *ctype, const struct hbuf *body)
{
	a->deadline = uv_now(&a->px->loop) + a->px->cfg.header_timeout_ms;
	hbuf_printf(&a->out.q, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			       "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
		    status, http_reason(status), ctype, body->len,
		    status == 401 ? "WWW-Authenticate: Bearer realm=\"gantry-proxy\"\r\n" : "");
	if (a->msg.llp.method != HTTP_HEAD)
		hbuf_append(&a->out.q, body->data, body->len);
	if (out_flush(&a->out) < 0 || !out_pending(&a->out))
		admin_close(a);
}

/*
 * The generation every worker routes with: the controller's drain waits for
 * it, so it must not be reported before the slowest worker swapped.
 */
static int64_t acked_generation(struct proxy *px)
{
	for (int i = 0; i < px->nworkers; i++)
		if (atomic_load(&px->workers[i].installed_seq) != px->seq)
			return px->acked_generation;
	px->acked_generation = px->table->generation;
	return px->acked_generation;
}

/* no token configured, or "Authorization: Bearer TOKEN" (compared in constant time) */
static bool admin_authorized(const struct admin_conn *a)
{
	const struct proxy *px = a->px;
	int i;
	const char *v;
	size_t n, k;
	unsigned char diff = 0;

	if (!px->admin_token)
		return true;
	i = http_find_header(&a->msg, "authorization", 0);
	if (i < 0 || http_find_header(&a->msg, "authorization", i + 1) >= 0)
		return false;
	v = http_span_ptr(&a->msg, a->msg.hdr[i].value);
	n = a->msg.hdr[i].value.len;
	if (n < 7 || strncasecmp(v, "bearer ", 7))
		return false;
	for (k = 7; k < n && v[k] == ' '; k++)
		;
	v += k;
	n -= k;
	if (n != px->admin_token_len)
		return false;
	for (k = 0; k < n; k++)
		diff |= (unsigned char)(v[k] ^ px->admin_token[k]);
	return diff == 0;
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
	if (nread < 0) {
		admin_close(a);
		return;
	}
	if (a->len + (size_t)nread >= sizeof(a->buf)) { /* the head does not fit */
		uv_read_stop(s);
		hbuf_init(&body, 256);
		hbuf_addstr(&body, "request head too large\n");
		admin_answer(a, 431, "text/plain", &body);
		hbuf_release(&body);
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
		hbuf_addstr(&body, "ok\n"); /* no token: liveness probes, and it says nothing */
		admin_answer(a, 200, "text/plain", &body);
	} else if (!admin_authorized(a)) {
		hbuf_addstr(&body, "unauthorized: send Authorization: Bearer TOKEN (--admin-token-file)\n");
		admin_answer(a, 401, "text/plain", &body);
	} else if (http_span_eq(&a->msg, a->msg.url, "/status")) {
		status_render(&body, (long)getpid(), acked_generation(px), px->table, uv_now(&px->loop));
		admin_answer(a, 200, "application/json", &body);
	} else if (http_span_eq(&a->msg, a->msg.url, "/windows")) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		windows_render(&body, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
			       acked_generation(px));
		admin_answer(a, 200, "application/json", &body);
	} else if (http_span_eq(&a->msg, a->msg.url, "/metrics")) {
		metrics_render(&body, acked_generation(px), uv_now(&px->loop));
		admin_answer(a, 200, "text/plain; version=0.0.4; charset=utf-8", &body);
	} else {
		hbuf_addstr(&body, "not found (try /healthz, /status, /windows, /metrics)\n");
		admin_answer(a, 404, "text/plain", &body);
	}
	hbuf_release(&body);
}

static void admin_refused_cb(uv_handle_t *h)
{
	free(h);
}

/* the control loop's one timer over admin deadlines (a slowloris is closed by it) */
static void on_admin_sweep(uv_timer_t *t)
{
	struct proxy *px = t->data;
	uint64_t now = uv_now(&px->loop);
	for (struct admin_conn *a = px->admins, *next; a; a = next) {
		next = a->next;
		if (now >= a->deadline)
			admin_close(a);
	}
}

static void on_admin_connection(uv_stream_t *server, int status)
{
	struct proxy *px = server->data;
	struct admin_conn *a;

	if (status < 0)
		return;
	if (px->nadmins >= ADMIN_MAX_CONNS) {
		/* taken off the backlog and closed at once (HAProxy's maxconn on a
		 * stats listener): a flood of idle connections costs nothing and the
		 * head timeout frees the slots it holds */
		uv_tcp_t *t = xcalloc(1, sizeof(*t));
		uv_tcp_init(&px->loop, t);
		if (uv_accept(server, (uv_stream_t *)t) == 0)
			uv_tcp_close_reset(t, admin_refused_cb);
		else
			uv_close((uv_handle_t *)t, admin_refused_cb);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->px = px;
	px->nadmins++;
	a->deadline = uv_now(&px->loop) + px->cfg.header_timeout_ms;
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

/* ---------------------------------------------------------------- tables */

static size_t count_backends(const struct route_table *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->nroutes; i++)
		for (size_t k = 0; k < t->routes[i].nrevs; k++)
			n += t->routes[i].revs[k].nbackends;
	return n;
}

static void mark_in_table(const struct route_table *t, bool v)
{
	for (size_t i = 0; i < t->nroutes; i++)
		for (size_t k = 0; k < t->routes[i].nrevs; k++)
			for (size_t j = 0; j < t->routes[i].revs[k].nbackends; j++)
				atomic_store(&t->routes[i].revs[k].backends[j].be->in_table, v);
}

/* worker: switch to t (consumes one reference), close pools of dropped backends */
static void worker_install(struct worker *wk, struct route_table *t, uint64_t seq)
{
	struct route_table *old = wk->table;

	route_table_wref(t, wk->id);
	route_table_unref(t);
	wk->table = t;
	if (old) {
		for (size_t i = 0; i < old->nroutes; i++)
			for (size_t k = 0; k < old->routes[i].nrevs; k++)
				for (size_t j = 0; j < old->routes[i].revs[k].nbackends; j++) {
					struct backend *be = old->routes[i].revs[k].backends[j].be;
					if (!atomic_load(&be->in_table))
						pool_close_all(be, wk->id);
				}
		route_table_wunref(old, wk->id);
	}
	atomic_store(&wk->installed_seq, seq);
}

/* control: make t current (consumes the caller's reference) and hand it to the workers */
static void table_install(struct proxy *px, struct route_table *t)
{
	struct route_table *old = px->table;
	if (old)
		mark_in_table(old, false);
	mark_in_table(t, true);
	px->table = t;
	px->seq++;
	health_sync(px->health, t);
	for (int i = 0; i < px->nworkers; i++) {
		struct worker *wk = &px->workers[i];
		struct route_table *drop;
		route_table_ref(t);
		pthread_mutex_lock(&wk->mtx);
		drop = wk->pending;
		wk->pending = t;
		wk->pending_seq = px->seq;
		pthread_mutex_unlock(&wk->mtx);
		route_table_unref(drop);
		uv_async_send(&wk->async);
	}
	route_table_unref(old);
}

/* ---------------------------------------------------------------- workers */

static void close_if_open(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void worker_pools_close(struct worker *wk)
{
	backend_lock();
	for (struct backend *be = backend_first(); be; be = be->next)
		pool_close_all(be, wk->id);
	backend_unlock();
}

/*
 * Connection timeouts. Each connection keeps one deadline (loop ms) that the
 * request path sets with a plain store. One repeating timer per worker
 * (`sweep`, every tick_ms) walks the worker's upstream connections and
 * clients and runs the handler of each deadline that has passed, so a
 * timeout fires up to one tick late and the request path makes no call into
 * libuv's timer heap (uv_timer_start/stop/again were ~19 % of the proxy's
 * user-space instructions per request). The timer runs only while the worker
 * has connections.
 *
 * Walking while handlers close connections is safe: a closed connection is
 * unlinked but freed only in its close callback (after this callback), it
 * keeps its next pointer, and new connections go to the head of the lists,
 * so the walk only moves to older entries and ends.
 */
static void on_sweep(uv_timer_t *t)
{
	struct worker *wk = t->data;
	uint64_t now = uv_now(&wk->loop);
	struct upconn *u, *un;
	struct client *c, *cn;

	for (u = wk->upconns; u; u = un) {
		un = u->wnext;
		if (u->deadline && now >= u->deadline && u->state != U_CLOSING) {
			u->deadline = 0;
			upconn_timeout(u);
		}
	}
	for (c = wk->clients; c; c = cn) {
		cn = c->next;
		if (c->deadline && now >= c->deadline && c->state != C_CLOSING) {
			c->deadline = 0;
			client_timeout(c);
		}
	}
	if (!wk->clients && !wk->upconns && wk->sweeping) {
		uv_timer_stop(t);
		wk->sweeping = false;
	}
}

/* a connection with a deadline exists: make sure the sweep runs */
static void sweep_need(struct worker *wk)
{
	if (wk->sweeping || wk->finished)
		return;
	wk->sweeping = true;
	uv_timer_start(&wk->sweep, on_sweep, wk->tick_ms, wk->tick_ms);
}

static void worker_maybe_stopped(struct worker *wk)
{
	if (!wk->stopping || wk->finished || wk->nclients)
		return;
	wk->finished = true;
	worker_pools_close(wk);
	close_if_open((uv_handle_t *)&wk->listener);
	close_if_open((uv_handle_t *)&wk->async);
	close_if_open((uv_handle_t *)&wk->stop_timer);
	close_if_open((uv_handle_t *)&wk->sweep);
}

static void on_worker_stop_timeout(uv_timer_t *t)
{
	struct worker *wk = t->data;
	log_warn("proxy", "drain=timeout worker=%d closing=%zu", wk->id, wk->nclients);
	while (wk->clients)
		client_close(wk->clients);
}

static void worker_stop(struct worker *wk)
{
	struct client *c, *next;

	if (wk->stopping)
		return;
	wk->stopping = true;
	close_if_open((uv_handle_t *)&wk->listener);
	worker_pools_close(wk);
	for (c = wk->clients; c; c = next) {
		next = c->next;
		if (c->state == C_IDLE && c->rlen == 0)
			client_close(c);
		else
			c->close_after = true;
	}
	uv_timer_start(&wk->stop_timer, on_worker_stop_timeout, wk->cfg->drain_timeout_ms, 0);
	worker_maybe_stopped(wk);
}

static void on_worker_async(uv_async_t *h)
{
	struct worker *wk = h->data;
	struct route_table *t;
	uint64_t seq;

	pthread_mutex_lock(&wk->mtx);
	t = wk->pending;
	seq = wk->pending_seq;
	wk->pending = NULL;
	pthread_mutex_unlock(&wk->mtx);
	if (t)
		worker_install(wk, t, seq);
	if (atomic_load(&wk->stop_req))
		worker_stop(wk);
}

static void walk_close(uv_handle_t *h, void *arg)
{
	close_if_open(h);
}

static void worker_main(void *arg)
{
	struct worker *wk = arg;

	uv_run(&wk->loop, UV_RUN_DEFAULT);
	uv_walk(&wk->loop, walk_close, NULL);
	uv_run(&wk->loop, UV_RUN_DEFAULT);
	route_table_wunref(wk->table, wk->id);
	wk->table = NULL;
	while (wk->nbufcache)
		free(wk->bufcache[--wk->nbufcache]);
	http_hdr_pool_release(&wk->hdrpool);
	sbuf_cache_free(wk);
	atomic_fetch_add(&wk->px->nfinished, 1);
	uv_async_send(&wk->px->worker_done);
}

/*
 * Options accepted sockets inherit from the listener (Linux copies them):
 * TCP_NODELAY (one setsockopt per connection less) and TCP_QUICKACK off, so
 * that the kernel does not ACK a request on its own right before the
 * response carries the ACK anyway (one packet per request less; HAProxy
 * does the same on its HTTP listeners). After listen(), which resets the
 * delayed-ACK state of the socket.
 */
static void listener_opts(int fd)
{
	int one = 1, zero = 0;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
}

/*
 * One listening socket per worker. With SO_REUSEPORT the kernel spreads
 * connections over them; a probe bound WITHOUT SO_REUSEPORT first makes
 * sure nobody else listens there (a second proxy with SO_REUSEPORT would
 * otherwise silently share the port).
 */
static int open_listeners(struct proxy *px, const struct sockaddr_storage *sa, struct gerr *err)
{
	socklen_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	struct sockaddr_storage bound = *sa;
	int one = 1, probe, ret = -1;

	probe = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return gerr_set(err, "--listen %s: socket: %s", px->cfg.listen, strerror(errno));
	setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(probe, (const struct sockaddr *)sa, len) < 0) {
		gerr_set(err, "--listen %s: %s", px->cfg.listen,
			 errno == EADDRINUSE ? "address in use" : strerror(errno));
		goto out;
	}
	/* port 0: every worker listens on the port the probe got */
	if (getsockname(probe, (struct sockaddr *)&bound, &len) < 0) {
		gerr_set(err, "--listen %s: getsockname: %s", px->cfg.listen, strerror(errno));
		goto out;
	}
	if (px->nworkers == 1) {
		/* nobody can join a socket without SO_REUSEPORT: use the probe */
		if (listen(probe, 4096) < 0) {
			gerr_set(err, "--listen %s: %s", px->cfg.listen, strerror(errno));
			goto out;
		}
		listener_opts(probe);
		px->workers[0].listen_fd = probe;
		probe = -1;
		ret = 0;
		goto out;
	}
	close(probe);
	probe = -1;
	for (int i = 0; i < px->nworkers; i++) {
		int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			gerr_set(err, "--listen %s: socket: %s", px->cfg.listen, strerror(errno));
			goto out;
		}
		px->workers[i].listen_fd = fd;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&bound, len) < 0 || listen(fd, 4096) < 0) {
			gerr_set(err, "--listen %s: %s", px->cfg.listen,
				 errno == EADDRINUSE ? "address in use" : strerror(errno));
			goto out;
		}
		listener_opts(fd);
	}
	ret = 0;
out:
	if (probe >= 0)
		close(probe);
	return ret;
}

/* a quarter of the shortest timeout, from 10 ms to 250 ms */
static uint64_t sweep_tick(const struct proxy_config *cfg)
{
	uint64_t t = MIN(cfg->header_timeout_ms, cfg->idle_timeout_ms);
	t = MIN(t, MIN(cfg->body_timeout_ms, cfg->upstream_timeout_ms));
	t = MIN(t, MIN(cfg->connect_timeout_ms, cfg->tunnel_timeout_ms));
	return MAX(MIN(t / 4, (uint64_t)250), (uint64_t)10);
}

static void worker_init(struct proxy *px, struct worker *wk, int id)
{
	wk->id = id;
	wk->px = px;
	wk->cfg = &px->cfg;
	wk->listen_fd = -1;
	pthread_mutex_init(&wk->mtx, NULL);
	hbuf_init(&wk->alog, ALOG_MAX);
	uv_loop_init(&wk->loop);
	uv_async_init(&wk->loop, &wk->async, on_worker_async);
	uv_timer_init(&wk->loop, &wk->stop_timer);
	uv_timer_init(&wk->loop, &wk->sweep);
	wk->async.data = wk->stop_timer.data = wk->sweep.data = wk;
	wk->tick_ms = sweep_tick(wk->cfg);
	wk->ms_none = metric_series_get("", "", "");
	if (getrandom(wk->rng, sizeof(wk->rng), 0) != sizeof(wk->rng) || !(wk->rng[0] | wk->rng[1])) {
		wk->rng[0] = (uint64_t)uv_hrtime() | 1;
		wk->rng[1] = ((uint64_t)getpid() << 8 | (uint64_t)id) * 0x9E3779B97F4A7C15ull;
	}
}

static void worker_release(struct worker *wk)
{
	if (wk->listen_fd >= 0)
		close(wk->listen_fd);
	uv_walk(&wk->loop, walk_close, NULL);
	uv_run(&wk->loop, UV_RUN_DEFAULT);
	uv_loop_close(&wk->loop);
	route_table_unref(wk->pending);
	route_table_wunref(wk->table, wk->id);
	http_hdr_pool_release(&wk->hdrpool); /* close callbacks above may have filled it */
	sbuf_cache_free(wk);
	while (wk->nbufcache)
		free(wk->bufcache[--wk->nbufcache]);
	pthread_mutex_destroy(&wk->mtx);
	hbuf_release(&wk->alog);
}

/* ---------------------------------------------------------------- control: signals, access log, stop */

static void alog_flush(struct proxy *px)
{
	for (int i = 0; i < px->nworkers; i++) {
		struct worker *wk = &px->workers[i];
		struct hbuf b;
		uint64_t dropped;
		size_t off = 0;

		hbuf_init(&b, ALOG_MAX);
		pthread_mutex_lock(&wk->mtx);
		b = wk->alog;
		hbuf_init(&wk->alog, ALOG_MAX);
		dropped = wk->alog_dropped;
		wk->alog_dropped = 0;
		pthread_mutex_unlock(&wk->mtx);
		while (off < b.len) {
			ssize_t n = write(px->alog_fd, b.data + off, b.len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		if (dropped)
			log_warn("proxy", "access_log=dropped lines=%llu worker=%d", (unsigned long long)dropped, i);
		hbuf_release(&b);
	}
}

static void on_alog_timer(uv_timer_t *t)
{
	alog_flush(t->data);
}

/* a name from the routes file as one logfmt value: printable, no space or quote, bounded */
static const char *log_word(const char *s, char *buf, size_t len)
{
	size_t i = 0;
	for (; s[i] && i + 1 < len; i++)
		buf[i] = s[i] > ' ' && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? s[i] : '?';
	buf[i] = 0;
	return i ? buf : "-";
}

/* one warning per route left out of t: the later of two routes claiming one host */
static void log_dropped(const struct route_table *t)
{
	for (size_t i = 0; i < t->ndropped; i++) {
		const struct route_drop *d = &t->dropped[i];
		const struct route *k = &t->routes[d->kept_by];
		char s1[72], e1[72], s2[72], e2[72], h[260];
		log_warn("proxy", "route=dropped generation=%lld index=%zu service=%s environment=%s host=%s "
			 "kept_by=%zu kept_service=%s kept_environment=%s reason=host-already-routed",
			 (long long)t->generation, d->route, log_word(d->service, s1, sizeof(s1)),
			 log_word(d->environment, e1, sizeof(e1)), log_word(d->host, h, sizeof(h)), d->kept_by,
			 log_word(k->service, s2, sizeof(s2)), log_word(k->environment, e2, sizeof(e2)));
	}
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
	log_info("proxy", "reload=ok generation=%lld routes=%zu backends=%zu dropped=%zu",
		 (long long)t->generation, t->nroutes, count_backends(t), t->ndropped);
	log_dropped(t);
}

static void control_close(struct proxy *px)
{
	if (px->closed)
		return;
	px->closed = true;
	while (px->admins)
		admin_close(px->admins);
	if (px->has_admin)
		close_if_open((uv_handle_t *)&px->admin);
	close_if_open((uv_handle_t *)&px->sighup);
	close_if_open((uv_handle_t *)&px->sigterm);
	close_if_open((uv_handle_t *)&px->sigint);
	close_if_open((uv_handle_t *)&px->worker_done);
	close_if_open((uv_handle_t *)&px->alog_timer);
	close_if_open((uv_handle_t *)&px->admin_sweep);
	health_close(px->health);
}

static void on_worker_done(uv_async_t *h)
{
	struct proxy *px = h->data;
	if (atomic_load(&px->nfinished) < px->nworkers)
		return;
	log_info("proxy", "stopped=1");
	control_close(px);
}

static void on_stop_signal(uv_signal_t *h, int sig)
{
	struct proxy *px = h->data;
	size_t n = 0;

	if (px->stopping)
		return;
	px->stopping = true;
	for (int i = 0; i < px->nworkers; i++)
		n += px->workers[i].nclients; /* racy; for the log line only */
	log_info("proxy", "stopping=1 signal=%d clients=%zu", sig, n);
	for (int i = 0; i < px->nworkers; i++) {
		atomic_store(&px->workers[i].stop_req, true);
		uv_async_send(&px->workers[i].async);
	}
}

static int listen_admin(struct proxy *px, struct gerr *err)
{
	struct sockaddr_storage sa;
	int r;
	if (parse_listen(px->cfg.admin, &sa) < 0)
		return gerr_set(err, "--admin: '%s' is not IP:PORT", px->cfg.admin) - 1;
	uv_tcp_init(&px->loop, &px->admin);
	px->has_admin = true;
	px->admin.data = px;
	r = uv_tcp_bind(&px->admin, (const struct sockaddr *)&sa, 0);
	if (!r)
		r = uv_listen((uv_stream_t *)&px->admin, 128, on_admin_connection);
	if (r < 0)
		return gerr_set(err, "--admin %s: %s", px->cfg.admin, uv_strerror(r));
	return 0;
}

void proxy_config_defaults(struct proxy_config *cfg)
{
	unsigned n = uv_available_parallelism();

	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = (int)MIN(MAX(n, 1u), (unsigned)PROXY_MAX_WORKERS);
	cfg->header_timeout_ms = 10000;
	cfg->idle_timeout_ms = 60000;
	cfg->body_timeout_ms = 30000;
	cfg->upstream_timeout_ms = 60000;
	cfg->connect_timeout_ms = 5000;
	cfg->drain_timeout_ms = 30000;
	cfg->tunnel_timeout_ms = 3600000;
	cfg->max_body = 0;
	cfg->forward_headers = PROXY_FWD_ALL;
}

int proxy_parse_forward_headers(const char *s, unsigned *out, char *bad, size_t badsz)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "x-forwarded-for", PROXY_FWD_FOR }, { "x-forwarded-proto", PROXY_FWD_PROTO },
		{ "x-forwarded-host", PROXY_FWD_HOST }, { "x-request-id", PROXY_FWD_REQID },
		{ "via", PROXY_FWD_VIA }, { "all", PROXY_FWD_ALL },
	};
	unsigned v = 0;

	if (!strcasecmp(s, "none")) {
		*out = 0;
		return 0;
	}
	for (const char *p = s;; p++) {
		size_t len = strcspn(p, ","), k;
		for (k = 0; k < ARRAY_SIZE(names); k++)
			if (strlen(names[k].name) == len && !strncasecmp(p, names[k].name, len))
				break;
		if (k == ARRAY_SIZE(names)) {
			snprintf(bad, badsz, "%.*s", (int)MIN(len, (size_t)64), p);
			return -1;
		}
		v |= names[k].bit;
		p += len;
		if (!*p)
			break;
	}
	*out = v;
	return 0;
}

static bool loopback(const struct sockaddr_storage *sa)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (sa->ss_family == AF_INET)
		return ((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr)[0] == 127;
	if (sa->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (!memcmp(a->s6_addr, mapped, 12) && a->s6_addr[12] == 127);
	}
	return false;
}

/*
 * --admin-token-file: the token is the file's text without trailing
 * whitespace (printable, no spaces). Required when --admin is not loopback:
 * /status and /windows tell anyone who can connect what runs where.
 */
static int admin_check(struct proxy *px, const struct proxy_config *cfg, struct gerr *err)
{
	struct sockaddr_storage sa;
	char buf[ADMIN_TOKEN_MAX + 2];
	size_t n = 0;
	FILE *f;

	if (cfg->admin && parse_listen(cfg->admin, &sa) < 0)
		return gerr_set(err, "--admin: '%s' is not IP:PORT", cfg->admin);
	if (!cfg->admin_token_file) {
		if (cfg->admin && !loopback(&sa))
			return gerr_set(err, "--admin-token-file: required when --admin (%s) is not a loopback address",
					cfg->admin);
		return 0;
	}
	f = fopen(cfg->admin_token_file, "rb");
	if (!f)
		return gerr_set(err, "--admin-token-file %s: %s", cfg->admin_token_file, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n > ADMIN_TOKEN_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return gerr_set(err, "--admin-token-file %s: longer than %d bytes", cfg->admin_token_file,
				ADMIN_TOKEN_MAX);
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < n; i++)
		if (buf[i] <= ' ' || buf[i] > '~') {
			explicit_bzero(buf, sizeof(buf));
			return gerr_set(err, "--admin-token-file %s: the token must be printable, without spaces",
					cfg->admin_token_file);
		}
	if (n < 16) {
		explicit_bzero(buf, sizeof(buf));
		return gerr_set(err, "--admin-token-file %s: the token is shorter than 16 characters",
				cfg->admin_token_file);
	}
	px->admin_token = xstrndup(buf, n);
	px->admin_token_len = n;
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

int proxy_run(const struct proxy_config *cfg, struct gerr *err)
{
	struct proxy *px = xcalloc(1, sizeof(*px));
	struct sockaddr_storage sa;
	struct route_table *t = NULL;
	int ret = -1, started = 0;

	px->cfg = *cfg;
	px->alog_fd = -1;
	if (cfg->workers < 1 || cfg->workers > PROXY_MAX_WORKERS) {
		gerr_set(err, "--workers: %d is not from 1 to %d", cfg->workers, PROXY_MAX_WORKERS);
		ret = -2;
		goto out_free;
	}
	if (parse_listen(cfg->listen, &sa) < 0) {
		gerr_set(err, "--listen: '%s' is not IP:PORT", cfg->listen);
		ret = -2;
		goto out_free;
	}
	if (admin_check(px, cfg, err) < 0) {
		ret = -2;
		goto out_free;
	}
	if (cfg->trusted_proxies) {
		char bad[80];
		if (cidr_set_add_list(&px->trusted, cfg->trusted_proxies, bad, sizeof(bad)) < 0) {
			gerr_set(err, "--trusted-proxies: '%s' " CIDR_EXPECTED, bad);
			ret = -2;
			goto out_free;
		}
	}
	/* every backend, series and table is sized for this many workers */
	proxy_set_workers(cfg->workers);
	px->nworkers = cfg->workers;
	t = route_table_load(cfg->routes_path, err);
	if (!t) {
		ret = -2;
		goto out_free;
	}
	if (cfg->access_log) {
		px->alog_fd = open(cfg->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (px->alog_fd < 0) {
			gerr_set(err, "--access-log %s: %s", cfg->access_log, strerror(errno));
			route_table_unref(t);
			goto out_free;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&px->loop);
	uv_signal_init(&px->loop, &px->sighup);
	uv_signal_init(&px->loop, &px->sigterm);
	uv_signal_init(&px->loop, &px->sigint);
	uv_async_init(&px->loop, &px->worker_done, on_worker_done);
	uv_timer_init(&px->loop, &px->alog_timer);
	uv_timer_init(&px->loop, &px->admin_sweep);
	px->admin_sweep.data = px;
	px->health = health_new(&px->loop);
	px->sighup.data = px->sigterm.data = px->sigint.data = px->worker_done.data = px;
	px->alog_timer.data = px;
	px->workers = proxy__calloc_aligned((size_t)px->nworkers, sizeof(*px->workers));
	for (int i = 0; i < px->nworkers; i++)
		worker_init(px, &px->workers[i], i);
	table_install(px, t);
	px->acked_generation = t->generation;
	log_dropped(t);
	for (int i = 0; i < px->nworkers; i++) {
		struct worker *wk = &px->workers[i];
		pthread_mutex_lock(&wk->mtx);
		t = wk->pending;
		wk->pending = NULL;
		pthread_mutex_unlock(&wk->mtx);
		worker_install(wk, t, px->seq);
	}
	ret = open_listeners(px, &sa, err);
	if (ret < 0)
		goto out;
	for (int i = 0; i < px->nworkers; i++) {
		struct worker *wk = &px->workers[i];
		int r;
		uv_tcp_init(&wk->loop, &wk->listener);
		wk->listener.data = wk;
		r = uv_tcp_open(&wk->listener, wk->listen_fd);
		if (!r)
			wk->listen_fd = -1; /* libuv closes it now */
		if (!r)
			r = uv_listen((uv_stream_t *)&wk->listener, 4096, on_connection);
		if (r < 0) {
			ret = gerr_set(err, "--listen %s: %s", cfg->listen, uv_strerror(r));
			goto out;
		}
	}
	if (cfg->admin) {
		uint64_t tick = MAX(10, MIN(1000, cfg->header_timeout_ms / 4));
		ret = listen_admin(px, err);
		if (ret < 0)
			goto out;
		uv_timer_start(&px->admin_sweep, on_admin_sweep, tick, tick);
		uv_unref((uv_handle_t *)&px->admin_sweep);
	}
	uv_signal_start(&px->sighup, on_sighup, SIGHUP);
	uv_signal_start(&px->sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&px->sigint, on_stop_signal, SIGINT);
	if (px->alog_fd >= 0)
		uv_timer_start(&px->alog_timer, on_alog_timer, ALOG_FLUSH_MS, ALOG_FLUSH_MS);
	for (started = 0; started < px->nworkers; started++)
		if (uv_thread_create(&px->workers[started].thread, worker_main, &px->workers[started])) {
			ret = gerr_set(err, "cannot start worker thread %d", started);
			break;
		}
	if (started < px->nworkers) {
		/* stop the ones that run, then give up */
		for (int i = 0; i < started; i++) {
			atomic_store(&px->workers[i].stop_req, true);
			uv_async_send(&px->workers[i].async);
		}
		for (int i = 0; i < started; i++)
			uv_thread_join(&px->workers[i].thread);
		goto out;
	}
	log_info("proxy", "listening=%s admin=%s workers=%d generation=%lld routes=%zu backends=%zu pid=%ld",
		 cfg->listen, cfg->admin ? cfg->admin : "-", px->nworkers,
		 (long long)px->table->generation, px->table->nroutes, count_backends(px->table),
		 (long)getpid());
	uv_run(&px->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < px->nworkers; i++)
		uv_thread_join(&px->workers[i].thread);
	if (px->alog_fd >= 0)
		alog_flush(px);
	ret = 0;
out:
	control_close(px);
	uv_walk(&px->loop, walk_close, NULL);
	uv_run(&px->loop, UV_RUN_DEFAULT);
	uv_loop_close(&px->loop);
	for (int i = 0; i < px->nworkers; i++)
		worker_release(&px->workers[i]);
	free(px->workers);
	route_table_unref(px->table);
	health_free(px->health); /* its targets went with the loop's close callbacks */
	if (px->alog_fd >= 0)
		close(px->alog_fd);
out_free:
	cidr_set_release(&px->trusted);
	if (px->admin_token)
		explicit_bzero(px->admin_token, px->admin_token_len);
	free(px->admin_token);
	free(px);
	return ret;
}
