/*
 * progressive.c — drives canary and blue-green rollouts.
 *
 * The decisions are made by the pure state machine (rollout/canary.c); this
 * file feeds it events (ticks, the canary's ready count, analysis verdicts,
 * rollback_on breaches, user commands) and carries out its actions: traffic
 * splits (the svcenv's traffic override, pushed to the proxy), replica
 * counts, analysis runs, promotion and rollback. Its state, and every
 * analysis run's, is persisted in the rollout row after each transition, so
 * a controller killed at any instant resumes where it was.
 *
 * Replicas while a progressive rollout is active (instead of the rolling
 * planner): the stable revision keeps its full count until promotion, the
 * canary has what the machine says, the previous revision stays warm after
 * promotion until the machine retires it, anything else is drained.
 *
 * Metrics: analyses and rollback_on read live windows of the proxy
 * (daemon/metrics.c). rollback_on is sampled every 100 ms on the trailing
 * second; a sample backed by fewer than ROLLBACK_MIN_REQUESTS requests is
 * "no data" (it neither breaches nor clears), so a quiet service is never
 * rolled back on one unlucky request.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/migrations.h"
#include "daemon/metrics.h"
#include "daemon/proxypeers.h"
#include "rollout/canary.h"
#include "rollout/analysis.h"
#include "core/condition.h"
#include "rollout/provider.h"
#include "runtime/measure.h"
#include "gates/gates.h"
#include "gates/gspec.h"
#include "daemon/gates_flow.h"
#include "daemon/flags.h"
#include "util/clock.h"
#include "store/store_records.h"
#include "util/log.h"
#include "util/parse.h"
#include <jansson.h>
#include <math.h>

#define MAX_RUNS 4
#define ROLLBACK_SAMPLE_MS 1000
#define ROLLBACK_MIN_REQUESTS 5
#define GATE_CHECK_MS 1000
/*
 * A `for` window that was running when the controller stopped goes on from
 * where it started if the controller is back within RB_RESTORE_GAP_MS of
 * the last time it was seen holding (persisted every RB_SAVE_MS while it
 * runs) and the first sample after the restart still holds: a restart does
 * not give a bad canary another 2 minutes. A longer outage starts it again
 * (nobody watched meanwhile). Prometheus restores its alerts' `for` state
 * after a restart the same way (rules.alert.for-grace-period).
 */
#define RB_SAVE_MS 5000
#define RB_RESTORE_GAP_MS 30000

struct prog {
	struct canary_state cs;
	struct revcfg *rc;             /* the canary revision's config */
	struct analysis_run runs[MAX_RUNS];
	int slot[MAX_RUNS];
	bool used[MAX_RUNS];
	struct cond_eval *rb;          /* rollback_on evaluators */
	int *rb_index;                 /* rb[i] is rollback_on[rb_index[i]] of the config */
	size_t nrb;
	int64_t rb_saved_ms;           /* when a running `for` window was last persisted */
	int64_t last_sample_ms;
	int last_ready;
	bool keep_previous;            /* after promotion, until CA_RETIRE_PREVIOUS */
	bool disarmed;
	bool dirty;                    /* state to persist */
	/* the routing extras of the last traffic action (borrowed from rc->cfg) */
	const struct header_match *headers, *step_headers;
	size_t nheaders, nstep_headers;
	const char *preview_tag;
	/* provider measurements (prometheus, http, command) taken off the loop */
	struct prov_result *prov[MAX_RUNS];
	bool prov_pending[MAX_RUNS];
	/* the deployment's gates, re-checked before traffic increases (loaded
	 * from its record once it is linked to this rollout) */
	struct gate_policy *gates;
	bool gates_loaded, gates_emergency;
	int64_t gates_spec_version;  /* the stored spec the policy was read from: a new one is read again */
	int64_t gates_checked_ms;
};

/* results of one round's provider measurements (a worker thread fills it) */
struct prov_result {
	size_t n;
	double *value;
	char (*error)[256];        /* "" when measured */
};

struct prov_job {
	uv_work_t req;
	struct svcenv *se;         /* svcenvs live as long as the daemon */
	int64_t rollout_id;
	int slot;
	struct analysis_def def;   /* a deep copy: the run may be gone when we finish */
	char service[64], environment[64];
	int revision;
	struct prov_result *res;
};

bool progressive_strategy(const struct revcfg *rc)
{
	return rc && (rc->cfg.strategy.kind == STRATEGY_CANARY || rc->cfg.strategy.kind == STRATEGY_BLUEGREEN);
}

static void prov_free(struct prov_result *r)
{
	if (!r)
		return;
	free(r->value);
	free(r->error);
	free(r);
}

static void free_runs(struct prog *p)
{
	for (int i = 0; i < MAX_RUNS; i++) {
		if (p->used[i]) {
			analysis_run_release(&p->runs[i]);
			p->used[i] = false;
		}
		prov_free(p->prov[i]);
		p->prov[i] = NULL;
		p->prov_pending[i] = false;
	}
}

void progressive_free(struct svcenv *se)
{
	struct prog *p = se->prog;
	if (!p)
		return;
	free_runs(p);
	free(p->rb);
	free(p->rb_index);
	if (p->gates) {
		gate_policy_release(p->gates);
		free(p->gates);
	}
	free(p);
	se->prog = NULL;
}

static void arm_rollback_on(struct prog *p)
{
	const struct svc_config *c = &p->rc->cfg;
	struct gerr err;
	free(p->rb);
	free(p->rb_index);
	p->rb = xcalloc(c->nrollback_on + 1, sizeof(*p->rb));
	p->rb_index = xcalloc(c->nrollback_on + 1, sizeof(*p->rb_index));
	p->nrb = 0;
	for (size_t i = 0; i < c->nrollback_on; i++) {
		struct condition cond;
		if (strstr(c->rollback_on[i], " then "))
			continue; /* an action other than a rollback: daemon/flags.c watches it */
		if (condition_parse(c->rollback_on[i], &cond, &err) < 0) {
			log_error("rollout", "rollback_on[%zu] '%s': %s", i, c->rollback_on[i], err.msg);
			continue;
		}
		cond_eval_init(&p->rb[p->nrb], &cond);
		p->rb[p->nrb].min_requests = ROLLBACK_MIN_REQUESTS;
		p->rb[p->nrb].max_gap_ms = 2000; /* a controller pause breaks a run rather than faking one */
		p->rb_index[p->nrb] = (int)i;
		p->nrb++;
	}
}

/* ---- persistence ---- */

