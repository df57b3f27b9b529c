#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include "gates/checks.h"

static json_t *run_list(const char *json, int port, bool *ok)
{
	json_t *l = json_loads(json, 0, NULL), *r;
	assert_non_null(l);
	r = checks_run_list(l, NULL, port, ok);
	json_decref(l);
	return r;
}

static const char *field(json_t *r, size_t i, const char *k)
{
	return json_string_value(json_object_get(json_array_get(r, i), k));
}

static void test_run_checks(void **state)
{
	bool ok;
	json_t *r;
	(void)state;
	r = run_list("[{\"run\": \"echo pre-check passed; echo to stderr >&2\"}, {\"run\": \"test \\\"$PORT\\\" = 1234\"}]", 1234, &ok);
	assert_true(ok);
	assert_int_equal(json_array_size(r), 2);
	assert_non_null(strstr(field(r, 0, "output"), "pre-check passed"));
	assert_non_null(strstr(field(r, 0, "output"), "to stderr"));
	json_decref(r);
	/* a failure stops the list; the rest is skipped */
	r = run_list("[{\"run\": \"echo db migrations pending; exit 3\"}, {\"run\": \"true\"}]", 0, &ok);
	assert_false(ok);
	assert_non_null(strstr(field(r, 0, "output"), "db migrations pending"));
	assert_non_null(strstr(field(r, 0, "output"), "exit status 3"));
	assert_true(json_is_true(json_object_get(json_array_get(r, 1), "skipped")));
	json_decref(r);
}

static void test_timeout_and_bounded_output(void **state)
{
	bool ok;
	json_t *r;
	(void)state;
	/* the check and what it started are killed at the timeout */
	r = run_list("[{\"run\": \"sleep 30 & sleep 30\", \"timeout\": \"300ms\"}]", 0, &ok);
	assert_false(ok);
	assert_non_null(strstr(field(r, 0, "output"), "timed out after 300ms"));
	assert_true(json_integer_value(json_object_get(json_array_get(r, 0), "duration_ms")) < 5000);
	json_decref(r);
	r = run_list("[{\"run\": \"seq 1 100000; echo THE-END\"}]", 0, &ok);
	assert_true(ok);
	assert_true(strlen(field(r, 0, "output")) <= CHECK_OUTPUT_MAX + 16);
	assert_non_null(strstr(field(r, 0, "output"), "THE-END"));
	assert_int_equal(strncmp(field(r, 0, "output"), "[...]", 5), 0);
	json_decref(r);
}

static void test_validate(void **state)
{
	static const char *const bad[] = {
		"{}", "{\"run\": \"x\", \"http\": \"GET /\"}", "{\"http\": \"POST /\"}", "{\"http\": \"GET /a b\"}",
		"{\"run\": \"\"}", "{\"run\": \"x\", \"expect\": 200}", "{\"http\": \"GET /\", \"expect\": 99}",
		"{\"run\": \"x\", \"timeout\": \"1h\"}", "{\"run\": \"x\", \"rn\": 1}", "[]",
	};
	struct gerr err;
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *c = json_loads(bad[i], 0, NULL);
		if (check_validate(c, &err) == 0)
			fail_msg("accepted %s", bad[i]);
		json_decref(c);
	}
}

struct server {
	int fd;
	int replies;
	const char *status;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	for (int i = 0; i < s->replies; i++) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		char buf[2048], resp[128];
		int c;
		if (poll(&p, 1, 5000) <= 0)
			break;
		c = accept(s->fd, NULL, NULL);
		if (c < 0)
			break;
		if (read(c, buf, sizeof(buf)) > 0) {
			snprintf(resp, sizeof(resp), "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", s->status);
			if (write(c, resp, strlen(resp)) < 0)
				i = s->replies;
		}
		close(c);
	}
	return NULL;
}

static void test_http_checks(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct server s = { .replies = 2, .status = "503 Service Unavailable" };
	pthread_t t;
	char list[256];
	bool ok;
	json_t *r;
	int port;
	(void)state;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s.fd, 4), 0);
	getsockname(s.fd, (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	pthread_create(&t, NULL, serve, &s);
	r = run_list("[{\"http\": \"GET /health\", \"expect\": 503}]", port, &ok);
	assert_true(ok);
	assert_non_null(strstr(field(r, 0, "output"), "GET /health -> 503"));
	json_decref(r);
	snprintf(list, sizeof(list), "[{\"http\": \"GET /health\"}]");
	r = run_list(list, port, &ok);
	assert_false(ok); /* expects 200 by default */
	assert_non_null(strstr(field(r, 0, "output"), "503 (expected 200)"));
	json_decref(r);
	pthread_join(t, NULL);
	close(s.fd);
	/* nothing listens there any more */
	r = run_list(list, port, &ok);
	assert_false(ok);
	json_decref(r);
	r = run_list(list, 0, &ok);
	assert_false(ok);
	json_decref(r);
}

static void test_async(void **state)
{
	int64_t key = 0;
	json_t *res = NULL;
	bool ok = true;
	int got = 0;
	(void)state;
	assert_int_equal(checks_start(42, json_loads("[{\"run\": \"exit 1\"}]", 0, NULL), NULL, 0), 0);
	for (int i = 0; i < 500 && !got; i++) {
		got = checks_poll(&key, &res, &ok);
		if (!got)
			usleep(10000);
	}
	assert_int_equal(got, 1);
	assert_int_equal(key, 42);
	assert_false(ok);
	json_decref(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_checks), cmocka_unit_test(test_timeout_and_bounded_output),
		cmocka_unit_test(test_validate),   cmocka_unit_test(test_http_checks),
		cmocka_unit_test(test_async),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
