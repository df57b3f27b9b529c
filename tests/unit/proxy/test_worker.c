/*
 * test_worker.c — what a worker does beside requests (src/proxy/worker.c
 * and proxy.c): a reload (SIGHUP) swaps the table and closes the pooled
 * connections of backends that left it; a stop (SIGTERM) closes the
 * listener and idle clients, lets a request in flight finish with
 * Connection: close, then the proxy returns. proxy_listeners_open makes
 * the sockets the controller holds for its proxies.
 */
#include "px_test.h"

static char routes_json[1024];

static const char *routes(int gen, const char *host1, struct pt_up *u1, const char *host2, struct pt_up *u2)
{
	int n = snprintf(routes_json, sizeof(routes_json),
			 "{\"generation\": %d, \"routes\": [{\"hosts\": [\"%s\"], \"service\": \"worker\","
			 " \"environment\": \"%s\", \"revisions\": [{\"revision\": \"v1\", \"weight\": 100,"
			 " \"backends\": [{\"address\": \"127.0.0.1:%u\"}]}]}",
			 gen, host1, host1, u1->port);
	if (host2)
		n += snprintf(routes_json + n, sizeof(routes_json) - (size_t)n,
			      ", {\"hosts\": [\"%s\"], \"service\": \"worker\", \"environment\": \"%s\","
			      " \"revisions\": [{\"revision\": \"v1\", \"weight\": 100,"
			      " \"backends\": [{\"address\": \"127.0.0.1:%u\"}]}]}",
			      host2, host2, u2->port);
	snprintf(routes_json + n, sizeof(routes_json) - (size_t)n, "]}");
	return routes_json;
}

static void test_reload(void **state)
{
	struct pt_up *a = pt_up_start("a", UP_OK), *b = pt_up_start("b", UP_OK);
	struct pt_conn *c;
	struct pt_resp r;
	FILE *f;
	(void)state;

	assert_int_equal(pt_px_start(routes(1, "app.test", a, NULL, NULL)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_string_equal(r.body, "a");

	f = fopen(pt_proxy.routes, "w");
	assert_non_null(f);
	fputs(routes(2, "app.test", b, NULL, NULL), f);
	fclose(f);
	kill(getpid(), SIGHUP);
	/* the worker installed the table: a's pooled connection is closed */
	assert_true(pt_up_wait(a, &a->closed, 1));
	pt_send(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_string_equal(r.body, "b");
	assert_int_equal(pt_up_count(a, &a->requests), 1);
}

static void test_graceful_stop(void **state)
{
	struct pt_up *ok = pt_up_start("ok", UP_OK), *hold = pt_up_start("held", UP_HOLD);
	struct pt_conn *idle, *busy;
	struct pt_resp r;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char v[32];
	int fd;
	(void)state;

	pt_proxy.cfg.drain_timeout_ms = 10 * PT_WAIT_MS; /* what closes the idle client is the stop itself */
	assert_int_equal(pt_px_start(routes(1, "ok.test", ok, "hold.test", hold)), 0);
	idle = pt_connect(pt_proxy.port);
	pt_send(idle, "GET / HTTP/1.1\r\nHost: ok.test\r\n\r\n");
	assert_int_equal(pt_read_resp(idle, &r), 0);
	assert_int_equal(r.status, 200);
	busy = pt_connect(pt_proxy.port);
	pt_send(busy, "GET / HTTP/1.1\r\nHost: hold.test\r\n\r\n");
	assert_true(pt_up_wait(hold, &hold->requests, 1));

	pt_px_signal_stop();
	assert_true(pt_eof(idle)); /* the idle keep-alive client is closed at once */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(pt_proxy.port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0); /* and the listener */
	close(fd);

	pt_up_release(hold);
	assert_int_equal(pt_read_resp(busy, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "held");
	assert_non_null(pt_hdr(r.head, "connection", v, sizeof(v)));
	assert_string_equal(v, "close");
	assert_true(pt_eof(busy));
	pt_px_join(); /* proxy__serve returns once the last client is gone */
}

/* n SO_REUSEPORT sockets on one port, CLOEXEC, listening: a connect is
 * queued with nobody accepting; the port is then not free for a second set */
static void test_listeners_open(void **state)
{
	struct sockaddr_in sa, sb;
	socklen_t len = sizeof(sa);
	struct gerr err;
	int fds[2], again[2], v = 0, c;
	socklen_t vl = sizeof(v);
	char addr[64];
	uint16_t port;
	int hold = pt_reserve_port(&port);

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	assert_int_equal(proxy_listeners_open(addr, 2, fds, &err), 0);
	close(hold);
	assert_int_equal(getsockname(fds[0], (struct sockaddr *)&sa, &len), 0);
	len = sizeof(sb);
	assert_int_equal(getsockname(fds[1], (struct sockaddr *)&sb, &len), 0);
	assert_int_equal(sa.sin_port, sb.sin_port);
	for (int i = 0; i < 2; i++) {
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		assert_int_equal(getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &v, &vl), 0);
		assert_int_equal(v, 1);
	}
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0); /* in a backlog */
	close(c);
	assert_int_equal(ntohs(sa.sin_port), port);
	assert_int_equal(proxy_listeners_open(addr, 2, again, &err), -1);
	assert_non_null(strstr(err.msg, "address in use"));
	assert_int_equal(again[0], -1);
	assert_int_equal(again[1], -1);
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(proxy_listeners_open("nowhere", 1, again, &err), -1);
	assert_non_null(strstr(err.msg, "is not IP:PORT"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		PT_TEST(test_reload),
		PT_TEST(test_graceful_stop),
		cmocka_unit_test(test_listeners_open),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
