/*
 * backend.h — upstream backends and the metric series they report into.
 *
 * A backend is one (address, service, environment, revision) tuple. Route
 * tables share backend objects through a process-wide registry, so a
 * backend keeps its idle connection pool, passive-health state and counters
 * across reloads as long as some table, connection or request refers to it.
 * /status lists every backend that is in the current table or still has
 * requests in flight (the controller's drain condition).
 *
 * Metric series are keyed by (service, environment, revision) and live for
 * the whole process so that Prometheus counters never go backwards when a
 * backend disappears.
 *
 * Single-threaded: everything here is used from one event loop.
 */
#ifndef GANTRY_PROXY_BACKEND_H
#define GANTRY_PROXY_BACKEND_H
#include "common.h"
#include <sys/socket.h>

#define METRIC_NBUCKETS 11
extern const double metric_buckets[METRIC_NBUCKETS];

struct metric_series {
	char *service, *environment, *revision; /* owned; "" when absent */
	uint64_t codes[6];       /* [0] other, [1] 1xx … [5] 5xx */
	uint64_t buckets[METRIC_NBUCKETS]; /* not cumulative; summed on output */
	uint64_t count;
	double sum;
	int64_t inflight;
	struct metric_series *next;
};

/* Finds or creates the series; never freed. Strings borrowed (copied). */
struct metric_series *metric_series_get(const char *svc, const char *env, const char *rev);
void metric_observe(struct metric_series *s, int status, double seconds);
struct metric_series *metric_series_first(void);

/* intrusive list node for the idle pool (owned by proxy.c) */
struct plink {
	struct plink *next, *prev;
};

struct backend {
	char *address, *service, *environment, *revision; /* owned */
	struct sockaddr_storage sa;
	int refs;
	bool in_table;          /* referenced by the current route table */
	int64_t inflight;
	uint64_t requests, errors;
	int fails;              /* consecutive connect failures */
	uint64_t ejected_until; /* loop ms; 0 = not ejected */
	struct metric_series *ms;
	struct plink pool;      /* idle upstream connections, most recent first */
	size_t npool;
	struct backend *next, *prev;
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
void backend_put(struct backend *b); /* frees at zero (pool must be empty) */
struct backend *backend_first(void);
bool backend_ejected(const struct backend *b, uint64_t now_ms);
/* records a connect outcome; returns true when this failure ejected it */
bool backend_connect_result(struct backend *b, bool ok, uint64_t now_ms);
int backend_parse_addr(const char *addr, struct sockaddr_storage *sa);

#endif
