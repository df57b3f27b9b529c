#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <sys/stat.h>
#include "store/store.h"
#include "store/store-int.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/gantry-store-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static struct store *open_db(void)
{
	struct store *s;
	struct gerr err;
	char *path = xasprintf("%s/state.db", dir);
	assert_int_equal(store_open(path, &s, &err), 0);
	free(path);
	return s;
}

static void test_revisions_numbered_per_svcenv(void **state)
{
	(void)state;
	struct store *s = open_db();
	struct gerr err;
	struct revision_row r = { 0 }, got, *list;
	size_t n;

	strlcpy_g(r.service, "web", sizeof(r.service));
	strlcpy_g(r.environment, "staging", sizeof(r.environment));
	strlcpy_g(r.version, "abc123", sizeof(r.version));
	strlcpy_g(r.status, "pending", sizeof(r.status));
	r.config_json = xstrdup("{\"run\":\"./hello\"}");
	assert_int_equal(store_revision_create(s, &r, &err), 0);
	assert_int_equal(r.number, 1);
	assert_int_equal(store_revision_create(s, &r, &err), 0);
	assert_int_equal(r.number, 2);
	strlcpy_g(r.environment, "production", sizeof(r.environment));
	assert_int_equal(store_revision_create(s, &r, &err), 0);
	assert_int_equal(r.number, 1);
	free(r.config_json);

	assert_int_equal(store_revision_get(s, "web", "staging", 2, &got, &err), 1);
	assert_string_equal(got.config_json, "{\"run\":\"./hello\"}");
	assert_string_equal(got.version, "abc123");
	revision_row_release(&got);
	assert_int_equal(store_revision_get(s, "web", "staging", 9, &got, &err), 0);

	assert_int_equal(store_revision_set_status(s, "web", "staging", 1, "failed", "crash loop", &err), 0);
	assert_int_equal(store_revision_list(s, "web", "staging", &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].number, 2); /* newest first */
	assert_string_equal(list[1].status, "failed");
	assert_string_equal(list[1].reason, "crash loop");
	for (size_t i = 0; i < n; i++)
		revision_row_release(&list[i]);
	free(list);
	store_close(s);
}

static void test_survives_reopen_and_migrations_idempotent(void **state)
{
	(void)state;
	struct store *s = open_db();
	struct gerr err;
	struct replica_row r = { 0 }, *list;
	struct svcenv_row e = { 0 }, got;
	char buf[64];
	size_t n;

	strlcpy_g(r.id, "web-staging-1-a", sizeof(r.id));
	strlcpy_g(r.service, "web", sizeof(r.service));
	strlcpy_g(r.environment, "staging", sizeof(r.environment));
	r.pid = 1234;
	r.start_time = 99999;
	strlcpy_g(r.state, "ready", sizeof(r.state));
	assert_int_equal(store_replica_put(s, &r, &err), 0);
	strlcpy_g(e.service, "web", sizeof(e.service));
	strlcpy_g(e.environment, "staging", sizeof(e.environment));
	e.target_revision = 3;
	assert_int_equal(store_svcenv_put(s, &e, &err), 0);
	assert_int_equal(store_meta_set(s, "proxy.pid", "42", &err), 0);
	store_close(s);

	s = open_db();
	assert_int_equal(store_replica_list(s, "web", NULL, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].pid, 1234);
	assert_int_equal(list[0].start_time, 99999);
	free(list);
	assert_int_equal(store_svcenv_get(s, "web", "staging", &got, &err), 1);
	assert_int_equal(got.target_revision, 3);
	assert_int_equal(store_meta_get(s, "proxy.pid", buf, sizeof(buf), &err), 1);
	assert_string_equal(buf, "42");
	assert_int_equal(store_replica_delete(s, "web-staging-1-a", &err), 0);
	assert_int_equal(store_replica_list(s, NULL, NULL, &list, &n, &err), 0);
	assert_int_equal(n, 0);
	free(list);
	store_close(s);
}

