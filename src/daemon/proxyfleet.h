/*
 * daemon/proxyfleet.h — several proxies behind one controller (issue 15,
 * docs/internals/fleet.md "Proxies on every node"): the per-revision
 * windows of every proxy summed into the one /windows document the
 * analyses read (daemon/metrics.c), and the rule for a proxy that stops
 * reporting.
 */
#ifndef GANTRY_DAEMON_PROXYFLEET_H
#define GANTRY_DAEMON_PROXYFLEET_H
#include "common.h"
#include "util/buf.h"

/* one proxy's GET /windows, as read by the controller */
struct fleet_read {
	const char *proxy; /* its name (the admin address); borrowed */
	const char *doc;   /* the /windows body; NULL: the read failed (no answer, not 200) */
	int64_t read_ms;   /* when the answer arrived (the controller's clock) */
};

/* what the sum said about one proxy */
struct fleet_proxy {
	char proxy[128];
	bool reporting;      /* its answer is in this sum (fresh and parsed) */
	int64_t last_ok_ms;  /* its last answer used, 0: never */
	int64_t generation;  /* the route generation its last answer ran, -1: none yet */
	uint64_t epoch;      /* its process (the "epoch" of /windows), 0: none said */
	int restarts;        /* epochs changed under us (each one stitched) */
	int gaps;            /* came back after being stale: the traffic in between is not counted */
};

struct fleet_sum; /* the counters carried from one sum to the next */
struct fleet_sum *fleet_sum_new(void);
void fleet_sum_free(struct fleet_sum *s);

/* more than half: the proxies that must report for a promotion (docs/internals/fleet.md) */
static inline size_t fleet_quorum(size_t total)
{
	return total / 2 + 1;
}

/*
 * Sums the reads of every proxy of the fleet (n of them, the whole fleet:
 * a proxy that is not in reads is forgotten) into one /windows document,
 * appended to out, of the shape `gantry proxy` serves and metrics__ingest
 * reads: per (service, environment, revision) the cumulative counters,
 * with one fleet "epoch" that never changes and counters that never go
 * down, so that windows (differences of two sums) count every proxy's
 * requests in between:
 *
 *  - a proxy's contribution is its own counters stitched across its
 *    restarts (a new epoch: the old process's last counters are kept, and
 *    the new one's "base" taken off, as metrics.c does for one proxy);
 *  - a proxy whose last answer is older than stale_ms (now_ms - read_ms,
 *    or a failed read with the previous one that old) is left out: its
 *    contribution stays at its last answer, so windows from then on do not
 *    see it. When it reports again, what it counted while left out is not
 *    added (it cannot be placed in time: a burst of old errors in the
 *    current second would fire a rollback); its gaps count goes up;
 *  - "proxies": {"total", "reporting", "quorum", "stale": [NAME...]} says
 *    which were left out, and whether enough reported for a promotion.
 *
 * report (may be NULL) gets one entry per read, in the same order.
 * Returns how many proxies reported; -1 if out overflowed.
 */
int fleet_sum_windows(struct fleet_sum *s, const struct fleet_read *reads, size_t n, int64_t now_ms,
		      int64_t stale_ms, struct hbuf *out, struct fleet_proxy *report);

#endif
