/*
 * store_release.h — release records (daemon/releases.c): one row per
 * `gantry release`, whose services JSON is the state the controller drives
 * the release from (and resumes it from after a restart).
 */
#ifndef GANTRY_STORE_RELEASE_H
#define GANTRY_STORE_RELEASE_H
#include "common.h"
#include "store/store.h"

struct release_row {
	int64_t id;
	char environment[64];
	char state[16];        /* pending (approval) | running | succeeded | failed | rolling_back | rolled_back
	                        * | paused | refused | rejected | expired | aborted */
	char on_failure[16];   /* rollback | pause | continue */
	char created_by[64];
	int64_t created_at, updated_at; /* unix ms */
	char message[512];
	char *gates;           /* JSON: how the gates were evaluated; owned */
	char *services;        /* JSON array, one object per service (docs/api.md "release"); owned */
};

void release_row_release(struct release_row *r);
/* a new row (r->id set) */
int store_release_create(struct store *s, struct release_row *r, struct gerr *err);
/* state, message, updated_at, gates and services of row r->id */
int store_release_update(struct store *s, const struct release_row *r, struct gerr *err);
/* 1 found (r owned by caller: release_row_release), 0 none, -1 */
int store_release_get(struct store *s, int64_t id, struct release_row *r, struct gerr *err);
/* env's releases (NULL: every environment), newest first; active: only pending, running or rolling_back ones */
int store_release_list(struct store *s, const char *env, bool active, struct release_row **out, size_t *n,
		       struct gerr *err);

#endif
