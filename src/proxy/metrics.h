/*
 * metrics.h — the documents of the proxy's admin listener, built from the
 * per-worker counters (summed at read time, never blocking a worker).
 *
 * /windows (JSON, for the controller, polled about every 100 ms):
 *   {"now_ms", "generation", "workers", "revisions": [{"service", "environment",
 *    "revision", "requests", "status": [6], "latency": [32], "bytes_in",
 *    "bytes_out", "inflight", "upstream_errors"}]}
 * /status (JSON): {"pid", "generation", "workers", "backends": [{"address",
 *   "service", "environment", "revision", "in_table", "inflight", "requests",
 *   "errors", "ejected", "health" ("unchecked", "up", "down"),
 *   "checks_passed", "checks_failed"}]}
 * Counters are cumulative since the proxy started (struct rev_window's
 * counting rules, http/window.h); the reader subtracts two snapshots.
 *
 * /metrics (Prometheus text 0.0.4): gantry_http_requests_total{service,
 * environment,revision,code} where code is the status class ("1xx" … "5xx",
 * or "none": the replica gave no response and the proxy answered 502/504);
 * gantry_http_request_duration_seconds histogram (the window's latency
 * buckets, time to the response head); gantry_proxy_inflight;
 * gantry_proxy_upstream_errors_total; gantry_http_{received,sent}_bytes_total;
 * gantry_proxy_route_generation; per backend in the table
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

/* Append the documents to b (borrowed). */
void metrics_render(struct hbuf *b, int64_t generation, uint64_t now_ms);
void windows_render(struct hbuf *b, int64_t now_ms, int64_t generation);
struct route_table;
/* /status: pid, generation, workers, backends, and the routes t left out (dropped_routes) */
void status_render(struct hbuf *b, long pid, int64_t generation, const struct route_table *t, uint64_t now_ms);

#endif
