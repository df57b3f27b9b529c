/*
 * fuzz_sops.c — the SOPS surface: the bytes as a YAML and a JSON document
 * (plain: parsed, written and parsed again to the same text; encrypted:
 * its metadata and values read with a fixed identity), and as an ENC[]
 * value. Must never crash, leak or hang.
 */
#include "common.h"
#include "secrets/sops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct age_identities *ids;

static void roundtrip(const char *text, size_t len, enum sops_format fmt)
{
	struct sops_node *t = NULL, *t2 = NULL;
	struct sops_file *f = NULL;
	struct gerr err = { "" };
	char *a = NULL, *b = NULL;
	size_t al = 0, bl = 0;

	if (sops_tree_parse(text, len, fmt, &t, &err) == 0) {
		/* what gantry writes, it reads back to the same tree */
		BUG_ON(sops_tree_emit(t, fmt, &a, &al, &err) < 0);
		if (sops_tree_parse(a, al, fmt, &t2, &err) < 0) {
			fprintf(stderr, "%s\n%.*s\n", err.msg, (int)al, a);
			BUG_ON(true);
		}
		BUG_ON(sops_tree_emit(t2, fmt, &b, &bl, &err) < 0);
		BUG_ON(al != bl || memcmp(a, b, al) != 0);
		free(a);
		free(b);
		sops_node_free(t);
		sops_node_free(t2);
	} else {
		BUG_ON(!err.msg[0] || t);
	}
	err.msg[0] = 0;
	if (sops_decrypt(text, len, fmt, ids, &f, &err) == 0)
		sops_file_free(f);
	else
		BUG_ON(!err.msg[0] || f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gerr err;
	struct sops__enc v;
	char *s;

	if (!ids && age_identities_from_string(
			    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX", &ids, &err) < 0)
		BUG_ON(true);
	s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = 0;
	roundtrip(s, size, SOPS_YAML);
	roundtrip(s, size, SOPS_JSON);
	if (sops__parse_enc(s, &v, &err) == 0)
		free(v.data);
	free(s);
	return 0;
}
