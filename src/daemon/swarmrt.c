/*
 * swarmrt.c — replicas as the task slots of Swarm services (swarmrt.h).
 *
 * replica.c owns a replica's life for every runtime (probes, drain, backoff,
 * crash loops); dockrt.c hands this file what differs for a replica whose
 * revision runs on a cluster. Every Engine call is blocking
 * (runtime/swarm.h), so each runs in libuv's thread pool and its answer is
 * applied on the loop.
 *
 * - A revision is one Swarm service (swarmrt_service_name: the same name
 *   whatever happens, so it is never created twice: a create that meets
 *   the name adopts what it finds), labelled gantry.tag (this HOME),
 *   .service, .environment, .revision; restart condition none, dnsrr.
 * - Start (record, then act): the replica's row is "starting" before
 *   anything is asked of Swarm; it then waits for a task. Each poll (one
 *   per cluster every SWARMRT_POLL_MS: the nodes, our services, their
 *   tasks, the gateway address of each new running task) binds waiting
 *   replicas to free tasks of their revision's service, and asks Swarm for
 *   what swarmrt_plan says (create, scale, stop orphans, remove).
 * - Ready: a bound task that runs gets its address (swarmrt_task_addr:
 *   today its docker_gwbridge address on its node, which the controller's
 *   host must route to), and replica.c probes it there as any replica.
 * - End: a task that ended, whose desired state is not running any more,
 *   or whose node is down (Swarm still says "running" for a dead node's
 *   task) ends its replica (replica_exited): out of the routes at once,
 *   restarted with backoff as a crash, which waits for a new task, which
 *   the next plan makes Swarm create (on a node that is up).
 * - Stop: SIGTERM (then SIGKILL) to the task's container through its
 *   node's Engine; the slot ends, the plan scales it away. Swarm never
 *   chooses which task goes.
 * - A restarted controller finds its services by label and each replica's
 *   task by the container id its row recorded (rows without one wait for a
 *   free task again).
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/swarmrt.h"
#include "daemon/nodeproxy.h"
#include "daemon/swarmlease.h"
#include "runtime/docker.h"
#include "runtime/swarm.h"
#include "util/clock.h"
#include "util/log.h"
#include <jansson.h>
#include <pthread.h>
#include <signal.h>

#define SWARMRT_POLL_MS 500
#define SWARMRT_PORT_DEFAULT 8080

struct sw_task {
	struct swarm_task t;
	char node_host[256];
	char gw[64];                  /* its gateway address ("" not known yet) */
};

struct sw_service {
	char id[64], name[256];
	uint64_t replicas;
	char service[64], environment[64];
	int revision;
	struct sw_task *tasks;
	size_t ntasks;
	struct swarmrt_slot_view *hidden; /* ended tasks without a container left out of tasks:
					   * their slots still count (swarmrt_scale_floor) */
	size_t nhidden;
	char (*hidden_node)[64];
};

struct sw_busy {                      /* an action on one service in flight, or just done */
	char name[256];
	bool busy;
	uint64_t settle;              /* decide again only from polls numbered above this */
};

struct cluster {
	struct cluster *next;
	struct cluster_config cfg;    /* a copy: what the jobs read (never changed) */
	pthread_mutex_t lock;         /* engines (opened by jobs) */
	struct docker *mgr;
	struct { char host[256]; struct docker *d; } eng[32];
	size_t neng;
	/* loop side */
	uint64_t seq;                 /* polls queued */
	bool poll_busy;
	int64_t poll_at;
	bool down;                    /* the last poll failed */
	int64_t down_since;           /* clock_mono_ms of the first failed poll */
	char error[256];
	char my_node[64];             /* the manager's own node id */
	struct swarm_node *nodes;
	size_t nnodes;
	struct { char id[64]; char state[16]; } seen[32]; /* each node's last state not unsure */
	size_t nseen;
	struct sw_service *svcs;
	size_t nsvcs;
	struct sw_busy busy[64];
	size_t nbusy;
	bool polled;                  /* a poll has answered once */
};

static struct cluster *clusters;
static int jobs_inflight;

bool replica_is_swarm(const struct replica *r)
{
	return r && r->rc && r->rc->cfg.runtime == RUNTIME_DOCKER && r->rc->cfg.cluster.engine;
}

static struct cluster *cluster_of(const struct cluster_config *cfg, bool create)
{
	struct cluster *c;
	for (c = clusters; c; c = c->next)
		if (!strcmp(c->cfg.manager, cfg->manager))
			return c;
	if (!create)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	cluster_config_copy(&c->cfg, cfg);
	pthread_mutex_init(&c->lock, NULL);
	c->next = clusters;
	clusters = c;
	return c;
}

/* ---- Engines (job threads) ---- */

static struct docker *mgr_get(struct cluster *c, struct gerr *err)
{
	struct docker *d;
	pthread_mutex_lock(&c->lock);
	if (!c->mgr)
		c->mgr = docker_open(c->cfg.manager, err);
	d = c->mgr;
	pthread_mutex_unlock(&c->lock);
	return d;
}

/* the Engine of the node named host (its entry in cluster.nodes; the
 * manager's own node: the manager's Engine), NULL with err */
static struct docker *node_engine(struct cluster *c, const char *host, bool is_manager_node, struct gerr *err)
{
	const char *url = cluster_node_engine(&c->cfg, host);
	struct docker *d = NULL;

	if (!url && is_manager_node)
		return mgr_get(c, err);
	if (!url) {
		gerr_set(err, "node %s: no Engine for it in cluster.nodes", host);
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->neng; i++)
		if (!strcmp(c->eng[i].host, host))
			d = c->eng[i].d;
	if (!d && c->neng < ARRAY_SIZE(c->eng) && (d = docker_open(url, err))) {
		strlcpy_g(c->eng[c->neng].host, host, sizeof(c->eng[0].host));
		c->eng[c->neng++].d = d;
	}
	pthread_mutex_unlock(&c->lock);
	return d;
}

