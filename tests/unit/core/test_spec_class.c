#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "core/spec.h"
#include "core/spec_class.h"

/* the printed keys that are policy; every other printed key is config */
static const char *const printed_policy[] = {
	"environments.E.protection", "environments.E.promote_from", "environments.E.min_soak",
	"environments.E.secrets", "environments.E.secrets.recipients", "environments.E.secrets.file",
	"environments.E.cluster",
	"services.S.checks", "services.S.user", "notify", "roles",
};

static bool is_printed_policy(const char *path)
{
	for (size_t i = 0; i < ARRAY_SIZE(printed_policy); i++)
		if (!strcmp(printed_policy[i], path))
			return true;
	return false;
}

/*
 * Every key spec_print_keys() prints has a class: this fails when a new spec
 * key is added to spec.c's tables without a row in spec_class.c.
 */
static void test_every_printed_key_has_a_class(void **state)
{
	char *keys = NULL, *line, *tab, *nl;
	size_t len = 0, n = 0, npolicy = 0;
	FILE *f = open_memstream(&keys, &len);
	(void)state;

	assert_non_null(f);
	spec_print_keys(f);
	fclose(f);
	for (line = keys; *line; line = nl ? nl + 1 : line + strlen(line)) {
		enum spec_class c;
		tab = strchr(line, '\t');
		nl = strchr(line, '\n');
		assert_non_null(tab);
		*tab = 0;
		c = spec_key_class(line);
		if (c == SPEC_CLASS_UNKNOWN)
			fail_msg("spec key %s has no class: add a row to src/core/spec_class.c", line);
		if (is_printed_policy(line)) {
			if (c != SPEC_CLASS_POLICY)
				fail_msg("%s: want policy, got %s", line, spec_class_name(c));
			npolicy++;
		} else if (c != SPEC_CLASS_CONFIG) {
			fail_msg("%s: want config, got %s", line, spec_class_name(c));
		}
		n++;
	}
	assert_true(n > 100);
	assert_int_equal(npolicy, ARRAY_SIZE(printed_policy));
	free(keys);
}

static void test_class_names(void **state)
{
	(void)state;
	assert_string_equal(spec_class_name(SPEC_CLASS_CONFIG), "config");
	assert_string_equal(spec_class_name(SPEC_CLASS_POLICY), "policy");
	assert_string_equal(spec_class_name(SPEC_CLASS_UNKNOWN), "unknown");
	assert_string_equal(spec_class_name((enum spec_class)42), "unknown");
}

