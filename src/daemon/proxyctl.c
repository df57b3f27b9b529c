/*
 * proxyctl.c — the controller's side of the proxy: start or adopt the
 * `gantry proxy` process, write its routes file atomically and SIGHUP it,
 * and read its /status (route generation, in-flight requests per backend)
 * to know when a removed replica has drained.
 *
 * The proxy is its own process and outlives the controller: it keeps the
 * last table it loaded. A restarted controller adopts it by pid + start time.
 *
 * The controller holds the public listening sockets of the proxies it
 * starts (hold_listeners): one per proxy worker, SO_REUSEPORT, opened by
 * the proxy's own proxy_listeners_open, CLOEXEC here, and handed to each
 * proxy as fds 3.. (`--listen-fds N`). A proxy that dies takes only its
 * copies with it: new connections wait in the kernel's backlog for the next
 * proxy, which is started at once (docs/internals/controller.md).
 * One socket per worker rather than one shared by all: the kernel spreads
 * connections over the workers as the standalone proxy does (one shared
 * socket wakes every worker's epoll for each connection and lets whichever
 * is quickest take most of them).
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/metrics.h"
#include "daemon/proxypeers.h"
#include "daemon/swarmlease.h"
#include "daemon/maintenance.h"
#include "runtime/runtime.h"
#include "proxy/proxy.h"
#include "proxy/master.h"
#include "util/log.h"
#include "util/clock.h"
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>

/* one GET to the proxy's admin listener, in libuv's thread pool */
struct admin_get {
	uv_work_t req;
	char url[200];
	char auth[128]; /* "Authorization: Bearer TOKEN", or "" */
	char *body;
	size_t len;
	long code;
	void (*done)(long code, const char *body, void *data);
	void *data;
};

struct inflight_entry {
	char address[64];
	int inflight;
};
static struct inflight_entry *inflight;
static size_t ninflight;
static bool have_status;

static char *shell_quote(const char *s)
{
	size_t n = 3;
	char *out, *p;
	for (const char *q = s; *q; q++)
		n += *q == '\'' ? 4 : 1;
	out = p = xmalloc(n);
	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = *s;
		}
	}
	*p++ = '\'';
	*p = 0;
	return out;
}

static void save_proxy_meta(void)
{
	char buf[64];
	struct gerr err;
	snprintf(buf, sizeof(buf), "%d", (int)gd->proxy_pid);
	if (store_meta_set(gd->store, "proxy.pid", buf, &err) < 0)
		log_error("store", "%s", err.msg);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)gd->proxy_start);
	store_meta_set(gd->store, "proxy.start_time", buf, &err);
	store_meta_set(gd->store, "proxy.listen", gd->listen, &err);
	store_meta_set(gd->store, "proxy.admin", gd->admin, &err);
	store_meta_set(gd->store, "proxy.auth", gd->admin_token ? "token" : "none", &err);
}

#define ADMIN_TOKEN_FILE "proxy-admin.token"

/*
 * The proxy admin's bearer token: HOME/proxy-admin.token (mode 0600), made
 * once (32 random bytes in hex) and kept, so a restarted controller and the
 * proxy it adopts agree. The controller sends it with its own polls; other
 * readers of /status, /windows or /metrics (Prometheus) read the file.
 */
