/*
 * heads.c — the heads the proxy writes: the request head it sends upstream
 * (hop-by-hop headers dropped, X-Forwarded-For/-Proto/-Host, X-Request-Id
 * and Via per --forward-headers and --trusted-proxies, the body framing)
 * and the response head it sends the client (the body framing, Set-Cookie
 * of a sticky route, Connection). The proxy never copies raw head bytes: it
 * writes heads from the parsed fields (docs/internals/proxy.md, invariant 5).
 */
#include "common.h"
#include "proxy/proxy-int.h"

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
int proxy__response_head(struct client *c, struct upconn *u)
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

int proxy__request_head(struct client *c)
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
