/*
 * daemon.c — the controller loop: load desired state, adopt what runs,
 * reconcile every tick, complete or fail rollouts, shut down in order.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/secrets.h"
#include "daemon/maintenance.h"
#include "daemon/migrations.h"
#include "daemon/flags.h"
#include "daemon/audit_anchor.h"
#include "daemon/disk.h"
#include "daemon/gates_flow.h"
#include "daemon/releases.h"
#include "rollout/rolling.h"
#include "runtime/runtime.h"
#include "artifact/artifact.h"
#include "records/notify.h"
#include "daemon/metrics.h"
#include "daemon/proxypeers.h"
#include "daemon/nodeproxy.h"
#include "daemon/swarmlease.h"
#include "daemon/swarmrt.h"
#include "rollout/analysis.h"
#include "core/condition.h"
#include <math.h>
#include "util/log.h"
#include "util/parse.h"
#include "util/clock.h"
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>

struct daemon *gd;

/* replica and proxy logs: copy-truncate past 10 MiB, keep 3 old files */
#define LOG_ROTATE_BYTES (10 * 1024 * 1024)
#define LOG_ROTATE_KEEP 3
#define CRASHLOOP_RESTARTS 5          /* more than this many ... */
#define CRASHLOOP_WINDOW_MS (5 * 60 * 1000) /* ... within this window */

void daemon_event(struct svcenv *se, int revision, const char *kind, const char *fmt, ...)
{
	char msg[1024], q[2100];
	struct gerr err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("event", "service=%s environment=%s revision=%d kind=%s msg=%s",
		 se->row.service, se->row.environment, revision, kind, log_quote(msg, q, sizeof(q)));
	if (store_event_add(gd->store, se->row.service, se->row.environment, revision, kind, &err, "%s", msg) < 0)
		log_error("store", "%s", err.msg);
}

int daemon_save_svcenv(struct svcenv *se)
{
	struct gerr err;
	if (store_svcenv_put(gd->store, &se->row, &err) < 0) {
		log_error("store", "%s", err.msg);
		return -1;
	}
	return 0;
}

int daemon_save_rollout(struct svcenv *se)
{
	struct gerr err;
	if (store_rollout_put(gd->store, &se->rollout, &err) < 0) {
		log_error("store", "%s", err.msg);
		return -1;
	}
	/* the deployment record ends when the rollout does (a paused canary has not) */
	if (se->rollout.id && strcmp(se->rollout.phase, "progressing") && strcmp(se->rollout.phase, "paused"))
		gates_rollout_finished(&se->rollout);
	return 0;
}

struct svcenv *daemon_svcenv(const char *svc, const char *env, bool create)
{
	struct svcenv *se;
	struct gerr err;
	for (se = gd->svcenvs; se; se = se->next)
		if (!strcmp(se->row.service, svc) && !strcmp(se->row.environment, env))
			return se;
	if (!create)
		return NULL;
	se = xcalloc(1, sizeof(*se));
	strlcpy_g(se->row.service, svc, sizeof(se->row.service));
	strlcpy_g(se->row.environment, env, sizeof(se->row.environment));
	strlcpy_g(se->row.phase, "healthy", sizeof(se->row.phase));
	if (store_rollout_latest(gd->store, svc, env, &se->rollout, &err) < 0)
		log_error("store", "%s", err.msg);
	se->next = gd->svcenvs;
	gd->svcenvs = se;
	return se;
}

struct revcfg *daemon_revcfg(struct svcenv *se, int number, struct gerr *err)
{
	struct revcfg *rc;
	struct revision_row row;
	json_t *j;
	json_error_t jerr;
	int found;

	for (rc = se->revs; rc; rc = rc->next)
		if (rc->number == number)
			return rc;
	found = store_revision_get(gd->store, se->row.service, se->row.environment, number, &row, err);
	if (found <= 0) {
		if (!found)
			gerr_set(err, "revision %d of %s@%s not found", number, se->row.service, se->row.environment);
		return NULL;
	}
	j = json_loads(row.config_json, 0, &jerr);
	rc = xcalloc(1, sizeof(*rc));
	if (!j || svc_config_from_json(j, &rc->cfg, err) < 0) {
		if (!j)
			gerr_set(err, "revision %d: stored config is not JSON: %s", number, jerr.text);
		json_decref(j);
		revision_row_release(&row);
		free(rc);
		return NULL;
	}
	json_decref(j);
	rc->number = number;
	strlcpy_g(rc->version, row.version, sizeof(rc->version));
	strlcpy_g(rc->digest, row.digest, sizeof(rc->digest));
	rc->dir = xasprintf("%s/artifacts/%s", gd->home, row.digest);
	if (rc->cfg.runtime == RUNTIME_DOCKER)
		snprintf(rc->image_id, sizeof(rc->image_id), "sha256:%s", row.digest);
	revision_row_release(&row);
	rc->next = se->revs;
	se->revs = rc;
	return rc;
}

static bool rollout_active(const struct svcenv *se)
{
	return se->rollout.id && !strcmp(se->rollout.phase, "progressing");
}

static void set_revision_status(struct svcenv *se, int number, const char *status, const char *reason)
{
	struct gerr err;
	if (number > 0 && store_revision_set_status(gd->store, se->row.service, se->row.environment,
						    number, status, reason, &err) < 0)
		log_error("store", "%s", err.msg);
}

/* the target revision crash-loops: more than 5 restarts in 5 minutes */
bool daemon_crashlooping(const struct svcenv *se, int64_t now)
{
	int n = 0;
	for (int i = 0; i < se->ncrash && i < (int)ARRAY_SIZE(se->crash_times); i++)
		if (now - se->crash_times[i] <= CRASHLOOP_WINDOW_MS)
			n++;
	return n > CRASHLOOP_RESTARTS;
}

