/*
 * age.c — age v1 with X25519 recipients (C2SP age.md), over libsodium.
 *
 * A file is decrypted whole in memory (secrets are small; AGE_MAX_INPUT
 * bounds it), so nothing of a payload is released before every chunk and
 * the last-chunk flag authenticated. Base64 in the header is the canonical
 * unpadded form: a decoded value is encoded again and compared, which
 * rejects padding and non-zero trailing bits as the spec requires.
 */
#include "common.h"

#include <ctype.h>
#include <sodium.h>

#include "secrets/age.h"

#define AGE_VERSION_LINE "age-encryption.org/v1\n"
#define AGE_X25519_LABEL "age-encryption.org/v1/X25519"
#define AGE_FILE_KEY_LEN 16
#define AGE_NONCE_LEN 16
#define AGE_TAG_LEN crypto_aead_chacha20poly1305_ietf_ABYTES
#define AGE_ENC_CHUNK (AGE_CHUNK_SIZE + AGE_TAG_LEN)
#define AGE_MAX_STANZAS 1024
#define ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define ARMOR_END "-----END AGE ENCRYPTED FILE-----"
#define ARMOR_COLS 64

static int age_sodium_init(struct gerr *err)
{
	if (sodium_init() < 0)
		return gerr_set(err, "age: libsodium could not be initialised");
	return 0;
}

void age_secret_free(void *p, size_t len)
{
	if (!p)
		return;
	sodium_memzero(p, len ? len : strlen(p));
	free(p);
}

/* ---- bech32 (BIP 173) ---- */

static const char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t bech32_polymod(const uint8_t *v, size_t n)
{
	static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3 };
	uint32_t chk = 1;
	for (size_t i = 0; i < n; i++) {
		uint32_t top = chk >> 25;
		chk = ((chk & 0x1ffffff) << 5) ^ v[i];
		for (int j = 0; j < 5; j++)
			if ((top >> j) & 1)
				chk ^= gen[j];
	}
	return chk;
}

/* the hrp expanded (high bits, 0, low bits) followed by the 5-bit values: into out, its length */
static size_t bech32_expand(const char *hrp, size_t hlen, const uint8_t *d5, size_t n5, uint8_t *out)
{
	size_t k = 0;
	for (size_t i = 0; i < hlen; i++)
		out[k++] = (uint8_t)(tolower((unsigned char)hrp[i]) >> 5);
	out[k++] = 0;
	for (size_t i = 0; i < hlen; i++)
		out[k++] = (uint8_t)(tolower((unsigned char)hrp[i]) & 31);
	memcpy(out + k, d5, n5);
	return k + n5;
}

/* regroups bits: 8 -> 5 with padding (pad), 5 -> 8 refusing leftovers (!pad); -1 on bad padding */
static int convert_bits(const uint8_t *in, size_t n, int from, int to, bool pad, uint8_t *out, size_t cap,
			size_t *out_len)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t k = 0;
	uint32_t maxv = (1u << to) - 1;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << from) | in[i];
		bits += from;
		while (bits >= to) {
			bits -= to;
			if (k >= cap)
				return -1;
			out[k++] = (uint8_t)((acc >> bits) & maxv);
		}
	}
	if (pad) {
		if (bits) {
			if (k >= cap)
				return -1;
			out[k++] = (uint8_t)((acc << (to - bits)) & maxv);
		}
	} else if (bits >= from || ((acc << (to - bits)) & maxv)) {
		return -1;
	}
	*out_len = k;
	return 0;
}

int age__bech32_encode(const char *hrp, const uint8_t *data, size_t len, bool upper, char *out, size_t cap)
{
	size_t hlen = strlen(hrp), n5 = 0;
	if (len > 1024 || hlen == 0 || hlen > 83)
		return -1;
	uint8_t d5[1700 + 6];
	if (convert_bits(data, len, 8, 5, true, d5, sizeof(d5) - 6, &n5) < 0)
		return -1;
	uint8_t ex[2 * 83 + 1 + sizeof(d5)];
	memset(d5 + n5, 0, 6);
	size_t ne = bech32_expand(hrp, hlen, d5, n5 + 6, ex);
	uint32_t pm = bech32_polymod(ex, ne) ^ 1;
	for (int i = 0; i < 6; i++)
		d5[n5 + i] = (uint8_t)((pm >> (5 * (5 - i))) & 31);
	if (hlen + 1 + n5 + 6 + 1 > cap)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < hlen; i++)
		out[k++] = upper ? (char)toupper((unsigned char)hrp[i]) : (char)tolower((unsigned char)hrp[i]);
	out[k++] = '1';
	for (size_t i = 0; i < n5 + 6; i++) {
		char c = bech32_charset[d5[i]];
		out[k++] = upper ? (char)toupper((unsigned char)c) : c;
	}
	out[k] = '\0';
	return 0;
}

