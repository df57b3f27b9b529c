#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "proxy/route.h"
#include "http/http.h"

static int http_host_normalize_wrap(const char *in, char *out, size_t outsz)
{
	return http_host_normalize(in, strlen(in), out, outsz);
}

static struct route_table *parse_ok(const char *json)
{
	struct gerr err = { { 0 } };
	struct route_table *t = route_table_parse(json, strlen(json), "routes.json", &err);
	if (!t)
		fail_msg("unexpected error: %s", err.msg);
	return t;
}

/* parses json, expects an error containing want */
static void parse_err(const char *json, const char *want)
{
	struct gerr err = { { 0 } };
	struct route_table *t = route_table_parse(json, strlen(json), "routes.json", &err);
	if (t) {
		route_table_unref(t);
		fail_msg("accepted: %s", json);
	}
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

static int count_pick(struct route *r, int n, const char *addr)
{
	int hits = 0;
	for (int i = 0; i < n; i++) {
		struct backend *b = route_pick(r, 0, NULL);
		assert_non_null(b);
		hits += !strcmp(b->address, addr);
	}
	return hits;
}

static void test_swrr_90_10(void **state)
{
	struct route_table *t = parse_ok(
		"{\"routes\": [{\"hosts\": [\"*\"], \"backends\": ["
		"{\"address\": \"127.0.0.1:18081\", \"weight\": 90},"
		"{\"address\": \"127.0.0.1:18082\", \"weight\": 10}]}]}");
	(void)state;
	/* exactly 90/10 in every window of 100 picks, not just on average */
	for (int round = 0; round < 5; round++)
		assert_int_equal(count_pick(t->any, 100, "127.0.0.1:18081"), 90);
	route_table_unref(t);
}

static void test_swrr_smooth_3way(void **state)
{
	struct route_table *t = parse_ok(
		"{\"routes\": [{\"hosts\": [\"*\"], \"backends\": ["
		"{\"address\": \"127.0.0.1:1\", \"weight\": 5},"
		"{\"address\": \"127.0.0.1:2\", \"weight\": 1},"
		"{\"address\": \"127.0.0.1:3\", \"weight\": 1}]}]}");
	const char *seq[7];
	int a = 0, b = 0, c = 0;
	(void)state;
	/* nginx's SWRR gives a a b a c a a for weights 5,1,1 */
	for (int i = 0; i < 7; i++)
		seq[i] = route_pick(t->any, 0, NULL)->address;
	assert_string_equal(seq[0], "127.0.0.1:1");
	assert_string_equal(seq[1], "127.0.0.1:1");
	assert_string_equal(seq[2], "127.0.0.1:2");
	assert_string_equal(seq[3], "127.0.0.1:1");
	assert_string_equal(seq[4], "127.0.0.1:3");
	assert_string_equal(seq[5], "127.0.0.1:1");
	assert_string_equal(seq[6], "127.0.0.1:1");
	for (int i = 0; i < 700; i++) {
		const char *x = route_pick(t->any, 0, NULL)->address;
		a += !strcmp(x, "127.0.0.1:1");
		b += !strcmp(x, "127.0.0.1:2");
		c += !strcmp(x, "127.0.0.1:3");
	}
	assert_int_equal(a, 500);
	assert_int_equal(b, 100);
	assert_int_equal(c, 100);
	route_table_unref(t);
}

static void test_pick_skips(void **state)
{
	struct route_table *t = parse_ok(
		"{\"routes\": [{\"hosts\": [\"*\"], \"backends\": ["
		"{\"address\": \"127.0.0.1:1\", \"weight\": 1},"
		"{\"address\": \"127.0.0.1:2\", \"weight\": 0},"
		"{\"address\": \"127.0.0.1:3\", \"weight\": 1}]},"
		"{\"hosts\": [\"zero\"], \"backends\": [{\"address\": \"127.0.0.1:4\", \"weight\": 0}]},"
		"{\"hosts\": [\"none\"]}]}");
	struct backend *b1, *b3;
	(void)state;
	b1 = t->any->backends[0].be;
	b3 = t->any->backends[2].be;
	/* weight 0 is never picked */
	for (int i = 0; i < 10; i++)
		assert_ptr_not_equal(route_pick(t->any, 0, NULL), t->any->backends[1].be);
	/* three connect failures eject for 10 s */
	assert_false(backend_connect_result(b1, false, 1000));
	assert_false(backend_connect_result(b1, false, 1000));
	assert_true(backend_connect_result(b1, false, 1000));
	for (int i = 0; i < 10; i++)
		assert_ptr_equal(route_pick(t->any, 2000, NULL), b3);
	/* all ejected: still picks rather than failing */
	backend_connect_result(b3, false, 1000);
	backend_connect_result(b3, false, 1000);
	backend_connect_result(b3, false, 1000);
	assert_non_null(route_pick(t->any, 2000, NULL));
	/* after 10 s b1 is back */
	{
		int hits = 0;
		for (int i = 0; i < 10; i++)
			hits += route_pick(t->any, 11001, NULL) == b1;
		assert_int_equal(hits, 5);
	}
	/* avoid is skipped when there is another choice */
	backend_connect_result(b1, true, 0);
	backend_connect_result(b3, true, 0);
	for (int i = 0; i < 10; i++)
		assert_ptr_equal(route_pick(t->any, 0, b1), b3);
	assert_null(route_pick(route_match(t, "zero"), 0, NULL));
	assert_null(route_pick(route_match(t, "none"), 0, NULL));
	route_table_unref(t);
}

static void test_host_match(void **state)
{
	struct route_table *t = parse_ok(
		"{\"generation\": 7, \"routes\": ["
		"{\"hosts\": [\"Web.Staging.localhost\", \"*.example.com\"], \"service\": \"web\"},"
		"{\"hosts\": [\"*.api.example.com\"], \"service\": \"api\"},"
		"{\"hosts\": [\"exact.api.example.com\"], \"service\": \"exact\"},"
		"{\"hosts\": [\"*\"], \"service\": \"default\"}]}");
	(void)state;
	assert_int_equal(t->generation, 7);
	assert_string_equal(route_match(t, "web.staging.localhost")->service, "web");
	assert_string_equal(route_match(t, "a.example.com")->service, "web");
	assert_string_equal(route_match(t, "a.b.example.com")->service, "web");
	/* longest suffix wins; exact beats any wildcard */
	assert_string_equal(route_match(t, "v1.api.example.com")->service, "api");
	assert_string_equal(route_match(t, "exact.api.example.com")->service, "exact");
	/* "*.example.com" does not match the bare domain */
	assert_string_equal(route_match(t, "example.com")->service, "default");
	assert_string_equal(route_match(t, "other")->service, "default");
	route_table_unref(t);

	t = parse_ok("{\"routes\": [{\"hosts\": [\"only\"]}]}");
	assert_null(route_match(t, "other"));
	assert_int_equal(t->generation, 0);
	route_table_unref(t);
}

static void test_host_normalize(void **state)
{
	char out[64];
	(void)state;
	assert_int_equal(http_host_normalize_wrap("Web.Example.COM:8080", out, sizeof(out)), 0);
	assert_string_equal(out, "web.example.com");
	assert_int_equal(http_host_normalize_wrap("[::1]:80", out, sizeof(out)), 0);
	assert_string_equal(out, "[::1]");
	assert_int_equal(http_host_normalize_wrap("a.b", out, sizeof(out)), 0);
	assert_string_equal(out, "a.b");
	assert_int_equal(http_host_normalize_wrap("", out, sizeof(out)), -1);
	assert_int_equal(http_host_normalize_wrap(":80", out, sizeof(out)), -1);
	assert_int_equal(http_host_normalize_wrap("a b", out, sizeof(out)), -1);
	assert_int_equal(http_host_normalize_wrap("a:8x", out, sizeof(out)), -1);
	assert_int_equal(http_host_normalize_wrap("a/b", out, sizeof(out)), -1);
}

static void test_parse_errors(void **state)
{
	(void)state;
	parse_err("{\"routes\": [", "routes.json:1:");
	parse_err("[]", "(top level): expected an object");
	parse_err("{}", "routes: missing");
	parse_err("{\"routes\": {}}", "routes: expected an array, got an object");
	parse_err("{\"generation\": \"1\", \"routes\": []}", "generation: expected an integer, got a string");
	parse_err("{\"generation\": -1, \"routes\": []}", "generation: must not be negative");
	parse_err("{\"routes\": [1]}", "routes[0]: expected an object, got an integer");
	parse_err("{\"routes\": [{}]}", "routes[0].hosts: missing");
	parse_err("{\"routes\": [{\"hosts\": [\"a\", 2]}]}", "routes[0].hosts[1]: expected a string, got an integer");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"service\": 3}]}", "routes[0].service: expected a string");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"]}, {\"hosts\": [\"b\", \"A\"]}]}",
		  "routes[1].hosts[1]: 'A' is already used by routes[0]");
	parse_err("{\"routes\": [{\"hosts\": [\"*\"]}, {\"hosts\": [\"*\"]}]}", "routes[1].hosts[0]: '*' is already used");
	parse_err("{\"routes\": [{\"hosts\": [\"a*b\"]}]}", "routes[0].hosts[0]: 'a*b' is not a host name");
	parse_err("{\"routes\": [{\"hosts\": [\"a:80\"]}]}", "routes[0].hosts[0]: 'a:80' is not a host name");
	parse_err("{\"routes\": [{\"hosts\": [\"*.\"]}]}", "routes[0].hosts[0]: '*.': a wildcard must look like");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"backends\": {}}]}", "routes[0].backends: expected an array");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"backends\": [{}]}]}", "routes[0].backends[0].address: missing");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"backends\": [{\"address\": \"x\"}]}]}",
		  "routes[0].backends[0].address: invalid address 'x'");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"backends\": [{\"address\": \"127.0.0.1:0\"}]}]}",
		  "routes[0].backends[0].address: invalid address");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"backends\": [{\"address\": \"127.0.0.1:1\"},"
		  " {\"address\": \"127.0.0.1:2\", \"weight\": \"9\"}]}]}",
		  "routes[0].backends[1].weight: expected an integer, got a string");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"backends\": [{\"address\": \"127.0.0.1:1\", \"weight\": -1}]}]}",
		  "routes[0].backends[0].weight: -1 is out of range");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"backends\": [{\"address\": \"127.0.0.1:1\", \"revision\": true}]}]}",
		  "routes[0].backends[0].revision: expected a string, got a boolean");
	parse_err("{\"routes\": [], \"routes\": []}", "duplicate");
	/* a failed parse leaves no backend behind */
	assert_null(backend_first());
}

