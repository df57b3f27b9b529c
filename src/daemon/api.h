/*
 * api.h — how an API operation is written (src/daemon/api*.c).
 *
 * An operation takes the request object (borrowed) and the caller, and
 * returns the reply (new reference): {"ok": true, ...} or api_error(...).
 * A failed operation changes nothing. Add an operation by adding a row to
 * a table of `struct api_op`; api.c looks up api_ops (its own) and then
 * api_ops_ext (src/daemon/api_ext.c: gates, records, promotion).
 */
#ifndef GANTRY_DAEMON_API_H
#define GANTRY_DAEMON_API_H
#include "common.h"
#include <jansson.h>

/* who is calling: from the Unix socket's peer credentials (SO_PEERCRED),
 * or a TCP client (api_tcp.c), whose only identity is its token */
struct api_caller {
	uid_t uid;          /* (uid_t)-1 when remote */
	pid_t pid;
	char user[64];      /* the OS user name of uid; "tcp:ADDR:PORT" when remote */
	char claimed[64];   /* "deployed_by" the client sent ($GANTRY_USER/$USER), may be empty */
	bool remote;        /* over TCP: never the daemon's OS user, a token is required */
};

struct api_op {
	const char *name;
	json_t *(*fn)(json_t *req, const struct api_caller *caller);
	bool mutating;      /* refused while shutting down or restoring */
};

extern const struct api_op api_ops_ext[]; /* terminated by { NULL } */
extern const struct api_op api_ops_spec[]; /* api_spec.c: apply, spec_show, spec_history, spec_diff */

struct identity;
/*
 * Applies (or, dry, only diffs) req["spec"] ({"name", "text"}) as who:
 * spec_owner.c decides. expect >= 0: refused unless the stored version is
 * expect. via: "apply", "deploy", "diff" (recorded). Reply: new reference.
 */
/* obj as {"name": FILE, "text": YAML} (ptr names it in errors): 0, or -1 with *err */
int api_spec_arg(json_t *obj, const char *ptr, const char **name, const char **text, size_t *len, json_t **err);
json_t *api_spec_from_request(json_t *req, const struct identity *who, int64_t expect, bool dry, const char *via);

/* {"ok": false, "error": MESSAGE, "code": CODE}; CODE is the CLI exit code
 * (1 failed, 2 bad input, 3 refused by a gate) */
json_t *api_error(int code, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* a string member; a missing required one (or a non-string) sets *err once,
 * naming the JSON pointer */
const char *api_str(json_t *req, const char *key, bool required, json_t **err);
/* a non-negative integer member, def when absent */
int api_int(json_t *req, const char *key, int def, json_t **err);
/* the refusal of a request carrying a field only the controller decides
 * (gates, config, notify, checks, approved_deployment), else NULL */
json_t *api_client_only_fields(json_t *req);
/* runs one request (borrowed) as over the socket; reply: new reference */
json_t *api_dispatch(json_t *req, struct api_caller *caller);
/* op is the name of an operation */
bool api_op_known(const char *op);
/* the name to record as the actor: the claimed name, else the OS user */
const char *api_actor(const struct api_caller *caller);

#endif
