/*
 * daemon/proxypeers.h — the remote proxies the controller drives (issue
 * 15; docs/internals/fleet.md "Proxies on every node"): `gantry serve
 * --proxy-peer ADDR` (repeated) names their admin listeners, all with the
 * token of --proxy-peer-token-file. Every table the controller writes for
 * its own proxy is PUT to each of them too, and their /windows are summed
 * with the local proxy's (proxyfleet.h) before the analyses read them.
 */
#ifndef GANTRY_DAEMON_PROXYPEERS_H
#define GANTRY_DAEMON_PROXYPEERS_H
#include "common.h"
#include <jansson.h>

/* how many peers there are: serve's --proxy-peer and the node proxies
 * discovered (0: one host, nothing changes) */
size_t proxypeers_count(void);
/*
 * The peers of one group (nodeproxy.c: an environment's node proxies),
 * replaced by addrs (copied; token their bearer token). A peer new to the
 * list is pushed the current table at once; one that left it is dropped
 * (its requests in flight finish first). Their tables are table_of(the
 * routes file's text) (nodeproxy_table: the tasks' overlay addresses;
 * a function given here, so that this file does not depend on the swarm
 * runtime)
 */
void proxypeers_set_group(const char *group, const char *const *addrs, size_t n, const char *token,
			  char *(*table_of)(const char *text));
/* the table just written for the local proxy (its routes file's text) and
 * its generation: pushed to every peer behind it (copied) */
void proxypeers_table(const char *text, uint64_t gen);
/* pushes, retries and /status polls; from the tick (never blocks) */
void proxypeers_tick(int64_t now);
/*
 * One round of /windows reads: the local proxy's and every peer's, in
 * parallel in libuv's thread pool; when all have answered (or failed),
 * done gets their sum (fleet_sum_windows) as one /windows document
 * (NULL: the sum overflowed). 0, or -1 if nothing could be queued.
 */
int proxypeers_windows(void (*done)(const char *doc, void *data), void *data);
/* whether enough proxies reported in the last sum for a promotion
 * (fleet_quorum); true without peers */
bool proxypeers_quorum(void);
/* the proxies that reported in the last sum, of *total: the counts
 * proxypeers_quorum() decides on */
size_t proxypeers_reporting(size_t *total);
/* `gantry status`: [{"address", "generation", "pushed", "report_age_ms",
 * "stale", "awaiting_routes", "error"?}...], the local proxy first */
json_t *proxypeers_status_json(int64_t now);
void proxypeers_free(void);
#endif
