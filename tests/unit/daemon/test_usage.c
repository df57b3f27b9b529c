/*
 * test_usage — usage per replica and per revision (daemon/usage.c): CPU
 * percentages from successive cgroup readings, the revision's highest
 * fraction with the no-limit rule, a runtime's own reports, staleness, the
 * status fields and the Prometheus lines. Readings are given as data
 * (struct cgroup_usage), the clock as numbers.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include "daemon/daemon.h"
#include "daemon/usage.h"
#include "runtime/usage.h"
#include "util/buf.h"
#include "util/clock.h"

/* replica.c's, faked (usage.c needs nothing else of the controller) */
bool replica_is_leaving(const struct replica *r)
{
	return !strcmp(r->row.state, "draining") || !strcmp(r->row.state, "stopping");
}

static struct svcenv se;
static struct replica ra, rb, rc;

static void mk(struct replica *r, const char *id, int revision, struct replica *next)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->row.id, sizeof(r->row.id), "%s", id);
	snprintf(r->row.service, sizeof(r->row.service), "api");
	snprintf(r->row.environment, sizeof(r->row.environment), "prod");
	snprintf(r->row.state, sizeof(r->row.state), "ready");
	r->row.revision = revision;
	r->row.pid = 100;
	r->se = &se;
	r->next = next;
}

static int setup(void **state)
{
	(void)state;
	memset(&se, 0, sizeof(se));
	mk(&rc, "api-prod-2-b", 2, NULL);
	mk(&rb, "api-prod-2-a", 2, &rc);
	mk(&ra, "api-prod-1-a", 1, &rb);
	se.replicas = &ra;
	return 0;
}

static struct cgroup_usage reading(int64_t mem, int64_t limit, int64_t cpu_usec, int64_t cpu_millis)
{
	struct cgroup_usage u = { mem, limit, cpu_usec, cpu_millis };
	return u;
}

static void test_cpu_from_two_readings(void **state)
{
	struct cgroup_usage u;
	(void)state;
	/* the first reading has nothing to compare with */
	u = reading(1000, 0, 5000000, 500);
	usage_sample(&ra, &u, 10000);
	assert_false(ra.usage.have_cpu);
	assert_true(isnan(usage_revision(&se, 1, CM_CPU, 10000)));
	/* 2 s later, 0.5 s of CPU more: 25% of one core, 50% of a 500m limit */
	u = reading(1000, 0, 5500000, 500);
	usage_sample(&ra, &u, 12000);
	assert_true(ra.usage.have_cpu);
	assert_true(fabs(ra.usage.cpu_percent - 50) < 1e-9);
	assert_true(fabs(usage_revision(&se, 1, CM_CPU, 12000) - 0.5) < 1e-9);
	/* without a limit: of one core, and past 100% with two busy threads */
	u = reading(1000, 0, 9500000, 0);
	usage_sample(&ra, &u, 14000);
	assert_true(fabs(ra.usage.cpu_percent - 200) < 1e-9);
	/* a counter that went back (a new cgroup): no figure this time */
	u = reading(1000, 0, 100, 0);
	usage_sample(&ra, &u, 16000);
	assert_false(ra.usage.have_cpu);
	u = reading(1000, 0, 200100, 0);
	usage_sample(&ra, &u, 18000);
	assert_true(fabs(ra.usage.cpu_percent - 10) < 1e-9);
	/* no cpuacct: memory only */
	u = reading(1000, 0, -1, 0);
	usage_sample(&ra, &u, 20000);
	assert_false(ra.usage.have_cpu);
	assert_int_equal(ra.usage.memory_bytes, 1000);
}

static void test_memory_fraction_and_no_limit(void **state)
{
	struct cgroup_usage u;
	(void)state;
	/* revision 2: one replica at 80% of 100 MiB, one at 20% */
	u = reading(80 << 20, 100 << 20, -1, 0);
	usage_sample(&rb, &u, 1000);
	u = reading(20 << 20, 100 << 20, -1, 0);
	usage_sample(&rc, &u, 1000);
	assert_true(fabs(usage_revision(&se, 2, CM_MEMORY, 1000) - 0.8) < 1e-9);
	/* a draining replica no longer counts */
	snprintf(rb.row.state, sizeof(rb.row.state), "draining");
	assert_true(fabs(usage_revision(&se, 2, CM_MEMORY, 1000) - 0.2) < 1e-9);
	snprintf(rb.row.state, sizeof(rb.row.state), "ready");
	/* revision 1 has no limit: no data, however much it uses */
	u = reading(900 << 20, 0, -1, 0);
	usage_sample(&ra, &u, 1000);
	assert_true(isnan(usage_revision(&se, 1, CM_MEMORY, 1000)));
	/* a revision without replicas: no data */
	assert_true(isnan(usage_revision(&se, 7, CM_MEMORY, 1000)));
	/* stale after USAGE_STALE_MS without a new reading */
	assert_false(isnan(usage_revision(&se, 2, CM_MEMORY, 1000 + USAGE_STALE_MS)));
	assert_true(isnan(usage_revision(&se, 2, CM_MEMORY, 1001 + USAGE_STALE_MS)));
	/* a cgroup that is gone leaves the last reading to go stale */
	usage_sample(&rb, NULL, 3000);
	assert_int_equal(rb.usage.t_ms, 1000);
}

