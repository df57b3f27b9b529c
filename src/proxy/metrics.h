/*
 * metrics.h — the documents of the proxy's admin listener, built from the
 * per-worker counters (summed at read time, never blocking a worker).
 *
 * /windows (JSON, for the controller, polled about every 100 ms):
 *   {"now_ms", "epoch", "started_ms", "carried_from"?, "generation", "workers",
 *    "revisions": [{"service", "environment", "revision", "requests",
 *    "status": [6], "latency": [32], "latency_sum_us", "bytes_in", "bytes_out",
 *    "upstream_errors", "inflight", "base"?: {the same counters}}],
 *    "checks": [{"service", "environment", "revision", "address", "passed",
 *    "failed"}] (active health checks of each backend that had one)}
 * /status (JSON): {"pid", "epoch", "started_ms", "carried_from"?, "generation",
 *   "workers", "backends": [{"address",
 *   "service", "environment", "revision", "in_table", "inflight", "requests",
 *   "errors", "ejected", "health" ("unchecked", "up", "down"),
 *   "checks_passed", "checks_failed"}]}
 * Counters are cumulative since the proxy started, from the base it was
 * started with ("base": --counters-from, below; none: 0) (struct
 * rev_window's counting rules, http/window.h); the reader subtracts two
 * snapshots of one epoch.
 *
 * /metrics (Prometheus text 0.0.4): gantry_http_requests_total{service,
 * environment,revision,code} where code is the status class ("1xx" … "5xx",
 * or "none": the replica gave no response and the proxy answered 502/504);
 * gantry_http_request_duration_seconds histogram (the window's latency
 * buckets, time to the response head); gantry_proxy_inflight;
 * gantry_proxy_upstream_errors_total; gantry_http_{received,sent}_bytes_total;
 * gantry_proxy_route_generation; gantry_proxy_start_time_seconds; per backend in the table
 * gantry_proxy_backend_up{service,environment,revision,address} (1: takes
 * requests, 0: down by its active health check or ejected after connect
 * failures) and gantry_proxy_health_checks_total{...,result="pass|fail"}
 * for checked backends. Answers the proxy makes without a route
 * carry empty service/environment labels; answers for a route with no
 * usable revision carry an empty revision.
 */
#ifndef GANTRY_PROXY_METRICS_H
#define GANTRY_PROXY_METRICS_H
#include "common.h"
#include "http/http.h"
#include "proxy/backend.h"

/*
 * This process's epoch: a random 64-bit id (never 0) and the wall-clock
 * start in ms, made by metrics_epoch_init at start (also forgets a carry).
 * In /windows and /status ("epoch": 16 hex digits, "started_ms") and in
 * /metrics (gantry_proxy_start_time_seconds): a reader that sees another
 * epoch knows the counters come from another process.
 */
void metrics_epoch_init(void);
uint64_t metrics_epoch(int64_t *started_ms); /* started_ms may be NULL */
/* the epoch of the --counters-from document this process started from ("": none) */
const char *metrics_carried_from(void);

/*
 * --counters-from FILE: a /windows document of a previous proxy (the one
 * the controller last read). Each revision's requests, status, latency,
 * latency_sum_us, bytes_in, bytes_out and upstream_errors become its series'
 * base (metric_series_seed), so this process's counters go on from there;
 * /windows shows it as the revision's "base" and the document's epoch as
 * "carried_from". Everything is checked before anything is seeded: a file
 * that does not parse (JSON; "revisions" an array of at most
 * CARRY_MAX_REVISIONS objects with service, environment and revision
 * strings of at most CARRY_MAX_NAME bytes, requests, status[6],
 * latency[32], bytes_in, bytes_out integers from 0 to 2^60, optionally
 * latency_sum_us and upstream_errors; no revision twice; "epoch", when
 * there, hex) seeds nothing.
 */
#define CARRY_MAX_BYTES (16u << 20)
#define CARRY_MAX_REVISIONS 65536
#define CARRY_MAX_NAME 1024
#define CARRY_MAX_COUNT (1ULL << 60)
struct carry_rev {
	char *service, *environment, *revision; /* owned */
	struct series_sum c;
};
struct carry_check {            /* one backend's active health checks */
	char *service, *environment, *revision, *address; /* owned */
	uint64_t passed, failed;
};
struct metrics_carry {
	struct carry_rev *revs; /* owned, n of them, sorted */
	size_t n;
	struct carry_check *checks; /* owned, nchecks of them ("checks": absent in older documents) */
	size_t nchecks;
	char epoch[17];         /* "" when the document had none */
};
/* 0, or -1 with err naming where (a JSON path or LINE:COL); text borrowed */
int metrics_carry_parse(const char *text, size_t len, struct metrics_carry *out, struct gerr *err);
void metrics_carry_release(struct metrics_carry *c);
/* reads path, parses it and seeds the series: the number of revisions, or -1 with err (nothing seeded) */
int metrics_carry_load(const char *path, struct gerr *err);

/* Append the documents to b (borrowed). */
void metrics_render(struct hbuf *b, int64_t generation, uint64_t now_ms);
void windows_render(struct hbuf *b, int64_t now_ms, int64_t generation);
struct route_table;
/* /status: pid, generation, workers, backends, and the routes t left out (dropped_routes) */
void status_render(struct hbuf *b, long pid, int64_t generation, const struct route_table *t, uint64_t now_ms);

#endif
