/*
 * releases.c — gantry release: several services of an environment deployed
 * in dependency order (services.S.depends_on), the services of one level
 * in parallel (at most RELEASE_PARALLEL at once), each a normal deploy
 * through the gates (gates_before_rollout → daemon_deploy_start) with its
 * own strategy and analyses. A release is a driver over those deploys: the
 * record (store_release.h) is its whole state and releases_tick, from the
 * controller's 100 ms tick, derives the next step from it and from the
 * deployment records, so a controller killed mid-release resumes it.
 *
 * When a service fails (its deployment failed, was rolled back, refused),
 * the release starts nothing new; once nothing it started is running it
 * follows release.on_failure: rollback (default: the services it changed
 * are rolled back, highest level first, each a rollback to the revision it
 * replaced), pause (it stops as it is), continue (the services that do not
 * depend on the failed one go on).
 *
 * The gates are the release's, decided once before anything starts
 * (decide_gates; one approval for the whole release, ask_approval and
 * releases_approved); its deploys pass on that decision (releases_covers).
 * A paused release is resumed or aborted (releases_command); one that
 * succeeded is promoted to another environment as a new release
 * (releases_promote); releases_dora counts releases as deployments.
 *
 * One item of the services JSON:
 *   {"service", "level", "depends_on": [...], "version", "digest", "config",
 *    "config_digest", "state", "deployment", "revision", "from_revision",
 *    "started_at", "ended_at" (unix ms, of its deploy), "rollback_deployment",
 *    "rollback_revision", "message", "promotion"? ({"from", "revision"}),
 *    "commit_time"? (unix s), "image_ref"? (docker)}
 * state: waiting | unchanged | deploying | succeeded | failed | skipped
 *        | rolling_back | rolled_back | rollback_failed.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/gates_flow.h"
#include "daemon/releases.h"
#include "daemon/reply.h"
#include "store/store_release.h"
#include "store/store_records.h"
#include "core/spec.h"
#include "util/log.h"
#include "util/clock.h"
#include "records/dora.h"
#include <jansson.h>

#define RELEASE_PARALLEL 4

static const char *item_str(json_t *it, const char *key)
{
	const char *s = json_string_value(json_object_get(it, key));
	return s ? s : "";
}

static int64_t item_int(json_t *it, const char *key)
{
	return json_integer_value(json_object_get(it, key));
}

static bool item_is(json_t *it, const char *state)
{
	return !strcmp(item_str(it, "state"), state);
}

static void set_state(json_t *it, const char *state, const char *msg)
{
	json_object_set_new(it, "state", json_string(state));
	if (msg)
		json_object_set_new(it, "message", json_string(msg));
}

/* who a release acts as: its creator, authorised when it was created */
static void release_identity(const struct release_row *r, struct identity *who)
{
	memset(who, 0, sizeof(*who));
	strlcpy_g(who->name, r->created_by, sizeof(who->name));
	who->role = ROLE_DEPLOYER;
}

json_t *releases_json(const struct release_row *r)
{
	json_t *services = json_loads(r->services ? r->services : "[]", 0, NULL);
	json_t *gates = r->gates && r->gates[0] ? json_loads(r->gates, 0, NULL) : NULL;
	size_t i;
	json_t *it;
	/* the resolved config is the controller's: its digest says enough */
	json_array_foreach(services, i, it)
		json_object_del(it, "config");
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:o}", "id", (json_int_t)r->id,
			 "environment", r->environment, "state", r->state, "on_failure", r->on_failure,
			 "created_by", r->created_by, "created_at", (json_int_t)r->created_at, "updated_at",
			 (json_int_t)r->updated_at, "message", r->message, "gates", gates ? gates : json_object(),
			 "services", services ? services : json_array());
}

static void announce(const struct release_row *r, const char *event, const char *msg)
{
	json_t *data = releases_json(r);
	char text[700];
	snprintf(text, sizeof(text), "release %lld: %s", (long long)r->id, msg);
	gates_event("", r->environment, 0, event, text);
	json_object_set_new(data, "event", json_string(event));
	gates_emit(event, data);
	log_info("release", "id=%lld environment=%s %s: %s", (long long)r->id, r->environment, event, msg);
}

/* ---- creating a release ---- */

