/*
 * dora.c — DORA figures from a list of rollouts and incidents (dora.h).
 */
#include "common.h"
#include "records/dora.h"
#include <jansson.h>

static bool is_deploy(const struct dora_rollout *r)
{
	return !strcmp(r->kind, "deploy") || !strcmp(r->kind, "promote");
}

static bool succeeded(const struct dora_rollout *r)
{
	return !strcmp(r->result, "succeeded");
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* the q-quantile (0..1) of v[0..n) by nearest rank; sorts v */
static int64_t quantile(int64_t *v, size_t n, double q)
{
	size_t k;
	if (!n)
		return -1;
	qsort(v, n, sizeof(*v), cmp64);
	if (q == 0.5 && n % 2 == 0)
		return (v[n / 2 - 1] + v[n / 2]) / 2;
	k = (size_t)(q * (double)n + 0.999999);
	return v[k ? k - 1 : 0];
}

/* the first completed rollout after index i ending at or after t: 0 when none */
static int64_t healthy_after(const struct dora_rollout *r, size_t n, size_t i, int64_t t)
{
	for (size_t j = i + 1; j < n; j++)
		if (succeeded(&r[j]) && r[j].ended_at >= t)
			return r[j].ended_at;
	return 0;
}

void dora_compute(const struct dora_rollout *r, size_t n, const struct dora_incident *inc, size_t ninc,
		  int64_t since, int64_t until, int64_t window, struct dora_figures *f)
{
	int64_t *lead = xcalloc(n + 1, sizeof(*lead)), *restore = xcalloc(n + 1, sizeof(*restore));
	size_t nlead = 0, nrestore = 0;
	double days = (double)(until - since) / 86400000.0;

	memset(f, 0, sizeof(*f));
	if (window <= 0)
		window = 86400000;
	for (size_t i = 0; i < n; i++) {
		const struct dora_rollout *d = &r[i];
		int64_t det = 0, healthy = 0, inc_closed = -1;
		if (!is_deploy(d) || d->started_at < since || d->started_at > until)
			continue;
		if (succeeded(d)) {
			int64_t limit = d->ended_at + window;
			f->deployments++;
			f->finished++;
			if (d->commit_time > 0 && d->ended_at >= d->commit_time)
				lead[nlead++] = d->ended_at - d->commit_time;
			for (size_t j = i + 1; j < n; j++) {
				if (is_deploy(&r[j]) && succeeded(&r[j]) && !r[j].emergency) {
					limit = MIN(limit, r[j].ended_at);
					break;
				}
			}
			for (size_t j = i + 1; j < n && !det; j++) {
				if (r[j].started_at < d->ended_at || r[j].started_at > limit)
					continue;
				if (!strcmp(r[j].kind, "rollback") || (is_deploy(&r[j]) && r[j].emergency))
					det = r[j].started_at;
			}
			for (size_t k = 0; k < ninc; k++) {
				if (inc[k].opened_at < d->ended_at || inc[k].opened_at > limit || (det && inc[k].opened_at >= det))
					continue;
				det = inc[k].opened_at;
				inc_closed = inc[k].closed_at;
			}
			if (!det)
				continue;
			/* an incident is restored when it is closed; a rollback or hotfix when it completed */
			healthy = inc_closed >= 0 ? inc_closed : healthy_after(r, n, i, det);
		} else if (!strcmp(d->result, "failed") || !strcmp(d->result, "rolled_back")) {
			f->finished++;
			det = d->ended_at ? d->ended_at : d->started_at;
			/* rolled back: the previous revision kept serving, restored at once */
			healthy = !strcmp(d->result, "rolled_back") ? det : healthy_after(r, n, i, det);
		} else {
			continue; /* superseded or still running: neither success nor failure */
		}
		f->failures++;
		if (healthy)
			restore[nrestore++] = healthy - det;
		else
			f->unrestored++;
	}
	f->per_day = days > 0 ? (double)f->deployments / days : 0;
	f->change_failure_rate = f->finished ? (double)f->failures / (double)f->finished : -1;
	f->lead_samples = (int)nlead;
	f->lead_median = quantile(lead, nlead, 0.5);
	f->lead_p90 = quantile(lead, nlead, 0.9);
	f->restored = (int)nrestore;
	f->restore_median = quantile(restore, nrestore, 0.5);
	/* ms to seconds, rounded */
	if (f->lead_median >= 0)
		f->lead_median = (f->lead_median + 500) / 1000;
	if (f->lead_p90 >= 0)
		f->lead_p90 = (f->lead_p90 + 500) / 1000;
	if (f->restore_median >= 0)
		f->restore_median = (f->restore_median + 500) / 1000;
	free(lead);
	free(restore);
}

static json_t *secs_or_null(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

json_t *dora_json(const struct dora_figures *f)
{
	return json_pack("{s:{s:i, s:f}, s:{s:i, s:o, s:o}, s:{s:i, s:i, s:o}, s:{s:i, s:i, s:o}}",
			 "deployment_frequency", "deployments", f->deployments, "per_day", f->per_day,
			 "lead_time", "samples", f->lead_samples, "median_seconds", secs_or_null(f->lead_median),
			 "p90_seconds", secs_or_null(f->lead_p90),
			 "change_failure_rate", "failures", f->failures, "finished", f->finished, "rate",
			 f->change_failure_rate < 0 ? json_null() : json_real(f->change_failure_rate),
			 "time_to_restore", "restored", f->restored, "unrestored", f->unrestored, "median_seconds",
			 secs_or_null(f->restore_median));
}
