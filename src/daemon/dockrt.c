/*
 * dockrt.c — replicas run as containers of the Docker Engine (runtime: docker).
 *
 * replica.c owns a replica's life (probes, drain, backoff, crash loops) for
 * both runtimes; this file is what differs for a container: how it starts,
 * how a signal reaches it, how its end is noticed, where its output goes,
 * and how a restarted controller finds it again. Every Engine call is
 * blocking (runtime/docker.h), so each runs in libuv's thread pool, and its
 * answer is applied on the loop.
 *
 * - Start (record, then act): the replica's row is "starting" before the
 *   container exists. A job removes any container left with its name, then
 *   creates it (labels gantry.tag = HOME's instance id, gantry.replica,
 *   .service, .environment, .revision; restart policy "no": the controller
 *   supervises), starts it and reads its pid. Its id is recorded when the
 *   job is back. A controller killed in between finds the container by its
 *   gantry.replica label at start-up.
 * - End: the Engine is polled every DOCKRT_POLL_MS with one list of every
 *   container labelled with our tag (one request whatever the replica count);
 *   a container that is not running is inspected (exit code, OOMKilled) and
 *   its replica told (replica_exited), then the container is removed. A
 *   labelled container no replica owns is an orphan: removed. While the
 *   Engine cannot be reached nothing is concluded (containers may be fine);
 *   one line is logged, and the poll goes on (it re-attaches when it is back).
 * - Output: a thread per running container follows its log stream
 *   (GET /containers/ID/logs?follow) into the replica's log file, so `gantry
 *   logs [-f]` reads containers and processes alike.
 * - Identity: the container runs as the spec's user, else as the default
 *   workload user's uid:gid (never as root, never as the controller), with
 *   the spec's env, PORT, the GANTRY_* of a replica and nothing of ours.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/swarmrt.h"
#include "daemon/flags.h"
#include "runtime/docker.h"
#include "runtime/pull_progress.h"
#include "runtime/runtime.h"
#include "util/clock.h"
#include "util/log.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/stat.h>

#define DOCKRT_POLL_MS 500

static struct docker *engine;         /* opened on first need, kept */
static int64_t engine_retry_at;       /* clock_mono_ms: do not try to open before */
static char engine_error[256];
static uint64_t poll_seq;             /* polls queued so far */
static bool poll_busy;
static int64_t poll_at;
static bool engine_down;              /* the last poll could not reach it */
static int jobs_inflight;             /* queued on the thread pool, not done */
static atomic_int pulls_inflight;     /* pull threads not done (dockrt_pull_start) */

/* the Engine, or NULL with err (an open is tried at most once a second) */
static struct docker *engine_get(struct gerr *err)
{
	int64_t now = clock_mono_ms();
	if (engine)
		return engine;
	if (now < engine_retry_at) {
		gerr_set(err, "%s", engine_error);
		return NULL;
	}
	engine = docker_open(NULL, err);
	if (!engine) {
		engine_retry_at = now + 1000;
		strlcpy_g(engine_error, err->msg, sizeof(engine_error));
		return NULL;
	}
	log_info("docker", "Docker Engine at %s, API %s", docker_host(engine), docker_api_version(engine));
	return engine;
}

bool replica_is_docker(const struct replica *r)
{
	return r->row.container[0] || (r->rc && r->rc->cfg.runtime == RUNTIME_DOCKER);
}

static char **strv_dup(char *const *v, size_t n)
{
	char **out;
	if (!v)
		return NULL;
	out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* ---- jobs: one Engine call sequence in the thread pool ---- */

enum job_kind { JOB_START, JOB_KILL, JOB_REMOVE };

struct dockrt_job {
	uv_work_t req;
	enum job_kind kind;
	struct replica *r;            /* JOB_START: NULL once the replica is gone */
	char name[200];
	char id[72];
	int sig;
	struct docker_create c;
	char **env, **cmd, **entry;
	struct kv labels[5];
	char lrev[16];
	char user[64];
	char **binds;                 /* secrets: the replica's directory and the launcher, read-only */
	bool secrets;                 /* entry is the launcher; cmd is made from the image's in job_work */
	char **spec_entry;            /* secrets: the spec's entrypoint (NULL: the image's) */
	struct resources res;
	struct docker_state st;
	int cport;                    /* the port it listens on in its network */
	int rc;
	bool unreachable;             /* it failed because the Engine cannot be reached */
	struct gerr err;
};

static void job_free(struct dockrt_job *j)
{
	workload_env_free(j->env);
	strv_free(j->cmd);
	strv_free(j->entry);
	strv_free(j->binds);
	strv_free(j->spec_entry);
	free(j);
}

/* the program a container runs: Docker's rule (an entrypoint given replaces the image's, and then
 * the image's Cmd is not used), as the list the launcher execs; owned, NULL-terminated */
static char **program_of(char *const *spec_entry, char *const *spec_cmd, char *const *img_entry, char *const *img_cmd)
{
	char *const *e = spec_entry ? spec_entry : img_entry;
	char *const *c = spec_cmd ? spec_cmd : (spec_entry ? NULL : img_cmd);
	size_t n = 0, o = 0;
	char **v;
	for (size_t i = 0; e && e[i]; i++)
		n++;
	for (size_t i = 0; c && c[i]; i++)
		n++;
	v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; e && e[i]; i++)
		v[o++] = xstrdup(e[i]);
	for (size_t i = 0; c && c[i]; i++)
		v[o++] = xstrdup(c[i]);
	return v;
}

