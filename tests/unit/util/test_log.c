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

static int64_t fake_now;
static int64_t fake_clock(void)
{
	return fake_now;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* a flood of one failing retry: two lines per 10 s window, and the count */
static void test_repeats_collapsed(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	(void)state;
	int64_t (*saved)(void) = log__clock;
	log__clock = fake_clock;
	fake_now = 1000;
	log_set_file(f);
	for (int i = 0; i < 26251; i++) {
		fake_now = 1000 + i / 4; /* 4 lines a millisecond: 6.6 s */
		log_write(LOG_ERROR, "proxy", "cannot write routes: %s", "No space left on device");
	}
	log_write(LOG_INFO, "serve", "something else");
	/* the same again after it: printed (the last line changed) */
	log_write(LOG_ERROR, "proxy", "cannot write routes: %s", "No space left on device");
	/* past the window: counted lines so far flushed, the line printed again */
	for (int i = 0; i < 3; i++)
		log_write(LOG_ERROR, "proxy", "cannot write routes: %s", "No space left on device");
	fake_now += 10001;
	log_write(LOG_ERROR, "proxy", "cannot write routes: %s", "No space left on device");
	log_flush();
	log_set_file(NULL);
	fclose(f);
	assert_int_equal(count(buf, "cannot write routes"), 3);
	assert_non_null(strstr(buf, "level=error sys=proxy ... repeated 26250 times in 6.6s"));
	assert_non_null(strstr(buf, "level=error sys=proxy ... repeated 3 times in 0.0s"));
	assert_int_equal(count(buf, "\n"), 6);
	free(buf);
	/* a different level or subsystem is a different line */
	buf = NULL;
	f = open_memstream(&buf, &len);
	log_set_file(f);
	log_write(LOG_WARN, "a", "x");
	log_write(LOG_INFO, "a", "x");
	log_write(LOG_INFO, "b", "x");
	log_flush();
	log_set_file(NULL);
	fclose(f);
	assert_int_equal(count(buf, "\n"), 3);
	free(buf);
	log__clock = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_one_line),
		cmocka_unit_test(test_repeats_collapsed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
