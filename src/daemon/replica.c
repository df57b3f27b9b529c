/*
 * replica.c — one replica's life: spawn, probe, route, restart with backoff,
 * drain, stop; and re-adoption after a controller restart.
 *
 * Removing a replica is always: stop routing -> wait for the proxy to run the
 * new table and for in-flight requests to finish (up to drain_timeout) ->
 * SIGTERM -> stop_grace -> SIGKILL.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "daemon/secrets.h"
#include "runtime/runtime.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/clock.h"
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MAX_BACKOFF_MS (5 * 60 * 1000)
#define BACKOFF_RESET_MS (10 * 60 * 1000)

bool replica_is_ready(const struct replica *r)
{
	return !strcmp(r->row.state, "ready");
}

bool replica_is_leaving(const struct replica *r)
{
	return !strcmp(r->row.state, "draining") || !strcmp(r->row.state, "stopping");
}

/*
 * Record, then act: a state the controller decides (starting, ready,
 * draining, stopping) is written first and taken only if the write
 * succeeded (-1: r unchanged). A state that reports a fact (backoff: the
 * process is gone; unready: its probe failed) is taken whatever the store
 * says, as is everything while shutting down: a restarted controller sees
 * the same facts again.
 */
static int set_state(struct replica *r, const char *state)
{
	struct replica_row was = r->row;
	bool was_ready = replica_is_ready(r);
	bool fact = !strcmp(state, "backoff") || !strcmp(state, "unready") || gd->shutting_down;
	strlcpy_g(r->row.state, state, sizeof(r->row.state));
	r->row.ready_since = replica_is_ready(r) ? clock_now_ms() : 0;
	if (replica_save(r) < 0 && !fact) {
		r->row = was;
		return -1;
	}
	if (was_ready != replica_is_ready(r)) {
		proxyctl_write_routes();
		daemon_kick();
	}
	return 0;
}

int replica_save(struct replica *r)
{
	struct gerr err;
	if (store_replica_put(gd->store, &r->row, &err) < 0) {
		log_error("store", "%s", err.msg);
		return -1;
	}
	r->recorded = true;
	return 0;
}

static void cancel_probes(struct replica *r)
{
	if (r->rprobe)
		probe_cancel(r->rprobe);
	if (r->lprobe)
		probe_cancel(r->lprobe);
	dockrt_probe_cancel(r->drprobe);
	dockrt_probe_cancel(r->dlprobe);
	r->rprobe = r->lprobe = NULL;
	r->drprobe = r->dlprobe = NULL;
}

static void on_proc_closed(uv_handle_t *h)
{
	struct replica *r = h->data;
	r->proc_active = false;
	if (r->freeing)
		free(r);
}

/* unlink from its svcenv, delete its row, free (after the uv handle closes) */
static void replica_remove(struct replica *r)
{
	struct gerr err;
	struct replica **pp;

	cancel_probes(r);
	for (pp = &r->se->replicas; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	if (store_replica_delete(gd->store, r->row.id, &err) < 0)
		log_error("store", "%s", err.msg);
	if (replica_is_docker(r))
		dockrt_forget(r);
	cgroup_destroy(r->cgroup);
	secrets_replica_release(r);
	workload_scratch_remove(r->row.id);
	free(r->scratch);
	r->scratch = NULL;
	r->freeing = true;
	if (r->proc_active) {
		if (!uv_is_closing((uv_handle_t *)&r->proc))
			uv_close((uv_handle_t *)&r->proc, on_proc_closed);
	} else {
		free(r);
	}
}

static void fill_paths(struct replica *r)
{
	char *dir = xasprintf("%s/logs/%s.%s", gd->home, r->row.service, r->row.environment);
	mkdir(dir, 0700);
	snprintf(r->log_path, sizeof(r->log_path), "%s/%d-%s.log", dir, r->row.revision, r->row.id);
	free(dir);
	snprintf(r->cgroup, sizeof(r->cgroup), "%s", r->row.id);
}

struct replica *replica_create(struct svcenv *se, struct revcfg *rc)
{
	struct replica *r = xcalloc(1, sizeof(*r));
	unsigned char rnd[4];
	FILE *f = fopen("/dev/urandom", "re");
	if (!f || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd))
		memcpy(rnd, &r, sizeof(rnd));
	if (f)
		fclose(f);
	r->se = se;
	r->rc = rc;
	snprintf(r->row.id, sizeof(r->row.id), "%s-%s-%d-%02x%02x%02x%02x", se->row.service,
		 se->row.environment, rc->number, rnd[0], rnd[1], rnd[2], rnd[3]);
	strlcpy_g(r->row.service, se->row.service, sizeof(r->row.service));
	strlcpy_g(r->row.environment, se->row.environment, sizeof(r->row.environment));
	r->row.revision = rc->number;
	r->row.created_at = clock_now_ms();
	strlcpy_g(r->row.state, "starting", sizeof(r->row.state));
	fill_paths(r);
	r->next = se->replicas;
	se->replicas = r;
	return r;
}

