/*
 * store_flags.h — feature flag state (daemon/flags.h): every change of a
 * flag's state in an environment is a row, numbered per (environment,
 * flag) from 1; the newest is the state (none: "spec"). And each
 * environment's OFREP evaluation token.
 */
#ifndef GANTRY_STORE_FLAGS_H
#define GANTRY_STORE_FLAGS_H
#include "common.h"
#include "store/store.h"

struct flag_change_row {
	char environment[64], flag[64];
	int version;
	char from_state[72], to_state[72];
	char actor[64];
	char reason[512];
	int64_t at_ms;
};

/* appends r (its version must be the next one: the primary key refuses a race) */
int store_flag_change_add(struct store *s, const struct flag_change_row *r, struct gerr *err);
/* the newest row of every (environment, flag) (*out owned by caller) */
int store_flag_states(struct store *s, struct flag_change_row **out, size_t *n, struct gerr *err);
/* every change of env/flag, oldest first */
int store_flag_history(struct store *s, const char *env, const char *flag, struct flag_change_row **out, size_t *n,
		       struct gerr *err);

/* when the flag_off rollback lever fired for svc@env (its "flag_off" events) at or after since_ms, oldest
 * first, unix ms (*out owned by caller): DORA counts each as a recovery */
int store_flag_off_times(struct store *s, const char *svc, const char *env, int64_t since_ms, int64_t **out,
			 size_t *n, struct gerr *err);

/*
 * A flag turned off as a rollback lever, on the deployment record of the
 * revision it protected: source is "rollback_on" or "analysis NAME",
 * flag_version the flag_changes row it wrote.
 */
struct deployment_flag_off_row {
	int64_t deployment_id;
	char environment[64], flag[64];
	int revision;
	char source[96];
	char reason[512];
	int flag_version;
	int64_t at_ms;
};
int store_deployment_flag_off_add(struct store *s, const struct deployment_flag_off_row *r, struct gerr *err);
/* those of deployment id, oldest first (*out owned by caller) */
int store_deployment_flag_offs(struct store *s, int64_t id, struct deployment_flag_off_row **out, size_t *n,
			       struct gerr *err);

/* env's token into tok (len >= 80): 1 found, 0 none, -1 error */
int store_flag_token_get(struct store *s, const char *env, char *tok, size_t len, struct gerr *err);
int store_flag_token_put(struct store *s, const char *env, const char *tok, int64_t at_ms, struct gerr *err);

#endif