static void job_work(uv_work_t *req)
{
	struct dockrt_job *j = req->data;
	struct gerr e2;

	j->rc = 0;
	switch (j->kind) {
	case JOB_START:
		/* a container left with this name (a restart, or a crash before
		 * its id was recorded) goes first */
		if (docker_container_remove(engine, j->name, &e2) < 0)
			log_debug("docker", "%s", e2.msg);
		if (j->secrets) {
			/* the launcher execs what the container would have run */
			char **ie = NULL, **ic = NULL, **prog;
			if (docker_image_command(engine, j->c.image, &ie, &ic, &j->err) <= 0) {
				if (!j->err.msg[0])
					gerr_set(&j->err, "image %s: not in the Engine", j->c.image);
				strv_free(ie);
				strv_free(ic);
				j->rc = -1;
				j->unreachable = docker_ping(engine, &e2) < 0;
				break;
			}
			prog = program_of(j->spec_entry, j->cmd, ie, ic);
			strv_free(ie);
			strv_free(ic);
			if (!prog[0]) {
				strv_free(prog);
				gerr_set(&j->err, "image %s has neither entrypoint nor command: nothing to run", j->c.image);
				j->rc = -1;
				break;
			}
			strv_free(j->cmd);
			j->cmd = prog;
			j->c.cmd = j->cmd;
		}
		if (docker_container_create(engine, &j->c, j->id, sizeof(j->id), &j->err) < 0) {
			j->id[0] = 0;
			j->rc = -1;
			j->unreachable = docker_ping(engine, &e2) < 0;
			break;
		}
		if (docker_container_start(engine, j->id, &j->err) < 0 ||
		    docker_container_inspect(engine, j->id, &j->st, &j->err) < 0) {
			j->rc = -1;
			j->unreachable = docker_ping(engine, &e2) < 0;
			if (!j->unreachable && docker_container_remove(engine, j->id, &e2) < 0)
				log_warn("docker", "%s", e2.msg);
			j->id[0] = 0;
		}
		break;
	case JOB_KILL:
		j->rc = docker_container_kill(engine, j->id, j->sig, &j->err);
		break;
	case JOB_REMOVE:
		j->rc = docker_container_remove(engine, j->id, &j->err) < 0 ? -1 : 0;
		break;
	}
}

static void queue_simple(enum job_kind kind, const char *id, int sig);

static void job_done(uv_work_t *req, int status)
{
	struct dockrt_job *j = req->data;
	struct replica *r = j->r;
	(void)status;
	jobs_inflight--;

	if (j->kind != JOB_START) {
		if (j->rc < 0)
			log_warn("docker", "%s", j->err.msg);
		job_free(j);
		return;
	}
	if (!r) {
		/* the replica was stopped while its container was being made */
		if (j->id[0])
			queue_simple(JOB_REMOVE, j->id, 0);
		job_free(j);
		return;
	}
	r->djob = NULL;
	if (j->rc < 0) {
		if (j->unreachable)
			replica_spawn_deferred(r, j->err.msg);
		else
			replica_spawn_failed(r, j->err.msg);
		job_free(j);
		return;
	}
	strlcpy_g(r->row.container, j->id, sizeof(r->row.container));
	/* reached at its address on its network: the published port goes
	 * through docker-proxy, which dies with dockerd */
	if (j->st.ip[0])
		snprintf(r->row.host, sizeof(r->row.host), "%s:%d", j->st.ip, j->cport);
	else
		r->row.host[0] = 0;
	r->row.pid = j->st.pid;
	r->row.start_time = 0;
	r->dseq = poll_seq;
	replica_running(r);
	log_info("replica", "replica=%s revision=%d container=%.12s pid=%d port=%d user=%s started", r->row.id,
		 r->row.revision, r->row.container, (int)r->row.pid, r->row.port, j->user);
	dockrt_follow_logs(r, 0);
	job_free(j);
}

static void job_queue(struct dockrt_job *j)
{
	j->req.data = j;
	jobs_inflight++;
	if (uv_queue_work(gd->loop, &j->req, job_work, job_done) < 0) {
		job_work(&j->req); /* never fails with a valid loop; stay correct if it does */
		job_done(&j->req, 0);
	}
}

static void queue_simple(enum job_kind kind, const char *id, int sig)
{
	struct dockrt_job *j;
	if (!engine || !id || !id[0])
		return;
	j = xcalloc(1, sizeof(*j));
	j->kind = kind;
	j->sig = sig;
	strlcpy_g(j->id, id, sizeof(j->id));
	job_queue(j);
}

/* the user a container runs as: the spec's (a uid, or a name the image
 * knows; never root), else the default workload user's uid:gid */
int dockrt_container_user(struct replica *r, char *out, size_t len, struct gerr *err)
{
	const char *u = r->rc->cfg.user;
	struct workload_user wu;

	if (u && *u) {
		if (!strcmp(u, "root") || strspn(u, "0") == strlen(u) || !strncmp(u, "0:", 2) ||
		    !strncmp(u, "root:", 5)) {
			gerr_set(err, "user %s: a container never runs as root", u);
			return -1;
		}
		strlcpy_g(out, u, len);
		return 0;
	}
	if (workload_user_resolve(NULL, &wu, err) < 0)
		return -1;
	snprintf(out, len, "%u:%u", (unsigned)wu.uid, (unsigned)wu.gid);
	return 0;
}

/*
 * Feature flags: a container reaches the controller at the default
 * bridge's gateway (daemon/flags.h). Read from the Engine once, on the
 * loop like engine_get's own calls (a local socket, answered at once).
 */
static char gateway[64];
static bool gateway_listening;
static int64_t gateway_retry_at;