/* the items of the release, in level order; *reply set on a refusal */
static json_t *plan(json_t *req, const struct identity *who, const char *env, json_t **reply)
{
	const struct spec *spec = gd->spec;
	json_t *given = json_object_get(req, "services"), *only = json_object_get(req, "only");
	json_t *items = json_array();
	int maxlevel = 0;

	for (size_t i = 0; i < spec->nservices; i++)
		if (spec->services[i].level > maxlevel)
			maxlevel = spec->services[i].level;
	for (int level = 0; level <= maxlevel; level++) {
		for (size_t i = 0; i < spec->nservices; i++) {
			const struct spec_service *s = &spec->services[i];
			json_t *art = NULL, *it, *deps, *sreq;
			char *config = NULL, cdigest[72];
			const char *digest, *version;
			struct svcenv *se;
			bool named = !json_array_size(only), changed = true, docker;
			size_t k;
			json_t *v;

			if (s->level != level)
				continue;
			json_array_foreach(only, k, v)
				named |= !strcmp(json_string_value(v) ? json_string_value(v) : "", s->name);
			if (!named)
				continue;
			json_array_foreach(given, k, v)
				if (!strcmp(item_str(v, "service"), s->name))
					art = v;
			if (!art) {
				*reply = reply_error(2, "/services: no artifact for service '%s'", s->name);
				goto fail;
			}
			if ((*reply = gates_need_scope(who, "release", s->name, env)))
				goto fail;
			digest = item_str(art, "digest");
			version = item_str(art, "version");
			if (strspn(digest, "0123456789abcdef") != strlen(digest) || strlen(digest) < 16 || strlen(digest) > 72) {
				*reply = reply_error(2, "/services: %s: digest must be a hex digest", s->name);
				goto fail;
			}
			{
				/* a docker service's digest is the image id op_release pinned (api_docker_pin) */
				struct svc_config cfg = { 0 };
				struct gerr gerr;
				docker = spec_resolve(spec, s->name, env, &cfg, &gerr) == 0 && cfg.runtime == RUNTIME_DOCKER;
				svc_config_release(&cfg);
			}
			if (docker ? strlen(digest) != 64 : !daemon_artifact_present(digest)) {
				*reply = docker ? reply_error(2, "/services: %s: an image id is 64 hex digits", s->name)
					: reply_error(2, "/services: %s: no artifact snapshot %s in the state directory",
						      s->name, digest);
				goto fail;
			}
			sreq = json_pack("{s:s, s:s}", "service", s->name, "environment", env);
			/* the environment's SOPS file the request carries, as a deploy's: pinned in the config */
			if (json_object_get(req, "sops"))
				json_object_set(sreq, "sops", json_object_get(req, "sops"));
			if (daemon_resolve(s->name, env, sreq, NULL, &config, cdigest, reply) < 0) {
				json_decref(sreq);
				goto fail;
			}
			json_decref(sreq);
			/* unchanged: the same artifact and config as the target revision */
			se = daemon_svcenv(s->name, env, false);
			if (se && se->row.target_revision) {
				struct revision_row rev;
				struct gerr err;
				if (store_revision_get(gd->store, s->name, env, se->row.target_revision, &rev, &err) == 1) {
					changed = strcmp(rev.digest, digest) || strcmp(rev.config_json ? rev.config_json : "", config);
					revision_row_release(&rev);
				}
			}
			deps = json_array();
			for (size_t d = 0; d < s->ndepends; d++)
				json_array_append_new(deps, json_string(s->depends_on[d]));
			it = json_pack("{s:s, s:i, s:o, s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:i}", "service", s->name, "level",
				       level, "depends_on", deps, "version", version[0] ? version : digest, "digest", digest,
				       "config", config, "config_digest", cdigest, "state",
				       changed ? "waiting" : "unchanged", "deployment", (json_int_t)0, "revision", 0,
				       "from_revision", 0);
			free(config);
			if (docker && json_is_string(json_object_get(art, "image_ref")))
				json_object_set(it, "image_ref", json_object_get(art, "image_ref"));
			{
				/* the commit time of what it deploys (its lead time starts there) */
				json_int_t ct = json_integer_value(json_object_get(art, "commit_time"));
				if (ct <= 0)
					ct = json_integer_value(json_object_get(req, "commit_time"));
				if (ct > 0)
					json_object_set_new(it, "commit_time", json_integer(ct));
			}
			json_array_append_new(items, it);
		}
	}
	return items;
fail:
	json_decref(items);
	return NULL;
}

/*
 * The gates of the release, decided once, before anything starts, from the
 * controller's stored policy (gates_evaluate_request of each service it
 * changes, as its deploy would be): the first refusal refuses the whole
 * release; approvals, when the environment wants them, are asked once for
 * the release. *gates: {"evaluated": "once", "result", "reason",
 * "services": {svc: verdict}}; -1 with *reply on an error.
 */
static int decide_gates(json_t *items, const struct identity *who, const char *env, json_t **gates, int *approvals,
			int64_t *ttl, int64_t *next_allowed, json_t **reply)
{
	json_t *per = json_object(), *it;
	enum gate_result result = GATE_ALLOW;
	char reason[800] = "";
	size_t i;

	*approvals = 0;
	*ttl = 0;
	*next_allowed = 0;
	json_array_foreach(items, i, it) {
		struct gate_policy pol;
		struct gate_verdict v;
		json_t *sreq;
		const char *svc = item_str(it, "service");
		bool promote = json_object_get(it, "promotion") != NULL;
		if (!item_is(it, "waiting"))
			continue;
		sreq = json_pack("{s:s, s:s, s:s, s:s}", "service", svc, "environment", env, "digest",
				 item_str(it, "digest"), "version", item_str(it, "version"));
		if (promote)
			json_object_set(sreq, "promotion", json_object_get(it, "promotion"));
		if (gates_evaluate_request(sreq, who, svc, env, promote ? "promote" : "deploy", false, &pol, &v,
					   reply) < 0) {
			json_decref(sreq);
			json_decref(per);
			return -1;
		}
		json_decref(sreq);
		json_object_set(per, svc, v.gates);
		if (v.result == GATE_REFUSE) {
			result = GATE_REFUSE;
			snprintf(reason, sizeof(reason), "%s: %s", svc, v.reason);
			*next_allowed = v.next_allowed;
		} else if (v.result == GATE_PENDING_APPROVAL) {
			result = GATE_PENDING_APPROVAL;
			if (pol.approvals > *approvals)
				*approvals = pol.approvals;
			if (!*ttl || pol.approval_ttl < *ttl)
				*ttl = pol.approval_ttl;
			snprintf(reason, sizeof(reason), "%s needs %d approval%s by approvers other than %s", env,
				 *approvals, *approvals > 1 ? "s" : "", who->name);
		}
		gate_policy_release(&pol);
		gate_verdict_release(&v);
		if (result == GATE_REFUSE)
			break;
	}
	*gates = json_pack("{s:s, s:s, s:s, s:o}", "evaluated", "once", "result",
			   result == GATE_ALLOW ? "passed" : result == GATE_REFUSE ? "refused" : "pending_approval",
			   "reason", reason, "services", per);
	return (int)result;
}

/* the names of the services a release deploys: "a, b, c" */
static void names_text(json_t *items, char *out, size_t len)
{
	size_t i, n = 0;
	json_t *it;
	out[0] = 0;
	json_array_foreach(items, i, it)
		if (item_is(it, "waiting"))
			n += (size_t)snprintf(out + MIN(n, len - 1), n < len ? len - n : 0, "%s%s", n ? ", " : "",
					      item_str(it, "service"));
}

/*
 * The one approval of release r (gates "pending_approval"): a deployment
 * record of kind "release" for the whole environment (service ""), which
 * `gantry approve ID` decides as any other; its digest is the SHA-256 of
 * what the release rolls out (each service's artifact and config), so an
 * approval binds to exactly that. 0, or -1 with *reply.
 */
