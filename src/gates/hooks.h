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
 *   op_deploy():  resolves the config from the stored spec (daemon_resolve), then
 *                 return gates_before_rollout(req, caller, svc, env, "deploy", &intent, &ticket);
 *                 (which runs the pre-checks and calls daemon_deploy_start when they pass)
 *   op_rollback() and op_restart(): json_t *g = gates_before_rollout(..., "rollback", NULL, &ticket);
 *                 if (g) return g; reply = copy_revision(...); gates_rollout_created(ticket, reply);
 *                 (never blocked by windows, freezes or approvals; recorded).
 *   daemon.c:     gates_rollout_finished(&se->rollout) whenever a rollout
 *                 leaves "progressing" (complete, failed, rolled_back, superseded);
 *                 gates_tick() from the 100 ms tick (post-check results).
 *   svcenv_status(): "pending" = gates_pending_rollout(svc, env) (or null): a
 *                 deployment waiting for approval, never mixed with "rollout".
 *
 * And two functions the controller provides: running a request as a given
 * actor (a rollback after a failed post-check), and starting a deployment.
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

struct identity;
/* who the caller is (token, else socket peer): 0, or -1 with *deny set (new reference) */
int gates_identify(json_t *req, const struct api_caller *caller, struct identity *id, json_t **deny);
/* appends an audit entry (details consumed; NULL = {}); failures are logged.
 * gates_audit: the controller's own decision (its uid and pid are recorded);
 * gates_audit_as: a caller's (uid/pid from SO_PEERCRED, or the TCP peer;
 * NULL = the controller's) */
void gates_audit(const char *actor, const char *action, const char *target, json_t *details);
void gates_audit_as(const struct api_caller *caller, const char *actor, const char *action, const char *target,
		    json_t *details);

/* appends the audit entry of a mutating operation refused (code 3): who tried what, and why not */
void gates_audit_refusal(const char *op, json_t *req, const struct api_caller *caller, json_t *reply);
/* appends the audit entry of a mutating operation that succeeded (reply ok) */
void gates_audit_op(const char *op, json_t *req, const struct api_caller *caller, json_t *reply);

/* what a deploy rolls out, resolved by the controller (daemon_resolve) */
struct deploy_intent {
	const char *version, *digest;
	const char *config;          /* JSON of the resolved config */
	const char *config_digest;   /* its hex SHA-256 */
	int64_t spec_version;        /* the stored spec version it was resolved from */
};

/*
 * Evaluates the gates of svc@env from the controller's stored policy (never
 * from the request) and records the deployment. For a deploy (in != NULL)
 * the reply is always returned: refused (code 3, "next_allowed" for a
 * window), waiting for approvals (code 3, "pending_approval": ID), running
 * its pre-deployment checks ({"ok": true, "deployment": ID, "state":
 * "pre_checks"}), or started (daemon_deploy_start's reply). For a rollback
 * or restart (in NULL): NULL means go ahead (*ticket = the deployment
 * record, pass it to gates_rollout_created), else the refusal.
 */
json_t *gates_before_rollout(json_t *req, const struct api_caller *caller, const char *svc, const char *env,
			     const char *kind, const struct deploy_intent *in, int64_t *ticket);
/*
 * traffic, scale, promote_canary and resume when they raise a new
 * revision's share of svc@env: the stored windows and incident freezes
 * apply as to a deploy's next step (gates_evaluate_step; --emergency
 * overrides). NULL: go ahead; else the refusal (code 3). Abort, pause and
 * rollback never call it: returning to what served never waits.
 */
json_t *gates_before_raise(json_t *req, const struct api_caller *caller, const char *svc, const char *env,
			   const char *op);
/* reply: what create_and_roll returned (borrowed); links the record to the rollout */
void gates_rollout_created(int64_t ticket, json_t *reply);
/* the rollout left "progressing": records the result, runs post-checks, notifies */
void gates_rollout_finished(const struct rollout_row *ro);
/*
 * The controller rolled svc@env back on its own from revision `from` to
 * `to` (analysis, rollback_on, crash loop, deadline): audited, an incident
 * opened with the environment's protection.rollback_incident severity
 * (default P2; none: no incident) and announced to the webhooks; and the
 * target is verified by the stored post-checks once a replica of it is
 * ready (a deployment record of kind rollback by gantry). to 0: no
 * verification (the rollback has a record of its own).
 */
void gates_auto_rollback(const char *svc, const char *env, int from, int to, const char *why);/* once the desired state is restored after a start: checks that were running
 * when the controller stopped (deployments in pre_checks or post_checks) run again */
void gates_resume_checks(void);
/* from the daemon's tick: acts on finished pre-checks (start or refuse) and
 * post-checks (rollback on failure) */
void gates_tick(void);
/* status's "pending" object of the newest deployment of svc@env waiting for
 * approvals: {"deployment", "phase", "message", "version", "requester",
 * "approvals_needed", "expires_at", "spec_version"}, or NULL */
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
 * Provided by the controller (src/daemon/api.c). api_dispatch_as runs req
 * (borrowed) through the normal dispatch as `actor` with the daemon's own
 * (admin) identity (a rollback after a failed post-check); reply: new
 * reference. daemon_deploy_start creates the revision and the rollout of
 * a deployment record whose gates and checks passed (d borrowed).
 */
json_t *api_dispatch_as(json_t *req, const char *actor);
json_t *daemon_deploy_start(const struct deployment_row *d);

#endif
