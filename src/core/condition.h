/*
 * condition.h — the condition language of analyses and rollback_on, in the
 * runbooks' words:
 *
 *   error_rate > 0.1%              latency_p99 > 500ms
 *   error_rate > 5% for 2m         availability < 99% for 1m
 *   restarts > 5 in 5m             ready_ratio < 50% for 30s
 *   latency_p95 > 1.10x baseline   error_rate > baseline + 1%
 *   memory > 85%                   cpu > 90% for 5m
 *
 *   condition := METRIC OP RHS [ (for | in) DURATION ]
 *   METRIC    := error_rate | availability | request_rate | restarts | ready_ratio
 *              | latency_p50 | latency_p90 | latency_p95 | latency_p99
 *              | memory | cpu
 *              | value (a provider's number, no unit)
 *   OP        := > | >= | < | <=
 *   RHS       := VALUE | FACTOR x baseline | baseline [(+|-) VALUE]
 *   VALUE     := a number with the metric's unit: % for error_rate,
 *                availability, ready_ratio, memory and cpu; ms or s for
 *                latencies; none for request_rate (per second), restarts
 *                and value. A percentage is at most 100%, except cpu's
 *                (a replica without a CPU limit is measured against one
 *                core, and may use several)
 *
 * A condition says when something is WRONG: it "holds" on a bad value.
 * Values inside gantry are in the metric's base unit: fractions (0.05 for
 * 5%), milliseconds, requests per second, restart counts.
 *
 * `for D`: breached once the condition has held on every sample for D:
 * the first sample of the current unbroken run of holding samples is at
 * least D before the newest one. A sample that does not hold, a sample
 * without data, or a gap between samples longer than max_gap_ms (when set)
 * breaks the run. No `for` (or `for 0s`): breached on the first holding sample.
 *
 * `in D` (restarts only): restarts samples carry the revision's cumulative
 * restart count; the condition compares the increase within the last D (since
 * the newest sample at or before now - D, or since the first sample when
 * there is none that old). Without `in`, restarts compares the total. The
 * evaluator keeps at most COND_COUNT_POINTS changes of the counter; past that
 * the oldest ones merge, which can only overestimate the count (a crash loop
 * is never missed).
 *
 * memory and cpu are the revision's replicas' usage (src/daemon/usage.h): the
 * highest over its replicas of memory in use as a fraction of the memory
 * limit, and of CPU used as a fraction of the CPU limit (of one core when
 * there is none). A revision whose replicas have no memory limit has no
 * memory value: "no data", inconclusive (docs/internals/runtime.md).
 *
 * min_requests: a sample of error_rate, availability or a latency backed by
 * fewer requests (on the canary, and on the baseline for a baseline
 * comparison) is "no data": inconclusive, neither pass nor fail.
 *
 * Pure: no I/O, no clock (time is in the samples).
 */
#ifndef GANTRY_CORE_CONDITION_H
#define GANTRY_CORE_CONDITION_H
#include "common.h"

#define CONDITION_MAX_LEN 256

enum cond_metric {
	CM_ERROR_RATE,
	CM_AVAILABILITY,
	CM_REQUEST_RATE,
	CM_LATENCY_P50,
	CM_LATENCY_P90,
	CM_LATENCY_P95,
	CM_LATENCY_P99,
	CM_RESTARTS,
	CM_READY_RATIO,
	CM_VALUE,        /* a provider's plain number (prometheus, http, command) */
	CM_MEMORY,       /* memory in use / its limit, the revision's highest replica */
	CM_CPU,          /* CPU used / its limit (one core without one), highest replica */
	CM__COUNT
};

enum cond_op { CO_GT, CO_GE, CO_LT, CO_LE };
enum cond_rhs { CR_VALUE, CR_BASELINE_RATIO, CR_BASELINE_DELTA };
enum cond_window { CW_NONE, CW_FOR, CW_IN };

