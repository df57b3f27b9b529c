/*
 * api.c — the daemon's API: a Unix socket (HOME/api.sock, mode 0600), one
 * JSON request line in, one JSON response line out, then close.
 * See docs/api.md for the operations. Bad input gets {"ok":false,"error":...}
 * naming the JSON pointer; it never changes anything.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/api.h"
#include "gates/gates.h"
#include "gates/hooks.h"
#include "store/store_records.h"
#include "rollout/canary.h"
#include "rollout/stats.h"
#include "daemon/metrics.h"
#include <math.h>
#include "runtime/runtime.h"
#include "util/log.h"
#include <jansson.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define API_MAX_REQUEST (4 * 1024 * 1024)

struct api_conn {
	uv_pipe_t pipe;
	struct api_caller caller;
	char *buf;
	size_t len;
	bool done;
};

struct api_write {
	uv_write_t req;
	char *data;
};

json_t *api_error(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "code", code);
}

const char *api_str(json_t *req, const char *key, bool required, json_t **err)
{
	json_t *v = json_object_get(req, key);
	if (!v) {
		if (required && !*err)
			*err = api_error(2, "/%s: missing", key);
		return NULL;
	}
	if (!json_is_string(v)) {
		if (!*err)
			*err = api_error(2, "/%s: must be a string", key);
		return NULL;
	}
	return json_string_value(v);
}

int api_int(json_t *req, const char *key, int def, json_t **err)
{
	json_t *v = json_object_get(req, key);
	if (!v || json_is_null(v))
		return def;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
		if (!*err)
			*err = api_error(2, "/%s: must be a non-negative integer", key);
		return def;
	}
	return (int)json_integer_value(v);
}

/*
 * Fields a client once sent and the controller now owns: the resolved
 * config, the gate policy, check results, the webhook list, a claim of an
 * approval. A request carrying one is refused (400 over TCP), naming it.
 */
static const char *const client_only[] = { "gates", "config", "notify", "checks", "approved_deployment", NULL };

json_t *api_client_only_fields(json_t *req)
{
	for (const char *const *f = client_only; *f; f++)
		if (json_object_get(req, *f))
			return api_error(2, "/%s: not accepted from a client: the controller resolves the config, the gates, "
					 "the checks and the notifications from its stored spec (gantry apply)", *f);
	return NULL;
}

/* ---- read operations ---- */

/* live figures of each revision over the last 10 s, from the proxy */
static json_t *revision_metrics(struct svcenv *se, const int *revs, int nrevs)
{
	json_t *list = json_array();
	int64_t now = now_ms();
	for (int k = 0; k < nrevs; k++) {
		struct rev_window w;
		json_t *m;
		double er, p99;
		if (metrics_window(se->row.service, se->row.environment, revs[k], 10000, now, &w) < 0)
			continue;
		er = window_error_rate(&w);
		p99 = window_quantile(&w, 0.99);
		m = json_pack("{s:i, s:I, s:f}", "revision", revs[k], "requests", (json_int_t)w.requests,
			      "request_rate", window_request_rate(&w));
		json_object_set_new(m, "error_rate", isnan(er) ? json_null() : json_real(er));
		json_object_set_new(m, "latency_p99_ms", isnan(p99) ? json_null() : json_real(p99));
		json_array_append_new(list, m);
	}
	return list;
}

