/* secrets/sops.c: SOPS files with age recipients — round trips, the MAC, files made by the real sops */
#include "common.h"
#include "secrets/sops.h"
#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>

#define FIX "tests/unit/secrets/fixtures/"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = xmalloc(1 << 20);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

struct key {
	char *id, *rcp;
	struct age_identities *ids;
};

static void key_make(struct key *k)
{
	struct gerr err;
	assert_int_equal(age_keygen(&k->id, &k->rcp, &err), 0);
	assert_int_equal(age_identities_from_string(k->id, &k->ids, &err), 0);
}

static void key_free(struct key *k)
{
	age_secret_free(k->id, 0);
	free(k->rcp);
	age_identities_free(k->ids);
}

static const char plain_yaml[] =
	"db:\n"
	"    password: \"hunter2: #1\"\n"
	"    port: 5432\n"
	"    ratio: 0.25\n"
	"    big: 1000000.0\n"
	"    tls: true\n"
	"    empty: \"\"\n"
	"    none: null\n"
	"    user_unencrypted: admin\n"
	"hosts:\n"
	"    - name: a\n"
	"      ip: 10.0.0.1\n"
	"    - b\n"
	"    - 7\n"
	"cert: |\n"
	"    -----BEGIN-----\n"
	"    abc\n"
	"\"0x10\": key order kept\n"
	"zeta: last\n";

/* plain -> SOPS -> plain gives the same text; what is encrypted and what is not */
static void roundtrip(enum sops_format fmt, const char *plain)
{
	struct key a, b;
	struct sops_node *tree = NULL;
	struct sops_file *f = NULL, *g = NULL;
	char *enc = NULL, *text = NULL, *again = NULL;
	size_t elen = 0, tlen = 0, alen = 0;
	struct gerr err;
	key_make(&a);
	key_make(&b);
	const char *rcps[] = { a.rcp, b.rcp };
	assert_int_equal(sops_tree_parse(plain, strlen(plain), fmt, &tree, &err), 0);
	assert_int_equal(sops_tree_emit(tree, fmt, &text, &tlen, &err), 0);
	assert_int_equal(sops_file_new(tree, rcps, 2, NULL, &f, &err), 0);
	assert_int_equal(sops_encrypt(f, fmt, 1796601600, &enc, &elen, &err), 0);
	/* the secret values are not in the file; the unencrypted ones are */
	assert_null(strstr(enc, "hunter2"));
	assert_null(strstr(enc, "5432"));
	assert_non_null(strstr(enc, "admin"));
	assert_non_null(strstr(enc, "type:int]"));
	assert_non_null(strstr(enc, "type:float]"));
	assert_non_null(strstr(enc, "type:bool]"));
	assert_non_null(strstr(enc, "2026-12-07T00:00:00Z"));
	assert_non_null(strstr(enc, "version"));
	assert_non_null(strstr(enc, a.rcp));
	assert_non_null(strstr(enc, b.rcp));
	/* each recipient opens it, to the same text */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sops_decrypt(enc, elen, fmt, i ? b.ids : a.ids, &g, &err), 0);
		assert_int_equal(sops_tree_emit(sops_file_tree(g), fmt, &again, &alen, &err), 0);
		assert_string_equal(again, text);
		size_t n = 0;
		const char *const *r = sops_file_recipients(g, &n);
		assert_int_equal(n, 2);
		assert_string_equal(r[0], a.rcp);
		age_secret_free(again, alen);
		sops_file_free(g);
	}
	age_secret_free(text, tlen);
	free(enc);
	sops_file_free(f);
	key_free(&a);
	key_free(&b);
}

static void test_roundtrip_yaml(void **state)
{
	(void)state;
	roundtrip(SOPS_YAML, plain_yaml);
}

static void test_roundtrip_json(void **state)
{
	(void)state;
	roundtrip(SOPS_JSON, "{\"db\": {\"password\": \"hunter2\", \"port\": 5432, \"ratio\": 0.25, \"tls\": false, "
			     "\"user_unencrypted\": \"admin\", \"none\": null, \"l\": [1, \"x\", {\"k\": true}]}, "
			     "\"a\": \"\\u00e9\\n\\\"q\\\"\"}");
}

