#include "common.h"
#include "rollout/rolling.h"
#include <math.h>

int intpct_resolve(const struct intpct *v, int desired, bool round_up)
{
	double x;
	if (!v->is_pct)
		return v->value < 0 ? 0 : (int)v->value;
	x = v->value * desired / 100.0;
	return (int)(round_up ? ceil(x - 1e-9) : floor(x + 1e-9));
}

void rolling_plan(const struct rolling_counts *c, const struct strategy *s,
		  struct rolling_plan *out)
{
	int surge, unavail, min_avail, avail, old_unready;

	memset(out, 0, sizeof(*out));
	if (s->kind == STRATEGY_RECREATE) {
		/* everything old goes first; the target starts once nothing old runs */
		out->stop_old_ready = c->old_ready;
		out->stop_old_unready = c->old_total - c->old_ready;
		if (c->old_total == 0 && c->new_total < c->desired)
			out->start_new = c->desired - c->new_total;
		if (c->new_total > c->desired)
			out->stop_new = c->new_total - c->desired;
		out->done = c->old_total == 0 && c->new_ready >= c->desired && c->new_total == c->desired;
		return;
	}
	surge = intpct_resolve(&s->max_surge, c->desired, true);
	unavail = intpct_resolve(&s->max_unavailable, c->desired, false);
	if (surge == 0 && unavail == 0)
		surge = 1; /* as Kubernetes requires: something must give */
	if (unavail > c->desired)
		unavail = c->desired;
	min_avail = c->desired - unavail;

	/* start: up to desired, within desired + surge in total */
	if (c->new_total < c->desired) {
		int room = c->desired + surge - (c->new_total + c->old_total);
		int want = c->desired - c->new_total;
		out->start_new = MAX(0, MIN(want, room));
	}
	/* scale down of the target itself */
	if (c->new_total > c->desired)
		out->stop_new = c->new_total - c->desired;

	/* stop: unready old replicas serve nothing, stop them first */
	old_unready = c->old_total - c->old_ready;
	out->stop_old_unready = old_unready;
	/* ready old replicas may go while availability stays >= min_avail */
	avail = MIN(c->new_ready, c->desired) + c->old_ready;
	if (c->old_ready > 0 && avail > min_avail)
		out->stop_old_ready = MIN(c->old_ready, avail - min_avail);
	out->done = c->old_total == 0 && c->new_ready >= c->desired && c->new_total == c->desired;
}
