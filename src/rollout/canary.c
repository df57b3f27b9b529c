/*
 * canary.c — the progressive rollout state machine (see canary.h).
 *
 * Each event runs in a context that collects what changed: traffic and the
 * canary's scale are marked dirty and emitted once, in a safe order, when
 * the event is done (scale up, then traffic, then scale down: traffic never
 * goes to replicas that do not exist yet, and replicas never go while they
 * still get traffic); other actions follow in the order they happened.
 */
#include "common.h"
#include "rollout/canary.h"
#include <inttypes.h>
#include <jansson.h>

#define MAX_PENDING 16

struct ctx {
	struct canary_state *st;
	const struct svc_config *cfg; /* borrowed */
	int64_t now;
	bool manual;                  /* a person's resume or promote: never held by the quorum */
	bool traffic_dirty;
	int scale_from;
	bool scale_dirty;
	struct canary_action pending[MAX_PENDING];
	size_t npending;
};

static const char *const phase_names[] = { "progressing", "paused", "complete", "rolled_back", "aborted" };
static const char *const wait_names[] = { "none", "ready", "pause", "analysis", "promote_at", "promoting", "post",
					  "done", "gate" };
static const char *const action_names[] = { "set_traffic", "scale_canary", "start_analysis", "stop_analysis",
					    "promote", "rollback", "pause", "complete", "retire_previous", "disarm",
					    "flag_off", "hold", "hold_end" };
static const char *const hold_names[] = { "none", "timer", "promote", "watch" };

const char *rollout_phase_name(enum rollout_phase p)
{
	return (unsigned)p < ARRAY_SIZE(phase_names) ? phase_names[p] : "?";
}

const char *canary_action_name(enum canary_action_kind k)
{
	return (unsigned)k < ARRAY_SIZE(action_names) ? action_names[k] : "?";
}

const struct analysis_def *rollout_find_analysis(const struct svc_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->nanalyses; i++)
		if (cfg->analyses[i].name && !strcmp(cfg->analyses[i].name, name))
			return &cfg->analyses[i];
	return NULL;
}

static bool terminal(const struct canary_state *st)
{
	return st->phase == RP_ROLLED_BACK || st->phase == RP_ABORTED;
}

/* a (the caller's) as an action of kind k and nothing else: no analysis slot */
static struct canary_action *action_init(struct canary_action *a, enum canary_action_kind k)
{
	memset(a, 0, sizeof(*a));
	a->kind = k;
	a->slot = SLOT_NONE;
	return a;
}

static struct canary_action *push(struct ctx *c, enum canary_action_kind k)
{
	/* bounded by construction: an event emits each kind a few times at most */
	BUG_ON(c->npending >= MAX_PENDING);
	return action_init(&c->pending[c->npending++], k);
}

static void message(struct ctx *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void message(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->st->message, sizeof(c->st->message), fmt, ap);
	va_end(ap);
}

static void scale(struct ctx *c, int n)
{
	if (n == c->st->canary_replicas)
		return;
	if (!c->scale_dirty)
		c->scale_from = c->st->canary_replicas;
	c->scale_dirty = true;
	c->st->canary_replicas = n;
	/* replicas going away are not ready any more, whatever the last report said */
	c->st->canary_ready = MIN(c->st->canary_ready, n);
}

static int replicas_for_weight(const struct canary_state *st, int w)
{
	int n;
	if (st->scale_override > 0)
		return st->scale_override;
	n = (int)(((int64_t)w * st->replicas + 99) / 100);
	return MAX(1, MIN(n, MAX(st->replicas, 1)));
}

static const struct canary_step *cur_step(const struct ctx *c)
{
	const struct canary_state *st = c->st;
	if (st->step < 0 || (size_t)st->step >= c->cfg->canary.nsteps)
		return NULL;
	return &c->cfg->canary.steps[st->step];
}

static void wait_for(struct ctx *c, enum rollout_wait w)
{
	struct canary_state *st = c->st;
	st->wait = w;
	st->wait_since_ms = c->now;
	st->progress_deadline_ms = 0;
	if ((w == RW_READY || w == RW_PROMOTING) && c->cfg->progress_deadline_ms > 0)
		st->progress_deadline_ms = c->now + c->cfg->progress_deadline_ms;
}

static void gate_message(struct ctx *c)
{
	struct canary_state *st = c->st;
	if (st->gate_then_promote)
		message(c, "held at %d%% before promotion: %s", st->weight, st->gate_reason);
	else
		message(c, "step %d/%d: held at %d%%: %s", st->step + 1, st->nsteps, st->weight, st->gate_reason);
}

/* true (and waiting in RW_GATE) when a closed gate holds the traffic increase
 * about to happen; a first deploy has nothing to protect and is never held */
static bool held(struct ctx *c, bool promotion)
{
	struct canary_state *st = c->st;
	if (!st->gate_closed || st->stable_revision == 0)
		return false;
	wait_for(c, RW_GATE);
	st->gate_then_promote = promotion;
	gate_message(c);
	return true;
}

static void hold_message(struct ctx *c)
{
	struct canary_state *st = c->st;
	switch (st->hold) {
	case RH_TIMER:
		if (st->wait == RW_PROMOTE_AT)
			message(c, "preview ready, switch due: holding: %s", st->quorum_reason);
		else
			message(c, "step %d/%d: pause over: holding: %s (weight %d%%)", st->step + 1, st->nsteps,
				st->quorum_reason, st->weight);
		return;
	case RH_PROMOTE:
		message(c, "before promotion at %d%%: holding: %s", st->weight, st->quorum_reason);
		return;
	case RH_WATCH:
		message(c, "promoted; watch over: holding: %s (rollback_on stays armed)", st->quorum_reason);
		return;
	case RH_NONE:
		return;
	}
}

