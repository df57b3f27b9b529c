#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "util/cidr.h"

static bool match(const struct cidr_set *s, const char *ip)
{
	uint8_t a[16];
	if (inet_pton(AF_INET, ip, a) == 1)
		return cidr_set_match(s, AF_INET, a);
	assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
	return cidr_set_match(s, AF_INET6, a);
}

static void test_parse_good(void **state)
{
	struct cidr c;
	(void)state;
	assert_int_equal(cidr_parse("10.0.0.0/8", 10, &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.bits, 8);
	assert_int_equal(cidr_parse("10.1.2.3/8", 10, &c), 0); /* host bits cleared */
	assert_int_equal(c.addr[0], 10);
	assert_int_equal(c.addr[1], 0);
	assert_int_equal(c.addr[3], 0);
	assert_int_equal(cidr_parse("192.168.7.255/23", 16, &c), 0);
	assert_int_equal(c.addr[2], 6);
	assert_int_equal(c.addr[3], 0);
	assert_int_equal(cidr_parse("127.0.0.1", 9, &c), 0); /* a bare address is /32 */
	assert_int_equal(c.bits, 32);
	assert_int_equal(cidr_parse("::1/128", 7, &c), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.bits, 128);
	assert_int_equal(cidr_parse("fe80::/10", 9, &c), 0);
	assert_int_equal(cidr_parse("::", 2, &c), 0);
	assert_int_equal(c.bits, 128);
	assert_int_equal(cidr_parse("0.0.0.0/0", 9, &c), 0);
	assert_int_equal(c.bits, 0);
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "/8", "10.0.0.0/", "10.0.0.0/33", "::1/129", "10.0.0/8", "10.0.0.0/8/8", "10.0.0.0/-1",
		"10.0.0.0/ 8", "host.example", "10.0.0.0/0x8", "1.2.3.4.5", "::1/1280", " 10.0.0.0/8",
		"10.0.0.256", "[::1]/128",
	};
	struct cidr c;
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (cidr_parse(bad[i], strlen(bad[i]), &c) != -1)
			fail_msg("'%s' accepted", bad[i]);
}

static void test_list(void **state)
{
	struct cidr_set s = { 0 };
	char bad[64];
	(void)state;
	assert_int_equal(cidr_set_add_list(&s, "", bad, sizeof(bad)), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(cidr_set_add_list(&s, "127.0.0.1/32, 10.0.0.0/8 ,::1/128", bad, sizeof(bad)), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(cidr_set_add_list(&s, "172.16.0.0/12,10.0.0.0/33", bad, sizeof(bad)), -1);
	assert_string_equal(bad, "10.0.0.0/33");
	assert_int_equal(s.n, 3); /* unchanged */
	assert_int_equal(cidr_set_add_list(&s, "10.0.0.0/8,", bad, sizeof(bad)), -1);
	assert_int_equal(cidr_set_add_list(&s, "10.0.0.0/8,,::1", bad, sizeof(bad)), -1);
	assert_string_equal(bad, "");
	assert_int_equal(s.n, 3);
	cidr_set_release(&s);
}

static void test_match(void **state)
{
	struct cidr_set s = { 0 }, empty = { 0 }, all = { 0 };
	char bad[64];
	(void)state;
	assert_int_equal(cidr_set_add_list(&s, "127.0.0.1/32,10.0.0.0/8,192.168.4.0/22,::1/128,fd00::/8",
					   bad, sizeof(bad)), 0);
	assert_true(match(&s, "127.0.0.1"));
	assert_false(match(&s, "127.0.0.2"));
	assert_true(match(&s, "10.255.1.2"));
	assert_false(match(&s, "11.0.0.1"));
	assert_true(match(&s, "192.168.7.1"));
	assert_false(match(&s, "192.168.8.1"));
	assert_false(match(&s, "192.168.3.255"));
	assert_true(match(&s, "::1"));
	assert_false(match(&s, "::2"));
	assert_true(match(&s, "fdab::1"));
	assert_false(match(&s, "fe80::1"));
	assert_true(match(&s, "::ffff:10.1.1.1"));  /* IPv4-mapped: IPv4 networks */
	assert_false(match(&s, "::ffff:11.1.1.1"));
	assert_false(match(&empty, "127.0.0.1"));
	assert_false(match(&empty, "::1"));
	assert_int_equal(cidr_set_add_list(&all, "0.0.0.0/0", bad, sizeof(bad)), 0);
	assert_true(match(&all, "1.2.3.4"));
	assert_false(match(&all, "2001:db8::1"));
	cidr_set_release(&s);
	cidr_set_release(&all);
}

static void test_match_sa(void **state)
{
	struct cidr_set s = { 0 };
	struct sockaddr_in v4 = { .sin_family = AF_INET };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
	struct sockaddr un = { .sa_family = AF_UNIX };
	char bad[8];
	(void)state;
	assert_int_equal(cidr_set_add_list(&s, "127.0.0.0/8,::1", bad, sizeof(bad)), 0);
	inet_pton(AF_INET, "127.9.9.9", &v4.sin_addr);
	inet_pton(AF_INET6, "::1", &v6.sin6_addr);
	assert_true(cidr_set_match_sa(&s, (struct sockaddr *)&v4));
	assert_true(cidr_set_match_sa(&s, (struct sockaddr *)&v6));
	assert_false(cidr_set_match_sa(&s, &un));
	cidr_set_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good), cmocka_unit_test(test_parse_bad), cmocka_unit_test(test_list),
		cmocka_unit_test(test_match),      cmocka_unit_test(test_match_sa),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
