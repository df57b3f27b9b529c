/*
 * tcp.c — the daemon API over TCP (`gantry serve --api HOST:PORT`).
 *
 * HTTP/1.1 so that curl and any HTTP client can use it: `POST /v1/OP` with
 * the request object (as over HOME/api.sock, without "op") as the body and
 * `Authorization: Bearer TOKEN`; the reply is the socket's JSON object with
 * an HTTP status derived from its "code" (api_http__status). The only
 * identity is the token: a remote caller is never the daemon's OS user
 * (struct caller.remote, checked in identify()). The only request
 * without a token is `GET /v1/ping`, which says {"ok":true,"version":...}
 * and nothing else, for health checks. `GET /metrics` (a token of any
 * role) is a status request answered as Prometheus text (daemon/ctlmetrics.h).
 *
 * One request per connection (Connection: close). Bounds: 64 connections
 * (more get 503), the head as the proxy's (src/http), a 4 MiB body (413),
 * 10 s for the whole request (408), 5 s to write the reply and see the
 * client close. After a reply we shut our side down and read until the
 * client closes (bounded), so that an early error reply is not lost in a
 * TCP reset caused by unread request bytes. That connection handling
 * (accept, the flood bound, write, reply, linger, close) is api/conn.h's,
 * shared with the flags listener (flags_tcp.c); this file keeps the API's
 * protocol: the parser, authentication from the head, the connection
 * pools, the answers.
 *
 * All of it runs on the daemon's loop; api_dispatch() is the same
 * synchronous dispatch the Unix socket uses.
 *
 * Artifacts: `PUT /v1/artifacts/DIGEST` uploads a pack
 * (src/artifact/pack.h). The head is authorized as the operation
 * "artifact_upload" (deployer or higher, audited) before any body byte is
 * read; the body is not buffered but handed, one read (64 KiB at most) at
 * a time, to the unpacker on the thread pool while reading pauses (TCP
 * flow control holds the client), so the loop only parses and copies: on a
 * loaded 2-CPU machine writing files on the loop held it for up to 170 ms
 * per iteration (libuv reads up to 32 times per wakeup), see
 * bench/artifact-upload.sh. The log line of each upload gives the longest
 * step (max_step_us). Bounds: the pack's own (4 GiB of contents), the 10 s
 * for the head, then 30 s at most between two reads (the steps' own time
 * not counted). `HEAD|GET /v1/artifacts/DIGEST` ("artifact_exists", any
 * role) says 200 or 404.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "api/api.h"
#include "api/conn.h"
#include "api/tcp.h"
#include "daemon/gates_flow.h"
#include "daemon/ctlmetrics.h"
#include "daemon/flags.h"
#include "flags/flags.h"
#include "proxy/backend.h"
#include "artifact/pack.h"
#include "util/log.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>

#define HEAD_COPY_MAX (HTTP_MAX_HEAD + 4096) /* past HTTP_MAX_HEAD the parser has failed (431) */
#define LINGER_MS 5000                        /* reply written and client gone within, else closed */
#define LINGER_MAX_BYTES (8 * 1024 * 1024)    /* request bytes discarded after a reply */

/* ---- the request parser (no I/O) ---- */

