/*
 * backend.h — upstream backends and the metric series they report into.
 *
 * A backend is one (address, service, environment, revision) tuple. Route
 * tables share backend objects through a process-wide registry, so a
 * backend keeps its idle connection pools, passive-health state and counters
 * across reloads as long as some table or pooled connection refers to it.
 * /status lists every backend that is in the current table or still has
 * requests in flight (the controller's drain condition).
 *
 * Threads: the proxy runs N worker threads (one event loop each) and one
 * control thread (signals, reloads, the admin listener). Everything a worker
 * changes on the request path lives in a per-worker slot (`w[worker]`,
 * cache-line aligned) that only that worker writes; the control thread reads
 * those slots racily through relaxed atomics and sums them. Nothing on the
 * request path takes a lock. The registries (backends, series) are changed
 * by the control thread when it parses a table, and a backend is unlinked by
 * whichever thread drops its last reference; both under one mutex.
 *
 * Metric series are keyed by (service, environment, revision) and live for
 * the whole process so that counters never go backwards when a backend
 * disappears. Their counters follow http/window.h (struct rev_window). A
 * series may start from a base (metric_series_seed): the counters a
 * previous proxy process had, carried over by the controller, so that they
 * do not go backwards across a proxy replacement either.
 */
#ifndef GANTRY_PROXY_BACKEND_H
#define GANTRY_PROXY_BACKEND_H
#include "common.h"
#include "http/window.h"
#include <stdatomic.h>
#include <sys/socket.h>

#define PROXY_MAX_WORKERS 64
#define CACHELINE 64

/*
 * Number of worker slots in every backend, series and table. Set once at
 * start (proxy_run), before any of them exists; 1 by default (unit tests).
 */
extern int proxy_nworkers;
void proxy_set_workers(int n);

/* zeroed, cache-line aligned; owned by the caller (free()); dies on OOM */
void *proxy__calloc_aligned(size_t n, size_t size);

/* single-writer counters: a plain add (no lock prefix) that readers may race */
#define CTR_ADD(x, n)                                                             \
	atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + (n), \
			      memory_order_relaxed)
#define CTR_GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* one worker's counters of one series (written by that worker only) */
struct series_ctr {
	_Atomic uint64_t requests;
	_Atomic uint64_t status[6];  /* [0] no response from the replica, [1] 1xx … [5] 5xx */
	_Atomic uint64_t latency[METRIC_LATENCY_BUCKETS]; /* per bucket, not cumulative */
	_Atomic uint64_t latency_sum_us;
	_Atomic uint64_t bytes_in, bytes_out, upstream_errors;
	_Atomic int64_t inflight;
	/* answers made by the maintenance mode of the route (a route's series,
	 * revision ""): not requests of the window, never a 5xx (proxy/maint.h) */
	_Atomic uint64_t maintenance;
} __attribute__((aligned(CACHELINE)));

/* the sum over workers, read racily (each counter is monotonic) */
struct series_sum {
	uint64_t requests, status[6], latency[METRIC_LATENCY_BUCKETS], latency_sum_us;
	uint64_t bytes_in, bytes_out, upstream_errors;
	int64_t inflight;
	uint64_t maintenance;
};

struct metric_series {
	char *service, *environment, *revision; /* owned; "" when absent */
	struct series_ctr *w;                   /* proxy_nworkers entries */
	_Atomic int holds; /* route tables, backends and workers using it */
	struct metric_series *_Atomic next;
	/* where the counters started (--counters-from; inflight 0): added to the
	 * workers' in every sum. Set before the workers start, then constant */
	struct series_sum base;
	bool has_base;
};

/*
 * Finds or creates the series, with one hold for the caller; never freed
 * (its counters stay monotonic if the revision comes back). Strings
 * borrowed (copied). A series nothing holds and with nothing in flight is
 * left out of /metrics and /windows: a revision that left the route table
 * costs the controller's 10-per-second reads nothing, and Prometheus sees
 * it go stale as when a target drops a series.
 */
struct metric_series *metric_series_get(const char *svc, const char *env, const char *rev);
void metric_series_put(struct metric_series *s); /* NULL ok */
struct metric_series *metric_series_first(void);
/* base + the workers' counters */
void metric_series_sum(const struct metric_series *s, struct series_sum *out);
/*
 * Starts the series' counters from base (borrowed; its inflight is
 * ignored), creating the series unheld if need be: the carry of a previous
 * proxy process's counters. Only before the workers start counting (the
 * base is read without synchronisation).
 */
