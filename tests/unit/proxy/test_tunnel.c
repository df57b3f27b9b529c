/*
 * test_tunnel.c — Upgrade requests (src/proxy/tunnel.c): a 101 turns the
 * exchange into a byte tunnel both ways, a FIN travels as a shutdown; a
 * 101 the client did not ask for is a 502.
 */
#include "px_test.h"

static const char *routes_one(struct pt_up *up)
{
	static char json[512];
	snprintf(json, sizeof(json),
		 "{\"routes\": [{\"hosts\": [\"app.test\"], \"service\": \"tunnel\", \"environment\": \"t\","
		 " \"revisions\": [{\"revision\": \"v1\", \"weight\": 100,"
		 " \"backends\": [{\"address\": \"127.0.0.1:%u\"}]}]}]}",
		 up->port);
	return json;
}

/* reads exactly n bytes into out; false if the connection ended or went quiet first */
static bool read_n(struct pt_conn *c, char *out, size_t n)
{
	while (c->len < n)
		if (pt_fill(c) <= 0)
			return false;
	memcpy(out, c->buf, n);
	pt_consume(c, n);
	return true;
}

static void test_upgrade_tunnel(void **state)
{
	struct pt_up *up = pt_up_start("ws", UP_UPGRADE);
	struct pt_conn *c;
	struct pt_resp r;
	char head[16384], v[64], echo[64];
	(void)state;

	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: pt-echo\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 101);
	assert_non_null(pt_hdr(r.head, "upgrade", v, sizeof(v)));
	assert_string_equal(v, "pt-echo");
	assert_non_null(pt_hdr(r.head, "connection", v, sizeof(v)));
	assert_string_equal(v, "upgrade");
	pt_up_head(up, head, sizeof(head));
	assert_non_null(strstr(head, "\r\nConnection: upgrade\r\nUpgrade: pt-echo\r\n"));

	/* bytes both ways, twice, then the client's FIN reaches the upstream and its FIN comes back */
	pt_send(c, "ping");
	assert_true(read_n(c, echo, 4));
	assert_memory_equal(echo, "ping", 4);
	pt_write_all(c->fd, "\x00\x01 binary \xff", 11);
	assert_true(read_n(c, echo, 11));
	assert_memory_equal(echo, "\x00\x01 binary \xff", 11);
	assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
	assert_true(pt_up_wait(up, &up->closed, 1));
	assert_true(pt_eof(c));
	assert_int_equal(pt_up_count(up, &up->requests), 1);
}

/* a 101 to a request that did not ask for an upgrade: 502 */
static void test_unrequested_101_502(void **state)
{
	struct pt_up *up = pt_up_start("ws", UP_UPGRADE);
	struct pt_conn *c;
	struct pt_resp r;
	(void)state;

	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 502);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		PT_TEST(test_upgrade_tunnel),
		PT_TEST(test_unrequested_101_502),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