static const char *bridge_gateway(void)
{
	struct gerr err;
	int r;
	if (gateway[0] || !engine || clock_mono_ms() < gateway_retry_at)
		return gateway[0] ? gateway : NULL;
	r = docker_network_gateway(engine, "bridge", gateway, sizeof(gateway), &err);
	if (r <= 0) {
		gateway_retry_at = clock_mono_ms() + 30000;
		log_warn("docker", "the default bridge's gateway: %s (no GANTRY_FLAGS_URL in containers)",
			 r < 0 ? err.msg : "the Engine names none");
	}
	return gateway[0] ? gateway : NULL;
}

/* the environment of a container: the spec's env, PORT and the GANTRY_*
 * of a replica (not GANTRY_TAG: its processes are not ours to scan), and
 * neither PATH nor LANG unless the spec sets them (the image's stay) */
static char **container_env(struct replica *r, int port)
{
	const struct svc_config *c = &r->rc->cfg;
	char furl[200], ftok[80];
	bool flags = false;
	/* with secrets: only the plain env; the secret ones are read by gantry-secret-exec from
	 * SECRETS_MOUNT/.env inside the container, never put in its configuration */
	struct workload_env w = {
		.decl = c->env, .ndecl = c->nenv,
		.secrets_dir = c->nsecrets ? DOCKRT_SECRETS_MOUNT : NULL,
		.port = port, .replica = r->row.id,
		.service = r->row.service, .environment = r->row.environment, .revision = r->row.revision,
		.version = r->rc->version,
	};
	char **env;
	size_t o = 0;

	if (bridge_gateway())
		flags = daemon_flags_container_env(gd, r->row.environment, gateway, furl, sizeof(furl), ftok,
						   sizeof(ftok));
	w.flags_url = flags ? furl : NULL;
	w.flags_token = flags ? ftok : NULL;
	env = workload_env_build(&w);
	for (size_t i = 0; env[i]; i++) {
		bool declared = false;
		size_t klen = strcspn(env[i], "=");
		if ((klen == 4 && !strncmp(env[i], "PATH", 4)) || (klen == 4 && !strncmp(env[i], "LANG", 4))) {
			for (size_t k = 0; k < c->nenv; k++)
				if (strlen(c->env[k].key) == klen && !strncmp(c->env[k].key, env[i], klen))
					declared = true;
			if (!declared) {
				free(env[i]);
				continue;
			}
		}
		env[o++] = env[i];
	}
	env[o] = NULL;
	return env;
}

/* the labels of a container: which HOME, which replica (struct kv is not const) */
static char label_tag[] = "gantry.tag", label_replica[] = "gantry.replica", label_service[] = "gantry.service",
	    label_environment[] = "gantry.environment", label_revision[] = "gantry.revision";
static char *const label_keys[] = { label_tag, label_replica, label_service, label_environment, label_revision };

int dockrt_secret_owner(struct replica *r, uid_t *uid, gid_t *gid, struct gerr *err)
{
	char u[64], *end;
	unsigned long a, b;
	if (dockrt_container_user(r, u, sizeof(u), err) < 0)
		return -1;
	a = strtoul(u, &end, 10);
	if (end == u || (*end && *end != ':'))
		return gerr_set(err, "user %s: a container with secrets needs a numeric user (UID or UID:GID), so that "
				"its secrets directory is its own", u);
	b = a;
	if (*end == ':') {
		const char *g = end + 1;
		b = strtoul(g, &end, 10);
		if (end == g || *end)
			return gerr_set(err, "user %s: a container with secrets needs a numeric UID:GID", u);
	}
	*uid = (uid_t)a;
	*gid = (gid_t)b;
	return 0;
}

/* gantry-secret-exec beside our own executable: 0 (path in out), or -1 with err */
static int launcher_path(char *out, size_t len, struct gerr *err)
{
	char self[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;
	if (n <= 0)
		return gerr_set(err, "secrets: /proc/self/exe: %s", strerror(errno));
	self[n] = 0;
	if ((slash = strrchr(self, '/')))
		*slash = 0;
	if ((size_t)snprintf(out, len, "%s/gantry-secret-exec", self) >= len)
		return gerr_set(err, "secrets: the path of gantry is too long");
	if (access(out, X_OK) < 0)
		return gerr_set(err, "secrets: %s: %s (a container with secrets starts through it: install it beside "
				"gantry, make builds it)", out, strerror(errno));
	return 0;
}

int dockrt_spawn(struct replica *r)
{
	const struct svc_config *c = &r->rc->cfg;
	struct dockrt_job *j;
	struct gerr err = { { 0 } };
	int cport;

	if (replica_is_swarm(r))
		return swarmrt_spawn(r);
	if (engine_down || !engine_get(&err)) {
		replica_spawn_deferred(r, engine_down ? "the Docker Engine does not answer" : err.msg);
		return -1;
	}
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_START;
	j->r = r;
	if (dockrt_container_user(r, j->user, sizeof(j->user), &err) < 0) {
		free(j);
		replica_spawn_failed(r, err.msg);
		return -1;
	}
	cport = c->port > 0 ? c->port : r->row.port;
	snprintf(j->name, sizeof(j->name), "gantry-%s", r->row.id);
	snprintf(j->lrev, sizeof(j->lrev), "%d", r->row.revision);
	for (size_t i = 0; i < ARRAY_SIZE(j->labels); i++)
		j->labels[i].key = label_keys[i];
	j->labels[0].value = gd->tag;
	j->labels[1].value = r->row.id;
	j->labels[2].value = r->row.service;
	j->labels[3].value = r->row.environment;
	j->labels[4].value = j->lrev;
	j->env = container_env(r, cport);
	j->cmd = strv_dup(c->command, c->ncommand);
	j->entry = strv_dup(c->entrypoint, c->nentrypoint);
	if (c->nsecrets) {
		char launcher[PATH_MAX];
		if (!r->secrets_dir || launcher_path(launcher, sizeof(launcher), &err) < 0) {
			if (!r->secrets_dir)
				gerr_set(&err, "secrets: the replica has no secrets directory");
			job_free(j);
			replica_spawn_failed(r, err.msg);
			return -1;
		}
		j->binds = xcalloc(3, sizeof(*j->binds));
		j->binds[0] = xasprintf("%s:%s:ro", r->secrets_dir, DOCKRT_SECRETS_MOUNT);
		j->binds[1] = xasprintf("%s:%s:ro", launcher, DOCKRT_LAUNCHER);
		/* the launcher first; the program it execs is made in job_work (the image's entrypoint/cmd) */
		{
			char *const la[] = { (char *)DOCKRT_LAUNCHER, (char *)DOCKRT_SECRETS_MOUNT, (char *)"--" };
			char **keep = j->entry;
			j->entry = strv_dup(la, 3);
			j->secrets = true;
			/* program_of reads the spec's entrypoint: kept in cmd's place until job_work */
			j->c.entrypoint = j->entry;
			j->spec_entry = keep;
		}
	}
	j->res = c->resources;
	j->c.name = j->name;
	j->c.image = r->rc->image_id;
	j->c.env = j->env;
	j->c.user = j->user;
	j->c.entrypoint = j->entry;
	j->c.cmd = j->cmd;
	j->c.binds = j->binds;
	j->c.labels = j->labels;
	j->c.nlabels = ARRAY_SIZE(j->labels);
	j->c.container_port = cport;
	j->cport = cport;
	j->c.host_port = r->row.port;
	j->c.host_ip = "127.0.0.1";
	j->c.res = &j->res;
	r->djob = j;
	r->started_ms = clock_mono_ms();
	job_queue(j);
	return 0;
}

/* pid is the init process of container id, on this host: its cgroup path
 * names the container (docker/ID or docker-ID.scope, whatever the driver);
 * a pid that was recycled is in another cgroup */
static bool pid_of_container(pid_t pid, const char *id)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	if (pid <= 1 || strlen(id) < 12)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strstr(buf, id) != NULL;
}