static int admin_token_load(struct gerr *err)
{
	char *path = xasprintf("%s/" ADMIN_TOKEN_FILE, gd->home), buf[130];
	uint8_t raw[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), ret = -1;

	if (fd < 0 && errno == ENOENT) {
		if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
			gerr_set(err, "getrandom: %s", strerror(errno));
			goto out;
		}
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(buf + 2 * i, 3, "%02x", raw[i]);
		buf[64] = '\n';
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 || write(fd, buf, 65) != 65 || fsync(fd) < 0) {
			gerr_set(err, "%s: %s", path, strerror(errno));
			goto out;
		}
		close(fd);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0 || fchmod(fd, 0600) < 0) {
		gerr_set(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		gerr_set(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	if (n < 16 || n > 100 || strcspn(buf, " \t\r\n") != (size_t)n) {
		gerr_set(err, "%s: not a token (16 to 100 printable characters); remove it to make a new one", path);
		goto out;
	}
	gd->admin_token = xstrdup(buf);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(raw, sizeof(raw));
	free(path);
	return ret;
}

static void on_proxy_closed(uv_handle_t *h)
{
	free(h);
}

/*
 * Opens the listening sockets the proxies share (once; kept for the
 * controller's life): one per worker on --listen, and the admin listener.
 * A controller that took over from another (`gantry upgrade`) has them
 * already. 0, or -1 when the address cannot be bound (someone else listens
 * there, or an adopted proxy's sockets are still there): the proxy is then
 * started with --listen and binds (and says why it cannot).
 */
static int hold_listeners(void)
{
	struct proxy_config pc;
	struct gerr err;

	if (gd->proxy_nlfds > 0)
		return 0;
	if ((gd->proxy_nlfds = daemon_takeover_proxy_fds(gd->proxy_lfds, (int)ARRAY_SIZE(gd->proxy_lfds))) > 0) {
		gd->proxy_admin_fd = daemon_takeover_fd("admin");
		log_info("proxy", "holding %d listening sockets on %s handed over by the previous controller",
			 gd->proxy_nlfds, gd->listen);
		return 0;
	}
	proxy_config_defaults(&pc);
	if (proxy_listeners_open(gd->listen, pc.workers, gd->proxy_lfds, &err) < 0) {
		log_warn("proxy", "cannot hold the listeners: %s (the proxy binds them itself)", err.msg);
		return -1;
	}
	gd->proxy_nlfds = pc.workers;
	/* the admin listener too, so that a replacement proxy never races the
	 * one it replaces for the port (gantry upgrade) */
	if (proxy_listeners_open(gd->admin, 1, &gd->proxy_admin_fd, &err) < 0) {
		log_warn("proxy", "cannot hold the admin listener: %s (the proxy binds it itself)", err.msg);
		gd->proxy_admin_fd = -1;
	}
	log_info("proxy", "holding %d listening sockets on %s for the proxy processes", pc.workers, gd->listen);
	return 0;
}

/*
 * A proxy adopted after a controller restart holds the listeners it was
 * handed (fds 3.. and --admin-fd, by its command line): take copies with
 * pidfd_getfd(2), so that when it dies, connections wait for the next one
 * as before the restart. 0, or -1 with err (the kernel refused: no
 * ptrace access to it).
 */
static int take_from_adopted(pid_t pid, struct gerr *err)
{
	char path[64], buf[4096];
	int fd, pidfd, n = 0, admin = -1, got[65], ngot = 0;
	ssize_t k;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return gerr_set(err, "%s: %s", path, strerror(errno));
	k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (k <= 0)
		return gerr_set(err, "%s: empty", path);
	len = (size_t)k;
	buf[len] = 0;
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
		const char *next = i + strlen(buf + i) + 1 < len ? buf + i + strlen(buf + i) + 1 : "";
		if (!strcmp(buf + i, "--listen-fds"))
			n = atoi(next);
		else if (!strcmp(buf + i, "--admin-fd"))
			admin = atoi(next);
	}
	if (n <= 0 || n > 64)
		return gerr_set(err, "it binds its own listeners (no --listen-fds)");
	if ((pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0)
		return gerr_set(err, "pidfd_open: %s", strerror(errno));
	for (int i = 0; i < n + (admin >= 3); i++) {
		int target = i < n ? 3 + i : admin, v = 0;
		socklen_t vl = sizeof(v);
		int mine = (int)syscall(SYS_pidfd_getfd, pidfd, target, 0);
		if (mine < 0 || getsockopt(mine, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || !v) {
			gerr_set(err, "pidfd_getfd %d: %s", target, mine < 0 ? strerror(errno) : "not a listening socket");
			if (mine >= 0)
				close(mine);
			for (int j = 0; j < ngot; j++)
				close(got[j]);
			close(pidfd);
			return -1;
		}
		got[ngot++] = mine; /* CLOEXEC, as pidfd_getfd makes them */
	}
	close(pidfd);
	for (int i = 0; i < n; i++)
		gd->proxy_lfds[i] = got[i];
	gd->proxy_nlfds = n;
	gd->proxy_admin_fd = admin >= 3 ? got[n] : -1;
	return 0;
}

static void release_listeners(void)
{
	for (int i = 0; i < gd->proxy_nlfds; i++)
		close(gd->proxy_lfds[i]);
	gd->proxy_nlfds = 0;
	if (gd->proxy_admin_fd >= 0)
		close(gd->proxy_admin_fd);
	gd->proxy_admin_fd = -1;
}

static int spawn_proxy(void);
static void admin_get_work(uv_work_t *req);

static void on_proxy_exit(uv_process_t *p, int64_t status, int sig)
{
	int64_t now = clock_mono_ms(), lived = now - gd->proxy_spawned_ms;

	uv_close((uv_handle_t *)p, on_proxy_closed);
	if (p->pid != gd->proxy_pid) {
		/* a proxy this one replaced (an upgrade that failed late) */
		log_info("proxy", "previous proxy pid=%d exited (status=%lld signal=%d)", (int)p->pid,
			 (long long)status, sig);
		if (p->pid == gd->old_proxy_pid)
			gd->old_proxy_pid = 0;
		return;
	}
	gd->proxy_proc_active = false;
	gd->proxy_pid = 0;
	gd->proxy_start = 0;
	if (gd->shutting_down || gd->upgrading) {
		/* upgrading: the new controller replaced it (or, if the upgrade
		 * fails, proxyctl_resume starts one) */
		log_info("proxy", "proxy exited (status=%lld signal=%d)", (long long)status, sig);
		return;
	}
	/* for `gantry status` (op_status): how many, and how the last one ended */
	gd->proxy_restarts++;
	if (sig)
		snprintf(gd->proxy_last_exit, sizeof(gd->proxy_last_exit), "killed by signal %d (%s)", sig,
			 strsignal(sig));
	else
		snprintf(gd->proxy_last_exit, sizeof(gd->proxy_last_exit), "exit status %lld", (long long)status);
	gd->proxy_last_lived_ms = lived;
	/* a proxy that ran for a while is replaced at once; one that died
	 * within a second of its start is a crash loop: 1 s, doubling to 8 s
	 * (the standalone master's rule, proxy/master.h) */
	gd->proxy_backoff_ms = proxy_restart_delay(gd->proxy_backoff_ms, lived);
	if (!gd->proxy_backoff_ms) {
		log_warn("proxy", "proxy exited (status=%lld signal=%d) after %lldms: restarting it now (restart %d)%s",
			 (long long)status, sig, (long long)lived, gd->proxy_restarts,
			 gd->proxy_nlfds ? " (connections wait in the listen backlog)" : "");
	} else {
		log_warn("proxy", "proxy exited (status=%lld signal=%d) %lldms after its start: crash loop, "
			 "restarting it in %lldms (restart %d)", (long long)status, sig, (long long)lived,
			 (long long)gd->proxy_backoff_ms, gd->proxy_restarts);
	}
	gd->proxy_respawn_at = now + gd->proxy_backoff_ms;
	if (!gd->proxy_backoff_ms)
		daemon_kick(); /* not at the next tick: now */
}

static int spawn_proxy(void)
{
	char exe[PATH_MAX];
	struct spawn_opts o = { 0 };
	struct gerr err;
	char *routes, *log_path, *cmd, *q_exe, *q_routes, *q_listen, *q_admin;
	char *env[2] = { NULL, NULL };
	char *fdflags;
	int pass[SPAWN_MAX_PASS_FDS];
	uv_process_t *proc;
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int ret;

	if (k <= 0) {
		log_error("proxy", "cannot find our own executable: %s", strerror(errno));
		return -1;
	}
	exe[k] = 0;
	routes = xasprintf("%s/routes.json", gd->home);
	log_path = xasprintf("%s/logs/proxy.log", gd->home);
	q_exe = shell_quote(exe);
	q_routes = shell_quote(routes);
	q_listen = shell_quote(gd->listen);
	q_admin = shell_quote(gd->admin);
	if (gd->admin_token) {
		char *tf = xasprintf("%s/" ADMIN_TOKEN_FILE, gd->home), *q_tf = shell_quote(tf);
		cmd = xasprintf("exec %s proxy --listen %s --admin %s --routes %s --admin-token-file %s", q_exe,
				q_listen, q_admin, q_routes, q_tf);
		free(q_tf);
		free(tf);
	} else {
		cmd = xasprintf("exec %s proxy --listen %s --admin %s --routes %s", q_exe, q_listen, q_admin, q_routes);
	}
	{
		/* its counters go on from the last /windows we read (metrics.c), if any */
		char *carry = xasprintf("%s/proxy-counters.json", gd->home), *q_carry, *with;
		int c = metrics_carry_save(carry, &err);
		if (c < 0)
			log_warn("proxy", "cannot carry the counters over: %s (the new proxy's start from 0)", err.msg);
		if (c > 0) {
			q_carry = shell_quote(carry);
			with = xasprintf("%s --counters-from %s", cmd, q_carry);
			free(q_carry);
			free(cmd);
			cmd = with;
		}
		free(carry);
	}
	if (hold_listeners() == 0) {
		/* the sockets we hold, as fds 3.. (one per worker), then the admin listener */
		memcpy(pass, gd->proxy_lfds, (size_t)gd->proxy_nlfds * sizeof(int));
		o.npass_fds = gd->proxy_nlfds;
		if (gd->proxy_admin_fd >= 0) {
			pass[o.npass_fds++] = gd->proxy_admin_fd;
			fdflags = xasprintf("%s --workers %d --listen-fds %d --admin-fd %d", cmd, gd->proxy_nlfds,
					    gd->proxy_nlfds, 3 + gd->proxy_nlfds);
		} else {
			fdflags = xasprintf("%s --workers %d --listen-fds %d", cmd, gd->proxy_nlfds, gd->proxy_nlfds);
		}
		free(cmd);
		cmd = fdflags;
		o.pass_fds = pass;
	}
	env[0] = xasprintf("GANTRY_PROXY_OF=%s", gd->home);
	o.cmd = cmd;
	o.cwd = gd->home;
	o.env = env;
	o.inherit_env = true; /* the proxy is the controller's own, not a workload */
	o.log_path = log_path;
	proc = xcalloc(1, sizeof(*proc));
	ret = runtime_spawn(gd->loop, proc, &o, on_proxy_exit, &gd->proxy_pid, &gd->proxy_start, &err);
	if (ret < 0) {
		free(proc);
		log_error("proxy", "cannot start the proxy: %s", err.msg);
	} else {
		gd->proxy_proc_active = true;
		gd->proxy_confirmed = false;
		gd->proxy_spawned_ms = clock_mono_ms();
		log_info("proxy", "proxy started pid=%d listen=%s admin=%s", (int)gd->proxy_pid, gd->listen, gd->admin);
		save_proxy_meta();
	}
	free(env[0]);
	free(cmd);
	free(q_exe);
	free(q_routes);
	free(q_listen);
	free(q_admin);
	free(routes);
	free(log_path);
	return ret;
}

/*
 * Builds the routes table (version 2, docs/internals/proxy.md) from every
 * ready replica: per service environment, its hosts and its revisions with
 * their weights (the traffic override, or by ready replicas), their tags
 * (stable, canary, a blue-green preview tag) and a canary's header rules and
 * shield. Tag hosts (TAG---HOST) are off but for the blue-green preview,
 * unless the revision's spec says tag_hosts: true; then revision N is also
 * tagged rN, so rN---SVC.ENV.localhost (or X-Gantry-Tag: rN) reaches it.
 * Without it there is no rN tag at all: an old revision still running is
 * reachable by no name. Caller frees.
 */
static json_t *build_route(struct svcenv *se);

/*
 * host -> "SERVICE@ENVIRONMENT" of the routes last built: who keeps a host
 * when two service environments claim it (owned here).
 */
static json_t *host_owner;

static uint64_t fnv1a(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

/* whether se held one of route's hosts in the table built last */
static bool held_before(const struct svcenv *se, const json_t *route, const char *key)
{
	const json_t *h;
	size_t i;
	json_array_foreach(json_object_get(route, "hosts"), i, h) {
		const char *o = json_string_value(json_object_get(host_owner, json_string_value(h)));
		if (o && !strcmp(o, key))
			return true;
	}
	return false;
}

/*
 * Every service environment's route, but never two claiming one host (the
 * proxy would drop the later; a spec cannot say that since spec_hosts_check,
 * but revisions made before it can, and a host moved from one service to
 * another in a new spec is still the old revision's until it is redeployed).
 * The service environment that had the host in the last table keeps it
 * (then the controller's order): a deploy of one service never takes a host
 * from another that is serving it. The other is left out, with one event.
 */
static json_t *build_routes(void)
{
	json_t *routes = json_array(), *placed = json_object();
	size_t n = 0, k = 0;
	struct svcenv *se;
	struct cand { struct svcenv *se; json_t *route; char key[140]; } *c;

	for (se = gd->svcenvs; se; se = se->next)
		n++;
	c = xcalloc(n + 1, sizeof(*c));
	for (se = gd->svcenvs; se; se = se->next) {
		json_t *r = build_route(se);
		if (!r) {
			se->route_clash = 0;
			continue;
		}
		c[k].se = se;
		c[k].route = r;
		snprintf(c[k].key, sizeof(c[k].key), "%s@%s", se->row.service, se->row.environment);
		k++;
	}
	/* pass 0: those that held a host before; pass 1: the rest */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < k; i++) {
			const json_t *h, *hosts;
			const char *clash = NULL, *owner = NULL;
			size_t j;
			if (!c[i].route || held_before(c[i].se, c[i].route, c[i].key) != (pass == 0))
				continue;
			hosts = json_object_get(c[i].route, "hosts");
			json_array_foreach(hosts, j, h)
				if ((owner = json_string_value(json_object_get(placed, json_string_value(h))))) {
					clash = json_string_value(h);
					break;
				}
			if (clash) {
				uint64_t sig = fnv1a(owner, fnv1a(clash, 0xcbf29ce484222325ULL));
				if (c[i].se->route_clash != sig) {
					c[i].se->route_clash = sig;
					daemon_event(c[i].se, c[i].se->row.target_revision ? c[i].se->row.target_revision
											: c[i].se->row.stable_revision,
						     "route_skipped",
						     "not routed: host '%s' is routed to %s, which had it first "
						     "(revisions made before hosts were checked, or a host moved to another service); "
						     "deploy a spec that gives each host to one service",
						     clash, owner);
				}
				json_decref(c[i].route);
				c[i].route = NULL;
				continue;
			}
			c[i].se->route_clash = 0;
			json_array_foreach(hosts, j, h)
				json_object_set_new(placed, json_string_value(h), json_string(c[i].key));
			/* the controller's order in the file, whichever pass placed it */
		}
	for (size_t i = 0; i < k; i++)
		if (c[i].route)
			json_array_append_new(routes, c[i].route);
	json_decref(host_owner);
	host_owner = placed;
	free(c);
	return routes;
}

/* the route of one service environment (new reference), or NULL when it has no revision */
static json_t *build_route(struct svcenv *se)
{
	struct gerr err;
	struct revcfg *rc;
	json_t *route, *hosts, *revisions;
	int rev = se->row.target_revision ? se->row.target_revision : se->row.stable_revision;
	int canary = progressive_canary_revision(se);
	const char *preview = progressive_preview_tag(se);
	int seen[64], nseen = 0;
	bool tag_hosts;
	if (!rev)
		return NULL;
	rc = daemon_revcfg(se, rev, &err);
	tag_hosts = rc && rc->cfg.tag_hosts;
	route = json_object();
	hosts = json_array();
	revisions = json_array();
	if (rc) {
		for (size_t i = 0; i < rc->cfg.nhosts; i++)
			json_array_append_new(hosts, json_string(rc->cfg.hosts[i]));
	}
	if (!json_array_size(hosts)) {
		char *h = xasprintf("%s.%s.localhost", se->row.service, se->row.environment);
		json_array_append_new(hosts, json_string(h));
		free(h);
	}
	for (struct replica *r = se->replicas; r; r = r->next) {
		json_t *jr, *backends, *tags;
		int n = 0, weight, k;
		char revs[16], tag[24];
		if (!replica_is_ready(r))
			continue;
		for (k = 0; k < nseen && seen[k] != r->row.revision; k++)
			;
		if (k < nseen || nseen == (int)ARRAY_SIZE(seen))
			continue;
		seen[nseen++] = r->row.revision;
		backends = json_array();
		for (struct replica *q = se->replicas; q; q = q->next) {
			char addr[64];
			if (!replica_is_ready(q) || q->row.revision != r->row.revision)
				continue;
			replica_addr(q, addr, sizeof(addr));
			json_array_append_new(backends, json_pack("{s:s}", "address", addr));
			n++;
		}
		weight = daemon_traffic_weight(se, r->row.revision);
		if (weight < 0)
			weight = n; /* no split: every ready replica takes an equal share */
		tags = json_array();
		if (tag_hosts) {
			snprintf(tag, sizeof(tag), "r%d", r->row.revision);
			json_array_append_new(tags, json_string(tag));
		}
		if (r->row.revision == se->row.stable_revision)
			json_array_append_new(tags, json_string("stable"));
		if (r->row.revision == canary) {
			json_array_append_new(tags, json_string("canary"));
			if (preview)
				json_array_append_new(tags, json_string(preview));
		}
		snprintf(revs, sizeof(revs), "%d", r->row.revision);
		jr = json_pack("{s:s, s:i, s:o, s:o}", "revision", revs, "weight", MIN(weight, 100), "tags", tags,
			       "backends", backends);
		json_array_append_new(revisions, jr);
	}
	json_object_set_new(route, "hosts", hosts);
	json_object_set_new(route, "service", json_string(se->row.service));
	json_object_set_new(route, "environment", json_string(se->row.environment));
	json_object_set_new(route, "revisions", revisions);
	if (rc && rc->cfg.sticky.cookie)
		json_object_set_new(route, "sticky", json_pack("{s:s, s:I}", "cookie", rc->cfg.sticky.cookie, "max_age_s",
							       (json_int_t)(rc->cfg.sticky.max_age_ms / 1000)));
	if (tag_hosts)
		json_object_set_new(route, "tag_hosts", json_true());
	else if (preview)
		json_object_set_new(route, "tag_hosts", json_pack("[s]", preview));
	progressive_route(se, route, NULL, NULL);
	{
		/* maintenance.c: the proxy answers 503 unless a bypass header allows the request */
		json_t *maint = daemon_maintenance_route(gd, se->row.service, se->row.environment);
		if (maint)
			json_object_set_new(route, "maintenance", maint);
	}
	return route;
}

static int write_file_atomic(const char *path, const char *data, struct gerr *err)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(data), off = 0;
	int ret = -1;
	if (fd < 0) {
		gerr_set(err, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			gerr_set(err, "%s: %s", tmp, strerror(errno));
			close(fd);
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		gerr_set(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(tmp);
	return ret;
}

void proxyctl_write_routes(void)
{
	json_t *routes = build_routes(), *doc;
	char *table = json_dumps(routes, JSON_COMPACT | JSON_SORT_KEYS), *text, *path, buf[32];
	struct gerr err;

	if (gd->routes_json && !strcmp(gd->routes_json, table) && !gd->routes_dirty) {
		free(table);
		json_decref(routes);
		return;
	}
	/* a write that failed (a full disk) is retried with backoff, not at
	 * every tick and kick: 100 ms doubling to 5 s */
	if (gd->routes_retry_at && clock_mono_ms() < gd->routes_retry_at) {
		gd->routes_dirty = true;
		free(table);
		json_decref(routes);
		return;
	}
	gd->route_gen++;
	doc = json_pack("{s:I, s:o}", "generation", (json_int_t)gd->route_gen, "routes", routes);
	if (gd->forward_headers) /* in the file, not a flag: an adopted proxy gets it on SIGHUP */
		json_object_set_new(doc, "forward_headers", json_string(gd->forward_headers));
	if (gd->trusted_proxies)
		json_object_set_new(doc, "trusted_proxies", json_string(gd->trusted_proxies));
	text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(doc);
	path = xasprintf("%s/routes.json", gd->home);
	if (write_file_atomic(path, text, &err) < 0) {
		gd->routes_backoff_ms = gd->routes_backoff_ms ? MIN(gd->routes_backoff_ms * 2, 5000) : 100;
		gd->routes_retry_at = clock_mono_ms() + gd->routes_backoff_ms;
		log_error("proxy", "cannot write routes: %s (retrying in %lldms)", err.msg,
			  (long long)gd->routes_backoff_ms);
		gd->routes_dirty = true;
		gd->route_gen--; /* not written: the next try is the same generation */
		free(table);
	} else {
		if (gd->routes_backoff_ms)
			log_info("proxy", "routes written again (generation %llu)", (unsigned long long)gd->route_gen);
		gd->routes_backoff_ms = 0;
		gd->routes_retry_at = 0;
		free(gd->routes_json);
		gd->routes_json = table;
		gd->routes_dirty = false;
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)gd->route_gen);
		store_meta_set(gd->store, "route_generation", buf, &err);
		/* the remote proxies get the same table, pushed (proxypeers.c):
		 * kept even without peers yet, node proxies may join later; a
		 * standby (another controller holds a lease) pushes nothing */
		if (swarmlease_all_held())
			proxypeers_table(text, gd->route_gen);
		/* a proxy that has not answered yet reads the file when it starts;
		 * SIGHUP before it installed its handler would kill it */
		if (gd->proxy_pid && gd->proxy_confirmed) {
			kill(gd->proxy_pid, SIGHUP);
			gd->last_hup_ms = clock_mono_ms();
		}
		log_debug("proxy", "routes generation=%llu", (unsigned long long)gd->route_gen);
	}
	free(path);
	free(text);
}

/*
 * Upgrade: the old proxy's /windows, read once before it is told to stop
 * (blocking, 1 s at most: the loop does not run yet), so that the new
 * proxy's counters go on from it (--counters-from) and this controller's
 * windows start with a snapshot. Requests the old proxy finishes while it
 * drains are counted nowhere (docs/internals/controller.md).
 */
static void read_windows_now(void)
{
	struct admin_get w = { 0 };
	snprintf(w.url, sizeof(w.url), "http://%s/windows", gd->admin);
	if (gd->admin_token)
		snprintf(w.auth, sizeof(w.auth), "Authorization: Bearer %s", gd->admin_token);
	w.req.data = &w;
	admin_get_work(&w.req);
	if (w.code == 200 && w.body && metrics__ingest(w.body, clock_mono_ms()) >= 0)
		log_info("proxy", "read the previous proxy's counters: the new one goes on from them");
	else
		log_warn("proxy", "cannot read the previous proxy's /windows (HTTP %ld): the new one's counters start "
			 "from 0", w.code);
	free(w.body);
	explicit_bzero(w.auth, sizeof(w.auth));
}

int proxyctl_start(void)
{
	char buf[64];
	struct gerr err;
	pid_t pid = 0;
	uint64_t st = 0;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!gd->admin_token && admin_token_load(&err) < 0)
		log_error("proxy", "admin token: %s (the proxy's admin listener runs without one)", err.msg);
	gd->routes_dirty = true;
	proxyctl_write_routes(); /* the table as the adopted replicas say, before the proxy reads it */
	if (store_meta_get(gd->store, "proxy.pid", buf, sizeof(buf), &err) == 1)
		pid = (pid_t)atoi(buf);
	if (store_meta_get(gd->store, "proxy.start_time", buf, sizeof(buf), &err) == 1)
		st = strtoull(buf, NULL, 10);
	if (pid > 0 && proc_alive(pid, st) && gd->takeover && hold_listeners() == 0) {
		/* gantry upgrade: the old binary's proxy finishes what it has
		 * (SIGTERM: it closes its copies of the listeners and the admin
		 * listener first); ours takes the same sockets now */
		gd->old_proxy_pid = pid;
		gd->old_proxy_start = st;
		read_windows_now();
		kill(pid, SIGTERM);
		log_info("proxy", "replacing the previous binary's proxy pid=%d: it drains, the new one takes its sockets",
			 (int)pid);
		return spawn_proxy();
	}
	if (pid > 0 && proc_alive(pid, st)) {
		char old_listen[128] = "", old_admin[128] = "", old_auth[16] = "none";
		store_meta_get(gd->store, "proxy.listen", old_listen, sizeof(old_listen), &err);
		store_meta_get(gd->store, "proxy.admin", old_admin, sizeof(old_admin), &err);
		store_meta_get(gd->store, "proxy.auth", old_auth, sizeof(old_auth), &err);
		/* a proxy started before its admin had a token is replaced once */
		if (!strcmp(old_listen, gd->listen) && !strcmp(old_admin, gd->admin) &&
		    !strcmp(old_auth, gd->admin_token ? "token" : "none")) {
			gd->proxy_pid = pid;
			gd->proxy_start = st;
			gd->proxy_confirmed = true;
			kill(pid, SIGHUP);
			gd->last_hup_ms = clock_mono_ms();
			if (take_from_adopted(pid, &err) == 0)
				log_info("proxy", "adopted running proxy pid=%d; holding copies of its %d listening sockets",
					 (int)pid, gd->proxy_nlfds);
			else
				log_warn("proxy", "adopted running proxy pid=%d; cannot hold its listeners (%s): if it "
					 "dies, connections are refused until the next one starts", (int)pid, err.msg);
			return 0;
		}
		log_info("proxy", "running proxy pid=%d listens on %s/%s, not %s/%s: replacing it",
			 (int)pid, old_listen, old_admin, gd->listen, gd->admin);
		kill(pid, SIGTERM);
		for (int i = 0; i < 100 && proc_alive(pid, st); i++)
			usleep(50000);
	}
	return spawn_proxy();
}

int proxyctl_hold(struct gerr *err)
{
	if (gd->proxy_nlfds > 0)
		return 0;
	if (gd->proxy_pid && !gd->proxy_proc_active && take_from_adopted(gd->proxy_pid, err) == 0)
		return 0;
	return gerr_set(err, "this controller does not hold the proxy's listeners (%s); without them the new "
			"proxy could not take over without refusing connections: restart gantry serve, then upgrade",
			gd->proxy_pid ? "the proxy it adopted binds its own" : "no proxy runs");
}

void proxyctl_resume(void)
{
	char buf[64];
	struct gerr err;
	pid_t pid = 0;
	uint64_t st = 0;

	if (store_meta_get(gd->store, "proxy.pid", buf, sizeof(buf), &err) == 1)
		pid = (pid_t)atoi(buf);
	if (store_meta_get(gd->store, "proxy.start_time", buf, sizeof(buf), &err) == 1)
		st = strtoull(buf, NULL, 10);
	if (pid > 0 && pid != gd->proxy_pid && proc_alive(pid, st)) {
		/* the failed controller got as far as starting its proxy: keep
		 * it (ours drains); it is not our child, so it is polled */
		if (gd->proxy_pid && proc_alive(gd->proxy_pid, gd->proxy_start)) {
			gd->old_proxy_pid = gd->proxy_pid;
			gd->old_proxy_start = gd->proxy_start;
		}
		gd->proxy_pid = pid;
		gd->proxy_start = st;
		gd->proxy_proc_active = false;
		gd->proxy_confirmed = false;
		log_info("proxy", "adopted proxy pid=%d, started by the controller that failed to take over", (int)pid);
	} else if (gd->proxy_pid && !proc_alive(gd->proxy_pid, gd->proxy_start)) {
		gd->proxy_pid = 0;
	}
	if (!gd->proxy_pid)
		gd->proxy_respawn_at = 0; /* at the next tick */
	gd->routes_dirty = true;
}

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
	struct admin_get *w = data;
	size_t len = size * n;
	if (w->len + len > 16 * 1024 * 1024)
		return 0;
	w->body = xrealloc(w->body, w->len + len + 1);
	memcpy(w->body + w->len, p, len);
	w->len += len;
	w->body[w->len] = 0;
	return len;
}

static void admin_get_work(uv_work_t *req)
{
	struct admin_get *w = req->data;
	struct curl_slist *hdrs = NULL;
	CURL *c = curl_easy_init();
	if (!c)
		return;
	curl_easy_setopt(c, CURLOPT_URL, w->url);
	if (w->auth[0]) {
		hdrs = curl_slist_append(NULL, w->auth);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	}
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &w->code);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
}

