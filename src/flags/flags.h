/*
 * flags.h — feature flags, pure: definitions (the spec's `flags:` as
 * JSON), the runtime state's words, evaluation against an evaluation
 * context, and the OpenFeature Remote Evaluation Protocol (OFREP) answers.
 * No I/O, no clock: daemon/flags.c keeps the state and serves it, api/tcp.c
 * carries the HTTP.
 *
 *   flags:
 *     new_checkout:
 *       default: off                   # a variant, or "25%"
 *       variants: { on: true, off: false }   # bool on/off when left out
 *       rules:                         # the first that matches serves
 *         - { if: { attr: plan, in: [pro, team] }, serve: on }
 *         - { if: { attr: version, semver: ">= 2.1" }, serve: "25%" }
 *         - { if: { attr: country, equals: de }, serve: off }
 *
 * A percentage serves the variant "on" to that share of targeting keys and
 * "off" to the others (both variants must exist). The share is decided by
 * flags_bucket(): murmur3 (x86, 32 bit, seed 0) of flagKey followed by
 * targetingKey, scaled to 0..9999 (hundredths of a percent): the same key
 * always lands in the same bucket, and raising 10% to 20% keeps the first
 * 10% on.
 *
 * The runtime state of a flag in an environment (daemon/flags.c) is one of
 *   "spec"      the spec's default and rules decide (the start)
 *   "on", "off", VARIANT   every evaluation serves it
 *   "N%"        the percentage, for every evaluation
 * so `flag set NAME off` (and the flag_off rollback lever) turns the flag off
 * for everyone whatever the rules say.
 */
#ifndef GANTRY_FLAGS_FLAGS_H
#define GANTRY_FLAGS_FLAGS_H
#include "common.h"
#include <jansson.h>

#define FLAG_NAME_MAX 63
#define FLAG_VARIANT_MAX 63
#define FLAG_RULES_MAX 64
#define FLAG_VARIANTS_MAX 64
#define FLAG_LIST_MAX 256   /* items of an `in` list */
#define FLAGS_MAX 256       /* flags in a spec */

/* a flag or variant name: [A-Za-z0-9_.-], 1..63, starting with a letter or digit */
bool flag_name_valid(const char *s);

/* "25%", "0.5%", "100%": 0 with *pct (0..100, at most two decimals), else -1 */
int flag_pct_parse(const char *s, double *pct);

/* ---- semantic versions ---- */

struct semver {
	long major, minor, patch;
	char pre[64]; /* "" for a release */
};
/* "2.1", "v2.1.3", "2.1.3-rc.1" (+build ignored): 0, else -1 */
int semver_parse(const char *s, struct semver *out);
int semver_cmp(const struct semver *a, const struct semver *b);

enum semver_op { SV_GE, SV_GT, SV_LE, SV_LT, SV_EQ, SV_NE, SV_CARET, SV_TILDE };
struct semver_range {
	enum semver_op op;
	struct semver v;
};
/* ">= 2.1", "<3", "=1.2.3", "!= 1.0", "^2.1" (same major), "~2.1" (same minor): 0, else -1 with err */
int semver_range_parse(const char *s, struct semver_range *out, struct gerr *err);
bool semver_range_match(const struct semver_range *r, const struct semver *v);

/* ---- definitions ---- */

enum flag_cond { FC_ALWAYS = 0, FC_IN, FC_EQUALS, FC_SEMVER };

/* what a default, a rule or a state serves: a variant, or a percentage of "on" */
struct flag_serve {
	char variant[FLAG_VARIANT_MAX + 1]; /* "" with a percentage */
	double pct;                          /* < 0: the variant */
};

struct flag_rule {
	enum flag_cond cond;
	char attr[FLAG_NAME_MAX + 1];
	json_t *values;                      /* FC_IN: array; FC_EQUALS: the value (owned) */
	struct semver_range range;           /* FC_SEMVER */
	struct flag_serve serve;
};

