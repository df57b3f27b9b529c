/*
 * swarmlease.c — one active controller per cluster environment (see
 * swarmlease.h; the why: docs/internals/fleet.md, "One active controller:
 * the lease").
 *
 * Each lease is a little state machine on the loop fed by one job at a
 * time in libuv's thread pool: the job reads the lease service, decides
 * with what the loop knew when it was queued (the version observed and
 * for how long), and writes with a compare-and-swap on the version; the
 * loop applies the answer. The holder's right to drive ends at a deadline
 * of its own monotonic clock counted from the *send* time of its last
 * successful write, so a renewal that hangs cannot extend it.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/swarmlease.h"
#include "runtime/docker.h"
#include "runtime/swarm.h"
#include "util/clock.h"
#include "util/log.h"
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#define RENEW_MS (SWARMLEASE_TTL_MS / 3)
/* the holder stops driving this long before another may take over */
#define MARGIN_MS (SWARMLEASE_TTL_MS / 5)
/* how often a controller that does not hold it reads the lease again */
#define STANDBY_POLL_MS 1000
/* the lease service runs nothing: 0 replicas; Swarm wants an image name */
#define LEASE_IMAGE "gantry-lease:0"

struct lease {
	struct lease *next;
	char manager[512], env[64], name[128];
	struct docker *d;             /* opened by the first job; one job at a time uses it */
	bool job;                     /* a job in flight */
	bool wanted;                  /* wanted since the last tick's sweep */
	int64_t next_at;              /* mono: the next job */
	/* ours */
	bool held;
	int64_t held_until;           /* mono: no driving from then on unless renewed */
	/* what the lease says (the last read) */
	uint64_t version;
	char holder[160], home[40];
	int64_t expires_ms;           /* wall, the holder's clock: shown, never compared */
	uint64_t obs_version;         /* the version seen unchanged ... */
	int64_t obs_since;            /* ... since then (mono; 0: nothing seen) */
	bool told_standby;
	char error[256];
};

enum job_kind { JOB_TAKE, JOB_RELEASE };

struct job {
	uv_work_t req;
	struct lease *l;
	enum job_kind kind;
	char me[160], my_home[40];
	bool stale_ok;                /* the loop saw obs_version unchanged for a TTL */
	uint64_t obs_version;
	int64_t sent;                 /* mono, before the first request */
	int64_t wall;                 /* for the labels */
	/* the answer */
	int rc;
	bool got;                     /* we hold it after this write */
	const char *why;              /* how we got it (static) */
	bool exists;
	uint64_t version;
	char holder[160], home[40];
	char prev[160];               /* the holder before this write */
	int64_t expires_ms;
	struct gerr err;
};

static struct lease *leases;
static int jobs;
static char me[160], my_home[40];

static void ident(void)
{
	char host[256] = "", real[PATH_MAX], tag[64];
	uint64_t h = 1469598103934665603ULL;
	const char *parts[3];

	if (me[0])
		return;
	if (gethostname(host, sizeof(host) - 1) < 0)
		strlcpy_g(host, "?", sizeof(host));
	/* the controller: this process (host, pid, start) */
	snprintf(me, sizeof(me), "%.64s:%d:%" PRId64, host, (int)getpid(), clock_now_ms());
	/* the home: its instance id, where it is and on which host; the same
	 * on this host only for the same HOME, which serve.lock keeps to one
	 * live process at a time */
	strlcpy_g(tag, gd->tag, sizeof(tag));
	parts[0] = tag;
	parts[1] = realpath(gd->home, real) ? real : gd->home;
	parts[2] = host;
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		for (const unsigned char *p = (const unsigned char *)parts[i];; p++) {
			h = (h ^ *p) * 1099511628211ULL; /* FNV-1a, the NUL too */
			if (!*p)
				break;
		}
	snprintf(my_home, sizeof(my_home), "%016" PRIx64, h);
}

static struct lease *lease_of(const char *manager, const char *env, bool create)
{
	struct lease *l;
	for (l = leases; l; l = l->next)
		if (!strcmp(l->manager, manager) && !strcmp(l->env, env))
			return l;
	if (!create)
		return NULL;
	ident();
	l = xcalloc(1, sizeof(*l));
	strlcpy_g(l->manager, manager, sizeof(l->manager));
	strlcpy_g(l->env, env, sizeof(l->env));
	snprintf(l->name, sizeof(l->name), "gantry-lease-%s", env);
	l->next = leases;
	leases = l;
	return l;
}

/* an event for each service of the lease's environment (what `gantry events` shows) */
static void lease_event(struct lease *l, const char *kind, const char *msg)
{
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		if (!strcmp(se->row.environment, l->env))
			daemon_event(se, se->row.target_revision, kind, "%s", msg);
}

static const char *label_of(const struct swarm_service *s, const char *key)
{
	for (size_t i = 0; i < s->nlabels; i++)
		if (!strcmp(s->labels[i].key, key))
			return s->labels[i].value;
	return "";
}

/* ---- the job (thread pool) ---- */