/*
 * Where the controller (its probes, its proxy) reaches a task: today the
 * task's docker_gwbridge address on its node, which the controller's host
 * must route to (each node's gateway subnet through the node). The one
 * place that decides it: per-node proxies on the overlay will use t->addr.
 */
static int task_addr(struct cluster *c, const struct sw_task *t, bool manager_node, char *out, size_t len,
		     struct gerr *err)
{
	struct docker *d = node_engine(c, t->node_host, manager_node, err);
	if (!d)
		return -1;
	return swarm_gateway_addr(d, t->t.container_id, out, len, err);
}

/* ---- the poll ---- */

struct known_gw {
	char container[72];
	char gw[64];
};

struct poll {
	uv_work_t req;
	struct cluster *c;
	uint64_t seq;
	char label[80];
	struct known_gw *known;
	size_t nknown;
	struct swarm_info info;
	struct swarm_node *nodes;
	size_t nnodes;
	struct sw_service *svcs;
	size_t nsvcs;
	int rc;
	struct gerr err;
};

static void svcs_free(struct sw_service *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].hidden);
		free(v[i].hidden_node);
		free(v[i].tasks);
	}
	free(v);
}

static const char *label_of(const struct kv *l, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].key, key))
			return l[i].value;
	return NULL;
}

static void poll_work(uv_work_t *req)
{
	struct poll *p = req->data;
	struct cluster *c = p->c;
	struct docker *m = mgr_get(c, &p->err);
	struct swarm_service *sv = NULL;
	size_t nsv = 0;

	p->rc = -1;
	if (!m || swarm_info(m, &p->info, &p->err) < 0 || swarm_node_list(m, &p->nodes, &p->nnodes, &p->err) < 0 ||
	    swarm_service_list(m, p->label, &sv, &nsv, &p->err) < 0)
		return;
	p->svcs = xcalloc(nsv + 1, sizeof(*p->svcs));
	for (size_t i = 0; i < nsv; i++) {
		struct sw_service *s = &p->svcs[p->nsvcs];
		const char *svc = label_of(sv[i].labels, sv[i].nlabels, "gantry.service");
		const char *env = label_of(sv[i].labels, sv[i].nlabels, "gantry.environment");
		const char *rev = label_of(sv[i].labels, sv[i].nlabels, "gantry.revision");
		struct swarm_task *t = NULL;
		size_t nt = 0;
		if (!svc || !env || !rev)
			continue;
		strlcpy_g(s->id, sv[i].id, sizeof(s->id));
		strlcpy_g(s->name, sv[i].name, sizeof(s->name));
		strlcpy_g(s->service, svc, sizeof(s->service));
		strlcpy_g(s->environment, env, sizeof(s->environment));
		s->revision = atoi(rev);
		s->replicas = sv[i].replicas;
		if (swarm_task_list(m, s->id, c->cfg.network, &t, &nt, &p->err) < 0) {
			swarm_services_free(sv, nsv);
			return;
		}
		s->tasks = xcalloc(nt + 1, sizeof(*s->tasks));
		s->hidden = xcalloc(nt + 1, sizeof(*s->hidden));
		s->hidden_node = xcalloc(nt + 1, sizeof(*s->hidden_node));
		for (size_t k = 0; k < nt; k++) {
			struct sw_task *x = &s->tasks[s->ntasks];
			/* the history of a slot (ended tasks long gone) is not ours to
			 * read; only its slot, which Swarm may still count */
			if (swarm_task_state_final(t[k].state) && strcmp(t[k].desired_state, "running") &&
			    !t[k].container_id[0]) {
				if (strcmp(t[k].desired_state, "remove")) {
					strlcpy_g(s->hidden_node[s->nhidden], t[k].node_id, sizeof(s->hidden_node[0]));
					s->hidden[s->nhidden].slot = t[k].slot;
					s->hidden[s->nhidden].node = s->hidden_node[s->nhidden];
					s->nhidden++;
				}
				continue;
			}
			x->t = t[k];
			for (size_t n = 0; n < p->nnodes; n++)
				if (!strcmp(p->nodes[n].id, t[k].node_id))
					strlcpy_g(x->node_host, p->nodes[n].hostname, sizeof(x->node_host));
			if (!strcmp(t[k].state, "running") && !strcmp(t[k].desired_state, "running") &&
			    t[k].container_id[0]) {
				for (size_t n = 0; n < p->nknown; n++)
					if (!strcmp(p->known[n].container, t[k].container_id))
						strlcpy_g(x->gw, p->known[n].gw, sizeof(x->gw));
				if (!x->gw[0]) {
					struct gerr e2;
					bool down = false;
					for (size_t n = 0; n < p->nnodes; n++)
						if (!strcmp(p->nodes[n].id, t[k].node_id))
							down = strcmp(p->nodes[n].state, "ready") != 0;
					if (!down && task_addr(c, x, !strcmp(t[k].node_id, p->info.node_id), x->gw,
							       sizeof(x->gw), &e2) < 0)
						log_warn("swarm", "task %.12s on %s: %s", t[k].id, x->node_host, e2.msg);
				}
			}
			s->ntasks++;
		}
		free(t);
		p->nsvcs++;
	}
	swarm_services_free(sv, nsv);
	/*
	 * The nodes again, read after the tasks: a task Swarm is stopping
	 * because its node went down must be judged with a node list at least
	 * as new as the task list, or its replica ends as "Swarm is stopping
	 * its task" and its replacement is not known as a rescheduling.
	 */
	{
		struct swarm_node *nodes = NULL;
		size_t nn = 0;
		if (swarm_node_list(m, &nodes, &nn, &p->err) < 0)
			return;
		swarm_nodes_free(p->nodes, p->nnodes);
		p->nodes = nodes;
		p->nnodes = nn;
	}
	p->rc = 0;
}

