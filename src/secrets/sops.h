/*
 * sops.h — SOPS files (github.com/getsops/sops) with age recipients, YAML
 * or JSON: read (checking the MAC), write, re-encrypt after an edit.
 *
 * A SOPS file is the document with each value replaced by
 *   ENC[AES256_GCM,data:B64,iv:B64,tag:B64,type:str|int|float|bool]
 * (AES-256-GCM, 32-byte IV, the additional data the path of map keys
 * joined with ':' plus ':'; list items keep their list's path), and a
 * top-level `sops:` map: age: [{recipient, enc}] (enc: the 32-byte data
 * key in an armored age file), lastmodified (RFC 3339, UTC), mac (the
 * upper-case hex SHA-512 over every value's text in document order,
 * encrypted with the data key and lastmodified as additional data),
 * unencrypted_suffix / encrypted_suffix / encrypted_regex /
 * unencrypted_regex, version.
 *
 * Not kept: YAML comments (dropped on read, none written), anchors,
 * multi-document YAML, key managers other than age (kms, pgp, vault… are
 * refused on read when they are the only keys, ignored beside age).
 *
 * Errors: one line in err, "sops: " first ("sops: MAC mismatch: the file
 * was changed after it was encrypted", "sops: no age recipient of the
 * file matches the identity", "sops: db.password: value corrupted").
 *
 * Layer: secrets (util only).
 */
#ifndef GANTRY_SECRETS_SOPS_H
#define GANTRY_SECRETS_SOPS_H
#include "common.h"
#include "secrets/age.h"

#define SOPS_VERSION "3.8.1"        /* the `version` gantry writes */
#define SOPS_MAX_INPUT (16u << 20)  /* a larger file is refused (16 MiB) */
#define SOPS_MAX_DEPTH 64           /* deeper nesting is refused */

enum sops_format { SOPS_YAML, SOPS_JSON };

/* SOPS_JSON for a path ending in ".json", else SOPS_YAML */
enum sops_format sops_format_from_path(const char *path);

/* ---- the plain tree: maps (key order kept), lists, scalars ---- */

enum sops_kind { SOPS_MAP, SOPS_LIST, SOPS_STR, SOPS_INT, SOPS_FLOAT, SOPS_BOOL, SOPS_NULL };

struct sops_node {
	enum sops_kind kind;
	char *key;                /* in a map: the entry's key (owned); NULL in a list and at the root */
	char *text;               /* a scalar's text as written ("42", "1.5", "true", the string); owned;
				     NULL for a map, a list and null. Zeroed when freed. */
	struct sops_node **items; /* a map's entries or a list's items, in order (owned) */
	size_t n, cap;
};

/* a new node (key and text copied, either may be NULL); NULL when out of memory */
struct sops_node *sops_node_new(enum sops_kind kind, const char *key, const char *text);
/* appends child (consumed, also on failure) to a map or a list */
int sops_node_append(struct sops_node *parent, struct sops_node *child);
/* the entry of map named key (borrowed), NULL if none */
struct sops_node *sops_map_get(const struct sops_node *map, const char *key);
/* sets key to the string value in map: replaces the entry (keeping its place) or appends it */
int sops_map_set_str(struct sops_node *map, const char *key, const char *value);
/* removes the entry key from map: 0, or -1 if there was none */
int sops_map_remove(struct sops_node *map, const char *key);
/* frees node and everything under it, zeroing scalar texts; NULL is fine */
void sops_node_free(struct sops_node *node);

/*
 * The node at path (borrowed), NULL if none: map keys separated by '.',
 * a decimal number indexes a list ("db.password", "hosts.0.name").
 */
const struct sops_node *sops_tree_get(const struct sops_node *root, const char *path);
/*
 * The scalar at path as a string (owned by the caller: age_secret_free
 * it): -1 with err if it is missing ("sops: db.pasword: no such key") or
 * not a scalar.
 */
int sops_tree_get_string(const struct sops_node *root, const char *path, char **out, struct gerr *err);

/*
 * A plain (not encrypted) YAML or JSON document (text, len: borrowed)
 * into a tree whose root is a map; *out owned by the caller. A document
 * that has a top-level `sops` key is refused (it is encrypted already).
 */
int sops_tree_parse(const char *text, size_t len, enum sops_format fmt, struct sops_node **out, struct gerr *err);
/* the tree as plain YAML or JSON; *out owned by the caller (age_secret_free), NUL-terminated */
int sops_tree_emit(const struct sops_node *root, enum sops_format fmt, char **out, size_t *out_len,
		   struct gerr *err);

/* ---- encrypted files ---- */

/*
 * Which values are encrypted (SOPS's creation rules). All NULL: the
 * default, every value except under keys ending in "_unencrypted". At most
 * one of the four may be set.
 */
struct sops_rules {
	const char *unencrypted_suffix;
	const char *encrypted_suffix;
	const char *encrypted_regex;   /* POSIX extended regex on each key */
	const char *unencrypted_regex;
};

/*
 * A decrypted SOPS file: its plain tree, its data key, recipients and
 * rules. Opaque; the data key is zeroed by sops_file_free.
 */
struct sops_file;

/*
 * Decrypts text (len bytes, borrowed) with any of ids: the data key from
 * the first age stanza an identity opens, every value, and the MAC, which
 * must match (else nothing is returned). *out owned by the caller.
 */
int sops_decrypt(const char *text, size_t len, enum sops_format fmt, const struct age_identities *ids,
		 struct sops_file **out, struct gerr *err);

/*
 * A new file for tree (a map; consumed, also on failure) to the n age
 * recipients ("age1…", copied; n >= 1), a new random data key, rules
 * (copied; NULL: the default). *out owned by the caller.
 */
int sops_file_new(struct sops_node *tree, const char *const *recipients, size_t n, const struct sops_rules *rules,
		  struct sops_file **out, struct gerr *err);

/* the plain tree (borrowed: edit it in place) */
struct sops_node *sops_file_tree(struct sops_file *f);
/* replaces the tree (consumed) after an edit; the data key and recipients stay */
void sops_file_set_tree(struct sops_file *f, struct sops_node *tree);
/* the recipients (borrowed strings, count in *n) */
const char *const *sops_file_recipients(const struct sops_file *f, size_t *n);
/* replaces the recipients (copied; n >= 1); the data key stays */
int sops_file_set_recipients(struct sops_file *f, const char *const *recipients, size_t n, struct gerr *err);
/* a new random data key (rotation); every value is encrypted anew by sops_encrypt anyway */
void sops_file_rotate_key(struct sops_file *f);

/*
 * The SOPS file for f: every value encrypted with a new IV, the data key
 * to each recipient, lastmodified = now_unix (seconds; 0: the current
 * time), the MAC. *out owned by the caller (free()), NUL-terminated.
 */
int sops_encrypt(const struct sops_file *f, enum sops_format fmt, int64_t now_unix, char **out, size_t *out_len,
		 struct gerr *err);

void sops_file_free(struct sops_file *f);

/* ---- lower level, exported for the tests and the fuzz harness ---- */

struct sops__enc {
	uint8_t *data;            /* owned */
	size_t data_len;
	uint8_t iv[64];
	size_t iv_len;
	uint8_t tag[16];
	char type[16];            /* "str", "int", "float", "bool", "bytes", "comment" */
};
/* parses "ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]"; release data with free() */
int sops__parse_enc(const char *s, struct sops__enc *out, struct gerr *err);

#endif
