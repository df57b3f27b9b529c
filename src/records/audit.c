/*
 * audit.c — canonical encoding, sealing and verification of the audit chain.
 * See audit.h for the encoding.
 */
#include "common.h"
#include "records/audit.h"
#include "gates/window.h"
#include <jansson.h>
#include <sodium.h>

static const char zero_hash[] = "0000000000000000000000000000000000000000000000000000000000000000";

void audit_entry_release(struct audit_entry *e)
{
	free(e->details);
	e->details = NULL;
}

char *audit_canonical(const struct audit_entry *e)
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
	out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(o);
	return out;
}

static int hash_hex(const char *text, char out[AUDIT_HASH_HEX])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	if (sodium_init() < 0)
		return -1;
	crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
	sodium_bin2hex(out, AUDIT_HASH_HEX, h, sizeof(h));
	return 0;
}

int audit_seal(struct audit_entry *e)
{
	char *c = audit_canonical(e);
	int r;
	if (!c)
		return -1;
	r = hash_hex(c, e->hash);
	free(c);
	return r;
}

/* the hash e would have with seq s; false when it cannot be encoded */
static bool hash_with_seq(const struct audit_entry *e, int64_t s, char out[AUDIT_HASH_HEX])
{
	struct audit_entry t = *e;
	char *c;
	bool ok;
	t.seq = s;
	c = audit_canonical(&t);
	ok = c && hash_hex(c, out) == 0;
	free(c);
	return ok;
}

long audit_verify(const struct audit_entry *en, size_t n, int64_t head_seq, const char *head_hash,
		  char *why, size_t whylen)
{
	const char *prev = zero_hash;
	int64_t expect = 1;

	for (size_t i = 0; i < n; i++) {
		const struct audit_entry *e = &en[i];
		char h[AUDIT_HASH_HEX];
		bool self_ok = hash_with_seq(e, e->seq, h) && !strcmp(h, e->hash);

		if (e->seq > expect) {
			if (e->seq == expect + 1)
				snprintf(why, whylen, "entry %lld is missing (deleted): entry %lld follows entry %lld",
					 (long long)expect, (long long)e->seq, (long long)expect - 1);
			else
				snprintf(why, whylen, "entries %lld..%lld are missing (deleted): entry %lld follows entry %lld",
					 (long long)expect, (long long)e->seq - 1, (long long)e->seq, (long long)expect - 1);
			return (long)i;
		}
		if (e->seq < expect) {
			snprintf(why, whylen, "entry %lld appears again after entry %lld (inserted or reordered)",
				 (long long)e->seq, (long long)expect - 1);
			return (long)i;
		}
		if (!self_ok) {
			/* moved: its content, prev and hash agree with another position */
			for (size_t j = 0; j < n; j++) {
				if (en[j].seq == e->seq || !hash_with_seq(e, en[j].seq, h) || strcmp(h, e->hash))
					continue;
				snprintf(why, whylen, "entry %lld was reordered: it holds entry %lld (moved from there)",
					 (long long)e->seq, (long long)en[j].seq);
				return (long)i;
			}
			snprintf(why, whylen, "entry %lld was edited: its content does not match its hash", (long long)e->seq);
			return (long)i;
		}
		if (strcmp(e->prev, prev)) {
			snprintf(why, whylen, "entry %lld does not follow entry %lld: inserted, or an earlier entry was replaced",
				 (long long)e->seq, (long long)e->seq - 1);
			return (long)i;
		}
		prev = e->hash;
		expect = e->seq + 1;
	}
	if (head_seq > 0 && expect - 1 > head_seq) {
		snprintf(why, whylen, "entry %lld was added after the recorded newest entry %lld (inserted)",
			 (long long)head_seq + 1, (long long)head_seq);
		for (size_t i = 0; i < n; i++)
			if (en[i].seq == head_seq + 1)
				return (long)i;
		return (long)n;
	}
	if (head_seq > 0 && (expect - 1 < head_seq || (head_hash && *head_hash && strcmp(prev, head_hash)))) {
		if (expect - 1 < head_seq)
			snprintf(why, whylen, "entries %lld..%lld are missing (deleted at the end of the log)",
				 (long long)expect, (long long)head_seq);
		else
			snprintf(why, whylen, "entry %lld is not the recorded newest entry (the end of the log was rewritten)",
				 (long long)head_seq);
		return (long)n;
	}
	return -1;
}

json_t *audit_entry_json(const struct audit_entry *e)
{
	char ts[40];
	json_t *d = json_loads(e->details ? e->details : "{}", 0, NULL);
	format_rfc3339(e->time, ts, sizeof(ts));
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "seq", (json_int_t)e->seq, "time", ts,
			 "actor", e->actor, "action", e->action, "target", e->target, "details",
			 d ? d : json_string(e->details ? e->details : ""), "prev", e->prev, "hash", e->hash);
}