static int fail(struct api_http *h, int status, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int fail(struct api_http *h, int status, const char *fmt, ...)
{
	va_list ap;
	if (!h->status) {
		h->status = status;
		va_start(ap, fmt);
		vsnprintf(h->err, sizeof(h->err), fmt, ap);
		va_end(ap);
	}
	return API_HTTP_ERROR;
}

static int on_body(void *ctx, const char *at, size_t len)
{
	struct api_http *h = ctx;
	if (h->sink)
		return h->sink(h->sink_ctx, at, len) < 0 ? -1 : 0;
	return hbuf_append(&h->body, at, len) < 0 ? HTTP_BODY_TOO_LARGE : 0;
}

void api_http__init(struct api_http *h)
{
	memset(h, 0, sizeof(*h));
	http_msg_init(&h->msg, HTTP_KIND_REQUEST, NULL);
	h->msg.on_body = on_body;
	h->msg.ctx = h;
	hbuf_init(&h->body, API_TCP_MAX_BODY);
}

void api_http__release(struct api_http *h)
{
	http_msg_release(&h->msg);
	hbuf_release(&h->body);
	free(h->head);
	h->head = NULL;
	h->head_len = 0;
}

/* printable ASCII of s into out (for messages: JSON strings must be UTF-8) */
static const char *printable(const char *s, size_t len, char *out, size_t outsz)
{
	size_t n = MIN(len, outsz - 1);
	for (size_t i = 0; i < n; i++)
		out[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[n] = 0;
	return out;
}

static bool token68(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && (isalnum((unsigned char)s[i]) || (s[i] && strchr("-._~+/", s[i]))))
		i++;
	if (!i)
		return false;
	while (i < len && s[i] == '=')
		i++;
	return i == len;
}

#define ARTIFACTS_PATH "/v1/artifacts/"
#define ARTIFACTS_PATH_LEN (sizeof(ARTIFACTS_PATH) - 1)

/* /v1/artifacts/DIGEST (u, plen: the path): kind, op and digest from it and the method */
static int artifact_path(struct api_http *h, const char *u, size_t plen)
{
	const struct http_msg *m = &h->msg;
	size_t dlen = plen - ARTIFACTS_PATH_LEN;
	int method = m->llp.method;

	h->kind = method == HTTP_PUT ? API_REQ_ARTIFACT_PUT : API_REQ_ARTIFACT_GET;
	strlcpy_g(h->op, method == HTTP_PUT ? "artifact_upload" : "artifact_exists", sizeof(h->op));
	if (method != HTTP_PUT && method != HTTP_GET && method != HTTP_HEAD)
		return fail(h, 405, "method %s not allowed: use PUT, HEAD or GET /v1/artifacts/DIGEST",
			    llhttp_method_name((llhttp_method_t)method));
	if (dlen != 64 || strspn(u + ARTIFACTS_PATH_LEN, "0123456789abcdef") < dlen)
		return fail(h, 400, "/v1/artifacts/DIGEST: DIGEST must be 64 lowercase hex digits");
	memcpy(h->digest, u + ARTIFACTS_PATH_LEN, dlen);
	h->digest[dlen] = 0;
	return API_HTTP_MORE;
}

#define OFREP_PREFIX "/flags/"
#define OFREP_PATH "/ofrep/v1/evaluate/flags"

/* /flags/ENV/ofrep/v1/evaluate/flags[/KEY] (u, plen: the path) */
static int ofrep_path(struct api_http *h, const char *u, size_t plen)
{
	const char *env = u + strlen(OFREP_PREFIX), *end = u + plen, *slash = memchr(env, '/', (size_t)(end - env));
	size_t elen = slash ? (size_t)(slash - env) : 0, rest;
	char shown[96];

	h->kind = API_REQ_OFREP;
	strlcpy_g(h->op, "ofrep_evaluate", sizeof(h->op));
	rest = slash ? (size_t)(end - slash) : 0;
	if (!elen || elen >= sizeof(h->flags_env) || rest < strlen(OFREP_PATH) ||
	    memcmp(slash, OFREP_PATH, strlen(OFREP_PATH)) ||
	    (rest > strlen(OFREP_PATH) && slash[strlen(OFREP_PATH)] != '/'))
		return fail(h, 404, "no such path '%s': feature flags are POST /flags/ENV" OFREP_PATH "[/KEY]",
			    printable(u, plen, shown, sizeof(shown)));
	memcpy(h->flags_env, env, elen);
	h->flags_env[elen] = 0;
	if (rest > strlen(OFREP_PATH)) {
		const char *k = slash + strlen(OFREP_PATH) + 1;
		size_t klen = (size_t)(end - k);
		if (!klen || klen >= sizeof(h->flag_key))
			return fail(h, 404, "no such flag path: KEY must be 1 to %zu bytes", sizeof(h->flag_key) - 1);
		memcpy(h->flag_key, k, klen);
		h->flag_key[klen] = 0;
		if (!flag_name_valid(h->flag_key))
			h->flag_key[0] = '?'; /* answered FLAG_NOT_FOUND: no flag has such a name */
	}
	if (h->msg.llp.method != HTTP_POST)
		return fail(h, 405, "method %s not allowed: use POST",
			    llhttp_method_name((llhttp_method_t)h->msg.llp.method));
	return API_HTTP_MORE;
}

/* the head is complete: path, method, credentials, size */
static int check_head(struct api_http *h)
{
	const struct http_msg *m = &h->msg;
	const char *u = http_span_ptr(m, m->url), *q;
	size_t plen = m->url.len, oplen;
	long long max_body;
	char shown[96];
	int a;

	q = memchr(u, '?', plen);
	if (q)
		plen = (size_t)(q - u);
	oplen = plen > 4 ? plen - 4 : 0;
	if (plen > ARTIFACTS_PATH_LEN && !strncmp(u, ARTIFACTS_PATH, ARTIFACTS_PATH_LEN)) {
		if (artifact_path(h, u, plen) == API_HTTP_ERROR)
			return API_HTTP_ERROR;
	} else if (plen > strlen(OFREP_PREFIX) && !strncmp(u, OFREP_PREFIX, strlen(OFREP_PREFIX))) {
		if (ofrep_path(h, u, plen) == API_HTTP_ERROR)
			return API_HTTP_ERROR;
		a = http_find_header(m, "if-none-match", 0);
		if (a >= 0 && m->hdr[a].value.len < sizeof(h->if_none_match)) {
			memcpy(h->if_none_match, http_span_ptr(m, m->hdr[a].value), m->hdr[a].value.len);
			h->if_none_match[m->hdr[a].value.len] = 0;
		}
	} else if (plen == 8 && !memcmp(u, "/metrics", 8)) {
		/* the controller's Prometheus text: authorized and run as a
		 * status request, then rendered (daemon/ctlmetrics.h) */
		h->metrics = true;
		strlcpy_g(h->op, "status", sizeof(h->op));
		if (m->llp.method != HTTP_GET && m->llp.method != HTTP_HEAD)
			return fail(h, 405, "method %s not allowed: use GET /metrics",
				    llhttp_method_name((llhttp_method_t)m->llp.method));
	} else if (plen <= 4 || strncmp(u, "/v1/", 4) || oplen >= sizeof(h->op) ||
		   strspn(u + 4, "abcdefghijklmnopqrstuvwxyz0123456789_") < oplen) {
		return fail(h, 404, "no such path '%s': the API is POST /v1/OP (see docs/api.md)",
			    printable(u, plen, shown, sizeof(shown)));
	} else {
		memcpy(h->op, u + 4, oplen);
		h->op[oplen] = 0;
		if (m->llp.method == HTTP_GET && !strcmp(h->op, "ping")) {
			h->health = true;
		} else if (m->llp.method != HTTP_POST) {
			return fail(h, 405, "method %s not allowed: use POST /v1/%s",
				    llhttp_method_name((llhttp_method_t)m->llp.method), h->op);
		}
	}
	if (!h->health) {
		const char *v;
		size_t vlen, tlen;
		a = http_find_header(m, "authorization", 0);
		if (a < 0)
			return fail(h, 401, "permission denied: the TCP API needs a token "
				    "(Authorization: Bearer TOKEN; 'gantry user add NAME --role ROLE' prints one)");
		v = http_span_ptr(m, m->hdr[a].value);
		vlen = m->hdr[a].value.len;
		if (http_find_header(m, "authorization", a + 1) >= 0 || vlen < 8 || strncasecmp(v, "bearer ", 7))
			return fail(h, 401, "permission denied: malformed Authorization header (want one "
				    "'Authorization: Bearer TOKEN')");
		v += 7;
		vlen -= 7;
		while (vlen && *v == ' ') {
			v++;
			vlen--;
		}
		tlen = vlen;
		if (!tlen || tlen >= sizeof(h->token) || !token68(v, tlen))
			return fail(h, 401, "permission denied: malformed Authorization header (want one "
				    "'Authorization: Bearer TOKEN')");
		memcpy(h->token, v, tlen);
		h->token[tlen] = 0;
	}
	max_body = h->kind == API_REQ_ARTIFACT_PUT ? ARTIFACT_PACK_MAX_BYTES : API_TCP_MAX_BODY;
	if (m->has_cl && m->content_length > (uint64_t)max_body)
		return fail(h, 413, "request body larger than %lld bytes", max_body);
	a = http_find_header(m, "expect", 0);
	if (a >= 0) {
		if (!http_span_eq(m, m->hdr[a].value, "100-continue"))
			return fail(h, 417, "header 'expect': only 100-continue is understood");
		h->expect_continue = true;
	}
	return API_HTTP_MORE;
}

/* p, n: bytes inside h->msg.base's buffer, right after those fed before */
static int feed_some(struct api_http *h, const char *p, size_t n)
{
	while (!h->done) {
		size_t used = 0;
		int ev;
		/* after the head the parser is paused; a bodiless message then
		 * completes with zero bytes */
		if (!n && !(h->msg.paused && h->msg.head_done))
			break;
		ev = http_msg_feed(&h->msg, p, n, &used);
		if (ev & HTTP_EV_ERROR) {
			if (h->msg.err_status == 413)
				return fail(h, 413, "request body larger than %d bytes", API_TCP_MAX_BODY);
			return fail(h, h->msg.err_status ? h->msg.err_status : 400, "%s",
				    h->msg.err[0] ? h->msg.err : "malformed request");
		}
		p += used;
		n -= used;
		if (ev & HTTP_EV_HEAD) {
			h->head_done = true;
			if (check_head(h) == API_HTTP_ERROR)
				return API_HTTP_ERROR;
		}
		if (ev & HTTP_EV_DONE)
			h->done = true;
		if (!ev && !used)
			break;
	}
	return h->done ? API_HTTP_DONE : API_HTTP_MORE;
}

int api_http__feed(struct api_http *h, const char *data, size_t len)
{
	size_t copy, from;
	int r;

	if (h->status)
		return API_HTTP_ERROR;
	if (h->done)
		return API_HTTP_DONE;
	if (h->head_done) {
		/* the head has been read: body bytes need not stay */
		h->msg.base = data;
		return feed_some(h, data, len);
	}
	/* the head's spans point into h->head, so the head is copied there;
	 * base moves with the buffer, which the parser allows between calls */
	copy = MIN(len, HEAD_COPY_MAX - h->head_len);
	from = h->head_len;
	h->head = xrealloc(h->head, h->head_len + copy + 1);
	memcpy(h->head + h->head_len, data, copy);
	h->head_len += copy;
	h->msg.base = h->head;
	r = feed_some(h, h->head + from, copy);
	if (r != API_HTTP_MORE || copy == len)
		return r;
	if (!h->head_done)
		return fail(h, 431, "head larger than %d bytes", HTTP_MAX_HEAD);
	h->msg.base = data + copy;
	return feed_some(h, data + copy, len - copy);
}

json_t *api_http__request(struct api_http *h)
{
	json_t *req, *op;
	json_error_t jerr;

	if (!h->body.len) {
		req = json_object();
	} else {
		req = json_loadb(h->body.data, h->body.len, 0, &jerr);
		if (!req) {
			fail(h, 400, "request body is not JSON: %s at column %d", jerr.text, jerr.column);
			return NULL;
		}
	}
	if (!json_is_object(req)) {
		json_decref(req);
		fail(h, 400, "request body must be a JSON object");
		return NULL;
	}
	op = json_object_get(req, "op");
	if (op && (!json_is_string(op) || strcmp(json_string_value(op), h->op))) {
		json_decref(req);
		fail(h, 400, "/op: differs from the path /v1/%s (leave it out)", h->op);
		return NULL;
	}
	json_object_set_new(req, "op", json_string(h->op));
	if (h->token[0])
		json_object_set_new(req, "token", json_string(h->token));
	else
		json_object_del(req, "token");
	/* the token's user is the actor, whatever the client claims */
	json_object_del(req, "deployed_by");
	return req;
}

int api_http__status(json_t *reply)
{
	json_t *code;
	if (json_is_true(json_object_get(reply, "ok")))
		return 200;
	if (json_is_true(json_object_get(reply, "retry")))
		return 503;
	code = json_object_get(reply, "code");
	switch (json_is_integer(code) ? (int)json_integer_value(code) : 1) {
	case 2:
		return 400;
	case 3:
		return 403;
	default:
		return 409;
	}
}

/* ---- the listener ---- */

struct tcp_conn {
	struct api_conn conn;        /* first: the connection layer's (api/conn.h); a running unpack step holds a reference */
	struct caller caller;
	bool authed;                 /* its head's token named a user (or it is a ping): the body may be read */
	/* /v1/artifacts/DIGEST, once its head is authorized */
	json_t *art_req;             /* owned: {op, token, digest}, for the audit log */
	struct artifact_unpack *up;  /* owned: the upload being received (PUT) */
	struct hbuf pend;            /* upload bytes of the last read, for the next unpack step */
	uv_work_t work;              /* the unpack step on the thread pool; holds a reference (handles) */
	bool working, body_done, up_created;
	int up_code;                 /* ARTIFACT_UNPACK_* once the unpacker failed */
	struct gerr up_err;
	uint64_t up_bytes, up_max_ns, up_start_ns;
};

struct unpack_drop {
	uv_work_t work;
	struct artifact_unpack *up;  /* owned */
};

static void drop_work(uv_work_t *w)
{
	artifact_unpack_release(((struct unpack_drop *)w)->up);
}

static void drop_done(uv_work_t *w, int status)
{
	struct unpack_drop *d = (struct unpack_drop *)w;
	(void)status;
	free(d->up);
	free(d);
}

/*
 * Drops an upload still being received, never while a step runs (the
 * step's completion calls this again). Its temp directory may hold up to
 * 4 GiB in 200000 files: it is removed on the thread pool, not the loop.
 */
static void upload_release(struct tcp_conn *c)
{
	struct unpack_drop *d;
	if (!c->up || c->working)
		return;
	d = xcalloc(1, sizeof(*d));
	d->up = c->up;
	c->up = NULL;
	if (uv_queue_work(gd->loop, &d->work, drop_work, drop_done) < 0) {
		drop_work(&d->work);
		drop_done(&d->work, 0);
	}
}

static const struct api_conn_ops tcp_ops; /* below, with the callbacks */

static struct {
	uv_tcp_t server;
	bool listening;
	struct api_conn_set conns;   /* of struct tcp_conn */
	int nunauth;                 /* of them, not yet authenticated */
} T = { .conns = { .ops = &tcp_ops } };

static void tcp_init(struct api_conn *ac)
{
	struct tcp_conn *c = (struct tcp_conn *)ac;
	c->caller.uid = (uid_t)-1;
	c->caller.remote = true;
	T.nunauth++;
}

static void tcp_closing(struct api_conn *ac)
{
	if (!((struct tcp_conn *)ac)->authed)
		T.nunauth--;
}

/* the last reference is gone: a uv handle closed, or an unpack step finished */
static void tcp_release(struct api_conn *ac)
{
	struct tcp_conn *c = (struct tcp_conn *)ac;
	upload_release(c);
	json_decref(c->art_req);
	hbuf_release(&c->pend);
}

/*
 * body consumed; extra: more header lines, each ending in \r\n, or "".
 * With ctype, text (consumed, not NULL) is the body as it is, else body's JSON.
 */
static void reply_as(struct tcp_conn *c, int status, json_t *body, const char *ctype, char *text, const char *extra)
{
	if (!ctype)
		text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!api_conn__replying(&c->conn)) {
		free(text);
		return;
	}
	/* an unfinished upload is dropped at once, not when the client goes
	 * (or when its running step ends) */
	upload_release(c);
	api_conn__reply(&c->conn, status, ctype ? ctype : "application/json", extra, text ? text : "{}", !ctype,
			c->conn.http.msg.llp.method == HTTP_HEAD);
	free(text);
}

