/*
 * flags_tcp.c — the flags listener (flags_tcp.h): OFREP only, its own
 * connection bound, the token checked from the head.
 *
 * The request parser is the TCP API's (api/tcp.h, api_http__feed: the
 * same path, head and body limits); what is served is daemon/flags.h's.
 * Lifetime: a connection holds two libuv handles (the socket and its
 * timer) and is freed when both have closed (conn_unref), never earlier.
 */
#include "common.h"
#include "api/flags_tcp.h"
#include "api/tcp.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "flags/flags.h"
#include "proxy/backend.h"
#include "util/log.h"
#include <arpa/inet.h>
#include <netinet/in.h>

#define HEAD_MS 3000                       /* the head must arrive within, else closed */
#define LINGER_MS 2000                     /* reply written and client gone within, else closed */
#define LINGER_MAX_BYTES (256 * 1024)      /* request bytes discarded after a reply */

struct fconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	int handles;               /* open uv handles; freed at 0 */
	struct api_http http;
	bool replied, closing, checked, continued;
	size_t discarded;
	char peer[64];
	struct fconn *prev, *next;
	char rbuf[16384];
};

struct fwrite {
	uv_write_t req;
	char *data; /* owned */
};

static struct {
	uv_tcp_t *server[FLAGS_TCP_MAX_LISTENERS]; /* owned; freed in their close callback */
	int nservers;
	struct fconn *conns;
	int nconns;
} F;

static void conn_unref(struct fconn *c)
{
	if (--c->handles > 0)
		return;
	api_http__release(&c->http);
	free(c);
}

static void on_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void conn_close(struct fconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		F.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	F.nconns--;
	uv_close((uv_handle_t *)&c->tcp, on_closed);
	uv_close((uv_handle_t *)&c->timer, on_closed);
}

static void on_written(uv_write_t *w, int status)
{
	struct fwrite *fw = (struct fwrite *)w;
	struct fconn *c = w->handle->data;
	free(fw->data);
	free(fw);
	if (status < 0)
		conn_close(c);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
	if (status < 0)
		conn_close(s->handle->data);
}

static void on_timeout(uv_timer_t *t);

/* text consumed */
static void conn_write(struct fconn *c, char *text)
{
	struct fwrite *w = xcalloc(1, sizeof(*w));
	uv_buf_t b = uv_buf_init(text, (unsigned)strlen(text));
	w->data = text;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		free(w->data);
		free(w);
		conn_close(c);
	}
}

static const char *reason(int status)
{
	switch (status) {
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 417: return "Expectation Failed";
	default: return http_reason(status);
	}
}

/* body consumed (NULL: none, as a 304); extra: header lines ending in \r\n, or "" */
static void reply(struct fconn *c, int status, json_t *body, const char *extra)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (c->replied || c->closing) {
		free(text);
		return;
	}
	c->replied = true;
	conn_write(c, xasprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
				"Cache-Control: no-store\r\nConnection: close\r\n%s\r\n%s%s",
				status, reason(status), text ? strlen(text) + 1 : 0, extra, text ? text : "",
				text ? "\n" : ""));
	free(text);
	if (c->closing)
		return;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
}

/* an error as OFREP says it: {"errorCode", "errorDetails"} */
static void reply_error(struct fconn *c, int status, const char *msg)
{
	const char *extra = status == 401   ? "WWW-Authenticate: Bearer realm=\"gantry-flags\"\r\n"
			    : status == 405 ? "Allow: POST\r\n"
			    : status == 503 ? "Retry-After: 1\r\n"
					    : "";
	log_debug("flags", "listener peer=%s status=%d: %s", c->peer, status, msg);
	reply(c, status, json_pack("{s:s, s:s}", "errorCode", status == 400 ? "PARSE_ERROR" : "GENERAL", "errorDetails",
				   msg), extra);
}

static void on_timeout(uv_timer_t *t)
{
	struct fconn *c = t->data;
	if (c->replied)
		conn_close(c);
	else if (!c->http.head_done)
		conn_close(c); /* an idle connection: nothing to answer */
	else
		reply_error(c, 408, "the request did not arrive in time");
}

