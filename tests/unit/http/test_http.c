#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "http/http.h"

struct sink {
	char data[4096];
	size_t len;
};

static int on_body(void *ctx, const char *at, size_t len)
{
	struct sink *s = ctx;
	if (s->len + len > sizeof(s->data))
		return -1;
	memcpy(s->data + s->len, at, len);
	s->len += len;
	return 0;
}

/*
 * Feeds raw (len bytes) in pieces of `step` bytes the way the proxy does
 * (bytes stay in one buffer, events stop the loop) until the first head
 * and then the end of that message. Returns 0 if the message was complete
 * and valid, 1 if only the head was, else the error status.
 */
static int run(struct http_msg *m, enum http_kind kind, const char *raw, size_t len, size_t step,
	       struct sink *body)
{
	size_t pos = 0, avail = 0;
	bool head = false;
	http_msg_release(m); /* m is zeroed or was run before */
	http_msg_init(m, kind, raw);
	m->on_body = on_body;
	m->ctx = body;
	while (pos < len || (m->paused && m->head_done && !m->done)) {
		size_t used;
		int ev;
		avail = MIN(len, MAX(avail, pos) + step);
		ev = http_msg_feed(m, raw + pos, avail - pos, &used);
		pos += used;
		if (ev & HTTP_EV_ERROR)
			return m->err_status;
		if (ev & HTTP_EV_HEAD)
			head = true;
		if (ev & HTTP_EV_DONE)
			return 0;
		if (!ev && used == 0 && avail == len)
			break;
	}
	return head ? 1 : -1;
}

static int req_status(const char *raw)
{
	struct http_msg m = { 0 };
	struct sink s = { .len = 0 };
	int whole = run(&m, HTTP_KIND_REQUEST, raw, strlen(raw), strlen(raw), &s);
	/* byte-at-a-time must agree with all-at-once */
	int bytes = run(&m, HTTP_KIND_REQUEST, raw, strlen(raw), 1, &s);
	assert_int_equal(whole, bytes);
	http_msg_release(&m);
	return whole;
}

static void test_valid_request(void **state)
{
	const char *raw = "POST /a/b?c=d HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Thing:  v a l  \r\n"
			  "Content-Length: 5\r\n\r\nhello";
	for (size_t step = 1; step <= strlen(raw); step += 7) {
		struct http_msg m = { 0 };
		struct sink s = { .len = 0 };
		int x;
		(void)state;
		assert_int_equal(run(&m, HTTP_KIND_REQUEST, raw, strlen(raw), step, &s), 0);
		assert_true(http_span_eq(&m, m.url, "/a/b?c=d"));
		assert_int_equal(m.nhdr, 3);
		assert_int_equal(m.host_idx, 0);
		assert_true(http_span_eq(&m, m.hdr[0].value, "example.com:8080"));
		x = http_find_header(&m, "x-thing", 0);
		assert_int_equal(x, 1);
		assert_true(http_span_eq(&m, m.hdr[x].value, "v a l")); /* OWS trimmed */
		assert_true(m.has_cl);
		assert_int_equal(m.content_length, 5);
		assert_int_equal(s.len, 5);
		assert_memory_equal(s.data, "hello", 5);
		http_msg_release(&m);
	}
}

static void test_chunked_body(void **state)
{
	const char *raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
	struct http_msg m = { 0 };
	struct sink s = { .len = 0 };
	(void)state;
	assert_int_equal(run(&m, HTTP_KIND_REQUEST, raw, strlen(raw), 3, &s), 0);
	assert_true(m.chunked);
	assert_int_equal(s.len, 11);
	assert_memory_equal(s.data, "hello world", 11);
	http_msg_release(&m);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n0\r\n\r\n"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
				    "fffffffffffffffff\r\na\r\n0\r\n\r\n"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n"), 400);
}