static void reply(struct tcp_conn *c, int status, json_t *body, const char *extra)
{
	reply_as(c, status, body, NULL, NULL, extra);
}

static void reply_status(struct tcp_conn *c, int status, const char *msg)
{
	const char *extra = "";
	int code = status == 401 || status == 403 ? 3 : status >= 500 && status != 501 && status != 505 ? 1 : 2;
	if (status == 401)
		extra = "WWW-Authenticate: Bearer realm=\"gantry\"\r\n";
	else if (status == 405 && c->conn.http.metrics)
		extra = "Allow: GET, HEAD\r\n";
	else if (status == 405 && c->conn.http.kind == API_REQ_OFREP)
		extra = "Allow: POST\r\n";
	else if (status == 405 && c->conn.http.kind != API_REQ_OP)
		extra = "Allow: PUT, GET, HEAD\r\n";
	else if (status == 405)
		extra = "Allow: POST\r\n";
	else if (status == 503)
		extra = "Retry-After: 1\r\n";
	reply(c, status, json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "code", code), extra);
}

/* the layer's error answer (api_conn_ops.fail) */
static void fail_conn(struct api_conn *ac, int status, const char *msg)
{
	reply_status((struct tcp_conn *)ac, status, msg);
}

/* the timer ran out before the reply */
static void on_timeout(struct api_conn *ac)
{
	struct tcp_conn *c = (struct tcp_conn *)ac;
	if (c->up)
		reply_status(c, 408, "the upload stalled: no bytes for 30 s");
	else if (!c->authed)
		reply_status(c, 408, "the request head did not arrive within 3 s");
	else
		reply_status(c, 408, "the request did not arrive within 10 s");
}

