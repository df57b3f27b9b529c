/*
 * test_proxyfleet.c — the windows of several proxies summed
 * (src/daemon/proxyfleet.c): the sums, a restart stitched, a proxy left
 * out when stale and not charged for its gap, the quorum, and the document
 * read by metrics__ingest as one proxy's.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "daemon/proxyfleet.h"
#include "daemon/metrics.h"
#include <jansson.h>

/* a /windows document: one revision of web/prod, req requests of which e5 are 5xx */
static char *win(const char *epoch, int gen, const char *rev, unsigned long long req, unsigned long long e5)
{
	char lat[512];
	size_t off = 0;
	off += (size_t)snprintf(lat + off, sizeof(lat) - off, "[%llu", req - e5);
	for (int i = 1; i < METRIC_LATENCY_BUCKETS; i++)
		off += (size_t)snprintf(lat + off, sizeof(lat) - off, ",%llu", i == 20 ? e5 : 0ULL);
	snprintf(lat + off, sizeof(lat) - off, "]");
	return xasprintf("{\"now_ms\": 1, \"epoch\": \"%s\", \"generation\": %d, \"workers\": 2, \"revisions\": ["
			 "{\"service\": \"web\", \"environment\": \"prod\", \"revision\": \"%s\", \"requests\": %llu,"
			 " \"status\": [0,0,%llu,0,0,%llu], \"latency\": %s, \"bytes_in\": 10, \"bytes_out\": 20,"
			 " \"inflight\": 1}], \"checks\": []}",
			 epoch, gen, rev, req, req - e5, e5, lat);
}

struct round {
	json_t *doc;
	struct fleet_proxy rep[3];
	int reporting;
};

/* one sum over up to three proxies (NULL doc: the read failed) */
static void sum(struct fleet_sum *s, struct round *r, int64_t now, int n, char *d0, int64_t t0, char *d1,
		int64_t t1, char *d2, int64_t t2)
{
	struct fleet_read reads[3] = {
		{ "10.0.0.1:9091", d0, t0 }, { "10.0.0.2:9091", d1, t1 }, { "10.0.0.3:9091", d2, t2 },
	};
	struct hbuf out;
	json_error_t jerr;

	hbuf_init(&out, 1u << 20);
	r->reporting = fleet_sum_windows(s, reads, (size_t)n, now, 1000, &out, r->rep);
	json_decref(r->doc);
	r->doc = json_loadb(out.data ? out.data : "", out.len, 0, &jerr);
	if (!r->doc)
		fail_msg("not JSON (%s): %.*s", jerr.text, (int)out.len, out.data);
	hbuf_release(&out);
	free(d0);
	free(d1);
	free(d2);
}

/* the summed counter of revision rev: "requests", or "5xx" */
static long long counter(const struct round *r, const char *rev, const char *what)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r->doc, "revisions"), i, v)
		if (!strcmp(json_string_value(json_object_get(v, "revision")), rev)) {
			if (!strcmp(what, "5xx"))
				return json_integer_value(json_array_get(json_object_get(v, "status"), 5));
			return json_integer_value(json_object_get(v, what));
		}
	return -1;
}

static json_t *proxies(const struct round *r, const char *key)
{
	return json_object_get(json_object_get(r->doc, "proxies"), key);
}

static void test_sum_and_restart(void **state)
{
	struct fleet_sum *s = fleet_sum_new();
	struct round r = { 0 };
	(void)state;

	/* the first answers are the baseline: what came before is not in any window */
	sum(s, &r, 1000, 3, win("a1", 7, "2", 100, 0), 1000, win("b1", 7, "2", 50, 0), 990, win("c1", 6, "2", 10, 0),
	    1000);
	assert_int_equal(r.reporting, 3);
	assert_int_equal(counter(&r, "2", "requests"), 0);
	assert_int_equal(json_integer_value(json_object_get(r.doc, "generation")), 6); /* the slowest proxy's */
	assert_true(json_is_true(proxies(&r, "quorum")));
	assert_int_equal(json_array_size(proxies(&r, "stale")), 0);
	/* then the increases of all three add up */
	sum(s, &r, 1100, 3, win("a1", 7, "2", 130, 3), 1100, win("b1", 7, "2", 70, 1), 1100, win("c1", 7, "2", 20, 0),
	    1100);
	assert_int_equal(counter(&r, "2", "requests"), 30 + 20 + 10);
	assert_int_equal(counter(&r, "2", "5xx"), 4);
	assert_int_equal(counter(&r, "2", "inflight"), 3);
	assert_int_equal(json_integer_value(json_object_get(r.doc, "generation")), 7);
	/* b restarts (new epoch, counts from 0): nothing goes down, its new requests add */
	sum(s, &r, 1200, 3, win("a1", 7, "2", 140, 3), 1200, win("b2", 7, "2", 5, 0), 1200, win("c1", 7, "2", 20, 0),
	    1200);
	assert_int_equal(counter(&r, "2", "requests"), 60 + 10 + 5);
	assert_int_equal(r.rep[1].restarts, 1);
	assert_int_equal(r.rep[1].epoch, 0xb2);
	/* a new revision on one proxy counts from its first request */
	{
		char *d = win("a1", 8, "3", 4, 4), *d2 = win("a1", 8, "2", 150, 3);
		json_t *j = json_loads(d, 0, NULL), *both = json_loads(d2, 0, NULL);
		char *text;
		free(d2);
		json_array_extend(json_object_get(both, "revisions"), json_object_get(j, "revisions"));
		text = json_dumps(both, 0);
		sum(s, &r, 1300, 3, text, 1300, win("b2", 8, "2", 5, 0), 1300, win("c1", 8, "2", 20, 0), 1300);
		json_decref(j);
		json_decref(both);
		free(d);
	}
	assert_int_equal(counter(&r, "2", "requests"), 85);
	assert_int_equal(counter(&r, "3", "requests"), 4);
	assert_int_equal(counter(&r, "3", "5xx"), 4);
	json_decref(r.doc);
	fleet_sum_free(s);
}

