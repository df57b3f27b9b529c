/*
 * rollouts.c — creating revisions and starting their rollouts, in one
 * transaction each: a deploy from its deployment record, a copy of an old
 * revision (rollback, restart), the controller's own rollback. Called by
 * the API operations (src/api/ops_service.c) and the gates flow.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/gates_flow.h"
#include "daemon/pulls.h"
#include "daemon/migrations.h"
#include "daemon/reply.h"
#include "store/store_records.h"
#include "util/log.h"
#include "util/clock.h"
#include <jansson.h>
#include <sys/stat.h>

/* ---- write operations ---- */

static const char *strategy_name(enum strategy_kind k)
{
	switch (k) {
	case STRATEGY_RECREATE: return "recreate";
	case STRATEGY_CANARY: return "canary";
	case STRATEGY_BLUEGREEN: return "bluegreen";
	default: return "rolling";
	}
}

/* starts a rollout of revision `number` (already created); inside a transaction */
static int start_rollout(struct svcenv *se, struct revcfg *rc, const char *why, bool progressive,
			 struct gerr *perr)
{
	struct gerr err;
	int64_t now = clock_now_ms();
	int stable = se->row.stable_revision;
	progressive_free(se);
	if (se->rollout.id && (!strcmp(se->rollout.phase, "progressing") || !strcmp(se->rollout.phase, "paused"))) {
		strlcpy_g(se->rollout.phase, "superseded", sizeof(se->rollout.phase));
		snprintf(se->rollout.message, sizeof(se->rollout.message), "superseded by revision %d", rc->number);
		daemon_save_rollout(se);
		if (se->rollout.revision != se->row.stable_revision)
			store_revision_set_status(gd->store, se->row.service, se->row.environment,
						  se->rollout.revision, "superseded", "superseded before it completed", &err);
	}
	memset(&se->rollout, 0, sizeof(se->rollout));
	strlcpy_g(se->rollout.service, se->row.service, sizeof(se->rollout.service));
	strlcpy_g(se->rollout.environment, se->row.environment, sizeof(se->rollout.environment));
	se->rollout.revision = rc->number;
	se->rollout.from_revision = se->row.stable_revision;
	/* a canary needs something serving to compare with; rollbacks and
	 * restarts go back at once, whatever the revision's strategy says */
	progressive = progressive && progressive_strategy(rc) && stable > 0;
	strlcpy_g(se->rollout.strategy, progressive ? strategy_name(rc->cfg.strategy.kind)
		  : rc->cfg.strategy.kind == STRATEGY_RECREATE ? "recreate" : "rolling", sizeof(se->rollout.strategy));
	strlcpy_g(se->rollout.phase, "progressing", sizeof(se->rollout.phase));
	se->rollout.steps = daemon_desired(se, rc);
	snprintf(se->rollout.message, sizeof(se->rollout.message), "started (%s)", why);
	se->rollout.started_at = now;
	/* a duration: on the steady clock, as daemon_reconcile reads it */
	se->rollout.deadline_at = clock_steady_ms() + rc->cfg.progress_deadline_ms;
	daemon_save_rollout(se);
	se->row.target_revision = rc->number;
	daemon_set_traffic(se, "", &err); /* a new rollout owns the traffic again */
	strlcpy_g(se->row.phase, "progressing", sizeof(se->row.phase));
	se->row.message[0] = 0;
	se->ncrash = 0;
	daemon_save_svcenv(se);
	store_revision_set_status(gd->store, se->row.service, se->row.environment, rc->number,
				  "progressing", NULL, &err);
	if (progressive && progressive_start(se, rc, stable, clock_steady_ms(), perr) < 0)
		return -1;
	return 0;
}

/* creates a revision and its rollout in one transaction */
static json_t *create_and_roll(struct svcenv *se, struct revision_row *rev, const char *why)
{
	struct gerr err;
	struct revcfg *rc;
	json_t *reply;

	if (store_begin(gd->store, &err) < 0)
		return reply_error(1, "%s", err.msg);
	if (store_revision_create(gd->store, rev, &err) < 0) {
		store_rollback(gd->store);
		return reply_error(1, "%s", err.msg);
	}
	rc = daemon_revcfg(se, rev->number, &err);
	if (!rc) {
		store_rollback(gd->store);
		daemon_store_reload(se);
		return reply_error(2, "%s", err.msg);
	}
	if (start_rollout(se, rc, why, !strcmp(rev->kind, "deploy"), &err) < 0) {
		store_rollback(gd->store);
		daemon_store_reload(se);
		return reply_error(2, "cannot start the rollout: %s", err.msg);
	}
	store_event_add(gd->store, se->row.service, se->row.environment, rev->number, "rollout_started", &err,
			"revision %d (%s, version %s) by %s: %s", rev->number, rev->kind, rev->version,
			rev->deployed_by, why);
	/* record, then act: start_rollout changed se in memory only; nothing
	 * acts on it (no reconcile, no routes) unless the commit succeeds, and
	 * a failed commit puts se back as recorded: the CLI's error is true */
	if (store_commit(gd->store, &err) < 0) {
		struct gerr why_not;
		store_rollback(gd->store);
		daemon_store_reload(se);
		if (daemon_store_refusal(&why_not) < 0)
			return reply_error(1, "%s", why_not.msg);
		return reply_error(1, "%s", err.msg);
	}
	/* what was still waiting for its image is superseded by this rollout */
	pulls_supersede(se->row.service, se->row.environment);
	log_info("api", "service=%s environment=%s revision=%d rollout=%lld started (%s)", se->row.service,
		 se->row.environment, rev->number, (long long)se->rollout.id, why);
	reply = json_pack("{s:b, s:i, s:I, s:s}", "ok", 1, "revision", rev->number, "rollout",
			  (json_int_t)se->rollout.id, "version", rev->version);
	daemon_reconcile(se);
	return reply;
}

