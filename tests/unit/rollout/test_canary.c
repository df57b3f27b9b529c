#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "rollout/canary.h"

#define MIN_MS (60 * 1000LL)

static struct analysis_metric slo_metric = { .name = (char *)"errors", .fail_if = (char *)"error_rate > 1%" };
static struct analysis_def analyses[] = {
	{ .name = (char *)"slo", .interval_ms = 10000, .error_limit = 4, .metrics = &slo_metric, .nmetrics = 1 },
};
static struct header_match hdr = { .name = (char *)"x-canary", .value = (char *)"true" };
static char *rb[] = { (char *)"error_rate > 5% for 2m" };

static struct canary_step steps[] = {
	{ .kind = CSTEP_WEIGHT, .weight = 5 },
	{ .kind = CSTEP_PAUSE, .pause_ms = 10 * MIN_MS },
	{ .kind = CSTEP_ANALYSIS, .analysis = (char *)"slo" },
	{ .kind = CSTEP_WEIGHT, .weight = 25 },
	{ .kind = CSTEP_PAUSE, .pause_ms = -1 },
	{ .kind = CSTEP_WEIGHT, .weight = 50 },
	{ .kind = CSTEP_PAUSE, .pause_ms = 30000 },
};

static struct svc_config canary_cfg(void)
{
	struct svc_config c = { 0 };
	c.service = (char *)"api";
	c.environment = (char *)"production";
	c.replicas = 4;
	c.progress_deadline_ms = 10 * MIN_MS;
	c.strategy.kind = STRATEGY_CANARY;
	c.canary.steps = steps;
	c.canary.nsteps = ARRAY_SIZE(steps);
	c.analyses = analyses;
	c.nanalyses = 1;
	c.rollback_on = rb;
	c.nrollback_on = 1;
	c.watch_ms = 30 * MIN_MS;
	return c;
}

/* persists and restores st, as the controller does after every transition (and after kill -9) */
static void roundtrip(struct canary_state *st)
{
	struct canary_state back;
	struct gerr err;
	json_t *j = canary_state_to_json(st), *j2;
	char *a, *b;

	assert_non_null(j);
	if (canary_state_from_json(&back, j, &err) < 0)
		fail_msg("from_json: %s", err.msg);
	j2 = canary_state_to_json(&back);
	a = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	b = json_dumps(j2, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(a, b);
	free(a);
	free(b);
	json_decref(j);
	json_decref(j2);
	*st = back;
}

static void ev(struct canary_state *st, const struct svc_config *cfg, struct canary_event e, int64_t now,
	       struct canary_actions *out)
{
	canary_step(st, cfg, &e, now, out);
	roundtrip(st);
}

static const struct canary_action *find(const struct canary_actions *a, enum canary_action_kind k)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->a[i].kind == k)
			return &a->a[i];
	return NULL;
}

static void assert_traffic(const struct canary_actions *a, int stable_w, int canary_w)
{
	const struct canary_action *t = find(a, CA_SET_TRAFFIC);
	if (!t)
		fail_msg("no set_traffic");
	assert_int_equal(t->ntraffic, 2);
	assert_int_equal(t->traffic[0].revision, 1);
	assert_int_equal(t->traffic[0].weight, stable_w);
	assert_int_equal(t->traffic[1].revision, 2);
	assert_int_equal(t->traffic[1].weight, canary_w);
}

#define READY(n) ((struct canary_event){ .kind = CE_CANARY_READY, .ready = (n) })
#define TICK ((struct canary_event){ .kind = CE_TICK })
#define VERDICT(s, v, r) ((struct canary_event){ .kind = CE_ANALYSIS_VERDICT, .slot = (s), .verdict = (v), .why = (r) })

/* the start and the first weight step, shared by several tests */
static void start_to_weight5(struct canary_state *st, const struct svc_config *cfg, struct canary_actions *a)
{
	struct gerr err;
	assert_int_equal(canary_start(st, cfg, 1, 2, 4, 0, a, &err), 0);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->a[0].kind, CA_SCALE_CANARY);
	assert_int_equal(a->a[0].replicas, 1);
	assert_null(find(a, CA_SET_TRAFFIC)); /* no traffic before a canary replica is ready */
	roundtrip(st);
	ev(st, cfg, READY(1), 1000, a);
	assert_traffic(a, 95, 5);
	assert_int_equal(st->step, 1);
	assert_int_equal(canary_next_deadline(st), 1000 + 10 * MIN_MS);
}

