/*
 * worker.c — the worker threads: each runs one libuv loop with its own
 * SO_REUSEPORT listener, installs the route tables the control thread
 * hands it, runs the one timer behind every connection deadline (the
 * sweep), and stops gracefully (drain, then close).
 */
#include "common.h"
#include "proxy/proxy-int.h"
#include "proxy/health.h"
#include "util/log.h"
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/tcp.h>
#include <fcntl.h>

int proxy__parse_listen(const char *addr, struct sockaddr_storage *sa)
{
	char buf[128];
	if (addr[0] == ':') {
		snprintf(buf, sizeof(buf), "0.0.0.0%s", addr);
		addr = buf;
	}
	return backend_parse_addr(addr, sa);
}

size_t proxy__count_backends(const struct route_table *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->nroutes; i++)
		for (size_t k = 0; k < t->routes[i].nrevs; k++)
			n += t->routes[i].revs[k].nbackends;
	return n;
}

static void mark_in_table(const struct route_table *t, bool v)
{
	for (size_t i = 0; i < t->nroutes; i++)
		for (size_t k = 0; k < t->routes[i].nrevs; k++)
			for (size_t j = 0; j < t->routes[i].revs[k].nbackends; j++)
				atomic_store(&t->routes[i].revs[k].backends[j].be->in_table, v);
}

/* worker: switch to t (consumes one reference), close pools of dropped backends */
void proxy__worker_install(struct worker *wk, struct route_table *t, uint64_t seq)
{
	struct route_table *old = wk->table;

	route_table_wref(t, wk->id);
	route_table_unref(t);
	wk->table = t;
	if (old) {
		for (size_t i = 0; i < old->nroutes; i++)
			for (size_t k = 0; k < old->routes[i].nrevs; k++)
				for (size_t j = 0; j < old->routes[i].revs[k].nbackends; j++) {
					struct backend *be = old->routes[i].revs[k].backends[j].be;
					if (!atomic_load(&be->in_table))
						proxy__pool_close_all(be, wk->id);
				}
		route_table_wunref(old, wk->id);
	}
	atomic_store(&wk->installed_seq, seq);
}

/* control: make t current (consumes the caller's reference) and hand it to the workers */
void proxy__table_install(struct proxy *px, struct route_table *t)
{
	struct route_table *old = px->table;
	if (old)
		mark_in_table(old, false);
	mark_in_table(t, true);
	px->table = t;
	px->seq++;
	health_sync(px->health, t);
	for (int i = 0; i < px->nworkers; i++) {
		struct worker *wk = &px->workers[i];
		struct route_table *drop;
		route_table_ref(t);
		pthread_mutex_lock(&wk->mtx);
		drop = wk->pending;
		wk->pending = t;
		wk->pending_seq = px->seq;
		pthread_mutex_unlock(&wk->mtx);
		route_table_unref(drop);
		uv_async_send(&wk->async);
	}
	route_table_unref(old);
}

static void worker_pools_close(struct worker *wk)
{
	backend_lock();
	for (struct backend *be = backend_first(); be; be = be->next)
		proxy__pool_close_all(be, wk->id);
	backend_unlock();
}

/*
 * Connection timeouts. Each connection keeps one deadline (loop ms) that the
 * request path sets with a plain store. One repeating timer per worker
 * (`sweep`, every tick_ms) walks the worker's upstream connections and
 * clients and runs the handler of each deadline that has passed, so a
 * timeout fires up to one tick late and the request path makes no call into
 * libuv's timer heap (uv_timer_start/stop/again were ~19 % of the proxy's
 * user-space instructions per request). The timer runs only while the worker
 * has connections.
 *
 * Walking while handlers close connections is safe: a closed connection is
 * unlinked but freed only in its close callback (after this callback), it
 * keeps its next pointer, and new connections go to the head of the lists,
 * so the walk only moves to older entries and ends.
 */