static void test_concrete_paths(void **state)
{
	static const struct {
		const char *path;
		enum spec_class want;
	} cases[] = {
		/* policy, with everything below it */
		{ "environments.production.protection", SPEC_CLASS_POLICY },
		{ "environments.production.protection.approvals", SPEC_CLASS_POLICY },
		{ "environments.production.protection.windows.deny", SPEC_CLASS_POLICY },
		{ "environments.production.protection.windows.deny[1]", SPEC_CLASS_POLICY },
		{ "environments.production.protection.checklist", SPEC_CLASS_POLICY },
		{ "environments.production.promote_from", SPEC_CLASS_POLICY },
		{ "environments.production.min_soak", SPEC_CLASS_POLICY },
		{ "environments.production.protection.rollback_incident", SPEC_CLASS_POLICY },
		{ "services.web.checks", SPEC_CLASS_POLICY },
		{ "services.web.checks.pre", SPEC_CLASS_POLICY },
		{ "services.web.checks.post[0].run", SPEC_CLASS_POLICY },
		/* an override is the same key (spec.c refuses checks there, but it stays policy) */
		{ "services.web.environments.production.checks.pre", SPEC_CLASS_POLICY },
		{ "notify", SPEC_CLASS_POLICY },
		{ "notify[0].url", SPEC_CLASS_POLICY },
		{ "roles", SPEC_CLASS_POLICY },
		{ "roles.alice", SPEC_CLASS_POLICY },
		{ "users", SPEC_CLASS_POLICY },
		{ "users.bob.scopes", SPEC_CLASS_POLICY },
		/* config */
		{ "project", SPEC_CLASS_CONFIG },
		{ "environments.production", SPEC_CLASS_CONFIG },
		{ "environments.production.replicas", SPEC_CLASS_CONFIG },
		{ "environments.production.hosts", SPEC_CLASS_CONFIG },
		{ "environments.production.hosts[1]", SPEC_CLASS_CONFIG },
		{ "services.web", SPEC_CLASS_CONFIG },
		{ "services.web.replicas", SPEC_CLASS_CONFIG },
		{ "services.web.env", SPEC_CLASS_CONFIG },
		{ "services.web.env.GREETING", SPEC_CLASS_CONFIG },
		{ "services.web.environments", SPEC_CLASS_CONFIG },
		{ "services.web.environments.production", SPEC_CLASS_CONFIG },
		{ "services.web.environments.production.env.GREETING", SPEC_CLASS_CONFIG },
		{ "services.web.environments.production.replicas", SPEC_CLASS_CONFIG },
		{ "services.web.environments.production.probes.readiness.http", SPEC_CLASS_CONFIG },
		{ "services.web.environments.production.analysis.slo.interval", SPEC_CLASS_CONFIG },
		{ "services.web.probes.readiness.period", SPEC_CLASS_CONFIG },
		{ "services.web.strategy", SPEC_CLASS_CONFIG },
		{ "services.web.strategy.recreate", SPEC_CLASS_CONFIG },
		{ "services.web.strategy.canary.steps", SPEC_CLASS_CONFIG },
		{ "services.web.strategy.canary.steps[2]", SPEC_CLASS_CONFIG },
		{ "services.web.strategy.canary.steps[2].weight", SPEC_CLASS_CONFIG },
		{ "services.web.strategy.canary.steps[2].match.header.x-canary", SPEC_CLASS_CONFIG },
		{ "services.web.strategy.canary.match.header.x-canary", SPEC_CLASS_CONFIG },
		{ "services.web.strategy.canary.analysis", SPEC_CLASS_CONFIG },
		{ "services.web.strategy.canary.analysis.starting_step", SPEC_CLASS_CONFIG },
		{ "services.web.rollback_on[0]", SPEC_CLASS_CONFIG },
		{ "services.web.analysis.slo", SPEC_CLASS_CONFIG },
		{ "services.web.analysis.slo.metrics", SPEC_CLASS_CONFIG },
		{ "services.web.analysis.slo.metrics[0].fail_if", SPEC_CLASS_CONFIG },
		{ "analysis_templates.slo", SPEC_CLASS_CONFIG },
		{ "analysis_templates.slo.interval", SPEC_CLASS_CONFIG },
		{ "analysis_templates.slo.metrics[3].query", SPEC_CLASS_CONFIG },
		/* nobody classified these: the caller treats them as policy */
		{ "", SPEC_CLASS_UNKNOWN },
		{ "bogus", SPEC_CLASS_UNKNOWN },
		{ "environments", SPEC_CLASS_CONFIG },
		{ "environments.production.bogus", SPEC_CLASS_UNKNOWN },
		{ "services.web.bogus", SPEC_CLASS_UNKNOWN },
		{ "services.web.probes.readiness.bogus", SPEC_CLASS_UNKNOWN },
		{ "services.web.strategy.canary.analysis.bogus", SPEC_CLASS_UNKNOWN },
		{ "services.web.environments.production.environments.staging", SPEC_CLASS_UNKNOWN },
		{ "services.web.analysis.slo.bogus", SPEC_CLASS_UNKNOWN },
		/* malformed paths */
		{ "services.web.env[x]", SPEC_CLASS_UNKNOWN },
		{ "services.web.strategy.canary.steps[2", SPEC_CLASS_UNKNOWN },
		{ "services.web.strategy.canary.steps[2]x", SPEC_CLASS_UNKNOWN },
		{ "services.web.env.", SPEC_CLASS_UNKNOWN },
		{ "services..env", SPEC_CLASS_UNKNOWN },
		{ "[0]", SPEC_CLASS_UNKNOWN },
	};
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		enum spec_class got = spec_key_class(cases[i].path);
		if (got != cases[i].want)
			fail_msg("%s: want %s, got %s", cases[i].path, spec_class_name(cases[i].want),
				 spec_class_name(got));
	}
	assert_int_equal(spec_key_class(NULL), SPEC_CLASS_UNKNOWN);
}

/* ------------------------------------------------------------------------ */

static const char BASE[] =
	"project: shop\n"
	"environments:\n"
	"  staging: { replicas: 1 }\n"
	"  production:\n"
	"    replicas: 2\n"
	"    promote_from: staging\n"
	"    protection:\n"
	"      approvals: 2\n"
	"      windows: { deny: [\"Fri 17:00-Mon 08:00\"] }\n"
	"services:\n"
	"  hello:\n"
	"    run: ./hello\n"
	"    replicas: 2\n"
	"    env: { GREETING: hi }\n"
	"    environments:\n"
	"      production:\n"
	"        env: { GREETING: hello }\n";

