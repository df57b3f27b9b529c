/*
 * upstream.c — upstream connections: connecting, sending the request,
 * parsing the response and queueing it for the client; the idle pools
 * (per backend and worker, newest first); the canary shield. Failures go
 * back to the client side (proxy__upstream_failed: retry or 502/504).
 */
#include "common.h"
#include "proxy/proxy-int.h"
#include "util/log.h"

static void upconn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

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

void proxy__upconn_close(struct upconn *u)
{
	if (u->state == U_CLOSING)
		return;
	if (u->state == U_IDLE)
		pool_unlink(u);
	u->state = U_CLOSING;
	u->c = NULL;
	u->deadline = 0;
	DLIST_UNLINK(u->wk->upconns, u, wnext, wprev);
	/* u->wnext is kept: a sweep in progress may still step over u */
	uv_close((uv_handle_t *)&u->tcp, upconn_close_cb);
}

void proxy__pool_close_all(struct backend *be, int w)
{
	while (be->w[w].pool.next != &be->w[w].pool)
		proxy__upconn_close(container_of(be->w[w].pool.next, struct upconn, link));
}

static void upconn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct upconn *u = h->data;
	u->msg.base = rbuf_room(u->wk, &u->rbuf, u->rlen, &u->rcap);
	*buf = uv_buf_init(u->rbuf + u->rlen, (unsigned)(u->rcap - u->rlen));
}

void proxy__upconn_update_read(struct upconn *u)
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

static void pool_put(struct upconn *u)
{
	struct backend *be = u->be;
	struct backend_w *bw = &be->w[u->wk->id];
	if (u->wk->stopping || !atomic_load_explicit(&be->in_table, memory_order_relaxed) ||
	    bw->npool >= POOL_MAX) {
		proxy__upconn_close(u);
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
	proxy__upconn_update_read(u);
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
		proxy__upconn_close(u);
	c->resp_done = true;
	proxy__exchange_maybe_finish(c);
}

/*
 * The canary shield: an idempotent request that got a 5xx (or a connect
 * error) from the shielded canary is sent once to the stable revision,
 * before any byte reached the client. The canary's failure is counted in
 * its own window (cls: 0 no response, 5 a 5xx). Returns true if the request
 * went to stable.
 */
bool proxy__shield(struct client *c, int cls, struct upconn *u)
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
		proxy__upconn_close(u); /* the canary's body is not wanted */
		c->up = NULL;
	}
	metric_count(c->ms, wk->id, cls, cls ? c->latency_us : UINT64_MAX, c->bytes_in, 0);
	c->shielded = true;
	c->set_cookie = false; /* the client keeps its assignment */
	proxy__detach_backend(c);
	proxy__attach_backend(c, stable, be);
	log_debug("proxy", "shield=stable canary=%s stable=%s", r->revs[r->shield_canary].revision,
		  stable->revision);
	proxy__dispatch(c);
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
			/* bytes that are no response at all, first thing on a
			 * reused connection: left over from the exchange before
			 * (a server that wrote a body after a HEAD or a 204 once
			 * we had pooled the connection). The server may have
			 * taken this request, so only an idempotent one goes
			 * again (FAIL_STALE). A fresh connection that answers
			 * junk is a 502: a wrong port, or no HTTP server. */
			bool stale = u->reused && !u->parsed && !used;
			proxy__upconn_close(u);
			proxy__upstream_failed(c, stale ? FAIL_STALE : FAIL_PROTOCOL,
					       stale ? "stray bytes on a reused connection" : why);
			return;
		}
		if (used)
			u->parsed = true;
		if (ev & HTTP_EV_HEAD) {
			int st = llhttp_get_status_code(&u->msg.llp);
			if (st >= 200 || st == 101) {
				c->latency_us = (uv_hrtime() - c->t_fwd) / 1000;
				c->cls = st / 100;
			}
			if (st >= 500 && c->shield_ok && proxy__shield(c, 5, u))
				return;
			if (proxy__response_head(c, u) < 0) {
				proxy__upconn_close(u);
				proxy__upstream_failed(c, FAIL_PROTOCOL, "unexpected response");
				return;
			}
			if (st == 101) {
				proxy__tunnel_start(c, u);
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
		proxy__out_flush(&c->out);
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
			proxy__upconn_update_read(u);
		} else {
			u->rlen += (size_t)nread;
		}
		if (c)
			proxy__tunnel_pump(c);
		else
			proxy__upconn_close(u);
		return;
	}
	if (u->state == U_IDLE || !c) {
		proxy__upconn_close(u); /* EOF or stray bytes on an idle connection */
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
		proxy__upconn_close(u);
		if (!u->got_bytes && u->reused)
			proxy__upstream_failed(c, FAIL_REUSED, "connection closed before the response");
		else
			proxy__upstream_failed(c, FAIL_BROKEN, "connection closed before the response ended");
		return;
	}
	u->got_bytes = true;
	u->rlen += (size_t)nread;
	u->deadline = uv_now(&u->wk->loop) + u->wk->cfg->upstream_timeout_ms;
	upconn_process(u);
	if (u->state != U_CLOSING)
		proxy__upconn_update_read(u);
}

