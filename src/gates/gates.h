/*
 * gates.h — what must hold before a rollout may start: permission (role),
 * deploy windows, incident freezes, promotion source and soak, approvals.
 * Pure: the caller looks up the facts (open incidents, the promotion source,
 * approvals) and passes them in with the clock; see docs/internals/records.md.
 *
 * The gate settings of an environment come from the controller's stored spec
 * (gspec_gates, as gate_policy JSON, see gate_policy_from_json); a request
 * never carries them.
 */
#ifndef GANTRY_GATES_GATES_H
#define GANTRY_GATES_GATES_H
#include "common.h"
#include "core/spec_gates.h"
#include "store/store_records.h"

struct json_t;

/* who is calling: from the Unix socket's peer credentials (SO_PEERCRED),
 * or a TCP client of the API (src/api/tcp.c), whose only identity is its token */
struct caller {
	uid_t uid;          /* (uid_t)-1 when remote */
	pid_t pid;
	char user[64];      /* the OS user name of uid; "tcp:ADDR:PORT" when remote */
	char claimed[64];   /* the acting name: the identity's, or "deployed_by" of the daemon's owner */
	bool remote;        /* over TCP: never the daemon's OS user, a token is required */
};
/* the name to record as the actor: the claimed name, else the OS user (borrowed from caller) */
const char *caller_actor(const struct caller *caller);

struct identity {
	char name[64];
	int role;
	bool by_token;       /* authenticated by an API token (else the OS user) */
	/* the role's scope (users row): comma-separated names, "" = every one */
	char environments[USER_SCOPE_LEN];
	char services[USER_SCOPE_LEN];
	/* borrowed, for the request's length: who from the kernel, recorded in audit
	 * entries made as this identity; NULL: the controller itself (serve -f) */
	const struct caller *caller;
};

/*
 * Whether id's scope covers an operation on svc@env; the scope applies to
 * every role (an admin is unrestricted only when its scope is empty).
 * Per axis: NULL = the operation is not restricted by it (covered); "" =
 * it concerns every service (environment), covered only by an unscoped
 * axis (a global incident); a name = covered when the axis is unscoped or
 * lists it.
 */
bool identity_covers(const struct identity *id, const char *svc, const char *env);
/*
 * The role with its scope, for messages: "deployer", "deployer for
 * staging,dev", "deployer for services web,api", "deployer for staging and
 * services web". Written into buf (the caller's), which is returned.
 */
const char *identity_role_text(const struct identity *id, char *buf, size_t len);
/*
 * A scope list from a request's JSON array of names (a = NULL, null or []:
 * "" = all) into out (the caller's, len bytes). Each item must be a
 * service/environment name (spec_name_valid); an error names the JSON
 * pointer, ptr + "/INDEX" (ptr like "/environments"), what names the kind
 * ("environment"). a is borrowed.
 */
int scope_from_json(const struct json_t *a, const char *ptr, const char *what, char *out, size_t len,
		    struct gerr *err);
/* a scope list as a JSON array of names ([] for ""); a new reference */
struct json_t *scope_to_json(const char *list);

struct gate_policy {
	int approvals;             /* 0 = none needed */
	int64_t approval_ttl;      /* seconds an approval stays valid; default 24h */
	char **allow, **deny;      /* window strings (window.h); owned */
	size_t nallow, ndeny;
	char timezone[64];         /* "" = UTC */
	char **freeze;             /* severities that freeze the environment; owned */
	size_t nfreeze;
	char promote_from[64];     /* "" = any version may be deployed */
	int64_t min_soak;          /* seconds the source revision must have served */
	struct json_t *checks;     /* {"pre": [...], "post": [...]} or NULL; owned */
	char rollback_incident[8]; /* severity of the incident an automatic rollback opens; default P2; "none" */
};

/*
 * From the request's "gates" object (NULL or null: no gates):
 *   {"approvals": N, "approval_ttl": "24h", "windows": {"allow": [..], "deny": [..],
 *    "timezone": "Europe/Berlin"}, "freeze_on_incident": ["P0","P1"],
 *    "promote_from": "staging", "min_soak": "30m", "checks": {"pre": [..], "post": [..]}}
 * Durations are strings as in the spec. Every window and the zone are checked.
 * out is the caller's storage (gate_policy_release).
 */
int gate_policy_from_json(const struct json_t *j, struct gate_policy *out, struct gerr *err);
void gate_policy_release(struct gate_policy *p);

/* what the caller found about the promotion source (promote_from) */
struct promotion_fact {
	bool found;                /* a revision of the source environment has the deployed digest */
	int revision;
	char status[24];           /* its revision status: serving, superseded, ... */
	int64_t serving_since;     /* unix seconds its rollout completed; 0 = never */
};

struct gate_input {
	const struct gate_policy *policy;  /* may be NULL: no gates */
	const char *service, *environment;
	const char *kind;                  /* deploy | promote | rollback | restart */
	const struct identity *who;
	bool emergency;
	const char *reason;                /* required with emergency */
	int64_t now;                       /* unix seconds (clock_now_s) */
	const struct incident_row *incidents; /* the open incidents; borrowed */
	size_t nincidents;
	const struct promotion_fact *promotion; /* NULL when promote_from is unset */
	bool approved;                     /* the approvals were already collected */
	bool all;                          /* dry run: evaluate every gate even after a refusal */
};

enum gate_result { GATE_ALLOW = 0, GATE_REFUSE, GATE_PENDING_APPROVAL };

struct gate_verdict {
	enum gate_result result;
	int code;                 /* exit code of a refusal: 3 (gate, permission) or 2 (bad input) */
	char reason[768];
	int64_t next_allowed;     /* a window refusal: the next allowed time (unix s), else 0 */
	struct json_t *gates;     /* {"permission": "passed", "window": "passed|overridden|refused|none", ...}; owned */
};

/*
 * Order: permission, emergency sanity, window, freeze, promotion, approvals.
 * Rollbacks and restarts are never blocked by windows, freezes, promotion
 * rules or approvals (they return to what already ran). An emergency skips
 * windows, freezes and approvals (not permissions, not promotion), needs
 * the approver or admin role and a reason. out->gates is set in every case.
 */
void gates_evaluate(const struct gate_input *in, struct gate_verdict *out);
/*
 * The gates re-checked before each traffic increase of a rollout that
 * already started: windows and incident freezes only (permission,
 * promotion and approvals were decided at the start and do not change).
 * in->emergency overrides both, as at the start. GATE_REFUSE with the
 * reason when one is closed now.
 */
void gates_evaluate_step(const struct gate_input *in, struct gate_verdict *out);
void gate_verdict_release(struct gate_verdict *v);

/*
 * Approvals of one deployment: the number of distinct approvers, other than
 * the requester, whose approval is younger than ttl seconds at now. A
 * rejection by anyone but the requester returns -1 (rejected_by set).
 */
int approvals_count(const struct approval_row *a, size_t n, const char *requester, int64_t now,
		    int64_t ttl, char *rejected_by, size_t len);

#endif