static void describe_exit(struct replica *r, int64_t status, int sig)
{
	long oom = replica_is_docker(r) ? r->oom_base + r->d_oom : cgroup_oom_kills(r->cgroup);
	if (oom > r->oom_base) {
		char sz[32] = "?";
		if (r->rc && r->rc->cfg.resources.memory_bytes)
			snprintf(sz, sizeof(sz), "%lldMi", (long long)(r->rc->cfg.resources.memory_bytes >> 20));
		snprintf(r->row.last_exit, sizeof(r->row.last_exit), "OOM killed (memory limit %s)", sz);
		r->oom_base = oom;
	} else if (sig) {
		snprintf(r->row.last_exit, sizeof(r->row.last_exit), "killed by signal %d (%s)", sig, strsignal(sig));
	} else if (status >= 0) {
		snprintf(r->row.last_exit, sizeof(r->row.last_exit), "exit status %lld", (long long)status);
	} else if (r->d_detail[0]) {
		snprintf(r->row.last_exit, sizeof(r->row.last_exit), "%s", r->d_detail);
	} else {
		snprintf(r->row.last_exit, sizeof(r->row.last_exit), "exited while the controller was down");
	}
	/* facts of this exit only */
	r->d_oom = false;
	r->d_detail[0] = 0;
}

/* the process is gone: finish a stop, or schedule a restart */
static void on_gone(struct replica *r, int64_t status, int sig)
{
	int64_t now = clock_mono_ms(), delay;
	struct svcenv *se = r->se;

	r->row.pid = 0;
	r->row.start_time = 0;
	cancel_probes(r);
	if (replica_is_docker(r))
		dockrt_reap(r);
	/* a leaving replica is never restarted, even one a failed liveness
	 * probe was restarting: a draining one's exit ends its drain */
	if (replica_is_leaving(r)) {
		r->restart_after_stop = false;
		if (strcmp(r->row.state, "stopping")) {
			strlcpy_g(r->row.state, "stopping", sizeof(r->row.state));
			r->kill_at = now + (r->rc ? r->rc->cfg.stop_grace_ms : 10000);
		}
	}
	/* `sh -c CMD` may die first on SIGTERM while CMD still finishes its
	 * work: a stop is over when the whole process group is gone
	 * (replica_tick SIGKILLs it at stop_grace, then calls us again) */
	if ((!strcmp(r->row.state, "stopping") || r->restart_after_stop) &&
	    r->pgid > 1 && proc_session_alive(r->pgid)) {
		log_debug("replica", "replica=%s leader exited, group still running", r->row.id);
		return;
	}
	if (r->pgid > 1)
		kill(-r->pgid, SIGKILL); /* anything left of a crashed replica */
	r->pgid = 0;
	if (!strcmp(r->row.state, "stopping") && !r->restart_after_stop) {
		log_info("replica", "replica=%s stopped", r->row.id);
		daemon_kick();
		/* stragglers that left the process group */
		cgroup_kill(r->cgroup, SIGKILL);
		replica_remove(r);
		proxyctl_write_routes();
		return;
	}
	if (r->restart_after_stop) {
		r->restart_after_stop = false;
	} else {
		describe_exit(r, status, sig);
	}
	if (now - r->started_ms > BACKOFF_RESET_MS)
		r->consecutive_crashes = 0;
	delay = gd->backoff_base_ms << MIN(r->consecutive_crashes, 20);
	if (delay > MAX_BACKOFF_MS)
		delay = MAX_BACKOFF_MS;
	r->consecutive_crashes++;
	r->row.restarts++;
	r->backoff_until = now + delay;
	if (r->row.revision == se->row.target_revision) {
		se->crash_times[se->ncrash % (int)ARRAY_SIZE(se->crash_times)] = clock_steady_ms();
		se->ncrash++;
	}
	{
		char d[32];
		daemon_event(se, r->row.revision, "replica_exited", "replica %s %s; restart %d in %s",
			     r->row.id, r->row.last_exit, r->row.restarts, format_duration(delay, d, sizeof(d)));
	}
	cgroup_kill(r->cgroup, SIGKILL);
	set_state(r, "backoff");
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct replica *r = p->data;
	if (!uv_is_closing((uv_handle_t *)p))
		uv_close((uv_handle_t *)p, on_proc_closed);
	/* upgrading: the next controller sees it gone by polling; if the
	 * upgrade fails, our own tick does (the handle is closed: polled) */
	if (r->freeing || gd->upgrading)
		return;
	on_gone(r, status, sig);
}

