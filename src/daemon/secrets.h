/*
 * secrets.h — the controller's secret store (issue 17): values encrypted
 * with age to the controller's identity (HOME/secrets/identity, 0600) and
 * the environment's recipients (spec environments.E.secrets.recipients),
 * stored by version (store_secret.h); pinned into a revision's config at
 * deploy ({secret, version}, never the value); decrypted only when a
 * replica starts, into its environment or a file of its private in-memory
 * directory. docs/security.md, "Secrets".
 */
#ifndef GANTRY_DAEMON_SECRETS_H
#define GANTRY_DAEMON_SECRETS_H
#include "common.h"
#include "core/spec.h"
#include <jansson.h>

struct replica;

#define SECRET_VALUE_MAX (64 * 1024) /* a value is a credential, not a file system */
/* where a replica's secret files live: SECRETS_RUN_DIR/gantry-TAG/REPLICA (tmpfs) */
#define SECRETS_RUN_DIR "/dev/shm"

/* the controller's recipient ("age1..."), making HOME/secrets/identity at
 * first use; 0 or -1 with err */
int secrets_recipient(char out[128], struct gerr *err);

/* a new version of env's secret name holding val (len bytes, borrowed),
 * encrypted to the controller and env's recipients; *version set. by: who */
int secrets_put(const char *env, const char *name, const void *val, size_t len, const char *by, int *version,
		struct gerr *err);
/* the plain value of a version (0: the newest): *val owned, free with
 * age_secret_free(*val, *len); 1 found, 0 no such secret/version, -1 error */
int secrets_read(const char *env, const char *name, int version, uint8_t **val, size_t *len, struct gerr *err);

/*
 * Pins every reference of cfg to a version (0: the newest), checking that
 * each exists. NULL when all do; else a refusal (code 2) naming the
 * secret and where spec_name says it (FILE:LINE:COL: error: ...).
 */
json_t *secrets_pin(struct svc_config *cfg, const char *spec_name);

/*
 * The SOPS values of cfg ({sops: PATH}, version 0): the environment's
 * file (environments.E.secrets.file) as the deploy carried it (sops:
 * {name, text}, borrowed; the ciphertext, never plain) is decrypted with
 * the controller's identity, its MAC checked, every PATH looked up, and
 * the file stored as a version of SECRET_SOPS (the same bytes as the
 * newest: that version), which every such reference is pinned to. NULL
 * when all is well (or nothing to do); else a refusal (code 2) naming the
 * file and where spec_name says the reference is.
 */
json_t *secrets_sops_pin(struct svc_config *cfg, const json_t *sops, const char *spec_name);

/* every reference of cfg without a version takes the version the same
 * secret (or SOPS file) has in config (JSON, borrowed), if it names it */
void secrets_pin_like(struct svc_config *cfg, const char *config);

/* deletes versions of (env, name) no kept revision uses and that are not
 * the newest (nor, when removed, any that is unused); logs on error */
void secrets_prune(const char *env, const char *name);
/* after revision number of (svc, env) was pruned (keep_revisions): secrets_prune
 * for every secret (and the SOPS file) its config names */
void secrets_prune_revision(const char *svc, const char *env, int number);
/* whether any revision of env that is not pruned uses (name, version) (version 0: any) */
bool secrets_in_use(const char *env, const char *name, int version);

/*
 * Before r starts: its env with its secrets decrypted into r->senv, and
 * its files written into its private directory (0700, its user's) named
 * in r->secrets_dir. 0, or -1 with err (the replica must not start).
 * Nothing to do (0) for a config without secrets.
 */
int secrets_replica_prepare(struct replica *r, struct gerr *err);
/* zeroes and frees r->senv, removes r's directory */
void secrets_replica_release(struct replica *r);

/*
 * `secret rotate --restart`: every service environment of env whose target
 * revision uses name gets a restart revision with the newest version
 * pinned. Returns a JSON array of {service, revision} (or of {service,
 * error}); by: the actor.
 */
json_t *secrets_restart_users(const char *env, const char *name, const char *by);

/* zeroes values and frees an env list */
void secrets_kv_free(struct kv *kv, size_t n);

#endif