static int ask_approval(struct release_row *r, json_t *items, json_t *gates, int approvals, int64_t ttl,
			json_t **reply)
{
	struct deployment_row d = { 0 };
	struct gerr err;
	char names[400], msg[1024], *what;
	json_t *list = json_array(), *it;
	size_t i;

	names_text(items, names, sizeof(names));
	json_array_foreach(items, i, it)
		if (item_is(it, "waiting"))
			json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "service", item_str(it, "service"),
							      "digest", item_str(it, "digest"), "config_digest",
							      item_str(it, "config_digest")));
	what = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);
	gates_token_hash(what, d.digest);
	free(what);
	strlcpy_g(d.environment, r->environment, sizeof(d.environment));
	strlcpy_g(d.kind, "release", sizeof(d.kind));
	strlcpy_g(d.requester, r->created_by, sizeof(d.requester));
	snprintf(d.version, sizeof(d.version), "release %lld (%s)", (long long)r->id, names);
	{
		json_t *rq = json_pack("{s:s, s:I, s:s, s:o}", "op", "release", "release", (json_int_t)r->id,
				       "environment", r->environment, "services", list);
		d.request = json_dumps(rq, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(rq);
	}
	d.gates = json_dumps(gates, JSON_COMPACT | JSON_SORT_KEYS);
	d.approvals_needed = approvals;
	d.approval_ttl = ttl;
	d.spec_version = gd->spec_version;
	d.created_at = clock_now_s();
	strlcpy_g(d.state, "pending_approval", sizeof(d.state));
	snprintf(d.reason, sizeof(d.reason), "release %lld", (long long)r->id);
	if (store_deployment_add(gd->store, &d, &err) < 0) {
		deployment_row_release(&d);
		*reply = reply_error(1, "%s", err.msg);
		return -1;
	}
	json_object_set_new(gates, "approval", json_integer(d.id));
	snprintf(msg, sizeof(msg), "release %lld of %s (%s) waits for approval: deployment %lld: %s; an approver runs "
		 "'gantry approve %lld'", (long long)r->id, r->environment, names, (long long)d.id,
		 json_string_value(json_object_get(gates, "reason")), (long long)d.id);
	gates_event("", r->environment, 0, "approval_requested", msg);
	gates_emit("approval_requested", json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s}", "service", "", "environment",
						   r->environment, "message", msg, "deployment", (json_int_t)d.id,
						   "requester", r->created_by, "release", (json_int_t)r->id, "services",
						   names));
	*reply = reply_error(3, "waiting for approval: release %lld of %s (%s): deployment %lld: %s; an approver runs "
			     "'gantry approve %lld'", (long long)r->id, r->environment, names, (long long)d.id,
			     json_string_value(json_object_get(gates, "reason")), (long long)d.id);
	json_object_set_new(*reply, "pending_approval", json_integer(d.id));
	json_object_set_new(*reply, "deployment", json_integer(d.id));
	json_object_set_new(*reply, "release", json_integer(r->id));
	deployment_row_release(&d);
	return 0;
}

/*
 * A new release of env; promos (NULL for a plain release): {svc: {"from",
 * "revision"}}, the promotion each item carries (its deploy is a promote,
 * the target's promote_from and min_soak apply); source: {"environment",
 * "release"} of a promoted release, kept in its gates.
 */
static json_t *create(json_t *req, const struct identity *who, const char *env, json_t *promos, json_t *source)
{
	struct release_row r = { 0 };
	json_t *items, *reply = NULL;
	struct gerr err;
	size_t nchanged = 0, i;
	json_t *it, *gates = NULL;
	int decided, approvals;
	int64_t ttl, next_allowed;

	if (!gd->spec)
		return reply_error(2, "no spec applied yet: gantry apply first");
	if (!spec_find_env(gd->spec, env))
		return reply_error(2, "/environment: no environment '%s' in the spec", env);
	json_array_foreach(json_object_get(req, "only"), i, it)
		if (!json_is_string(it) || !spec_find_service(gd->spec, json_string_value(it)))
			return reply_error(2, "/only/%zu: no service '%s' in the spec", i,
					   json_is_string(it) ? json_string_value(it) : "");
	if (!(items = plan(req, who, env, &reply)))
		return reply;
	json_array_foreach(items, i, it) {
		nchanged += item_is(it, "waiting");
		if (json_object_get(promos, item_str(it, "service")))
			json_object_set(it, "promotion", json_object_get(promos, item_str(it, "service")));
	}
	if (!nchanged) {
		json_decref(items);
		return reply_error(2, "nothing to release: every service named runs this artifact and config already");
	}
	if ((decided = decide_gates(items, who, env, &gates, &approvals, &ttl, &next_allowed, &reply)) < 0) {
		json_decref(items);
		return reply;
	}
	if (source)
		json_object_set(gates, "promoted_from", source);
	strlcpy_g(r.environment, env, sizeof(r.environment));
	strlcpy_g(r.state, decided == GATE_ALLOW ? "running" : decided == GATE_REFUSE ? "refused" : "pending",
		  sizeof(r.state));
	strlcpy_g(r.on_failure, release_on_failure_name(gd->spec->release_on_failure), sizeof(r.on_failure));
	strlcpy_g(r.created_by, who->name, sizeof(r.created_by));
	r.created_at = r.updated_at = clock_now_ms();
	if (decided == GATE_REFUSE)
		snprintf(r.message, sizeof(r.message), "refused by the gates: %s",
			 json_string_value(json_object_get(gates, "reason")));
	else
	{
		char from[160] = "";
		if (source)
			snprintf(from, sizeof(from), "promotion of release %lld of %s: ",
				 (long long)json_integer_value(json_object_get(source, "release")),
				 json_string_value(json_object_get(source, "environment")));
		snprintf(r.message, sizeof(r.message), "%s%zu of %zu services to deploy%s", from, nchanged,
			 json_array_size(items), decided == GATE_PENDING_APPROVAL ? ", waiting for approval" : "");
	}
	/* the gates are the release's, decided once (decide_gates); its deploys pass on them */
	r.gates = json_dumps(gates, JSON_COMPACT | JSON_SORT_KEYS);
	r.services = json_dumps(items, JSON_COMPACT | JSON_SORT_KEYS);
	if (store_release_create(gd->store, &r, &err) < 0) {
		reply = reply_error(1, "%s", err.msg);
		goto out;
	}
	if (decided == GATE_REFUSE) {
		gates_event("", env, 0, "release_refused", r.message);
		reply = reply_error(3, "release %lld %s", (long long)r.id, r.message);
		if (next_allowed > 0) {
			char iso[40];
			format_rfc3339(next_allowed, iso, sizeof(iso));
			json_object_set_new(reply, "next_allowed", json_string(iso));
		}
		json_object_set_new(reply, "release", json_integer(r.id));
		json_object_set(reply, "gates", gates);
		goto out;
	}
	if (decided == GATE_PENDING_APPROVAL) {
		if (ask_approval(&r, items, gates, approvals, ttl, &reply) == 0) {
			free(r.gates);
			r.gates = json_dumps(gates, JSON_COMPACT | JSON_SORT_KEYS);
			if (store_release_update(gd->store, &r, &err) < 0)
				log_error("release", "%s", err.msg);
			gates_audit(who->name, "release_requested", r.environment,
				    json_pack("{s:I, s:o}", "release", (json_int_t)r.id, "record", releases_json(&r)));
		}
		goto out;
	}
	announce(&r, "release_started", r.message);
	reply = json_pack("{s:b, s:I, s:o}", "ok", 1, "release", (json_int_t)r.id, "record", releases_json(&r));
	releases_tick();
out:
	json_decref(items);
	json_decref(gates);
	release_row_release(&r);
	return reply;
}

