/*
 * client.c — client connections: accept, read, parse the request, route it
 * (revision and backend), answers the proxy makes itself (400, 404, 408,
 * 413, 431, 502, 503, 504), keep-alive and pipelining, lingering close,
 * retries after an upstream failure, and the exchange's bookkeeping
 * (in-flight counts, the window, the access log).
 */
#include "common.h"
#include "proxy/proxy-int.h"
#include "util/log.h"
#include <sys/socket.h>

static void client_process(struct client *c);
static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---------------------------------------------------------------- exchange accounting */

void proxy__attach_backend(struct client *c, struct route_rev *rv, struct backend *be)
{
	int w = c->wk->id;
	c->rev = rv;
	c->be = be;
	c->ms = rv->ms;
	CTR_ADD(be->w[w].inflight, 1);
	CTR_ADD(be->w[w].requests, 1);
	CTR_ADD(rv->ms->w[w].inflight, 1);
}

void proxy__detach_backend(struct client *c)
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

/* Ends the exchange's bookkeeping once; counts it if an answer was given. */
static void req_end(struct client *c)
{
	uint64_t bytes_out;
	if (!c->in_req)
		return;
	c->in_req = false;
	bytes_out = out_total(&c->out) - c->out_mark;
	if (c->maint)
		metric_count_maintenance(c->ms, c->wk->id); /* not a request of any revision, never a 5xx */
	else if (c->status || c->cls == 0)
		metric_count(c->ms, c->wk->id, c->cls, c->cls ? c->latency_us : UINT64_MAX,
			     c->bytes_in, bytes_out);
	if (c->wk->px->alog_fd >= 0)
		proxy__access_log(c, (uv_hrtime() - c->t0) / 1000, bytes_out);
	proxy__detach_backend(c);
	route_table_wunref(c->table, c->wk->id);
	c->table = NULL;
	c->route = NULL;
	c->rev = NULL;
}

/* ---------------------------------------------------------------- the connection */

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

void proxy__client_close(struct client *c)
{
	struct worker *wk = c->wk;
	if (c->state == C_CLOSING)
		return;
	c->state = C_CLOSING;
	if (c->up) {
		proxy__upconn_close(c->up);
		c->up = NULL;
	}
	req_end(c);
	DLIST_UNLINK(wk->clients, c, next, prev);
	wk->nclients--;
	c->deadline = 0;
	/* c->next is kept: a sweep in progress may still step over c */
	uv_close((uv_handle_t *)&c->tcp, client_close_cb);
	proxy__worker_maybe_stopped(wk);
}

static void client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct client *c = h->data;
	c->msg.base = rbuf_room(c->wk, &c->rbuf, c->rlen, &c->rcap);
	*buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

void proxy__client_update_read(struct client *c)
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
	c->shield_ok = c->shielded = c->set_cookie = c->upgrade = c->maint = false;
	c->req_done = c->resp_done = c->resp_head_sent = c->resp_chunked = false;
	c->reqid[0] = 0;
}

/* An exchange for an answer made before any routing (bad or late head). */
static void begin_unrouted(struct client *c)
{
	if (!c->in_req)
		begin_exchange(c);
}

/* Before an answer made by the proxy itself: whether the connection stays open. */
static void local_prepare(struct client *c)
{
	if (c->up) {
		proxy__upconn_close(c->up);
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
}

static void local_done(struct client *c, int status)
{
	c->status = status;
	if (c->cls < 0)
		c->cls = status / 100;
	c->resp_head_sent = true;
	c->resp_done = true;
	proxy__exchange_maybe_finish(c);
}

/* Queues an answer made by the proxy itself. */
static void local_reply(struct client *c, int status, const char *why)
{
	struct hbuf *b = &c->out.q;
	local_prepare(c);
	hbuf_printf(b, "HTTP/1.1 %d %s\r\nServer: gantry\r\nContent-Type: text/plain; charset=utf-8\r\n"
		       "Content-Length: %zu\r\n%s\r\n",
		    status, http_reason(status), strlen(why) + 1,
		    c->close_after ? "Connection: close\r\n" : "");
	if (!c->head_req) {
		hbuf_addstr(b, why);
		hbuf_addstr(b, "\n");
	}
	local_done(c, status);
}

/*
 * The route is in maintenance: its 503, built when the table was loaded
 * (HTML, or JSON when the request's Accept prefers it). No backend is
 * chosen or touched; the answer is counted as a maintenance response of
 * the route, not in any revision's window.
 */
static void maint_reply(struct client *c, const struct route_maint *m)
{
	struct hbuf *b = &c->out.q;
	bool json = maint_prefers_json(&c->msg);
	local_prepare(c);
	hbuf_append(b, json ? m->json_head : m->html_head, json ? m->json_head_len : m->html_head_len);
	if (c->close_after)
		hbuf_addstr(b, "Connection: close\r\n");
	hbuf_addstr(b, "\r\n");
	if (!c->head_req)
		hbuf_append(b, json ? m->json_body : m->html_body, json ? m->json_body_len : m->html_body_len);
	c->maint = true;
	local_done(c, 503);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
}

/* The last response is out: close, or send FIN and drain for a while. */
static void client_done_writing(struct client *c)
{
	if (!c->linger && c->rpos == c->rlen) {
		proxy__client_close(c);
		return;
	}
	c->state = C_LINGER;
	c->rlen = c->rpos = 0;
	if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
		proxy__client_close(c);
		return;
	}
	c->deadline = uv_now(&c->wk->loop) + LINGER_MS;
	proxy__client_update_read(c);
}