static void save(struct svcenv *se)
{
	struct prog *p = se->prog;
	json_t *doc = json_object(), *runs = json_array();
	char *text;
	json_object_set_new(doc, "canary", canary_state_to_json(&p->cs));
	for (int i = 0; i < MAX_RUNS; i++)
		if (p->used[i])
			json_array_append_new(runs, json_pack("{s:i, s:o}", "slot", p->slot[i], "run",
							      analysis_run_to_json(&p->runs[i])));
	json_object_set_new(doc, "runs", runs);
	{
		/* running `for` windows: [config index, started, last seen holding] */
		json_t *rb = json_array();
		for (size_t i = 0; i < p->nrb; i++)
			if (cond_eval_since(&p->rb[i]) >= 0)
				json_array_append_new(rb, json_pack("[i, I, I]", p->rb_index[i],
								    (json_int_t)cond_eval_since(&p->rb[i]),
								    (json_int_t)p->rb[i].last_ms));
		if (json_array_size(rb))
			json_object_set_new(doc, "rollback_on", rb);
		else
			json_decref(rb);
	}
	json_object_set_new(doc, "keep_previous", json_boolean(p->keep_previous));
	json_object_set_new(doc, "disarmed", json_boolean(p->disarmed));
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (strlen(text) >= sizeof(se->rollout.state))
		log_error("rollout", "rollout %lld: state too large to persist (%zu bytes)", (long long)se->rollout.id,
			  strlen(text));
	else
		strlcpy_g(se->rollout.state, text, sizeof(se->rollout.state));
	free(text);
	se->rollout.step = p->cs.step;
	se->rollout.steps = p->cs.nsteps;
	snprintf(se->rollout.message, sizeof(se->rollout.message), "%s", p->cs.message);
	switch (p->cs.phase) {
	case RP_PROGRESSING: strlcpy_g(se->rollout.phase, "progressing", sizeof(se->rollout.phase)); break;
	case RP_PAUSED: strlcpy_g(se->rollout.phase, "paused", sizeof(se->rollout.phase)); break;
	case RP_COMPLETE: strlcpy_g(se->rollout.phase, "complete", sizeof(se->rollout.phase)); break;
	case RP_ROLLED_BACK: strlcpy_g(se->rollout.phase, "rolled_back", sizeof(se->rollout.phase)); break;
	case RP_ABORTED: strlcpy_g(se->rollout.phase, "aborted", sizeof(se->rollout.phase)); break;
	}
	daemon_save_rollout(se);
	p->dirty = false;
}

static int slot_index(struct prog *p, int slot)
{
	for (int i = 0; i < MAX_RUNS; i++)
		if (p->used[i] && p->slot[i] == slot)
			return i;
	return -1;
}

/* ---- actions ---- */

static void set_traffic(struct svcenv *se, const struct canary_action *a)
{
	json_t *list = json_array();
	se->prog->headers = a->headers;
	se->prog->nheaders = a->nheaders;
	se->prog->step_headers = a->step_headers;
	se->prog->nstep_headers = a->nstep_headers;
	se->prog->preview_tag = a->preview_tag;
	char *text;
	struct gerr err;
	for (size_t i = 0; i < a->ntraffic; i++)
		if (a->traffic[i].revision > 0)
			json_array_append_new(list, json_pack("{s:i, s:i}", "revision", a->traffic[i].revision,
							      "weight", a->traffic[i].weight));
	text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	if (daemon_set_traffic(se, text, &err) < 0)
		log_error("rollout", "%s", err.msg);
	free(text);
	/* record, then act: the proxy gets the weights only once they are stored */
	if (daemon_save_svcenv(se) == 0)
		proxyctl_write_routes();
	{
		char desc[128] = "";
		for (size_t i = 0; i < a->ntraffic; i++)
			if (a->traffic[i].revision > 0)
				snprintf(desc + strlen(desc), sizeof(desc) - strlen(desc), "%s#%d=%d%%", i ? " " : "",
					 a->traffic[i].revision, a->traffic[i].weight);
		daemon_event(se, se->prog->cs.canary_revision, "traffic", "traffic %s (routes generation %llu)", desc,
			     (unsigned long long)gd->route_gen);
	}
}

static void start_run(struct svcenv *se, const struct canary_action *a, int64_t now)
{
	struct prog *p = se->prog;
	const struct analysis_def *def = rollout_find_analysis(&p->rc->cfg, a->analysis);
	struct gerr err;
	int i = slot_index(p, a->slot);
	if (i < 0)
		for (i = 0; i < MAX_RUNS && p->used[i]; i++)
			;
	else
		analysis_run_release(&p->runs[i]);
	if (i >= MAX_RUNS || !def) {
		log_error("rollout", "cannot start analysis %s", a->analysis ? a->analysis : "?");
		return;
	}
	if (analysis_run_init(&p->runs[i], def, p->cs.canary_revision, now, &err) < 0) {
		log_error("rollout", "analysis %s: %s", def->name, err.msg);
		return;
	}
	/* a round measures the interval that just ended: the first one is due
	 * one interval after the start, not at once (the canary has only just
	 * got its traffic: nothing to measure yet) */
	if (def->initial_delay_ms == 0)
		p->runs[i].next_ms = now + def->interval_ms;
	p->used[i] = true;
	p->slot[i] = a->slot;
	daemon_event(se, p->cs.canary_revision, "analysis_started", "analysis %s started on revision %d",
		     def->name, p->cs.canary_revision);
}

static void finish(struct svcenv *se, const char *status, const char *reason)
{
	struct prog *p = se->prog;
	struct gerr err;
	(void)status;
	if (store_revision_set_status(gd->store, se->row.service, se->row.environment, p->cs.canary_revision,
				      "failed", reason, &err) < 0)
		log_error("store", "%s", err.msg);
}

