/*
 * proxy.c — the control thread of `gantry proxy`: start (check the
 * configuration, load the routes, start the workers), signals (SIGHUP
 * reloads, SIGTERM/SIGINT drain and stop), and the proxy's defaults. The
 * rest is described in proxy-int.h; the state machines and invariants in
 * docs/internals/proxy.md.
 */
#include "common.h"
#include "proxy/proxy-int.h"
#include "proxy/health.h"
#include "proxy/metrics.h"
#include "util/log.h"
#include <fcntl.h>
#include <signal.h>

/* a name from the routes file as one logfmt value: printable, no space or quote, bounded */
static const char *log_word(const char *s, char *buf, size_t len)
{
	size_t i = 0;
	for (; s[i] && i + 1 < len; i++)
		buf[i] = s[i] > ' ' && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? s[i] : '?';
	buf[i] = 0;
	return i ? buf : "-";
}

/* one warning per route left out of t: the later of two routes claiming one host */
static void log_dropped(const struct route_table *t)
{
	for (size_t i = 0; i < t->ndropped; i++) {
		const struct route_drop *d = &t->dropped[i];
		const struct route *k = &t->routes[d->kept_by];
		char s1[72], e1[72], s2[72], e2[72], h[260];
		log_warn("proxy", "route=dropped generation=%lld index=%zu service=%s environment=%s host=%s "
			 "kept_by=%zu kept_service=%s kept_environment=%s reason=host-already-routed",
			 (long long)t->generation, d->route, log_word(d->service, s1, sizeof(s1)),
			 log_word(d->environment, e1, sizeof(e1)), log_word(d->host, h, sizeof(h)), d->kept_by,
			 log_word(k->service, s2, sizeof(s2)), log_word(k->environment, e2, sizeof(e2)));
	}
}

/*
 * --counters-from: the series start from a previous proxy's counters, so
 * that /windows and /metrics do not go back across a replacement. Never
 * fatal: a file we cannot use is logged, and the counters start from 0
 * (the new epoch tells readers).
 */
static void counters_carry(const char *path)
{
	struct gerr err = { { 0 } };
	char p[260], from[24];
	int64_t started;
	uint64_t epoch = metrics_epoch(&started);
	int n = metrics_carry_load(path, &err);

	log_word(path, p, sizeof(p));
	if (n < 0) {
		log_warn("proxy", "counters_from=ignored file=%s epoch=%016llx error=\"%s\" (counters start from 0)",
			 p, (unsigned long long)epoch, err.msg);
		return;
	}
	log_info("proxy", "counters_from=%s revisions=%d carried_from=%s epoch=%016llx", p, n,
		 log_word(metrics_carried_from(), from, sizeof(from)), (unsigned long long)epoch);
}

/* a table read from the routes file or pushed by PUT /routes becomes current (consumed) */
static void table_reload(struct proxy *px, struct route_table *t, const char *how)
{
	bool first = px->awaiting;

	proxy__table_install(px, t);
	log_info("proxy", "reload=ok by=%s generation=%lld routes=%zu backends=%zu dropped=%zu", how,
		 (long long)t->generation, t->nroutes, proxy__count_backends(t), t->ndropped);
	log_dropped(t);
	if (first) {
		px->awaiting = false;
		proxy__listeners_open_now(px);
	}
}

static void on_sighup(uv_signal_t *h, int sig)
{
	struct proxy *px = h->data;
	struct gerr err;
	struct route_table *t;

	if (px->stopping)
		return;
	if (px->awaiting) {
		/* the file may be older than what the controller serves now */
		log_warn("proxy", "reload=ignored reason=awaiting-routes (--await-routes: the first table comes by PUT /routes)");
		return;
	}
	t = route_table_load(px->cfg.routes_path, &err);
	if (!t) {
		log_error("proxy", "reload=failed keeping_generation=%lld error=\"%s\"",
			  (long long)px->table->generation, err.msg);
		return;
	}
	table_reload(px, t, "sighup");
}

/*
 * The routes file keeps a pushed table across a restart: written aside and
 * renamed over it, so that a SIGHUP (or a restarted proxy) reads the old
 * table or the new one, never a part.
 */