static void test_refcount_and_sharing(void **state)
{
	const char *j1 = "{\"generation\": 1, \"routes\": [{\"hosts\": [\"*\"], \"service\": \"web\","
			 " \"backends\": [{\"address\": \"[::1]:8081\", \"revision\": 3}]}]}";
	const char *j2 = "{\"generation\": 2, \"routes\": [{\"hosts\": [\"*\"], \"service\": \"web\","
			 " \"backends\": [{\"address\": \"[::1]:8081\", \"revision\": \"3\"},"
			 " {\"address\": \"127.0.0.1:8082\", \"revision\": \"4\"}]}]}";
	struct route_table *t1 = parse_ok(j1), *t2;
	struct backend *b;
	(void)state;

	b = t1->any->backends[0].be;
	assert_string_equal(b->revision, "3");
	assert_int_equal(b->refs, 1);
	t2 = parse_ok(j2);
	/* the same tuple is the same backend object across tables */
	assert_ptr_equal(t2->any->backends[0].be, b);
	assert_int_equal(b->refs, 2);
	/* an in-flight request keeps its table (and backends) alive */
	route_table_ref(t1);
	route_table_unref(t1);
	assert_int_equal(t1->refs, 1);
	route_table_unref(t1);
	assert_int_equal(b->refs, 1);
	assert_ptr_equal(b->ms, metric_series_get("web", "", "3"));
	route_table_unref(t2);
	assert_null(backend_first());
	/* series outlive backends: counters never go backwards */
	assert_non_null(metric_series_get("web", "", "4"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swrr_90_10),
		cmocka_unit_test(test_swrr_smooth_3way),
		cmocka_unit_test(test_pick_skips),
		cmocka_unit_test(test_host_match),
		cmocka_unit_test(test_host_normalize),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_refcount_and_sharing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