static json_t *svcenv_status(struct svcenv *se)
{
	json_t *o = json_object(), *replicas = json_array(), *traffic = json_array(), *rollout;
	int ready_by_rev[64] = { 0 }, revs[64], nrevs = 0, total_ready = 0, target_ready = 0, desired = 0;
	const char *phase = se->row.phase;
	struct gerr err;
	struct revcfg *rc = se->row.target_revision ? daemon_revcfg(se, se->row.target_revision, &err) : NULL;
	bool crashloop = false;

	if (rc)
		desired = daemon_desired(se, rc);
	for (struct replica *r = se->replicas; r; r = r->next) {
		json_t *jr = json_pack("{s:s, s:i, s:i, s:i, s:b, s:i, s:s}",
				       "id", r->row.id, "revision", r->row.revision, "pid", (int)r->row.pid,
				       "port", r->row.port, "ready", replica_is_ready(r), "restarts",
				       r->row.restarts, "state", r->row.state);
		if (r->row.last_exit[0])
			json_object_set_new(jr, "last_exit", json_string(r->row.last_exit));
		json_array_append_new(replicas, jr);
		if (!strcmp(r->row.state, "backoff") && r->row.restarts > 5)
			crashloop = true; /* this replica alone restarted more than 5 times */
		if (replica_is_ready(r)) {
			int k;
			total_ready++;
			if (r->row.revision == se->row.target_revision)
				target_ready++;
			for (k = 0; k < nrevs && revs[k] != r->row.revision; k++)
				;
			if (k == nrevs && nrevs < 64)
				revs[nrevs++] = r->row.revision;
			if (k < 64)
				ready_by_rev[k]++;
		}
	}
	if (se->ntraffic) {
		for (int k = 0; k < se->ntraffic; k++)
			json_array_append_new(traffic, json_pack("{s:i, s:i}", "revision", se->traffic[k].revision,
								 "weight", se->traffic[k].weight));
	} else {
		for (int k = 0; k < nrevs; k++)
			json_array_append_new(traffic, json_pack("{s:i, s:i}", "revision", revs[k], "weight",
								 (ready_by_rev[k] * 100 + total_ready / 2) / total_ready));
	}
	crashloop |= daemon_crashlooping(se, now_ms());
	if (se->rollout.id && !strcmp(se->rollout.phase, "progressing"))
		phase = "progressing";
	else if (se->rollout.id && !strcmp(se->rollout.phase, "paused"))
		phase = "paused";
	else if (se->row.target_revision && (target_ready < desired || crashloop) && strcmp(phase, "failed"))
		phase = "degraded";
	json_object_set_new(o, "service", json_string(se->row.service));
	json_object_set_new(o, "environment", json_string(se->row.environment));
	json_object_set_new(o, "phase", json_string(phase));
	json_object_set_new(o, "message", json_string(crashloop && !se->row.message[0]
		? "a replica is crash-looping (more than 5 restarts)" : se->row.message));
	json_object_set_new(o, "stable_revision", se->row.stable_revision ? json_integer(se->row.stable_revision) : json_null());
	json_object_set_new(o, "target_revision", json_integer(se->row.target_revision));
	json_object_set_new(o, "desired_replicas", json_integer(desired));
	json_object_set_new(o, "ready_replicas", json_integer(target_ready));
	json_object_set_new(o, "crash_looping", json_boolean(crashloop));
	if (rc)
		json_object_set_new(o, "version", json_string(rc->version));
	json_object_set_new(o, "traffic", traffic);
	json_object_set_new(o, "metrics", revision_metrics(se, revs, nrevs));
	json_object_set_new(o, "replicas", replicas);
	if (se->rollout.id) {
		rollout = json_pack("{s:I, s:i, s:i, s:s, s:i, s:i, s:s, s:s}",
				    "id", (json_int_t)se->rollout.id, "revision", se->rollout.revision,
				    "from_revision", se->rollout.from_revision,
				    "strategy", se->rollout.strategy, "step", se->rollout.step,
				    "steps", se->rollout.steps, "phase", se->rollout.phase,
				    "message", se->rollout.message);
	} else {
		rollout = json_null();
	}
	json_object_set_new(o, "rollout", rollout);
	/* a deployment waiting for approval is not a rollout: its own field */
	{
		json_t *pending = gates_pending_rollout(se->row.service, se->row.environment);
		json_object_set_new(o, "pending", pending ? pending : json_null());
	}
	if (se->prog)
		json_object_set_new(o, "canary", progressive_status(se));
	return o;
}

/*
 * A first deploy waiting for approvals has no service environment yet:
 * status still shows it (phase pending_approval, the pending object names
 * the deployment to approve), so nobody wonders where their deploy went.
 */
static void pending_first_deploys(json_t *list, const char *svc, const char *env)
{
	struct deployment_row *d;
	size_t n;
	struct gerr gerr;
	if (store_deployment_pending(gd->store, svc, env, &d, &n, &gerr) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct svcenv *se = daemon_svcenv(d[i].service, d[i].environment, false);
		bool listed = false;
		size_t k;
		json_t *o, *p;
		json_array_foreach(list, k, o)
			if (!strcmp(json_string_value(json_object_get(o, "service")), d[i].service) &&
			    !strcmp(json_string_value(json_object_get(o, "environment")), d[i].environment))
				listed = true;
		/* rows come newest first: each environment shows its newest live request */
		if (listed || (se && (se->row.target_revision || se->replicas)) || !(p = gates_pending_json(&d[i])))
			continue;
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:O, s:n, s:i, s:i, s:i, s:b, s:[], s:[], s:[], s:n, s:o}",
			"service", d[i].service, "environment", d[i].environment, "phase", "pending_approval",
			"message", json_object_get(p, "message"), "stable_revision", "target_revision", 0,
			"desired_replicas", 0, "ready_replicas", 0, "crash_looping", 0, "traffic", "metrics",
			"replicas", "rollout", "pending", p));
	}
	for (size_t i = 0; i < n; i++)
		deployment_row_release(&d[i]);
	free(d);
}