static int routes_file_write(const char *path, const char *text, size_t len, struct gerr *err)
{
	char tmp[4096];
	int fd, r = -1;
	size_t off = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.put-%ld.tmp", path, (long)getpid()) >= sizeof(tmp))
		return gerr_set(err, "--routes %s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return gerr_set(err, "--routes: cannot write %s: %s", tmp, strerror(errno));
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			gerr_set(err, "--routes: cannot write %s: %s", tmp, n < 0 ? strerror(errno) : "short write");
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		gerr_set(err, "--routes: fsync %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		gerr_set(err, "--routes: rename %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	r = 0;
out:
	close(fd);
	if (r < 0)
		unlink(tmp);
	return r;
}

int proxy__routes_put(struct proxy *px, struct route_table *t, const char *text, size_t len, struct gerr *err)
{
	if (!px->awaiting && t->generation < px->table->generation) {
		gerr_set(err, "generation %lld is older than the one loaded (%lld)", (long long)t->generation,
			 (long long)px->table->generation);
		route_table_unref(t);
		return -409;
	}
	if (routes_file_write(px->cfg.routes_path, text, len, err) < 0) {
		log_error("proxy", "put=failed keeping_generation=%lld error=\"%s\"", (long long)px->table->generation,
			  err->msg);
		route_table_unref(t);
		return -500;
	}
	table_reload(px, t, "put");
	return 0;
}

static void control_close(struct proxy *px)
{
	if (px->closed)
		return;
	px->closed = true;
	proxy__admin_close_all(px);
	if (px->has_admin)
		close_if_open((uv_handle_t *)&px->admin);
	close_if_open((uv_handle_t *)&px->sighup);
	close_if_open((uv_handle_t *)&px->sigterm);
	close_if_open((uv_handle_t *)&px->sigint);
	close_if_open((uv_handle_t *)&px->worker_done);
	close_if_open((uv_handle_t *)&px->alog_timer);
	close_if_open((uv_handle_t *)&px->admin_sweep);
	close_if_open((uv_handle_t *)&px->grace_timer);
	health_close(px->health);
}

static void on_worker_done(uv_async_t *h)
{
	struct proxy *px = h->data;
	if (atomic_load(&px->nfinished) < px->nworkers)
		return;
	log_info("proxy", "stopped=1");
	control_close(px);
}

/* asks the first n workers to stop (they drain, then their threads end) */
static void workers_stop(struct proxy *px, int n)
{
	for (int i = 0; i < n; i++) {
		atomic_store(&px->workers[i].stop_req, true);
		uv_async_send(&px->workers[i].async);
	}
}

static void stop_now(struct proxy *px, int sig)
{
	size_t n = 0;

	if (px->stopping)
		return;
	px->stopping = true;
	px->in_grace = false;
	for (int i = 0; i < px->nworkers; i++)
		n += px->workers[i].nclients; /* racy; for the log line only */
	log_info("proxy", "stopping=1 signal=%d clients=%zu", sig, n);
	/* an inherited admin listener goes to the holder's next proxy now */
	if (px->has_admin && px->cfg.admin_fd > 0)
		close_if_open((uv_handle_t *)&px->admin);
	workers_stop(px, px->nworkers);
}

static void on_grace_end(uv_timer_t *t)
{
	stop_now(t->data, SIGTERM);
}

/*
 * SIGTERM/SIGINT: with --grace (HAProxy's `grace`), first a period in which
 * the proxy serves as before while /healthz answers 503 "stopping", so that a
 * load balancer's health check takes it out of the pool before its listener
 * closes; then (or at a second signal) the stop: listener closed, requests
 * in flight drained.
 */
static void on_stop_signal(uv_signal_t *h, int sig)
{
	struct proxy *px = h->data;

	if (px->stopping)
		return;
	if (px->cfg.grace_ms && !px->in_grace) {
		px->in_grace = true;
		log_info("proxy", "stopping=grace signal=%d grace_ms=%llu: /healthz answers 503, still serving", sig,
			 (unsigned long long)px->cfg.grace_ms);
		uv_timer_start(&px->grace_timer, on_grace_end, px->cfg.grace_ms, 0);
		return;
	}
	if (px->in_grace)
		uv_timer_stop(&px->grace_timer);
	stop_now(px, sig);
}

void proxy_config_defaults(struct proxy_config *cfg)
{
	unsigned n = uv_available_parallelism();

	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = (int)MIN(MAX(n, 1u), (unsigned)PROXY_MAX_WORKERS);
	cfg->header_timeout_ms = 10000;
	cfg->idle_timeout_ms = 60000;
	cfg->body_timeout_ms = 30000;
	cfg->upstream_timeout_ms = 60000;
	cfg->connect_timeout_ms = 5000;
	cfg->drain_timeout_ms = 30000;
	cfg->tunnel_timeout_ms = 3600000;
	cfg->max_body = 0;
	cfg->forward_headers = PROXY_FWD_ALL;
}

int proxy_parse_forward_headers(const char *s, unsigned *out, char *bad, size_t badsz)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "x-forwarded-for", PROXY_FWD_FOR }, { "x-forwarded-proto", PROXY_FWD_PROTO },
		{ "x-forwarded-host", PROXY_FWD_HOST }, { "x-request-id", PROXY_FWD_REQID },
		{ "via", PROXY_FWD_VIA }, { "all", PROXY_FWD_ALL },
	};
	unsigned v = 0;

	if (!strcasecmp(s, "none")) {
		*out = 0;
		return 0;
	}
	for (const char *p = s;; p++) {
		size_t len = strcspn(p, ","), k;
		for (k = 0; k < ARRAY_SIZE(names); k++)
			if (strlen(names[k].name) == len && !strncasecmp(p, names[k].name, len))
				break;
		if (k == ARRAY_SIZE(names)) {
			snprintf(bad, badsz, "%.*s", (int)MIN(len, (size_t)64), p);
			return -1;
		}
		v |= names[k].bit;
		p += len;
		if (!*p)
			break;
	}
	*out = v;
	return 0;
}

