/*
 * stats.h — pure statistics for the rollout engine: the helpers over a
 * revision's traffic window (http/window.h) and the Mann-Whitney U test
 * used to compare a canary with its baseline (as Kayenta's judge does).
 *
 * Definitions (docs/internals/rollout.md has the reasoning):
 *  - error rate = (5xx + no response) / requests, a fraction in [0, 1];
 *    4xx are the client's fault and do not count. NAN without requests.
 *  - availability = 1 - error rate (NAN without requests).
 *  - request rate = requests per second over [start_ms, end_ms) (NAN for an
 *    empty interval).
 *  - quantile q of the latency histogram, in milliseconds, interpolated
 *    linearly inside the bucket holding rank q * count (NAN without samples).
 */
#ifndef GANTRY_ROLLOUT_STATS_H
#define GANTRY_ROLLOUT_STATS_H
#include "common.h"
#include "http/window.h"

/* adds src's counts into dst; the interval becomes the union's hull */
void window_merge(struct rev_window *dst, const struct rev_window *src);
uint64_t window_errors(const struct rev_window *w);
double window_error_rate(const struct rev_window *w);
double window_availability(const struct rev_window *w);
double window_request_rate(const struct rev_window *w);
/* q in [0, 1]; result in milliseconds */
double window_quantile(const struct rev_window *w, double q);
/* latency samples counted in the histogram (requests that got a response) */
uint64_t window_latency_count(const struct rev_window *w);

enum mwu_alternative {
	MWU_TWO_SIDED,  /* the two samples differ */
	MWU_GREATER,    /* x (the canary) tends to be greater than y (the baseline) */
};

struct mwu_result {
	double u;  /* U statistic of x: pairs (xi, yj) with xi > yj, ties counting 1/2 */
	double z;  /* normal approximation, with tie and continuity corrections */
	double p;  /* p-value for the alternative asked */
	double nx, ny;
};

/*
 * Mann-Whitney U test on weighted samples: value xv[i] seen xw[i] times
 * (weights need not be integers: a histogram bucket's count is one). Uses
 * the normal approximation with tie correction and continuity correction
 * (scipy.stats.mannwhitneyu(method="asymptotic") gives the same figures);
 * good for n >= 8 per side. Arrays are borrowed. Returns -1 with err set
 * when a side is empty, a value is not finite or a weight is negative.
 * When every value is tied the test cannot tell anything: p = 1.
 */
int mwu_test_weighted(const double *xv, const double *xw, size_t nx, const double *yv, const double *yw,
		      size_t ny, enum mwu_alternative alt, struct mwu_result *out, struct gerr *err);
/* the same with every weight 1 */
int mwu_test(const double *x, size_t nx, const double *y, size_t ny, enum mwu_alternative alt,
	     struct mwu_result *out, struct gerr *err);
/*
 * Compares the latency distributions of two windows. Each window's histogram
 * stands for its samples: every request in a bucket is taken at the bucket's
 * midpoint (the mean of its bounds; the first bucket's lower bound is 0).
 * Requests in one bucket are then ties, which the tie correction handles;
 * the test stays conservative because coarse buckets can only hide a
 * difference, never invent one.
 */
int mwu_test_windows(const struct rev_window *canary, const struct rev_window *baseline,
		     enum mwu_alternative alt, struct mwu_result *out, struct gerr *err);

/* upper tail of the standard normal distribution, P(Z > z) */
double normal_sf(double z);

#endif
