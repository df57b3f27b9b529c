/*
 * test_client.c — the client side of the request path (src/proxy/client.c
 * and heads.c), through a proxy run in-process in front of a scripted
 * upstream: what a client sends, what the upstream gets, what the client
 * gets back.
 */
#include "px_test.h"

static const char *routes_one(struct pt_up *up)
{
	static char json[512];
	snprintf(json, sizeof(json),
		 "{\"routes\": [{\"hosts\": [\"app.test\"], \"service\": \"client\", \"environment\": \"t\","
		 " \"revisions\": [{\"revision\": \"v1\", \"weight\": 100,"
		 " \"backends\": [{\"address\": \"127.0.0.1:%u\"}]}]}]}",
		 up->port);
	return json;
}

static void assert_head_has(const char *head, const char *line)
{
	if (!strstr(head, line))
		fail_msg("upstream head lacks '%s':\n%s", line, head);
}

static void assert_head_lacks(const char *head, const char *what)
{
	if (strcasestr(head, what))
		fail_msg("upstream head has '%s':\n%s", what, head);
}

/* a request goes upstream with the proxy's X-Forwarded-* and Via, without hop-by-hop headers */
static void test_forwarded(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_conn *c;
	struct pt_resp r;
	char head[16384], v[128];
	(void)state;

	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET /p?q=1 HTTP/1.1\r\nHost: App.Test:80\r\nX-Forwarded-For: 6.6.6.6\r\n"
		   "X-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: https\r\nVia: 1.0 front\r\n"
		   "Connection: keep-alive, x-drop\r\nX-Drop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
		   "X-Keep: yes\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "a");
	assert_non_null(pt_hdr(r.head, "x-upstream", v, sizeof(v)));
	assert_string_equal(v, "a");

	pt_up_head(up, head, sizeof(head));
	assert_true(!strncmp(head, "GET /p?q=1 HTTP/1.1\r\n", 21));
	assert_head_has(head, "\r\nHost: App.Test:80\r\n");
	assert_head_has(head, "\r\nX-Keep: yes\r\n");
	/* made up by the client: replaced */
	assert_head_has(head, "\r\nX-Forwarded-For: 127.0.0.1\r\n");
	assert_head_has(head, "\r\nX-Forwarded-Proto: http\r\n");
	assert_head_has(head, "\r\nX-Forwarded-Host: App.Test:80\r\n");
	assert_head_lacks(head, "6.6.6.6");
	assert_head_lacks(head, "evil.test");
	assert_head_has(head, "\r\nVia: 1.0 front, 1.1 gantry\r\n");
	assert_non_null(pt_hdr(head, "x-request-id", v, sizeof(v)));
	assert_int_equal(strlen(v), 32);
	assert_int_equal(strspn(v, "0123456789abcdef"), 32);
	/* hop-by-hop, and what Connection names */
	assert_head_lacks(head, "x-drop");
	assert_head_lacks(head, "keep-alive");
	assert_head_lacks(head, "\r\nTE:");
	assert_head_lacks(head, "\r\nConnection:");
}

/* from a trusted proxy the X-Forwarded-* it sent are believed; an X-Request-Id is kept */
static void test_forwarded_trusted(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_conn *c;
	struct pt_resp r;
	char head[16384];
	(void)state;

	pt_proxy.cfg.trusted_proxies = "127.0.0.0/8";
	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\n"
		   "X-Forwarded-Proto: https\r\nX-Forwarded-Host: www.example\r\nX-Request-Id: req-42\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	pt_up_head(up, head, sizeof(head));
	assert_head_has(head, "\r\nX-Forwarded-For: 6.6.6.6, 127.0.0.1\r\n");
	assert_head_has(head, "\r\nX-Forwarded-Proto: https\r\n");
	assert_head_has(head, "\r\nX-Forwarded-Host: www.example\r\n");
	assert_head_has(head, "\r\nX-Request-Id: req-42\r\n");
	assert_head_lacks(head, "X-Forwarded-Proto: http\r\n");
}

/* --forward-headers none: the client's own headers pass as they came, none is added */
static void test_forward_headers_none(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_conn *c;
	struct pt_resp r;
	char head[16384];
	(void)state;

	pt_proxy.cfg.forward_headers = 0;
	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	pt_up_head(up, head, sizeof(head));
	assert_head_has(head, "\r\nX-Forwarded-For: 6.6.6.6\r\n");
	assert_head_lacks(head, "127.0.0.1");
	assert_head_lacks(head, "\r\nVia:");
	assert_head_lacks(head, "\r\nX-Request-Id:");
	assert_head_lacks(head, "\r\nX-Forwarded-Proto:");
}

/*
 * Malformed or smuggling requests get 400 and a close, and nothing of them
 * reaches the upstream: the next good request is the first it sees.
 */
