#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "records/audit.h"

#define N 6

/* a sealed chain of N entries */
static void chain(struct audit_entry *e)
{
	for (int i = 0; i < N; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].seq = i + 1;
		e[i].time = 1715353200 + i * 60;
		snprintf(e[i].actor, sizeof(e[i].actor), "user%d", i % 3);
		snprintf(e[i].action, sizeof(e[i].action), "%s", i % 2 ? "approve" : "deploy");
		snprintf(e[i].target, sizeof(e[i].target), "api@production");
		e[i].details = xasprintf("{\"revision\": %d, \"b\": [1, \"x\"], \"a\": {\"z\": 1, \"y\": \"\\u00e9\"}}", i + 1);
		if (i)
			memcpy(e[i].prev, e[i - 1].hash, AUDIT_HASH_HEX);
		else
			memset(e[i].prev, '0', 64);
		assert_int_equal(audit_seal(&e[i]), 0);
	}
}

static void release(struct audit_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		audit_entry_release(&e[i]);
}

static void expect_bad(const struct audit_entry *e, size_t n, int64_t head_seq, const char *head_hash,
		       long want, const char *words)
{
	char why[256] = "";
	long r = audit_verify(e, n, head_seq, head_hash, why, sizeof(why));
	if (r != want || !strstr(why, words))
		fail_msg("got %ld '%s', want %ld '%s'", r, why, want, words);
}

static void test_canonical(void **state)
{
	struct audit_entry e[N];
	char *c;
	(void)state;
	chain(e);
	c = audit_canonical(&e[0]);
	/* keys sorted at every level, compact, ASCII only */
	assert_string_equal(c, "{\"action\":\"deploy\",\"actor\":\"user0\",\"details\":{\"a\":{\"y\":\"\\u00E9\",\"z\":1},"
			       "\"b\":[1,\"x\"],\"revision\":1},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
			       "\"seq\":1,\"target\":\"api@production\",\"time\":\"2024-05-10T15:00:00Z\"}");
	free(c);
	assert_int_equal(strlen(e[0].hash), 64);
	/* the same entry, details written in another key order: same hash */
	{
		struct audit_entry t = e[0];
		t.details = xstrdup("{\"a\":{\"y\":\"\xc3\xa9\",\"z\":1},\"b\":[1,\"x\"],\"revision\":1}");
		assert_int_equal(audit_seal(&t), 0);
		assert_string_equal(t.hash, e[0].hash);
		free(t.details);
		t.details = xstrdup("[1]");
		assert_int_equal(audit_seal(&t), -1);
		free(t.details);
	}
	release(e, N);
}

static void test_intact(void **state)
{
	struct audit_entry e[N];
	char why[256] = "";
	(void)state;
	chain(e);
	assert_int_equal(audit_verify(e, N, N, e[N - 1].hash, why, sizeof(why)), -1);
	assert_int_equal(audit_verify(e, N, 0, NULL, why, sizeof(why)), -1);
	assert_int_equal(audit_verify(e, 0, 0, NULL, why, sizeof(why)), -1);
	release(e, N);
}

static void test_edited(void **state)
{
	struct audit_entry e[N];
	(void)state;
	chain(e);
	free(e[2].details);
	e[2].details = xstrdup("{\"revision\": 99, \"b\": [1, \"x\"], \"a\": {\"z\": 1, \"y\": \"\\u00e9\"}}");
	expect_bad(e, N, N, e[N - 1].hash, 2, "entry 3 was edited");
	release(e, N);
	chain(e);
	strlcpy_g(e[4].actor, "mallory", sizeof(e[4].actor));
	expect_bad(e, N, N, e[N - 1].hash, 4, "entry 5 was edited");
	release(e, N);
	chain(e);
	e[0].time++;
	expect_bad(e, N, N, e[N - 1].hash, 0, "entry 1 was edited");
	release(e, N);
}

static void test_deleted(void **state)
{
	struct audit_entry e[N];
	(void)state;
	chain(e);
	audit_entry_release(&e[1]);
	memmove(&e[1], &e[2], (N - 2) * sizeof(e[0]));
	expect_bad(e, N - 1, N, e[N - 2].hash, 1, "entry 2 is missing");
	release(e, N - 1);
	/* the newest entries: caught by the head kept apart */
	chain(e);
	expect_bad(e, N - 2, N, e[N - 1].hash, N - 2, "entries 5..6 are missing");
	release(e, N);
	/* the first one */
	chain(e);
	audit_entry_release(&e[0]);
	memmove(&e[0], &e[1], (N - 1) * sizeof(e[0]));
	expect_bad(e, N - 1, N, e[N - 2].hash, 0, "entry 1 is missing");
	release(e, N - 1);
}

static void test_reordered(void **state)
{
	struct audit_entry e[N], t;
	(void)state;
	chain(e);
	/* rows 3 and 4 swap their contents (the seq column stays in order) */
	t = e[2];
	e[2] = e[3];
	e[3] = t;
	e[2].seq = 3;
	e[3].seq = 4;
	expect_bad(e, N, N, e[N - 1].hash, 2, "entry 3 was reordered");
	release(e, N);
}

static void test_inserted(void **state)
{
	struct audit_entry e[N + 1];
	(void)state;
	chain(e);
	/* a forged entry appended with a correct link: only the head shows it */
	memset(&e[N], 0, sizeof(e[N]));
	e[N].seq = N + 1;
	e[N].time = 1715353200;
	strlcpy_g(e[N].actor, "mallory", sizeof(e[N].actor));
	strlcpy_g(e[N].action, "approve", sizeof(e[N].action));
	e[N].details = xstrdup("{}");
	memcpy(e[N].prev, e[N - 1].hash, AUDIT_HASH_HEX);
	assert_int_equal(audit_seal(&e[N]), 0);
	expect_bad(e, N + 1, N, e[N - 1].hash, N, "entry 7 was added");
	/* a forged entry whose link is wrong */
	memset(e[N].prev, 'a', 64);
	assert_int_equal(audit_seal(&e[N]), 0);
	expect_bad(e, N + 1, 0, NULL, N, "entry 7 does not follow entry 6");
	release(e, N + 1);
}

static void test_json(void **state)
{
	struct audit_entry e[N];
	json_t *j;
	(void)state;
	chain(e);
	j = audit_entry_json(&e[1]);
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 2);
	assert_string_equal(json_string_value(json_object_get(j, "time")), "2024-05-10T15:01:00Z");
	assert_string_equal(json_string_value(json_object_get(j, "hash")), e[1].hash);
	assert_string_equal(json_string_value(json_object_get(j, "prev")), e[0].hash);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "details"), "revision")), 2);
	json_decref(j);
	release(e, N);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical), cmocka_unit_test(test_intact),
		cmocka_unit_test(test_edited),    cmocka_unit_test(test_deleted),
		cmocka_unit_test(test_reordered), cmocka_unit_test(test_inserted),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
