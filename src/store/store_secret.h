/*
 * store_secret.h — the secret store (migration 12, issue 17): every
 * version of a secret of an environment, as the age file the controller
 * encrypted it to (src/daemon/secrets.c). The store never sees a plain
 * value. A version is never changed; one no revision uses any more is
 * deleted; `gantry secret rm` marks the secret removed (no new deploy can
 * name it) and deletes the versions nothing uses.
 */
#ifndef GANTRY_STORE_SECRET_H
#define GANTRY_STORE_SECRET_H
#include "common.h"
#include "store/store.h"

struct secret_row {
	char environment[64];
	char name[64];
	int version;              /* 1, 2, ... per (environment, name), never reused */
	uint8_t *ciphertext;      /* the age file; owned (NULL in lists) */
	size_t ciphertext_len;
	char created_by[64];
	int64_t created_at;       /* unix seconds */
	bool removed;             /* `secret rm`: kept only for revisions that use it */
};
void secret_row_release(struct secret_row *r);

/* appends r as the next version of (environment, name), removed cleared on
 * every version; sets r->version */
int store_secret_add(struct store *s, struct secret_row *r, struct gerr *err);
/* version 0: the newest not removed. 1 found, 0 none, -1 error; *out caller's storage (release) */
int store_secret_get(struct store *s, const char *env, const char *name, int version, struct secret_row *out,
		     struct gerr *err);
/* every version (environment NULL: of every environment), without ciphertext,
 * by environment, name, version; *out owned by caller (free) */
int store_secret_list(struct store *s, const char *env, struct secret_row **out, size_t *n, struct gerr *err);
/* deletes one version: 1 deleted, 0 none, -1 */
int store_secret_delete(struct store *s, const char *env, const char *name, int version, struct gerr *err);
/* marks every version of (env, name) removed: 1 when there was one, 0 none, -1 */
int store_secret_mark_removed(struct store *s, const char *env, const char *name, struct gerr *err);

#endif