static void test_happy_path(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	const struct canary_action *x;
	int64_t t;

	start_to_weight5(&st, &cfg, &a);
	/* the pause holds until its deadline */
	ev(&st, &cfg, TICK, 5 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	t = 1000 + 10 * MIN_MS;
	ev(&st, &cfg, TICK, t, &a);
	x = find(&a, CA_START_ANALYSIS);
	assert_non_null(x);
	assert_string_equal(x->analysis, "slo");
	assert_int_equal(x->slot, 2);
	/* a verdict for another slot is stale */
	ev(&st, &cfg, VERDICT(0, AN_SUCCESSFUL, "x"), t + 1, &a);
	assert_int_equal(a.n, 0);
	ev(&st, &cfg, VERDICT(2, AN_SUCCESSFUL, "ok"), t + 60000, &a);
	assert_traffic(&a, 75, 25);
	/* pause: {} */
	assert_int_equal(st.phase, RP_PAUSED);
	assert_non_null(find(&a, CA_PAUSE));
	ev(&st, &cfg, TICK, t + 100 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME, .who = "alice" }), t + 101 * MIN_MS, &a);
	x = find(&a, CA_SCALE_CANARY);
	assert_non_null(x);
	assert_int_equal(x->replicas, 2);
	assert_null(find(&a, CA_SET_TRAFFIC)); /* 50% waits for 2 ready canary replicas */
	ev(&st, &cfg, READY(1), t + 102 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	ev(&st, &cfg, READY(2), t + 103 * MIN_MS, &a);
	assert_traffic(&a, 50, 50);
	t += 103 * MIN_MS;
	ev(&st, &cfg, TICK, t + 30000, &a);
	/* promotion: full size first, stable untouched */
	x = find(&a, CA_SCALE_CANARY);
	assert_non_null(x);
	assert_int_equal(x->replicas, 4);
	assert_null(find(&a, CA_PROMOTE));
	ev(&st, &cfg, READY(4), t + 60000, &a);
	assert_traffic(&a, 0, 100);
	assert_non_null(find(&a, CA_PROMOTE));
	assert_non_null(find(&a, CA_COMPLETE));
	assert_null(find(&a, CA_DISARM)); /* watched for 30m */
	assert_int_equal(st.phase, RP_COMPLETE);
	assert_true(canary_armed(&st, t + 2 * MIN_MS));
	/* the previous revision is retired after 10m; rollback_on disarmed after 30m */
	ev(&st, &cfg, TICK, t + 60000 + CANARY_KEEP_PREVIOUS_MS, &a);
	x = find(&a, CA_RETIRE_PREVIOUS);
	assert_non_null(x);
	assert_int_equal(x->revision, 1);
	ev(&st, &cfg, TICK, t + 60000 + 30 * MIN_MS, &a);
	assert_non_null(find(&a, CA_DISARM));
	assert_false(canary_armed(&st, t + 60000 + 30 * MIN_MS));
	assert_int_equal(canary_next_deadline(&st), INT64_MAX);
}

static void test_pause_freezes_timer(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;

	start_to_weight5(&st, &cfg, &a);
	/* 4 minutes into the 10 minute pause */
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_PAUSE, .who = "bob", .why = "looking at logs" }), 1000 + 4 * MIN_MS, &a);
	assert_int_equal(st.phase, RP_PAUSED);
	assert_string_equal(find(&a, CA_PAUSE)->reason, "by bob: looking at logs");
	assert_int_equal(canary_next_deadline(&st), INT64_MAX);
	ev(&st, &cfg, TICK, 1000 + 60 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	/* resumed at 60m: 6 minutes remain, not 10 and not 0 */
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME, .who = "bob" }), 1000 + 60 * MIN_MS, &a);
	assert_int_equal(canary_next_deadline(&st), 1000 + 66 * MIN_MS);
	ev(&st, &cfg, TICK, 1000 + 66 * MIN_MS - 1, &a);
	assert_int_equal(a.n, 0);
	ev(&st, &cfg, TICK, 1000 + 66 * MIN_MS, &a);
	assert_non_null(find(&a, CA_START_ANALYSIS));
}

static void test_resume_full(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;

	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME, .full = true, .who = "alice" }), 2000, &a);
	assert_int_equal(find(&a, CA_SCALE_CANARY)->replicas, 4);
	ev(&st, &cfg, READY(4), 3000, &a);
	assert_traffic(&a, 0, 100);
	assert_non_null(find(&a, CA_PROMOTE));
	assert_int_equal(st.phase, RP_COMPLETE);
}