static json_t *op_status(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL, *list = json_array();
	const char *svc = api_str(req, "service", false, &err);
	const char *env = api_str(req, "environment", false, &err);
	if (err) {
		json_decref(list);
		return err;
	}
	for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
		if ((svc && strcmp(svc, se->row.service)) || (env && strcmp(env, se->row.environment)))
			continue;
		if (!se->row.target_revision && !se->replicas)
			continue;
		json_array_append_new(list, svcenv_status(se));
	}
	pending_first_deploys(list, svc, env);
	return json_pack("{s:b, s:o}", "ok", 1, "status", list);
}

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
	int64_t now = now_ms();
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
	se->rollout.deadline_at = now + rc->cfg.progress_deadline_ms;
	daemon_save_rollout(se);
	se->row.target_revision = rc->number;
	daemon_set_traffic(se, "", &err); /* a new rollout owns the traffic again */
	strlcpy_g(se->row.phase, "progressing", sizeof(se->row.phase));
	se->row.message[0] = 0;
	se->ncrash = 0;
	daemon_save_svcenv(se);
	store_revision_set_status(gd->store, se->row.service, se->row.environment, rc->number,
				  "progressing", NULL, &err);
	if (progressive && progressive_start(se, rc, stable, now, perr) < 0)
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
		return api_error(1, "%s", err.msg);
	if (store_revision_create(gd->store, rev, &err) < 0) {
		store_rollback(gd->store);
		return api_error(1, "%s", err.msg);
	}
	rc = daemon_revcfg(se, rev->number, &err);
	if (!rc) {
		store_rollback(gd->store);
		return api_error(2, "%s", err.msg);
	}
	if (start_rollout(se, rc, why, !strcmp(rev->kind, "deploy"), &err) < 0) {
		store_rollback(gd->store);
		return api_error(2, "cannot start the rollout: %s", err.msg);
	}
	store_event_add(gd->store, se->row.service, se->row.environment, rev->number, "rollout_started", &err,
			"revision %d (%s, version %s) by %s: %s", rev->number, rev->kind, rev->version,
			rev->deployed_by, why);
	if (store_commit(gd->store, &err) < 0) {
		store_rollback(gd->store);
		return api_error(1, "%s", err.msg);
	}
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

/* the digest of the newest revision of svc (any environment) with version; 1/0/-1 */
static int version_digest(const char *svc, const char *version, char *out, size_t len, struct gerr *err)
{
	for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
		struct revision_row *list;
		size_t n;
		bool found = false;
		if (strcmp(se->row.service, svc))
			continue;
		if (store_revision_list(gd->store, svc, se->row.environment, &list, &n, err) < 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (!found && !strcmp(list[i].version, version)) {
				strlcpy_g(out, list[i].digest, len);
				found = true;
			}
			revision_row_release(&list[i]);
		}
		free(list);
		if (found)
			return 1;
	}
	return 0;
}

/*
 * A deploy: the client names the service, the environment, the artifact
 * (digest, uploaded or snapshotted before) and the version, and may carry
 * the spec it deploys from (applied first, under the spec's rules). The
 * controller resolves the config from its stored spec and evaluates the
 * gates from its stored policy: nothing in the request decides them.
 */