static void execute(struct svcenv *se, const struct canary_actions *acts, int64_t now)
{
	struct prog *p = se->prog;
	struct gerr err;
	for (size_t k = 0; k < acts->n; k++) {
		const struct canary_action *a = &acts->a[k];
		int i;
		log_debug("rollout", "rollout=%lld action=%s", (long long)se->rollout.id, canary_action_name(a->kind));
		switch (a->kind) {
		case CA_SET_TRAFFIC:
			set_traffic(se, a);
			if (p->cs.phase != RP_ROLLED_BACK && p->cs.phase != RP_ABORTED) {
				char msg[160];
				snprintf(msg, sizeof(msg), "revision %d at %d%%", p->cs.canary_revision, p->cs.weight);
				gates_notify("rollout_step", se->row.service, se->row.environment, p->cs.canary_revision, msg);
			}
			break;
		case CA_SCALE_CANARY:
			break; /* the count is in the state; reconcile follows it */
		case CA_START_ANALYSIS:
			start_run(se, a, now);
			break;
		case CA_STOP_ANALYSIS:
			for (i = 0; i < MAX_RUNS; i++)
				if (p->used[i] && (a->slot == SLOT_NONE || p->slot[i] == a->slot)) {
					analysis_run_stop(&p->runs[i], now);
					analysis_run_release(&p->runs[i]);
					p->used[i] = false;
				}
			break;
		case CA_PROMOTE: {
			int prev = se->row.stable_revision;
			se->row.stable_revision = p->cs.canary_revision;
			se->row.target_revision = p->cs.canary_revision;
			strlcpy_g(se->row.phase, "healthy", sizeof(se->row.phase));
			if (prev > 0)
				store_revision_set_status(gd->store, se->row.service, se->row.environment, prev,
							  "superseded", NULL, &err);
			store_revision_set_status(gd->store, se->row.service, se->row.environment,
						  p->cs.canary_revision, "serving", NULL, &err);
			daemon_save_svcenv(se);
			p->keep_previous = prev > 0;
			daemon_event(se, p->cs.canary_revision, "promoted", "revision %d promoted: 100%% of traffic",
				     p->cs.canary_revision);
			break;
		}
		case CA_ROLLBACK:
			se->row.target_revision = a->revision;
			se->row.stable_revision = a->revision;
			strlcpy_g(se->row.phase, "rolled_back", sizeof(se->row.phase));
			snprintf(se->row.message, sizeof(se->row.message), "%s", a->reason);
			daemon_save_svcenv(se);
			finish(se, "failed", a->reason);
			/* after a promotion (a breach within watch) the revision rolled back
			 * to was marked superseded: it serves again */
			if (store_revision_set_status(gd->store, se->row.service, se->row.environment, a->revision,
						      "serving", NULL, &err) < 0)
				log_error("store", "%s", err.msg);
			daemon_event(se, p->cs.canary_revision, "rollout_rolled_back",
				     "revision %d rolled back to revision %d: %s", p->cs.canary_revision, a->revision,
				     a->reason);
			/* the schema: kept (and said so), or auto_down's downs (daemon/migrations.c) */
			mig_flow_traffic_rollback(se, p->cs.canary_revision, a->revision, a->reason);
			if (p->cs.phase != RP_ABORTED) /* an abort is a person's decision, not an incident */
				gates_auto_rollback(se->row.service, se->row.environment, p->cs.canary_revision,
						    a->revision, a->reason);
			break;
		case CA_PAUSE:
			daemon_event(se, p->cs.canary_revision, "paused", "%s", a->reason);
			gates_notify("rollout_paused", se->row.service, se->row.environment, p->cs.canary_revision,
				     a->reason);
			break;
		case CA_COMPLETE:
			daemon_event(se, p->cs.canary_revision, "rollout_complete", "%s", a->reason);
			break;
		case CA_RETIRE_PREVIOUS:
			p->keep_previous = false;
			break;
		case CA_DISARM:
			p->disarmed = true;
			break;
		case CA_HOLD:
			daemon_event(se, p->cs.canary_revision, "quorum_hold", "%s", a->reason);
			break;
		case CA_HOLD_END:
			daemon_event(se, p->cs.canary_revision, "quorum_hold_end", "hold over: %s", a->reason);
			break;
		case CA_FLAG_OFF: {
			char source[96];
			snprintf(source, sizeof(source), "analysis %s", a->analysis ? a->analysis : "?");
			daemon_flags_lever(se, p->cs.canary_revision, a->flag, source, a->reason, &err);
			break;
		}
		}
	}
	if (acts->n)
		p->dirty = true;
}

/* ---- start, restore ---- */

int progressive_start(struct svcenv *se, struct revcfg *rc, int stable, int64_t now, struct gerr *err)
{
	struct prog *p = xcalloc(1, sizeof(*p));
	struct canary_actions acts;
	int replicas = daemon_desired(se, rc);

	progressive_free(se);
	p->rc = rc;
	if (canary_start(&p->cs, &rc->cfg, stable, rc->number, replicas, now, &acts, err) < 0) {
		free(p);
		return -1;
	}
	se->prog = p;
	arm_rollback_on(p);
	execute(se, &acts, now);
	save(se);
	return 0;
}

/*
 * The routing extras (header rules, preview tag) live only in memory, set by
 * the last traffic action; after a restart they are derived again from the
 * restored state the way canary.c derives them for a traffic action, so a
 * controller restart does not drop a match: rule or a blue-green preview.
 */
static void restore_routing(struct prog *p)
{
	const struct canary_state *cs = &p->cs;
	const struct svc_config *c = &p->rc->cfg;
	bool live = (cs->phase == RP_PROGRESSING || cs->phase == RP_PAUSED) && !cs->promoted;

	if (!live)
		return;
	if (cs->kind == STRATEGY_CANARY) {
		p->headers = c->canary.match;
		p->nheaders = c->canary.nmatch;
		if (cs->match_step >= 0 && (size_t)cs->match_step < c->canary.nsteps) {
			p->step_headers = c->canary.steps[cs->match_step].headers;
			p->nstep_headers = c->canary.steps[cs->match_step].nheaders;
		}
	} else if (cs->kind == STRATEGY_BLUEGREEN) {
		p->preview_tag = c->bluegreen.preview_tag ? c->bluegreen.preview_tag : "preview";
	}
}

/* the `for` windows that were running (see RB_RESTORE_GAP_MS) */
static void restore_runs(struct prog *p, json_t *saved, int64_t now)
{
	size_t i;
	json_t *e;
	json_array_foreach(saved, i, e) {
		int idx = (int)json_integer_value(json_array_get(e, 0));
		int64_t since = json_integer_value(json_array_get(e, 1)), seen = json_integer_value(json_array_get(e, 2));
		for (size_t k = 0; k < p->nrb; k++) {
			if (p->rb_index[k] != idx || now - seen > RB_RESTORE_GAP_MS || since > seen)
				continue;
			/* no last sample: the controller's own gap does not break the run;
			 * the first sample that does not hold does */
			p->rb[k].in_run = true;
			p->rb[k].run_start_ms = since;
			p->rb[k].have_last = false;
			log_info("rollout", "rollback_on '%s' holding since %lld ms ago: its window goes on",
				 p->rc->cfg.rollback_on[idx], (long long)(now - since));
		}
	}
}

