#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "core/spec.h"
#include "gates/gates.h"
#include "gates/gspec.h"

static const char GOOD[] =
	"project: shop\n"
	"environments:\n"
	"  staging: { replicas: 2 }\n"
	"  production:\n"
	"    promote_from: staging\n"
	"    min_soak: 30m\n"
	"    protection:\n"
	"      approvals: 2\n"
	"      approval_ttl: 12h\n"
	"      windows: { deny: [\"Fri 17:00-Mon 08:00\"], allow: [\"Mon-Fri 08:00-18:00\"], timezone: Europe/Berlin }\n"
	"      freeze_on_incident: [P0, P1]\n"
	"      checklist: [\"announce in #deploys\", \"on-call knows\"]\n"
	"services:\n"
	"  api:\n"
	"    run: ./api\n"
	"    checks:\n"
	"      pre: [ { run: ./scripts/pre.sh, timeout: 10s } ]\n"
	"      post: [ { http: \"GET /health\", expect: 200 }, { run: ./scripts/smoke.sh } ]\n"
	"notify:\n"
	"  - { url: \"http://127.0.0.1:9000/hook\", format: standard, secret: HOOK, allow_private: true, events: [rollout_failed] }\n"
	"  - { url: \"https://hooks.slack.com/services/x\", format: slack }\n"
	"roles:\n"
	"  alice: approver\n"
	"  bob: deployer\n"
	"  ana: { role: deployer, environments: [staging], services: [api] }\n"
	"  '123': { role: viewer, environments: [] }\n";

static void test_good(void **state)
{
	struct spec *spec;
	struct diags d = { 0 };
	struct gate_policy p;
	struct gerr err;
	json_t *g, *n;
	(void)state;
	if (spec_load_buf("gantry.yaml", GOOD, strlen(GOOD), &spec, &d) < 0) {
		diags_print(&d, stderr);
		fail();
	}
	g = gspec_gates(spec, "api", "production");
	assert_int_equal(gate_policy_from_json(g, &p, &err), 0);
	assert_int_equal(p.approvals, 2);
	assert_int_equal(p.approval_ttl, 12 * 3600);
	assert_int_equal(p.min_soak, 1800);
	assert_string_equal(p.promote_from, "staging");
	assert_string_equal(p.timezone, "Europe/Berlin");
	assert_int_equal(p.nfreeze, 2);
	assert_int_equal(json_array_size(json_object_get(p.checks, "post")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(p.checks, "post"), 0), "expect")), 200);
	gate_policy_release(&p);
	json_decref(g);
	g = gspec_gates(spec, "api", "staging");
	assert_null(json_object_get(g, "approvals"));
	assert_non_null(json_object_get(g, "checks")); /* the service's checks run everywhere */
	json_decref(g);
	n = gspec_notify(spec);
	assert_int_equal(json_array_size(n), 2);
	json_decref(n);
	n = gspec_roles(spec);
	assert_string_equal(json_string_value(json_object_get(n, "alice")), "approver");
	/* the scoped form: an object, its lists as written */
	assert_string_equal(json_string_value(json_object_get(json_object_get(n, "ana"), "role")), "deployer");
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(n, "ana"), "environments"), 0)),
			    "staging");
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(n, "ana"), "services"), 0)), "api");
	assert_int_equal(json_array_size(json_object_get(json_object_get(n, "123"), "environments")), 0);
	assert_null(json_object_get(json_object_get(n, "123"), "services"));
	json_decref(n);
	n = gspec_checklist(spec, "production");
	assert_int_equal(json_array_size(n), 2);
	json_decref(n);
	n = gspec_checklist(spec, "staging");
	assert_int_equal(json_array_size(n), 0);
	json_decref(n);
	spec_free(spec);
	diags_release(&d);
}