/*
 * true (and holding `what`) when the fleet is below quorum and what the
 * clock alone would do now must wait for it; a person's command and a
 * first deploy's promotion (nothing to protect) are never held
 */
static bool quorum_holds(struct ctx *c, enum rollout_hold what)
{
	struct canary_state *st = c->st;
	if (!st->quorum_low || c->manual ||
	    (what == RH_PROMOTE && (st->stable_revision == 0 || st->promote_ordered)))
		return false;
	if (st->hold != what) {
		st->hold = what;
		hold_message(c);
		snprintf(push(c, CA_HOLD)->reason, ROLLOUT_MSG_LEN, "%s", st->message);
	}
	hold_message(c);
	return true;
}

/* the hold (if any) is over, for why */
static void unhold(struct ctx *c, const char *why)
{
	if (c->st->hold == RH_NONE)
		return;
	c->st->hold = RH_NONE;
	snprintf(push(c, CA_HOLD_END)->reason, ROLLOUT_MSG_LEN, "%s", why);
}

static void start_analysis(struct ctx *c, const char *name, int slot)
{
	struct canary_action *a = push(c, CA_START_ANALYSIS);
	a->analysis = name;
	a->slot = slot;
	a->revision = c->st->canary_revision;
}

static void stop_all_analyses(struct ctx *c)
{
	struct canary_state *st = c->st;
	if (st->analysis_slot != SLOT_NONE || st->background_running)
		push(c, CA_STOP_ANALYSIS)->slot = SLOT_NONE;
	st->analysis_slot = SLOT_NONE;
	st->background_running = false;
}

static void pause_now(struct ctx *c, const char *who, const char *reason)
{
	struct canary_state *st = c->st;
	if (st->phase != RP_PROGRESSING)
		return;
	unhold(c, "paused");
	st->phase = RP_PAUSED;
	snprintf(st->paused_by, sizeof(st->paused_by), "%s", who ? who : "");
	/* a running timer is frozen: what is left runs after the resume */
	if ((st->wait == RW_PAUSE || st->wait == RW_PROMOTE_AT) && st->pause_until_ms > 0) {
		st->pause_left_ms = MAX(st->pause_until_ms - c->now, 0);
		st->pause_until_ms = 0;
	}
	st->progress_deadline_ms = 0;
	message(c, "paused: %s", reason);
	snprintf(push(c, CA_PAUSE)->reason, ROLLOUT_MSG_LEN, "%s", reason);
}

static void complete(struct ctx *c, const char *why)
{
	struct canary_state *st = c->st;
	const struct svc_config *cfg = c->cfg;

	st->phase = RP_COMPLETE;
	st->wait = RW_DONE;
	st->progress_deadline_ms = 0;
	st->pause_until_ms = 0;
	if (cfg->nrollback_on && cfg->watch_ms > 0 && st->previous_revision > 0)
		st->watch_until_ms = c->now + cfg->watch_ms;
	message(c, "%s", why);
	snprintf(push(c, CA_COMPLETE)->reason, ROLLOUT_MSG_LEN, "%s", why);
	if (!st->watch_until_ms)
		push(c, CA_DISARM);
}

static void promote(struct ctx *c)
{
	struct canary_state *st = c->st;
	struct canary_action *a;
	int64_t keep = st->kind == STRATEGY_BLUEGREEN ? c->cfg->bluegreen.keep_previous_ms : CANARY_KEEP_PREVIOUS_MS;

	if (held(c, true))
		return;
	if (quorum_holds(c, RH_PROMOTE)) {
		/* the canary is at full size and ready: only the switch waits */
		st->wait = RW_PROMOTING;
		st->wait_since_ms = c->now;
		st->progress_deadline_ms = 0;
		return;
	}
	st->promoted = true;
	st->weight = 100;
	st->match_step = -1;
	st->previous_revision = st->stable_revision;
	st->keep_previous_until_ms = st->previous_revision > 0 ? c->now + MAX(keep, 0) : 0;
	c->traffic_dirty = true;
	a = push(c, CA_PROMOTE);
	a->revision = st->canary_revision;
	snprintf(a->reason, ROLLOUT_MSG_LEN, "revision %d takes 100%%", st->canary_revision);
	if (st->kind == STRATEGY_BLUEGREEN && c->cfg->bluegreen.post_promotion_analysis && st->previous_revision > 0) {
		st->analysis_slot = SLOT_POST;
		start_analysis(c, c->cfg->bluegreen.post_promotion_analysis, SLOT_POST);
		wait_for(c, RW_POST);
		message(c, "switched to revision %d; post-promotion analysis %s running", st->canary_revision,
			c->cfg->bluegreen.post_promotion_analysis);
		return;
	}
	complete(c, st->previous_revision > 0 ? "promoted: 100% on the new revision" : "first deploy: at full size");
}

static void begin_promotion(struct ctx *c)
{
	struct canary_state *st = c->st;

	stop_all_analyses(c);
	st->step = st->nsteps;
	st->step_done = false;
	st->pause_until_ms = 0;
	scale(c, MAX(st->replicas, 1));
	if (st->canary_ready >= st->canary_replicas) {
		promote(c);
		return;
	}
	wait_for(c, RW_PROMOTING);
	message(c, "scaling revision %d to full size: %d/%d replicas ready", st->canary_revision, st->canary_ready,
		st->canary_replicas);
}

