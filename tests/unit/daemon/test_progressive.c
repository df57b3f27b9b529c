/*
 * test_progressive — the progressive-delivery controller (daemon/progressive.c)
 * driven with a fake clock: what it decides from the canary's ready
 * replicas, the proxy's traffic windows, analysis rounds and rollback_on,
 * and what a restarted controller makes of the state it saved.
 *
 * Real: the state machine (rollout/canary.c), analyses and conditions, the
 * metrics windows (daemon/metrics.c, fed with metrics__ingest as the proxy's
 * poll would), the store (a temporary SQLite file). One fake clock is both
 * the wall clock and the metric windows' monotonic one. Fake, below: the rest of
 * the controller it calls (daemon.c, replica.c, proxyctl.c, gates_flow.c),
 * which records what it was asked to do. The fakes replace those objects at
 * link time, so every symbol of theirs that the real objects need is here.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "daemon/daemon.h"
#include "daemon/migrations.h"
#include "daemon/gates_flow.h"
#include "daemon/metrics.h"
#include "daemon/usage.h"
#include "daemon/flags.h"
#include "rollout/canary.h"
#include "store/store_records.h"

#define SEC 1000LL
#define MINUTE (60 * SEC)

/* ------------------------------------------------------------------------ */
/* the controller around progressive.c, faked                               */

struct daemon *gd;
static struct daemon the_daemon;
static struct svcenv *the_se;
static char traffic[2048];       /* the last daemon_set_traffic */
static int ntraffic;             /* how many times it was set */
static char events[8192];        /* "kind kind ..." of daemon_event */
static char notified[2048];      /* "event:message;" of gates_notify */
static int auto_rollbacks;       /* gates_auto_rollback calls */
static int auto_from, auto_to;
static char auto_why[512];
static int next_pid = 1000;

struct svcenv *daemon_svcenv(const char *svc, const char *env, bool create)
{
	(void)svc;
	(void)env;
	(void)create;
	return the_se;
}

struct revcfg *daemon_revcfg(struct svcenv *se, int number, struct gerr *err)
{
	for (struct revcfg *rc = se->revs; rc; rc = rc->next)
		if (rc->number == number)
			return rc;
	gerr_set(err, "no revision %d", number);
	return NULL;
}

int daemon_desired(const struct svcenv *se, const struct revcfg *rc)
{
	return se->row.replicas > 0 ? se->row.replicas : rc->cfg.replicas;
}

void daemon_event(struct svcenv *se, int revision, const char *kind, const char *fmt, ...)
{
	(void)se;
	(void)revision;
	(void)fmt;
	snprintf(events + strlen(events), sizeof(events) - strlen(events), "%s ", kind);
}

int daemon_set_traffic(struct svcenv *se, const char *json, struct gerr *err)
{
	(void)se;
	(void)err;
	strlcpy_g(traffic, json, sizeof(traffic));
	ntraffic++;
	return 0;
}

int daemon_save_svcenv(struct svcenv *se)
{
	(void)se;
	return 0;
}

/* as daemon.c: the rollout row is what a restarted controller reads back */
int daemon_save_rollout(struct svcenv *se)
{
	struct gerr err;
	if (store_rollout_put(gd->store, &se->rollout, &err) < 0)
		fail_msg("%s", err.msg);
	return 0;
}

void daemon_kick(void)
{
}

bool daemon_artifact_ok(struct svcenv *se, struct revcfg *rc)
{
	(void)se;
	(void)rc;
	return true;
}

struct replica *replica_create(struct svcenv *se, struct revcfg *rc)
{
	struct replica *r = xcalloc(1, sizeof(*r)), **pp = &se->replicas;
	r->se = se;
	r->rc = rc;
	r->row.revision = rc->number;
	strlcpy_g(r->row.state, "starting", sizeof(r->row.state));
	while (*pp)
		pp = &(*pp)->next;
	*pp = r;
	return r;
}

int replica_spawn(struct replica *r)
{
	r->row.pid = next_pid++;
	return 0;
}

void replica_drain(struct replica *r, const char *why)
{
	(void)why;
	strlcpy_g(r->row.state, "draining", sizeof(r->row.state));
}

