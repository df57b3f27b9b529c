#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "flags/flags.h"

static const char *DEFS =
	"{\"checkout\": {\"default\": \"off\", \"rules\": ["
	"  {\"if\": {\"attr\": \"plan\", \"in\": [\"pro\", \"team\"]}, \"serve\": \"on\"},"
	"  {\"if\": {\"attr\": \"version\", \"semver\": \">= 2.1\"}, \"serve\": \"25%\"},"
	"  {\"if\": {\"attr\": \"tier\", \"equals\": 3}, \"serve\": \"on\"}]},"
	" \"color\": {\"default\": \"blue\", \"variants\": {\"blue\": \"#00f\", \"red\": \"#f00\"}},"
	" \"half\": {\"default\": \"50%\"}}";

static void load(struct flag_defs *d)
{
	json_t *j = json_loads(DEFS, 0, NULL);
	struct gerr err = { { 0 } };
	assert_non_null(j);
	if (flag_defs_parse(j, d, &err) < 0)
		fail_msg("%s", err.msg);
	json_decref(j);
}

static const char *eval(const struct flag_defs *d, const char *flag, const char *state, const char *ctx)
{
	static char out[64];
	struct flag_result r;
	json_t *c = ctx ? json_loads(ctx, 0, NULL) : NULL;
	if (flag_evaluate(flag_defs_find(d, flag), state, c, &r) < 0)
		snprintf(out, sizeof(out), "error:%s", flag_error_code(r.error));
	else
		snprintf(out, sizeof(out), "%s/%s", r.variant, r.reason);
	json_decref(c);
	return out;
}

static void test_rules(void **st)
{
	struct flag_defs d;
	(void)st;
	load(&d);
	assert_string_equal(eval(&d, "checkout", NULL, "{\"plan\": \"pro\"}"), "on/TARGETING_MATCH");
	assert_string_equal(eval(&d, "checkout", NULL, "{\"plan\": \"free\"}"), "off/DEFAULT");
	assert_string_equal(eval(&d, "checkout", NULL, "{\"tier\": 3}"), "on/TARGETING_MATCH");
	assert_string_equal(eval(&d, "checkout", NULL, "{\"tier\": \"3\"}"), "on/TARGETING_MATCH");
	assert_string_equal(eval(&d, "checkout", NULL, NULL), "off/DEFAULT");
	/* semver rule serving a percentage needs a targeting key */
	assert_string_equal(eval(&d, "checkout", NULL, "{\"version\": \"2.1.0\"}"), "error:TARGETING_KEY_MISSING");
	assert_string_equal(eval(&d, "checkout", NULL, "{\"version\": \"2.0.9\"}"), "off/DEFAULT");
	assert_true(strstr(eval(&d, "checkout", NULL, "{\"version\": \"v2.3\", \"targetingKey\": \"u1\"}"), "/SPLIT"));
	/* the state overrides the rules */
	assert_string_equal(eval(&d, "checkout", "off", "{\"plan\": \"pro\"}"), "off/STATIC");
	assert_string_equal(eval(&d, "checkout", "on", NULL), "on/STATIC");
	assert_string_equal(eval(&d, "checkout", "spec", "{\"plan\": \"team\"}"), "on/TARGETING_MATCH");
	assert_string_equal(eval(&d, "color", NULL, NULL), "blue/STATIC");
	assert_string_equal(eval(&d, "color", "red", NULL), "red/STATIC");
	assert_string_equal(eval(&d, "checkout", "ON", NULL), "error:GENERAL");
	assert_string_equal(eval(&d, "checkout", NULL, "[1]"), "error:INVALID_CONTEXT");
	flag_defs_release(&d);
}

static void test_semver(void **st)
{
	struct semver a, b;
	struct semver_range r;
	struct gerr err;
	(void)st;
	assert_int_equal(semver_parse("2.1", &a), 0);
	assert_int_equal(semver_parse("2.1.0", &b), 0);
	assert_int_equal(semver_cmp(&a, &b), 0);
	assert_int_equal(semver_parse("2.1.0-rc.1", &a), 0);
	assert_true(semver_cmp(&a, &b) < 0);
	assert_int_equal(semver_parse("2.1.0-rc.2", &b), 0);
	assert_true(semver_cmp(&a, &b) < 0);
	assert_int_equal(semver_parse("2.1.0-rc.10", &b), 0);
	assert_true(semver_cmp(&a, &b) < 0);
	assert_int_equal(semver_parse("1.10.0", &a), 0);
	assert_int_equal(semver_parse("1.9.0", &b), 0);
	assert_true(semver_cmp(&a, &b) > 0);
	assert_int_equal(semver_parse("1.2.3+build.5", &a), 0);
	assert_int_equal(semver_parse("01.2", &a), -1);
	assert_int_equal(semver_parse("1..2", &a), -1);
	assert_int_equal(semver_parse("x", &a), -1);
	assert_int_equal(semver_parse("1.2.3-", &a), -1);
	assert_int_equal(semver_range_parse(">= 2.1", &r, &err), 0);
	semver_parse("2.1.0", &a);
	assert_true(semver_range_match(&r, &a));
	semver_parse("2.0.99", &a);
	assert_false(semver_range_match(&r, &a));
	assert_int_equal(semver_range_parse("^2.1", &r, &err), 0);
	semver_parse("2.9.0", &a);
	assert_true(semver_range_match(&r, &a));
	semver_parse("3.0.0", &a);
	assert_false(semver_range_match(&r, &a));
	assert_int_equal(semver_range_parse("~2.1", &r, &err), 0);
	semver_parse("2.2.0", &a);
	assert_false(semver_range_match(&r, &a));
	assert_int_equal(semver_range_parse("2.1", &r, &err), -1);
	assert_int_equal(semver_range_parse(">= two", &r, &err), -1);
}

