/*
 * gates_flow.c — the controller's gates and records around a rollout
 * (gates_flow.h): who the caller is, the audit chain, webhooks, the gates
 * of a deploy evaluated from the stored policy, pre- and post-deployment
 * checks, approvals bound to what they approved, the controller's own
 * rollbacks (incident, verification). See docs/internals/records.md.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/reply.h"
#include "daemon/audit_anchor.h"
#include "daemon/gates_flow.h"
#include "daemon/pulls.h"
#include "daemon/releases.h"
#include "daemon/migrations.h"
#include "gates/checks.h"
#include "gates/gates.h"
#include "gates/gspec.h"
#include "util/clock.h"
#include "records/audit.h"
#include "records/notify.h"
#include "store/store_records.h"
#include "util/log.h"
#include <jansson.h>
#include <sodium.h>

void gates_token_hash(const char *s, char out[AUDIT_HASH_HEX])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
	sodium_bin2hex(out, AUDIT_HASH_HEX, h, sizeof(h));
}

static char *db_path(void)
{
	return xasprintf("%s/state.db", gd->home);
}

/* ---- identity ---- */

/* the caller's identity; *deny set (code 3) for an unknown token */
static int identify(json_t *req, const struct caller *caller, struct identity *id, json_t **deny)
{
	const char *token = json_string_value(json_object_get(req, "token"));
	struct user_row u;
	struct gerr err;
	int r;

	memset(id, 0, sizeof(*id));
	id->caller = caller;
	if (token && *token) {
		char h[AUDIT_HASH_HEX];
		gates_token_hash(token, h);
		r = store_user_by_token(gd->store, h, &u, &err);
		if (r < 0) {
			*deny = reply_error(1, "%s", err.msg);
			return -1;
		}
		if (!r || role_parse(u.role) < 0) {
			*deny = reply_error(3, "permission denied: unknown or revoked API token (GANTRY_TOKEN)");
			return -1;
		}
		strlcpy_g(id->name, u.name, sizeof(id->name));
		id->role = role_parse(u.role);
		id->by_token = true;
		strlcpy_g(id->environments, u.environments, sizeof(id->environments));
		strlcpy_g(id->services, u.services, sizeof(id->services));
		return 0;
	}
	if (caller->remote) {
		*deny = reply_error(3, "permission denied: the TCP API needs a token (Authorization: Bearer ...)");
		return -1;
	}
	if (caller->uid == 0 || caller->uid == geteuid()) {
		/* the daemon's owner could edit the state database anyway */
		strlcpy_g(id->name, caller_actor(caller), sizeof(id->name));
		id->role = ROLE_ADMIN;
		return 0;
	}
	strlcpy_g(id->name, caller->user, sizeof(id->name));
	r = store_user_get(gd->store, caller->user, &u, &err);
	id->role = r == 1 && role_parse(u.role) >= 0 ? role_parse(u.role) : ROLE_VIEWER;
	if (r == 1) {
		strlcpy_g(id->environments, u.environments, sizeof(id->environments));
		strlcpy_g(id->services, u.services, sizeof(id->services));
	}
	return 0;
}

/* what an operation concerns, for a refusal: "web@production", "web in every environment", ... */
static const char *target_text(const char *svc, const char *env, char *buf, size_t len)
{
	const char *s = svc ? (*svc ? svc : "every service") : NULL;
	const char *e = env ? (*env ? env : "every environment") : NULL;
	if (s && e)
		snprintf(buf, len, "%s%s%s", s, *svc && *env ? "@" : " in ", e);
	else
		snprintf(buf, len, "%s", s ? s : e ? e : "anything");
	return buf;
}

/*
 * The refusal (code 3) when id's scope does not cover svc@env (see
 * identity_covers: NULL = not restricted, "" = every one), else NULL.
 * what completes "cannot ...", e.g. "run 'deploy' on".
 */
json_t *gates_need_scope(const struct identity *id, const char *what, const char *svc, const char *env)
{
	char rt[2 * USER_SCOPE_LEN + 64], tt[160];
	if (identity_covers(id, svc, env))
		return NULL;
	return reply_error(3, "permission denied: %s (role %s) cannot %s %s", id->name,
			 identity_role_text(id, rt, sizeof(rt)), what, target_text(svc, env, tt, sizeof(tt)));
}

int gates_identify(json_t *req, const struct caller *caller, struct identity *id, json_t **deny)
{
	return identify(req, caller, id, deny);
}

/* ---- audit and notifications ---- */

/*
 * The new head, to the webhooks that asked for it by name (events:
 * [audit_head]; never to a target that takes every event): a copy of the
 * chain's end outside this machine, so a rewrite of HOME, key included,
 * still disagrees with what the receiver was told.
 */
static void publish_head(const struct audit_entry *e)
{
	json_t *cfg = gd->notify, *want = json_array(), *t, *ev, *x; /* cfg borrowed */
	size_t i, k;
	json_array_foreach(cfg, i, t) {
		ev = json_object_get(t, "events");
		json_array_foreach(ev, k, x)
			if (json_is_string(x) && !strcmp(json_string_value(x), "audit_head")) {
				json_array_append(want, t);
				break;
			}
	}
	if (json_array_size(want)) {
		char *path = db_path(), ts[40];
		json_t *data;
		format_rfc3339(e->time, ts, sizeof(ts));
		data = json_pack("{s:I, s:s, s:s, s:s, s:s}", "seq", (json_int_t)e->seq, "mac", e->hash, "time", ts,
				 "action", e->action, "actor", e->actor);
		notify_send(gd->store, path, want, "audit_head", data);
		json_decref(data);
		free(path);
	}
	json_decref(want);
}

/* details consumed; failures are logged, never fatal to the operation. caller:
 * who, from the kernel (uid/pid by SO_PEERCRED, or the TCP peer); NULL: the
 * controller's own decision. The new head is published (audit_anchor.h). */
