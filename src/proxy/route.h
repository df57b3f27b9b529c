/*
 * route.h — the proxy's route table: Host → route → revisions (weights,
 * tags, header rules, sticky cookie, shield) → backends.
 *
 * A table is immutable once built, except for the balancer's running
 * weights, which live in per-worker slots (t->ws[worker]) that only that
 * worker touches. Lifetime: an atomic reference count (t->refs) counts the
 * threads holding the table; inside one worker, requests take cheap local
 * references (route_table_wref/wunref) and the worker holds one atomic
 * reference while its local count is above zero. The table holds one
 * reference to each of its backends. A reload builds a new table aside and
 * swaps the pointer.
 *
 * Routes file, version 2 (docs/internals/proxy.md):
 *   {"generation": 17, "routes": [{"hosts": [...], "service", "environment",
 *     "revisions": [{"revision", "weight" 0..100, "tags": [...],
 *                    "backends": [{"address"}]}],
 *     "header_rules": [{"header", "value", "prefix", "revision"}],
 *     "sticky": {"cookie", "max_age_s"}, "shield": {"canary", "stable"},
 *     "tag_hosts": false | true | ["TAG", ...],
 *     "health_check": {"path", "interval_ms", "timeout_ms", "fall", "rise"},
 *     "maintenance": {"message", "retry_after_s", "allow_headers": [{"header", "value"}]}}]}
 * The flat form "backends": [{"address", "weight", "revision"}] still works:
 * each distinct revision label becomes one revision whose weight is the sum
 * of its backends' weights; inside it, unequal backend weights are honoured
 * by smooth weighted round-robin.
 */
#ifndef GANTRY_PROXY_ROUTE_H
#define GANTRY_PROXY_ROUTE_H
#include "common.h"
#include "proxy/backend.h"
#include "http/http.h"
#include "util/cidr.h"
#include "proxy/maint.h"

#define ROUTE_MAX_WEIGHT 1000000 /* flat form; version 2 weights are 0..100 */

struct route_backend {
	struct backend *be; /* one reference held by the table */
	int weight;         /* 1 in version 2; the flat form's weight otherwise */
};

struct route_rev {
	char *revision;             /* owned; "" when absent */
	int64_t weight;             /* share of the split */
	char **tags;                /* owned; lowercase */
	size_t ntags;
	struct route_backend *backends;
	size_t nbackends;
	bool weighted;              /* backends have unequal weights: SWRR inside */
	struct metric_series *ms;   /* (service, environment, revision) */
	unsigned slot;              /* per-worker state: [slot] cw, [slot+1] rr */
	unsigned bslot;             /* first backend cw slot (weighted only) */
};

struct route_hrule {
	char *name, *value; /* owned; name lowercase */
	bool prefix;
	int rev;            /* index into revs */
};

/* an active health check of every backend of a route (proxy/health.h) */
struct route_hc {
	char *path;           /* owned; NULL: the route has no active check */
	int64_t interval_ms;  /* from the start of one check to the next */
	int64_t timeout_ms;   /* connect + answer, <= interval_ms */
	int fall, rise;       /* consecutive failures to go down, passes to come back */
};

#define ROUTE_HC_INTERVAL_MS 2000
#define ROUTE_HC_TIMEOUT_MS 1000
#define ROUTE_HC_FALL 3
#define ROUTE_HC_RISE 2

struct route {
	char *service, *environment; /* owned; "" when absent */
	struct metric_series *ms;    /* for answers without a revision (503) */
	struct route_rev *revs;
	size_t nrevs;
	struct route_hrule *rules;
	size_t nrules;
	char *sticky_cookie;         /* owned; NULL: no stickiness */
	int64_t sticky_max_age;      /* seconds; 0 = a session cookie */
	int shield_canary, shield_stable; /* revision indexes, -1 = no shield */
	struct route_hc hc;
	bool tag_hosts_all;          /* "tag_hosts": true: every tag answers as TAG---HOST */
	char **host_tags;            /* owned, lowercase: the tags that do ("tag_hosts": [...]) */
	size_t nhost_tags;
	struct route_maint maint;    /* "maintenance": answered 503 unless allowed (proxy/maint.h) */
};

struct route_host {
	char *host;          /* owned; exact name, or the ".suffix" of "*.suffix" */
	struct route *route; /* borrowed from the table */
};

/*
 * A route left out because one of its hosts was already claimed by an
 * earlier route of the file (the first route to name a host keeps it; the
 * rest of the table still applies). The controller never writes such a file
 * (proxyctl skips the later service environment); an older controller or a
 * hand-written file may.
 */
struct route_drop {
	size_t route;                /* its index in the file's routes */
	size_t kept_by;              /* the earlier route that keeps the host */
	char *host;                  /* owned: the host both name, lowercase ("*.x", "*") */
	char *service, *environment; /* owned: of the dropped route; "" when absent */
};