static void assert_terminal_forever(struct canary_state *st, const struct svc_config *cfg)
{
	struct canary_actions a;
	struct canary_event all[] = {
		TICK, READY(4), VERDICT(2, AN_SUCCESSFUL, ""), { .kind = CE_RESUME, .full = true },
		{ .kind = CE_PROMOTE }, { .kind = CE_PAUSE }, { .kind = CE_ABORT }, { .kind = CE_BREACHED, .why = "x" },
	};
	json_t *j0 = canary_state_to_json(st);
	char *s0 = json_dumps(j0, JSON_SORT_KEYS);
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		json_t *j = NULL;
		char *s;
		canary_step(st, cfg, &all[i], 1000000000, &a);
		assert_int_equal(a.n, 0);
		j = canary_state_to_json(st);
		s = json_dumps(j, JSON_SORT_KEYS);
		assert_string_equal(s, s0);
		free(s);
		json_decref(j);
	}
	free(s0);
	json_decref(j0);
}

static void test_abort(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	const struct canary_action *x;

	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_ABORT, .who = "carol", .why = "wrong build" }), 5000, &a);
	assert_int_equal(st.phase, RP_ABORTED);
	/* traffic back first, then the canary goes */
	assert_int_equal(a.a[0].kind, CA_SET_TRAFFIC);
	assert_traffic(&a, 100, 0);
	x = find(&a, CA_SCALE_CANARY);
	assert_non_null(x);
	assert_int_equal(x->replicas, 0);
	assert_true(x > find(&a, CA_SET_TRAFFIC));
	x = find(&a, CA_ROLLBACK);
	assert_int_equal(x->revision, 1);
	assert_string_equal(x->reason, "aborted by carol: wrong build");
	assert_terminal_forever(&st, &cfg);
}

static void test_analysis_failure_rolls_back(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;

	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, TICK, 1000 + 10 * MIN_MS, &a);
	ev(&st, &cfg, VERDICT(2, AN_FAILED, "error_rate 7.3% > 1% (canary revision 2)"), 1000 + 11 * MIN_MS, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
	assert_traffic(&a, 100, 0);
	assert_string_equal(find(&a, CA_ROLLBACK)->reason, "analysis slo failed: error_rate 7.3% > 1% (canary revision 2)");
	assert_null(find(&a, CA_STOP_ANALYSIS)); /* it ended by itself */
	assert_terminal_forever(&st, &cfg);
}

/* a failed analysis with a flag_off lever: the flag goes off, the rollout pauses where it is */
static void test_analysis_failure_flag_off(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	struct canary_event e = VERDICT(2, AN_FAILED, "error_rate 7.3% > 1% (canary revision 2)");
	const struct canary_action *x;

	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, TICK, 1000 + 10 * MIN_MS, &a);
	e.flag_off = "risky";
	ev(&st, &cfg, e, 1000 + 11 * MIN_MS, &a);
	assert_int_equal(st.phase, RP_PAUSED);
	assert_null(find(&a, CA_ROLLBACK));
	assert_null(find(&a, CA_SET_TRAFFIC)); /* the canary keeps its 5% */
	x = find(&a, CA_FLAG_OFF);
	assert_non_null(x);
	assert_string_equal(x->flag, "risky");
	assert_string_equal(x->reason, "analysis slo failed: error_rate 7.3% > 1% (canary revision 2)");
	assert_true(x < find(&a, CA_PAUSE)); /* off first, then said */
	assert_string_equal(find(&a, CA_PAUSE)->reason, "analysis slo failed, flag risky turned off (resume goes on, "
							"abort rolls back): error_rate 7.3% > 1% (canary revision 2)");
	/* resumed: on to the next step, with the feature off */
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME, .who = "dave" }), 1000 + 20 * MIN_MS, &a);
	assert_traffic(&a, 75, 25);
	assert_int_equal(st.step, 4); /* at the next pause: {} step */

	/* the flag already off (the daemon passes no flag): a failure rolls back */
	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, TICK, 1000 + 10 * MIN_MS, &a);
	e.flag_off = NULL;
	ev(&st, &cfg, e, 1000 + 11 * MIN_MS, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
	assert_null(find(&a, CA_FLAG_OFF));

	/* an error is no evidence against the feature: on_error decides, never the lever */
	cfg.on_error = ON_ERROR_ROLLBACK;
	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, TICK, 1000 + 10 * MIN_MS, &a);
	e = VERDICT(2, AN_ERROR, "prometheus unreachable");
	e.flag_off = "risky";
	ev(&st, &cfg, e, 1000 + 11 * MIN_MS, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
	assert_null(find(&a, CA_FLAG_OFF));
}

static void test_inconclusive_pauses(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;

	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, TICK, 1000 + 10 * MIN_MS, &a);
	ev(&st, &cfg, VERDICT(2, AN_INCONCLUSIVE, "errors: too little data"), 1000 + 11 * MIN_MS, &a);
	assert_int_equal(st.phase, RP_PAUSED);
	assert_string_equal(find(&a, CA_PAUSE)->reason, "analysis slo inconclusive: errors: too little data");
	/* a person looked and resumed: on to the next step */
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME, .who = "dave" }), 1000 + 20 * MIN_MS, &a);
	assert_traffic(&a, 75, 25);
	/* error with on_error: rollback */
	cfg.on_error = ON_ERROR_ROLLBACK;
	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, TICK, 1000 + 10 * MIN_MS, &a);
	ev(&st, &cfg, VERDICT(2, AN_ERROR, "prometheus unreachable"), 1000 + 11 * MIN_MS, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
}

