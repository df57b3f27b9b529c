/*
 * stats.c — window helpers and the Mann-Whitney U test (see stats.h).
 */
#include "common.h"
#include "rollout/stats.h"
#include <math.h>

void window_merge(struct rev_window *dst, const struct rev_window *src)
{
	bool dst_empty = dst->start_ms == 0 && dst->end_ms == 0;

	if (dst_empty || src->start_ms < dst->start_ms)
		dst->start_ms = src->start_ms;
	if (dst_empty || src->end_ms > dst->end_ms)
		dst->end_ms = src->end_ms;
	dst->requests += src->requests;
	for (size_t i = 0; i < ARRAY_SIZE(dst->status); i++)
		dst->status[i] += src->status[i];
	for (size_t i = 0; i < METRIC_LATENCY_BUCKETS; i++)
		dst->latency[i] += src->latency[i];
	dst->bytes_in += src->bytes_in;
	dst->bytes_out += src->bytes_out;
}

uint64_t window_errors(const struct rev_window *w)
{
	return w->status[5] + w->status[0];
}

double window_error_rate(const struct rev_window *w)
{
	uint64_t e = window_errors(w);

	if (!w->requests)
		return NAN;
	/* a producer bug must not give a rate above 1 */
	return e >= w->requests ? 1.0 : (double)e / (double)w->requests;
}

double window_availability(const struct rev_window *w)
{
	double e = window_error_rate(w);
	return isnan(e) ? NAN : 1.0 - e;
}

double window_request_rate(const struct rev_window *w)
{
	if (w->end_ms <= w->start_ms)
		return NAN;
	return (double)w->requests * 1000.0 / (double)(w->end_ms - w->start_ms);
}

uint64_t window_latency_count(const struct rev_window *w)
{
	uint64_t n = 0;
	for (size_t i = 0; i < METRIC_LATENCY_BUCKETS; i++)
		n += w->latency[i];
	return n;
}

static double bucket_lower_ms(size_t i)
{
	return i ? (double)METRIC_LATENCY_BOUNDS_US[i - 1] / 1000.0 : 0.0;
}

static double bucket_upper_ms(size_t i)
{
	return (double)METRIC_LATENCY_BOUNDS_US[i] / 1000.0;
}

double window_quantile(const struct rev_window *w, double q)
{
	uint64_t total = window_latency_count(w);
	double rank, cum = 0;

	if (!total || isnan(q))
		return NAN;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	rank = q * (double)total;
	for (size_t i = 0; i < METRIC_LATENCY_BUCKETS; i++) {
		double c = (double)w->latency[i];
		if (!w->latency[i])
			continue;
		if (cum + c >= rank) {
			double lo = bucket_lower_ms(i), hi = bucket_upper_ms(i);
			return lo + (hi - lo) * ((rank - cum) / c);
		}
		cum += c;
	}
	/* rounding: rank a hair above the total */
	for (size_t i = METRIC_LATENCY_BUCKETS; i-- > 0;)
		if (w->latency[i])
			return bucket_upper_ms(i);
	return NAN;
}

double normal_sf(double z)
{
	return 0.5 * erfc(z / M_SQRT2);
}

/* ------------------------------------------------------------------------ */
/* Mann-Whitney U                                                           */

struct wsample {
	double v, w;
	bool is_x;
};

static int cmp_wsample(const void *a, const void *b)
{
	const struct wsample *x = a, *y = b;
	return (x->v > y->v) - (x->v < y->v);
}