static void admin_get_done(uv_work_t *req, int status)
{
	struct admin_get *w = req->data;
	(void)status;
	w->done(w->code, w->body, w->data);
	free(w->body);
	explicit_bzero(w->auth, sizeof(w->auth));
	free(w);
}

int proxyctl_admin_get(const char *path, void (*done)(long code, const char *body, void *data), void *data)
{
	struct admin_get *w = xcalloc(1, sizeof(*w));
	snprintf(w->url, sizeof(w->url), "http://%s%s", gd->admin, path);
	if (gd->admin_token)
		snprintf(w->auth, sizeof(w->auth), "Authorization: Bearer %s", gd->admin_token);
	w->done = done;
	w->data = data;
	w->req.data = w;
	if (uv_queue_work(gd->loop, &w->req, admin_get_work, admin_get_done) < 0) {
		free(w);
		return -1;
	}
	return 0;
}

static void status_done(long code, const char *body, void *data)
{
	json_t *j, *backends, *b;
	size_t i;
	(void)data;
	gd->status_busy = false;
	if (code == 200 && body && (j = json_loads(body, 0, NULL))) {
		json_t *g = json_object_get(j, "generation");
		if (json_is_integer(g))
			gd->proxy_gen_seen = (uint64_t)json_integer_value(g);
		backends = json_object_get(j, "backends");
		free(inflight);
		inflight = NULL;
		ninflight = 0;
		if (json_is_array(backends)) {
			inflight = xcalloc(json_array_size(backends) + 1, sizeof(*inflight));
			json_array_foreach(backends, i, b) {
				const char *a = json_string_value(json_object_get(b, "address"));
				json_t *in = json_object_get(b, "inflight");
				if (!a)
					continue;
				strlcpy_g(inflight[ninflight].address, a, sizeof(inflight[ninflight].address));
				inflight[ninflight].inflight = json_is_integer(in) ? (int)json_integer_value(in) : 0;
				ninflight++;
			}
		}
		have_status = true;
		if (!gd->proxy_confirmed && gd->proxy_gen_seen < gd->route_gen && gd->proxy_pid) {
			/* it read an older file at start: tell it about the newer one now */
			kill(gd->proxy_pid, SIGHUP);
			gd->last_hup_ms = clock_mono_ms();
		}
		gd->proxy_confirmed = true;
		json_decref(j);
		daemon_kick();
	}

}

