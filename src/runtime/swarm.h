/*
 * swarm.h — a client of Docker Swarm's part of the Engine API: the swarm,
 * its nodes, services and their tasks (no policy: the controller decides).
 * The design and what this kernel allows: docs/internals/fleet.md.
 *
 * It rides on the Engine client (docker.h): open the manager's Engine with
 * docker_open and pass it here; the same rules hold — every call blocking
 * and bounded by DOCKER_TIMEOUT_MS, safe on several threads at once, never
 * on the controller's loop. Service and task calls must go to a manager
 * (a worker answers "This node is not a swarm manager…", returned as the
 * error). swarm_gateway_addr goes to the Engine of the node that runs the
 * task.
 *
 * Errors: -1 with err set to one line that names the operation and what
 * the Engine said ("create service web-1: rpc error: … name conflicts with
 * an existing object"). A missing object is not an error where a function
 * says so (1/0).
 */
#ifndef GANTRY_SWARM_H
#define GANTRY_SWARM_H
#include "common.h"
#include "core/spec.h"
#include "runtime/docker.h"

/* ---- the swarm ---- */

struct swarm_info {
	char state[16];           /* LocalNodeState: inactive | pending | active | error | locked */
	bool manager;             /* ControlAvailable: this Engine can take service calls */
	char node_id[64];         /* this Engine's node ("" outside a swarm) */
	char node_addr[64];       /* its advertised address */
	char cluster_id[64];      /* "" unless a manager */
	int nodes, managers;      /* as a manager counts them; 0 on a worker */
	char error[256];          /* the Engine's swarm error, if any */
};
/* GET /info (its Swarm part): 0 or -1 */
int swarm_info(struct docker *d, struct swarm_info *out, struct gerr *err);

struct swarm_node {
	char id[64];
	char hostname[256];
	char addr[64];            /* Status.Addr: where the node is reached */
	char role[16];            /* manager | worker */
	char state[16];           /* Status.State: unknown | down | ready | disconnected */
	char availability[16];    /* Spec.Availability: active | pause | drain */
	bool leader;              /* the managers' leader */
	char message[256];        /* Status.Message ("heartbeat failure" when down) */
	struct kv *labels;        /* Spec.Labels: the operator's, used by placement (owned) */
	size_t nlabels;
};
/* GET /nodes: every node the manager knows. *out owned: swarm_nodes_free */
int swarm_node_list(struct docker *d, struct swarm_node **out, size_t *n, struct gerr *err);
void swarm_nodes_free(struct swarm_node *v, size_t n);

/* ---- services ---- */

struct swarm_service_spec {
	const char *name;         /* unique in the swarm, e.g. gantry-web-prod-r7 */
	const char *image;        /* pinned: "REGISTRY/NAME:TAG@sha256:…" (every node pulls it) */
	const struct kv *labels;  /* gantry.* labels: on the service and on each task's container */
	size_t nlabels;
	char *const *env;         /* NULL-terminated KEY=VALUE; NULL: the image's */
	const char *user;         /* NULL: the image's */
	char *const *command;     /* ContainerSpec.Command (the entrypoint); NULL: the image's */
	char *const *args;        /* ContainerSpec.Args (its arguments); NULL: the image's */
	uint64_t replicas;
	char *const *constraints; /* NULL-terminated placement constraints ("node.role==worker") */
	const char *spread;       /* a spread preference ("node.id", "node.labels.zone"); NULL: none */
	const struct resources *res; /* NULL or limits: memory, cpus (NanoCPUs), pids */
	char *const *networks;    /* NULL-terminated network names or ids to attach */
	bool dnsrr;               /* endpoint mode dnsrr (no virtual IP: this kernel has no IPVS) */
	int64_t stop_grace_ms;    /* 0: the Engine's (10 s) */
	/* the node proxies' service (daemon/nodeproxy.c); all zero for a revision's */
	bool global;              /* Mode.Global: one task per node (replicas ignored) */
	bool restart_any;         /* RestartPolicy any (Swarm restarts it) instead of none */
	const int *host_ports;    /* published in host mode on every node: port i -> port i (TCP) */
	size_t nhost_ports;
	const char *secret_id, *secret_name; /* a Swarm secret mounted at /run/secrets/secret_file */
	const char *secret_file;
	const char *secret_uid;   /* its owner (the user the task runs as), mode 0400 */
};
/*
 * POST /services/create. The restart policy is "none": a task that exits
 * stays exited, gantry supervises. No update or rollback config: gantry
 * never changes a service's template (a revision is a service), only its
 * replica count. id gets the service's id
 */
int swarm_service_create(struct docker *d, const struct swarm_service_spec *s, char *id, size_t idlen,
			 struct gerr *err);