int mwu_test_weighted(const double *xv, const double *xw, size_t nx, const double *yv, const double *yw,
		      size_t ny, enum mwu_alternative alt, struct mwu_result *out, struct gerr *err)
{
	struct wsample *s = NULL;
	size_t n = 0, i = 0;
	double n1 = 0, n2 = 0, r1 = 0, ties = 0, rank_base = 0, N, mu, var, u1, u2, u, z, p;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (nx > SIZE_MAX / 2 / sizeof(*s) || ny > SIZE_MAX / 2 / sizeof(*s)) {
		gerr_set(err, "mann-whitney: too many samples");
		goto out;
	}
	s = xcalloc(nx + ny + 1, sizeof(*s));
	for (size_t k = 0; k < nx + ny; k++) {
		bool isx = k < nx;
		double v = isx ? xv[k] : yv[k - nx];
		double w = isx ? (xw ? xw[k] : 1.0) : (yw ? yw[k - nx] : 1.0);
		if (!isfinite(v) || !isfinite(w) || w < 0) {
			gerr_set(err, "mann-whitney: sample %zu of the %s is not a finite value with a weight >= 0",
				 isx ? k : k - nx, isx ? "canary" : "baseline");
			goto out;
		}
		if (w == 0)
			continue;
		s[n].v = v;
		s[n].w = w;
		s[n].is_x = isx;
		n++;
		if (isx)
			n1 += w;
		else
			n2 += w;
	}
	if (n1 <= 0 || n2 <= 0) {
		gerr_set(err, "mann-whitney: the %s has no samples", n1 <= 0 ? "canary" : "baseline");
		goto out;
	}
	qsort(s, n, sizeof(*s), cmp_wsample);
	/* ranks: a group of equal values (total weight t) shares the mean rank */
	while (i < n) {
		size_t j = i;
		double t = 0, tx = 0, mid;
		while (j < n && s[j].v == s[i].v) {
			t += s[j].w;
			if (s[j].is_x)
				tx += s[j].w;
			j++;
		}
		mid = rank_base + (t + 1) / 2;
		r1 += tx * mid;
		ties += t * t * t - t;
		rank_base += t;
		i = j;
	}
	N = n1 + n2;
	u1 = r1 - n1 * (n1 + 1) / 2;
	u2 = n1 * n2 - u1;
	mu = n1 * n2 / 2;
	var = n1 * n2 / 12 * ((N + 1) - (N > 1 ? ties / (N * (N - 1)) : 0));
	out->u = u1;
	out->nx = n1;
	out->ny = n2;
	if (!(var > 0)) {
		/* every value tied: no evidence either way */
		out->z = 0;
		out->p = 1;
		ret = 0;
		goto out;
	}
	u = alt == MWU_TWO_SIDED ? MAX(u1, u2) : u1;
	z = (u - mu - 0.5) / sqrt(var);
	p = normal_sf(z);
	if (alt == MWU_TWO_SIDED)
		p *= 2;
	out->z = z;
	out->p = p > 1 ? 1 : p < 0 ? 0 : p;
	ret = 0;
out:
	free(s);
	return ret;
}

int mwu_test(const double *x, size_t nx, const double *y, size_t ny, enum mwu_alternative alt,
	     struct mwu_result *out, struct gerr *err)
{
	return mwu_test_weighted(x, NULL, nx, y, NULL, ny, alt, out, err);
}

static void window_samples(const struct rev_window *w, double *v, double *c)
{
	for (size_t i = 0; i < METRIC_LATENCY_BUCKETS; i++) {
		v[i] = (bucket_lower_ms(i) + bucket_upper_ms(i)) / 2;
		c[i] = (double)w->latency[i];
	}
}

int mwu_test_windows(const struct rev_window *canary, const struct rev_window *baseline,
		     enum mwu_alternative alt, struct mwu_result *out, struct gerr *err)
{
	double cv[METRIC_LATENCY_BUCKETS], cw[METRIC_LATENCY_BUCKETS];
	double bv[METRIC_LATENCY_BUCKETS], bw[METRIC_LATENCY_BUCKETS];

	window_samples(canary, cv, cw);
	window_samples(baseline, bv, bw);
	return mwu_test_weighted(cv, cw, METRIC_LATENCY_BUCKETS, bv, bw, METRIC_LATENCY_BUCKETS, alt, out, err);
}
