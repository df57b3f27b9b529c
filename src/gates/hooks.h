/*
 * hooks.h — where the controller (src/daemon/api.c, daemon.c) calls the
 * gates and records. Implemented in src/daemon/api_ext.c. Every hook runs
 * on the event loop thread and never blocks it (checks and webhooks run on
 * their own threads).
 *
 * The calls, in order of one deploy:
 *
 *   dispatch():   json_t *deny = gates_authorize(o->name, o->mutating, req, caller);
 *                 if (deny) return deny;              (before o->fn)
 *                 reply = o->fn(req, caller);
 *                 if (o->mutating) gates_audit_op(o->name, req, caller, reply);
 *   op_deploy():  int64_t ticket = 0;
 *                 json_t *g = gates_before_rollout(req, caller, svc, env, "deploy", &ticket);
 *                 if (g) return g;                   (before create_and_roll)
 *                 reply = create_and_roll(...);
 *                 gates_rollout_created(ticket, reply);
 *   op_rollback() and op_restart(): the same with kind "rollback" / "restart"
 *                 (never blocked by windows, freezes or approvals; recorded).
 *   daemon.c:     gates_rollout_finished(&se->rollout) whenever a rollout
 *                 leaves "progressing" (complete, failed, rolled_back, superseded);
 *                 gates_tick() from the 100 ms tick (post-check results).
 *   svcenv_status(): if no rollout is progressing,
 *                 json_t *p = gates_pending_rollout(svc, env); if (p) use it as "rollout"
 *                 (phase "pending_approval").
 *
 * And one function the controller provides (weak here, so that the build
 * works before it exists): running a request as a given actor, used to start
 * an approved deploy and to roll back after a failed post-check.
 */
#ifndef GANTRY_GATES_HOOKS_H
#define GANTRY_GATES_HOOKS_H
#include "common.h"
#include "daemon/api.h"
#include "store/store.h"

/*
 * Identity and permission. The caller is the user of a valid API token
 * ("token" in the request; the CLI sends $GANTRY_TOKEN), else the OS user
 * of the socket: root and the daemon's own user are admin (and may act
 * under the name they claim, $GANTRY_USER), another user has the role
 * `gantry user add` gave that name, else viewer. An unknown token or a
 * role below the operation's (gates_op_role) is refused with code 3.
 * With a token, caller->claimed becomes the token's user. NULL = go on.
 */
json_t *gates_authorize(const char *op, bool mutating, json_t *req, struct api_caller *caller);

/* appends the audit entry of a mutating operation that succeeded (reply ok) */
void gates_audit_op(const char *op, json_t *req, const struct api_caller *caller, json_t *reply);

/*
 * Evaluates the gates of req["gates"] (see gates.h) for svc@env and records
 * the deployment. NULL: go ahead (*ticket = the deployment record, pass it
 * to gates_rollout_created). Else the reply to return: refused (code 3 with
 * "next_allowed" for a window), or waiting for approvals (code 3 with
 * "pending_approval": ID; `gantry approve ID` starts it later through
 * api_dispatch_as with "approved_deployment": ID, which this hook accepts).
 */
json_t *gates_before_rollout(json_t *req, const struct api_caller *caller, const char *svc, const char *env,
			     const char *kind, int64_t *ticket);
/* reply: what create_and_roll returned (borrowed); links the record to the rollout */
void gates_rollout_created(int64_t ticket, json_t *reply);
/* the rollout left "progressing": records the result, runs post-checks, notifies */
void gates_rollout_finished(const struct rollout_row *ro);
/* from the daemon's tick: acts on finished post-checks (rollback on failure) */
void gates_tick(void);
/* the rollout object of status for a deployment waiting for approvals, or NULL */
json_t *gates_pending_rollout(const char *svc, const char *env);
struct deployment_row;
/* the same for one such deployment (d->state pending_approval); NULL once expired */
json_t *gates_pending_json(const struct deployment_row *d);
/*
 * progressive.c: a canary or blue-green rollout moved its traffic
 * ("rollout_step") or paused ("rollout_paused"): the notify webhooks hear
 * it. Never blocks (delivery runs off the loop).
 */
void gates_notify(const char *event, const char *svc, const char *env, int revision, const char *message);

/*
 * Provided by the controller (src/daemon/api.c): runs req (borrowed) through
 * the normal dispatch as `actor` with the daemon's own (admin) identity;
 * returns the reply (new reference). Weak: NULL until the controller has it.
 */
json_t *api_dispatch_as(json_t *req, const char *actor) __attribute__((weak));

#endif