static json_t *op_deploy(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL, *reply = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	const char *version = api_str(req, "version", false, &err);
	const char *digest = api_str(req, "digest", false, &err);
	struct identity who;
	struct deploy_intent in = { 0 };
	struct spec_proposal prop = { 0 };
	struct gerr gerr;
	char dbuf[80], cdigest[72], *config = NULL, *dir;
	struct stat st;
	int64_t ticket = 0;

	if (err)
		return err;
	if (gates_identify(req, caller, &who, &err) < 0)
		return err;
	if (json_object_get(req, "spec")) {
		/* the spec the deploy carries decides it, under the apply's rules; it
		 * is stored only if the deploy goes ahead (started or waiting) */
		const char *name, *text;
		size_t len;
		if (api_spec_arg(json_object_get(req, "spec"), "/spec", &name, &text, &len, &err) < 0)
			return err;
		if ((reply = daemon_spec_propose(name, text, len, &who, -1, true, "deploy", &prop)))
			return reply; /* refused or invalid: nothing changed */
		if (json_array_size(prop.diff))
			daemon_spec_swap(&prop);
	}
	if (!digest) {
		int f;
		if (!version) {
			reply = api_error(2, "/digest: missing (or name a /version already deployed)");
			goto out;
		}
		f = version_digest(svc, version, dbuf, sizeof(dbuf), &gerr);
		if (f <= 0) {
			reply = f < 0 ? api_error(1, "%s", gerr.msg)
				: api_error(2, "/version: no revision of %s has version '%s': deploy it with its artifact first",
					    svc, version);
			goto out;
		}
		digest = dbuf;
	}
	if (strspn(digest, "0123456789abcdef") != strlen(digest) || strlen(digest) < 16 || strlen(digest) >= sizeof(dbuf)) {
		reply = api_error(2, "/digest: must be a hex digest");
		goto out;
	}
	dir = xasprintf("%s/artifacts/%s", gd->home, digest);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		reply = api_error(2, "/digest: no artifact snapshot %s in the state directory", digest);
	free(dir);
	if (reply || daemon_resolve(svc, env, req, &config, cdigest, &reply) < 0)
		goto out;
	in.config = config;
	in.config_digest = cdigest;
	in.spec_version = gd->spec_version;
	in.version = version ? version : digest;
	in.digest = digest;
	reply = gates_before_rollout(req, caller, svc, env, "deploy", &in, &ticket);
out:
	if (prop.swapped) {
		daemon_spec_swap(&prop);
		if (json_is_true(json_object_get(reply, "ok")) || json_object_get(reply, "pending_approval")) {
			/* the caller sees what its spec changed (an old local copy reverts newer changes) */
			json_t *diff = json_incref(prop.diff);
			if (daemon_spec_commit(&prop, &who, "deploy", &gerr) < 0)
				log_error("spec", "the spec of a deploy that went ahead could not be stored: %s", gerr.msg);
			else
				json_object_set_new(reply, "spec_applied", json_pack("{s:I, s:o}", "version",
						    (json_int_t)gd->spec_version, "diff", diff));
		}
	}
	spec_proposal_release(&prop);
	free(config);
	return reply;
}

/* snapshots are shared by content: a pruned revision's may still be there */
static bool artifact_present(const char *digest)
{
	char *dir = xasprintf("%s/artifacts/%s", gd->home, digest);
	struct stat st;
	bool ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	free(dir);
	return ok;
}

/* the revision a rollback returns to: newest one before `from` that served */
static int previous_served(struct svcenv *se, int from, struct gerr *err)
{
	struct revision_row *list;
	size_t n;
	int found = 0;
	if (store_revision_list(gd->store, se->row.service, se->row.environment, &list, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!found && list[i].number < from &&
		    (!list[i].artifact_pruned || artifact_present(list[i].digest)) &&
		    (!strcmp(list[i].status, "superseded") || !strcmp(list[i].status, "rolled_back") ||
		     !strcmp(list[i].status, "serving")))
			found = list[i].number;
		revision_row_release(&list[i]);
	}
	free(list);
	return found;
}

/* a new revision that copies an old one's artifact and config exactly */
static json_t *copy_revision(struct svcenv *se, int source, const char *kind, const char *by,
			     const char *why)
{
	struct revision_row old, rev = { 0 };
	struct gerr gerr;
	int found = store_revision_get(gd->store, se->row.service, se->row.environment, source, &old, &gerr);
	json_t *reply;
	if (found < 0)
		return api_error(1, "%s", gerr.msg);
	if (!found)
		return api_error(2, "revision %d of %s@%s does not exist", source, se->row.service, se->row.environment);
	if (old.artifact_pruned && !artifact_present(old.digest)) {
		revision_row_release(&old);
		return api_error(2, "revision %d's artifact was pruned (keep_revisions)", source);
	}
	rev = old;
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
	json_t *reply = copy_revision(se, to, "rollback", "gantry", why);
	int ok = json_is_true(json_object_get(reply, "ok"));
	if (ok && store_revision_set_status(gd->store, se->row.service, se->row.environment, current, "rolled_back",
					    why, &gerr) < 0)
		log_error("store", "%s", gerr.msg);
	if (!ok)
		log_error("rollout", "automatic rollback of %s@%s to revision %d failed: %s", se->row.service,
			  se->row.environment, to, json_string_value(json_object_get(reply, "error")));
	else
		gates_auto_rollback(se->row.service, se->row.environment, current,
				    (int)json_integer_value(json_object_get(reply, "revision")), why);
	json_decref(reply);
	return ok ? 0 : -1;
}