/* who r runs as: services.S.user, else the default workload user */
static int resolve_user(struct replica *r, struct gerr *err)
{
	if (workload_user_resolve(r->rc->cfg.user, &r->user, err) < 0)
		return -1;
	r->have_user = true;
	return 0;
}

/* r's environment: the spec's env, PORT, the tags, its scratch; nothing of
 * ours. An exec probe gets the same without GANTRY_TAG: it also leads its
 * own session, and must not pass for the replica at the next adoption */
static char **replica_env(const struct replica *r, bool tag)
{
	const struct svc_config *c = &r->rc->cfg;
	char furl[200], ftok[80];
	bool flags = daemon_flags_replica_env(gd, r->row.environment, furl, sizeof(furl), ftok, sizeof(ftok));
	struct workload_env w = {
		/* with its secrets when it has some (secrets_replica_prepare) */
		.decl = r->senv ? r->senv : c->env, .ndecl = r->senv ? r->nsenv : c->nenv,
		.port = r->row.port, .scratch = r->scratch, .secrets_dir = r->secrets_dir,
		.tag = tag ? gd->tag : NULL, .replica = r->row.id, .service = r->row.service,
		.environment = r->row.environment, .revision = r->row.revision, .version = r->rc->version,
		.flags_url = flags ? furl : NULL, .flags_token = flags ? ftok : NULL,
	};
	return workload_env_build(&w);
}

void replica_exited(struct replica *r, int exit_code, bool oom, const char *detail)
{
	if (r->freeing || gd->upgrading)
		return;
	r->d_oom = oom;
	snprintf(r->d_detail, sizeof(r->d_detail), "%s", detail ? detail : "");
	on_gone(r, exit_code, 0); /* may free r (a stop that ended): r is not touched after it */
}

void replica_target(const struct replica *r, char *ip, int *port)
{
	const char *colon = strrchr(r->row.host, ':');
	char *end;
	long p = colon ? strtol(colon + 1, &end, 10) : 0;
	if (colon && colon - r->row.host < 64 && !*end && p > 0 && p <= 65535) {
		memcpy(ip, r->row.host, (size_t)(colon - r->row.host));
		ip[colon - r->row.host] = 0;
		*port = (int)p;
		return;
	}
	strlcpy_g(ip, "127.0.0.1", 64);
	*port = r->row.port;
}

const char *replica_addr(const struct replica *r, char *buf, size_t len)
{
	char ip[64];
	int port;
	replica_target(r, ip, &port);
	snprintf(buf, len, "%.47s:%d", ip, port & 0xffff);
	return buf;
}

void replica_spawn_deferred(struct replica *r, const char *why)
{
	log_warn("replica", "replica=%s not started: %s; trying again in 1s", r->row.id, why);
	r->row.pid = 0;
	strlcpy_g(r->row.state, "backoff", sizeof(r->row.state));
	r->backoff_until = clock_mono_ms() + 1000;
	replica_save(r);
}