/* one worker's mutable part of a table */
struct route_wstate {
	int refs;    /* that worker's local references */
	int64_t *st; /* nslots running weights and round-robin cursors */
} __attribute__((aligned(CACHELINE)));

struct route_table {
	_Atomic int refs;
	int64_t generation;
	int forward_headers;      /* PROXY_FWD_* from the file; -1: the proxy's --forward-headers */
	bool has_trusted;         /* the file has trusted_proxies (else: the proxy's --trusted-proxies) */
	struct cidr_set trusted;  /* peers whose X-Forwarded-* are kept (appended to) */
	struct route *routes;
	size_t nroutes;
	struct route_host *exact; /* sorted by host for bsearch */
	size_t nexact;
	struct route_host *wild;  /* sorted by suffix length, longest first */
	size_t nwild;
	struct route *any;        /* the "*" route or NULL */
	struct route_drop *dropped; /* routes left out: a host already claimed */
	size_t ndropped;
	unsigned nslots;
	struct route_wstate *ws;  /* proxy_nworkers entries */
	int64_t *slotmem;
};

/*
 * Builds a table from JSON text; name is used in error messages (a file
 * name). Returns a table with one reference (owned by the caller), or NULL
 * with err naming the JSON path ("routes[1].revisions[0].weight: ...") or,
 * for syntax errors, "name:line:column: ...". A route naming a host that an
 * earlier route named is not an error: it is parsed (so it must be valid),
 * left out of the table and listed in t->dropped.
 */
struct route_table *route_table_parse(const char *text, size_t len, const char *name,
				      struct gerr *err);
struct route_table *route_table_load(const char *path, struct gerr *err);
void route_table_ref(struct route_table *t);
void route_table_unref(struct route_table *t);
/* a worker's local references (no atomics while the worker already holds one) */
void route_table_wref(struct route_table *t, int worker);
void route_table_wunref(struct route_table *t, int worker);

/* host is lowercased and without port (http_host_normalize). Borrowed result. */
struct route *route_match(const struct route_table *t, const char *host);

/*
 * Host lookup with tag URLs: "TAG---SVC.ENV.localhost" (any host of the
 * form TAG---REST) gives the route of REST and, in *tag_rev, the index of
 * its revision tagged TAG, when REST has a route with such a revision and
 * that route's tag_hosts lets TAG answer as a host (route_tag_host_on).
 * Otherwise the plain match of host and *tag_rev = -1.
 */
bool route_tag_host_on(const struct route *r, const char *tag, size_t len);
struct route *route_lookup(const struct route_table *t, const char *host, int *tag_rev);

/*
 * Whether a peer's X-Forwarded-* are believed: the table's trusted_proxies
 * when the file has them, else flag (the proxy's --trusted-proxies). The
 * empty set (the default) costs one load.
 */
static inline bool route_trusts(const struct route_table *t, const struct cidr_set *flag, int family,
				const uint8_t *addr)
{
	const struct cidr_set *s = t->has_trusted ? &t->trusted : flag;
	return s->n && cidr_set_match(s, family, addr);
}

int route_rev_index(const struct route *r, const char *revision); /* -1 if absent */
int route_tag_index(const struct route *r, const char *tag, size_t len);

enum route_why { ROUTE_BY_WEIGHT, ROUTE_BY_HEADER, ROUTE_BY_TAG, ROUTE_BY_STICKY };

struct route_choice {
	int rev;              /* index into r->revs, -1: nothing usable (503) */
	enum route_why why;
	bool set_cookie;      /* the route is sticky and the client's cookie is missing or stale */
	int status;           /* when rev < 0 because of the request: 404 (unknown tag), else 0 */
};

/*
 * Chooses the revision for a request: header rules, then the tag (tag_rev
 * from route_lookup, or header X-Gantry-Tag), then the sticky cookie, then
 * smooth weighted round-robin over the revision weights (revisions without
 * a usable backend are skipped). m is the parsed request head (borrowed).
 */
void route_choose(struct route_table *t, struct route *r, int worker, const struct http_msg *m,
		  int tag_rev, uint64_t now_ms, struct route_choice *out);
/* SWRR over the revision weights only; -1 if no weight */
int route_pick_rev(struct route_table *t, struct route *r, int worker, uint64_t now_ms);

/*
 * Picks a backend of revision rev: the fewest in-flight requests of this
 * worker (ties: round-robin), or smooth weighted round-robin when the flat
 * form gave unequal weights; skips weight-0 backends, unusable backends
 * (ejected, or down by their health check; unless all are) and `avoid`
 * (unless it is the only choice). NULL if nothing has weight. Borrowed
 * result.
 */
struct backend *route_pick_backend(struct route_table *t, struct route_rev *rv, int worker,
				   uint64_t now_ms, const struct backend *avoid);
/* route_pick_rev then route_pick_backend (worker 0 helpers for tests) */
struct backend *route_pick(struct route_table *t, struct route *r, uint64_t now_ms,
			   const struct backend *avoid);

#endif
