#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "proxy/route.h"
#include "proxy/proxy.h"
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

static int count_pick(struct route_table *t, struct route *r, int n, const char *addr)
{
	int hits = 0;
	for (int i = 0; i < n; i++) {
		struct backend *b = route_pick(t, r, 0, NULL);
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
		assert_int_equal(count_pick(t, t->any, 100, "127.0.0.1:18081"), 90);
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
		seq[i] = route_pick(t, t->any, 0, NULL)->address;
	assert_string_equal(seq[0], "127.0.0.1:1");
	assert_string_equal(seq[1], "127.0.0.1:1");
	assert_string_equal(seq[2], "127.0.0.1:2");
	assert_string_equal(seq[3], "127.0.0.1:1");
	assert_string_equal(seq[4], "127.0.0.1:3");
	assert_string_equal(seq[5], "127.0.0.1:1");
	assert_string_equal(seq[6], "127.0.0.1:1");
	for (int i = 0; i < 700; i++) {
		const char *x = route_pick(t, t->any, 0, NULL)->address;
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
	b1 = t->any->revs[0].backends[0].be;
	b3 = t->any->revs[0].backends[2].be;
	/* weight 0 is never picked */
	for (int i = 0; i < 10; i++)
		assert_ptr_not_equal(route_pick(t, t->any, 0, NULL), t->any->revs[0].backends[1].be);
	/* three connect failures eject for 10 s */
	assert_false(backend_connect_result(b1, false, 1000));
	assert_false(backend_connect_result(b1, false, 1000));
	assert_true(backend_connect_result(b1, false, 1000));
	for (int i = 0; i < 10; i++)
		assert_ptr_equal(route_pick(t, t->any, 2000, NULL), b3);
	/* all ejected: still picks rather than failing */
	backend_connect_result(b3, false, 1000);
	backend_connect_result(b3, false, 1000);
	backend_connect_result(b3, false, 1000);
	assert_non_null(route_pick(t, t->any, 2000, NULL));
	/* after 10 s b1 is back */
	{
		int hits = 0;
		for (int i = 0; i < 10; i++)
			hits += route_pick(t, t->any, 11001, NULL) == b1;
		assert_int_equal(hits, 5);
	}
	/* avoid is skipped when there is another choice */
	backend_connect_result(b1, true, 0);
	backend_connect_result(b3, true, 0);
	for (int i = 0; i < 10; i++)
		assert_ptr_equal(route_pick(t, t->any, 0, b1), b3);
	assert_null(route_pick(t, route_match(t, "zero"), 0, NULL));
	assert_null(route_pick(t, route_match(t, "none"), 0, NULL));
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
	/* a host twice in one route is a broken route; in two routes, see test_colliding_routes */
	parse_err("{\"routes\": [{\"hosts\": [\"b\", \"B\"]}]}",
		  "routes[0].hosts[1]: 'B' is already listed in this route");
	/* a dropped route is still parsed: a broken one still refuses the table */
	parse_err("{\"routes\": [{\"hosts\": [\"a\"]}, {\"hosts\": [\"a\"], \"backends\": [{}]}]}",
		  "routes[1].backends[0].address: missing");
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

	b = t1->any->revs[0].backends[0].be;
	assert_string_equal(b->revision, "3");
	assert_int_equal(b->refs, 1);
	t2 = parse_ok(j2);
	/* the same tuple is the same backend object across tables */
	assert_ptr_equal(t2->any->revs[0].backends[0].be, b);
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

static const char *V2 =
	"{\"generation\": 17, \"routes\": [{\"hosts\": [\"web.prod.localhost\", \"*.example.com\"],"
	" \"service\": \"web\", \"environment\": \"prod\", \"revisions\": ["
	"  {\"revision\": \"41\", \"weight\": 90, \"tags\": [\"stable\"], \"backends\": ["
	"     {\"address\": \"127.0.0.1:18081\"}, {\"address\": \"127.0.0.1:18082\"}]},"
	"  {\"revision\": 42, \"weight\": 10, \"tags\": [\"canary\", \"Preview\"], \"backends\": ["
	"     {\"address\": \"127.0.0.1:18083\"}]}],"
	" \"header_rules\": [{\"header\": \"Canary\", \"value\": \"true\", \"revision\": \"42\"},"
	"                   {\"header\": \"x-user\", \"value\": \"beta-\", \"prefix\": true, \"revision\": \"42\"}],"
	" \"sticky\": {\"cookie\": \"gantry_rev\", \"max_age_s\": 3600}, \"tag_hosts\": true,"
	" \"shield\": {\"canary\": \"42\", \"stable\": 41}}]}";

/* a parsed request head over a static buffer (kept in *buf: the spans point there) */
static void head(struct http_msg *m, const char *raw)
{
	size_t used;
	http_msg_init(m, HTTP_KIND_REQUEST, raw);
	assert_true(http_msg_feed(m, raw, strlen(raw), &used) & HTTP_EV_HEAD);
}

static int choose(struct route_table *t, const char *host, const char *raw, struct route_choice *ch)
{
	struct http_msg m;
	int tag_rev;
	struct route *r = route_lookup(t, host, &tag_rev);
	assert_non_null(r);
	head(&m, raw);
	route_choose(t, r, 0, &m, tag_rev, 0, ch);
	http_msg_release(&m);
	return ch->rev < 0 ? -1 : atoi(r->revs[ch->rev].revision);
}

static void test_v2_parse_and_split(void **state)
{
	struct route_table *t = parse_ok(V2);
	struct route *r = route_match(t, "web.prod.localhost");
	(void)state;
	assert_int_equal(t->generation, 17);
	assert_int_equal(r->nrevs, 2);
	assert_string_equal(r->revs[1].revision, "42");
	assert_string_equal(r->revs[1].tags[1], "preview");
	assert_int_equal(r->shield_canary, 1);
	assert_int_equal(r->shield_stable, 0);
	assert_string_equal(r->sticky_cookie, "gantry_rev");
	assert_ptr_equal(r->revs[1].ms, metric_series_get("web", "prod", "42"));
	/* 90/10 exact in every window of 100 */
	for (int round = 0; round < 5; round++) {
		int n41 = 0;
		for (int i = 0; i < 100; i++) {
			int rev = route_pick_rev(t, r, 0, 0);
			n41 += rev == 0;
		}
		assert_int_equal(n41, 90);
	}
	route_table_unref(t);
}

static void test_v2_least_inflight(void **state)
{
	struct route_table *t = parse_ok(V2);
	struct route *r = route_match(t, "web.prod.localhost");
	struct route_rev *rv = &r->revs[0];
	struct backend *a = rv->backends[0].be, *b = rv->backends[1].be;
	(void)state;
	/* ties: round-robin */
	assert_ptr_equal(route_pick_backend(t, rv, 0, 0, NULL), a);
	assert_ptr_equal(route_pick_backend(t, rv, 0, 0, NULL), b);
	assert_ptr_equal(route_pick_backend(t, rv, 0, 0, NULL), a);
	/* a busy backend is avoided while the other has fewer in flight */
	CTR_ADD(a->w[0].inflight, 2);
	for (int i = 0; i < 5; i++)
		assert_ptr_equal(route_pick_backend(t, rv, 0, 0, NULL), b);
	CTR_ADD(b->w[0].inflight, 2);
	assert_non_null(route_pick_backend(t, rv, 0, 0, NULL));
	CTR_ADD(a->w[0].inflight, -2);
	CTR_ADD(b->w[0].inflight, -2);
	route_table_unref(t);
}

static void test_v2_header_tag_sticky(void **state)
{
	struct route_table *t = parse_ok(V2);
	struct route_choice ch;
	(void)state;
	/* header rules: name case-insensitive, value exact or prefix */
	assert_int_equal(choose(t, "web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\ncanary: true\r\n\r\n", &ch), 42);
	assert_int_equal(ch.why, ROUTE_BY_HEADER);
	assert_false(ch.set_cookie);
	for (int i = 0; i < 20; i++)
		assert_int_equal(choose(t, "web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\nCANARY: true\r\n\r\n", &ch), 42);
	assert_int_equal(choose(t, "a.example.com", "GET / HTTP/1.1\r\nHost: a\r\nX-User: beta-7\r\n\r\n", &ch), 42);
	/* "truex" is not "true"; without rules it is the weights (and a cookie is due) */
	choose(t, "web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\ncanary: truex\r\n\r\n", &ch);
	assert_int_equal(ch.why, ROUTE_BY_WEIGHT);
	assert_true(ch.set_cookie);
	/* tags: host form and header */
	assert_int_equal(choose(t, "preview---web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &ch), 42);
	assert_int_equal(ch.why, ROUTE_BY_TAG);
	assert_int_equal(choose(t, "stable---web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &ch), 41);
	assert_int_equal(choose(t, "web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\nX-Gantry-Tag: canary\r\n\r\n", &ch), 42);
	assert_int_equal(choose(t, "web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\nX-Gantry-Tag: nope\r\n\r\n", &ch), -1);
	assert_int_equal(ch.status, 404);
	{
		int tr;
		/* an unknown tag in the host is just another host name */
		assert_null(route_lookup(t, "nope---web.prod.localhost", &tr));
		assert_int_equal(tr, -1);
	}
	/* sticky: the cookie's revision while it has weight, else weights and a new cookie */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(choose(t, "web.prod.localhost",
					"GET / HTTP/1.1\r\nHost: a\r\nCookie: a=b; gantry_rev=42; c=d\r\n\r\n", &ch), 42);
		assert_int_equal(ch.why, ROUTE_BY_STICKY);
		assert_false(ch.set_cookie);
	}
	choose(t, "web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\nCookie: gantry_rev=40\r\n\r\n", &ch);
	assert_int_equal(ch.why, ROUTE_BY_WEIGHT);
	assert_true(ch.set_cookie);
	route_table_unref(t);

	/* a revision rolled back to weight 0 loses its sticky clients */
	t = parse_ok("{\"routes\": [{\"hosts\": [\"*\"], \"revisions\": ["
		     "{\"revision\": \"1\", \"weight\": 100, \"backends\": [{\"address\": \"127.0.0.1:1\"}]},"
		     "{\"revision\": \"2\", \"weight\": 0, \"backends\": [{\"address\": \"127.0.0.1:2\"}]}],"
		     "\"sticky\": {}}]}");
	for (int i = 0; i < 5; i++)
		assert_int_equal(choose(t, "x", "GET / HTTP/1.1\r\nHost: a\r\nCookie: gantry_rev=2\r\n\r\n", &ch), 1);
	assert_true(ch.set_cookie);
	route_table_unref(t);
}

static void test_v2_unhealthy_share(void **state)
{
	struct route_table *t = parse_ok(V2);
	struct route *r = route_match(t, "web.prod.localhost");
	struct backend *c = r->revs[1].backends[0].be;
	(void)state;
	/* the canary's only replica ejected: its 10% go to the stable revision */
	for (int i = 0; i < 3; i++)
		backend_connect_result(c, false, 1000);
	for (int i = 0; i < 100; i++)
		assert_int_equal(route_pick_rev(t, r, 0, 2000), 0);
	backend_connect_result(c, true, 0);
	route_table_unref(t);
	/* all weights zero: nothing */
	t = parse_ok("{\"routes\": [{\"hosts\": [\"*\"], \"revisions\": ["
		     "{\"revision\": \"1\", \"weight\": 0, \"backends\": [{\"address\": \"127.0.0.1:1\"}]}]}]}");
	assert_int_equal(route_pick_rev(t, t->any, 0, 0), -1);
	route_table_unref(t);
}

#define HC_ROUTE(hc) \
	"{\"routes\": [{\"hosts\": [\"*\"], \"revisions\": [" \
	"{\"revision\": \"1\", \"weight\": 50, \"backends\": [{\"address\": \"127.0.0.1:7001\"}, {\"address\": \"127.0.0.1:7002\"}]}," \
	"{\"revision\": \"2\", \"weight\": 50, \"backends\": [{\"address\": \"127.0.0.1:7003\"}]}]" \
	hc "}]}"

static void test_health_check_parse(void **state)
{
	struct route_table *t = parse_ok(HC_ROUTE(", \"health_check\": {\"path\": \"/healthz\"}"));
	(void)state;
	/* HAProxy's defaults: inter 2s, fall 3, rise 2 */
	assert_string_equal(t->any->hc.path, "/healthz");
	assert_int_equal(t->any->hc.interval_ms, 2000);
	assert_int_equal(t->any->hc.timeout_ms, 1000);
	assert_int_equal(t->any->hc.fall, 3);
	assert_int_equal(t->any->hc.rise, 2);
	route_table_unref(t);
	t = parse_ok(HC_ROUTE(", \"health_check\": {\"path\": \"/h?x=1\", \"interval_ms\": 500, "
			      "\"timeout_ms\": 500, \"fall\": 1, \"rise\": 5}"));
	assert_string_equal(t->any->hc.path, "/h?x=1");
	assert_int_equal(t->any->hc.interval_ms, 500);
	assert_int_equal(t->any->hc.timeout_ms, 500);
	assert_int_equal(t->any->hc.fall, 1);
	assert_int_equal(t->any->hc.rise, 5);
	route_table_unref(t);
	t = parse_ok(HC_ROUTE(""));
	assert_null(t->any->hc.path);
	route_table_unref(t);

	parse_err(HC_ROUTE(", \"health_check\": \"/h\""), "routes[0].health_check: expected an object, got a string");
	parse_err(HC_ROUTE(", \"health_check\": {}"), "routes[0].health_check.path: missing");
	parse_err(HC_ROUTE(", \"health_check\": {\"path\": \"h\"}"), "routes[0].health_check.path: 'h' is not a path");
	parse_err(HC_ROUTE(", \"health_check\": {\"path\": \"/a b\"}"), "routes[0].health_check.path: spaces");
	parse_err(HC_ROUTE(", \"health_check\": {\"path\": 7}"), "routes[0].health_check.path: expected a string");
	parse_err(HC_ROUTE(", \"health_check\": {\"path\": \"/h\", \"fall\": 0}"),
		  "routes[0].health_check.fall: 0 is out of range 1..100");
	parse_err(HC_ROUTE(", \"health_check\": {\"path\": \"/h\", \"rise\": 101}"),
		  "routes[0].health_check.rise: 101 is out of range 1..100");
	parse_err(HC_ROUTE(", \"health_check\": {\"path\": \"/h\", \"interval_ms\": 50}"),
		  "routes[0].health_check.interval_ms: 50 is out of range 100..3600000");
	parse_err(HC_ROUTE(", \"health_check\": {\"path\": \"/h\", \"interval_ms\": \"2s\"}"),
		  "routes[0].health_check.interval_ms: expected an integer, got a string");
	parse_err(HC_ROUTE(", \"health_check\": {\"path\": \"/h\", \"timeout_ms\": 3000}"),
		  "routes[0].health_check.timeout_ms: 3000 is longer than interval_ms (2000)");
	parse_err(HC_ROUTE(", \"health_check\": {\"path\": \"/h\", \"intervall_ms\": 100}"),
		  "routes[0].health_check: unknown key 'intervall_ms'");
}

static void test_health_down_skipped(void **state)
{
	struct route_table *t = parse_ok(HC_ROUTE(", \"health_check\": {\"path\": \"/h\"}"));
	struct route *r = t->any;
	struct backend *b1 = r->revs[0].backends[0].be, *b2 = r->revs[0].backends[1].be;
	struct backend *b3 = r->revs[1].backends[0].be;
	(void)state;
	/* one replica of revision 1 down: the other takes all of revision 1 */
	atomic_store(&b1->hc_state, BACKEND_HC_DOWN);
	assert_false(backend_usable(b1, 0));
	for (int i = 0; i < 20; i++)
		assert_ptr_equal(route_pick_backend(t, &r->revs[0], 0, 0, NULL), b2);
	/* revision 2's only replica down too: revision 1 gets every request */
	atomic_store(&b3->hc_state, BACKEND_HC_DOWN);
	for (int i = 0; i < 20; i++)
		assert_int_equal(route_pick_rev(t, r, 0, 0), 0);
	/* everything down: used anyway (fail open, like passive ejection) */
	atomic_store(&b2->hc_state, BACKEND_HC_DOWN);
	assert_non_null(route_pick(t, r, 0, NULL));
	atomic_store(&b1->hc_state, BACKEND_HC_UP);
	atomic_store(&b2->hc_state, BACKEND_HC_NONE);
	atomic_store(&b3->hc_state, BACKEND_HC_UP);
	assert_true(backend_usable(b1, 0) && backend_usable(b2, 0) && backend_usable(b3, 0));
	assert_string_equal(backend_health_name(b1), "up");
	assert_string_equal(backend_health_name(b2), "unchecked");
	route_table_unref(t);
}

static void test_flat_grouping(void **state)
{
	/* the flat form: one revision per label, weight = sum of its backends */
	struct route_table *t = parse_ok(
		"{\"routes\": [{\"hosts\": [\"*\"], \"backends\": ["
		"{\"address\": \"127.0.0.1:1\", \"weight\": 30, \"revision\": \"a\"},"
		"{\"address\": \"127.0.0.1:2\", \"weight\": 60, \"revision\": \"a\"},"
		"{\"address\": \"127.0.0.1:3\", \"weight\": 10, \"revision\": \"b\"}]}]}");
	int hits[3] = { 0 };
	(void)state;
	assert_int_equal(t->any->nrevs, 2);
	assert_int_equal(t->any->revs[0].weight, 90);
	assert_true(t->any->revs[0].weighted);
	for (int i = 0; i < 100; i++) {
		struct backend *b = route_pick(t, t->any, 0, NULL);
		hits[b->address[10] - '1']++;
	}
	assert_int_equal(hits[0], 30);
	assert_int_equal(hits[1], 60);
	assert_int_equal(hits[2], 10);
	route_table_unref(t);
}

static void test_v2_errors(void **state)
{
	(void)state;
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\", \"weight\": 101}]}]}",
		  "routes[0].revisions[0].weight: 101 is out of range 0..100");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\"}]}]}",
		  "routes[0].revisions[0].weight: missing");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"weight\": 1}]}]}",
		  "routes[0].revisions[0].revision: missing");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\", \"weight\": 1},"
		  " {\"revision\": 1, \"weight\": 1}]}]}", "routes[0].revisions[1].revision: '1' is repeated");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [], \"backends\": []}]}",
		  "routes[0]: has both backends and revisions");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\", \"weight\": 1, \"tags\": [\"a---b\"]}]}]}",
		  "routes[0].revisions[0].tags[0]: 'a---b' is not a tag");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\", \"weight\": 1, \"tags\": [\"x\"]},"
		  " {\"revision\": \"2\", \"weight\": 1, \"tags\": [\"X\"]}]}]}",
		  "routes[0].revisions[1].tags[0]: 'X' is already used by revision '1'");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\", \"weight\": 1}],"
		  " \"header_rules\": [{\"header\": \"canary\", \"value\": \"true\", \"revision\": \"2\"}]}]}",
		  "routes[0].header_rules[0].revision: '2' is not a revision of this route");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\", \"weight\": 1}],"
		  " \"header_rules\": [{\"header\": \"a b\", \"value\": \"true\", \"revision\": \"1\"}]}]}",
		  "routes[0].header_rules[0].header: missing or not a header name");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\", \"weight\": 1}],"
		  " \"shield\": {\"canary\": \"1\", \"stable\": \"9\"}}]}",
		  "routes[0].shield.stable: '9' is not a revision of this route");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\", \"weight\": 1}],"
		  " \"sticky\": {\"cookie\": \"a;b\"}}]}", "routes[0].sticky.cookie: 'a;b' is not a cookie name");
	parse_err("{\"routes\": [{\"hosts\": [\"a\"], \"revisions\": [{\"revision\": \"1\", \"weight\": 1, \"backends\": ["
		  "{\"address\": \"127.0.0.1:1\"}, {\"address\": \"127.0.0.1:1\"}]}]}]}",
		  "routes[0].revisions[0].backends[1].address: '127.0.0.1:1' is already listed");
	assert_null(backend_first());
}

