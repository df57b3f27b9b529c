/*
 * canary.h — the progressive rollout state machine (canary and blue-green),
 * pure: (state, config, event, now) -> (state, actions). The controller
 * persists the state (canary_state_to_json) after every transition, executes
 * the actions in order, and feeds events: a tick on every timer, the canary's
 * ready replica count, analysis verdicts, user commands and rollback_on
 * breaches. Time is an input; every timer is an absolute deadline in the
 * state, so a controller killed at any point resumes exactly where it was.
 *
 * Canary (Argo Rollouts with traffic routing): the stable revision keeps all
 * its replicas until promotion, so a rollback or an abort is only a route
 * change. Steps run in order:
 *   weight: N      scale the canary to ceil(N% of replicas) (at least 1, or
 *                  the last `replicas:` step), wait until that many are
 *                  ready, then route N% to it
 *   replicas: N    scale the canary to N from now on (whatever the weight)
 *   match: {...}   route requests with these headers to the canary
 *   pause: D       wait D (a deadline); pause: {} waits for `resume`
 *   analysis: A    run analysis A; successful -> next step, failed ->
 *                  rollback, inconclusive -> pause, error -> on_error
 * After the last step (or `resume --full` / promote): scale the canary to
 * full size, wait until ready, route 100% to it (promote), complete.
 * rollback_on stays armed for `watch` after completion: a breach then rolls
 * back to the previous revision (kept warm for KEEP_PREVIOUS, a route change).
 * First deploy (no stable revision): straight to full size, then complete.
 *
 * Gates (windows, incident freezes) are re-checked before every traffic
 * increase: the controller feeds CE_GATE whenever their verdict changes.
 * While closed, a step that would raise the canary's weight, add a header
 * match or promote waits in RW_GATE at the weight it has (nothing else
 * stops: analyses, pauses and rollback_on go on); it goes on by itself once
 * the gate opens. A rollback or an abort is never held.
 *
 * Quorum (several proxies, docs/internals/fleet.md): the controller feeds
 * CE_QUORUM whenever the fleet goes below a quorum of reporting proxies
 * (why = "1 of 3 proxies reporting") or back to it (why NULL or ""). While
 * below, nothing that happens by the clock alone moves the rollout on: a
 * timed pause or a blue-green auto_promote_after that runs out, an
 * automatic promotion, and the end of a watch are held (st->hold) until
 * the quorum is back, then they happen at once. A person's resume or
 * promote is never held. CA_HOLD / CA_HOLD_END say when a hold begins and
 * ends (for the event log).
 *
 * Blue-green: the new revision starts at full size behind its preview tag;
 * once ready, pre_promotion_analysis runs; then (after auto_promote_after, or
 * on `resume` when auto_promote is false) 100% switches at once; the previous
 * revision stays warm for keep_previous; post_promotion_analysis failing (or
 * a rollback_on breach within watch) switches back.
 *
 * Invariants (checked by fuzz/fuzz_canary.c over random event sequences):
 * every traffic split sums to 100; nothing ever scales the stable revision
 * down before promotion; a rolled-back or aborted rollout emits no action and
 * never changes again; a paused rollout does not progress on ticks; every
 * state round-trips through JSON.
 */
#ifndef GANTRY_ROLLOUT_CANARY_H
#define GANTRY_ROLLOUT_CANARY_H
#include "common.h"
#include "core/spec.h"
#include "rollout/analysis.h"

struct json_t;

/* how long a canary keeps the previous stable revision warm after promotion */
#define CANARY_KEEP_PREVIOUS_MS (10 * 60 * 1000LL)

enum rollout_phase {
	RP_PROGRESSING = 0,
	RP_PAUSED,       /* by a pause: {} step, a user, an inconclusive analysis or on_error: pause */
	RP_COMPLETE,     /* promoted; rollback_on may still be armed (watch) */
	RP_ROLLED_BACK,  /* terminal */
	RP_ABORTED,      /* terminal */
};