void progressive_restore(struct svcenv *se, int64_t now)
{
	json_t *doc, *runs, *e;
	struct prog *p;
	struct gerr err;
	struct revcfg *rc;
	size_t i;

	if (!se->rollout.id || !se->rollout.state[0])
		return;
	doc = json_loads(se->rollout.state, 0, NULL);
	if (!doc)
		return;
	rc = daemon_revcfg(se, se->rollout.revision, &err);
	p = xcalloc(1, sizeof(*p));
	if (!rc || canary_state_from_json(&p->cs, json_object_get(doc, "canary"), &err) < 0) {
		log_error("rollout", "rollout %lld: cannot restore its state: %s", (long long)se->rollout.id, err.msg);
		free(p);
		json_decref(doc);
		return;
	}
	p->rc = rc;
	p->keep_previous = json_is_true(json_object_get(doc, "keep_previous"));
	p->disarmed = json_is_true(json_object_get(doc, "disarmed"));
	runs = json_object_get(doc, "runs");
	json_array_foreach(runs, i, e) {
		const struct analysis_def *def;
		json_t *run = json_object_get(e, "run");
		/* analysis_run_to_json names its analysis under "analysis" */
		const char *name = json_string_value(json_object_get(run, "analysis"));
		int k;
		for (k = 0; k < MAX_RUNS && p->used[k]; k++)
			;
		if (k >= MAX_RUNS)
			break;
		def = name ? rollout_find_analysis(&rc->cfg, name) : NULL;
		if (!def)
			gerr_set(&err, "no analysis '%s' in revision %d's config", name ? name : "?", rc->number);
		if (def && analysis_run_from_json(&p->runs[k], def, run, &err) == 0) {
			p->used[k] = true;
			p->slot[k] = (int)json_integer_value(json_object_get(e, "slot"));
		} else {
			log_error("rollout", "rollout %lld: an analysis run could not be restored: %s",
				  (long long)se->rollout.id, err.msg);
		}
	}
	se->prog = p;
	arm_rollback_on(p);
	restore_runs(p, json_object_get(doc, "rollback_on"), now);
	json_decref(doc);
	restore_routing(p);
	p->last_ready = -1;
	/* a step's analysis run that could not be restored starts again, rather
	 * than leave the rollout waiting for a verdict that never comes */
	if (p->cs.wait == RW_ANALYSIS && p->cs.analysis_slot >= 0 && slot_index(p, p->cs.analysis_slot) < 0 &&
	    (size_t)p->cs.analysis_slot < rc->cfg.canary.nsteps && rc->cfg.canary.steps[p->cs.analysis_slot].analysis) {
		struct canary_action a = { .kind = CA_START_ANALYSIS, .slot = p->cs.analysis_slot,
					   .analysis = rc->cfg.canary.steps[p->cs.analysis_slot].analysis };
		log_warn("rollout", "rollout=%lld analysis %s starts again", (long long)se->rollout.id, a.analysis);
		start_run(se, &a, now);
		p->dirty = true;
	}
	log_info("rollout", "rollout=%lld resumed at step %d/%d (%s)", (long long)se->rollout.id, p->cs.step,
		 p->cs.nsteps, rollout_phase_name(p->cs.phase));
}

/* ---- measurement ---- */

static int revision_restarts(struct svcenv *se, int rev)
{
	int n = 0;
	for (struct replica *r = se->replicas; r; r = r->next)
		if (r->row.revision == rev)
			n += r->row.restarts;
	return n;
}

static int count(struct svcenv *se, int rev, bool ready_only)
{
	int n = 0;
	for (struct replica *r = se->replicas; r; r = r->next)
		if (r->row.revision == rev && !replica_is_leaving(r) && (!ready_only || replica_is_ready(r)))
			n++;
	return n;
}

/* one metric's sample: the canary's value and the stable's, over the last span_ms */
static void sample(struct svcenv *se, enum cond_metric m, int64_t span_ms, int64_t now, struct analysis_input *in,
		   struct rev_window *cw, struct rev_window *bw)
{
	struct prog *p = se->prog;
	int canary = p->cs.canary_revision;
	int base = p->cs.promoted ? p->cs.previous_revision : p->cs.stable_revision;
	bool have_c = metrics_window(se->row.service, se->row.environment, canary, span_ms, now, cw) == 0;
	bool have_b = base > 0 && metrics_window(se->row.service, se->row.environment, base, span_ms, now, bw) == 0;

	memset(in, 0, sizeof(*in));
	analysis_input_from_windows(in, m, have_c ? cw : NULL, have_b ? bw : NULL);
	if (m == CM_RESTARTS) {
		in->value = revision_restarts(se, canary);
		in->baseline = base > 0 ? revision_restarts(se, base) : NAN;
	} else if (m == CM_READY_RATIO) {
		int want = p->cs.canary_replicas > 0 ? p->cs.canary_replicas : 1;
		in->value = (double)count(se, canary, true) / want;
		in->baseline = NAN;
	} else if (m == CM_MEMORY || m == CM_CPU) {
		/* the replicas' own usage (usage.h): no proxy window behind it */
		int64_t steady = clock_steady_ms();
		in->value = usage_revision(se, canary, m, steady);
		in->baseline = base > 0 ? usage_revision(se, base, m, steady) : NAN;
		return;
	}
	if (metrics_age_ms(now) < 0 || metrics_age_ms(now) > 2000)
		in->error = "no fresh metrics from the proxy";
}

