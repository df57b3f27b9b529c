/*
 * test_spec_flags — core/spec_flags.c: per-environment flag definitions
 * (environments.E.flags) merged over flags:, and the FILE:LINE:COL
 * diagnostics of overrides and of analysis flag_off.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "core/spec.h"
#include "core/spec_flags.h"
#include "flags/flags.h"

static struct spec *must_load(const char *text)
{
	struct diags d = { 0 };
	struct spec *spec = NULL;
	if (spec_load_buf("g.yaml", text, strlen(text), &spec, &d) < 0) {
		diags_print(&d, stderr);
		fail_msg("does not load");
	}
	diags_release(&d);
	return spec;
}

/* exactly one diagnostic, at line:col, path, with msg in its message */
static void one_error(const char *text, int line, int col, const char *path, const char *msg)
{
	struct diags d = { 0 };
	struct spec *spec = NULL;
	assert_int_equal(spec_load_buf("g.yaml", text, strlen(text), &spec, &d), -1);
	if (d.n != 1)
		diags_print(&d, stderr);
	assert_int_equal(d.n, 1);
	if (d.items[0].line != line || d.items[0].col != col)
		diags_print(&d, stderr);
	assert_int_equal(d.items[0].line, line);
	assert_int_equal(d.items[0].col, col);
	assert_string_equal(d.items[0].path, path);
	if (!strstr(d.items[0].message, msg))
		fail_msg("'%s' does not contain '%s'", d.items[0].message, msg);
	diags_release(&d);
}

#define HEAD "services:\n  api:\n    run: ./api\n"

/* the value of flag name for ctx in env's definitions (state "spec") */
static json_t *eval(const struct spec *spec, const char *env, const char *name, const char *ctx)
{
	struct flag_defs defs;
	struct flag_result r;
	struct gerr err;
	json_t *j = spec_flags_json_env(spec, env), *c = json_loads(ctx, 0, NULL), *v;
	if (flag_defs_parse(j, &defs, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(flag_evaluate(flag_defs_find(&defs, name), NULL, c, &r), 0);
	v = json_incref(r.value);
	flag_defs_release(&defs);
	json_decref(j);
	json_decref(c);
	return v;
}

static void test_env_overrides_merge(void **state)
{
	(void)state;
	struct spec *spec = must_load("environments:\n"
				      "  staging:\n"
				      "    flags:\n"
				      "      checkout: { default: on }\n"
				      "  production:\n"
				      "    flags:\n"
				      "      checkout:\n"
				      "        rules: [ { if: { attr: plan, in: [pro] }, serve: on } ]\n"
				      "  dev: {}\n" HEAD
				      "flags:\n"
				      "  checkout:\n"
				      "    default: off\n"
				      "    rules: [ { if: { attr: plan, equals: team }, serve: on } ]\n"
				      "  banner: { variants: { blue: 1, red: 2 }, default: blue }\n");
	json_t *v;
	/* staging: its default, the top-level rules */
	v = eval(spec, "staging", "checkout", "{\"targetingKey\": \"u\", \"plan\": \"free\"}");
	assert_true(json_is_true(v));
	json_decref(v);
	/* production: its rules (pro), the top-level default (off); team no longer matches */
	v = eval(spec, "production", "checkout", "{\"targetingKey\": \"u\", \"plan\": \"pro\"}");
	assert_true(json_is_true(v));
	json_decref(v);
	v = eval(spec, "production", "checkout", "{\"targetingKey\": \"u\", \"plan\": \"team\"}");
	assert_true(json_is_false(v));
	json_decref(v);
	/* dev: none, the top-level ones */
	v = eval(spec, "dev", "checkout", "{\"targetingKey\": \"u\", \"plan\": \"team\"}");
	assert_true(json_is_true(v));
	json_decref(v);
	v = eval(spec, NULL, "checkout", "{\"targetingKey\": \"u\", \"plan\": \"free\"}");
	assert_true(json_is_false(v));
	json_decref(v);
	/* a flag without overrides is the same everywhere */
	v = eval(spec, "staging", "banner", "{}");
	assert_int_equal(json_integer_value(v), 1);
	json_decref(v);
	spec_free(spec);
}

static void test_env_override_errors(void **state)
{
	(void)state;
	/* an unknown flag, with a did-you-mean */
	one_error("environments:\n"
		  "  staging:\n"
		  "    flags:\n"
		  "      chekout: { default: on }\n" HEAD
		  "flags:\n"
		  "  checkout: {}\n",
		  4, 7, "environments.staging.flags.chekout",
		  "no flag 'chekout' under flags: to override (did you mean 'checkout'?)");
	/* a bad value in a key it replaces: there */
	one_error("environments:\n"
		  "  staging:\n"
		  "    flags:\n"
		  "      checkout: { default: of }\n" HEAD
		  "flags:\n"
		  "  checkout: {}\n",
		  4, 28, "environments.staging.flags.checkout.default", "unknown variant 'of'");
	/* an unknown key of the override: at the key */
	one_error("environments:\n"
		  "  staging:\n"
		  "    flags:\n"
		  "      checkout: { defualt: on }\n" HEAD
		  "flags:\n"
		  "  checkout: {}\n",
		  4, 19, "environments.staging.flags.checkout", "unknown key 'defualt'");
	/* variants replaced, the inherited default no longer one of them: at the override */
	one_error("environments:\n"
		  "  staging:\n"
		  "    flags:\n"
		  "      banner: { variants: { green: 3 } }\n" HEAD
		  "flags:\n"
		  "  banner: { variants: { blue: 1, red: 2 }, default: blue }\n",
		  4, 15, "environments.staging.flags.banner", "unknown variant 'blue'");
	/* not a mapping */
	one_error("environments:\n"
		  "  staging:\n"
		  "    flags: [ checkout ]\n" HEAD
		  "flags:\n"
		  "  checkout: {}\n",
		  3, 12, "environments.staging.flags", "expected a mapping");
}

static void test_analysis_flag_off(void **state)
{
	(void)state;
	struct spec *spec;
	const struct spec_service *s;
	one_error("environments: { staging: {} }\n" HEAD
		  "    analysis:\n"
		  "      slo:\n"
		  "        flag_off: chekout\n"
		  "        metrics: [ { query: error_rate, fail_if: \"> 1%\" } ]\n"
		  "flags:\n"
		  "  checkout: {}\n",
		  7, 19, "services.api.analysis.slo.flag_off",
		  "flag_off: no flag 'chekout' under flags: (did you mean 'checkout'?)");
	spec = must_load("environments: { staging: {} }\n" HEAD "    analysis:\n"
			 "      slo:\n"
			 "        flag_off: checkout\n"
			 "        metrics: [ { query: error_rate, fail_if: \"> 1%\" } ]\n"
			 "flags:\n"
			 "  checkout: {}\n");
	s = spec_find_service(spec, "api");
	assert_non_null(s);
	spec_free(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_overrides_merge),
		cmocka_unit_test(test_env_override_errors),
		cmocka_unit_test(test_analysis_flag_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