void replica_signal(struct replica *r, int sig)
{
	if (replica_is_docker(r))
		dockrt_signal(r, sig);
	else if (r->row.pid)
		proc_kill_tree(r->row.pid, r->cgroup, sig);
}

/* r could not start (why: borrowed): an event, and an exit as far as the restart backoff counts */
void replica_spawn_failed(struct replica *r, const char *why)
{
	daemon_event(r->se, r->row.revision, "replica_failed", "replica %s could not start: %s", r->row.id, why);
	/* what describe_exit says of an exit without a status */
	snprintf(r->d_detail, sizeof(r->d_detail), "could not start: %.70s", why);
	r->started_ms = clock_mono_ms();
	on_gone(r, -1, 0); /* may free r: not touched after it */
}

/* record, then act: no row, no process (a new replica that could not be
 * recorded is forgotten; one backing off waits). 0, or -1: do not start */
static int record_starting(struct replica *r)
{
	char was[16];
	strlcpy_g(was, r->row.state, sizeof(was));
	strlcpy_g(r->row.state, "starting", sizeof(r->row.state));
	r->row.pid = 0;
	if (replica_save(r) == 0)
		return 0;
	if (!r->recorded) {
		replica_remove(r);
	} else {
		strlcpy_g(r->row.state, was, sizeof(r->row.state));
		r->backoff_until = clock_mono_ms() + 1000;
	}
	return -1;
}

/* it runs (row.pid set): probes from now on */
void replica_running(struct replica *r)
{
	const struct svc_config *c = &r->rc->cfg;
	int64_t now = clock_mono_ms();
	r->d_oom = false;
	r->d_detail[0] = 0;
	r->ready_fails = r->live_fails = 0;
	r->next_rprobe = now + c->readiness.initial_delay_ms;
	r->next_lprobe = now + c->liveness.initial_delay_ms;
	replica_save(r);
}

int replica_spawn(struct replica *r)
{
	struct svc_config *c = &r->rc->cfg;
	struct spawn_opts o = { 0 };
	char **env = NULL;
	struct gerr err = { { 0 } };
	int ret = -1;

	if (!r->row.port)
		r->row.port = runtime_free_port();
	if (r->row.port <= 0) {
		log_error("replica", "replica=%s: no free port", r->row.id);
		r->row.port = 0;
		goto out;
	}
	if (replica_is_docker(r)) {
		r->row.container[0] = 0;
		if (secrets_replica_prepare(r, &err) < 0) {
			replica_spawn_failed(r, err.msg);
			goto out;
		}
		if (record_starting(r) == 0)
			ret = dockrt_spawn(r);
		goto out;
	}
	if (resolve_user(r, &err) < 0 ||
	    (!r->scratch && !(r->scratch = workload_scratch_make(r->row.id, &r->user, &err)))) {
		replica_spawn_failed(r, err.msg);
		goto out;
	}
	/* its secrets, decrypted now (never stored in plain text) */
	if (secrets_replica_prepare(r, &err) < 0) {
		replica_spawn_failed(r, err.msg);
		goto out;
	}
	env = replica_env(r, true);

	if (cgroup_create(r->cgroup, &c->resources, &err) < 0 && cgroup_mode() != CGROUP_NONE)
		log_warn("replica", "replica=%s: %s", r->row.id, err.msg);
	r->oom_base = cgroup_oom_kills(r->cgroup);

	/* recorded before it exists: a crash between here and the pid update is
	 * healed by runtime_scan_tagged at the next start (GANTRY_REPLICA tag) */
	if (record_starting(r) < 0)
		goto out;

	o.cmd = c->run;
	o.cwd = r->rc->dir;
	o.env = env;
	o.user = &r->user;
	o.log_path = r->log_path;
	o.cgroup = cgroup_mode() != CGROUP_NONE ? r->cgroup : NULL;
	if (runtime_spawn(gd->loop, &r->proc, &o, on_exit_cb, &r->row.pid, &r->row.start_time, &err) < 0) {
		replica_spawn_failed(r, err.msg);
		goto out;
	}
	r->proc.data = r; /* runtime_spawn initialises the handle */
	r->pgid = r->row.pid;
	r->proc_active = true;
	r->started_ms = clock_mono_ms();
	replica_running(r);
	log_info("replica", "replica=%s revision=%d pid=%d port=%d uid=%u started", r->row.id, r->row.revision,
		 (int)r->row.pid, r->row.port, (unsigned)r->user.uid);
	ret = 0;
out:
	workload_env_free(env);
	return ret;
}