static void handle_request(struct tcp_conn *c)
{
	struct api_http *h = &c->conn.http;
	json_t *req = api_http__request(h), *resp;
	int status;

	if (!req) {
		reply_status(c, h->status, h->err);
		return;
	}
	if (h->health) {
		json_decref(req);
		reply(c, 200, json_pack("{s:b, s:s}", "ok", 1, "version", GANTRY_VERSION), "");
		return;
	}
	resp = api_dispatch(req, &c->caller);
	json_decref(req);
	if (!resp)
		resp = reply_error(1, "internal error: no reply");
	status = api_http__status(resp);
	if (h->metrics && status == 200) {
		struct hbuf text;
		hbuf_init(&text, 16 * 1024 * 1024);
		if (ctlmetrics_render(resp, &text) < 0) {
			hbuf_release(&text);
			json_decref(resp);
			reply_status(c, 500, "metrics larger than 16 MiB");
			return;
		}
		json_decref(resp);
		reply_as(c, 200, NULL, "text/plain; version=0.0.4; charset=utf-8", hbuf_detach(&text, NULL), "");
		return;
	}
	log_info("api", "tcp peer=%s op=%s status=%d actor=%s", c->caller.user, h->op, status,
		 c->caller.claimed[0] ? c->caller.claimed : "-");
	reply(c, status, resp, status == 503 ? "Retry-After: 1\r\n" : "");
}

