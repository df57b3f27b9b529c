/*
 * test_admin.c — the admin listener (src/proxy/admin.c) and the checks of
 * its configuration at start: /healthz without a token, the bearer token
 * on the rest, /status, /windows and /metrics about the traffic that went
 * through, the bounds (405, 431, 404); PUT /routes (401, 400 with the JSON
 * pointer, 409, 411, 413, a body that stops coming) and --await-routes.
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

#define TOKEN_HDR "Authorization: Bearer 0123456789abcdef-token\r\n"

/* PUT /routes with body (Content-Length), on a new connection */
static void admin_put(const char *extra, const char *body, struct pt_resp *r)
{
	char head[512];
	struct pt_conn *c = pt_connect(pt_proxy.admin_port);
	snprintf(head, sizeof(head), "PUT /routes HTTP/1.1\r\nHost: a\r\n%sContent-Length: %zu\r\n\r\n", extra,
		 strlen(body));
	pt_send(c, head);
	pt_send(c, body);
	assert_int_equal(pt_read_resp(c, r), 0);
	assert_true(pt_eof(c));
	pt_close(c);
}

static const char *routes_to(struct pt_up *up, int generation, int weight)
{
	static char json[512];
	snprintf(json, sizeof(json),
		 "{\"generation\": %d, \"routes\": [{\"hosts\": [\"app.test\"], \"service\": \"admin\","
		 " \"environment\": \"t\", \"revisions\": [{\"revision\": \"%s\", \"weight\": %d,"
		 " \"backends\": [{\"address\": \"127.0.0.1:%u\"}]}]}]}",
		 generation, up->name, weight, up->port);
	return json;
}