/*
 * A signal to r's container: straight to its init process when it runs on
 * this host (what the Engine would do itself, through runc, but at once:
 * 24 kill requests through the Engine took seconds, past stop_grace), else
 * through the Engine.
 */
void dockrt_signal(struct replica *r, int sig)
{
	if (replica_is_swarm(r)) {
		swarmrt_signal(r, sig);
		return;
	}
	if (r->row.container[0] && pid_of_container(r->row.pid, r->row.container) && kill(r->row.pid, sig) == 0)
		return;
	queue_simple(JOB_KILL, r->row.container, sig);
}

/* containers whose removal was asked lately: a poll that still lists one
 * must not call it an orphan (and remove it twice) */
static char reaped[32][72];
static unsigned nreaped;
/* and replicas forgotten while their container was being made (the job
 * removes it when it is back) */
static char forgotten[32][160];
static unsigned nforgotten;

static bool was_reaped(const char *id, const char *replica)
{
	for (size_t i = 0; i < ARRAY_SIZE(reaped); i++)
		if (!strcmp(reaped[i], id))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(forgotten); i++)
		if (!strcmp(forgotten[i], replica))
			return true;
	return false;
}

/* the container is done with (its exit noted): removed, and forgotten */
void dockrt_reap(struct replica *r)
{
	if (replica_is_swarm(r)) {
		swarmrt_reap(r);
		return;
	}
	dockrt_stop_logs(r);
	if (r->row.container[0])
		strlcpy_g(reaped[nreaped++ % ARRAY_SIZE(reaped)], r->row.container, sizeof(reaped[0]));
	queue_simple(JOB_REMOVE, r->row.container, 0);
	r->row.container[0] = 0;
	r->row.host[0] = 0;
}

void dockrt_forget(struct replica *r)
{
	if (replica_is_swarm(r)) {
		swarmrt_forget(r);
		return;
	}
	if (r->djob) {
		r->djob->r = NULL;
		r->djob = NULL;
		strlcpy_g(forgotten[nforgotten++ % ARRAY_SIZE(forgotten)], r->row.id, sizeof(forgotten[0]));
	}
	dockrt_reap(r);
}

/* ---- noticing ends: one list of our containers per poll ---- */

struct seen {
	char id[72];
	char replica[160];
	bool running;
	struct docker_state st;       /* inspected when not running */
	bool inspected;
};

struct poll {
	uv_work_t req;
	uint64_t seq;
	char label[64];
	struct seen *s;
	size_t n;
	int rc;
	struct gerr err;
};

static void poll_work(uv_work_t *req)
{
	struct poll *p = req->data;
	struct docker_container *c = NULL;
	size_t n = 0;

	p->rc = docker_container_list(engine, p->label, &c, &n, &p->err);
	if (p->rc < 0)
		return;
	p->s = xcalloc(n + 1, sizeof(*p->s));
	for (size_t i = 0; i < n; i++) {
		const char *rid = docker_label(&c[i], "gantry.replica");
		struct seen *s = &p->s[p->n];
		if (!rid)
			continue;
		strlcpy_g(s->id, c[i].id, sizeof(s->id));
		strlcpy_g(s->replica, rid, sizeof(s->replica));
		s->running = !strcmp(c[i].status, "running") || !strcmp(c[i].status, "paused") ||
			!strcmp(c[i].status, "restarting");
		if (!s->running) {
			struct gerr e2;
			s->inspected = docker_container_inspect(engine, s->id, &s->st, &e2) == 1;
		}
		p->n++;
	}
	docker_containers_free(c, n);
}

static struct replica *replica_by_id(const char *id)
{
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next)
			if (!r->freeing && !strcmp(r->row.id, id))
				return r;
	return NULL;
}

