/*
 * test_provider.c — provider measurements as data: the request each
 * provider makes and how its answer is read (rollout/provider.c). No I/O:
 * taking them for real is tests/unit/runtime/test_measure.c.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include "rollout/provider.h"

static const struct provider_vars vars = { .service = "api", .environment = "production", .revision = 42 };

static struct analysis_metric metric(enum metric_provider p)
{
	struct analysis_metric m = { .name = (char *)"m", .provider = p };
	return m;
}

/* reads body (and exit status) as m's answer: the return value, *v and err */
static int rd(const struct analysis_metric *m, const char *body, int status, double *v, struct gerr *err)
{
	struct provider_reply r = { .data = body, .len = strlen(body), .exit_status = status };
	*v = -12345;
	return provider_read(m, &r, v, err);
}

static void test_requests(void **state)
{
	struct analysis_metric m = metric(PROVIDER_PROMETHEUS);
	struct provider_req q;
	struct gerr err;
	(void)state;

	m.address = (char *)"http://prom:9090//";
	m.query = (char *)"sum(rate(errors{revision=\"{{revision}}\",service=\"{{service}}\"}[1m]))";
	assert_int_equal(provider_request(&m, &vars, &q, &err), 0);
	assert_int_equal(q.io, PROVIDER_IO_GET);
	assert_string_equal(q.what, "prometheus");
	/* the query URL-encoded, with the revision and service filled in */
	assert_string_equal(q.target, "http://prom:9090/api/v1/query?query=sum%28rate%28errors%7Brevision%3D%2242%22%2C"
				      "service%3D%22api%22%7D%5B1m%5D%29%29");
	assert_int_equal(q.timeout_ms, PROVIDER_DEFAULT_TIMEOUT_MS);
	assert_int_equal(q.max_answer, PROVIDER_MAX_BODY);
	provider_req_release(&q);
	m.query = NULL;
	assert_int_equal(provider_request(&m, &vars, &q, &err), -1);
	assert_string_equal(err.msg, "prometheus: address and query are required");

	m = metric(PROVIDER_HTTP);
	m.url = (char *)"http://m/{{service}}/{{environment}}/{{revision}}?q=a b";
	m.timeout_ms = 1500;
	assert_int_equal(provider_request(&m, &vars, &q, &err), 0);
	assert_int_equal(q.io, PROVIDER_IO_GET);
	/* only the values are encoded, not the template around them */
	assert_string_equal(q.target, "http://m/api/production/42?q=a b");
	assert_int_equal(q.timeout_ms, 1500);
	provider_req_release(&q);
	m.url = NULL;
	assert_int_equal(provider_request(&m, &vars, &q, &err), -1);
	assert_string_equal(err.msg, "http: url is required");

	m = metric(PROVIDER_COMMAND);
	m.command = (char *)"./check {{revision}} '{{service}}'";
	assert_int_equal(provider_request(&m, &vars, &q, &err), 0);
	assert_int_equal(q.io, PROVIDER_IO_SHELL);
	assert_string_equal(q.what, "command");
	assert_string_equal(q.target, "./check 42 'api'");
	assert_string_equal(q.vars.service, "api");
	assert_int_equal(q.vars.revision, 42);
	provider_req_release(&q);

	m = metric(PROVIDER_BUILTIN);
	m.name = (char *)"error_rate";
	assert_int_equal(provider_request(&m, &vars, &q, &err), -1);
	assert_string_equal(err.msg, "metric 'error_rate': builtin metrics come from the proxy, not a provider");
}

static void test_read_prometheus(void **state)
{
	struct analysis_metric m = metric(PROVIDER_PROMETHEUS);
	struct gerr err;
	double v;
	(void)state;
	assert_int_equal(rd(&m, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
				"[{\"metric\":{},\"value\":[1700000000.1,\"0.5\"]}]}}", 0, &v, &err), 0);
	assert_true(fabs(v - 0.5) < 1e-12);
	/* an empty vector is no data, not an error */
	assert_int_equal(rd(&m, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}", 0, &v, &err),
			 0);
	assert_true(isnan(v));
	assert_int_equal(rd(&m, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
				"[{\"value\":[1,\"1\"]},{\"value\":[1,\"2\"]}]}}", 0, &v, &err), -1);
	assert_string_equal(err.msg, "prometheus: the query returned 2 series; aggregate it to one (sum, max, avg)");
	assert_int_equal(rd(&m, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"7.5\"]}}", 0,
			    &v, &err), 0);
	assert_true(fabs(v - 7.5) < 1e-12);
	assert_int_equal(rd(&m, "{\"status\":\"error\",\"data\":{},\"error\":\"parse error\"}", 0, &v, &err), -1);
	assert_string_equal(err.msg, "prometheus: parse error");
	assert_int_equal(rd(&m, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}", 0, &v, &err),
			 -1);
	assert_string_equal(err.msg, "prometheus: a matrix result; use an instant query giving a scalar or one series");
	assert_int_equal(rd(&m, "<html>", 0, &v, &err), -1);
	assert_string_equal(err.msg, "prometheus: the answer is not a query result");
}

