/*
 * fuzz_age.c — the age surface: a file's header and armor, parsed without
 * a key and then decrypted with a fixed identity (the age spec's example
 * key), and the bytes as a bech32 recipient or identity. Must never crash,
 * leak or hang; a failure always says why.
 */
#include "common.h"
#include "secrets/age.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct age_identities *ids;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gerr err = { "" };
	size_t n = 0;
	uint8_t *out = NULL;
	size_t out_len = 0;

	if (!ids && age_identities_from_string(
			    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX", &ids, &err) < 0)
		BUG_ON(true);
	if (age__parse_header(data, size, &n, &err) == 0)
		BUG_ON(n == 0);
	else
		BUG_ON(!err.msg[0]);
	err.msg[0] = 0;
	if (age_decrypt(data, size, ids, &out, &out_len, &err) == 0)
		age_secret_free(out, out_len);
	else
		BUG_ON(!err.msg[0] || out);

	/* the bytes as a key string */
	if (size < 256) {
		char s[256], rcp[AGE_RECIPIENT_MAX];
		uint8_t key[AGE_KEY_LEN];
		memcpy(s, data, size);
		s[size] = 0;
		if (age_recipient_parse(s, key, &err) == 0) {
			age_recipient_format(key, rcp);
			BUG_ON(strcasecmp(rcp, s) != 0); /* a parsed recipient formats back to itself */
		}
		if (age_identity_parse(s, key, &err) == 0)
			age_identity_to_recipient(s, rcp, &err);
	}
	return 0;
}