static void test_percentages(void **st)
{
	struct flag_defs d;
	int on = 0;
	double p;
	(void)st;
	load(&d);
	/* 25% of 10,000 keys lands within one point, and no key ever flips */
	for (int i = 0; i < 10000; i++) {
		char ctx[64], first[64];
		snprintf(ctx, sizeof(ctx), "{\"targetingKey\": \"user-%d\"}", i);
		strlcpy_g(first, eval(&d, "checkout", "25%", ctx), sizeof(first));
		on += !strcmp(first, "on/SPLIT");
		assert_string_equal(eval(&d, "checkout", "25%", ctx), first);
	}
	print_message("25%% rollout over 10000 keys: %.2f%% on\n", on / 100.0);
	assert_true(on >= 2400 && on <= 2600);
	/* raising the share keeps those that were on */
	for (int i = 0; i < 2000; i++) {
		char ctx[64];
		snprintf(ctx, sizeof(ctx), "{\"targetingKey\": \"k%d\"}", i);
		if (!strcmp(eval(&d, "checkout", "10%", ctx), "on/SPLIT"))
			assert_string_equal(eval(&d, "checkout", "20%", ctx), "on/SPLIT");
	}
	assert_string_equal(eval(&d, "half", NULL, NULL), "error:TARGETING_KEY_MISSING");
	assert_string_equal(eval(&d, "checkout", "0%", "{\"targetingKey\": \"a\"}"), "off/SPLIT");
	assert_string_equal(eval(&d, "checkout", "100%", "{\"targetingKey\": \"a\"}"), "on/SPLIT");
	/* murmur3 x86_32 reference values */
	assert_int_equal(flags_murmur3("", 0, 0), 0);
	assert_int_equal(flags_murmur3("hello", 5, 0), 0x248bfa47);
	assert_int_equal(flags_murmur3("The quick brown fox jumps over the lazy dog", 43, 0), 0x2e4ff723);
	assert_int_equal(flag_pct_parse("12.5%", &p), 0);
	assert_true(p == 12.5);
	assert_int_equal(flag_pct_parse("101%", &p), -1);
	assert_int_equal(flag_pct_parse("1.234%", &p), -1);
	assert_int_equal(flag_pct_parse("%", &p), -1);
	assert_int_equal(flag_pct_parse("-1%", &p), -1);
	assert_int_equal(flag_pct_parse("25", &p), -1);
	flag_defs_release(&d);
}

static void bad(const char *defs, const char *want)
{
	json_t *j = json_loads(defs, 0, NULL);
	struct flag_defs d;
	struct gerr err = { { 0 } };
	assert_non_null(j);
	assert_int_equal(flag_defs_parse(j, &d, &err), -1);
	if (!strstr(err.msg, want))
		fail_msg("'%s' does not contain '%s'", err.msg, want);
	json_decref(j);
}

static void test_bad_defs(void **st)
{
	(void)st;
	bad("{\"x\": {\"default\": \"of\"}}", "flags.x.default: unknown variant 'of' (variants: on, off)");
	bad("{\"x\": {\"rules\": [{\"if\": {\"attr\": \"a\", \"in\": [1]}, \"serve\": \"125%\"}]}}",
	    "flags.x.rules[0].serve: bad percentage '125%'");
	bad("{\"x\": {\"rules\": [{\"if\": {\"attr\": \"v\", \"semver\": \">= 2.x\"}, \"serve\": \"on\"}]}}",
	    "flags.x.rules[0].if.semver: invalid semver range");
	bad("{\"x\": {\"rules\": [{\"if\": {\"in\": [1]}, \"serve\": \"on\"}]}}", "missing key 'attr'");
	bad("{\"x\": {\"rules\": [{\"if\": {\"attr\": \"a\"}, \"serve\": \"on\"}]}}", "exactly one of");
	bad("{\"x\": {\"variants\": {\"a\": 1, \"b\": 2}, \"default\": \"10%\"}}", "needs both variants");
	bad("{\"x\": {\"variants\": {\"a\": 1}}}", "missing key 'default'");
	bad("{\"-x\": {}}", "invalid flag name");
	bad("{\"x\": {\"defualt\": \"on\"}}", "unknown key 'defualt'");
}