static void check_rollback_on(struct svcenv *se, int64_t now, int64_t mono)
{
	struct prog *p = se->prog;
	if (p->disarmed || !canary_armed(&p->cs, now) || now - p->last_sample_ms < 100)
		return;
	p->last_sample_ms = now;
	for (size_t i = 0; i < p->nrb; i++) {
		struct analysis_input in;
		struct rev_window cw, bw;
		struct cond_sample s;
		char desc[256];
		struct canary_actions acts;
		struct canary_event ev = { .kind = CE_BREACHED };
		enum cond_verdict v;
		int64_t was;
		sample(se, p->rb[i].cond.metric, ROLLBACK_SAMPLE_MS, mono, &in, &cw, &bw);
		if (in.error)
			continue;
		/* a window restored after a restart waits for the first sample with
		 * data (the metrics history starts again empty) */
		if (!p->rb[i].have_last && cond_eval_since(&p->rb[i]) >= 0 &&
		    cond_metric_needs_requests(p->rb[i].cond.metric) && in.requests < ROLLBACK_MIN_REQUESTS)
			continue;
		s.t_ms = now;
		s.value = in.value;
		s.baseline = in.baseline;
		s.requests = in.requests;
		s.baseline_requests = in.baseline_requests;
		was = cond_eval_since(&p->rb[i]);
		v = cond_eval_feed(&p->rb[i], &s);
		if (was != cond_eval_since(&p->rb[i]) ||
		    (was >= 0 && v == COND_HOLDS && now - p->rb_saved_ms >= RB_SAVE_MS)) {
			p->dirty = true; /* a window started, ended, or goes on: persist it */
			p->rb_saved_ms = now;
		}
		if (v != COND_BREACHED)
			continue;
		cond_eval_describe(&p->rb[i], "canary", p->cs.canary_revision, desc, sizeof(desc));
		log_info("rollout", "rollout=%lld rollback_on breached: %s", (long long)se->rollout.id, desc);
		ev.why = desc;
		canary_step(&p->cs, &p->rc->cfg, &ev, now, &acts);
		execute(se, &acts, now);
		return;
	}
}

static void prov_work(uv_work_t *req)
{
	struct prov_job *j = req->data;
	struct provider_vars v = { j->service, j->environment, j->revision };
	for (size_t m = 0; m < j->def.nmetrics; m++) {
		struct gerr err;
		j->res->value[m] = NAN;
		if (j->def.metrics[m].provider == PROVIDER_BUILTIN)
			continue;
		if (measure_metric(&j->def.metrics[m], &v, &j->res->value[m], &err) < 0)
			strlcpy_g(j->res->error[m], err.msg, sizeof(j->res->error[m]));
	}
}

static void prov_done(uv_work_t *req, int status)
{
	struct prov_job *j = req->data;
	struct prog *p = NULL;
	(void)status;
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		if (se == j->se && se->prog && se->rollout.id == j->rollout_id)
			p = se->prog;
	if (p) {
		int i = slot_index(p, j->slot);
		if (i >= 0 && p->prov_pending[i]) {
			prov_free(p->prov[i]);
			p->prov[i] = j->res;
			p->prov_pending[i] = false;
			j->res = NULL;
			daemon_kick();
		}
	}
	prov_free(j->res);
	analysis_def_release(&j->def);
	free(j);
}

/* starts the provider measurements of run i; false when it has none */
static bool prov_start(struct svcenv *se, int i)
{
	struct prog *p = se->prog;
	struct analysis_run *r = &p->runs[i];
	struct prov_job *j;
	bool any = false;
	for (size_t m = 0; m < r->def.nmetrics; m++)
		any |= r->def.metrics[m].provider != PROVIDER_BUILTIN;
	if (!any)
		return false;
	j = xcalloc(1, sizeof(*j));
	j->se = se;
	j->rollout_id = se->rollout.id;
	j->slot = p->slot[i];
	analysis_def_copy(&j->def, &r->def);
	strlcpy_g(j->service, se->row.service, sizeof(j->service));
	strlcpy_g(j->environment, se->row.environment, sizeof(j->environment));
	j->revision = r->revision;
	j->res = xcalloc(1, sizeof(*j->res));
	j->res->n = r->def.nmetrics;
	j->res->value = xcalloc(r->def.nmetrics + 1, sizeof(double));
	j->res->error = xcalloc(r->def.nmetrics + 1, sizeof(*j->res->error));
	j->req.data = j;
	if (uv_queue_work(gd->loop, &j->req, prov_work, prov_done) < 0) {
		prov_free(j->res);
		analysis_def_release(&j->def);
		free(j);
		return true;
	}
	p->prov_pending[i] = true;
	return true;
}

static void run_analyses(struct svcenv *se, int64_t now, int64_t mono)
{
	struct prog *p = se->prog;
	for (int i = 0; i < MAX_RUNS; i++) {
		struct analysis_run *r = &p->runs[i];
		struct analysis_input *in;
		struct rev_window *cw, *bw;
		enum analysis_phase ph;
		uint64_t before;
		struct prov_result *pr;
		if (!p->used[i] || r->phase != AN_RUNNING || now < analysis_run_next_due(r) || p->prov_pending[i])
			continue;
		/* just after a controller start the windows are not read back yet:
		 * a round now would see "no data" (inconclusive) where the proxy
		 * has the requests; it waits for one interval of history */
		if (metrics_history_ms(mono) < r->def.interval_ms)
			continue;
		/* a round with provider metrics: measure them off the loop first */
		if (!p->prov[i] && prov_start(se, i))
			continue;
		pr = p->prov[i];
		p->prov[i] = NULL;
		in = xcalloc(r->def.nmetrics + 1, sizeof(*in));
		cw = xcalloc(r->def.nmetrics + 1, sizeof(*cw));
		bw = xcalloc(r->def.nmetrics + 1, sizeof(*bw));
		for (size_t m = 0; m < r->def.nmetrics; m++) {
			const struct analysis_metric *am = &r->def.metrics[m];
			int metric = am->query ? cond_metric_from_name(am->query) : -1;
			if (am->provider != PROVIDER_BUILTIN) {
				in[m].value = pr && m < pr->n ? pr->value[m] : NAN;
				in[m].baseline = NAN;
				in[m].error = !pr ? "the measurement did not run" : pr->error[m][0] ? pr->error[m] : NULL;
				continue;
			}
			if (metric < 0) {
				struct condition c;
				struct gerr err;
				if (am->fail_if && condition_parse(am->fail_if, &c, &err) == 0)
					metric = (int)c.metric;
			}
			if (metric < 0) {
				in[m].error = "unknown builtin metric";
				in[m].value = in[m].baseline = NAN;
				continue;
			}
			sample(se, (enum cond_metric)metric, r->def.interval_ms, mono, &in[m], &cw[m], &bw[m]);
			/* several proxies: a pass needs a quorum of them reporting, a
			 * failure stands on what was seen (docs/internals/fleet.md) */
			if (!proxypeers_quorum())
				in[m].no_pass = "fewer than a quorum of the proxies report";
		}
		before = r->nmeas;
		ph = analysis_run_round(r, now, in);
		prov_free(pr);
		for (uint64_t k = before; k < r->nmeas; k++) {
			const struct measurement *ms = analysis_run_measurement(r, k);
			struct measurement_row row = { 0 };
			struct gerr err;
			if (!ms)
				continue;
			row.rollout_id = se->rollout.id;
			row.ts_ms = clock_now_ms(); /* a record: when it was taken, on the wall clock */
			strlcpy_g(row.analysis, r->def.name, sizeof(row.analysis));
			strlcpy_g(row.metric, r->def.metrics[ms->metric].name, sizeof(row.metric));
			row.revision = r->revision;
			row.has_value = !isnan(ms->value);
			row.value = ms->value;
			strlcpy_g(row.verdict, meas_phase_name(ms->phase), sizeof(row.verdict));
			strlcpy_g(row.message, ms->msg, sizeof(row.message));
			if (store_measurement_add(gd->store, &row, &err) < 0)
				log_error("store", "%s", err.msg);
			/* one line per measurement, as Argo Rollouts' controller
			 * logs them: what an operator greps when a verdict surprises */
			log_info("analysis", "service=%s environment=%s revision=%d analysis=%s metric=%s measurement=%llu "
				 "verdict=%s value=%g", se->row.service, se->row.environment, r->revision, r->def.name,
				 row.metric, (unsigned long long)k + 1, row.verdict, ms->value);
		}
		free(in);
		free(cw);
		free(bw);
		p->dirty = true;
		if (ph != AN_RUNNING) {
			struct canary_event ev = { .kind = CE_ANALYSIS_VERDICT, .slot = p->slot[i], .verdict = ph,
						   .why = r->reason };
			struct canary_actions acts;
			/* the lever, while it can still help: a failure with the flag already off rolls back */
			if (r->def.flag_off &&
			    strcmp(daemon_flag_state(gd, se->row.environment, r->def.flag_off), "off"))
				ev.flag_off = r->def.flag_off;
			daemon_event(se, p->cs.canary_revision, "analysis", "analysis %s %s: %s", r->def.name,
				     analysis_phase_name(ph), r->reason);
			canary_step(&p->cs, &p->rc->cfg, &ev, now, &acts);
			execute(se, &acts, now);
		}
	}
}