/* the plain tree: key order, canonical numbers, the path API */
static void test_tree(void **state)
{
	struct sops_node *tree = NULL;
	struct gerr err;
	char *s = NULL;
	(void)state;
	assert_int_equal(sops_tree_parse(plain_yaml, strlen(plain_yaml), SOPS_YAML, &tree, &err), 0);
	assert_string_equal(tree->items[0]->key, "db");
	assert_string_equal(tree->items[3]->key, "0x10"); /* a key stays as written */
	assert_string_equal(tree->items[4]->key, "zeta");
	assert_int_equal(sops_tree_get_string(tree, "db.password", &s, &err), 0);
	assert_string_equal(s, "hunter2: #1");
	age_secret_free(s, 0);
	assert_int_equal(sops_tree_get_string(tree, "db.big", &s, &err), 0);
	assert_string_equal(s, "1000000"); /* Go's FormatFloat(f, 'f', -1, 64) */
	age_secret_free(s, 0);
	assert_int_equal(sops_tree_get_string(tree, "hosts.0.ip", &s, &err), 0);
	assert_string_equal(s, "10.0.0.1");
	age_secret_free(s, 0);
	assert_int_equal(sops_tree_get(tree, "hosts.2")->kind, SOPS_INT);
	assert_int_equal(sops_tree_get(tree, "db.tls")->kind, SOPS_BOOL);
	assert_int_equal(sops_tree_get(tree, "db.none")->kind, SOPS_NULL);
	assert_int_equal(sops_tree_get_string(tree, "db.pasword", &s, &err), -1);
	assert_string_equal(err.msg, "sops: db.pasword: no such key");
	assert_int_equal(sops_tree_get_string(tree, "hosts", &s, &err), -1);
	assert_null(sops_tree_get(tree, "hosts.9"));
	/* set keeps the place of an entry, appends a new one */
	assert_int_equal(sops_map_set_str(tree, "db", "flat"), 0);
	assert_string_equal(tree->items[0]->key, "db");
	assert_int_equal(sops_map_set_str(tree, "new", "v"), 0);
	assert_string_equal(tree->items[tree->n - 1]->key, "new");
	assert_int_equal(sops_map_remove(tree, "new"), 0);
	assert_int_equal(sops_map_remove(tree, "new"), -1);
	sops_node_free(tree);

	/* floats as Go writes them */
	static const char *const floats[][2] = {
		{ "1e3", "1000" }, { "0.000001", "0.000001" }, { "-2.50", "-2.5" }, { "1.5e-7", "0.00000015" },
		{ "3.0", "3" }, { "123456789.125", "123456789.125" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(floats); i++) {
		char *doc = xasprintf("v: %s\n", floats[i][0]);
		assert_int_equal(sops_tree_parse(doc, strlen(doc), SOPS_YAML, &tree, &err), 0);
		assert_int_equal(tree->items[0]->kind, SOPS_FLOAT);
		assert_string_equal(tree->items[0]->text, floats[i][1]);
		sops_node_free(tree);
		free(doc);
	}
	/* an encrypted file is not a plain tree; aliases are refused */
	assert_int_equal(sops_tree_parse("a: 1\nsops: {}\n", 14, SOPS_YAML, &tree, &err), -1);
	assert_int_equal(sops_tree_parse("a: &x 1\nb: *x\n", 14, SOPS_YAML, &tree, &err), -1);
	assert_int_equal(sops_tree_parse("[1]", 3, SOPS_JSON, &tree, &err), -1);
	assert_int_equal(sops_tree_parse("{\"a\":1,\"a\":2}", 13, SOPS_JSON, &tree, &err), -1);
}

static char *encrypt_doc(struct key *k, const char *doc, enum sops_format fmt, const struct sops_rules *rules,
			 size_t *elen)
{
	struct sops_node *tree = NULL;
	struct sops_file *f = NULL;
	struct gerr err;
	char *enc = NULL;
	const char *r = k->rcp;
	assert_int_equal(sops_tree_parse(doc, strlen(doc), fmt, &tree, &err), 0);
	assert_int_equal(sops_file_new(tree, &r, 1, rules, &f, &err), 0);
	assert_int_equal(sops_encrypt(f, fmt, 0, &enc, elen, &err), 0);
	sops_file_free(f);
	return enc;
}

/* what a user changes by hand in an encrypted file is refused */
static void test_tampered(void **state)
{
	struct key k, other;
	struct sops_file *f = NULL;
	struct gerr err;
	size_t elen = 0;
	(void)state;
	key_make(&k);
	key_make(&other);
	char *enc = encrypt_doc(&k, "a: one\nb: two\nnote_unencrypted: clear\n", SOPS_YAML, NULL, &elen);

	/* an unencrypted value changed: the MAC */
	char *t = xstrdup(enc);
	char *p = strstr(t, "clear");
	memcpy(p, "CLEAR", 5);
	assert_int_equal(sops_decrypt(t, strlen(t), SOPS_YAML, k.ids, &f, &err), -1);
	assert_string_equal(err.msg, "sops: MAC mismatch: the file was changed after it was encrypted");
	assert_null(f);
	free(t);

	/* a value removed: the MAC */
	t = xstrdup(enc);
	p = strstr(t, "b: ENC[");
	char *nl = strchr(p, '\n');
	memmove(p, nl + 1, strlen(nl + 1) + 1);
	assert_int_equal(sops_decrypt(t, strlen(t), SOPS_YAML, k.ids, &f, &err), -1);
	assert_string_equal(err.msg, "sops: MAC mismatch: the file was changed after it was encrypted");
	free(t);

	/* a value moved to another key: its additional data (the path) */
	t = xstrdup(enc);
	p = strstr(t, "a: ENC[");
	p[0] = 'c';
	assert_int_equal(sops_decrypt(t, strlen(t), SOPS_YAML, k.ids, &f, &err), -1);
	assert_string_equal(err.msg, "sops: c: value corrupted (authentication failed)");
	free(t);

	/* lastmodified changed: the MAC's additional data */
	t = xstrdup(enc);
	p = strstr(t, "lastmodified: \"");
	p[15] = p[15] == '1' ? '2' : '1';
	assert_int_equal(sops_decrypt(t, strlen(t), SOPS_YAML, k.ids, &f, &err), -1);
	assert_non_null(strstr(err.msg, "MAC mismatch"));
	free(t);

	/* a value in clear where an encrypted one is expected */
	t = xstrdup(enc);
	p = strstr(t, "a: ENC[");
	memcpy(p + 3, "xyz\n", 4);
	assert_int_equal(sops_decrypt(t, strlen(t), SOPS_YAML, k.ids, &f, &err), -1);
	free(t);

	/* the wrong identity */
	assert_int_equal(sops_decrypt(enc, elen, SOPS_YAML, other.ids, &f, &err), -1);
	assert_string_equal(err.msg, "sops: no age recipient of the file matches the identity");
	/* not a SOPS file */
	assert_int_equal(sops_decrypt("a: 1\n", 5, SOPS_YAML, k.ids, &f, &err), -1);
	assert_non_null(strstr(err.msg, "not a SOPS file"));
	free(enc);
	key_free(&k);
	key_free(&other);
}

/* decrypt, edit, encrypt again: the recipients stay, the edit is there */
static void test_reencrypt(void **state)
{
	struct key k, k2;
	struct sops_file *f = NULL, *g = NULL;
	struct gerr err;
	size_t elen = 0, e2 = 0;
	char *enc2 = NULL, *s = NULL;
	(void)state;
	key_make(&k);
	key_make(&k2);
	char *enc = encrypt_doc(&k, "{\"db\": {\"password\": \"old\"}, \"n\": 1}", SOPS_JSON, NULL, &elen);
	assert_int_equal(sops_decrypt(enc, elen, SOPS_JSON, k.ids, &f, &err), 0);
	assert_int_equal(sops_map_set_str(sops_map_get(sops_file_tree(f), "db"), "password", "new"), 0);
	const char *both[] = { k.rcp, k2.rcp };
	assert_int_equal(sops_file_set_recipients(f, both, 2, &err), 0);
	assert_int_equal(sops_encrypt(f, SOPS_JSON, 0, &enc2, &e2, &err), 0);
	assert_int_equal(sops_decrypt(enc2, e2, SOPS_JSON, k2.ids, &g, &err), 0);
	assert_int_equal(sops_tree_get_string(sops_file_tree(g), "db.password", &s, &err), 0);
	assert_string_equal(s, "new");
	age_secret_free(s, 0);
	assert_int_equal(sops_tree_get(sops_file_tree(g), "n")->kind, SOPS_INT);
	sops_file_free(g);
	/* a recipient that is not one is refused, the file is unchanged */
	const char *bad[] = { "age1notarecipient" };
	assert_int_equal(sops_file_set_recipients(f, bad, 1, &err), -1);
	free(enc2);
	sops_file_rotate_key(f);
	assert_int_equal(sops_encrypt(f, SOPS_JSON, 0, &enc2, &e2, &err), 0);
	assert_int_equal(sops_decrypt(enc2, e2, SOPS_JSON, k.ids, &g, &err), 0);
	sops_file_free(g);
	sops_file_free(f);
	free(enc);
	free(enc2);
	key_free(&k);
	key_free(&k2);
}

/* encrypted_regex: only the values under matching keys are encrypted (and the MAC still covers all) */
static void test_rules(void **state)
{
	struct key k;
	struct sops_file *f = NULL;
	struct gerr err;
	size_t elen = 0;
	struct sops_rules rules = { .encrypted_regex = "^(data|stringData)$" };
	(void)state;
	key_make(&k);
	char *enc = encrypt_doc(&k, "kind: Secret\ndata:\n  password: pw\nmeta:\n  name: x\n", SOPS_YAML, &rules,
				&elen);
	assert_non_null(strstr(enc, "kind: Secret"));
	assert_non_null(strstr(enc, "name: x"));
	assert_null(strstr(enc, "password: pw\n")); /* (a bare "pw\n" may end a base64 line by chance) */
	assert_non_null(strstr(enc, "encrypted_regex: ^(data|stringData)$"));
	assert_int_equal(sops_decrypt(enc, elen, SOPS_YAML, k.ids, &f, &err), 0);
	sops_file_free(f);
	char *t = xstrdup(enc);
	memcpy(strstr(t, "name: x"), "name: y", 7);
	assert_int_equal(sops_decrypt(t, strlen(t), SOPS_YAML, k.ids, &f, &err), -1);
	assert_non_null(strstr(err.msg, "MAC mismatch"));
	free(t);
	free(enc);
	struct sops_rules two = { .encrypted_regex = "a", .unencrypted_suffix = "_u" };
	struct sops_node *tree = sops_node_new(SOPS_MAP, NULL, NULL);
	const char *r = k.rcp;
	assert_int_equal(sops_file_new(tree, &r, 1, &two, &f, &err), -1);
	key_free(&k);
}

/* files made by the real sops (3.8.1 YAML, 3.9.2 JSON; see fixtures/README) decrypt, MAC checked */
static void test_real_sops_files(void **state)
{
	struct age_identities *ids = NULL;
	struct sops_file *f = NULL;
	struct gerr err;
	size_t len = 0;
	char *s = NULL;
	(void)state;
	assert_int_equal(age_identities_load(FIX "sops-age-key.txt", &ids, &err), 0);
	static const char *const files[] = { FIX "sops-age-secret.enc.yaml", FIX "sops-age-secret.enc.json" };
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char *text = slurp(files[i], &len);
		assert_int_equal(sops_decrypt(text, len, sops_format_from_path(files[i]), ids, &f, &err), 0);
		const struct sops_node *t = sops_file_tree(f);
		assert_int_equal(sops_tree_get_string(t, "secret", &s, &err), 0);
		assert_string_equal(s, "this is a secret");
		age_secret_free(s, 0);
		assert_string_equal(sops_tree_get(t, "int")->text, "7");
		assert_string_equal(sops_tree_get(t, "float")->text, "3.14");
		assert_string_equal(sops_tree_get(t, "boolean")->text, "true");
		assert_string_equal(sops_tree_get(t, "complex.array.2")->text, "three");
		size_t n = 0;
		sops_file_recipients(f, &n);
		assert_int_equal(n, 3);
		sops_file_free(f);
		/* the same file with its date changed by hand (the MAC's additional data) */
		char *p = strstr(text, "lastmodified");
		assert_non_null(p);
		p = strstr(p, "2024-");
		assert_non_null(p);
		p[3] = '5';
		assert_int_equal(sops_decrypt(text, strlen(text), sops_format_from_path(files[i]), ids, &f, &err), -1);
		free(text);
	}
	age_identities_free(ids);
}