static void job_work(uv_work_t *req)
{
	struct job *j = req->data;
	struct lease *l = j->l;
	struct swarm_service s;
	char exp[24], ren[24], ttl[24];
	bool mine, take;
	int k;
	struct kv lab[6] = {
		{ (char *)"gantry.lease", (char *)"1" },
		{ (char *)"gantry.lease.holder", j->me },
		{ (char *)"gantry.lease.home", j->my_home },
		{ (char *)"gantry.lease.expires", exp },
		{ (char *)"gantry.lease.renewed", ren },
		{ (char *)"gantry.lease.ttl_ms", ttl },
	};

	j->rc = -1;
	snprintf(exp, sizeof(exp), "%" PRId64, j->kind == JOB_RELEASE ? (int64_t)0 : j->wall + SWARMLEASE_TTL_MS);
	snprintf(ren, sizeof(ren), "%" PRId64, j->wall);
	snprintf(ttl, sizeof(ttl), "%d", SWARMLEASE_TTL_MS);
	if (j->kind == JOB_RELEASE) {
		lab[1].value = (char *)"";
		lab[2].value = (char *)"";
	}
	if (!l->d && !(l->d = docker_open(l->manager, &j->err)))
		return;
	k = swarm_service_inspect(l->d, l->name, &s, &j->err);
	if (k < 0)
		return;
	if (k == 0) {
		struct swarm_service_spec sp = { .name = l->name, .image = LEASE_IMAGE, .labels = lab,
						 .nlabels = ARRAY_SIZE(lab), .replicas = 0 };
		char id[64];
		j->rc = 0;
		if (j->kind == JOB_RELEASE)
			return;
		if (swarm_service_create(l->d, &sp, id, sizeof(id), &j->err) < 0) {
			/* another controller created it first: read it next time */
			if (strstr(j->err.msg, "already exists") || strstr(j->err.msg, "AlreadyExists"))
				return;
			j->rc = -1;
			return;
		}
		j->got = j->exists = true;
		j->why = "created";
		strlcpy_g(j->holder, j->me, sizeof(j->holder));
		strlcpy_g(j->home, j->my_home, sizeof(j->home));
		j->expires_ms = j->wall + SWARMLEASE_TTL_MS;
		return;
	}
	j->exists = true;
	j->version = s.version;
	strlcpy_g(j->holder, label_of(&s, "gantry.lease.holder"), sizeof(j->holder));
	strlcpy_g(j->home, label_of(&s, "gantry.lease.home"), sizeof(j->home));
	j->expires_ms = strtoll(label_of(&s, "gantry.lease.expires"), NULL, 10);
	mine = j->holder[0] && !strcmp(j->holder, j->me);
	strlcpy_g(j->prev, j->holder, sizeof(j->prev));
	if (j->kind == JOB_RELEASE)
		take = mine;
	else if (mine)
		take = true, j->why = "renewed";
	else if (!j->holder[0])
		take = true, j->why = "released by its last holder: taken at once";
	else if (!strcmp(j->home, j->my_home))
		take = true, j->why = "held by this home's previous process: taken back at once";
	else if (j->stale_ok && s.version == j->obs_version)
		take = true, j->why = "not renewed for a whole TTL: taken over";
	else
		take = false;
	j->rc = 0;
	if (take) {
		k = swarm_service_set_labels(l->d, s.id, s.version, lab, ARRAY_SIZE(lab), &j->err);
		if (k < 0)
			j->rc = -1;
		else if (k == 0 && j->kind == JOB_TAKE) {
			j->got = true;
			strlcpy_g(j->holder, j->me, sizeof(j->holder));
			strlcpy_g(j->home, j->my_home, sizeof(j->home));
			j->expires_ms = j->wall + SWARMLEASE_TTL_MS;
		}
	}
	swarm_service_release(&s);
}