static void test_smuggling(void **state)
{
	(void)state;
	/* CL + TE */
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"), 400);
	/* repeated or differing CL, and bad CL values */
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"), 400);
	/* TE not ending in chunked; codings we do not support */
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"), 400);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0b" "chunked\r\n\r\n0\r\n\r\n"), 400);
	/* TE in HTTP/1.0 */
	assert_int_equal(req_status("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400);
	/* whitespace before colon, obs-fold, leading whitespace, empty name */
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX:\r\n b\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n"), 400);
	/* invalid names, control characters and NUL in values */
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f" "b\r\n\r\n"), 400);
	{
		static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
		struct http_msg m = { 0 };
		struct sink s = { .len = 0 };
		assert_int_equal(run(&m, HTTP_KIND_REQUEST, nul, sizeof(nul) - 1, 100, &s), 400);
		http_msg_release(&m);
	}
	/* line endings */
	assert_int_equal(req_status("GET / HTTP/1.1\nHost: a\n\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\n\rX: y\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n"), 400);
}

static void test_host_rules(void **state)
{
	(void)state;
	assert_int_equal(req_status("GET / HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.0\r\n\r\n"), 0); /* 1.0 may omit Host */
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}

static void test_request_line(void **state)
{
	(void)state;
	assert_int_equal(req_status("get / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(req_status("GET / HTTP/9.9\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(req_status("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(req_status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(req_status("GET http://evil/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(req_status("GET x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(req_status("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	assert_int_equal(req_status("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(req_status("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
	/* an upgrade is a tunnel (no body allowed), one Upgrade header */
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"), 0);
	assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
				    "Content-Length: 1\r\n\r\nx"), 400);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
				    "Upgrade: x\r\n\r\n"), 400);
	/* h2c is an offer the proxy may ignore */
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
				    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"), 0);
}

static char *repeat_headers(int n)
{
	struct hbuf b;
	hbuf_init(&b, 1 << 20);
	hbuf_addstr(&b, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 1; i < n; i++)
		hbuf_printf(&b, "X-%d: %d\r\n", i, i);
	hbuf_addstr(&b, "\r\n");
	hbuf_append(&b, "", 1);
	return b.data;
}

static void test_limits(void **state)
{
	char *raw;
	struct hbuf b;
	(void)state;

	raw = repeat_headers(HTTP_MAX_HEADERS);
	assert_int_equal(req_status(raw), 0);
	free(raw);
	raw = repeat_headers(HTTP_MAX_HEADERS + 1);
	assert_int_equal(req_status(raw), 431);
	free(raw);

	hbuf_init(&b, 1 << 20);
	hbuf_addstr(&b, "GET /");
	for (int i = 0; i < HTTP_MAX_URL; i++)
		hbuf_addstr(&b, "a");
	hbuf_addstr(&b, " HTTP/1.1\r\nHost: a\r\n\r\n");
	hbuf_append(&b, "", 1);
	assert_int_equal(req_status(b.data), 414);
	b.len = 0;
	hbuf_addstr(&b, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	for (int i = 0; i < HTTP_MAX_HEAD; i++)
		hbuf_addstr(&b, "v");
	hbuf_addstr(&b, "\r\n\r\n");
	hbuf_append(&b, "", 1);
	assert_int_equal(req_status(b.data), 431);
	/* an unfinished head past the limit is refused without waiting for its end */
	b.data[b.len - 6] = 0;
	assert_int_equal(req_status(b.data), 431);
	hbuf_release(&b);
}

static void test_pipelined(void **state)
{
	const char *raw = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n";
	struct http_msg m = { 0 };
	size_t used, pos = 0;
	int ev;
	(void)state;
	http_msg_release(&m);
	http_msg_init(&m, HTTP_KIND_REQUEST, raw);
	ev = http_msg_feed(&m, raw, strlen(raw), &used);
	assert_int_equal(ev, HTTP_EV_HEAD);
	assert_true(http_span_eq(&m, m.url, "/1"));
	pos += used;
	ev = http_msg_feed(&m, raw + pos, strlen(raw) - pos, &used);
	assert_int_equal(ev, HTTP_EV_DONE);
	assert_int_equal(used, 0);
	http_msg_next(&m, raw);
	ev = http_msg_feed(&m, raw + pos, strlen(raw) - pos, &used);
	assert_int_equal(ev, HTTP_EV_HEAD);
	assert_true(http_span_eq(&m, m.url, "/2"));
	assert_true(http_span_eq(&m, m.hdr[m.host_idx].value, "b"));
	http_msg_release(&m);
}

static void test_response(void **state)
{
	struct http_msg m = { 0 };
	struct sink s = { .len = 0 };
	const char *r1 = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
	const char *r2 = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
	const char *r3 = "HTTP/1.1 200 OK\r\n\r\nuntil eof";
	size_t used, pos = 0;
	int ev;
	(void)state;

	/* a response to HEAD has no body whatever Content-Length says */
	http_msg_release(&m);
	http_msg_init(&m, HTTP_KIND_RESPONSE, r1);
	m.skip_body = true;
	ev = http_msg_feed(&m, r1, strlen(r1), &used);
	assert_int_equal(ev, HTTP_EV_HEAD | HTTP_EV_DONE);
	assert_int_equal(used, strlen(r1));
	assert_int_equal(m.content_length, 10);

	/* interim responses are messages of their own */
	http_msg_release(&m);
	http_msg_init(&m, HTTP_KIND_RESPONSE, r2);
	ev = http_msg_feed(&m, r2, strlen(r2), &used);
	assert_int_equal(ev, HTTP_EV_HEAD);
	assert_int_equal(llhttp_get_status_code(&m.llp), 100);
	pos = used;
	ev = http_msg_feed(&m, r2 + pos, strlen(r2) - pos, &used);
	assert_int_equal(ev, HTTP_EV_DONE);
	pos += used;
	http_msg_next(&m, r2);
	m.on_body = on_body;
	m.ctx = &s;
	ev = http_msg_feed(&m, r2 + pos, strlen(r2) - pos, &used);
	assert_int_equal(ev, HTTP_EV_HEAD);
	assert_int_equal(llhttp_get_status_code(&m.llp), 200);
	pos += used;
	ev = http_msg_feed(&m, r2 + pos, strlen(r2) - pos, &used);
	assert_int_equal(ev, HTTP_EV_DONE);
	assert_int_equal(s.len, 2);

	/* close-delimited: ends at EOF */
	s.len = 0;
	assert_int_equal(run(&m, HTTP_KIND_RESPONSE, r3, strlen(r3), 4, &s), 1);
	assert_int_equal(http_msg_finish(&m), HTTP_EV_DONE);
	assert_int_equal(s.len, 9);

	/* truncated Content-Length body is an error at EOF */
	s.len = 0;
	assert_int_equal(run(&m, HTTP_KIND_RESPONSE, r1, strlen(r1), 100, &s), 1);
	assert_int_equal(http_msg_finish(&m), HTTP_EV_ERROR);
	assert_int_equal(m.err_status, 502);

	assert_int_equal(run(&m, HTTP_KIND_RESPONSE, "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 30, 100, &s), 502);
	http_msg_release(&m);
}

/* the inline fast path of hbuf_append must keep the bound */
static void test_hbuf_bound(void **state)
{
	struct hbuf b;
	char big[700];
	(void)state;
	memset(big, 'x', sizeof(big));
	hbuf_init(&b, 300);
	assert_int_equal(hbuf_append(&b, big, 200), 0);
	assert_true(b.cap <= 300);
	assert_int_equal(hbuf_append(&b, big, 100), 0); /* exactly max */
	assert_int_equal(b.len, 300);
	assert_int_equal(hbuf_append(&b, big, 1), -1);  /* past max: refused, unchanged */
	assert_int_equal(b.len, 300);
	assert_int_equal(hbuf_addstr(&b, ""), 0);
	hbuf_release(&b);
	hbuf_init(&b, 1000);
	assert_int_equal(hbuf_append(&b, big, 700), 0);
	assert_true(b.cap >= 700 && b.cap <= 1000);
	assert_int_equal(hbuf_append(&b, big, 301), -1);
	assert_int_equal(hbuf_printf(&b, "%s", "abc"), 0);
	assert_int_equal(b.len, 703);
	assert_memory_equal(b.data + 700, "abc", 3);
	hbuf_release(&b);
}

/* names compare without case; the literal is lowercase */
static void test_span_eq(void **state)
{
	struct http_msg m;
	const char *buf = "Content-LENGTH x-Forwarded-For";
	(void)state;
	http_msg_init(&m, HTTP_KIND_REQUEST, buf);
	assert_true(http_span_eq(&m, (struct http_span){ 0, 14 }, "content-length"));
	assert_false(http_span_eq(&m, (struct http_span){ 0, 14 }, "content-lengti"));
	assert_false(http_span_eq(&m, (struct http_span){ 0, 13 }, "content-length"));
	assert_true(http_span_eq(&m, (struct http_span){ 15, 15 }, "x-forwarded-for"));
	assert_false(http_span_eq(&m, (struct http_span){ 15, 15 }, "x-forwarded-fox"));
	http_msg_release(&m);
}

static void test_list_has(void **state)
{
	(void)state;
	assert_true(http_list_has("keep-alive, X-Foo", 17, "x-foo"));
	assert_true(http_list_has(" close ", 7, "close"));
	assert_false(http_list_has("closed", 6, "close"));
	assert_false(http_list_has("", 0, "close"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_request),
		cmocka_unit_test(test_chunked_body),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_host_rules),
		cmocka_unit_test(test_request_line),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_hbuf_bound),
		cmocka_unit_test(test_span_eq),
		cmocka_unit_test(test_list_has),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