static void rollback(struct ctx *c, enum rollout_phase how, const char *reason)
{
	struct canary_state *st = c->st;
	struct canary_action *a;

	if (terminal(st))
		return;
	unhold(c, reason);
	stop_all_analyses(c);
	st->phase = how;
	st->wait = RW_NONE;
	st->pause_until_ms = 0;
	st->progress_deadline_ms = 0;
	st->watch_until_ms = 0;
	st->keep_previous_until_ms = 0; /* the previous revision serves again: never retire it */
	st->match_step = -1;
	if (st->stable_revision > 0) {
		st->weight = 0;
		c->traffic_dirty = true;
		if (!st->promoted)
			scale(c, 0);
	}
	message(c, "%s", reason);
	a = push(c, CA_ROLLBACK);
	a->revision = st->stable_revision;
	snprintf(a->reason, ROLLOUT_MSG_LEN, "%s", reason);
	push(c, CA_DISARM);
}

/* ------------------------------------------------------------------------ */
/* canary steps                                                             */

static void advance(struct ctx *c);

static void next_step(struct ctx *c)
{
	c->st->step++;
	c->st->step_done = false;
	c->st->analysis_slot = SLOT_NONE;
	c->st->pause_until_ms = 0;
	advance(c);
}

static void maybe_start_background(struct ctx *c)
{
	struct canary_state *st = c->st;
	const struct canary_config *cc = &c->cfg->canary;

	if (cc->analysis && !st->background_running && st->step == MIN(cc->analysis_starting_step, st->nsteps - 1) &&
	    !st->promoted) {
		st->background_running = true;
		start_analysis(c, cc->analysis, SLOT_BACKGROUND);
	}
}

/* runs steps from st->step until one has to wait */
static void advance(struct ctx *c)
{
	struct canary_state *st = c->st;

	while (st->phase == RP_PROGRESSING) {
		const struct canary_step *s = cur_step(c);
		int need;

		if (!s) {
			begin_promotion(c);
			return;
		}
		maybe_start_background(c);
		switch (s->kind) {
		case CSTEP_WEIGHT:
			need = replicas_for_weight(st, s->weight);
			/* more replicas before the traffic moves; fewer after (flush orders it) */
			if (need > st->canary_replicas)
				scale(c, need);
			if (st->canary_ready < need) {
				wait_for(c, RW_READY);
				message(c, "step %d/%d: weight %d%%: waiting for %d/%d canary replicas", st->step + 1,
					st->nsteps, s->weight, st->canary_ready, need);
				return;
			}
			if (s->weight > st->weight && held(c, false))
				return;
			st->weight = s->weight;
			scale(c, need);
			c->traffic_dirty = true;
			break;
		case CSTEP_REPLICAS:
			st->scale_override = s->replicas;
			scale(c, s->replicas);
			break;
		case CSTEP_MATCH:
			if (st->canary_ready < 1) {
				scale(c, MAX(st->canary_replicas, 1));
				wait_for(c, RW_READY);
				message(c, "step %d/%d: header match: waiting for a ready canary replica", st->step + 1,
					st->nsteps);
				return;
			}
			if (held(c, false))
				return;
			st->match_step = st->step;
			c->traffic_dirty = true;
			break;
		case CSTEP_PAUSE:
			wait_for(c, RW_PAUSE);
			if (s->pause_ms < 0) {
				char why[96];
				st->pause_until_ms = -1;
				snprintf(why, sizeof(why), "step %d/%d: pause until resumed (gantry resume)", st->step + 1,
					 st->nsteps);
				pause_now(c, "step", why);
				return;
			}
			if (s->pause_ms > 0) {
				st->pause_until_ms = c->now + s->pause_ms;
				message(c, "step %d/%d: pause %" PRId64 "s (weight %d%%)", st->step + 1, st->nsteps,
					s->pause_ms / 1000, st->weight);
				return;
			}
			break;
		case CSTEP_ANALYSIS:
			st->analysis_slot = st->step;
			start_analysis(c, s->analysis, st->step);
			wait_for(c, RW_ANALYSIS);
			message(c, "step %d/%d: analysis %s running (weight %d%%)", st->step + 1, st->nsteps,
				s->analysis ? s->analysis : "?", st->weight);
			return;
		}
		st->step++;
		st->step_done = false;
		st->analysis_slot = SLOT_NONE;
		st->pause_until_ms = 0;
	}
}

/* ------------------------------------------------------------------------ */
/* blue-green                                                               */

static void bg_after_pre(struct ctx *c)
{
	struct canary_state *st = c->st;
	const struct bluegreen_config *bg = &c->cfg->bluegreen;

	st->analysis_slot = SLOT_NONE;
	st->step_done = false;
	if (!bg->auto_promote) {
		wait_for(c, RW_PROMOTE_AT);
		st->pause_until_ms = -1;
		pause_now(c, "bluegreen", "preview ready: waiting for promotion (gantry resume)");
		return;
	}
	if (bg->auto_promote_after_ms > 0) {
		wait_for(c, RW_PROMOTE_AT);
		st->pause_until_ms = c->now + bg->auto_promote_after_ms;
		message(c, "preview ready: switching in %" PRId64 "s", bg->auto_promote_after_ms / 1000);
		return;
	}
	promote(c);
}

static void bg_preview_ready(struct ctx *c)
{
	struct canary_state *st = c->st;
	const char *pre = c->cfg->bluegreen.pre_promotion_analysis;

	if (pre) {
		st->analysis_slot = SLOT_PRE;
		start_analysis(c, pre, SLOT_PRE);
		wait_for(c, RW_ANALYSIS);
		message(c, "preview ready: pre-promotion analysis %s running", pre);
		return;
	}
	bg_after_pre(c);
}