static void begin_flush_close(struct client *c)
{
	c->state = C_FLUSH;
	proxy__client_update_read(c);
	if (proxy__out_flush(&c->out) < 0) {
		proxy__client_close(c);
		return;
	}
	if (!out_pending(&c->out)) {
		client_done_writing(c);
		return;
	}
	c->deadline = uv_now(&c->wk->loop) + c->wk->cfg->idle_timeout_ms;
}

/* After the response is queued: close, or get ready for the next request. */
void proxy__exchange_maybe_finish(struct client *c)
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
	if (proxy__out_flush(&c->out) < 0) {
		proxy__client_close(c);
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

/* ---------------------------------------------------------------- the request */

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
	if (c->route->maint.on && !maint_allowed(&c->route->maint, m)) {
		maint_reply(c, &c->route->maint);
		return;
	}
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
	if (proxy__request_head(c) < 0) {
		local_reply(c, 431, "request head too large");
		return;
	}
	proxy__attach_backend(c, rv, be);
	proxy__dispatch(c);
}

/* ---------------------------------------------------------------- retries */

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

void proxy__upstream_failed(struct client *c, int why, const char *detail)
{
	struct worker *wk = c->wk;
	struct backend *old = c->be, *be = NULL;
	struct route_rev *rv = NULL;
	struct route *r;

	c->up = NULL;
	if (!c->in_req || c->state == C_CLOSING)
		return;
	count_upstream_error(c);
	if (why == FAIL_CONNECT && c->shield_ok && proxy__shield(c, 0, NULL))
		return;
	if (!c->resp_head_sent && c->replayable && c->tries < MAX_RETRIES && c->rev &&
	    (why == FAIL_CONNECT || why == FAIL_REUSED || (why == FAIL_STALE && idempotent(&c->msg)))) {
		/* route again with the current table: the old one may point at a
		 * backend that is being drained or is already gone */
		int tag_rev;
		r = c->host[0] ? route_lookup(wk->table, c->host, &tag_rev) : wk->table->any;
		if (r)
			be = retry_pick(c, wk->table, r, old, &rv);
		if (be) {
			c->tries++;
			proxy__detach_backend(c);
			route_table_wref(wk->table, wk->id);
			route_table_wunref(c->table, wk->id);
			c->table = wk->table;
			c->route = r;
			proxy__attach_backend(c, rv, be);
			proxy__dispatch(c);
			return;
		}
	}
	log_debug("proxy", "upstream=%s error=%s", old ? old->address : "-", detail);
	if (c->resp_head_sent) {
		proxy__client_close(c); /* the response was cut short: the client must see it */
		return;
	}
	c->cls = 0;
	local_reply(c, why == FAIL_TIMEOUT ? 504 : 502,
		    why == FAIL_TIMEOUT ? "upstream timed out" : "upstream unavailable");
}

/* ---------------------------------------------------------------- events: reads, writes done, deadlines */

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
				proxy__client_close(c);
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
			proxy__exchange_maybe_finish(c);
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
	if (c->up && c->up->state != U_CLOSING && proxy__out_flush(&c->up->out) < 0) {
		struct upconn *u = c->up;
		proxy__upconn_close(u);
		proxy__upstream_failed(c, u->reused && !u->got_bytes ? FAIL_REUSED : FAIL_BROKEN, "write failed");
		if (c->state == C_CLOSING)
			return;
	}
	proxy__client_update_read(c);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;
	if (nread == 0)
		return;
	if (c->state == C_LINGER) {
		if (nread < 0)
			proxy__client_close(c);
		c->rlen = 0; /* dropped */
		return;
	}
	if (c->state == C_TUNNEL) {
		if (nread < 0) {
			c->eof = true;
			proxy__client_update_read(c);
		} else {
			c->rlen += (size_t)nread;
		}
		proxy__tunnel_pump(c);
		return;
	}
	if (nread < 0) {
		if (nread == UV_EOF && c->state == C_BODY && c->req_done && !c->eof) {
			/* half-close after a complete request: answer, then close */
			c->eof = true;
			c->close_after = true;
			proxy__client_update_read(c);
			return;
		}
		/* EOF or reset: nothing can be answered any more */
		proxy__client_close(c);
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
		proxy__client_update_read(c);
		return;
	}
	c->msg.base = rbuf_room(c->wk, &c->rbuf, c->rlen, &c->rcap);
	do
		n = recv(fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		c->rlen += (size_t)n;
		client_process(c); /* ends with proxy__client_update_read */
		return;
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
		proxy__client_close(c); /* EOF or an error before any byte: nothing to answer */
		return;
	}
	buf_put(c->wk, c->rbuf, c->rcap); /* an idle connection holds no buffer */
	c->rbuf = NULL;
	c->rcap = 0;
	proxy__client_update_read(c);
}

static void client_out_done(struct out *o, int status)
{
	struct client *c = container_of(o, struct client, out);
	if (c->state == C_CLOSING)
		return;
	if (status < 0 || proxy__out_flush(o) < 0) {
		proxy__client_close(c);
		return;
	}
	if (c->state == C_TUNNEL) {
		proxy__tunnel_pump(c);
		return;
	}
	if (c->state == C_FLUSH && !out_pending(o)) {
		client_done_writing(c);
		return;
	}
	if (c->up)
		proxy__upconn_update_read(c->up);
}

/* c's deadline passed: what it means depends on the state */
void proxy__client_timeout(struct client *c)
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
	proxy__client_close(c); /* idle keep-alive, a client not reading, an idle tunnel */
}

/* ---------------------------------------------------------------- accept */

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

void proxy__on_connection(uv_stream_t *server, int status)
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
	DLIST_PUSH(wk->clients, c, next, prev);
	wk->nclients++;
	c->state = C_IDLE;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		proxy__client_close(c);
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