int age__bech32_decode(const char *s, char *hrp, size_t hrp_cap, uint8_t *data, size_t data_cap,
		       struct gerr *err)
{
	size_t n = strlen(s);
	bool lower = false, upper = false;
	if (n < 8 || n > 2048)
		return gerr_set(err, "bech32: wrong length");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126)
			return gerr_set(err, "bech32: invalid character");
		if (islower(c))
			lower = true;
		if (isupper(c))
			upper = true;
	}
	if (lower && upper)
		return gerr_set(err, "bech32: mixed case");
	const char *sep = strrchr(s, '1');
	if (!sep || sep == s || (size_t)(s + n - sep - 1) < 6)
		return gerr_set(err, "bech32: no separator or no checksum");
	size_t hlen = (size_t)(sep - s), n5 = n - hlen - 1;
	if (hlen + 1 > hrp_cap || hlen > 83)
		return gerr_set(err, "bech32: prefix too long");
	uint8_t d5[2048];
	for (size_t i = 0; i < n5; i++) {
		const char *p = strchr(bech32_charset, tolower((unsigned char)sep[1 + i]));
		if (!p || !sep[1 + i])
			return gerr_set(err, "bech32: invalid character");
		d5[i] = (uint8_t)(p - bech32_charset);
	}
	uint8_t ex[2 * 83 + 1 + 2048];
	size_t ne = bech32_expand(s, hlen, d5, n5, ex);
	if (bech32_polymod(ex, ne) != 1)
		return gerr_set(err, "bech32: invalid checksum");
	for (size_t i = 0; i < hlen; i++)
		hrp[i] = (char)tolower((unsigned char)s[i]);
	hrp[hlen] = '\0';
	size_t len = 0;
	if (convert_bits(d5, n5 - 6, 5, 8, false, data, data_cap, &len) < 0)
		return gerr_set(err, "bech32: invalid data or padding");
	return (int)len;
}

/* ---- HKDF-SHA-256 (RFC 5869) ---- */

int age__hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
		     const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
	uint8_t prk[crypto_auth_hmacsha256_BYTES], t[crypto_auth_hmacsha256_BYTES];
	static const uint8_t zeros[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	size_t done = 0, tlen = 0;
	if (out_len > 255 * sizeof(t))
		return -1;
	if (!salt_len) {
		salt = zeros;
		salt_len = sizeof(zeros);
	}
	crypto_auth_hmacsha256_init(&st, salt, salt_len);
	crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
	crypto_auth_hmacsha256_final(&st, prk);
	for (uint8_t i = 1; done < out_len; i++) {
		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		crypto_auth_hmacsha256_update(&st, t, tlen);
		crypto_auth_hmacsha256_update(&st, info, info_len);
		crypto_auth_hmacsha256_update(&st, &i, 1);
		crypto_auth_hmacsha256_final(&st, t);
		tlen = sizeof(t);
		size_t k = MIN(out_len - done, sizeof(t));
		memcpy(out + done, t, k);
		done += k;
	}
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
	sodium_memzero(&st, sizeof(st));
	return 0;
}

/* ---- base64 ---- */

/* canonical unpadded base64 of exactly want bytes (want 0: any length <= cap); the length or -1 */
static int b64_raw_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t want)
{
	size_t len = 0;
	if (n > 4 * cap / 3 + 4)
		return -1;
	if (n == 0)
		return want ? -1 : 0;
	if (sodium_base642bin(out, cap, s, n, NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
		return -1;
	if (want && len != want)
		return -1;
	/* canonical: encoding it again gives the same text (no trailing bits, no padding) */
	char *again = xmalloc(sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL_NO_PADDING));
	sodium_bin2base64(again, sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL_NO_PADDING), out, len,
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	bool same = strlen(again) == n && memcmp(again, s, n) == 0;
	free(again);
	return same ? (int)len : -1;
}

static char *b64_encode(const uint8_t *p, size_t n, int variant)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, variant);
	char *s = xmalloc(cap);
	sodium_bin2base64(s, cap, p, n, variant);
	return s;
}

/* ---- keys ---- */

int age_recipient_parse(const char *s, uint8_t pub[AGE_KEY_LEN], struct gerr *err)
{
	char hrp[32];
	uint8_t data[64];
	struct gerr e;
	if (strncasecmp(s, "age1", 4) != 0)
		return gerr_set(err, "age: '%.80s' is not an age recipient (age1…)", s);
	int n = age__bech32_decode(s, hrp, sizeof(hrp), data, sizeof(data), &e);
	if (n < 0)
		return gerr_set(err, "age: recipient '%.80s': %s", s, e.msg);
	if (strcmp(hrp, "age") != 0 || n != AGE_KEY_LEN)
		return gerr_set(err, "age: recipient '%.80s': not an X25519 recipient", s);
	memcpy(pub, data, AGE_KEY_LEN);
	return 0;
}

