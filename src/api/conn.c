/*
 * conn.c — the connection layer of the API's TCP listeners (conn.h):
 * accept, read, write, reply, linger, close; the protocol is the
 * listener's (tcp.c, flags_tcp.c).
 */
#include "common.h"
#include "api/conn.h"
#include "http/http.h"
#include <arpa/inet.h>
#include <netinet/in.h>

struct conn_write {
	uv_write_t req;
	char *data; /* owned; NULL for static bytes */
};

void api_conn__ref(struct api_conn *c)
{
	c->handles++;
}

/* drops one reference: a uv handle closed, or the listener's */
void api_conn__unref(struct api_conn *c)
{
	if (--c->handles > 0)
		return;
	if (c->set->ops->release)
		c->set->ops->release(c);
	api_http__release(&c->http);
	free(c);
}

static void on_closed(uv_handle_t *h)
{
	api_conn__unref(h->data);
}

void api_conn__close(struct api_conn *c)
{
	struct api_conn_set *set = c->set;
	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		set->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	set->nconns--;
	if (set->ops->closing)
		set->ops->closing(c);
	uv_close((uv_handle_t *)&c->tcp, on_closed);
	uv_close((uv_handle_t *)&c->timer, on_closed);
}

void api_conn__close_all(struct api_conn_set *set)
{
	while (set->conns)
		api_conn__close(set->conns);
}

static void on_written(uv_write_t *w, int status)
{
	struct conn_write *cw = (struct conn_write *)w;
	struct api_conn *c = w->handle->data;
	free(cw->data);
	free(cw);
	if (status < 0)
		api_conn__close(c);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
	/* the client's close (EOF in on_read) or the timer closes it */
	if (status < 0)
		api_conn__close(s->handle->data);
}

void api_conn__write(struct api_conn *c, char *text, size_t len, bool own)
{
	struct conn_write *w = xcalloc(1, sizeof(*w));
	uv_buf_t b = uv_buf_init(text, (unsigned)len);
	w->data = own ? text : NULL;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		free(w->data);
		free(w);
		api_conn__close(c);
	}
}

void api_conn__continue(struct api_conn *c)
{
	static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	if (!c->http.head_done || !c->http.expect_continue || c->continued)
		return;
	c->continued = true;
	api_conn__write(c, cont, sizeof(cont) - 1, false);
}

static void on_timeout(uv_timer_t *t)
{
	struct api_conn *c = t->data;
	if (c->replied)
		api_conn__close(c);
	else
		c->set->ops->timeout(c);
}

void api_conn__timer(struct api_conn *c, uint64_t ms)
{
	uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static const char *reason(int status)
{
	switch (status) {
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 409: return "Conflict";
	case 417: return "Expectation Failed";
	default: return http_reason(status);
	}
}

bool api_conn__replying(struct api_conn *c)
{
	if (c->replied || c->closing)
		return false;
	c->replied = true;
	return true;
}

void api_conn__reply(struct api_conn *c, int status, const char *ctype, const char *extra, const char *body,
		     bool newline, bool head_only)
{
	char *msg = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			      "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n%s%s",
			      status, reason(status), ctype, strlen(body) + newline, extra, head_only ? "" : body,
			      head_only || !newline ? "" : "\n");
	api_conn__write(c, msg, strlen(msg), true);
	if (c->closing)
		return;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
		api_conn__close(c);
		return;
	}
	api_conn__timer(c, c->set->ops->linger_ms);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
	struct api_conn *c = hd->data;
	(void)suggested;
	*buf = uv_buf_init(c->rbuf, (unsigned)c->set->ops->rbuf_size);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct api_conn *c = s->data;

	if (c->closing)
		return;
	if (n < 0) {
		/* a client that half-closed after a partial request still gets told */
		if (!c->replied && n == UV_EOF && c->http.head_done)
			c->set->ops->fail(c, 400, "connection closed before the request ended");
		else
			api_conn__close(c);
		return;
	}
	if (c->replied) {
		c->discarded += (size_t)n;
		if (c->discarded > c->set->ops->linger_max_bytes)
			api_conn__close(c);
		return;
	}
	c->set->ops->read(c, buf->base, (size_t)n);
}

int api_conn__read_start(struct api_conn *c)
{
	return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void api_conn__start(struct api_conn *c, uint64_t ms)
{
	if (api_conn__read_start(c) < 0) {
		api_conn__close(c);
		return;
	}
	api_conn__timer(c, ms);
}

static void peer_name(struct api_conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";

	strlcpy_g(c->peer, "tcp:unknown", sizeof(c->peer));
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		uv_ip4_name(s4, ip, sizeof(ip));
		snprintf(c->peer, sizeof(c->peer), "tcp:%s:%u", ip, ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		uv_ip6_name(s6, ip, sizeof(ip));
		snprintf(c->peer, sizeof(c->peer), "tcp:[%s]:%u", ip, ntohs(s6->sin6_port));
	}
}

struct api_conn *api_conn__accept(struct api_conn_set *set, uv_stream_t *server)
{
	const struct api_conn_ops *ops = set->ops;
	/* the read buffer right after the listener's struct: one allocation */
	struct api_conn *c = xcalloc(1, ops->size + ops->rbuf_size);

	c->set = set;
	c->rbuf = (char *)c + ops->size;
	api_http__init(&c->http);
	if (ops->init)
		ops->init(c);
	uv_tcp_init(server->loop, &c->tcp);
	uv_timer_init(server->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	c->next = set->conns;
	if (set->conns)
		set->conns->prev = c;
	set->conns = c;
	set->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || set->nconns > ops->flood) {
		api_conn__close(c); /* a flood: not even an answer */
		return NULL;
	}
	peer_name(c);
	return c;
}