/* an exec probe runs as the replica does: its user, its environment, its
 * cgroup, in its artifact; a container's runs inside the container, through
 * the Engine (dockrt.c). The run goes to *run, or to *drun for a container's
 * exec probe (the other is left NULL) */
static void start_probe(struct replica *r, const struct probe *p, probe_cb cb, struct probe_run **run,
			struct dockrt_probe **drun)
{
	struct probe_exec x = { .cwd = r->rc->dir };
	char **env = NULL, ip[64];
	struct gerr err = { { 0 } };
	int port;

	*run = NULL;
	*drun = NULL;
	if (p->kind == PROBE_EXEC && replica_is_docker(r)) {
		*drun = dockrt_probe_start(r, p, cb);
		return;
	}
	if (p->kind == PROBE_EXEC) {
		if (!r->have_user && resolve_user(r, &err) < 0) {
			log_warn("replica", "replica=%s: exec probe not run: %s", r->row.id, err.msg);
			return;
		}
		/* an adopted replica's secrets, for its exec probes */
		if (r->rc->cfg.nsecrets && !r->senv && secrets_replica_prepare(r, &err) < 0)
			log_warn("replica", "replica=%s: exec probe without its secrets: %s", r->row.id, err.msg);
		env = replica_env(r, false);
		x.env = env;
		x.user = &r->user;
		x.cgroup = cgroup_mode() != CGROUP_NONE ? r->cgroup : NULL;
	}
	replica_target(r, ip, &port);
	x.host = ip;
	*run = probe_start_exec(gd->loop, p, port, &x, cb, r);
	workload_env_free(env);
}

enum { PROBE_IGNORED, PROBE_PASSED, PROBE_FAILED, PROBE_FAILED_ENOUGH };

/*
 * A probe of r answered (*run, its slot in r, is cleared): PROBE_IGNORED once
 * r is leaving, backing off or being restarted; else *fails, the consecutive failures, is
 * reset or counted, and PROBE_FAILED_ENOUGH says it reached p's
 * failure_threshold (default 3).
 */
static int probe_answered(struct replica *r, struct probe_run **run, int *fails, const struct probe *p, bool ok)
{
	*run = NULL;
	if (replica_is_leaving(r) || !strcmp(r->row.state, "backoff") || r->restart_after_stop)
		return PROBE_IGNORED;
	if (ok) {
		*fails = 0;
		return PROBE_PASSED;
	}
	return ++*fails >= (p->failure_threshold > 0 ? p->failure_threshold : 3) ? PROBE_FAILED_ENOUGH : PROBE_FAILED;
}

static void on_ready_probe(void *data, bool ok, const char *detail)
{
	struct replica *r = data;
	r->drprobe = NULL; /* whichever ran is done */
	switch (probe_answered(r, &r->rprobe, &r->ready_fails, &r->rc->cfg.readiness, ok)) {
	case PROBE_PASSED:
		/* ready puts it in the routes: recorded first, so not while the
		 * store cannot write (the next probe after it can) */
		if (strcmp(r->row.state, "ready") && daemon_store_ok() && set_state(r, "ready") == 0)
			log_info("replica", "replica=%s ready after %lldms", r->row.id,
				 (long long)(clock_mono_ms() - r->started_ms));
		break;
	case PROBE_FAILED_ENOUGH:
		if (replica_is_ready(r)) {
			daemon_event(r->se, r->row.revision, "replica_unready", "replica %s not ready: %s",
				     r->row.id, detail);
			set_state(r, "unready");
		}
		break;
	}
}

