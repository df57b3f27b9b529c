/*
 * health.c — active health checks on the control thread's loop (see
 * health.h for what is checked and how the state reaches the workers).
 *
 * One struct hc_target per checked backend, with its own timer: between
 * probes it waits for the next one; during a probe it is the probe's
 * timeout. A target that leaves the table is unlinked at once and freed in
 * the close callback of its last handle.
 */
#include "common.h"
#include "proxy/health.h"
#include "util/log.h"

#define HC_READ_MAX 256   /* a status line fits; the rest of the answer is not read */
#define HC_REQ_MAX 1536   /* path <= 1024 (route.c), address < 64, the fixed text */
#define HC_FIRST_MAX 1000 /* a new target's first probe within this many ms */
#define HC_STALL_MS 100   /* a timeout timer this late says the loop was blocked (hc_timer_cb) */

struct hc_target {
	struct health *h;
	struct backend *be;      /* one reference */
	char *path;              /* owned */
	int64_t interval_ms, timeout_ms;
	int fall, rise;
	int passes, fails;       /* consecutive */
	uv_timer_t timer;        /* the next probe, or the running probe's timeout */
	uv_tcp_t tcp;            /* initialised per probe; open until its close callback */
	uv_connect_t creq;
	uv_write_t wreq;
	int handles;             /* open handles: timer, and tcp while tcp_open */
	bool probing, tcp_open, removed, seen;
	bool extended;           /* the running probe's timeout was given again after a stall */
	uint64_t started;        /* loop ms when the running probe started */
	char req[HC_REQ_MAX];    /* written only when no write is in flight */
	char buf[HC_READ_MAX];
	size_t len;
	struct hc_target *next;
};

struct health {
	uv_loop_t *loop;          /* borrowed */
	struct hc_target *targets;
};

static void hc_timer_cb(uv_timer_t *tm);

struct health *health_new(uv_loop_t *loop)
{
	struct health *h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	return h;
}

static void target_free_maybe(struct hc_target *t)
{
	if (!t->removed || t->handles > 0)
		return;
	backend_put(t->be);
	free(t->path);
	free(t);
}

static void hc_close_cb(uv_handle_t *hd)
{
	struct hc_target *t = hd->data;
	if (hd == (uv_handle_t *)&t->tcp)
		t->tcp_open = false;
	t->handles--;
	target_free_maybe(t);
}

static void tcp_close(struct hc_target *t)
{
	if (t->tcp_open && !uv_is_closing((uv_handle_t *)&t->tcp))
		uv_close((uv_handle_t *)&t->tcp, hc_close_cb);
}

/* Counts the probe's outcome, moves the state, schedules the next probe. */
static void probe_end(struct hc_target *t, bool ok, const char *why)
{
	struct backend *be = t->be;
	uint64_t now = uv_now(t->h->loop), spent = now - t->started;
	int state = atomic_load(&be->hc_state);

	if (!t->probing)
		return;
	t->probing = false;
	tcp_close(t);
	if (ok) {
		CTR_ADD(be->hc_passed, 1);
		t->fails = 0;
		t->passes++;
		if (state == BACKEND_HC_DOWN && t->passes >= t->rise) {
			atomic_store(&be->hc_state, BACKEND_HC_UP);
			log_info("proxy", "health=up backend=%s service=%s environment=%s revision=%s passes=%d",
				 be->address, be->service, be->environment, be->revision, t->passes);
		}
	} else {
		CTR_ADD(be->hc_failed, 1);
		t->passes = 0;
		t->fails++;
		if (state != BACKEND_HC_DOWN && t->fails >= t->fall) {
			atomic_store(&be->hc_state, BACKEND_HC_DOWN);
			log_warn("proxy", "health=down backend=%s service=%s environment=%s revision=%s fails=%d reason=\"%s\"",
				 be->address, be->service, be->environment, be->revision, t->fails, why);
		} else {
			log_debug("proxy", "health_check=failed backend=%s fails=%d reason=\"%s\"", be->address,
				  t->fails, why);
		}
	}
	uv_timer_start(&t->timer, hc_timer_cb,
		       spent < (uint64_t)t->interval_ms ? (uint64_t)t->interval_ms - spent : 0, 0);
}

/* "HTTP/1.x NNN" at the start of the answer: 2xx and 3xx pass */
static void judge(struct hc_target *t)
{
	const char *b = t->buf;
	char why[64];
	int st;

	if (t->len < 12 || memcmp(b, "HTTP/1.", 7) || b[8] != ' ' || b[9] < '1' || b[9] > '5' ||
	    b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9') {
		probe_end(t, false, t->len ? "not an HTTP/1 answer" : "closed without an answer");
		return;
	}
	st = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
	snprintf(why, sizeof(why), "status %d", st);
	probe_end(t, st >= 200 && st < 400, why);
}

static void hc_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *buf)
{
	struct hc_target *t = hd->data;
	*buf = uv_buf_init(t->buf + t->len, (unsigned)(sizeof(t->buf) - t->len));
}

static void hc_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct hc_target *t = s->data;

	if (!t->probing || nread == 0)
		return;
	if (nread > 0)
		t->len += (size_t)nread;
	/* decide once the status line is in, the buffer is full, or the answer ended */
	if (nread > 0 && t->len < sizeof(t->buf) && !memchr(t->buf, '\n', t->len))
		return;
	judge(t);
}

static void hc_write_cb(uv_write_t *req, int status)
{
	struct hc_target *t = req->data;
	if (status < 0 && t->probing)
		probe_end(t, false, uv_strerror(status));
}

