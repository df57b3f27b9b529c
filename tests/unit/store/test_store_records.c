#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <sqlite3.h>
#include "store/store_records.h"
#include "records/audit.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/gantry-records-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static struct store *open_db(void)
{
	struct store *s;
	struct gerr err;
	char *path = xasprintf("%s/state.db", dir);
	if (store_open(path, &s, &err) < 0)
		fail_msg("%s", err.msg);
	free(path);
	return s;
}

static void test_users_incidents(void **state)
{
	struct store *s = open_db();
	struct gerr err;
	struct user_row u = { .name = "bob", .role = "approver", .token_hash = "abc", .created_at = 5, .created_by = "root" }, g;
	struct incident_row r = { .severity = "P1", .title = "checkout down", .environment = "production",
				  .opened_by = "alice", .opened_at = 100 }, *list;
	size_t n;
	(void)state;
	assert_int_equal(store_user_put(s, &u, &err), 0);
	assert_int_equal(store_user_get(s, "bob", &g, &err), 1);
	assert_string_equal(g.role, "approver");
	assert_int_equal(store_user_by_token(s, "abc", &g, &err), 1);
	assert_string_equal(g.name, "bob");
	assert_int_equal(store_user_by_token(s, "abd", &g, &err), 0);
	assert_int_equal(store_user_by_token(s, "", &g, &err), 0);
	assert_int_equal(store_user_delete(s, "bob", &err), 1);
	assert_int_equal(store_user_get(s, "bob", &g, &err), 0);

	assert_int_equal(store_incident_open(s, &r, &err), 0);
	assert_int_equal(r.id, 1);
	assert_int_equal(store_incident_open(s, &r, &err), 0);
	assert_int_equal(store_incident_list(s, true, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].id, 2); /* newest first */
	free(list);
	assert_int_equal(store_incident_close(s, 1, "carol", 200, "rolled back", &err), 1);
	assert_int_equal(store_incident_close(s, 1, "carol", 200, "again", &err), 0);
	assert_int_equal(store_incident_close(s, 99, "carol", 200, "", &err), 0);
	assert_int_equal(store_incident_list(s, true, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	free(list);
	assert_int_equal(store_incident_list(s, false, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[1].closed_by, "carol");
	assert_int_equal(list[1].closed_at, 200);
	free(list);
	store_close(s);
}

/* a user's scope (migration 7) survives put, get, by_token, list and a replace */
static void test_user_scope(void **state)
{
	struct store *s = open_db();
	struct gerr err;
	struct user_row u = { .name = "ana", .role = "deployer", .token_hash = "t1", .created_at = 7,
			      .created_by = "root", .environments = "staging,dev", .services = "web,api" },
			v = { .name = "vic", .role = "viewer", .created_at = 8, .created_by = "root" }, g, *list;
	size_t n;
	(void)state;
	assert_int_equal(store_user_put(s, &u, &err), 0);
	assert_int_equal(store_user_put(s, &v, &err), 0);
	assert_int_equal(store_user_get(s, "ana", &g, &err), 1);
	assert_string_equal(g.environments, "staging,dev");
	assert_string_equal(g.services, "web,api");
	assert_string_equal(g.role, "deployer");
	assert_int_equal(g.created_at, 7);
	assert_int_equal(store_user_by_token(s, "t1", &g, &err), 1);
	assert_string_equal(g.environments, "staging,dev");
	assert_string_equal(g.services, "web,api");
	assert_int_equal(store_user_list(s, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "ana");
	assert_string_equal(list[0].environments, "staging,dev");
	assert_string_equal(list[1].environments, ""); /* unscoped */
	assert_string_equal(list[1].services, "");
	free(list);
	/* user add again replaces the scope, down to none */
	u.environments[0] = 0;
	strlcpy_g(u.services, "web", sizeof(u.services));
	assert_int_equal(store_user_put(s, &u, &err), 0);
	assert_int_equal(store_user_get(s, "ana", &g, &err), 1);
	assert_string_equal(g.environments, "");
	assert_string_equal(g.services, "web");
	store_close(s);
	/* and a reopen (migrations already applied) keeps it */
	s = open_db();
	assert_int_equal(store_user_get(s, "ana", &g, &err), 1);
	assert_string_equal(g.services, "web");
	store_close(s);
}

static void test_deployments_approvals(void **state)
{
	struct store *s = open_db();
	struct gerr err;
	struct deployment_row d = { .service = "api", .environment = "production", .kind = "deploy",
				    .requester = "alice", .state = "pending_approval", .approvals_needed = 2,
				    .approval_ttl = 86400, .version = "abc123", .digest = "ff00", .created_at = 1000 }, g, *list;
	struct approval_row a = { 0, "bob", "approve", 1001, "", "" }, *al;
	size_t n;
	(void)state;
	d.request = xstrdup("{\"op\":\"deploy\"}");
	assert_int_equal(store_deployment_add(s, &d, &err), 0);
	assert_true(d.id > 0);
	assert_int_equal(store_deployment_get(s, d.id, &g, &err), 1);
	assert_string_equal(g.request, "{\"op\":\"deploy\"}");
	assert_string_equal(g.gates, "{}");
	assert_string_equal(g.checks, "[]");
	assert_int_equal(g.approvals_needed, 2);
	deployment_row_release(&g);
	assert_int_equal(store_deployment_pending(s, "api", "production", &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, d.id);
	deployment_row_release(&list[0]);
	free(list);
	assert_int_equal(store_deployment_pending(s, "web", NULL, &list, &n, &err), 0);
	assert_int_equal(n, 0);
	free(list);
	strlcpy_g(d.state, "started", sizeof(d.state));
	d.rollout_id = 42;
	d.revision = 3;
	assert_int_equal(store_deployment_update(s, &d, &err), 0);
	assert_int_equal(store_deployment_by_rollout(s, 42, &g, &err), 1);
	assert_int_equal(g.revision, 3);
	assert_string_equal(g.state, "started");
	deployment_row_release(&g);
	assert_int_equal(store_deployment_list(s, "api", NULL, 0, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	deployment_row_release(&list[0]);
	free(list);
	assert_int_equal(store_deployment_list(s, NULL, "staging", 0, &list, &n, &err), 0);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(store_deployment_pending(s, NULL, NULL, &list, &n, &err), 0);
	assert_int_equal(n, 0); /* started: no longer waiting */
	free(list);
	deployment_row_release(&d);

	a.deployment_id = 1;
	assert_int_equal(store_approval_put(s, &a, &err), 0);
	a.at = 1005; /* approving twice replaces */
	assert_int_equal(store_approval_put(s, &a, &err), 0);
	assert_int_equal(store_approval_list(s, 1, &al, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(al[0].at, 1005);
	free(al);
	store_close(s);
}

static void test_audit_chain_in_sqlite(void **state)
{
	struct store *s = open_db();
	struct gerr err;
	struct audit_entry *list;
	size_t n;
	int64_t head;
	char hh[AUDIT_HASH_HEX], why[256];
	sqlite3 *db;
	char *path;
	(void)state;
	for (int i = 0; i < 4; i++) {
		struct audit_entry e = { .time = 1000 + i, .actor = "alice", .action = "deploy", .target = "api@production" };
		e.details = xasprintf("{\"revision\": %d}", i + 1);
		assert_int_equal(store_audit_append(s, &e, audit_seal_key, NULL, &err), 0);
		assert_int_equal(e.seq, i + 1);
		audit_entry_release(&e);
	}
	assert_int_equal(store_audit_head(s, &head, hh, &err), 1);
	assert_int_equal(head, 4);
	assert_int_equal(store_audit_list(s, &list, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_string_equal(hh, list[3].hash);
	assert_int_equal(audit_verify(list, n, head, hh, why, sizeof(why)), -1);
	for (size_t i = 0; i < n; i++)
		audit_entry_release(&list[i]);
	free(list);
	store_close(s);

	/* someone edits a row directly in SQLite */
	path = xasprintf("%s/state.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE audit SET actor = 'mallory' WHERE seq = 2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(path);
	s = open_db();
	assert_int_equal(store_audit_list(s, &list, &n, &err), 0);
	assert_int_equal(audit_verify(list, n, head, hh, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "entry 2 was edited"));
	for (size_t i = 0; i < n; i++)
		audit_entry_release(&list[i]);
	free(list);
	store_close(s);
}

/* the store seals with the function it is given, inside the append's transaction */
static int fake_seals;
static int fake_seal(struct audit_entry *e, const unsigned char *key)
{
	fake_seals++;
	if (strstr(e->details, "refuse"))
		return -1;
	memset(e->hash, key ? 'b' : 'a', 64);
	e->hash[64] = 0;
	return 0;
}

static void test_audit_append_seals_and_reads(void **state)
{
	struct store *s = open_db();
	struct gerr err;
	struct audit_entry e = { .time = 7, .actor = "alice", .action = "deploy", .target = "api@production" }, got;
	const unsigned char key[AUDIT_KEY_BYTES] = { 1 };
	int64_t seq, head;
	char hh[AUDIT_HASH_HEX];
	(void)state;
	e.details = xstrdup("{}");
	assert_int_equal(store_audit_append(s, &e, fake_seal, NULL, &err), 0);
	assert_int_equal(e.seq, 1);
	assert_int_equal(e.uid, -1); /* v1: no caller recorded */
	audit_entry_release(&e);
	e.details = xstrdup("{\"n\": 2}");
	assert_int_equal(store_audit_append(s, &e, fake_seal, key, &err), 0);
	assert_int_equal(e.seq, 2);
	assert_string_equal(e.peer, "controller");
	assert_int_equal(fake_seals, 2);
	audit_entry_release(&e);

	/* a sealer's refusal fails the append and changes nothing */
	e.details = xstrdup("\"refuse\"");
	assert_int_equal(store_audit_append(s, &e, fake_seal, key, &err), -1);
	assert_non_null(strstr(err.msg, "details must be a JSON object"));
	audit_entry_release(&e);
	assert_int_equal(store_audit_head(s, &head, hh, &err), 1);
	assert_int_equal(head, 2);
	assert_int_equal(hh[0], 'b');

	assert_int_equal(store_audit_get(s, 2, &got, &err), 1);
	assert_string_equal(got.details, "{\"n\": 2}");
	assert_string_equal(got.prev, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(got.hash[0], 'b');
	audit_entry_release(&got);
	assert_int_equal(store_audit_get(s, 3, &got, &err), 0);
	assert_int_equal(store_audit_seq_after(s, hh, &seq, &err), 0);
	assert_int_equal(seq, 0);
	memset(hh, 'a', 64);
	assert_int_equal(store_audit_seq_after(s, hh, &seq, &err), 1);
	assert_int_equal(seq, 2);
	store_close(s);
}

static void test_outbox(void **state)
{
	struct store *s = open_db();
	struct gerr err;
	struct outbox_row a = { .event = "rollout_step", .ts = 5, .next_at_ms = 100 };
	struct outbox_row b = { .event = "deploy", .ts = 6, .next_at_ms = 50, .allow_private = true }, *due;
	int64_t count, next;
	size_t n;
	(void)state;
	a.url = xstrdup("https://hooks.example/a");
	a.body = xstrdup("{}");
	a.msg_id = xstrdup("msg_a");
	b.url = xstrdup("http://127.0.0.1:9/b");
	b.body = xstrdup("[1]");
	b.msg_id = xstrdup("msg_b");
	b.signature = xstrdup("");
	b.secret = xstrdup("HOOK_SECRET");
	assert_int_equal(store_outbox_add(s, &a, &err), 0);
	assert_int_equal(store_outbox_add(s, &b, &err), 0);
	assert_int_equal(b.id, a.id + 1);
	assert_int_equal(store_outbox_pending(s, &count, &next, &err), 0);
	assert_int_equal(count, 2);
	assert_int_equal(next, 50);

	assert_int_equal(store_outbox_due(s, 99, 10, &due, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].url, "http://127.0.0.1:9/b");
	assert_string_equal(due[0].signature, "");
	assert_string_equal(due[0].secret, "HOOK_SECRET");
	assert_true(due[0].allow_private);
	outbox_row_release(&due[0]);
	free(due);
	assert_int_equal(store_outbox_due(s, 1000, 10, &due, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(due[0].id, b.id); /* the earliest first */
	assert_null(due[1].signature);    /* NULL stays NULL: no webhook-* headers */
	assert_null(due[1].secret);
	assert_false(due[1].allow_private);
	for (size_t i = 0; i < n; i++)
		outbox_row_release(&due[i]);
	free(due);
	assert_int_equal(store_outbox_due(s, 1000, 1, &due, &n, &err), 0);
	assert_int_equal(n, 1);
	outbox_row_release(&due[0]);
	free(due);

	assert_int_equal(store_outbox_retry(s, b.id, 1, 5000, "refused", &err), 0);
	assert_int_equal(store_outbox_delete(s, a.id, &err), 0);
	assert_int_equal(store_outbox_pending(s, &count, &next, &err), 0);
	assert_int_equal(count, 1);
	assert_int_equal(next, 5000);
	outbox_row_release(&a);
	outbox_row_release(&b);
	store_close(s);
}

/* a statement that cannot be prepared (the table is gone): -1 naming why, an empty list */
static void test_read_errors(void **state)
{
	struct store *s = open_db();
	struct gerr err;
	struct user_row *list = (struct user_row *)&err, u;
	struct incident_row *inc = (struct incident_row *)&err;
	size_t n = 7;
	sqlite3 *db;
	char *path = xasprintf("%s/state.db", dir);
	(void)state;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE users; DROP TABLE incidents", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(path);
	assert_int_equal(store_user_list(s, &list, &n, &err), -1);
	assert_null(list);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err.msg, "no such table: users"));
	assert_int_equal(store_user_get(s, "bob", &u, &err), -1);
	assert_int_equal(store_incident_list(s, false, &inc, &n, &err), -1);
	assert_null(inc);
	assert_int_equal(store_user_delete(s, "bob", &err), -1);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_users_incidents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deployments_approvals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_chain_in_sqlite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_append_seals_and_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