static void on_live_probe(void *data, bool ok, const char *detail)
{
	struct replica *r = data;
	r->dlprobe = NULL; /* whichever ran is done */
	if (probe_answered(r, &r->lprobe, &r->live_fails, &r->rc->cfg.liveness, ok) == PROBE_FAILED_ENOUGH) {
		snprintf(r->row.last_exit, sizeof(r->row.last_exit), "liveness probe failed: %.90s", detail);
		daemon_event(r->se, r->row.revision, "replica_unhealthy",
			     "replica %s failed its liveness probe %d times (%s): restarting",
			     r->row.id, r->live_fails, detail);
		r->live_fails = 0;
		r->restart_after_stop = true;
		/* a readiness answer still on its way must not make it ready again */
		cancel_probes(r);
		if (replica_is_ready(r)) {
			strlcpy_g(r->row.state, "unready", sizeof(r->row.state));
			proxyctl_write_routes();
		}
		/* SIGTERM now, SIGKILL after stop_grace; on_gone restarts it */
		r->kill_at = clock_mono_ms() + r->rc->cfg.stop_grace_ms;
		replica_signal(r, SIGTERM);
	}
}

static const struct probe tcp_probe = {
	.kind = PROBE_TCP, .period_ms = 500, .timeout_ms = 1000, .failure_threshold = 3,
};

void replica_tick(struct replica *r, int64_t now)
{
	const struct svc_config *c = &r->rc->cfg;

	if (r->left)
		return;
	/* adopted processes (not our children) are polled; containers by dockrt_tick */
	if (r->row.pid && !r->proc_active && !replica_is_docker(r)) {
		if (!proc_alive(r->row.pid, r->row.start_time)) {
			on_gone(r, -1, 0);
			return;
		}
	}
	if (!strcmp(r->row.state, "backoff")) {
		/* a restart is started only if it can be recorded */
		if (now >= r->backoff_until && !gd->shutting_down && daemon_store_ok() &&
		    daemon_artifact_ok(r->se, r->rc))
			replica_spawn(r);
		return;
	}
	if (!strcmp(r->row.state, "draining")) {
		int inflight;
		char addr[64];
		replica_addr(r, addr, sizeof(addr));
		inflight = gd->proxy_gen_seen >= r->drain_gen ? proxyctl_inflight(addr) : -1;
		/* the previous binary's proxy may still send it requests it
		 * accepted before an upgrade: it is not drained until that one
		 * has finished (or drain_timeout) */
		if (gd->old_proxy_pid && inflight == 0)
			inflight = -1;
		/* the stop that ends a drain is recorded first: held while the store cannot write */
		if (!daemon_store_ok() && !gd->shutting_down)
			return;
		if (inflight == 0 || now >= r->drain_deadline || !r->row.pid) {
			if (inflight != 0)
				log_warn("replica", "replica=%s drain_timeout reached (inflight=%d)", r->row.id, inflight);
			else
				log_info("replica", "replica=%s drained in %lldms", r->row.id,
					 (long long)(now - (r->drain_deadline - r->rc->cfg.drain_timeout_ms)));
			replica_stop(r, NULL);
		}
		return;
	}
	if (!strcmp(r->row.state, "stopping") || r->restart_after_stop) {
		bool group = r->pgid > 1 && proc_session_alive(r->pgid);
		if ((r->row.pid || group) && r->kill_at && now >= r->kill_at) {
			log_warn("replica", "replica=%s did not stop within stop_grace: SIGKILL", r->row.id);
			r->kill_at = 0;
			if (replica_is_docker(r)) {
				/* the Engine may not have been reachable: again until its end is seen */
				dockrt_signal(r, SIGKILL);
				r->kill_at = now + 2000;
			} else {
				proc_kill_tree(r->pgid > 1 ? r->pgid : r->row.pid, r->cgroup, SIGKILL);
			}
		}
		if (!r->row.pid && !group) {
			r->pgid = 0;
			on_gone(r, -1, 0); /* the group is empty now: finish the stop */
		}
		return;
	}
	if (!r->row.pid)
		return;
	/* readiness: until ready, and while ready (to take it out of routing) */
	if (!r->rprobe && !r->drprobe && now >= r->next_rprobe) {
		const struct probe *p = c->readiness.kind != PROBE_NONE ? &c->readiness : &tcp_probe;
		r->next_rprobe = now + (p->period_ms > 0 ? p->period_ms : 1000);
		/* before the first success, probe faster so start-up is not slowed by the period */
		if (strcmp(r->row.state, "ready") && p->period_ms > 200)
			r->next_rprobe = now + 200;
		start_probe(r, p, on_ready_probe, &r->rprobe, &r->drprobe);
	}
	if (c->liveness.kind != PROBE_NONE && !r->lprobe && !r->dlprobe && now >= r->next_lprobe) {
		r->next_lprobe = now + (c->liveness.period_ms > 0 ? c->liveness.period_ms : 5000);
		start_probe(r, &c->liveness, on_live_probe, &r->lprobe, &r->dlprobe);
	}
}