/* ------------------------------------------------------------------------ */
/* events                                                                   */

/* a finished wait (analysis passed, pause over...) moves on */
static void proceed(struct ctx *c)
{
	struct canary_state *st = c->st;

	switch (st->wait) {
	case RW_ANALYSIS:
		if (st->analysis_slot == SLOT_PRE)
			bg_after_pre(c);
		else
			next_step(c);
		return;
	case RW_POST:
		st->analysis_slot = SLOT_NONE;
		st->step_done = false;
		complete(c, "post-promotion analysis passed");
		return;
	case RW_PAUSE:
		next_step(c);
		return;
	case RW_PROMOTE_AT:
		st->pause_until_ms = 0;
		promote(c);
		return;
	default:
		break;
	}
}

static void on_ready(struct ctx *c)
{
	struct canary_state *st = c->st;
	const struct canary_step *s;

	if (st->phase != RP_PROGRESSING)
		return;
	if (st->wait == RW_PROMOTING && st->canary_ready >= st->canary_replicas) {
		promote(c);
	} else if (st->wait == RW_READY && st->kind == STRATEGY_BLUEGREEN) {
		if (st->canary_ready >= st->canary_replicas)
			bg_preview_ready(c);
	} else if (st->wait == RW_READY && (s = cur_step(c))) {
		int need = s->kind == CSTEP_WEIGHT ? replicas_for_weight(st, s->weight) : 1;
		if (st->canary_ready >= need)
			advance(c);
	}
}

/*
 * A failed analysis with a flag_off lever (ev->flag_off): the flag goes
 * off instead of the rollback, and the rollout pauses where it is. The
 * failure is not a pass: a person resumes (the rollout goes on with the
 * feature off) or aborts (rolls back), as after an inconclusive verdict.
 */
static void flag_off(struct ctx *c, const struct canary_event *ev, const char *name, const char *reason)
{
	struct canary_action *a = push(c, CA_FLAG_OFF);
	char buf[ROLLOUT_MSG_LEN];
	snprintf(a->flag, sizeof(a->flag), "%s", ev->flag_off);
	a->analysis = name;
	snprintf(a->reason, ROLLOUT_MSG_LEN, "analysis %s failed: %s", name ? name : "?", reason);
	snprintf(buf, sizeof(buf), "analysis %s failed, flag %s turned off (resume goes on, abort rolls back): %s",
		 name ? name : "?", ev->flag_off, reason);
	pause_now(c, "analysis", buf);
}

static void on_verdict(struct ctx *c, const struct canary_event *ev)
{
	struct canary_state *st = c->st;
	const char *reason = ev->why ? ev->why : "";
	char buf[ROLLOUT_MSG_LEN];

	if (st->phase != RP_PROGRESSING && st->phase != RP_PAUSED)
		return;
	if (ev->slot == SLOT_BACKGROUND) {
		if (!st->background_running)
			return;
		if (ev->verdict == AN_RUNNING)
			return;
		st->background_running = false;
		if (ev->verdict == AN_FAILED && ev->flag_off && *ev->flag_off) {
			flag_off(c, ev, c->cfg->canary.analysis, reason);
		} else if (ev->verdict == AN_FAILED) {
			snprintf(buf, sizeof(buf), "analysis %s failed: %s", c->cfg->canary.analysis, reason);
			rollback(c, RP_ROLLED_BACK, buf);
		} else if (ev->verdict == AN_ERROR && c->cfg->on_error == ON_ERROR_ROLLBACK) {
			snprintf(buf, sizeof(buf), "analysis %s error: %s", c->cfg->canary.analysis, reason);
			rollback(c, RP_ROLLED_BACK, buf);
		} else if (ev->verdict == AN_INCONCLUSIVE || ev->verdict == AN_ERROR) {
			snprintf(buf, sizeof(buf), "analysis %s %s: %s", c->cfg->canary.analysis,
				 analysis_phase_name(ev->verdict), reason);
			pause_now(c, "analysis", buf);
		}
		return;
	}
	if (ev->slot != st->analysis_slot || st->analysis_slot == SLOT_NONE || st->step_done ||
	    (st->wait != RW_ANALYSIS && st->wait != RW_POST) || ev->verdict == AN_RUNNING)
		return;
	{
		const char *name = ev->slot == SLOT_PRE    ? c->cfg->bluegreen.pre_promotion_analysis
				   : ev->slot == SLOT_POST ? c->cfg->bluegreen.post_promotion_analysis
				   : cur_step(c)           ? cur_step(c)->analysis
							   : NULL;
		if (ev->verdict == AN_FAILED && ev->flag_off && *ev->flag_off) {
			st->analysis_slot = SLOT_NONE; /* over: nothing to stop */
			st->step_done = true;
			flag_off(c, ev, name, reason);
			return;
		}
		if (ev->verdict == AN_FAILED || (ev->verdict == AN_ERROR && c->cfg->on_error == ON_ERROR_ROLLBACK)) {
			snprintf(buf, sizeof(buf), "analysis %s %s: %s", name ? name : "?",
				 analysis_phase_name(ev->verdict), reason);
			st->analysis_slot = SLOT_NONE; /* over: nothing to stop */
			rollback(c, RP_ROLLED_BACK, buf);
			return;
		}
		st->step_done = true;
		if (ev->verdict == AN_SUCCESSFUL) {
			if (st->phase == RP_PROGRESSING)
				proceed(c);
			return;
		}
		snprintf(buf, sizeof(buf), "analysis %s %s: %s", name ? name : "?", analysis_phase_name(ev->verdict),
			 reason);
		pause_now(c, "analysis", buf);
	}
}

