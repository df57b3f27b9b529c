/*
 * maintenance.h — maintenance mode of a service environment, the
 * controller's side (maintenance.c): the state kept in the store
 * (store/store_maint.h), carried to the proxy in the routes file
 * ("maintenance" of the route, proxy/maint.h), with an event, a webhook
 * (maintenance_on / maintenance_off) and an audit entry for each change.
 *
 * While it is on, replicas, probes, rollouts and deploys go on as usual (a
 * breaking migration's flow deploys under maintenance: issue 16): only the
 * proxy's answer to clients changes.
 *
 * The bypass secrets (allow_headers' values) are in the store and in the
 * routes file (both 0600) and nowhere else: events, webhooks, audit
 * entries, logs and the status answer name the headers only.
 */
#ifndef GANTRY_DAEMON_MAINTENANCE_H
#define GANTRY_DAEMON_MAINTENANCE_H
#include "common.h"
#include "proxy/maint.h"
#include <jansson.h>

struct daemon;
struct caller;

struct maintenance_header {
	char name[MAINT_HEADER_NAME_MAX + 1];   /* lowercase */
	char value[MAINT_HEADER_VALUE_MAX + 1]; /* the bypass secret */
};

struct maintenance {
	char message[MAINT_MESSAGE_MAX + 1]; /* "" = the proxy's default text */
	int retry_after_s;                   /* 0 = MAINT_RETRY_AFTER_DEFAULT */
	struct maintenance_header allow[MAINT_HEADERS_MAX];
	size_t nallow;
};

/*
 * Checks m (borrowed): 0, or -1 with err naming the field as the API does
 * ("/message: must not contain CR or LF", "/allow_headers/1: ...").
 */
int maintenance_check(const struct maintenance *m, struct gerr *err);

/*
 * Turns maintenance of svc@env on (m, borrowed) or off (m NULL), as actor
 * (borrowed; the controller's own decision: a deploy flow). The service
 * environment must have been deployed. Stored first, then an event, a
 * webhook, an audit entry and the routes file (the proxy installs it at
 * its next reload: daemon_maintenance_in_force says when). Setting what is
 * already set changes nothing and tells nobody (*changed false).
 * 0 (changed may be NULL), or -1 with err and nothing changed.
 */
int daemon_maintenance_set(struct daemon *d, const char *svc, const char *env, const struct maintenance *m,
			   const char *actor, struct gerr *err);
/* the same for the API: the audit entry is the caller's (caller: borrowed) */
int daemon_maintenance_set_by(struct daemon *d, const char *svc, const char *env, const struct maintenance *m,
			      const char *actor, const struct caller *caller, bool *changed, struct gerr *err);

/* whether svc@env is in maintenance (as stored); *m filled when given */
bool daemon_maintenance_get(struct daemon *d, const char *svc, const char *env, struct maintenance *m);
/*
 * Whether the proxy answers as stored for svc@env: it confirmed a routes
 * generation at least as new as the one written with the last change.
 * (A deploy flow waits for this before it stops the old replicas.)
 */
bool daemon_maintenance_in_force(struct daemon *d, const char *svc, const char *env);

/* the route's "maintenance" object for the routes file (new reference), or NULL when off */
json_t *daemon_maintenance_route(struct daemon *d, const char *svc, const char *env);

/*
 * {"service", "environment", "on", "message", "retry_after_s",
 *  "allow_headers": [NAMES], "set_by", "set_at", "in_force"} for each
 * service environment in maintenance (svc/env NULL: all), or one with
 * "on": false when both are given and it is not: new reference. No secret.
 */
json_t *daemon_maintenance_json(struct daemon *d, const char *svc, const char *env);

void daemon_maintenance_free(void);

#endif