void replica_drain(struct replica *r, const char *why)
{
	if (replica_is_leaving(r))
		return;
	cancel_probes(r);
	log_info("replica", "replica=%s draining: %s", r->row.id, why);
	if (!replica_is_ready(r) || !r->row.pid) {
		replica_stop(r, why);
		return;
	}
	if (set_state(r, "draining") < 0) /* rewrites routes: generation increases */
		return;
	r->drain_gen = gd->route_gen;
	r->drain_deadline = clock_mono_ms() + r->rc->cfg.drain_timeout_ms;
}

void replica_leave(struct replica *r)
{
	cancel_probes(r);
	r->left = true;
	log_info("replica", "replica=%s left as it is: another controller drives its cluster", r->row.id);
}

void replica_stop(struct replica *r, const char *why)
{
	cancel_probes(r);
	if (why)
		log_info("replica", "replica=%s stopping: %s", r->row.id, why);
	r->restart_after_stop = false;
	if (!r->row.pid) {
		replica_remove(r);
		proxyctl_write_routes();
		return;
	}
	if (!strcmp(r->row.state, "stopping"))
		return;
	if (set_state(r, "stopping") < 0)
		return;
	r->kill_at = clock_mono_ms() + (r->rc ? r->rc->cfg.stop_grace_ms : 10000);
	replica_signal(r, SIGTERM);
}

/* ---- adoption after a controller restart ---- */

struct scan_ctx {
	struct replica_row *rows;
	size_t n;
	pid_t *tagged_pid;  /* per row: a live tagged process found for it */
};

static void on_tagged(pid_t pid, const char *id, void *data)
{
	struct scan_ctx *s = data;
	for (size_t i = 0; i < s->n; i++) {
		if (!strcmp(s->rows[i].id, id)) {
			if (s->rows[i].pid == pid || !s->tagged_pid[i]) {
				s->tagged_pid[i] = pid;
				return;
			}
		}
	}
	/* not ours (or a duplicate): an orphan from a crash; stop it */
	log_warn("adopt", "killing orphan pid=%d replica=%s (not in the state store)", (int)pid, id);
	proc_kill_tree(pid, NULL, SIGKILL);
}

static bool keep_scratch(const char *name, void *data)
{
	(void)data;
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next)
			if (!strcmp(r->row.id, name) && !r->freeing)
				return true;
	return false;
}

