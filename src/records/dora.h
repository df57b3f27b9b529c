/*
 * dora.h — the four DORA figures of one service environment over a period
 * (pure; the exact definitions are in docs/internals/records.md):
 *
 *   deployment frequency   successful deploys (kind deploy or promote; not
 *                          rollbacks or restarts) in the period, and per day
 *   lead time for changes  commit time of the deployed git SHA -> the rollout
 *                          completed (serving in full); median and p90 over
 *                          the successful deploys whose commit time is known
 *   change failure rate    failed changes / finished deploys. A deploy failed
 *                          when its rollout failed or was rolled back, or when,
 *                          within `window` seconds after it completed and
 *                          before the next deploy completed, a rollback away
 *                          from it started, an emergency deploy (hotfix)
 *                          started, or an incident for it was opened
 *   time to restore        per failure: from its detection (the rollout's end
 *                          for a failed or rolled-back rollout, else the start
 *                          of the rollback/hotfix or the incident's opening)
 *                          to healthy again (the incident's close for a failure
 *                          found by an incident, else the next rollout that
 *                          completed; a rollout rolled back automatically left
 *                          the previous revision serving: 0); median over the
 *                          restored failures
 */
#ifndef GANTRY_RECORDS_DORA_H
#define GANTRY_RECORDS_DORA_H
#include "common.h"

struct json_t;

/* times in unix milliseconds: rollouts follow each other within a second */
struct dora_rollout {
	int64_t started_at, ended_at;  /* ended_at 0 = still running */
	char kind[16];                 /* deploy | promote | rollback | restart | restore (a release's
	                                * own rollback: only healthy again at its end) */
	char result[16];               /* succeeded | failed | rolled_back | superseded | running */
	bool emergency;
	int64_t commit_time;           /* ms; 0 = unknown */
};

struct dora_incident {
	int64_t opened_at, closed_at;  /* ms; closed_at 0 = open */
};

struct dora_figures {
	int deployments;               /* successful deploys */
	double per_day;
	int finished;                  /* deploys that finished (succeeded, failed, rolled back) */
	int failures;
	double change_failure_rate;    /* failures / finished; -1 when nothing finished */
	int lead_samples;
	int64_t lead_median, lead_p90; /* seconds; -1 unknown */
	int restored;
	int64_t restore_median;        /* seconds; -1 unknown */
	int unrestored;                /* failures not restored yet */
};

/*
 * rollouts sorted by started_at (oldest first), all of one service
 * environment, inside [since, until] (ms); incidents that concern it. window:
 * the ms after a deploy within which a rollback, hotfix or incident counts
 * against it (default 24h when 0). The figures are in seconds.
 */
void dora_compute(const struct dora_rollout *r, size_t n, const struct dora_incident *inc, size_t ninc,
		  int64_t since, int64_t until, int64_t window, struct dora_figures *out);

/* the figures as JSON (new reference) */
struct json_t *dora_json(const struct dora_figures *f);

#endif