bool replica_is_ready(const struct replica *r)
{
	return !strcmp(r->row.state, "ready");
}

bool replica_is_leaving(const struct replica *r)
{
	return !strcmp(r->row.state, "draining") || !strcmp(r->row.state, "stopping");
}

void proxyctl_write_routes(void)
{
}

/* storefault.c's, on the real store of the test */
bool daemon_store_ok(void)
{
	return !store_fault(gd->store, NULL);
}

int proxyctl_admin_get(const char *path, void (*done)(long code, const char *body, void *data), void *data)
{
	(void)path;
	(void)done;
	(void)data;
	return -1;
}

void gates_notify(const char *event, const char *svc, const char *env, int revision, const char *message)
{
	(void)svc;
	(void)env;
	(void)revision;
	snprintf(notified + strlen(notified), sizeof(notified) - strlen(notified), "%s:%s;", event, message);
}

void gates_auto_rollback(const char *svc, const char *env, int from, int to, const char *why)
{
	(void)svc;
	(void)env;
	auto_rollbacks++;
	auto_from = from;
	auto_to = to;
	strlcpy_g(auto_why, why, sizeof(auto_why));
}

/* daemon/migrations.c: the schema after a canary's rollback (none here) */
void mig_flow_traffic_rollback(struct svcenv *se, int cur, int to, const char *why)
{
	(void)se;
	(void)cur;
	(void)to;
	(void)why;
}

/* daemon/flags.c: the flag_off lever of an analysis (its state "on" until pulled) */
static char levers[512];         /* "flag:source;" of daemon_flags_lever */
static bool lever_pulled;

const char *daemon_flag_state(struct daemon *d, const char *env, const char *name)
{
	(void)d;
	(void)env;
	(void)name;
	return lever_pulled ? "off" : "on";
}

