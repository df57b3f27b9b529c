/*
 * test_reply — the controller's error answer (daemon/reply.h): its shape,
 * the code the CLI exits with, a message cut rather than overflowing.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "daemon/reply.h"

static void test_shape(void **state)
{
	json_t *r = reply_error(EXIT_REFUSED, "permission denied: %s cannot %s", "bob", "deploy");
	(void)state;
	assert_int_equal(json_object_size(r), 3);
	assert_true(json_is_false(json_object_get(r, "ok")));
	assert_int_equal(json_integer_value(json_object_get(r, "code")), 3);
	assert_string_equal(json_string_value(json_object_get(r, "error")), "permission denied: bob cannot deploy");
	json_decref(r);
}

static void test_long_message_is_cut(void **state)
{
	char big[3000];
	json_t *r;
	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	r = reply_error(1, "%s", big);
	assert_int_equal(strlen(json_string_value(json_object_get(r, "error"))), 1023);
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_long_message_is_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
