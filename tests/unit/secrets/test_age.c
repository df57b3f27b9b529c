/* secrets/age.c: bech32, HKDF, keys, age files (binary and armored), what is refused */
#include "common.h"
#include "secrets/age.h"
#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>

/* ---- bech32: BIP 173's vectors ---- */

static void test_bech32_vectors(void **state)
{
	static const char *const valid[] = {
		"A12UEL5L", "a12uel5l",
		"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "?1ezyfcl",
	};
	static const char *const invalid[] = {
		"pzry9x0s0muk",  /* no separator */
		"1pzry9x0s0muk", /* empty hrp */
		"x1b4n0q5v",     /* invalid data character */
		"li1dgmt3",      /* checksum too short */
		"A1G7SGD8",      /* checksum computed with the upper-case hrp */
		"10a06t8",       /* empty hrp */
		"1qzzfhee",      /* empty hrp */
		"A12uEL5L",      /* mixed case */
		"a12uel5m",      /* wrong checksum */
	};
	char hrp[100];
	uint8_t data[100];
	struct gerr err;
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(valid); i++)
		assert_true(age__bech32_decode(valid[i], hrp, sizeof(hrp), data, sizeof(data), &err) >= 0);
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++)
		assert_int_equal(age__bech32_decode(invalid[i], hrp, sizeof(hrp), data, sizeof(data), &err), -1);
	/* "abcdef1qpzry…": the 5-bit values 0..31 are 20 bytes 00 44 32 14 c7 42 54 b6 35 cf 84 65 3a 56 d7 c6 75 be 77 df */
	static const uint8_t abcdef[] = { 0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf,
					  0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf };
	assert_int_equal(age__bech32_decode(valid[3], hrp, sizeof(hrp), data, sizeof(data), &err), 20);
	assert_string_equal(hrp, "abcdef");
	assert_memory_equal(data, abcdef, sizeof(abcdef));
	char enc[100];
	assert_int_equal(age__bech32_encode("abcdef", abcdef, sizeof(abcdef), false, enc, sizeof(enc)), 0);
	assert_string_equal(enc, valid[3]);
	assert_int_equal(age__bech32_encode("abcdef", abcdef, sizeof(abcdef), false, enc, 10), -1);
}

/* the X25519 example of the age spec (C2SP age.md) */
static void test_spec_key_example(void **state)
{
	static const char id[] = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
	char rcp[AGE_RECIPIENT_MAX], again[AGE_IDENTITY_MAX];
	uint8_t sk[AGE_KEY_LEN], pub[AGE_KEY_LEN];
	struct gerr err;
	(void)state;
	assert_int_equal(age_identity_to_recipient(id, rcp, &err), 0);
	assert_string_equal(rcp, "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj");
	assert_int_equal(age_identity_parse(id, sk, &err), 0);
	for (size_t i = 0; i < sizeof(sk); i++)
		assert_int_equal(sk[i], 0x42);
	age_identity_format(sk, again);
	assert_string_equal(again, id);
	assert_int_equal(age_recipient_parse(rcp, pub, &err), 0);
	/* a recipient is not an identity, and the other way round; a typo breaks the checksum */
	assert_int_equal(age_identity_parse(rcp, sk, &err), -1);
	assert_int_equal(age_recipient_parse(id, pub, &err), -1);
	assert_int_equal(age_recipient_parse("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwk", pub, &err), -1);
	assert_non_null(strstr(err.msg, "checksum"));
}

/* ---- HKDF-SHA-256: RFC 5869 test cases 1 and 3 ---- */

static void hex(const char *s, uint8_t *out, size_t n)
{
	size_t len = 0;
	assert_int_equal(sodium_hex2bin(out, n, s, strlen(s), NULL, &len, NULL), 0);
	assert_int_equal(len, n);
}