void age_recipient_format(const uint8_t pub[AGE_KEY_LEN], char out[AGE_RECIPIENT_MAX])
{
	int rc = age__bech32_encode("age", pub, AGE_KEY_LEN, false, out, AGE_RECIPIENT_MAX);
	BUG_ON(rc != 0);
}

int age_identity_parse(const char *s, uint8_t sk[AGE_KEY_LEN], struct gerr *err)
{
	char hrp[32];
	uint8_t data[64];
	struct gerr e;
	/* never the identity in a message: it is the secret */
	if (strncasecmp(s, "AGE-SECRET-KEY-1", 16) != 0)
		return gerr_set(err, "age: not an age identity (AGE-SECRET-KEY-1…)");
	int n = age__bech32_decode(s, hrp, sizeof(hrp), data, sizeof(data), &e);
	if (n < 0) {
		sodium_memzero(data, sizeof(data));
		return gerr_set(err, "age: identity: %s", e.msg);
	}
	if (strcmp(hrp, "age-secret-key-") != 0 || n != AGE_KEY_LEN) {
		sodium_memzero(data, sizeof(data));
		return gerr_set(err, "age: identity: not an X25519 identity");
	}
	memcpy(sk, data, AGE_KEY_LEN);
	sodium_memzero(data, sizeof(data));
	return 0;
}

void age_identity_format(const uint8_t sk[AGE_KEY_LEN], char out[AGE_IDENTITY_MAX])
{
	int rc = age__bech32_encode("AGE-SECRET-KEY-", sk, AGE_KEY_LEN, true, out, AGE_IDENTITY_MAX);
	BUG_ON(rc != 0);
}

int age_identity_to_recipient(const char *identity, char out[AGE_RECIPIENT_MAX], struct gerr *err)
{
	uint8_t sk[AGE_KEY_LEN], pub[AGE_KEY_LEN];
	if (age_sodium_init(err) < 0 || age_identity_parse(identity, sk, err) < 0)
		return -1;
	crypto_scalarmult_base(pub, sk);
	sodium_memzero(sk, sizeof(sk));
	age_recipient_format(pub, out);
	return 0;
}

int age_keygen(char **identity, char **recipient, struct gerr *err)
{
	uint8_t sk[AGE_KEY_LEN], pub[AGE_KEY_LEN];
	char id[AGE_IDENTITY_MAX], rcp[AGE_RECIPIENT_MAX];
	if (age_sodium_init(err) < 0)
		return -1;
	randombytes_buf(sk, sizeof(sk));
	crypto_scalarmult_base(pub, sk);
	age_identity_format(sk, id);
	age_recipient_format(pub, rcp);
	if (identity)
		*identity = xstrdup(id);
	if (recipient)
		*recipient = xstrdup(rcp);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(id, sizeof(id));
	return 0;
}

struct age_identities {
	size_t n, cap;
	struct age_key {
		uint8_t sk[AGE_KEY_LEN], pub[AGE_KEY_LEN];
	} *keys; /* sodium_malloc'd: guarded, zeroed when freed */
};

static struct age_identities *ids_new(size_t cap)
{
	struct age_identities *ids = xcalloc(1, sizeof(*ids));
	ids->cap = cap ? cap : 1;
	ids->keys = sodium_allocarray(ids->cap, sizeof(*ids->keys));
	if (!ids->keys) {
		free(ids);
		return NULL;
	}
	return ids;
}

void age_identities_free(struct age_identities *ids)
{
	if (!ids)
		return;
	sodium_free(ids->keys); /* zeroes before freeing */
	free(ids);
}

int age_identities_parse(const char *text, size_t len, struct age_identities **out, struct gerr *err)
{
	struct age_identities *ids = NULL;
	size_t lines = 1, lineno = 0;
	char buf[AGE_IDENTITY_MAX + 8];
	*out = NULL;
	if (age_sodium_init(err) < 0)
		return -1;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	if (lines > 100000)
		return gerr_set(err, "age: identity file: too many lines");
	if (!(ids = ids_new(lines)))
		return gerr_set(err, "age: out of secure memory");
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && text[j] != '\n')
			j++;
		size_t a = i, b = j;
		lineno++;
		i = j + 1;
		while (a < b && isspace((unsigned char)text[a]))
			a++;
		while (b > a && isspace((unsigned char)text[b - 1]))
			b--;
		if (a == b || text[a] == '#')
			continue;
		if (b - a >= sizeof(buf)) {
			age_identities_free(ids);
			return gerr_set(err, "age: identity file: line %zu: not an age identity", lineno);
		}
		memcpy(buf, text + a, b - a);
		buf[b - a] = '\0';
		struct age_key *k = &ids->keys[ids->n];
		struct gerr e;
		if (age_identity_parse(buf, k->sk, &e) < 0) {
			sodium_memzero(buf, sizeof(buf));
			age_identities_free(ids);
			return gerr_set(err, "age: identity file: line %zu: %s", lineno, e.msg + strlen("age: "));
		}
		crypto_scalarmult_base(k->pub, k->sk);
		ids->n++;
	}
	sodium_memzero(buf, sizeof(buf));
	if (!ids->n) {
		age_identities_free(ids);
		return gerr_set(err, "age: identity file: no identity in it");
	}
	*out = ids;
	return 0;
}