static void test_breach_during_and_after(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	int64_t t;

	/* during */
	start_to_weight5(&st, &cfg, &a);
	assert_true(canary_armed(&st, 2000));
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_BREACHED, .why = "error_rate 7.3% > 5% for 2m (canary revision 2)" }), 2000, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
	assert_traffic(&a, 100, 0);
	assert_string_equal(find(&a, CA_ROLLBACK)->reason, "rollback_on: error_rate 7.3% > 5% for 2m (canary revision 2)");

	/* after completion, inside the watch window: back to the previous revision, a route change */
	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_PROMOTE, .who = "alice" }), 2000, &a);
	ev(&st, &cfg, READY(4), 3000, &a);
	assert_int_equal(st.phase, RP_COMPLETE);
	t = 3000 + 20 * MIN_MS;
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_BREACHED, .why = "restarts 6 > 5 in 5m" }), t, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
	assert_traffic(&a, 100, 0);
	assert_int_equal(find(&a, CA_ROLLBACK)->revision, 1);
	assert_null(find(&a, CA_SCALE_CANARY)); /* promoted: the new stable is the controller's to stop */

	/* after the watch window: ignored */
	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_PROMOTE }), 2000, &a);
	ev(&st, &cfg, READY(4), 3000, &a);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_BREACHED, .why = "late" }), 3000 + 31 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	assert_int_equal(st.phase, RP_COMPLETE);
}

#define GATE(w) ((struct canary_event){ .kind = CE_GATE, .why = (w) })

/* a window or freeze closing mid-rollout holds every traffic increase, and
 * only those; the rollout goes on by itself when the gate opens */
static void test_gate_holds_increases(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	int64_t t = 1000 + 10 * MIN_MS;

	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, GATE("production is frozen by open incident 3"), 2000, &a);
	assert_int_equal(a.n, 0);
	/* the pause and the analysis still run while closed */
	ev(&st, &cfg, TICK, t, &a);
	assert_non_null(find(&a, CA_START_ANALYSIS));
	ev(&st, &cfg, VERDICT(2, AN_SUCCESSFUL, "ok"), t + 60000, &a);
	/* 25% is held at 5% */
	assert_null(find(&a, CA_SET_TRAFFIC));
	assert_int_equal(st.wait, RW_GATE);
	assert_int_equal(st.weight, 5);
	assert_non_null(strstr(st.message, "held at 5%"));
	assert_non_null(strstr(st.message, "incident 3"));
	assert_int_equal(canary_next_deadline(&st), INT64_MAX);
	/* time alone does not move it; a resume while closed does not either */
	ev(&st, &cfg, TICK, t + 100 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_PAUSE, .who = "bob" }), t + 101 * MIN_MS, &a);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME, .who = "bob" }), t + 102 * MIN_MS, &a);
	assert_null(find(&a, CA_SET_TRAFFIC));
	assert_int_equal(st.wait, RW_GATE);
	/* a bad canary is still rolled back while held */
	{
		struct canary_state copy = st;
		struct canary_actions b;
		canary_step(&copy, &cfg, &((struct canary_event){ .kind = CE_BREACHED, .why = "error_rate > 5%" }),
			    t + 103 * MIN_MS, &b);
		assert_traffic(&b, 100, 0);
		assert_int_equal(copy.phase, RP_ROLLED_BACK);
	}
	/* the gate opens: 25% happens at once */
	ev(&st, &cfg, GATE(NULL), t + 104 * MIN_MS, &a);
	assert_traffic(&a, 75, 25);
	assert_int_equal(st.phase, RP_PAUSED); /* the next step is pause: {} */
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME, .who = "bob" }), t + 105 * MIN_MS, &a);
	ev(&st, &cfg, READY(2), t + 106 * MIN_MS, &a);
	assert_traffic(&a, 50, 50);
	/* closed again before the promotion: full size comes up, 100% waits */
	ev(&st, &cfg, GATE("deploys to production are not allowed now (Fri 17:00)"), t + 107 * MIN_MS, &a);
	ev(&st, &cfg, TICK, t + 107 * MIN_MS + 30000, &a);
	assert_int_equal(find(&a, CA_SCALE_CANARY)->replicas, 4);
	ev(&st, &cfg, READY(4), t + 108 * MIN_MS, &a);
	assert_null(find(&a, CA_PROMOTE));
	assert_null(find(&a, CA_SET_TRAFFIC));
	assert_int_equal(st.wait, RW_GATE);
	assert_non_null(strstr(st.message, "before promotion"));
	/* kill -9 here: the restored state still holds */
	roundtrip(&st);
	assert_true(st.gate_closed);
	ev(&st, &cfg, GATE(NULL), t + 200 * MIN_MS, &a);
	assert_traffic(&a, 0, 100);
	assert_non_null(find(&a, CA_PROMOTE));
	assert_int_equal(st.phase, RP_COMPLETE);
}

