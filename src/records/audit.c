/*
 * audit.c — canonical encoding, sealing and verification of the audit chain.
 * See audit.h for the encodings.
 */
#include "common.h"
#include "records/audit.h"
#include "util/clock.h"
#include <jansson.h>
#include <sodium.h>

static const char zero_hash[] = "0000000000000000000000000000000000000000000000000000000000000000";

static char *canonical(const struct audit_entry *e, bool v2)
{
	json_t *d = json_loads(e->details ? e->details : "{}", JSON_REJECT_DUPLICATES, NULL), *o;
	char ts[40], *out;
	if (!json_is_object(d)) {
		json_decref(d);
		return NULL;
	}
	format_rfc3339(e->time, ts, sizeof(ts));
	o = json_pack("{s:s, s:s, s:o, s:s, s:I, s:s, s:s}", "action", e->action, "actor", e->actor,
		      "details", d, "prev", e->prev, "seq", (json_int_t)e->seq, "target", e->target, "time", ts);
	if (!o)
		return NULL;
	if (v2 && (json_object_set_new(o, "uid", json_integer(e->uid)) < 0 ||
		   json_object_set_new(o, "pid", json_integer(e->pid)) < 0 ||
		   json_object_set_new(o, "peer", json_string(e->peer)) < 0)) {
		json_decref(o);
		return NULL;
	}
	out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(o);
	return out;
}

char *audit_canonical(const struct audit_entry *e)
{
	return canonical(e, false);
}

char *audit_canonical_v2(const struct audit_entry *e)
{
	return canonical(e, true);
}

/* key NULL: SHA-256 of the v1 encoding; else HMAC-SHA256 of the v2 one */
static int seal_hex(const struct audit_entry *e, const unsigned char *key, char out[AUDIT_HASH_HEX])
{
	unsigned char h[crypto_auth_hmacsha256_BYTES];
	char *c;
	if (sodium_init() < 0)
		return -1;
	c = canonical(e, key != NULL);
	if (!c)
		return -1;
	if (key)
		crypto_auth_hmacsha256(h, (const unsigned char *)c, strlen(c), key);
	else
		crypto_hash_sha256(h, (const unsigned char *)c, strlen(c));
	sodium_bin2hex(out, AUDIT_HASH_HEX, h, sizeof(h));
	sodium_memzero(c, strlen(c));
	free(c);
	return 0;
}

int audit_seal(struct audit_entry *e)
{
	return seal_hex(e, NULL, e->hash);
}

int audit_seal_key(struct audit_entry *e, const unsigned char *key)
{
	return seal_hex(e, key, e->hash);
}

/* ---- the streaming verifier ---- */

static bool is_v2(const struct audit_verifier *v, int64_t seq);
PRINTF_LIKE(3, 4) static bool bad(struct audit_verifier *v, int64_t seq, const char *fmt, ...);

void audit_verifier_init(struct audit_verifier *v, const unsigned char *key, int64_t mac_from,
			 struct audit_anchor *anchors, size_t nanchors)
{
	memset(v, 0, sizeof(*v));
	v->key = key;
	v->mac_from = mac_from;
	v->anchors = anchors;
	v->nanchors = nanchors;
	v->expect = 1;
	memcpy(v->prev, zero_hash, sizeof(zero_hash));
	for (size_t i = 0; i < nanchors; i++) {
		struct audit_anchor *a = &anchors[i];
		a->seen[0] = 0;
		/* an anchor written with a MAC vouches that its entry is a v2 one: a switch point
		 * moved past it would have the verifier take MAC'd entries for v1 ones */
		if (!v->bad_seq && a->present && a->vouches_v2 && !is_v2(v, a->seq))
			bad(v, a->seq, "%s records entry %lld as sealed with the audit key, but meta "
			    "audit_mac_from %s: the switch point was tampered with", a->name, (long long)a->seq,
			    mac_from ? "is after it (moved)" : "is missing (deleted)");
	}
}

static bool is_v2(const struct audit_verifier *v, int64_t seq)
{
	return v->mac_from > 0 && seq >= v->mac_from;
}

bool audit_verifier_sealed_at(const struct audit_verifier *v, const struct audit_entry *e, int64_t s)
{
	struct audit_entry t = *e;
	char h[AUDIT_HASH_HEX];
	bool v2 = is_v2(v, s);
	if (v2 && !v->key)
		return false;
	t.seq = s;
	/* constant time: a MAC is compared as a secret */
	return seal_hex(&t, v2 ? v->key : NULL, h) == 0 && sodium_memcmp(h, e->hash, 64) == 0 &&
	       strlen(e->hash) == 64;
}

PRINTF_LIKE(3, 4) static bool bad(struct audit_verifier *v, int64_t seq, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	v->bad_seq = seq > 0 ? seq : 1;
	return false;
}

