/*
 * admin.c — the admin listener (--admin) on the control thread: /healthz,
 * /status, /windows and /metrics (rendered by metrics.c), the bearer token
 * of --admin-token-file, and the bounds against clients that hold it (one
 * deadline per connection, ADMIN_MAX_CONNS at once).
 */
#include "common.h"
#include "proxy/proxy-int.h"
#include "proxy/metrics.h"
#include "util/log.h"
#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <time.h>

static void admin_close_cb(uv_handle_t *h)
{
	struct admin_conn *a = h->data;
	out_release(&a->out);
	http_msg_release(&a->msg);
	hbuf_release(&a->body);
	free(a);
}

static void admin_close(struct admin_conn *a)
{
	if (a->closing)
		return;
	a->closing = true;
	a->px->nadmins--;
	if (a->in_body)
		a->px->nputs--;
	a->in_body = false;
	DLIST_UNLINK(a->px->admins, a, next, prev);
	uv_close((uv_handle_t *)&a->tcp, admin_close_cb);
}

void proxy__admin_close_all(struct proxy *px)
{
	while (px->admins)
		admin_close(px->admins);
}

static void admin_out_done(struct out *o, int status)
{
	struct admin_conn *a = container_of(o, struct admin_conn, out);
	if (status < 0 || proxy__out_flush(o) < 0 || !out_pending(o))
		admin_close(a);
	else /* a reader that keeps reading keeps its connection */
		a->deadline = uv_now(&a->px->loop) + a->px->cfg.header_timeout_ms;
}

static void admin_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct admin_conn *a = h->data;
	if (a->in_body) /* the head is read: body bytes go to a->body as they are parsed */
		a->len = 0;
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
	if (proxy__out_flush(&a->out) < 0 || !out_pending(&a->out))
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

/*
 * The JSON pointer (RFC 6901) of a routes error: its message starts with
 * the path route.c names ("routes[1].revisions[0].weight: ..." ->
 * "/routes/1/revisions/0/weight"); "" for the document (syntax errors,
 * "PUT /routes:1:12: ...", "(top level)", a message without a path).
 */
void proxy__err_pointer(const char *msg, char *out, size_t n)
{
	size_t plen = strcspn(msg, ":"), o = 0;

	if (!n)
		return;
	out[0] = 0;
	if (!msg[plen] || !plen)
		return;
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (!(isalnum(c) || c == '_' || c == '.' || c == '[' || c == ']'))
			return; /* not a path: "PUT /routes:1:2", "(top level)" */
	}
	for (size_t i = 0; i < plen && o + 2 < n; i++) {
		char c = msg[i];
		if (c == ']')
			continue;
		if (c == '.' || c == '[' || i == 0) {
			out[o++] = '/';
			if (c == '.' || c == '[')
				continue;
		}
		out[o++] = c;
	}
	out[o] = 0;
}

static void answer_json(struct admin_conn *a, int status, json_t *doc)
{
	struct hbuf body;
	char *text = json_dumps(doc, JSON_COMPACT);
	hbuf_init(&body, 1u << 16);
	hbuf_addstr(&body, text ? text : "{}");
	hbuf_addstr(&body, "\n");
	free(text);
	json_decref(doc);
	admin_answer(a, status, "application/json", &body);
	hbuf_release(&body);
}

static void answer_text(struct admin_conn *a, int status, const char *text)
{
	struct hbuf body;
	hbuf_init(&body, 4096);
	hbuf_addstr(&body, text);
	admin_answer(a, status, "text/plain", &body);
	hbuf_release(&body);
}

static int put_body(void *ctx, const char *at, size_t len)
{
	struct admin_conn *a = ctx;
	return hbuf_append(&a->body, at, len) < 0 ? HTTP_BODY_TOO_LARGE : 0;
}