/* the held increase happens (the gate is open again) */
static void release_gate(struct ctx *c)
{
	struct canary_state *st = c->st;
	st->wait = RW_NONE;
	if (st->gate_then_promote)
		promote(c);
	else
		advance(c);
}

static void on_gate(struct ctx *c, const char *why)
{
	struct canary_state *st = c->st;
	if (why && *why) {
		st->gate_closed = true;
		snprintf(st->gate_reason, sizeof(st->gate_reason), "%s", why);
		if (st->wait == RW_GATE && st->phase == RP_PROGRESSING)
			gate_message(c); /* names the new reason */
		return;
	}
	if (!st->gate_closed)
		return;
	st->gate_closed = false;
	st->gate_reason[0] = 0;
	if (st->wait == RW_GATE && st->phase == RP_PROGRESSING)
		release_gate(c);
}

static void on_tick(struct ctx *c);

static void on_quorum(struct ctx *c, const char *why)
{
	struct canary_state *st = c->st;
	enum rollout_hold what = st->hold;

	if (why && *why) {
		st->quorum_low = true;
		snprintf(st->quorum_reason, sizeof(st->quorum_reason), "%s", why);
		if (st->hold != RH_NONE)
			hold_message(c); /* names the new count */
		return;
	}
	if (!st->quorum_low)
		return;
	st->quorum_low = false;
	st->quorum_reason[0] = 0;
	if (what == RH_NONE)
		return;
	unhold(c, "a quorum of the proxies reports again");
	switch (what) {
	case RH_TIMER:
	case RH_WATCH:
		on_tick(c); /* what ran out happens now */
		if (what == RH_WATCH && st->phase == RP_COMPLETE)
			message(c, "promoted; watch over");
		return;
	case RH_PROMOTE:
		on_ready(c);
		return;
	case RH_NONE:
		return;
	}
}

static void on_resume(struct ctx *c, const struct canary_event *ev)
{
	struct canary_state *st = c->st;
	const char *who = ev->who ? ev->who : "someone";
	char buf[ROLLOUT_MSG_LEN];

	if (terminal(st))
		return;
	if (st->phase == RP_COMPLETE) {
		/* a held end of the watch: a person ends it */
		if (st->hold == RH_WATCH) {
			snprintf(buf, sizeof(buf), "watch ended by %s", who);
			unhold(c, buf);
			st->watch_until_ms = 0;
			message(c, "promoted; %s", buf);
			push(c, CA_DISARM);
		}
		return;
	}
	if (st->phase == RP_PROGRESSING && st->hold != RH_NONE) {
		enum rollout_hold what = st->hold;
		snprintf(buf, sizeof(buf), "released by %s", who);
		unhold(c, buf);
		if (ev->full)
			; /* begin_promotion below */
		else if (what == RH_TIMER) {
			proceed(c);
			return;
		} else if (what == RH_PROMOTE) {
			on_ready(c);
			return;
		}
	}
	if (ev->full) {
		st->phase = RP_PROGRESSING;
		st->promote_ordered = true;
		st->paused_by[0] = 0;
		if (st->promoted) {
			/* blue-green post-promotion: skip the rest of the analysis */
			stop_all_analyses(c);
			complete(c, "promoted (resume --full)");
			return;
		}
		begin_promotion(c);
		return;
	}
	if (st->phase != RP_PAUSED)
		return;
	st->phase = RP_PROGRESSING;
	st->paused_by[0] = 0;
	message(c, "resumed by %s", ev->who ? ev->who : "?");
	if (st->step_done) {
		proceed(c);
		return;
	}
	switch (st->wait) {
	case RW_PAUSE:
	case RW_PROMOTE_AT:
		if (st->pause_until_ms == -1) {
			proceed(c);
		} else if (st->pause_until_ms == 0) {
			st->pause_until_ms = c->now + st->pause_left_ms;
			st->pause_left_ms = 0;
			if (st->pause_until_ms <= c->now)
				proceed(c);
		}
		return;
	case RW_READY:
	case RW_PROMOTING:
		wait_for(c, st->wait); /* the progress deadline restarts */
		on_ready(c);
		return;
	case RW_GATE:
		if (st->gate_closed)
			gate_message(c);
		else
			release_gate(c);
		return;
	default:
		return;
	}
}

static void on_tick(struct ctx *c)
{
	struct canary_state *st = c->st;

	if (st->keep_previous_until_ms > 0 && c->now >= st->keep_previous_until_ms) {
		st->keep_previous_until_ms = 0;
		push(c, CA_RETIRE_PREVIOUS)->revision = st->previous_revision;
	}
	if (st->phase == RP_COMPLETE && st->watch_until_ms > 0 && c->now >= st->watch_until_ms &&
	    !quorum_holds(c, RH_WATCH)) {
		st->watch_until_ms = 0;
		push(c, CA_DISARM);
	}
	if (st->phase != RP_PROGRESSING)
		return;
	if ((st->wait == RW_PAUSE || st->wait == RW_PROMOTE_AT) && st->pause_until_ms > 0 &&
	    c->now >= st->pause_until_ms) {
		if (!quorum_holds(c, RH_TIMER))
			proceed(c);
		return;
	}
	if ((st->wait == RW_READY || st->wait == RW_PROMOTING) && st->progress_deadline_ms > 0 &&
	    c->now >= st->progress_deadline_ms) {
		char buf[ROLLOUT_MSG_LEN];
		snprintf(buf, sizeof(buf), "progress deadline exceeded: %d/%d replicas of revision %d ready",
			 st->canary_ready, st->canary_replicas, st->canary_revision);
		rollback(c, RP_ROLLED_BACK, buf);
	}
}