struct condition {
	enum cond_metric metric;
	enum cond_op op;
	enum cond_rhs rhs;
	double value;          /* VALUE: threshold; RATIO: the factor; DELTA: signed delta (base unit) */
	enum cond_window window;
	int64_t window_ms;
	char text[CONDITION_MAX_LEN + 1];  /* as written */
	char threshold_text[64];           /* the right-hand side as written ("5%", "1.10x baseline") */
	char window_text[32];              /* "2m" */
};

/* "error_rate", ...; NULL for a bad value */
const char *cond_metric_name(enum cond_metric m);
/* -1 when unknown */
int cond_metric_from_name(const char *name);
/* the quantile of a latency metric (0.99 for latency_p99), else NAN */
double cond_metric_quantile(enum cond_metric m);
/* metrics whose samples need min_requests (error_rate, availability, latencies) */
bool cond_metric_needs_requests(enum cond_metric m);
/* formats a value of m in its unit as a person reads it ("7.3%", "612ms", "1.25s", "6") */
const char *cond_format_value(enum cond_metric m, double v, char *buf, size_t len);

/*
 * Parses s into *out (caller's storage). On a malformed condition returns
 * -1 with err like "col 17: expected a duration after 'for'" (columns are
 * 1-based byte offsets into s).
 */
int condition_parse(const char *s, struct condition *out, struct gerr *err);
/*
 * The same with parts implied by an analysis metric: when implied_metric >= 0
 * the metric may be left out ("> 0.1%" with query: error_rate); when
 * implied_baseline is set, "baseline" may be left out of a factor
 * ("> 1.10x" with compare: baseline).
 */
int condition_parse_implied(const char *s, int implied_metric, bool implied_baseline, struct condition *out,
			    struct gerr *err);

/* does the condition hold (the value is bad) on these values? NAN never holds */
bool condition_holds(const struct condition *c, double value, double baseline);

/* ------------------------------------------------------------------------ */
/* the evaluator                                                            */

enum cond_verdict {
	COND_NO_DATA,   /* too little data: inconclusive */
	COND_CLEAR,     /* does not hold */
	COND_HOLDS,     /* holds now, the for-window is not yet satisfied */
	COND_BREACHED,  /* holds and the window is satisfied: act */
};

const char *cond_verdict_name(enum cond_verdict v);

struct cond_sample {
	int64_t t_ms;
	double value;               /* the revision's (canary's) value in the base unit; NAN: no data */
	double baseline;            /* the stable revision's value (baseline comparisons); NAN: no data */
	uint64_t requests;          /* requests behind value */
	uint64_t baseline_requests; /* requests behind baseline */
};

#define COND_COUNT_POINTS 64

struct cond_eval {
	struct condition cond;   /* a copy */
	uint64_t min_requests;   /* default 0 */
	int64_t max_gap_ms;      /* a longer gap between samples breaks a run; 0: no limit */
	/* state */
	bool have_last;
	int64_t last_ms;
	enum cond_verdict last;
	double last_value;       /* compared value (for `in`: the count within the window) */
	double last_baseline;
	bool in_run;
	int64_t run_start_ms;
	/* `in`: the cumulative counter where it changed (bounded ring, oldest first) */
	struct {
		int64_t t_ms;
		double v;
	} pts[COND_COUNT_POINTS];
	size_t npts;
};

/* c is copied */
void cond_eval_init(struct cond_eval *e, const struct condition *c);
/* feeds one sample (older than the last one: ignored); returns the verdict now */
enum cond_verdict cond_eval_feed(struct cond_eval *e, const struct cond_sample *s);
/* when the current run of holding samples started, or -1 */
int64_t cond_eval_since(const struct cond_eval *e);
/*
 * One line for events: "error_rate 7.3% > 5% for 2m (canary revision 42)";
 * who is "canary" or "revision" etc.; revision <= 0 leaves the revision out.
 * Returns buf.
 */
const char *cond_eval_describe(const struct cond_eval *e, const char *who, int revision, char *buf, size_t len);

#endif