/* what the machine waits for */
enum rollout_wait {
	RW_NONE = 0,
	RW_READY,        /* canary ready replicas >= canary_replicas (weight step, blue-green preview) */
	RW_PAUSE,        /* pause step: until pause_until_ms, or resume when -1 */
	RW_ANALYSIS,     /* the verdict of analysis_slot */
	RW_PROMOTE_AT,   /* blue-green: auto promotion at pause_until_ms, or resume when -1 */
	RW_PROMOTING,    /* canary at full size getting ready before 100% */
	RW_POST,         /* blue-green: post-promotion analysis */
	RW_DONE,         /* complete */
	RW_GATE,         /* held before a traffic increase while a gate is closed (CE_GATE) */
};

/* what a fleet below quorum holds (canary_state.hold) */
enum rollout_hold {
	RH_NONE = 0,
	RH_TIMER,        /* a timed pause or auto_promote_after ran out: proceed when the quorum is back */
	RH_PROMOTE,      /* an automatic promotion: promote when the quorum is back */
	RH_WATCH,        /* the end of the watch: disarm when the quorum is back */
};

/* analysis slots: a step index (>= 0) or one of these */
#define SLOT_BACKGROUND (-1)
#define SLOT_PRE (-2)
#define SLOT_POST (-3)
#define SLOT_NONE (-100)

#define ROLLOUT_MSG_LEN 256
#define ROLLOUT_WHO_LEN 64

struct canary_state {
	enum strategy_kind kind;       /* STRATEGY_CANARY or STRATEGY_BLUEGREEN */
	int stable_revision;           /* serving before; 0 on a first deploy */
	int canary_revision;           /* the new revision */
	int previous_revision;         /* after promotion: the old stable (rollback target) */
	int replicas;                  /* full size (the stable's count, kept until promotion) */
	enum rollout_phase phase;
	enum rollout_wait wait;
	int step;                      /* current canary step; nsteps once all ran */
	int nsteps;
	int weight;                    /* canary's share of traffic, 0..100 */
	int canary_replicas;           /* desired canary replicas */
	int canary_ready;              /* last reported */
	int scale_override;            /* from a replicas: step; 0 none */
	int match_step;                /* step whose match: rules are routed; -1 none */
	bool step_done;                /* the current step finished while paused: advance on resume */
	bool promoted;
	int64_t started_ms;
	int64_t wait_since_ms;         /* when the current wait began */
	int64_t progress_deadline_ms;  /* absolute: waiting for ready replicas past it rolls back (one more ready starts it again); 0 none */
	int64_t pause_until_ms;        /* 0 none, -1 until resumed */
	int64_t pause_left_ms;         /* a timed wait interrupted by a user pause: what was left */
	int analysis_slot;             /* slot of the step/pre/post analysis running, or SLOT_NONE */
	bool background_running;
	int64_t watch_until_ms;        /* rollback_on armed until then (0: not armed after completion) */
	int64_t keep_previous_until_ms;/* previous revision warm until then (0: retired or none) */
	char message[ROLLOUT_MSG_LEN]; /* one line for status */
	char paused_by[ROLLOUT_WHO_LEN];
	bool gate_closed;              /* the last CE_GATE said closed: no traffic increase */
	bool gate_then_promote;        /* RW_GATE holds the promotion (else the current step) */
	char gate_reason[ROLLOUT_MSG_LEN];
	bool quorum_low;               /* the last CE_QUORUM said fewer than a quorum of proxies report */
	char quorum_reason[ROLLOUT_MSG_LEN]; /* its why ("1 of 3 proxies reporting") */
	enum rollout_hold hold;        /* what the missing quorum holds now */
	bool promote_ordered;          /* a person ordered the promotion (resume --full, promote): not held */
};

enum canary_event_kind {
	CE_TICK = 0,
	CE_CANARY_READY,     /* ready = canary replicas ready now */
	CE_ANALYSIS_VERDICT, /* slot, verdict, reason */
	CE_PAUSE,            /* who, why */
	CE_RESUME,           /* who, full */
	CE_ABORT,            /* who, why */
	CE_BREACHED,         /* why = the rollback_on condition's description */
	CE_PROMOTE,          /* who: like resume --full */
	CE_GATE,             /* why = why a gate (window, freeze) is closed now; NULL or "" = open */
	CE_QUORUM,           /* why = "R of N proxies reporting" while below a quorum; NULL or "" = quorum */
};

