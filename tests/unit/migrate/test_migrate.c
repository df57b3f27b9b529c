/* migrate/: the file-name parser, the directory, the engine on SQLite */
#include "common.h"
#include "migrate/migrate.h"
#include <inttypes.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <sys/stat.h>

static char tmp[256];

static void put(const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", tmp, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/gantry-mig-XXXXXX");
	assert_non_null(mkdtemp(tmp));
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmp);
	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static void test_parse_name(void **state)
{
	int64_t v;
	enum mig_dir d;
	char *desc;
	struct gerr e;
	(void)state;

	assert_int_equal(mig_parse_name("001_create_users.up.sql", &v, &d, &desc, &e), 0);
	assert_int_equal(v, 1);
	assert_int_equal(d, MIG_UP);
	assert_string_equal(desc, "create_users");
	free(desc);
	/* golang-migrate's greedy (.*): the last .up./.down. decides */
	assert_int_equal(mig_parse_name("20240101120000_a.up.b.down.sql", &v, &d, &desc, &e), 0);
	assert_int_equal(v, 20240101120000LL);
	assert_int_equal(d, MIG_DOWN);
	assert_string_equal(desc, "a.up.b");
	free(desc);
	/* empty description and extension are allowed by the rule */
	assert_int_equal(mig_parse_name("7_.down.", &v, &d, &desc, &e), 0);
	assert_int_equal(v, 7);
	assert_string_equal(desc, "");
	free(desc);
	assert_int_equal(mig_parse_name("1.up.sql", &v, &d, NULL, &e), -1);
	assert_non_null(strstr(e.msg, "1.up.sql: no '_'"));
	assert_int_equal(mig_parse_name("1_x.sideways.sql", &v, &d, NULL, &e), -1);
	assert_int_equal(mig_parse_name("x_1.up.sql", &v, &d, NULL, &e), -1);
	assert_int_equal(mig_parse_name("99999999999999999999_x.up.sql", &v, &d, NULL, &e), -1);
	assert_non_null(strstr(e.msg, "too large"));
	assert_int_equal(mig_parse_name("9223372036854775807_x.up.sql", &v, &d, NULL, &e), 0);
	assert_int_equal(v, INT64_MAX);
}

static void test_markers(void **state)
{
	const char *t = "-- gantry:contract\n--  gantry:no-transaction\n\nDROP TABLE x; -- gantry:irreversible\n";
	(void)state;
	assert_int_equal(mig_markers(t, strlen(t)), MIG_MARK_CONTRACT | MIG_MARK_NO_TX);
	t = "SELECT 1;\n-- gantry:contract\n";
	assert_int_equal(mig_markers(t, strlen(t)), 0);
	t = "-- gantry:irreversible: data is gone";
	assert_int_equal(mig_markers(t, strlen(t)), MIG_MARK_IRREVERSIBLE);
}

static void test_dir_errors(void **state)
{
	struct mig_set s;
	struct gerr e;
	(void)state;

	put("README.md", "not a migration");
	put("1_a.up.sql", "CREATE TABLE a (x int);");
	put("1_a.down.sql", "DROP TABLE a;");
	put("2_b.up.sql", "CREATE TABLE b (x int);");
	assert_int_equal(mig_set_load(tmp, &s, &e), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[0].down_name, "1_a.down.sql");
	assert_null(s.v[1].down_name);
	assert_int_equal(mig_set_latest(&s), 2);
	/* a missing down is irreversible, named */
	assert_int_equal(mig_down_check(&s, 2, 0, &e), -1);
	assert_non_null(strstr(e.msg, "2_b.up.sql"));
	assert_int_equal(mig_down_check(&s, 1, MIG_NIL_VERSION, &e), 0);
	mig_set_release(&s);

	put("01_dup.up.sql", "SELECT 1;");
	assert_int_equal(mig_set_load(tmp, &s, &e), -1);
	assert_non_null(strstr(e.msg, "duplicate version 1"));
	assert_non_null(strstr(e.msg, "1_a.up.sql"));
	mig_set_release(&s);
	teardown(NULL);
	setup(NULL);

	put("3_c.down.sql", "SELECT 1;");
	assert_int_equal(mig_set_load(tmp, &s, &e), -1);
	assert_string_equal(e.msg, "3_c.down.sql: no up file for version 3");
	mig_set_release(&s);
}