json_t *releases_create(json_t *req, const struct identity *who, const char *env)
{
	return create(req, who, env, NULL, NULL);
}

json_t *releases_promote(int64_t id, const char *from, const char *to, const struct identity *who)
{
	struct release_row r = { 0 };
	struct gerr err;
	json_t *items = NULL, *it, *req = NULL, *promos = NULL, *source, *reply = NULL;
	size_t i;
	int found = store_release_get(gd->store, id, &r, &err);

	if (found < 0)
		return reply_error(1, "%s", err.msg);
	if (!found || strcmp(r.environment, from)) {
		release_row_release(&r);
		return reply_error(2, "no release %lld in %s", (long long)id, from);
	}
	if (!strcmp(from, to)) {
		reply = reply_error(2, "/to: release %lld is of %s already", (long long)id, from);
		goto out;
	}
	if (strcmp(r.state, "succeeded")) {
		reply = reply_error(2, "release %lld of %s is %s: only a release that succeeded can be promoted",
				    (long long)id, from, r.state);
		goto out;
	}
	items = json_loads(r.services ? r.services : "[]", 0, NULL);
	req = json_pack("{s:[], s:[]}", "services", "only");
	promos = json_object();
	json_array_foreach(items, i, it) {
		struct promotion_fact pf;
		const char *svc = item_str(it, "service");
		int rev = item_is(it, "succeeded") ? (int)item_int(it, "revision") : 0;
		if (!item_is(it, "succeeded") && !item_is(it, "unchanged"))
			continue;
		/* what the release rolled out, as it serves in from now (as gantry promote checks) */
		if (gates_find_promotion(svc, from, item_str(it, "digest"), rev, &pf, &err) < 0) {
			reply = reply_error(1, "%s", err.msg);
			goto out;
		}
		if (!pf.found || strcmp(pf.status, "serving")) {
			reply = reply_error(3, "%s: revision %d of %s@%s is %s, not serving: only what serves in %s can be "
					    "promoted", svc, pf.revision, svc, from, pf.found ? pf.status : "gone", from);
			goto out;
		}
		json_array_append_new(json_object_get(req, "services"),
				      json_pack("{s:s, s:s, s:s, s:I, s:O*}", "service", svc, "digest",
						item_str(it, "digest"), "version", item_str(it, "version"), "commit_time",
						(json_int_t)item_int(it, "commit_time"), "image_ref",
						json_object_get(it, "image_ref")));
		json_array_append_new(json_object_get(req, "only"), json_string(svc));
		json_object_set_new(promos, svc, json_pack("{s:s, s:i}", "from", from, "revision", pf.revision));
	}
	source = json_pack("{s:s, s:I}", "environment", from, "release", (json_int_t)id);
	reply = create(req, who, to, promos, source);
	json_decref(source);
out:
	json_decref(items);
	json_decref(req);
	json_decref(promos);
	release_row_release(&r);
	return reply;
}

/* ---- its gates, once ---- */

bool releases_covers(int64_t id, const struct identity *who, const char *svc, const char *env, const char *digest)
{
	struct release_row r;
	struct gerr err;
	json_t *items, *gates, *it;
	const char *res;
	bool ok = false;
	size_t i;

	if (id <= 0 || !digest || store_release_get(gd->store, id, &r, &err) != 1)
		return false;
	gates = json_loads(r.gates ? r.gates : "{}", 0, NULL);
	items = json_loads(r.services ? r.services : "[]", 0, NULL);
	res = json_string_value(json_object_get(gates, "result"));
	if (!strcmp(r.state, "running") && !strcmp(r.environment, env) && !strcmp(r.created_by, who->name) && res &&
	    (!strcmp(res, "passed") || !strcmp(res, "approved")))
		json_array_foreach(items, i, it)
			ok |= !strcmp(item_str(it, "service"), svc) && !strcmp(item_str(it, "digest"), digest) &&
			      (item_is(it, "waiting") || item_is(it, "deploying"));
	json_decref(gates);
	json_decref(items);
	release_row_release(&r);
	return ok;
}