int daemon_flags_lever(struct svcenv *se, int rev, const char *flag, const char *source, const char *why,
		       struct gerr *err)
{
	(void)se;
	(void)rev;
	(void)why;
	(void)err;
	lever_pulled = true;
	snprintf(levers + strlen(levers), sizeof(levers) - strlen(levers), "%s:%s;", flag, source);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* configs                                                                  */

static struct analysis_metric slo_metric = { .name = (char *)"errors", .query = (char *)"error_rate",
					     .fail_if = (char *)"> 1%", .min_requests = 20 };
static struct analysis_def slo = { .name = (char *)"slo", .interval_ms = 10 * SEC, .count = 3, .error_limit = 4,
				   .metrics = &slo_metric, .nmetrics = 1 };

/* weight 50 (1 of 2 replicas), a one-minute pause, then promotion */
static struct canary_step pause_steps[] = {
	{ .kind = CSTEP_WEIGHT, .weight = 50 },
	{ .kind = CSTEP_PAUSE, .pause_ms = MINUTE },
};
/* weight 50, then analysis slo (3 rounds of 10 s) */
static struct canary_step analysis_steps[] = {
	{ .kind = CSTEP_WEIGHT, .weight = 50 },
	{ .kind = CSTEP_ANALYSIS, .analysis = (char *)"slo" },
};
/* weight 50, then a long pause while rollback_on watches */
static struct canary_step watch_steps[] = {
	{ .kind = CSTEP_WEIGHT, .weight = 50 },
	{ .kind = CSTEP_PAUSE, .pause_ms = 10 * MINUTE },
};
static char *rollback_on[] = { (char *)"error_rate > 5% for 3s" };

static struct svc_config config(struct canary_step *steps, size_t nsteps)
{
	struct svc_config c = { 0 };
	c.service = (char *)"api";
	c.environment = (char *)"prod";
	c.replicas = 2;
	c.progress_deadline_ms = 10 * MINUTE;
	c.strategy.kind = STRATEGY_CANARY;
	c.canary.steps = steps;
	c.canary.nsteps = nsteps;
	c.analyses = &slo;
	c.nanalyses = 1;
	return c;
}

/* ------------------------------------------------------------------------ */
/* the world: svcenv api@prod serving revision 1 on 2 ready replicas        */

static char dir[256];
static struct revcfg rc1, rc2;

static void mark_ready(struct replica *r)
{
	strlcpy_g(r->row.state, "ready", sizeof(r->row.state));
}
static struct svcenv se;
static int64_t T; /* the fake clock's start */

/* cumulative counters per revision, as the proxy's /windows reports them */
static unsigned long long req[3], err5[3];

static int setup(void **state)
{
	struct gerr err;
	struct revision_row r = { 0 };
	char *path;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/gantry-prog-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	memset(&the_daemon, 0, sizeof(the_daemon));
	path = xasprintf("%s/state.db", dir);
	if (store_open(path, &the_daemon.store, &err) < 0)
		fail_msg("%s", err.msg);
	free(path);
	gd = &the_daemon;
	memset(&se, 0, sizeof(se));
	the_se = &se;
	strlcpy_g(se.row.service, "api", sizeof(se.row.service));
	strlcpy_g(se.row.environment, "prod", sizeof(se.row.environment));
	se.row.stable_revision = se.row.target_revision = 1;
	memset(&rc1, 0, sizeof(rc1));
	memset(&rc2, 0, sizeof(rc2));
	rc1.number = 1;
	rc2.number = 2;
	rc1.next = &rc2;
	se.revs = &rc1;
	/* the revisions' rows: the controller marks them serving, superseded, failed */
	strlcpy_g(r.service, "api", sizeof(r.service));
	strlcpy_g(r.environment, "prod", sizeof(r.environment));
	strlcpy_g(r.status, "serving", sizeof(r.status));
	assert_int_equal(store_revision_create(gd->store, &r, &err), 0);
	strlcpy_g(r.status, "progressing", sizeof(r.status));
	assert_int_equal(store_revision_create(gd->store, &r, &err), 0);
	for (int i = 0; i < 2; i++)
		mark_ready(replica_create(&se, &rc1));
	traffic[0] = events[0] = notified[0] = auto_why[0] = 0;
	ntraffic = auto_rollbacks = auto_from = auto_to = 0;
	levers[0] = 0;
	lever_pulled = false;
	memset(req, 0, sizeof(req));
	memset(err5, 0, sizeof(err5));
	T = 1700000000000LL;
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	(void)state;
	progressive_free(&se);
	for (struct replica *r = se.replicas, *next; r; r = next) {
		next = r->next;
		free(r);
	}
	se.replicas = NULL;
	metrics_free();
	store_close(gd->store);
	gd = NULL;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

/* as rollouts.c before progressive_start: the rollout row of revision 2 */
static void start(struct svc_config cfg, int64_t now)
{
	struct gerr err;
	rc1.cfg = cfg;
	rc2.cfg = cfg;
	strlcpy_g(se.rollout.service, "api", sizeof(se.rollout.service));
	strlcpy_g(se.rollout.environment, "prod", sizeof(se.rollout.environment));
	se.rollout.revision = 2;
	se.rollout.from_revision = 1;
	strlcpy_g(se.rollout.strategy, "canary", sizeof(se.rollout.strategy));
	strlcpy_g(se.rollout.phase, "progressing", sizeof(se.rollout.phase));
	daemon_save_rollout(&se);
	se.row.target_revision = 2;
	if (progressive_start(&se, &rc2, 1, now, &err) < 0)
		fail_msg("%s", err.msg);
}

static int replicas_of(int rev, const char *state)
{
	int n = 0;
	for (struct replica *r = se.replicas; r; r = r->next)
		if (r->row.revision == rev && (!state || !strcmp(r->row.state, state)))
			n++;
	return n;
}

/* what the replicas do by themselves: the started ones become ready */
static void become_ready(int rev)
{
	for (struct replica *r = se.replicas; r; r = r->next)
		if (r->row.revision == rev && !strcmp(r->row.state, "starting"))
			strlcpy_g(r->row.state, "ready", sizeof(r->row.state));
}

/* one poll of the proxy's /windows at now: each revision's counters */
static void poll_windows(int64_t now)
{
	json_t *revs = json_array(), *lat = json_array(), *o;
	char *doc;
	for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++)
		json_array_append_new(lat, json_integer(0));
	for (int rev = 1; rev <= 2; rev++) {
		char name[8];
		snprintf(name, sizeof(name), "%d", rev);
		json_array_append_new(revs, json_pack("{s:s, s:s, s:s, s:I, s:[I, I, I, I, I, I], s:O, s:i, s:i, s:i}",
						      "service", "api", "environment", "prod", "revision", name,
						      "requests", (json_int_t)req[rev], "status", (json_int_t)0,
						      (json_int_t)0, (json_int_t)(req[rev] - err5[rev]), (json_int_t)0,
						      (json_int_t)0, (json_int_t)err5[rev], "latency", lat, "bytes_in", 0,
						      "bytes_out", 0, "inflight", 0));
	}
	o = json_pack("{s:I, s:i, s:o}", "now_ms", (json_int_t)now, "generation", 1, "revisions", revs);
	doc = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	json_decref(lat);
	assert_true(metrics__ingest(doc, now) >= 0);
	free(doc);
}

/*
 * The controller's loop from *now to until, every 500 ms: the proxy's
 * windows (each revision serving rps requests a second, the canary failing
 * canary_err_pct of them), then the reconcile tick. Stops early (returning
 * false) when the rollout is over.
 */
static int rps = 100, canary_err_pct;

static bool run(int64_t *now, int64_t until)
{
	for (; *now <= until; *now += 500) {
		for (int rev = 1; rev <= 2; rev++) {
			unsigned long long n = (unsigned long long)rps / 2;
			req[rev] += n;
			if (rev == 2)
				err5[rev] += n * (unsigned long long)canary_err_pct / 100;
		}
		poll_windows(*now);
		if (!progressive_reconcile(&se, *now, *now))
			return false;
		become_ready(2);
	}
	return true;
}

/* a member of progressive_status */
static json_t *status;
static json_t *st(const char *key)
{
	json_decref(status);
	status = progressive_status(&se);
	assert_non_null(status);
	return json_object_get(status, key);
}

static int st_int(const char *key)
{
	return (int)json_integer_value(st(key));
}

static const char *st_str(const char *key)
{
	return json_string_value(st(key));
}

static void revision_status_is(int rev, const char *want)
{
	struct revision_row r;
	struct gerr err;
	assert_int_equal(store_revision_get(gd->store, "api", "prod", rev, &r, &err), 1);
	assert_string_equal(r.status, want);
	revision_row_release(&r);
}

/* ------------------------------------------------------------------------ */
/* the tests                                                                */

/* weight 50: one canary replica, traffic once it is ready; the pause's
 * deadline; promotion at full size; the previous revision kept warm, then retired */
static void test_steps_then_promotion(void **state)
{
	int64_t now = T;
	(void)state;
	start(config(pause_steps, ARRAY_SIZE(pause_steps)), now);
	assert_string_equal(st_str("wait"), "ready");
	assert_int_equal(st_int("canary_replicas"), 1);
	assert_null(strstr(traffic, "\"weight\":50"));

	/* the tick starts the canary's replica; nothing routes to it before it is ready */
	assert_true(progressive_reconcile(&se, now, now));
	assert_int_equal(replicas_of(2, "starting"), 1);
	assert_false(se.converged);
	assert_null(strstr(traffic, "\"weight\":50"));
	become_ready(2);
	now += 100;
	assert_true(progressive_reconcile(&se, now, now));
	assert_string_equal(traffic, "[{\"revision\":1,\"weight\":50},{\"revision\":2,\"weight\":50}]");
	assert_non_null(strstr(notified, "rollout_step:revision 2 at 50%"));
	assert_string_equal(st_str("wait"), "pause");
	assert_int_equal(replicas_of(1, "ready"), 2); /* the stable keeps its full count */
	assert_true(se.converged);

	/* the pause holds for its minute, measured from when it began */
	assert_true(run(&now, T + 100 + MINUTE - 500));
	assert_string_equal(st_str("wait"), "pause");
	assert_int_equal(st_int("weight"), 50);
	assert_true(run(&now, T + 100 + MINUTE + 1000));
	/* promotion: the canary at full size, then all the traffic */
	assert_int_equal(replicas_of(2, "ready"), 2);
	assert_true(st(("promoted")) == json_true());
	assert_string_equal(traffic, "[{\"revision\":1,\"weight\":0},{\"revision\":2,\"weight\":100}]");
	assert_int_equal(se.row.stable_revision, 2);
	assert_non_null(strstr(events, "promoted"));
	revision_status_is(1, "superseded");
	revision_status_is(2, "serving");
	assert_string_equal(se.rollout.phase, "complete");
	assert_int_equal(replicas_of(1, "ready"), 2); /* warm for a quick rollback */

	/* retired after CANARY_KEEP_PREVIOUS_MS: the rollout is over, the planner takes over */
	assert_false(run(&now, now + CANARY_KEEP_PREVIOUS_MS + 1000));
	assert_null(se.prog);
	assert_int_equal(replicas_of(1, "draining"), 2);
	assert_string_equal(traffic, ""); /* the override goes with the rollout */
	assert_int_equal(auto_rollbacks, 0);
	json_decref(status);
	status = NULL;
}

/* an analysis round reads the canary's window of the interval that ended */
static void test_analysis_failure_rolls_back(void **state)
{
	struct measurement_row *m;
	struct gerr err;
	size_t n;
	int64_t now = T;
	(void)state;
	canary_err_pct = 50;
	start(config(analysis_steps, ARRAY_SIZE(analysis_steps)), now);
	assert_true(run(&now, T + 2 * SEC));
	assert_string_equal(st_str("wait"), "analysis");
	assert_non_null(strstr(events, "analysis_started"));

	/* the first round is due one interval after the start: until then, nothing */
	assert_true(run(&now, T + 10 * SEC));
	assert_int_equal(store_measurement_list(gd->store, se.rollout.id, 10, &m, &n, &err), 0);
	assert_int_equal(n, 0);
	free(m);
	assert_false(run(&now, T + 15 * SEC));

	assert_int_equal(store_measurement_list(gd->store, se.rollout.id, 10, &m, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(m[0].verdict, "failed");
	assert_string_equal(m[0].analysis, "slo");
	assert_true(m[0].has_value && m[0].value > 0.45 && m[0].value < 0.55);
	free(m);
	/* back on revision 1 at once: a route change, an incident, revision 2 failed */
	assert_null(se.prog);
	assert_int_equal(se.row.target_revision, 1);
	assert_string_equal(se.row.phase, "rolled_back");
	assert_int_equal(auto_rollbacks, 1);
	assert_int_equal(auto_from, 2);
	assert_int_equal(auto_to, 1);
	assert_non_null(strstr(auto_why, "slo"));
	assert_non_null(strstr(events, "rollout_rolled_back"));
	revision_status_is(2, "failed");
	revision_status_is(1, "serving");
	assert_int_equal(replicas_of(2, "draining"), 1);
	assert_int_equal(replicas_of(1, "ready"), 2);
	assert_string_equal(se.rollout.phase, "rolled_back");
}

/* an analysis with flag_off: the failure pulls the lever and pauses; with the flag already off it rolls back */
static void test_analysis_flag_off(void **state)
{
	struct analysis_def lever = slo;
	struct svc_config cfg;
	int64_t now = T;
	(void)state;
	lever.flag_off = (char *)"risky";
	cfg = config(analysis_steps, ARRAY_SIZE(analysis_steps));
	cfg.analyses = &lever;
	canary_err_pct = 50;
	start(cfg, now);
	assert_true(run(&now, T + 15 * SEC));
	assert_string_equal(levers, "risky:analysis slo;");
	assert_non_null(se.prog);
	assert_string_equal(st_str("phase"), "paused");
	assert_int_equal(auto_rollbacks, 0);
	assert_null(strstr(events, "rollout_rolled_back"));
	assert_int_equal(se.row.stable_revision, 1);
	assert_int_equal(replicas_of(2, "ready"), 1); /* the canary stays */
	progressive_free(&se);

	/* the lever spent (the flag is off): the next failure rolls back */
	assert_true(lever_pulled);
	levers[0] = 0;
	start(cfg, now);
	assert_true(run(&now, now + 2 * SEC));
	assert_false(run(&now, now + 15 * SEC));
	assert_string_equal(levers, "");
	assert_int_equal(auto_rollbacks, 1);
	assert_string_equal(se.row.phase, "rolled_back");
}

/* a healthy canary passes its 3 rounds and is promoted */
static void test_analysis_success_promotes(void **state)
{
	struct measurement_row *m;
	struct gerr err;
	size_t n;
	int64_t now = T;
	(void)state;
	canary_err_pct = 0;
	start(config(analysis_steps, ARRAY_SIZE(analysis_steps)), now);
	assert_true(run(&now, T + 25 * SEC));
	assert_string_equal(st_str("wait"), "analysis");
	assert_true(run(&now, T + 40 * SEC));
	assert_true(st("promoted") == json_true());
	assert_int_equal(store_measurement_list(gd->store, se.rollout.id, 10, &m, &n, &err), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(m[i].verdict, "successful");
	free(m);
	assert_int_equal(auto_rollbacks, 0);
	json_decref(status);
	status = NULL;
}

/* rollback_on: a breach held for its `for` rolls back; a quiet canary's "no data" never does */
static void test_rollback_on(void **state)
{
	struct svc_config cfg = config(watch_steps, ARRAY_SIZE(watch_steps));
	int64_t now = T;
	(void)state;
	cfg.rollback_on = rollback_on;
	cfg.nrollback_on = 1;
	canary_err_pct = 0;
	start(cfg, now);
	assert_true(run(&now, T + 5 * SEC));
	assert_string_equal(st_str("wait"), "pause");

	/* 2 requests a second, all failing: fewer than ROLLBACK_MIN_REQUESTS, no data */
	rps = 4;
	canary_err_pct = 100;
	assert_true(run(&now, T + 20 * SEC));
	assert_int_equal(auto_rollbacks, 0);

	/* real traffic failing: holds from the first sample, breached 3 s later */
	rps = 100;
	canary_err_pct = 50;
	assert_true(run(&now, T + 23 * SEC));
	assert_int_equal(auto_rollbacks, 0);
	assert_false(run(&now, T + 26 * SEC));
	assert_int_equal(auto_rollbacks, 1);
	assert_non_null(strstr(auto_why, "error_rate"));
	assert_int_equal(se.row.target_revision, 1);
	revision_status_is(2, "failed");
	rps = 100;
}

/* the canary's replicas report their usage (as a runtime does, usage.h),
 * stamped with the real steady clock: fresh for USAGE_STALE_MS, far longer
 * than the runs below take */
static void canary_usage(int64_t mem, int64_t limit)
{
	for (struct replica *r = se.replicas; r; r = r->next)
		if (r->row.revision == 2)
			usage_report(r, mem, limit, 10);
}

/* rollback_on memory: the canary's highest replica against its limit; no
 * limit is no data, never a rollback (no proxy traffic is needed) */
static void test_rollback_on_memory(void **state)
{
	static char *memory[] = { (char *)"memory > 50% for 2s" };
	struct svc_config cfg = config(watch_steps, ARRAY_SIZE(watch_steps));
	int64_t now = T;
	(void)state;
	cfg.rollback_on = memory;
	cfg.nrollback_on = 1;
	canary_err_pct = 0;
	start(cfg, now);
	assert_true(run(&now, T + 5 * SEC));
	assert_string_equal(st_str("wait"), "pause");
	assert_int_equal(replicas_of(2, "ready"), 1);
	/* 900 MiB without a limit: no data */
	canary_usage(900 << 20, 0);
	assert_true(run(&now, T + 15 * SEC));
	/* 30% of its limit: clear */
	canary_usage(30 << 20, 100 << 20);
	assert_true(run(&now, T + 25 * SEC));
	assert_int_equal(auto_rollbacks, 0);
	/* 80%: holds, breached 2 s later */
	canary_usage(80 << 20, 100 << 20);
	assert_true(run(&now, T + 26 * SEC));
	assert_false(run(&now, T + 30 * SEC));
	assert_int_equal(auto_rollbacks, 1);
	assert_non_null(strstr(auto_why, "memory 80% > 50% for 2s"));
	assert_int_equal(se.row.target_revision, 1);
	revision_status_is(2, "failed");
}

/* a restarted controller (kill -9): the same step, the same deadline, the analysis's rounds kept */
static void restart(int64_t now)
{
	struct rollout_row saved;
	struct gerr err;
	/* what the dead controller knew in memory is gone; the store is not */
	progressive_free(&se);
	metrics_free();
	memset(&se.rollout, 0, sizeof(se.rollout));
	assert_int_equal(store_rollout_latest(gd->store, "api", "prod", &saved, &err), 1);
	se.rollout = saved;
	progressive_restore(&se, now);
	assert_non_null(se.prog);
}

static void test_restart_resumes_pause_and_analysis(void **state)
{
	int64_t now = T;
	(void)state;
	start(config(pause_steps, ARRAY_SIZE(pause_steps)), now);
	assert_true(run(&now, T + 30 * SEC));
	assert_string_equal(st_str("wait"), "pause");
	restart(now);
	assert_string_equal(st_str("wait"), "pause");
	assert_int_equal(st_int("weight"), 50);
	assert_int_equal(st_int("step"), 1);
	/* the pause ends when it would have (T + 1 min), not a minute after the restart */
	assert_true(run(&now, T + MINUTE - SEC));
	assert_string_equal(st_str("wait"), "pause");
	assert_true(run(&now, T + MINUTE + 2 * SEC));
	assert_true(st("promoted") == json_true());
	json_decref(status);
	status = NULL;
}

static void test_restart_keeps_analysis_rounds(void **state)
{
	struct measurement_row *m;
	struct gerr err;
	size_t n;
	json_t *runs;
	int64_t now = T;
	(void)state;
	canary_err_pct = 0;
	start(config(analysis_steps, ARRAY_SIZE(analysis_steps)), now);
	assert_true(run(&now, T + 15 * SEC));
	runs = st("analyses");
	assert_int_equal(json_array_size(runs), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(runs, 0), "rounds")), 1);
	restart(now);
	runs = st("analyses");
	assert_int_equal(json_array_size(runs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 0), "phase")), "running");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(runs, 0), "rounds")), 1);
	/* two more rounds, not three: promoted, with 3 measurements in all */
	assert_true(run(&now, T + 45 * SEC));
	assert_true(st("promoted") == json_true());
	assert_int_equal(store_measurement_list(gd->store, se.rollout.id, 10, &m, &n, &err), 0);
	assert_int_equal(n, 3);
	free(m);
	json_decref(status);
	status = NULL;
}