static void audit(const struct caller *caller, const char *actor, const char *action, const char *target,
		  json_t *details)
{
	struct audit_entry e = { 0 };
	struct gerr err;
	e.time = clock_now_s();
	e.uid = caller && !caller->remote ? (int64_t)caller->uid : caller ? -1 : (int64_t)geteuid();
	e.pid = caller && !caller->remote ? (int64_t)caller->pid : caller ? 0 : (int64_t)getpid();
	strlcpy_g(e.peer, !caller ? "controller" : caller->remote ? caller->user : "unix", sizeof(e.peer));
	strlcpy_g(e.actor, actor ? actor : "unknown", sizeof(e.actor));
	strlcpy_g(e.action, action, sizeof(e.action));
	strlcpy_g(e.target, target ? target : "", sizeof(e.target));
	if (!details)
		details = json_object();
	e.details = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(details);
	if (store_audit_append(gd->store, &e, audit_seal_key, gd->audit_key, &err) < 0) {
		log_error("audit", "action=%s target=%s: %s", action, target, err.msg);
	} else {
		audit_anchor_publish(gd->home, gd->audit_export, &e);
		publish_head(&e);
	}
	audit_entry_release(&e);
}

void gates_audit(const char *actor, const char *action, const char *target, json_t *details)
{
	audit(NULL, actor, action, target, details);
}

void gates_audit_as(const struct caller *caller, const char *actor, const char *action, const char *target,
		    json_t *details)
{
	audit(caller, actor, action, target, details);
}

void gates_audit_refusal(const char *op, json_t *req, const struct caller *caller, json_t *reply)
{
	const char *svc = json_string_value(json_object_get(req, "service"));
	const char *env = json_string_value(json_object_get(req, "environment"));
	char target[160];
	/* a refused spec change is audited with its diff where it was decided */
	if (json_integer_value(json_object_get(reply, "code")) != 3 || json_object_get(reply, "pending_approval") ||
	    json_object_get(reply, "diff"))
		return;
	snprintf(target, sizeof(target), "%s@%s", svc ? svc : "", env ? env : "");
	audit(caller, caller_actor(caller), "refused", svc ? target : "",
	      json_pack("{s:s, s:s, s:O*}", "op", op, "error", json_string_value(json_object_get(reply, "error")),
			"deployment", json_object_get(reply, "deployment")));
}

void gates_audit_op(const char *op, json_t *req, const struct caller *caller, json_t *reply)
{
	json_t *d;
	const char *svc = json_string_value(json_object_get(req, "service"));
	const char *env = json_string_value(json_object_get(req, "environment"));
	char target[160];
	const char *k;
	json_t *v;
	if (!json_is_true(json_object_get(reply, "ok")))
		return;
	d = json_object();
	json_object_foreach(req, k, v) {
		/* the resolved config is in the revision; a token never goes in the log */
		if (strcmp(k, "op") && strcmp(k, "token") && strcmp(k, "spec") && strcmp(k, "sops"))
			json_object_set(d, k, v);
	}
	json_object_foreach(reply, k, v) {
		if (strcmp(k, "ok") && (json_is_integer(v) || json_is_string(v)))
			json_object_set(d, k, v);
	}
	/* the name the client claimed is only a claim: the entry's actor is who it was */
	if (json_object_get(d, "deployed_by"))
		json_object_set_new(d, "deployed_by", json_string(caller_actor(caller)));
	snprintf(target, sizeof(target), "%s@%s", svc ? svc : "", env ? env : "");
	audit(caller, caller_actor(caller), op, svc ? target : "", d);
}

/* data consumed: the stored spec's webhooks that want event hear it */
void gates_emit(const char *event, json_t *data)
{
	json_t *cfg = gd->notify;
	char *path;
	if (cfg) {
		path = db_path();
		notify_send(gd->store, path, cfg, event, data);
		free(path);
	}
	json_decref(data);
}

void gates_notify(const char *event, const char *svc, const char *env, int revision, const char *message)
{
	gates_emit(event, json_pack("{s:s, s:s, s:i, s:s}", "service", svc, "environment", env, "revision", revision,
			      "message", message));
}

void gates_event(const char *svc, const char *env, int revision, const char *kind, const char *msg)
{
	struct gerr err;
	struct svcenv *se = svc && env && *svc ? daemon_svcenv(svc, env, false) : NULL;
	if (se)
		daemon_event(se, revision, kind, "%s", msg);
	else
		store_event_add(gd->store, svc ? svc : "", env ? env : "", revision, kind, &err, "%s", msg);
}

/* ---- incidents ---- */

json_t *gates_incident_json(const struct incident_row *r)
{
	char o[40], c[40];
	format_rfc3339(r->opened_at, o, sizeof(o));
	format_rfc3339(r->closed_at, c, sizeof(c));
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id", (json_int_t)r->id,
			 "severity", r->severity, "title", r->title, "service", r->service, "environment",
			 r->environment, "status", r->closed_at ? "closed" : "open", "opened_by", r->opened_by,
			 "opened_at", o, "closed_at", r->closed_at ? json_string(c) : json_null(), "closed_by",
			 r->closed_by, "resolution", r->resolution);
}

/* ---- gates before a rollout ---- */

/* what from_env says about revision want_rev, or else the newest revision with digest */
int gates_find_promotion(const char *svc, const char *from_env, const char *digest, int want_rev,
			  struct promotion_fact *f, struct gerr *err)
{
	struct revision_row *list;
	size_t n;
	memset(f, 0, sizeof(*f));
	if (store_revision_list(gd->store, svc, from_env, &list, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!f->found && ((want_rev > 0 && list[i].number == want_rev) ||
				  (want_rev <= 0 && digest && !strcmp(list[i].digest, digest)))) {
			int64_t ms = 0;
			f->found = true;
			f->revision = list[i].number;
			strlcpy_g(f->status, list[i].status, sizeof(f->status));
			if (store_rollout_completed_at(gd->store, svc, from_env, list[i].number, &ms, err) == 1)
				f->serving_since = ms / 1000;
		}
		revision_row_release(&list[i]);
	}
	free(list);
	return 0;
}

bool gates_concerns(const struct incident_row *r, const char *svc, const char *env)
{
	return (!r->service[0] || !svc || !strcmp(r->service, svc)) &&
	       (!r->environment[0] || !env || !strcmp(r->environment, env));
}

/*
 * Evaluates the gates of req for svc@env (no records). *pol and *v are the
 * caller's to release; returns -1 with *reply set on bad input.
 */