static json_t *op_rollback(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	const char *by = api_actor(caller);
	int to = api_int(req, "to_revision", 0, &err);
	struct svcenv *se;
	struct gerr gerr;
	char why[128];
	bool active;
	int current;

	if (err)
		return err;
	se = daemon_svcenv(svc, env, false);
	if (!se || !se->row.target_revision)
		return api_error(2, "%s@%s has never been deployed", svc, env);
	if (se->prog) {
		int w = progressive_rollback_warm(se, to, api_actor(caller), &gerr);
		if (w < 0)
			return api_error(1, "%s", gerr.msg);
		if (w == 0)
			return json_pack("{s:b, s:i, s:I, s:s, s:b}", "ok", 1, "revision", se->row.target_revision,
					 "rollout", (json_int_t)0, "version", "", "warm", 1);
	}
	active = se->rollout.id && !strcmp(se->rollout.phase, "progressing");
	current = se->row.target_revision;
	if (!to) {
		/* during a rollout: back to what served before it; else the one before stable */
		to = active && se->rollout.from_revision ? se->rollout.from_revision
			: previous_served(se, se->row.stable_revision ? se->row.stable_revision : current, &gerr);
		if (to < 0)
			return api_error(1, "%s", gerr.msg);
		if (!to)
			return api_error(2, "%s@%s has no earlier revision to roll back to", svc, env);
	}
	if (to == current && !active)
		return api_error(2, "revision %d is already the one serving", to);
	snprintf(why, sizeof(why), "rollback to revision %d", to);
	{
		/* the new revision first: a refused rollback changes nothing */
		int64_t ticket = 0;
		json_t *gate = gates_before_rollout(req, caller, svc, env, "rollback", NULL, &ticket), *reply;
		if (gate)
			return gate;
		reply = copy_revision(se, to, "rollback", by, why);
		gates_rollout_created(ticket, reply);
		if (json_is_true(json_object_get(reply, "ok")) &&
		    store_revision_set_status(gd->store, svc, env, current, "rolled_back", why, &gerr) < 0)
			log_error("store", "%s", gerr.msg);
		return reply;
	}
}

static json_t *op_restart(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	const char *by = api_actor(caller);
	struct svcenv *se;
	char why[128];
	if (err)
		return err;
	se = daemon_svcenv(svc, env, false);
	if (!se || !se->row.target_revision)
		return api_error(2, "%s@%s has never been deployed", svc, env);
	snprintf(why, sizeof(why), "rolling restart of revision %d", se->row.target_revision);
	{
		int64_t ticket = 0;
		json_t *gate = gates_before_rollout(req, caller, svc, env, "restart", NULL, &ticket), *reply;
		if (gate)
			return gate;
		reply = copy_revision(se, se->row.target_revision, "restart", by, why);
		gates_rollout_created(ticket, reply);
		return reply;
	}
}

static json_t *op_scale(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	const char *by = api_actor(caller);
	int n = api_int(req, "replicas", -1, &err);
	struct svcenv *se;
	if (err)
		return err;
	if (n < 0 || n > 1000)
		return api_error(2, "/replicas: must be 0..1000");
	se = daemon_svcenv(svc, env, false);
	if (!se || !se->row.target_revision)
		return api_error(2, "%s@%s has never been deployed", svc, env);
	if (se->rollout.id && (!strcmp(se->rollout.phase, "progressing") || !strcmp(se->rollout.phase, "paused")) &&
	    se->row.target_revision != se->row.stable_revision) {
		struct gerr gerr;
		struct revcfg *rc = daemon_revcfg(se, se->row.target_revision, &gerr);
		json_t *deny = rc && n > daemon_desired(se, rc) ? gates_before_raise(req, caller, svc, env, "scale") : NULL;
		if (deny)
			return deny;
	}
	se->row.replicas = n ? n : -1; /* -1: scaled to zero on purpose, 0: the config's count */
	daemon_save_svcenv(se);
	daemon_event(se, se->row.target_revision, "scaled", "scaled to %d replicas by %s", n, by ? by : "unknown");
	daemon_reconcile(se);
	return json_pack("{s:b, s:i}", "ok", 1, "replicas", n);
}

static bool artifact_present(const char *digest);