/* ---- replicas ---- */

/* starts or drains replicas of rev towards want; returns whether want of
 * them are ready (the desired state is in place) */
static bool ensure(struct svcenv *se, int rev, int want)
{
	struct gerr err;
	struct revcfg *rc;
	int have = count(se, rev, false);
	if (rev <= 0)
		return true;
	if (have < want) {
		rc = daemon_revcfg(se, rev, &err);
		if (!rc || !daemon_artifact_ok(se, rc))
			return false;
		for (; have < want; have++)
			if (replica_spawn(replica_create(se, rc)) < 0)
				break;
	}
	while (have > want) {
		struct replica *victim = NULL;
		for (struct replica *r = se->replicas; r; r = r->next)
			if (r->row.revision == rev && !replica_is_leaving(r) &&
			    (!victim || (!replica_is_ready(r) && replica_is_ready(victim))))
				victim = r;
		if (!victim)
			break;
		replica_drain(victim, "canary scaled down");
		have--;
	}
	return count(se, rev, true) >= want;
}

static void reconcile_replicas(struct svcenv *se)
{
	struct prog *p = se->prog;
	const struct canary_state *cs = &p->cs;
	bool terminal = cs->phase == RP_ROLLED_BACK || cs->phase == RP_ABORTED;
	int keep_a = 0, keep_b = 0;

	bool in_place;

	if (terminal) {
		/* back on the revision the machine rolled back to, at full size */
		int to = se->row.target_revision;
		in_place = ensure(se, to, cs->replicas > 0 ? cs->replicas : 1);
		keep_a = to;
	} else if (!cs->promoted) {
		in_place = ensure(se, cs->stable_revision, cs->replicas);
		in_place &= ensure(se, cs->canary_revision, cs->canary_replicas);
		keep_a = cs->stable_revision;
		keep_b = cs->canary_revision;
	} else {
		in_place = ensure(se, cs->canary_revision, MAX(cs->canary_replicas, cs->replicas));
		keep_a = cs->canary_revision;
		keep_b = p->keep_previous ? cs->previous_revision : 0;
	}
	/* what a restarted controller waits for before it accepts changes (the
	 * rolling planner's `converged`): the rollout's replicas are in place;
	 * the rollout itself may be paused for hours, that is not "not restored" */
	se->converged = in_place;
	for (struct replica *r = se->replicas, *next; r; r = next) {
		next = r->next; /* draining a replica that is not running frees it */
		if (r->row.revision != keep_a && r->row.revision != keep_b && !replica_is_leaving(r))
			replica_drain(r, "not part of the rollout any more");
	}
}

/* ---- the tick ---- */

/*
 * The gates of the deployment that started this rollout (windows, incident
 * freezes; see gates_evaluate_step) are checked again every GATE_CHECK_MS
 * while traffic may still increase; the machine holds increases while one
 * is closed. 0 when nothing holds, 1 closed (why set).
 */
static int load_gates(struct svcenv *se)
{
	struct prog *p = se->prog;
	struct deployment_row d = { 0 };
	struct gerr err;
	json_t *req;
	int r;

	r = store_deployment_by_rollout(gd->store, se->rollout.id, &d, &err);
	if (r <= 0)
		return r; /* not linked yet (or a rollout gantry started itself) */
	/* the environment's policy as the controller stores it (gantry apply) */
	req = gd->spec ? gspec_gates(gd->spec, se->row.service, se->row.environment) : NULL;
	p->gates_loaded = true;
	p->gates_spec_version = gd->spec_version;
	if (p->gates) {
		gate_policy_release(p->gates);
		free(p->gates);
		p->gates = NULL;
	}
	if (req && (!strcmp(d.kind, "deploy") || !strcmp(d.kind, "promote"))) {
		p->gates = xcalloc(1, sizeof(*p->gates));
		if (gate_policy_from_json(req, p->gates, &err) < 0) {
			log_error("gates", "rollout=%lld: its gates cannot be read again: %s", (long long)se->rollout.id,
				  err.msg);
			free(p->gates);
			p->gates = NULL;
		}
		p->gates_emergency = d.emergency;
	}
	json_decref(req);
	deployment_row_release(&d);
	return 1;
}