/* ------------------------------------------------------------------------ */
/* emitting                                                                 */

/* the canary's replica count, as an action of out */
static void emit_scale(struct canary_actions *out, const struct canary_state *st)
{
	struct canary_action *a = action_init(&out->a[out->n++], CA_SCALE_CANARY);
	a->revision = st->canary_revision;
	a->replicas = st->canary_replicas;
}

static void flush(struct ctx *c, struct canary_actions *out)
{
	struct canary_state *st = c->st;
	bool up = c->scale_dirty && st->canary_replicas > c->scale_from;
	bool down = c->scale_dirty && !up;

	out->n = 0;
	if (up)
		emit_scale(out, st);
	if (c->traffic_dirty) {
		struct canary_action *a = action_init(&out->a[out->n++], CA_SET_TRAFFIC);
		bool live = !terminal(st) && !st->promoted;
		if (st->stable_revision > 0) {
			a->traffic[a->ntraffic++] = (struct traffic_split){ st->stable_revision, 100 - st->weight };
			a->traffic[a->ntraffic++] = (struct traffic_split){ st->canary_revision, st->weight };
		} else {
			a->traffic[a->ntraffic++] = (struct traffic_split){ st->canary_revision, 100 };
		}
		if (live && st->kind == STRATEGY_CANARY) {
			a->headers = c->cfg->canary.match;
			a->nheaders = c->cfg->canary.nmatch;
			if (st->match_step >= 0 && (size_t)st->match_step < c->cfg->canary.nsteps) {
				a->step_headers = c->cfg->canary.steps[st->match_step].headers;
				a->nstep_headers = c->cfg->canary.steps[st->match_step].nheaders;
			}
		}
		if (live && st->kind == STRATEGY_BLUEGREEN) {
			a->preview_tag = c->cfg->bluegreen.preview_tag ? c->cfg->bluegreen.preview_tag : "preview";
			a->revision = st->canary_revision;
		}
	}
	if (down)
		emit_scale(out, st);
	for (size_t i = 0; i < c->npending && out->n < CANARY_MAX_ACTIONS; i++)
		out->a[out->n++] = c->pending[i];
}

int canary_start(struct canary_state *st, const struct svc_config *cfg, int stable_revision,
		 int canary_revision, int replicas, int64_t now, struct canary_actions *out, struct gerr *err)
{
	struct ctx c = { .st = st, .cfg = cfg, .now = now };

	memset(st, 0, sizeof(*st));
	out->n = 0;
	if (cfg->strategy.kind != STRATEGY_CANARY && cfg->strategy.kind != STRATEGY_BLUEGREEN)
		return gerr_set(err, "strategy is not canary or bluegreen");
	for (size_t i = 0; i < cfg->canary.nsteps; i++)
		if (cfg->canary.steps[i].kind == CSTEP_ANALYSIS &&
		    !rollout_find_analysis(cfg, cfg->canary.steps[i].analysis))
			return gerr_set(err, "steps[%zu]: no analysis '%s'", i,
					cfg->canary.steps[i].analysis ? cfg->canary.steps[i].analysis : "");
	if (cfg->strategy.kind == STRATEGY_CANARY && cfg->canary.analysis &&
	    !rollout_find_analysis(cfg, cfg->canary.analysis))
		return gerr_set(err, "no analysis '%s'", cfg->canary.analysis);
	if (cfg->strategy.kind == STRATEGY_BLUEGREEN &&
	    ((cfg->bluegreen.pre_promotion_analysis && !rollout_find_analysis(cfg, cfg->bluegreen.pre_promotion_analysis)) ||
	     (cfg->bluegreen.post_promotion_analysis && !rollout_find_analysis(cfg, cfg->bluegreen.post_promotion_analysis))))
		return gerr_set(err, "no such pre/post-promotion analysis");
	if (replicas < 0 || canary_revision <= 0 || stable_revision < 0 || canary_revision == stable_revision)
		return gerr_set(err, "bad revisions or replicas");
	st->kind = cfg->strategy.kind;
	st->stable_revision = stable_revision;
	st->canary_revision = canary_revision;
	st->replicas = replicas;
	st->nsteps = st->kind == STRATEGY_CANARY ? (int)MIN(cfg->canary.nsteps, (size_t)INT_MAX) : 0;
	st->match_step = -1;
	st->analysis_slot = SLOT_NONE;
	st->started_ms = now;
	st->phase = RP_PROGRESSING;
	if (stable_revision == 0) {
		/* nothing serves yet: straight to full size (as Argo Rollouts) */
		begin_promotion(&c);
	} else if (st->kind == STRATEGY_BLUEGREEN) {
		scale(&c, MAX(replicas, 1));
		c.traffic_dirty = true; /* the preview tag */
		wait_for(&c, RW_READY);
		message(&c, "starting the preview of revision %d: 0/%d replicas ready", canary_revision, MAX(replicas, 1));
	} else {
		scale(&c, replicas_for_weight(st, 0));
		advance(&c);
	}
	flush(&c, out);
	return 0;
}

