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

/* ---- v2: the keyed chain ---- */

static const unsigned char key[AUDIT_KEY_BYTES] = "0123456789abcdef0123456789abcdef";

/* n entries: 1..mac_from-1 v1, mac_from..n v2 (mac_from 1: all v2) */
static void mac_chain(struct audit_entry *e, int n, int64_t mac_from)
{
	for (int i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].seq = i + 1;
		e[i].time = 1715353200 + i * 60;
		snprintf(e[i].actor, sizeof(e[i].actor), "user%d", i % 3);
		snprintf(e[i].action, sizeof(e[i].action), "deploy");
		snprintf(e[i].target, sizeof(e[i].target), "api@production");
		e[i].details = xasprintf("{\"revision\": %d}", i + 1);
		if (i)
			memcpy(e[i].prev, e[i - 1].hash, AUDIT_HASH_HEX);
		else
			memset(e[i].prev, '0', 64);
		if (e[i].seq >= mac_from) {
			e[i].uid = 1000 + i;
			e[i].pid = 4242 + i;
			snprintf(e[i].peer, sizeof(e[i].peer), "unix");
			assert_int_equal(audit_seal_key(&e[i], key), 0);
		} else {
			e[i].uid = -1;
			assert_int_equal(audit_seal(&e[i]), 0);
		}
	}
}

/* feeds e[0..n) and ends with the anchors; returns the first bad seq (0: intact) */
static int64_t verify_mac(const struct audit_entry *e, int n, const unsigned char *k, int64_t mac_from,
			  struct audit_anchor *an, size_t nan, char *why, size_t whylen)
{
	struct audit_verifier v;
	audit_verifier_init(&v, k, mac_from, an, nan);
	for (int i = 0; i < n; i++)
		if (!audit_verifier_feed(&v, &e[i]))
			break;
	audit_verifier_end(&v);
	snprintf(why, whylen, "%s", v.why);
	return v.bad_seq;
}

static void expect_mac_bad(const struct audit_entry *e, int n, int64_t mac_from, struct audit_anchor *an, size_t nan,
			   int64_t want, const char *words)
{
	char why[512];
	int64_t r = verify_mac(e, n, key, mac_from, an, nan, why, sizeof(why));
	if (r != want || !strstr(why, words))
		fail_msg("got %lld '%s', want %lld '%s'", (long long)r, why, (long long)want, words);
}

static void anchors_at(struct audit_anchor *an, const struct audit_entry *last)
{
	memset(an, 0, 2 * sizeof(*an));
	an[0].name = "the recorded head (meta audit_head)";
	an[0].present = an[0].required = true;
	an[1].name = "HOME/audit.head";
	an[1].present = an[1].required = an[1].once_v2 = an[1].vouches_v2 = true;
	an[0].seq = an[1].seq = last->seq;
	memcpy(an[0].hash, last->hash, AUDIT_HASH_HEX);
	memcpy(an[1].hash, last->hash, AUDIT_HASH_HEX);
}

static void test_mac_chain(void **state)
{
	struct audit_entry e[N];
	struct audit_anchor an[2];
	char why[512], *c;
	unsigned char other[AUDIT_KEY_BYTES];
	(void)state;
	mac_chain(e, N, 1);
	anchors_at(an, &e[N - 1]);
	assert_int_equal(verify_mac(e, N, key, 1, an, 2, why, sizeof(why)), 0);
	/* the v2 encoding holds who, from the kernel */
	c = audit_canonical_v2(&e[0]);
	assert_non_null(strstr(c, "\"peer\":\"unix\",\"pid\":4242,\"prev\":"));
	assert_non_null(strstr(c, "\"uid\":1000}"));
	free(c);
	/* the MAC is keyed: the unkeyed hash of either encoding is not it, another key fails */
	{
		struct audit_entry t = e[0];
		assert_int_equal(audit_seal(&t), 0);
		assert_string_not_equal(t.hash, e[0].hash);
	}
	memset(other, 7, sizeof(other));
	assert_int_equal(verify_mac(e, N, other, 1, an, 2, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "entry 1 was edited"));
	/* no key: nothing v2 can be vouched for */
	assert_int_equal(verify_mac(e, N, NULL, 1, an, 2, why, sizeof(why)), 1);
	release(e, N);
}

/* every field of an entry is covered by its MAC */
static void test_mac_tamper_each_field(void **state)
{
	struct audit_entry e[N];
	struct audit_anchor an[2];
	(void)state;
	for (int field = 0; field < 9; field++) {
		struct audit_entry *t = &e[2];
		mac_chain(e, N, 1);
		anchors_at(an, &e[N - 1]);
		switch (field) {
		case 0: t->time++; break;
		case 1: strlcpy_g(t->actor, "mallory", sizeof(t->actor)); break;
		case 2: strlcpy_g(t->action, "approve", sizeof(t->action)); break;
		case 3: strlcpy_g(t->target, "web@production", sizeof(t->target)); break;
		case 4: free(t->details); t->details = xstrdup("{\"revision\": 99}"); break;
		case 5: t->uid = 0; break;
		case 6: t->pid = 1; break;
		case 7: strlcpy_g(t->peer, "tcp:10.0.0.1:5555", sizeof(t->peer)); break;
		case 8: t->prev[0] = t->prev[0] == 'a' ? 'b' : 'a'; break;
		}
		expect_mac_bad(e, N, 1, an, 2, 3, "entry 3 was edited: its content does not match its MAC");
		/* resealed without the key (today's rule), the rest of the chain and the anchors
		 * recomputed to follow: still caught at the entry */
		assert_int_equal(audit_seal(t), 0);
		for (int i = 3; i < N; i++) {
			memcpy(e[i].prev, e[i - 1].hash, AUDIT_HASH_HEX);
			assert_int_equal(audit_seal(&e[i]), 0);
		}
		anchors_at(an, &e[N - 1]);
		expect_mac_bad(e, N, 1, an, 2, 3, "entry 3 was edited");
		release(e, N);
	}
}