/* fail the active rollout and return to the revision it started from */
static void rollout_fail(struct svcenv *se, const char *why)
{
	struct gerr err;
	int from = se->rollout.from_revision, to = se->rollout.revision;

	if (store_begin(gd->store, &err) < 0) {
		log_error("store", "%s", err.msg);
		return;
	}
	if (from > 0) {
		strlcpy_g(se->rollout.phase, "rolled_back", sizeof(se->rollout.phase));
		snprintf(se->rollout.message, sizeof(se->rollout.message),
			 "rolled back to revision %d: %s", from, why);
		se->row.target_revision = from;
		se->row.replicas = 0; /* desired comes from the stable revision's config again */
		strlcpy_g(se->row.phase, "rolled_back", sizeof(se->row.phase));
		set_revision_status(se, to, "failed", why);
	} else {
		strlcpy_g(se->rollout.phase, "failed", sizeof(se->rollout.phase));
		snprintf(se->rollout.message, sizeof(se->rollout.message), "failed: %s", why);
		strlcpy_g(se->row.phase, "failed", sizeof(se->row.phase));
		set_revision_status(se, to, "failed", why);
	}
	snprintf(se->row.message, sizeof(se->row.message), "%s", se->rollout.message);
	daemon_save_rollout(se);
	daemon_save_svcenv(se);
	daemon_event(se, to, from > 0 ? "rollout_rolled_back" : "rollout_failed",
		     "revision %d %s", to, se->rollout.message);
	if (store_commit(gd->store, &err) < 0) {
		/* not recorded: not done (the tick puts se back as recorded) */
		log_error("store", "%s", err.msg);
		return;
	}
	se->ncrash = 0;
	if (from > 0) {
		char note[256], msg[512];
		int64_t down_to;
		/* the schema stays where the revision's migrations took it (daemon/migrations.c) */
		struct revcfg *trc = daemon_revcfg(se, to, &err);
		if (trc && trc->cfg.migrations.auto_down)
			mig_flow_auto_rollback(se, to, from, why, true);
		else if (mig_flow_rollback_plan(se, to, from, &down_to, note, sizeof(note), &err) != 0 && note[0]) {
			snprintf(msg, sizeof(msg), "automatic rollback keeps the schema: %s (down-migrations run only "
				 "with gantry rollback or gantry db down)", note);
			daemon_event(se, to, "schema_kept", "%s", msg);
		}
		gates_auto_rollback(se->row.service, se->row.environment, to, from, why);
	}
}

static void prune_artifacts(struct svcenv *se, int keep);

bool daemon_artifact_ok(struct svcenv *se, struct revcfg *rc)
{
	const char *why;
	int v;

	/* an image is checked by the Engine: it runs only the id it was given */
	if (rc->cfg.runtime == RUNTIME_DOCKER)
		return true;
	v = artifact_check(rc->digest, &why);
	if (v == ARTIFACT_CHECK_OK)
		return true;
	if (v == ARTIFACT_CHECK_PENDING)
		return false;
	if (strcmp(se->tampered, rc->digest)) {
		strlcpy_g(se->tampered, rc->digest, sizeof(se->tampered));
		daemon_event(se, rc->number, "artifact_tampered", "revision %d: %s", rc->number, why);
	}
	/* a canary's own rollback (progressive.c) takes over when its replicas
	 * never become ready; a rolling rollout fails here and now */
	if (rollout_active(se) && se->rollout.revision == rc->number && !se->prog)
		rollout_fail(se, why);
	return false;
}

static void rollout_complete(struct svcenv *se)
{
	struct gerr err;
	int prev = se->row.stable_revision, target = se->row.target_revision;
	bool was_active = rollout_active(se);

	if (prev == target && !was_active)
		return;
	if (store_begin(gd->store, &err) < 0) {
		log_error("store", "%s", err.msg);
		return;
	}
	if (was_active && se->rollout.revision == target) {
		strlcpy_g(se->rollout.phase, "complete", sizeof(se->rollout.phase));
		snprintf(se->rollout.message, sizeof(se->rollout.message), "revision %d serves 100%%", target);
		se->rollout.step = se->rollout.steps;
		daemon_save_rollout(se);
	}
	if (prev != target) {
		struct revision_row old;
		/* a revision rolled back from keeps saying so */
		if (prev > 0 && store_revision_get(gd->store, se->row.service, se->row.environment, prev, &old, &err) == 1) {
			if (!strcmp(old.status, "serving"))
				set_revision_status(se, prev, "superseded", NULL);
			revision_row_release(&old);
		}
		set_revision_status(se, target, "serving", NULL);
		se->row.stable_revision = target;
	}
	if (strcmp(se->row.phase, "rolled_back") || was_active)
		strlcpy_g(se->row.phase, "healthy", sizeof(se->row.phase));
	se->row.message[0] = 0;
	{
		/* gantry's own rollback (rollback_on after a rolling deploy): the
		 * service environment says rolled_back, and why, until the next deploy */
		struct revision_row row;
		if (store_revision_get(gd->store, se->row.service, se->row.environment, target, &row, &err) == 1) {
			if (!strcmp(row.kind, "rollback") && !strcmp(row.deployed_by, "gantry")) {
				strlcpy_g(se->row.phase, "rolled_back", sizeof(se->row.phase));
				snprintf(se->row.message, sizeof(se->row.message), "%s", row.reason);
			}
			revision_row_release(&row);
		}
	}
	daemon_save_svcenv(se);
	if (was_active)
		daemon_event(se, target, "rollout_complete", "revision %d is serving with %d replicas",
			     target, se->rollout.steps);
	if (store_commit(gd->store, &err) < 0) {
		/* not recorded: nothing pruned (the tick puts se back as recorded) */
		log_error("store", "%s", err.msg);
		return;
	}
	{
		struct revcfg *rc = daemon_revcfg(se, target, &err);
		prune_artifacts(se, rc ? rc->cfg.keep_revisions : 10);
	}
}

/* a revision se must keep whatever its age: stable, target, or run by a replica */
static bool revision_running(const struct svcenv *se, int number)
{
	bool running = number == se->row.stable_revision || number == se->row.target_revision;
	for (const struct replica *rep = se->replicas; rep; rep = rep->next)
		running |= rep->row.revision == number;
	return running;
}