void canary_step(struct canary_state *st, const struct svc_config *cfg, const struct canary_event *ev,
		 int64_t now, struct canary_actions *out)
{
	struct ctx c = { .st = st, .cfg = cfg, .now = now };
	char buf[ROLLOUT_MSG_LEN];
	const char *who = ev->who ? ev->who : "someone", *why = ev->why ? ev->why : "";

	out->n = 0;
	/* a rolled-back or aborted rollout never changes again */
	if (terminal(st))
		return;
	switch (ev->kind) {
	case CE_TICK:
		on_tick(&c);
		break;
	case CE_CANARY_READY:
		/* one more ready replica is progress: the deadline bounds a
		 * time without it, not the whole wait (as rolling updates) */
		if (ev->ready > st->canary_ready && st->progress_deadline_ms > 0 && cfg->progress_deadline_ms > 0)
			st->progress_deadline_ms = now + cfg->progress_deadline_ms;
		st->canary_ready = MAX(ev->ready, 0);
		on_ready(&c);
		break;
	case CE_ANALYSIS_VERDICT:
		on_verdict(&c, ev);
		break;
	case CE_PAUSE:
		snprintf(buf, sizeof(buf), "by %s%s%s", who, *why ? ": " : "", why);
		pause_now(&c, who, buf);
		break;
	case CE_RESUME:
		c.manual = true;
		on_resume(&c, ev);
		break;
	case CE_PROMOTE: {
		struct canary_event full = *ev;
		c.manual = true;
		full.full = true;
		on_resume(&c, &full);
		break;
	}
	case CE_ABORT:
		if (st->phase == RP_COMPLETE)
			break; /* done: that is a rollback, not an abort */
		snprintf(buf, sizeof(buf), "aborted by %s%s%s", who, *why ? ": " : "", why);
		rollback(&c, RP_ABORTED, buf);
		break;
	case CE_BREACHED:
		if (st->phase == RP_COMPLETE &&
		    !(st->watch_until_ms > 0 && (now < st->watch_until_ms || st->hold == RH_WATCH)))
			break;
		snprintf(buf, sizeof(buf), "rollback_on: %s", why);
		rollback(&c, RP_ROLLED_BACK, buf);
		break;
	case CE_GATE:
		on_gate(&c, ev->why);
		break;
	case CE_QUORUM:
		on_quorum(&c, ev->why);
		break;
	}
	flush(&c, out);
}

int64_t canary_next_deadline(const struct canary_state *st)
{
	int64_t d = INT64_MAX;

	if (terminal(st))
		return d;
	if (st->keep_previous_until_ms > 0)
		d = MIN(d, st->keep_previous_until_ms);
	if (st->phase == RP_COMPLETE && st->watch_until_ms > 0 && st->hold != RH_WATCH)
		d = MIN(d, st->watch_until_ms);
	if (st->phase == RP_PROGRESSING) {
		/* a held timer waits for CE_QUORUM, not for the clock */
		if ((st->wait == RW_PAUSE || st->wait == RW_PROMOTE_AT) && st->pause_until_ms > 0 &&
		    st->hold != RH_TIMER)
			d = MIN(d, st->pause_until_ms);
		if ((st->wait == RW_READY || st->wait == RW_PROMOTING) && st->progress_deadline_ms > 0)
			d = MIN(d, st->progress_deadline_ms);
	}
	return d;
}

bool canary_armed(const struct canary_state *st, int64_t now)
{
	if (st->phase == RP_PROGRESSING || st->phase == RP_PAUSED)
		return true;
	return st->phase == RP_COMPLETE && st->watch_until_ms > 0 && (now < st->watch_until_ms || st->hold == RH_WATCH);
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */

json_t *canary_state_to_json(const struct canary_state *st)
{
	json_t *o = json_pack("{s:i, s:s, s:i, s:i, s:i, s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
			      "format", 1, "kind", st->kind == STRATEGY_BLUEGREEN ? "bluegreen" : "canary",
			      "stable_revision", st->stable_revision, "canary_revision", st->canary_revision,
			      "previous_revision", st->previous_revision, "replicas", st->replicas, "phase",
			      rollout_phase_name(st->phase), "wait", wait_names[st->wait], "step", st->step, "nsteps",
			      st->nsteps, "weight", st->weight, "canary_replicas", st->canary_replicas,
			      "canary_ready", st->canary_ready, "scale_override", st->scale_override, "match_step",
			      st->match_step);
	json_t *t = json_pack("{s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:s, s:s}", "step_done",
			      st->step_done, "promoted", st->promoted, "background_running", st->background_running,
			      "started_ms", (json_int_t)st->started_ms, "wait_since_ms", (json_int_t)st->wait_since_ms,
			      "progress_deadline_ms", (json_int_t)st->progress_deadline_ms, "pause_until_ms",
			      (json_int_t)st->pause_until_ms, "pause_left_ms", (json_int_t)st->pause_left_ms,
			      "analysis_slot", st->analysis_slot, "watch_until_ms", (json_int_t)st->watch_until_ms,
			      "keep_previous_until_ms", (json_int_t)st->keep_previous_until_ms, "message", st->message,
			      "paused_by", st->paused_by);
	if (o && t && st->gate_closed) {
		json_object_set_new(t, "gate_closed", json_true());
		json_object_set_new(t, "gate_then_promote", json_boolean(st->gate_then_promote));
		json_object_set_new(t, "gate_reason", json_string(st->gate_reason));
	}
	if (o && t && (st->quorum_low || st->hold != RH_NONE || st->promote_ordered)) {
		json_object_set_new(t, "quorum_low", json_boolean(st->quorum_low));
		json_object_set_new(t, "promote_ordered", json_boolean(st->promote_ordered));
		json_object_set_new(t, "quorum_reason", json_string(st->quorum_reason));
		json_object_set_new(t, "hold", json_string(hold_names[st->hold]));
	}
	if (!o || !t) {
		json_decref(o);
		json_decref(t);
		return NULL;
	}
	json_object_update(o, t);
	json_decref(t);
	return o;
}

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -1;
}