static void handle(struct fconn *c)
{
	struct api_http *h = &c->http;
	struct ofrep_answer a;
	char extra[160] = "";

	daemon_flags_ofrep(gd, h->flags_env, h->token, h->flag_key[0] ? h->flag_key : NULL, h->body.data, h->body.len,
			   h->if_none_match[0] ? h->if_none_match : NULL, &a);
	if (a.etag[0])
		snprintf(extra, sizeof(extra), "ETag: %s\r\n", a.etag);
	else if (a.status == 401)
		snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer realm=\"gantry-flags\"\r\n");
	log_debug("flags", "ofrep peer=%s environment=%s flag=%s status=%d", c->peer, h->flags_env,
		  h->flag_key[0] ? h->flag_key : "*", a.status);
	reply(c, a.status, a.status == 304 ? (json_decref(a.body), NULL) : a.body, extra);
}

/* the head is in: an OFREP path, a body within bounds, the environment's token. -1 once replied */
static int check_head(struct fconn *c)
{
	struct api_http *h = &c->http;
	int st;
	c->checked = true;
	if (h->kind != API_REQ_OFREP) {
		reply_error(c, 404, "this listener serves feature flags only: POST /flags/ENV/ofrep/v1/evaluate/flags[/KEY]");
		return -1;
	}
	if (h->msg.has_cl && h->msg.content_length > FLAGS_TCP_MAX_BODY) {
		reply_error(c, 413, "an evaluation context larger than 64 KiB");
		return -1;
	}
	st = daemon_flags_auth(gd, h->flags_env, h->token);
	if (st) {
		log_info("flags", "listener peer=%s environment=%s status=%d (head refused)", c->peer, h->flags_env, st);
		reply(c, st, daemon_flags_auth_body(st),
		      st == 401 ? "WWW-Authenticate: Bearer realm=\"gantry-flags\"\r\n" : "");
		return -1;
	}
	uv_timer_start(&c->timer, on_timeout, FLAGS_TCP_REQUEST_MS, 0);
	return 0;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
	struct fconn *c = hd->data;
	(void)suggested;
	*buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct fconn *c = s->data;
	int r;

	if (c->closing)
		return;
	if (n < 0) {
		if (!c->replied && n == UV_EOF && c->http.head_done)
			reply_error(c, 400, "connection closed before the request ended");
		else
			conn_close(c);
		return;
	}
	if (c->replied) {
		c->discarded += (size_t)n;
		if (c->discarded > LINGER_MAX_BYTES)
			conn_close(c);
		return;
	}
	r = api_http__feed(&c->http, buf->base, (size_t)n);
	if (r == API_HTTP_ERROR) {
		if (c->http.status == 401)
			reply_error(c, 401, "missing or malformed token: want 'Authorization: Bearer GANTRY_FLAGS_TOKEN'");
		else
			reply_error(c, c->http.status, c->http.err);
		return;
	}
	if (c->http.head_done && !c->checked && check_head(c) < 0)
		return;
	if (c->http.body.len > FLAGS_TCP_MAX_BODY) {
		reply_error(c, 413, "an evaluation context larger than 64 KiB");
		return;
	}
	if (r == API_HTTP_DONE) {
		handle(c);
	} else if (c->http.head_done && c->http.expect_continue && !c->continued) {
		c->continued = true;
		conn_write(c, xstrdup("HTTP/1.1 100 Continue\r\n\r\n"));
	}
}

static void peer_name(struct fconn *c)
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

static void on_connection(uv_stream_t *server, int status)
{
	struct fconn *c;
	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	api_http__init(&c->http);
	uv_tcp_init(gd->loop, &c->tcp);
	uv_timer_init(gd->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	c->next = F.conns;
	if (F.conns)
		F.conns->prev = c;
	F.conns = c;
	F.nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || F.nconns > 2 * FLAGS_TCP_MAX_CONNS) {
		conn_close(c); /* a flood past twice the bound: not even an answer */
		return;
	}
	peer_name(c);
	if (F.nconns > FLAGS_TCP_MAX_CONNS) {
		log_warn("flags", "listener peer=%s refused: %d connections", c->peer, F.nconns - 1);
		reply_error(c, 503, "too many connections to the flags listener: retry later");
		if (!c->closing)
			uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read); /* to see the client go */
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, HEAD_MS, 0);
}

