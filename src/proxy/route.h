/*
 * route.h — the proxy's route table: Host → route → weighted backends.
 *
 * A table is immutable once built, except for the balancer's running
 * weights (single-threaded). It is refcounted: the proxy holds one
 * reference to the current table, every in-flight request holds one to the
 * table it was routed with, and the table holds one reference to each of
 * its backends. A reload builds a new table aside and swaps the pointer.
 */
#ifndef GANTRY_PROXY_ROUTE_H
#define GANTRY_PROXY_ROUTE_H
#include "common.h"
#include "proxy/backend.h"

struct route_backend {
	struct backend *be; /* one reference held by the table */
	int weight;
	int cw; /* smooth weighted round-robin running weight */
};

struct route {
	char *service, *environment; /* owned; "" when absent */
	struct metric_series *ms;    /* for answers without a backend (503) */
	struct route_backend *backends;
	size_t nbackends;
};

struct route_host {
	char *host;          /* owned; exact name, or the ".suffix" of "*.suffix" */
	struct route *route; /* borrowed from the table */
};

struct route_table {
	int refs;
	int64_t generation;
	struct route *routes;
	size_t nroutes;
	struct route_host *exact; /* sorted by host for bsearch */
	size_t nexact;
	struct route_host *wild;  /* sorted by suffix length, longest first */
	size_t nwild;
	struct route *any;        /* the "*" route or NULL */
};

/*
 * Builds a table from JSON text; name is used in error messages (a file
 * name). Returns a table with one reference (owned by the caller), or NULL
 * with err naming the JSON path ("routes[1].backends[0].weight: ...") or,
 * for syntax errors, "name:line:column: ...".
 */
struct route_table *route_table_parse(const char *text, size_t len, const char *name,
				      struct gerr *err);
struct route_table *route_table_load(const char *path, struct gerr *err);
void route_table_ref(struct route_table *t);
void route_table_unref(struct route_table *t);

/* host is lowercased and without port (http_host_normalize). Borrowed result. */
struct route *route_match(const struct route_table *t, const char *host);

/*
 * Picks a backend by smooth weighted round-robin (nginx's algorithm),
 * skipping weight-0 backends, ejected backends (unless all are ejected) and
 * `avoid` (unless it is the only choice). NULL if nothing has weight.
 * Borrowed result.
 */
struct backend *route_pick(struct route *r, uint64_t now_ms, const struct backend *avoid);

#endif