/* a `for` window running at a restart goes on from where it began when the
 * controller is back soon (RB_RESTORE_GAP_MS), and starts again after a long outage */
static void rollback_on_across_restart(int64_t outage, bool carried_over)
{
	struct svc_config cfg = config(watch_steps, ARRAY_SIZE(watch_steps));
	int64_t now = T, back;
	cfg.rollback_on = rollback_on;
	cfg.nrollback_on = 1;
	canary_err_pct = 0;
	start(cfg, now);
	assert_true(run(&now, T + 5 * SEC));
	canary_err_pct = 50;
	/* holding for 2 s, and persisted (a window that starts is saved at once) */
	assert_true(run(&now, T + 7 * SEC));
	assert_int_equal(auto_rollbacks, 0);
	assert_non_null(strstr(se.rollout.state, "\"rollback_on\""));
	now += outage;
	back = now;
	restart(now);
	if (carried_over) {
		/* the first samples with data still hold: breached within a second or two */
		assert_false(run(&now, back + 2 * SEC));
	} else {
		assert_true(run(&now, back + 2 * SEC));
		assert_int_equal(auto_rollbacks, 0);
		assert_false(run(&now, back + 5 * SEC));
	}
	assert_int_equal(auto_rollbacks, 1);
}

static void test_rollback_on_window_survives_a_short_restart(void **state)
{
	(void)state;
	rollback_on_across_restart(5 * SEC, true);
}