int gates_evaluate_request(json_t *req, const struct identity *id, const char *svc, const char *env, const char *kind,
		    bool all, struct gate_policy *pol, struct gate_verdict *v, json_t **reply)
{
	struct incident_row *inc = NULL;
	size_t ninc = 0;
	struct promotion_fact pf;
	struct gate_input in = { 0 };
	struct gerr gerr;
	json_t *promo = json_object_get(req, "promotion");
	const char *digest = json_string_value(json_object_get(req, "digest"));

	json_t *stored = gd->spec ? gspec_gates(gd->spec, svc, env) : NULL;
	int64_t release = json_integer_value(json_object_get(req, "release"));
	/* a deploy of a release whose gates were decided once, at its start (releases.c) */
	bool decided = (!strcmp(kind, "deploy") || !strcmp(kind, "promote")) &&
		       releases_covers(release, id, svc, env, digest);
	int pr;

	memset(v, 0, sizeof(*v));
	/* the controller's stored policy; never anything the request says */
	pr = gate_policy_from_json(stored, pol, &gerr);
	json_decref(stored);
	if (pr < 0) {
		*reply = reply_error(1, "the stored policy of %s: %s", env, gerr.msg);
		return -1;
	}
	if (store_incident_list(gd->store, true, &inc, &ninc, &gerr) < 0) {
		*reply = reply_error(1, "%s", gerr.msg);
		gate_policy_release(pol);
		return -1;
	}
	in.policy = gd->spec && !decided ? pol : NULL;
	in.service = svc;
	in.environment = env;
	in.kind = kind;
	in.who = id;
	in.emergency = json_is_true(json_object_get(req, "emergency"));
	in.reason = json_string_value(json_object_get(req, "reason"));
	in.now = clock_now_s();
	in.incidents = inc;
	in.nincidents = ninc;
	in.all = all;
	if (pol->promote_from[0] && !decided) {
		int want = promo ? (int)json_integer_value(json_object_get(promo, "revision")) : 0;
		const char *from = promo ? json_string_value(json_object_get(promo, "from")) : NULL;
		if (from && strcmp(from, pol->promote_from)) {
			*reply = reply_error(3, "%s only accepts versions promoted from %s, not from %s", env,
					   pol->promote_from, from);
			free(inc);
			gate_policy_release(pol);
			return -1;
		}
		if (gates_find_promotion(svc, pol->promote_from, digest, want, &pf, &gerr) < 0) {
			*reply = reply_error(1, "%s", gerr.msg);
			free(inc);
			gate_policy_release(pol);
			return -1;
		}
		if (pf.found && want > 0 && digest) {
			/* the revision named must be the artifact deployed */
			struct revision_row r;
			if (store_revision_get(gd->store, svc, pol->promote_from, want, &r, &gerr) == 1) {
				if (strcmp(r.digest, digest))
					pf.found = false;
				revision_row_release(&r);
			}
		}
		in.promotion = &pf;
	}
	gates_evaluate(&in, v);
	if (decided && v->result == GATE_ALLOW) {
		static const char *const decided_gates[] = { "window", "freeze", "promotion", "approvals" };
		char how[64];
		snprintf(how, sizeof(how), "release %lld", (long long)release);
		for (size_t i = 0; i < ARRAY_SIZE(decided_gates); i++)
			json_object_set_new(v->gates, decided_gates[i], json_string(how));
	}
	free(inc);
	return 0;
}

static char *request_text(json_t *req, const char *requester)
{
	json_t *c = json_deep_copy(req);
	char *t;
	json_object_del(c, "token");
	json_object_del(c, "approved_deployment");
	json_object_del(c, "sops"); /* pinned in the config (a version of the store's SOPS file) */
	json_object_set_new(c, "deployed_by", json_string(requester));
	t = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	return t;
}

json_t *gates_before_raise(json_t *req, const struct identity *who, const char *svc, const char *env,
			   const char *op)
{
	const struct identity id = *who;
	struct gate_policy pol;
	struct gate_input in = { 0 };
	struct gate_verdict v;
	struct incident_row *inc = NULL;
	size_t ninc = 0;
	struct gerr gerr;
	json_t *reply = NULL, *g;
	int pr;
	if (!gd->spec)
		return NULL;
	g = gspec_gates(gd->spec, svc, env);
	pr = gate_policy_from_json(g, &pol, &gerr);
	json_decref(g);
	if (pr < 0)
		return reply_error(1, "the stored policy of %s: %s", env, gerr.msg);
	if (store_incident_list(gd->store, true, &inc, &ninc, &gerr) < 0) {
		gate_policy_release(&pol);
		return reply_error(1, "%s", gerr.msg);
	}
	in.policy = &pol;
	in.service = svc;
	in.environment = env;
	in.kind = "deploy";
	in.who = &id;
	in.emergency = json_is_true(json_object_get(req, "emergency"));
	in.reason = json_string_value(json_object_get(req, "reason"));
	in.now = clock_now_s();
	in.incidents = inc;
	in.nincidents = ninc;
	/* as for a deploy (gates_evaluate): an emergency is an approver's call, with a reason */
	if (in.emergency && (!in.reason || !*in.reason)) {
		reply = reply_error(2, "an emergency needs a reason (--reason \"...\")");
		goto out;
	}
	if (in.emergency && id.role < ROLE_APPROVER) {
		reply = reply_error(3, "permission denied: %s (role %s) cannot override gates in an emergency (needs role "
				  "approver)", id.name, role_name(id.role));
		goto out;
	}
	gates_evaluate_step(&in, &v);
	if (v.result == GATE_REFUSE) {
		reply = reply_error(3, "%s would raise a new revision's share of %s@%s: %s", op, svc, env, v.reason);
		if (v.next_allowed > 0) {
			char iso[40];
			format_rfc3339(v.next_allowed, iso, sizeof(iso));
			json_object_set_new(reply, "next_allowed", json_string(iso));
		}
		json_object_set(reply, "gates", v.gates);
	} else if (in.emergency) {
		audit(id.caller, id.name, "emergency_override", "", json_pack("{s:s, s:s, s:s, s:s, s:O}", "service", svc,
								    "environment", env, "operation", op, "reason", in.reason,
								    "gates", v.gates));
		gates_event(svc, env, 0, "emergency_override", "EMERGENCY: gates overridden");
	}
	gate_verdict_release(&v);
out:
	gate_policy_release(&pol);
	free(inc);
	return reply;
}