/* ---- /flags/ENV/ofrep/v1/evaluate/flags[/KEY] ---- */

static void handle_ofrep(struct tcp_conn *c)
{
	struct api_http *h = &c->conn.http;
	struct ofrep_answer a;
	char extra[160] = "";

	daemon_flags_ofrep(gd, h->flags_env, h->token, h->flag_key[0] ? h->flag_key : NULL, h->body.data,
			   h->body.len, h->if_none_match[0] ? h->if_none_match : NULL, &a);
	if (a.etag[0])
		snprintf(extra, sizeof(extra), "ETag: %s\r\n", a.etag);
	else if (a.status == 401)
		snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer realm=\"gantry-flags\"\r\n");
	log_debug("flags", "ofrep peer=%s environment=%s flag=%s status=%d", c->caller.user, h->flags_env,
		  h->flag_key[0] ? h->flag_key : "*", a.status);
	if (a.status == 304)
		reply_as(c, 304, NULL, "application/json", xstrdup(""), extra);
	else
		reply(c, a.status, a.body, extra);
}

/* ---- /v1/artifacts/DIGEST ---- */

/* the parser's body bytes of one read: kept for the next unpack step */
static int upload_sink(void *ctx, const char *data, size_t len)
{
	struct tcp_conn *c = ctx;
	return hbuf_append(&c->pend, data, len);
}

