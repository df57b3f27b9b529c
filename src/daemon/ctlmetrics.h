/*
 * ctlmetrics.h — the controller's own /metrics (Prometheus text format
 * 0.0.4): the store fault, HOME's filesystem, every service environment's
 * phase and replicas, rollouts recorded. Served by the TCP API
 * (`serve --api`, `GET /metrics` with a viewer's token: src/api/tcp.c);
 * why there and not on the proxy's admin listener:
 * docs/internals/controller.md, "The controller's /metrics".
 *
 * Rendered from the `status` reply (the same object `gantry status -o
 * json` prints), so that a scrape and `status` never disagree on a phase.
 * Apart from daemon.h, as disk.h, so that the API can use it and the
 * daemon's header is left alone.
 */
#ifndef GANTRY_DAEMON_CTLMETRICS_H
#define GANTRY_DAEMON_CTLMETRICS_H
#include "common.h"
#include "util/buf.h"

struct json_t;

/* rollouts recorded in the store for one service environment */
struct ctlmetrics_rollouts {
	char service[64], environment[64];
	long long total;
};

/*
 * Pure: the exposition of status (borrowed: the status reply, {"status":
 * [...], "store": {...}, "disk": {...}}), the store's failure count and
 * rollouts (borrowed, n rows) appended to out. 0, or -1 (out unchanged)
 * when it does not fit out's bound.
 */
int ctlmetrics_format(struct json_t *status, long long store_failures, const struct ctlmetrics_rollouts *rollouts,
		      size_t n, struct hbuf *out);
/*
 * On the loop: ctlmetrics_format with the rollouts the store recorded per
 * service environment (a store that cannot be read leaves them out).
 */
int ctlmetrics_render(struct json_t *status, struct hbuf *out);

#endif
