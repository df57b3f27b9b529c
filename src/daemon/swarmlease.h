/*
 * daemon/swarmlease.h — one active controller per cluster environment
 * (issue 15; docs/internals/fleet.md, "One active controller: the lease").
 *
 * Before it drives an environment on a Swarm (creates, scales, removes
 * services, stops tasks, pushes routes to the peers), a controller holds
 * that environment's lease: a Swarm service with 0 replicas named
 * gantry-lease-ENV whose labels say who holds it (gantry.lease.holder,
 * gantry.lease.home) and until when (gantry.lease.expires, unix ms of the
 * holder's clock, for people). Every write is a compare-and-swap on the
 * service's version (swarm_service_set_labels): two controllers never
 * both win one.
 *
 * - TTL SWARMLEASE_TTL_MS; the holder renews every TTL/3 and stops driving
 *   at (when it sent its last successful renewal) + TTL - TTL/5 on its own
 *   monotonic clock, whether or not it hears back.
 * - Another controller takes the lease only when the lease's version has
 *   not moved for a whole TTL on *its* monotonic clock (as Kubernetes'
 *   leader election compares observed renewals, not timestamps): no wall
 *   clock of another host is trusted. At once when the lease was released
 *   (holder "", written by a controller that stopped) or when its home id
 *   is ours (the same HOME on the same host: serve.lock lets only one
 *   process run on it, so the holder was this home's previous process,
 *   kill -9'd).
 */
#ifndef GANTRY_DAEMON_SWARMLEASE_H
#define GANTRY_DAEMON_SWARMLEASE_H
#include "common.h"
#include <jansson.h>

#define SWARMLEASE_TTL_MS 15000

/* the lease of env on the cluster whose manager's Engine is manager is
 * wanted (every tick, for each environment with replicas on it) */
void swarmlease_want(const char *manager, const char *env);
/* acquire, renew, observe (jobs in libuv's thread pool; never blocks) */
void swarmlease_tick(int64_t now);
/* this controller may drive env on that cluster now */
bool swarmlease_held(const char *manager, const char *env);
/* every lease wanted is held (true when none is wanted): routes may go to
 * the peers, which every environment shares */
bool swarmlease_all_held(void);
/* a lease job in flight */
bool swarmlease_busy(void);
/* `gantry status`: [{"environment", "manager", "name", "held", "holder",
 * "home", "expires_ms", "error"?}] (new reference) */
json_t *swarmlease_status_json(void);
/* at exit: leases held are released (blocking: the loop is gone), so the
 * next controller takes them at once */
void swarmlease_free(void);

#endif
