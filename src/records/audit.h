/*
 * audit.h — the tamper-evident audit chain (pure: no I/O).
 *
 * Entry i is hashed as SHA-256 of its canonical encoding, a compact JSON
 * object with sorted keys and ASCII-only strings:
 *   {"action":..,"actor":..,"details":{..},"prev":"<hash of entry i-1>","seq":i,
 *    "target":..,"time":"2024-05-10T15:00:00Z"}
 * (details canonicalised the same way, recursively). The first entry's prev
 * is 64 zeros. Changing any field of any entry, or removing, inserting or
 * moving one, breaks the chain at that entry, and audit_verify names it.
 * What it cannot catch on its own: someone rewriting the whole tail with
 * fresh hashes; the store keeps the head (seq and hash of the newest entry)
 * apart, in the meta table, so that truncating the tail is caught too.
 */
#ifndef GANTRY_RECORDS_AUDIT_H
#define GANTRY_RECORDS_AUDIT_H
#include "common.h"

#define AUDIT_HASH_HEX 65 /* 64 hex digits + NUL */

struct audit_entry {
	int64_t seq;             /* 1, 2, ... */
	int64_t time;            /* unix seconds */
	char actor[64];
	char action[64];         /* the API operation: deploy, approve, incident_open ... */
	char target[256];        /* "api@production", "rollout 7", "incident 3" */
	char *details;           /* JSON object text (owned; audit_entry_release) */
	char prev[AUDIT_HASH_HEX];
	char hash[AUDIT_HASH_HEX];
};

void audit_entry_release(struct audit_entry *e);

/* canonical encoding (owned by caller), or NULL when details is not a JSON object */
char *audit_canonical(const struct audit_entry *e);
/* sets e->hash from e's fields and e->prev; -1 when details is not a JSON object */
int audit_seal(struct audit_entry *e);

/*
 * Checks entries[0..n) (in stored order) as a chain. head_seq/head_hash: the
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
