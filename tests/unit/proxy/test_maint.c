/*
 * test_maint.c — src/proxy/maint.c: the page and the JSON a route in
 * maintenance answers, the Accept preference, the bypass header, the input
 * checks, and "maintenance" in the routes file (route.c).
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "proxy/maint.h"
#include "proxy/route.h"
#include "http/http.h"
#include <jansson.h>

/* a parsed request head (m is the caller's; raw must outlive it) */
static void parse_head(struct http_msg *m, const char *raw)
{
	size_t used = 0;
	int ev;
	http_msg_init(m, HTTP_KIND_REQUEST, raw);
	ev = http_msg_feed(m, raw, strlen(raw), &used);
	assert_true(ev & HTTP_EV_HEAD);
}

static bool prefers(const char *accept)
{
	return maint_accept_prefers_json(accept, strlen(accept));
}

static void test_accept_preference(void **state)
{
	(void)state;
	assert_true(prefers("application/json"));
	assert_true(prefers("Application/JSON"));
	assert_true(prefers("application/json, text/plain, */*"));
	assert_true(prefers("text/html;q=0.5, application/json"));
	assert_true(prefers("application/*"));
	assert_true(prefers("text/html;q=0.1, application/*;q=0.2"));
	assert_true(prefers("*/*;q=0.1, application/json;q=0.3"));
	/* the most specific range decides: text/html;q=0 loses to application/json */
	assert_true(prefers("text/html;q=0, */*"));
	/* HTML: what browsers send, equal preference, none, malformed */
	assert_false(prefers("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
	assert_false(prefers("*/*"));
	assert_false(prefers(""));
	assert_false(prefers("text/html, application/json"));
	assert_false(prefers("application/json;q=0.5, text/html"));
	assert_false(prefers("application/json;q=0"));
	assert_false(prefers("application/json;q=2"));   /* bad q: the range is ignored */
	assert_false(prefers("application/json;q=0.5x")); /* bad q */
	assert_false(prefers("json"));
	assert_false(prefers("text/plain"));
	assert_false(prefers(",,, ;;;/"));
	/* spaces and parameters */
	assert_true(prefers("  application/json ; charset=utf-8 ; q=1.000  "));
	assert_true(prefers("text/html; q=0.8 ,application/json; q=0.9"));
}

static void test_accept_lines(void **state)
{
	struct http_msg m = { 0 };
	(void)state;
	parse_head(&m, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_false(maint_prefers_json(&m));
	http_msg_release(&m);
	parse_head(&m, "GET / HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n");
	assert_true(maint_prefers_json(&m));
	http_msg_release(&m);
	/* two Accept lines are one list */
	parse_head(&m, "GET / HTTP/1.1\r\nHost: a\r\nAccept: text/html;q=0.4\r\nAccept: application/json\r\n\r\n");
	assert_true(maint_prefers_json(&m));
	http_msg_release(&m);
	parse_head(&m, "GET / HTTP/1.1\r\nHost: a\r\nAccept: application/json;q=0.4\r\nAccept: text/html\r\n\r\n");
	assert_false(maint_prefers_json(&m));
	http_msg_release(&m);
}

static void test_html_escape(void **state)
{
	char *e = maint_html_escape("<script>alert(\"x\" & 'y')</script>");
	(void)state;
	assert_string_equal(e, "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;");
	free(e);
	e = maint_html_escape("");
	assert_string_equal(e, "");
	free(e);
}

static void test_build(void **state)
{
	struct route_maint m = { 0 };
	json_t *j;
	char want[64];
	(void)state;
	m.message = xstrdup("Back at 10:00 <script>x</script> & \"soon\"");
	m.retry_after_s = 300;
	maint_build(&m);
	/* the page: the message escaped, never raw */
	assert_non_null(strstr(m.html_body, "Back at 10:00 &lt;script&gt;x&lt;/script&gt; &amp; &quot;soon&quot;"));
	assert_null(strstr(m.html_body, "<script>"));
	assert_int_equal(m.html_body_len, strlen(m.html_body));
	assert_true(!strncmp(m.html_head, "HTTP/1.1 503 Service Unavailable\r\n", 34));
	assert_non_null(strstr(m.html_head, "\r\nContent-Type: text/html; charset=utf-8\r\n"));
	assert_non_null(strstr(m.html_head, "\r\nRetry-After: 300\r\n"));
	assert_non_null(strstr(m.html_head, "\r\nCache-Control: no-store\r\n"));
	snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", m.html_body_len);
	assert_non_null(strstr(m.html_head, want));
	/* the head ends with a header line, not the blank line: the request adds it */
	assert_int_equal(m.html_head_len, strlen(m.html_head));
	assert_true(m.html_head_len > 2 && !strcmp(m.html_head + m.html_head_len - 2, "\r\n"));
	assert_null(strstr(m.html_head, "\r\n\r\n"));
	/* the JSON: valid, the message as given */
	j = json_loads(m.json_body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "maintenance");
	assert_string_equal(json_string_value(json_object_get(j, "message")), "Back at 10:00 <script>x</script> & \"soon\"");
	assert_int_equal(json_integer_value(json_object_get(j, "retry_after")), 300);
	json_decref(j);
	assert_non_null(strstr(m.json_head, "\r\nContent-Type: application/json\r\n"));
	snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", m.json_body_len);
	assert_non_null(strstr(m.json_head, want));
	maint_release(&m);
	assert_null(m.html_body);

	/* no message, no retry: the defaults */
	maint_build(&m);
	assert_non_null(strstr(m.html_body, MAINT_DEFAULT_MESSAGE));
	assert_non_null(strstr(m.html_head, "\r\nRetry-After: 120\r\n"));
	maint_release(&m);
}

static void test_checks(void **state)
{
	struct gerr err = { { 0 } };
	char name[MAINT_HEADER_NAME_MAX + 1], value[MAINT_HEADER_VALUE_MAX + 1], big[2048];
	(void)state;
	assert_int_equal(maint_check_message("Back soon: 10:00 UTC ✓", &err), 0);
	assert_int_equal(maint_check_message("two\r\nlines", &err), -1);
	assert_non_null(strstr(err.msg, "CR or LF"));
	assert_int_equal(maint_check_message("a\nb", &err), -1);
	assert_int_equal(maint_check_message("tab\there", &err), -1);
	assert_int_equal(maint_check_message("", &err), -1);
	assert_int_equal(maint_check_message("bad \xc3\x28 utf8", &err), -1);
	assert_non_null(strstr(err.msg, "UTF-8"));
	memset(big, 'x', MAINT_MESSAGE_MAX);
	big[MAINT_MESSAGE_MAX] = 0;
	assert_int_equal(maint_check_message(big, &err), 0);
	big[MAINT_MESSAGE_MAX] = 'x';
	big[MAINT_MESSAGE_MAX + 1] = 0;
	assert_int_equal(maint_check_message(big, &err), -1);
	assert_non_null(strstr(err.msg, "at most 1024"));

	assert_int_equal(maint_check_header_name("X-Bypass", &err), 0);
	assert_int_equal(maint_check_header_name("x bypass", &err), -1);
	assert_non_null(strstr(err.msg, "not a header name"));
	assert_int_equal(maint_check_header_name("x:y", &err), -1);
	assert_int_equal(maint_check_header_name("x\r\ny", &err), -1);
	assert_int_equal(maint_check_header_name("", &err), -1);
	assert_int_equal(maint_check_header_value("s3cret-value", &err), 0);
	assert_int_equal(maint_check_header_value("short", &err), -1);
	assert_non_null(strstr(err.msg, "at least 8"));
	assert_int_equal(maint_check_header_value("secret\r\nX-Evil: 1", &err), -1);
	assert_non_null(strstr(err.msg, "CR or LF"));
	assert_int_equal(maint_check_header_value("with space inside", &err), -1);
	assert_int_equal(maint_check_retry_after(120, &err), 0);
	assert_int_equal(maint_check_retry_after(0, &err), -1);
	assert_int_equal(maint_check_retry_after(86401, &err), -1);

	assert_int_equal(maint_split_header("X-Bypass=s3cret-value", name, sizeof(name), value, sizeof(value), &err), 0);
	assert_string_equal(name, "x-bypass");
	assert_string_equal(value, "s3cret-value");
	assert_int_equal(maint_split_header("X-Bypass=a=b=c=d=e", name, sizeof(name), value, sizeof(value), &err), 0);
	assert_string_equal(value, "a=b=c=d=e");
	assert_int_equal(maint_split_header("X-Bypass", name, sizeof(name), value, sizeof(value), &err), -1);
	assert_non_null(strstr(err.msg, "HEADER=VALUE"));
	assert_int_equal(maint_split_header("X Bypass=s3cret-value", name, sizeof(name), value, sizeof(value), &err), -1);
	assert_non_null(strstr(err.msg, "not a header name"));
	memset(big, 'a', 300);
	memcpy(big, "X=", 2);
	big[300] = 0;
	assert_int_equal(maint_split_header(big, name, sizeof(name), value, sizeof(value), &err), -1);
	assert_non_null(strstr(err.msg, "at most 256"));
}

static void test_ct_equal(void **state)
{
	(void)state;
	assert_true(maint_ct_equal("s3cret-value", 12, "s3cret-value", 12));
	assert_false(maint_ct_equal("s3cret-valuE", 12, "s3cret-value", 12));
	assert_false(maint_ct_equal("s3cret-value-and-more", 21, "s3cret-value", 12));
	assert_false(maint_ct_equal("s3cret", 6, "s3cret-value", 12));
	assert_false(maint_ct_equal("", 0, "s3cret-value", 12));
}

static const char *const routes_maint =
	"{\"routes\": [{\"hosts\": [\"web.localhost\"], \"service\": \"web\", \"environment\": \"prod\","
	" \"revisions\": [{\"revision\": \"1\", \"weight\": 100, \"backends\": [{\"address\": \"127.0.0.1:18081\"}]}],"
	" \"maintenance\": {\"message\": \"Upgrading <b>db</b>\", \"retry_after_s\": 60,"
	"  \"allow_headers\": [{\"header\": \"X-Bypass\", \"value\": \"s3cret-value\"}]}},"
	" {\"hosts\": [\"api.localhost\"], \"revisions\": []}]}";

static void test_routes_file(void **state)
{
	struct gerr err = { { 0 } };
	struct route_table *t = route_table_parse(routes_maint, strlen(routes_maint), "routes.json", &err);
	struct route *r;
	struct http_msg m = { 0 };
	(void)state;
	if (!t)
		fail_msg("%s", err.msg);
	r = route_match(t, "web.localhost");
	assert_non_null(r);
	assert_true(r->maint.on);
	assert_int_equal(r->maint.retry_after_s, 60);
	assert_int_equal(r->maint.nallow, 1);
	assert_string_equal(r->maint.allow[0].name, "x-bypass");
	assert_non_null(strstr(r->maint.html_body, "Upgrading &lt;b&gt;db&lt;/b&gt;"));
	assert_non_null(strstr(r->maint.html_head, "Retry-After: 60\r\n"));
	assert_false(route_match(t, "api.localhost")->maint.on);

	parse_head(&m, "GET / HTTP/1.1\r\nHost: web.localhost\r\nx-bypass: s3cret-value\r\n\r\n");
	assert_true(maint_allowed(&r->maint, &m));
	http_msg_release(&m);
	parse_head(&m, "GET / HTTP/1.1\r\nHost: web.localhost\r\nX-BYPASS: s3cret-valuf\r\n\r\n");
	assert_false(maint_allowed(&r->maint, &m));
	http_msg_release(&m);
	/* any of the header's lines may carry it */
	parse_head(&m, "GET / HTTP/1.1\r\nHost: web.localhost\r\nX-Bypass: no\r\nX-Bypass: s3cret-value\r\n\r\n");
	assert_true(maint_allowed(&r->maint, &m));
	http_msg_release(&m);
	parse_head(&m, "GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n");
	assert_false(maint_allowed(&r->maint, &m));
	http_msg_release(&m);
	route_table_unref(t);
}

static void parse_err(const char *maint, const char *want)
{
	struct gerr err = { { 0 } };
	char *json = xasprintf("{\"routes\": [{\"hosts\": [\"*\"], \"revisions\": [], \"maintenance\": %s}]}", maint);
	struct route_table *t = route_table_parse(json, strlen(json), "routes.json", &err);
	if (t) {
		route_table_unref(t);
		fail_msg("accepted: %s", json);
	}
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	free(json);
}

static void test_routes_file_errors(void **state)
{
	(void)state;
	parse_err("[]", "routes[0].maintenance: expected an object");
	parse_err("{\"mesage\": \"x\"}", "routes[0].maintenance: unknown key 'mesage'");
	parse_err("{\"message\": \"a\\r\\nb\"}", "routes[0].maintenance.message: must not contain CR or LF");
	parse_err("{\"retry_after_s\": 0}", "routes[0].maintenance.retry_after_s: 0 is out of range 1..86400");
	parse_err("{\"allow_headers\": {}}", "routes[0].maintenance.allow_headers: expected an array");
	parse_err("{\"allow_headers\": [{\"header\": \"a b\", \"value\": \"s3cret-value\"}]}",
		  "routes[0].maintenance.allow_headers[0].header: 'a b' is not a header name");
	parse_err("{\"allow_headers\": [{\"header\": \"x\", \"value\": \"s3cret\\r\\nX: y\"}]}",
		  "routes[0].maintenance.allow_headers[0].value: header value must not contain CR or LF");
	parse_err("{\"allow_headers\": [{\"header\": \"x\"}]}", "routes[0].maintenance.allow_headers[0].value: missing");
	parse_err("{\"allow_headers\": [1,2,3,4,5,6,7,8,9]}", "at most 8");
	/* false and null: no maintenance */
	{
		const char *ok = "{\"routes\": [{\"hosts\": [\"*\"], \"revisions\": [], \"maintenance\": false}]}";
		struct gerr err = { { 0 } };
		struct route_table *t = route_table_parse(ok, strlen(ok), "routes.json", &err);
		assert_non_null(t);
		assert_false(t->any->maint.on);
		route_table_unref(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_preference),
		cmocka_unit_test(test_accept_lines),
		cmocka_unit_test(test_html_escape),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_routes_file),
		cmocka_unit_test(test_routes_file_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