/* PUT /routes, its body read: parse, check, write the file, install */
static void routes_put(struct admin_conn *a)
{
	struct proxy *px = a->px;
	struct gerr err = { { 0 } };
	struct route_table *t;
	char ptr[256];
	int r;

	a->in_body = false;
	px->nputs--;
	t = route_table_parse(a->body.data ? a->body.data : "", a->body.len, "PUT /routes", &err);
	if (!t) {
		proxy__err_pointer(err.msg, ptr, sizeof(ptr));
		log_warn("proxy", "put=refused status=400 keeping_generation=%lld pointer=\"%s\"",
			 (long long)px->table->generation, ptr);
		answer_json(a, 400, json_pack("{s:s, s:s, s:I}", "error", err.msg, "pointer", ptr, "generation",
					      (json_int_t)px->table->generation));
		return;
	}
	r = proxy__routes_put(px, t, a->body.data, a->body.len, &err);
	if (r == -409) {
		log_warn("proxy", "put=refused status=409 error=\"%s\"", err.msg);
		answer_json(a, 409, json_pack("{s:s, s:I}", "error", err.msg, "generation",
					      (json_int_t)px->table->generation));
	} else if (r < 0) {
		answer_json(a, 500, json_pack("{s:s, s:I}", "error", err.msg, "generation",
					      (json_int_t)px->table->generation));
	} else {
		answer_json(a, 200, json_pack("{s:I, s:I, s:I, s:I}", "generation", (json_int_t)px->table->generation,
					      "routes", (json_int_t)px->table->nroutes, "backends",
					      (json_int_t)proxy__count_backends(px->table), "dropped",
					      (json_int_t)px->table->ndropped));
	}
}

/* after the head of PUT /routes: 0 to read its body, -1 when answered already */
static int routes_put_head(struct admin_conn *a)
{
	struct proxy *px = a->px;
	int i;

	if (!a->msg.chunked && !a->msg.has_cl) {
		answer_text(a, 411, "PUT /routes needs a Content-Length (or chunked) body: the route table\n");
		return -1;
	}
	if (a->msg.has_cl && a->msg.content_length > ADMIN_MAX_BODY) {
		answer_text(a, 413, "the route table is larger than 16 MiB\n");
		return -1;
	}
	if (px->nputs >= ADMIN_MAX_PUTS) {
		answer_text(a, 503, "busy: another PUT /routes is being read; try again\n");
		return -1;
	}
	px->nputs++;
	a->in_body = true;
	hbuf_init(&a->body, ADMIN_MAX_BODY);
	a->msg.on_body = put_body;
	a->msg.ctx = a;
	/* the whole body within --body-timeout of the head: a slow sender is closed by the sweep */
	a->deadline = uv_now(&px->loop) + px->cfg.body_timeout_ms;
	i = http_find_header(&a->msg, "expect", 0);
	if (i >= 0 && a->msg.hdr[i].value.len == 12 &&
	    !strncasecmp(http_span_ptr(&a->msg, a->msg.hdr[i].value), "100-continue", 12)) {
		hbuf_addstr(&a->out.q, "HTTP/1.1 100 Continue\r\n\r\n");
		if (proxy__out_flush(&a->out) < 0) {
			admin_close(a);
			return -1;
		}
	}
	return 0;
}