static void reply_upload_error(struct tcp_conn *c)
{
	int status = c->up_code == ARTIFACT_UNPACK_MISMATCH ? 409 : c->up_code == ARTIFACT_UNPACK_IO ? 500 : 400;
	log_warn("api", "tcp peer=%s op=artifact_upload digest=%s status=%d bytes=%llu: %s", c->caller.user,
		 c->conn.http.digest, status, (unsigned long long)c->up_bytes, c->up_err.msg);
	reply(c, status, reply_error(status == 400 ? 2 : 1, "%s", c->up_err.msg), "");
}

/*
 * Thread pool: the bytes of one read into the unpacker (and the finish
 * after the last). Only c->up, c->pend and the up_* results are touched,
 * and the loop leaves them alone while c->working.
 */
static void upload_work(uv_work_t *w)
{
	struct tcp_conn *c = w->data;
	uint64_t t0 = uv_hrtime();
	int r = 0;
	if (c->pend.len)
		r = artifact_unpack_feed(c->up, c->pend.data, c->pend.len, &c->up_err);
	c->up_bytes += c->pend.len;
	if (!r && c->body_done)
		r = artifact_unpack_finish(c->up, &c->up_created, &c->up_err);
	c->up_code = r;
	c->up_max_ns = MAX(c->up_max_ns, uv_hrtime() - t0);
}

static void upload_succeeded(struct tcp_conn *c)
{
	struct api_http *h = &c->conn.http;
	int status = c->up_created ? 201 : 200;
	json_t *resp = json_pack("{s:b, s:s, s:b, s:I}", "ok", 1, "digest", h->digest, "created", c->up_created,
				 "bytes", (json_int_t)c->up_bytes);
	gates_audit_op(h->op, c->art_req, &c->caller, resp);
	log_info("api", "tcp peer=%s op=artifact_upload digest=%s status=%d bytes=%llu ms=%llu "
		 "max_step_us=%llu actor=%s", c->caller.user, h->digest, status, (unsigned long long)c->up_bytes,
		 (unsigned long long)((uv_hrtime() - c->up_start_ns) / 1000000),
		 (unsigned long long)(c->up_max_ns / 1000), c->caller.claimed);
	reply(c, status, resp, "");
}

static void upload_step_done(uv_work_t *w, int status)
{
	struct tcp_conn *c = w->data;
	c->working = false;
	c->pend.len = 0;
	if (status < 0 && !c->up_code) {
		c->up_code = ARTIFACT_UNPACK_IO;
		gerr_set(&c->up_err, "artifact upload: %s", uv_strerror(status));
	}
	if (c->conn.closing || c->conn.replied) {
		upload_release(c);
	} else if (c->up_code) {
		reply_upload_error(c);
	} else if (c->body_done) {
		upload_succeeded(c);
	} else if (api_conn__read_start(&c->conn) < 0) {
		api_conn__close(&c->conn);
	} else {
		api_conn__timer(&c->conn, API_TCP_UPLOAD_IDLE_MS);
	}
	api_conn__unref(&c->conn);
}

/*
 * What a read brought to an upload: the unpacker gets it on the thread
 * pool while reading pauses (the client waits in TCP's flow control), so
 * the loop never writes artifact files. r: api_http__feed's result.
 */
static void upload_read(struct tcp_conn *c, int r)
{
	if (r == API_HTTP_ERROR) {
		reply_status(c, c->conn.http.status, c->conn.http.err);
		return;
	}
	if (r == API_HTTP_DONE)
		c->body_done = true;
	api_conn__continue(&c->conn);
	if (!c->pend.len && !c->body_done) {
		api_conn__timer(&c->conn, API_TCP_UPLOAD_IDLE_MS);
		return;
	}
	uv_read_stop((uv_stream_t *)&c->conn.tcp);
	uv_timer_stop(&c->conn.timer);
	c->work.data = c;
	c->working = true;
	api_conn__ref(&c->conn);
	if (uv_queue_work(gd->loop, &c->work, upload_work, upload_step_done) < 0) {
		c->working = false;
		api_conn__unref(&c->conn); /* not the last: the handles hold theirs */
		c->up_code = ARTIFACT_UNPACK_IO;
		gerr_set(&c->up_err, "artifact upload: cannot queue work");
		reply_upload_error(c);
	}
}

/*
 * The head of an artifact request is in: authorize it now, before any of
 * a possibly large body is read; for PUT start the unpacker. -1 once
 * replied.
 */