static void poll_done(uv_work_t *req, int status)
{
	struct poll *p = req->data;
	(void)status;
	poll_busy = false;
	if (p->rc < 0) {
		if (!engine_down)
			log_warn("docker", "%s: containers are left as they are until it answers", p->err.msg);
		engine_down = true;
		free(p);
		return;
	}
	if (engine_down)
		log_info("docker", "the Docker Engine answers again");
	engine_down = false;
	/* upgrading: the next controller notices ends (and owns orphans) */
	if (gd->upgrading)
		goto out;
	for (size_t i = 0; i < p->n; i++) {
		struct seen *s = &p->s[i];
		struct replica *r = replica_by_id(s->replica);
		if (!r) {
			/* no replica owns it (one that is starting does, by id) */
			if (was_reaped(s->id, s->replica))
				continue;
			log_warn("adopt", "removing orphan container %.12s replica=%s (not in the state store)", s->id,
				 s->replica);
			queue_simple(JOB_REMOVE, s->id, 0);
			continue;
		}
		if (strcmp(r->row.container, s->id) || r->dseq >= p->seq)
			continue;
		if (s->running)
			continue;
		/* ended */
		r->row.pid = 0;
		replica_exited(r, s->inspected ? s->st.exit_code : -1, s->inspected && s->st.oom_killed,
			       s->inspected && s->st.error[0] ? s->st.error : NULL);
	}
	/* a recorded container the Engine no longer has (removed behind our back) */
	for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
		struct replica *r, *next;
		for (r = se->replicas; r; r = next) {
			bool found = false;
			next = r->next;
			if (!r->row.container[0] || r->dseq >= p->seq || r->freeing || replica_is_swarm(r))
				continue;
			for (size_t i = 0; i < p->n && !found; i++)
				found = !strcmp(p->s[i].id, r->row.container);
			if (!found) {
				r->row.container[0] = 0;
				r->row.pid = 0;
				replica_exited(r, -1, false, "container removed outside gantry");
			}
		}
	}
out:
	free(p->s);
	free(p);
}

bool dockrt_busy(void)
{
	return swarmrt_busy() || jobs_inflight > 0 || poll_busy || atomic_load(&pulls_inflight) > 0;
}

void dockrt_tick(int64_t now)
{
	struct poll *p;
	bool any = false;
	struct gerr err;

	swarmrt_tick(now);
	if (poll_busy || now < poll_at)
		return;
	poll_at = now + DOCKRT_POLL_MS;
	for (struct svcenv *se = gd->svcenvs; se && !any; se = se->next)
		for (struct replica *r = se->replicas; r && !any; r = r->next)
			any = replica_is_docker(r) && !replica_is_swarm(r);
	if (!any && !engine)
		return;
	if (!engine_get(&err))
		return;
	/* containers adopted after a restart find their flags listener again */
	if (any && !gateway_listening && bridge_gateway())
		gateway_listening = daemon_flags_gateway_listen(gd, gateway);
	p = xcalloc(1, sizeof(*p));
	p->seq = ++poll_seq;
	snprintf(p->label, sizeof(p->label), "gantry.tag=%s", gd->tag);
	p->req.data = p;
	poll_busy = true;
	if (uv_queue_work(gd->loop, &p->req, poll_work, poll_done) < 0) {
		poll_busy = false;
		free(p);
	}
}

/* ---- adoption ---- */

int dockrt_adopt_scan(struct replica_row *rows, size_t n, bool *alive)
{
	struct docker_container *c = NULL;
	size_t nc = 0;
	struct gerr err;
	char label[64];
	bool any = false;

	/* a cluster's task (pid -1): its first poll decides (swarmrt.c) */
	for (size_t i = 0; i < n; i++) {
		alive[i] = rows[i].pid == -1 && rows[i].container[0];
		any |= rows[i].container[0] != 0 && rows[i].pid != -1;
	}
	if (!any && !engine)
		return 0;
	if (!engine_get(&err)) {
		if (any)
			log_warn("adopt", "%s: container replicas are kept as recorded until it answers", err.msg);
		for (size_t i = 0; i < n; i++)
			alive[i] = rows[i].container[0] != 0;
		return -1;
	}
	snprintf(label, sizeof(label), "gantry.tag=%s", gd->tag);
	if (docker_container_list(engine, label, &c, &nc, &err) < 0) {
		log_warn("adopt", "%s: container replicas are kept as recorded until it answers", err.msg);
		for (size_t i = 0; i < n; i++)
			alive[i] = rows[i].container[0] != 0;
		return -1;
	}
	for (size_t k = 0; k < nc; k++) {
		const char *rid = docker_label(&c[k], "gantry.replica");
		bool running = !strcmp(c[k].status, "running");
		bool owned = false;
		/* a Swarm task's container (labelled with our tag, no replica's): swarmrt.c's */
		if (!rid)
			continue;
		for (size_t i = 0; rid && i < n; i++) {
			if (rows[i].pid == -1 || strcmp(rows[i].id, rid))
				continue;
			if (!rows[i].container[0] && running) {
				/* started just before a crash, its id never recorded */
				strlcpy_g(rows[i].container, c[k].id, sizeof(rows[i].container));
			}
			if (!strcmp(rows[i].container, c[k].id)) {
				owned = running;
				alive[i] = running;
			}
		}
		if (!owned) {
			if (running)
				log_warn("adopt", "removing orphan container %.12s replica=%s (not in the state store)",
					 c[k].id, rid ? rid : "?");
			if (docker_container_remove(engine, c[k].id, &err) < 0)
				log_warn("docker", "%s", err.msg);
		}
	}
	docker_containers_free(c, nc);
	/* a recorded container that no longer runs was removed above */
	for (size_t i = 0; i < n; i++)
		if (!alive[i] && rows[i].pid != -1)
			rows[i].container[0] = 0;
	return 0;
}