void metric_series_seed(const char *svc, const char *env, const char *rev, const struct series_sum *base);
/* whether s is shown: held, or requests on it still in flight (sum of s) */
bool metric_series_live(const struct metric_series *s, const struct series_sum *sum);
/*
 * Counts one finished request in worker's slot: cls is the window's status
 * class (0 = no response from the replica, 1..5), latency_us the time to the
 * response head (ignored when cls is 0 or latency_us is UINT64_MAX).
 */
void metric_count(struct metric_series *s, int worker, int cls, uint64_t latency_us,
		  uint64_t bytes_in, uint64_t bytes_out);
/*
 * Counts one maintenance answer (the route's 503 page) in worker's slot:
 * only in `maintenance`, not in requests or status, so that an error rate
 * (rollback_on, analyses) never sees it as a failure of a revision.
 */
void metric_count_maintenance(struct metric_series *s, int worker);

/* intrusive list node for the idle pool (owned by upstream.c) */
struct plink {
	struct plink *next, *prev;
};

/* one worker's part of a backend */
struct backend_w {
	struct plink pool;      /* idle upstream connections, most recent first */
	size_t npool;
	_Atomic int64_t inflight;
	_Atomic uint64_t requests, errors;
} __attribute__((aligned(CACHELINE)));

struct backend {
	char *address, *service, *environment, *revision; /* owned */
	struct sockaddr_storage sa;
	_Atomic int refs;
	_Atomic bool in_table;          /* referenced by the current route table */
	_Atomic int fails;              /* consecutive connect failures */
	_Atomic uint64_t ejected_until; /* monotonic ms (uv_now); 0 = not ejected */
	_Atomic int hc_state;           /* BACKEND_HC_*: written by the health checker only */
	_Atomic uint64_t hc_passed, hc_failed; /* active checks so far (the checker writes) */
	struct metric_series *ms;
	struct backend_w *w;            /* proxy_nworkers entries */
	struct backend *next, *prev;    /* registry, under the registry lock */
};

#define BACKEND_EJECT_FAILS 3
#define BACKEND_EJECT_MS 10000

/*
 * Finds or creates the backend for this tuple and takes a reference.
 * addr is "IPv4:port" or "[IPv6]:port". Returns NULL with err set if addr
 * does not parse. Strings borrowed (copied); NULL means "".
 */
struct backend *backend_get(const char *addr, const char *svc, const char *env,
			    const char *rev, struct gerr *err);
void backend_ref(struct backend *b);
/*
 * The carry of a previous proxy's health-check counters of a backend: the
 * backend, when it is made next, starts from them (once), so that
 * gantry_proxy_health_checks_total does not go back across a replacement.
 * Strings borrowed. Only before the route table is loaded.
 */
void backend_seed_checks(const char *addr, const char *svc, const char *env, const char *rev, uint64_t passed,
			 uint64_t failed);
void backend_put(struct backend *b); /* frees at zero (pools must be empty) */
/* registry walk: hold the lock between backend_first and the last ->next */
void backend_lock(void);
void backend_unlock(void);
struct backend *backend_first(void);
bool backend_ejected(const struct backend *b, uint64_t now_ms);

/* active health check state (proxy/health.c is the only writer) */
enum { BACKEND_HC_NONE, BACKEND_HC_UP, BACKEND_HC_DOWN };

/*
 * May take requests: not ejected after connect failures and not down by
 * its active health check. The balancer still uses unusable backends when
 * nothing else is left (route.h).
 */
static inline bool backend_usable(const struct backend *b, uint64_t now_ms)
{
	return atomic_load_explicit(&b->hc_state, memory_order_relaxed) != BACKEND_HC_DOWN &&
	       !backend_ejected(b, now_ms);
}
const char *backend_health_name(const struct backend *b); /* "unchecked", "up", "down" */
/* records a connect outcome; returns true when this failure ejected it */
bool backend_connect_result(struct backend *b, bool ok, uint64_t now_ms);
int backend_parse_addr(const char *addr, struct sockaddr_storage *sa);
int64_t backend_inflight(const struct backend *b); /* sum over workers */

#endif