static void test_events_and_rollouts(void **state)
{
	(void)state;
	struct store *s = open_db();
	struct gerr err;
	struct event_row *ev;
	struct rollout_row ro = { 0 }, got;
	size_t n;

	for (int i = 0; i < 5; i++)
		assert_int_equal(store_event_add(s, "web", "staging", i, "test", &err, "event %d", i), 0);
	assert_int_equal(store_event_list(s, "web", NULL, -1, 2, &ev, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ev[0].message, "event 3");
	assert_string_equal(ev[1].message, "event 4");
	int64_t last = ev[1].id;
	free(ev);
	assert_int_equal(store_event_list(s, NULL, NULL, last - 1, 10, &ev, &n, &err), 0);
	assert_int_equal(n, 1);
	free(ev);

	strlcpy_g(ro.service, "web", sizeof(ro.service));
	strlcpy_g(ro.environment, "staging", sizeof(ro.environment));
	strlcpy_g(ro.phase, "progressing", sizeof(ro.phase));
	ro.revision = 2;
	assert_int_equal(store_rollout_put(s, &ro, &err), 0);
	assert_true(ro.id > 0);
	strlcpy_g(ro.phase, "complete", sizeof(ro.phase));
	assert_int_equal(store_rollout_put(s, &ro, &err), 0);
	assert_int_equal(store_rollout_latest(s, "web", "staging", &got, &err), 1);
	assert_string_equal(got.phase, "complete");
	assert_int_equal(got.id, ro.id);
	store_close(s);
}

static void test_strategy_state_traffic_measurements(void **state)
{
	(void)state;
	struct store *s = open_db();
	struct gerr err;
	struct rollout_row ro = { 0 }, got;
	struct svcenv_row e = { 0 }, ge;
	struct measurement_row m = { 0 }, *ms;
	size_t n;

	strlcpy_g(ro.service, "web", sizeof(ro.service));
	strlcpy_g(ro.environment, "prod", sizeof(ro.environment));
	strlcpy_g(ro.state, "{\"step\":3,\"weight\":25}", sizeof(ro.state));
	assert_int_equal(store_rollout_put(s, &ro, &err), 0);
	assert_int_equal(store_rollout_latest(s, "web", "prod", &got, &err), 1);
	assert_string_equal(got.state, "{\"step\":3,\"weight\":25}");

	strlcpy_g(e.service, "web", sizeof(e.service));
	strlcpy_g(e.environment, "prod", sizeof(e.environment));
	strlcpy_g(e.traffic, "[{\"revision\":4,\"weight\":90}]", sizeof(e.traffic));
	assert_int_equal(store_svcenv_put(s, &e, &err), 0);
	assert_int_equal(store_svcenv_get(s, "web", "prod", &ge, &err), 1);
	assert_string_equal(ge.traffic, e.traffic);

	m.rollout_id = ro.id;
	strlcpy_g(m.analysis, "slo", sizeof(m.analysis));
	strlcpy_g(m.metric, "error_rate", sizeof(m.metric));
	m.revision = 5;
	m.has_value = true;
	m.value = 0.073;
	strlcpy_g(m.verdict, "fail", sizeof(m.verdict));
	assert_int_equal(store_measurement_add(s, &m, &err), 0);
	m.has_value = false;
	strlcpy_g(m.verdict, "error", sizeof(m.verdict));
	assert_int_equal(store_measurement_add(s, &m, &err), 0);
	assert_int_equal(store_measurement_list(s, ro.id, 10, &ms, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_true(ms[0].has_value);
	assert_true(ms[0].value > 0.072 && ms[0].value < 0.074);
	assert_false(ms[1].has_value);
	assert_string_equal(ms[1].verdict, "error");
	free(ms);
	store_close(s);
}

static void test_corrupt_database_is_an_error(void **state)
{
	(void)state;
	struct store *s = NULL;
	struct gerr err = { { 0 } };
	char *path = xasprintf("%s/bad.db", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 512; i++)
		fputs("this is not a database at all ", f);
	fclose(f);
	assert_int_equal(store_open(path, &s, &err), -1);
	assert_null(s);
	assert_non_null(strstr(err.msg, "not a database"));
	free(path);
}

/* the read-only views for promotion and DORA, and whether an artifact is still referenced */
static void test_rollout_history_and_digests(void **state)
{
	(void)state;
	struct store *s = open_db();
	struct gerr err;
	struct rollout_row ro = { 0 }, *list;
	struct revision_row r = { 0 };
	int64_t at = -1;
	size_t n;

	strlcpy_g(ro.service, "web", sizeof(ro.service));
	strlcpy_g(ro.environment, "prod", sizeof(ro.environment));
	strlcpy_g(ro.phase, "complete", sizeof(ro.phase));
	ro.revision = 1;
	ro.started_at = 1000;
	assert_int_equal(store_rollout_put(s, &ro, &err), 0);
	ro.id = 0;
	ro.revision = 2;
	ro.started_at = 2000;
	strlcpy_g(ro.phase, "rolled_back", sizeof(ro.phase));
	strlcpy_g(ro.state, "{\"step\":1}", sizeof(ro.state));
	assert_int_equal(store_rollout_put(s, &ro, &err), 0);
	ro.id = 0;
	strlcpy_g(ro.environment, "staging", sizeof(ro.environment));
	assert_int_equal(store_rollout_put(s, &ro, &err), 0);

	assert_int_equal(store_rollout_completed_at(s, "web", "prod", 1, &at, &err), 1);
	assert_true(at > 0);
	at = -1;
	assert_int_equal(store_rollout_completed_at(s, "web", "prod", 2, &at, &err), 0);
	assert_int_equal(at, -1); /* untouched when there is none */

	assert_int_equal(store_rollout_list(s, "web", "prod", 0, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].revision, 1); /* oldest first */
	assert_string_equal(list[1].phase, "rolled_back");
	free(list);
	assert_int_equal(store_rollout_list(s, "", "", 1500, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[1].environment, "staging");
	free(list);

	strlcpy_g(r.service, "web", sizeof(r.service));
	strlcpy_g(r.environment, "prod", sizeof(r.environment));
	strlcpy_g(r.digest, "d1", sizeof(r.digest));
	assert_int_equal(store_revision_create(s, &r, &err), 0);
	assert_int_equal(store_digest_in_use(s, "d1", &err), 1);
	assert_int_equal(store_digest_in_use(s, "d2", &err), 0);
	assert_int_equal(store_revision_set_pruned(s, "web", "prod", r.number, &err), 0);
	assert_int_equal(store_digest_in_use(s, "d1", &err), 0);
	store_close(s);
}

/* a full disk, as SQLite sees it: the file may not grow past max_page_count */
static void fill_up(struct store *s)
{
	sqlite3_stmt *st;
	int pages = 0;
	assert_int_equal(sqlite3_prepare_v2(store__db(s), "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	pages = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	char *sql = xasprintf("PRAGMA max_page_count = %d", pages);
	assert_int_equal(sqlite3_exec(store__db(s), sql, NULL, NULL, NULL), SQLITE_OK);
	free(sql);
}

static void unfill(struct store *s)
{
	assert_int_equal(sqlite3_exec(store__db(s), "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL), SQLITE_OK);
}

static void big_event(struct store *s, int *ret, struct gerr *err)
{
	char big[900];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	*ret = 0;
	/* enough rows to need a new page whatever the page has left */
	for (int i = 0; i < 20 && *ret == 0; i++)
		*ret = store_event_add(s, "web", "prod", 1, "test", err, "%s", big);
}

static void test_fault_full_is_detected_and_cleared(void **state)
{
	(void)state;
	struct store *s = open_db();
	struct gerr err;
	struct store_fault_info f;
	struct svcenv_row row = { 0 }, got;
	int ret;

	assert_false(store_fault(s, &f));
	assert_int_equal(f.since_ms, 0);
	fill_up(s);
	big_event(s, &ret, &err);
	assert_int_equal(ret, -1);
	assert_non_null(strstr(err.msg, "database or disk is full"));
	assert_true(store_fault(s, &f));
	assert_string_equal(f.msg, "database or disk is full");
	assert_true(f.since_ms > 0);
	assert_true(store_code_is_fault(f.code));
	/* reads still work while faulted */
	assert_int_equal(store_svcenv_get(s, "web", "prod", &got, &err), 0);
	/* a probe fails while full, and the first failure's time is kept */
	{
		int64_t since = f.since_ms;
		big_event(s, &ret, &err);
		assert_true(store_fault(s, &f));
		assert_int_equal(f.since_ms, since);
	}
	unfill(s);
	assert_int_equal(store_probe(s, &err), 0);
	assert_false(store_fault(s, &f));
	strlcpy_g(row.service, "web", sizeof(row.service));
	strlcpy_g(row.environment, "prod", sizeof(row.environment));
	assert_int_equal(store_svcenv_put(s, &row, &err), 0);
	store_close(s);
}

/* a transaction is all or nothing even when a caller ignores a failed step */
static void test_fault_transaction_all_or_nothing(void **state)
{
	(void)state;
	struct store *s = open_db();
	struct gerr err;
	struct svcenv_row row = { 0 }, got;
	int ret;

	strlcpy_g(row.service, "web", sizeof(row.service));
	strlcpy_g(row.environment, "prod", sizeof(row.environment));
	row.target_revision = 1;
	assert_int_equal(store_svcenv_put(s, &row, &err), 0);
	fill_up(s);
	assert_int_equal(store_begin(s, &err), 0);
	row.target_revision = 2;
	big_event(s, &ret, &err);
	assert_int_equal(ret, -1);
	/* refused after the failure, even if it would fit */
	assert_int_equal(store_svcenv_put(s, &row, &err), -1);
	assert_int_equal(store_begin(s, &err), -1); /* no nested begin inside a failed one */
	assert_int_equal(store_commit(s, &err), -1);
	assert_non_null(strstr(err.msg, "nothing changed"));
	assert_int_equal(store_svcenv_get(s, "web", "prod", &got, &err), 1);
	assert_int_equal(got.target_revision, 1);
	assert_true(store_fault(s, NULL));
	/* the next transaction starts afresh, and its commit clears the fault */
	unfill(s);
	assert_int_equal(store_begin(s, &err), 0);
	assert_int_equal(store_svcenv_put(s, &row, &err), 0);
	assert_true(store_fault(s, NULL)); /* not before the commit */
	assert_int_equal(store_commit(s, &err), 0);
	assert_false(store_fault(s, NULL));
	assert_int_equal(store_svcenv_get(s, "web", "prod", &got, &err), 1);
	assert_int_equal(got.target_revision, 2);
	store_close(s);
}

/* read-only is a fault; contention and constraint errors are not */
static void test_fault_kinds(void **state)
{
	(void)state;
	struct store *s = open_db();
	struct gerr err;

	assert_true(store_code_is_fault(SQLITE_FULL));
	assert_true(store_code_is_fault(SQLITE_IOERR_WRITE));
	assert_true(store_code_is_fault(SQLITE_IOERR_FSYNC));
	assert_true(store_code_is_fault(SQLITE_READONLY_DBMOVED));
	assert_true(store_code_is_fault(SQLITE_CANTOPEN));
	assert_false(store_code_is_fault(SQLITE_BUSY));
	assert_false(store_code_is_fault(SQLITE_LOCKED));
	assert_false(store_code_is_fault(SQLITE_CONSTRAINT_PRIMARYKEY));
	assert_int_equal(sqlite3_exec(store__db(s), "PRAGMA query_only = 1", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_meta_set(s, "k", "v", &err), -1);
	assert_true(store_fault(s, NULL));
	assert_int_equal(sqlite3_exec(store__db(s), "PRAGMA query_only = 0", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_meta_set(s, "k", "v", &err), 0);
	assert_false(store_fault(s, NULL));
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_revisions_numbered_per_svcenv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_reopen_and_migrations_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_and_rollouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strategy_state_traffic_measurements, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_database_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollout_history_and_digests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_full_is_detected_and_cleared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_transaction_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_kinds, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
