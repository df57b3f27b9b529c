/* util/log.c: one event is one line, whatever its values hold */
#include "common.h"
#include "util/log.h"
#include <setjmp.h>
#include <cmocka.h>

static void test_quote(void **state)
{
	char b[64];
	(void)state;
	assert_string_equal(log_quote("plain", b, sizeof(b)), "\"plain\"");
	assert_string_equal(log_quote("a \"b\" \\ c", b, sizeof(b)), "\"a \\\"b\\\" \\\\ c\"");
	assert_string_equal(log_quote("x\nlevel=error msg=FORGED", b, sizeof(b)), "\"x\\nlevel=error msg=FORGED\"");
	assert_string_equal(log_quote("\r\t\x7f", b, sizeof(b)), "\"\\x0d\\x09\\x7f\"");
	/* cut to fit, still quoted */
	assert_string_equal(log_quote("0123456789abcdef", b, 10), "\"012\"");
	assert_string_equal(log_quote("anything", b, 2), "");
}

static void test_one_line(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	(void)state;
	log_set_file(f);
	log_write(LOG_INFO, "test", "msg=%s", "one\ntwo\r\nthree");
	log_set_file(NULL);
	fclose(f);
	assert_non_null(strstr(buf, "msg=one?two??three"));
	assert_ptr_equal(strchr(buf, '\n'), buf + len - 1); /* the only newline ends the line */
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_one_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
