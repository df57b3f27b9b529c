/*
 * health.h — active health checks of the proxy's backends (HAProxy's
 * `option httpchk`, nginx plus's `health_check`).
 *
 * A route with "health_check" in the routes file has every backend of
 * every revision probed: each `interval_ms`, connect, send
 * `GET path HTTP/1.1` (Host: the backend address, Connection: close) and
 * read the status line within `timeout_ms`. A 2xx or 3xx passes; a connect
 * error, a timeout, another status or no status line fails. `fall`
 * consecutive failures mark the backend down (BACKEND_HC_DOWN in
 * struct backend, read by every worker with a relaxed atomic load, the way
 * passive ejection is); `rise` consecutive passes bring it back. A backend
 * starts up. State and counters live in the backend object, so they survive
 * reloads that keep the backend.
 *
 * Threads: everything here runs on the control thread's loop (the one that
 * parses tables and serves the admin listener), never on a worker's, so a
 * slow or hanging replica cannot delay a request. At most one probe per
 * backend is in flight; each probe reads at most 256 bytes.
 */
#ifndef GANTRY_PROXY_HEALTH_H
#define GANTRY_PROXY_HEALTH_H
#include "common.h"
#include "proxy/route.h"
#include <uv.h>

struct health;

/* A checker on loop (borrowed; must outlive it). Owned by the caller. */
struct health *health_new(uv_loop_t *loop);
/*
 * Makes the set of probed backends that of t (borrowed; only read here):
 * new ones start (first probe within min(interval, 1 s)), kept ones go on
 * with their counts and the route's current settings, dropped ones stop
 * and their state goes back to BACKEND_HC_NONE.
 */
void health_sync(struct health *h, const struct route_table *t);
/* Stops every probe and closes the handles; free after the loop ran. */
void health_close(struct health *h);
void health_free(struct health *h);

#endif