static int gates_closed(struct svcenv *se, char *why, size_t len)
{
	struct prog *p = se->prog;
	struct gate_input in = { 0 };
	struct gate_verdict v;
	struct incident_row *inc = NULL;
	size_t ninc = 0;
	struct gerr err;
	int closed = 0;

	if ((!p->gates_loaded || p->gates_spec_version != gd->spec_version) && load_gates(se) <= 0)
		return 0;
	if (!p->gates || p->gates_emergency)
		return 0;
	if (p->gates->nfreeze && store_incident_list(gd->store, true, &inc, &ninc, &err) < 0) {
		log_error("gates", "%s", err.msg);
		return p->cs.gate_closed; /* unknown: keep the last verdict */
	}
	in.policy = p->gates;
	in.service = se->row.service;
	in.environment = se->row.environment;
	in.kind = "deploy";
	in.now = clock_now_s();
	in.incidents = inc;
	in.nincidents = ninc;
	gates_evaluate_step(&in, &v);
	if (v.result == GATE_REFUSE) {
		strlcpy_g(why, v.reason, len); /* the machine's message is one line: cut */
		closed = 1;
	}
	gate_verdict_release(&v);
	free(inc);
	return closed;
}

static void check_gates(struct svcenv *se, int64_t now)
{
	struct prog *p = se->prog;
	struct canary_event ev = { .kind = CE_GATE };
	struct canary_actions acts;
	char why[ROLLOUT_MSG_LEN] = "";
	int closed;

	if ((p->cs.phase != RP_PROGRESSING && p->cs.phase != RP_PAUSED) || p->cs.promoted ||
	    p->cs.stable_revision == 0 || now - p->gates_checked_ms < GATE_CHECK_MS)
		return;
	p->gates_checked_ms = now;
	closed = gates_closed(se, why, sizeof(why));
	if (closed == (int)p->cs.gate_closed && (!closed || !strcmp(why, p->cs.gate_reason)))
		return;
	if (closed != (int)p->cs.gate_closed)
		daemon_event(se, p->cs.canary_revision, closed ? "gate_hold" : "gate_open",
			     closed ? "traffic increases held: %s" : "gates open again: traffic may increase%s", why);
	ev.why = closed ? why : NULL;
	canary_step(&p->cs, &p->rc->cfg, &ev, now, &acts);
	execute(se, &acts, now);
	p->dirty = true;
}

/* "R of N proxies reporting", as the last sum of the fleet's windows saw it */
/* the counts the quorum was decided on (the last sum of windows) */
static void quorum_text(char *buf, size_t len)
{
	size_t total, rep = proxypeers_reporting(&total);
	snprintf(buf, len, "%zu of %zu proxies reporting", rep, total);
}

/*
 * With several proxies, a fleet below a quorum of reporting ones holds
 * what the clock alone would do (a timed pause running out, an automatic
 * promotion, the end of a watch; canary.h): the state machine is told
 * whenever the count changes (docs/internals/fleet.md, "The quorum gate").
 */
static void check_quorum(struct svcenv *se, int64_t now)
{
	struct prog *p = se->prog;
	struct canary_event ev = { .kind = CE_QUORUM };
	struct canary_actions acts;
	char why[ROLLOUT_MSG_LEN] = "";
	bool low;

	if (p->cs.phase == RP_ROLLED_BACK || p->cs.phase == RP_ABORTED)
		return;
	low = proxypeers_count() > 0 && !proxypeers_quorum();
	if (low)
		quorum_text(why, sizeof(why));
	if (low == p->cs.quorum_low && (!low || !strcmp(why, p->cs.quorum_reason)))
		return;
	if (low != p->cs.quorum_low)
		log_info("rollout", "rollout=%lld quorum=%s%s%s", (long long)se->rollout.id, low ? "lost" : "back",
			 low ? " " : "", why);
	ev.why = low ? why : NULL;
	canary_step(&p->cs, &p->rc->cfg, &ev, now, &acts);
	execute(se, &acts, now);
	p->dirty = true;
}

bool progressive_reconcile(struct svcenv *se, int64_t now, int64_t mono)
{
	struct prog *p = se->prog;
	struct canary_actions acts;
	struct canary_event ev = { 0 };
	int ready;

	if (!p)
		return false;
	ready = count(se, p->cs.canary_revision, true);
	if (ready != p->last_ready) {
		p->last_ready = ready;
		ev.kind = CE_CANARY_READY;
		ev.ready = ready;
		canary_step(&p->cs, &p->rc->cfg, &ev, now, &acts);
		execute(se, &acts, now);
	}
	run_analyses(se, now, mono);
	check_rollback_on(se, now, mono);
	check_gates(se, now);
	check_quorum(se, now);
	ev.kind = CE_TICK;
	canary_step(&p->cs, &p->rc->cfg, &ev, now, &acts);
	execute(se, &acts, now);
	/* a write of this step failed: hold (the tick puts se back as recorded) */
	if (!daemon_store_ok())
		return true;
	reconcile_replicas(se);
	if (p->dirty)
		save(se);
	if (!daemon_store_ok())
		return true;
	/* over: terminal, or complete with nothing left to watch or keep warm */
	if (p->cs.phase == RP_ROLLED_BACK || p->cs.phase == RP_ABORTED ||
	    (p->cs.phase == RP_COMPLETE && !p->keep_previous && (p->disarmed || !canary_armed(&p->cs, now)))) {
		struct gerr err;
		bool back = p->cs.phase != RP_COMPLETE;
		log_info("rollout", "rollout=%lld over (%s)", (long long)se->rollout.id, rollout_phase_name(p->cs.phase));
		progressive_free(se);
		daemon_set_traffic(se, "", &err);
		if (daemon_save_svcenv(se) == 0)
			proxyctl_write_routes();
		(void)back;
		return false; /* the rolling planner takes over (nothing left to do) */
	}
	return true;
}

int progressive_command(struct svcenv *se, int kind, const char *who, const char *why, bool full,
			struct gerr *err)
{
	struct prog *p = se->prog;
	struct canary_event ev = { .kind = (enum canary_event_kind)kind, .who = who, .why = why, .full = full };
	struct canary_actions acts;
	int64_t now = clock_steady_ms(); /* the machine's clock (see progressive_reconcile) */
	if (!p)
		return gerr_set(err, "%s@%s has no canary or blue-green rollout in progress", se->row.service,
				se->row.environment);
	canary_step(&p->cs, &p->rc->cfg, &ev, now, &acts);
	execute(se, &acts, now);
	save(se);
	daemon_kick();
	return 0;
}

