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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
