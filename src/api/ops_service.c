/*
 * ops_service.c — the API operations on a service in an environment:
 * status, history, events, ping; deploy, rollback, restart, scale,
 * traffic, pause/resume/abort/promote_canary (docs/api.md). Each takes the
 * controller and the caller the dispatcher identified and authorised
 * (src/api/api.h); the rollouts they start are src/daemon/rollouts.c's.
 */
#include "common.h"
#include "api/api.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "daemon/disk.h"
#include "daemon/gates_flow.h"
#include "daemon/migrations.h"
#include "daemon/metrics.h"
#include "daemon/proxypeers.h"
#include "daemon/pulls.h"
#include "daemon/swarmlease.h"
#include "daemon/usage.h"
#include "gates/gates.h"
#include "rollout/canary.h"
#include "rollout/stats.h"
#include "runtime/runtime.h"
#include "store/store_records.h"
#include "util/log.h"
#include "util/clock.h"
#include "util/parse.h"
#include <jansson.h>
#include <math.h>
#include <sys/stat.h>

/* ---- read operations ---- */

/* live figures of each revision over the last 10 s, from the proxy */
static json_t *revision_metrics(struct svcenv *se, const int *revs, int nrevs)
{
	json_t *list = json_array();
	int64_t now = clock_mono_ms();
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
	char held[400] = "";

	if (rc)
		desired = daemon_desired(se, rc);
	for (struct replica *r = se->replicas; r; r = r->next) {
		json_t *jr = json_pack("{s:s, s:i, s:i, s:i, s:b, s:i, s:s}",
				       "id", r->row.id, "revision", r->row.revision, "pid", (int)r->row.pid,
				       "port", r->row.port, "ready", replica_is_ready(r), "restarts",
				       r->row.restarts, "state", r->row.state);
		if (r->row.last_exit[0])
			json_object_set_new(jr, "last_exit", json_string(r->row.last_exit));
		if (r->row.container[0])
			json_object_set_new(jr, "container", json_string(r->row.container));
		/* a cluster's replica: the node its task runs on (daemon/swarmrt.c) */
		if (r->sw_node[0])
			json_object_set_new(jr, "node", json_string(r->sw_node));
		usage_json(r, jr, clock_steady_ms());
		json_array_append_new(replicas, jr);
		/* this replica alone restarted more than 5 times; one of a revision
		 * being retired (after a rollback, say) is not the service's loop */
		if (!strcmp(r->row.state, "backoff") && r->row.restarts > 5 &&
		    r->row.revision == se->row.target_revision)
			crashloop = true;
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
	crashloop |= daemon_crashlooping(se, clock_steady_ms());
	if (se->rollout.id && !strcmp(se->rollout.phase, "progressing"))
		phase = "progressing";
	else if (se->rollout.id && !strcmp(se->rollout.phase, "paused"))
		phase = "paused";
	else if (se->row.target_revision && (target_ready < desired || crashloop) && strcmp(phase, "failed"))
		phase = "degraded";
	/* the store cannot write: everything holds, whatever it was doing */
	if (!daemon_store_ok()) {
		json_t *st = daemon_store_json();
		char d[32];
		phase = "degraded";
		snprintf(held, sizeof(held), "held: the state store cannot write (%s since %s): nothing moves until it can",
			 json_string_value(json_object_get(st, "error")),
			 format_duration(json_integer_value(json_object_get(st, "for_ms")), d, sizeof(d)));
		json_decref(st);
	}
	json_object_set_new(o, "service", json_string(se->row.service));
	json_object_set_new(o, "environment", json_string(se->row.environment));
	json_object_set_new(o, "phase", json_string(phase));
	json_object_set_new(o, "message", json_string(held[0] ? held : crashloop && !se->row.message[0]
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
	/* a deployment of it waiting for its image (pulls.c) */
	{
		json_t *pull = pulls_json(se->row.service, se->row.environment);
		if (pull)
			json_object_set_new(o, "pull", pull);
	}
	return o;
}

/*
 * A first deploy waiting for approvals has no service environment yet:
 * status still shows it (phase pending_approval, the pending object names
 * the deployment to approve), so nobody wonders where their deploy went.
 */
static void pending_first_deploys(struct daemon *ctl, json_t *list, const char *svc, const char *env)
{
	struct deployment_row *d;
	size_t n;
	struct gerr gerr;
	if (store_deployment_pending(ctl->store, svc, env, &d, &n, &gerr) < 0)
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

/*
 * The proxy process as the controller sees it (docs/api.md, "The proxy"); a
 * new reference. A crash loop is a last exit within 1 s of its start: the
 * controller waits backoff_ms (1 s doubling to 8 s) before the next start,
 * and it is over once a proxy started after it has run 1 s (its exit would
 * be replaced at once). An adopted proxy (a restarted controller's) has no
 * known start here: up_ms null.
 */
static json_t *proxy_status(const struct daemon *ctl, int64_t now)
{
	bool up = ctl->proxy_pid > 0, adopted = up && !ctl->proxy_proc_active;
	int64_t up_ms = up && !adopted ? MAX(now - ctl->proxy_spawned_ms, 0) : -1;
	bool loop = ctl->proxy_backoff_ms > 0 && (!up || (up_ms >= 0 && up_ms < 1000));
	json_t *o = json_object();

	json_object_set_new(o, "pid", up ? json_integer(ctl->proxy_pid) : json_null());
	json_object_set_new(o, "up_ms", up_ms >= 0 ? json_integer(up_ms) : json_null());
	json_object_set_new(o, "adopted", json_boolean(adopted));
	json_object_set_new(o, "restarts", json_integer(ctl->proxy_restarts));
	json_object_set_new(o, "crash_loop", json_boolean(loop));
	json_object_set_new(o, "backoff_ms", json_integer(loop ? ctl->proxy_backoff_ms : 0));
	json_object_set_new(o, "next_start_ms", up || ctl->shutting_down ? json_null()
					       : json_integer(MAX(ctl->proxy_respawn_at - now, 0)));
	json_object_set_new(o, "last_exit", ctl->proxy_last_exit[0] ? json_string(ctl->proxy_last_exit) : json_null());
	json_object_set_new(o, "last_exit_after_ms",
			    ctl->proxy_last_exit[0] ? json_integer(ctl->proxy_last_lived_ms) : json_null());
	/* with --proxy-peer: every proxy of the fleet, the local one first */
	if (proxypeers_count())
		json_object_set_new(o, "proxies", proxypeers_status_json(now));
	return o;
}

json_t *op_status(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *list = json_array(), *proxy, *disk, *o, *store, *leases;
	size_t i;
	const char *svc = api_str(req, "service", false, &err);
	const char *env = api_str(req, "environment", false, &err);
	if (err) {
		json_decref(list);
		return err;
	}
	for (struct svcenv *se = ctl->svcenvs; se; se = se->next) {
		if ((svc && strcmp(svc, se->row.service)) || (env && strcmp(env, se->row.environment)))
			continue;
		if (!se->row.target_revision && !se->replicas)
			continue;
		json_array_append_new(list, svcenv_status(se));
	}
	pending_first_deploys(ctl, list, svc, env);
	pulls_status_first(list, svc, env);
	/* in each object too: `gantry status SVC --env E -o json` prints one */
	proxy = proxy_status(ctl, clock_mono_ms());
	store = daemon_store_json();
	disk = disk_status(); /* HOME's filesystem (disk.h), placed as proxy is */
	leases = swarmlease_status_json(); /* who drives each cluster environment (swarmlease.h) */
	json_array_foreach(list, i, o) {
		json_object_set(o, "proxy", proxy);
		json_object_set(o, "store", store);
		json_object_set(o, "disk", disk);
		json_object_set(o, "leases", leases);
		/* feature flags of its environment (daemon/flags.h) */
		if (json_string_value(json_object_get(o, "environment")))
			json_object_set_new(o, "flags",
					    daemon_flags_json(ctl, json_string_value(json_object_get(o, "environment"))));
	}
	return json_pack("{s:b, s:o, s:o, s:o, s:o, s:o, s:o}", "ok", 1, "status", list, "proxy", proxy, "store", store,
			 "disk", disk, "leases", leases, "flags", daemon_flags_json(ctl, env));
}

/* the digest of the newest revision of svc (any environment) with version; 1/0/-1 */
static int version_digest(struct daemon *ctl, const char *svc, const char *version, char *out, size_t len,
			  struct gerr *err)
{
	for (struct svcenv *se = ctl->svcenvs; se; se = se->next) {
		struct revision_row *list;
		size_t n;
		bool found = false;
		if (strcmp(se->row.service, svc))
			continue;
		if (store_revision_list(ctl->store, svc, se->row.environment, &list, &n, err) < 0)
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
 * The image a deploy of a docker service runs, pinned to its id (hex into
 * out): the digest the client sends (an image it built), else the artifact
 * of a revision that has this version already (a promotion, a redeploy),
 * else the id the spec's image: reference names in the Engine now. A tag
 * moved later changes nothing: replicas are made from the id.
 *
 * An id the Engine does not have is pulled once the deploy is recorded,
 * off the handler (pulls.c: from image_ref, else REGISTRY/SERVICE:VERSION,
 * else the image: reference when it names a registry; the pulled image's
 * id must be the one asked): here it only needs a place to come from. An
 * image: tag naming a registry with no id known (the Engine lacks it)
 * leaves out "": the deploy is recorded without an id, pulls.c pulls the
 * tag and takes the pulled image's id as its digest. NULL, or the refusal
 * (nothing changed).
 */
static json_t *pin_image(struct daemon *ctl, const char *svc, const char *version, const char *digest,
			 const char *image, const char *image_ref, const char *registry, char *out, size_t len)
{
	struct gerr gerr;
	char ref[96], pull[600];
	const char *pullp = NULL;

	if (!digest && version) {
		int f = version_digest(ctl, svc, version, out, len, &gerr);
		if (f < 0)
			return reply_error(1, "%s", gerr.msg);
		if (f)
			digest = out;
	}
	if (image_ref) {
		if (!digest)
			return reply_error(2, "/image_ref: needs /digest, the id of the image it names");
		if (pulls_source(image_ref, NULL, NULL, svc, NULL, pull, sizeof(pull)) < 0)
			return reply_error(2, "/image_ref: expected REPO:TAG@sha256:<64 hex digits>");
		pullp = pull;
	}
	if (digest) {
		if (strspn(digest, "0123456789abcdef") != strlen(digest) || strlen(digest) != 64)
			return reply_error(2, "/digest: an image id is 64 hex digits");
		snprintf(ref, sizeof(ref), "sha256:%s", digest);
		if (!pullp && registry && *registry && version && *version &&
		    (size_t)snprintf(pull, sizeof(pull), "%s/%s:%s", registry, svc, version) < sizeof(pull))
			pullp = pull;
		image = ref;
	} else if (image && pulls_ref_has_registry(image)) {
		pullp = image;
	}
	if (!image)
		return reply_error(2, "/digest: %s builds its image: deploy it from its project (gantry deploy "
				   "builds and sends it)", svc);
	/* 1: the Engine lacks it, 2: an image: tag it lacks (out ""): pulled
	 * once the deploy is recorded (pulls.c) */
	if (dockrt_pin_image(image, pullp, out, len, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	return NULL;
}

/*
 * A deploy: the client names the service, the environment, the artifact
 * (digest, uploaded or snapshotted before) and the version, and may carry
 * the spec it deploys from (applied first, under the spec's rules). The
 * controller resolves the config from its stored spec and evaluates the
 * gates from its stored policy: nothing in the request decides them.
 */
json_t *api_docker_pin(struct daemon *ctl, const char *svc, const char *env, const char *version,
		       const char *digest, const char *image_ref, bool *docker, char *out, size_t len)
{
	char *image = NULL, *registry = NULL;
	struct gerr gerr;
	json_t *reply = NULL;
	*docker = false;
	if (ctl->spec) {
		/* a service that runs an image: its artifact is the image's id */
		struct svc_config tmp = { 0 };
		if (spec_resolve(ctl->spec, svc, env, &tmp, &gerr) == 0 && tmp.runtime == RUNTIME_DOCKER) {
			*docker = true;
			image = tmp.image ? xstrdup(tmp.image) : NULL;
			registry = tmp.registry ? xstrdup(tmp.registry) : NULL;
		}
		svc_config_release(&tmp);
	}
	if (*docker)
		reply = pin_image(ctl, svc, version, digest, image, image_ref, registry, out, len);
	free(image);
	free(registry);
	return reply;
}

json_t *op_deploy(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *reply = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	const char *version = api_str(req, "version", false, &err);
	const char *digest = api_str(req, "digest", false, &err);
	const char *image_ref = api_str(req, "image_ref", false, &err);
	const struct identity who = c->who;
	struct deploy_intent in = { 0 };
	struct spec_proposal prop = { 0 };
	struct gerr gerr;
	char dbuf[80], cdigest[72], *config = NULL, *dir;
	struct stat st;
	int64_t ticket = 0;
	bool docker = false;

	if (err)
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
	if ((reply = api_docker_pin(ctl, svc, env, version, digest, image_ref, &docker, dbuf, sizeof(dbuf))))
		goto out;
	if (docker) {
		digest = dbuf;
	} else if (!digest) {
		int f;
		if (!version) {
			reply = reply_error(2, "/digest: missing (or name a /version already deployed)");
			goto out;
		}
		f = version_digest(ctl, svc, version, dbuf, sizeof(dbuf), &gerr);
		if (f <= 0) {
			reply = f < 0 ? reply_error(1, "%s", gerr.msg)
				: reply_error(2, "/version: no revision of %s has version '%s': deploy it with its artifact first",
					    svc, version);
			goto out;
		}
		digest = dbuf;
	}
	if (docker && !*digest) {
		/* an image: tag to pull: its id (the digest) is learnt by the pull */
	} else if (strspn(digest, "0123456789abcdef") != strlen(digest) || strlen(digest) < 16 ||
		   strlen(digest) >= sizeof(dbuf)) {
		reply = reply_error(2, "/digest: must be a hex digest");
		goto out;
	}
	dir = xasprintf("%s/artifacts/%s", ctl->home, digest);
	if (!docker && (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)))
		reply = reply_error(2, "/digest: no artifact snapshot %s in the state directory", digest);
	free(dir);
	if (reply || daemon_resolve(svc, env, req, NULL, &config, cdigest, &reply) < 0)
		goto out;
	in.config = config;
	in.config_digest = cdigest;
	in.spec_version = ctl->spec_version;
	in.version = version ? version : digest;
	in.digest = digest;
	reply = gates_before_rollout(req, &c->who, svc, env, "deploy", &in, &ticket);
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
						    (json_int_t)ctl->spec_version, "diff", diff));
		} else if (json_integer_value(json_object_get(reply, "deployment")) > 0) {
			/* refused: the record must not name the version its spec would have had */
			struct deployment_row rec;
			if (store_deployment_get(ctl->store, json_integer_value(json_object_get(reply, "deployment")), &rec,
						 &gerr) == 1) {
				rec.spec_version = 0;
				store_deployment_update(ctl->store, &rec, &gerr);
				deployment_row_release(&rec);
			}
		}
	}
	spec_proposal_release(&prop);
	free(config);
	return reply;
}

/*
 * A rollback or restart (kind): through the gates of svc@env first (a
 * refused one changes nothing), then a new revision copying `source`,
 * recorded against the deployment record; reply: new reference.
 */
static json_t *copy_revision_gated(json_t *req, const struct api_ctx *c, struct svcenv *se, const char *svc,
				   const char *env, const char *kind, int source, const char *why)
{
	int64_t ticket = 0;
	char ref[600], hex[80], version[128];
	struct gerr gerr;
	json_t *reply;
	/* a docker revision whose image the Engine lost is pulled first, off the handler */
	int pull = pulls_revision_source(svc, env, source, ref, sizeof(ref), hex, sizeof(hex), version,
					 sizeof(version), &gerr);
	if (pull < 0)
		return reply_error(1, "%s: nothing changed", gerr.msg);
	reply = gates_before_rollout(req, &c->who, svc, env, kind, NULL, &ticket);
	if (reply)
		return reply;
	if (pull)
		return pulls_begin_copy(ticket, svc, env, source, kind, why, ref, hex, version);
	reply = daemon_copy_revision(se, source, kind, caller_actor(c->caller), why);
	gates_rollout_created(ticket, reply);
	return reply;
}

json_t *op_rollback(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	int to = api_int(req, "to_revision", 0, &err);
	struct svcenv *se;
	json_t *reply;
	struct gerr gerr;
	char why[128];
	bool active;
	int current;

	if (err)
		return err;
	se = daemon_svcenv(svc, env, false);
	if (!se || !se->row.target_revision)
		return reply_error(2, "%s@%s has never been deployed", svc, env);
	if (se->prog) {
		int w = progressive_rollback_warm(se, to, caller_actor(c->caller), &gerr);
		if (w < 0)
			return reply_error(1, "%s", gerr.msg);
		if (w == 0)
			return json_pack("{s:b, s:i, s:I, s:s, s:b}", "ok", 1, "revision", se->row.target_revision,
					 "rollout", (json_int_t)0, "version", "", "warm", 1);
	}
	active = se->rollout.id && !strcmp(se->rollout.phase, "progressing");
	current = se->row.target_revision;
	if (!to) {
		/* during a rollout: back to what served before it; else the one before stable */
		to = active && se->rollout.from_revision ? se->rollout.from_revision
			: daemon_previous_served(se, se->row.stable_revision ? se->row.stable_revision : current, &gerr);
		if (to < 0)
			return reply_error(1, "%s", gerr.msg);
		if (!to)
			return reply_error(2, "%s@%s has no earlier revision to roll back to", svc, env);
	}
	if (to == current && !active)
		return reply_error(2, "revision %d is already the one serving", to);
	snprintf(why, sizeof(why), "rollback to revision %d", to);
	/* the schema (daemon/migrations.c): downs first, refused, or kept */
	{
		const char *schema = json_string_value(json_object_get(req, "schema"));
		char note[256];
		int64_t down_to = 0, ticket = 0;
		int plan;
		if (json_object_get(req, "schema") && (!schema || (strcmp(schema, "keep") && strcmp(schema, "restore"))))
			return reply_error(2, "/schema: keep or restore");
		if (schema && !strcmp(schema, "restore")) {
			char ref[600], hex[80], version[128];
			char *snap = mig_flow_restore_check(se, current, &gerr);
			if (!snap)
				return reply_error(2, "%s", gerr.msg);
			if (pulls_revision_source(svc, env, to, ref, sizeof(ref), hex, sizeof(hex), version,
						  sizeof(version), &gerr) < 0) {
				free(snap);
				return reply_error(1, "%s: nothing changed", gerr.msg);
			}
			reply = gates_before_rollout(req, &c->who, svc, env, "rollback", NULL, &ticket);
			if (!reply)
				reply = mig_flow_rollback_restore(ticket, se, current, to, snap, caller_actor(c->caller), why);
			free(snap);
			return reply;
		}
		plan = mig_flow_rollback_plan(se, current, to, &down_to, note, sizeof(note), &gerr);
		if (plan < 0 && !schema)
			return reply_error(2, "%s", gerr.msg);
		if (plan == 1 && !schema) {
			char ref[600], hex[80], version[128];
			/* an image that cannot be had refuses before any down runs (pulled after them) */
			if (pulls_revision_source(svc, env, to, ref, sizeof(ref), hex, sizeof(hex), version,
						  sizeof(version), &gerr) < 0)
				return reply_error(1, "%s: nothing changed", gerr.msg);
			reply = gates_before_rollout(req, &c->who, svc, env, "rollback", NULL, &ticket);
			if (reply)
				return reply;
			return mig_flow_rollback(ticket, se, current, to, down_to, caller_actor(c->caller), why);
		}
		if (plan != 0 && schema) {
			char msg[512];
			snprintf(msg, sizeof(msg), "rollback keeps the schema (--schema=keep): %s", note);
			gates_event(svc, env, current, "schema_kept", msg);
		}
	}
	reply = copy_revision_gated(req, c, se, svc, env, "rollback", to, why);
	/* (one that pulls first marks it when its rollout starts: pulls.c) */
	if (json_is_true(json_object_get(reply, "ok")) && !json_object_get(reply, "state") &&
	    store_revision_set_status(ctl->store, svc, env, current, "rolled_back", why, &gerr) < 0)
		log_error("store", "%s", gerr.msg);
	return reply;
}

json_t *op_restart(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	struct svcenv *se;
	char why[128];
	if (err)
		return err;
	se = daemon_svcenv(svc, env, false);
	if (!se || !se->row.target_revision)
		return reply_error(2, "%s@%s has never been deployed", svc, env);
	snprintf(why, sizeof(why), "rolling restart of revision %d", se->row.target_revision);
	return copy_revision_gated(req, c, se, svc, env, "restart", se->row.target_revision, why);
}

json_t *op_scale(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	const char *by = caller_actor(c->caller);
	int n = api_int(req, "replicas", -1, &err);
	struct svcenv *se;
	if (err)
		return err;
	if (n < 0 || n > 1000)
		return reply_error(2, "/replicas: must be 0..1000");
	se = daemon_svcenv(svc, env, false);
	if (!se || !se->row.target_revision)
		return reply_error(2, "%s@%s has never been deployed", svc, env);
	if (se->rollout.id && (!strcmp(se->rollout.phase, "progressing") || !strcmp(se->rollout.phase, "paused")) &&
	    se->row.target_revision != se->row.stable_revision) {
		struct gerr gerr;
		struct revcfg *rc = daemon_revcfg(se, se->row.target_revision, &gerr);
		json_t *deny = rc && n > daemon_desired(se, rc) ? gates_before_raise(req, &c->who, svc, env, "scale") : NULL;
		if (deny)
			return deny;
	}
	se->row.replicas = n ? n : -1; /* -1: scaled to zero on purpose, 0: the config's count */
	daemon_save_svcenv(se);
	daemon_event(se, se->row.target_revision, "scaled", "scaled to %d replicas by %s", n, by ? by : "unknown");
	daemon_reconcile(se);
	return json_pack("{s:b, s:i}", "ok", 1, "replicas", n);
}

/* a split by revision, by hand (Cloud Run's update-traffic): a revision given
 * weight is started from its snapshot if it is not running; the reconcile loop keeps every revision with
 * weight > 0 running until the split is reset or a new rollout starts */
json_t *op_traffic(struct daemon *ctl, json_t *req, const struct api_ctx *c)
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
		return reply_error(2, "%s@%s has never been deployed", svc, env);
	if (weights && !json_is_null(weights)) {
		if (!json_is_array(weights) || !json_array_size(weights))
			return reply_error(2, "/weights: must be a non-empty array of {revision, weight}");
		json_array_foreach(weights, i, e) {
			json_t *r = json_object_get(e, "revision"), *w = json_object_get(e, "weight");
			struct revision_row rev;
			int found;
			if (!json_is_integer(r) || !json_is_integer(w))
				return reply_error(2, "/weights/%zu: must be {\"revision\": N, \"weight\": W}", i);
			found = store_revision_get(ctl->store, svc, env, (int)json_integer_value(r), &rev, &gerr);
			if (found <= 0)
				return reply_error(2, "/weights/%zu: revision %lld of %s@%s does not exist", i,
						 (long long)json_integer_value(r), svc, env);
			if (json_integer_value(w) > 0 && rev.artifact_pruned && !daemon_artifact_present(rev.digest)) {
				revision_row_release(&rev);
				return reply_error(2, "/weights/%zu: revision %lld's artifact was pruned", i,
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
		json_t *deny = gates_before_raise(req, &c->who, svc, env, "traffic");
		if (deny) {
			free(text);
			return deny;
		}
	}
	if (daemon_set_traffic(se, text ? text : "", &gerr) < 0) {
		free(text);
		return reply_error(2, "/weights: %s", gerr.msg + strlen("traffic: "));
	}
	free(text);
	daemon_save_svcenv(se);
	daemon_event(se, se->row.target_revision, "traffic", "traffic set by %s: %s", caller_actor(c->caller),
		     desc[0] ? desc : "reset (by ready replicas)");
	proxyctl_write_routes();
	daemon_reconcile(se);
	return json_pack("{s:b}", "ok", 1);
}

/* pause | resume | abort | promote of a canary or blue-green rollout */
json_t *op_rollout_command(struct daemon *ctl, json_t *req, const struct api_ctx *c)
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
		return reply_error(2, "%s@%s has never been deployed", svc, env);
	kind = !strcmp(op, "pause") ? CE_PAUSE : !strcmp(op, "resume") ? CE_RESUME
		: !strcmp(op, "abort") ? CE_ABORT : CE_PROMOTE;
	/* resume and promote_canary are not refused here: the rollout's own gate
	 * hold (progressive.c, gates_closed) keeps the share where it is while a
	 * window is shut or a freeze is open, and takes the step once it lifts */
	if (progressive_command(se, kind, caller_actor(c->caller), why, full, &gerr) < 0)
		return reply_error(2, "%s", gerr.msg);
	daemon_event(se, se->rollout.revision, op, "%s by %s%s%s", op, caller_actor(c->caller), why ? ": " : "",
		     why ? why : "");
	return json_pack("{s:b, s:s, s:s}", "ok", 1, "phase", se->rollout.phase, "message", se->rollout.message);
}

json_t *op_history(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *list;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	struct revision_row *revs;
	size_t n;
	struct gerr gerr;
	if (err)
		return err;
	if (store_revision_list(ctl->store, svc, env, &revs, &n, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
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

json_t *op_events(struct daemon *ctl, json_t *req, const struct api_ctx *c)
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
		return reply_error(2, "/after: must be an integer");
	if (store_event_list(ctl->store, svc, env, after ? json_integer_value(after) : -1, limit, &ev, &n, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
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

json_t *op_ping(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *r = json_pack("{s:b, s:i, s:s, s:s, s:s}", "ok", 1, "pid", (int)getpid(), "version", GANTRY_VERSION,
			      "proxy", ctl->listen, "caller", c->caller->user);
	(void)req;
	/* `gantry upgrade` polls this: a failed upgrade is said by the controller that stayed */
	if (ctl->upgrade_state[0])
		json_object_set_new(r, "upgrade", json_pack("{s:s, s:s}", "state", ctl->upgrade_state, "error",
							     ctl->upgrade_error));
	return r;
}

/* replaces this controller (and its proxy) with the gantry binary on disk;
 * the reply comes at once, the CLI then asks `ping` who answers */
json_t *op_upgrade(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	char binary[PATH_MAX];
	struct gerr err;
	pid_t pid;
	(void)ctl;
	(void)req;
	(void)c;
	if (daemon_upgrade_start(&pid, binary, sizeof(binary), &err) < 0)
		return reply_error(EXIT_FAILED, "%s", err.msg);
	return json_pack("{s:b, s:i, s:i, s:s}", "ok", 1, "old_pid", (int)getpid(), "new_pid", (int)pid, "binary",
			 binary);
}
