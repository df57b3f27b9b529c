/*
 * test_upstream.c — the upstream side of the request path
 * (src/proxy/upstream.c and the retries in client.c): the idle pool, what
 * a client gets when a replica fails, which failures are retried and
 * where, the canary shield.
 */
#include "px_test.h"

static const char *routes_backends(const char *svc, uint16_t p1, uint16_t p2)
{
	static char json[768];
	if (p2)
		snprintf(json, sizeof(json),
			 "{\"routes\": [{\"hosts\": [\"app.test\"], \"service\": \"%s\", \"environment\": \"t\","
			 " \"revisions\": [{\"revision\": \"v1\", \"weight\": 100, \"backends\":"
			 " [{\"address\": \"127.0.0.1:%u\"}, {\"address\": \"127.0.0.1:%u\"}]}]}]}",
			 svc, p1, p2);
	else
		snprintf(json, sizeof(json),
			 "{\"routes\": [{\"hosts\": [\"app.test\"], \"service\": \"%s\", \"environment\": \"t\","
			 " \"revisions\": [{\"revision\": \"v1\", \"weight\": 100, \"backends\":"
			 " [{\"address\": \"127.0.0.1:%u\"}]}]}]}",
			 svc, p1);
	return json;
}

static int get(struct pt_conn *c, const char *req, struct pt_resp *r)
{
	pt_send(c, req);
	return pt_read_resp(c, r);
}

/* the backend object of the running table for address (its counters are the /status ones) */
static struct backend *backend_of(uint16_t port, const char *svc)
{
	char addr[32];
	struct backend *be;
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	be = backend_get(addr, svc, "t", "v1", NULL);
	assert_non_null(be);
	backend_put(be); /* the table holds it */
	return be;
}

/* keep-alive upstream connections: requests of one client and of the next reuse one */
static void test_pool_reuse(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_conn *c;
	struct pt_resp r;
	(void)state;

	assert_int_equal(pt_px_start(routes_backends("pool", up->port, 0)), 0);
	c = pt_connect(pt_proxy.port);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n", &r), 0);
		assert_int_equal(r.status, 200);
	}
	pt_close(c);
	/* a client that closes after each request still reuses the upstream connection */
	for (int i = 0; i < 3; i++) {
		c = pt_connect(pt_proxy.port);
		assert_int_equal(get(c, "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n", &r), 0);
		assert_int_equal(r.status, 200);
		assert_true(pt_eof(c));
		pt_close(c);
	}
	assert_int_equal(pt_up_count(up, &up->requests), 6);
	assert_int_equal(pt_up_count(up, &up->conns), 1);
}