/* what proxy_run's checks set up before the control loop exists */
static void proxy_free(struct proxy *px)
{
	cidr_set_release(&px->trusted);
	if (px->admin_token)
		explicit_bzero(px->admin_token, px->admin_token_len);
	free(px->admin_token);
	free(px);
}

/* everything else, once the workers' threads are joined (or never ran) */
static void proxy_release(struct proxy *px)
{
	control_close(px);
	uv_walk(&px->loop, walk_close, NULL);
	uv_run(&px->loop, UV_RUN_DEFAULT);
	uv_loop_close(&px->loop);
	for (int i = 0; i < px->nworkers; i++)
		proxy__worker_release(&px->workers[i]);
	free(px->workers);
	route_table_unref(px->table);
	health_free(px->health); /* its targets went with the loop's close callbacks */
	if (px->alog_fd >= 0)
		close(px->alog_fd);
	proxy_free(px);
}

int proxy__start(const struct proxy_config *cfg, struct proxy **pxp, struct gerr *err)
{
	struct proxy *px = xcalloc(1, sizeof(*px));
	struct sockaddr_storage sa;
	struct route_table *t = NULL;
	int ret = -1, started = 0;

	*pxp = NULL;
	px->cfg = *cfg;
	px->alog_fd = -1;
	metrics_epoch_init();
	if (cfg->workers < 1 || cfg->workers > PROXY_MAX_WORKERS) {
		gerr_set(err, "--workers: %d is not from 1 to %d", cfg->workers, PROXY_MAX_WORKERS);
		ret = -2;
		goto out_free;
	}
	if (proxy__parse_listen(cfg->listen, &sa) < 0) {
		gerr_set(err, "--listen: '%s' is not IP:PORT", cfg->listen);
		ret = -2;
		goto out_free;
	}
	if (cfg->listen_fds && cfg->listen_fds != cfg->workers) {
		gerr_set(err, "--listen-fds: %d sockets for %d workers (one each)", cfg->listen_fds, cfg->workers);
		ret = -2;
		goto out_free;
	}
	if (cfg->await_routes && !cfg->admin) {
		gerr_set(err, "--await-routes: needs --admin (the table arrives by PUT /routes)");
		ret = -2;
		goto out_free;
	}
	if (proxy__admin_check(px, cfg, err) < 0) {
		ret = -2;
		goto out_free;
	}
	if (cfg->trusted_proxies) {
		char bad[80];
		if (cidr_set_add_list(&px->trusted, cfg->trusted_proxies, bad, sizeof(bad)) < 0) {
			gerr_set(err, "--trusted-proxies: '%s' " CIDR_EXPECTED, bad);
			ret = -2;
			goto out_free;
		}
	}
	/* every backend, series and table is sized for this many workers */
	proxy_set_workers(cfg->workers);
	px->nworkers = cfg->workers;
	if (cfg->counters_from)
		counters_carry(cfg->counters_from);
	if (cfg->await_routes) {
		/* an empty table until PUT /routes: the listeners do not listen meanwhile */
		static const char none[] = "{\"generation\": 0, \"routes\": []}";
		t = route_table_parse(none, sizeof(none) - 1, "--await-routes", err);
		px->awaiting = true;
	} else {
		t = route_table_load(cfg->routes_path, err);
	}
	if (!t) {
		ret = -2;
		goto out_free;
	}
	if (proxy__alog_open(px, err) < 0) {
		route_table_unref(t);
		goto out_free;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&px->loop);
	uv_signal_init(&px->loop, &px->sighup);
	uv_signal_init(&px->loop, &px->sigterm);
	uv_signal_init(&px->loop, &px->sigint);
	uv_async_init(&px->loop, &px->worker_done, on_worker_done);
	uv_timer_init(&px->loop, &px->alog_timer);
	uv_timer_init(&px->loop, &px->admin_sweep);
	px->admin_sweep.data = px;
	uv_timer_init(&px->loop, &px->grace_timer);
	px->grace_timer.data = px;
	px->health = health_new(&px->loop);
	px->sighup.data = px->sigterm.data = px->sigint.data = px->worker_done.data = px;
	px->alog_timer.data = px;
	px->workers = proxy__calloc_aligned((size_t)px->nworkers, sizeof(*px->workers));
	for (int i = 0; i < px->nworkers; i++)
		proxy__worker_init(px, &px->workers[i], i);
	proxy__table_install(px, t);
	px->acked_generation = t->generation;
	log_dropped(t);
	for (int i = 0; i < px->nworkers; i++) {
		struct worker *wk = &px->workers[i];
		pthread_mutex_lock(&wk->mtx);
		t = wk->pending;
		wk->pending = NULL;
		pthread_mutex_unlock(&wk->mtx);
		proxy__worker_install(wk, t, px->seq);
	}
	ret = proxy__open_listeners(px, err);
	if (ret < 0)
		goto out;
	ret = proxy__listeners_start(px, err);
	if (ret < 0)
		goto out;
	if (cfg->admin) {
		ret = proxy__admin_listen(px, err);
		if (ret < 0)
			goto out;
	}
	uv_signal_start(&px->sighup, on_sighup, SIGHUP);
	uv_signal_start(&px->sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&px->sigint, on_stop_signal, SIGINT);
	proxy__alog_start(px);
	for (started = 0; started < px->nworkers; started++)
		if (uv_thread_create(&px->workers[started].thread, proxy__worker_main, &px->workers[started])) {
			ret = gerr_set(err, "cannot start worker thread %d", started);
			break;
		}
	if (started < px->nworkers) {
		/* stop the ones that run, then give up */
		workers_stop(px, started);
		for (int i = 0; i < started; i++)
			uv_thread_join(&px->workers[i].thread);
		goto out;
	}
	log_info("proxy", "%s=%s admin=%s workers=%d generation=%lld routes=%zu backends=%zu pid=%ld",
		 px->awaiting ? "awaiting_routes_on" : "listening", cfg->listen, cfg->admin ? cfg->admin : "-",
		 px->nworkers,
		 (long long)px->table->generation, px->table->nroutes, proxy__count_backends(px->table),
		 (long)getpid());
	*pxp = px;
	return 0;
out:
	proxy_release(px);
	return ret;
out_free:
	proxy_free(px);
	return ret;
}

int proxy__serve(struct proxy *px)
{
	uv_run(&px->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < px->nworkers; i++)
		uv_thread_join(&px->workers[i].thread);
	if (px->alog_fd >= 0)
		proxy__alog_flush(px);
	proxy_release(px);
	return 0;
}

int proxy_run(const struct proxy_config *cfg, struct gerr *err)
{
	struct proxy *px;
	int ret = proxy__start(cfg, &px, err);

	if (ret < 0)
		return ret;
	return proxy__serve(px);
}
