/*
 * docker-int.h — what docker.c lends to the other Engine clients of this
 * module (swarm.c). Not for use outside src/runtime/: the rest of gantry
 * goes through docker.h and swarm.h.
 */
#ifndef GANTRY_DOCKER_INT_H
#define GANTRY_DOCKER_INT_H
#include "common.h"
#include <jansson.h>
#include "runtime/docker.h"

/*
 * One request to the Engine, as every docker_* call makes it: the
 * negotiated /vVERSION prefix, bounded by timeout_ms (0: DOCKER_TIMEOUT_MS),
 * body (JSON, may be NULL) sent as application/json.
 *
 * Returns the HTTP status (>= 100), or -1 with err when the Engine cannot
 * be reached or the transfer failed ("docker: cannot reach …").
 * A 2xx answer: *reply (if reply is not NULL) is its body parsed as JSON
 * (owned by the caller), NULL when the body is empty; a body that is not
 * JSON is -1 with err. Any other status: *reply is NULL and err is set to
 * "OP: the Engine's message" — the caller decides whether that status is
 * an error (a 404 may mean "absent").
 */
long docker__request(struct docker *d, const char *op, const char *method, const char *path, const char *body,
		     long timeout_ms, json_t **reply, struct gerr *err);
/* s escaped for a query string (owned by the caller) */
char *docker__esc(const char *s);
/* RFC 3339 to unix ms; 0 for Go's zero time and anything unreadable */
int64_t docker__rfc3339_ms(const char *s);

#endif