bool audit_verifier_feed(struct audit_verifier *v, const struct audit_entry *e)
{
	if (v->bad_seq)
		return false;
	if (e->seq > v->expect) {
		if (e->seq == v->expect + 1)
			return bad(v, v->expect, "entry %lld is missing (deleted): entry %lld follows entry %lld",
				   (long long)v->expect, (long long)e->seq, (long long)v->expect - 1);
		return bad(v, v->expect, "entries %lld..%lld are missing (deleted): entry %lld follows entry %lld",
			   (long long)v->expect, (long long)e->seq - 1, (long long)e->seq, (long long)v->expect - 1);
	}
	if (e->seq < v->expect)
		return bad(v, e->seq, "entry %lld appears again after entry %lld (inserted or reordered)",
			   (long long)e->seq, (long long)v->expect - 1);
	if (is_v2(v, e->seq) && !v->key)
		return bad(v, e->seq, "entry %lld is sealed with the audit key, which this verifier does not have",
			   (long long)e->seq);
	if (!audit_verifier_sealed_at(v, e, e->seq)) {
		v->edited = true;
		if (is_v2(v, e->seq))
			return bad(v, e->seq, "entry %lld was edited: its content does not match its MAC (a hash "
				   "recomputed without the audit key does not pass)", (long long)e->seq);
		return bad(v, e->seq, "entry %lld was edited: its content does not match its hash", (long long)e->seq);
	}
	if (strcmp(e->prev, v->prev))
		return bad(v, e->seq, "entry %lld does not follow entry %lld: inserted, or an earlier entry was replaced",
			   (long long)e->seq, (long long)e->seq - 1);
	memcpy(v->prev, e->hash, AUDIT_HASH_HEX);
	v->prev[64] = 0;
	v->expect = e->seq + 1;
	v->count++;
	if (is_v2(v, e->seq))
		v->v2_seen = true;
	for (size_t i = 0; i < v->nanchors; i++)
		if (v->anchors[i].present && v->anchors[i].seq == e->seq)
			memcpy(v->anchors[i].seen, e->hash, AUDIT_HASH_HEX);
	return true;
}

void audit_verifier_moved(struct audit_verifier *v, int64_t s)
{
	snprintf(v->why, sizeof(v->why), "entry %lld was reordered: it holds entry %lld (moved from there)",
		 (long long)v->bad_seq, (long long)s);
}

bool audit_verifier_end(struct audit_verifier *v)
{
	int64_t last = v->expect - 1;
	if (v->bad_seq)
		return false;
	for (size_t i = 0; i < v->nanchors; i++) {
		struct audit_anchor *a = &v->anchors[i];
		if (!a->present) {
			if (a->required && (a->once_v2 ? v->v2_seen : last > 0))
				return bad(v, last + 1, "%s is missing: the newest entry (seq and hash) is recorded "
					   "there on every append, so it was deleted (tampering or truncation; the log "
					   "holds entries 1..%lld)", a->name, (long long)last);
			continue;
		}
		if (a->seq > last) {
			if (a->seq == last + 1)
				return bad(v, last + 1, "entry %lld is missing (deleted at the end of the log): %s "
					   "records entry %lld as the newest", (long long)a->seq, a->name, (long long)a->seq);
			return bad(v, last + 1, "entries %lld..%lld are missing (deleted at the end of the log): %s "
				   "records entry %lld as the newest", (long long)last + 1, (long long)a->seq, a->name,
				   (long long)a->seq);
		}
		if (strcmp(a->seen, a->hash))
			return bad(v, a->seq, "entry %lld does not match %s (the log was rewritten from there, or "
				   "entries were removed from the end and others appended)", (long long)a->seq, a->name);
		if (a->seq < last)
			return bad(v, a->seq + 1, "entry %lld was added after the recorded newest entry %lld (%s): "
				   "inserted", (long long)a->seq + 1, (long long)a->seq, a->name);
	}
	return true;
}

/* ---- v1 chains held in memory ---- */

long audit_verify(const struct audit_entry *en, size_t n, int64_t head_seq, const char *head_hash,
		  char *why, size_t whylen)
{
	struct audit_verifier v;
	struct audit_anchor head = { .name = "the recorded head", .present = head_seq > 0, .seq = head_seq };
	size_t i;
	strlcpy_g(head.hash, head_hash ? head_hash : "", sizeof(head.hash));
	audit_verifier_init(&v, NULL, 0, &head, 1);
	for (i = 0; i < n; i++)
		if (!audit_verifier_feed(&v, &en[i]))
			break;
	if (i == n && audit_verifier_end(&v))
		return -1;
	if (i < n && v.edited) {
		/* moved: its content, prev and hash agree with another position */
		for (size_t j = 0; j < n; j++)
			if (en[j].seq != en[i].seq && audit_verifier_sealed_at(&v, &en[i], en[j].seq)) {
				audit_verifier_moved(&v, en[j].seq);
				break;
			}
	}
	snprintf(why, whylen, "%s", v.why);
	if (i < n)
		return (long)i;
	for (size_t j = 0; j < n; j++)
		if (en[j].seq == v.bad_seq)
			return (long)j;
	return (long)n;
}

json_t *audit_entry_json(const struct audit_entry *e)
{
	char ts[40];
	json_t *d = json_loads(e->details ? e->details : "{}", 0, NULL);
	bool v2 = *e->peer != 0;
	format_rfc3339(e->time, ts, sizeof(ts));
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:s}", "seq", (json_int_t)e->seq, "time",
			 ts, "actor", e->actor, "action", e->action, "target", e->target, "details",
			 d ? d : json_string(e->details ? e->details : ""), "uid",
			 v2 && e->uid >= 0 ? json_integer(e->uid) : json_null(), "pid",
			 v2 && e->pid > 0 ? json_integer(e->pid) : json_null(), "peer",
			 v2 ? json_string(e->peer) : json_null(), "prev", e->prev, "hash", e->hash);
}