static void test_malformed_400(void **state)
{
	static const char *bad[] = {
		"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"GET / HTTP/1.1\r\nX-No-Host: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nHost: app.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nX-Fold: a\r\n b\r\n\r\n",
		"GET http://app.test/ HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : app.test\r\n\r\n",
	};
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_resp r;
	char head[16384];
	(void)state;

	assert_int_equal(pt_px_start(routes_one(up)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct pt_conn *c = pt_connect(pt_proxy.port);
		pt_send(c, bad[i]);
		if (pt_read_resp(c, &r) < 0)
			fail_msg("no answer to request %zu", i);
		if (r.status != 400)
			fail_msg("request %zu: status %d, not 400", i, r.status);
		assert_true(pt_eof(c));
		pt_close(c);
	}
	{
		struct pt_conn *c = pt_connect(pt_proxy.port);
		pt_send(c, "GET /good HTTP/1.1\r\nHost: app.test\r\n\r\n");
		assert_int_equal(pt_read_resp(c, &r), 0);
		assert_int_equal(r.status, 200);
	}
	assert_int_equal(pt_up_count(up, &up->requests), 1);
	pt_up_head(up, head, sizeof(head));
	assert_true(!strncmp(head, "GET /good ", 10));
}

/* a head over 64 KiB, or more than 100 header lines: 431, nothing upstream */
static void test_head_too_large_431(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_resp r;
	struct hbuf b;
	(void)state;

	assert_int_equal(pt_px_start(routes_one(up)), 0);
	hbuf_init(&b, 1u << 20);
	hbuf_addstr(&b, "GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: ");
	for (int i = 0; i < 70 * 1024; i++)
		hbuf_append(&b, "a", 1);
	hbuf_addstr(&b, "\r\n\r\n");
	{
		struct pt_conn *c = pt_connect(pt_proxy.port);
		pt_write_all(c->fd, b.data, b.len);
		assert_int_equal(pt_read_resp(c, &r), 0);
		assert_int_equal(r.status, 431);
		assert_true(pt_eof(c));
	}
	b.len = 0;
	hbuf_addstr(&b, "GET / HTTP/1.1\r\nHost: app.test\r\n");
	for (int i = 0; i < 101; i++)
		hbuf_printf(&b, "X-H%d: %d\r\n", i, i);
	hbuf_addstr(&b, "\r\n");
	{
		struct pt_conn *c = pt_connect(pt_proxy.port);
		pt_write_all(c->fd, b.data, b.len);
		assert_int_equal(pt_read_resp(c, &r), 0);
		assert_int_equal(r.status, 431);
	}
	hbuf_release(&b);
	assert_int_equal(pt_up_count(up, &up->conns), 0);
	assert_int_equal(pt_up_count(up, &up->requests), 0);
}

/* a head that does not arrive within --header-timeout: 408 and a close */
static void test_slow_head_408(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_conn *c;
	struct pt_resp r;
	char v[64];
	(void)state;

	pt_proxy.cfg.header_timeout_ms = 200;
	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET / HTTP/1.1\r\nHost: app");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 408);
	assert_non_null(pt_hdr(r.head, "connection", v, sizeof(v)));
	assert_string_equal(v, "close");
	assert_true(pt_eof(c));
	assert_int_equal(pt_up_count(up, &up->requests), 0);
}

/* a connection that sends nothing is closed without an answer */
static void test_silent_connection_closed(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_conn *c;
	(void)state;

	pt_proxy.cfg.header_timeout_ms = 200;
	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	assert_true(pt_eof(c)); /* EOF, and not one byte before it */
}

/* a body that stops arriving: 408 after --body-timeout, counted as the client's */
static void test_slow_body_408(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_HANG);
	struct pt_conn *c;
	struct pt_resp r;
	(void)state;

	pt_proxy.cfg.body_timeout_ms = 200;
	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10\r\n\r\nabc");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 408);
	assert_non_null(strstr(r.body, "body"));
}

/* unknown host: 404; a declared body over --max-body: 413; neither reaches the upstream */
static void test_404_and_413(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_conn *c;
	struct pt_resp r;
	(void)state;

	pt_proxy.cfg.max_body = 10;
	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "no route for this host\n");
	/* a 404 to a request without a body keeps the connection */
	pt_send(c, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 11\r\n\r\nhello world");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 413);
	assert_int_equal(pt_up_count(up, &up->conns), 0);
}

/* keep-alive: two requests on one connection, then pipelined ones answered in order */
static void test_keepalive_and_pipelining(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_conn *c;
	struct pt_resp r;
	char head[16384];
	(void)state;

	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	for (int i = 0; i < 2; i++) {
		pt_send(c, "GET /k HTTP/1.1\r\nHost: app.test\r\n\r\n");
		assert_int_equal(pt_read_resp(c, &r), 0);
		assert_int_equal(r.status, 200);
	}
	pt_send(c, "GET /p1 HTTP/1.1\r\nHost: app.test\r\n\r\n"
		   "HEAD /p2 HTTP/1.1\r\nHost: app.test\r\n\r\n"
		   "GET /p3 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "a");
	assert_int_equal(pt_read_resp_ex(c, &r, true), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "a");
	assert_true(pt_eof(c));
	assert_int_equal(pt_up_count(up, &up->requests), 5);
	pt_up_head(up, head, sizeof(head));
	assert_true(!strncmp(head, "GET /p3 ", 8));
}

/* HTTP/1.0: a close-delimited upstream body reaches it close-delimited; HTTP/1.1 gets it chunked */
static void test_close_delimited_body(void **state)
{
	struct pt_up *up = pt_up_start("body-until-close", UP_CLOSE_DELIM);
	struct pt_conn *c;
	struct pt_resp r;
	char v[64];
	(void)state;

	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(pt_hdr(r.head, "transfer-encoding", v, sizeof(v)));
	assert_string_equal(v, "chunked");
	assert_string_equal(r.body, "body-until-close");

	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET / HTTP/1.0\r\nHost: app.test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_null(pt_hdr(r.head, "transfer-encoding", v, sizeof(v)));
	assert_string_equal(r.body, "body-until-close");
	assert_true(pt_eof(c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		PT_TEST(test_forwarded),
		PT_TEST(test_forwarded_trusted),
		PT_TEST(test_forward_headers_none),
		PT_TEST(test_malformed_400),
		PT_TEST(test_head_too_large_431),
		PT_TEST(test_slow_head_408),
		PT_TEST(test_silent_connection_closed),
		PT_TEST(test_slow_body_408),
		PT_TEST(test_404_and_413),
		PT_TEST(test_keepalive_and_pipelining),
		PT_TEST(test_close_delimited_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