/* each bad spec: the first diagnostic names this line:col and contains the words */
static void test_bad(void **state)
{
	static const struct {
		const char *yaml;
		int line, col;
		const char *words;
	} cases[] = {
		{ "environments:\n  production:\n    protection:\n      windows: { deny: [\"Fri 17:00-Mon\"] }\n"
		  "services:\n  api: { run: x }\n", 4, 25, "invalid window" },
		{ "environments:\n  production:\n    protection: { windows: { timezone: Mars/Base } }\n"
		  "services:\n  api: { run: x }\n", 3, 40, "unknown time zone" },
		{ "environments:\n  production:\n    protection: { freeze_on_incident: [P0, P7] }\n"
		  "services:\n  api: { run: x }\n", 3, 44, "not a severity" },
		{ "environments:\n  production:\n    protection: { aprovals: 1 }\n"
		  "services:\n  api: { run: x }\n", 3, 19, "did you mean 'approvals'" },
		{ "environments:\n  production:\n    protection: { approvals: many }\n"
		  "services:\n  api: { run: x }\n", 3, 30, "integer" },
		{ "environments:\n  production: { promote_from: stagin }\nservices:\n  api: { run: x }\n",
		  2, 31, "not an environment" },
		{ "environments:\n  staging: {}\n  production: { min_soak: 30m }\nservices:\n  api: { run: x }\n",
		  3, 27, "needs promote_from" },
		{ "environments:\n  production: {}\nservices:\n  api:\n    run: x\n    checks:\n      post: [ { http: \"POST /x\" } ]\n",
		  7, 15, "GET /path" },
		{ "environments:\n  production: {}\nservices:\n  api:\n    run: x\n    checks: { pre: [ { rn: x } ] }\n",
		  6, 22, "unknown key 'rn'" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\nnotify:\n  - { url: \"ftp://x\" }\n",
		  6, 12, "http:// or https://" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\nnotify:\n  - { url: \"https://x\", secret_env: S }\n",
		  6, 37, "use secret: NAME; the value goes in HOME/webhook-secrets" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\nnotify:\n  - { url: \"https://x\" }\n"
		  "  - url: \"http://127.0.0.1:9/h\"\n    format: slack\n",
		  7, 10, "127.0.0.1 is a loopback address: loopback, link-local, private and unspecified addresses need allow_private: true" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\nnotify:\n  - { url: \"https://x\", allow_private: 1 }\n",
		  6, 40, "true or false" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\nroles: { alice: boss }\n",
		  5, 17, "unknown role 'boss'" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\n"
		  "roles: { ana: { role: deployer, environments: [staging] } }\n",
		  5, 48, "'staging' is not an environment of this spec" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\n"
		  "roles: { ana: { role: deployer, envs: [production] } }\n",
		  5, 33, "unknown key 'envs'" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\n"
		  "roles: { ana: { environments: [production] } }\n",
		  5, 15, "missing key 'role'" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\n"
		  "roles: { ana: { role: boss, services: [api] } }\n",
		  5, 23, "unknown role 'boss'" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\n"
		  "roles: { ana: { role: admin, services: [web] } }\n",
		  5, 41, "'web' is not a service of this spec" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\n"
		  "roles: { ana: { role: admin, services: api } }\n",
		  5, 40, "expected a list" },
		{ "environments:\n  production: {}\nservices:\n  api: { run: x }\n"
		  "roles: { ana: [deployer] }\n",
		  5, 15, "expected a role or a mapping" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct spec *spec;
		struct diags d = { 0 };
		if (spec_load_buf("g.yaml", cases[i].yaml, strlen(cases[i].yaml), &spec, &d) == 0)
			fail_msg("case %zu accepted", i);
		assert_true(d.n >= 1);
		if (d.items[0].line != cases[i].line || d.items[0].col != cases[i].col ||
		    !strstr(d.items[0].message, cases[i].words))
			fail_msg("case %zu: got %d:%d '%s', want %d:%d '%s'", i, d.items[0].line, d.items[0].col,
				 d.items[0].message, cases[i].line, cases[i].col, cases[i].words);
		diags_release(&d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