int age_identities_load(const char *path, struct age_identities **out, struct gerr *err)
{
	FILE *f;
	char *text = NULL;
	size_t len = 0, cap = 0;
	int rc = -1;
	*out = NULL;
	if (age_sodium_init(err) < 0)
		return -1;
	f = fopen(path, "rb");
	if (!f)
		return gerr_set(err, "age: %s: %s", path, strerror(errno));
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			if (ncap > (1u << 24)) {
				gerr_set(err, "age: %s: too large for an identity file", path);
				goto out;
			}
			char *t = sodium_malloc(ncap);
			if (!t) {
				gerr_set(err, "age: out of secure memory");
				goto out;
			}
			if (text) {
				memcpy(t, text, len);
				sodium_free(text);
			}
			text = t;
			cap = ncap;
		}
		size_t k = fread(text + len, 1, cap - len, f);
		len += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		gerr_set(err, "age: %s: read error", path);
		goto out;
	}
	rc = age_identities_parse(text, len, out, err);
	if (rc < 0 && err) {
		/* "age: identity file: line 3: …" -> "age: PATH: line 3: …" */
		const char *p = strstr(err->msg, "identity file: ");
		if (p) {
			char tail[sizeof(err->msg)];
			strlcpy_g(tail, p + strlen("identity file: "), sizeof(tail));
			gerr_set(err, "age: %s: %s", path, tail);
		}
	}
out:
	if (text)
		sodium_free(text);
	fclose(f);
	return rc;
}

int age_identities_from_string(const char *identity, struct age_identities **out, struct gerr *err)
{
	return age_identities_parse(identity, strlen(identity), out, err);
}

size_t age_identities_count(const struct age_identities *ids)
{
	return ids ? ids->n : 0;
}

void age_identities_recipient(const struct age_identities *ids, size_t i, char out[AGE_RECIPIENT_MAX])
{
	BUG_ON(i >= ids->n);
	age_recipient_format(ids->keys[i].pub, out);
}

/* ---- the header ---- */

struct stanza {
	char *args[8];
	size_t nargs;
	uint8_t *body;
	size_t body_len;
};

struct header {
	struct stanza *st;
	size_t n;
	size_t mac_at;      /* offset of "---" (the MAC covers the bytes before it, and "---") */
	uint8_t mac[32];
	size_t payload_at;  /* the first byte after the header */
};

static void header_release(struct header *h)
{
	for (size_t i = 0; i < h->n; i++) {
		for (size_t j = 0; j < h->st[i].nargs; j++)
			free(h->st[i].args[j]);
		free(h->st[i].body);
	}
	free(h->st);
	memset(h, 0, sizeof(*h));
}

/* the line at p[at..) up to '\n' (excluded): its length, or -1 when there is no '\n' */
static ssize_t line_at(const uint8_t *p, size_t len, size_t at)
{
	const uint8_t *nl = memchr(p + at, '\n', len - at);
	return nl ? nl - (p + at) : -1;
}

static bool is_b64char(uint8_t c)
{
	return isalnum(c) || c == '+' || c == '/';
}