static void test_hkdf_rfc5869(void **state)
{
	uint8_t ikm[22], salt[13], info[10], okm[42], want[42];
	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	hex("000102030405060708090a0b0c", salt, sizeof(salt));
	hex("f0f1f2f3f4f5f6f7f8f9", info, sizeof(info));
	hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865", want, 42);
	assert_int_equal(age__hkdf_sha256(salt, sizeof(salt), ikm, sizeof(ikm), info, sizeof(info), okm, 42), 0);
	assert_memory_equal(okm, want, 42);
	hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8", want, 42);
	assert_int_equal(age__hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, okm, 42), 0);
	assert_memory_equal(okm, want, 42);
	assert_int_equal(age__hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, okm, 255 * 32 + 1), -1);
}

/* ---- files ---- */

struct keys {
	char *id[3], *rcp[3];
	struct age_identities *ids[3];
};

static void keys_make(struct keys *k)
{
	struct gerr err;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(age_keygen(&k->id[i], &k->rcp[i], &err), 0);
		assert_int_equal(age_identities_from_string(k->id[i], &k->ids[i], &err), 0);
	}
}

static void keys_free(struct keys *k)
{
	for (int i = 0; i < 3; i++) {
		age_secret_free(k->id[i], 0);
		free(k->rcp[i]);
		age_identities_free(k->ids[i]);
	}
}

static uint8_t *pattern(size_t n)
{
	uint8_t *p = xmalloc(n ? n : 1);
	randombytes_buf(p, n);
	return p;
}

static void roundtrip(struct keys *k, size_t n, size_t nrcp, bool armor)
{
	uint8_t *plain = pattern(n), *enc = NULL, *dec = NULL;
	size_t elen = 0, dlen = 0;
	struct gerr err;
	assert_int_equal(age_encrypt(plain, n, (const char *const *)k->rcp, nrcp, armor, &enc, &elen, &err), 0);
	assert_true(age_is_age(enc, elen));
	if (armor)
		assert_memory_equal(enc, "-----BEGIN AGE ENCRYPTED FILE-----\n", 35);
	for (size_t i = 0; i < nrcp; i++) {
		assert_int_equal(age_decrypt(enc, elen, k->ids[i], &dec, &dlen, &err), 0);
		assert_int_equal(dlen, n);
		if (n)
			assert_memory_equal(dec, plain, n);
		age_secret_free(dec, dlen);
	}
	if (nrcp < 3) {
		assert_int_equal(age_decrypt(enc, elen, k->ids[2], &dec, &dlen, &err), -1);
		assert_string_equal(err.msg, "age: no identity matches any recipient");
		assert_null(dec);
	}
	free(enc);
	free(plain);
}

static void test_roundtrips(void **state)
{
	struct keys k;
	static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 2 * 65536, 1 << 20 };
	(void)state;
	keys_make(&k);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		roundtrip(&k, sizes[i], 1, false);
		roundtrip(&k, sizes[i], 3, false);
		roundtrip(&k, sizes[i], 1, true);
	}
	keys_free(&k);
}

/* the ciphertext's size says how the payload is chunked: one tag per 64 KiB, one chunk when empty */
static void test_chunking(void **state)
{
	struct keys k;
	uint8_t *enc = NULL;
	size_t e0 = 0, e1 = 0, e2 = 0;
	struct gerr err;
	uint8_t *p = pattern(65537);
	(void)state;
	keys_make(&k);
	assert_int_equal(age_encrypt(p, 0, (const char *const *)k.rcp, 1, false, &enc, &e0, &err), 0);
	free(enc);
	assert_int_equal(age_encrypt(p, 65536, (const char *const *)k.rcp, 1, false, &enc, &e1, &err), 0);
	free(enc);
	assert_int_equal(age_encrypt(p, 65537, (const char *const *)k.rcp, 1, false, &enc, &e2, &err), 0);
	free(enc);
	assert_int_equal(e1 - e0, 65536);      /* one chunk, one tag */
	assert_int_equal(e2 - e1, 1 + 16);     /* a second chunk of one byte and its tag */
	free(p);
	keys_free(&k);
}