static struct sw_busy *busy_of(struct cluster *c, const char *name, bool create)
{
	for (size_t i = 0; i < c->nbusy; i++)
		if (!strcmp(c->busy[i].name, name))
			return &c->busy[i];
	if (!create)
		return NULL;
	if (c->nbusy == ARRAY_SIZE(c->busy)) {
		/* the oldest idle entry goes */
		for (size_t i = 0; i < c->nbusy; i++)
			if (!c->busy[i].busy) {
				c->busy[i] = c->busy[--c->nbusy];
				break;
			}
		if (c->nbusy == ARRAY_SIZE(c->busy))
			return NULL;
	}
	memset(&c->busy[c->nbusy], 0, sizeof(c->busy[0]));
	strlcpy_g(c->busy[c->nbusy].name, name, sizeof(c->busy[0].name));
	return &c->busy[c->nbusy++];
}

/* ---- actions on a service (thread pool) ---- */

enum act_kind { ACT_CREATE, ACT_SCALE, ACT_REMOVE, ACT_KILL };

struct act {
	uv_work_t req;
	struct cluster *c;
	enum act_kind kind;
	char name[256];               /* the service's */
	char id[64];
	int64_t from, to;
	char why[160];                /* scale: the counts it was decided on */
	/* create */
	char image[600];
	char local_image[96];         /* the revision's image id, for its repo digest */
	struct kv labels[4];
	char lrev[16];
	char **env, **cmd, **args, **cons, *nets[2];
	char user[64], spread[128];
	struct resources res;
	int64_t grace_ms;
	/* kill */
	char node[256], container[72];
	bool manager_node;
	int sig;
	int rc;
	struct gerr err;
};