/* the JSON tree of a spec given as text (must validate) */
static json_t *tree_of(const char *text)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	json_t *j;

	if (spec_load_buf("gantry.yaml", text, strlen(text), &spec, &d) < 0) {
		diags_print(&d, stderr);
		fail_msg("spec does not load:\n%s", text);
	}
	j = spec_tree_json(spec);
	assert_non_null(j);
	spec_free(spec);
	diags_release(&d);
	return j;
}

/* BASE with the first occurrence of from replaced by to */
static json_t *tree_edit(const char *from, const char *to)
{
	const char *at = strstr(BASE, from);
	char *text;
	json_t *j;

	if (!at)
		fail_msg("'%s' not in BASE", from);
	text = xasprintf("%.*s%s%s", (int)(at - BASE), BASE, to, at + strlen(from));
	j = tree_of(text);
	free(text);
	return j;
}

/* diff's row for path (borrowed), or NULL */
static json_t *row_at(const json_t *diff, const char *path)
{
	size_t i;
	json_t *row;
	json_array_foreach(diff, i, row)
		if (!strcmp(json_string_value(json_object_get(row, "path")), path))
			return row;
	return NULL;
}

/* asserts the row at path: op, old and new as compact JSON ("null"), class */
static void assert_row(const json_t *diff, const char *path, const char *op, const char *old,
		       const char *new_, const char *cls)
{
	json_t *row = row_at(diff, path);
	char *o, *n;

	if (!row)
		fail_msg("no row for %s", path);
	o = json_dumps(json_object_get(row, "old"), JSON_COMPACT | JSON_ENCODE_ANY);
	n = json_dumps(json_object_get(row, "new"), JSON_COMPACT | JSON_ENCODE_ANY);
	assert_string_equal(json_string_value(json_object_get(row, "op")), op);
	assert_string_equal(o, old);
	assert_string_equal(n, new_);
	assert_string_equal(json_string_value(json_object_get(row, "class")), cls);
	free(n);
	free(o);
}

static void assert_sorted(const json_t *diff)
{
	for (size_t i = 1; i < json_array_size(diff); i++) {
		const char *a = json_string_value(json_object_get(json_array_get(diff, i - 1), "path"));
		const char *b = json_string_value(json_object_get(json_array_get(diff, i), "path"));
		if (strcmp(a, b) > 0)
			fail_msg("not sorted: %s before %s", a, b);
	}
}

static void test_tree_json(void **state)
{
	/* (hosts in the environment: services.hello.hosts would route one host to hello@qa and hello@production) */
	json_t *t = tree_of("environments:\n  qa:\n  production: { hosts: [a.example, b.example] }\n"
			    "services:\n  hello:\n    run: ./hello\n    replicas: 3\n"
			    "    env: { B: \"2\", A: 1.50, C: '' }\n");
	char *s = json_dumps(t, JSON_COMPACT);
	(void)state;

	/* keys in document order, scalars as written, null for "qa:" */
	assert_string_equal(s, "{\"environments\":{\"qa\":null,\"production\":{\"hosts\":[\"a.example\",\"b.example\"]}},"
			       "\"services\":{\"hello\":{\"run\":\"./hello\",\"replicas\":\"3\","
			       "\"env\":{\"B\":\"2\",\"A\":\"1.50\",\"C\":\"\"}}}}");
	free(s);
	json_decref(t);
	assert_null(spec_tree_json(NULL));
}

static void test_diff_identical(void **state)
{
	json_t *a = tree_of(BASE), *b = tree_of(BASE), *d = spec_diff(a, b);
	char *text = spec_diff_text(d);
	(void)state;

	assert_true(json_is_array(d));
	assert_int_equal(json_array_size(d), 0);
	assert_false(spec_diff_has_policy(d));
	assert_string_equal(text, "");
	free(text);
	json_decref(d);
	json_decref(b);
	json_decref(a);
}

static void test_diff_replicas_is_config(void **state)
{
	json_t *a = tree_of(BASE), *b = tree_edit("    replicas: 2\n    env", "    replicas: 3\n    env");
	json_t *d = spec_diff(a, b);
	(void)state;

	assert_int_equal(json_array_size(d), 1);
	assert_row(d, "services.hello.replicas", "change", "\"2\"", "\"3\"", "config");
	assert_false(spec_diff_has_policy(d));
	json_decref(d);
	json_decref(b);
	json_decref(a);
}

