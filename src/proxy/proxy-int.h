/*
 * proxy-int.h — private to src/proxy/: the structs the proxy's pieces share
 * (a worker, its client and upstream connections, the write queue, the
 * control thread's struct proxy), the functions they call across files
 * (prefix proxy__) and the request path's small helpers, kept inline here
 * so that splitting the files added no call to the request path.
 *
 * Where things are (docs/internals/proxy.md has the state machines):
 *   proxy.c      the control thread: start, signals, reloads, stop
 *   worker.c     worker threads: loops, listeners, the deadline sweep,
 *                installing a route table, the graceful stop
 *   client.c     client connections: reading and parsing requests,
 *                routing, answers made by the proxy, retries
 *   heads.c      the heads the proxy writes: the upstream request
 *                (X-Forwarded-*, Via, X-Request-Id) and the client response
 *   upstream.c   upstream connections, the idle pools, the canary shield
 *   tunnel.c     Upgrade tunnels after a 101
 *   out.c        the write queue (send first, uv_write the rest)
 *   accesslog.c  access log lines (workers) and their writer (control thread)
 *   admin.c      the admin listener (control thread)
 *   route.c, backend.c, metrics.c, health.c: their own headers
 *
 * Threads. A worker (struct worker) is one thread running one libuv loop.
 * A struct client, a struct upconn and everything they point to belong to
 * the worker that accepted or opened them and are touched by its loop only.
 * What workers share follows backend.h and route.h: route tables are
 * immutable and referenced per worker, backends and metric series have one
 * counter slot per worker. The control thread (struct proxy: signals,
 * reloads, the admin listener, the access log writer, health checks) never
 * touches a connection of a worker. It hands a worker a new table through
 * wk->pending and a stop through wk->stop_req, then uv_async_send; it takes
 * a worker's access log lines by swapping wk->alog. wk->mtx guards pending,
 * pending_seq, alog and alog_dropped; installed_seq and stop_req are atomic.
 *
 * Lifetime rule.
 *  - A struct client is owned by its worker (on wk->clients) from accept
 *    until proxy__client_close(). A struct upconn is owned by its worker
 *    (on wk->upconns) from upconn_new until proxy__upconn_close(); while
 *    idle it also sits in its backend's per-worker pool and holds a
 *    reference to the backend.
 *  - Either is freed only in the close callback of its libuv handle, so
 *    after proxy__client_close()/proxy__upconn_close() the pointer stays
 *    valid until the current callback returns (the sweep and the code that
 *    closed it may still look at it). Code that may have closed one checks
 *    `state == C_CLOSING / U_CLOSING` before it touches more.
 *  - An exchange (one request and its response) lives inside its struct
 *    client, valid while c->in_req: begin_exchange takes a worker-local
 *    reference to the worker's current table (route, rev and be are
 *    borrowed from it) and req_end, run once (by the end of the response or
 *    by the close), counts it, logs it, releases the backend's in-flight
 *    count and drops the table reference.
 *  - While an exchange has an upstream connection, c->up and u->c point at
 *    each other. Closing the client closes its upconn; closing the upconn
 *    clears u->c and whoever closed it clears c->up (proxy__upstream_failed
 *    does), so neither ever points at a closed peer.
 *  - A struct admin_conn belongs to the control loop and is freed in its
 *    close callback too.
 */
#ifndef GANTRY_PROXY_PROXY_INT_H
#define GANTRY_PROXY_PROXY_INT_H
#include "common.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "http/http.h"
#include "util/cidr.h"
#include <uv.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdatomic.h>

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
#define ADMIN_MAX_BODY (16u << 20)      /* PUT /routes: the table's bytes, else 413 */
#define ADMIN_MAX_PUTS 2                /* PUT /routes bodies read at once; past it: 503 */

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
	uint64_t deadline; /* loop ms (uv_now) when proxy__client_timeout runs; 0 = none (see sweep) */
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
	bool maint;             /* answered by the route's maintenance mode (counted apart) */
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
	uint64_t deadline;   /* loop ms when proxy__upconn_timeout runs; 0 = none */
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
	bool parsed;        /* the parser accepted a byte of this exchange's response */
};

