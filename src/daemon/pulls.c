/*
 * pulls.c — deployments waiting for their image (pulls.h). The pull itself
 * is dockrt.c's (a thread per reference); this file keeps which deployment
 * waits for which pull, tells its progress (events "image_pull": at the
 * start, at each further 10% or every 5 s while it moves, at the end) and,
 * once it ended, checks the image's id and lets the deployment go on.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/gates_flow.h"
#include "daemon/pulls.h"
#include "daemon/reply.h"
#include "util/clock.h"
#include "util/log.h"

struct waiting {
	struct waiting *next;
	int64_t deployment;
	char service[64], environment[64];
	char kind[16];                /* deploy | promote | rollback | restart */
	char ref[512];
	char hex[80];                 /* the image id the pull must give; "" (an image: tag): learnt from it */
	char version[128];
	int source;                   /* rollback, restart: the revision copied */
	char why[128];
	struct dockrt_pull *h;        /* NULL until the Engine answers */
	int64_t since;                /* clock_mono_ms: waiting since */
	int last_pct, last_layers;
	int64_t last_bytes, last_ms;
};

static struct waiting *waiting;
/* the deployment go_on lets go on after its pull: not pulled again for a cluster */
static int64_t pulled_now;

bool pulls_ref_has_registry(const char *ref)
{
	const char *slash = strchr(ref, '/');
	size_t n = slash ? (size_t)(slash - ref) : 0;
	return slash && (memchr(ref, '.', n) || memchr(ref, ':', n) || (n == 9 && !strncmp(ref, "localhost", 9)));
}

int pulls_source(const char *image_ref, const char *registry, const char *image, const char *svc,
		 const char *version, char *out, size_t len)
{
	if (image_ref && *image_ref) {
		/* "REPO[:TAG]@sha256:…" pulled as "REPO@sha256:…": the tag is only a name */
		const char *at = strchr(image_ref, '@'), *slash, *colon;
		size_t nl;
		if (!at || at == image_ref || strncmp(at + 1, "sha256:", 7) || strlen(at + 8) != 64 ||
		    strspn(at + 8, "0123456789abcdef") != 64)
			return -1;
		slash = memrchr(image_ref, '/', (size_t)(at - image_ref));
		colon = memrchr(slash ? slash : image_ref, ':', (size_t)(at - (slash ? slash : image_ref)));
		nl = (size_t)((colon ? colon : at) - image_ref);
		if (!nl || nl + strlen(at) >= len)
			return -1;
		snprintf(out, len, "%.*s%s", (int)nl, image_ref, at);
		return 1;
	}
	if (registry && *registry && version && *version &&
	    (size_t)snprintf(out, len, "%s/%s:%s", registry, svc, version) < len)
		return 1;
	if (image && pulls_ref_has_registry(image) && strlen(image) < len) {
		strlcpy_g(out, image, len);
		return 1;
	}
	return 0;
}

/* the runtime, registry and image of a stored config (JSON); false: not
 * docker. *cluster: it runs on a cluster (its nodes pull the image) */
static bool config_docker(const char *config, char *registry, size_t rlen, char *image, size_t ilen, bool *cluster)
{
	json_t *j = config ? json_loads(config, 0, NULL) : NULL;
	const char *rt = json_string_value(json_object_get(j, "runtime"));
	bool docker = rt && !strcmp(rt, "docker");
	if (cluster)
		*cluster = json_object_get(j, "cluster") != NULL;
	strlcpy_g(registry, json_string_value(json_object_get(j, "registry")) ?: "", rlen);
	strlcpy_g(image, json_string_value(json_object_get(j, "image")) ?: "", ilen);
	json_decref(j);
	return docker;
}

static struct waiting *find(int64_t id)
{
	for (struct waiting *w = waiting; w; w = w->next)
		if (w->deployment == id)
			return w;
	return NULL;
}