/* a split by revision, by hand (Cloud Run's update-traffic): a revision given
 * weight is started from its snapshot if it is not running; the reconcile loop keeps every revision with
 * weight > 0 running until the split is reset or a new rollout starts */
static json_t *op_traffic(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL, *weights = json_object_get(req, "weights"), *e;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	struct svcenv *se;
	struct gerr gerr;
	char *text = NULL, desc[512] = "";
	size_t i;
	bool raise = false;

	if (err)
		return err;
	se = daemon_svcenv(svc, env, false);
	if (!se || !se->row.target_revision)
		return api_error(2, "%s@%s has never been deployed", svc, env);
	if (weights && !json_is_null(weights)) {
		if (!json_is_array(weights) || !json_array_size(weights))
			return api_error(2, "/weights: must be a non-empty array of {revision, weight}");
		json_array_foreach(weights, i, e) {
			json_t *r = json_object_get(e, "revision"), *w = json_object_get(e, "weight");
			struct revision_row rev;
			int found;
			if (!json_is_integer(r) || !json_is_integer(w))
				return api_error(2, "/weights/%zu: must be {\"revision\": N, \"weight\": W}", i);
			found = store_revision_get(gd->store, svc, env, (int)json_integer_value(r), &rev, &gerr);
			if (found <= 0)
				return api_error(2, "/weights/%zu: revision %lld of %s@%s does not exist", i,
						 (long long)json_integer_value(r), svc, env);
			if (json_integer_value(w) > 0 && rev.artifact_pruned && !artifact_present(rev.digest)) {
				revision_row_release(&rev);
				return api_error(2, "/weights/%zu: revision %lld's artifact was pruned", i,
						 (long long)json_integer_value(r));
			}
			revision_row_release(&rev);
			if (json_integer_value(r) != se->row.stable_revision &&
			    json_integer_value(w) > MAX(0, daemon_traffic_weight(se, (int)json_integer_value(r))))
				raise = true;
			snprintf(desc + strlen(desc), sizeof(desc) - strlen(desc), "%s#%lld=%lld", i ? ", " : "",
				 (long long)json_integer_value(r), (long long)json_integer_value(w));
		}
		text = json_dumps(weights, JSON_COMPACT);
	}
	if (raise) {
		json_t *deny = gates_before_raise(req, caller, svc, env, "traffic");
		if (deny) {
			free(text);
			return deny;
		}
	}
	if (daemon_set_traffic(se, text ? text : "", &gerr) < 0) {
		free(text);
		return api_error(2, "/weights: %s", gerr.msg + strlen("traffic: "));
	}
	free(text);
	daemon_save_svcenv(se);
	daemon_event(se, se->row.target_revision, "traffic", "traffic set by %s: %s", api_actor(caller),
		     desc[0] ? desc : "reset (by ready replicas)");
	proxyctl_write_routes();
	daemon_reconcile(se);
	return json_pack("{s:b}", "ok", 1);
}

/* pause | resume | abort | promote of a canary or blue-green rollout */
static json_t *op_rollout_command(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL;
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	const char *why = api_str(req, "reason", false, &err);
	bool full = json_is_true(json_object_get(req, "full"));
	struct svcenv *se;
	struct gerr gerr;
	int kind;
	if (err)
		return err;
	se = daemon_svcenv(svc, env, false);
	if (!se || !se->row.target_revision)
		return api_error(2, "%s@%s has never been deployed", svc, env);
	kind = !strcmp(op, "pause") ? CE_PAUSE : !strcmp(op, "resume") ? CE_RESUME
		: !strcmp(op, "abort") ? CE_ABORT : CE_PROMOTE;
	if (kind == CE_RESUME || kind == CE_PROMOTE) {
		json_t *deny = gates_before_raise(req, caller, svc, env, op);
		if (deny)
			return deny;
	}
	if (progressive_command(se, kind, api_actor(caller), why, full, &gerr) < 0)
		return api_error(2, "%s", gerr.msg);
	daemon_event(se, se->rollout.revision, op, "%s by %s%s%s", op, api_actor(caller), why ? ": " : "",
		     why ? why : "");
	return json_pack("{s:b, s:s, s:s}", "ok", 1, "phase", se->rollout.phase, "message", se->rollout.message);
}