/* se's keep_revisions (its target's config; 10 if it has none) */
static int svcenv_keep(struct svcenv *se)
{
	struct gerr err;
	struct revcfg *rc = se->row.target_revision > 0 ? daemon_revcfg(se, se->row.target_revision, &err) : NULL;
	return rc ? MAX(rc->cfg.keep_revisions, 1) : 10;
}

/*
 * 1 if a revision other than self_se's self_number, kept by its own
 * service environment (within its keep_revisions, or running), has the
 * image digest: any service, any environment (a promotion shares the id).
 * A revision beyond its keep counts for nothing even while not yet marked
 * pruned, so two old revisions of one image never hold each other.
 */
static int image_kept(const char *digest, const struct svcenv *self_se, int self_number)
{
	struct gerr err;
	int kept = 0;

	for (struct svcenv *se = gd->svcenvs; se && !kept; se = se->next) {
		struct revision_row *list;
		size_t n;
		int keep = svcenv_keep(se);
		if (store_revision_list(gd->store, se->row.service, se->row.environment, &list, &n, &err) < 0) {
			log_error("store", "%s", err.msg);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			struct revision_row *r = &list[i];
			if (!kept && !strcmp(r->digest, digest) && !(se == self_se && r->number == self_number) &&
			    !r->artifact_pruned && ((int)i < keep || revision_running(se, r->number)))
				kept = 1;
			revision_row_release(r);
		}
		free(list);
	}
	return kept;
}

struct image_prune {
	char service[64], environment[64];
	int number;
	char digest[80];
};

/* an image's removal is back (on the loop): the revision is marked pruned
 * only if the image is gone; one a container uses stays, and its revision
 * is tried again at the next prune */
static void image_pruned(void *arg, int rc, const char *why)
{
	struct image_prune *p = arg;
	struct gerr err;

	if (rc < 0) {
		log_warn("prune", "service=%s environment=%s revision=%d image=%.12s not removed: %s", p->service,
			 p->environment, p->number, p->digest, why);
	} else if (rc == 0) {
		log_info("prune", "service=%s environment=%s revision=%d image=%.12s stays: the Engine keeps it "
			 "(a container uses it)", p->service, p->environment, p->number, p->digest);
	} else if (store_revision_set_pruned(gd->store, p->service, p->environment, p->number, &err) < 0) {
		log_error("store", "%s", err.msg);
	} else {
		log_info("prune", "service=%s environment=%s revision=%d image=%.12s removed", p->service,
			 p->environment, p->number, p->digest);
		secrets_prune_revision(p->service, p->environment, p->number);
	}
	free(p);
}

/* a docker revision beyond keep: its image is removed (thread pool) unless
 * a kept revision anywhere has it */
static void prune_image(struct svcenv *se, const struct revision_row *r, const struct revcfg *rc)
{
	struct image_prune *p;
	struct gerr err;
	char *tags[2] = { NULL, NULL };
	int k = image_kept(r->digest, se, r->number);

	if (k != 0)
		return; /* kept by another revision (or unknown): not now */
	p = xcalloc(1, sizeof(*p));
	strlcpy_g(p->service, r->service, sizeof(p->service));
	strlcpy_g(p->environment, r->environment, sizeof(p->environment));
	p->number = r->number;
	strlcpy_g(p->digest, r->digest, sizeof(p->digest));
	/* the names deploy gave the image it built (removed only while they still name it) */
	tags[0] = xasprintf("%s:%s", r->service, r->version);
	if (rc->cfg.registry && *rc->cfg.registry)
		tags[1] = xasprintf("%s/%s:%s", rc->cfg.registry, r->service, r->version);
	if (dockrt_remove_image(r->digest, (const char *const *)tags, tags[1] ? 2 : 1, image_pruned, p, &err) < 0) {
		log_warn("prune", "service=%s environment=%s revision=%d image=%.12s not removed now: %s",
			 se->row.service, se->row.environment, r->number, r->digest, err.msg);
		free(p);
	}
	free(tags[0]);
	free(tags[1]);
}

/*
 * Keeps the artifacts of the newest keep_revisions revisions (and always of
 * the stable and target ones, and of any revision a replica still runs);
 * marks older revisions pruned and deletes snapshots no kept revision uses.
 * An image (runtime docker) is removed from the Engine by id in the thread
 * pool, only when no kept revision of any environment has it; its revision
 * is marked pruned when the image is gone (image_pruned).
 */
static void prune_artifacts(struct svcenv *se, int keep)
{
	struct revision_row *list;
	size_t n;
	struct gerr err;

	if (keep < 1)
		keep = 1;
	if (store_revision_list(gd->store, se->row.service, se->row.environment, &list, &n, &err) < 0) {
		log_error("store", "%s", err.msg);
		return;
	}
	for (size_t i = (size_t)keep; i < n; i++) {
		struct revision_row *r = &list[i];
		struct revcfg *rc;
		if (r->artifact_pruned || revision_running(se, r->number))
			continue;
		mig_flow_snapshot_prune(se->row.service, se->row.environment, r->number);
		if ((rc = daemon_revcfg(se, r->number, &err)) && rc->cfg.runtime == RUNTIME_DOCKER) {
			prune_image(se, r, rc);
			continue;
		}
		if (store_revision_set_pruned(gd->store, se->row.service, se->row.environment, r->number, &err) < 0) {
			log_error("store", "%s", err.msg);
			continue;
		}
		/* a secret version only this revision used goes with it */
		secrets_prune_revision(se->row.service, se->row.environment, r->number);
		/* content-addressed: another revision (a rollback copy) may share it */
		if (store_digest_in_use(gd->store, r->digest, &err) == 0) {
			artifact_remove(gd->home, r->digest, &err);
			log_info("prune", "service=%s environment=%s revision=%d artifact=%.12s removed",
				 se->row.service, se->row.environment, r->number, r->digest);
		}
	}
	for (size_t i = 0; i < n; i++)
		revision_row_release(&list[i]);
	free(list);
}