struct canary_event {
	enum canary_event_kind kind;
	int ready;
	int slot;
	enum analysis_phase verdict;
	const char *who;     /* borrowed, may be NULL */
	const char *why;     /* borrowed, may be NULL */
	bool full;
	/*
	 * CE_ANALYSIS_VERDICT: the flag the failed analysis names (flag_off:)
	 * when it is not off yet (borrowed, NULL or "": none, or already off).
	 * A failure then turns it off (CA_FLAG_OFF) and pauses instead of
	 * rolling back; a failure with the flag already off rolls back.
	 */
	const char *flag_off;
};

enum canary_action_kind {
	CA_SET_TRAFFIC = 0,  /* traffic[0..ntraffic), headers (route to canary), preview tag */
	CA_SCALE_CANARY,     /* replicas */
	CA_START_ANALYSIS,   /* analysis (name), slot */
	CA_STOP_ANALYSIS,    /* slot (SLOT_NONE: every analysis of this rollout) */
	CA_PROMOTE,          /* stable := canary revision (traffic already 100% on it) */
	CA_ROLLBACK,         /* revision = the one now taking 100%; reason */
	CA_PAUSE,            /* reason */
	CA_COMPLETE,         /* reason */
	CA_RETIRE_PREVIOUS,  /* revision: the previous stable may be stopped now */
	CA_DISARM,           /* rollback_on is no longer watched for this rollout */
	CA_FLAG_OFF,         /* flag: turn it off in the rollout's environment; analysis (its name), reason */
	CA_HOLD,             /* reason: a step held while the fleet is below quorum */
	CA_HOLD_END,         /* reason: the hold is over (quorum back, a person decided, or the rollout ended) */
};

struct traffic_split {
	int revision;
	int weight;
};

struct canary_action {
	enum canary_action_kind kind;
	struct traffic_split traffic[2];
	size_t ntraffic;
	/* requests matching any of these go to the canary (borrowed from the config) */
	const struct header_match *headers;      /* strategy.canary.match */
	size_t nheaders;
	const struct header_match *step_headers; /* the current match: step */
	size_t nstep_headers;
	const char *preview_tag;            /* borrowed; blue-green preview of the canary revision */
	int revision;
	int replicas;
	const char *analysis;               /* borrowed from the config */
	int slot;
	char flag[64];                      /* CA_FLAG_OFF */
	char reason[ROLLOUT_MSG_LEN];
};

#define CANARY_MAX_ACTIONS 24

struct canary_actions {
	struct canary_action a[CANARY_MAX_ACTIONS];
	size_t n;
};

const char *rollout_phase_name(enum rollout_phase p);
const char *canary_action_name(enum canary_action_kind k);

/*
 * Starts the rollout of canary_revision (config cfg, borrowed: the new
 * revision's) over stable_revision (0: none) running `replicas` replicas.
 * st is the caller's storage. Returns -1 with err for a config that cannot
 * drive a rollout (not canary/bluegreen, an analysis name that does not
 * exist).
 */
int canary_start(struct canary_state *st, const struct svc_config *cfg, int stable_revision,
		 int canary_revision, int replicas, int64_t now, struct canary_actions *out, struct gerr *err);
/* one event; out is reset and filled. Pure. */
void canary_step(struct canary_state *st, const struct svc_config *cfg, const struct canary_event *ev,
		 int64_t now, struct canary_actions *out);
/* the next deadline the controller must tick at (absolute ms), or INT64_MAX */
int64_t canary_next_deadline(const struct canary_state *st);
/* true while rollback_on must be evaluated */
bool canary_armed(const struct canary_state *st, int64_t now);
/* the analysis definition called name in cfg, or NULL (borrowed) */
const struct analysis_def *rollout_find_analysis(const struct svc_config *cfg, const char *name);

struct json_t *canary_state_to_json(const struct canary_state *st); /* new reference */
int canary_state_from_json(struct canary_state *st, const struct json_t *j, struct gerr *err);

#endif