/* the upstream that answered GET / for app.test */
static void assert_served_by(const char *name)
{
	struct pt_conn *c = pt_connect(pt_proxy.port);
	struct pt_resp r;
	pt_send(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, name);
	pt_close(c);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	static char buf[4096];
	size_t n;
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

static void test_put_routes(void **state)
{
	struct pt_up *a = pt_up_start("a", UP_OK), *b = pt_up_start("b", UP_OK);
	struct pt_resp r;
	char good[512];
	(void)state;

	write_token("0123456789abcdef-token\n");
	assert_int_equal(pt_px_start(routes_one(a)), 0);
	assert_served_by("a");

	/* no token, a wrong one: 401 before the body is read, nothing changes */
	admin_put("", routes_to(b, 8, 100), &r);
	assert_int_equal(r.status, 401);
	admin_put("Authorization: Bearer 0123456789abcdef-tokeX\r\n", routes_to(b, 8, 100), &r);
	assert_int_equal(r.status, 401);
	assert_served_by("a");

	/* a good table: answered with the generation served, written to --routes */
	snprintf(good, sizeof(good), "%s", routes_to(b, 8, 100));
	admin_put(TOKEN_HDR, good, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"generation\":8,\"routes\":1,\"backends\":1,\"dropped\":0}\n");
	assert_string_equal(slurp(pt_proxy.routes), good);
	assert_served_by("b");

	/* invalid: 400 with the JSON pointer of the fault; the table and the file stay */
	admin_put(TOKEN_HDR, routes_to(a, 9, 200), &r);
	assert_int_equal(r.status, 400);
	assert_has(r.body, "\"pointer\":\"/routes/0/revisions/0/weight\"");
	assert_has(r.body, "\"error\":\"routes[0].revisions[0].weight: 200 is out of range 0..100\"");
	assert_has(r.body, "\"generation\":8");
	admin_put(TOKEN_HDR, "{\"routes\": [", &r);
	assert_int_equal(r.status, 400);
	assert_has(r.body, "\"pointer\":\"\"");
	assert_has(r.body, "PUT /routes:1:12:");
	assert_string_equal(slurp(pt_proxy.routes), good);
	assert_served_by("b");

	/* older than the loaded one: 409 (a stale controller cannot roll back); the same one: fine */
	admin_put(TOKEN_HDR, routes_to(a, 7, 100), &r);
	assert_int_equal(r.status, 409);
	assert_has(r.body, "\"error\":\"generation 7 is older than the one loaded (8)\"");
	assert_served_by("b");
	admin_put(TOKEN_HDR, good, &r);
	assert_int_equal(r.status, 200);

	/* Expect: 100-continue (curl's habit for large bodies) gets its 100 first */
	{
		struct pt_conn *c = pt_connect(pt_proxy.admin_port);
		const char *body = routes_to(a, 10, 100);
		char head[256];
		snprintf(head, sizeof(head),
			 "PUT /routes HTTP/1.1\r\nHost: a\r\n" TOKEN_HDR "Expect: 100-continue\r\n"
			 "Content-Length: %zu\r\n\r\n", strlen(body));
		pt_send(c, head);
		assert_int_equal(pt_read_resp(c, &r), 0);
		assert_int_equal(r.status, 100);
		/* the body in two parts */
		pt_write_all(c->fd, body, 20);
		usleep(20000);
		pt_send(c, body + 20);
		assert_int_equal(pt_read_resp(c, &r), 0);
		assert_int_equal(r.status, 200);
		assert_has(r.body, "\"generation\":10");
		pt_close(c);
	}
	assert_served_by("a");

	/* chunked works too */
	{
		struct pt_conn *c = pt_connect(pt_proxy.admin_port);
		const char *body = routes_to(b, 11, 100);
		char head[256];
		snprintf(head, sizeof(head),
			 "PUT /routes HTTP/1.1\r\nHost: a\r\n" TOKEN_HDR "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
			 strlen(body));
		pt_send(c, head);
		pt_send(c, body);
		pt_send(c, "\r\n0\r\n\r\n");
		assert_int_equal(pt_read_resp(c, &r), 0);
		assert_int_equal(r.status, 200);
		pt_close(c);
	}
	assert_served_by("b");
}

static void test_put_bounds(void **state)
{
	struct pt_up *a = pt_up_start("a", UP_OK);
	struct pt_resp r;
	struct pt_conn *c;
	(void)state;

	write_token("0123456789abcdef-token\n");
	pt_proxy.cfg.body_timeout_ms = 300;
	assert_int_equal(pt_px_start(routes_one(a)), 0);
	admin_get("GET /routes HTTP/1.1\r\nHost: a\r\n" TOKEN_HDR "\r\n", &r);
	assert_int_equal(r.status, 405);
	admin_get("PUT /routes HTTP/1.1\r\nHost: a\r\n" TOKEN_HDR "\r\n", &r);
	assert_int_equal(r.status, 411);
	/* larger than 16 MiB: refused from the head, before a byte of it is read */
	admin_get("PUT /routes HTTP/1.1\r\nHost: a\r\n" TOKEN_HDR "Content-Length: 16777217\r\n\r\n", &r);
	assert_int_equal(r.status, 413);

	/* a body that stops coming: closed at --body-timeout; a PUT behind it is served */
	c = pt_connect(pt_proxy.admin_port);
	pt_send(c, "PUT /routes HTTP/1.1\r\nHost: a\r\n" TOKEN_HDR "Content-Length: 100\r\n\r\n{\"gen");
	assert_true(pt_eof(c));
	pt_close(c);

	/* a chunked body past 16 MiB: 413 when the limit is crossed */
	c = pt_connect(pt_proxy.admin_port);
	pt_send(c, "PUT /routes HTTP/1.1\r\nHost: a\r\n" TOKEN_HDR "Transfer-Encoding: chunked\r\n\r\n");
	{
		static char chunk[1 << 16];
		char size[16];
		int k;
		memset(chunk, ' ', sizeof(chunk));
		snprintf(size, sizeof(size), "%zx\r\n", sizeof(chunk));
		for (k = 0; k < 257; k++) {
			if (send(c->fd, size, strlen(size), MSG_NOSIGNAL) < 0 ||
			    send(c->fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0 || send(c->fd, "\r\n", 2, MSG_NOSIGNAL) < 0)
				break;
		}
	}
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 413);
	pt_close(c);

	admin_put(TOKEN_HDR, routes_to(a, 9, 100), &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(pt_proxy.px->nputs, 0);
}

/* a connect to port: true when refused */
static bool refused(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return r < 0 && errno == ECONNREFUSED;
}

static void test_await_routes(void **state)
{
	struct pt_up *a = pt_up_start("a", UP_OK);
	struct pt_resp r;
	(void)state;

	pt_proxy.cfg.await_routes = true;
	/* the file is not read: it may be older than what the controller serves now */
	assert_int_equal(pt_px_start(routes_one(a)), 0);
	assert_true(refused(pt_proxy.port));
	admin_get("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "waiting for routes\n");
	admin_get("GET /status HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_has(r.body, "{\"awaiting_routes\":true,\"pid\":");
	/* a SIGHUP does not make it serve the file either (a wrong proxy would
	 * listen by now; a slow one passes this check, never fails it) */
	kill(getpid(), SIGHUP);
	usleep(100000);
	admin_get("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_int_equal(r.status, 503);
	assert_true(refused(pt_proxy.port));

	admin_put("", routes_to(a, 1, 100), &r);
	assert_int_equal(r.status, 200);
	/* the answer comes from the control thread; the workers listen right after */
	for (int i = 0; i < 500 && refused(pt_proxy.port); i++)
		usleep(10000);
	assert_served_by("a");
	assert_served_by("a");
	admin_get("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	admin_get("GET /status HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_has(r.body, "{\"awaiting_routes\":false,");
	/* from now on the file is the pushed table: SIGHUP reloads it */
	assert_has(slurp(pt_proxy.routes), "\"generation\": 1,");
}

static void test_await_needs_admin(void **state)
{
	(void)state;
	pt_proxy.cfg.admin = NULL;
	pt_proxy.cfg.await_routes = true;
	assert_int_equal(pt_px_start("{}"), -2);
}

static void test_err_pointer(void **state)
{
	char p[64];
	(void)state;
	proxy__err_pointer("routes[1].revisions[0].weight: 200 is out of range", p, sizeof(p));
	assert_string_equal(p, "/routes/1/revisions/0/weight");
	proxy__err_pointer("routes: missing", p, sizeof(p));
	assert_string_equal(p, "/routes");
	proxy__err_pointer("routes[0].hosts[2]: 'a b' is not a host name", p, sizeof(p));
	assert_string_equal(p, "/routes/0/hosts/2");
	proxy__err_pointer("trusted_proxies[3]: 'x' is not", p, sizeof(p));
	assert_string_equal(p, "/trusted_proxies/3");
	proxy__err_pointer("PUT /routes:1:12: ']' expected", p, sizeof(p));
	assert_string_equal(p, "");
	proxy__err_pointer("(top level): expected an object, got array", p, sizeof(p));
	assert_string_equal(p, "");
	proxy__err_pointer("no colon here", p, sizeof(p));
	assert_string_equal(p, "");
	proxy__err_pointer("routes[0].revisions[0].backends[0].address: x", p, 12);
	assert_string_equal(p, "/routes/0/"); /* cut, never overrun */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_documents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_await_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_await_needs_admin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_err_pointer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