/* a revision's series is shown while a table holds it, then left out */
static void test_series_held_by_tables(void **state)
{
	struct route_table *t1, *t2;
	struct metric_series *s41, *s42;
	struct series_sum sum;
	(void)state;
	t1 = parse_ok("{\"routes\": [{\"hosts\": [\"a\"], \"service\": \"held\", \"revisions\": ["
		      "{\"revision\": \"41\", \"weight\": 90}, {\"revision\": \"42\", \"weight\": 10}]}]}");
	t2 = parse_ok("{\"routes\": [{\"hosts\": [\"a\"], \"service\": \"held\", \"revisions\": ["
		      "{\"revision\": \"41\", \"weight\": 100}]}]}");
	s41 = metric_series_get("held", "", "41"); /* the test's own hold */
	s42 = metric_series_get("held", "", "42");
	metric_series_put(s41);
	metric_series_put(s42);
	metric_series_sum(s42, &sum);
	assert_true(metric_series_live(s42, &sum));
	route_table_unref(t1); /* 42 was only in t1 */
	assert_false(metric_series_live(s42, &sum));
	metric_series_sum(s41, &sum);
	assert_true(metric_series_live(s41, &sum));
	sum.inflight = 1; /* a request still running on it keeps it shown */
	assert_true(metric_series_live(s42, &sum));
	route_table_unref(t2);
	sum.inflight = 0;
	assert_false(metric_series_live(s41, &sum));
	assert_null(backend_first());
}