/* the stored spec's checks of svc for phase "pre" or "post": a new reference, NULL when none */
static json_t *stored_checks(const char *svc, const char *env, const char *phase)
{
	json_t *g = gd->spec ? gspec_gates(gd->spec, svc, env) : NULL;
	json_t *list = json_object_get(json_object_get(g, "checks"), phase);
	if (json_is_array(list) && json_array_size(list))
		json_incref(list);
	else
		list = NULL;
	json_decref(g);
	return list;
}

/*
 * A deployment whose gates passed: its pre-deployment checks run on the
 * checks' worker threads (gates_tick takes it on), else it starts now.
 * d is updated in the store either way.
 */
json_t *gates_deployment_go(struct deployment_row *d)
{
	json_t *pre, *pulling;
	struct gerr gerr;
	char *dir;
	/* the approval of a whole release: the release goes ahead (releases.c) */
	if (!strcmp(d->kind, "release"))
		return releases_approved(d);
	/* an image the Engine lacks is pulled first (pulls.c calls this again once it is there) */
	if (pulls_begin_deploy(d, &pulling) != 0)
		return pulling;
	pre = stored_checks(d->service, d->environment, "pre");
	if (pre) {
		strlcpy_g(d->state, "pre_checks", sizeof(d->state));
		if (store_deployment_update(gd->store, d, &gerr) < 0) {
			json_decref(pre);
			return reply_error(1, "%s", gerr.msg);
		}
		dir = xasprintf("%s/artifacts/%s", gd->home, d->digest);
		if (checks_start(d->id, pre, dir, 0) < 0) {
			free(dir);
			return reply_error(1, "cannot start the pre-deployment checks");
		}
		free(dir);
		gates_event(d->service, d->environment, 0, "pre_checks_started", "pre-deployment checks running");
		return json_pack("{s:b, s:I, s:s, s:s}", "ok", 1, "deployment", (json_int_t)d->id, "state", "pre_checks",
				 "version", d->version);
	}
	/* pending up-migrations run on a thread first (daemon/migrations.c) */
	{
		json_t *mig = mig_flow_deploy(d);
		if (mig)
			return mig;
	}
	strlcpy_g(d->state, "started", sizeof(d->state));
	d->started_at = clock_now_s();
	if (store_deployment_update(gd->store, d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	return daemon_deploy_start(d);
}

json_t *gates_before_rollout(json_t *req, const struct identity *who, const char *svc, const char *env,
			     const char *kind, const struct deploy_intent *intent, int64_t *ticket)
{
	const struct identity id = *who;
	struct gate_policy pol = { 0 };
	struct gate_verdict v = { 0 };
	struct deployment_row d = { 0 };
	struct gerr gerr;
	json_t *reply = NULL;
	const char *reason = json_string_value(json_object_get(req, "reason"));
	bool promote = json_object_get(req, "promotion") && !strcmp(kind, "deploy");
	char msg[1024];
	int64_t now = clock_now_s();

	*ticket = 0;
	if (gates_evaluate_request(req, &id, svc, env, promote ? "promote" : kind, false, &pol, &v, &reply) < 0)
		goto out;
	strlcpy_g(d.service, svc, sizeof(d.service));
	strlcpy_g(d.environment, env, sizeof(d.environment));
	strlcpy_g(d.kind, promote ? "promote" : kind, sizeof(d.kind));
	strlcpy_g(d.requester, id.name, sizeof(d.requester));
	d.request = request_text(req, id.name);
	d.gates = json_dumps(v.gates, JSON_COMPACT | JSON_SORT_KEYS);
	d.approvals_needed = pol.approvals;
	d.approval_ttl = pol.approval_ttl;
	if (intent) {
		strlcpy_g(d.version, intent->version, sizeof(d.version));
		strlcpy_g(d.digest, intent->digest, sizeof(d.digest));
		strlcpy_g(d.config_digest, intent->config_digest, sizeof(d.config_digest));
		d.config = xstrdup(intent->config);
		d.spec_version = intent->spec_version;
	}
	d.emergency = json_is_true(json_object_get(req, "emergency"));
	strlcpy_g(d.reason, reason ? reason : "", sizeof(d.reason));
	d.commit_time = json_integer_value(json_object_get(req, "commit_time"));
	if (!d.commit_time && json_is_object(json_object_get(req, "promotion"))) {
		/* a promotion deploys the source's commit: its lead time starts there */
		json_t *pr = json_object_get(req, "promotion");
		const char *from = json_string_value(json_object_get(pr, "from"));
		int rv = (int)json_integer_value(json_object_get(pr, "revision"));
		struct deployment_row *l;
		size_t ln;
		if (from && store_deployment_list(gd->store, svc, from, 0, &l, &ln, &gerr) == 0) {
			for (size_t i = 0; i < ln; i++) {
				if (!d.commit_time && l[i].revision == rv && l[i].commit_time > 0)
					d.commit_time = l[i].commit_time;
				deployment_row_release(&l[i]);
			}
			free(l);
		}
	}
	d.created_at = now;
	if (v.result == GATE_REFUSE) {
		strlcpy_g(d.state, "refused", sizeof(d.state));
		strlcpy_g(d.result, "refused", sizeof(d.result));
		strlcpy_g(d.result_reason, v.reason, sizeof(d.result_reason));
		if (store_deployment_add(gd->store, &d, &gerr) < 0)
			log_error("gates", "%s", gerr.msg);
		snprintf(msg, sizeof(msg), "%s by %s refused: %s", d.kind, id.name, v.reason);
		gates_event(svc, env, 0, "gate_refused", msg);
		reply = reply_error(v.code ? v.code : 3, "%s", v.reason);
		if (v.next_allowed > 0) {
			char iso[40];
			format_rfc3339(v.next_allowed, iso, sizeof(iso));
			json_object_set_new(reply, "next_allowed", json_string(iso));
		}
		json_object_set(reply, "gates", v.gates);
		json_object_set_new(reply, "deployment", json_integer(d.id));
		goto out;
	}
	if (v.result == GATE_PENDING_APPROVAL) {
		strlcpy_g(d.state, "pending_approval", sizeof(d.state));
		if (store_deployment_add(gd->store, &d, &gerr) < 0) {
			reply = reply_error(1, "%s", gerr.msg);
			goto out;
		}
		snprintf(msg, sizeof(msg), "deployment %lld (%s %s) waits for approval: %s", (long long)d.id, d.kind,
			 d.version, v.reason);
		gates_event(svc, env, 0, "approval_requested", msg);
		gates_emit("approval_requested", json_pack("{s:s, s:s, s:s, s:I, s:s}", "service", svc, "environment", env,
						     "message", msg, "deployment", (json_int_t)d.id, "requester", id.name));
		reply = reply_error(3, "waiting for approval: deployment %lld: %s; an approver runs 'gantry approve %lld'",
				  (long long)d.id, v.reason, (long long)d.id);
		json_object_set_new(reply, "pending_approval", json_integer(d.id));
		json_object_set_new(reply, "deployment", json_integer(d.id));
		goto out;
	}
	strlcpy_g(d.state, "started", sizeof(d.state));
	d.started_at = now;
	if (store_deployment_add(gd->store, &d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	*ticket = d.id;
	if (d.emergency) {
		snprintf(msg, sizeof(msg), "EMERGENCY %s of %s@%s by %s, gates overridden: %s", d.kind, svc, env, id.name,
			 d.reason);
		gates_event(svc, env, 0, "emergency_deploy", msg);
		log_warn("gates", "service=%s environment=%s emergency by=%s reason=%s", svc, env, id.name, d.reason);
		audit(id.caller, id.name, "emergency_override", "", json_pack("{s:s, s:s, s:s, s:I, s:O}", "service", svc,
								    "environment", env, "reason", d.reason, "deployment",
								    (json_int_t)d.id, "gates", v.gates));
		gates_emit("emergency_deploy", json_pack("{s:s, s:s, s:s, s:s, s:s}", "service", svc, "environment", env,
						   "message", msg, "requester", id.name, "reason", d.reason));
	}
	if (intent)
		reply = gates_deployment_go(&d);
out:
	deployment_row_release(&d);
	gate_policy_release(&pol);
	gate_verdict_release(&v);
	return reply;
}

void gates_rollout_created(int64_t ticket, json_t *reply)
{
	struct deployment_row d;
	struct gerr gerr;
	struct svcenv *se;
	if (ticket <= 0 || store_deployment_get(gd->store, ticket, &d, &gerr) != 1)
		return;
	if (json_is_true(json_object_get(reply, "ok"))) {
		d.rollout_id = json_integer_value(json_object_get(reply, "rollout"));
		d.revision = (int)json_integer_value(json_object_get(reply, "revision"));
		se = daemon_svcenv(d.service, d.environment, false);
		if (se && se->rollout.id == d.rollout_id) {
			d.from_revision = se->rollout.from_revision;
			strlcpy_g(d.strategy, se->rollout.strategy, sizeof(d.strategy));
		}
		if (json_is_string(json_object_get(reply, "version")))
			strlcpy_g(d.version, json_string_value(json_object_get(reply, "version")), sizeof(d.version));
		gates_emit("rollout_started", json_pack("{s:s, s:s, s:s, s:i, s:I}", "service", d.service, "environment",
						  d.environment, "message", d.version, "revision", d.revision, "rollout",
						  (json_int_t)d.rollout_id));
	} else {
		strlcpy_g(d.state, "failed", sizeof(d.state));
		strlcpy_g(d.result, "failed", sizeof(d.result));
		strlcpy_g(d.result_reason, json_string_value(json_object_get(reply, "error")) ?
			  json_string_value(json_object_get(reply, "error")) : "", sizeof(d.result_reason));
		d.ended_at = clock_now_s();
	}
	if (store_deployment_update(gd->store, &d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	deployment_row_release(&d);
}

/* a ready replica of revision rev of svc@env: its port, else 0 */
static int ready_port(const char *svc, const char *env, int rev)
{
	struct svcenv *se = daemon_svcenv(svc, env, false);
	for (struct replica *r = se ? se->replicas : NULL; r; r = r->next)
		if (r->row.revision == rev && replica_is_ready(r))
			return r->row.port;
	return 0;
}

void gates_rollout_finished(const struct rollout_row *ro)
{
	struct deployment_row d;
	struct gerr gerr;
	json_t *post = NULL;
	const char *res = !strcmp(ro->phase, "complete") ? "succeeded" : ro->phase;
	char msg[1024];

	mig_flow_rollout_finished(ro); /* migrations.mode maintenance: off before the record ends */
	if (store_deployment_by_rollout(gd->store, ro->id, &d, &gerr) != 1)
		return;
	if (d.ended_at || !strcmp(d.state, "post_checks")) {
		deployment_row_release(&d);
		return;
	}
	/* the stored spec's post-checks verify whatever now serves: a deploy,
	 * a promotion, and a rollback's target too */
	if (!strcmp(res, "succeeded"))
		post = stored_checks(d.service, d.environment, "post");
	if (post) {
		char *dir = xasprintf("%s/artifacts/%s", gd->home, d.digest[0] ? d.digest : "-");
		if (!d.digest[0]) {
			struct revision_row r;
			if (store_revision_get(gd->store, d.service, d.environment, ro->revision, &r, &gerr) == 1) {
				free(dir);
				dir = xasprintf("%s/artifacts/%s", gd->home, r.digest);
				revision_row_release(&r);
			}
		}
		strlcpy_g(d.state, "post_checks", sizeof(d.state));
		if (checks_start(d.id, post, dir, ready_port(d.service, d.environment, ro->revision)) < 0)
			log_error("gates", "deployment=%lld cannot start the post-checks", (long long)d.id);
		free(dir);
		gates_event(d.service, d.environment, ro->revision, "post_checks_started", "post-deployment checks running");
	} else {
		strlcpy_g(d.state, res, sizeof(d.state));
		strlcpy_g(d.result, res, sizeof(d.result));
		strlcpy_g(d.result_reason, ro->message, sizeof(d.result_reason));
		d.ended_at = clock_now_s();
		if (strcmp(res, "superseded")) {
			snprintf(msg, sizeof(msg), "revision %d %s: %s", ro->revision, res, ro->message);
			gates_emit(!strcmp(res, "succeeded") ? "rollout_succeeded" : !strcmp(res, "rolled_back") ?
			     "rollout_rolled_back" : "rollout_failed",
			     json_pack("{s:s, s:s, s:s, s:i, s:I}", "service", d.service, "environment", d.environment,
				       "message", msg, "revision", ro->revision, "rollout", (json_int_t)ro->id));
		}
	}
	if (!d.revision)
		d.revision = ro->revision;
	if (store_deployment_update(gd->store, &d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	deployment_row_release(&d);
}

/*
 * Rollbacks the controller made itself wait here until a replica of their
 * target is ready; then their post-checks run (gates_tick). A record left
 * in state "verifying" by a crash comes back with gates_resume_checks.
 */
#define VERIFY_MAX 64
#define VERIFY_GIVE_UP_S 600
static int64_t verifying[VERIFY_MAX];
static size_t nverifying;

static void verify_later(int64_t id)
{
	for (size_t i = 0; i < nverifying; i++)
		if (verifying[i] == id)
			return;
	if (nverifying < VERIFY_MAX)
		verifying[nverifying++] = id;
	else
		log_warn("gates", "deployment=%lld: too many rollbacks waiting to be verified", (long long)id);
}

/* a record of a rollback gantry made to revision `to`, verified when it is ready */
static void verify_rollback(const char *svc, const char *env, int from, int to, const char *why)
{
	struct deployment_row d = { 0 };
	struct gerr gerr;
	json_t *post = stored_checks(svc, env, "post");
	struct revision_row r;
	strlcpy_g(d.service, svc, sizeof(d.service));
	strlcpy_g(d.environment, env, sizeof(d.environment));
	strlcpy_g(d.kind, "rollback", sizeof(d.kind));
	strlcpy_g(d.requester, "gantry", sizeof(d.requester));
	d.request = xstrdup("{}");
	d.gates = xstrdup("{}");
	d.revision = to;
	d.from_revision = from;
	snprintf(d.reason, sizeof(d.reason), "%s", why);
	if (store_revision_get(gd->store, svc, env, to, &r, &gerr) == 1) {
		strlcpy_g(d.version, r.version, sizeof(d.version));
		strlcpy_g(d.digest, r.digest, sizeof(d.digest));
		revision_row_release(&r);
	}
	d.created_at = d.started_at = clock_now_s();
	if (post) {
		strlcpy_g(d.state, "verifying", sizeof(d.state));
	} else {
		strlcpy_g(d.state, "succeeded", sizeof(d.state));
		strlcpy_g(d.result, "succeeded", sizeof(d.result));
		d.ended_at = d.started_at;
	}
	if (store_deployment_add(gd->store, &d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	else if (post)
		verify_later(d.id);
	json_decref(post);
	deployment_row_release(&d);
}

/* from the tick: rollbacks whose target became ready start their post-checks */
static void verify_tick(void)
{
	size_t k = 0;
	for (size_t i = 0; i < nverifying; i++) {
		struct deployment_row d;
		struct gerr gerr;
		int port;
		bool keep = false;
		if (store_deployment_get(gd->store, verifying[i], &d, &gerr) != 1)
			continue;
		if (!strcmp(d.state, "verifying")) {
			port = ready_port(d.service, d.environment, d.revision);
			if (port > 0) {
				json_t *post = stored_checks(d.service, d.environment, "post");
				char *dir = xasprintf("%s/artifacts/%s", gd->home, d.digest);
				strlcpy_g(d.state, "post_checks", sizeof(d.state));
				store_deployment_update(gd->store, &d, &gerr);
				if (checks_start(d.id, post ? post : json_array(), dir, port) < 0)
					log_error("gates", "deployment=%lld cannot start the post-checks", (long long)d.id);
				free(dir);
				gates_event(d.service, d.environment, d.revision, "post_checks_started",
				      "post-deployment checks of the automatic rollback running");
			} else if (clock_now_s() - d.started_at > VERIFY_GIVE_UP_S) {
				strlcpy_g(d.state, "failed", sizeof(d.state));
				strlcpy_g(d.result, "failed", sizeof(d.result));
				snprintf(d.result_reason, sizeof(d.result_reason),
					 "revision %d was not ready within %ds: its post-checks could not run", d.revision,
					 VERIFY_GIVE_UP_S);
				d.ended_at = clock_now_s();
				store_deployment_update(gd->store, &d, &gerr);
				gates_event(d.service, d.environment, d.revision, "post_check_failed", d.result_reason);
			} else {
				keep = true;
			}
		}
		if (keep)
			verifying[k++] = verifying[i];
		deployment_row_release(&d);
	}
	nverifying = k;
}

void gates_auto_rollback(const char *svc, const char *env, int from, int to, const char *why)
{
	struct gate_policy pol;
	struct incident_row r = { 0 };
	struct gerr gerr;
	json_t *g = gd->spec ? gspec_gates(gd->spec, svc, env) : NULL;
	char msg[1024];
	int pr = gate_policy_from_json(g, &pol, &gerr);
	json_decref(g);
	if (pr < 0)
		gate_policy_from_json(NULL, &pol, &gerr); /* the defaults: P2 */
	audit(NULL, "gantry", "auto_rollback", "", json_pack("{s:s, s:s, s:i, s:s}", "service", svc, "environment", env,
							"revision", from, "reason", why));
	if (to > 0)
		verify_rollback(svc, env, from, to, why);
	if (!strcmp(pol.rollback_incident, "none")) {
		gate_policy_release(&pol);
		return;
	}
	strlcpy_g(r.severity, pol.rollback_incident, sizeof(r.severity));
	snprintf(r.title, sizeof(r.title), "automatic rollback of %s@%s revision %d: %.180s", svc, env, from, why);
	strlcpy_g(r.service, svc, sizeof(r.service));
	strlcpy_g(r.environment, env, sizeof(r.environment));
	strlcpy_g(r.opened_by, "gantry", sizeof(r.opened_by));
	r.opened_at = clock_now_s();
	gate_policy_release(&pol);
	if (store_incident_open(gd->store, &r, &gerr) < 0) {
		log_error("gates", "cannot open the incident of an automatic rollback: %s", gerr.msg);
		return;
	}
	snprintf(msg, sizeof(msg), "incident %lld opened (%s: %s) by gantry", (long long)r.id, r.severity, r.title);
	gates_event(svc, env, from, "incident_opened", msg);
	audit(NULL, "gantry", "incident_open", "", gates_incident_json(&r));
	gates_emit("incident_opened", json_pack("{s:s, s:s, s:s, s:I, s:s}", "service", svc, "environment", env, "message",
					  msg, "incident", (json_int_t)r.id, "severity", r.severity));
}

/*
 * The failing check, named (borrowed from results): what events, webhooks
 * and the record's reason say. Its output stays in the record's checks,
 * shown to who may change the service: a check may print what the
 * service knows.
 */
static const char *failed_output(json_t *results)
{
	const char *out = "";
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r)
		if (!json_is_true(json_object_get(r, "ok")) && !json_object_get(r, "skipped"))
			out = json_string_value(json_object_get(r, "check"));
	return out ? out : "";
}

/* pre-deployment checks done: start the deployment, or record why not */
static void pre_checks_done(struct deployment_row *d, json_t *results, bool ok)
{
	struct gerr gerr;
	char msg[1024];
	json_t *rep;
	if (ok) {
		gates_event(d->service, d->environment, 0, "pre_checks_passed", "pre-deployment checks passed");
		rep = mig_flow_deploy(d);
		if (rep) {
			if (!json_is_true(json_object_get(rep, "ok")))
				log_error("gates", "deployment=%lld cannot start its migrations: %s", (long long)d->id,
					  json_string_value(json_object_get(rep, "error")));
			json_decref(rep);
			return;
		}
		strlcpy_g(d->state, "started", sizeof(d->state));
		d->started_at = clock_now_s();
		if (store_deployment_update(gd->store, d, &gerr) < 0)
			log_error("gates", "%s", gerr.msg);
		rep = daemon_deploy_start(d);
		if (!json_is_true(json_object_get(rep, "ok")))
			log_error("gates", "deployment=%lld cannot start after its pre-checks: %s", (long long)d->id,
				  json_string_value(json_object_get(rep, "error")));
		json_decref(rep);
		return;
	}
	snprintf(msg, sizeof(msg), "pre-deployment check failed: %.400s (its output: gantry deployments)",
		 failed_output(results));
	strlcpy_g(d->state, "failed", sizeof(d->state));
	strlcpy_g(d->result, "failed", sizeof(d->result));
	strlcpy_g(d->result_reason, msg, sizeof(d->result_reason));
	d->ended_at = clock_now_s();
	if (store_deployment_update(gd->store, d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	gates_event(d->service, d->environment, 0, "pre_check_failed", msg);
	gates_emit("deployment_failed", json_pack("{s:s, s:s, s:s, s:I}", "service", d->service, "environment",
					    d->environment, "message", msg, "deployment", (json_int_t)d->id));
}

/* post-deployment checks done: a failure rolls a deploy back (a rollback's
 * own target failing is recorded and announced, never rolled back again) */
static void post_checks_done(struct deployment_row *d, json_t *results, bool ok)
{
	struct gerr gerr;
	char msg[1024];
	bool rollback = !ok && strcmp(d->kind, "rollback");
	d->ended_at = clock_now_s();
	if (ok) {
		strlcpy_g(d->state, "succeeded", sizeof(d->state));
		strlcpy_g(d->result, "succeeded", sizeof(d->result));
		gates_event(d->service, d->environment, d->revision, "post_checks_passed", "post-deployment checks passed");
	} else {
		snprintf(msg, sizeof(msg), "post-deployment check failed: %.400s (its output: gantry deployments)",
			 failed_output(results));
		strlcpy_g(d->state, rollback ? "rolled_back" : "failed", sizeof(d->state));
		strlcpy_g(d->result, "failed", sizeof(d->result));
		strlcpy_g(d->result_reason, msg, sizeof(d->result_reason));
		gates_event(d->service, d->environment, d->revision, "post_check_failed", msg);
		gates_emit("rollout_failed", json_pack("{s:s, s:s, s:s, s:i}", "service", d->service, "environment",
						 d->environment, "message", msg, "revision", d->revision));
	}
	if (store_deployment_update(gd->store, d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	if (rollback) {
		json_t *rq = json_pack("{s:s, s:s, s:s, s:s}", "op", "rollback", "service", d->service,
				       "environment", d->environment, "reason", "post-deployment check failed");
		json_t *rep = gd->api_hooks->dispatch_as(rq, "gantry");
		if (!json_is_true(json_object_get(rep, "ok")))
			log_error("gates", "deployment=%lld rollback after a failed post-check: %s", (long long)d->id,
				  json_string_value(json_object_get(rep, "error")));
		else
			gates_auto_rollback(d->service, d->environment, d->revision, 0, d->result_reason);
		json_decref(rep);
		json_decref(rq);
	}
}

void gates_resume_checks(void)
{
	struct deployment_row *d;
	struct gerr gerr;
	size_t n;
	if (store_deployment_list(gd->store, NULL, NULL, 0, &d, &n, &gerr) < 0) {
		log_error("gates", "cannot resume checks: %s", gerr.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		bool pre = !strcmp(d[i].state, "pre_checks"), post = !strcmp(d[i].state, "post_checks");
		if (!strcmp(d[i].state, "verifying"))
			verify_later(d[i].id);
		if (!strcmp(d[i].state, "pulling"))
			pulls_resume(&d[i]); /* killed during its pull: pulled again */
		if (!strcmp(d[i].state, "migrating"))
			mig_flow_resume(&d[i]);
		json_t *list = pre || post ? stored_checks(d[i].service, d[i].environment, pre ? "pre" : "post") : NULL;
		if (pre || post) {
			char *dir = xasprintf("%s/artifacts/%s", gd->home, d[i].digest);
			log_info("gates", "deployment=%lld %s-deployment checks run again after a restart", (long long)d[i].id,
				 pre ? "pre" : "post");
			if (!list)
				list = json_array(); /* no checks any more: an empty list passes */
			if (checks_start(d[i].id, list, dir, pre ? 0 : ready_port(d[i].service, d[i].environment,
										  d[i].revision)) < 0)
				log_error("gates", "deployment=%lld cannot start its checks", (long long)d[i].id);
			free(dir);
		}
		deployment_row_release(&d[i]);
	}
	free(d);
}

/* once a minute: deployments that waited for approval past their time are expired (recorded, announced) */
static void expire_pending(void)
{
	static int64_t last;
	struct deployment_row *d;
	struct gerr gerr;
	size_t n;
	int64_t now = clock_now_s(), mono = clock_mono_ms();
	/* the throttle is elapsed time (a wall clock stepped back would stop it);
	 * the expiry is judged on the wall clock, as approval_ttl is a record's */
	if (mono - last < 60000)
		return;
	last = mono;
	if (store_deployment_pending(gd->store, NULL, NULL, &d, &n, &gerr) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (gates_expired(&d[i], now)) {
			char msg[1024];
			strlcpy_g(d[i].state, "expired", sizeof(d[i].state));
			strlcpy_g(d[i].result, "expired", sizeof(d[i].result));
			snprintf(d[i].result_reason, sizeof(d[i].result_reason), "waited %llds for approval (approval_ttl)",
				 (long long)d[i].approval_ttl);
			d[i].ended_at = now;
			if (store_deployment_update(gd->store, &d[i], &gerr) == 0) {
				snprintf(msg, sizeof(msg), "deployment %lld (%s %.128s) expired: %.300s", (long long)d[i].id,
					 d[i].kind, d[i].version, d[i].result_reason);
				gates_event(d[i].service, d[i].environment, 0, "deployment_expired", msg);
				gates_emit("deployment_expired", json_pack("{s:s, s:s, s:s, s:I}", "service", d[i].service,
									"environment", d[i].environment, "message", msg,
									"deployment", (json_int_t)d[i].id));
			}
		}
		deployment_row_release(&d[i]);
	}
	free(d);
}

void gates_tick(void)
{
	int64_t key;
	json_t *results;
	bool ok;
	if (nverifying)
		verify_tick();
	expire_pending();
	pulls_tick();
	mig_flow_tick();
	while (checks_poll(&key, &results, &ok)) {
		struct deployment_row d;
		struct gerr gerr;
		json_t *all, *r;
		size_t i;
		bool pre;
		if (store_deployment_get(gd->store, key, &d, &gerr) != 1) {
			json_decref(results);
			continue;
		}
		pre = !strcmp(d.state, "pre_checks");
		all = json_loads(d.checks ? d.checks : "[]", 0, NULL);
		if (!json_is_array(all)) {
			json_decref(all);
			all = json_array();
		}
		json_array_foreach(results, i, r) {
			json_object_set_new(r, "phase", json_string(pre ? "pre" : "post"));
			json_array_append(all, r);
		}
		free(d.checks);
		d.checks = json_dumps(all, JSON_COMPACT);
		json_decref(all);
		if (pre)
			pre_checks_done(&d, results, ok);
		else if (!strcmp(d.state, "post_checks"))
			post_checks_done(&d, results, ok);
		deployment_row_release(&d);
		json_decref(results);
	}
}

bool gates_expired(const struct deployment_row *d, int64_t now)
{
	return now - d->created_at >= d->approval_ttl;
}

json_t *gates_pending_json(const struct deployment_row *d)
{
	char msg[512];
	if (gates_expired(d, clock_now_s()))
		return NULL;
	snprintf(msg, sizeof(msg), "waiting for %d approval%s by someone other than %s: gantry approve %lld",
		 d->approvals_needed, d->approvals_needed > 1 ? "s" : "", d->requester, (long long)d->id);
	{
		char exp[40];
		format_rfc3339(d->created_at + d->approval_ttl, exp, sizeof(exp));
		return json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:I}", "deployment", (json_int_t)d->id, "phase",
				 "pending_approval", "message", msg, "version", d->version, "requester", d->requester,
				 "approvals_needed", d->approvals_needed, "expires_at", exp, "spec_version",
				 (json_int_t)d->spec_version);
	}
}

json_t *gates_pending_rollout(const char *svc, const char *env)
{
	struct deployment_row *d;
	size_t n;
	struct gerr gerr;
	json_t *o = NULL;
	if (store_deployment_pending(gd->store, svc, env, &d, &n, &gerr) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!o)
			o = gates_pending_json(&d[i]);
		deployment_row_release(&d[i]);
	}
	free(d);
	return o;
}

/* ---- approvals ---- */

/* what an approval of d binds to: service, environment, artifact, resolved config, spec version */
void gates_deployment_binding(const struct deployment_row *d, char *out, size_t len)
{
	char b[400];
	snprintf(b, sizeof(b), "%s@%s artifact=%s config=%s spec=%lld", d->service, d->environment, d->digest,
		 d->config_digest, (long long)d->spec_version);
	strlcpy_g(out, b, len);
}

/*
 * Resolves d's config again from the stored spec (with the request's set
 * and strategy): 0 unchanged, 1 changed (d updated, why says what), -1 it
 * cannot be resolved any more (why).
 */
int gates_rebind(struct deployment_row *d, char *why, size_t len)
{
	json_t *req, *err = NULL;
	char *config = NULL, cd[72];
	int ret = 0;
	if (!strcmp(d->kind, "release")) {
		/* a release binds to its services' artifacts and configs, resolved when it was asked */
		if (d->spec_version == gd->spec_version)
			return 0;
		snprintf(why, len, "the spec changed since the release was asked for (version %lld -> %lld): "
			 "release again", (long long)d->spec_version, (long long)gd->spec_version);
		return -1;
	}
	req = json_loads(d->request ? d->request : "{}", 0, NULL);
	if (daemon_resolve(d->service, d->environment, req, d->config, &config, cd, &err) < 0) {
		snprintf(why, len, "%s", json_string_value(json_object_get(err, "error")));
		json_decref(err);
		json_decref(req);
		return -1;
	}
	if (strcmp(cd, d->config_digest) || d->spec_version != gd->spec_version) {
		snprintf(why, len, "what it rolls out changed since it was requested (spec version %lld -> %lld%s)",
			 (long long)d->spec_version, (long long)gd->spec_version,
			 strcmp(cd, d->config_digest) ? ", its config too" : ", same config");
		free(d->config);
		d->config = config;
		config = NULL;
		strlcpy_g(d->config_digest, cd, sizeof(d->config_digest));
		d->spec_version = gd->spec_version;
		ret = 1;
	}
	free(config);
	json_decref(req);
	return ret;
}
