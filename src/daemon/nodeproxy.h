/*
 * daemon/nodeproxy.h — a gantry proxy on every node of a Swarm (issue 15,
 * environments.E.cluster.proxy; docs/internals/fleet.md "Node proxies").
 *
 * For each environment whose cluster has a proxy: the proxy image made
 * from this running gantry (its binary, its shared libraries and the
 * dynamic loader, FROM scratch), built through the manager's Engine and
 * pushed to cluster.proxy.registry; the global service gantry-proxy-ENV
 * (host-mode ports, the admin token a Swarm secret, --await-routes, a
 * non-root user), created once or adopted by name; and its running tasks'
 * nodes handed to proxypeers.c as peers (NODE_ADDR:admin_port), which
 * push them tables whose backends are the tasks' overlay addresses.
 */
#ifndef GANTRY_DAEMON_NODEPROXY_H
#define GANTRY_DAEMON_NODEPROXY_H
#include "common.h"

/* from swarmrt_tick: starts the jobs each environment needs (never blocks) */
void nodeproxy_tick(int64_t now);
/* a job of ours in the thread pool */
bool nodeproxy_busy(void);
/*
 * The routes file's text (borrowed) as node proxies must get it: every
 * backend that is a cluster task's gateway address replaced by its
 * overlay address (swarmrt_overlay_addr), any other backend left out (a
 * node proxy reaches the overlay, not the controller's host). Owned by the
 * caller; the text itself when it cannot be parsed
 */
char *nodeproxy_table(const char *text);
void nodeproxy_free(void);
#endif
