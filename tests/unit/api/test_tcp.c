/* the TCP API's request parser (src/api/tcp.c): what each request gets */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "api/tcp.h"

#define TOKEN "gnt_0123456789abcdef"

/* feeds raw in reads of `step` bytes (0: all at once); returns the state */
static int feed(struct api_http *h, const char *raw, size_t len, size_t step)
{
	size_t pos = 0;
	int r = API_HTTP_MORE;
	api_http__init(h);
	if (!step)
		step = len;
	while (pos < len && r == API_HTTP_MORE) {
		size_t n = MIN(step, len - pos);
		r = api_http__feed(h, raw + pos, n);
		pos += n;
	}
	return r;
}

static const size_t steps[] = { 0, 1, 7, 64 };

/* the status a request gets, at every read size: 200 for a good one */
static int status_of(const char *raw)
{
	int first = -1;
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		struct api_http h;
		int r = feed(&h, raw, strlen(raw), steps[i]), st;
		if (r == API_HTTP_DONE) {
			json_t *req = api_http__request(&h);
			st = req ? 200 : h.status;
			json_decref(req);
		} else {
			st = r == API_HTTP_ERROR ? h.status : 0;
		}
		api_http__release(&h);
		if (first < 0)
			first = st;
		assert_int_equal(st, first);
	}
	return first;
}

static void test_valid_request(void **state)
{
	static const char raw[] = "POST /v1/deploy?pretty=1 HTTP/1.1\r\nHost: x\r\n"
				  "Authorization: Bearer " TOKEN "\r\nContent-Length: 48\r\n\r\n"
				  "{\"service\":\"web\",\"deployed_by\":\"root\",\"token\":1}";
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		struct api_http h;
		json_t *req;
		assert_int_equal(feed(&h, raw, strlen(raw), steps[i]), API_HTTP_DONE);
		assert_string_equal(h.op, "deploy");
		assert_string_equal(h.token, TOKEN);
		assert_false(h.health);
		req = api_http__request(&h);
		assert_non_null(req);
		assert_string_equal(json_string_value(json_object_get(req, "op")), "deploy");
		assert_string_equal(json_string_value(json_object_get(req, "service")), "web");
		/* the header's token, never the body's; no claimed actor */
		assert_string_equal(json_string_value(json_object_get(req, "token")), TOKEN);
		assert_null(json_object_get(req, "deployed_by"));
		json_decref(req);
		api_http__release(&h);
	}
}

static void test_health_and_empty_body(void **state)
{
	struct api_http h;
	json_t *req;
	static const char ping[] = "GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char empty[] = "POST /v1/status HTTP/1.1\r\nHost: x\r\nauthorization: bearer " TOKEN "\r\n"
				    "Content-Length: 0\r\n\r\n";
	(void)state;
	assert_int_equal(feed(&h, ping, strlen(ping), 0), API_HTTP_DONE);
	assert_true(h.health);
	api_http__release(&h);
	assert_int_equal(feed(&h, empty, strlen(empty), 3), API_HTTP_DONE);
	req = api_http__request(&h);
	assert_int_equal(json_object_size(req), 2); /* op, token */
	json_decref(req);
	api_http__release(&h);
}

static void test_credentials(void **state)
{
	(void)state;
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), 401);
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTpw\r\n\r\n"), 401);
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n\r\n"), 401);
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a b\r\n\r\n"), 401);
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\n"
				   "Authorization: Bearer b\r\n\r\n"), 401);
	/* a health check is the only request without one */
	assert_int_equal(status_of("GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
	assert_int_equal(status_of("POST /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"), 401);
}

static void test_paths_and_methods(void **state)
{
	(void)state;
	assert_int_equal(status_of("POST /v2/status HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
	assert_int_equal(status_of("POST /v1/ HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
	assert_int_equal(status_of("POST /v1/Status HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
	assert_int_equal(status_of("POST /v1/a/b HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
	assert_int_equal(status_of("PUT /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"), 405);
	assert_int_equal(status_of("GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"), 405);
}

static void test_bodies(void **state)
{
	char big[256];
	(void)state;
#define REQ(body) "POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: %zu\r\n\r\n" body
	snprintf(big, sizeof(big), REQ("{\"op\":\"deploy\"}"), strlen("{\"op\":\"deploy\"}"));
	assert_int_equal(status_of(big), 400);
	snprintf(big, sizeof(big), REQ("{\"op\":\"status\"}"), strlen("{\"op\":\"status\"}"));
	assert_int_equal(status_of(big), 200);
	snprintf(big, sizeof(big), REQ("[1]"), (size_t)3);
	assert_int_equal(status_of(big), 400);
	snprintf(big, sizeof(big), REQ("{no"), (size_t)3);
	assert_int_equal(status_of(big), 400);
#undef REQ
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"), 200);
}

static void test_limits(void **state)
{
	struct api_http h;
	size_t n = API_TCP_MAX_BODY + 100, hl;
	char *raw;
	(void)state;
	/* announced too large: refused at the head, before any body byte */
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
				   "Content-Length: 4194305\r\n\r\n"), 413);
	/* a chunked body that grows past the limit */
	raw = xmalloc(n + 256);
	hl = (size_t)snprintf(raw, 256, "POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
			      "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", n);
	memset(raw + hl, 'a', n);
	assert_int_equal(feed(&h, raw, hl + n, 65536), API_HTTP_ERROR);
	assert_int_equal(h.status, 413);
	assert_true(h.body.len <= API_TCP_MAX_BODY);
	api_http__release(&h);
	/* a head past the limit in one read */
	hl = (size_t)snprintf(raw, 256, "POST /v1/status HTTP/1.1\r\nHost: x\r\nX-Pad: ");
	memset(raw + hl, 'p', HTTP_MAX_HEAD + 10);
	assert_int_equal(feed(&h, raw, hl + HTTP_MAX_HEAD + 10, 0), API_HTTP_ERROR);
	assert_int_equal(h.status, 431);
	api_http__release(&h);
	free(raw);
}

static void test_malformed(void **state)
{
	(void)state;
	assert_int_equal(status_of("GARBAGE\r\n\r\n"), 400);
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\n\r\n"), 400); /* no Host */
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n"), 400);
	assert_int_equal(status_of("POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
				   "Expect: 200-ok\r\n\r\n"), 417);
}

static void test_expect_continue(void **state)
{
	struct api_http h;
	static const char head[] = "POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
				   "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n";
	(void)state;
	assert_int_equal(feed(&h, head, strlen(head), 0), API_HTTP_MORE);
	assert_true(h.head_done && h.expect_continue);
	assert_int_equal(api_http__feed(&h, "{}", 2), API_HTTP_DONE);
	api_http__release(&h);
}

static void test_status_mapping(void **state)
{
	static const struct { const char *reply; int status; } cases[] = {
		{ "{\"ok\": true}", 200 },
		{ "{\"ok\": false, \"code\": 2}", 400 },
		{ "{\"ok\": false, \"code\": 3}", 403 },
		{ "{\"ok\": false, \"code\": 1}", 409 },
		{ "{\"ok\": false}", 409 },
		{ "{\"ok\": false, \"code\": 1, \"retry\": true}", 503 },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *r = json_loads(cases[i].reply, 0, NULL);
		assert_int_equal(api_http__status(r), cases[i].status);
		json_decref(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_request),
		cmocka_unit_test(test_health_and_empty_body),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_paths_and_methods),
		cmocka_unit_test(test_bodies),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_status_mapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