static void test_first_deploy(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	struct gerr err;
	const struct canary_action *t;

	assert_int_equal(canary_start(&st, &cfg, 0, 1, 4, 0, &a, &err), 0);
	assert_int_equal(find(&a, CA_SCALE_CANARY)->replicas, 4);
	assert_null(find(&a, CA_SET_TRAFFIC));
	roundtrip(&st);
	ev(&st, &cfg, READY(4), 1000, &a);
	t = find(&a, CA_SET_TRAFFIC);
	assert_int_equal(t->ntraffic, 1);
	assert_int_equal(t->traffic[0].revision, 1);
	assert_int_equal(t->traffic[0].weight, 100);
	assert_non_null(find(&a, CA_COMPLETE));
	assert_non_null(find(&a, CA_DISARM)); /* nothing to roll back to */
}

static void test_header_match_and_replicas(void **state)
{
	(void)state;
	struct canary_step s2[] = {
		{ .kind = CSTEP_REPLICAS, .replicas = 2 },
		{ .kind = CSTEP_MATCH, .headers = &hdr, .nheaders = 1 },
		{ .kind = CSTEP_PAUSE, .pause_ms = -1 },
		{ .kind = CSTEP_WEIGHT, .weight = 10 },
		{ .kind = CSTEP_PAUSE, .pause_ms = -1 },
	};
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	struct gerr err;
	const struct canary_action *t;

	cfg.canary.steps = s2;
	cfg.canary.nsteps = ARRAY_SIZE(s2);
	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), 0);
	assert_int_equal(find(&a, CA_SCALE_CANARY)->replicas, 2);
	roundtrip(&st);
	ev(&st, &cfg, READY(1), 1000, &a);
	t = find(&a, CA_SET_TRAFFIC);
	assert_traffic(&a, 100, 0);
	assert_int_equal(t->nstep_headers, 1);
	assert_string_equal(t->step_headers[0].name, "x-canary");
	assert_int_equal(st.phase, RP_PAUSED);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME }), 2000, &a);
	/* weight 10 with replicas: 2 needs 2 ready canary replicas */
	assert_null(find(&a, CA_SET_TRAFFIC));
	ev(&st, &cfg, READY(2), 3000, &a);
	t = find(&a, CA_SET_TRAFFIC);
	assert_traffic(&a, 90, 10);
	assert_int_equal(t->nstep_headers, 1); /* the header route stays */
}

static void test_progress_deadline(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	struct gerr err;

	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), 0);
	assert_int_equal(canary_next_deadline(&st), 10 * MIN_MS);
	ev(&st, &cfg, TICK, 10 * MIN_MS, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
	assert_string_equal(find(&a, CA_ROLLBACK)->reason, "progress deadline exceeded: 0/1 replicas of revision 2 ready");
}

/* the deadline bounds a time without progress: four replicas that turn
 * ready 6 minutes apart (24 minutes in all) never pass a 10 minute deadline */
static void test_progress_deadline_restarts(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	struct gerr err;

	cfg.strategy.kind = STRATEGY_BLUEGREEN;
	cfg.bluegreen.preview_tag = (char *)"preview";
	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), 0);
	for (int n = 1; n <= 3; n++) {
		ev(&st, &cfg, READY(n), n * 6 * MIN_MS, &a);
		assert_int_equal(canary_next_deadline(&st), (n * 6 + 10) * MIN_MS);
		ev(&st, &cfg, TICK, n * 6 * MIN_MS + 5 * MIN_MS, &a);
		assert_int_equal(st.phase, RP_PROGRESSING);
	}
	/* a report with no more ready replicas is no progress */
	ev(&st, &cfg, READY(3), 20 * MIN_MS, &a);
	assert_int_equal(canary_next_deadline(&st), 28 * MIN_MS);
	ev(&st, &cfg, TICK, 28 * MIN_MS, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
	assert_string_equal(find(&a, CA_ROLLBACK)->reason, "progress deadline exceeded: 3/4 replicas of revision 2 ready");
}