static void test_report(void **state)
{
	int64_t now = clock_steady_ms();
	(void)state;
	usage_external(&rb, true);
	assert_true(rb.usage.external);
	usage_report(&rb, 300 << 20, 1 << 30, 42.5);
	assert_true(rb.usage.external);
	assert_true(fabs(usage_revision(&se, 2, CM_CPU, now) - 0.425) < 1e-9);
	assert_true(fabs(usage_revision(&se, 2, CM_MEMORY, now) - 300.0 / 1024) < 1e-9);
	/* unknown CPU */
	usage_report(&rb, 300 << 20, 0, NAN);
	assert_false(rb.usage.have_cpu);
	assert_true(isnan(usage_revision(&se, 2, CM_MEMORY, now)));
	usage_external(&rb, false);
	assert_false(rb.usage.external);
}

static void test_json(void **state)
{
	struct cgroup_usage u;
	json_t *o = json_object();
	(void)state;
	/* nothing known yet */
	usage_json(&ra, o, 5000);
	assert_true(json_is_null(json_object_get(o, "memory_bytes")));
	assert_true(json_is_null(json_object_get(o, "memory_limit")));
	assert_true(json_is_null(json_object_get(o, "cpu_percent")));
	u = reading(12345678, 268435456, 1000000, 1000);
	usage_sample(&ra, &u, 4000);
	u = reading(12345678, 268435456, 1250000, 1000);
	usage_sample(&ra, &u, 6000);
	usage_json(&ra, o, 6000);
	assert_int_equal(json_integer_value(json_object_get(o, "memory_bytes")), 12345678);
	assert_int_equal(json_integer_value(json_object_get(o, "memory_limit")), 268435456);
	assert_true(fabs(json_number_value(json_object_get(o, "cpu_percent")) - 12.5) < 1e-9);
	/* stale: null again */
	usage_json(&ra, o, 6000 + USAGE_STALE_MS + 1);
	assert_true(json_is_null(json_object_get(o, "memory_bytes")));
	json_decref(o);
}

static void test_prometheus(void **state)
{
	struct cgroup_usage u;
	struct hbuf b;
	char *text;
	(void)state;
	/* ra: no limit, two readings; rb: a limit, one reading; rc: nothing */
	u = reading(1048576, 0, 0, 0);
	usage_sample(&ra, &u, 1000);
	u = reading(2097152, 0, 1000000, 0);
	usage_sample(&ra, &u, 3000);
	u = reading(4096, 8192, 5, 0);
	usage_sample(&rb, &u, 3000);
	snprintf(rb.row.id, sizeof(rb.row.id), "we\"ird\\id");
	hbuf_init(&b, 1 << 16);
	assert_int_equal(usage_prometheus(&se, &b, 3000), 0);
	text = hbuf_detach(&b, NULL);
	assert_string_equal(text,
		"# HELP gantry_replica_memory_bytes Memory in use by a replica (working set: less inactive file cache).\n"
		"# TYPE gantry_replica_memory_bytes gauge\n"
		"gantry_replica_memory_bytes{service=\"api\",environment=\"prod\",revision=\"1\",replica=\"api-prod-1-a\"} 2097152\n"
		"gantry_replica_memory_bytes{service=\"api\",environment=\"prod\",revision=\"2\",replica=\"we\\\"ird\\\\id\"} 4096\n"
		"# HELP gantry_replica_memory_limit_bytes A replica's memory limit (replicas with one).\n"
		"# TYPE gantry_replica_memory_limit_bytes gauge\n"
		"gantry_replica_memory_limit_bytes{service=\"api\",environment=\"prod\",revision=\"2\",replica=\"we\\\"ird\\\\id\"} 8192\n"
		"# HELP gantry_replica_cpu_percent CPU used by a replica over the last interval, in percent of its CPU limit (of one core without one).\n"
		"# TYPE gantry_replica_cpu_percent gauge\n"
		"gantry_replica_cpu_percent{service=\"api\",environment=\"prod\",revision=\"1\",replica=\"api-prod-1-a\"} 50.00\n");
	free(text);
	/* nothing fresh: nothing at all, not even the headers */
	hbuf_init(&b, 1 << 16);
	assert_int_equal(usage_prometheus(&se, &b, 3000 + USAGE_STALE_MS + 1), 0);
	assert_int_equal(b.len, 0);
	hbuf_release(&b);
	/* a bound too small: -1 */
	hbuf_init(&b, 64);
	assert_int_equal(usage_prometheus(&se, &b, 3000), -1);
	hbuf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_cpu_from_two_readings, setup),
		cmocka_unit_test_setup(test_memory_fraction_and_no_limit, setup),
		cmocka_unit_test_setup(test_report, setup),
		cmocka_unit_test_setup(test_json, setup),
		cmocka_unit_test_setup(test_prometheus, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