json_t *releases_approved(struct deployment_row *d)
{
	json_t *req = json_loads(d->request ? d->request : "{}", 0, NULL), *gates, *reply;
	int64_t id = json_integer_value(json_object_get(req, "release"));
	struct release_row r;
	struct gerr err;
	char msg[700];

	json_decref(req);
	if (store_release_get(gd->store, id, &r, &err) != 1)
		return reply_error(2, "deployment %lld: no release %lld", (long long)d->id, (long long)id);
	if (strcmp(r.state, "pending")) {
		reply = reply_error(2, "release %lld is %s, not waiting for approval", (long long)id, r.state);
		release_row_release(&r);
		return reply;
	}
	gates = json_loads(r.gates ? r.gates : "{}", 0, NULL);
	if (!json_is_object(gates)) {
		json_decref(gates);
		gates = json_object();
	}
	json_object_set_new(gates, "result", json_string("approved"));
	free(r.gates);
	r.gates = json_dumps(gates, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(gates);
	strlcpy_g(r.state, "running", sizeof(r.state));
	snprintf(r.message, sizeof(r.message), "approved (deployment %lld): deploying", (long long)d->id);
	r.updated_at = clock_now_ms();
	if (store_release_update(gd->store, &r, &err) < 0) {
		release_row_release(&r);
		return reply_error(1, "%s", err.msg);
	}
	/* the approval's record: its gates passed, its services deploy as release r */
	strlcpy_g(d->state, "started", sizeof(d->state));
	d->started_at = clock_now_s();
	snprintf(d->result_reason, sizeof(d->result_reason), "release %lld started", (long long)id);
	if (store_deployment_update(gd->store, d, &err) < 0)
		log_error("release", "%s", err.msg);
	announce(&r, "release_started", r.message);
	snprintf(msg, sizeof(msg), "release %lld of %s started", (long long)id, r.environment);
	reply = json_pack("{s:b, s:I, s:s, s:I, s:s}", "ok", 1, "deployment", (json_int_t)d->id, "state",
			  "release_started", "release", (json_int_t)id, "message", msg);
	release_row_release(&r);
	releases_tick();
	return reply;
}

/* a release waiting for its approval: rejected or expired ends it */
static void pending_step(struct release_row *r)
{
	json_t *gates = json_loads(r->gates ? r->gates : "{}", 0, NULL);
	int64_t dep = json_integer_value(json_object_get(gates, "approval"));
	struct deployment_row d;
	struct gerr err;
	json_decref(gates);
	if (!dep || store_deployment_get(gd->store, dep, &d, &err) != 1)
		return;
	if (!strcmp(d.state, "rejected") || !strcmp(d.state, "expired") || !strcmp(d.state, "failed")) {
		strlcpy_g(r->state, d.state, sizeof(r->state));
		snprintf(r->message, sizeof(r->message), "its approval (deployment %lld) %s%s%.400s: nothing was deployed",
			 (long long)dep, d.state, d.result_reason[0] ? ": " : "", d.result_reason);
		r->updated_at = clock_now_ms();
		if (store_release_update(gd->store, r, &err) < 0)
			log_error("release", "%s", err.msg);
		announce(r, "release_failed", r->message);
	}
	deployment_row_release(&d);
}

/* ---- resume, abort ---- */

/* who may act on release r: in scope for each of its services (else the refusal) */
static json_t *need_scope_all(const struct identity *who, const char *what, const struct release_row *r)
{
	json_t *items = json_loads(r->services ? r->services : "[]", 0, NULL), *it, *refusal = NULL;
	size_t i;
	json_array_foreach(items, i, it)
		if (!refusal)
			refusal = gates_need_scope(who, what, item_str(it, "service"), r->environment);
	json_decref(items);
	return refusal;
}

static void save(struct release_row *r, json_t *items)
{
	struct gerr err;
	if (items) {
		free(r->services);
		r->services = json_dumps(items, JSON_COMPACT | JSON_SORT_KEYS);
	}
	r->updated_at = clock_now_ms();
	if (store_release_update(gd->store, r, &err) < 0)
		log_error("release", "%s", err.msg);
}

json_t *releases_command(const char *op, int64_t id, const char *env, const struct identity *who, const char *reason)
{
	struct release_row r = { 0 };
	struct gerr err;
	json_t *items = NULL, *it, *reply;
	bool resume = !strcmp(op, "resume");
	char what[64];
	size_t i, n = 0;
	int found = store_release_get(gd->store, id, &r, &err);

	if (found < 0)
		return reply_error(1, "%s", err.msg);
	if (!found || strcmp(r.environment, env)) {
		release_row_release(&r);
		return reply_error(2, "no release %lld in %s", (long long)id, env);
	}
	snprintf(what, sizeof(what), "%s release %lld of", op, (long long)id);
	if ((reply = need_scope_all(who, what, &r)))
		goto out;
	items = json_loads(r.services ? r.services : "[]", 0, NULL);
	if (resume) {
		/* a paused release: its failed services are tried again, the skipped ones wait again */
		if (strcmp(r.state, "paused")) {
			reply = reply_error(2, "release %lld is %s: only a paused release can be resumed", (long long)id,
					    r.state);
			goto out;
		}
		json_array_foreach(items, i, it) {
			if (!item_is(it, "failed") && !item_is(it, "skipped"))
				continue;
			n += item_is(it, "failed");
			set_state(it, "waiting", "tried again: release resumed");
			json_object_set_new(it, "deployment", json_integer(0));
			json_object_set_new(it, "revision", json_integer(0));
			json_object_del(it, "ended_at");
		}
		strlcpy_g(r.state, "running", sizeof(r.state));
		snprintf(r.message, sizeof(r.message), "resumed by %s%s%.200s: %zu failed service%s tried again", who->name,
			 reason && *reason ? ": " : "", reason ? reason : "", n, n == 1 ? "" : "s");
	} else {
		/* what the release changed is rolled back, highest level first (drive: rolling_back);
		 * what runs now finishes first; a release waiting for approval ends */
		if (strcmp(r.state, "paused") && strcmp(r.state, "running") && strcmp(r.state, "pending")) {
			reply = reply_error(2, "release %lld is %s: only a pending, running or paused release can be "
					    "aborted", (long long)id, r.state);
			goto out;
		}
		if (!strcmp(r.state, "pending")) {
			json_t *gates = json_loads(r.gates ? r.gates : "{}", 0, NULL);
			struct deployment_row d;
			if (store_deployment_get(gd->store, json_integer_value(json_object_get(gates, "approval")), &d,
						 &err) == 1) {
				if (!strcmp(d.state, "pending_approval")) {
					strlcpy_g(d.state, "rejected", sizeof(d.state));
					strlcpy_g(d.result, "rejected", sizeof(d.result));
					snprintf(d.result_reason, sizeof(d.result_reason), "release %lld aborted by %s",
						 (long long)id, who->name);
					d.ended_at = clock_now_s();
					store_deployment_update(gd->store, &d, &err);
				}
				deployment_row_release(&d);
			}
			json_decref(gates);
			strlcpy_g(r.state, "aborted", sizeof(r.state));
		} else {
			strlcpy_g(r.state, "rolling_back", sizeof(r.state));
		}
		snprintf(r.message, sizeof(r.message), "aborted by %s%s%.200s: %s", who->name, reason && *reason ? ": " : "",
			 reason ? reason : "", !strcmp(r.state, "aborted") ? "nothing was deployed"
			 : "rolling back what it changed");
	}
	save(&r, items);
	announce(&r, resume ? "release_resumed" : "release_aborted", r.message);
	reply = json_pack("{s:b, s:I, s:s, s:o}", "ok", 1, "release", (json_int_t)id, "state", r.state, "record",
			  releases_json(&r));
	releases_tick();
out:
	json_decref(items);
	release_row_release(&r);
	return reply;
}

/* ---- driving it ---- */

/* a deployment record's outcome: 1 succeeded, -1 failed (why), 0 not yet */
static int outcome(int64_t id, int *revision, char *why, size_t len)
{
	struct deployment_row d;
	struct gerr err;
	int ret = 0;
	if (store_deployment_get(gd->store, id, &d, &err) != 1)
		return 0;
	if (d.revision)
		*revision = d.revision;
	if (!strcmp(d.state, "succeeded") || !strcmp(d.result, "succeeded"))
		ret = 1;
	else if (!strcmp(d.state, "failed") || !strcmp(d.state, "rolled_back") || !strcmp(d.state, "refused") ||
		 !strcmp(d.state, "rejected") || !strcmp(d.state, "expired") || !strcmp(d.state, "migration_failed") ||
		 !strcmp(d.result, "failed") || !strcmp(d.result, "rolled_back") || !strcmp(d.result, "superseded")) {
		ret = -1;
		snprintf(why, len, "deployment %lld %s%s%s", (long long)id, d.result[0] ? d.result : d.state,
			 d.result_reason[0] ? ": " : "", d.result_reason);
	}
	deployment_row_release(&d);
	return ret;
}

static void start_item(const struct release_row *r, json_t *it)
{
	struct identity who;
	struct deploy_intent in = { 0 };
	struct svcenv *se = daemon_svcenv(item_str(it, "service"), r->environment, true);
	int64_t ticket = 0;
	char reason[128];
	json_t *req, *reply;

	release_identity(r, &who);
	snprintf(reason, sizeof(reason), "release %lld", (long long)r->id);
	/* "release": its gates were decided for the release (releases_covers checks the record) */
	req = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "op", "deploy", "service", item_str(it, "service"),
			"environment", r->environment, "version", item_str(it, "version"), "digest",
			item_str(it, "digest"), "deployed_by", r->created_by, "reason", reason, "release",
			(json_int_t)r->id);
	if (json_object_get(it, "promotion"))
		json_object_set(req, "promotion", json_object_get(it, "promotion"));
	if (item_int(it, "commit_time") > 0)
		json_object_set_new(req, "commit_time", json_integer(item_int(it, "commit_time")));
	if (json_is_string(json_object_get(it, "image_ref"))) /* where pulls.c pulls an image the Engine lacks */
		json_object_set(req, "image_ref", json_object_get(it, "image_ref"));
	in.version = item_str(it, "version");
	in.digest = item_str(it, "digest");
	in.config = item_str(it, "config");
	in.config_digest = item_str(it, "config_digest");
	in.spec_version = gd->spec_version;
	json_object_set_new(it, "from_revision", json_integer(se->row.stable_revision));
	json_object_set_new(it, "started_at", json_integer(clock_now_ms()));
	reply = gates_before_rollout(req, &who, item_str(it, "service"), r->environment, "deploy", &in, &ticket);
	if (!ticket)
		ticket = json_integer_value(json_object_get(reply, "deployment"));
	if (!ticket)
		ticket = json_integer_value(json_object_get(reply, "pending_approval"));
	json_object_set_new(it, "deployment", json_integer(ticket));
	if (json_is_true(json_object_get(reply, "ok")) || json_object_get(reply, "pending_approval")) {
		json_object_set_new(it, "revision", json_integer(json_integer_value(json_object_get(reply, "revision"))));
		set_state(it, "deploying", json_object_get(reply, "pending_approval") ? "waiting for approval" : NULL);
	} else {
		set_state(it, "failed", json_string_value(json_object_get(reply, "error")));
	}
	json_decref(reply);
	json_decref(req);
}