/* an upgraded log: v1 entries before the switch point, v2 after, one chain */
static void test_mac_switch_point(void **state)
{
	struct audit_entry e[N];
	struct audit_anchor an[2];
	char why[512];
	(void)state;
	mac_chain(e, N, 4);
	anchors_at(an, &e[N - 1]);
	assert_int_equal(verify_mac(e, N, key, 4, an, 2, why, sizeof(why)), 0);
	/* a v1 entry is checked by the old rule */
	strlcpy_g(e[1].actor, "mallory", sizeof(e[1].actor));
	expect_mac_bad(e, N, 4, an, 2, 2, "entry 2 was edited: its content does not match its hash");
	/* ... rewritten with recomputed v1 hashes: the first v2 entry no longer follows */
	assert_int_equal(audit_seal(&e[1]), 0);
	memcpy(e[2].prev, e[1].hash, AUDIT_HASH_HEX);
	assert_int_equal(audit_seal(&e[2]), 0);
	memcpy(e[3].prev, e[2].hash, AUDIT_HASH_HEX);
	expect_mac_bad(e, N, 4, an, 2, 4, "entry 4 was edited");
	release(e, N);
	/* the switch point moved past the end (all "v1"): the MAC'd head file says no */
	mac_chain(e, N, 4);
	anchors_at(an, &e[N - 1]);
	expect_mac_bad(e, N, 100, an, 2, N, "switch point was tampered with");
	/* ... or deleted */
	expect_mac_bad(e, N, 0, an, 2, N, "audit_mac_from is missing (deleted)");
	/* moved earlier: a v1 entry is taken for a v2 one and fails */
	expect_mac_bad(e, N, 2, an, 2, 2, "entry 2 was edited");
	release(e, N);
}

static void test_mac_anchors(void **state)
{
	struct audit_entry e[N];
	struct audit_anchor an[2];
	(void)state;
	mac_chain(e, N, 1);
	/* the head row deleted */
	anchors_at(an, &e[N - 1]);
	an[0].present = false;
	expect_mac_bad(e, N, 1, an, 2, N + 1, "meta audit_head) is missing");
	/* the head file deleted */
	anchors_at(an, &e[N - 1]);
	an[1].present = false;
	expect_mac_bad(e, N, 1, an, 2, N + 1, "HOME/audit.head is missing");
	/* the last 3 removed, the head row fixed up: the head file says where the end was */
	anchors_at(an, &e[N - 1]);
	an[0].seq = N - 3;
	memcpy(an[0].hash, e[N - 4].hash, AUDIT_HASH_HEX);
	expect_mac_bad(e, N - 3, 1, an, 2, N - 2, "entries 4..6 are missing (deleted at the end of the log): HOME/audit.head");
	/* the head file names another MAC than the chain's at its seq */
	anchors_at(an, &e[N - 1]);
	an[1].hash[0] = an[1].hash[0] == 'a' ? 'b' : 'a';
	expect_mac_bad(e, N, 1, an, 2, N, "entry 6 does not match HOME/audit.head");
	/* an empty log: nothing required yet */
	memset(an, 0, sizeof(an));
	an[0].required = an[1].required = an[1].once_v2 = true;
	{
		char why[512];
		assert_int_equal(verify_mac(e, 0, key, 1, an, 2, why, sizeof(why)), 0);
	}
	release(e, N);
}

static void test_json_caller(void **state)
{
	struct audit_entry e[N];
	json_t *j;
	(void)state;
	mac_chain(e, 2, 2);
	j = audit_entry_json(&e[1]);
	assert_int_equal(json_integer_value(json_object_get(j, "uid")), 1001);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), 4243);
	assert_string_equal(json_string_value(json_object_get(j, "peer")), "unix");
	json_decref(j);
	/* a v1 entry: not known */
	j = audit_entry_json(&e[0]);
	assert_true(json_is_null(json_object_get(j, "uid")));
	assert_true(json_is_null(json_object_get(j, "pid")));
	json_decref(j);
	release(e, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical), cmocka_unit_test(test_intact),
		cmocka_unit_test(test_edited),    cmocka_unit_test(test_deleted),
		cmocka_unit_test(test_reordered), cmocka_unit_test(test_inserted),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_mac_chain), cmocka_unit_test(test_mac_tamper_each_field),
		cmocka_unit_test(test_mac_switch_point), cmocka_unit_test(test_mac_anchors),
		cmocka_unit_test(test_json_caller),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