static void test_forward_headers_parse(void **state)
{
	unsigned v = 99;
	char bad[80];
	(void)state;
	assert_int_equal(proxy_parse_forward_headers("all", &v, bad, sizeof(bad)), 0);
	assert_int_equal(v, PROXY_FWD_ALL);
	assert_int_equal(proxy_parse_forward_headers("None", &v, bad, sizeof(bad)), 0);
	assert_int_equal(v, 0);
	assert_int_equal(proxy_parse_forward_headers("X-Forwarded-For,via", &v, bad, sizeof(bad)), 0);
	assert_int_equal(v, PROXY_FWD_FOR | PROXY_FWD_VIA);
	assert_int_equal(proxy_parse_forward_headers("x-request-id", &v, bad, sizeof(bad)), 0);
	assert_int_equal(v, PROXY_FWD_REQID);
	v = 7;
	assert_int_equal(proxy_parse_forward_headers("via,xff", &v, bad, sizeof(bad)), -1);
	assert_string_equal(bad, "xff");
	assert_int_equal(v, 7); /* unchanged on error */
	assert_int_equal(proxy_parse_forward_headers("via,", &v, bad, sizeof(bad)), -1);
	assert_string_equal(bad, "");
	assert_int_equal(proxy_parse_forward_headers("", &v, bad, sizeof(bad)), -1);
	assert_int_equal(proxy_parse_forward_headers("none,via", &v, bad, sizeof(bad)), -1);
	assert_string_equal(bad, "none");
}