static void test_bluegreen(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	struct gerr err;
	const struct canary_action *t;

	cfg.strategy.kind = STRATEGY_BLUEGREEN;
	cfg.bluegreen.preview_tag = (char *)"preview";
	cfg.bluegreen.auto_promote = true;
	cfg.bluegreen.auto_promote_after_ms = MIN_MS;
	cfg.bluegreen.pre_promotion_analysis = (char *)"slo";
	cfg.bluegreen.post_promotion_analysis = (char *)"slo";
	cfg.bluegreen.keep_previous_ms = 10 * MIN_MS;
	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), 0);
	/* full size at once, reachable by its tag, no traffic */
	assert_int_equal(find(&a, CA_SCALE_CANARY)->replicas, 4);
	t = find(&a, CA_SET_TRAFFIC);
	assert_traffic(&a, 100, 0);
	assert_string_equal(t->preview_tag, "preview");
	assert_int_equal(t->revision, 2);
	roundtrip(&st);
	ev(&st, &cfg, READY(3), 1000, &a);
	assert_int_equal(a.n, 0);
	ev(&st, &cfg, READY(4), 2000, &a);
	assert_int_equal(find(&a, CA_START_ANALYSIS)->slot, SLOT_PRE);
	ev(&st, &cfg, VERDICT(SLOT_PRE, AN_SUCCESSFUL, ""), 3000, &a);
	assert_int_equal(canary_next_deadline(&st), 3000 + MIN_MS);
	ev(&st, &cfg, TICK, 3000 + MIN_MS, &a);
	/* the switch: 100% at once */
	assert_traffic(&a, 0, 100);
	assert_non_null(find(&a, CA_PROMOTE));
	assert_int_equal(find(&a, CA_START_ANALYSIS)->slot, SLOT_POST);
	assert_null(find(&a, CA_COMPLETE));
	/* post-promotion failure: back to blue by a route change */
	ev(&st, &cfg, VERDICT(SLOT_POST, AN_FAILED, "p99 too high"), 4000 + MIN_MS, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
	assert_traffic(&a, 100, 0);
	assert_null(find(&a, CA_SCALE_CANARY));
	assert_null(find(&a, CA_RETIRE_PREVIOUS));
	assert_terminal_forever(&st, &cfg);

	/* manual promotion */
	cfg.bluegreen.auto_promote = false;
	cfg.bluegreen.pre_promotion_analysis = NULL;
	cfg.bluegreen.post_promotion_analysis = NULL;
	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), 0);
	ev(&st, &cfg, READY(4), 1000, &a);
	assert_int_equal(st.phase, RP_PAUSED);
	ev(&st, &cfg, TICK, 100 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME, .who = "erin" }), 100 * MIN_MS, &a);
	assert_traffic(&a, 0, 100);
	assert_non_null(find(&a, CA_COMPLETE));
	ev(&st, &cfg, TICK, 110 * MIN_MS, &a);
	assert_int_equal(find(&a, CA_RETIRE_PREVIOUS)->revision, 1);
}

static void test_background_analysis(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	struct gerr err;

	cfg.canary.analysis = (char *)"slo";
	cfg.canary.analysis_starting_step = 1;
	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), 0);
	assert_null(find(&a, CA_START_ANALYSIS));
	ev(&st, &cfg, READY(1), 1000, &a);
	assert_int_equal(find(&a, CA_START_ANALYSIS)->slot, SLOT_BACKGROUND);
	ev(&st, &cfg, VERDICT(SLOT_BACKGROUND, AN_FAILED, "bad"), 2000, &a);
	assert_int_equal(st.phase, RP_ROLLED_BACK);
	assert_string_equal(find(&a, CA_ROLLBACK)->reason, "analysis slo failed: bad");
}

#define QUORUM(w) ((struct canary_event){ .kind = CE_QUORUM, .why = (w) })

/*
 * docs/internals/fleet.md's quorum rule for what the clock alone does: a
 * timed pause that runs out while fewer than a quorum of the proxies
 * report holds (and says so), and goes on as soon as the quorum is back
 */