json_t *progressive_status(const struct svcenv *se)
{
	const struct prog *p = se->prog;
	json_t *o, *runs;
	if (!p)
		return NULL;
	o = canary_state_to_json(&p->cs);
	runs = json_array();
	for (int i = 0; i < MAX_RUNS; i++)
		if (p->used[i])
			json_array_append_new(runs, json_pack("{s:s, s:s, s:s, s:i}", "analysis", p->runs[i].def.name,
							      "phase", analysis_phase_name(p->runs[i].phase),
							      "reason", p->runs[i].reason, "rounds", p->runs[i].rounds));
	json_object_set_new(o, "analyses", runs);
	{
		/* each rollback_on condition: its last verdict, and since when it holds */
		json_t *rb = json_array();
		for (size_t i = 0; i < p->nrb; i++) {
			char desc[256];
			const struct cond_eval *e = &p->rb[i];
			cond_eval_describe(e, "canary", p->cs.canary_revision, desc, sizeof(desc));
			json_array_append_new(rb, json_pack("{s:s, s:s, s:s, s:o}", "condition",
				p->rc->cfg.rollback_on[p->rb_index[i]], "verdict",
				e->have_last ? cond_verdict_name(e->last) : "no_data", "last", e->have_last ? desc : "",
				"holding_since_ms", cond_eval_since(e) >= 0 ? json_integer(cond_eval_since(e)) : json_null()));
		}
		json_object_set_new(o, "rollback_on", rb);
	}
	{
		json_t *steps = json_array();
		const struct canary_config *cc = &p->rc->cfg.canary;
		for (size_t i = 0; p->cs.kind == STRATEGY_CANARY && i < cc->nsteps; i++) {
			const struct canary_step *st = &cc->steps[i];
			char d[160], dur[32];
			switch (st->kind) {
			case CSTEP_WEIGHT: snprintf(d, sizeof(d), "weight %d%%", st->weight); break;
			case CSTEP_PAUSE:
				if (st->pause_ms < 0)
					snprintf(d, sizeof(d), "pause (until resumed)");
				else
					snprintf(d, sizeof(d), "pause %s", format_duration(st->pause_ms, dur, sizeof(dur)));
				break;
			case CSTEP_ANALYSIS: snprintf(d, sizeof(d), "analysis %s", st->analysis ? st->analysis : "?"); break;
			case CSTEP_MATCH:
				snprintf(d, sizeof(d), "match %s: %s%s", st->nheaders ? st->headers[0].name : "?",
					 st->nheaders ? st->headers[0].value : "?", st->nheaders && st->headers[0].prefix ? "*" : "");
				break;
			case CSTEP_REPLICAS: snprintf(d, sizeof(d), "replicas %d", st->replicas); break;
			}
			json_array_append_new(steps, json_string(d));
		}
		json_object_set_new(o, "steps", steps);
	}
	return o;
}

static void add_rules(json_t *rules, const struct header_match *h, size_t n, int revision)
{
	char rev[16];
	snprintf(rev, sizeof(rev), "%d", revision);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(rules, json_pack("{s:s, s:s, s:b, s:s}", "header", h[i].name, "value",
						       h[i].value, "prefix", h[i].prefix, "revision", rev));
}

void progressive_route(const struct svcenv *se, json_t *route, const char *(*tag_of)(int revision, void *),
		       void *data)
{
	const struct prog *p = se->prog;
	bool live;
	(void)tag_of;
	(void)data;
	if (!p)
		return;
	live = p->cs.phase == RP_PROGRESSING || p->cs.phase == RP_PAUSED;
	if (live && (p->nheaders || p->nstep_headers)) {
		json_t *rules = json_array();
		add_rules(rules, p->headers, p->nheaders, p->cs.canary_revision);
		add_rules(rules, p->step_headers, p->nstep_headers, p->cs.canary_revision);
		json_object_set_new(route, "header_rules", rules);
	}
	if (live && p->rc->cfg.shield && p->cs.stable_revision > 0 && !p->cs.promoted) {
		char c[16], st[16];
		snprintf(c, sizeof(c), "%d", p->cs.canary_revision);
		snprintf(st, sizeof(st), "%d", p->cs.stable_revision);
		json_object_set_new(route, "shield", json_pack("{s:s, s:s}", "canary", c, "stable", st));
	}
}

int progressive_canary_revision(const struct svcenv *se)
{
	const struct prog *p = se->prog;
	return p && (p->cs.phase == RP_PROGRESSING || p->cs.phase == RP_PAUSED) ? p->cs.canary_revision : 0;
}

const char *progressive_preview_tag(const struct svcenv *se)
{
	const struct prog *p = se->prog;
	return p && (p->cs.phase == RP_PROGRESSING || p->cs.phase == RP_PAUSED) ? p->preview_tag : NULL;
}

int progressive_rollback_warm(struct svcenv *se, int to, const char *who, struct gerr *err)
{
	struct prog *p = se->prog;
	struct canary_action a = { .kind = CA_SET_TRAFFIC, .slot = SLOT_NONE };
	int prev, cur;
	char why[256];

	if (!p || !p->cs.promoted || !p->keep_previous || p->cs.previous_revision <= 0 ||
	    (to && to != p->cs.previous_revision))
		return 1; /* not a warm rollback: the caller deploys a copy */
	prev = p->cs.previous_revision;
	cur = p->cs.canary_revision;
	if (count(se, prev, true) == 0)
		return 1; /* nothing warm to switch to */
	snprintf(why, sizeof(why), "rollback to revision %d by %s (still warm: a route change)", prev, who);
	a.traffic[0] = (struct traffic_split){ prev, 100 };
	a.traffic[1] = (struct traffic_split){ cur, 0 };
	a.ntraffic = 2;
	set_traffic(se, &a);
	se->row.target_revision = prev;
	se->row.stable_revision = prev;
	strlcpy_g(se->row.phase, "rolled_back", sizeof(se->row.phase));
	snprintf(se->row.message, sizeof(se->row.message), "%s", why);
	daemon_save_svcenv(se);
	if (store_revision_set_status(gd->store, se->row.service, se->row.environment, cur, "rolled_back", why, err) < 0 ||
	    store_revision_set_status(gd->store, se->row.service, se->row.environment, prev, "serving", NULL, err) < 0)
		return -1;
	strlcpy_g(se->rollout.phase, "rolled_back", sizeof(se->rollout.phase));
	snprintf(se->rollout.message, sizeof(se->rollout.message), "%s", why);
	daemon_save_rollout(se);
	daemon_event(se, cur, "rollout_rolled_back", "revision %d: %s", cur, why);
	progressive_free(se);
	/* the split stays until the planner has retired the other revision */
	daemon_set_traffic(se, "", err);
	daemon_save_svcenv(se);
	proxyctl_write_routes();
	daemon_kick();
	return 0;
}