static void test_expand_target(void **state)
{
	struct mig_set s;
	struct gerr e;
	(void)state;
	put("1_a.up.sql", "CREATE TABLE a (x int);");
	put("2_b.up.sql", "ALTER TABLE a ADD y int;");
	put("3_c.up.sql", "-- gantry:contract\nALTER TABLE a DROP COLUMN x;");
	put("4_d.up.sql", "CREATE TABLE d (x int);");
	assert_int_equal(mig_set_load(tmp, &s, &e), 0);
	assert_int_equal(mig_set_expand_target(&s, MIG_NIL_VERSION), 2);
	assert_int_equal(mig_set_expand_target(&s, 2), 2);
	assert_int_equal(mig_set_expand_target(&s, 3), 4);
	mig_set_release(&s);
}

static int count_rows(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int n = -1;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return n;
}

static void test_sqlite_up_down(void **state)
{
	struct mig_set s;
	struct mig_db *db;
	struct mig_state st;
	struct gerr e;
	struct mig_who who = { "test", 3 };
	char *url, *path, *dir;
	int ran;
	(void)state;

	dir = xasprintf("%s/m", tmp);
	path = xasprintf("%s/app.db", tmp);
	url = xasprintf("sqlite3://%s", path);
	assert_int_equal(mkdir(dir, 0755), 0);
	put("m/1_users.up.sql", "CREATE TABLE users (id integer primary key, name text);\n"
				"INSERT INTO users (name) VALUES ('ada');\n");
	put("m/1_users.down.sql", "DROP TABLE users;\n");
	put("m/2_email.up.sql", "ALTER TABLE users ADD COLUMN email text;\n");
	put("m/2_email.down.sql", "ALTER TABLE users DROP COLUMN email;\n");
	/* line 3 is the bad one */
	put("m/3_broken.up.sql", "INSERT INTO users (name) VALUES ('grace');\n\nCRATE TABLE oops (x int);\n");
	assert_int_equal(mig_set_load(dir, &s, &e), 0);
	assert_int_equal(mig_open(url, &db, &e), 0);

	assert_int_equal(mig_up(db, &s, 2, &who, 1000, NULL, NULL, &ran, &e), 0);
	assert_int_equal(ran, 2);
	assert_int_equal(mig_state_read(db, &st, &e), 0);
	assert_int_equal(st.version, 2);
	assert_false(st.dirty);
	assert_int_equal(st.n_applied, 2);
	assert_string_equal(st.applied[1].name, "2_email.up.sql");
	assert_int_equal(st.applied[1].revision, 3);
	mig_state_release(&st);

	/* the failing file: rolled back whole (grace is not there), version stays 2 */
	assert_int_equal(mig_up(db, &s, INT64_MAX, &who, 1000, NULL, NULL, &ran, &e), -1);
	assert_int_equal(ran, 0);
	assert_non_null(strstr(e.msg, "3_broken.up.sql:3:"));
	assert_int_equal(count_rows(path, "SELECT count(*) FROM users"), 1);
	assert_int_equal(count_rows(path, "SELECT version FROM schema_migrations WHERE NOT dirty"), 2);
	assert_int_equal(count_rows(path, "SELECT count(*) FROM gantry_migrations_log WHERE result = 'failed'"), 1);

	/* an applied file edited: refused before anything runs */
	put("m/2_email.up.sql", "ALTER TABLE users ADD COLUMN email text; -- edited\n");
	mig_set_release(&s);
	assert_int_equal(mig_set_load(dir, &s, &e), 0);
	assert_int_equal(mig_up(db, &s, INT64_MAX, &who, 1000, NULL, NULL, &ran, &e), -1);
	assert_non_null(strstr(e.msg, "2_email.up.sql changed after it was applied"));
	put("m/2_email.up.sql", "ALTER TABLE users ADD COLUMN email text;\n");
	mig_set_release(&s);
	assert_int_equal(mig_set_load(dir, &s, &e), 0);

	/* down to nothing, newest first */
	assert_int_equal(mig_down(db, &s, MIG_NIL_VERSION, &who, 1000, NULL, NULL, &ran, &e), 0);
	assert_int_equal(ran, 2);
	assert_int_equal(count_rows(path, "SELECT count(*) FROM schema_migrations"), 0);
	assert_int_equal(count_rows(path, "SELECT count(*) FROM gantry_migrations"), 0);
	assert_int_equal(count_rows(path, "SELECT count(*) FROM sqlite_master WHERE name = 'users'"), 0);
	mig_close(db);
	mig_set_release(&s);
	free(url);
	free(path);
	free(dir);
}