struct flag_def {
	char name[FLAG_NAME_MAX + 1];
	json_t *variants;                    /* object: variant -> value (owned) */
	struct flag_serve def;
	struct flag_rule *rules;
	size_t nrules;
};

struct flag_defs {
	struct flag_def *defs;
	size_t n;
};

/*
 * Parses "SERVE" (a variant of def, or "N%") into *out: 0, or -1 with err.
 * def NULL: any variant name is taken.
 */
int flag_serve_parse(const struct flag_def *def, const char *s, struct flag_serve *out, struct gerr *err);
/* "on", "25%" (buf; returns buf) */
const char *flag_serve_text(const struct flag_serve *s, char *buf, size_t len);

/*
 * The spec's flags object (borrowed; as core/spec_flags.c writes it: variant
 * values typed, every other scalar a string) into *out (caller's storage,
 * flag_defs_release). 0, or -1 with err naming the first problem as a path
 * ("flags.x.rules[1].serve: unknown variant 'of'"). NULL: no flags.
 */
int flag_defs_parse(const json_t *flags, struct flag_defs *out, struct gerr *err);
void flag_defs_release(struct flag_defs *d);
const struct flag_def *flag_defs_find(const struct flag_defs *d, const char *name);

/* ---- the rollback lever ---- */

/*
 * A rollback_on entry may end in an action: "error_rate > 5% for 10s then
 * flag_off new_checkout" turns the flag off (in the environment) when the
 * condition is breached, instead of rolling the revision back.
 * Returns 1 with the condition's text in cond and the flag in flag, 0 when
 * s has no " then " (cond = s), -1 with err for a malformed action.
 */
int flag_action_split(const char *s, char *cond, size_t clen, char *flag, size_t flen, struct gerr *err);

/* ---- evaluation ---- */

/* the bucket of targetingKey for flag: 0..9999 */
unsigned flags_bucket(const char *flag, const char *targeting_key);
uint32_t flags_murmur3(const void *data, size_t len, uint32_t seed);

enum flag_error {
	FE_NONE = 0,
	FE_FLAG_NOT_FOUND,
	FE_PARSE_ERROR,
	FE_TARGETING_KEY_MISSING,
	FE_INVALID_CONTEXT,
	FE_GENERAL,
};
const char *flag_error_code(enum flag_error e); /* "FLAG_NOT_FOUND"... */

struct flag_result {
	const char *variant;  /* borrowed from the definition or the state */
	json_t *value;        /* borrowed from the definition */
	const char *reason;   /* STATIC, DEFAULT, TARGETING_MATCH, SPLIT */
	enum flag_error error;
	char details[200];
};

/*
 * Evaluates def in state (a state string as above; NULL or "spec": the
 * spec decides) for ctx (the evaluation context object; may be NULL).
 * 0 with out filled, or -1 with out->error and out->details.
 */
int flag_evaluate(const struct flag_def *def, const char *state, const json_t *ctx, struct flag_result *out);

/* ---- OFREP ---- */

/* the state of a flag by name (NULL: "spec"), for the OFREP answers */
typedef const char *(*flag_state_fn)(void *arg, const char *flag);

struct ofrep_answer {
	int status;      /* 200, 304, 400, 404 */
	json_t *body;    /* new reference; NULL with 304 */
	char etag[40];   /* bulk 200/304: "\"HEX\"" */
};

/*
 * POST /ofrep/v1/evaluate/flags/KEY (key set) or the bulk
 * POST /ofrep/v1/evaluate/flags (key NULL) with body (len bytes, borrowed).
 * The bulk ETag is a hash of the answer (every flag's evaluation for this
 * context): equal exactly when nothing a client sees changed, across a
 * controller's restart too; if_none_match (may be NULL) equal to it
 * answers 304. version is unused (kept for callers).
 */
void ofrep_evaluate(const struct flag_defs *defs, flag_state_fn state, void *arg, uint64_t version,
		    const char *key, const char *body, size_t len, const char *if_none_match, struct ofrep_answer *out);

#endif
