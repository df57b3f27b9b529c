/*
 * flags_tcp.c — the flags listener (flags_tcp.h): OFREP only, its own
 * connection bound, the token checked from the head.
 *
 * The request parser is the TCP API's (api/tcp.h, api_http__feed: the
 * same path, head and body limits); what is served is daemon/flags.h's.
 * The connection (accept, write, reply, linger, close, its lifetime) is
 * api/conn.h's, shared with the API's listener; this file is the protocol.
 */
#include "common.h"
#include "api/conn.h"
#include "api/flags_tcp.h"
#include "api/tcp.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "flags/flags.h"
#include "proxy/backend.h"
#include "util/log.h"

#define HEAD_MS 3000                       /* the head must arrive within, else closed */
#define LINGER_MS 2000                     /* reply written and client gone within, else closed */
#define LINGER_MAX_BYTES (256 * 1024)      /* request bytes discarded after a reply */

struct fconn {
	struct api_conn conn;      /* first: the connection layer's (api/conn.h) */
	bool checked;              /* the head has been checked */
};

static const struct api_conn_ops fconn_ops; /* below, with the callbacks */

static struct {
	uv_tcp_t *server[FLAGS_TCP_MAX_LISTENERS]; /* owned; freed in their close callback */
	int nservers;
	struct api_conn_set conns;
} F = { .conns = { .ops = &fconn_ops } };

/* body consumed (NULL: none, as a 304); extra: header lines ending in \r\n, or "" */
static void reply(struct fconn *c, int status, json_t *body, const char *extra)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (api_conn__replying(&c->conn))
		api_conn__reply(&c->conn, status, "application/json", extra, text ? text : "", text != NULL, false);
	free(text);
}

/* an error as OFREP says it: {"errorCode", "errorDetails"} */
static void reply_error(struct fconn *c, int status, const char *msg)
{
	const char *extra = status == 401   ? "WWW-Authenticate: Bearer realm=\"gantry-flags\"\r\n"
			    : status == 405 ? "Allow: POST\r\n"
			    : status == 503 ? "Retry-After: 1\r\n"
					    : "";
	log_debug("flags", "listener peer=%s status=%d: %s", c->conn.peer, status, msg);
	reply(c, status, json_pack("{s:s, s:s}", "errorCode", status == 400 ? "PARSE_ERROR" : "GENERAL", "errorDetails",
				   msg), extra);
}

/* the layer's error answer (api_conn_ops.fail) */
static void fail(struct api_conn *ac, int status, const char *msg)
{
	reply_error((struct fconn *)ac, status, msg);
}

/* the timer ran out before the reply */
static void on_timeout(struct api_conn *ac)
{
	struct fconn *c = (struct fconn *)ac;
	if (!c->conn.http.head_done)
		api_conn__close(ac); /* an idle connection: nothing to answer */
	else
		reply_error(c, 408, "the request did not arrive in time");
}

static void handle(struct fconn *c)
{
	struct api_http *h = &c->conn.http;
	struct ofrep_answer a;
	char extra[160] = "";

	daemon_flags_ofrep(gd, h->flags_env, h->token, h->flag_key[0] ? h->flag_key : NULL, h->body.data, h->body.len,
			   h->if_none_match[0] ? h->if_none_match : NULL, &a);
	if (a.etag[0])
		snprintf(extra, sizeof(extra), "ETag: %s\r\n", a.etag);
	else if (a.status == 401)
		snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer realm=\"gantry-flags\"\r\n");
	log_debug("flags", "ofrep peer=%s environment=%s flag=%s status=%d", c->conn.peer, h->flags_env,
		  h->flag_key[0] ? h->flag_key : "*", a.status);
	reply(c, a.status, a.status == 304 ? (json_decref(a.body), NULL) : a.body, extra);
}

/* the head is in: an OFREP path, a body within bounds, the environment's token. -1 once replied */
static int check_head(struct fconn *c)
{
	struct api_http *h = &c->conn.http;
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
		log_info("flags", "listener peer=%s environment=%s status=%d (head refused)", c->conn.peer, h->flags_env,
			 st);
		reply(c, st, daemon_flags_auth_body(st),
		      st == 401 ? "WWW-Authenticate: Bearer realm=\"gantry-flags\"\r\n" : "");
		return -1;
	}
	api_conn__timer(&c->conn, FLAGS_TCP_REQUEST_MS);
	return 0;
}

static void on_read(struct api_conn *ac, const char *data, size_t len)
{
	struct fconn *c = (struct fconn *)ac;
	int r = api_http__feed(&c->conn.http, data, len);

	if (r == API_HTTP_ERROR) {
		if (c->conn.http.status == 401)
			reply_error(c, 401, "missing or malformed token: want 'Authorization: Bearer GANTRY_FLAGS_TOKEN'");
		else
			reply_error(c, c->conn.http.status, c->conn.http.err);
		return;
	}
	if (c->conn.http.head_done && !c->checked && check_head(c) < 0)
		return;
	if (c->conn.http.body.len > FLAGS_TCP_MAX_BODY) {
		reply_error(c, 413, "an evaluation context larger than 64 KiB");
		return;
	}
	if (r == API_HTTP_DONE)
		handle(c);
	else
		api_conn__continue(&c->conn);
}

static const struct api_conn_ops fconn_ops = {
	.size = sizeof(struct fconn),
	.rbuf_size = 16384,
	.flood = 2 * FLAGS_TCP_MAX_CONNS, /* past twice the bound: not even an answer */
	.linger_ms = LINGER_MS,
	.linger_max_bytes = LINGER_MAX_BYTES,
	.read = on_read,
	.timeout = on_timeout,
	.fail = fail,
};

static void on_connection(uv_stream_t *server, int status)
{
	struct api_conn *ac;
	if (status < 0 || !(ac = api_conn__accept(&F.conns, server)))
		return;
	if (F.conns.nconns > FLAGS_TCP_MAX_CONNS) {
		log_warn("flags", "listener peer=%s refused: %d connections", ac->peer, F.conns.nconns - 1);
		reply_error((struct fconn *)ac, 503, "too many connections to the flags listener: retry later");
		if (!ac->closing)
			api_conn__read_start(ac); /* to see the client go */
		return;
	}
	api_conn__start(ac, HEAD_MS);
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
	api_conn__close_all(&F.conns);
}