static void test_sqlite_locked(void **state)
{
	struct mig_set s;
	struct mig_db *db;
	struct gerr e;
	struct mig_who who = { "test", 0 };
	sqlite3 *other;
	char *url, *path;
	int ran;
	(void)state;

	path = xasprintf("%s/locked.db", tmp);
	url = xasprintf("sqlite3://%s", path);
	put("1_a.up.sql", "CREATE TABLE a (x int);");
	assert_int_equal(mig_set_load(tmp, &s, &e), 0);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(mig_open(url, &db, &e), 0);
	assert_int_equal(mig_up(db, &s, INT64_MAX, &who, 200, NULL, NULL, &ran, &e), -1);
	assert_non_null(strstr(e.msg, "migration lock"));
	sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(other);
	assert_int_equal(mig_up(db, &s, INT64_MAX, &who, 200, NULL, NULL, &ran, &e), 0);
	assert_int_equal(ran, 1);
	mig_close(db);
	mig_set_release(&s);
	free(url);
	free(path);
}

/* a no-transaction file that fails leaves the database dirty, and a dirty one is refused */
static void test_sqlite_no_tx_dirty(void **state)
{
	struct mig_set s;
	struct mig_db *db;
	struct mig_state st;
	struct gerr e;
	struct mig_who who = { "test", 0 };
	char *url = xasprintf("sqlite3://%s/dirty.db", tmp);
	int ran;
	(void)state;

	put("1_a.up.sql", "CREATE TABLE a (x int);");
	put("2_b.up.sql", "-- gantry:no-transaction\nCRATE INDEX b ON a (x);");
	assert_int_equal(mig_set_load(tmp, &s, &e), 0);
	assert_int_equal(s.v[1].up_marks, MIG_MARK_NO_TX);
	assert_int_equal(mig_open(url, &db, &e), 0);
	assert_int_equal(mig_up(db, &s, INT64_MAX, &who, 1000, NULL, NULL, &ran, &e), -1);
	assert_int_equal(ran, 1);
	assert_non_null(strstr(e.msg, "2_b.up.sql:2:"));
	assert_non_null(strstr(e.msg, "the database is dirty at version 2"));
	assert_int_equal(mig_state_read(db, &st, &e), 0);
	assert_int_equal(st.version, 2);
	assert_true(st.dirty);
	mig_state_release(&st);
	assert_int_equal(mig_up(db, &s, INT64_MAX, &who, 1000, NULL, NULL, &ran, &e), -1);
	assert_int_equal(ran, 0);
	assert_non_null(strstr(e.msg, "database is dirty at version 2"));
	mig_close(db);
	mig_set_release(&s);
	free(url);
}

static void test_redact(void **state)
{
	struct mig_db *db;
	struct gerr e;
	(void)state;
	assert_int_equal(mig_open("mysql://u:secret@h/db", &db, &e), -1);
	assert_null(strstr(e.msg, "secret"));
	assert_non_null(strstr(e.msg, "unknown scheme"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_name),
		cmocka_unit_test(test_markers),
		cmocka_unit_test_setup_teardown(test_dir_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_up_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_no_tx_dirty, setup, teardown),
		cmocka_unit_test(test_redact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