static void hc_connect_cb(uv_connect_t *req, int status)
{
	struct hc_target *t = req->data;
	uv_buf_t b;
	int r;

	if (!t->probing)
		return; /* ended (timeout) or removed: the handle is closing */
	if (status < 0) {
		probe_end(t, false, uv_strerror(status));
		return;
	}
	b = uv_buf_init(t->req, (unsigned)strlen(t->req));
	r = uv_write(&t->wreq, (uv_stream_t *)&t->tcp, &b, 1, hc_write_cb);
	if (r >= 0)
		r = uv_read_start((uv_stream_t *)&t->tcp, hc_alloc, hc_read_cb);
	if (r < 0)
		probe_end(t, false, uv_strerror(r));
}

static void probe_start(struct hc_target *t)
{
	int r;

	t->started = uv_now(t->h->loop);
	t->extended = false;
	t->len = 0;
	snprintf(t->req, sizeof(t->req),
		 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gantry-health-check\r\nConnection: close\r\n\r\n",
		 t->path, t->be->address);
	uv_tcp_init(t->h->loop, &t->tcp);
	t->tcp.data = t;
	t->creq.data = t->wreq.data = t;
	t->tcp_open = true;
	t->handles++;
	t->probing = true;
	r = uv_tcp_connect(&t->creq, &t->tcp, (const struct sockaddr *)&t->be->sa, hc_connect_cb);
	if (r < 0) {
		probe_end(t, false, uv_strerror(r));
		return;
	}
	uv_tcp_nodelay(&t->tcp, 1);
	uv_timer_start(&t->timer, hc_timer_cb, (uint64_t)t->timeout_ms, 0);
}

static void hc_timer_cb(uv_timer_t *tm)
{
	struct hc_target *t = tm->data;

	if (t->removed)
		return;
	if (t->probing) {
		/*
		 * libuv runs due timers before it polls: after this loop was
		 * blocked (a busy machine, a stopped process) the timer fires
		 * although the answer may wait unread in the socket. A timer
		 * HC_STALL_MS late measured the proxy, not the backend: the
		 * probe gets its timeout again, once.
		 */
		if (!t->extended && uv_now(t->h->loop) >= t->started + (uint64_t)t->timeout_ms + HC_STALL_MS) {
			t->extended = true;
			uv_timer_start(&t->timer, hc_timer_cb, (uint64_t)t->timeout_ms, 0);
			return;
		}
		probe_end(t, false, "timeout");
		return;
	}
	if (t->tcp_open) {
		/* the last probe's socket is still closing: its handle is reused */
		uv_timer_start(&t->timer, hc_timer_cb, 10, 0);
		return;
	}
	probe_start(t);
}

static void target_configure(struct hc_target *t, const struct route_hc *hc)
{
	if (!t->path || strcmp(t->path, hc->path)) {
		free(t->path);
		t->path = xstrdup(hc->path); /* the next probe's request uses it */
	}
	t->interval_ms = hc->interval_ms;
	t->timeout_ms = hc->timeout_ms;
	t->fall = hc->fall;
	t->rise = hc->rise;
}

static struct hc_target *target_new(struct health *h, struct backend *be, unsigned idx,
				    const struct route_hc *hc)
{
	struct hc_target *t = xcalloc(1, sizeof(*t));
	uint64_t first;

	t->h = h;
	t->be = be;
	backend_ref(be);
	target_configure(t, hc);
	uv_timer_init(h->loop, &t->timer);
	t->timer.data = t;
	t->handles = 1;
	/* a backend new to the checker starts up: `fall` failures take it out */
	atomic_store(&be->hc_state, BACKEND_HC_UP);
	/* spread the first probes of many backends a little */
	first = 1 + (uint64_t)idx * 97 % (uint64_t)MIN(hc->interval_ms, (int64_t)HC_FIRST_MAX);
	uv_timer_start(&t->timer, hc_timer_cb, first, 0);
	t->next = h->targets;
	h->targets = t;
	return t;
}

/* t is already unlinked; it is freed once its handles are closed */
static void target_remove(struct hc_target *t)
{
	t->removed = true;
	t->probing = false;
	atomic_store(&t->be->hc_state, BACKEND_HC_NONE);
	tcp_close(t);
	uv_close((uv_handle_t *)&t->timer, hc_close_cb);
}

static struct hc_target *target_find(struct health *h, const struct backend *be)
{
	for (struct hc_target *t = h->targets; t; t = t->next)
		if (t->be == be)
			return t;
	return NULL;
}

void health_sync(struct health *h, const struct route_table *t)
{
	struct hc_target **pp, *x;
	unsigned idx = 0;

	for (x = h->targets; x; x = x->next)
		x->seen = false;
	for (size_t i = 0; i < t->nroutes; i++) {
		const struct route *r = &t->routes[i];
		if (!r->hc.path)
			continue;
		for (size_t k = 0; k < r->nrevs; k++)
			for (size_t j = 0; j < r->revs[k].nbackends; j++) {
				struct backend *be = r->revs[k].backends[j].be;
				x = target_find(h, be);
				if (x && x->seen)
					continue; /* in two routes: the first one's check applies */
				if (!x)
					x = target_new(h, be, idx++, &r->hc);
				else
					target_configure(x, &r->hc);
				x->seen = true;
			}
	}
	for (pp = &h->targets; (x = *pp) != NULL;) {
		if (x->seen) {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		target_remove(x);
	}
}

void health_close(struct health *h)
{
	struct hc_target *x;
	if (!h)
		return;
	while ((x = h->targets) != NULL) {
		h->targets = x->next;
		target_remove(x);
	}
}

void health_free(struct health *h)
{
	free(h);
}
