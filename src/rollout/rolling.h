/*
 * rolling.h — the rolling-update planner: pure, time-free, unit-tested.
 *
 * Given how many replicas of the target revision exist and are ready, and
 * how many of other (old) revisions exist and are ready, it says how many
 * target replicas to start and how many old ones to stop now. Called on
 * every reconcile tick, so the rollout resumes from whatever state a crash
 * left (Kubernetes' Deployment controller works the same way).
 */
#ifndef GANTRY_ROLLOUT_ROLLING_H
#define GANTRY_ROLLOUT_ROLLING_H
#include "common.h"
#include "core/spec.h"

struct rolling_counts {
	int desired;       /* replicas of the target wanted */
	int new_total;     /* target replicas alive or starting (not draining) */
	int new_ready;
	int old_total;     /* other revisions' replicas not yet draining */
	int old_ready;
};

struct rolling_plan {
	int start_new;     /* start this many target replicas */
	int stop_old_unready; /* stop this many old replicas that are not ready (first) */
	int stop_old_ready;   /* then this many ready old replicas */
	int stop_new;      /* scale down: excess target replicas */
	bool done;         /* target fully ready, nothing old left */
};

/* resolves an int-or-percent against desired: surge rounds up, unavailable down */
int intpct_resolve(const struct intpct *v, int desired, bool round_up);

void rolling_plan(const struct rolling_counts *c, const struct strategy *s,
		  struct rolling_plan *out);

#endif