/* body bytes of PUT /routes (a->buf[0..n)) */
static void body_feed(struct admin_conn *a, const char *p, size_t n)
{
	size_t used;
	int ev = n ? http_msg_feed(&a->msg, p, n, &used) : 0;

	if (ev & HTTP_EV_ERROR) {
		uv_read_stop((uv_stream_t *)&a->tcp);
		a->in_body = false;
		a->px->nputs--;
		answer_text(a, a->msg.err_status, a->msg.err);
		return;
	}
	if (ev & HTTP_EV_DONE) {
		uv_read_stop((uv_stream_t *)&a->tcp);
		routes_put(a);
	}
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
	if (a->in_body) {
		body_feed(a, a->buf, (size_t)nread);
		return;
	}
	ev = http_msg_feed(&a->msg, a->buf + a->len, (size_t)nread, &used);
	a->len += (size_t)nread;
	if (!(ev & (HTTP_EV_HEAD | HTTP_EV_ERROR))) {
		if (a->len >= sizeof(a->buf)) { /* the head does not fit */
			uv_read_stop(s);
			answer_text(a, 431, "request head too large\n");
		}
		return;
	}
	if (!(ev & HTTP_EV_ERROR) && a->msg.llp.method == HTTP_PUT && http_span_eq(&a->msg, a->msg.url, "/routes")) {
		size_t head_end = a->len - (size_t)nread + used;
		if (!admin_authorized(a)) {
			uv_read_stop(s);
			answer_text(a, 401, "unauthorized: send Authorization: Bearer TOKEN (--admin-token-file)\n");
		} else if (routes_put_head(a) == 0) {
			/* the body bytes that came with the head */
			body_feed(a, a->buf + head_end, a->len - head_end);
		} else {
			uv_read_stop(s);
		}
		return;
	}
	uv_read_stop(s);
	hbuf_init(&body, 16u << 20);
	if (ev & HTTP_EV_ERROR) {
		hbuf_printf(&body, "%s\n", a->msg.err);
		admin_answer(a, a->msg.err_status, "text/plain", &body);
	} else if (http_span_eq(&a->msg, a->msg.url, "/routes")) {
		hbuf_addstr(&body, "only PUT (the route table, JSON)\n");
		admin_answer(a, 405, "text/plain", &body);
	} else if (a->msg.llp.method != HTTP_GET && a->msg.llp.method != HTTP_HEAD) {
		hbuf_addstr(&body, "only GET\n");
		admin_answer(a, 405, "text/plain", &body);
	} else if (http_span_eq(&a->msg, a->msg.url, "/healthz")) {
		/* no token: liveness probes, and it says nothing */
		if (px->awaiting) {
			hbuf_addstr(&body, "waiting for routes\n");
			admin_answer(a, 503, "text/plain", &body);
		} else if (px->in_grace) {
			hbuf_addstr(&body, "stopping\n");
			admin_answer(a, 503, "text/plain", &body);
		} else {
			hbuf_addstr(&body, "ok\n");
			admin_answer(a, 200, "text/plain", &body);
		}
	} else if (!admin_authorized(a)) {
		hbuf_addstr(&body, "unauthorized: send Authorization: Bearer TOKEN (--admin-token-file)\n");
		admin_answer(a, 401, "text/plain", &body);
	} else if (http_span_eq(&a->msg, a->msg.url, "/status")) {
		struct hbuf st;
		hbuf_init(&st, 16u << 20);
		status_render(&st, (long)getpid(), acked_generation(px), px->table, uv_now(&px->loop));
		/* one more key first: whether a table was pushed yet (--await-routes) */
		hbuf_printf(&body, "{\"awaiting_routes\":%s,", px->awaiting ? "true" : "false");
		if (st.len > 1)
			hbuf_append(&body, st.data + 1, st.len - 1);
		hbuf_release(&st);
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
		hbuf_addstr(&body, "not found (try /healthz, /status, /windows, /metrics, PUT /routes)\n");
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
	DLIST_PUSH(px->admins, a, next, prev);
	if (uv_accept(server, (uv_stream_t *)&a->tcp) < 0) {
		admin_close(a);
		return;
	}
	a->out.ready = true;
	uv_read_start((uv_stream_t *)&a->tcp, admin_alloc, admin_read_cb);
}

/* --admin: listen, and close connections past their deadline */
int proxy__admin_listen(struct proxy *px, struct gerr *err)
{
	uint64_t tick = MAX(10, MIN(1000, px->cfg.header_timeout_ms / 4));
	struct sockaddr_storage sa;
	int r;
	if (proxy__parse_listen(px->cfg.admin, &sa) < 0)
		return gerr_set(err, "--admin: '%s' is not IP:PORT", px->cfg.admin) - 1;
	uv_tcp_init(&px->loop, &px->admin);
	px->has_admin = true;
	px->admin.data = px;
	if (px->cfg.admin_fd > 0) {
		int v = 0;
		socklen_t vl = sizeof(v);
		if (getsockopt(px->cfg.admin_fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || !v)
			return gerr_set(err, "--admin-fd %d: not a listening socket", px->cfg.admin_fd) - 1;
		if (fcntl(px->cfg.admin_fd, F_SETFD, FD_CLOEXEC) < 0)
			return gerr_set(err, "--admin-fd %d: %s", px->cfg.admin_fd, strerror(errno)) - 1;
		r = uv_tcp_open(&px->admin, px->cfg.admin_fd);
	} else {
		r = uv_tcp_bind(&px->admin, (const struct sockaddr *)&sa, 0);
	}
	if (!r)
		r = uv_listen((uv_stream_t *)&px->admin, 128, on_admin_connection);
	if (r < 0)
		return gerr_set(err, "--admin %s: %s", px->cfg.admin, uv_strerror(r));
	uv_timer_start(&px->admin_sweep, on_admin_sweep, tick, tick);
	uv_unref((uv_handle_t *)&px->admin_sweep);
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
int proxy__admin_check(struct proxy *px, const struct proxy_config *cfg, struct gerr *err)
{
	struct sockaddr_storage sa;
	char buf[ADMIN_TOKEN_MAX + 2];
	size_t n = 0;
	FILE *f;

	if (cfg->admin && proxy__parse_listen(cfg->admin, &sa) < 0)
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