static void test_quorum_holds_timed_pause(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	int64_t due = 1000 + 10 * MIN_MS;

	start_to_weight5(&st, &cfg, &a);
	/* below quorum before the pause runs out: nothing happens yet */
	ev(&st, &cfg, QUORUM("1 of 3 proxies reporting"), 2000, &a);
	assert_int_equal(a.n, 0);
	assert_true(st.quorum_low);
	assert_int_equal(st.hold, RH_NONE);
	/* the pause runs out: held, once */
	ev(&st, &cfg, TICK, due, &a);
	assert_int_equal(a.n, 1);
	assert_non_null(find(&a, CA_HOLD));
	assert_null(find(&a, CA_START_ANALYSIS));
	assert_int_equal(st.step, 1);
	assert_int_equal(st.hold, RH_TIMER);
	assert_int_equal(st.phase, RP_PROGRESSING);
	assert_non_null(strstr(st.message, "holding: 1 of 3 proxies reporting"));
	assert_non_null(strstr(find(&a, CA_HOLD)->reason, "holding: 1 of 3 proxies reporting"));
	assert_int_equal(canary_next_deadline(&st), INT64_MAX); /* waits for the quorum, not the clock */
	ev(&st, &cfg, TICK, due + 60 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	assert_int_equal(st.step, 1);
	/* a new count is shown; still held */
	ev(&st, &cfg, QUORUM("0 of 3 proxies reporting"), due + 61 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	assert_non_null(strstr(st.message, "holding: 0 of 3 proxies reporting"));
	/* a breach is never held */
	{
		struct canary_state copy = st;
		ev(&copy, &cfg, ((struct canary_event){ .kind = CE_BREACHED, .why = "5xx" }), due + 62 * MIN_MS, &a);
		assert_int_equal(copy.phase, RP_ROLLED_BACK);
		assert_non_null(find(&a, CA_HOLD_END));
		assert_int_equal(copy.hold, RH_NONE);
	}
	/* the quorum is back: the hold ends and the next step (the analysis) starts at once */
	ev(&st, &cfg, QUORUM(NULL), due + 63 * MIN_MS, &a);
	assert_non_null(find(&a, CA_HOLD_END));
	assert_int_equal(find(&a, CA_START_ANALYSIS)->slot, 2);
	assert_int_equal(st.step, 2);
	assert_int_equal(st.hold, RH_NONE);
	assert_false(st.quorum_low);
}

/* a person's resume (or promote) is never held: a person decides */
static void test_quorum_resume_releases(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st, st2;
	struct canary_actions a;
	int64_t due = 1000 + 10 * MIN_MS;

	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, QUORUM("1 of 2 proxies reporting"), 2000, &a);
	ev(&st, &cfg, TICK, due, &a);
	assert_int_equal(st.hold, RH_TIMER);
	st2 = st;
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_RESUME, .who = "alice" }), due + 1000, &a);
	assert_non_null(strstr(find(&a, CA_HOLD_END)->reason, "released by alice"));
	assert_int_equal(find(&a, CA_START_ANALYSIS)->slot, 2);
	assert_int_equal(st.hold, RH_NONE);
	assert_true(st.quorum_low); /* still below: only this step was released */

	/* promote: full size, and the switch is not held either */
	ev(&st2, &cfg, ((struct canary_event){ .kind = CE_PROMOTE, .who = "bob" }), due + 1000, &a);
	assert_non_null(find(&a, CA_HOLD_END));
	assert_int_equal(find(&a, CA_SCALE_CANARY)->replicas, 4);
	ev(&st2, &cfg, READY(4), due + 2000, &a);
	assert_non_null(find(&a, CA_PROMOTE));
	assert_null(find(&a, CA_HOLD));

	/* a user pause while held: the hold ends, the pause is the user's */
	start_to_weight5(&st, &cfg, &a);
	ev(&st, &cfg, QUORUM("1 of 2 proxies reporting"), 2000, &a);
	ev(&st, &cfg, TICK, due, &a);
	ev(&st, &cfg, ((struct canary_event){ .kind = CE_PAUSE, .who = "carol" }), due + 1, &a);
	assert_non_null(find(&a, CA_HOLD_END));
	assert_int_equal(st.phase, RP_PAUSED);
	ev(&st, &cfg, QUORUM(NULL), due + 2, &a);
	assert_int_equal(a.n, 0); /* nothing held any more: still paused */
	assert_int_equal(st.phase, RP_PAUSED);
}

