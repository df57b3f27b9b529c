/* the gate keys of the spec (core/spec_gates.c), checked through spec_load_buf */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "core/spec.h"

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
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