static char **strv_copy(char *const *v, size_t n)
{
	char **o;
	if (!v || !n)
		return NULL;
	o = xcalloc(n + 1, sizeof(*o));
	for (size_t i = 0; i < n; i++)
		o[i] = xstrdup(v[i]);
	return o;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void act_free(struct act *a)
{
	workload_env_free(a->env);
	strv_free(a->cmd);
	strv_free(a->args);
	strv_free(a->cons);
	free(a->nets[0]);
	free(a);
}

static void act_work(uv_work_t *req)
{
	struct act *a = req->data;
	struct docker *m;

	a->rc = -1;
	if (a->kind == ACT_KILL) {
		struct docker *d = node_engine(a->c, a->node, a->manager_node, &a->err);
		a->rc = d ? docker_container_kill(d, a->container, a->sig, &a->err) : -1;
		return;
	}
	if (!(m = mgr_get(a->c, &a->err)))
		return;
	switch (a->kind) {
	case ACT_CREATE: {
		struct swarm_service_spec s = {
			.name = a->name, .image = a->image, .labels = a->labels, .nlabels = ARRAY_SIZE(a->labels),
			.env = a->env, .user = a->user[0] ? a->user : NULL, .command = a->cmd, .args = a->args,
			.replicas = (uint64_t)a->to, .constraints = a->cons, .spread = a->spread[0] ? a->spread : NULL,
			.res = &a->res, .networks = a->nets[0] ? a->nets : NULL, .dnsrr = true,
			.stop_grace_ms = a->grace_ms,
		};
		struct swarm_service found;
		if (!strchr(a->image, '@')) {
			/* the image pinned for the revision is an id on this host's
			 * Engine: every node pulls it by its registry digest */
			struct gerr e2;
			struct docker *local = docker_open(NULL, &e2);
			struct docker_image img;
			int f = local ? docker_image_inspect(local, a->local_image, &img, &a->err) : -1;
			if (!local)
				gerr_set(&a->err, "%s", e2.msg);
			if (local)
				docker_close(local);
			if (f <= 0 || !img.repo_digest[0]) {
				if (f >= 0)
					gerr_set(&a->err, "image %s: no registry digest: a cluster's nodes pull the image "
						 "from a registry (give image: REGISTRY/NAME:TAG, or registry: to push builds)",
						 a->image);
				return;
			}
			strlcpy_g(a->image, img.repo_digest, sizeof(a->image));
		}
		if (swarm_service_create(m, &s, a->id, sizeof(a->id), &a->err) == 0) {
			a->rc = 0;
			return;
		}
		/* made before a crash, or by the previous attempt: the same name is the same revision */
		if (strstr(a->err.msg, "AlreadyExists") || strstr(a->err.msg, "already exists")) {
			struct gerr e2;
			if (swarm_service_inspect(m, a->name, &found, &e2) == 1) {
				strlcpy_g(a->id, found.id, sizeof(a->id));
				swarm_service_release(&found);
				a->rc = 0;
			}
		}
		return;
	}
	case ACT_SCALE:
		if (a->from >= 0 && swarm_service_scale(m, a->id, (uint64_t)a->from, &a->err) < 0)
			return;
		a->rc = swarm_service_scale(m, a->id, (uint64_t)a->to, &a->err);
		return;
	case ACT_REMOVE:
		a->rc = swarm_service_remove(m, a->id, &a->err) < 0 ? -1 : 0;
		return;
	case ACT_KILL:
		return;
	}
}

static void act_done(uv_work_t *req, int status)
{
	struct act *a = req->data;
	struct sw_busy *b = busy_of(a->c, a->name, false);
	(void)status;
	jobs_inflight--;
	if (b) {
		b->busy = false;
		b->settle = a->c->seq; /* a poll queued before the end of this action may not show it */
	}
	a->c->poll_at = 0; /* look again now */
	if (a->rc < 0)
		log_warn("swarm", "%s", a->err.msg);
	else if (a->kind == ACT_CREATE)
		log_info("swarm", "service %s created (%.12s), %lld replicas", a->name, a->id, (long long)a->to);
	else if (a->kind == ACT_SCALE)
		log_info("swarm", "service %s scaled to %lld%s (%s)", a->name, (long long)a->to,
			 a->from >= 0 ? ", ended slots dropped first" : "", a->why);
	else if (a->kind == ACT_REMOVE)
		log_info("swarm", "service %s removed", a->name);
	act_free(a);
}

static void act_queue(struct act *a)
{
	struct sw_busy *b = a->kind == ACT_KILL ? NULL : busy_of(a->c, a->name, true);
	if (b)
		b->busy = true;
	a->req.data = a;
	jobs_inflight++;
	if (uv_queue_work(gd->loop, &a->req, act_work, act_done) < 0) {
		act_work(&a->req);
		act_done(&a->req, 0);
	}
}

/* the service a revision becomes; NULL (event said) when it cannot be */
static struct act *create_act(struct cluster *c, struct replica *r, int64_t replicas)
{
	const struct svc_config *cfg = &r->rc->cfg;
	struct act *a = xcalloc(1, sizeof(*a));
	int port = cfg->port > 0 ? cfg->port : SWARMRT_PORT_DEFAULT;
	char rep[300];
	struct gerr err = { { 0 } };
	static char k0[] = "gantry.tag", k1[] = "gantry.service", k2[] = "gantry.environment",
		    k3[] = "gantry.revision";

	a->c = c;
	a->kind = ACT_CREATE;
	swarmrt_service_name(gd->tag, r->row.service, r->row.environment, r->row.revision, a->name, sizeof(a->name));
	a->to = replicas;
	if (cfg->image && strchr(cfg->image, '@'))
		strlcpy_g(a->image, cfg->image, sizeof(a->image));
	else
		snprintf(a->image, sizeof(a->image), "%s", cfg->image ? cfg->image : r->rc->image_id);
	strlcpy_g(a->local_image, r->rc->image_id, sizeof(a->local_image));
	snprintf(a->lrev, sizeof(a->lrev), "%d", r->row.revision);
	a->labels[0].key = k0;
	a->labels[0].value = gd->tag;
	a->labels[1].key = k1;
	a->labels[1].value = r->se->row.service;
	a->labels[2].key = k2;
	a->labels[2].value = r->se->row.environment;
	a->labels[3].key = k3;
	a->labels[3].value = a->lrev;
	/* one environment for every task: GANTRY_REPLICA names the task's slot (a Swarm template) */
	snprintf(rep, sizeof(rep), "%s.{{.Task.Slot}}", a->name);
	{
		struct workload_env w = {
			.decl = cfg->env, .ndecl = cfg->nenv, .port = port, .replica = rep,
			.service = r->row.service, .environment = r->row.environment, .revision = r->row.revision,
			.version = r->rc->version,
		};
		char **env = workload_env_build(&w);
		size_t o = 0;
		/* PATH and LANG: the image's unless the spec sets them */
		for (size_t i = 0; env[i]; i++) {
			bool declared = false;
			size_t klen = strcspn(env[i], "=");
			if (klen == 4 && (!strncmp(env[i], "PATH", 4) || !strncmp(env[i], "LANG", 4))) {
				for (size_t k = 0; k < cfg->nenv; k++)
					declared |= strlen(cfg->env[k].key) == 4 && !strncmp(cfg->env[k].key, env[i], 4);
				if (!declared) {
					free(env[i]);
					continue;
				}
			}
			env[o++] = env[i];
		}
		env[o] = NULL;
		a->env = env;
	}
	if (dockrt_container_user(r, a->user, sizeof(a->user), &err) < 0) {
		act_free(a);
		daemon_event(r->se, r->row.revision, "replica_failed", "revision %d cannot run on the cluster: %s",
			     r->row.revision, err.msg);
		return NULL;
	}
	a->cmd = strv_copy(cfg->entrypoint, cfg->nentrypoint);
	a->args = strv_copy(cfg->command, cfg->ncommand);
	a->cons = strv_copy(cfg->placement.constraints, cfg->placement.nconstraints);
	if (cfg->placement.spread)
		strlcpy_g(a->spread, cfg->placement.spread, sizeof(a->spread));
	if (c->cfg.network)
		a->nets[0] = xstrdup(c->cfg.network);
	a->res = cfg->resources;
	a->grace_ms = cfg->stop_grace_ms;
	return a;
}

/* ---- the loop side of a poll ---- */

/* a node the manager does not list (removed) is lost */
static enum swarmrt_node node_class(const struct cluster *c, const char *node_id)
{
	for (size_t i = 0; i < c->nnodes; i++)
		if (!strcmp(c->nodes[i].id, node_id))
			return swarmrt_node_class(c->nodes[i].state);
	return SWARMRT_NODE_LOST;
}

static bool node_up(const struct cluster *c, const char *node_id)
{
	return node_class(c, node_id) == SWARMRT_NODE_READY;
}

static bool task_alive(const struct cluster *c, const struct sw_task *t)
{
	return !strcmp(t->t.desired_state, "running") && !swarm_task_state_final(t->t.state) &&
	       (!t->t.node_id[0] || node_up(c, t->t.node_id));
}

static struct sw_service *svc_of(struct cluster *c, const char *svc, const char *env, int rev)
{
	for (size_t i = 0; i < c->nsvcs; i++)
		if (c->svcs[i].revision == rev && !strcmp(c->svcs[i].service, svc) &&
		    !strcmp(c->svcs[i].environment, env))
			return &c->svcs[i];
	return NULL;
}

static struct sw_task *task_find(struct sw_service *s, const char *task, const char *container)
{
	for (size_t i = 0; s && i < s->ntasks; i++)
		if ((task[0] && !strcmp(s->tasks[i].t.id, task)) ||
		    (!task[0] && container[0] && !strcmp(s->tasks[i].t.container_id, container)))
			return &s->tasks[i];
	return NULL;
}

static bool in_cluster(const struct replica *r, const struct cluster *c)
{
	return !r->freeing && replica_is_swarm(r) && !strcmp(r->rc->cfg.cluster.manager, c->cfg.manager);
}

static bool task_bound(struct cluster *c, const struct sw_task *t)
{
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next)
			if (in_cluster(r, c) && (!strcmp(r->sw_task, t->t.id) ||
						 (t->t.container_id[0] && !strcmp(r->row.container, t->t.container_id))))
				return true;
	return false;
}