static void test_refused(void **state)
{
	struct keys k;
	uint8_t *plain = pattern(3 * 65536), *enc = NULL, *dec = NULL, *t;
	size_t elen = 0, dlen = 0;
	struct gerr err;
	(void)state;
	keys_make(&k);
	assert_int_equal(age_encrypt(plain, 3 * 65536, (const char *const *)k.rcp, 2, false, &enc, &elen, &err), 0);
	const uint8_t *mac = memmem(enc, elen, "\n---", 4);
	assert_non_null(mac);
	size_t hdr_end = (size_t)((const uint8_t *)memchr(mac + 1, '\n', elen) - enc) + 1;
	t = xmalloc(elen);

	/* the second stanza changed: the first one still opens, the MAC does not match */
	memcpy(t, enc, elen);
	const uint8_t *first = memmem(enc, elen, "-> X25519 ", 10);
	assert_non_null(first);
	const uint8_t *second = memmem(first + 10, elen - (size_t)(first + 10 - enc), "-> X25519 ", 10);
	assert_non_null(second);
	size_t at = (size_t)(second - enc) + 10 + 43 + 1 + 5; /* in its body */
	t[at] = t[at] == 'A' ? 'B' : 'A';
	assert_int_equal(age_decrypt(t, elen, k.ids[0], &dec, &dlen, &err), -1);
	assert_string_equal(err.msg, "age: header MAC mismatch");

	/* a payload byte in the second chunk */
	memcpy(t, enc, elen);
	t[hdr_end + 16 + 65536 + 16 + 100] ^= 1;
	assert_int_equal(age_decrypt(t, elen, k.ids[0], &dec, &dlen, &err), -1);
	assert_string_equal(err.msg, "age: payload corrupted at chunk 1");
	assert_null(dec);

	/* truncated at a chunk boundary (the last chunk gone) and in the middle of one */
	assert_int_equal(age_decrypt(enc, elen - 65536 - 16, k.ids[0], &dec, &dlen, &err), -1);
	assert_non_null(strstr(err.msg, "age: payload corrupted at chunk 1"));
	assert_int_equal(age_decrypt(enc, elen - 1000, k.ids[0], &dec, &dlen, &err), -1);
	assert_non_null(strstr(err.msg, "chunk 2"));
	assert_int_equal(age_decrypt(enc, hdr_end - 2, k.ids[0], &dec, &dlen, &err), -1);
	assert_string_equal(err.msg, "age: header truncated");
	assert_int_equal(age_decrypt(enc, hdr_end + 10, k.ids[0], &dec, &dlen, &err), -1);
	assert_string_equal(err.msg, "age: payload truncated (no nonce)");

	/* the wrong key */
	assert_int_equal(age_decrypt(enc, elen, k.ids[2], &dec, &dlen, &err), -1);
	assert_string_equal(err.msg, "age: no identity matches any recipient");

	/* extra data after the last chunk is a corrupted last chunk */
	uint8_t *longer = xmalloc(elen + 5);
	memcpy(longer, enc, elen);
	memcpy(longer + elen, "extra", 5);
	assert_int_equal(age_decrypt(longer, elen + 5, k.ids[0], &dec, &dlen, &err), -1);
	free(longer);

	/* not an age file; another version */
	assert_int_equal(age_decrypt("hello", 5, k.ids[0], &dec, &dlen, &err), -1);
	assert_non_null(strstr(err.msg, "not an age file"));
	assert_int_equal(age_decrypt("age-encryption.org/v2\n", 22, k.ids[0], &dec, &dlen, &err), -1);
	assert_non_null(strstr(err.msg, "unsupported version"));
	free(t);
	free(enc);
	free(plain);
	keys_free(&k);
}