void proxy__on_sweep(uv_timer_t *t)
{
	struct worker *wk = t->data;
	uint64_t now = uv_now(&wk->loop);
	struct upconn *u, *un;
	struct client *c, *cn;

	for (u = wk->upconns; u; u = un) {
		un = u->wnext;
		if (u->deadline && now >= u->deadline && u->state != U_CLOSING) {
			u->deadline = 0;
			proxy__upconn_timeout(u);
		}
	}
	for (c = wk->clients; c; c = cn) {
		cn = c->next;
		if (c->deadline && now >= c->deadline && c->state != C_CLOSING) {
			c->deadline = 0;
			proxy__client_timeout(c);
		}
	}
	if (!wk->clients && !wk->upconns && wk->sweeping) {
		uv_timer_stop(t);
		wk->sweeping = false;
	}
}

void proxy__worker_maybe_stopped(struct worker *wk)
{
	if (!wk->stopping || wk->finished || wk->nclients)
		return;
	wk->finished = true;
	worker_pools_close(wk);
	close_if_open((uv_handle_t *)&wk->listener);
	close_if_open((uv_handle_t *)&wk->async);
	close_if_open((uv_handle_t *)&wk->stop_timer);
	close_if_open((uv_handle_t *)&wk->sweep);
}

static void on_worker_stop_timeout(uv_timer_t *t)
{
	struct worker *wk = t->data;
	log_warn("proxy", "drain=timeout worker=%d closing=%zu", wk->id, wk->nclients);
	while (wk->clients)
		proxy__client_close(wk->clients);
}

static void worker_stop(struct worker *wk)
{
	struct client *c, *next;

	if (wk->stopping)
		return;
	wk->stopping = true;
	close_if_open((uv_handle_t *)&wk->listener);
	worker_pools_close(wk);
	for (c = wk->clients; c; c = next) {
		next = c->next;
		if (c->state == C_IDLE && c->rlen == 0)
			proxy__client_close(c);
		else
			c->close_after = true;
	}
	uv_timer_start(&wk->stop_timer, on_worker_stop_timeout, wk->cfg->drain_timeout_ms, 0);
	proxy__worker_maybe_stopped(wk);
}

static int listener_start(struct worker *wk);

static void on_worker_async(uv_async_t *h)
{
	struct worker *wk = h->data;
	struct route_table *t;
	uint64_t seq;

	pthread_mutex_lock(&wk->mtx);
	t = wk->pending;
	seq = wk->pending_seq;
	wk->pending = NULL;
	pthread_mutex_unlock(&wk->mtx);
	if (t)
		proxy__worker_install(wk, t, seq);
	if (atomic_load(&wk->listen_req) && !wk->listening && !wk->stopping) {
		int r = listener_start(wk);
		if (r < 0) {
			wk->listening = true; /* said once */
			log_error("proxy", "listen=failed worker=%d address=%s error=\"%s\"", wk->id, wk->cfg->listen,
				  uv_strerror(r));
		} else if (wk->id == 0) {
			log_info("proxy", "listening=%s generation=%lld (the first route table arrived)", wk->cfg->listen,
				 (long long)wk->table->generation);
		}
	}
	if (atomic_load(&wk->stop_req))
		worker_stop(wk);
}

/* the worker's table reference and buffer caches, once its loop is done */
static void worker_drop(struct worker *wk)
{
	route_table_wunref(wk->table, wk->id);
	wk->table = NULL;
	while (wk->nbufcache)
		free(wk->bufcache[--wk->nbufcache]);
	http_hdr_pool_release(&wk->hdrpool);
	while (wk->nsbuf)
		free(wk->sbuf[--wk->nsbuf]);
}

void proxy__worker_main(void *arg)
{
	struct worker *wk = arg;

	uv_run(&wk->loop, UV_RUN_DEFAULT);
	uv_walk(&wk->loop, walk_close, NULL);
	uv_run(&wk->loop, UV_RUN_DEFAULT);
	worker_drop(wk);
	atomic_fetch_add(&wk->px->nfinished, 1);
	uv_async_send(&wk->px->worker_done);
}