/* node_down / node_ready (swarmrt_node_event: none across "unknown", as
 * after a manager's restart); events only once a poll has answered before */
static void node_events(struct cluster *c, bool events)
{
	for (size_t i = 0; i < c->nnodes; i++) {
		const struct swarm_node *n = &c->nodes[i];
		const char *kind;
		size_t k;
		for (k = 0; k < c->nseen; k++)
			if (!strcmp(c->seen[k].id, n->id))
				break;
		if (k == c->nseen) {
			if (c->nseen == ARRAY_SIZE(c->seen))
				continue;
			strlcpy_g(c->seen[k].id, n->id, sizeof(c->seen[k].id));
			c->seen[k].state[0] = 0;
			c->nseen++;
		}
		if (swarmrt_node_class(n->state) == SWARMRT_NODE_UNSURE)
			continue;
		kind = swarmrt_node_event(c->seen[k].state, n->state);
		strlcpy_g(c->seen[k].state, n->state, sizeof(c->seen[k].state));
		if (!kind || !events)
			continue;
		log_warn("swarm", "node %s (%s) is %s%s%s", n->hostname, n->role, n->state, n->message[0] ? ": " : "",
			 n->message);
		for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
			int here = 0;
			bool any = false;
			for (struct replica *r = se->replicas; r; r = r->next) {
				any |= in_cluster(r, c);
				here += in_cluster(r, c) && !strcmp(r->sw_node, n->hostname);
			}
			if (!any)
				continue;
			if (!strcmp(kind, "node_down"))
				daemon_event(se, se->row.target_revision, kind,
					     "node %s is %s (%s): its %d replica%s of ours taken out of the routes, "
					     "replaced on the nodes that are up", n->hostname, n->state,
					     n->message[0] ? n->message : "no heartbeat", here, here == 1 ? "" : "s");
			else
				daemon_event(se, se->row.target_revision, kind, "node %s is ready again", n->hostname);
		}
	}
}

/* r's output into its log file, from the Engine of its task's node */
static void follow_logs(struct cluster *c, struct replica *r, const struct sw_task *t, int64_t since)
{
	const char *url = cluster_node_engine(&c->cfg, t->node_host);
	if (!url && !strcmp(t->t.node_id, c->my_node))
		url = c->cfg.manager;
	if (url)
		dockrt_follow_logs_at(r, url, since);
}
/* r's task (t) ran, or ended: r follows it */
static void follow_task(struct cluster *c, struct replica *r, struct sw_task *t, uint64_t seq)
{
	char detail[320];
	/* an unsure node ("unknown": a manager that has just started) is not a
	 * lost one: the replica stays, its probes decide whether it serves */
	bool up = !t->t.node_id[0] || node_class(c, t->t.node_id) != SWARMRT_NODE_LOST;

	strlcpy_g(r->sw_task, t->t.id, sizeof(r->sw_task));
	if (t->node_host[0])
		strlcpy_g(r->sw_node, t->node_host, sizeof(r->sw_node));
	if (!up || swarm_task_state_final(t->t.state) || strcmp(t->t.desired_state, "running")) {
		int code = -1;
		if (!up) {
			snprintf(detail, sizeof(detail), "its node %s is down", t->node_host);
			strlcpy_g(r->sw_lost, t->node_host, sizeof(r->sw_lost));
		} else if (swarm_task_state_final(t->t.state)) {
			code = !strcmp(t->t.state, "complete") || !strcmp(t->t.state, "failed") ? t->t.exit_code : -1;
			snprintf(detail, sizeof(detail), "task %s%s%.200s", t->t.state, t->t.error[0] ? ": " : "",
				 t->t.error);
		} else {
			snprintf(detail, sizeof(detail), "Swarm is stopping its task (%s)", t->t.state);
		}
		if (r->sw_seq >= seq && up && !swarm_task_state_final(t->t.state))
			return;
		replica_exited(r, code, false, detail); /* may free r */
		return;
	}
	if (r->row.pid == -1 && !r->dlog && !strcmp(t->t.state, "running") &&
	    !strcmp(r->row.container, t->t.container_id)) {
		struct stat st;
		/* adopted after a restart of the controller: from the second after
		 * the last line kept, as for a container of this host */
		follow_logs(c, r, t, stat(r->log_path, &st) == 0 ? (int64_t)st.st_mtime + 1 : 0);
	}
	if (r->row.pid || strcmp(t->t.state, "running") || !t->t.container_id[0] || !t->gw[0])
		return;
	strlcpy_g(r->row.container, t->t.container_id, sizeof(r->row.container));
	snprintf(r->row.host, sizeof(r->row.host), "%s:%d", t->gw,
		 r->rc->cfg.port > 0 ? r->rc->cfg.port : SWARMRT_PORT_DEFAULT);
	r->row.pid = -1; /* runs elsewhere: no pid of this host */
	replica_running(r);
	log_info("replica", "replica=%s revision=%d task=%.12s node=%s container=%.12s addr=%s running",
		 r->row.id, r->row.revision, t->t.id, r->sw_node, r->row.container, r->row.host);
	follow_logs(c, r, t, 0);
	if (r->sw_lost[0] && strcmp(r->sw_lost, r->sw_node)) {
		daemon_event(r->se, r->row.revision, "task_rescheduled",
			     "replica %s: its task on %s (down) replaced by task %.12s on %s", r->row.id, r->sw_lost,
			     t->t.id, r->sw_node);
	}
	r->sw_lost[0] = 0;
}

