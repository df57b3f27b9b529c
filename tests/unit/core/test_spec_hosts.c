#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "core/spec.h"

/* loads text; returns the diagnostics (caller releases) and whether it loaded */
static int load(const char *text, struct diags *d)
{
	struct spec *spec = NULL;
	int ret = spec_load_buf("g.yaml", text, strlen(text), &spec, d);
	spec_free(spec);
	return ret;
}

static void must_load(const char *text)
{
	struct diags d = { 0 };
	if (load(text, &d) < 0) {
		diags_print(&d, stderr);
		fail_msg("does not load");
	}
	diags_release(&d);
}

/* exactly one diagnostic, at line:col, path, with msg in its message */
static void one_error(const char *text, int line, int col, const char *path, const char *msg)
{
	struct diags d = { 0 };
	assert_int_equal(load(text, &d), -1);
	if (d.n != 1)
		diags_print(&d, stderr);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.items[0].line, line);
	assert_int_equal(d.items[0].col, col);
	assert_string_equal(d.items[0].path, path);
	if (!strstr(d.items[0].message, msg))
		fail_msg("'%s' does not contain '%s'", d.items[0].message, msg);
	diags_release(&d);
}

static void test_exact_duplicate_names_both(void **state)
{
	(void)state;
	one_error("environments:\n"
		  "  production: {}\n"
		  "services:\n"
		  "  web:\n"
		  "    run: x\n"
		  "    hosts: [shop.example.com]\n"
		  "  api:\n"
		  "    run: y\n"
		  "    environments:\n"
		  "      production:\n"
		  "        hosts: [Shop.example.com]\n",
		  11, 17, "services.api.environments.production.hosts[0]", "invalid host name");
	one_error("environments:\n"
		  "  production: {}\n"
		  "services:\n"
		  "  web:\n"
		  "    run: x\n"
		  "    hosts: [shop.example.com]\n"
		  "  api:\n"
		  "    run: y\n"
		  "    environments:\n"
		  "      production:\n"
		  "        hosts: [api.example.com, shop.example.com]\n",
		  11, 34, "services.api.environments.production.hosts[1]",
		  "host 'shop.example.com' is also routed to web@production (services.web.hosts[0], line 6)");
}

static void test_environment_hosts_inherited_twice(void **state)
{
	(void)state;
	one_error("environments:\n"
		  "  production: { hosts: [shop.example.com, www.example.com] }\n"
		  "services:\n"
		  "  web: { run: x }\n"
		  "  worker: { run: y }\n",
		  2, 25, "environments.production.hosts[0]",
		  "host 'shop.example.com' (and the 1 other host of this list) is routed to both web@production "
		  "and worker@production");
	/* fine once the others have their own */
	must_load("environments:\n"
		  "  production: { hosts: [shop.example.com] }\n"
		  "services:\n"
		  "  web: { run: x }\n"
		  "  worker: { run: y, hosts: [] }\n");
}

static void test_service_hosts_in_two_environments(void **state)
{
	(void)state;
	one_error("environments: { staging: {}, production: {} }\n"
		  "services:\n"
		  "  web: { run: x, hosts: [shop.example.com] }\n",
		  3, 26, "services.web.hosts[0]", "is routed to both web@staging and web@production");
	must_load("environments: { staging: {}, production: {} }\n"
		  "services:\n"
		  "  web:\n"
		  "    run: x\n"
		  "    hosts: [shop.example.com]\n"
		  "    environments: { staging: { hosts: [staging.example.com] } }\n");
}

static void test_overlapping_patterns_are_allowed(void **state)
{
	(void)state;
	/* exact beats wildcard, longer suffix beats shorter, anything beats "*" */
	must_load("environments: { p: {} }\n"
		  "services:\n"
		  "  a: { run: x, hosts: [\"*.example.com\"] }\n"
		  "  b: { run: x, hosts: [shop.example.com] }\n"
		  "  c: { run: x, hosts: [\"*.api.example.com\", example.com] }\n"
		  "  d: { run: x, hosts: [\"*\"] }\n");
	one_error("environments: { p: {} }\n"
		  "services:\n"
		  "  a: { run: x, hosts: [\"*.example.com\"] }\n"
		  "  b: { run: x, hosts: [\"*.example.com\"] }\n",
		  4, 24, "services.b.hosts[0]", "host '*.example.com' is also routed to a@p");
	one_error("environments: { p: {} }\n"
		  "services:\n"
		  "  a: { run: x, hosts: [\"*\"] }\n"
		  "  b: { run: x, hosts: [\"*\"] }\n",
		  4, 24, "services.b.hosts[0]", "host '*' is also routed to a@p");
}

static void test_default_hosts(void **state)
{
	(void)state;
	/* another pair's default host: reported where it is written */
	one_error("environments: { p: {} }\n"
		  "services:\n"
		  "  a: { run: x, hosts: [b.p.localhost] }\n"
		  "  b: { run: x }\n",
		  3, 24, "services.a.hosts[0]", "host 'b.p.localhost' is also routed to b@p (its default host)");
	one_error("environments: { p: {} }\n"
		  "services:\n"
		  "  b: { run: x }\n"
		  "  a: { run: x, hosts: [b.p.localhost] }\n",
		  4, 24, "services.a.hosts[0]", "host 'b.p.localhost' is also routed to b@p (its default host)");
	/* its own default, listed: no collision */
	must_load("environments: { p: {} }\n"
		  "services:\n"
		  "  a: { run: x, hosts: [a.p.localhost, a.example.com] }\n");
}

static void test_every_collision_once(void **state)
{
	struct diags d = { 0 };
	(void)state;
	assert_int_equal(load("environments: { p: {}, q: {} }\n"
			      "services:\n"
			      "  a: { run: x, environments: { p: { hosts: [h1, h2] }, q: { hosts: [h3] } } }\n"
			      "  b: { run: x, environments: { p: { hosts: [h2] }, q: { hosts: [h1] } } }\n"
			      "  c: { run: x, environments: { p: { hosts: [h1] }, q: { hosts: [h3] } } }\n",
			      &d), -1);
	/* b@p h2, b@q h1, c@p h1, c@q h3; in file order */
	assert_int_equal(d.n, 4);
	assert_int_equal(d.items[0].line, 4);
	assert_non_null(strstr(d.items[0].message, "'h2' is also routed to a@p"));
	assert_non_null(strstr(d.items[1].message, "'h1' is also routed to a@p"));
	assert_non_null(strstr(d.items[2].message, "'h1' is also routed to a@p"));
	assert_non_null(strstr(d.items[3].message, "'h3' is also routed to a@q"));
	diags_release(&d);
}

static void test_stored_specs_still_load(void **state)
{
	const char *text = "environments:\n"
			   "  production: { hosts: [shop.example.com] }\n"
			   "services:\n"
			   "  web: { run: x }\n"
			   "  worker: { run: y }\n";
	struct spec *spec = NULL;
	struct diags d = { 0 };
	(void)state;
	assert_int_equal(spec_load_stored("g.yaml", text, strlen(text), &spec, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(spec_hosts_check(spec, "g.yaml", text, strlen(text), &d), 1);
	assert_int_equal(d.n, 1);
	diags_release(&d);
	spec_free(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_duplicate_names_both),
		cmocka_unit_test(test_environment_hosts_inherited_twice),
		cmocka_unit_test(test_service_hosts_in_two_environments),
		cmocka_unit_test(test_overlapping_patterns_are_allowed),
		cmocka_unit_test(test_default_hosts),
		cmocka_unit_test(test_every_collision_once),
		cmocka_unit_test(test_stored_specs_still_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