json_t *daemon_deploy_start(const struct deployment_row *d)
{
	struct svcenv *se = daemon_svcenv(d->service, d->environment, true);
	struct revision_row rev = { 0 };
	json_t *reply;
	strlcpy_g(rev.service, d->service, sizeof(rev.service));
	strlcpy_g(rev.environment, d->environment, sizeof(rev.environment));
	strlcpy_g(rev.version, d->version, sizeof(rev.version));
	strlcpy_g(rev.digest, d->digest, sizeof(rev.digest));
	strlcpy_g(rev.kind, "deploy", sizeof(rev.kind));
	strlcpy_g(rev.status, "pending", sizeof(rev.status));
	strlcpy_g(rev.deployed_by, d->requester, sizeof(rev.deployed_by));
	strlcpy_g(rev.reason, d->reason, sizeof(rev.reason));
	rev.config_json = d->config;
	se->row.replicas = 0; /* a deploy takes the replica count of its config */
	reply = create_and_roll(se, &rev, d->reason[0] ? d->reason : "deploy");
	gates_rollout_created(d->id, reply);
	return reply;
}

/* snapshots are shared by content: a pruned revision's may still be there */
bool daemon_artifact_present(const char *digest)
{
	char *dir = xasprintf("%s/artifacts/%s", gd->home, digest);
	struct stat st;
	bool ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	free(dir);
	return ok;
}

/* the revision a rollback returns to: newest one before `from` that served */
int daemon_previous_served(struct svcenv *se, int from, struct gerr *err)
{
	struct revision_row *list;
	size_t n;
	int found = 0;
	if (store_revision_list(gd->store, se->row.service, se->row.environment, &list, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!found && list[i].number < from &&
		    (!list[i].artifact_pruned || daemon_artifact_present(list[i].digest)) &&
		    (!strcmp(list[i].status, "superseded") || !strcmp(list[i].status, "rolled_back") ||
		     !strcmp(list[i].status, "serving")))
			found = list[i].number;
		revision_row_release(&list[i]);
	}
	free(list);
	return found;
}

/* a new revision that copies an old one's artifact and config exactly */
json_t *daemon_copy_revision(struct svcenv *se, int source, const char *kind, const char *by,
			     const char *why)
{
	return daemon_copy_revision_with(se, source, kind, by, why, NULL);
}

json_t *daemon_copy_revision_with(struct svcenv *se, int source, const char *kind, const char *by,
				  const char *why, const char *config)
{
	struct revision_row old, rev = { 0 };
	struct gerr gerr;
	int found = store_revision_get(gd->store, se->row.service, se->row.environment, source, &old, &gerr);
	json_t *reply;
	if (found < 0)
		return reply_error(1, "%s", gerr.msg);
	if (!found)
		return reply_error(2, "revision %d of %s@%s does not exist", source, se->row.service, se->row.environment);
	if (old.artifact_pruned && !daemon_artifact_present(old.digest)) {
		revision_row_release(&old);
		return reply_error(2, "revision %d's artifact was pruned (keep_revisions)", source);
	}
	rev = old;
	if (config)
		rev.config_json = (char *)config; /* borrowed: old's is released below */
	rev.id = 0;
	rev.created_at = 0;
	rev.source = source;
	strlcpy_g(rev.kind, kind, sizeof(rev.kind));
	strlcpy_g(rev.status, "pending", sizeof(rev.status));
	strlcpy_g(rev.deployed_by, by ? by : "unknown", sizeof(rev.deployed_by));
	snprintf(rev.reason, sizeof(rev.reason), "%s", why);
	reply = create_and_roll(se, &rev, why);
	revision_row_release(&old);
	return reply;
}

/* the controller's own rollback (a rollback_on breach after a rolling
 * deploy): a new revision copying `to`, recorded as done by gantry */
int daemon_auto_rollback(struct svcenv *se, int to, const char *why)
{
	struct gerr gerr;
	int current = se->row.target_revision;
	json_t *reply;
	/* auto_down: the down-migrations first, the rollback's revision after them */
	int ad = mig_flow_auto_rollback(se, current, to, why, false);
	if (ad != 0)
		return ad > 0 ? 0 : -1;
	reply = daemon_copy_revision(se, to, "rollback", "gantry", why);
	int ok = json_is_true(json_object_get(reply, "ok"));
	if (ok && store_revision_set_status(gd->store, se->row.service, se->row.environment, current, "rolled_back",
					    why, &gerr) < 0)
		log_error("store", "%s", gerr.msg);
	if (!ok)
		log_error("rollout", "automatic rollback of %s@%s to revision %d failed: %s", se->row.service,
			  se->row.environment, to, json_string_value(json_object_get(reply, "error")));
	else {
		char note[256], msg[512];
		int64_t down_to;
		/* an automatic rollback never runs down-migrations: it says it kept the schema */
		if (mig_flow_rollback_plan(se, current, to, &down_to, note, sizeof(note), &gerr) != 0 && note[0]) {
			snprintf(msg, sizeof(msg), "automatic rollback keeps the schema: %s (down-migrations run only "
				 "with gantry rollback or gantry db down)", note);
			gates_event(se->row.service, se->row.environment, current, "schema_kept", msg);
		}
		gates_auto_rollback(se->row.service, se->row.environment, current,
				    (int)json_integer_value(json_object_get(reply, "revision")), why);
	}
	json_decref(reply);
	return ok ? 0 : -1;
}
