/*
 * gates_flow.h — the controller's gates and records around a rollout
 * (src/daemon/gates_flow.c): identity, audit, webhooks, the gates of a
 * deploy from the stored policy, checks, approvals, the controller's own
 * rollbacks. Every function runs on the event loop thread and never blocks
 * it (checks and webhooks run on their own threads).
 *
 * The calls, in order of one deploy:
 *
 *   dispatch() (src/api/dispatch.c): gates_identify, then the table's role
 *                 and scope (gates_need_scope), then the handler; then
 *                 gates_audit_op (it succeeded) or gates_audit_refusal.
 *   op_deploy():  resolves the config from the stored spec (daemon_resolve), then
 *                 return gates_before_rollout(req, who, svc, env, "deploy", &intent, &ticket);
 *                 (which runs the pre-checks and calls daemon_deploy_start when they pass)
 *   op_rollback() and op_restart(): json_t *g = gates_before_rollout(..., "rollback", NULL, &ticket);
 *                 if (g) return g; reply = daemon_copy_revision(...); gates_rollout_created(ticket, reply);
 *                 (never blocked by windows, freezes or approvals; recorded).
 *   daemon.c:     gates_rollout_finished(&se->rollout) whenever a rollout
 *                 leaves "progressing" (complete, failed, rolled_back, superseded);
 *                 gates_tick() from the 100 ms tick (check results, verifications).
 *   svcenv_status(): "pending" = gates_pending_rollout(svc, env) (or null): a
 *                 deployment waiting for approval, never mixed with "rollout".
 */
#ifndef GANTRY_DAEMON_GATES_FLOW_H
#define GANTRY_DAEMON_GATES_FLOW_H
#include "common.h"
#include "gates/gates.h"
#include "store/store.h"
#include "store/store_records.h"
#include "records/audit.h"
#include <jansson.h>

/*
 * Who the caller is: the user of a valid API token ("token" in the
 * request; the CLI sends $GANTRY_TOKEN), else the OS user of the socket:
 * root and the daemon's own user are admin (and act under the name they
 * claim, $GANTRY_USER), another user has the role `gantry user add` gave
 * that name, else viewer. 0, or -1 with *deny (code 3 for an unknown
 * token, a TCP caller without one) set (new reference).
 */
int gates_identify(json_t *req, const struct caller *caller, struct identity *id, json_t **deny);
/*
 * The refusal (code 3) when id's scope does not cover svc@env (see
 * identity_covers: NULL = not restricted, "" = every one), else NULL. what
 * completes "cannot ...", e.g. "run 'deploy' on".
 */
json_t *gates_need_scope(const struct identity *id, const char *what, const char *svc, const char *env);
/* appends an audit entry (details consumed; NULL = {}); failures are logged.
 * gates_audit: the controller's own decision (its uid and pid are recorded);
 * gates_audit_as: a caller's (uid/pid from SO_PEERCRED, or the TCP peer;
 * NULL = the controller's) */
void gates_audit(const char *actor, const char *action, const char *target, json_t *details);
void gates_audit_as(const struct caller *caller, const char *actor, const char *action, const char *target,
		    json_t *details);

/* appends the audit entry of a mutating operation refused (code 3): who tried what, and why not */
void gates_audit_refusal(const char *op, json_t *req, const struct caller *caller, json_t *reply);
/* appends the audit entry of a mutating operation that succeeded (reply ok) */
void gates_audit_op(const char *op, json_t *req, const struct caller *caller, json_t *reply);

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
json_t *gates_before_rollout(json_t *req, const struct identity *who, const char *svc, const char *env,
			     const char *kind, const struct deploy_intent *in, int64_t *ticket);
/*
 * traffic and scale when they raise a new revision's share of svc@env: the
 * stored windows and incident freezes apply as to a deploy's next step
 * (gates_evaluate_step; an emergency by an approver, with a reason,
 * overrides). NULL: go ahead; else the refusal (code 3). resume and
 * promote_canary are held by the rollout itself instead (progressive.c);
 * abort, pause and rollback never wait: returning to what served is
 * always allowed.
 */
json_t *gates_before_raise(json_t *req, const struct identity *who, const char *svc, const char *env,
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

/* started by the controller (src/daemon/rollouts.c): the revision and the
 * rollout of a deployment record whose gates and checks passed (d borrowed) */
json_t *daemon_deploy_start(const struct deployment_row *d);

/* shared with the API's records operations (src/api/ops_records.c) */
/* hex SHA-256 of an API token: what the users table keeps */
void gates_token_hash(const char *token, char out[AUDIT_HASH_HEX]);
json_t *gates_incident_json(const struct incident_row *r);
/* incident r concerns svc@env (NULL: any) */
bool gates_concerns(const struct incident_row *r, const char *svc, const char *env);
/* what from_env says about revision want_rev, or else the newest revision with digest */
struct promotion_fact;
int gates_find_promotion(const char *svc, const char *from_env, const char *digest, int want_rev,
			 struct promotion_fact *f, struct gerr *err);
/* the gates of req for svc@env from the stored policy (no records); *pol and *v
 * are the caller's to release; -1 with *reply set on bad input */
struct gate_policy;
struct gate_verdict;
int gates_evaluate_request(json_t *req, const struct identity *id, const char *svc, const char *env,
			   const char *kind, bool all, struct gate_policy *pol, struct gate_verdict *v, json_t **reply);
/* a deployment whose gates passed: pre-checks, else started (d updated in the store) */
json_t *gates_deployment_go(struct deployment_row *d);
/* a deployment waiting for approval whose time ran out */
bool gates_expired(const struct deployment_row *d, int64_t now);
/* what an approval of d binds to: service, environment, artifact, resolved config, spec version */
void gates_deployment_binding(const struct deployment_row *d, char *out, size_t len);
/* d's config resolved again: 0 unchanged, 1 changed (d updated, why says how), -1 unresolvable (why) */
int gates_rebind(struct deployment_row *d, char *why, size_t len);
/* an audit entry / an event of svc@env (either may be ""), for the records operations */
void gates_event(const char *svc, const char *env, int revision, const char *kind, const char *msg);
/* the stored spec's webhooks that want event hear it (data consumed) */
void gates_emit(const char *event, json_t *data);

#endif