int daemon_traffic_weight(const struct svcenv *se, int revision)
{
	if (!se->ntraffic)
		return -1;
	for (int i = 0; i < se->ntraffic; i++)
		if (se->traffic[i].revision == revision)
			return se->traffic[i].weight;
	return 0;
}

int daemon_set_traffic(struct svcenv *se, const char *json, struct gerr *err)
{
	json_t *list = NULL, *e;
	size_t i;
	int n = 0, sum = 0;

	if (json && *json) {
		list = json_loads(json, 0, NULL);
		if (!json_is_array(list) || json_array_size(list) > ARRAY_SIZE(se->traffic)) {
			json_decref(list);
			return gerr_set(err, "traffic: expected at most %zu [{revision, weight}]", ARRAY_SIZE(se->traffic));
		}
		json_array_foreach(list, i, e) {
			json_t *r = json_object_get(e, "revision"), *w = json_object_get(e, "weight");
			if (!json_is_integer(r) || !json_is_integer(w) || json_integer_value(w) < 0 ||
			    json_integer_value(w) > 100) {
				json_decref(list);
				return gerr_set(err, "traffic[%zu]: expected {revision, weight 0..100}", i);
			}
			se->traffic[n].revision = (int)json_integer_value(r);
			se->traffic[n].weight = (int)json_integer_value(w);
			sum += se->traffic[n].weight;
			n++;
		}
		json_decref(list);
		if (n && sum != 100)
			return gerr_set(err, "traffic: weights add up to %d, not 100", sum);
	}
	se->ntraffic = n;
	strlcpy_g(se->row.traffic, n ? json : "", sizeof(se->row.traffic));
	return 0;
}

int daemon_desired(const struct svcenv *se, const struct revcfg *rc)
{
	if (se->row.replicas < 0)
		return 0;
	return se->row.replicas > 0 ? se->row.replicas : rc->cfg.replicas;
}

/* oldest revision first, then oldest replica: what a rolling update retires first */
static struct replica *pick_old(struct svcenv *se, bool ready)
{
	struct replica *best = NULL;
	for (struct replica *r = se->replicas; r; r = r->next) {
		if (r->row.revision == se->row.target_revision || replica_is_leaving(r) ||
		    daemon_traffic_weight(se, r->row.revision) > 0)
			continue;
		if (replica_is_ready(r) != ready)
			continue;
		if (!best || r->row.revision < best->row.revision ||
		    (r->row.revision == best->row.revision && r->row.created_at < best->row.created_at))
			best = r;
	}
	return best;
}
/*
 * One sample of a rollback_on condition on revision rev now: its metric
 * from the proxy's last second (rates, latencies), or counted here
 * (restarts, ready ratio, memory and cpu). The controller's rollback_on
 * watch and the flag_off lever (flags.c) feed their evaluators with it.
 */
void daemon_watch_sample(struct svcenv *se, struct revcfg *rc, int rev, enum cond_metric m, int64_t now,
			 struct cond_sample *smp)
{
	struct rev_window w;
	struct analysis_input in;
	bool have = metrics_window(se->row.service, se->row.environment, rev, 1000, now, &w) == 0;

	memset(&in, 0, sizeof(in));
	analysis_input_from_windows(&in, m, have ? &w : NULL, NULL);
	if (m == CM_RESTARTS) {
		int n = 0;
		for (struct replica *r = se->replicas; r; r = r->next)
			n += r->row.revision == rev ? r->row.restarts : 0;
		in.value = n;
	} else if (m == CM_READY_RATIO) {
		int ready = 0, want = daemon_desired(se, rc);
		for (struct replica *r = se->replicas; r; r = r->next)
			ready += r->row.revision == rev && replica_is_ready(r);
		in.value = want ? (double)ready / want : NAN;
	} else if (m == CM_MEMORY || m == CM_CPU) {
		in.value = usage_revision(se, rev, m, now);
	}
	memset(smp, 0, sizeof(*smp));
	smp->t_ms = now;
	smp->value = in.value;
	smp->baseline = NAN;
	smp->requests = in.requests;
	smp->baseline_requests = 0;
}


/*
 * rollback_on for rolling and recreate rollouts: armed from the start of the
 * rollout until `watch` after it completed; sampled every 100 ms on the new
 * revision's trailing second (as progressive.c does for canaries). A breach
 * rolls back to the revision the rollout started from: a new rollout of its
 * exact artifact and config.
 */
static void watch_rolling(struct svcenv *se, struct revcfg *rc, int64_t now)
{
	bool active = rollout_active(se), armed;
	struct gerr err;

	armed = rc->cfg.nrollback_on && se->rollout.id && se->rollout.from_revision > 0 &&
		se->rollout.revision == se->row.target_revision &&
		(active || (!strcmp(se->rollout.phase, "complete") && clock_now_ms() < se->rollout.updated_at + rc->cfg.watch_ms));
	if (!armed) {
		free(se->watch);
		se->watch = NULL;
		se->nwatch = 0;
		se->watch_rollout = 0;
		return;
	}
	if (se->watch_rollout != se->rollout.id) {
		struct revision_row row;
		/* a rollback is not watched: it would only go back to what failed */
		if (store_revision_get(gd->store, se->row.service, se->row.environment, se->rollout.revision, &row,
				       &err) == 1) {
			bool rollback = !strcmp(row.kind, "rollback");
			revision_row_release(&row);
			if (rollback) {
				se->watch_rollout = se->rollout.id;
				return;
			}
		}
		free(se->watch);
		se->watch = xcalloc(rc->cfg.nrollback_on, sizeof(*se->watch));
		se->nwatch = 0;
		for (size_t i = 0; i < rc->cfg.nrollback_on; i++) {
			struct condition c;
			if (condition_parse(rc->cfg.rollback_on[i], &c, &err) < 0)
				continue;
			cond_eval_init(&se->watch[se->nwatch], &c);
			se->watch[se->nwatch].min_requests = 5;
			se->watch[se->nwatch].max_gap_ms = 2000;
			se->nwatch++;
		}
		se->watch_rollout = se->rollout.id;
	}
	if (!se->watch)
		return;
	if (now - se->watch_last_ms < 100 || metrics_age_ms(now) < 0 || metrics_age_ms(now) > 2000)
		return;
	se->watch_last_ms = now;
	for (size_t i = 0; i < se->nwatch; i++) {
		struct cond_sample smp;
		char desc[256], why[400];
		int rev = se->row.target_revision, to = se->rollout.from_revision;
		daemon_watch_sample(se, rc, rev, se->watch[i].cond.metric, now, &smp);
		if (cond_eval_feed(&se->watch[i], &smp) != COND_BREACHED)
			continue;
		cond_eval_describe(&se->watch[i], "new", rev, desc, sizeof(desc));
		snprintf(why, sizeof(why), "rollback_on: %s", desc);
		daemon_event(se, rev, "rollback_on", "%s: rolling back to revision %d", why, to);
		free(se->watch);
		se->watch = NULL;
		se->nwatch = 0;
		if (active) {
			/* still rolling out: the same as a failed rollout */
			rollout_fail(se, why);
		} else {
			daemon_auto_rollback(se, to, why);
		}
		return;
	}
}

