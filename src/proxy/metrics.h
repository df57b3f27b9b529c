/*
 * metrics.h — /metrics and /status documents of the proxy's admin listener.
 *
 * /metrics: gantry_http_requests_total{service,environment,revision,code}
 * where code is the status class ("1xx" … "5xx", "other");
 * gantry_http_request_duration_seconds histogram (0.005 … 10 s);
 * gantry_proxy_inflight; gantry_proxy_route_generation. Answers the proxy
 * makes without a route carry empty service/environment labels; answers
 * for a route with no usable backend carry an empty revision.
 */
#ifndef GANTRY_PROXY_METRICS_H
#define GANTRY_PROXY_METRICS_H
#include "common.h"
#include "http/http.h"
#include "proxy/backend.h"

/* Appends the documents to b (borrowed). */
void metrics_render(struct hbuf *b, int64_t generation);
void status_render(struct hbuf *b, long pid, int64_t generation, uint64_t now_ms);

#endif