static void test_rollback_on_window_restarts_after_a_long_outage(void **state)
{
	(void)state;
	rollback_on_across_restart(60 * SEC, false);
}

/* a rollback after promotion, while the previous revision is warm: only a route change */
static void test_warm_rollback(void **state)
{
	struct gerr err;
	int64_t now = T;
	(void)state;
	start(config(pause_steps, ARRAY_SIZE(pause_steps)), now);
	assert_true(run(&now, T + 10 * SEC));
	/* not promoted yet: not a warm rollback (the caller deploys a copy) */
	assert_int_equal(progressive_rollback_warm(&se, 0, "alice", &err), 1);
	assert_true(run(&now, T + MINUTE + 5 * SEC));
	assert_true(st("promoted") == json_true());
	/* to another revision than the warm one: not either */
	assert_int_equal(progressive_rollback_warm(&se, 3, "alice", &err), 1);
	assert_int_equal(progressive_rollback_warm(&se, 1, "alice", &err), 0);
	assert_null(se.prog);
	assert_int_equal(se.row.target_revision, 1);
	assert_int_equal(se.row.stable_revision, 1);
	assert_string_equal(se.rollout.phase, "rolled_back");
	revision_status_is(2, "rolled_back");
	revision_status_is(1, "serving");
	assert_int_equal(replicas_of(1, "ready"), 2); /* nothing restarted */
	assert_int_equal(auto_rollbacks, 0);
	json_decref(status);
	status = NULL;
}

