/*
 * api.h — the daemon's API (src/api/): one table of operations, one
 * dispatcher that identifies and authorises every request, the handlers.
 *
 * An operation is a row of api_ops (src/api/table.c):
 *   { name, handler, mutating, minimum role, scope, audited, fields }
 * dispatch() (src/api/dispatch.c) refuses a request carrying a field only
 * the controller decides, identifies the caller (token, else the socket's
 * peer), checks the role and the scope, runs the handler with the
 * controller and that identity, and audits the decision (a change that
 * succeeded, or a refusal). A handler takes the request (borrowed) and
 * returns the reply (new reference): {"ok": true, ...} or reply_error(...).
 * A failed operation changes nothing. Adding an operation: a handler in
 * the ops_*.c file of its subject, a row in table.c, docs/api.md.
 */
#ifndef GANTRY_API_API_H
#define GANTRY_API_API_H
#include "common.h"
#include "daemon/reply.h" /* reply_error: what a handler answers */
#include "gates/gates.h"
#include <jansson.h>

struct daemon;

/* what a handler knows of its caller: identified and authorised */
struct api_ctx {
	const struct caller *caller;
	struct identity who;
};

enum api_scope {
	API_SCOPE_NONE = 0,  /* not limited by a role's scope (reads; checked in the handler) */
	API_SCOPE_TARGET,    /* the request's "service" and "environment" must be in the caller's scope */
	API_SCOPE_ALL,       /* only a caller whose scope is every service and environment (users) */
};

struct api_op {
	const char *name;
	json_t *(*fn)(struct daemon *ctl, json_t *req, const struct api_ctx *c); /* NULL: streamed by tcp.c */
	bool mutating;      /* refused while shutting down or restoring; audited */
	int role;           /* enum role: the least role that may run it */
	enum api_scope scope;
	bool audited;       /* the handler writes its own audit entry when it succeeds */
	const char *fields; /* the request members it takes, space-separated, besides op, token and
			     * deployed_by: any other is refused (400) naming it */
};

extern const struct api_op api_ops[]; /* table.c, terminated by { NULL } */

/* a string member; a missing required one (or a non-string) sets *err once,
 * naming the JSON pointer */
const char *api_str(json_t *req, const char *key, bool required, json_t **err);
/* a non-negative integer member, def when absent */
int api_int(json_t *req, const char *key, int def, json_t **err);
/* the refusal of a request carrying a field only the controller decides
 * (gates, config, notify, checks, approved_deployment), else NULL */
json_t *api_client_only_fields(json_t *req);
/*
 * Identifies the caller of operation op (a row of the table) and checks its
 * role and scope: NULL (and *who) when it may run, else the refusal. The
 * dispatcher calls it for every request; tcp.c for the artifact store's
 * streamed requests.
 */
json_t *api_authorize(const char *op, json_t *req, struct caller *caller, struct identity *who);
/* runs one request (borrowed) as over the socket; reply: new reference */
json_t *api_dispatch(json_t *req, struct caller *caller);
/* runs req (borrowed) as `actor` with the daemon's own (admin) identity
 * (the controller acting by itself: a rollback after a failed post-check) */
json_t *api_dispatch_as(json_t *req, const char *actor);
/* op is the name of an operation */
bool api_op_known(const char *op);

/* the Unix socket HOME/api.sock (dispatch.c) */
int api_listen(void);
void api_close(void);
/* what the daemon calls (daemon.h): these listeners, api_tcp_listen and
 * api_dispatch_as; `gantry serve` hands it to daemon_run */
extern const struct daemon_api_hooks api_daemon_hooks;

/* ops_spec.c: obj as {"name": FILE, "text": YAML} (ptr names it in errors): 0, or -1 with *err */
int api_spec_arg(json_t *obj, const char *ptr, const char **name, const char **text, size_t *len, json_t **err);
/*
 * Applies (or, dry, only diffs) req["spec"] ({"name", "text"}) as who:
 * spec_owner.c decides. expect >= 0: refused unless the stored version is
 * expect. via: "apply", "deploy", "diff" (recorded). Reply: new reference.
 */
json_t *api_spec_from_request(json_t *req, const struct identity *who, int64_t expect, bool dry, const char *via);

/* the handlers, one per row of the table */
#define API_HANDLER(name) json_t *name(struct daemon *ctl, json_t *req, const struct api_ctx *c)
API_HANDLER(op_db_status); API_HANDLER(op_db_history); API_HANDLER(op_db_up); API_HANDLER(op_db_down);
API_HANDLER(op_db_job); API_HANDLER(op_db_restore);
API_HANDLER(op_ping); API_HANDLER(op_upgrade); API_HANDLER(op_status); API_HANDLER(op_history); API_HANDLER(op_events);
/*
 * The image id a deploy of svc@env pins when the service runs an image
 * (ops_service.c, shared with op_release): *docker says whether it does;
 * then out holds the id (64 hex digits), or "" for an image: tag the Engine
 * lacks and no id is known yet (pulled once recorded, by a deploy). digest
 * and image_ref as a deploy's request. NULL, or the refusal.
 */
json_t *api_docker_pin(struct daemon *ctl, const char *svc, const char *env, const char *version,
		       const char *digest, const char *image_ref, bool *docker, char *out, size_t len);
API_HANDLER(op_deploy); API_HANDLER(op_release); API_HANDLER(op_release_status); API_HANDLER(op_releases); API_HANDLER(op_release_command); API_HANDLER(op_release_promote); API_HANDLER(op_rollback); API_HANDLER(op_restart); API_HANDLER(op_scale);
API_HANDLER(op_traffic); API_HANDLER(op_rollout_command);
API_HANDLER(op_whoami); API_HANDLER(op_user_add); API_HANDLER(op_user_remove); API_HANDLER(op_user_list);
API_HANDLER(op_incident_open); API_HANDLER(op_incident_close); API_HANDLER(op_incident_list);
API_HANDLER(op_approve); API_HANDLER(op_reject); API_HANDLER(op_deployments);
API_HANDLER(op_audit); API_HANDLER(op_audit_verify); API_HANDLER(op_promotion_source);
API_HANDLER(op_gates_check); API_HANDLER(op_dora); API_HANDLER(op_nodes);
API_HANDLER(op_apply); API_HANDLER(op_spec_show); API_HANDLER(op_spec_history); API_HANDLER(op_spec_diff);
API_HANDLER(op_secret_set); API_HANDLER(op_secret_list); API_HANDLER(op_secret_rm); API_HANDLER(op_secret_get);
API_HANDLER(op_secret_recipient);
API_HANDLER(op_maintenance); API_HANDLER(op_maintenance_status); /* ops_maint.c */
API_HANDLER(op_flag_set); API_HANDLER(op_flag_list); API_HANDLER(op_flag_history); API_HANDLER(op_flag_token); /* ops_flags.c */

#endif
