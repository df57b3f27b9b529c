/* util/buf.c: the bounded buffer and the libcurl body sink */
#include "common.h"
#include "util/buf.h"
#include <setjmp.h>
#include <cmocka.h>

static void test_bound(void **state)
{
	struct hbuf b;
	char *s;
	size_t len;
	(void)state;
	hbuf_init(&b, 8);
	assert_int_equal(hbuf_addstr(&b, "abcd"), 0);
	assert_int_equal(hbuf_printf(&b, "%d", 123), 0);
	assert_int_equal(b.len, 7);
	/* past the bound: refused, nothing changes */
	assert_int_equal(hbuf_addstr(&b, "xy"), -1);
	assert_int_equal(hbuf_printf(&b, "%s", "a long line that does not fit"), -1);
	assert_int_equal(b.len, 7);
	assert_true(b.cap <= b.max);
	assert_int_equal(hbuf_addstr(&b, "z"), 0);
	/* a full buffer still detaches as a string */
	s = hbuf_detach(&b, &len);
	assert_string_equal(s, "abcd123z");
	assert_int_equal(len, 8);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 8);
	free(s);
	s = hbuf_detach(&b, NULL);
	assert_string_equal(s, "");
	free(s);
	hbuf_release(&b);
}

static void test_printf_long(void **state)
{
	struct hbuf b;
	char big[1000];
	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	hbuf_init(&b, 4096);
	assert_int_equal(hbuf_printf(&b, "<%s>", big), 0);
	assert_int_equal(b.len, 1001);
	assert_int_equal(b.data[0], '<');
	assert_int_equal(b.data[1000], '>');
	hbuf_release(&b);
}

static void test_sink(void **state)
{
	struct hbuf_sink s;
	char *body;
	(void)state;
	hbuf_sink_init(&s, 10);
	assert_int_equal(hbuf_sink_write((char *)"hello", 1, 5, &s), 5);
	assert_int_equal(hbuf_sink_write((char *)"worl", 2, 2, &s), 4);
	assert_false(s.over);
	/* one byte too many: the transfer ends (not 3), and it says so */
	assert_int_equal(hbuf_sink_write((char *)"d!!", 1, 3, &s), 0);
	assert_true(s.over);
	body = hbuf_detach(&s.buf, NULL);
	assert_string_equal(body, "helloworl");
	free(body);
	hbuf_release(&s.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_printf_long),
		cmocka_unit_test(test_sink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
