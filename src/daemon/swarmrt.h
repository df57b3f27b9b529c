/*
 * swarmrt.h — replicas as the task slots of Swarm services (a docker
 * service in an environment with `cluster: {engine: swarm, …}`). A
 * revision is one Swarm service; each replica row is bound to one of its
 * tasks, probed by gantry at the task's address, routed by the built-in
 * proxy. The design, and why each step is what it is: docs/internals/fleet.md.
 *
 * swarmrt.c drives the Engine (thread pool, never the loop); swarmplan.c
 * holds what is pure (the service's name, what to ask Swarm for), unit-tested.
 */
#ifndef GANTRY_SWARMRT_H
#define GANTRY_SWARMRT_H
#include "common.h"

struct replica;
struct json_t;

/* ---- pure (swarmplan.c) ---- */

/*
 * The Swarm service of a revision: "g" + the first 6 characters of the
 * controller's tag + "-SERVICE-ENV-rREV", at most 63 characters (a DNS
 * label: Swarm's rule for a service name); a name that would be longer
 * keeps its head and ends with 8 hex digits of a hash of the whole.
 */
void swarmrt_service_name(const char *tag, const char *service, const char *env, int revision, char *out,
			  size_t len);

/* what the controller sees of one service's tasks, for the plan */
struct swarmrt_counts {
	int want;           /* replicas of the revision that hold a live task or wait for one */
	int alive;          /* tasks that should run (desired running), not ended, on a node not down */
	int zombies;        /* tasks Swarm still counts as its slots that gantry cannot use: not ended
			     * but on a node that is down (they say "running" for ever), or shutting down */
	int unsettled;      /* tasks that ended while their desired state is still running: Swarm
			     * has not caught up, and may or may not count them */
	int unsure;         /* tasks on a node whose state is not known (swarmrt_node_class):
			     * nothing is decided while there are any */
	int orphans;        /* alive tasks no replica is bound to, with a container (to stop) */
	int rows;           /* replica rows of the revision, whatever their state */
	int64_t floor;      /* the lowest count a scale down may ask (swarmrt_scale_floor) */
	uint64_t replicas;  /* the service's replica count now */
	bool exists;        /* the service exists */
};

enum swarmrt_act {
	SWARMRT_NOTHING,
	SWARMRT_CREATE,     /* create it with `to` replicas */
	SWARMRT_SCALE,      /* scale to `from` first when from >= 0 (drops the slots of ended tasks), then to `to` */
	SWARMRT_KILL_ORPHANS, /* stop the containers of the alive tasks no replica owns (then plan again) */
	SWARMRT_REMOVE,     /* no replica of it left: remove the service */
};

struct swarmrt_plan {
	enum swarmrt_act act;
	int64_t from, to;
};

/* one task of a service, for swarmrt_scale_floor */
struct swarmrt_slot_view {
	int slot;           /* Swarm's slot number */
	const char *node;   /* its node's id, "" while not assigned */
	bool running;       /* its observed state is running (a zombie's too) */
	bool keep;          /* Swarm must not choose it: it serves or is bound to a replica, or a
			     * zombie; false for an ended task's slot and a surplus not started */
};
/*
 * The lowest replica count a scale down may ask without Swarm choosing a
 * slot to keep. Swarm counts the slots of ended tasks (restart condition
 * none never fills them), and a scale down (swarmkit's replicated
 * orchestrator) keeps the first N slots in this order: the copy index of
 * the slot's task on its node (1 for the first copy there, 2 for the
 * second; a slot of several tasks or of no node last), running tasks
 * before the others at the same index, ties in any order. So an ended slot
 * on a node with one task outranks a running task that is the second copy
 * on another node: measured on the test cluster, after a node came back a
 * scale 3 -> 2 meant to drop its ended slot stopped a serving task on the
 * other node (t6130's first run). The floor is the count that keeps every
 * slot to keep whatever the ties: the most slots that can be ranked before
 * or with one of them. 0 when there is none to keep.
 */
int64_t swarmrt_scale_floor(const struct swarmrt_slot_view *v, size_t n);

/*
 * What to ask Swarm for. Swarm's count of a service's slots is its alive
 * tasks plus the zombies (a task on a dead node is counted until the node
 * comes back, though its desired state is shutdown); ended tasks are not
 * counted. So the count asked is always want + zombies, and never a scale
 * down that would let Swarm choose which running task goes (it may choose
 * one that serves): a task gantry does not want is stopped first (its slot
 * then ends), and only ended slots are scaled away, never below `floor`
 * (the ended slots Swarm would not choose stay counted). Nothing while
 * Swarm has not caught up (unsettled) or a node is unsure.
 */
struct swarmrt_plan swarmrt_plan(const struct swarmrt_counts *c);

/*
 * A node's state as a manager reports it, as the controller takes it:
 * "ready"; "down" or "disconnected": lost (Swarm keeps saying its tasks
 * run: they are ended); anything else, "unknown" above all, is unsure: a
 * manager that has just started (or a new leader) says "unknown" of every
 * node until it hears from it again, and the tasks there may well be
 * serving. On an unsure node a bound replica stays (its probes decide
 * whether it serves), no replica binds a task, and the plan waits.
 */
enum swarmrt_node { SWARMRT_NODE_READY, SWARMRT_NODE_UNSURE, SWARMRT_NODE_LOST };
enum swarmrt_node swarmrt_node_class(const char *state);
/*
 * The event a node's new state makes, given the last state it had that was
 * not unsure ("" if none yet): "node_down" (ready, now lost), "node_ready"
 * (lost, now ready), or NULL. Unsure states in between make none: a
 * manager's restart (every node ready, unknown, ready) is not a node event.
 */
const char *swarmrt_node_event(const char *last_definite, const char *now);

/* ---- the runtime (swarmrt.c), on the loop ---- */

/* r's revision runs on a cluster (its config has cluster.engine) */
bool replica_is_swarm(const struct replica *r);
/* after r's row is recorded "starting": r waits for a task of its revision's
 * service (made or scaled by the next poll). 0, or -1 (replica_spawn_failed called) */
int swarmrt_spawn(struct replica *r);
/* a signal to r's task's container, through its node's Engine */
void swarmrt_signal(struct replica *r, int sig);
/* the Engine of the node r's task runs on (the cluster's client, kept and
 * safe to use from any thread: exec probes run in the pool), NULL with err */
struct docker *swarmrt_task_engine(struct replica *r, struct gerr *err);
/* r's task ended: r is no longer bound to it */
void swarmrt_reap(struct replica *r);
/* r is being freed (its task, if still alive, is an orphan: stopped, then scaled away) */
void swarmrt_forget(struct replica *r);
/* a poll of each cluster in use (nodes, our services, their tasks) and what it decides */
void swarmrt_tick(int64_t now);
bool swarmrt_busy(void);
/* the overlay address (ADDR:PORT in out) of the cluster task a replica
 * reaches at hostport (its gateway address GW:PORT); 0, or -1 if no known
 * task has that gateway address (nodeproxy.c's tables) */
int swarmrt_overlay_addr(const char *hostport, char *out, size_t len);
/* r runs on a cluster whose lease for its environment another controller
 * holds (swarmlease.h): this controller leaves it as it is, even when it stops */
bool swarmrt_standby(const struct replica *r);
/* the nodes of every cluster gantry knows (env: only that environment's; NULL: all), as
 * [{environment, cluster, id, hostname, role, state, availability, leader, replicas}] (new reference) */
struct json_t *swarmrt_nodes_json(const char *env);

#endif