/*
 * The lease hook (swarmlease.h): nothing of env on c is driven (no
 * create, scale, remove, stop, no replica bound or ended) unless this
 * controller holds its lease now. Reads go on: the poll, status, nodes.
 */
static bool drives(const struct cluster *c, const char *env)
{
	return swarmlease_held(c->cfg.manager, env);
}

static void reconcile_cluster(struct cluster *c, uint64_t seq)
{
	/* 1. bound replicas follow their task */
	for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
		struct replica *r, *next;
		for (r = se->replicas; r; r = next) {
			struct sw_service *s;
			struct sw_task *t;
			next = r->next;
			if (!in_cluster(r, c) || !drives(c, r->row.environment) || !strcmp(r->row.state, "backoff") ||
			    (!r->sw_task[0] && !r->row.container[0]))
				continue;
			s = svc_of(c, r->row.service, r->row.environment, r->row.revision);
			t = task_find(s, r->sw_task, r->row.container);
			if (!t) {
				if (r->sw_seq < seq)
					replica_exited(r, -1, false, "its task is gone (removed outside gantry)");
				continue;
			}
			follow_task(c, r, t, seq);
		}
	}
	/* 2. waiting replicas take free tasks of their revision's service */
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next) {
			struct sw_service *s;
			if (!in_cluster(r, c) || !drives(c, r->row.environment) || strcmp(r->row.state, "starting") ||
			    r->sw_task[0] || r->row.container[0])
				continue;
			s = svc_of(c, r->row.service, r->row.environment, r->row.revision);
			for (size_t i = 0; s && i < s->ntasks; i++)
				if (task_alive(c, &s->tasks[i]) && !task_bound(c, &s->tasks[i])) {
					strlcpy_g(r->sw_task, s->tasks[i].t.id, sizeof(r->sw_task));
					strlcpy_g(r->sw_node, s->tasks[i].node_host, sizeof(r->sw_node));
					r->sw_seq = seq;
					break;
				}
		}
	if (gd->upgrading)
		return;
	/* 3. each service: what to ask Swarm for */
	for (size_t i = 0; i < c->nsvcs; i++) {
		struct sw_service *s = &c->svcs[i];
		struct svcenv *se = daemon_svcenv(s->service, s->environment, false);
		struct swarmrt_counts k = { .exists = true, .replicas = s->replicas };
		struct sw_busy *b = busy_of(c, s->name, false);
		struct swarmrt_plan p;
		struct swarmrt_slot_view *views;
		size_t nviews;
		if ((b && (b->busy || b->settle >= seq)) || !drives(c, s->environment))
			continue;
		for (struct replica *r = se ? se->replicas : NULL; r; r = r->next) {
			if (r->freeing || r->row.revision != s->revision)
				continue;
			k.rows++;
			k.want += strcmp(r->row.state, "backoff") != 0;
		}
		views = xcalloc(s->ntasks + s->nhidden + 1, sizeof(*views));
		memcpy(views, s->hidden, s->nhidden * sizeof(*views));
		nviews = s->nhidden;
		for (size_t t = 0; t < s->ntasks; t++) {
			struct sw_task *x = &s->tasks[t];
			bool final = swarm_task_state_final(x->t.state);
			if (strcmp(x->t.desired_state, "remove")) {
				/* what Swarm counts, and what it must not choose: what
				 * serves or is bound, a zombie, a task on an unsure node */
				views[nviews].slot = x->t.slot;
				views[nviews].node = x->t.node_id;
				views[nviews].running = !strcmp(x->t.state, "running");
				views[nviews++].keep = !final && (x->t.container_id[0] || task_bound(c, x) ||
								  (x->t.node_id[0] && !node_up(c, x->t.node_id)));
			}
			if (task_alive(c, x)) {
				k.alive++;
				k.orphans += x->t.container_id[0] && !task_bound(c, x);
			} else if (!final && x->t.node_id[0] && node_class(c, x->t.node_id) == SWARMRT_NODE_UNSURE) {
				k.unsure++;
			} else if (final && !strcmp(x->t.desired_state, "running")) {
				k.unsettled++;
			} else if (!final && strcmp(x->t.desired_state, "remove")) {
				k.zombies++; /* on a dead node, or shutting down: Swarm counts it */
			}
		}
		k.floor = swarmrt_scale_floor(views, nviews);
		free(views);
		p = swarmrt_plan(&k);
		if (p.act == SWARMRT_NOTHING)
			continue;
		if (p.act == SWARMRT_KILL_ORPHANS) {
			for (size_t t = 0; t < s->ntasks; t++) {
				struct sw_task *x = &s->tasks[t];
				struct act *a;
				if (!task_alive(c, x) || !x->t.container_id[0] || task_bound(c, x))
					continue;
				log_warn("swarm", "service %s: task %.12s on %s belongs to no replica: stopping it", s->name,
					 x->t.id, x->node_host);
				a = xcalloc(1, sizeof(*a));
				a->c = c;
				a->kind = ACT_KILL;
				strlcpy_g(a->name, s->name, sizeof(a->name));
				strlcpy_g(a->node, x->node_host, sizeof(a->node));
				strlcpy_g(a->container, x->t.container_id, sizeof(a->container));
				a->manager_node = !strcmp(x->t.node_id, c->my_node);
				a->sig = SIGTERM;
				act_queue(a);
			}
			if ((b = busy_of(c, s->name, true)))
				b->settle = c->seq;
			continue;
		}
		{
			struct act *a = xcalloc(1, sizeof(*a));
			a->c = c;
			a->kind = p.act == SWARMRT_REMOVE ? ACT_REMOVE : ACT_SCALE;
			strlcpy_g(a->name, s->name, sizeof(a->name));
			strlcpy_g(a->id, s->id, sizeof(a->id));
			a->from = p.from;
			a->to = p.to;
			snprintf(a->why, sizeof(a->why), "want %d, alive %d, zombies %d, count %llu, floor %lld", k.want,
				 k.alive, k.zombies, (unsigned long long)k.replicas, (long long)k.floor);
			act_queue(a);
		}
	}
	/* 4. revisions whose replicas wait for a service that does not exist */
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next) {
			char name[256];
			struct swarmrt_counts k = { 0 };
			struct sw_busy *b;
			struct swarmrt_plan p;
			struct act *a;
			if (!in_cluster(r, c) || !drives(c, r->row.environment) ||
			    svc_of(c, r->row.service, r->row.environment, r->row.revision))
				continue;
			swarmrt_service_name(gd->tag, r->row.service, r->row.environment, r->row.revision, name,
					     sizeof(name));
			b = busy_of(c, name, false);
			if (b && (b->busy || b->settle >= seq))
				continue;
			for (struct replica *o = se->replicas; o; o = o->next)
				if (!o->freeing && o->row.revision == r->row.revision) {
					k.rows++;
					k.want += strcmp(o->row.state, "backoff") != 0;
				}
			p = swarmrt_plan(&k);
			if (p.act != SWARMRT_CREATE)
				continue;
			if ((a = create_act(c, r, p.to))) {
				daemon_event(se, r->row.revision, "service_created",
					     "revision %d: Swarm service %s with %lld replicas", r->row.revision, a->name,
					     (long long)p.to);
				act_queue(a);
			} else if ((b = busy_of(c, name, true))) {
				b->settle = c->seq + 20; /* said once; tried again in about 10 s */
			}
		}
}