static void rollback_item(const struct release_row *r, json_t *it)
{
	struct identity who;
	struct svcenv *se = daemon_svcenv(item_str(it, "service"), r->environment, false);
	int from = (int)item_int(it, "from_revision");
	int64_t ticket = 0;
	char why[128];
	json_t *req, *reply;

	if (!se || from <= 0) {
		set_state(it, "rollback_failed", "a first deploy has nothing to go back to");
		return;
	}
	release_identity(r, &who);
	snprintf(why, sizeof(why), "release %lld rolled back", (long long)r->id);
	req = json_pack("{s:s, s:s, s:s, s:i, s:s}", "op", "rollback", "service", item_str(it, "service"),
			"environment", r->environment, "to_revision", from, "reason", why);
	reply = gates_before_rollout(req, &who, item_str(it, "service"), r->environment, "rollback", NULL, &ticket);
	if (!reply) {
		reply = daemon_copy_revision(se, from, "rollback", r->created_by, why);
		gates_rollout_created(ticket, reply);
	}
	if (json_is_true(json_object_get(reply, "ok"))) {
		struct gerr err;
		/* the revision the release rolled out is rolled back, as after the controller's own rollback */
		if (store_revision_set_status(gd->store, item_str(it, "service"), r->environment,
					      (int)item_int(it, "revision"), "rolled_back", why, &err) < 0)
			log_error("store", "%s", err.msg);
		json_object_set_new(it, "rollback_deployment", json_integer(ticket));
		json_object_set_new(it, "rollback_revision",
				    json_integer(json_integer_value(json_object_get(reply, "revision"))));
		set_state(it, "rolling_back", why);
	} else {
		set_state(it, "rollback_failed", json_string_value(json_object_get(reply, "error")));
	}
	json_decref(reply);
	json_decref(req);
}