/* an abort is a person's decision: back to the stable revision, but no incident */
static void test_abort_is_not_an_incident(void **state)
{
	struct gerr err;
	int64_t now = T;
	(void)state;
	start(config(pause_steps, ARRAY_SIZE(pause_steps)), now);
	assert_true(run(&now, T + 10 * SEC));
	assert_int_equal(progressive_command(&se, CE_ABORT, "alice", "wrong build", false, &err), 0);
	assert_string_equal(se.rollout.phase, "aborted");
	assert_int_equal(se.row.target_revision, 1);
	assert_string_equal(traffic, "[{\"revision\":1,\"weight\":100},{\"revision\":2,\"weight\":0}]");
	assert_int_equal(auto_rollbacks, 0);
	assert_non_null(strstr(events, "rollout_rolled_back"));
	assert_false(progressive_reconcile(&se, now + 500, now + 500));
	assert_int_equal(replicas_of(2, "draining"), 1);
}

/* replicas that are not part of the rollout are drained; a paused rollout pauses */
static void test_replicas_and_pause(void **state)
{
	struct gerr err;
	struct revcfg rc3 = { .number = 3 };
	int64_t now = T;
	(void)state;
	start(config(pause_steps, ARRAY_SIZE(pause_steps)), now);
	rc3.cfg = rc2.cfg;
	mark_ready(replica_create(&se, &rc3));
	assert_true(run(&now, T + 10 * SEC));
	assert_int_equal(replicas_of(3, "draining"), 1);
	assert_int_equal(progressive_command(&se, CE_PAUSE, "alice", "look", false, &err), 0);
	assert_string_equal(se.rollout.phase, "paused");
	/* paused: the pause step's deadline does not promote it */
	assert_true(run(&now, T + 2 * MINUTE));
	assert_false(st("promoted") == json_true());
	assert_int_equal(st_int("weight"), 50);
	assert_int_equal(progressive_command(&se, CE_RESUME, "alice", NULL, false, &err), 0);
	assert_true(run(&now, now + MINUTE));
	assert_true(st("promoted") == json_true());
	json_decref(status);
	status = NULL;
	/* no command without a rollout */
	progressive_free(&se);
	assert_int_equal(progressive_command(&se, CE_PAUSE, "alice", NULL, false, &err), -1);
	assert_non_null(strstr(err.msg, "no canary or blue-green rollout"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_steps_then_promotion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_analysis_failure_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_analysis_success_promotes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_analysis_flag_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_on_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_resumes_pause_and_analysis, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_analysis_rounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_on_window_survives_a_short_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_on_window_restarts_after_a_long_outage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_warm_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_is_not_an_incident, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicas_and_pause, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