static void test_forward_headers_in_routes(void **state)
{
	struct route_table *t;
	(void)state;
	t = parse_ok("{\"routes\": []}");
	assert_int_equal(t->forward_headers, -1); /* the flag decides */
	route_table_unref(t);
	t = parse_ok("{\"forward_headers\": \"none\", \"routes\": []}");
	assert_int_equal(t->forward_headers, 0);
	route_table_unref(t);
	t = parse_ok("{\"forward_headers\": \"Via,x-request-id\", \"routes\": []}");
	assert_int_equal(t->forward_headers, PROXY_FWD_VIA | PROXY_FWD_REQID);
	route_table_unref(t);
	parse_err("{\"forward_headers\": \"xff\", \"routes\": []}", "forward_headers: 'xff' is not all, none or a list");
	parse_err("{\"forward_headers\": [\"via\"], \"routes\": []}", "forward_headers");
}

#define TAGS_ROUTE(th)                                                                                   \
	"{\"routes\": [{\"hosts\": [\"web.prod.localhost\"], \"revisions\": ["                                 \
	"{\"revision\": \"1\", \"weight\": 100, \"tags\": [\"r1\", \"stable\"], \"backends\": [{\"address\": \"127.0.0.1:1\"}]}," \
	"{\"revision\": \"2\", \"weight\": 0, \"tags\": [\"r2\", \"preview\"], \"backends\": [{\"address\": \"127.0.0.1:2\"}]}]" \
	th "}]}"