static void test_diff_override_env_is_config(void **state)
{
	json_t *a = tree_of(BASE), *b = tree_edit("{ GREETING: hello }", "{ GREETING: hey, NEW: x }");
	json_t *d = spec_diff(a, b);
	(void)state;

	assert_int_equal(json_array_size(d), 2);
	assert_row(d, "services.hello.environments.production.env.GREETING", "change", "\"hello\"",
		   "\"hey\"", "config");
	assert_row(d, "services.hello.environments.production.env.NEW", "add", "null", "\"x\"", "config");
	assert_false(spec_diff_has_policy(d));
	json_decref(d);
	json_decref(b);
	json_decref(a);
}

static void test_diff_deleted_protection_is_policy(void **state)
{
	json_t *a = tree_of(BASE);
	json_t *b = tree_edit("    protection:\n      approvals: 2\n      windows: { deny: [\"Fri 17:00-Mon 08:00\"] }\n",
			      "");
	json_t *d = spec_diff(a, b);
	(void)state;

	assert_int_equal(json_array_size(d), 2);
	assert_row(d, "environments.production.protection.approvals", "remove", "\"2\"", "null", "policy");
	assert_row(d, "environments.production.protection.windows.deny", "remove",
		   "[\"Fri 17:00-Mon 08:00\"]", "null", "policy");
	assert_true(spec_diff_has_policy(d));
	json_decref(d);
	/* lowering approvals is policy as well */
	json_decref(b);
	b = tree_edit("approvals: 2", "approvals: 1");
	d = spec_diff(a, b);
	assert_int_equal(json_array_size(d), 1);
	assert_row(d, "environments.production.protection.approvals", "change", "\"2\"", "\"1\"", "policy");
	assert_true(spec_diff_has_policy(d));
	json_decref(d);
	json_decref(b);
	json_decref(a);
}

static void test_diff_deleted_environment_is_policy(void **state)
{
	json_t *a = tree_of(BASE);
	json_t *b = tree_of("project: shop\n"
			    "environments:\n"
			    "  staging: { replicas: 1 }\n"
			    "services:\n"
			    "  hello:\n"
			    "    run: ./hello\n"
			    "    replicas: 2\n"
			    "    env: { GREETING: hi }\n");
	json_t *d = spec_diff(a, b);
	(void)state;

	assert_int_equal(json_array_size(d), 5);
	assert_sorted(d);
	assert_row(d, "environments.production.protection.approvals", "remove", "\"2\"", "null", "policy");
	assert_row(d, "environments.production.protection.windows.deny", "remove",
		   "[\"Fri 17:00-Mon 08:00\"]", "null", "policy");
	assert_row(d, "environments.production.promote_from", "remove", "\"staging\"", "null", "policy");
	assert_row(d, "environments.production.replicas", "remove", "\"2\"", "null", "config");
	assert_row(d, "services.hello.environments.production.env.GREETING", "remove", "\"hello\"", "null",
		   "config");
	assert_true(spec_diff_has_policy(d));
	json_decref(d);
	json_decref(b);
	json_decref(a);
}

static void test_diff_added_notify_is_policy(void **state)
{
	json_t *a = tree_of(BASE);
	json_t *b = tree_edit("project: shop\n", "project: shop\nnotify:\n  - { url: \"http://127.0.0.1:9/hook\", allow_private: true }\n");
	json_t *d = spec_diff(a, b);
	(void)state;

	assert_int_equal(json_array_size(d), 1);
	assert_row(d, "notify", "add", "null", "[{\"url\":\"http://127.0.0.1:9/hook\",\"allow_private\":\"true\"}]", "policy");
	assert_true(spec_diff_has_policy(d));
	json_decref(d);
	json_decref(b);
	json_decref(a);
}

static void test_diff_shapes(void **state)
{
	json_t *a = tree_of(BASE);
	/* an empty environment (null), an empty override ({}), a scalar that becomes a map */
	json_t *b = tree_edit("  staging: { replicas: 1 }\n",
			      "  staging: { replicas: 1 }\n  qa:\n  dev: {}\n");
	json_t *d = spec_diff(a, b);
	(void)state;

	assert_int_equal(json_array_size(d), 2);
	assert_row(d, "environments.dev", "add", "null", "{}", "config");
	assert_row(d, "environments.qa", "add", "null", "null", "config");
	assert_false(spec_diff_has_policy(d));
	json_decref(d);

	/* strategy: rolling -> {canary: {steps: [...]}}: the scalar goes, each leaf comes */
	json_decref(a);
	json_decref(b);
	a = tree_edit("    replicas: 2\n    env", "    replicas: 2\n    strategy: rolling\n    env");
	b = tree_edit("    replicas: 2\n    env",
		      "    replicas: 2\n    strategy: { canary: { steps: [ { weight: 10 } ] } }\n    env");
	d = spec_diff(a, b);
	assert_int_equal(json_array_size(d), 2);
	assert_sorted(d);
	assert_row(d, "services.hello.strategy", "remove", "\"rolling\"", "null", "config");
	assert_row(d, "services.hello.strategy.canary.steps", "add", "null", "[{\"weight\":\"10\"}]", "config");
	json_decref(d);
	json_decref(b);
	json_decref(a);
}

