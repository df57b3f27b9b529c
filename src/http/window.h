/*
 * http/window.h — the per-revision traffic window: HTTP requests by status
 * class, latency buckets and bytes of one revision over an interval. Types
 * only: the contract between the proxy (producer: one window per revision
 * of a service environment, exported on an interval) and the rollout
 * engine (consumer: conditions and analyses read error rate, availability,
 * request rate and latency quantiles from it; see rollout/stats.h for the
 * helpers). It lives below both so that neither depends on the other.
 *
 * Counting rules (the producer must keep them):
 *  - a request is counted in the window of the revision whose replica was
 *    tried, when it finishes (response sent, or given up on);
 *  - requests == status[0] + status[1] + ... + status[5];
 *  - status[0] counts requests that got no response from the replica
 *    (connect error, reset, timeout): the proxy answered 502/504 itself, or
 *    the canary shield retried on stable. Such a failure counts against the
 *    revision that failed, never against the one that saved it;
 *  - latency is from the request head being forwarded to the last byte of the
 *    response head received (time to first byte of the answer), counted
 *    only for requests that got a response; latency[i] counts latencies in
 *    (METRIC_LATENCY_BOUNDS_US[i-1], METRIC_LATENCY_BOUNDS_US[i]]
 *    (i = 0: [0, bound 0]); the last bucket also counts everything above
 *    60 s. Plain per-bucket counts, not cumulative.
 */
#ifndef GANTRY_HTTP_WINDOW_H
#define GANTRY_HTTP_WINDOW_H
#include "common.h"

#define METRIC_LATENCY_BUCKETS 32

/* upper bounds in microseconds: 100us .. 60s, roughly 1-1.5-2-3-5-7.5 per decade */
static const uint64_t METRIC_LATENCY_BOUNDS_US[METRIC_LATENCY_BUCKETS] UNUSED = {
	100,      150,      200,      300,      500,      750,             /* us */
	1000,     1500,     2000,     3000,     5000,     7500,            /* ms */
	10000,    15000,    20000,    30000,    50000,    75000,
	100000,   150000,   200000,   300000,   500000,   750000,
	1000000,  1500000,  2000000,  3000000,  5000000,  10000000,       /* s */
	30000000, 60000000,
};

struct rev_window { /* one revision of one service environment over [start_ms, end_ms) */
	int64_t start_ms, end_ms;
	uint64_t requests;         /* requests finished (see the counting rules above) */
	uint64_t status[6];        /* by class: [1]=1xx .. [5]=5xx; [0] = no response */
	uint64_t latency[METRIC_LATENCY_BUCKETS]; /* per-bucket counts (not cumulative) */
	uint64_t bytes_in, bytes_out;
};

/* the bucket of a latency in microseconds (binary search; for the producer) */
static inline int metric_latency_bucket(uint64_t us)
{
	int lo = 0, hi = METRIC_LATENCY_BUCKETS - 1;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (us <= METRIC_LATENCY_BOUNDS_US[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

#endif