static void test_armor_strict(void **state)
{
	struct keys k;
	uint8_t *enc = NULL, *dec = NULL;
	size_t elen = 0, dlen = 0;
	struct gerr err;
	(void)state;
	keys_make(&k);
	assert_int_equal(age_encrypt("secret", 6, (const char *const *)k.rcp, 1, true, &enc, &elen, &err), 0);
	/* whitespace around the block is fine, CRLF too */
	char *ws = xasprintf("\n  %s\n\n", (char *)enc);
	assert_int_equal(age_decrypt(ws, strlen(ws), k.ids[0], &dec, &dlen, &err), 0);
	assert_string_equal((char *)dec, "secret");
	age_secret_free(dec, dlen);
	free(ws);
	/* text after the END line, a line longer than 64 columns, a missing END */
	char *after = xasprintf("%sx\n", (char *)enc);
	assert_int_equal(age_decrypt(after, strlen(after), k.ids[0], &dec, &dlen, &err), -1);
	free(after);
	char *joined = xstrdup((char *)enc);
	char *nl = strchr(joined + 36, '\n');
	memmove(nl, nl + 1, strlen(nl));
	assert_int_equal(age_decrypt(joined, strlen(joined), k.ids[0], &dec, &dlen, &err), -1);
	assert_non_null(strstr(err.msg, "armor"));
	free(joined);
	assert_int_equal(age_decrypt(enc, elen - 34, k.ids[0], &dec, &dlen, &err), -1);
	assert_non_null(strstr(err.msg, "no END line"));
	free(enc);
	keys_free(&k);
}

static void test_identity_file(void **state)
{
	struct keys k;
	struct age_identities *ids = NULL;
	struct gerr err;
	char rcp[AGE_RECIPIENT_MAX];
	(void)state;
	keys_make(&k);
	char *file = xasprintf("# created: now\n# public key: %s\n%s\n\n  %s  \r\n", k.rcp[0], k.id[0], k.id[1]);
	assert_int_equal(age_identities_parse(file, strlen(file), &ids, &err), 0);
	assert_int_equal(age_identities_count(ids), 2);
	age_identities_recipient(ids, 1, rcp);
	assert_string_equal(rcp, k.rcp[1]);
	age_identities_free(ids);
	free(file);
	/* a bad line: named by number, its text (maybe a key) never in the message */
	file = xasprintf("# c\n%s\nAGE-SECRET-KEY-1NOTAKEYATALL\n", k.id[0]);
	assert_int_equal(age_identities_parse(file, strlen(file), &ids, &err), -1);
	assert_non_null(strstr(err.msg, "line 3"));
	assert_null(strstr(err.msg, "NOTAKEY"));
	free(file);
	assert_int_equal(age_identities_parse("# only comments\n", 16, &ids, &err), -1);
	assert_non_null(strstr(err.msg, "no identity"));
	assert_int_equal(age_identities_load("/nonexistent/keys.txt", &ids, &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent/keys.txt"));
	keys_free(&k);
}

/* a file made by the age CLI (age 1.1.1, `age -e -r`; the key below) decrypts */
static void test_age_cli_file(void **state)
{
	struct age_identities *ids = NULL;
	uint8_t *dec = NULL;
	size_t dlen = 0;
	struct gerr err;
	char *file = NULL;
	size_t flen = 0;
	FILE *f;
	(void)state;
	assert_int_equal(age_identities_load("tests/unit/secrets/fixtures/age-cli.key", &ids, &err), 0);
	f = fopen("tests/unit/secrets/fixtures/age-cli.age", "rb");
	assert_non_null(f);
	file = xmalloc(4096);
	flen = fread(file, 1, 4096, f);
	fclose(f);
	assert_int_equal(age_decrypt(file, flen, ids, &dec, &dlen, &err), 0);
	assert_string_equal((char *)dec, "made by the age CLI\n");
	age_secret_free(dec, dlen);
	free(file);
	age_identities_free(ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bech32_vectors), cmocka_unit_test(test_spec_key_example),
		cmocka_unit_test(test_hkdf_rfc5869),   cmocka_unit_test(test_roundtrips),
		cmocka_unit_test(test_chunking),       cmocka_unit_test(test_refused),
		cmocka_unit_test(test_armor_strict),   cmocka_unit_test(test_identity_file),
		cmocka_unit_test(test_age_cli_file),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