/* a dependency of it failed or was skipped (on_failure continue) */
static bool blocked(json_t *items, json_t *it)
{
	size_t i, k;
	json_t *o, *d;
	json_array_foreach(json_object_get(it, "depends_on"), k, d)
		json_array_foreach(items, i, o)
			if (!strcmp(item_str(o, "service"), json_string_value(d)) &&
			    (item_is(o, "failed") || item_is(o, "skipped")))
				return true;
	return false;
}

/* one step of release r (its record written when it changed) */
static void drive(struct release_row *r)
{
	json_t *items = json_loads(r->services, 0, NULL), *it;
	size_t i, active = 0, failed = 0, waiting = 0;
	int low = INT_MAX, high = -1;
	char why[600];
	char *before = xstrdup(r->services), old_state[16];

	if (!items)
		goto out;
	if (!strcmp(r->state, "pending")) {
		pending_step(r);
		goto out;
	}
	strlcpy_g(old_state, r->state, sizeof(old_state));
	/* what the deployments it started became */
	json_array_foreach(items, i, it) {
		int rev = (int)item_int(it, "revision"), o;
		why[0] = 0;
		if (item_is(it, "deploying")) {
			o = outcome(item_int(it, "deployment"), &rev, why, sizeof(why));
			json_object_set_new(it, "revision", json_integer(rev));
			if (o) {
				set_state(it, o > 0 ? "succeeded" : "failed", o > 0 ? "" : why);
				json_object_set_new(it, "ended_at", json_integer(clock_now_ms()));
			}
		} else if (item_is(it, "rolling_back")) {
			rev = (int)item_int(it, "rollback_revision");
			o = outcome(item_int(it, "rollback_deployment"), &rev, why, sizeof(why));
			if (o)
				set_state(it, o > 0 ? "rolled_back" : "rollback_failed", o > 0 ? NULL : why);
		}
	}
	json_array_foreach(items, i, it) {
		active += item_is(it, "deploying") || item_is(it, "rolling_back");
		failed += item_is(it, "failed");
	}
	if (!strcmp(r->state, "running")) {
		if (failed && strcmp(r->on_failure, "continue")) {
			if (active)
				goto save; /* what runs finishes first: nothing new starts */
			if (!strcmp(r->on_failure, "pause")) {
				strlcpy_g(r->state, "paused", sizeof(r->state));
				snprintf(r->message, sizeof(r->message), "a service failed: paused (release.on_failure)");
				goto save;
			}
			strlcpy_g(r->state, "rolling_back", sizeof(r->state));
			snprintf(r->message, sizeof(r->message), "a service failed: rolling back what it changed");
		} else {
			json_array_foreach(items, i, it) {
				if (item_is(it, "waiting") && blocked(items, it))
					set_state(it, "skipped", "a service it depends on failed");
				if (item_is(it, "waiting") || item_is(it, "deploying"))
					low = MIN(low, (int)item_int(it, "level"));
			}
			json_array_foreach(items, i, it) {
				if (active >= RELEASE_PARALLEL)
					break;
				if (item_is(it, "waiting") && item_int(it, "level") == low) {
					start_item(r, it);
					active += item_is(it, "deploying");
					failed += item_is(it, "failed");
				}
			}
			json_array_foreach(items, i, it)
				waiting += item_is(it, "waiting") || item_is(it, "deploying");
			if (!waiting) {
				strlcpy_g(r->state, failed ? "failed" : "succeeded", sizeof(r->state));
				snprintf(r->message, sizeof(r->message), failed ? "%zu services failed" : "every service deployed",
					 failed);
			}
			goto save;
		}
	}
	if (!strcmp(r->state, "rolling_back")) {
		if (active)
			goto save;
		json_array_foreach(items, i, it)
			if (item_is(it, "succeeded"))
				high = MAX(high, (int)item_int(it, "level"));
		if (high < 0) {
			bool bad = false;
			json_array_foreach(items, i, it)
				bad |= item_is(it, "rollback_failed");
			char by[200] = "";
			/* an abort keeps its "aborted by NAME[: reason]" */
			if (!strncmp(r->message, "aborted by ", 11))
				snprintf(by, sizeof(by), "%.*s", (int)strcspn(r->message, ":"), r->message);
			strlcpy_g(r->state, bad ? "failed" : "rolled_back", sizeof(r->state));
			if (by[0])
				snprintf(r->message, sizeof(r->message), "%s: %s", by, bad ? "a rollback failed"
					 : "what the release changed was rolled back");
			else
				snprintf(r->message, sizeof(r->message), bad ? "a service failed and a rollback failed"
					 : "a service failed: what the release changed was rolled back");
			goto save;
		}
		/* highest level first: what depends on the others goes back first */
		json_array_foreach(items, i, it)
			if (item_is(it, "succeeded") && item_int(it, "level") == high && active < RELEASE_PARALLEL) {
				rollback_item(r, it);
				active += item_is(it, "rolling_back");
			}
	}
save:
	free(r->services);
	r->services = json_dumps(items, JSON_COMPACT | JSON_SORT_KEYS);
	if (strcmp(before, r->services) || strcmp(old_state, r->state)) {
		struct gerr err;
		r->updated_at = clock_now_ms();
		if (store_release_update(gd->store, r, &err) < 0)
			log_error("release", "%s", err.msg);
		if (strcmp(old_state, r->state)) {
			if (!strcmp(r->state, "succeeded"))
				announce(r, "release_succeeded", r->message);
			else if (!strcmp(r->state, "rolling_back"))
				announce(r, "release_failed", r->message);
			else if (strcmp(old_state, "rolling_back"))
				announce(r, !strcmp(r->state, "paused") ? "release_paused" : "release_failed", r->message);
			else
				announce(r, !strcmp(r->state, "rolled_back") ? "release_rolled_back" : "release_failed",
					 r->message);
		}
	}
out:
	free(before);
	json_decref(items);
}

