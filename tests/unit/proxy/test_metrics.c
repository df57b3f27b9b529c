/*
 * test_metrics.c — the proxy's counters across a replacement
 * (src/proxy/metrics.c, backend.c): the epoch, the --counters-from file
 * (every bad input refused whole, nothing seeded), the series started
 * from it, and a proxy started with one: /windows, /status and /metrics
 * go on from the carried counters, and say where they started.
 */
#include "px_test.h"
#include "proxy/metrics.h"

static char carry_path[128];

static void carry_file(const char *text, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(carry_path, sizeof(carry_path), "%s/gantry-pt-carry-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(carry_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static int teardown(void **state)
{
	pt_teardown(state);
	if (carry_path[0])
		unlink(carry_path);
	carry_path[0] = 0;
	return 0;
}

static void assert_has(const char *text, const char *what)
{
	if (!strstr(text, what))
		fail_msg("'%s' not in:\n%s", what, text);
}

/* the series of these labels, if any: the registry is never pruned */
static const struct metric_series *series_find(const char *svc, const char *env, const char *rev)
{
	for (const struct metric_series *s = metric_series_first(); s; s = s->next)
		if (!strcmp(s->service, svc) && !strcmp(s->environment, env) && !strcmp(s->revision, rev))
			return s;
	return NULL;
}

/* one revision of a carry document: FIELDS replaces the counters when not NULL */
static char *one_rev(const char *svc, const char *fields)
{
	return xasprintf("{\"epoch\": \"aa\", \"revisions\": [{\"service\": \"%s\", \"environment\": \"e\", "
			 "\"revision\": \"1\", %s}]}", svc,
			 fields ? fields : "\"requests\": 3, \"status\": [0,0,3,0,0,0], "
			 "\"latency\": [3,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], "
			 "\"bytes_in\": 1, \"bytes_out\": 2");
}

#define LAT32 "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"
#define ST6 "[0,0,0,0,0,0]"

/* wrong types, huge numbers, missing fields: refused whole, with where */
static void test_parse_refuses(void **state)
{
	static const struct {
		const char *text; /* "%R": one revision with these fields (one_rev) */
		const char *err;
	} bad[] = {
		{ "", "1:" },
		{ "not json", "1:" },
		{ "{\"revisions\": [", "1:" },
		{ "[]", "not a JSON object" },
		{ "{}", "revisions: missing" },
		{ "{\"revisions\": {}}", "revisions: not an array" },
		{ "{\"revisions\": [5]}", "revisions[0]: not an object" },
		{ "{\"revisions\": [], \"revisions\": []}", "duplicate" },
		{ "{\"epoch\": 5, \"revisions\": []}", "epoch:" },
		{ "{\"epoch\": \"00112233445566778\", \"revisions\": []}", "epoch:" },
		{ "{\"epoch\": \"xyz\", \"revisions\": []}", "epoch:" },
		{ "{\"revisions\": [{\"environment\": \"e\", \"revision\": \"1\"}]}", "revisions[0].service: missing" },
		{ "{\"revisions\": [{\"service\": 1, \"environment\": \"e\", \"revision\": \"1\"}]}",
		  "revisions[0].service: not a string" },
		{ "{\"revisions\": [{\"service\": \"a\\u0000b\", \"environment\": \"e\", \"revision\": \"1\"}]}", "1:" },
		{ "%R\"status\": " ST6 ", \"latency\": " LAT32 ", \"bytes_in\": 0, \"bytes_out\": 0",
		  "revisions[0].requests: missing" },
		{ "%R\"requests\": -1, \"status\": " ST6 ", \"latency\": " LAT32 ", \"bytes_in\": 0, \"bytes_out\": 0",
		  "revisions[0].requests: not an integer from 0 to 2^60" },
		{ "%R\"requests\": 1.5, \"status\": " ST6 ", \"latency\": " LAT32 ", \"bytes_in\": 0, \"bytes_out\": 0",
		  "revisions[0].requests: not an integer" },
		{ "%R\"requests\": \"7\", \"status\": " ST6 ", \"latency\": " LAT32 ", \"bytes_in\": 0, \"bytes_out\": 0",
		  "revisions[0].requests: not an integer" },
		{ "%R\"requests\": 1152921504606846977, \"status\": " ST6 ", \"latency\": " LAT32
		  ", \"bytes_in\": 0, \"bytes_out\": 0", "revisions[0].requests: not an integer from 0 to 2^60" },
		{ "%R\"requests\": 99999999999999999999999, \"status\": " ST6 ", \"latency\": " LAT32
		  ", \"bytes_in\": 0, \"bytes_out\": 0", "1:" },
		{ "%R\"requests\": 1e30, \"status\": " ST6 ", \"latency\": " LAT32 ", \"bytes_in\": 0, \"bytes_out\": 0",
		  "revisions[0].requests: not an integer" },
		{ "%R\"requests\": 0, \"status\": [0,0,0,0,0], \"latency\": " LAT32 ", \"bytes_in\": 0, \"bytes_out\": 0",
		  "revisions[0].status: not an array of 6 counters" },
		{ "%R\"requests\": 0, \"status\": [0,0,0,0,0,null], \"latency\": " LAT32
		  ", \"bytes_in\": 0, \"bytes_out\": 0", "revisions[0].status[5]: not an integer" },
		{ "%R\"requests\": 0, \"status\": " ST6 ", \"latency\": [0], \"bytes_in\": 0, \"bytes_out\": 0",
		  "revisions[0].latency: not an array of 32 counters" },
		{ "%R\"requests\": 0, \"status\": " ST6 ", \"bytes_in\": 0, \"bytes_out\": 0",
		  "revisions[0].latency: missing" },
		{ "%R\"requests\": 0, \"status\": " ST6 ", \"latency\": " LAT32 ", \"bytes_out\": 0",
		  "revisions[0].bytes_in: missing" },
		{ "%R\"requests\": 0, \"status\": " ST6 ", \"latency\": " LAT32 ", \"bytes_in\": 0, \"bytes_out\": true",
		  "revisions[0].bytes_out: not an integer" },
		{ "%R\"requests\": 0, \"status\": " ST6 ", \"latency\": " LAT32
		  ", \"bytes_in\": 0, \"bytes_out\": 0, \"upstream_errors\": -3", "revisions[0].upstream_errors:" },
		{ "%R\"requests\": 0, \"status\": " ST6 ", \"latency\": " LAT32
		  ", \"bytes_in\": 0, \"bytes_out\": 0, \"latency_sum_us\": {}", "revisions[0].latency_sum_us:" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct metrics_carry c;
		struct gerr err = { { 0 } };
		char *text = !strncmp(bad[i].text, "%R", 2) ? one_rev("parse", bad[i].text + 2) : xstrdup(bad[i].text);
		int r = metrics_carry_parse(text, strlen(text), &c, &err);
		if (r != -1 || !strstr(err.msg, bad[i].err))
			fail_msg("bad[%zu] %s: %d '%s', want -1 and '%s'", i, text, r, err.msg, bad[i].err);
		assert_int_equal(c.n, 0);
		assert_null(c.revs);
		free(text);
	}
	assert_null(series_find("parse", "e", "1"));
}

#define REV(svc) "{\"service\": \"" svc "\", \"environment\": \"e\", \"revision\": \"1\", " \
	"\"requests\": 0, \"status\": " ST6 ", \"latency\": " LAT32 ", \"bytes_in\": 0, \"bytes_out\": 0}"

/* a good file with one bad revision seeds nothing; a revision twice is bad */
static void test_load_all_or_nothing(void **state)
{
	static const char one_bad[] = "{\"revisions\": [" REV("whole-a") ", {\"service\": \"whole-b\", "
		"\"environment\": \"e\", \"revision\": \"1\", \"requests\": 1}]}";
	static const char twice[] = "{\"revisions\": [" REV("whole-c") ", " REV("whole-d") ", " REV("whole-c") "]}";
	static const char good[] = "{\"revisions\": [" REV("whole-e") ", " REV("whole-f") "]}";
	struct gerr err = { { 0 } };
	(void)state;

	carry_file(one_bad, strlen(one_bad));
	assert_int_equal(metrics_carry_load(carry_path, &err), -1);
	assert_string_equal(err.msg, "revisions[1].status: missing");
	assert_null(series_find("whole-a", "e", "1"));
	assert_null(series_find("whole-b", "e", "1"));
	unlink(carry_path);

	carry_file(twice, strlen(twice));
	assert_int_equal(metrics_carry_load(carry_path, &err), -1);
	assert_string_equal(err.msg, "revisions: service 'whole-c' environment 'e' revision '1' twice");
	assert_null(series_find("whole-c", "e", "1"));
	assert_null(series_find("whole-d", "e", "1"));
	unlink(carry_path);

	carry_file(good, strlen(good));
	assert_int_equal(metrics_carry_load(carry_path, &err), 2);
	assert_non_null(series_find("whole-e", "e", "1"));
	assert_non_null(series_find("whole-f", "e", "1"));
	unlink(carry_path);

	/* no file, a directory, a file over the bound */
	assert_int_equal(metrics_carry_load("/nonexistent/gantry-counters.json", &err), -1);
	assert_string_equal(err.msg, "No such file or directory");
	assert_int_equal(metrics_carry_load(getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", &err), -1);
	assert_string_equal(err.msg, "not a regular file");
	carry_file("{", 1);
	assert_int_equal(truncate(carry_path, (off_t)CARRY_MAX_BYTES + 1), 0);
	assert_int_equal(metrics_carry_load(carry_path, &err), -1);
	assert_non_null(strstr(err.msg, "larger than"));
}

/*
 * A backend's health-check counters: /windows lists them, a carry of it
 * seeds the backend when it is made next (once), and a bad "checks" entry
 * refuses the document naming it.
 */
static void test_checks_carried(void **state)
{
	static const char doc[] = "{\"revisions\": [], \"checks\": [{\"service\": \"hc\", \"environment\": \"e\", "
		"\"revision\": \"1\", \"address\": \"127.0.0.1:9\", \"passed\": 41, \"failed\": 2}]}";
	static const char bad[] = "{\"revisions\": [], \"checks\": [{\"service\": \"hc\", \"environment\": \"e\", "
		"\"revision\": \"1\", \"address\": \"127.0.0.1:9\", \"passed\": \"x\", \"failed\": 2}]}";
	struct gerr err = { { 0 } };
	struct metrics_carry c;
	struct backend *b, *again;
	struct hbuf hb;
	(void)state;

	assert_int_equal(metrics_carry_parse(bad, strlen(bad), &c, &err), -1);
	assert_string_equal(err.msg, "checks[0].passed: not an integer from 0 to 2^60");
	carry_file(doc, strlen(doc));
	assert_int_equal(metrics_carry_load(carry_path, &err), 0);
	unlink(carry_path);
	b = backend_get("127.0.0.1:9", "hc", "e", "1", &err);
	assert_non_null(b);
	assert_int_equal(CTR_GET(b->hc_passed), 41);
	assert_int_equal(CTR_GET(b->hc_failed), 2);
	CTR_ADD(b->hc_passed, 1);
	/* /windows lists them, and reads back */
	hbuf_init(&hb, 1 << 20);
	windows_render(&hb, 1, 1);
	assert_int_equal(metrics_carry_parse(hb.data, hb.len, &c, &err), 0);
	assert_int_equal(c.nchecks, 1);
	assert_string_equal(c.checks[0].address, "127.0.0.1:9");
	assert_int_equal(c.checks[0].passed, 42);
	assert_int_equal(c.checks[0].failed, 2);
	metrics_carry_release(&c);
	hbuf_release(&hb);
	/* the seed is taken once: a backend made again later starts from 0 */
	backend_put(b);
	again = backend_get("127.0.0.1:9", "hc", "e", "1", &err);
	assert_int_equal(CTR_GET(again->hc_passed), 0);
	backend_put(again);
}

/* the proxy's own /windows reads back as a carry: the same counters */
static void test_windows_reads_back(void **state)
{
	struct metric_series *s = metric_series_get("rt", "e", "1");
	struct series_sum sum;
	struct metrics_carry c;
	struct gerr err = { { 0 } };
	struct hbuf b;
	char ep[17];
	size_t k;
	(void)state;

	metrics_epoch_init();
	metric_count(s, 0, 2, 120, 10, 20);
	metric_count(s, 0, 5, 4000000, 1, 2);
	metric_count(s, 0, 0, UINT64_MAX, 3, 0);
	metric_series_sum(s, &sum);
	hbuf_init(&b, 1 << 20);
	windows_render(&b, 1, 9);
	assert_int_equal(metrics_carry_parse(b.data, b.len, &c, &err), 0);
	snprintf(ep, sizeof(ep), "%016llx", (unsigned long long)metrics_epoch(NULL));
	assert_string_equal(c.epoch, ep);
	for (k = 0; k < c.n; k++)
		if (!strcmp(c.revs[k].service, "rt"))
			break;
	assert_true(k < c.n);
	assert_int_equal(c.revs[k].c.requests, 3);
	assert_memory_equal(c.revs[k].c.status, sum.status, sizeof(sum.status));
	assert_memory_equal(c.revs[k].c.latency, sum.latency, sizeof(sum.latency));
	assert_int_equal(c.revs[k].c.latency_sum_us, 4000120);
	assert_int_equal(c.revs[k].c.bytes_in, 14);
	assert_int_equal(c.revs[k].c.bytes_out, 22);
	metrics_carry_release(&c);
	hbuf_release(&b);
	metric_series_put(s);
}

/* two epochs are two processes */
static void test_epoch(void **state)
{
	int64_t started, now_ms;
	struct timespec ts;
	uint64_t a, b;
	(void)state;
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	metrics_epoch_init();
	a = metrics_epoch(&started);
	metrics_epoch_init();
	b = metrics_epoch(NULL);
	assert_true(a != 0 && b != 0 && a != b);
	assert_true(started >= now_ms - 1000 && started <= now_ms + 60000);
	assert_string_equal(metrics_carried_from(), "");
}

static const char *routes_carry(struct pt_up *up, const char *svc)
{
	static char json[512];
	snprintf(json, sizeof(json),
		 "{\"generation\": 4, \"routes\": [{\"hosts\": [\"app.test\"], \"service\": \"%s\","
		 " \"environment\": \"t\", \"revisions\": [{\"revision\": \"v1\", \"weight\": 100,"
		 " \"backends\": [{\"address\": \"127.0.0.1:%u\"}]}]}]}",
		 svc, up->port);
	return json;
}

static void admin_get(const char *path, struct pt_resp *r)
{
	struct pt_conn *c = pt_connect(pt_proxy.admin_port);
	char req[256];
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path);
	pt_send(c, req);
	assert_int_equal(pt_read_resp(c, r), 0);
	assert_int_equal(r->status, 200);
	pt_close(c);
}

static void one_request(void)
{
	struct pt_conn *c = pt_connect(pt_proxy.port);
	struct pt_resp r;
	pt_send(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
	assert_int_equal(pt_read_resp(c, &r), 0);
	assert_int_equal(r.status, 200);
	pt_close(c);
}

/*
 * A proxy started with --counters-from: its counters go on from the
 * carried ones (1000 2xx and 7 5xx of which 1000 in the first latency
 * bucket), /windows shows the base and where it came from, /metrics the
 * sums and its start time.
 */
static void test_proxy_starts_from_carry(void **state)
{
	static const char carry[] =
		"{\"now_ms\": 5, \"epoch\": \"00000000000000aa\", \"started_ms\": 4, \"generation\": 3, "
		"\"revisions\": [{\"service\": \"carry\", \"environment\": \"t\", \"revision\": \"v1\", "
		"\"requests\": 1007, \"status\": [0,0,1000,0,0,7], "
		"\"latency\": [1000,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,7,0,0,0,0,0,0,0,0,0,0,0], "
		"\"latency_sum_us\": 50000, \"bytes_in\": 100, \"bytes_out\": 2000, \"upstream_errors\": 2, "
		"\"inflight\": 3, \"base\": {\"requests\": 1}},"
		"{\"service\": \"gone\", \"environment\": \"t\", \"revision\": \"v0\", \"requests\": 5, "
		"\"status\": [0,0,5,0,0,0], \"latency\": " LAT32 ", \"bytes_in\": 0, \"bytes_out\": 0}]}";
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_resp r;
	(void)state;

	carry_file(carry, strlen(carry));
	pt_px_config()->admin = PT_ADMIN;
	pt_proxy.cfg.counters_from = carry_path;
	assert_int_equal(pt_px_start(routes_carry(up, "carry")), 0);
	one_request();
	admin_get("/windows", &r);
	assert_has(r.body, "\"carried_from\":\"00000000000000aa\"");
	assert_has(r.body, "{\"service\":\"carry\",\"environment\":\"t\",\"revision\":\"v1\","
			   "\"requests\":1008,\"status\":[0,0,1001,0,0,7],\"latency\":[");
	assert_has(r.body, ",\"inflight\":0,\"base\":{\"requests\":1007,\"status\":[0,0,1000,0,0,7],"
			   "\"latency\":[1000,");
	assert_has(r.body, "\"latency_sum_us\":50000,\"bytes_in\":100,\"bytes_out\":2000,\"upstream_errors\":2}");
	/* a carried revision the table does not route is not shown (but kept) */
	assert_null(strstr(r.body, "\"gone\""));
	assert_non_null(series_find("gone", "t", "v0"));
	admin_get("/status", &r);
	assert_has(r.body, "\"epoch\":\"");
	assert_has(r.body, "\"carried_from\":\"00000000000000aa\"");
	admin_get("/metrics", &r);
	assert_has(r.body, "gantry_http_requests_total{service=\"carry\",environment=\"t\",revision=\"v1\","
			   "code=\"2xx\"} 1001\n");
	assert_has(r.body, "gantry_http_requests_total{service=\"carry\",environment=\"t\",revision=\"v1\","
			   "code=\"5xx\"} 7\n");
	assert_has(r.body, "gantry_http_request_duration_seconds_count{service=\"carry\",environment=\"t\","
			   "revision=\"v1\"} 1008\n");
	assert_has(r.body, "gantry_proxy_upstream_errors_total{service=\"carry\",environment=\"t\",revision=\"v1\"} 2\n");
	assert_has(r.body, "# TYPE gantry_proxy_start_time_seconds gauge\ngantry_proxy_start_time_seconds ");
}

/* a file it cannot use is not fatal: the proxy starts, from 0, and says so in its epoch only */
static void test_proxy_bad_carry_starts_from_zero(void **state)
{
	struct pt_up *up = pt_up_start("a", UP_OK);
	struct pt_resp r;
	char want[64];
	(void)state;

	carry_file("{\"revisions\": [{\"service\": \"zero\"", 34);
	pt_px_config()->admin = PT_ADMIN;
	pt_proxy.cfg.counters_from = carry_path;
	assert_int_equal(pt_px_start(routes_carry(up, "zero")), 0);
	one_request();
	admin_get("/windows", &r);
	assert_has(r.body, "{\"service\":\"zero\",\"environment\":\"t\",\"revision\":\"v1\",\"requests\":1,");
	assert_null(strstr(r.body, "\"base\""));
	assert_null(strstr(r.body, "\"carried_from\""));
	snprintf(want, sizeof(want), "\"epoch\":\"%016llx\"", (unsigned long long)metrics_epoch(NULL));
	assert_has(r.body, want);
	pt_px_stop();
	/* nor is a file that is not there */
	pt_px_config()->admin = PT_ADMIN;
	pt_proxy.cfg.counters_from = "/nonexistent/gantry-counters.json";
	assert_int_equal(pt_px_start(routes_carry(up, "zero")), 0);
	admin_get("/windows", &r);
	assert_has(r.body, "\"requests\":1,"); /* the same process: its series go on */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test_setup_teardown(test_load_all_or_nothing, pt_setup, teardown),
		cmocka_unit_test(test_windows_reads_back),
		cmocka_unit_test_setup_teardown(test_checks_carried, pt_setup, teardown),
		cmocka_unit_test(test_epoch),
		cmocka_unit_test_setup_teardown(test_proxy_starts_from_carry, pt_setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy_bad_carry_starts_from_zero, pt_setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
