/*
 * test_accesslog.c — --access-log (src/proxy/accesslog.c): one JSON line
 * per finished exchange, written by the control thread (at the latest when
 * the proxy stops).
 */
#include "px_test.h"
#include <jansson.h>

static char log_path[128];

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	pt_setup(state);
	snprintf(log_path, sizeof(log_path), "%s/gantry-pt-alog-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(log_path);
	if (fd < 0)
		return -1;
	close(fd);
	pt_proxy.cfg.access_log = log_path;
	return 0;
}

static int teardown(void **state)
{
	pt_teardown(state);
	unlink(log_path);
	return 0;
}

static void test_lines(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	char json[512], line[4096];
	struct pt_conn *c;
	struct pt_resp r;
	json_t *j[2];
	FILE *f;
	int n = 0;
	(void)state;

	snprintf(json, sizeof(json),
		 "{\"routes\": [{\"hosts\": [\"app.test\"], \"service\": \"alog\", \"environment\": \"t\","
		 " \"revisions\": [{\"revision\": \"v1\", \"weight\": 100,"
		 " \"backends\": [{\"address\": \"127.0.0.1:%u\"}]}]}]}",
		 up->port);
	assert_int_equal(pt_px_start(json), 0);
	c = pt_connect(pt_proxy.port);
	pt_send(c, "GET /logged?x=1 HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: rid-1\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	pt_send(c, "GET /nowhere HTTP/1.1\r\nHost: \"odd\".test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 400);
	pt_close(c);
	pt_px_stop(); /* the last lines are written at the stop */

	f = fopen(log_path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_error_t e;
		assert_true(n < 2);
		j[n] = json_loads(line, 0, &e);
		if (!j[n])
			fail_msg("not JSON: %s (%s)", line, e.text);
		n++;
	}
	fclose(f);
	assert_int_equal(n, 2);
	assert_string_equal(json_string_value(json_object_get(j[0], "method")), "GET");
	assert_string_equal(json_string_value(json_object_get(j[0], "client")), "127.0.0.1");
	assert_string_equal(json_string_value(json_object_get(j[0], "host")), "app.test");
	assert_string_equal(json_string_value(json_object_get(j[0], "path")), "/logged?x=1");
	assert_int_equal(json_integer_value(json_object_get(j[0], "status")), 200);
	assert_string_equal(json_string_value(json_object_get(j[0], "service")), "alog");
	assert_string_equal(json_string_value(json_object_get(j[0], "revision")), "v1");
	assert_int_equal(json_integer_value(json_object_get(j[0], "tries")), 1);
	assert_true(json_is_false(json_object_get(j[0], "shielded")));
	assert_string_equal(json_string_value(json_object_get(j[0], "request_id")), "rid-1");
	/* an answer made before any routing: empty labels */
	assert_int_equal(json_integer_value(json_object_get(j[1], "status")), 400);
	assert_string_equal(json_string_value(json_object_get(j[1], "service")), "");
	assert_string_equal(json_string_value(json_object_get(j[1], "path")), "/nowhere");
	json_decref(j[0]);
	json_decref(j[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