static void upconn_out_done(struct out *o, int status)
{
	struct upconn *u = container_of(o, struct upconn, out);
	struct client *c = u->c;
	if (u->state == U_CLOSING)
		return;
	if (status < 0 || proxy__out_flush(o) < 0) {
		if (u->state == U_TUNNEL) {
			if (c)
				proxy__client_close(c);
			proxy__upconn_close(u);
			return;
		}
		proxy__upconn_close(u);
		if (c)
			proxy__upstream_failed(c, !u->got_bytes && u->reused ? FAIL_REUSED : FAIL_BROKEN,
					"write to upstream failed");
		return;
	}
	if (c && u->state == U_TUNNEL) {
		proxy__tunnel_pump(c);
		return;
	}
	if (c)
		proxy__client_update_read(c);
}

/* u's deadline passed: connect timeout, upstream timeout (504) or pool idle */
void proxy__upconn_timeout(struct upconn *u)
{
	struct client *c = u->c;
	enum ustate st = u->state;

	proxy__upconn_close(u);
	if (!c)
		return;
	if (st == U_CONNECTING) {
		if (backend_connect_result(u->be, false, uv_now(&u->wk->loop)))
			log_warn("proxy", "ejected backend=%s for=%ds reason=connect-timeout",
				 u->be->address, BACKEND_EJECT_MS / 1000);
		proxy__upstream_failed(c, FAIL_CONNECT, "connect timeout");
	} else {
		proxy__upstream_failed(c, FAIL_TIMEOUT, "upstream timeout");
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
		proxy__upconn_close(u);
		if (c)
			proxy__upstream_failed(c, FAIL_CONNECT, uv_strerror(status));
		return;
	}
	backend_connect_result(u->be, true, 0);
	uv_tcp_nodelay(&u->tcp, 1);
	u->state = U_BUSY;
	u->out.ready = true;
	u->deadline = uv_now(&u->wk->loop) + u->wk->cfg->upstream_timeout_ms;
	if (proxy__out_flush(&u->out) < 0) {
		proxy__upconn_close(u);
		if (c)
			proxy__upstream_failed(c, FAIL_CONNECT, "write failed");
		return;
	}
	proxy__upconn_update_read(u);
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
	DLIST_PUSH(wk->upconns, u, wnext, wprev);
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
		proxy__upconn_close(u);
		return NULL;
	}
	return u;
}

/* Sends the current request (head + replayable body so far) to c->be. */
void proxy__dispatch(struct client *c)
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
			proxy__upstream_failed(c, FAIL_CONNECT, "cannot create a connection");
			return;
		}
	}
	u->c = c;
	c->up = u;
	c->t_fwd = uv_hrtime();
	u->got_bytes = false;
	u->parsed = false;
	u->rlen = u->rpos = 0;
	http_msg_next(&u->msg, u->rbuf);
	u->msg.skip_body = c->head_req;
	if (hbuf_append(&u->out.q, c->uphead.data, c->uphead.len) < 0 ||
	    hbuf_append(&u->out.q, c->replay.data, c->replay.len) < 0 || proxy__out_flush(&u->out) < 0) {
		proxy__upconn_close(u);
		c->up = NULL;
		proxy__upstream_failed(c, FAIL_REUSED, "write failed");
		return;
	}
	proxy__upconn_update_read(u);
}
