/*
 * test_admin.c — the admin listener (src/proxy/admin.c) and the checks of
 * its configuration at start: /healthz without a token, the bearer token
 * on the rest, /status, /windows and /metrics about the traffic that went
 * through, the bounds (405, 431, 404).
 */
#include "px_test.h"

static char token_path[128];

static int setup(void **state)
{
	pt_setup(state);
	token_path[0] = 0;
	pt_proxy.cfg.admin = PT_ADMIN;
	return 0;
}

static int teardown(void **state)
{
	pt_teardown(state);
	if (token_path[0])
		unlink(token_path);
	return 0;
}

static void write_token(const char *token)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(token_path, sizeof(token_path), "%s/gantry-pt-token-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(token_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, token, strlen(token)), (ssize_t)strlen(token));
	close(fd);
	pt_proxy.cfg.admin_token_file = token_path;
}

static const char *routes_one(struct pt_up *up)
{
	static char json[512];
	snprintf(json, sizeof(json),
		 "{\"generation\": 7, \"routes\": [{\"hosts\": [\"app.test\"], \"service\": \"admin\","
		 " \"environment\": \"t\", \"revisions\": [{\"revision\": \"v1\", \"weight\": 100,"
		 " \"backends\": [{\"address\": \"127.0.0.1:%u\"}]}]}]}",
		 up->port);
	return json;
}

/* one request to the admin listener on a new connection (it answers and closes) */
static void admin_get(const char *req, struct pt_resp *r)
{
	struct pt_conn *c = pt_connect(pt_proxy.admin_port);
	pt_send(c, req);
	assert_int_equal(pt_read_resp(c, r), 0);
	assert_true(pt_eof(c));
	pt_close(c);
}

static void assert_has(const char *text, const char *what)
{
	if (!strstr(text, what))
		fail_msg("'%s' not in:\n%s", what, text);
}

static void test_documents(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_conn *c;
	struct pt_resp r;
	char want[256], v[128];
	(void)state;

	write_token("0123456789abcdef-token\n");
	assert_int_equal(pt_px_start(routes_one(up)), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);

	admin_get("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");

	admin_get("GET /status HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_int_equal(r.status, 401);
	assert_non_null(pt_hdr(r.head, "www-authenticate", v, sizeof(v)));
	assert_string_equal(v, "Bearer realm=\"gantry-proxy\"");
	admin_get("GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer 0123456789abcdef-tokeN\r\n\r\n", &r);
	assert_int_equal(r.status, 401);

	admin_get("GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer 0123456789abcdef-token\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_has(r.body, "\"generation\":7");
	snprintf(want, sizeof(want), "\"address\":\"127.0.0.1:%u\",\"service\":\"admin\"", up->port);
	assert_has(r.body, want);
	assert_has(r.body, "\"requests\":1,");

	admin_get("GET /windows HTTP/1.1\r\nHost: a\r\nAuthorization: bearer 0123456789abcdef-token\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_has(r.body, "{\"service\":\"admin\",\"environment\":\"t\",\"revision\":\"v1\","
			   "\"requests\":1,\"status\":[0,0,1,0,0,0]");

	admin_get("GET /metrics HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer 0123456789abcdef-token\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_has(r.body, "gantry_http_requests_total{service=\"admin\",environment=\"t\",revision=\"v1\","
			   "code=\"2xx\"} 1\n");
	snprintf(want, sizeof(want),
		 "gantry_proxy_backend_up{service=\"admin\",environment=\"t\",revision=\"v1\","
		 "address=\"127.0.0.1:%u\"} 1\n", up->port);
	assert_has(r.body, want);
	assert_has(r.body, "gantry_proxy_route_generation 7\n");
}

static void test_bounds(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_resp r;
	struct hbuf b;
	(void)state;

	assert_int_equal(pt_px_start(routes_one(up)), 0);
	admin_get("POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	admin_get("GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_int_equal(r.status, 404);
	/* no token file on loopback: no authentication */
	admin_get("GET /status HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	hbuf_init(&b, 1u << 16);
	hbuf_addstr(&b, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ");
	for (int i = 0; i < 9000; i++)
		hbuf_append(&b, "b", 1);
	hbuf_addstr(&b, "\r\n\r\n");
	admin_get(b.data, &r);
	hbuf_release(&b);
	assert_int_equal(r.status, 431);
}

/* what proxy__start refuses before anything runs: exit 2 for the CLI */
static void test_start_refused(void **state)
{
	struct gerr err = { { 0 } };
	struct proxy *px = NULL;
	struct proxy_config cfg;
	(void)state;

	proxy_config_defaults(&cfg);
	cfg.workers = 1;
	cfg.listen = "127.0.0.1:1";
	cfg.routes_path = "/nonexistent/routes.json";
	cfg.admin = "0.0.0.0:1";
	assert_int_equal(proxy__start(&cfg, &px, &err), -2);
	assert_null(px);
	assert_string_equal(err.msg, "--admin-token-file: required when --admin (0.0.0.0:1) is not a loopback address");

	write_token("short");
	cfg.admin = "127.0.0.1:1";
	cfg.admin_token_file = token_path;
	assert_int_equal(proxy__start(&cfg, &px, &err), -2);
	assert_non_null(strstr(err.msg, "the token is shorter than 16 characters"));

	cfg.admin_token_file = NULL;
	cfg.listen = "localhost:80";
	assert_int_equal(proxy__start(&cfg, &px, &err), -2);
	assert_string_equal(err.msg, "--listen: 'localhost:80' is not IP:PORT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_documents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