struct admin_conn {
	uv_tcp_t tcp;
	struct proxy *px;
	struct admin_conn *next, *prev;
	uint64_t deadline; /* control loop ms: the head, then each write, must be done by then */
	char buf[8192];    /* the request head cap: past it, 431; then the body's reads */
	size_t len;
	struct http_msg msg;
	struct out out;
	struct hbuf body;  /* PUT /routes: the table (ADMIN_MAX_BODY) */
	bool in_body;      /* reading the body of an accepted PUT /routes */
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
	_Atomic bool listen_req;    /* --await-routes: the first table arrived, listen now */
	bool listening;
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
	uv_timer_t grace_timer;    /* --grace: the stop begins when it fires */
	bool in_grace;             /* SIGTERM seen, --grace running: /healthz 503, still serving */
	int nadmins;               /* open admin connections (<= ADMIN_MAX_CONNS) */
	int nputs;                 /* of which reading a PUT /routes body (<= ADMIN_MAX_PUTS) */
	bool awaiting;             /* --await-routes and no table pushed yet: not listening */
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

/* why an upstream exchange failed (proxy__upstream_failed decides on a retry) */
enum { FAIL_CONNECT, FAIL_REUSED, FAIL_STALE, FAIL_BROKEN, FAIL_TIMEOUT, FAIL_PROTOCOL };

/*
 * Doubly linked lists of connections with a head pointer (wk->clients,
 * wk->upconns, px->admins). New entries go first; an unlinked entry keeps
 * its next pointer, so a walk that is at it when it is closed goes on.
 */
#define DLIST_PUSH(head, e, next, prev)        \
	do {                                   \
		(e)->next = (head);            \
		if (head)                      \
			(head)->prev = (e);    \
		(head) = (e);                  \
	} while (0)
#define DLIST_UNLINK(head, e, next, prev)              \
	do {                                           \
		if ((e)->prev)                         \
			(e)->prev->next = (e)->next;   \
		else                                   \
			(head) = (e)->next;            \
		if ((e)->next)                         \
			(e)->next->prev = (e)->prev;   \
	} while (0)

/* ---- out.c: the write queue */
/* hands queued bytes to the kernel: send first, uv_write the rest; 0 or a libuv error */
int proxy__out_flush(struct out *o);

/* ---- client.c: client connections (a worker's loop) */
void proxy__on_connection(uv_stream_t *server, int status); /* the listener's callback */
void proxy__client_close(struct client *c);
void proxy__client_update_read(struct client *c);
void proxy__client_timeout(struct client *c); /* c->deadline passed */
/* after the response is queued: close, or get ready for the next request */
void proxy__exchange_maybe_finish(struct client *c);
/* the exchange uses be of rv now (counted in flight), or none */
void proxy__attach_backend(struct client *c, struct route_rev *rv, struct backend *be);
void proxy__detach_backend(struct client *c);
/* the upstream exchange failed (why: FAIL_*): retry, or answer 502/504 */
void proxy__upstream_failed(struct client *c, int why, const char *detail);

/* ---- heads.c: heads the proxy writes */
/* c->uphead from the client's head; -1 if it does not fit */
int proxy__request_head(struct client *c);
/* the response head for the client into c->out.q; decides the body framing; -1: a bad response */
int proxy__response_head(struct client *c, struct upconn *u);

/* ---- upstream.c: upstream connections and pools (a worker's loop) */
/* sends c's request (head + replayable body so far) to c->be */
void proxy__dispatch(struct client *c);
void proxy__upconn_close(struct upconn *u);
void proxy__upconn_update_read(struct upconn *u);
void proxy__upconn_timeout(struct upconn *u); /* u->deadline passed */
void proxy__pool_close_all(struct backend *be, int w);
bool proxy__shield(struct client *c, int cls, struct upconn *u);

/* ---- tunnel.c: after a 101, bytes both ways */
void proxy__tunnel_start(struct client *c, struct upconn *u);
void proxy__tunnel_pump(struct client *c);

/* ---- accesslog.c */
/* the finished exchange's line into the worker's buffer (worker) */
void proxy__access_log(struct client *c, uint64_t dur_us, uint64_t bytes_out);
/* --access-log: opens the file; the writer's timer starts with proxy__alog_start (control) */
int proxy__alog_open(struct proxy *px, struct gerr *err);
void proxy__alog_start(struct proxy *px);
void proxy__alog_flush(struct proxy *px); /* the workers' lines to the file (control) */

/* ---- admin.c: the admin listener (control thread) */
/* --admin and --admin-token-file: checked (and the token read) before anything starts */
int proxy__admin_check(struct proxy *px, const struct proxy_config *cfg, struct gerr *err);
int proxy__admin_listen(struct proxy *px, struct gerr *err);
void proxy__admin_close_all(struct proxy *px);
/*
 * PUT /routes: t (consumed) was parsed from the body; -409 if its
 * generation is older than the loaded one, -500 (err set) if the routes
 * file cannot be written; else written (temp + rename), installed as a
 * SIGHUP reload would, and 0.
 */
int proxy__routes_put(struct proxy *px, struct route_table *t, const char *text, size_t len, struct gerr *err);
/* the JSON pointer of a route_table_parse error ("" for the document) */
void proxy__err_pointer(const char *msg, char *out, size_t n);
/* --await-routes: every worker starts listening (worker.c) */
void proxy__listeners_open_now(struct proxy *px);

/* ---- worker.c: workers and the tables they route with */
int proxy__parse_listen(const char *addr, struct sockaddr_storage *sa); /* ":8080" too */
size_t proxy__count_backends(const struct route_table *t);
void proxy__worker_init(struct proxy *px, struct worker *wk, int id);
void proxy__worker_release(struct worker *wk);
void proxy__worker_main(void *arg); /* the worker thread */
/* worker: switch to t (consumes one reference), close pools of dropped backends */
void proxy__worker_install(struct worker *wk, struct route_table *t, uint64_t seq);
/* control: make t current (consumes the caller's reference) and hand it to the workers */
void proxy__table_install(struct proxy *px, struct route_table *t);
/* one listening socket per worker (SO_REUSEPORT), then each worker's uv listener */
int proxy__open_listeners(struct proxy *px, struct gerr *err);
int proxy__listeners_start(struct proxy *px, struct gerr *err);
void proxy__worker_maybe_stopped(struct worker *wk);
void proxy__on_sweep(uv_timer_t *t);

/* ---- proxy.c: proxy_run in two steps (the unit tests run a proxy in-process) */
/*
 * Everything proxy_run does before it waits: on success *pxp is a proxy
 * whose workers serve; on failure (proxy_run's return values) nothing is
 * left. proxy__serve runs the control loop until SIGTERM/SIGINT and a
 * drain, frees the proxy and returns 0.
 */
int proxy__start(const struct proxy_config *cfg, struct proxy **pxp, struct gerr *err);
int proxy__serve(struct proxy *px);

/* ---- inline: the worker's buffer caches and the write queue's small parts */

/* Read buffers: small ones are recycled per worker, so an idle connection holds none. */
static inline char *buf_get(struct worker *wk)
{
	if (wk->nbufcache)
		return wk->bufcache[--wk->nbufcache];
	return xmalloc(RBUF_SMALL);
}

static inline void buf_put(struct worker *wk, char *p, size_t cap)
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
static inline void hbuf_park(struct worker *wk, struct hbuf *b)
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
static inline void hbuf_unpark(struct worker *wk, struct hbuf *b)
{
	if (b->data || b->max < SBUF_CAP)
		return;
	b->data = wk->nsbuf ? wk->sbuf[--wk->nsbuf] : xmalloc(SBUF_CAP);
	b->cap = SBUF_CAP;
	b->len = 0;
}

/*
 * Makes room for reading into *buf (used bytes *len, capacity *cap): the
 * first read gets a small buffer; a head that does not fit grows it to
 * RBUF_CAP. Returns the new base (the parser's spans are offsets).
 */
static inline char *rbuf_room(struct worker *wk, char **buf, size_t len, size_t *cap)
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

static inline void out_init(struct out *o, uv_stream_t *s, void (*done)(struct out *, int))
{
	memset(o, 0, sizeof(*o));
	o->s = s;
	o->done = done;
	hbuf_init(&o->q, OUT_MAX);
	hbuf_init(&o->w, OUT_MAX);
}

static inline void out_release(struct out *o)
{
	hbuf_release(&o->q);
	hbuf_release(&o->w);
}

/* gives back big buffers once nothing is queued (idle connections stay small) */
static inline void out_trim(struct out *o)
{
	if (!o->q.len && o->q.cap > KEEP_CAP)
		hbuf_release(&o->q);
	if (!o->writing && o->w.cap > KEEP_CAP)
		hbuf_release(&o->w);
}

static inline size_t out_pending(const struct out *o)
{
	return o->q.len + (o->writing ? o->w.len : 0);
}

/* bytes that entered q since the mark (flushed or still queued) */
static inline uint64_t out_total(const struct out *o)
{
	return o->flushed + o->q.len;
}

static inline void close_if_open(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static inline void walk_close(uv_handle_t *h, void *arg)
{
	close_if_open(h);
}

/* a connection with a deadline exists: make sure the sweep runs */
static inline void sweep_need(struct worker *wk)
{
	if (wk->sweeping || wk->finished)
		return;
	wk->sweeping = true;
	uv_timer_start(&wk->sweep, proxy__on_sweep, wk->tick_ms, wk->tick_ms);
}

#endif