static const char *st_fn(void *arg, const char *flag)
{
	(void)flag;
	return arg;
}

static void test_ofrep(void **st)
{
	struct flag_defs d;
	struct ofrep_answer a;
	const char *body = "{\"context\": {\"targetingKey\": \"u1\", \"plan\": \"pro\"}}";
	char etag[40];
	(void)st;
	load(&d);
	ofrep_evaluate(&d, st_fn, NULL, 1, "checkout", body, strlen(body), NULL, &a);
	assert_int_equal(a.status, 200);
	assert_true(json_is_true(json_object_get(a.body, "value")));
	assert_string_equal(json_string_value(json_object_get(a.body, "variant")), "on");
	assert_string_equal(json_string_value(json_object_get(a.body, "reason")), "TARGETING_MATCH");
	json_decref(a.body);
	ofrep_evaluate(&d, st_fn, NULL, 1, "nope", body, strlen(body), NULL, &a);
	assert_int_equal(a.status, 404);
	assert_string_equal(json_string_value(json_object_get(a.body, "errorCode")), "FLAG_NOT_FOUND");
	assert_string_equal(json_string_value(json_object_get(a.body, "key")), "nope");
	json_decref(a.body);
	ofrep_evaluate(&d, st_fn, NULL, 1, "checkout", "{", 1, NULL, &a);
	assert_int_equal(a.status, 400);
	assert_string_equal(json_string_value(json_object_get(a.body, "errorCode")), "PARSE_ERROR");
	json_decref(a.body);
	ofrep_evaluate(&d, st_fn, NULL, 1, "checkout", "{\"context\": 3}", 14, NULL, &a);
	assert_int_equal(a.status, 400);
	assert_string_equal(json_string_value(json_object_get(a.body, "errorCode")), "INVALID_CONTEXT");
	json_decref(a.body);
	ofrep_evaluate(&d, st_fn, NULL, 1, "half", "{}", 2, NULL, &a);
	assert_int_equal(a.status, 400);
	assert_string_equal(json_string_value(json_object_get(a.body, "errorCode")), "TARGETING_KEY_MISSING");
	json_decref(a.body);
	/* bulk: every flag, an ETag; the same ETag answers 304; a new version or context changes it */
	ofrep_evaluate(&d, st_fn, NULL, 7, NULL, body, strlen(body), NULL, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(json_array_size(json_object_get(a.body, "flags")), 3);
	strlcpy_g(etag, a.etag, sizeof(etag));
	json_decref(a.body);
	ofrep_evaluate(&d, st_fn, NULL, 7, NULL, body, strlen(body), etag, &a);
	assert_int_equal(a.status, 304);
	assert_null(a.body);
	ofrep_evaluate(&d, st_fn, (void *)"off", 8, NULL, body, strlen(body), etag, &a);
	assert_int_equal(a.status, 200);
	assert_string_not_equal(a.etag, etag);
	json_decref(a.body);
	ofrep_evaluate(&d, st_fn, NULL, 7, NULL, "{}", 2, etag, &a);
	assert_int_equal(a.status, 200);
	assert_string_not_equal(a.etag, etag);
	/* the flag without a targeting key is an error inside a 200 */
	{
		char *text = json_dumps(a.body, 0);
		assert_non_null(strstr(text, "TARGETING_KEY_MISSING"));
		free(text);
	}
	json_decref(a.body);
	flag_defs_release(&d);
}

static void test_action_split(void **st)
{
	char cond[256], flag[64];
	struct gerr err = { { 0 } };
	(void)st;
	assert_int_equal(flag_action_split("error_rate > 5% for 10s", cond, sizeof(cond), flag, sizeof(flag), &err), 0);
	assert_string_equal(cond, "error_rate > 5% for 10s");
	assert_string_equal(flag, "");
	assert_int_equal(flag_action_split("error_rate > 5% for 10s then flag_off new_checkout", cond, sizeof(cond), flag,
					   sizeof(flag), &err), 1);
	assert_string_equal(cond, "error_rate > 5% for 10s");
	assert_string_equal(flag, "new_checkout");
	assert_int_equal(flag_action_split("error_rate > 5% then page_me", cond, sizeof(cond), flag, sizeof(flag), &err), -1);
	assert_non_null(strstr(err.msg, "unknown action 'page_me'"));
	assert_int_equal(flag_action_split("error_rate > 5% then flag_off a b", cond, sizeof(cond), flag, sizeof(flag), &err), -1);
	assert_int_equal(flag_action_split("error_rate > 5% then flag_off -x", cond, sizeof(cond), flag, sizeof(flag), &err), -1);
	assert_int_equal(flag_action_split("error_rate > 5% then flag_off ", cond, sizeof(cond), flag, sizeof(flag), &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_semver),
		cmocka_unit_test(test_percentages),
		cmocka_unit_test(test_bad_defs),
		cmocka_unit_test(test_ofrep),
		cmocka_unit_test(test_action_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
