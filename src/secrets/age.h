/*
 * age.h — the age v1 file format (https://age-encryption.org/v1, C2SP
 * age.md) with X25519 recipients, over libsodium: files gantry writes
 * decrypt with the `age` CLI and files `age` writes decrypt here.
 *
 *   recipient  "age1…"                 bech32 of the X25519 public key
 *   identity   "AGE-SECRET-KEY-1…"     bech32 (upper case) of the private key
 *   file       header (stanzas, MAC) + 16-byte nonce + 64 KiB ChaCha20-Poly1305
 *              chunks; binary, or armored as "-----BEGIN AGE ENCRYPTED FILE-----"
 *
 * Every function returns 0 or a negative number with one lowercase line in
 * err ("age: header MAC mismatch", "age: payload corrupted at chunk 3",
 * "age: no identity matches any recipient"). Secrets are zeroed after use:
 * free a decrypted buffer or an identity string with age_secret_free.
 *
 * Layer: secrets (util only): no daemon, store or CLI type here.
 */
#ifndef GANTRY_SECRETS_AGE_H
#define GANTRY_SECRETS_AGE_H
#include "common.h"

#define AGE_KEY_LEN 32          /* an X25519 scalar or point */
#define AGE_RECIPIENT_MAX 128   /* a recipient string is shorter ("age1" + 58) */
#define AGE_IDENTITY_MAX 128    /* an identity string is shorter ("AGE-SECRET-KEY-1" + 58) */
#define AGE_CHUNK_SIZE 65536    /* the payload's plaintext chunk */
#define AGE_MAX_INPUT (1u << 30) /* age_decrypt refuses larger inputs (1 GiB) */

/* ---- keys ---- */

/*
 * A new X25519 key pair: *identity ("AGE-SECRET-KEY-1…", owned by the
 * caller, free with age_secret_free) and *recipient ("age1…", owned by
 * the caller, free()). Either pointer may be NULL when not wanted.
 */
int age_keygen(char **identity, char **recipient, struct gerr *err);

/* "age1…" -> the public key; -1 naming the problem (bad checksum, wrong prefix, length) */
int age_recipient_parse(const char *s, uint8_t pub[AGE_KEY_LEN], struct gerr *err);
/* the public key -> "age1…" into out (caller's storage, NUL-terminated) */
void age_recipient_format(const uint8_t pub[AGE_KEY_LEN], char out[AGE_RECIPIENT_MAX]);
/* "AGE-SECRET-KEY-1…" -> the private key (caller zeroes it: sodium_memzero) */
int age_identity_parse(const char *s, uint8_t sk[AGE_KEY_LEN], struct gerr *err);
/* the private key -> "AGE-SECRET-KEY-1…" into out (caller's storage; zero it after use) */
void age_identity_format(const uint8_t sk[AGE_KEY_LEN], char out[AGE_IDENTITY_MAX]);
/* the recipient of an identity string into out (caller's storage) */
int age_identity_to_recipient(const char *identity, char out[AGE_RECIPIENT_MAX], struct gerr *err);

/*
 * A set of identities, as in an identity file: one "AGE-SECRET-KEY-1…" a
 * line, blank lines and lines starting with '#' ignored (age-keygen's
 * output is such a file). Opaque; the keys are zeroed by age_identities_free.
 */
struct age_identities;
/* parses text (len bytes, borrowed); *out owned by the caller */
int age_identities_parse(const char *text, size_t len, struct age_identities **out, struct gerr *err);
/* reads and parses the file at path; errors name the path and line */
int age_identities_load(const char *path, struct age_identities **out, struct gerr *err);
/* one identity from its string */
int age_identities_from_string(const char *identity, struct age_identities **out, struct gerr *err);
size_t age_identities_count(const struct age_identities *ids);
/* the recipient of the i-th identity into out (caller's storage) */
void age_identities_recipient(const struct age_identities *ids, size_t i, char out[AGE_RECIPIENT_MAX]);
void age_identities_free(struct age_identities *ids);

/* ---- files ---- */

/*
 * Encrypts plain (len bytes, borrowed) to the n recipients ("age1…"
 * strings, borrowed; n >= 1). armor: the PEM-like ASCII form. *out is
 * owned by the caller (free()), *out_len its length; an armored *out is
 * also NUL-terminated.
 */
int age_encrypt(const void *plain, size_t len, const char *const *recipients, size_t n, bool armor,
		uint8_t **out, size_t *out_len, struct gerr *err);

/*
 * Decrypts in (len bytes, borrowed; binary or armored, detected) with any
 * of ids. *out (NUL-terminated beyond *out_len, for text) is owned by the
 * caller: free it with age_secret_free(*out, *out_len). Nothing is put in
 * *out unless the whole file authenticated.
 */
int age_decrypt(const void *in, size_t len, const struct age_identities *ids, uint8_t **out, size_t *out_len,
		struct gerr *err);

/* true if in starts like an age file (binary header line or armor) */
bool age_is_age(const void *in, size_t len);

/* zeroes len bytes at p (if len is 0 and p a string, strlen(p)) and frees p; NULL is fine */
void age_secret_free(void *p, size_t len);

/* ---- lower level, exported for the tests and the fuzz harness ---- */

/*
 * bech32 (BIP 173, checksum constant 1, no 90-character limit as in age):
 * hrp + '1' + data. age__bech32_encode writes the lower-case string (upper
 * when upper) into out (cap bytes with the NUL); -1 if it does not fit.
 * age__bech32_decode accepts one case only, gives the hrp (lower case)
 * into hrp (hrp_cap) and the 8-bit data into data (data_cap): returns its
 * length or -1 with err.
 */
int age__bech32_encode(const char *hrp, const uint8_t *data, size_t len, bool upper, char *out, size_t cap);
int age__bech32_decode(const char *s, char *hrp, size_t hrp_cap, uint8_t *data, size_t data_cap,
		       struct gerr *err);
/* HKDF-SHA-256 (RFC 5869) over libsodium's HMAC-SHA-256; out_len <= 255 * 32 */
int age__hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
		     const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);
/*
 * Parses the header of in (binary or armored) without any key: the number
 * of stanzas and their types, the MAC's presence. 0 when well formed. For
 * the fuzz harness and `gantry secret` diagnostics.
 */
int age__parse_header(const void *in, size_t len, size_t *n_stanzas, struct gerr *err);

#endif