void replica_adopt_all(void)
{
	struct scan_ctx s = { 0 };
	struct gerr err;
	bool *dalive;

	if (store_replica_list(gd->store, NULL, NULL, &s.rows, &s.n, &err) < 0) {
		log_error("store", "%s", err.msg);
		return;
	}
	s.tagged_pid = xcalloc(s.n + 1, sizeof(pid_t));
	dalive = xcalloc(s.n + 1, sizeof(bool));
	runtime_scan_tagged(gd->tag, on_tagged, &s);
	dockrt_adopt_scan(s.rows, s.n, dalive);
	for (size_t i = 0; i < s.n; i++) {
		struct replica_row *row = &s.rows[i];
		struct svcenv *se = daemon_svcenv(row->service, row->environment, true);
		struct revcfg *rc = daemon_revcfg(se, row->revision, &err);
		struct replica *r;
		bool docker = row->container[0] || (rc && rc->cfg.runtime == RUNTIME_DOCKER);
		bool alive = docker ? dalive[i] : row->pid && proc_alive(row->pid, row->start_time);

		if (!alive && !docker && s.tagged_pid[i]) {
			/* started just before a crash, pid never recorded */
			row->pid = s.tagged_pid[i];
			row->start_time = proc_start_time(row->pid);
			alive = row->start_time != 0;
		}
		if (!rc) {
			log_error("adopt", "replica=%s: %s; stopping it", row->id, err.msg);
			if (alive && !docker)
				proc_kill_tree(row->pid, NULL, SIGKILL); /* a container: the next poll removes it */
			store_replica_delete(gd->store, row->id, &err);
			continue;
		}
		r = xcalloc(1, sizeof(*r));
		r->row = *row;
		r->se = se;
		r->rc = rc;
		fill_paths(r);
		r->next = se->replicas;
		se->replicas = r;
		r->started_ms = clock_mono_ms();
		r->recorded = true;
		if (!docker) {
			/* its scratch directory, kept across the restart (it may be
			 * in use); made again if it is missing */
			struct gerr e2 = { { 0 } };
			if (resolve_user(r, &e2) == 0)
				r->scratch = workload_scratch_make(r->row.id, &r->user, &e2);
			if (!r->scratch)
				log_warn("adopt", "replica=%s: %s", r->row.id, e2.msg);
		}
		r->oom_base = docker ? 0 : cgroup_oom_kills(r->cgroup);
		r->pgid = alive && !docker ? r->row.pid : 0;
		/* a crashing replica keeps backing off across a controller restart */
		if (r->row.restarts > 0 && strcmp(r->row.state, "ready"))
			r->consecutive_crashes = r->row.restarts;
		if (alive) {
			log_info("adopt", "replica=%s pid=%d%s%.12s state=%s adopted", row->id, (int)row->pid,
				 docker ? " container=" : "", row->container, row->state);
			if (docker) {
				struct stat st;
				/* from the second after the last line we kept: a line of that
				 * same second written after it is lost, none is doubled */
				dockrt_follow_logs(r, stat(r->log_path, &st) == 0 ? (int64_t)st.st_mtime + 1 : 0);
			}
			if (!strcmp(r->row.state, "draining")) {
				r->drain_gen = gd->route_gen + 1;
				r->drain_deadline = clock_mono_ms() + rc->cfg.drain_timeout_ms;
			} else if (!strcmp(r->row.state, "stopping")) {
				r->kill_at = clock_mono_ms() + rc->cfg.stop_grace_ms;
				replica_signal(r, SIGTERM);
			} else if (!strcmp(r->row.state, "backoff")) {
				strlcpy_g(r->row.state, "starting", sizeof(r->row.state));
			}

			replica_save(r);
		} else if (replica_is_leaving(r)) {
			replica_remove(r);
		} else {
			/* gone while we were down (or after a reboot): start it again now */
			log_info("adopt", "replica=%s was not running: starting it again", row->id);
			r->row.pid = 0;
			strlcpy_g(r->row.state, "backoff", sizeof(r->row.state));
			r->backoff_until = 0;
			replica_save(r);
		}
	}
	free(s.tagged_pid);
	free(dalive);
	free(s.rows);
	{
		/* scratch directories of replicas that are gone, and of checks
		 * that ran when the controller died */
		int n = workload_scratch_sweep(keep_scratch, NULL);
		if (n > 0)
			log_info("adopt", "removed %d stale scratch directories", n);
	}
}

/* cgroups of ours that no replica owns (left by a crash or an EBUSY rmdir) */
static bool keep_cgroup(const char *name, void *data)
{
	(void)data;
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next)
			if (!strcmp(r->cgroup, name))
				return true;
	return false;
}

void replica_sweep_cgroups(void)
{
	int n = cgroup_sweep(keep_cgroup, NULL);
	if (n > 0)
		log_info("replica", "removed %d stale cgroups", n);
}
