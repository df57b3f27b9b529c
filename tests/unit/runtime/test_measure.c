/*
 * test_measure.c — analysis measurements taken for real: prometheus and
 * http against a loopback server, commands as workloads (runtime/measure.c).
 * How requests are built and answers read: tests/unit/rollout/test_provider.c.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include "runtime/measure.h"
#include "util/clock.h"

/*
 * A tiny loopback HTTP server in a thread: answers each connection with
 * `response` (NULL: accepts and never answers, until stopped), records the
 * last request line. Bounded: stops after `max_conns` or when told.
 */
struct server {
	int fd;
	int port;
	const char *response;
	char request[1024];
	int max_conns;
	volatile int stop;
	pthread_t th;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	for (int n = 0; n < s->max_conns && !s->stop;) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		char buf[4096];
		size_t got = 0;
		int c;
		if (poll(&p, 1, 100) <= 0)
			continue;
		c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		n++;
		/* read the head (bounded, 2 s at most) */
		for (int i = 0; i < 20 && got < sizeof(buf) - 1; i++) {
			struct pollfd q = { .fd = c, .events = POLLIN };
			ssize_t r;
			if (poll(&q, 1, 100) <= 0)
				continue;
			r = read(c, buf + got, sizeof(buf) - 1 - got);
			if (r <= 0)
				break;
			got += (size_t)r;
			buf[got] = 0;
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		buf[got] = 0;
		snprintf(s->request, sizeof(s->request), "%.*s", (int)strcspn(buf, "\r\n"), buf);
		if (s->response) {
			ssize_t w = write(c, s->response, strlen(s->response));
			(void)w;
		} else {
			while (!s->stop)
				poll(NULL, 0, 20);
		}
		close(c);
	}
	return NULL;
}

static void server_start(struct server *s, const char *response)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->response = response;
	s->max_conns = 4;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 8), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	s->stop = 1;
	pthread_join(s->th, NULL);
	close(s->fd);
}

static char *http_response(int status, const char *body)
{
	return xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 status, strlen(body), body);
}

static const struct provider_vars vars = { .service = "api", .environment = "production", .revision = 42 };

static int prometheus(const char *address, const char *query, int64_t timeout_ms, double *v, struct gerr *err)
{
	struct analysis_metric m = { .name = (char *)"m", .provider = PROVIDER_PROMETHEUS, .address = (char *)address,
				     .query = (char *)query, .timeout_ms = timeout_ms };
	return measure_metric(&m, &vars, v, err);
}

static int http(const char *url, const char *json_path, int64_t timeout_ms, double *v, struct gerr *err)
{
	struct analysis_metric m = { .name = (char *)"m", .provider = PROVIDER_HTTP, .url = (char *)url,
				     .json_path = (char *)json_path, .timeout_ms = timeout_ms };
	return measure_metric(&m, &vars, v, err);
}

static int command(const char *cmd, int64_t timeout_ms, double *v, struct gerr *err)
{
	struct analysis_metric m = { .name = (char *)"m", .provider = PROVIDER_COMMAND, .command = (char *)cmd,
				     .timeout_ms = timeout_ms };
	return measure_metric(&m, &vars, v, err);
}

