/*
 * migrations.h — the controller's side of database migrations (src/migrate/
 * does the SQL): a deploy's up-migrations between its pre-checks and its
 * revision's creation (deployment state `migrating`), the state a restart
 * finds, and the jobs behind `gantry db status|history|up|down`. Every
 * database access runs on a thread of its own; the loop only starts jobs
 * and takes their results (mig_flow_tick, from gates_tick).
 * docs/internals/migrate.md.
 */
#ifndef GANTRY_DAEMON_MIGRATIONS_H
#define GANTRY_DAEMON_MIGRATIONS_H
#include "common.h"
#include "store/store_records.h"

struct json_t;
struct svc_config;
struct svcenv;

/*
 * A deployment whose gates and pre-checks passed: when its config has
 * migrations, records d as `migrating`, starts its job and returns the
 * reply ({"state": "migrating", "deployment"}); the deploy starts (or
 * fails, with a `migration_failed` event and webhook) when the job ends.
 * NULL: no migrations, start it now.
 */
struct json_t *mig_flow_deploy(struct deployment_row *d);
/* finished jobs: deployments started or failed, CLI jobs kept for polling */
void mig_flow_tick(void);
/*
 * At start: a deployment left `migrating` by a controller that died. Its
 * migration is not run again: a job waits for the lock (the old session's
 * end releases it), reads the database's version, and the deployment is
 * failed with that state in its reason and a `migration_interrupted` event.
 */
void mig_flow_resume(const struct deployment_row *d);

/*
 * `gantry db ACTION`: status, history, up, down, restore (to: the revision
 * whose snapshot is restored). cfg is the service's
 * resolved config (its env has the database URL), dir its revision's
 * artifact directory. Returns a new reply: {"ok", "job"} to poll with
 * mig_flow_job, or an error.
 */
struct json_t *mig_flow_cli(const char *action, const char *svc, const char *env,
			    const struct svc_config *cfg, const char *dir, int revision,
			    int64_t to, const char *by);
/* where the snapshot taken before revision's up-migrations is (owned by the caller) */
char *mig_flow_snapshot_path(const char *svc, const char *env, int revision, const char *url);
/* keep_revisions pruned revision `revision`: its snapshot goes with it (HOME/snapshots) */
void mig_flow_snapshot_prune(const char *svc, const char *env, int revision);
/* a CLI job: {"ok", "done": false} while it runs, then its result (kept 10 minutes) */
struct json_t *mig_flow_job(int64_t id);

/*
 * A rollback of se from revision cur to revision to, from their files
 * alone (no database access): 0 nothing to undo (no migrations, or to's
 * files reach as far as cur's), 1 down-migrations needed (*down_to: the
 * version to's files go up to; *note says which), -1 they cannot run (a
 * missing or irreversible down file: err says which and what to do).
 */
int mig_flow_rollback_plan(struct svcenv *se, int cur, int to, int64_t *down_to, char *note, size_t len,
			   struct gerr *err);
/*
 * Runs the down-migrations of revision cur to down_to on a thread, then
 * creates the rollback (daemon_copy_revision, gates_rollout_created(ticket)).
 * The deployment `ticket` is `migrating` meanwhile. Returns the reply.
 */
struct json_t *mig_flow_rollback(int64_t ticket, struct svcenv *se, int cur, int to, int64_t down_to,
				 const char *by, const char *why);

/*
 * --schema=restore: the snapshot taken before revision cur's up-migrations
 * (owned by the caller), or NULL with err saying there is none.
 */
char *mig_flow_restore_check(struct svcenv *se, int cur, struct gerr *err);
/* as mig_flow_rollback, the snapshot restored instead of the downs */
struct json_t *mig_flow_rollback_restore(int64_t ticket, struct svcenv *se, int cur, int to, const char *snapshot,
					 const char *by, const char *why);

/*
 * The controller's own rollback of se from cur to to, with cur's
 * migrations.auto_down: active (a rollout that failed: the old revision
 * still serves) runs the downs under it, as `gantry db down`, and returns
 * 0; otherwise (a new rollback revision) it starts the downs and returns 1:
 * the rollback's revision is created when they succeed (then
 * gates_auto_rollback). 0 without auto_down or when nothing is to undo,
 * -1 when the job cannot start.
 */
int mig_flow_auto_rollback(struct svcenv *se, int cur, int to, const char *why, bool active);

/*
 * A rollback that only moves traffic back to revision `to`, still running
 * (a canary's or blue-green's, progressive.c): the schema is kept and a
 * `schema_kept` event says so when to needs an older one, or, with cur's
 * auto_down, the downs run under `to` as `gantry db down` by gantry.
 */
void mig_flow_traffic_rollback(struct svcenv *se, int cur, int to, const char *why);

/*
 * migrations.mode maintenance: a rollout ended (from daemon_save_rollout,
 * through gates_rollout_finished): a deploy's maintenance flow waiting for
 * its new revision turns maintenance off (complete) or starts the old
 * revision again (failed, rolled back).
 */
void mig_flow_rollout_finished(const struct rollout_row *ro);

/* the database URL of cfg (its env's migrations.database_env), or NULL with err */
const char *mig_flow_url(const struct svc_config *cfg, struct gerr *err);

#endif
