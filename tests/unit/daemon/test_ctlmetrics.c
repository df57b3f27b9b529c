#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "daemon/ctlmetrics.h"

/* a status reply as op_status gives it: one service environment in a held
 * rolling deploy, the store failing, the disk low */
static const char held_status[] =
	"{\"ok\": true, \"status\": [{\"service\": \"hello\", \"environment\": \"staging\", \"phase\": \"degraded\","
	" \"replicas\": ["
	"  {\"id\": \"a\", \"revision\": 1, \"pid\": 10, \"state\": \"ready\"},"
	"  {\"id\": \"b\", \"revision\": 2, \"pid\": 11, \"state\": \"starting\"},"
	"  {\"id\": \"c\", \"revision\": 1, \"pid\": 12, \"state\": \"ready\"}]}],"
	" \"store\": {\"ok\": false, \"error\": \"database or disk is full\", \"since_ms\": 1, \"for_ms\": 12500},"
	" \"disk\": {\"path\": \"/h\", \"free_bytes\": 4096, \"total_bytes\": 3145728, \"free_pct\": 0.13,"
	"  \"threshold\": \"5%\", \"threshold_pct\": 5, \"low\": true, \"error\": null}}";

static char *render(const char *status_text, long long failures, const struct ctlmetrics_rollouts *ro, size_t n)
{
	json_error_t jerr;
	json_t *st = json_loads(status_text, 0, &jerr);
	struct hbuf b;
	assert_non_null(st);
	hbuf_init(&b, 1 << 20);
	assert_int_equal(ctlmetrics_format(st, failures, ro, n, &b), 0);
	json_decref(st);
	return hbuf_detach(&b, NULL);
}

/* every sample line of the text is "name{labels} value": no stray text */
static void assert_well_formed(const char *t)
{
	const char *line = t;
	assert_true(*t && t[strlen(t) - 1] == '\n');
	while (*line) {
		const char *end = strchr(line, '\n');
		assert_non_null(end);
		if (strncmp(line, "# HELP gantry_", 14) && strncmp(line, "# TYPE gantry_", 14)) {
			const char *sp = memchr(line, ' ', (size_t)(end - line));
			assert_true(!strncmp(line, "gantry_", 7));
			assert_non_null(sp);
			assert_true(strspn(sp + 1, "0123456789.-e") == (size_t)(end - sp - 1));
		}
		line = end + 1;
	}
}

static void test_held_store(void **state)
{
	struct ctlmetrics_rollouts ro[] = { { "hello", "staging", 2 }, { "api", "prod", 7 } };
	char *t = render(held_status, 3, ro, 2);
	(void)state;

	assert_well_formed(t);
	assert_non_null(strstr(t, "# TYPE gantry_store_ok gauge\ngantry_store_ok 0\n"));
	assert_non_null(strstr(t, "# TYPE gantry_store_failures_total counter\ngantry_store_failures_total 3\n"));
	assert_non_null(strstr(t, "\ngantry_store_failing_seconds 12.500\n"));
	assert_non_null(strstr(t, "\ngantry_disk_free_bytes 4096\n"));
	assert_non_null(strstr(t, "\ngantry_disk_size_bytes 3145728\n"));
	assert_non_null(strstr(t, "\ngantry_disk_low_threshold_ratio 0.05\n"));
	assert_non_null(strstr(t, "\ngantry_disk_low 1\n"));
	/* one sample per phase, 1 for the current one only */
	assert_non_null(strstr(t, "gantry_service_phase{service=\"hello\",environment=\"staging\",phase=\"degraded\"} 1\n"));
	assert_non_null(strstr(t, "gantry_service_phase{service=\"hello\",environment=\"staging\",phase=\"healthy\"} 0\n"));
	assert_non_null(strstr(t, "gantry_service_phase{service=\"hello\",environment=\"staging\",phase=\"progressing\"} 0\n"));
	assert_null(strstr(t, "phase=\"degraded\"} 0"));
	/* replicas counted by (revision, state) */
	assert_non_null(strstr(t, "gantry_replicas{service=\"hello\",environment=\"staging\",revision=\"1\",state=\"ready\"} 2\n"));
	assert_non_null(strstr(t, "gantry_replicas{service=\"hello\",environment=\"staging\",revision=\"2\",state=\"starting\"} 1\n"));
	assert_null(strstr(t, "revision=\"1\",state=\"ready\"} 1"));
	assert_non_null(strstr(t, "# TYPE gantry_rollouts_total counter\n"
				  "gantry_rollouts_total{service=\"hello\",environment=\"staging\"} 2\n"
				  "gantry_rollouts_total{service=\"api\",environment=\"prod\"} 7\n"));
	free(t);
}

/* a store that writes, a disk not measured yet, nothing deployed: every
 * family is still declared, with the samples that exist */
static void test_empty(void **state)
{
	char *t = render("{\"ok\": true, \"status\": [], \"store\": {\"ok\": true},"
			 " \"disk\": {\"free_bytes\": null, \"total_bytes\": null, \"threshold_pct\": null, \"low\": false}}",
			 0, NULL, 0);
	(void)state;
	assert_well_formed(t);
	assert_non_null(strstr(t, "gantry_store_ok 1\n"));
	assert_non_null(strstr(t, "gantry_store_failures_total 0\n"));
	assert_non_null(strstr(t, "gantry_store_failing_seconds 0.000\n"));
	assert_non_null(strstr(t, "# TYPE gantry_disk_free_bytes gauge\n# HELP gantry_disk_size_bytes"));
	assert_non_null(strstr(t, "gantry_disk_low 0\n"));
	assert_non_null(strstr(t, "# TYPE gantry_service_phase gauge\n# HELP gantry_replicas"));
	assert_null(strstr(t, "gantry_service_phase{"));
	assert_null(strstr(t, "gantry_replicas{"));
	free(t);
}

/* label values are escaped; a phase status knows and this file does not
 * still gets its sample */
static void test_escape_and_unknown_phase(void **state)
{
	struct ctlmetrics_rollouts ro[] = { { "a\"b\\c\nd", "e", 1 } };
	char *t = render("{\"status\": [{\"service\": \"s\", \"environment\": \"e\", \"phase\": \"migrating\","
			 " \"replicas\": [{\"revision\": 4, \"state\": \"we\\\"ird\"}]}], \"store\": {\"ok\": true}, \"disk\": {}}",
			 0, ro, 1);
	(void)state;
	assert_well_formed(t);
	assert_non_null(strstr(t, "gantry_rollouts_total{service=\"a\\\"b\\\\c\\nd\",environment=\"e\"} 1\n"));
	assert_non_null(strstr(t, "gantry_service_phase{service=\"s\",environment=\"e\",phase=\"migrating\"} 1\n"));
	assert_non_null(strstr(t, "revision=\"4\",state=\"we\\\"ird\"} 1\n"));
	free(t);
}

/* a bound too small: -1 and nothing appended (no half exposition) */
static void test_bound(void **state)
{
	json_t *st = json_loads(held_status, 0, NULL);
	struct hbuf b;
	(void)state;
	hbuf_init(&b, 200);
	hbuf_addstr(&b, "x");
	assert_int_equal(ctlmetrics_format(st, 0, NULL, 0, &b), -1);
	assert_int_equal(b.len, 1);
	hbuf_release(&b);
	json_decref(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held_store),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_escape_and_unknown_phase),
		cmocka_unit_test(test_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