static void test_prometheus(void **state)
{
	(void)state;
	struct server s;
	char *addr, *resp;
	double v = 0;
	struct gerr err;

	resp = http_response(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
				  "[{\"metric\":{},\"value\":[1700000000.1,\"0.5\"]}]}}");
	server_start(&s, resp);
	addr = xasprintf("http://127.0.0.1:%d/", s.port);
	assert_int_equal(prometheus(addr, "sum(rate(errors{revision=\"{{revision}}\",service=\"{{service}}\"}[1m]))", 2000,
				    &v, &err), 0);
	assert_true(fabs(v - 0.5) < 1e-12);
	/* the query arrives URL-encoded, with the revision and service filled in */
	assert_non_null(strstr(s.request, "GET /api/v1/query?query=sum%28rate%28errors%7Brevision%3D%2242%22%2Cservice%3D%22api%22%7D%5B1m%5D%29%29 HTTP/1.1"));
	server_stop(&s);
	free(resp);

	/* an empty vector is no data, not an error */
	resp = http_response(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
	server_start(&s, resp);
	free(addr);
	addr = xasprintf("http://127.0.0.1:%d", s.port);
	assert_int_equal(prometheus(addr, "up", 2000, &v, &err), 0);
	assert_true(isnan(v));
	server_stop(&s);
	free(resp);

	/* several series, a scalar, an error answer */
	resp = http_response(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
				  "[{\"value\":[1,\"1\"]},{\"value\":[1,\"2\"]}]}}");
	server_start(&s, resp);
	free(addr);
	addr = xasprintf("http://127.0.0.1:%d", s.port);
	assert_int_equal(prometheus(addr, "up", 2000, &v, &err), -1);
	assert_string_equal(err.msg, "prometheus: the query returned 2 series; aggregate it to one (sum, max, avg)");
	server_stop(&s);
	free(resp);

	resp = http_response(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"7.5\"]}}");
	server_start(&s, resp);
	free(addr);
	addr = xasprintf("http://127.0.0.1:%d", s.port);
	assert_int_equal(prometheus(addr, "scalar(up)", 2000, &v, &err), 0);
	assert_true(fabs(v - 7.5) < 1e-12);
	server_stop(&s);
	free(resp);

	resp = http_response(400, "{\"status\":\"error\",\"error\":\"parse error\"}");
	server_start(&s, resp);
	free(addr);
	addr = xasprintf("http://127.0.0.1:%d", s.port);
	assert_int_equal(prometheus(addr, "up{", 2000, &v, &err), -1);
	assert_string_equal(err.msg, "prometheus: HTTP status 400");
	server_stop(&s);
	free(resp);
	free(addr);
}

static void test_http(void **state)
{
	(void)state;
	struct server s;
	char *url, *resp;
	double v = 0;
	struct gerr err;

	resp = http_response(200, "{\"data\":{\"value\":12.5,\"list\":[1,\"2.5\",null],\"s\":\"x\"}}");
	server_start(&s, resp);
	s.max_conns = 5;
	url = xasprintf("http://127.0.0.1:%d/m/{{service}}/{{revision}}", s.port);
	assert_int_equal(http(url, "data.value", 2000, &v, &err), 0);
	assert_true(fabs(v - 12.5) < 1e-12);
	assert_string_equal(s.request, "GET /m/api/42 HTTP/1.1");
	assert_int_equal(http(url, "$.data.list[1]", 2000, &v, &err), 0);
	assert_true(fabs(v - 2.5) < 1e-12);
	assert_int_equal(http(url, "$.data.list[2]", 2000, &v, &err), 0);
	assert_true(isnan(v));
	assert_int_equal(http(url, "data.s", 2000, &v, &err), -1);
	assert_string_equal(err.msg, "http: json_path 'data.s': the value there is not a number");
	assert_int_equal(http(url, "data.nope", 2000, &v, &err), -1);
	assert_string_equal(err.msg, "http: json_path 'data.nope': no key 'nope'");
	server_stop(&s);
	free(resp);
	free(url);

	resp = http_response(503, "busy");
	server_start(&s, resp);
	url = xasprintf("http://127.0.0.1:%d/", s.port);
	assert_int_equal(http(url, NULL, 2000, &v, &err), -1);
	assert_string_equal(err.msg, "http: HTTP status 503");
	server_stop(&s);
	free(resp);
	free(url);

	/* a bare number */
	resp = http_response(200, " 0.25\n");
	server_start(&s, resp);
	url = xasprintf("http://127.0.0.1:%d/", s.port);
	assert_int_equal(http(url, NULL, 2000, &v, &err), 0);
	assert_true(fabs(v - 0.25) < 1e-12);
	server_stop(&s);
	free(resp);
	free(url);
}

static void test_http_timeout_and_refused(void **state)
{
	(void)state;
	struct server s;
	char *url;
	double v;
	struct gerr err;
	int port;

	server_start(&s, NULL); /* never answers */
	url = xasprintf("http://127.0.0.1:%d/", s.port);
	assert_int_equal(http(url, NULL, 300, &v, &err), -1);
	assert_non_null(strstr(err.msg, "http: "));
	assert_non_null(strstr(err.msg, "timed out"));
	server_stop(&s);
	free(url);

	/* a port nobody listens on any more */
	server_start(&s, "");
	port = s.port;
	server_stop(&s);
	url = xasprintf("http://127.0.0.1:%d/", port);
	assert_int_equal(http(url, NULL, 1000, &v, &err), -1);
	assert_non_null(strstr(err.msg, "http: "));
	free(url);
	/* only http and https */
	assert_int_equal(http("file:///etc/passwd", NULL, 1000, &v, &err), -1);
}

static void test_command(void **state)
{
	(void)state;
	double v = -1;
	struct gerr err;
	int64_t t0;

	assert_int_equal(command("echo 0.5", 2000, &v, &err), 0);
	assert_true(fabs(v - 0.5) < 1e-12);
	assert_int_equal(command("exit 3", 2000, &v, &err), 0);
	assert_true(fabs(v - 3) < 1e-12);
	assert_int_equal(command("echo {{revision}}; exit 1", 2000, &v, &err), 0);
	assert_true(fabs(v - 42) < 1e-12);
	assert_int_equal(command("test \"$GANTRY_SERVICE/$GANTRY_ENVIRONMENT/$GANTRY_REVISION\" = api/production/42", 2000,
				 &v, &err), 0);
	assert_true(v == 0);
	t0 = clock_mono_ms();
	assert_int_equal(command("sleep 10", 300, &v, &err), -1);
	assert_string_equal(err.msg, "command: timed out after 300ms");
	/* killed, not waited for (a generous bound: this is no timing test) */
	assert_true(clock_mono_ms() - t0 < 5000);
	/* a background child holding stdout does not hang it either */
	assert_int_equal(command("sleep 10 & echo 1", 300, &v, &err), -1);
	assert_int_equal(command("no-such-command-gantry", 2000, &v, &err), -1);
	assert_string_equal(err.msg, "command: not found (exit 127)");
	assert_int_equal(command("kill -9 $$", 2000, &v, &err), -1);
	assert_string_equal(err.msg, "command: killed by signal 9");
	/* the answer is bounded: more is an error, not a cut answer */
	assert_int_equal(command("yes 1", 5000, &v, &err), -1);
	assert_string_equal(err.msg, "command: more than 262144 bytes on stdout");
}

static void test_builtin_and_too_large(void **state)
{
	(void)state;
	struct analysis_metric m = { .name = (char *)"lat", .provider = PROVIDER_BUILTIN };
	struct server s;
	char *big, *resp, *url;
	double v;
	struct gerr err;

	assert_int_equal(measure_metric(&m, &vars, &v, &err), -1);
	assert_string_equal(err.msg, "metric 'lat': builtin metrics come from the proxy, not a provider");
	/* a body over the bound is an error, not a number read from its start */
	big = xmalloc(PROVIDER_MAX_BODY + 2);
	memset(big, '1', PROVIDER_MAX_BODY + 1);
	big[PROVIDER_MAX_BODY + 1] = 0;
	resp = http_response(200, big);
	server_start(&s, resp);
	url = xasprintf("http://127.0.0.1:%d/", s.port);
	assert_int_equal(http(url, NULL, 2000, &v, &err), -1);
	assert_string_equal(err.msg, "http: response larger than 262144 bytes");
	server_stop(&s);
	free(url);
	free(resp);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prometheus), cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_timeout_and_refused), cmocka_unit_test(test_command),
		cmocka_unit_test(test_builtin_and_too_large),
	};
	int r;
	signal(SIGPIPE, SIG_IGN); /* the server writing to a client that stopped reading */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