void daemon_reconcile(struct svcenv *se)
{
	struct rolling_counts c = { 0 };
	struct rolling_plan p;
	struct revcfg *rc;
	struct gerr err;
	/* the crash-loop window, the progress deadline and the canary's waits
	 * are durations: on the steady clock (util/clock.h), a wall-clock step
	 * does not end or stretch them */
	int64_t now = clock_steady_ms();

	if (!se->row.target_revision || gd->shutting_down)
		return;
	/* record, then act: while the store cannot write, every rollout holds
	 * where it is (replicas keep running and are probed; traffic stays) */
	if (!daemon_store_ok())
		return;
	daemon_flags_watch(se); /* the flag_off rollback lever (daemon/flags.h) */
	if (se->prog && progressive_reconcile(se, now, clock_mono_ms()))
		return;
	rc = daemon_revcfg(se, se->row.target_revision, &err);
	if (!rc) {
		log_error("reconcile", "service=%s environment=%s: %s", se->row.service, se->row.environment, err.msg);
		return;
	}
	c.desired = daemon_desired(se, rc);
	for (struct replica *r = se->replicas; r; r = r->next) {
		if (replica_is_leaving(r))
			continue;
		if (r->row.revision != se->row.target_revision && daemon_traffic_weight(se, r->row.revision) > 0)
			continue; /* pinned by a traffic split: not the planner's to retire */
		if (r->row.revision == se->row.target_revision) {
			c.new_total++;
			c.new_ready += replica_is_ready(r);
		} else {
			c.old_total++;
			c.old_ready += replica_is_ready(r);
		}
	}
	if (rollout_active(se)) {
		if (daemon_crashlooping(se, now)) {
			char why[256];
			snprintf(why, sizeof(why), "crash-looping: more than %d restarts in 5m", CRASHLOOP_RESTARTS);
			rollout_fail(se, why);
			return;
		}
		if (se->rollout.deadline_at && now > se->rollout.deadline_at) {
			char why[256], d[32];
			snprintf(why, sizeof(why), "progress deadline (%s) exceeded with %d/%d replicas ready",
				 format_duration(rc->cfg.progress_deadline_ms, d, sizeof(d)), c.new_ready, c.desired);
			rollout_fail(se, why);
			return;
		}
	}
	/* revisions kept by a traffic split run at their full size too */
	for (int t = 0; t < se->ntraffic; t++) {
		struct revcfg *trc;
		int have = 0, want;
		if (se->traffic[t].revision == se->row.target_revision || se->traffic[t].weight <= 0)
			continue;
		trc = daemon_revcfg(se, se->traffic[t].revision, &err);
		if (!trc)
			continue;
		for (struct replica *r = se->replicas; r; r = r->next)
			have += r->row.revision == trc->number && !replica_is_leaving(r);
		want = trc->cfg.replicas > 0 ? trc->cfg.replicas : 1;
		if (have < want && !daemon_artifact_ok(se, trc))
			continue;
		for (; have < want; have++)
			if (replica_spawn(replica_create(se, trc)) < 0)
				break;
	}
	watch_rolling(se, rc, clock_mono_ms());
	if (se->row.target_revision != rc->number)
		return; /* rolled back just now */
	rolling_plan(&c, &rc->cfg.strategy, &p);
	if (rollout_active(se)) {
		int step = c.new_ready;
		if (step != se->rollout.step) {
			/* progress_deadline bounds a time without progress, as
			 * Kubernetes' progressDeadlineSeconds and Nomad's
			 * progress_deadline do: one more ready replica starts it
			 * again (a slow rollout of many replicas is not a stuck one) */
			if (step > se->rollout.step)
				se->rollout.deadline_at = clock_steady_ms() + rc->cfg.progress_deadline_ms;
			se->rollout.step = step;
			snprintf(se->rollout.message, sizeof(se->rollout.message),
				 "%d/%d replicas of revision %d ready, %d old remaining",
				 c.new_ready, c.desired, se->row.target_revision, c.old_total);
			if (daemon_save_rollout(se) < 0)
				return;
		}
	}
	/* nothing changes until what would start is known to be what was stored */
	if (p.start_new > 0 && !daemon_artifact_ok(se, rc))
		return;
	for (int i = 0; i < p.start_new; i++) {
		struct replica *r = replica_create(se, rc);
		if (replica_spawn(r) < 0)
			break;
	}
	for (int i = 0; i < p.stop_old_unready; i++) {
		struct replica *r = pick_old(se, false);
		if (r)
			replica_stop(r, "replaced by a newer revision");
	}
	for (int i = 0; i < p.stop_old_ready; i++) {
		struct replica *r = pick_old(se, true);
		if (r)
			replica_drain(r, "replaced by a newer revision");
	}
	for (int i = 0; i < p.stop_new; i++) {
		/* scale down: the newest, unready first */
		struct replica *best = NULL;
		for (struct replica *r = se->replicas; r; r = r->next)
			if (r->row.revision == se->row.target_revision && !replica_is_leaving(r) &&
			    (!best || (!replica_is_ready(r) && replica_is_ready(best)) ||
			     (replica_is_ready(r) == replica_is_ready(best) && r->row.created_at > best->row.created_at)))
				best = r;
		if (best)
			replica_drain(best, "scaled down");
	}
	se->converged = p.done;
	if (p.done) {
		bool anything_leaving = false;
		for (struct replica *r = se->replicas; r; r = r->next)
			anything_leaving |= replica_is_leaving(r);
		for (struct replica *r = se->replicas; r; r = r->next)
			anything_leaving |= r->row.revision != se->row.target_revision &&
					    daemon_traffic_weight(se, r->row.revision) > 0;
		/* complete once old replicas are fully gone, not just draining, and
		 * the proxy runs the final table: `deploy --wait` returning means
		 * clients get the new revision */
		if (!anything_leaving && proxyctl_caught_up())
			rollout_complete(se);
	}
}