static int artifact_start(struct tcp_conn *c)
{
	struct api_http *h = &c->conn.http;
	bool put = h->kind == API_REQ_ARTIFACT_PUT;
	json_t *deny;
	struct identity who;

	c->art_req = json_pack("{s:s, s:s, s:s}", "op", h->op, "token", h->token, "digest", h->digest);
	/* an upload changes no desired state: it may arrive while serve restores */
	if (put && gd->shutting_down) {
		reply(c, 409, reply_error(1, "gantry serve is shutting down"), "");
		return -1;
	}
	/* deployer or higher for an upload (a mutating op), any role to look */
	deny = api_authorize(h->op, c->art_req, &c->caller, &who);
	if (deny && put)
		gates_audit_refusal(h->op, c->art_req, &c->caller, deny);
	if (deny) {
		int status = api_http__status(deny);
		log_info("api", "tcp peer=%s op=%s status=%d actor=%s", c->caller.user, h->op, status,
			 c->caller.claimed[0] ? c->caller.claimed : "-");
		reply(c, status, deny, "");
		return -1;
	}
	if (!put)
		return 0;
	c->up = xcalloc(1, sizeof(*c->up));
	c->up_code = artifact_unpack_init(c->up, gd->home, h->digest, &c->up_err);
	if (c->up_code) {
		reply_upload_error(c);
		return -1;
	}
	c->up_start_ns = uv_hrtime();
	/* body bytes the parser read with the head, then every later read's */
	hbuf_init(&c->pend, API_TCP_MAX_BODY);
	hbuf_append(&c->pend, h->body.data, h->body.len);
	h->body.len = 0;
	h->sink = upload_sink;
	h->sink_ctx = c;
	log_info("api", "tcp peer=%s op=artifact_upload digest=%s actor=%s receiving", c->caller.user, h->digest,
		 c->caller.claimed);
	return 0;
}

/* HEAD|GET /v1/artifacts/DIGEST is in */
static void artifact_exists(struct tcp_conn *c)
{
	char *path = xasprintf("%s/artifacts/%s", gd->home, c->conn.http.digest);
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		reply(c, 200, json_pack("{s:b, s:s}", "ok", 1, "digest", c->conn.http.digest), "");
	else
		reply(c, 404, reply_error(1, "no artifact %s on the server", c->conn.http.digest), "");
	free(path);
}

/*
 * The head is in: its token must name a user before any body is read (a bad
 * token's 4 MiB body is never taken in). Authenticated, the connection
 * leaves the small unauthenticated pool for the main one, and gets the
 * whole request's time. -1 once replied.
 */
static int authenticate(struct tcp_conn *c)
{
	struct identity who;
	json_t *req, *deny = NULL;
	if (c->conn.http.kind == API_REQ_OP && !strcmp(c->conn.http.op, "ping")) {
		c->authed = true; /* the one operation without a token */
	} else if (c->conn.http.kind == API_REQ_OFREP) {
		/* an environment's evaluation token, checked from the head: a bad
		 * one is answered before any body byte is read */
		int st = daemon_flags_auth(gd, c->conn.http.flags_env, c->conn.http.token);
		if (st) {
			log_info("api", "tcp peer=%s op=ofrep_evaluate status=%d (head refused)", c->caller.user, st);
			reply(c, st, daemon_flags_auth_body(st), "WWW-Authenticate: Bearer realm=\"gantry-flags\"\r\n");
			return -1;
		}
		c->authed = true;
	} else {
		req = json_pack("{s:s}", "token", c->conn.http.token);
		if (gates_identify(req, &c->caller, &who, &deny) < 0) {
			int status = api_http__status(deny);
			log_info("api", "tcp peer=%s op=%s status=%d (head refused)", c->caller.user, c->conn.http.op, status);
			reply(c, status, deny, "");
			json_decref(req);
			return -1;
		}
		json_decref(req);
		c->authed = true;
	}
	T.nunauth--;
	if (T.conns.nconns - T.nunauth > API_TCP_MAX_CONNS) {
		log_warn("api", "tcp peer=%s refused: %d authenticated connections", c->caller.user,
			 T.conns.nconns - T.nunauth - 1);
		reply_status(c, 503, "too many connections to the API: retry later");
		return -1;
	}
	api_conn__timer(&c->conn, API_TCP_REQUEST_MS);
	return 0;
}

/* the unauthenticated connection that waited longest (the list is newest first), or NULL */
static struct tcp_conn *oldest_unauth(const struct tcp_conn *but)
{
	struct tcp_conn *found = NULL;
	for (struct api_conn *ac = T.conns.conns; ac; ac = ac->next) {
		struct tcp_conn *c = (struct tcp_conn *)ac;
		if (!c->authed && !ac->replied && c != but)
			found = c;
	}
	return found;
}

static void on_read(struct api_conn *ac, const char *data, size_t len)
{
	struct tcp_conn *c = (struct tcp_conn *)ac;
	struct api_http *h = &c->conn.http;
	int r = api_http__feed(h, data, len);

	if (r == API_HTTP_ERROR && h->op[0] && h->status == 401)
		log_info("api", "tcp peer=%s op=%s status=401", c->caller.user, h->op);
	if (r != API_HTTP_ERROR && h->head_done && !c->authed && authenticate(c) < 0)
		return;
	if (r != API_HTTP_ERROR && h->head_done && h->kind != API_REQ_OP && h->kind != API_REQ_OFREP && !c->art_req &&
	    artifact_start(c) < 0)
		return;
	if (c->up) {
		upload_read(c, r);
		return;
	}
	if (r == API_HTTP_MORE && h->head_done && h->kind == API_REQ_OP && !api_op_known(h->op))
		r = fail(h, 404, "no such operation '%s' (see docs/api.md)", h->op);
	if (r == API_HTTP_ERROR) {
		reply_status(c, h->status, h->err);
	} else if (r == API_HTTP_DONE && h->kind == API_REQ_OFREP) {
		handle_ofrep(c);
	} else if (r == API_HTTP_DONE && h->kind != API_REQ_OP) {
		artifact_exists(c);
	} else if (r == API_HTTP_DONE) {
		if (!api_op_known(h->op)) {
			fail(h, 404, "no such operation '%s' (see docs/api.md)", h->op);
			reply_status(c, h->status, h->err);
		} else {
			handle_request(c);
		}
	} else {
		api_conn__continue(&c->conn);
	}
}