static void unlink_waiting(struct waiting *w)
{
	for (struct waiting **pp = &waiting; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	dockrt_pull_release(w->h);
	free(w);
}

static void start_pull(struct waiting *w)
{
	struct gerr err;
	if (w->h)
		return;
	w->h = dockrt_pull_start(w->ref, &err);
	if (!w->h)
		log_warn("docker", "deployment=%lld pull %s waits: %s", (long long)w->deployment, w->ref, err.msg);
}

/* supersedes the other deployments of w's svc@env still pulling: the newest decides */
static void supersede_others(const char *svc, const char *env, int64_t keep);

static struct waiting *add(const struct deployment_row *d, const char *ref, const char *hex, int source,
			   const char *why)
{
	struct waiting *w = xcalloc(1, sizeof(*w));
	supersede_others(d->service, d->environment, d->id);
	w->deployment = d->id;
	strlcpy_g(w->service, d->service, sizeof(w->service));
	strlcpy_g(w->environment, d->environment, sizeof(w->environment));
	strlcpy_g(w->kind, d->kind, sizeof(w->kind));
	strlcpy_g(w->ref, ref, sizeof(w->ref));
	strlcpy_g(w->hex, hex, sizeof(w->hex));
	strlcpy_g(w->version, d->version, sizeof(w->version));
	strlcpy_g(w->why, why ? why : "", sizeof(w->why));
	w->source = source;
	w->since = w->last_ms = clock_mono_ms();
	w->next = waiting;
	waiting = w;
	start_pull(w);
	return w;
}

/* d ended (failed or superseded) while pulling: recorded, said */
static void end_record(int64_t id, const char *state, const char *result, const char *why)
{
	struct deployment_row d;
	struct gerr gerr;
	if (store_deployment_get(gd->store, id, &d, &gerr) != 1)
		return;
	strlcpy_g(d.state, state, sizeof(d.state));
	strlcpy_g(d.result, result, sizeof(d.result));
	strlcpy_g(d.result_reason, why, sizeof(d.result_reason));
	d.ended_at = clock_now_s();
	if (store_deployment_update(gd->store, &d, &gerr) < 0)
		log_error("gates", "%s", gerr.msg);
	deployment_row_release(&d);
}

static void supersede_others(const char *svc, const char *env, int64_t keep)
{
	struct waiting *w, *next;
	for (w = waiting; w; w = next) {
		char why[160];
		next = w->next;
		if (w->deployment == keep || strcmp(w->service, svc) || strcmp(w->environment, env))
			continue;
		snprintf(why, sizeof(why), "superseded while its image was pulled");
		end_record(w->deployment, "superseded", "superseded", why);
		gates_event(w->service, w->environment, 0, "image_pull", "deployment superseded while pulling its image");
		log_info("docker", "deployment=%lld superseded while pulling %s", (long long)w->deployment, w->ref);
		unlink_waiting(w);
	}
}

void pulls_supersede(const char *svc, const char *env)
{
	supersede_others(svc, env, 0);
}

/*
 * d (recorded without an id: an image: tag) runs the image id hex (64 hex
 * digits) from now on: its digest, its version when it had none, and its
 * request's "image_id" (with "image_pulled": the reference pulled, when
 * pulled). The caller stores d.
 */
static void set_digest(struct deployment_row *d, const char *hex, const char *pulled)
{
	json_t *rq = d->request ? json_loads(d->request, 0, NULL) : NULL;
	char id[80];

	strlcpy_g(d->digest, hex, sizeof(d->digest));
	if (!d->version[0])
		strlcpy_g(d->version, hex, sizeof(d->version));
	if (!json_is_object(rq)) {
		json_decref(rq);
		rq = json_object();
	}
	snprintf(id, sizeof(id), "sha256:%s", hex);
	json_object_set_new(rq, "image_id", json_string(id));
	if (pulled)
		json_object_set_new(rq, "image_pulled", json_string(pulled));
	free(d->request);
	d->request = json_dumps(rq, JSON_COMPACT);
	json_decref(rq);
}

int pulls_begin_deploy(struct deployment_row *d, json_t **reply)
{
	char registry[256], image[512], ref[600], iref[600] = "";
	struct gerr gerr;
	json_t *rq;
	int f, src;
	bool cluster;

	*reply = NULL;
	if (!config_docker(d->config, registry, sizeof(registry), image, sizeof(image), &cluster))
		return 0;
	if (d->id == pulled_now)
		cluster = false; /* just pulled: the registry answered */
	if (!d->digest[0]) {
		/* an image: tag with no id known when the deploy was recorded:
		 * the Engine may have it by now (an inspect), else it is pulled
		 * and its id becomes the digest (go_on) */
		char hex[80];
		f = pulls_ref_has_registry(image) ? dockrt_pin_image(image, image, hex, sizeof(hex), &gerr)
			: gerr_set(&gerr, "image %s: no id known and no registry to pull it from", image);
		if (f < 0) {
			*reply = reply_error(1, "%s", gerr.msg);
			end_record(d->id, "failed", "failed", gerr.msg);
			return -1;
		}
		if (f == 0) {
			set_digest(d, hex, NULL);
			/* a cluster's nodes pull it from the registry: it must answer now */
			if (!cluster)
				return 0;
		}
		strlcpy_g(ref, image, sizeof(ref));
		goto pull;
	}
	if (strlen(d->digest) != 64)
		return 0;
	f = dockrt_image_present(d->digest, &gerr);
	if (f < 0) {
		*reply = reply_error(1, "%s", gerr.msg);
		end_record(d->id, "failed", "failed", gerr.msg);
		return -1;
	}
	/* Present: done, unless it runs on a cluster, whose nodes pull it from
	 * its registry: pulled here too (a registry that does not answer, or
	 * lacks the image, fails the deploy before any service is made; the
	 * Engine that has it only asks the registry for its manifest) */
	if (f && !cluster)
		return 0;
	rq = d->request ? json_loads(d->request, 0, NULL) : NULL;
	strlcpy_g(iref, json_string_value(json_object_get(rq, "image_ref")) ?: "", sizeof(iref));
	json_decref(rq);
	src = pulls_source(iref, registry, image, d->service, d->version, ref, sizeof(ref));
	if (f && src <= 0)
		return 0; /* nothing to check it against: swarmrt says what it lacks */
	if (src <= 0) {
		*reply = reply_error(1, "image sha256:%.12s of %s %s: not in the Docker Engine at %s and no registry "
				     "to pull it from (no image_ref, no registry:)", d->digest, d->service,
				     d->version, dockrt_engine_host());
		end_record(d->id, "failed", "failed", json_string_value(json_object_get(*reply, "error")));
		return -1;
	}
pull:
	strlcpy_g(d->state, "pulling", sizeof(d->state));
	if (store_deployment_update(gd->store, d, &gerr) < 0) {
		*reply = reply_error(1, "%s", gerr.msg);
		return -1;
	}
	add(d, ref, d->digest, 0, NULL);
	{
		char msg[1024];
		snprintf(msg, sizeof(msg), "pulling %s for deployment %lld (%s %s)", ref, (long long)d->id, d->kind,
			 d->version);
		gates_event(d->service, d->environment, 0, "image_pull", msg);
	}
	*reply = json_pack("{s:b, s:I, s:s, s:s, s:s}", "ok", 1, "deployment", (json_int_t)d->id, "state", "pulling",
			   "image", ref, "version", d->version);
	return 1;
}

json_t *pulls_begin_copy(int64_t ticket, const char *svc, const char *env, int source, const char *kind,
			 const char *why, const char *ref, const char *hex, const char *version)
{
	struct deployment_row d;
	struct gerr gerr;
	char msg[1024];

	if (store_deployment_get(gd->store, ticket, &d, &gerr) != 1)
		return reply_error(1, "deployment %lld: %s", (long long)ticket, gerr.msg);
	strlcpy_g(d.state, "pulling", sizeof(d.state));
	strlcpy_g(d.digest, hex, sizeof(d.digest));
	strlcpy_g(d.version, version, sizeof(d.version));
	/* the revision it copies, for a restart of the controller */
	{
		json_t *rq = d.request ? json_loads(d.request, 0, NULL) : NULL;
		if (!json_is_object(rq)) {
			json_decref(rq);
			rq = json_object();
		}
		json_object_set_new(rq, "source_revision", json_integer(source));
		json_object_set_new(rq, "source_why", json_string(why));
		free(d.request);
		d.request = json_dumps(rq, JSON_COMPACT);
		json_decref(rq);
	}
	if (store_deployment_update(gd->store, &d, &gerr) < 0) {
		deployment_row_release(&d);
		return reply_error(1, "%s", gerr.msg);
	}
	add(&d, ref, hex, source, why);
	snprintf(msg, sizeof(msg), "pulling %s for deployment %lld (%s to revision %d)", ref, (long long)ticket, kind,
		 source);
	gates_event(svc, env, 0, "image_pull", msg);
	deployment_row_release(&d);
	return json_pack("{s:b, s:I, s:s, s:s, s:s, s:i}", "ok", 1, "deployment", (json_int_t)ticket, "state",
			 "pulling", "image", ref, "version", version, "source_revision", source);
}

int pulls_revision_source(const char *svc, const char *env, int number, char *ref, size_t rlen, char *hex,
			  size_t hlen, char *version, size_t vlen, struct gerr *err)
{
	struct revision_row rev;
	char registry[256], image[512], iref[600] = "";
	int f, n = number, src;

	if ((f = store_revision_get(gd->store, svc, env, number, &rev, err)) <= 0)
		return f < 0 ? -1 : 0;
	if (!config_docker(rev.config_json, registry, sizeof(registry), image, sizeof(image), NULL) ||
	    strlen(rev.digest) != 64) {
		revision_row_release(&rev);
		return 0;
	}
	strlcpy_g(hex, rev.digest, hlen);
	strlcpy_g(version, rev.version, vlen);
	f = dockrt_image_present(rev.digest, err);
	if (f != 0) {
		revision_row_release(&rev);
		return f < 0 ? -1 : 0;
	}
	/* the image_ref the deploy that made it (or the revision it copies) carried */
	for (int hops = 0; hops < 32 && n > 0 && !iref[0]; hops++) {
		struct deployment_row *l;
		struct revision_row r2;
		size_t ln;
		int next = 0;
		if (store_deployment_list(gd->store, svc, env, 0, &l, &ln, err) < 0)
			break;
		for (size_t i = 0; i < ln; i++) {
			if (!iref[0] && l[i].revision == n && l[i].request) {
				json_t *rq = json_loads(l[i].request, 0, NULL);
				strlcpy_g(iref, json_string_value(json_object_get(rq, "image_ref")) ?: "", sizeof(iref));
				json_decref(rq);
			}
			deployment_row_release(&l[i]);
		}
		free(l);
		if (store_revision_get(gd->store, svc, env, n, &r2, err) == 1) {
			next = r2.source;
			revision_row_release(&r2);
		}
		n = next;
	}
	src = pulls_source(iref, registry, image, svc, rev.version, ref, rlen);
	if (src <= 0) {
		gerr_set(err, "image sha256:%.12s of revision %d (version %s) is not in the Docker Engine at %s, and "
			 "there is no registry to pull it from (no image_ref recorded, no registry: in its config)",
			 rev.digest, number, rev.version, dockrt_engine_host());
		revision_row_release(&rev);
		return -1;
	}
	revision_row_release(&rev);
	return 1;
}

void pulls_resume(const struct deployment_row *d)
{
	char registry[256], image[512], ref[600], iref[600] = "";
	json_t *rq = d->request ? json_loads(d->request, 0, NULL) : NULL;
	int source = (int)json_integer_value(json_object_get(rq, "source_revision"));
	const char *why = json_string_value(json_object_get(rq, "source_why"));
	struct gerr gerr;

	strlcpy_g(iref, json_string_value(json_object_get(rq, "image_ref")) ?: "", sizeof(iref));
	if (find(d->id))
		goto out;
	if (source > 0) {
		char hex[80], version[128];
		int f = pulls_revision_source(d->service, d->environment, source, ref, sizeof(ref), hex, sizeof(hex),
					      version, sizeof(version), &gerr);
		if (f < 0) {
			end_record(d->id, "failed", "failed", gerr.msg);
			gates_event(d->service, d->environment, 0, "image_pull", gerr.msg);
			goto out;
		}
		if (f == 0) /* there now: goes on at the next tick */
			snprintf(ref, sizeof(ref), "sha256:%s", d->digest);
	} else if (!d->digest[0]) {
		/* an image: tag whose pull was cut: pulled again, its id still to learn */
		if (!config_docker(d->config, registry, sizeof(registry), image, sizeof(image), NULL) ||
		    !pulls_ref_has_registry(image) || strlen(image) >= sizeof(ref)) {
			end_record(d->id, "failed", "failed", "an image: tag with no id and no registry to pull it from");
			goto out;
		}
		strlcpy_g(ref, image, sizeof(ref));
	} else {
		if (!config_docker(d->config, registry, sizeof(registry), image, sizeof(image), NULL) ||
		    pulls_source(iref, registry, image, d->service, d->version, ref, sizeof(ref)) <= 0)
			snprintf(ref, sizeof(ref), "sha256:%s", d->digest);
	}
	log_info("gates", "deployment=%lld pulls %s again after a restart", (long long)d->id, ref);
	add(d, ref, d->digest, source, why ? why : "");
out:
	json_decref(rq);
}

/* the pull of w ended well: the deployment goes on as if the image had been there */
static void go_on(struct waiting *w)
{
	struct deployment_row d;
	struct gerr gerr;
	json_t *rep;
	int64_t id = w->deployment;
	int source = w->source;
	char kind[16], why[128], hex[80], ref[512];

	strlcpy_g(kind, w->kind, sizeof(kind));
	strlcpy_g(why, w->why, sizeof(why));
	strlcpy_g(hex, w->hex, sizeof(hex));
	strlcpy_g(ref, w->ref, sizeof(ref));
	unlink_waiting(w);
	if (store_deployment_get(gd->store, id, &d, &gerr) != 1)
		return;
	if (strcmp(d.state, "pulling")) {
		deployment_row_release(&d);
		return;
	}
	if (!d.digest[0]) {
		/* an image: tag: the pulled image's id is the deploy's digest from
		 * now on (stored before anything else: a restart finds it) */
		set_digest(&d, hex, ref);
		if (store_deployment_update(gd->store, &d, &gerr) < 0) {
			log_error("gates", "%s", gerr.msg);
			deployment_row_release(&d);
			return;
		}
		log_info("docker", "deployment=%lld pinned %s to image sha256:%.12s", (long long)id, ref, hex);
	}
	if (source > 0) {
		struct svcenv *se = daemon_svcenv(d.service, d.environment, false);
		int current = se ? se->row.target_revision : 0;
		strlcpy_g(d.state, "started", sizeof(d.state));
		d.started_at = clock_now_s();
		if (store_deployment_update(gd->store, &d, &gerr) < 0)
			log_error("gates", "%s", gerr.msg);
		rep = se ? daemon_copy_revision(se, source, kind, d.requester, why[0] ? why : kind)
			: reply_error(2, "%s@%s has never been deployed", d.service, d.environment);
		gates_rollout_created(id, rep);
		if (json_is_true(json_object_get(rep, "ok")) && !strcmp(kind, "rollback") && current &&
		    store_revision_set_status(gd->store, d.service, d.environment, current, "rolled_back", why,
					      &gerr) < 0)
			log_error("store", "%s", gerr.msg);
	} else {
		pulled_now = id;
		rep = gates_deployment_go(&d);
		pulled_now = 0;
	}
	if (!json_is_true(json_object_get(rep, "ok")))
		log_error("gates", "deployment=%lld cannot go on after its pull: %s", (long long)id,
			  json_string_value(json_object_get(rep, "error")));
	json_decref(rep);
	deployment_row_release(&d);
}

static void fail(struct waiting *w, const char *why)
{
	char msg[900];
	snprintf(msg, sizeof(msg), "%.880s", why);
	for (char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
	end_record(w->deployment, "failed", "failed", msg);
	gates_event(w->service, w->environment, 0, "image_pull", msg);
	gates_emit("deployment_failed", json_pack("{s:s, s:s, s:s, s:I}", "service", w->service, "environment",
					    w->environment, "message", msg, "deployment", (json_int_t)w->deployment));
	log_warn("docker", "deployment=%lld failed: %s", (long long)w->deployment, msg);
	unlink_waiting(w);
}

void pulls_tick(void)
{
	struct waiting *w, *next;
	int64_t now = clock_mono_ms();

	for (w = waiting; w; w = next) {
		struct dockrt_pull_state st;
		struct pull_summary s;
		char line[160], msg[900];
		next = w->next;
		if (!strncmp(w->ref, "sha256:", 7)) {
			/* nothing to pull from, but the image is there (found at a restart) */
			struct gerr gerr;
			int f = dockrt_image_present(w->hex, &gerr);
			if (f > 0)
				go_on(w);
			else if (f == 0)
				fail(w, "the image is not in the Docker Engine and there is no registry to pull it from");
			continue;
		}
		start_pull(w);
		if (!w->h)
			continue;
		dockrt_pull_get(w->h, &st);
		pull_progress_summary(&st.progress, &s);
		pull_summary_format(&s, line, sizeof(line));
		if (st.done) {
			if (st.rc < 0) {
				snprintf(msg, sizeof(msg), "%s: nothing changed", st.error);
				fail(w, msg);
				continue;
			}
			if (!w->hex[0] && !strncmp(st.id, "sha256:", 7) && strlen(st.id + 7) == 64 &&
			    strspn(st.id + 7, "0123456789abcdef") == 64) {
				/* an image: tag: what it named when pulled is what runs */
				strlcpy_g(w->hex, st.id + 7, sizeof(w->hex));
			} else if (strncmp(st.id, "sha256:", 7) || strcmp(st.id + 7, w->hex)) {
				snprintf(msg, sizeof(msg), "pulled %s but its id is %s, not sha256:%s", w->ref, st.id,
					 w->hex);
				fail(w, msg);
				continue;
			}
			snprintf(msg, sizeof(msg), "pulled %s: %s in %lld ms", w->ref, line,
				 (long long)(st.ended_ms - st.started_ms));
			gates_event(w->service, w->environment, 0, "image_pull", msg);
			go_on(w);
			continue;
		}
		if (pull_progress_due(&s, w->last_pct, w->last_bytes, w->last_layers, w->last_ms, now)) {
			w->last_pct = s.percent - s.percent % 10;
			w->last_bytes = s.bytes_done;
			w->last_layers = s.layers_done;
			w->last_ms = now;
			snprintf(msg, sizeof(msg), "pulling %s: %s", w->ref, line);
			gates_event(w->service, w->environment, 0, "image_pull", msg);
		}
	}
}

static json_t *waiting_json(const struct waiting *w)
{
	struct dockrt_pull_state st = { 0 };
	struct pull_summary s;
	char line[160];
	if (w->h)
		dockrt_pull_get(w->h, &st);
	pull_progress_summary(&st.progress, &s);
	pull_summary_format(&s, line, sizeof(line));
	return json_pack("{s:I, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:i, s:I, s:s}", "deployment",
			 (json_int_t)w->deployment, "kind", w->kind, "image", w->ref, "version", w->version,
			 "layers_done", s.layers_done, "layers_total", s.layers_total, "bytes_done",
			 (json_int_t)s.bytes_done, "bytes_total", (json_int_t)s.bytes_total, "percent", s.percent,
			 "elapsed_ms", (json_int_t)(clock_mono_ms() - w->since), "progress", line);
}

json_t *pulls_json(const char *svc, const char *env)
{
	for (struct waiting *w = waiting; w; w = w->next)
		if (!strcmp(w->service, svc) && !strcmp(w->environment, env))
			return waiting_json(w);
	return NULL;
}

void pulls_status_first(json_t *list, const char *svc, const char *env)
{
	for (struct waiting *w = waiting; w; w = w->next) {
		bool listed = false;
		size_t k;
		json_t *o;
		if ((svc && strcmp(svc, w->service)) || (env && strcmp(env, w->environment)))
			continue;
		json_array_foreach(list, k, o)
			if (!strcmp(json_string_value(json_object_get(o, "service")), w->service) &&
			    !strcmp(json_string_value(json_object_get(o, "environment")), w->environment))
				listed = true;
		if (listed)
			continue;
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:n, s:i, s:i, s:i, s:b, s:[], s:[], s:[], "
						      "s:n, s:n, s:o}",
			"service", w->service, "environment", w->environment, "phase", "pulling", "message",
			"pulling its image", "stable_revision", "target_revision", 0, "desired_replicas", 0,
			"ready_replicas", 0, "crash_looping", 0, "traffic", "metrics", "replicas", "rollout", "pending",
			"pull", waiting_json(w)));
	}
}