/* ---- output: the Engine's log stream into the replica's log file ---- */

struct dockrt_follower {
	pthread_t t;
	char id[72];
	char path[512];
	char url[256];                /* the Engine to read from; empty: this host's */
	int64_t since;
	volatile int stop;
	int refs;                     /* the thread's and the replica's */
};

static void follower_unref(struct dockrt_follower *f)
{
	if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(f);
}

static void on_log(void *data, const char *buf, size_t len)
{
	int *fd = data;
	while (len > 0) {
		ssize_t w = write(*fd, buf, len);
		if (w <= 0)
			return; /* a full disk: dropped, as a process's writes would be */
		buf += w;
		len -= (size_t)w;
	}
}

static void *follow_main(void *arg)
{
	struct dockrt_follower *f = arg;
	int fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	struct gerr err;
	/* a cluster task's node: a client of its own (the stream holds it) */
	struct docker *d = f->url[0] ? docker_open(f->url, &err) : engine;

	if (fd >= 0 && d && docker_container_logs(d, f->id, true, f->since, on_log, &fd, &f->stop, &err) < 0 &&
	    !f->stop)
		log_debug("docker", "logs of %.12s: %s", f->id, err.msg);
	if (f->url[0] && d)
		docker_close(d);
	if (fd >= 0)
		close(fd);
	follower_unref(f);
	return NULL;
}

void dockrt_follow_logs(struct replica *r, int64_t since)
{
	if (!replica_is_swarm(r))
		dockrt_follow_logs_at(r, NULL, since);
}

void dockrt_follow_logs_at(struct replica *r, const char *url, int64_t since)
{
	struct dockrt_follower *f;
	pthread_attr_t attr;

	if (r->dlog || !r->row.container[0] || (!url && !engine))
		return;
	f = xcalloc(1, sizeof(*f));
	if (url)
		strlcpy_g(f->url, url, sizeof(f->url));
	strlcpy_g(f->id, r->row.container, sizeof(f->id));
	strlcpy_g(f->path, r->log_path, sizeof(f->path));
	f->since = since;
	f->refs = 2;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&f->t, &attr, follow_main, f) != 0) {
		log_warn("docker", "replica=%s: cannot follow its logs", r->row.id);
		free(f);
	} else {
		r->dlog = f;
	}
	pthread_attr_destroy(&attr);
}

void dockrt_stop_logs(struct replica *r)
{
	if (!r->dlog)
		return;
	r->dlog->stop = 1;
	follower_unref(r->dlog);
	r->dlog = NULL;
}

/* ---- exec probes: run inside the container ---- */

/*
 * One attempt of an exec probe, as `docker exec CONTAINER /bin/sh -c CMD`
 * (Docker's HEALTHCHECK CMD-SHELL, Kubernetes' exec probes): in the
 * container, as its user, with its environment ($PORT included). The job
 * holds copies of everything it needs, never the replica: a replica freed
 * while its probe runs only marks the job cancelled, and the job frees
 * itself when it is back on the loop. It occupies one thread of the pool
 * for at most the probe's timeout (docker_exec is bounded by it).
 */
/* libuv's pool (4 threads unless UV_THREADPOOL_SIZE) also runs container
 * starts, the poll that notices ends, analysis queries and the proxy's
 * in-flight counts: exec probes, which may each hold a thread for their
 * whole timeout, take at most this many of them. A probe over the cap is
 * not started (NULL): replica_tick tries again at its next period */
#define DOCKRT_PROBES_MAX 2
static int probes_inflight;

struct dockrt_probe {
	uv_work_t req;
	probe_cb cb;
	struct replica *r;            /* valid until cancelled (cancel_probes comes before a free) */
	bool cancelled;
	const char *what;             /* "readiness", "liveness" */
	char id[72];
	char user[64];
	char *argv[4];
	int64_t timeout_ms;
	int rc, code;
	char out[256];
	struct gerr err;
	struct docker *d;             /* this host's Engine, or a cluster task's node's */
};

static void probe_work(uv_work_t *req)
{
	struct dockrt_probe *p = req->data;
	p->rc = docker_exec(p->d, p->id, p->argv, p->user, p->timeout_ms, &p->code, p->out, sizeof(p->out),
			    &p->err);
}

static void probe_done(uv_work_t *req, int status)
{
	struct dockrt_probe *p = req->data;
	char detail[256];
	bool ok = false;
	(void)status;

	jobs_inflight--;
	probes_inflight--;
	if (p->cancelled)
		goto out;
	if (p->rc < 0) {
		strlcpy_g(detail, p->err.msg, sizeof(detail));
	} else if (p->code == 0) {
		ok = true;
		snprintf(detail, sizeof(detail), "exit status 0");
	} else if ((p->code == 126 || p->code == 127) && strstr(p->out, "/bin/sh") &&
		   (strstr(p->out, "no such file") || strstr(p->out, "not found"))) {
		/* the Engine could not run the shell: the image has none. No
		 * retry changes that: said once per replica as an event (a
		 * replica that never gets ready has no other place for it) */
		const char *why = strstr(p->out, "stat /bin/sh");
		snprintf(detail, sizeof(detail), "exec /bin/sh -c %.60s: no such file in the image (%.120s)",
			 p->argv[2], why ? why : p->out);
		if (!p->r->d_probe_told) {
			p->r->d_probe_told = true;
			daemon_event(p->r->se, p->r->row.revision, "probe_failed", "replica %s %s probe cannot run: %s",
				     p->r->row.id, p->what, detail);
		}
	} else if (p->out[0]) {
		snprintf(detail, sizeof(detail), "exit status %d: %.200s", p->code, p->out);
	} else {
		snprintf(detail, sizeof(detail), "exit status %d", p->code);
	}
	p->cb(p->r, ok, detail);
out:
	free(p->argv[2]);
	free(p);
}