/* an event of every service environment with replicas on c */
static void cluster_event(struct cluster *c, const char *kind, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
static void cluster_event(struct cluster *c, const char *kind, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next)
			if (in_cluster(r, c)) {
				daemon_event(se, se->row.target_revision, kind, "%s", msg);
				break;
			}
}

static void poll_done(uv_work_t *req, int status)
{
	struct poll *p = req->data;
	struct cluster *c = p->c;
	(void)status;
	jobs_inflight--;
	c->poll_busy = false;
	free(p->known);
	if (p->rc < 0) {
		if (!c->down) {
			/* nothing is ended or removed for it: the replicas serve while
			 * their probes pass, and nothing is asked of Swarm */
			log_warn("swarm", "cluster %s: %s: replicas are left as they are until it answers", c->cfg.manager,
				 p->err.msg);
			cluster_event(c, "cluster_unreachable",
				      "the cluster's manager %s does not answer (%.300s): its replicas are left as "
				      "they are, serving while their probes pass; nothing is asked of Swarm until it "
				      "answers", c->cfg.manager, p->err.msg);
			c->down_since = clock_mono_ms();
		}
		c->down = true;
		strlcpy_g(c->error, p->err.msg, sizeof(c->error));
		swarm_nodes_free(p->nodes, p->nnodes);
		svcs_free(p->svcs, p->nsvcs);
		free(p);
		return;
	}
	if (c->down) {
		log_info("swarm", "cluster %s answers again", c->cfg.manager);
		cluster_event(c, "cluster_reachable", "the cluster's manager %s answers again (after %lld ms)",
			      c->cfg.manager, (long long)(clock_mono_ms() - c->down_since));
	}
	c->down = false;
	c->error[0] = 0;
	strlcpy_g(c->my_node, p->info.node_id, sizeof(c->my_node));
	{
		struct swarm_node *old = c->nodes;
		size_t nold = c->nnodes;
		c->nodes = p->nodes;
		c->nnodes = p->nnodes;
		node_events(c, c->polled);
		swarm_nodes_free(old, nold);
	}
	svcs_free(c->svcs, c->nsvcs);
	c->svcs = p->svcs;
	c->nsvcs = p->nsvcs;
	c->polled = true;
	reconcile_cluster(c, p->seq);
	free(p);
}

static void poll_start(struct cluster *c, int64_t now)
{
	struct poll *p;
	size_t nk = 0;

	c->poll_at = now + SWARMRT_POLL_MS;
	p = xcalloc(1, sizeof(*p));
	p->c = c;
	p->seq = ++c->seq;
	snprintf(p->label, sizeof(p->label), "gantry.tag=%s", gd->tag);
	for (size_t i = 0; i < c->nsvcs; i++)
		nk += c->svcs[i].ntasks;
	p->known = xcalloc(nk + 1, sizeof(*p->known));
	for (size_t i = 0; i < c->nsvcs; i++)
		for (size_t k = 0; k < c->svcs[i].ntasks; k++)
			if (c->svcs[i].tasks[k].gw[0]) {
				strlcpy_g(p->known[p->nknown].container, c->svcs[i].tasks[k].t.container_id,
					  sizeof(p->known[0].container));
				strlcpy_g(p->known[p->nknown++].gw, c->svcs[i].tasks[k].gw, sizeof(p->known[0].gw));
			}
	p->req.data = p;
	c->poll_busy = true;
	jobs_inflight++;
	if (uv_queue_work(gd->loop, &p->req, poll_work, poll_done) < 0) {
		jobs_inflight--;
		c->poll_busy = false;
		free(p->known);
		free(p);
	}
}

void swarmrt_tick(int64_t now)
{
	/* every cluster a replica's revision names; one that was used keeps
	 * being polled (its services may have to be removed) */
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next)
			if (!r->freeing && replica_is_swarm(r)) {
				cluster_of(&r->rc->cfg.cluster, true);
				swarmlease_want(r->rc->cfg.cluster.manager, r->row.environment);
			}
	swarmlease_tick(now);
	for (struct cluster *c = clusters; c; c = c->next)
		if (!c->poll_busy && now >= c->poll_at)
			poll_start(c, now);
	nodeproxy_tick(now);
}

/* Engine calls in flight; and while serve stops, services of ours a
 * reachable manager still lists (they go once their replicas are gone:
 * serve waits for that, within its own bound) */