static int parse_header(const uint8_t *p, size_t len, struct header *h, struct gerr *err)
{
	size_t at = strlen(AGE_VERSION_LINE);
	memset(h, 0, sizeof(*h));
	if (len < at || memcmp(p, AGE_VERSION_LINE, at) != 0) {
		if (len >= 19 && memcmp(p, "age-encryption.org/", 19) == 0)
			return gerr_set(err, "age: unsupported version (only age-encryption.org/v1)");
		return gerr_set(err, "age: not an age file (no age-encryption.org/v1 header)");
	}
	for (;;) {
		ssize_t ll = line_at(p, len, at);
		if (ll < 0)
			goto truncated;
		if (ll >= 3 && memcmp(p + at, "---", 3) == 0) {
			if (!h->n)
				return gerr_set(err, "age: header has no recipient stanza");
			if (ll != 3 + 1 + 43 || p[at + 3] != ' ' ||
			    b64_raw_decode((const char *)p + at + 4, 43, h->mac, sizeof(h->mac), 32) != 32)
				return gerr_set(err, "age: malformed header MAC line");
			h->mac_at = at;
			h->payload_at = at + (size_t)ll + 1;
			return 0;
		}
		if (ll < 3 || memcmp(p + at, "-> ", 3) != 0)
			return gerr_set(err, "age: malformed header: line %zu is neither a stanza nor the MAC",
					h->n + 2);
		if (h->n >= AGE_MAX_STANZAS)
			return gerr_set(err, "age: too many recipient stanzas");
		h->st = xrealloc(h->st, (h->n + 1) * sizeof(*h->st));
		struct stanza *s = &h->st[h->n++];
		memset(s, 0, sizeof(*s));
		/* arguments: one or more, single spaces, printable ASCII */
		size_t a = at + 3, end = at + (size_t)ll;
		while (a <= end) {
			size_t b = a;
			while (b < end && p[b] != ' ')
				b++;
			if (b == a)
				return gerr_set(err, "age: malformed stanza (empty argument)");
			for (size_t k = a; k < b; k++)
				if (p[k] < 33 || p[k] > 126)
					return gerr_set(err, "age: malformed stanza (invalid character in an argument)");
			if (s->nargs >= ARRAY_SIZE(s->args))
				return gerr_set(err, "age: malformed stanza (too many arguments)");
			s->args[s->nargs++] = xstrndup((const char *)p + a, b - a);
			a = b + 1;
		}
		at = end + 1;
		/* the body: 64-column lines, ended by a shorter one (maybe empty) */
		size_t b64len = 0;
		char *b64 = NULL;
		for (;;) {
			ll = line_at(p, len, at);
			if (ll < 0) {
				free(b64);
				goto truncated;
			}
			if (ll > 64) {
				free(b64);
				return gerr_set(err, "age: malformed stanza body (line longer than 64 columns)");
			}
			for (ssize_t k = 0; k < ll; k++)
				if (!is_b64char(p[at + (size_t)k])) {
					free(b64);
					return gerr_set(err, "age: malformed stanza body (not base64)");
				}
			b64 = xrealloc(b64, b64len + (size_t)ll + 1);
			memcpy(b64 + b64len, p + at, (size_t)ll);
			b64len += (size_t)ll;
			at += (size_t)ll + 1;
			if (ll < 64)
				break;
			if (b64len > (1u << 20)) {
				free(b64);
				return gerr_set(err, "age: stanza body too large");
			}
		}
		s->body = xmalloc(b64len + 1);
		int n = b64_raw_decode(b64, b64len, s->body, b64len + 1, 0);
		free(b64);
		if (n < 0)
			return gerr_set(err, "age: malformed stanza body (not canonical base64)");
		s->body_len = (size_t)n;
	}
truncated:
	return gerr_set(err, "age: header truncated");
}

/* ---- armor ---- */

static bool is_armored(const uint8_t *p, size_t len)
{
	size_t i = 0;
	while (i < len && isspace(p[i]))
		i++;
	return len - i >= strlen(ARMOR_BEGIN) && memcmp(p + i, ARMOR_BEGIN, strlen(ARMOR_BEGIN)) == 0;
}