static void test_stale_left_out(void **state)
{
	struct fleet_sum *s = fleet_sum_new();
	struct round r = { 0 };
	(void)state;

	sum(s, &r, 1000, 3, win("a1", 1, "2", 0, 0), 1000, win("b1", 1, "2", 0, 0), 1000, win("c1", 1, "2", 0, 0), 1000);
	sum(s, &r, 1100, 3, win("a1", 1, "2", 10, 0), 1100, win("b1", 1, "2", 10, 0), 1100, win("c1", 1, "2", 10, 0),
	    1100);
	assert_int_equal(counter(&r, "2", "requests"), 30);
	/* c's reads fail: within the bound (1000 ms) it still counts as reporting, its last answer in */
	sum(s, &r, 1900, 3, win("a1", 1, "2", 20, 0), 1900, win("b1", 1, "2", 20, 0), 1900, NULL, 0);
	assert_int_equal(r.reporting, 3);
	assert_true(r.rep[2].reporting);
	/* past the bound: left out, reported; the sums keep what it counted and never go down */
	sum(s, &r, 2200, 3, win("a1", 1, "2", 30, 0), 2200, win("b1", 1, "2", 30, 0), 2200, win("c1", 1, "2", 999, 999),
	    1100);
	assert_int_equal(r.reporting, 2);
	assert_false(r.rep[2].reporting);
	assert_int_equal(r.rep[2].last_ok_ms, 1100);
	assert_int_equal(counter(&r, "2", "requests"), 30 + 30 + 10);
	assert_int_equal(json_array_size(proxies(&r, "stale")), 1);
	assert_string_equal(json_string_value(json_array_get(proxies(&r, "stale"), 0)), "10.0.0.3:9091");
	assert_true(json_is_true(proxies(&r, "quorum"))); /* 2 of 3 */
	/* back: the 500 errors it counted while left out land in no window */
	sum(s, &r, 2300, 3, win("a1", 1, "2", 40, 0), 2300, win("b1", 1, "2", 40, 0), 2300, win("c1", 1, "2", 510, 500),
	    2300);
	assert_int_equal(r.reporting, 3);
	assert_int_equal(r.rep[2].gaps, 1);
	assert_int_equal(counter(&r, "2", "requests"), 40 + 40 + 10);
	assert_int_equal(counter(&r, "2", "5xx"), 0);
	sum(s, &r, 2400, 3, win("a1", 1, "2", 40, 0), 2400, win("b1", 1, "2", 40, 0), 2400, win("c1", 1, "2", 520, 501),
	    2400);
	assert_int_equal(counter(&r, "2", "requests"), 100);
	assert_int_equal(counter(&r, "2", "5xx"), 1);
	/* two of three stale: no quorum */
	sum(s, &r, 5000, 3, win("a1", 1, "2", 50, 0), 5000, NULL, 0, NULL, 0);
	assert_int_equal(r.reporting, 1);
	assert_false(json_is_true(proxies(&r, "quorum")));
	assert_int_equal(json_array_size(proxies(&r, "stale")), 2);
	/* a proxy that leaves the fleet is forgotten: what it counted stays out of later sums' windows */
	sum(s, &r, 5100, 1, win("a1", 1, "2", 60, 0), 5100, NULL, 0, NULL, 0);
	assert_int_equal(r.reporting, 1);
	assert_true(json_is_true(proxies(&r, "quorum")));
	json_decref(r.doc);
	fleet_sum_free(s);
}

/* the summed document is what metrics.c reads from one proxy: windows over the fleet */
static void test_ingested(void **state)
{
	struct fleet_sum *s = fleet_sum_new();
	struct fleet_read reads[2];
	struct rev_window w;
	struct hbuf out;
	(void)state;

	for (int t = 0; t <= 10; t++) {
		char *a = win("a1", 1, "4", (unsigned long long)t * 100, t >= 5 ? (unsigned long long)(t - 5) * 10 : 0);
		char *b = win("b1", 1, "4", (unsigned long long)t * 50, 0);
		reads[0] = (struct fleet_read){ "a", a, t * 100 };
		reads[1] = (struct fleet_read){ "b", b, t * 100 };
		hbuf_init(&out, 1u << 20);
		assert_int_equal(fleet_sum_windows(s, reads, 2, t * 100, 1000, &out, NULL), 2);
		{
			char *text = hbuf_detach(&out, NULL);
			assert_int_equal(metrics__ingest(text, t * 100), 1);
			free(text);
		}
		hbuf_release(&out);
		free(a);
		free(b);
	}
	/* the last second: 150 requests a poll over both proxies, 10 errors a poll from a since t=5 */
	assert_int_equal(metrics_window("web", "prod", 4, 500, 1000, &w), 0);
	assert_int_equal(w.requests, 5 * 150);
	assert_int_equal(w.status[5], 50);
	metrics_free();
	fleet_sum_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sum_and_restart),
		cmocka_unit_test(test_stale_left_out),
		cmocka_unit_test(test_ingested),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