static void on_tick(uv_timer_t *t)
{
	int64_t now = clock_mono_ms();
	(void)t;
	/* a next controller is starting from the store as we left it */
	if (gd->upgrading)
		return;
	daemon_store_tick(now);
	dockrt_tick(now);
	/* the gates start deploys and record their checks: held too */
	if (daemon_store_ok()) {
		gates_tick();
		releases_tick(); /* a release's next step (releases.c) */
	}
	usage_tick(gd->svcenvs, clock_steady_ms());
	for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
		struct replica *r = se->replicas, *next;
		bool ok = daemon_store_ok();
		for (; r; r = next) {
			next = r->next;
			replica_tick(r, now);
		}
		daemon_reconcile(se);
		/* a write of this step failed: what it changed in memory goes
		 * back to what the store recorded, before anything acts on it */
		if (ok && !daemon_store_ok())
			daemon_store_reload(se);
	}
	if (now - gd->last_rotate_ms > 5000) {
		gd->last_rotate_ms = now;
		char *proxy_log = xasprintf("%s/logs/proxy.log", gd->home);
		for (struct svcenv *se = gd->svcenvs; se; se = se->next)
			for (struct replica *r = se->replicas; r; r = r->next)
				logfile_rotate(r->log_path, LOG_ROTATE_BYTES, LOG_ROTATE_KEEP);
		logfile_rotate(proxy_log, LOG_ROTATE_BYTES, LOG_ROTATE_KEEP);
		free(proxy_log);
	}
	if (gd->restoring) {
		bool all = true;
		for (struct svcenv *se = gd->svcenvs; se; se = se->next)
			all &= !se->row.target_revision || se->converged || daemon_crashlooping(se, clock_steady_ms());
		if ((all && proxyctl_caught_up()) || now - gd->started_ms > 60000) {
			gd->restoring = false;
			log_info("serve", "desired state %s in %lldms: accepting changes",
				 all ? "restored" : "not fully restored (gave up waiting)",
				 (long long)(now - gd->started_ms));
			gates_resume_checks();
		}
	}
	if (now - gd->last_sweep_ms > 5 * 60 * 1000) {
		gd->last_sweep_ms = now;
		replica_sweep_cgroups();
	}
	proxyctl_tick(now);
	metrics_tick(now);
	disk_tick(now);
	if (gd->shutting_down) {
		bool any = false;
		for (struct svcenv *se = gd->svcenvs; se; se = se->next)
			for (struct replica *r = se->replicas; r; r = r->next)
				any |= !swarmrt_standby(r); /* another controller drives those */
		if ((!any && !gd->proxy_pid && !dockrt_busy()) || now - gd->shutdown_started > 120000) {
			uv_timer_stop(&gd->tick);
			uv_stop(gd->loop);
		}
	}
}

static void on_kick(uv_timer_t *t)
{
	on_tick(t);
}

/* something changed (a replica became ready or exited, the proxy confirmed
 * a table): reconcile now instead of at the next 100 ms tick */
void daemon_kick(void)
{
	if (!uv_is_active((uv_handle_t *)&gd->kick))
		uv_timer_start(&gd->kick, on_kick, 0, 0);
}

static void begin_shutdown(const char *why)
{
	if (gd->shutting_down)
		return;
	log_info("serve", "shutting down (%s): stopping proxy and replicas", why);
	gd->shutting_down = true;
	gd->shutdown_started = clock_mono_ms();
	gd->api_hooks->close();
	proxyctl_stop();
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas, *next; r; r = next) {
			next = r->next; /* a replica that is not running is freed at once */
			if (swarmrt_standby(r)) {
				replica_leave(r); /* its cluster is driven by the lease's holder */
				continue;
			}
			replica_stop(r, "gantry serve is shutting down");
		}
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)s;
	begin_shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* the crash-loop rule counts restarts over 5 minutes: a restarted
 * controller takes them from the events it recorded, not from zero */
static void restore_crash_times(struct svcenv *se)
{
	struct event_row *ev;
	size_t n;
	struct gerr err;
	int64_t now = clock_steady_ms(); /* just started: the wall clock of the events it reads */
	if (!se->row.target_revision ||
	    store_event_list(gd->store, se->row.service, se->row.environment, -1, 200, &ev, &n, &err) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ev[i].kind, "replica_exited") && ev[i].revision == se->row.target_revision &&
		    now - ev[i].ts_ms <= CRASHLOOP_WINDOW_MS) {
			se->crash_times[se->ncrash % (int)ARRAY_SIZE(se->crash_times)] = ev[i].ts_ms;
			se->ncrash++;
		}
	free(ev);
}

