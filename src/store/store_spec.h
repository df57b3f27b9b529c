/*
 * store_spec.h — the controller's stored spec (migration 7): every accepted
 * `gantry apply` is a numbered, immutable spec version with its text, its
 * digest, who applied it and the diff to the version before. Versions are
 * never edited or deleted; the newest one is the desired state.
 */
#ifndef GANTRY_STORE_SPEC_H
#define GANTRY_STORE_SPEC_H
#include "common.h"
#include "store/store.h"

struct spec_version_row {
	int64_t version;          /* 1, 2, ... */
	char digest[72];          /* hex SHA-256 of text */
	char name[256];           /* the file name it was applied from (diagnostics) */
	char *text;               /* the YAML as applied; owned (NULL in lists) */
	char actor[64];
	int64_t created_at;       /* unix seconds (clock_now_s) */
	char *diff;               /* JSON array: the diff to the version before (core/spec_class.h); owned */
};
void spec_version_row_release(struct spec_version_row *r);

/* appends r as version (newest + 1); sets r->version. Inside the caller's transaction if any */
int store_spec_add(struct store *s, struct spec_version_row *r, struct gerr *err);
/* version 0: the newest. 1 found, 0 none, -1 error; *out: caller's storage (release) */
int store_spec_get(struct store *s, int64_t version, struct spec_version_row *out, struct gerr *err);
/* newest first, without text; *out owned by caller (release each, then free) */
int store_spec_list(struct store *s, struct spec_version_row **out, size_t *n, struct gerr *err);

#endif