static void test_parse_enc(void **state)
{
	struct sops__enc v;
	struct gerr err;
	(void)state;
	assert_int_equal(sops__parse_enc("ENC[AES256_GCM,data:Ag==,iv:7mZlIiottanvOoufMaIRtOYNmq0yr3E0HBbChYkB7sc=,"
					 "tag:FSHs1hYNQEkBAFCRYbcEUw==,type:int]", &v, &err), 0);
	assert_int_equal(v.data_len, 1);
	assert_int_equal(v.iv_len, 32);
	assert_string_equal(v.type, "int");
	free(v.data);
	assert_int_equal(sops__parse_enc("ENC[AES256_GCM,data:Ag==,iv:,tag:FSHs1hYNQEkBAFCRYbcEUw==,type:int]", &v,
					 &err), -1);
	assert_int_equal(sops__parse_enc("ENC[AES256_GCM,data:Ag==,iv:AA==,tag:AA==,type:int]", &v, &err), -1);
	assert_int_equal(sops__parse_enc("ENC[AES256_GCM,data:A!==,iv:AA==,tag:FSHs1hYNQEkBAFCRYbcEUw==,type:str]",
					 &v, &err), -1);
	assert_int_equal(sops__parse_enc("ENC[AES256_GCM,data:,iv:AA==,tag:FSHs1hYNQEkBAFCRYbcEUw==,type:]", &v,
					 &err), -1);
	assert_int_equal(sops__parse_enc("plain", &v, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_yaml), cmocka_unit_test(test_roundtrip_json),
		cmocka_unit_test(test_tree),           cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_reencrypt),      cmocka_unit_test(test_rules),
		cmocka_unit_test(test_real_sops_files), cmocka_unit_test(test_parse_enc),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