void releases_tick(void)
{
	struct release_row *rows = NULL;
	size_t n = 0;
	struct gerr err;
	if (!gd->store || store_release_list(gd->store, NULL, true, &rows, &n, &err) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		drive(&rows[i]);
		release_row_release(&rows[i]);
	}
	free(rows);
}

/* ---- DORA, a release as one deployment ---- */

static int by_start(const void *a, const void *b)
{
	const struct dora_rollout *x = a, *y = b;
	return x->started_at < y->started_at ? -1 : x->started_at > y->started_at;
}

/* release r as DORA rollouts (at most 2: the release, and its rollback); 0 when it deployed nothing */
static size_t release_rollouts(const struct release_row *r, struct dora_rollout *out)
{
	json_t *items = json_loads(r->services ? r->services : "[]", 0, NULL), *gates, *it;
	int64_t det = 0, commit = 0;
	size_t i, n = 1;
	const char *st = r->state;

	if (!strcmp(st, "refused") || !strcmp(st, "rejected") || !strcmp(st, "expired") || !strcmp(st, "aborted")) {
		json_decref(items);
		return 0; /* nothing was deployed */
	}
	json_array_foreach(items, i, it) {
		int64_t ct = item_int(it, "commit_time");
		if (ct > 0 && (!commit || ct < commit))
			commit = ct;
		if (item_is(it, "failed") || item_is(it, "rolled_back") || item_is(it, "rollback_failed"))
			det = MAX(det, item_int(it, item_is(it, "failed") ? "ended_at" : "started_at"));
	}
	json_decref(items);
	gates = json_loads(r->gates ? r->gates : "{}", 0, NULL);
	memset(out, 0, 2 * sizeof(*out));
	strlcpy_g(out[0].kind, json_object_get(gates, "promoted_from") ? "promote" : "deploy", sizeof(out[0].kind));
	json_decref(gates);
	out[0].started_at = r->created_at;
	out[0].commit_time = commit * 1000;
	if (!strcmp(st, "succeeded")) {
		strlcpy_g(out[0].result, "succeeded", sizeof(out[0].result));
		out[0].ended_at = r->updated_at;
	} else if (!strcmp(st, "rolled_back") || !strcmp(st, "failed") || !strcmp(st, "paused")) {
		/* a failure, found when its service failed; a rollback it made restored the environment */
		strlcpy_g(out[0].result, "failed", sizeof(out[0].result));
		out[0].ended_at = det ? MIN(det, r->updated_at) : r->updated_at;
		if (!strcmp(st, "rolled_back")) {
			/* "restore": healthy again at its end, never a rollback away from the release before */
			strlcpy_g(out[1].kind, "restore", sizeof(out[1].kind));
			strlcpy_g(out[1].result, "succeeded", sizeof(out[1].result));
			out[1].started_at = out[0].ended_at;
			out[1].ended_at = r->updated_at;
			n = 2;
		}
	} else {
		strlcpy_g(out[0].result, "running", sizeof(out[0].result));
	}
	return n;
}

json_t *releases_dora(const char *env, int64_t since, int64_t until)
{
	struct release_row *rows = NULL;
	struct incident_row *inc = NULL;
	size_t n = 0, ninc = 0;
	struct gerr err;
	json_t *list = json_array();

	if (store_release_list(gd->store, env, false, &rows, &n, &err) < 0 ||
	    store_incident_list(gd->store, false, &inc, &ninc, &err) < 0) {
		for (size_t i = 0; i < n; i++)
			release_row_release(&rows[i]);
		free(rows);
		json_decref(list);
		return reply_error(1, "%s", err.msg);
	}
	for (size_t i = 0; i < n; i++) {
		struct dora_rollout *dr;
		struct dora_incident *di;
		struct dora_figures f;
		size_t k = 0, m = 0;
		bool seen = false;
		json_t *o;
		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(rows[j].environment, rows[i].environment);
		if (seen)
			continue;
		dr = xcalloc(2 * n + 1, sizeof(*dr));
		di = xcalloc(ninc + 1, sizeof(*di));
		for (size_t j = i; j < n; j++)
			if (!strcmp(rows[j].environment, rows[i].environment) && rows[j].created_at >= since * 1000)
				k += release_rollouts(&rows[j], dr + k);
		qsort(dr, k, sizeof(*dr), by_start);
		for (size_t j = 0; j < ninc; j++) {
			/* an automatic rollback's incident (opened by gantry) records a failed deploy: the
			 * failure of its release, counted as such, never again against the release before */
			if (!gates_concerns(&inc[j], NULL, rows[i].environment) || inc[j].opened_at < since ||
			    !strcmp(inc[j].opened_by, "gantry"))
				continue;
			di[m].opened_at = inc[j].opened_at * 1000;
			di[m].closed_at = inc[j].closed_at * 1000;
			m++;
		}
		dora_compute(dr, k, di, m, since * 1000, until * 1000, 0, &f);
		o = dora_json(&f);
		json_object_set_new(o, "environment", json_string(rows[i].environment));
		json_object_set_new(o, "releases", json_true());
		json_array_append_new(list, o);
		free(dr);
		free(di);
	}
	for (size_t i = 0; i < n; i++)
		release_row_release(&rows[i]);
	free(rows);
	free(inc);
	return list;
}