static int load_state(void)
{
	struct svcenv_row *rows;
	size_t n;
	struct gerr err;
	char buf[64];

	if (store_svcenv_list(gd->store, &rows, &n, &err) < 0) {
		log_error("store", "%s", err.msg);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct svcenv *se = daemon_svcenv(rows[i].service, rows[i].environment, true);
		se->row = rows[i];
		if (daemon_set_traffic(se, rows[i].traffic, &err) < 0)
			log_error("store", "service=%s environment=%s: %s", se->row.service, se->row.environment, err.msg);
		if (se->rollout.id && (!strcmp(se->rollout.phase, "progressing") || !strcmp(se->rollout.phase, "paused") ||
				       !strcmp(se->rollout.phase, "complete")))
			progressive_restore(se, clock_steady_ms());
		restore_crash_times(se);
	}
	free(rows);
	if (store_meta_get(gd->store, "route_generation", buf, sizeof(buf), &err) == 1)
		gd->route_gen = strtoull(buf, NULL, 10);
	return 0;
}

static void free_state(void)
{
	struct svcenv *se, *nse;
	for (se = gd->svcenvs; se; se = nse) {
		struct revcfg *rc, *nrc;
		struct replica *r, *nr;
		nse = se->next;
		progressive_free(se);
		free(se->watch);
		for (r = se->replicas; r; r = nr) {
			nr = r->next;
			/* their handles were closed by close_walk; the processes live on */
			free(r);
		}
		for (rc = se->revs; rc; rc = nrc) {
			nrc = rc->next;
			svc_config_release(&rc->cfg);
			free(rc->dir);
			free(rc);
		}
		free(se);
	}
	gd->svcenvs = NULL;
	proxyctl_free();
	daemon_maintenance_free();
	daemon_flags_free();
	metrics_free();
	free(gd->routes_json);
	free(gd->home);
	free(gd->listen);
	free(gd->admin);
	free(gd->forward_headers);
	free(gd->trusted_proxies);
	proxypeers_free();
	nodeproxy_free();
	swarmlease_free();
	for (size_t i = 0; i < gd->nproxy_peers; i++)
		free(gd->proxy_peers[i]);
	free(gd->proxy_peers);
	if (gd->proxy_peer_token)
		explicit_bzero(gd->proxy_peer_token, strlen(gd->proxy_peer_token));
	free(gd->proxy_peer_token);
	if (gd->admin_token)
		explicit_bzero(gd->admin_token, strlen(gd->admin_token));
	free(gd->admin_token);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/*
 * HOME is 0711: workloads (other users) may traverse it to reach
 * HOME/artifacts/DIGEST (read-only) and their own HOME/scratch/ID, and
 * nothing else. Traversing needs no listing, so the names in HOME give
 * nothing away. (The alternative, artifacts outside HOME, would split one
 * state directory in two for backups and cleanup.) The controller's own
 * state files are made 0600 (0700 for logs/) here, also in a HOME an older
 * gantry made with looser modes. Keys (audit.key, webhook-secrets) are not
 * touched: their readers refuse a loose mode loudly, since a key others
 * could read may have leaked and must be replaced, not quietly re-moded.
 */
static int harden_home(const char *home)
{
	static const char *const own[] = {
		"state.db", "state.db-wal", "state.db-shm", "state.db-journal", "api.sock",
		"routes.json", "instance-id", "serve.lock", "logs",
	};
	char *p, *slash;
	struct stat hs;

	/* a HOME someone else owns or could write may hold their files: refuse,
	 * never adopt it (a HOME only others could read is tightened below) */
	if (stat(home, &hs) < 0) {
		fprintf(stderr, "error: --home: %s: %s\n", home, strerror(errno));
		return -1;
	}
	if (hs.st_uid != geteuid()) {
		fprintf(stderr, "error: --home: %s belongs to uid %u, not to gantry serve's user (uid %u): refusing it\n",
			home, (unsigned)hs.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (hs.st_mode & (S_IWGRP | S_IWOTH)) {
		fprintf(stderr, "error: --home: %s is writable by other users (mode %03o): its state may have been "
			"changed by them; check it, chmod 700 %s, and start again\n", home, (unsigned)(hs.st_mode & 0777),
			home);
		return -1;
	}
	if (chmod(home, 0711) < 0) {
		fprintf(stderr, "error: --home: %s: %s\n", home, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(own); i++) {
		struct stat st;
		p = xasprintf("%s/%s", home, own[i]);
		if (lstat(p, &st) == 0 && !S_ISLNK(st.st_mode) && (st.st_mode & 077))
			(void)chmod(p, st.st_mode & 07700);
		free(p);
	}
	/* a workload reaches its scratch and artifact by absolute path: every
	 * directory above HOME must let others through */
	p = xstrdup(home);
	while (geteuid() == 0 && (slash = strrchr(p, '/')) && slash != p) {
		struct stat st;
		*slash = 0;
		if (stat(p, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			log_warn("serve", "%s is not searchable by other users: workloads cannot reach "
				 "their scratch directory under %s (chmod o+x %s)", p, home, p);
			break;
		}
	}
	free(p);
	return 0;
}

int daemon_run(const struct daemon_opts *opts)
{
	struct daemon d = { 0 };
	struct gerr err;
	char *path;
	int lockfd = -1, ret = 1;

	gd = &d;
	d.lock_fd = -1;
	d.proxy_admin_fd = -1;
	d.api_hooks = opts->api_hooks;
	daemon_flags_set_api(opts->api, opts->flags_listen);
	d.loop = uv_default_loop();
	d.home = xstrdup(opts->home);
	d.listen = xstrdup(opts->listen ? opts->listen : "127.0.0.1:8080");
	d.admin = xstrdup(opts->admin ? opts->admin : "127.0.0.1:9090");
	d.forward_headers = opts->forward_headers ? xstrdup(opts->forward_headers) : NULL;
	d.trusted_proxies = opts->trusted_proxies ? xstrdup(opts->trusted_proxies) : NULL;
	d.nproxy_peers = opts->nproxy_peers;
	d.proxy_peers = xcalloc(opts->nproxy_peers + 1, sizeof(*d.proxy_peers));
	for (size_t i = 0; i < opts->nproxy_peers; i++)
		d.proxy_peers[i] = xstrdup(opts->proxy_peers[i]);
	d.proxy_peer_token = opts->proxy_peer_token ? xstrdup(opts->proxy_peer_token) : NULL;
	d.backoff_base_ms = opts->restart_backoff_ms > 0 ? opts->restart_backoff_ms : 10000;
	signal(SIGPIPE, SIG_IGN);

	/* everything we create is ours alone unless we say otherwise (the
	 * state, its -wal and -shm, logs, keys): workloads run as other users */
	umask(077);
	mkdir(d.home, 0700);
	if (harden_home(d.home) < 0)
		goto out;
	path = xasprintf("%s/logs", d.home);
	mkdir(path, 0700);
	free(path);
	path = xasprintf("%s/artifacts", d.home);
	mkdir(path, 0711);
	chmod(path, 0711);
	free(path);
	if (workload_instance_id(d.home, d.tag, sizeof(d.tag), &err) < 0 || workload_setup(d.home, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		goto out;
	}

	if (opts->takeover && daemon_takeover_parse(opts->takeover, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		goto out;
	}
	/* one controller per home: an flock, released by the kernel if we die
	 * (handed over by an upgrade: the lock is the open file's, and flock
	 * on it again succeeds) */
	path = xasprintf("%s/serve.lock", d.home);
	lockfd = d.takeover ? daemon_takeover_fd("lock") : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		char pidbuf[32] = "";
		if (lockfd >= 0) {
			ssize_t k = pread(lockfd, pidbuf, sizeof(pidbuf) - 1, 0);
			pidbuf[k > 0 ? k : 0] = 0;
			pidbuf[strcspn(pidbuf, "\n")] = 0;
		}
		if (*pidbuf)
			fprintf(stderr, "error: another gantry serve is already running for %s (pid %s)\n", d.home, pidbuf);
		else
			fprintf(stderr, "error: another gantry serve is already running for %s\n", d.home);
		goto out;
	}
	{
		char pidbuf[32];
		int len = snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		if (ftruncate(lockfd, 0) < 0 || pwrite(lockfd, pidbuf, (size_t)len, 0) < 0)
			log_warn("serve", "cannot write pid to serve.lock: %s", strerror(errno));
	}
	d.lock_fd = lockfd;

	path = xasprintf("%s/state.db", d.home);
	if (store_open(path, &d.store, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		free(path);
		goto out;
	}
	free(path);
	/* before anything is audited: the spec applied at start is */
	d.audit_export = opts->audit_export ? xstrdup(opts->audit_export) : NULL;
	if (audit_anchor_start(d.store, d.home, d.audit_export, d.audit_key, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		goto out;
	}
	if (load_state() < 0)
		goto out;
	if (daemon_spec_start(opts, &ret) < 0)
		goto out;
	ret = 1;
	/* webhook deliveries an earlier run did not make */
	path = xasprintf("%s/state.db", d.home);
	notify_start(path);
	free(path);
	if (disk_start(d.home, opts->low_disk, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		goto out;
	}
	{
		int stale = artifact_clean_temp(d.home);
		if (stale)
			log_info("serve", "removed %d unfinished artifact upload(s) or snapshot(s)", stale);
		/* snapshots an older gantry left writable */
		artifact_seal_all(d.home);
	}
	/* before the proxy starts, so that a bad --api leaves nothing running */
	if (opts->api && daemon_takeover_fd("tcp") >= 0) {
		if (d.api_hooks->listen_fds(-1, daemon_takeover_fd("tcp"), &err) < 0) {
			fprintf(stderr, "error: %s\n", err.msg);
			goto out;
		}
	} else if (opts->api && d.api_hooks->tcp_listen(opts->api, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		goto out;
	}
	/* OFREP apart from the API (daemon/flags.h): after an upgrade the old
	 * controller holds the port until it exits, so it is retried then */
	if (opts->flags_listen && d.api_hooks->flags_listen(opts->flags_listen, opts->takeover != NULL, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		goto out;
	}
	cgroup_mode();

	/* adopt what runs before touching anything, then bring the proxy up with
	 * the same table, so traffic never notices a controller restart */
	replica_adopt_all();
	if (proxyctl_start() < 0)
		goto out;
	if (daemon_takeover_fd("api") >= 0) {
		if (d.api_hooks->listen_fds(daemon_takeover_fd("api"), -1, &err) < 0) {
			fprintf(stderr, "error: %s\n", err.msg);
			goto out;
		}
	} else if (d.api_hooks->listen() < 0) {
		goto out;
	}

	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_init(d.loop, &d.sigint);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	d.started_ms = clock_mono_ms();
	d.restoring = true;
	uv_timer_init(d.loop, &d.kick);
	uv_timer_init(d.loop, &d.tick);
	uv_timer_start(&d.tick, on_tick, 0, 100);
	log_info("serve", "controller ready: home=%s proxy=%s admin=%s pid=%d", d.home, d.listen, d.admin, (int)getpid());
	printf("gantry serve: ready (proxy http://%s, admin http://%s, home %s)\n", d.listen, d.admin, d.home);
	fflush(stdout);
	daemon_takeover_ready();

	uv_run(d.loop, UV_RUN_DEFAULT);
	if (d.handed_over) {
		/* at once, as a kill -9 would (which the new controller is made
		 * to survive): a check or measurement still running on a thread
		 * must not finish here and act; replicas and the proxy are the
		 * new controller's, the store's writes are committed */
		log_info("serve", "stopped: handed over to the new controller");
		log_flush();
		fflush(NULL);
		_exit(0);
	}
	log_info("serve", "stopped");
	ret = 0;
out:
	uv_walk(d.loop, close_walk, NULL);
	uv_run(d.loop, UV_RUN_DEFAULT);
	uv_loop_close(d.loop);
	artifact_check_release();
	free_state();
	daemon_spec_release();
	store_close(d.store);
	sodium_memzero(d.audit_key, sizeof(d.audit_key));
	free(d.audit_export);
	if (lockfd >= 0)
		close(lockfd);
	daemon_upgrade_free();
	log_flush();
	return ret;
}