/*
 * Options accepted sockets inherit from the listener (Linux copies them):
 * TCP_NODELAY (one setsockopt per connection less) and TCP_QUICKACK off, so
 * that the kernel does not ACK a request on its own right before the
 * response carries the ACK anyway (one packet per request less; HAProxy
 * does the same on its HTTP listeners). After listen(), which resets the
 * delayed-ACK state of the socket.
 */
static void listener_opts(int fd)
{
	int one = 1, zero = 0;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
}

static int listeners_open(const char *listen_addr, int n, int *fds, bool do_listen, struct gerr *err)
{
	struct sockaddr_storage sa, bound;
	socklen_t len;
	int one = 1, probe = -1, ret = -1, i;

	for (i = 0; i < n; i++)
		fds[i] = -1;
	if (proxy__parse_listen(listen_addr, &sa) < 0)
		return gerr_set(err, "--listen: '%s' is not IP:PORT", listen_addr);
	len = sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	bound = sa;
	probe = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return gerr_set(err, "--listen %s: socket: %s", listen_addr, strerror(errno));
	setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(probe, (const struct sockaddr *)&sa, len) < 0) {
		gerr_set(err, "--listen %s: %s", listen_addr, errno == EADDRINUSE ? "address in use" : strerror(errno));
		goto out;
	}
	/* port 0: every socket listens on the port the probe got */
	if (getsockname(probe, (struct sockaddr *)&bound, &len) < 0) {
		gerr_set(err, "--listen %s: getsockname: %s", listen_addr, strerror(errno));
		goto out;
	}
	if (n == 1) {
		/* nobody can join a socket without SO_REUSEPORT: use the probe */
		if (do_listen && listen(probe, 4096) < 0) {
			gerr_set(err, "--listen %s: %s", listen_addr, strerror(errno));
			goto out;
		}
		listener_opts(probe);
		fds[0] = probe;
		probe = -1;
		ret = 0;
		goto out;
	}
	close(probe);
	probe = -1;
	for (i = 0; i < n; i++) {
		int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			gerr_set(err, "--listen %s: socket: %s", listen_addr, strerror(errno));
			goto out;
		}
		fds[i] = fd;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&bound, len) < 0 || (do_listen && listen(fd, 4096) < 0)) {
			gerr_set(err, "--listen %s: %s", listen_addr,
				 errno == EADDRINUSE ? "address in use" : strerror(errno));
			goto out;
		}
		listener_opts(fd);
	}
	ret = 0;
out:
	if (probe >= 0)
		close(probe);
	if (ret < 0)
		for (i = 0; i < n; i++)
			if (fds[i] >= 0) {
				close(fds[i]);
				fds[i] = -1;
			}
	return ret;
}

int proxy_listeners_open(const char *listen_addr, int n, int *fds, struct gerr *err)
{
	return listeners_open(listen_addr, n, fds, true, err);
}

int proxy_listeners_bind(const char *listen_addr, int n, int *fds, struct gerr *err)
{
	return listeners_open(listen_addr, n, fds, false, err);
}

/*
 * The inherited sockets of --listen-fds: fds 3.. are listening TCP sockets
 * another process (the controller) holds too. The proxy takes its own
 * descriptors (CLOEXEC from now on) and closing them leaves the holder's
 * listening: connections wait in the backlog for the next proxy.
 */
static int take_inherited(struct proxy *px, struct gerr *err)
{
	for (int i = 0; i < px->nworkers; i++) {
		int fd = PROXY_LISTEN_FDS_START + i, v = 0;
		socklen_t vl = sizeof(v);
		/* --await-routes: a master binds them and the first table makes them listen */
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || (!v && !px->cfg.await_routes))
			return gerr_set(err, "--listen-fds %d: fd %d is not a listening socket", px->cfg.listen_fds, fd);
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			return gerr_set(err, "--listen-fds: fd %d: %s", fd, strerror(errno));
		px->workers[i].listen_fd = fd;
	}
	return 0;
}