static json_t *op_history(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL, *list;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	struct revision_row *revs;
	size_t n;
	struct gerr gerr;
	if (err)
		return err;
	if (store_revision_list(gd->store, svc, env, &revs, &n, &gerr) < 0)
		return api_error(1, "%s", gerr.msg);
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		char ts[32];
		struct tm tm;
		time_t t = (time_t)revs[i].created_at;
		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_array_append_new(list, json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b}",
			"revision", revs[i].number, "version", revs[i].version, "created_at", ts,
			"status", revs[i].status, "reason", revs[i].reason, "deployed_by", revs[i].deployed_by,
			"kind", revs[i].kind, "digest", revs[i].digest, "source", revs[i].source,
			"artifact_pruned", revs[i].artifact_pruned));
		revision_row_release(&revs[i]);
	}
	free(revs);
	return json_pack("{s:b, s:o}", "ok", 1, "history", list);
}

static json_t *op_events(json_t *req, const struct api_caller *caller)
{
	json_t *err = NULL, *list;
	const char *svc = api_str(req, "service", false, &err);
	const char *env = api_str(req, "environment", false, &err);
	json_t *after = json_object_get(req, "after");
	int limit = api_int(req, "limit", 50, &err);
	struct event_row *ev;
	size_t n;
	struct gerr gerr;
	if (err)
		return err;
	if (after && !json_is_integer(after))
		return api_error(2, "/after: must be an integer");
	if (store_event_list(gd->store, svc, env, after ? json_integer_value(after) : -1, limit, &ev, &n, &gerr) < 0)
		return api_error(1, "%s", gerr.msg);
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		char ts[40];
		struct tm tm;
		time_t t = (time_t)(ev[i].ts_ms / 1000);
		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03dZ", (int)(ev[i].ts_ms % 1000));
		json_array_append_new(list, json_pack("{s:I, s:s, s:s, s:s, s:i, s:s, s:s}",
			"id", (json_int_t)ev[i].id, "time", ts, "service", ev[i].service,
			"environment", ev[i].environment, "revision", ev[i].revision,
			"kind", ev[i].kind, "message", ev[i].message));
	}
	free(ev);
	return json_pack("{s:b, s:o}", "ok", 1, "events", list);
}

static json_t *op_ping(json_t *req, const struct api_caller *caller)
{
	(void)req;
	return json_pack("{s:b, s:i, s:s, s:s, s:s}", "ok", 1, "pid", (int)getpid(), "version", GANTRY_VERSION,
			 "proxy", gd->listen, "caller", caller->user);
}

static const struct api_op api_ops[] = {
	{ "ping", op_ping, false },
	{ "status", op_status, false },
	{ "history", op_history, false },
	{ "events", op_events, false },
	{ "deploy", op_deploy, true },
	{ "rollback", op_rollback, true },
	{ "restart", op_restart, true },
	{ "scale", op_scale, true },
	{ "traffic", op_traffic, true },
	{ "pause", op_rollout_command, true },
	{ "resume", op_rollout_command, true },
	{ "abort", op_rollout_command, true },
	{ "promote_canary", op_rollout_command, true },
	{ NULL, NULL, false },
};

const char *api_actor(const struct api_caller *caller)
{
	return caller->claimed[0] ? caller->claimed : caller->user;
}

static json_t *dispatch(json_t *req, struct api_caller *caller)
{
	const struct api_op *o = NULL;
	const char *op, *claimed;
	if (!json_is_object(req))
		return api_error(2, "request must be a JSON object");
	op = json_string_value(json_object_get(req, "op"));
	if (!op)
		return api_error(2, "/op: missing or not a string");
	for (const struct api_op *t = api_ops; t->name && !o; t++)
		if (!strcmp(t->name, op))
			o = t;
	for (const struct api_op *t = api_ops_ext; t->name && !o; t++)
		if (!strcmp(t->name, op))
			o = t;
	for (const struct api_op *t = api_ops_spec; t->name && !o; t++)
		if (!strcmp(t->name, op))
			o = t;
	if (!o)
		return api_error(2, "/op: unknown operation '%s'", op);
	{
		json_t *bad = api_client_only_fields(req);
		if (bad)
			return bad;
	}
	claimed = json_string_value(json_object_get(req, "deployed_by"));
	if (claimed)
		strlcpy_g(caller->claimed, claimed, sizeof(caller->claimed));
	if (o->mutating && gd->shutting_down)
		return api_error(1, "gantry serve is shutting down");
	if (o->mutating && gd->restoring) {
		json_t *r = api_error(1, "gantry serve is starting: restoring the desired state first");
		json_object_set_new(r, "retry", json_true());
		return r;
	}
	{
		json_t *reply = gates_authorize(o->name, o->mutating, req, caller);
		if (!reply)
			reply = o->fn(req, caller);
		if (o->mutating && json_is_true(json_object_get(reply, "ok")))
			gates_audit_op(o->name, req, caller, reply);
		else if (o->mutating)
			gates_audit_refusal(o->name, req, caller, reply);
		return reply;
	}
}

