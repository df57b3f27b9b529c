/*
 * fuzz_counters.c — the --counters-from file (src/proxy/metrics.c,
 * metrics_carry_parse): any bytes either give revisions or an error naming
 * where, and nothing in between (a refused file leaves no revision); the
 * revisions it gives are within the bounds (CARRY_MAX_*), sorted, each
 * once. Seeding is not exercised here: series are never freed by design.
 */
#include "common.h"
#include "proxy/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_counters(const struct series_sum *c)
{
	BUG_ON(c->requests > CARRY_MAX_COUNT || c->latency_sum_us > CARRY_MAX_COUNT ||
	       c->bytes_in > CARRY_MAX_COUNT || c->bytes_out > CARRY_MAX_COUNT ||
	       c->upstream_errors > CARRY_MAX_COUNT || c->inflight);
	for (int i = 0; i < 6; i++)
		BUG_ON(c->status[i] > CARRY_MAX_COUNT);
	for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++)
		BUG_ON(c->latency[i] > CARRY_MAX_COUNT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct metrics_carry c;
	struct gerr err = { { 0 } };

	if (size > 1 << 16)
		return 0;
	if (metrics_carry_parse((const char *)data, size, &c, &err) < 0) {
		BUG_ON(!err.msg[0]);
		BUG_ON(c.n || c.revs);
		return 0;
	}
	BUG_ON(c.n > CARRY_MAX_REVISIONS);
	BUG_ON(strlen(c.epoch) > 16);
	for (size_t i = 0; i < c.n; i++) {
		const struct carry_rev *r = &c.revs[i];
		BUG_ON(!r->service || !r->environment || !r->revision);
		BUG_ON(strlen(r->service) > CARRY_MAX_NAME || strlen(r->environment) > CARRY_MAX_NAME ||
		       strlen(r->revision) > CARRY_MAX_NAME);
		check_counters(&r->c);
		if (i) {
			const struct carry_rev *p = &c.revs[i - 1];
			int k = strcmp(p->service, r->service);
			if (!k)
				k = strcmp(p->environment, r->environment);
			if (!k)
				k = strcmp(p->revision, r->revision);
			BUG_ON(k >= 0); /* sorted, each once */
		}
	}
	metrics_carry_release(&c);
	BUG_ON(c.n || c.revs);
	return 0;
}