/* tag hosts: off unless the route lists the tag (or says true); X-Gantry-Tag is not affected */
static void test_tag_hosts(void **state)
{
	struct route_table *t;
	struct route_choice ch;
	int tr;
	(void)state;
	t = parse_ok(TAGS_ROUTE(""));
	assert_null(route_lookup(t, "r1---web.prod.localhost", &tr));
	assert_int_equal(tr, -1);
	assert_null(route_lookup(t, "preview---web.prod.localhost", &tr));
	assert_int_equal(choose(t, "web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\nX-Gantry-Tag: preview\r\n\r\n", &ch), 2);
	route_table_unref(t);
	t = parse_ok(TAGS_ROUTE(", \"tag_hosts\": false"));
	assert_null(route_lookup(t, "r2---web.prod.localhost", &tr));
	route_table_unref(t);
	/* a listed tag that no revision carries yet is fine */
	t = parse_ok(TAGS_ROUTE(", \"tag_hosts\": [\"Preview\", \"green\"]"));
	assert_null(route_lookup(t, "r1---web.prod.localhost", &tr));
	assert_null(route_lookup(t, "stable---web.prod.localhost", &tr));
	assert_null(route_lookup(t, "green---web.prod.localhost", &tr));
	assert_int_equal(choose(t, "PREVIEW---web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &ch), 2);
	assert_int_equal(ch.why, ROUTE_BY_TAG);
	route_table_unref(t);
	t = parse_ok(TAGS_ROUTE(", \"tag_hosts\": true"));
	assert_int_equal(choose(t, "r1---web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &ch), 1);
	assert_int_equal(choose(t, "r2---web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &ch), 2);
	assert_int_equal(choose(t, "stable---web.prod.localhost", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &ch), 1);
	route_table_unref(t);
	parse_err(TAGS_ROUTE(", \"tag_hosts\": \"all\""),
		  "routes[0].tag_hosts: expected true, false or an array of tags, got a string");
	parse_err(TAGS_ROUTE(", \"tag_hosts\": [\"ok\", 3]"), "routes[0].tag_hosts[1]: expected a string, got an integer");
	parse_err(TAGS_ROUTE(", \"tag_hosts\": [\"a---b\"]"), "routes[0].tag_hosts[0]: 'a---b' is not a tag");
}

static void test_trusted_proxies(void **state)
{
	struct route_table *t;
	struct cidr_set flag = { 0 };
	uint8_t lo[4] = { 127, 0, 0, 1 }, ten[4] = { 10, 9, 8, 7 }, pub[4] = { 8, 8, 8, 8 };
	uint8_t lo6[16] = { [15] = 1 };
	char bad[64];
	(void)state;
	/* no trusted_proxies: the flag decides, and the default (empty) trusts nobody */
	t = parse_ok("{\"routes\": []}");
	assert_false(t->has_trusted);
	assert_false(route_trusts(t, &flag, AF_INET, lo));
	assert_int_equal(cidr_set_add_list(&flag, "127.0.0.1/32", bad, sizeof(bad)), 0);
	assert_true(route_trusts(t, &flag, AF_INET, lo));
	assert_false(route_trusts(t, &flag, AF_INET, ten));
	route_table_unref(t);
	/* the file's list wins over the flag, also when empty */
	t = parse_ok("{\"trusted_proxies\": \"10.0.0.0/8, ::1/128\", \"routes\": []}");
	assert_true(t->has_trusted);
	assert_true(route_trusts(t, &flag, AF_INET, ten));
	assert_false(route_trusts(t, &flag, AF_INET, lo));
	assert_true(route_trusts(t, &flag, AF_INET6, lo6));
	assert_false(route_trusts(t, &flag, AF_INET, pub));
	route_table_unref(t);
	t = parse_ok("{\"trusted_proxies\": [\"10.0.0.0/8\", \"127.0.0.1\"], \"routes\": []}");
	assert_true(route_trusts(t, &flag, AF_INET, lo));
	route_table_unref(t);
	t = parse_ok("{\"trusted_proxies\": [], \"routes\": []}");
	assert_false(route_trusts(t, &flag, AF_INET, lo));
	route_table_unref(t);
	cidr_set_release(&flag);
	parse_err("{\"trusted_proxies\": \"10.0.0.0/33\", \"routes\": []}",
		  "trusted_proxies: '10.0.0.0/33' is not an address or CIDR");
	parse_err("{\"trusted_proxies\": [\"::1\", \"x\"], \"routes\": []}", "trusted_proxies[1]: 'x' is not an address");
	parse_err("{\"trusted_proxies\": [1], \"routes\": []}", "trusted_proxies[0]: expected a string, got an integer");
	parse_err("{\"trusted_proxies\": true, \"routes\": []}", "trusted_proxies: expected a string or an array");
}

/*
 * Two routes claim one host: the first keeps it, the later route is left
 * out whole (its other hosts too) and listed in t->dropped; the rest of the
 * table applies.
 */
static void test_colliding_routes(void **state)
{
	struct route_table *t = parse_ok(
		"{\"routes\": ["
		"{\"hosts\": [\"shop.example.com\", \"web.p.localhost\"], \"service\": \"web\", \"environment\": \"p\","
		" \"backends\": [{\"address\": \"127.0.0.1:18081\"}]},"
		"{\"hosts\": [\"api.p.localhost\", \"Shop.Example.com\"], \"service\": \"api\", \"environment\": \"p\","
		" \"backends\": [{\"address\": \"127.0.0.1:18082\"}],"
		" \"health_check\": {\"path\": \"/h\"}},"
		"{\"hosts\": [\"*.example.com\"], \"service\": \"wild\", \"backends\": [{\"address\": \"127.0.0.1:18083\"}]},"
		"{\"hosts\": [\"*.EXAMPLE.com\", \"other.localhost\"], \"service\": \"wild2\","
		" \"backends\": [{\"address\": \"127.0.0.1:18084\"}]},"
		"{\"hosts\": [\"*\"], \"service\": \"any\", \"backends\": [{\"address\": \"127.0.0.1:18085\"}]},"
		"{\"hosts\": [\"*\"], \"service\": \"any2\", \"backends\": [{\"address\": \"127.0.0.1:18086\"}]},"
		"{\"hosts\": [\"docs.localhost\"], \"service\": \"docs\", \"backends\": [{\"address\": \"127.0.0.1:18087\"}]}"
		"]}");
	(void)state;
	assert_int_equal(t->nroutes, 7);
	assert_int_equal(t->ndropped, 3);
	assert_int_equal(t->dropped[0].route, 1);
	assert_int_equal(t->dropped[0].kept_by, 0);
	assert_string_equal(t->dropped[0].host, "shop.example.com");
	assert_string_equal(t->dropped[0].service, "api");
	assert_string_equal(t->dropped[0].environment, "p");
	assert_int_equal(t->dropped[1].route, 3);
	assert_int_equal(t->dropped[1].kept_by, 2);
	assert_string_equal(t->dropped[1].host, "*.example.com");
	assert_int_equal(t->dropped[2].route, 5);
	assert_int_equal(t->dropped[2].kept_by, 4);
	assert_string_equal(t->dropped[2].host, "*");
	/* the first route keeps the host; the dropped ones answer nowhere, even at their other hosts */
	assert_string_equal(route_match(t, "shop.example.com")->service, "web");
	assert_string_equal(route_match(t, "api.p.localhost")->service, "any");
	assert_string_equal(route_match(t, "other.localhost")->service, "any");
	assert_string_equal(route_match(t, "x.example.com")->service, "wild");
	assert_string_equal(route_match(t, "nothing.here")->service, "any");
	/* and the rest of the table applies */
	assert_string_equal(route_match(t, "docs.localhost")->service, "docs");
	assert_string_equal(route_match(t, "web.p.localhost")->service, "web");
	/* a dropped route keeps no backends (nothing checks or counts them) */
	assert_int_equal(t->routes[1].nrevs, 0);
	assert_null(t->routes[1].hc.path);
	assert_int_equal(t->routes[5].nrevs, 0);
	route_table_unref(t);
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
		cmocka_unit_test(test_v2_parse_and_split),
		cmocka_unit_test(test_v2_least_inflight),
		cmocka_unit_test(test_v2_header_tag_sticky),
		cmocka_unit_test(test_v2_unhealthy_share),
		cmocka_unit_test(test_health_check_parse),
		cmocka_unit_test(test_health_down_skipped),
		cmocka_unit_test(test_flat_grouping),
		cmocka_unit_test(test_v2_errors),
		cmocka_unit_test(test_series_held_by_tables),
		cmocka_unit_test(test_forward_headers_parse),
		cmocka_unit_test(test_forward_headers_in_routes),
		cmocka_unit_test(test_trusted_proxies),
		cmocka_unit_test(test_tag_hosts),
		cmocka_unit_test(test_colliding_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