struct dockrt_probe *dockrt_probe_start(struct replica *r, const struct probe *pr, probe_cb cb)
{
	struct dockrt_probe *p;
	struct gerr err = { { 0 } };
	struct docker *d;

	if (!r->row.container[0])
		return NULL;
	if (replica_is_swarm(r)) {
		/* in the task's container, through its node's Engine */
		if (!(d = swarmrt_task_engine(r, &err))) {
			log_debug("replica", "replica=%s: exec probe not run: %s", r->row.id, err.msg);
			return NULL;
		}
	} else if (engine_down || !(d = engine_get(&err))) {
		return NULL;
	}
	if (probes_inflight >= DOCKRT_PROBES_MAX) {
		log_debug("replica", "replica=%s: exec probe deferred: %d in flight", r->row.id, probes_inflight);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	if (dockrt_container_user(r, p->user, sizeof(p->user), &err) < 0) {
		log_warn("replica", "replica=%s: exec probe not run: %s", r->row.id, err.msg);
		free(p);
		return NULL;
	}
	p->cb = cb;
	p->r = r;
	p->d = d;
	p->what = pr == &r->rc->cfg.liveness ? "liveness" : "readiness";
	strlcpy_g(p->id, r->row.container, sizeof(p->id));
	p->argv[0] = (char *)"/bin/sh";
	p->argv[1] = (char *)"-c";
	p->argv[2] = xstrdup(pr->target ? pr->target : "");
	p->timeout_ms = pr->timeout_ms > 0 ? pr->timeout_ms : 1000;
	p->req.data = p;
	jobs_inflight++;
	probes_inflight++;
	if (uv_queue_work(gd->loop, &p->req, probe_work, probe_done) < 0) {
		jobs_inflight--;
		probes_inflight--;
		free(p->argv[2]);
		free(p);
		return NULL;
	}
	return p;
}

void dockrt_probe_cancel(struct dockrt_probe *p)
{
	if (p)
		p->cancelled = true;
}

/* ---- images ---- */

/*
 * No pull runs on the loop: a pull is a thread of its own (dockrt_pull_start,
 * below) whose end the loop reads (pulls.c). What the loop asks the Engine
 * here is an image inspect on its socket (docker.c's timeout bounds it).
 */
int dockrt_pin_image(const char *ref, const char *pull, char *hex, size_t len, struct gerr *err)
{
	struct docker_image img;
	struct docker *d = engine_get(err);
	int f;

	if (!d)
		return -1;
	f = docker_image_inspect(d, ref, &img, err);
	if (f < 0)
		return -1;
	if (!f && pull && !strncmp(ref, "sha256:", 7)) {
		/* the id is known: the pull runs later, off the op handler
		 * (dockrt_pull_start), and its result must be this id */
		if (strlen(ref + 7) >= len)
			return gerr_set(err, "image %s: unexpected id", ref);
		strlcpy_g(hex, ref + 7, len);
		return 1;
	}
	if (!f && pull) {
		/* image: REGISTRY/NAME:TAG with no id known yet: what it names is
		 * learnt by pulling it, off the op handler too (pulls.c) */
		if (hex && len)
			hex[0] = 0;
		return 2;
	}
	if (!f) {
		gerr_set(err, "image %s: no such image in the Docker Engine at %s (build or pull it first)", ref,
			 docker_host(d));
		return -1;
	}
	if (strncmp(img.id, "sha256:", 7) || strlen(img.id + 7) >= len) {
		gerr_set(err, "image %s: unexpected id '%s'", ref, img.id);
		return -1;
	}
	strlcpy_g(hex, img.id + 7, len);
	return 0;
}

int dockrt_image_present(const char *hex, struct gerr *err)
{
	struct docker_image img;
	struct docker *d = engine_get(err);
	char ref[96];

	if (!d)
		return -1;
	snprintf(ref, sizeof(ref), "sha256:%s", hex);
	return docker_image_inspect(d, ref, &img, err);
}

const char *dockrt_engine_host(void)
{
	return engine ? docker_host(engine) : "the Docker Engine";
}

/*
 * Asynchronous pulls: one thread per reference (two deploys of one image
 * share it). The thread updates the progress under pulls_lock; the loop
 * reads a copy (dockrt_pull_get). An entry lives while a holder has it
 * (dockrt_pull_start .. dockrt_pull_release) or its thread runs; the list
 * keeps every entry reachable, and done entries nobody holds are swept at
 * the next start.
 */
struct dockrt_pull {
	struct dockrt_pull *next;
	char ref[512];
	int holders;                  /* loop side */
	bool running;                 /* its thread has not finished */
	struct dockrt_pull_state st;
};

static pthread_mutex_t pulls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dockrt_pull *pulls;

static void on_layer(void *data, const char *id, const char *status, int64_t current, int64_t total)
{
	struct dockrt_pull *p = data;
	pthread_mutex_lock(&pulls_lock);
	pull_progress_update(&p->st.progress, id, status, current, total);
	pthread_mutex_unlock(&pulls_lock);
}

static void *async_pull_main(void *arg)
{
	struct dockrt_pull *p = arg;
	struct docker_image img;
	struct gerr err = { { 0 } };
	int rc;

	memset(&img, 0, sizeof(img));
	rc = docker_image_pull_layers(engine, p->ref, on_layer, p, &err);

	if (rc == 0) {
		int f = docker_image_inspect(engine, p->ref, &img, &err);
		if (f == 0)
			gerr_set(&err, "pulled %s but the Docker Engine has no such image", p->ref);
		rc = f == 1 ? 0 : -1;
	}
	pthread_mutex_lock(&pulls_lock);
	p->st.rc = rc;
	if (rc < 0)
		strlcpy_g(p->st.error, err.msg, sizeof(p->st.error));
	else
		strlcpy_g(p->st.id, img.id, sizeof(p->st.id));
	p->st.ended_ms = clock_mono_ms();
	p->st.done = true;
	p->running = false;
	pthread_mutex_unlock(&pulls_lock);
	if (rc < 0)
		log_warn("docker", "pull %s: %s", p->ref, err.msg);
	else
		log_info("docker", "pulled %s: image %.19s", p->ref, img.id);
	atomic_fetch_sub(&pulls_inflight, 1);
	return NULL;
}

struct dockrt_pull *dockrt_pull_start(const char *ref, struct gerr *err)
{
	struct dockrt_pull *p, **pp;
	pthread_attr_t attr;
	pthread_t t;