bool swarmrt_standby(const struct replica *r)
{
	return replica_is_swarm(r) && !swarmlease_held(r->rc->cfg.cluster.manager, r->row.environment);
}

bool swarmrt_busy(void)
{
	if (jobs_inflight > 0 || nodeproxy_busy() || swarmlease_busy())
		return true;
	for (struct cluster *c = clusters; gd->shutting_down && c; c = c->next)
		for (size_t i = 0; !c->down && i < c->nsvcs; i++)
			if (drives(c, c->svcs[i].environment))
				return true;
	return false;
}

/* ---- what replica.c asks (through dockrt.c) ---- */

int swarmrt_spawn(struct replica *r)
{
	const struct svc_config *c = &r->rc->cfg;
	const char *why = NULL;
	struct cluster *cl;

	if (c->nsecrets)
		why = "secrets are not given to a cluster's tasks yet";
	if (why) {
		replica_spawn_failed(r, why);
		return -1;
	}
	r->sw_task[0] = 0;
	r->row.container[0] = 0;
	r->row.host[0] = 0;
	r->row.pid = 0;
	r->started_ms = clock_mono_ms();
	cl = cluster_of(&c->cluster, true);
	cl->poll_at = 0; /* at the next tick */
	return 0;
}

struct docker *swarmrt_task_engine(struct replica *r, struct gerr *err)
{
	struct cluster *c = replica_is_swarm(r) ? cluster_of(&r->rc->cfg.cluster, false) : NULL;
	bool mgr_node = false;

	if (!c || !r->row.container[0] || !r->sw_node[0]) {
		gerr_set(err, "replica %s: no task bound yet", r->row.id);
		return NULL;
	}
	for (size_t i = 0; i < c->nnodes; i++)
		if (!strcmp(c->nodes[i].hostname, r->sw_node))
			mgr_node = !strcmp(c->nodes[i].id, c->my_node);
	return node_engine(c, r->sw_node, mgr_node, err);
}

void swarmrt_signal(struct replica *r, int sig)
{
	struct cluster *c = replica_is_swarm(r) ? cluster_of(&r->rc->cfg.cluster, false) : NULL;
	struct act *a;
	bool mgr_node = false;

	if (!c || !r->row.container[0] || !r->sw_node[0])
		return;
	if (!drives(c, r->row.environment)) {
		log_warn("swarm", "replica=%s: signal %d not sent: this controller does not hold the lease of %s",
			 r->row.id, sig, r->row.environment);
		return;
	}
	for (size_t i = 0; i < c->nnodes; i++)
		if (!strcmp(c->nodes[i].hostname, r->sw_node)) {
			if (swarmrt_node_class(c->nodes[i].state) == SWARMRT_NODE_LOST)
				return; /* its node is down: the poll ends it */
			mgr_node = !strcmp(c->nodes[i].id, c->my_node);
		}
	a = xcalloc(1, sizeof(*a));
	a->c = c;
	a->kind = ACT_KILL;
	strlcpy_g(a->node, r->sw_node, sizeof(a->node));
	strlcpy_g(a->container, r->row.container, sizeof(a->container));
	a->manager_node = mgr_node;
	a->sig = sig;
	act_queue(a);
}

void swarmrt_reap(struct replica *r)
{
	dockrt_stop_logs(r);
	r->sw_task[0] = 0;
	r->row.container[0] = 0;
	r->row.host[0] = 0;
}

void swarmrt_forget(struct replica *r)
{
	swarmrt_reap(r);
	for (struct cluster *c = clusters; c; c = c->next)
		c->poll_at = 0;
}

json_t *swarmrt_nodes_json(const char *env)
{
	json_t *a = json_array();
	for (struct cluster *c = clusters; c; c = c->next) {
		char envs[256] = "";
		bool match = !env;
		for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
			bool here = false;
			for (struct replica *r = se->replicas; r && !here; r = r->next)
				here = in_cluster(r, c);
			if (!here)
				continue;
			match |= env && !strcmp(env, se->row.environment);
			if (!strstr(envs, se->row.environment)) {
				size_t l = strlen(envs);
				snprintf(envs + l, sizeof(envs) - l, "%s%s", l ? "," : "", se->row.environment);
			}
		}
		if (!match)
			continue;
		for (size_t i = 0; i < c->nnodes; i++) {
			const struct swarm_node *n = &c->nodes[i];
			int ours = 0;
			for (struct svcenv *se = gd->svcenvs; se; se = se->next)
				for (struct replica *r = se->replicas; r; r = r->next)
					ours += in_cluster(r, c) && r->row.container[0] && !strcmp(r->sw_node, n->hostname);
			json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:i}", "environment",
							   envs, "cluster", c->cfg.manager, "id", n->id, "hostname",
							   n->hostname, "role", n->role, "state", n->state,
							   "availability", n->availability, "leader", n->leader,
							   "replicas", ours));
		}
		if (c->down)
			json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "environment", envs, "cluster",
							   c->cfg.manager, "error", c->error));
	}
	return a;
}

/* node proxies (nodeproxy.c): the task whose gateway address a replica
 * recorded (GW:PORT), at its address on the cluster's overlay */
int swarmrt_overlay_addr(const char *hostport, char *out, size_t len)
{
	const char *colon = strrchr(hostport, ':');
	size_t hl = colon ? (size_t)(colon - hostport) : 0;

	if (!colon || !hl)
		return -1;
	for (struct cluster *c = clusters; c; c = c->next)
		for (size_t i = 0; i < c->nsvcs; i++)
			for (size_t k = 0; k < c->svcs[i].ntasks; k++) {
				const struct sw_task *t = &c->svcs[i].tasks[k];
				if (t->gw[0] && t->t.addr[0] && strlen(t->gw) == hl && !strncmp(t->gw, hostport, hl)) {
					snprintf(out, len, "%s%s", t->t.addr, colon);
					return 0;
				}
			}
	return -1;
}