static void test_read_http_and_command(void **state)
{
	struct analysis_metric m = metric(PROVIDER_HTTP);
	const char *body = "{\"data\":{\"value\":12.5,\"list\":[1,\"2.5\",null],\"s\":\"x\"}}";
	struct gerr err;
	double v;
	(void)state;
	m.json_path = (char *)"data.value";
	assert_int_equal(rd(&m, body, 0, &v, &err), 0);
	assert_true(fabs(v - 12.5) < 1e-12);
	m.json_path = (char *)"$.data.list[1]";
	assert_int_equal(rd(&m, body, 0, &v, &err), 0);
	assert_true(fabs(v - 2.5) < 1e-12);
	m.json_path = (char *)"$.data.list[2]";
	assert_int_equal(rd(&m, body, 0, &v, &err), 0);
	assert_true(isnan(v));
	m.json_path = (char *)"data.s";
	assert_int_equal(rd(&m, body, 0, &v, &err), -1);
	assert_string_equal(err.msg, "http: json_path 'data.s': the value there is not a number");
	m.json_path = (char *)"data.nope";
	assert_int_equal(rd(&m, body, 0, &v, &err), -1);
	assert_string_equal(err.msg, "http: json_path 'data.nope': no key 'nope'");
	assert_int_equal(rd(&m, "not json", 0, &v, &err), -1);
	/* a bare number */
	m.json_path = NULL;
	assert_int_equal(rd(&m, " 0.25\n", 0, &v, &err), 0);
	assert_true(fabs(v - 0.25) < 1e-12);
	assert_int_equal(rd(&m, "busy", 0, &v, &err), -1);
	assert_string_equal(err.msg, "http: the body is not a number (give json_path for a JSON answer)");

	m = metric(PROVIDER_COMMAND);
	assert_int_equal(rd(&m, "0.5\n", 0, &v, &err), 0);
	assert_true(fabs(v - 0.5) < 1e-12);
	/* no number printed: the exit status */
	assert_int_equal(rd(&m, "", 3, &v, &err), 0);
	assert_true(v == 3);
	assert_int_equal(rd(&m, "42\n", 1, &v, &err), 0);
	assert_true(v == 42);
	assert_int_equal(rd(&m, "sh: 1: x: not found\n", 127, &v, &err), -1);
	assert_string_equal(err.msg, "command: not found (exit 127)");
}

static void test_paths_and_templates(void **state)
{
	double v;
	struct gerr err;
	json_t *j = json_loads("[{\"a\": [0, 5]}]", 0, NULL);
	char *e, *big;
	(void)state;

	assert_int_equal(json_path_number(j, "[0].a[1]", &v, &err), 0);
	assert_true(v == 5);
	assert_int_equal(json_path_number(j, "$[0].a[9]", &v, &err), -1);
	assert_int_equal(json_path_number(j, "[x]", &v, &err), -1);
	json_decref(j);
	e = provider_expand("{{service}}.{{environment}} r{{revision}} {{other}}", &vars, false);
	assert_string_equal(e, "api.production r42 {{other}}");
	free(e);
	e = provider_expand("/{{service}}?x={{environment}}", &(struct provider_vars){ .service = "a b/c",
										      .environment = "é~" }, true);
	assert_string_equal(e, "/a%20b%2Fc?x=%C3%A9~");
	free(e);
	/* bounded: what does not fit in one argument is refused */
	big = xmalloc(PROVIDER_MAX_TEXT / 8 + 1);
	for (size_t i = 0; i < PROVIDER_MAX_TEXT / 8; i++)
		big[i] = i % 2 ? '/' : 'x';
	big[PROVIDER_MAX_TEXT / 8] = 0;
	e = provider_expand("{{service}}", &(struct provider_vars){ .service = big }, false);
	assert_non_null(e);
	free(e);
	/* seven eighths of the bound, and the value's '/' encoded in three bytes each: over it */
	{
		char *tmpl = xasprintf("%s%s%s%s%s%s%s{{service}}", big, big, big, big, big, big, big);
		e = provider_expand(tmpl, &(struct provider_vars){ .service = big }, false);
		assert_non_null(e);
		free(e);
		e = provider_expand(tmpl, &(struct provider_vars){ .service = big }, true);
		assert_null(e);
		free(tmpl);
	}
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_read_prometheus),
		cmocka_unit_test(test_read_http_and_command),
		cmocka_unit_test(test_paths_and_templates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