struct swarm_service {
	char id[64];
	char name[256];
	uint64_t version;         /* Version.Index: what an update must name */
	uint64_t replicas;        /* Spec.Mode.Replicated.Replicas (0 for a global service) */
	bool global;
	char image[512];          /* TaskTemplate.ContainerSpec.Image */
	struct kv *labels;        /* Spec.Labels (owned: swarm_service_release) */
	size_t nlabels;
	int64_t created_ms, updated_ms;
};
/* GET /services/ID (an id or a name). 1 found, 0 no such service, -1 */
int swarm_service_inspect(struct docker *d, const char *id, struct swarm_service *out, struct gerr *err);
void swarm_service_release(struct swarm_service *s);
/* GET /services?filters={"label":[label]}: every service with label ("KEY"
 * or "KEY=VALUE"; NULL: all). *out owned: swarm_services_free */
int swarm_service_list(struct docker *d, const char *label, struct swarm_service **out, size_t *n,
		       struct gerr *err);
void swarm_services_free(struct swarm_service *v, size_t n);
/*
 * Sets the replica count: reads the service (its spec and version), posts
 * the spec back with the new count to /services/ID/update?version=V. If
 * another writer got in between ("update out of sequence"), it reads and
 * tries again, up to 3 times. 0 or -1
 */
int swarm_service_scale(struct docker *d, const char *id, uint64_t replicas, struct gerr *err);
/*
 * A rolling update of the service's image (the node proxies after a
 * controller of another build, daemon/nodeproxy.c): the spec read back with
 * TaskTemplate.ContainerSpec.Image = image, the label `label` (if not NULL)
 * set to it too, the container's Args (if not NULL, NULL-terminated) and
 * StopGracePeriod (if > 0) replaced, and an UpdateConfig of one task at a time, stop-first (a
 * host-mode port cannot be bound twice on a node), 1 s apart, each watched
 * 5 s, rolled back by Swarm if one fails. Retried as swarm_service_scale. 0 or -1
 */
int swarm_service_set_image(struct docker *d, const char *id, const char *image, const char *label,
			    char *const *args, int64_t stop_grace_ms, struct gerr *err);
/*
 * Compare-and-swap of a service's labels (the controller's lease,
 * daemon/swarmlease.c): reads the service; unless its version is still
 * `version` (what the caller read and decided on), writes nothing and
 * returns 1; else posts the spec with Labels replaced by labels[0..n) to
 * /services/ID/update?version=V, which Swarm refuses if another writer got
 * in between ("update out of sequence": 1 too). 0 written, 1 lost the
 * race, -1 (err)
 */
int swarm_service_set_labels(struct docker *d, const char *id, uint64_t version, const struct kv *labels, size_t n,
			     struct gerr *err);
/* DELETE /services/ID: its tasks are stopped by the Engine. 1 removed, 0 absent, -1 */
int swarm_service_remove(struct docker *d, const char *id, struct gerr *err);

/*
 * The Swarm secret named name, created with data if there is none (a
 * secret is immutable: the same name is kept with the data it was made
 * with; callers put a digest of the data in the name). id gets its id. 0 or -1
 */
int swarm_secret_ensure(struct docker *d, const char *name, const char *data, const char *label, char *id,
			size_t idlen, struct gerr *err);

/* ---- tasks ---- */

struct swarm_task {
	char id[64];
	char service_id[64];
	char node_id[64];         /* "" until the task is assigned */
	int slot;                 /* replicated services: 1..replicas */
	char state[16];           /* Status.State: new pending assigned accepted preparing starting
				   * running complete shutdown failed rejected remove orphaned */
	char desired_state[16];   /* running, shutdown, … */
	char container_id[72];    /* "" until the node made it */
	char addr[64];            /* its address on the network asked for (no /prefix), "" if none */
	char message[256];        /* Status.Message ("started", "preparing") */
	char error[256];          /* Status.Err ("no suitable node", "task: non-zero exit (1)") */
	int exit_code;            /* Status.ContainerStatus.ExitCode */
	int64_t updated_ms;       /* Status.Timestamp */
};
/*
 * GET /tasks?filters={"service":[service]}: every task of the service,
 * including old ones (desired state shutdown). network: the name or id of
 * the network whose address goes to addr (NULL: the first attachment's).
 * *out owned: free()
 */
int swarm_task_list(struct docker *d, const char *service, const char *network, struct swarm_task **out,
		    size_t *n, struct gerr *err);
/* true for the states a task never leaves (complete, shutdown, failed, rejected, remove, orphaned) */
bool swarm_task_state_final(const char *state);

/*
 * A task's address on docker_gwbridge, the node-local bridge every swarm
 * container is attached to besides its overlay networks: GET
 * /networks/docker_gwbridge on node_engine, the Engine of the node that
 * runs the container. It is what a host outside the overlay reaches (the
 * fleet's tests route each node's gateway subnet through the node). 1
 * found (addr without /prefix), 0 not attached there, -1
 */
int swarm_gateway_addr(struct docker *node_engine, const char *container_id, char *addr, size_t addrlen,
		       struct gerr *err);

#endif