static void job_done(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct lease *l = j->l;
	int64_t now = clock_mono_ms();
	char msg[2048], when[40];
	(void)status;

	jobs--;
	l->job = false;
	if (j->kind == JOB_RELEASE)
		goto out;
	if (j->rc < 0) {
		if (strcmp(l->error, j->err.msg))
			log_warn("lease", "environment=%s lease=%s on %s: %s", l->env, l->name, l->manager, j->err.msg);
		strlcpy_g(l->error, j->err.msg, sizeof(l->error));
		l->next_at = now + STANDBY_POLL_MS;
		goto out;
	}
	l->error[0] = 0;
	l->version = j->version;
	strlcpy_g(l->holder, j->holder, sizeof(l->holder));
	strlcpy_g(l->home, j->home, sizeof(l->home));
	l->expires_ms = j->expires_ms;
	if (j->got) {
		bool was = l->held && now < l->held_until;
		l->held = true;
		l->held_until = j->sent + SWARMLEASE_TTL_MS - MARGIN_MS;
		l->next_at = j->sent + RENEW_MS;
		l->obs_since = 0;
		if (!was) {
			snprintf(msg, sizeof(msg), "this controller (%s) holds the lease %s on %s (%s, from %s): it drives %s",
				 me, l->name, l->manager, j->why ? j->why : "?", j->prev[0] ? j->prev : "nobody", l->env);
			log_info("lease", "environment=%s %s", l->env, msg);
			lease_event(l, "lease_acquired", msg);
			l->told_standby = false;
			/* the peers get the current table (held back while we did not drive) */
			gd->routes_dirty = true;
			daemon_kick();
		}
		goto out;
	}
	/* another holds it */
	if (l->held) {
		l->held = false;
		snprintf(msg, sizeof(msg), "lease %s on %s taken by %s: this controller stopped driving %s", l->name,
			 l->manager, l->holder[0] ? l->holder : "?", l->env);
		log_warn("lease", "environment=%s %s", l->env, msg);
		lease_event(l, "lease_lost", msg);
	}
	if (!l->obs_since || j->version != l->obs_version) {
		l->obs_version = j->version;
		l->obs_since = now;
	}
	if (!l->told_standby && j->exists) {
		time_t t = (time_t)(l->expires_ms / 1000);
		format_rfc3339((int64_t)t, when, sizeof(when));
		snprintf(msg, sizeof(msg),
			 "cluster held by %s until %s (lease %s on %s): this controller does not drive %s; it takes "
			 "over if the lease is not renewed for %d s",
			 l->holder, when, l->name, l->manager, l->env, SWARMLEASE_TTL_MS / 1000);
		log_warn("lease", "environment=%s %s", l->env, msg);
		lease_event(l, "lease_held_elsewhere", msg);
		l->told_standby = true;
	}
	l->next_at = now + STANDBY_POLL_MS;
out:
	free(j);
}

static void job_queue(struct lease *l, enum job_kind kind, int64_t now)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->req.data = j;
	j->l = l;
	j->kind = kind;
	strlcpy_g(j->me, me, sizeof(j->me));
	strlcpy_g(j->my_home, my_home, sizeof(j->my_home));
	j->obs_version = l->obs_version;
	j->stale_ok = l->obs_since && now - l->obs_since >= SWARMLEASE_TTL_MS;
	j->sent = now;
	j->wall = clock_now_ms();
	l->job = true;
	jobs++;
	if (uv_queue_work(gd->loop, &j->req, job_work, job_done) < 0) {
		l->job = false;
		jobs--;
		free(j);
	}
}

/* ---- the loop ---- */

void swarmlease_want(const char *manager, const char *env)
{
	if (manager && *manager && env && *env)
		lease_of(manager, env, true)->wanted = true;
}

void swarmlease_tick(int64_t now)
{
	char msg[2048];
	for (struct lease *l = leases; l; l = l->next) {
		if (l->held && now >= l->held_until) {
			l->held = false;
			snprintf(msg, sizeof(msg),
				 "lease %s on %s not renewed in time (%s): this controller stopped driving %s", l->name,
				 l->manager, l->error[0] ? l->error : "no answer", l->env);
			log_error("lease", "environment=%s %s", l->env, msg);
			lease_event(l, "lease_lost", msg);
		}
		/* a lease wanted once is kept: replicas come and go, the environment
		 * stays ours. While serve stops, the holder renews (it stops and
		 * removes its services, which may take longer than a TTL) and a
		 * standby no longer tries to take it */
		if (!l->job && now >= l->next_at && (!gd->shutting_down || l->held))
			job_queue(l, JOB_TAKE, now);
	}
}

bool swarmlease_held(const char *manager, const char *env)
{
	struct lease *l = manager && env ? lease_of(manager, env, false) : NULL;
	return l && l->held && clock_mono_ms() < l->held_until;
}

bool swarmlease_all_held(void)
{
	for (struct lease *l = leases; l; l = l->next)
		if (!swarmlease_held(l->manager, l->env))
			return false;
	return true;
}

bool swarmlease_busy(void)
{
	return jobs > 0;
}

json_t *swarmlease_status_json(void)
{
	json_t *a = json_array();
	for (struct lease *l = leases; l; l = l->next) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:I, s:i}", "environment", l->env, "manager",
				      l->manager, "name", l->name, "held", swarmlease_held(l->manager, l->env), "holder",
				      l->holder, "expires_ms", (json_int_t)l->expires_ms, "ttl_ms", SWARMLEASE_TTL_MS);
		if (o && l->error[0])
			json_object_set_new(o, "error", json_string(l->error));
		if (o)
			json_array_append_new(a, o);
	}
	return a;
}

void swarmlease_free(void)
{
	struct lease *l, *next;
	for (l = leases; l; l = next) {
		next = l->next;
		/* released (blocking: the loop is over) so that the next controller takes it at once */
		if (l->held && clock_mono_ms() < l->held_until && !l->job) {
			struct job j = { .l = l, .kind = JOB_RELEASE };
			j.req.data = &j;
			strlcpy_g(j.me, me, sizeof(j.me));
			j.wall = clock_now_ms();
			job_work(&j.req);
			if (j.rc < 0)
				log_warn("lease", "environment=%s lease=%s not released: %s", l->env, l->name, j.err.msg);
			else
				log_info("lease", "environment=%s lease=%s released", l->env, l->name);
		}
		if (l->d)
			docker_close(l->d);
		free(l);
	}
	leases = NULL;
}
