/*
 * audit.h — the tamper-evident audit chain (pure: no I/O).
 *
 * Two encodings, both a compact JSON object with sorted keys and ASCII-only
 * strings (details canonicalised the same way, recursively):
 *
 *  v1 (entries written before the MAC, seq < mac_from), hashed with
 *     SHA-256:  {"action","actor","details","prev","seq","target","time"}
 *  v2 (seq >= mac_from), sealed with HMAC-SHA256 under a 32-byte key kept
 *     outside the database (HOME/audit.key):
 *     {"action","actor","details","peer","pid","prev","seq","target","time","uid"}
 *
 * prev is the previous entry's hash or MAC (64 zeros for the first), so the
 * one chain runs through both. Changing any field of any entry, or removing,
 * inserting or moving one, breaks the chain at that entry. A v2 entry cannot
 * be re-sealed without the key; the end of the log is checked against
 * anchors kept apart (the meta head row, HOME/audit.head, the export file),
 * so that entries removed from the end are caught too.
 */
#ifndef GANTRY_RECORDS_AUDIT_H
#define GANTRY_RECORDS_AUDIT_H
#include "common.h"
#include "store/store_records.h" /* struct audit_entry: a row of the audit table */

#define AUDIT_KEY_BYTES 32

/* canonical encodings (owned by caller), or NULL when details is not a JSON object */
char *audit_canonical(const struct audit_entry *e);   /* v1 */
char *audit_canonical_v2(const struct audit_entry *e);
/* sets e->hash from e's fields and e->prev: key NULL = v1 (SHA-256), else v2
 * (HMAC-SHA256 under key, borrowed, AUDIT_KEY_BYTES); -1 when details is not
 * a JSON object */
int audit_seal(struct audit_entry *e);
int audit_seal_key(struct audit_entry *e, const unsigned char *key);

/*
 * Where the newest entry is recorded apart from the rows. An anchor names
 * the seq and hash (MAC) of the newest entry as it was when it was written.
 */
struct audit_anchor {
	const char *name;        /* borrowed: "the recorded head (meta audit_head)", "HOME/audit.head" */
	bool present;            /* false: the row or file is gone */
	bool required;           /* its absence is tampering once there are entries ... */
	bool once_v2;            /* ... v2 ones (it is written only by a build that seals them) */
	bool vouches_v2;         /* it names only v2 entries: its seq must be >= mac_from */
	int64_t seq;
	char hash[AUDIT_HASH_HEX];
	char seen[AUDIT_HASH_HEX]; /* the verifier's: the chain's hash at seq */
};

/*
 * A streaming verifier: feed the rows in stored (seq) order, then end.
 * Constant memory, whatever the number of entries.
 */
struct audit_verifier {
	const unsigned char *key;   /* borrowed; NULL: v2 entries cannot be checked */
	int64_t mac_from;           /* first v2 seq; 0: not recorded (every entry v1) */
	struct audit_anchor *anchors; /* borrowed */
	size_t nanchors;
	int64_t expect;             /* the next seq */
	int64_t count;
	bool v2_seen;
	char prev[AUDIT_HASH_HEX];
	int64_t bad_seq;            /* 0 while intact */
	bool edited;                /* the first bad entry's content does not match its hash (or it moved) */
	char why[512];
};

void audit_verifier_init(struct audit_verifier *v, const unsigned char *key, int64_t mac_from,
			 struct audit_anchor *anchors, size_t nanchors);
/* false once the chain is broken (v->bad_seq, v->why name the first bad entry) */
bool audit_verifier_feed(struct audit_verifier *v, const struct audit_entry *e);
/* after the last row: true when the chain is intact and agrees with every anchor */
bool audit_verifier_end(struct audit_verifier *v);
/* whether e's stored hash is what it would be at seq s (to tell a moved entry) */
bool audit_verifier_sealed_at(const struct audit_verifier *v, const struct audit_entry *e, int64_t s);
/* rewrites v->why: the bad entry holds entry s (moved from there) */
void audit_verifier_moved(struct audit_verifier *v, int64_t s);

/*
 * Checks entries[0..n) (v1 only, in stored order) as a chain. head_seq/head_hash: the
 * newest entry as recorded apart (head_seq 0: unknown). Returns -1 when the
 * chain is intact, else the index of the first bad entry (n when entries are
 * missing at the end), with why naming it: "entry 5 was edited", "entry 4 is
 * missing (deleted)", "entry 6 was moved (it follows entry 3)", ...
 */
long audit_verify(const struct audit_entry *entries, size_t n, int64_t head_seq, const char *head_hash,
		  char *why, size_t whylen);

/* entries[i] as the JSON object of `gantry audit -o json` (new reference) */
struct json_t *audit_entry_json(const struct audit_entry *e);

#endif