static int get_int(const json_t *o, const char *k, int64_t min, int64_t max, int64_t *out, struct gerr *err)
{
	const json_t *v = json_object_get(o, k);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return gerr_set(err, "rollout state: '%s' must be an integer between %" PRId64 " and %" PRId64, k, min,
				max);
	*out = json_integer_value(v);
	return 0;
}

static int get_bool(const json_t *o, const char *k, bool *out, struct gerr *err)
{
	const json_t *v = json_object_get(o, k);
	if (!json_is_boolean(v))
		return gerr_set(err, "rollout state: '%s' must be a boolean", k);
	*out = json_is_true(v);
	return 0;
}

static int get_str(const json_t *o, const char *k, char *buf, size_t len, struct gerr *err)
{
	const json_t *v = json_object_get(o, k);
	if (!json_is_string(v) || json_string_length(v) >= len || strlen(json_string_value(v)) != json_string_length(v))
		return gerr_set(err, "rollout state: '%s' must be a string shorter than %zu bytes", k, len);
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int canary_state_from_json(struct canary_state *out, const json_t *j, struct gerr *err)
{
	struct canary_state st;
	int64_t v;
	int k;
	char s[32];

	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	if (!json_is_object(j))
		return gerr_set(err, "rollout state: expected an object");
	if (get_int(j, "format", 1, 1, &v, err) < 0)
		return -1;
#define INT_FIELD(name, min, max)                                     \
	do {                                                          \
		if (get_int(j, #name, min, max, &v, err) < 0)         \
			return -1;                                    \
		st.name = (__typeof__(st.name))v;                     \
	} while (0)
	INT_FIELD(stable_revision, 0, INT_MAX);
	INT_FIELD(canary_revision, 1, INT_MAX);
	INT_FIELD(previous_revision, 0, INT_MAX);
	INT_FIELD(replicas, 0, 1000000);
	INT_FIELD(nsteps, 0, 100000);
	INT_FIELD(step, 0, st.nsteps);
	INT_FIELD(weight, 0, 100);
	INT_FIELD(canary_replicas, 0, 1000000);
	INT_FIELD(canary_ready, 0, INT_MAX);
	INT_FIELD(scale_override, 0, 1000000);
	INT_FIELD(match_step, -1, st.nsteps ? st.nsteps - 1 : -1);
	INT_FIELD(analysis_slot, SLOT_NONE, st.nsteps ? st.nsteps - 1 : 0);
	INT_FIELD(started_ms, INT64_MIN, INT64_MAX);
	INT_FIELD(wait_since_ms, INT64_MIN, INT64_MAX);
	INT_FIELD(progress_deadline_ms, INT64_MIN, INT64_MAX);
	INT_FIELD(pause_until_ms, -1, INT64_MAX);
	INT_FIELD(pause_left_ms, 0, INT64_MAX);
	INT_FIELD(watch_until_ms, 0, INT64_MAX);
	INT_FIELD(keep_previous_until_ms, 0, INT64_MAX);
#undef INT_FIELD
	if (st.analysis_slot < SLOT_POST && st.analysis_slot != SLOT_NONE)
		return gerr_set(err, "rollout state: bad 'analysis_slot'");
	if (get_bool(j, "step_done", &st.step_done, err) < 0 || get_bool(j, "promoted", &st.promoted, err) < 0 ||
	    get_bool(j, "background_running", &st.background_running, err) < 0 ||
	    get_str(j, "message", st.message, sizeof(st.message), err) < 0 ||
	    get_str(j, "paused_by", st.paused_by, sizeof(st.paused_by), err) < 0)
		return -1;
	/* optional (absent in states written before gates held steps) */
	if (json_object_get(j, "gate_closed") &&
	    (get_bool(j, "gate_closed", &st.gate_closed, err) < 0 ||
	     get_bool(j, "gate_then_promote", &st.gate_then_promote, err) < 0 ||
	     get_str(j, "gate_reason", st.gate_reason, sizeof(st.gate_reason), err) < 0))
		return -1;
	/* optional (absent in states written before the quorum held steps) */
	if (json_object_get(j, "quorum_low")) {
		if (get_bool(j, "quorum_low", &st.quorum_low, err) < 0 ||
		    get_bool(j, "promote_ordered", &st.promote_ordered, err) < 0 ||
		    get_str(j, "quorum_reason", st.quorum_reason, sizeof(st.quorum_reason), err) < 0)
			return -1;
		if (get_str(j, "hold", s, sizeof(s), err) < 0 ||
		    (k = name_index(hold_names, ARRAY_SIZE(hold_names), s)) < 0)
			return gerr_set(err, "rollout state: bad 'hold'");
		st.hold = (enum rollout_hold)k;
	}
	if (get_str(j, "kind", s, sizeof(s), err) < 0)
		return -1;
	if (!strcmp(s, "canary"))
		st.kind = STRATEGY_CANARY;
	else if (!strcmp(s, "bluegreen"))
		st.kind = STRATEGY_BLUEGREEN;
	else
		return gerr_set(err, "rollout state: unknown kind '%s'", s);
	if (get_str(j, "phase", s, sizeof(s), err) < 0 ||
	    (k = name_index(phase_names, ARRAY_SIZE(phase_names), s)) < 0)
		return gerr_set(err, "rollout state: bad 'phase'");
	st.phase = (enum rollout_phase)k;
	if (get_str(j, "wait", s, sizeof(s), err) < 0 || (k = name_index(wait_names, ARRAY_SIZE(wait_names), s)) < 0)
		return gerr_set(err, "rollout state: bad 'wait'");
	st.wait = (enum rollout_wait)k;
	if (st.stable_revision == st.canary_revision)
		return gerr_set(err, "rollout state: the canary and stable revisions are the same");
	*out = st;
	return 0;
}