/* the binary inside an armored file (strict: 64-column lines, canonical padded base64); *out owned */
static int dearmor(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len, struct gerr *err)
{
	size_t i = 0, e = len;
	char *b64 = NULL;
	size_t n = 0;
	bool last_short = false;
	while (i < e && isspace(p[i]))
		i++;
	while (e > i && isspace(p[e - 1]))
		e--;
	size_t bl = strlen(ARMOR_BEGIN), el = strlen(ARMOR_END);
	if (e - i < bl + el || memcmp(p + i, ARMOR_BEGIN, bl) != 0)
		return gerr_set(err, "age: armor: no BEGIN line");
	if (memcmp(p + e - el, ARMOR_END, el) != 0)
		return gerr_set(err, "age: armor: no END line (truncated?)");
	i += bl;
	size_t stop = e - el;
	if (i < stop && p[i] == '\r')
		i++;
	if (i >= stop || p[i] != '\n')
		return gerr_set(err, "age: armor: malformed BEGIN line");
	i++;
	b64 = xmalloc(stop - i + 1);
	while (i < stop) {
		size_t j = i;
		while (j < stop && p[j] != '\n')
			j++;
		if (j == stop)
			goto bad; /* the END line must start a line */
		size_t k = j;
		if (k > i && p[k - 1] == '\r')
			k--;
		if (k - i > ARMOR_COLS || k == i || last_short)
			goto bad;
		for (size_t q = i; q < k; q++)
			if (!is_b64char(p[q]) && p[q] != '=')
				goto bad;
		if (k - i < ARMOR_COLS)
			last_short = true;
		memcpy(b64 + n, p + i, k - i);
		n += k - i;
		i = j + 1;
	}
	if (n == 0 || n % 4)
		goto bad;
	size_t cap = n / 4 * 3, got = 0;
	uint8_t *bin = xmalloc(cap + 1);
	const char *endp = NULL;
	if (sodium_base642bin(bin, cap, b64, n, NULL, &got, &endp, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    endp != b64 + n) {
		free(bin);
		goto bad;
	}
	/* canonical: the same text again */
	char *again = b64_encode(bin, got, sodium_base64_VARIANT_ORIGINAL);
	bool same = strlen(again) == n && memcmp(again, b64, n) == 0;
	free(again);
	if (!same) {
		free(bin);
		goto bad;
	}
	free(b64);
	*out = bin;
	*out_len = got;
	return 0;
bad:
	free(b64);
	return gerr_set(err, "age: armor: malformed base64 body");
}

static void armor(const uint8_t *bin, size_t len, uint8_t **out, size_t *out_len)
{
	char *b64 = b64_encode(bin, len, sodium_base64_VARIANT_ORIGINAL);
	size_t n = strlen(b64), lines = (n + ARMOR_COLS - 1) / ARMOR_COLS;
	size_t cap = strlen(ARMOR_BEGIN) + 1 + n + lines + strlen(ARMOR_END) + 2;
	char *o = xmalloc(cap);
	size_t k = 0;
	memcpy(o, ARMOR_BEGIN "\n", strlen(ARMOR_BEGIN) + 1);
	k = strlen(ARMOR_BEGIN) + 1;
	for (size_t i = 0; i < n; i += ARMOR_COLS) {
		size_t c = MIN((size_t)ARMOR_COLS, n - i);
		memcpy(o + k, b64 + i, c);
		k += c;
		o[k++] = '\n';
	}
	memcpy(o + k, ARMOR_END "\n", strlen(ARMOR_END) + 1);
	k += strlen(ARMOR_END) + 1;
	o[k] = '\0';
	free(b64);
	*out = (uint8_t *)o;
	*out_len = k;
}

bool age_is_age(const void *in, size_t len)
{
	const uint8_t *p = in;
	return (len >= 19 && memcmp(p, "age-encryption.org/", 19) == 0) || is_armored(p, len);
}

int age__parse_header(const void *in, size_t len, size_t *n_stanzas, struct gerr *err)
{
	struct header h;
	uint8_t *bin = NULL;
	size_t blen = 0;
	const uint8_t *p = in;
	int rc;
	if (is_armored(p, len)) {
		if (dearmor(p, len, &bin, &blen, err) < 0)
			return -1;
		p = bin;
		len = blen;
	}
	rc = parse_header(p, len, &h, err);
	if (rc == 0 && n_stanzas)
		*n_stanzas = h.n;
	header_release(&h);
	free(bin);
	return rc;
}

/* ---- encrypt ---- */

static void header_mac(const uint8_t file_key[AGE_FILE_KEY_LEN], const uint8_t *hdr, size_t len, uint8_t mac[32])
{
	uint8_t hk[32];
	age__hkdf_sha256(NULL, 0, file_key, AGE_FILE_KEY_LEN, (const uint8_t *)"header", 6, hk, sizeof(hk));
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, hk, sizeof(hk));
	crypto_auth_hmacsha256_update(&st, hdr, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(hk, sizeof(hk));
	sodium_memzero(&st, sizeof(st));
}

static void chunk_nonce(uint8_t nonce[12], uint64_t counter, bool last)
{
	memset(nonce, 0, 12);
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (uint8_t)(counter >> (8 * i));
	nonce[11] = last ? 1 : 0;
}

static void x25519_wrap_key(const uint8_t shared[32], const uint8_t share[32], const uint8_t pub[32],
			    uint8_t key[32])
{
	uint8_t salt[64];
	memcpy(salt, share, 32);
	memcpy(salt + 32, pub, 32);
	age__hkdf_sha256(salt, sizeof(salt), shared, 32, (const uint8_t *)AGE_X25519_LABEL,
			 strlen(AGE_X25519_LABEL), key, 32);
}

int age_encrypt(const void *plain, size_t len, const char *const *recipients, size_t n, bool armor_out,
		uint8_t **out, size_t *out_len, struct gerr *err)
{
	static const uint8_t zero_nonce[12];
	uint8_t file_key[AGE_FILE_KEY_LEN], nonce[AGE_NONCE_LEN], pkey[32], mac[32];
	uint8_t (*pubs)[AGE_KEY_LEN] = NULL;
	struct hbuf_tmp { char *p; size_t len, cap; } h = { 0 };
	int rc = -1;
	*out = NULL;
	*out_len = 0;
	if (age_sodium_init(err) < 0)
		return -1;
	if (n == 0)
		return gerr_set(err, "age: no recipient");
	if (len > AGE_MAX_INPUT)
		return gerr_set(err, "age: input larger than %u bytes", AGE_MAX_INPUT);
	pubs = xcalloc(n, sizeof(*pubs));
	for (size_t i = 0; i < n; i++)
		if (age_recipient_parse(recipients[i], pubs[i], err) < 0)
			goto out;
	randombytes_buf(file_key, sizeof(file_key));

	/* the header: each stanza is a short line pair, so the size is known */
	h.cap = strlen(AGE_VERSION_LINE) + n * (3 + 7 + 43 + 1 + 43 + 1) + 4 + 43 + 2;
	h.p = xmalloc(h.cap);
	memcpy(h.p, AGE_VERSION_LINE, strlen(AGE_VERSION_LINE));
	h.len = strlen(AGE_VERSION_LINE);
	for (size_t i = 0; i < n; i++) {
		uint8_t esk[32], share[32], shared[32], wrap[32], body[AGE_FILE_KEY_LEN + AGE_TAG_LEN];
		randombytes_buf(esk, sizeof(esk));
		crypto_scalarmult_base(share, esk);
		if (crypto_scalarmult(shared, esk, pubs[i]) != 0) {
			sodium_memzero(esk, sizeof(esk));
			gerr_set(err, "age: recipient '%s' is a low-order point", recipients[i]);
			goto out;
		}
		x25519_wrap_key(shared, share, pubs[i], wrap);
		crypto_aead_chacha20poly1305_ietf_encrypt(body, NULL, file_key, sizeof(file_key), NULL, 0, NULL,
							  zero_nonce, wrap);
		char *s64 = b64_encode(share, 32, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
		char *b64 = b64_encode(body, sizeof(body), sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
		int k = snprintf(h.p + h.len, h.cap - h.len, "-> X25519 %s\n%s\n", s64, b64);
		BUG_ON(k < 0 || (size_t)k >= h.cap - h.len);
		h.len += (size_t)k;
		free(s64);
		free(b64);
		sodium_memzero(esk, sizeof(esk));
		sodium_memzero(shared, sizeof(shared));
		sodium_memzero(wrap, sizeof(wrap));
	}
	memcpy(h.p + h.len, "---", 3);
	h.len += 3;
	header_mac(file_key, (const uint8_t *)h.p, h.len, mac);
	char *m64 = b64_encode(mac, sizeof(mac), sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	int k = snprintf(h.p + h.len, h.cap - h.len, " %s\n", m64);
	BUG_ON(k < 0 || (size_t)k >= h.cap - h.len);
	h.len += (size_t)k;
	free(m64);

	/* the payload */
	randombytes_buf(nonce, sizeof(nonce));
	age__hkdf_sha256(nonce, sizeof(nonce), file_key, sizeof(file_key), (const uint8_t *)"payload", 7, pkey,
			 sizeof(pkey));
	size_t chunks = len ? (len + AGE_CHUNK_SIZE - 1) / AGE_CHUNK_SIZE : 1;
	size_t total = h.len + AGE_NONCE_LEN + len + chunks * AGE_TAG_LEN;
	uint8_t *bin = xmalloc(total);
	memcpy(bin, h.p, h.len);
	memcpy(bin + h.len, nonce, AGE_NONCE_LEN);
	size_t w = h.len + AGE_NONCE_LEN;
	const uint8_t *src = plain;
	for (size_t c = 0; c < chunks; c++) {
		uint8_t cn[12];
		size_t clen = MIN((size_t)AGE_CHUNK_SIZE, len - c * AGE_CHUNK_SIZE);
		chunk_nonce(cn, c, c == chunks - 1);
		unsigned long long olen = 0;
		crypto_aead_chacha20poly1305_ietf_encrypt(bin + w, &olen, src + c * AGE_CHUNK_SIZE, clen, NULL, 0,
							  NULL, cn, pkey);
		w += (size_t)olen;
	}
	BUG_ON(w != total);
	if (armor_out) {
		armor(bin, total, out, out_len);
		free(bin);
	} else {
		*out = bin;
		*out_len = total;
	}
	rc = 0;
out:
	sodium_memzero(file_key, sizeof(file_key));
	sodium_memzero(pkey, sizeof(pkey));
	free(pubs);
	free(h.p);
	return rc;
}

/* ---- decrypt ---- */

/* the file key from the stanzas with one of ids: 0, 1 if none matched, -1 on a malformed stanza */
static int unwrap_file_key(const struct header *h, const struct age_identities *ids, uint8_t file_key[16],
			   struct gerr *err)
{
	static const uint8_t zero_nonce[12];
	for (size_t i = 0; i < h->n; i++) {
		const struct stanza *s = &h->st[i];
		if (strcmp(s->args[0], "scrypt") == 0) {
			if (h->n != 1)
				return gerr_set(err, "age: an scrypt stanza must be alone in the header");
			return gerr_set(err, "age: passphrase-encrypted files (scrypt) are not supported");
		}
	}
	for (size_t i = 0; i < h->n; i++) {
		const struct stanza *s = &h->st[i];
		uint8_t share[32];
		if (strcmp(s->args[0], "X25519") != 0)
			continue;
		if (s->nargs != 2 || b64_raw_decode(s->args[1], strlen(s->args[1]), share, sizeof(share), 32) != 32)
			return gerr_set(err, "age: malformed X25519 stanza");
		if (s->body_len != AGE_FILE_KEY_LEN + AGE_TAG_LEN)
			return gerr_set(err, "age: malformed X25519 stanza (body length)");
		for (size_t j = 0; j < ids->n; j++) {
			uint8_t shared[32], wrap[32];
			if (crypto_scalarmult(shared, ids->keys[j].sk, share) != 0)
				return gerr_set(err, "age: X25519 stanza with a low-order ephemeral share");
			x25519_wrap_key(shared, share, ids->keys[j].pub, wrap);
			int ok = crypto_aead_chacha20poly1305_ietf_decrypt(file_key, NULL, NULL, s->body, s->body_len,
									   NULL, 0, zero_nonce, wrap);
			sodium_memzero(shared, sizeof(shared));
			sodium_memzero(wrap, sizeof(wrap));
			if (ok == 0)
				return 0;
		}
	}
	return 1;
}

int age_decrypt(const void *in, size_t len, const struct age_identities *ids, uint8_t **out, size_t *out_len,
		struct gerr *err)
{
	uint8_t *bin = NULL, *plain = NULL;
	size_t blen = 0, plain_cap = 0;
	const uint8_t *p = in;
	uint8_t file_key[AGE_FILE_KEY_LEN], mac[32], pkey[32];
	struct header h = { 0 };
	int rc = -1;
	*out = NULL;
	*out_len = 0;
	if (age_sodium_init(err) < 0)
		return -1;
	if (!ids || !ids->n)
		return gerr_set(err, "age: no identity");
	if (len > AGE_MAX_INPUT)
		return gerr_set(err, "age: input larger than %u bytes", AGE_MAX_INPUT);
	if (is_armored(p, len)) {
		if (dearmor(p, len, &bin, &blen, err) < 0)
			return -1;
		p = bin;
		len = blen;
	}
	if (parse_header(p, len, &h, err) < 0)
		goto out;
	int u = unwrap_file_key(&h, ids, file_key, err);
	if (u < 0)
		goto out;
	if (u > 0) {
		gerr_set(err, "age: no identity matches any recipient");
		goto out;
	}
	header_mac(file_key, p, h.mac_at + 3, mac);
	if (sodium_memcmp(mac, h.mac, sizeof(mac)) != 0) {
		gerr_set(err, "age: header MAC mismatch");
		goto out;
	}
	size_t at = h.payload_at;
	if (len - at < AGE_NONCE_LEN) {
		gerr_set(err, "age: payload truncated (no nonce)");
		goto out;
	}
	age__hkdf_sha256(p + at, AGE_NONCE_LEN, file_key, sizeof(file_key), (const uint8_t *)"payload", 7, pkey,
			 sizeof(pkey));
	at += AGE_NONCE_LEN;
	size_t rest = len - at;
	if (rest < AGE_TAG_LEN) {
		gerr_set(err, "age: payload truncated at chunk 0");
		goto out;
	}
	plain_cap = rest + 1;
	plain = xmalloc(plain_cap);
	size_t w = 0;
	for (uint64_t c = 0;; c++) {
		uint8_t cn[12];
		size_t clen = MIN(rest, (size_t)AGE_ENC_CHUNK);
		bool last = clen == rest;
		unsigned long long olen = 0;
		if (clen < AGE_TAG_LEN) {
			gerr_set(err, "age: payload truncated at chunk %llu", (unsigned long long)c);
			goto out;
		}
		if (last && clen == AGE_TAG_LEN && c > 0) {
			gerr_set(err, "age: payload corrupted at chunk %llu (empty last chunk)", (unsigned long long)c);
			goto out;
		}
		chunk_nonce(cn, c, last);
		if (crypto_aead_chacha20poly1305_ietf_decrypt(plain + w, &olen, NULL, p + at, clen, NULL, 0, cn,
							      pkey) != 0) {
			gerr_set(err, "age: payload corrupted at chunk %llu%s", (unsigned long long)c,
				 last && clen == AGE_ENC_CHUNK ? " (or the file was truncated)" : "");
			goto out;
		}
		w += (size_t)olen;
		at += clen;
		rest -= clen;
		if (last)
			break;
	}
	plain[w] = 0;
	*out = plain;
	*out_len = w;
	plain = NULL;
	rc = 0;
out:
	if (plain)
		age_secret_free(plain, plain_cap); /* a partial plaintext never leaves */
	sodium_memzero(file_key, sizeof(file_key));
	sodium_memzero(pkey, sizeof(pkey));
	header_release(&h);
	free(bin);
	return rc;
}