bool proxyctl_caught_up(void)
{
	return gd->proxy_pid && gd->proxy_confirmed && gd->proxy_gen_seen >= gd->route_gen;
}

int proxyctl_inflight(const char *address)
{
	int total = 0;
	if (!have_status)
		return -1;
	for (size_t i = 0; i < ninflight; i++)
		if (!strcmp(inflight[i].address, address))
			total += inflight[i].inflight;
	return total;
}

void proxyctl_tick(int64_t now)
{
	bool draining = false;
	/* the peers serve every environment: driven only with every lease held */
	if (swarmlease_all_held())
		proxypeers_tick(now);
	if (gd->old_proxy_pid && !proc_alive(gd->old_proxy_pid, gd->old_proxy_start)) {
		log_info("proxy", "the previous proxy pid=%d finished its requests and exited", (int)gd->old_proxy_pid);
		gd->old_proxy_pid = 0;
	}
	if (gd->proxy_pid && !gd->proxy_proc_active && !proc_alive(gd->proxy_pid, gd->proxy_start)) {
		gd->proxy_restarts++;
		snprintf(gd->proxy_last_exit, sizeof(gd->proxy_last_exit), "gone (adopted: exit status unknown)");
		log_warn("proxy", "adopted proxy pid=%d is gone: restarting it now (restart %d)", (int)gd->proxy_pid,
			 gd->proxy_restarts);
		gd->proxy_pid = 0;
		gd->proxy_respawn_at = now;
	}
	if (!gd->proxy_pid && !gd->shutting_down && now >= gd->proxy_respawn_at) {
		/* the file the new proxy reads at its start is the current table */
		if (gd->routes_dirty)
			proxyctl_write_routes();
		gd->proxy_respawn_at = now + 1000; /* if the spawn itself fails */
		if (spawn_proxy() == 0)
			gd->routes_dirty = true;
	}
	if (gd->routes_dirty)
		proxyctl_write_routes();
	/* self-healing: a proxy behind our table (a lost SIGHUP) is told again */
	if (gd->proxy_pid && gd->proxy_confirmed && have_status && gd->proxy_gen_seen < gd->route_gen &&
	    now - gd->last_hup_ms > 500) {
		kill(gd->proxy_pid, SIGHUP);
		gd->last_hup_ms = now;
	}
	for (struct svcenv *se = gd->svcenvs; se && !draining; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next)
			draining |= !strcmp(r->row.state, "draining");
	/* poll fast while something waits on the proxy: a drain, a table it has
	 * not confirmed yet, or a proxy that has not answered since it started */
	if (gd->status_busy || !gd->proxy_pid ||
	    (!draining && gd->proxy_confirmed && gd->proxy_gen_seen >= gd->route_gen &&
	     now - gd->last_status_ms < 1000))
		return;
	gd->last_status_ms = now;
	gd->status_busy = proxyctl_admin_get("/status", status_done, NULL) == 0;
}

void proxyctl_stop(void)
{
	/* the proxy drains what it accepted; new connections are refused, not
	 * left in a backlog nobody will serve */
	release_listeners();
	if (gd->proxy_pid) {
		log_info("proxy", "stopping proxy pid=%d", (int)gd->proxy_pid);
		kill(gd->proxy_pid, SIGTERM);
		if (!gd->proxy_proc_active) {
			/* adopted: not our child; wait for it in the tick */
			for (int i = 0; i < 600 && proc_alive(gd->proxy_pid, gd->proxy_start); i++)
				usleep(50000);
			gd->proxy_pid = 0;
		}
	}
	{
		struct gerr err;
		store_meta_set(gd->store, "proxy.pid", "0", &err);
	}
}

void proxyctl_free(void)
{
	release_listeners();
	json_decref(host_owner);
	host_owner = NULL;
	free(inflight);
	inflight = NULL;
	ninflight = 0;
	curl_global_cleanup();
}