json_t *api_dispatch(json_t *req, struct api_caller *caller)
{
	return dispatch(req, caller);
}

bool api_op_known(const char *op)
{
	for (const struct api_op *t = api_ops; t->name; t++)
		if (!strcmp(t->name, op))
			return true;
	for (const struct api_op *t = api_ops_ext; t->name; t++)
		if (!strcmp(t->name, op))
			return true;
	for (const struct api_op *t = api_ops_spec; t->name; t++)
		if (!strcmp(t->name, op))
			return true;
	return false;
}

json_t *api_dispatch_as(json_t *req, const char *actor)
{
	struct api_caller c = { 0 };
	c.uid = geteuid();
	c.pid = getpid();
	strlcpy_g(c.user, actor, sizeof(c.user));
	json_object_set_new(req, "deployed_by", json_string(actor));
	return dispatch(req, &c);
}

/* ---- socket plumbing ---- */

static void on_conn_closed(uv_handle_t *h)
{
	struct api_conn *c = h->data;
	free(c->buf);
	free(c);
}

static void on_written(uv_write_t *w, int status)
{
	struct api_write *aw = (struct api_write *)w;
	(void)status;
	uv_close((uv_handle_t *)w->handle, on_conn_closed);
	free(aw->data);
	free(aw);
}

static void reply(struct api_conn *c, json_t *resp)
{
	struct api_write *w = xcalloc(1, sizeof(*w));
	char *text = json_dumps(resp, JSON_COMPACT);
	uv_buf_t b;
	json_decref(resp);
	w->data = xasprintf("%s\n", text);
	free(text);
	b = uv_buf_init(w->data, (unsigned)strlen(w->data));
	c->done = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
		free(w->data);
		free(w);
		uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct api_conn *c = h->data;
	(void)suggested;
	c->buf = xrealloc(c->buf, c->len + 65536 + 1);
	*buf = uv_buf_init(c->buf + c->len, 65536);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct api_conn *c = s->data;
	char *nl;
	(void)buf;
	if (c->done)
		return;
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_conn_closed);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = 0;
	if (c->len > API_MAX_REQUEST) {
		reply(c, api_error(2, "request larger than %d bytes", API_MAX_REQUEST));
		return;
	}
	nl = memchr(c->buf, '\n', c->len);
	if (nl) {
		json_error_t jerr;
		json_t *req = json_loadb(c->buf, (size_t)(nl - c->buf), 0, &jerr);
		if (!req) {
			reply(c, api_error(2, "request is not JSON: %s at column %d", jerr.text, jerr.column));
			return;
		}
		reply(c, dispatch(req, &c->caller));
		json_decref(req);
	}
}

/* the kernel says who connected: nothing the client claims */
static void peer_credentials(struct api_conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;
	struct passwd pw, *res = NULL;
	char buf[1024];

	c->caller.uid = (uid_t)-1;
	strlcpy_g(c->caller.user, "unknown", sizeof(c->caller.user));
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return;
	c->caller.uid = cred.uid;
	c->caller.pid = cred.pid;
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		strlcpy_g(c->caller.user, res->pw_name, sizeof(c->caller.user));
	else
		snprintf(c->caller.user, sizeof(c->caller.user), "uid%u", (unsigned)cred.uid);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct api_conn *c;
	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	uv_pipe_init(gd->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
		return;
	}
	peer_credentials(c);
	if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
		uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

int api_listen(void)
{
	char *path = xasprintf("%s/api.sock", gd->home);
	int r;
	unlink(path); /* we hold serve.lock: a leftover socket is stale */
	uv_pipe_init(gd->loop, &gd->api, 0);
	r = uv_pipe_bind(&gd->api, path);
	if (!r)
		r = chmod(path, 0600) < 0 ? uv_translate_sys_error(errno) : 0;
	if (!r)
		r = uv_listen((uv_stream_t *)&gd->api, 64, on_connection);
	if (r < 0) {
		fprintf(stderr, "error: cannot listen on %s: %s\n", path, uv_strerror(r));
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

void api_close(void)
{
	char *path = xasprintf("%s/api.sock", gd->home);
	if (!uv_is_closing((uv_handle_t *)&gd->api))
		uv_close((uv_handle_t *)&gd->api, NULL);
	unlink(path);
	free(path);
}