/* a replica that resets a fresh connection under a request: 502, and no retry */
static void test_reset_502(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_RESET);
	struct pt_conn *c;
	struct pt_resp r;
	(void)state;

	assert_int_equal(pt_px_start(routes_backends("reset", up->port, 0)), 0);
	c = pt_connect(pt_proxy.port);
	assert_int_equal(get(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 502);
	assert_string_equal(r.body, "upstream unavailable\n");
	/* the request may have reached the application: it is not sent again */
	assert_int_equal(pt_up_count(up, &up->requests), 1);
	assert_int_equal(CTR_GET(backend_of(up->port, "reset")->w[0].errors), 1);
	/* the client connection stays usable */
	pt_up_set_mode(up, UP_OK, 200);
	assert_int_equal(get(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
}

/*
 * A refused connect never reached the application: the request (a POST
 * too) goes to the other backend of the revision, and the client sees
 * only answers from it.
 */
static void test_connect_refused_retries_other_backend(void **state)
{
	struct pt_up *up = pt_up_start("b", UP_OK);
	uint16_t dead;
	int dfd = pt_refusing_port(&dead);
	struct pt_conn *c;
	struct pt_resp r;
	char v[32];
	(void)state;

	assert_int_equal(pt_px_start(routes_backends("refused", dead, up->port)), 0);
	c = pt_connect(pt_proxy.port);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(get(c, "POST /x HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2\r\n\r\nhi", &r), 0);
		assert_int_equal(r.status, 200);
		assert_non_null(pt_hdr(r.head, "x-upstream", v, sizeof(v)));
		assert_string_equal(v, "b");
	}
	assert_int_equal(pt_up_count(up, &up->requests), 4);
	/* the balancer did pick the dead one (and it failed) before it was ejected */
	assert_true(CTR_GET(backend_of(dead, "refused")->w[0].errors) >= 1);
	close(dfd);
}

/*
 * A pooled connection the replica closes when the next request arrives
 * (no response byte): the request is sent again on a new connection.
 */
static void test_reused_connection_closed_retried(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_CLOSE_SECOND);
	struct pt_conn *c;
	struct pt_resp r;
	(void)state;

	assert_int_equal(pt_px_start(routes_backends("reused", up->port, 0)), 0);
	c = pt_connect(pt_proxy.port);
	assert_int_equal(get(c, "GET /1 HTTP/1.1\r\nHost: app.test\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(get(c, "GET /2 HTTP/1.1\r\nHost: app.test\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(pt_up_count(up, &up->conns), 2);
	assert_int_equal(pt_up_count(up, &up->requests), 3);
}

/* no upstream byte within --upstream-timeout: 504 */
static void test_upstream_timeout_504(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_HANG);
	struct pt_conn *c;
	struct pt_resp r;
	(void)state;

	pt_proxy.cfg.upstream_timeout_ms = 200;
	assert_int_equal(pt_px_start(routes_backends("timeout", up->port, 0)), 0);
	c = pt_connect(pt_proxy.port);
	assert_int_equal(get(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 504);
	assert_string_equal(r.body, "upstream timed out\n");
	assert_int_equal(pt_up_count(up, &up->requests), 1);
}

/*
 * The canary shield: an idempotent request the canary answers with a 5xx
 * is sent once to stable; a POST without an Idempotency-Key gets the
 * canary's answer.
 */
static void test_shield(void **state)
{
	struct pt_up *stable = pt_up_start("stable", UP_OK);
	struct pt_up *canary = pt_up_start("canary", UP_STATUS);
	char json[1024];
	struct pt_conn *c;
	struct pt_resp r;
	(void)state;

	pt_up_set_mode(canary, UP_STATUS, 503);
	snprintf(json, sizeof(json),
		 "{\"routes\": [{\"hosts\": [\"app.test\"], \"service\": \"shield\", \"environment\": \"t\","
		 " \"revisions\": [{\"revision\": \"s\", \"weight\": 0, \"backends\": [{\"address\": \"127.0.0.1:%u\"}]},"
		 " {\"revision\": \"c\", \"weight\": 100, \"backends\": [{\"address\": \"127.0.0.1:%u\"}]}],"
		 " \"shield\": {\"canary\": \"c\", \"stable\": \"s\"}}]}",
		 stable->port, canary->port);
	assert_int_equal(pt_px_start(json), 0);
	c = pt_connect(pt_proxy.port);
	assert_int_equal(get(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "stable");
	assert_int_equal(get(c, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\n\r\nx", &r), 0);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "canary");
	assert_int_equal(get(c, "POST / HTTP/1.1\r\nHost: app.test\r\nIdempotency-Key: k1\r\n"
				"Content-Length: 1\r\n\r\nx", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "stable");
	assert_int_equal(pt_up_count(canary, &canary->requests), 3);
	assert_int_equal(pt_up_count(stable, &stable->requests), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		PT_TEST(test_pool_reuse),
		PT_TEST(test_reset_502),
		PT_TEST(test_connect_refused_retries_other_backend),
		PT_TEST(test_reused_connection_closed_retried),
		PT_TEST(test_upstream_timeout_504),
		PT_TEST(test_shield),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