/* one listening socket per worker: inherited, or bound here */
int proxy__open_listeners(struct proxy *px, struct gerr *err)
{
	int fds[PROXY_MAX_WORKERS];

	if (px->cfg.listen_fds > 0)
		return take_inherited(px, err);
	if ((px->cfg.await_routes ? proxy_listeners_bind : proxy_listeners_open)(px->cfg.listen, px->nworkers, fds,
										   err) < 0)
		return -1;
	for (int i = 0; i < px->nworkers; i++)
		px->workers[i].listen_fd = fds[i];
	return 0;
}

/* control, --await-routes: the first table arrived, every worker listens from now on */
void proxy__listeners_open_now(struct proxy *px)
{
	for (int i = 0; i < px->nworkers; i++) {
		atomic_store(&px->workers[i].listen_req, true);
		uv_async_send(&px->workers[i].async);
	}
}

/* one worker's uv listener on its socket (a bound one listens from now on) */
static int listener_start(struct worker *wk)
{
	int r = uv_tcp_open(&wk->listener, wk->listen_fd);
	uv_os_fd_t fd;

	if (!r)
		wk->listen_fd = -1; /* libuv closes it now */
	if (!r)
		r = uv_listen((uv_stream_t *)&wk->listener, 4096, proxy__on_connection);
	if (!r && uv_fileno((uv_handle_t *)&wk->listener, &fd) == 0)
		listener_opts(fd);
	if (!r)
		wk->listening = true;
	return r;
}

/* each worker's uv listener on the socket proxy__open_listeners made for it */
int proxy__listeners_start(struct proxy *px, struct gerr *err)
{
	for (int i = 0; i < px->nworkers; i++) {
		struct worker *wk = &px->workers[i];
		int r;
		uv_tcp_init(&wk->loop, &wk->listener);
		wk->listener.data = wk;
		if (px->cfg.await_routes)
			continue; /* the first table starts it (proxy__listeners_open_now) */
		r = listener_start(wk);
		if (r < 0)
			return gerr_set(err, "--listen %s: %s", px->cfg.listen, uv_strerror(r));
	}
	return 0;
}

/* a quarter of the shortest timeout, from 10 ms to 250 ms */
static uint64_t sweep_tick(const struct proxy_config *cfg)
{
	uint64_t t = MIN(cfg->header_timeout_ms, cfg->idle_timeout_ms);
	t = MIN(t, MIN(cfg->body_timeout_ms, cfg->upstream_timeout_ms));
	t = MIN(t, MIN(cfg->connect_timeout_ms, cfg->tunnel_timeout_ms));
	return MAX(MIN(t / 4, (uint64_t)250), (uint64_t)10);
}

void proxy__worker_init(struct proxy *px, struct worker *wk, int id)
{
	wk->id = id;
	wk->px = px;
	wk->cfg = &px->cfg;
	wk->listen_fd = -1;
	pthread_mutex_init(&wk->mtx, NULL);
	hbuf_init(&wk->alog, ALOG_MAX);
	uv_loop_init(&wk->loop);
	uv_async_init(&wk->loop, &wk->async, on_worker_async);
	uv_timer_init(&wk->loop, &wk->stop_timer);
	uv_timer_init(&wk->loop, &wk->sweep);
	wk->async.data = wk->stop_timer.data = wk->sweep.data = wk;
	wk->tick_ms = sweep_tick(wk->cfg);
	wk->ms_none = metric_series_get("", "", "");
	if (getrandom(wk->rng, sizeof(wk->rng), 0) != sizeof(wk->rng) || !(wk->rng[0] | wk->rng[1])) {
		wk->rng[0] = (uint64_t)uv_hrtime() | 1;
		wk->rng[1] = ((uint64_t)getpid() << 8 | (uint64_t)id) * 0x9E3779B97F4A7C15ull;
	}
}

void proxy__worker_release(struct worker *wk)
{
	if (wk->listen_fd >= 0)
		close(wk->listen_fd);
	uv_walk(&wk->loop, walk_close, NULL);
	uv_run(&wk->loop, UV_RUN_DEFAULT);
	uv_loop_close(&wk->loop);
	route_table_unref(wk->pending);
	worker_drop(wk); /* again: close callbacks above may have filled the caches */
	pthread_mutex_destroy(&wk->mtx);
	hbuf_release(&wk->alog);
}