static void test_diff_first_apply(void **state)
{
	json_t *b = tree_of(BASE), *d = spec_diff(NULL, b);
	size_t i;
	json_t *row;
	(void)state;

	assert_int_equal(json_array_size(d), 10);
	assert_sorted(d);
	json_array_foreach(d, i, row) {
		assert_string_equal(json_string_value(json_object_get(row, "op")), "add");
		assert_true(json_is_null(json_object_get(row, "old")));
	}
	assert_row(d, "project", "add", "null", "\"shop\"", "config");
	assert_row(d, "services.hello.run", "add", "null", "\"./hello\"", "config");
	assert_row(d, "environments.production.protection.approvals", "add", "null", "\"2\"", "policy");
	assert_true(spec_diff_has_policy(d));
	json_decref(d);
	/* and deleting everything */
	d = spec_diff(b, NULL);
	assert_int_equal(json_array_size(d), 10);
	assert_row(d, "environments.production.protection.approvals", "remove", "\"2\"", "null", "policy");
	assert_true(spec_diff_has_policy(d));
	json_decref(d);
	json_decref(b);
}

static void test_has_policy_fail_safe(void **state)
{
	json_t *d = json_loads("[{\"path\":\"services.web.bogus\",\"old\":null,\"new\":\"1\",\"class\":\"unknown\"}]",
			       0, NULL);
	(void)state;

	assert_true(spec_diff_has_policy(d));
	json_decref(d);
	d = json_loads("[{\"path\":\"services.web.run\",\"old\":null,\"new\":\"1\"}]", 0, NULL);
	assert_true(spec_diff_has_policy(d)); /* no class */
	json_decref(d);
	assert_true(spec_diff_has_policy(NULL));
	d = json_object();
	assert_true(spec_diff_has_policy(d));
	json_decref(d);
	d = json_array();
	assert_false(spec_diff_has_policy(d));
	json_decref(d);
}

static void test_diff_text(void **state)
{
	json_t *a = json_loads("{\"environments\":{\"production\":{\"protection\":{\"approvals\":\"2\"}}},"
			       "\"services\":{\"hello\":{\"replicas\":\"2\",\"run\":\"./hello\"}}}", 0, NULL);
	json_t *b = json_loads("{\"environments\":{\"production\":{},\"qa\":{\"replicas\":\"1\"}},"
			       "\"services\":{\"hello\":{\"replicas\":\"3\",\"run\":\"python3 -m http.server\","
			       "\"hosts\":[\"a.example\"],\"bogus\":\"null\"}}}", 0, NULL);
	json_t *d = spec_diff(a, b);
	char *text = spec_diff_text(d);
	(void)state;

	assert_string_equal(text,
			    "  - environments.production.protection.approvals: 2 (policy)\n"
			    "  + environments.qa.replicas: 1\n"
			    "  + services.hello.bogus: \"null\" (unknown: treated as policy)\n"
			    "  + services.hello.hosts: [\"a.example\"]\n"
			    "  ~ services.hello.replicas: 2 -> 3\n"
			    "  ~ services.hello.run: ./hello -> \"python3 -m http.server\"\n");
	free(text);
	json_decref(d);
	json_decref(b);
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_printed_key_has_a_class),
		cmocka_unit_test(test_class_names),
		cmocka_unit_test(test_concrete_paths),
		cmocka_unit_test(test_tree_json),
		cmocka_unit_test(test_diff_identical),
		cmocka_unit_test(test_diff_replicas_is_config),
		cmocka_unit_test(test_diff_override_env_is_config),
		cmocka_unit_test(test_diff_deleted_protection_is_policy),
		cmocka_unit_test(test_diff_deleted_environment_is_policy),
		cmocka_unit_test(test_diff_added_notify_is_policy),
		cmocka_unit_test(test_diff_shapes),
		cmocka_unit_test(test_diff_first_apply),
		cmocka_unit_test(test_has_policy_fail_safe),
		cmocka_unit_test(test_diff_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