static const struct api_conn_ops tcp_ops = {
	.size = sizeof(struct tcp_conn),
	.rbuf_size = 65536,
	.flood = 2 * API_TCP_MAX_CONNS + API_TCP_MAX_UNAUTH,
	.linger_ms = LINGER_MS,
	.linger_max_bytes = LINGER_MAX_BYTES,
	.init = tcp_init,
	.closing = tcp_closing,
	.release = tcp_release,
	.read = on_read,
	.timeout = on_timeout,
	.fail = fail_conn,
};

static void on_connection(uv_stream_t *server, int status)
{
	struct tcp_conn *c;
	if (status < 0 || !(c = (struct tcp_conn *)api_conn__accept(&T.conns, server)))
		return;
	/* "tcp:127.0.0.1:53122", "tcp:[::1]:53122": the caller's name in logs and replies */
	strlcpy_g(c->caller.user, c->conn.peer, sizeof(c->caller.user));
	if (T.nunauth > API_TCP_MAX_UNAUTH) {
		/* idle connections that never say who they are cannot keep a token
		 * out: the one that waited longest makes room */
		struct tcp_conn *old = oldest_unauth(c);
		if (old) {
			log_info("api", "tcp peer=%s dropped: %d connections not authenticated", old->caller.user,
				 T.nunauth);
			api_conn__close(&old->conn);
		}
	}
	api_conn__start(&c->conn, API_TCP_HEAD_MS);
}

int api_tcp_check_addr(const char *addr, struct gerr *err)
{
	struct sockaddr_storage sa;
	if (!addr || backend_parse_addr(addr, &sa) < 0)
		return gerr_set(err, "--api: invalid address '%s' (want HOST:PORT with an IPv4 address, or [IPv6]:PORT)",
				addr ? addr : "");
	return 0;
}

static bool loopback(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

int api_tcp_listen(const char *addr, struct gerr *err)
{
	struct sockaddr_storage sa;
	int r;

	if (api_tcp_check_addr(addr, err) < 0)
		return -1;
	backend_parse_addr(addr, &sa);
	uv_tcp_init(gd->loop, &T.server);
	r = uv_tcp_bind(&T.server, (const struct sockaddr *)&sa, 0);
	if (!r)
		r = uv_listen((uv_stream_t *)&T.server, 128, on_connection);
	if (r < 0) {
		uv_close((uv_handle_t *)&T.server, NULL);
		return gerr_set(err, "--api %s: cannot listen: %s", addr, uv_strerror(r));
	}
	T.listening = true;
	if (!loopback(&sa)) {
		fprintf(stderr, "warning: --api %s is not a loopback address: the API is plain HTTP, so tokens "
			"cross the network in clear; put a TLS terminator in front of it\n", addr);
		log_warn("api", "tcp listen=%s not loopback: plain HTTP", addr);
	}
	log_info("api", "tcp listen=%s", addr);
	return 0;
}

/* the listening socket's descriptor, -1 when not listening */
int api_tcp_fd(void)
{
	uv_os_fd_t fd;
	if (!T.listening || uv_is_closing((uv_handle_t *)&T.server) || uv_fileno((uv_handle_t *)&T.server, &fd) < 0)
		return -1;
	return fd;
}

/* stops accepting (the listener closes; connections open stay) */
void api_tcp_pause(void)
{
	if (T.listening && !uv_is_closing((uv_handle_t *)&T.server))
		uv_close((uv_handle_t *)&T.server, NULL);
	T.listening = false;
}

/* listens on fd, a listening TCP socket handed over (owned from now on) */
int api_tcp_listen_fd(int fd, struct gerr *err)
{
	int r;
	uv_tcp_init(gd->loop, &T.server);
	r = uv_tcp_open(&T.server, fd);
	if (!r)
		r = uv_listen((uv_stream_t *)&T.server, 128, on_connection);
	if (r < 0) {
		uv_close((uv_handle_t *)&T.server, NULL);
		return gerr_set(err, "--api: the listener handed over (fd %d): %s", fd, uv_strerror(r));
	}
	T.listening = true;
	return 0;
}

void api_tcp_close(void)
{
	if (T.listening && !uv_is_closing((uv_handle_t *)&T.server))
		uv_close((uv_handle_t *)&T.server, NULL);
	T.listening = false;
	api_conn__close_all(&T.conns);
}