static void server_closed(uv_handle_t *h)
{
	free(h);
}

static int bind_listen(const char *addr, struct gerr *err)
{
	struct sockaddr_storage sa;
	uv_tcp_t *srv;
	int r;

	if (!addr || backend_parse_addr(addr, &sa) < 0)
		return gerr_set(err, "--flags-listen: invalid address '%s' (want HOST:PORT with an IPv4 address, or "
				"[IPv6]:PORT)", addr ? addr : "");
	if (F.nservers >= FLAGS_TCP_MAX_LISTENERS)
		return gerr_set(err, "--flags-listen %s: at most %d flags listeners", addr, FLAGS_TCP_MAX_LISTENERS);
	srv = xcalloc(1, sizeof(*srv));
	uv_tcp_init(gd->loop, srv);
	r = uv_tcp_bind(srv, (const struct sockaddr *)&sa, 0);
	if (!r)
		r = uv_listen((uv_stream_t *)srv, 511, on_connection);
	if (r < 0) {
		uv_close((uv_handle_t *)srv, server_closed);
		gerr_set(err, "--flags-listen %s: cannot listen: %s", addr, uv_strerror(r));
		return r == UV_EADDRINUSE ? 1 : -1;
	}
	F.server[F.nservers++] = srv;
	log_info("flags", "listen=%s (OFREP)", addr);
	return 0;
}

/*
 * After `gantry upgrade` the old controller holds the port until it exits
 * (just after this one said ready): the address is tried again every
 * 100 ms, for a minute at most. Polls in the gap are refused; an SDK's
 * next poll gets through.
 */
struct retry {
	uv_timer_t timer;
	char *addr;
	int tries;
	uint64_t start; /* uv_now */
};
static struct retry *retries[FLAGS_TCP_MAX_LISTENERS];

static void retry_closed(uv_handle_t *h)
{
	struct retry *r = h->data;
	free(r->addr);
	free(r);
}

static void retry_end(struct retry *r)
{
	for (int i = 0; i < FLAGS_TCP_MAX_LISTENERS; i++)
		if (retries[i] == r)
			retries[i] = NULL;
	uv_close((uv_handle_t *)&r->timer, retry_closed);
}

static void on_retry(uv_timer_t *t)
{
	struct retry *r = t->data;
	struct gerr err;
	int rc = bind_listen(r->addr, &err);
	if (rc == 1 && ++r->tries < 600)
		return;
	if (rc)
		log_error("flags", "%s (gave up)", err.msg);
	else
		log_info("flags", "listen=%s taken over after %llu ms", r->addr,
			 (unsigned long long)(uv_now(gd->loop) - r->start));
	retry_end(r);
}

int flags_tcp_listen(const char *addr, bool retry, struct gerr *err)
{
	int rc = bind_listen(addr, err);
	if (rc == 1 && retry) {
		for (int i = 0; i < FLAGS_TCP_MAX_LISTENERS; i++) {
			struct retry *r;
			if (retries[i])
				continue;
			r = retries[i] = xcalloc(1, sizeof(*r));
			r->addr = xstrdup(addr);
			r->start = uv_now(gd->loop);
			uv_timer_init(gd->loop, &r->timer);
			r->timer.data = r;
			uv_timer_start(&r->timer, on_retry, 100, 100);
			log_info("flags", "listen=%s in use (the controller before this one): trying again", addr);
			return 0;
		}
	}
	return rc ? -1 : 0;
}

void flags_tcp_close(void)
{
	for (int i = 0; i < FLAGS_TCP_MAX_LISTENERS; i++)
		if (retries[i])
			retry_end(retries[i]);
	for (int i = 0; i < F.nservers; i++)
		uv_close((uv_handle_t *)F.server[i], server_closed);
	F.nservers = 0;
	while (F.conns)
		conn_close(F.conns);
}