	if (!engine_get(err))
		return NULL;
	if (strlen(ref) >= sizeof(p->ref)) {
		gerr_set(err, "pull %.80s…: the reference is too long", ref);
		return NULL;
	}
	pthread_mutex_lock(&pulls_lock);
	for (pp = &pulls; (p = *pp);) {
		if (p->holders == 0 && !p->running) {
			*pp = p->next;
			free(p);
			continue;
		}
		pp = &p->next;
	}
	/* one running pull per reference; a finished one that failed is not
	 * shared (the registry may be back), one that succeeded is */
	for (p = pulls; p; p = p->next)
		if (!strcmp(p->ref, ref) && (p->running || p->st.rc == 0))
			break;
	if (p) {
		p->holders++;
		pthread_mutex_unlock(&pulls_lock);
		return p;
	}
	p = xcalloc(1, sizeof(*p));
	strlcpy_g(p->ref, ref, sizeof(p->ref));
	p->holders = 1;
	p->running = true;
	p->st.started_ms = clock_mono_ms();
	p->next = pulls;
	pulls = p;
	pthread_mutex_unlock(&pulls_lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	atomic_fetch_add(&pulls_inflight, 1);
	if (pthread_create(&t, &attr, async_pull_main, p) != 0) {
		atomic_fetch_sub(&pulls_inflight, 1);
		pthread_mutex_lock(&pulls_lock);
		p->running = false;
		p->st.done = true;
		p->st.rc = -1;
		snprintf(p->st.error, sizeof(p->st.error), "pull %s: cannot start a thread", ref);
		pthread_mutex_unlock(&pulls_lock);
	} else {
		log_info("docker", "pull %s: started", ref);
	}
	pthread_attr_destroy(&attr);
	return p;
}

void dockrt_pull_get(const struct dockrt_pull *p, struct dockrt_pull_state *out)
{
	pthread_mutex_lock(&pulls_lock);
	*out = p->st;
	pthread_mutex_unlock(&pulls_lock);
}

void dockrt_pull_release(struct dockrt_pull *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&pulls_lock);
	p->holders--;
	pthread_mutex_unlock(&pulls_lock);
}

/* ---- pruning: an image removed in the thread pool ---- */

struct image_rm {
	uv_work_t req;
	char ref[80];                 /* "sha256:<hex>" */
	char tags[2][400];            /* names it may carry: SERVICE:VERSION, REGISTRY/SERVICE:VERSION */
	size_t ntags;
	dockrt_image_done done;
	void *arg;
	int rc;                       /* 1 gone (removed or absent), 0 stays (in use), -1 error */
	struct gerr err;
};

static void image_rm_work(uv_work_t *req)
{
	struct image_rm *j = req->data;
	struct docker_image img;
	struct gerr e2;
	int f;

	/* a tag goes only while it still names this image (a tag moved to
	 * another image is not ours to remove); then the image by id, not
	 * forced: the Engine refuses one a container uses (409) */
	for (size_t i = 0; i < j->ntags; i++)
		if (docker_image_inspect(engine, j->tags[i], &img, &e2) == 1 && !strcmp(img.id, j->ref) &&
		    docker_image_remove(engine, j->tags[i], &e2) < 0)
			log_debug("docker", "%s", e2.msg);
	f = docker_image_remove(engine, j->ref, &j->err);
	if (f == 0)
		f = docker_image_inspect(engine, j->ref, &img, &j->err) == 0 ? 1 : 0;
	j->rc = f;
}

static void image_rm_done(uv_work_t *req, int status)
{
	struct image_rm *j = req->data;
	(void)status;
	jobs_inflight--;
	j->done(j->arg, j->rc, j->rc < 0 ? j->err.msg : NULL);
	free(j);
}

int dockrt_remove_image(const char *hex, const char *const *tags, size_t ntags, dockrt_image_done done, void *arg,
			struct gerr *err)
{
	struct image_rm *j;

	if (!engine_get(err))
		return -1;
	j = xcalloc(1, sizeof(*j));
	snprintf(j->ref, sizeof(j->ref), "sha256:%s", hex);
	for (size_t i = 0; i < ntags && j->ntags < ARRAY_SIZE(j->tags); i++)
		if (tags[i] && strlen(tags[i]) < sizeof(j->tags[0]))
			strlcpy_g(j->tags[j->ntags++], tags[i], sizeof(j->tags[0]));
	j->done = done;
	j->arg = arg;
	j->req.data = j;
	jobs_inflight++;
	if (uv_queue_work(gd->loop, &j->req, image_rm_work, image_rm_done) < 0) {
		image_rm_work(&j->req);
		image_rm_done(&j->req, 0);
	}
	return 0;
}
