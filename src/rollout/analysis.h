/*
 * analysis.h — one run of a named analysis (spec: services.S.analysis.NAME,
 * analysis_templates.NAME), as a pure object: the controller takes the
 * measurements (builtin from the proxy's windows, or a provider's number,
 * see rollout/provider.h) every `interval` and feeds them round by round;
 * the run answers with its verdict and a one-line reason.
 *
 * Semantics (Argo Rollouts' AnalysisRun, see docs/internals/rollout.md):
 *  - first round at start + initial_delay, then every interval; `count`
 *    rounds (0: until analysis_run_stop, i.e. the step ends);
 *  - a measurement is successful, failed (the fail_if condition is
 *    breached), inconclusive (no data, fewer than min_requests, or too few
 *    samples for the statistical test) or error (it could not be taken);
 *  - a metric fails when failures > failure_limit (default 0: the first
 *    failure fails), is inconclusive when inconclusives > inconclusive_limit
 *    (default 0), errors when consecutive errors > error_limit (default 4);
 *  - the run ends at once when a metric fails (failed), errors (error) or is
 *    inconclusive (inconclusive); it is successful when every round ran (or
 *    it was stopped) without that. The rollout then: failed -> rollback,
 *    inconclusive -> pause for a person, error -> on_error (pause|rollback).
 *  - compare: baseline with method: mann-whitney fails only when BOTH the
 *    one-sided Mann-Whitney U test says the canary's latency is greater than
 *    the baseline's at `confidence` (p < 1 - confidence) AND the fail_if
 *    condition holds on the two values (e.g. p95 > 1.10x baseline): the
 *    difference must be real and large enough. Fewer than 8 samples per
 *    side (or min_requests) is inconclusive.
 */
#ifndef GANTRY_ROLLOUT_ANALYSIS_H
#define GANTRY_ROLLOUT_ANALYSIS_H
#include "common.h"
#include "core/spec.h"
#include "core/condition.h"
#include "http/window.h"

struct json_t;

enum analysis_phase { AN_RUNNING = 0, AN_SUCCESSFUL, AN_FAILED, AN_INCONCLUSIVE, AN_ERROR };
enum meas_phase { MEAS_SUCCESSFUL = 0, MEAS_FAILED, MEAS_INCONCLUSIVE, MEAS_ERROR };

const char *analysis_phase_name(enum analysis_phase p);
int analysis_phase_from_name(const char *s);
const char *meas_phase_name(enum meas_phase p);

#define MEASUREMENT_MSG_LEN 200

struct measurement {
	int64_t t_ms;
	int round;                  /* 1-based */
	size_t metric;              /* index into the analysis' metrics */
	enum meas_phase phase;
	double value, baseline;     /* NAN when none */
	double p;                   /* Mann-Whitney p-value, else NAN */
	char msg[MEASUREMENT_MSG_LEN]; /* one line: "error_rate 7.3% > 0.1% (canary revision 42)" */
};

/* one metric's measurement for a round, as the controller took it */
struct analysis_input {
	const char *error;          /* non-NULL: could not be measured, why (borrowed) */
	double value;               /* in the metric's base unit; NAN: no data */
	double baseline;            /* for baseline comparisons; NAN: no data */
	uint64_t requests, baseline_requests;
	const struct rev_window *canary_window;   /* mann-whitney: borrowed, may be NULL */
	const struct rev_window *baseline_window;
	/* non-NULL: a pass is not to be trusted (fewer than a quorum of the
	 * fleet's proxies reported: docs/internals/fleet.md), why (borrowed): a
	 * measurement that would succeed is inconclusive; a failure stays one */
	const char *no_pass;
};

/* the value of a builtin metric computed from a window (restarts, ready_ratio: NAN, the controller knows them) */
double builtin_metric_value(enum cond_metric m, const struct rev_window *w);
/* fills in from the windows of the canary and of the baseline (either may be NULL); windows borrowed */
void analysis_input_from_windows(struct analysis_input *in, enum cond_metric m, const struct rev_window *canary,
				 const struct rev_window *baseline);

struct analysis_metric_state {
	struct cond_eval eval;      /* the parsed fail_if and its for-window */
	int measured, successes, failures, inconclusives, errors, consecutive_errors;
	enum analysis_phase phase;
	char reason[256];           /* why it ended, once phase is not running */
};

#define ANALYSIS_KEEP_ROUNDS 2

struct analysis_run {
	struct analysis_def def;    /* a deep copy */
	int revision;               /* the revision under analysis (for messages) */
	int64_t started_ms, next_ms;
	int rounds;
	enum analysis_phase phase;
	char reason[256];
	struct analysis_metric_state *m; /* def.nmetrics */
	/* the newest measurements, a ring of ANALYSIS_KEEP_ROUNDS rounds (one per
	 * metric each): the controller stores every measurement as soon as a
	 * round is taken, so older ones are read from the store, not from here;
	 * nmeas counts all ever taken */
	struct measurement *meas;   /* meas_cap of them; owned */
	size_t meas_cap;
	uint64_t nmeas;
	uint64_t first_kept;        /* measurements before it are not in the ring (restored runs) */
};

/*
 * Starts a run of def (copied) at now, into r (caller's storage; release
 * with analysis_run_release). -1 with err when a metric's condition does not
 * parse (spec validation prevents that) or def has no metric.
 */
int analysis_run_init(struct analysis_run *r, const struct analysis_def *def, int revision, int64_t now,
		      struct gerr *err);
void analysis_run_release(struct analysis_run *r);
/* when the next round is due (absolute ms); INT64_MAX once the run is over */
int64_t analysis_run_next_due(const struct analysis_run *r);
/* one round: inputs[i] for metric i (def.nmetrics of them, borrowed); returns the phase */
enum analysis_phase analysis_run_round(struct analysis_run *r, int64_t now, const struct analysis_input *inputs);
/* the step ended: a run still running without a verdict is successful */
enum analysis_phase analysis_run_stop(struct analysis_run *r, int64_t now);
/* measurement number i (0-based, over all ever taken); NULL once it left the ring */
const struct measurement *analysis_run_measurement(const struct analysis_run *r, uint64_t i);

/* persistence: counters, deadlines and for-window state (not the measurements: the controller stores those) */
struct json_t *analysis_run_to_json(const struct analysis_run *r); /* new reference */
/* restores r from j for def (which must be the definition it was started with) */
int analysis_run_from_json(struct analysis_run *r, const struct analysis_def *def, const struct json_t *j,
			   struct gerr *err);
struct json_t *measurement_to_json(const struct measurement *m, const struct analysis_run *r); /* new reference */

#endif