/* an automatic promotion and the end of the watch wait for the quorum too */
static void test_quorum_holds_promotion_and_watch(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	struct gerr err;
	struct canary_step two[] = { { .kind = CSTEP_WEIGHT, .weight = 50 } };

	cfg.canary.steps = two;
	cfg.canary.nsteps = 1;
	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), 0);
	ev(&st, &cfg, READY(2), 1000, &a);
	assert_traffic(&a, 50, 50);
	assert_int_equal(find(&a, CA_SCALE_CANARY)->replicas, 4); /* the last step done: full size */
	ev(&st, &cfg, QUORUM("1 of 3 proxies reporting"), 2000, &a);
	ev(&st, &cfg, READY(4), 3000, &a);
	assert_non_null(find(&a, CA_HOLD));
	assert_null(find(&a, CA_PROMOTE));
	assert_int_equal(st.hold, RH_PROMOTE);
	assert_non_null(strstr(st.message, "holding: 1 of 3 proxies reporting"));
	/* held long past any progress deadline: a hold is not a lack of progress */
	ev(&st, &cfg, TICK, 3000 + 100 * MIN_MS, &a);
	assert_int_equal(a.n, 0);
	ev(&st, &cfg, QUORUM(NULL), 4000 + 100 * MIN_MS, &a);
	assert_non_null(find(&a, CA_HOLD_END));
	assert_non_null(find(&a, CA_PROMOTE));
	assert_traffic(&a, 0, 100);
	assert_int_equal(st.phase, RP_COMPLETE);

	/* the watch (30m) ends below quorum: rollback_on stays armed */
	int64_t end = 4000 + 100 * MIN_MS + 30 * MIN_MS;
	ev(&st, &cfg, QUORUM("1 of 3 proxies reporting"), end - 1000, &a);
	ev(&st, &cfg, TICK, end, &a);
	assert_non_null(find(&a, CA_HOLD));
	assert_null(find(&a, CA_DISARM));
	assert_int_equal(st.hold, RH_WATCH);
	assert_true(canary_armed(&st, end + 60 * MIN_MS));
	ev(&st, &cfg, QUORUM(NULL), end + 60 * MIN_MS, &a);
	assert_non_null(find(&a, CA_HOLD_END));
	assert_non_null(find(&a, CA_DISARM));
	assert_false(canary_armed(&st, end + 60 * MIN_MS));

	/* blue-green: auto_promote_after runs out below quorum */
	cfg = canary_cfg();
	cfg.strategy.kind = STRATEGY_BLUEGREEN;
	cfg.bluegreen.preview_tag = (char *)"preview";
	cfg.bluegreen.auto_promote = true;
	cfg.bluegreen.auto_promote_after_ms = MIN_MS;
	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), 0);
	ev(&st, &cfg, READY(4), 1000, &a);
	ev(&st, &cfg, QUORUM("1 of 2 proxies reporting"), 2000, &a);
	ev(&st, &cfg, TICK, 1000 + MIN_MS, &a);
	assert_non_null(find(&a, CA_HOLD));
	assert_null(find(&a, CA_PROMOTE));
	assert_non_null(strstr(st.message, "holding: 1 of 2 proxies reporting"));
	ev(&st, &cfg, QUORUM(NULL), 1000 + 10 * MIN_MS, &a);
	assert_non_null(find(&a, CA_PROMOTE));
	assert_traffic(&a, 0, 100);

	/* a first deploy has nothing to protect: never held */
	cfg = canary_cfg();
	assert_int_equal(canary_start(&st, &cfg, 0, 1, 2, 0, &a, &err), 0);
	ev(&st, &cfg, QUORUM("1 of 3 proxies reporting"), 500, &a);
	ev(&st, &cfg, READY(2), 1000, &a);
	assert_int_equal(st.phase, RP_COMPLETE);
	assert_null(find(&a, CA_HOLD));
}

static void test_bad_start_and_json(void **state)
{
	(void)state;
	struct svc_config cfg = canary_cfg();
	struct canary_state st;
	struct canary_actions a;
	struct gerr err;
	json_t *j;

	cfg.nanalyses = 0;
	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), -1);
	assert_string_equal(err.msg, "steps[2]: no analysis 'slo'");
	cfg = canary_cfg();
	assert_int_equal(canary_start(&st, &cfg, 1, 1, 4, 0, &a, &err), -1);
	j = json_pack("{s:i, s:s}", "format", 1, "kind", "canary");
	assert_int_equal(canary_state_from_json(&st, j, &err), -1);
	json_decref(j);
	assert_int_equal(canary_start(&st, &cfg, 1, 2, 4, 0, &a, &err), 0);
	j = canary_state_to_json(&st);
	json_object_set_new(j, "weight", json_integer(101));
	assert_int_equal(canary_state_from_json(&st, j, &err), -1);
	assert_non_null(strstr(err.msg, "'weight'"));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_happy_path),        cmocka_unit_test(test_pause_freezes_timer),
		cmocka_unit_test(test_resume_full),       cmocka_unit_test(test_abort),
		cmocka_unit_test(test_analysis_failure_rolls_back), cmocka_unit_test(test_inconclusive_pauses),
		cmocka_unit_test(test_breach_during_and_after), cmocka_unit_test(test_first_deploy),
		cmocka_unit_test(test_header_match_and_replicas), cmocka_unit_test(test_progress_deadline),
		cmocka_unit_test(test_progress_deadline_restarts),
		cmocka_unit_test(test_bluegreen),         cmocka_unit_test(test_background_analysis),
		cmocka_unit_test(test_bad_start_and_json),
		cmocka_unit_test(test_gate_holds_increases),
		cmocka_unit_test(test_quorum_holds_timed_pause),
		cmocka_unit_test(test_quorum_resume_releases),
		cmocka_unit_test(test_quorum_holds_promotion_and_watch),
		cmocka_unit_test(test_analysis_failure_flag_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
