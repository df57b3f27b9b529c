/*
 * The API table (src/api/table.c): the rows the dispatcher authorises
 * from. A new operation without a sensible role or scope fails here.
 */
#include "common.h"
#include "api/api.h"
#include <setjmp.h>
#include <cmocka.h>

static const struct api_op *row(const char *name)
{
	for (const struct api_op *o = api_ops; o->name; o++)
		if (!strcmp(o->name, name))
			return o;
	fail_msg("no operation '%s' in the table", name);
	return NULL;
}

static void test_every_row(void **state)
{
	size_t n = 0;
	(void)state;
	for (const struct api_op *o = api_ops; o->name; o++, n++) {
		/* names are unique */
		for (const struct api_op *p = o + 1; p->name; p++)
			if (!strcmp(o->name, p->name))
				fail_msg("operation '%s' twice", o->name);
		assert_true(o->role >= ROLE_VIEWER && o->role <= ROLE_ADMIN);
		/* a change needs at least a deployer; only the artifact store is streamed */
		if (o->mutating && o->role < ROLE_DEPLOYER)
			fail_msg("'%s' changes things but a viewer may run it", o->name);
		if (!o->fn && strncmp(o->name, "artifact_", 9))
			fail_msg("'%s' has no handler", o->name);
		assert_true(api_op_known(o->name));
		assert_non_null(o->fields); /* "" = none: every request member is declared */
	}
	assert_true(n >= 30);
	assert_false(api_op_known("frobnicate"));
}

static void test_roles_and_scopes(void **state)
{
	static const char *const target[] = { "deploy", "rollback", "restart", "scale", "traffic",
					       "pause", "resume", "abort", "promote_canary" };
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(target); i++) {
		assert_int_equal(row(target[i])->role, ROLE_DEPLOYER);
		assert_int_equal(row(target[i])->scope, API_SCOPE_TARGET);
		assert_true(row(target[i])->mutating);
	}
	assert_int_equal(row("approve")->role, ROLE_APPROVER);
	assert_int_equal(row("reject")->role, ROLE_APPROVER);
	assert_int_equal(row("user_add")->role, ROLE_ADMIN);
	assert_int_equal(row("user_add")->scope, API_SCOPE_ALL);
	assert_int_equal(row("user_remove")->scope, API_SCOPE_ALL);
	assert_int_equal(row("user_list")->role, ROLE_ADMIN);
	assert_int_equal(row("apply")->role, ROLE_DEPLOYER); /* policy keys: admin, decided by spec_owner.c */
	assert_int_equal(row("status")->role, ROLE_VIEWER);
	assert_false(row("status")->mutating);
	assert_int_equal(row("artifact_upload")->role, ROLE_DEPLOYER);
	assert_true(row("artifact_upload")->mutating);
	assert_non_null(strstr(row("deploy")->fields, "spec"));
	assert_null(strstr(row("deploy")->fields, "gates")); /* the controller's, never a client's */
}

static void test_unknown_fields(void **state)
{
	struct caller caller = { .uid = (uid_t)-1, .remote = true };
	json_t *req = json_pack("{s:s, s:s, s:s}", "op", "status", "servcie", "hello", "token", "x"), *r;
	(void)state;
	/* refused before anything else (no controller needed), naming the member */
	r = api_dispatch(req, &caller);
	assert_false(json_is_true(json_object_get(r, "ok")));
	assert_int_equal(json_integer_value(json_object_get(r, "code")), EXIT_USAGE);
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "/servcie: 'status' takes no such field"));
	json_decref(r);
	json_decref(req);
	req = json_pack("{s:s, s:{}}", "op", "deploy", "gates");
	r = api_dispatch(req, &caller);
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "/gates: not accepted from a client"));
	json_decref(r);
	json_decref(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_row),
		cmocka_unit_test(test_roles_and_scopes),
		cmocka_unit_test(test_unknown_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
