/*
 * migrations.c — the controller's side of database migrations
 * (migrations.h). A job is everything one thread does against one
 * database: load the revision's files, open, lock, run, report. Its result
 * comes back to the loop through a done-list (as the checks' do), taken by
 * mig_flow_tick from gates_tick.
 */
#include "common.h"
#include "daemon/migrations.h"
#include "daemon/daemon.h"
#include "daemon/gates_flow.h"
#include "daemon/maintenance.h"
#include "daemon/pulls.h"
#include "daemon/reply.h"
#include "daemon/secrets.h"
#include "migrate/migrate.h"
#include "secrets/age.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

enum job_kind { JOB_DEPLOY, JOB_RESUME, JOB_STATUS, JOB_HISTORY, JOB_UP, JOB_DOWN, JOB_ROLLBACK, JOB_CONTRACT, JOB_RESTORE };

struct mjob {
	enum job_kind kind;
	int64_t id;        /* the deployment (JOB_DEPLOY, JOB_RESUME) or the CLI job */
	char svc[64], env[64];
	char *url, *dir, *by, *snapshot_path;
	int64_t lock_timeout_ms, to;
	int revision;
	int to_revision;   /* JOB_ROLLBACK: the revision rolled back to */
	bool automatic;    /* JOB_ROLLBACK: the controller's own rollback (gates_auto_rollback after) */
	bool check_only;   /* JOB_DEPLOY, migrations.mode maintenance: only whether ups are pending */
	bool pending;      /* check_only's answer */
	char why[128];
	/* results */
	bool ok;
	char err[1024];
	struct hbuf out;   /* one line per file run */
	json_t *result;    /* CLI jobs: the reply */
	json_t *revs;      /* JOB_STATUS: [{revision, status, dir}] whose files to read */
	int64_t version_after;
	bool dirty_after;
	int ran;
	int64_t done_at;   /* mono ms */
	struct mjob *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mjob *done_jobs;  /* finished, not yet taken by the loop */
static struct mjob *cli_jobs;   /* the loop's: CLI jobs, running or kept for polling */
static int64_t next_cli_id = 1;

const char *mig_flow_url(const struct svc_config *cfg, struct gerr *err)
{
	const char *name = cfg->migrations.database_env ? cfg->migrations.database_env : "DATABASE_URL";
	for (size_t i = 0; i < cfg->nenv; i++)
		if (!strcmp(cfg->env[i].key, name) && cfg->env[i].value[0])
			return cfg->env[i].value;
	gerr_set(err, "migrations: the service's env has no %s (migrations.database_env)", name);
	return NULL;
}

static void report_line(void *arg, const char *line)
{
	struct mjob *j = arg;
	hbuf_printf(&j->out, "%s\n", line);
	log_info("migrate", "service=%s environment=%s %s", j->svc, j->env, line);
}

static json_t *state_json(struct mig_db *db, const struct mig_set *set, struct gerr *err)
{
	struct mig_state st;
	json_t *o, *pending = json_array(), *applied = json_array();
	struct gerr verr;
	if (mig_state_read(db, &st, err) < 0) {
		json_decref(pending);
		json_decref(applied);
		return NULL;
	}
	for (size_t i = 0; set && i < set->n; i++)
		if (set->v[i].version > st.version)
			json_array_append_new(pending, json_pack("{s:I, s:s, s:b}", "version", (json_int_t)set->v[i].version,
								 "name", set->v[i].up_name, "contract",
								 (set->v[i].up_marks & MIG_MARK_CONTRACT) != 0));
	for (size_t i = 0; i < st.n_applied; i++)
		json_array_append_new(applied, json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:i}", "version",
							 (json_int_t)st.applied[i].version, "name", st.applied[i].name,
							 "checksum", st.applied[i].sum, "contract", st.applied[i].contract,
							 "applied_at", st.applied[i].applied_at, "applied_by",
							 st.applied[i].applied_by, "revision", st.applied[i].revision));
	o = json_pack("{s:b, s:s, s:o, s:b, s:o, s:o}", "ok", 1, "driver", mig_driver_name(db), "version",
		      st.version == MIG_NIL_VERSION ? json_null() : json_integer(st.version), "dirty", st.dirty,
		      "pending", pending, "applied", applied);
	if (set) {
		json_object_set_new(o, "files_latest", set->n ? json_integer(mig_set_latest(set)) : json_null());
		if (mig_verify(set, &st, &verr) < 0)
			json_object_set_new(o, "checksum_error", json_string(verr.msg));
	}
	mig_state_release(&st);
	return o;
}

static void *job_main(void *arg)
{
	struct mjob *j = arg, **tail;
	struct mig_set set = { 0 };
	struct mig_db *db = NULL;
	struct mig_state st = { .version = MIG_NIL_VERSION };
	struct mig_who who = { j->by, j->revision };
	struct gerr err = { "" };
	bool have_set = false;

	if (j->dir) {
		if (mig_set_load(j->dir, &set, &err) < 0)
			goto out;
		have_set = true;
	}
	if (mig_open(j->url, &db, &err) < 0)
		goto out;
	switch (j->kind) {
	case JOB_DEPLOY: {
		int64_t to;
		/* the lock first: the version read, the snapshot and the run are one critical section
		 * (the maintenance flow's first look only reads: its run takes the lock and reads again) */
		if (!j->check_only && mig_lock(db, (int)j->lock_timeout_ms, &err) < 0)
			goto out;
		if (mig_state_read(db, &st, &err) < 0)
			goto out;
		/* refusals before the snapshot (mig_up checks them again under the same lock) */
		if (st.dirty) {
			gerr_set(&err, "database is dirty at version %" PRId64 ": fix the schema by hand, then set "
				 "schema_migrations.dirty to false", st.version);
			goto out;
		}
		if (mig_verify(&set, &st, &err) < 0)
			goto out;
		to = mig_set_expand_target(&set, st.version);
		if (j->check_only && to > st.version) {
			j->pending = true; /* the maintenance flow runs them once the old replicas are gone */
			break;
		}
		if (to > st.version && j->snapshot_path) {
			if (mig_snapshot(db, j->url, j->snapshot_path, &err) < 0)
				goto out;
			hbuf_printf(&j->out, "snapshot %s\n", j->snapshot_path);
		}
		if (mig_up(db, &set, to, &who, (int)j->lock_timeout_ms, report_line, j, &j->ran, &err) < 0)
			goto out;
		break;
	}
	case JOB_RESUME:
		/* waiting for the lock is waiting for the dead controller's session to end */
		if (mig_lock(db, (int)j->lock_timeout_ms, &err) < 0)
			goto out;
		mig_unlock(db);
		break;
	case JOB_STATUS: {
		json_t *needs = json_array(), *r;
		size_t i;
		j->result = state_json(db, have_set ? &set : NULL, &err);
		if (!j->result) {
			json_decref(needs);
			goto out;
		}
		/* which revision needs which version: the highest of its artifact's files */
		json_array_foreach(j->revs, i, r) {
			struct mig_set rs;
			struct gerr e2;
			const char *d = json_string_value(json_object_get(r, "dir"));
			json_t *o = json_pack("{s:O, s:O}", "revision", json_object_get(r, "revision"), "status",
					      json_object_get(r, "status"));
			if (d && mig_set_load(d, &rs, &e2) == 0)
				json_object_set_new(o, "needs", rs.n ? json_integer(mig_set_latest(&rs)) : json_null());
			else
				json_object_set_new(o, "needs", json_null());
			mig_set_release(&rs);
			json_array_append_new(needs, o);
		}
		json_object_set_new(j->result, "revisions", needs);
		break;
	}
	case JOB_HISTORY: {
		struct mig_log_row *rows;
		size_t n;
		json_t *a;
		if (mig_history(db, 200, &rows, &n, &err) < 0)
			goto out;
		a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:s, s:i, s:s, s:s}", "id",
							   (json_int_t)rows[i].id, "at", rows[i].at, "direction",
							   rows[i].direction, "version", (json_int_t)rows[i].version,
							   "name", rows[i].name, "checksum", rows[i].sum, "by", rows[i].by,
							   "revision", rows[i].revision, "result", rows[i].result,
							   "output", rows[i].output));
		mig_history_release(rows, n);
		j->result = json_pack("{s:b, s:o}", "ok", 1, "history", a);
		break;
	}
	case JOB_UP:
		if (mig_up(db, &set, j->to, &who, (int)j->lock_timeout_ms, report_line, j, &j->ran, &err) < 0)
			goto out;
		break;
	case JOB_RESTORE:
		if (mig_lock(db, (int)j->lock_timeout_ms, &err) < 0 ||
		    mig_restore(db, j->url, j->snapshot_path, &err) < 0)
			goto out;
		hbuf_printf(&j->out, "restored %s\n", j->snapshot_path);
		break;
	case JOB_CONTRACT: {
		bool any = false;
		if (mig_lock(db, (int)j->lock_timeout_ms, &err) < 0)
			goto out;
		if (mig_state_read(db, &st, &err) < 0)
			goto out;
		for (size_t i = 0; i < set.n; i++)
			if (set.v[i].version > st.version && (set.v[i].up_marks & MIG_MARK_CONTRACT))
				any = true;
		if (any && mig_up(db, &set, INT64_MAX, &who, (int)j->lock_timeout_ms, report_line, j, &j->ran,
				  &err) < 0)
			goto out;
		break;
	}
	case JOB_ROLLBACK:
		if (j->snapshot_path) { /* --schema=restore: the snapshot taken before revision j->revision's ups */
			if (mig_lock(db, (int)j->lock_timeout_ms, &err) < 0 ||
			    mig_restore(db, j->url, j->snapshot_path, &err) < 0)
				goto out;
			hbuf_printf(&j->out, "restored %s\n", j->snapshot_path);
			break;
		}
		if (mig_down(db, &set, j->to, &who, (int)j->lock_timeout_ms, report_line, j, &j->ran, &err) < 0)
			goto out;
		break;
	case JOB_DOWN:
		if (j->to == -2) { /* one step: the version below the database's */
			ssize_t at;
			if (mig_state_read(db, &st, &err) < 0)
				goto out;
			at = mig_set_find(&set, st.version);
			j->to = at > 0 ? set.v[at - 1].version : MIG_NIL_VERSION;
			if (st.version == MIG_NIL_VERSION)
				j->to = MIG_NIL_VERSION;
			else if (at < 0) {
				gerr_set(&err, "version %" PRId64 " is applied but has no file in the revision's migrations",
					 st.version);
				goto out;
			}
		}
		if (mig_down(db, &set, j->to, &who, (int)j->lock_timeout_ms, report_line, j, &j->ran, &err) < 0)
			goto out;
		break;
	}
	j->ok = true;
out:
	if (!j->ok)
		strlcpy_g(j->err, err.msg[0] ? err.msg : "migration failed", sizeof(j->err));
	if (db) {
		struct gerr e2;
		mig_state_release(&st);
		if (mig_state_read(db, &st, &e2) == 0) {
			j->version_after = st.version;
			j->dirty_after = st.dirty;
		} else
			j->version_after = INT64_MIN;
	} else
		j->version_after = INT64_MIN;
	mig_state_release(&st);
	mig_close(db);
	if (have_set)
		mig_set_release(&set);
	pthread_mutex_lock(&lock);
	for (tail = &done_jobs; *tail; tail = &(*tail)->next)
		;
	*tail = j;
	pthread_mutex_unlock(&lock);
	return NULL;
}

static int job_start(struct mjob *j)
{
	pthread_t t;
	pthread_attr_t attr;
	int r;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, job_main, j);
	pthread_attr_destroy(&attr);
	return r ? -1 : 0;
}

static void job_free(struct mjob *j)
{
	free(j->url);
	free(j->dir);
	free(j->by);
	free(j->snapshot_path);
	hbuf_release(&j->out);
	json_decref(j->result);
	json_decref(j->revs);
	free(j);
}

static struct mjob *job_new(enum job_kind kind, const char *svc, const char *env, const char *url,
			    const char *dir, const char *by)
{
	struct mjob *j = xcalloc(1, sizeof(*j));
	j->kind = kind;
	strlcpy_g(j->svc, svc, sizeof(j->svc));
	strlcpy_g(j->env, env, sizeof(j->env));
	j->url = xstrdup(url);
	j->dir = dir ? xstrdup(dir) : NULL;
	j->by = xstrdup(by ? by : "gantry");
	hbuf_init(&j->out, 16384);
	return j;
}

/* the revision a deploy of svc@env is about to create (rollouts.c numbers them so) */
static int next_revision(const char *svc, const char *env)
{
	struct svcenv *se = daemon_svcenv(svc, env, false);
	struct revision_row *list;
	size_t n;
	int max = 0;
	struct gerr err;
	if (!se || store_revision_list(gd->store, svc, env, &list, &n, &err) < 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		max = MAX(max, list[i].number);
		revision_row_release(&list[i]);
	}
	free(list);
	return max + 1;
}

static void flow_begin(struct deployment_row *d);
static int flow_allow_fill(const struct svc_config *cfg, const char *env, struct maintenance *m, struct gerr *err);
static int64_t flow_busy(const char *svc, const char *env, int64_t self, char *phase, size_t len);
static void flow_migrated(struct deployment_row *d, const struct mjob *j);
static void flow_failed(const char *svc, const char *env, int64_t id, const char *why);
static void job_done_now(struct mjob *j, const char *why);

/* the deploy job of d (check_only: the maintenance flow's first look); NULL when d has no migrations */
static struct mjob *deploy_job(const struct deployment_row *d, bool check_only, const char **url_out,
			       bool *maint, struct gerr *err)
{
	struct svc_config cfg;
	json_t *cj;
	const char *url;
	struct mjob *j;

	*url_out = NULL;
	if (!d->config || !*d->config)
		return NULL;
	cj = json_loads(d->config, 0, NULL);
	if (!cj || svc_config_from_json(cj, &cfg, err) < 0) {
		json_decref(cj);
		return NULL; /* the rollout's own config check reports it */
	}
	json_decref(cj);
	if (!cfg.migrations.dir) {
		svc_config_release(&cfg);
		return NULL;
	}
	*maint = cfg.migrations.mode && !strcmp(cfg.migrations.mode, "maintenance");
	url = mig_flow_url(&cfg, err);
	j = job_new(JOB_DEPLOY, d->service, d->environment, url ? url : "", NULL, d->requester);
	j->id = d->id;
	j->check_only = check_only;
	j->dir = xasprintf("%s/artifacts/%s/%s", gd->home, d->digest, cfg.migrations.dir);
	j->lock_timeout_ms = cfg.migrations.lock_timeout_ms;
	j->revision = next_revision(d->service, d->environment);
	if (cfg.migrations.snapshot && !check_only) {
		char *sd = xasprintf("%s/snapshots", gd->home);
		mkdir(sd, 0700);
		j->snapshot_path = mig_flow_snapshot_path(d->service, d->environment, j->revision, url ? url : "");
		free(sd);
	}
	if (cfg.migrations.mode && strcmp(cfg.migrations.mode, "online") && !*maint) {
		url = NULL;
		gerr_set(err, "migrations.mode: unknown '%s' (online, maintenance)", cfg.migrations.mode);
	}
	/* the bypass secrets must exist before anything is turned on */
	if (url && *maint && flow_allow_fill(&cfg, d->environment, NULL, err) < 0)
		url = NULL;
	svc_config_release(&cfg);
	*url_out = url;
	return j;
}

json_t *mig_flow_deploy(struct deployment_row *d)
{
	struct gerr err;
	const char *url;
	bool maint = false;
	struct mjob *j = deploy_job(d, false, &url, &maint, &err);
	struct svcenv *se = daemon_svcenv(d->service, d->environment, false);

	if (!j)
		return NULL;
	/* migrations.mode maintenance: first whether anything is pending (flow_begin if so);
	 * a first deploy has nothing serving to protect: it migrates as online */
	if (maint && se && se->row.target_revision > 0) {
		j->check_only = true;
		free(j->snapshot_path);
		j->snapshot_path = NULL;
	}
	strlcpy_g(d->state, "migrating", sizeof(d->state));
	if (store_deployment_update(gd->store, d, &err) < 0) {
		job_free(j);
		return reply_error(1, "%s", err.msg);
	}
	if (!url) {
		/* fails at once, through the same path as a failed migration */
		job_done_now(j, err.msg);
	} else if (job_start(j) < 0) {
		job_free(j);
		return reply_error(1, "cannot start the migrations' thread");
	}
	gates_event(d->service, d->environment, 0, "migrating", j->check_only ?
		    "migrations.mode maintenance: looking for pending up-migrations" :
		    "running pending up-migrations before the revision starts");
	return json_pack("{s:b, s:I, s:s, s:s}", "ok", 1, "deployment", (json_int_t)d->id, "state", "migrating",
			 "version", d->version);
}

static void job_done_now(struct mjob *j, const char *why)
{
	j->ok = false;
	strlcpy_g(j->err, why, sizeof(j->err));
	j->version_after = INT64_MIN;
	pthread_mutex_lock(&lock);
	j->next = done_jobs;
	done_jobs = j;
	pthread_mutex_unlock(&lock);
}

void mig_flow_resume(const struct deployment_row *d)
{
	struct svc_config cfg;
	struct gerr err;
	json_t *cj = json_loads(d->config ? d->config : "", 0, NULL);
	const char *url = NULL;
	struct mjob *j;

	if (cj && svc_config_from_json(cj, &cfg, &err) == 0) {
		url = mig_flow_url(&cfg, &err);
		j = job_new(JOB_RESUME, d->service, d->environment, url ? url : "", NULL, "gantry");
		j->lock_timeout_ms = cfg.migrations.lock_timeout_ms > 0 ? cfg.migrations.lock_timeout_ms : 60000;
		svc_config_release(&cfg);
	} else
		j = job_new(JOB_RESUME, d->service, d->environment, "", NULL, "gantry");
	json_decref(cj);
	j->id = d->id;
	log_info("migrate", "deployment=%lld was migrating when the controller stopped: checking the database",
		 (long long)d->id);
	if (!url || job_start(j) < 0) {
		j->ok = false;
		strlcpy_g(j->err, url ? "cannot start a thread" : err.msg, sizeof(j->err));
		j->version_after = INT64_MIN;
		pthread_mutex_lock(&lock);
		j->next = done_jobs;
		done_jobs = j;
		pthread_mutex_unlock(&lock);
	}
}

static void version_text(const struct mjob *j, char *buf, size_t len)
{
	if (j->version_after == INT64_MIN)
		snprintf(buf, len, "the database's version could not be read");
	else if (j->version_after == MIG_NIL_VERSION)
		snprintf(buf, len, "the database has no migration applied");
	else
		snprintf(buf, len, "the database is at version %" PRId64 "%s", j->version_after,
			 j->dirty_after ? ", DIRTY" : "");
}

static void deploy_done(struct mjob *j)
{
	struct deployment_row d;
	struct gerr err;
	char msg[1400], ver[128];
	json_t *rep;

	if (store_deployment_get(gd->store, j->id, &d, &err) != 1)
		return;
	if (strcmp(d.state, "migrating")) {
		deployment_row_release(&d);
		return;
	}
	if (j->kind == JOB_DEPLOY && j->ok && j->check_only) {
		/* one flow per service environment: a second one would scale the old revision down while
		 * the first gives it its replicas back (or stops what the first is starting) */
		char ph[32];
		int64_t other = flow_busy(d.service, d.environment, d.id, ph, sizeof(ph));
		if (other) {
			j->ok = false;
			snprintf(j->err, sizeof(j->err), "deployment %lld's maintenance flow is still running (%s): "
				 "deploy again once it has ended (gantry deployments)", (long long)other, ph);
		}
	}
	version_text(j, ver, sizeof(ver));
	if (j->kind == JOB_DEPLOY && j->ok && j->check_only && j->pending) {
		flow_begin(&d); /* maintenance on, old replicas stopped, then the migration */
		deployment_row_release(&d);
		return;
	}
	if (j->kind == JOB_DEPLOY && j->ok) {
		flow_migrated(&d, j);
		if (j->ran) {
			snprintf(msg, sizeof(msg), "%d migration%s applied, %s:\n%.*s", j->ran, j->ran == 1 ? "" : "s", ver,
				 (int)MIN(j->out.len, 1000), j->out.data ? j->out.data : "");
			msg[sizeof(msg) - 1] = 0;
			gates_event(d.service, d.environment, 0, "migrated", msg);
		}
		strlcpy_g(d.state, "started", sizeof(d.state));
		d.started_at = clock_now_s();
		if (store_deployment_update(gd->store, &d, &err) < 0)
			log_error("gates", "%s", err.msg);
		rep = daemon_deploy_start(&d);
		if (!json_is_true(json_object_get(rep, "ok")))
			log_error("migrate", "deployment=%lld cannot start after its migrations: %s", (long long)d.id,
				  json_string_value(json_object_get(rep, "error")));
		json_decref(rep);
		deployment_row_release(&d);
		return;
	}
	if (j->kind == JOB_DEPLOY)
		snprintf(msg, sizeof(msg), "migration failed: %.700s; %s; no revision started, no traffic moved", j->err, ver);
	else
		snprintf(msg, sizeof(msg), "migration interrupted: the controller stopped while this deployment was migrating; %s%s%.500s%s; "
			 "its transaction was rolled back and nothing is run again: deploy again", ver,
			 j->ok ? "" : " (", j->ok ? "" : j->err, j->ok ? "" : ")");
	strlcpy_g(d.state, "failed", sizeof(d.state));
	strlcpy_g(d.result, "failed", sizeof(d.result));
	strlcpy_g(d.result_reason, msg, sizeof(d.result_reason));
	d.ended_at = clock_now_s();
	if (store_deployment_update(gd->store, &d, &err) < 0)
		log_error("gates", "%s", err.msg);
	log_error("migrate", "deployment=%lld %s", (long long)d.id, msg);
	gates_event(d.service, d.environment, 0, j->kind == JOB_DEPLOY ? "migration_failed" : "migration_interrupted", msg);
	gates_emit("migration_failed", json_pack("{s:s, s:s, s:s, s:I}", "service", d.service, "environment",
						 d.environment, "message", msg, "deployment", (json_int_t)d.id));
	flow_failed(d.service, d.environment, d.id, msg); /* mode maintenance: the old revision back, then off */
	deployment_row_release(&d);
}

/* the set of revision n's files (0 none, 1 loaded, -1 err) */
static int rev_set(struct svcenv *se, int n, struct mig_set *set, struct revcfg **out, struct gerr *err)
{
	struct revcfg *rc = daemon_revcfg(se, n, err);
	char *dir;
	int r;
	memset(set, 0, sizeof(*set));
	if (!rc)
		return -1;
	*out = rc;
	if (!rc->cfg.migrations.dir || !rc->dir)
		return 0;
	dir = xasprintf("%s/%s", rc->dir, rc->cfg.migrations.dir);
	r = mig_set_load(dir, set, err);
	free(dir);
	return r < 0 ? -1 : 1;
}

int mig_flow_rollback_plan(struct svcenv *se, int cur, int to, int64_t *down_to, char *note, size_t len,
			   struct gerr *err)
{
	struct mig_set sc, st;
	struct revcfg *rcc, *rct;
	int hc, ht, ret = 0;
	int64_t need_cur, need_to;

	note[0] = 0;
	hc = rev_set(se, cur, &sc, &rcc, err);
	if (hc <= 0) {
		mig_set_release(&sc);
		return hc < 0 ? -1 : 0;
	}
	ht = rev_set(se, to, &st, &rct, err);
	if (ht < 0) {
		mig_set_release(&sc);
		return -1;
	}
	need_cur = mig_set_latest(&sc);
	need_to = ht ? mig_set_latest(&st) : MIG_NIL_VERSION;
	if (need_to >= need_cur)
		goto out;
	*down_to = need_to;
	snprintf(note, len, "revision %d needs the schema at version %s%lld, revision %d's files go up to %lld",
		 to, need_to == MIG_NIL_VERSION ? "none, not " : "", (long long)need_to, cur, (long long)need_cur);
	if (mig_down_check(&sc, need_cur, need_to, err) < 0) {
		char m[sizeof(err->msg)];
		strlcpy_g(m, err->msg, sizeof(m));
		gerr_set(err, "rollback to revision %d needs down-migrations that cannot run: %s (%s); "
			 "roll back with --schema=keep to run revision %d on the newer schema", to, m, note, to);
		ret = -1;
		goto out;
	}
	ret = 1;
out:
	mig_set_release(&sc);
	mig_set_release(&st);
	return ret;
}

static json_t *rollback_job(int64_t ticket, struct svcenv *se, int cur, int to, int64_t down_to, const char *by,
			    const char *why, bool automatic, const char *snapshot)
{
	struct revcfg *rc;
	struct gerr err;
	struct deployment_row d;
	const char *url;
	struct mjob *j;

	rc = daemon_revcfg(se, cur, &err);
	if (!rc)
		return reply_error(1, "%s", err.msg);
	if (!(url = mig_flow_url(&rc->cfg, &err)))
		return reply_error(2, "%s", err.msg);
	j = job_new(JOB_ROLLBACK, se->row.service, se->row.environment, url, NULL, by);
	j->dir = xasprintf("%s/%s", rc->dir, rc->cfg.migrations.dir);
	j->lock_timeout_ms = rc->cfg.migrations.lock_timeout_ms;
	j->revision = cur;
	j->to_revision = to;
	j->to = down_to;
	j->id = ticket;
	j->automatic = automatic;
	j->snapshot_path = snapshot ? xstrdup(snapshot) : NULL;
	strlcpy_g(j->why, why, sizeof(j->why));
	if (ticket > 0 && store_deployment_get(gd->store, ticket, &d, &err) == 1) {
		strlcpy_g(d.state, "migrating", sizeof(d.state));
		if (store_deployment_update(gd->store, &d, &err) < 0)
			log_error("gates", "%s", err.msg);
		deployment_row_release(&d);
	}
	if (job_start(j) < 0) {
		job_free(j);
		return reply_error(1, "cannot start the migrations' thread");
	}
	gates_event(se->row.service, se->row.environment, cur, "migrating", snapshot ?
		    "restoring the snapshot taken before this revision's migrations before the rollback moves traffic" :
		    "running down-migrations before the rollback moves traffic");
	return json_pack("{s:b, s:I, s:s, s:s}", "ok", 1, "deployment", (json_int_t)ticket, "state", "migrating",
			 "version", "");
}

int mig_flow_auto_rollback(struct svcenv *se, int cur, int to, const char *why, bool active)
{
	struct gerr err;
	struct revcfg *rc = daemon_revcfg(se, cur, &err);
	char note[256];
	int64_t down_to;
	json_t *r;

	if (!rc || !rc->cfg.migrations.dir || !rc->cfg.migrations.auto_down)
		return 0;
	if (mig_flow_rollback_plan(se, cur, to, &down_to, note, sizeof(note), &err) != 1) {
		if (note[0])
			gates_event(se->row.service, se->row.environment, cur, "schema_kept",
				    "automatic rollback keeps the schema (auto_down: the downs cannot run)");
		return 0;
	}
	if (active) {
		/* the old revision never stopped serving: undo the schema under it (as gantry db down) */
		r = mig_flow_cli("down", se->row.service, se->row.environment, &rc->cfg, rc->dir, cur, down_to, "gantry");
		json_decref(r);
		gates_event(se->row.service, se->row.environment, cur, "migrating",
			    "automatic rollback runs the down-migrations (auto_down)");
		return 0;
	}
	r = rollback_job(0, se, cur, to, down_to, "gantry", why, true, NULL);
	if (!json_is_true(json_object_get(r, "ok"))) {
		json_decref(r);
		return -1;
	}
	json_decref(r);
	return 1;
}

void mig_flow_traffic_rollback(struct svcenv *se, int cur, int to, const char *why)
{
	struct gerr err;
	struct revcfg *rc = daemon_revcfg(se, cur, &err);
	char note[256], msg[512];
	int64_t down_to;

	if (!rc || !rc->cfg.migrations.dir)
		return;
	if (rc->cfg.migrations.auto_down) {
		mig_flow_auto_rollback(se, cur, to, why, true);
		return;
	}
	if (mig_flow_rollback_plan(se, cur, to, &down_to, note, sizeof(note), &err) != 0 && note[0]) {
		snprintf(msg, sizeof(msg), "canary rollback keeps the schema: %s (down-migrations run only with "
			 "auto_down: true, gantry rollback or gantry db down)", note);
		gates_event(se->row.service, se->row.environment, cur, "schema_kept", msg);
	}
}

json_t *mig_flow_rollback(int64_t ticket, struct svcenv *se, int cur, int to, int64_t down_to, const char *by,
			  const char *why)
{
	return rollback_job(ticket, se, cur, to, down_to, by, why, false, NULL);
}

char *mig_flow_restore_check(struct svcenv *se, int cur, struct gerr *err)
{
	struct revcfg *rc = daemon_revcfg(se, cur, err);
	const char *url;
	char *path;
	struct stat sb;
	if (!rc)
		return NULL;
	if (!rc->cfg.migrations.dir) {
		gerr_set(err, "--schema=restore: revision %d of %s@%s has no migrations", cur, se->row.service,
			 se->row.environment);
		return NULL;
	}
	if (!(url = mig_flow_url(&rc->cfg, err)))
		return NULL;
	path = mig_flow_snapshot_path(se->row.service, se->row.environment, cur, url);
	if (stat(path, &sb) < 0) {
		gerr_set(err, "--schema=restore: no snapshot was taken before revision %d's migrations (migrations."
			 "snapshot: true takes one when a deploy has pending up-migrations); nothing changed: roll back "
			 "with --schema=keep, or without --schema to run the down-migrations", cur);
		free(path);
		return NULL;
	}
	return path;
}

json_t *mig_flow_rollback_restore(int64_t ticket, struct svcenv *se, int cur, int to, const char *snapshot,
				  const char *by, const char *why)
{
	return rollback_job(ticket, se, cur, to, 0, by, why, false, snapshot);
}

static void rollback_done(struct mjob *j)
{
	struct svcenv *se = daemon_svcenv(j->svc, j->env, false);
	struct deployment_row d;
	struct gerr err;
	char msg[1400], ver[128];
	json_t *rep;
	bool have = j->id > 0 && store_deployment_get(gd->store, j->id, &d, &err) == 1;

	version_text(j, ver, sizeof(ver));
	if (!j->ok || !se) {
		snprintf(msg, sizeof(msg), "migration failed: %.700s; %s; the rollback to revision %d did not start, "
			 "revision %d keeps serving", j->ok ? "the service environment is gone" : j->err, ver,
			 j->to_revision, j->revision);
		log_error("migrate", "%s", msg);
		gates_event(j->svc, j->env, j->revision, "migration_failed", msg);
		gates_emit("migration_failed", json_pack("{s:s, s:s, s:s, s:I}", "service", j->svc, "environment",
							 j->env, "message", msg, "deployment", (json_int_t)j->id));
		if (have) {
			strlcpy_g(d.state, "failed", sizeof(d.state));
			strlcpy_g(d.result, "failed", sizeof(d.result));
			strlcpy_g(d.result_reason, msg, sizeof(d.result_reason));
			d.ended_at = clock_now_s();
			if (store_deployment_update(gd->store, &d, &err) < 0)
				log_error("gates", "%s", err.msg);
			deployment_row_release(&d);
		}
		return;
	}
	if (j->snapshot_path)
		snprintf(msg, sizeof(msg), "snapshot restored (--schema=restore), %s:\n%.*s", ver,
			 (int)MIN(j->out.len, 1000), j->out.data ? j->out.data : "");
	else
		snprintf(msg, sizeof(msg), "%d down-migration%s run, %s:\n%.*s", j->ran, j->ran == 1 ? "" : "s", ver,
			 (int)MIN(j->out.len, 1000), j->out.data ? j->out.data : "");
	gates_event(j->svc, j->env, j->revision, "migrated", msg);
	if (have) {
		strlcpy_g(d.state, "started", sizeof(d.state));
		if (store_deployment_update(gd->store, &d, &err) < 0)
			log_error("gates", "%s", err.msg);
		deployment_row_release(&d);
	}
	if (j->id > 0) {
		/* a docker revision whose image the Engine lost: pulled before the copy, as
		 * op_rollback's other path does (copy_revision_gated); op_rollback checked
		 * before the downs that it can be had */
		char ref[600], hex[80], version[128];
		int pull = pulls_revision_source(j->svc, j->env, j->to_revision, ref, sizeof(ref), hex, sizeof(hex),
						 version, sizeof(version), &err);
		if (pull > 0) {
			rep = pulls_begin_copy(j->id, j->svc, j->env, j->to_revision, "rollback", j->why, ref, hex, version);
			json_decref(rep);
			return;
		}
		if (pull < 0)
			log_error("migrate", "rollback of %s@%s: %s", j->svc, j->env, err.msg);
	}
	rep = daemon_copy_revision(se, j->to_revision, "rollback", j->by, j->why);
	gates_rollout_created(j->id, rep);
	if (j->automatic && json_is_true(json_object_get(rep, "ok")))
		gates_auto_rollback(j->svc, j->env, j->revision, (int)json_integer_value(json_object_get(rep, "revision")),
				    j->why);
	if (json_is_true(json_object_get(rep, "ok")) &&
	    store_revision_set_status(gd->store, j->svc, j->env, j->revision, "rolled_back", j->why, &err) < 0)
		log_error("store", "%s", err.msg);
	if (!json_is_true(json_object_get(rep, "ok")))
		log_error("migrate", "rollback of %s@%s after its down-migrations: %s", j->svc, j->env,
			  json_string_value(json_object_get(rep, "error")));
	json_decref(rep);
}

void mig_flow_snapshot_prune(const char *svc, const char *env, int revision)
{
	/* a pg_dump's and a pg_restore's stderr (driver_pg.c) go with the dump */
	static const char *const ext[] = { "sqlite", "pgdump", "pgdump.log", "pgdump.restore.log" };
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		char *p = xasprintf("%s/snapshots/%s-%s-r%d.%s", gd->home, svc, env, revision, ext[i]);
		if (unlink(p) == 0)
			log_info("prune", "service=%s environment=%s revision=%d snapshot %s removed", svc, env,
				 revision, p);
		free(p);
	}
}

char *mig_flow_snapshot_path(const char *svc, const char *env, int revision, const char *url)
{
	return xasprintf("%s/snapshots/%s-%s-r%d.%s", gd->home, svc, env, revision,
			 !strncmp(url, "postgres", 8) ? "pgdump" : "sqlite");
}

json_t *mig_flow_cli(const char *action, const char *svc, const char *env, const struct svc_config *cfg,
		     const char *dir, int revision, int64_t to, const char *by)
{
	struct gerr err;
	const char *url;
	struct mjob *j;
	enum job_kind k;

	if (!strcmp(action, "status"))
		k = JOB_STATUS;
	else if (!strcmp(action, "history"))
		k = JOB_HISTORY;
	else if (!strcmp(action, "up"))
		k = JOB_UP;
	else if (!strcmp(action, "down"))
		k = JOB_DOWN;
	else if (!strcmp(action, "restore"))
		k = JOB_RESTORE;
	else
		return reply_error(2, "/action: unknown '%s' (status, history, up, down)", action);
	if (!cfg->migrations.dir)
		return reply_error(2, "%s@%s has no migrations (services.%s.migrations.dir)", svc, env, svc);
	if (!(url = mig_flow_url(cfg, &err)))
		return reply_error(2, "%s", err.msg);
	j = job_new(k, svc, env, url, NULL, by);
	j->dir = xasprintf("%s/%s", dir, cfg->migrations.dir);
	j->lock_timeout_ms = cfg->migrations.lock_timeout_ms;
	j->revision = revision;
	j->to = to;
	j->id = next_cli_id++;
	if (k == JOB_STATUS) {
		struct revision_row *list;
		size_t n;
		j->revs = json_array();
		if (store_revision_list(gd->store, svc, env, &list, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++) {
				struct svcenv *se = daemon_svcenv(svc, env, false);
				struct revcfg *rc = se && (!list[i].artifact_pruned || daemon_artifact_present(list[i].digest))
					? daemon_revcfg(se, list[i].number, &err) : NULL;
				if (rc && rc->dir && rc->cfg.migrations.dir && json_array_size(j->revs) < 20) {
					char *d = xasprintf("%s/%s", rc->dir, rc->cfg.migrations.dir);
					json_array_append_new(j->revs, json_pack("{s:i, s:s, s:s}", "revision", list[i].number,
										  "status", list[i].status, "dir", d));
					free(d);
				}
				revision_row_release(&list[i]);
			}
			free(list);
		}
	}
	if (k == JOB_RESTORE) {
		struct stat sb;
		j->snapshot_path = mig_flow_snapshot_path(svc, env, (int)to, url);
		if (stat(j->snapshot_path, &sb) < 0) {
			json_t *e = reply_error(2, "no snapshot was taken before revision %lld's migrations "
						   "(migrations.snapshot: true; HOME/snapshots)", (long long)to);
			job_free(j);
			next_cli_id--;
			return e;
		}
	}
	if (job_start(j) < 0) {
		job_free(j);
		return reply_error(1, "cannot start the migrations' thread");
	}
	/* the loop keeps a second reference point: the job lives in cli_jobs once done */
	return json_pack("{s:b, s:I, s:b}", "ok", 1, "job", (json_int_t)j->id, "done", 0);
}

json_t *mig_flow_job(int64_t id)
{
	mig_flow_tick();
	for (struct mjob *j = cli_jobs; j; j = j->next) {
		json_t *r;
		char ver[128];
		if (j->id != id)
			continue;
		if (!j->ok)
			return reply_error(1, "%s", j->err);
		version_text(j, ver, sizeof(ver));
		r = j->result ? json_deep_copy(j->result) : json_pack("{s:b}", "ok", 1);
		json_object_set_new(r, "done", json_true());
		json_object_set_new(r, "ran", json_integer(j->ran));
		json_object_set_new(r, "output", json_stringn(j->out.data ? j->out.data : "", j->out.len));
		if (j->kind == JOB_UP || j->kind == JOB_DOWN || j->kind == JOB_RESTORE)
			json_object_set_new(r, "state", json_string(ver));
		return r;
	}
	if (id > 0 && id < next_cli_id)
		return json_pack("{s:b, s:I, s:b}", "ok", 1, "job", (json_int_t)id, "done", 0);
	return reply_error(2, "/job: no migration job %lld (jobs are kept 10 minutes)", (long long)id);
}

/*
 * Contract migrations: once a rollout is complete and its watch (rollback_on
 * armed for `watch` after completion) is over, the revision's pending
 * contract files run. Checked once a second; each rollout once per
 * controller (a restart checks again: nothing pending runs nothing).
 */
struct contract_seen {
	char svc[64], env[64];
	int64_t rollout;
	struct contract_seen *next;
};
static struct contract_seen *seen;

static void contract_scan(void)
{
	static int64_t last;
	int64_t mono = clock_mono_ms();
	struct gerr err;

	if (mono - last < 1000)
		return;
	last = mono;
	for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
		struct contract_seen *c;
		struct revcfg *rc;
		struct mjob *j;
		const char *url;

		if (!se->rollout.id || strcmp(se->rollout.phase, "complete") ||
		    se->rollout.revision != se->row.target_revision)
			continue;
		for (c = seen; c; c = c->next)
			if (!strcmp(c->svc, se->row.service) && !strcmp(c->env, se->row.environment))
				break;
		if (c && c->rollout == se->rollout.id)
			continue;
		rc = daemon_revcfg(se, se->rollout.revision, &err);
		if (!rc || !rc->cfg.migrations.dir || !rc->dir)
			continue;
		/* the watch first: until it ends, a breach may still roll back to the old code */
		if (rc->cfg.nrollback_on && clock_now_ms() < se->rollout.updated_at + rc->cfg.watch_ms)
			continue;
		if (!c) {
			c = xcalloc(1, sizeof(*c));
			strlcpy_g(c->svc, se->row.service, sizeof(c->svc));
			strlcpy_g(c->env, se->row.environment, sizeof(c->env));
			c->next = seen;
			seen = c;
		}
		c->rollout = se->rollout.id;
		if (!(url = mig_flow_url(&rc->cfg, &err)))
			continue;
		j = job_new(JOB_CONTRACT, se->row.service, se->row.environment, url, NULL, "gantry");
		j->dir = xasprintf("%s/%s", rc->dir, rc->cfg.migrations.dir);
		j->lock_timeout_ms = rc->cfg.migrations.lock_timeout_ms;
		j->revision = se->rollout.revision;
		if (job_start(j) < 0)
			job_free(j);
	}
}

static void flow_tick(void);

void mig_flow_tick(void)
{
	struct mjob *j, *next, **pp;
	int64_t now = clock_mono_ms();

	contract_scan();

	pthread_mutex_lock(&lock);
	j = done_jobs;
	done_jobs = NULL;
	pthread_mutex_unlock(&lock);
	for (; j; j = next) {
		next = j->next;
		j->next = NULL;
		j->done_at = now;
		if (j->kind == JOB_CONTRACT) {
			char ver[128], msg[1400];
			version_text(j, ver, sizeof(ver));
			if (!j->ok) {
				snprintf(msg, sizeof(msg), "contract migration failed: %.700s; %s; revision %d keeps serving",
					 j->err, ver, j->revision);
				gates_event(j->svc, j->env, j->revision, "migration_failed", msg);
				gates_emit("migration_failed", json_pack("{s:s, s:s, s:s, s:i}", "service", j->svc,
									 "environment", j->env, "message", msg, "revision",
									 j->revision));
			} else if (j->ran) {
				snprintf(msg, sizeof(msg), "%d migration%s applied after promotion (contract), %s:\n%.*s",
					 j->ran, j->ran == 1 ? "" : "s", ver, (int)MIN(j->out.len, 1000),
					 j->out.data ? j->out.data : "");
				gates_event(j->svc, j->env, j->revision, "migrated", msg);
			}
			job_free(j);
			continue;
		}
		if (j->kind == JOB_ROLLBACK) {
			rollback_done(j);
			job_free(j);
			continue;
		}
		if (j->kind == JOB_DEPLOY || j->kind == JOB_RESUME) {
			deploy_done(j);
			job_free(j);
			continue;
		}
		if (j->kind == JOB_UP || j->kind == JOB_DOWN || j->kind == JOB_RESTORE) {
			char ver[128], msg[1400];
			version_text(j, ver, sizeof(ver));
			snprintf(msg, sizeof(msg), "gantry db %s by %s: %.300s; %s%s%.*s",
				 j->kind == JOB_UP ? "up" : j->kind == JOB_DOWN ? "down" : "restore",
				 j->by, j->ok ? "ok" : j->err, ver, j->out.len ? "\n" : "",
				 (int)MIN(j->out.len, 900), j->out.data ? j->out.data : "");
			gates_event(j->svc, j->env, 0, j->ok ? "migrated" : "migration_failed", msg);
		}
		j->next = cli_jobs;
		cli_jobs = j;
	}
	flow_tick();
	/* CLI results are kept 10 minutes for polling */
	for (pp = &cli_jobs; *pp;) {
		if (now - (*pp)->done_at > 600000) {
			j = *pp;
			*pp = j->next;
			job_free(j);
		} else
			pp = &(*pp)->next;
	}
}

/*
 * migrations.mode maintenance: runbook 001's flow for a breaking migration.
 * Its state lives in the deployment record (gates."maintenance_flow":
 * phase, the old revision, the replica count to give back, whether
 * maintenance was already on, and the steps with their times), so a
 * restarted controller carries on from there (flow_resume_all). Phases:
 *   on         maintenance set, waiting for the proxy to answer with it
 *   stopping   the old revision scaled to none (drained), waiting for them to go
 *   migrating  the deploy's job runs the up-migrations
 *   starting   the new revision's rollout; its end (mig_flow_rollout_finished)
 *              turns maintenance off
 *   restoring  something failed: the old revision started again; maintenance
 *              goes off once one of its replicas is ready and routed
 *   done
 */
#define FLOW_MAX 16
#define FLOW_FORCE_WAIT_MS 30000
static int64_t flows[FLOW_MAX];
static size_t nflows;

static void flow_track(int64_t id)
{
	for (size_t i = 0; i < nflows; i++)
		if (flows[i] == id)
			return;
	if (nflows < FLOW_MAX)
		flows[nflows++] = id;
	else
		log_error("migrate", "deployment=%lld: too many maintenance flows at once", (long long)id);
}

static void flow_untrack(int64_t id)
{
	for (size_t i = 0; i < nflows; i++)
		if (flows[i] == id) {
			flows[i] = flows[--nflows];
			return;
		}
}

static json_t *flow_of(const struct deployment_row *d, json_t **gates);
static const char *flow_phase(json_t *f);

/* the deployment whose maintenance flow of svc@env is not done (other than self), 0 when none */
static int64_t flow_busy(const char *svc, const char *env, int64_t self, char *phase, size_t len)
{
	int64_t found = 0;
	for (size_t i = 0; i < nflows && !found; i++) {
		struct deployment_row d;
		struct gerr err;
		json_t *gates, *f;
		if (flows[i] == self || store_deployment_get(gd->store, flows[i], &d, &err) != 1)
			continue;
		f = flow_of(&d, &gates);
		if (f && strcmp(flow_phase(f), "done") && !strcmp(d.service, svc) && !strcmp(d.environment, env)) {
			found = d.id;
			strlcpy_g(phase, flow_phase(f), len);
		}
		json_decref(gates);
		deployment_row_release(&d);
	}
	return found;
}

/* d's flow object inside *gates (new reference to gates), NULL when d has none */
static json_t *flow_of(const struct deployment_row *d, json_t **gates)
{
	json_t *f;
	*gates = json_loads(d->gates && *d->gates ? d->gates : "{}", 0, NULL);
	if (!*gates)
		*gates = json_object();
	f = json_object_get(*gates, "maintenance_flow");
	return json_is_object(f) ? f : NULL;
}

static const char *flow_phase(json_t *f)
{
	return json_string_value(json_object_get(f, "phase")) ?: "";
}

/* one step: in the record (saved with d) and an event `maintenance_flow` */
static void flow_step(struct deployment_row *d, json_t *gates, json_t *f, const char *phase, const char *step,
		      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void flow_step(struct deployment_row *d, json_t *gates, json_t *f, const char *phase, const char *step,
		      const char *fmt, ...)
{
	char detail[600], at[40], msg[700];
	struct gerr err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	format_rfc3339(clock_now_s(), at, sizeof(at));
	json_array_append_new(json_object_get(f, "steps"),
			      json_pack("{s:s, s:s, s:s}", "step", step, "at", at, "detail", detail));
	if (phase) {
		json_object_set_new(f, "phase", json_string(phase));
		json_object_set_new(f, "since_ms", json_integer(clock_mono_ms()));
	}
	free(d->gates);
	d->gates = json_dumps(gates, JSON_COMPACT);
	if (store_deployment_update(gd->store, d, &err) < 0)
		log_error("migrate", "%s", err.msg);
	snprintf(msg, sizeof(msg), "deployment %lld: %s: %s", (long long)d->id, step, detail);
	gates_event(d->service, d->environment, 0, "maintenance_flow", msg);
	log_info("migrate", "service=%s environment=%s %s", d->service, d->environment, msg);
}

static void flow_off(struct deployment_row *d, json_t *gates, json_t *f, const char *why)
{
	struct gerr err;
	if (json_is_true(json_object_get(f, "was_on"))) {
		flow_step(d, gates, f, "done", "maintenance_kept", "%s; maintenance stays on: it was on before this "
			  "deploy (gantry maintenance off)", why);
	} else if (daemon_maintenance_set(gd, d->service, d->environment, NULL, "gantry", &err) < 0) {
		flow_step(d, gates, f, "done", "maintenance_off_failed", "%s; maintenance could not be turned off: %s",
			  why, err.msg);
	} else
		flow_step(d, gates, f, "done", "maintenance_off", "%s", why);
	flow_untrack(d->id);
}

/* the old revision at its own count again (the flow had scaled it to none) */
static void flow_restore(struct deployment_row *d, json_t *gates, json_t *f, const char *why)
{
	struct svcenv *se = daemon_svcenv(d->service, d->environment, false);
	int old = (int)json_integer_value(json_object_get(f, "old_revision"));
	if (se && se->row.replicas < 0 && se->row.target_revision == old) {
		se->row.replicas = (int)json_integer_value(json_object_get(f, "replicas"));
		daemon_save_svcenv(se);
		daemon_reconcile(se);
	}
	flow_step(d, gates, f, "restoring", "restoring", "%s; revision %d starting again, maintenance stays on "
		  "until it serves", why, old);
	flow_track(d->id);
}

/*
 * migrations.maintenance_allow into m: each header with its secret's value
 * (the version the spec pins, else the newest), decrypted here and kept
 * only in m (the store and the routes file hold it, as for gantry
 * maintenance on --allow-header). m NULL: only whether every secret can be
 * read. Errors name the key and the secret, never a value.
 */
static int flow_allow_fill(const struct svc_config *cfg, const char *env, struct maintenance *m, struct gerr *err)
{
	for (size_t i = 0; i < cfg->migrations.nallow; i++) {
		const struct mig_maint_allow *a = &cfg->migrations.allow[i];
		uint8_t *val = NULL;
		size_t len = 0;
		struct gerr e2;
		int r = secrets_read(env, a->secret, a->version, &val, &len, &e2);
		if (r < 0)
			return gerr_set(err, "migrations.maintenance_allow[%zu]: secret '%s': %s", i, a->secret, e2.msg);
		if (r == 0) {
			char ver[32] = "";
			if (a->version)
				snprintf(ver, sizeof(ver), " version %d", a->version);
			return gerr_set(err, "migrations.maintenance_allow[%zu]: secret '%s'%s does not exist in "
					"environment '%s' (gantry secret set %s --env %s)", i, a->secret, ver, env,
					a->secret, env);
		}
		if (len > MAINT_HEADER_VALUE_MAX || memchr(val, 0, len) ||
		    (m && m->nallow >= MAINT_HEADERS_MAX)) {
			age_secret_free(val, len);
			return gerr_set(err, "migrations.maintenance_allow[%zu]: secret '%s' is not a header value "
					"(%d..%d visible ASCII bytes)", i, a->secret, MAINT_HEADER_VALUE_MIN,
					MAINT_HEADER_VALUE_MAX);
		}
		if (m) {
			struct maintenance_header *h = &m->allow[m->nallow++];
			strlcpy_g(h->name, a->header, sizeof(h->name));
			for (char *p = h->name; *p; p++)
				*p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
			memcpy(h->value, val, len);
			h->value[len] = 0;
		} else {
			char tmp[MAINT_HEADER_VALUE_MAX + 1];
			memcpy(tmp, val, len);
			tmp[len] = 0;
			r = maint_check_header_value(tmp, &e2);
			sodium_memzero(tmp, sizeof(tmp));
			if (r < 0) {
				age_secret_free(val, len);
				return gerr_set(err, "migrations.maintenance_allow[%zu]: secret '%s': %s", i, a->secret,
						e2.msg);
			}
		}
		age_secret_free(val, len);
	}
	return 0;
}

static void flow_begin(struct deployment_row *d)
{
	struct svcenv *se = daemon_svcenv(d->service, d->environment, false);
	struct maintenance m = { .retry_after_s = 0 };
	struct svc_config cfg;
	struct gerr err;
	json_t *gates, *f, *cj = json_loads(d->config ? d->config : "", 0, NULL);
	bool was_on = daemon_maintenance_get(gd, d->service, d->environment, NULL), allow_err = false;

	if (cj && svc_config_from_json(cj, &cfg, &err) == 0) {
		if (cfg.migrations.maintenance_message)
			strlcpy_g(m.message, cfg.migrations.maintenance_message, sizeof(m.message));
		if (flow_allow_fill(&cfg, d->environment, &m, &err) < 0)
			allow_err = true;
		svc_config_release(&cfg);
	}
	json_decref(cj);
	if (!m.message[0])
		snprintf(m.message, sizeof(m.message), "Down for maintenance: a database migration is running "
			 "(deployment %lld, version %.100s).", (long long)d->id, d->version);
	flow_of(d, &gates);
	f = json_pack("{s:s, s:i, s:i, s:b, s:[]}", "phase", "on", "old_revision", se ? se->row.target_revision : 0,
		      "replicas", se ? se->row.replicas : 0, "was_on", was_on, "steps");
	json_object_set_new(gates, "maintenance_flow", f);
	if (!was_on && (allow_err || maintenance_check(&m, &err) < 0 ||
			daemon_maintenance_set(gd, d->service, d->environment, &m, "gantry", &err) < 0)) {
		char msg[700];
		json_object_set_new(f, "phase", json_string("done"));
		snprintf(msg, sizeof(msg), "migration not run: maintenance mode could not be turned on: %.600s", err.msg);
		flow_step(d, gates, f, "done", "maintenance_on_failed", "%s", err.msg);
		strlcpy_g(d->state, "failed", sizeof(d->state));
		strlcpy_g(d->result, "failed", sizeof(d->result));
		strlcpy_g(d->result_reason, msg, sizeof(d->result_reason));
		d->ended_at = clock_now_s();
		if (store_deployment_update(gd->store, d, &err) < 0)
			log_error("gates", "%s", err.msg);
		json_decref(gates);
		sodium_memzero(&m, sizeof(m));
		return;
	}
	sodium_memzero(&m, sizeof(m)); /* the bypass values */
	flow_step(d, gates, f, "on", "maintenance_on", "%s; waiting for the proxy to answer with it",
		  was_on ? "maintenance was already on (it stays on after the deploy)" : "maintenance on by gantry");
	json_decref(gates);
	flow_track(d->id);
}

/* the flow's migration ran: the deploy's revision starts next (deploy_done) */
/*
 * A canary or blue-green revision under the flow: nothing old serves (its
 * replicas were stopped for the migration, and the old code cannot run on
 * the new schema), so there is no baseline to split traffic with or switch
 * from, and the strategy would start the old revision again next to the
 * new one. The revision's config gets strategy recreate, as `deploy
 * --strategy recreate` writes it: the new revision comes up at full size
 * behind maintenance; rollback_on and watch stay armed after it completes.
 * Returns the strategy replaced ("canary", "bluegreen") or NULL.
 */
static const char *flow_full_size(struct deployment_row *d)
{
	struct svc_config cfg;
	struct gerr err;
	const char *was = NULL;
	json_t *cj = json_loads(d->config ? d->config : "", 0, NULL), *nj;
	if (!cj || svc_config_from_json(cj, &cfg, &err) < 0) {
		json_decref(cj);
		return NULL;
	}
	json_decref(cj);
	if (cfg.strategy.kind == STRATEGY_CANARY || cfg.strategy.kind == STRATEGY_BLUEGREEN) {
		was = cfg.strategy.kind == STRATEGY_CANARY ? "canary" : "bluegreen";
		cfg.strategy.kind = STRATEGY_RECREATE;
		nj = svc_config_to_json(&cfg);
		free(d->config);
		d->config = json_dumps(nj, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(nj);
	}
	svc_config_release(&cfg);
	return was;
}

static void flow_migrated(struct deployment_row *d, const struct mjob *j)
{
	json_t *gates, *f = flow_of(d, &gates);
	char ver[128];
	const char *was;
	if (f && !strcmp(flow_phase(f), "migrating")) {
		version_text(j, ver, sizeof(ver));
		was = flow_full_size(d);
		if (was)
			json_object_set_new(f, "strategy_replaced", json_string(was));
		flow_step(d, gates, f, "starting", "migrated", "%d migration%s applied, %s; starting the new revision%s%s%s",
			  j->ran, j->ran == 1 ? "" : "s", ver, was ? " at full size (strategy " : "", was ? was : "",
			  was ? " run as recreate: nothing old serves to compare with or switch from; rollback_on "
				"stays armed for watch)" : "");
	}
	json_decref(gates);
}

static void flow_failed(const char *svc, const char *env, int64_t id, const char *why)
{
	struct deployment_row d;
	struct gerr err;
	json_t *gates, *f;
	(void)svc;
	(void)env;
	if (store_deployment_get(gd->store, id, &d, &err) != 1)
		return;
	f = flow_of(&d, &gates);
	if (f && strcmp(flow_phase(f), "done") && strcmp(flow_phase(f), "restoring"))
		flow_restore(&d, gates, f, why);
	json_decref(gates);
	deployment_row_release(&d);
}

void mig_flow_rollout_finished(const struct rollout_row *ro)
{
	struct deployment_row d;
	struct gerr err;
	json_t *gates, *f;
	if (store_deployment_by_rollout(gd->store, ro->id, &d, &err) != 1)
		return;
	f = flow_of(&d, &gates);
	if (f && !strcmp(flow_phase(f), "starting")) {
		if (!strcmp(ro->phase, "complete"))
			flow_off(&d, gates, f, "the new revision is ready and routed");
		else if (!strcmp(ro->phase, "superseded"))
			flow_off(&d, gates, f, "the new revision was superseded by another deploy");
		else {
			char why[600];
			snprintf(why, sizeof(why), "the new revision did not become ready: %.500s", ro->message);
			flow_restore(&d, gates, f, why);
		}
	}
	json_decref(gates);
	deployment_row_release(&d);
}

static bool revision_serving(struct svcenv *se, int rev)
{
	for (struct replica *r = se->replicas; r; r = r->next)
		if (r->row.revision == rev && replica_is_ready(r))
			return proxyctl_caught_up();
	return false;
}

static void fail_record(struct deployment_row *d, const char *why)
{
	struct gerr err;
	if (d->ended_at)
		return;
	strlcpy_g(d->state, "failed", sizeof(d->state));
	strlcpy_g(d->result, "failed", sizeof(d->result));
	strlcpy_g(d->result_reason, why, sizeof(d->result_reason));
	d->ended_at = clock_now_s();
	if (store_deployment_update(gd->store, d, &err) < 0)
		log_error("gates", "%s", err.msg);
	gates_emit("migration_failed", json_pack("{s:s, s:s, s:s, s:I}", "service", d->service, "environment",
						 d->environment, "message", why, "deployment", (json_int_t)d->id));
}

static void flow_advance(int64_t id)
{
	struct deployment_row d;
	struct gerr err;
	json_t *gates, *f;
	struct svcenv *se;
	const char *ph;

	if (store_deployment_get(gd->store, id, &d, &err) != 1) {
		flow_untrack(id);
		return;
	}
	f = flow_of(&d, &gates);
	se = daemon_svcenv(d.service, d.environment, false);
	ph = f ? flow_phase(f) : "done";
	if (!f || !se || !strcmp(ph, "done")) {
		flow_untrack(id);
	} else if (!strcmp(ph, "on")) {
		if (daemon_maintenance_in_force(gd, d.service, d.environment)) {
			int n = 0;
			for (struct replica *r = se->replicas; r; r = r->next)
				n++;
			flow_step(&d, gates, f, "stopping", "maintenance_in_force",
				  "the proxy answers 503 with Retry-After; stopping revision %d's %d replica%s (drained first)",
				  se->row.target_revision, n, n == 1 ? "" : "s");
			se->row.replicas = -1; /* scaled to none on purpose: reconcile drains them */
			daemon_save_svcenv(se);
			daemon_reconcile(se);
		} else if (clock_mono_ms() - json_integer_value(json_object_get(f, "since_ms")) > FLOW_FORCE_WAIT_MS) {
			const char *why = "migration not run: the proxy did not confirm maintenance mode within 30s; "
					  "the old revision kept serving";
			flow_off(&d, gates, f, why);
			fail_record(&d, why);
		}
	} else if (!strcmp(ph, "stopping")) {
		if (!se->replicas) {
			const char *url;
			bool maint;
			struct mjob *j = deploy_job(&d, false, &url, &maint, &err);
			flow_step(&d, gates, f, "migrating", "old_replicas_stopped",
				  "no replica of %s@%s runs; running the up-migrations", d.service, d.environment);
			if (j && (!url || job_start(j) < 0))
				job_done_now(j, url ? "cannot start the migrations' thread" : err.msg);
		}
	} else if (!strcmp(ph, "restoring")) {
		int old = (int)json_integer_value(json_object_get(f, "old_revision"));
		if (se->row.replicas < 0 && se->row.target_revision == old) {
			se->row.replicas = (int)json_integer_value(json_object_get(f, "replicas"));
			daemon_save_svcenv(se);
			daemon_reconcile(se);
		}
		if (revision_serving(se, se->row.target_revision))
			flow_off(&d, gates, f, "the old revision serves again");
	}
	json_decref(gates);
	deployment_row_release(&d);
}

/*
 * At the controller's start: flows a kill -9 interrupted. Before the
 * migration (on, stopping) nothing changed the schema: the old revision is
 * started again and the deployment failed. During it (migrating) the
 * deployment is failed by mig_flow_resume's job, then restored here the
 * same way (deploy_done → flow_failed). Starting and restoring carry on.
 * Maintenance is never left on by a flow: every path ends in flow_off.
 */
static void flow_resume_all(void)
{
	struct deployment_row *d;
	struct gerr err;
	size_t n;
	if (store_deployment_list(gd->store, NULL, NULL, 0, &d, &n, &err) < 0) {
		log_error("migrate", "cannot resume maintenance flows: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *gates, *f = flow_of(&d[i], &gates);
		const char *ph = f ? flow_phase(f) : "done";
		if (!strcmp(ph, "on") || !strcmp(ph, "stopping")) {
			const char *why = "migration not run: the controller stopped during the maintenance flow, "
					  "before the migration; deploy again";
			fail_record(&d[i], why);
			flow_restore(&d[i], gates, f, why);
		} else if (!strcmp(ph, "starting") && d[i].ended_at) {
			if (!strcmp(d[i].result, "succeeded") || !strcmp(d[i].state, "post_checks"))
				flow_off(&d[i], gates, f, "the new revision is ready and routed");
			else
				flow_restore(&d[i], gates, f, "the new revision did not become ready");
		} else if (strcmp(ph, "done"))
			flow_track(d[i].id);
		json_decref(gates);
		deployment_row_release(&d[i]);
	}
	free(d);
}

static void flow_tick(void)
{
	static bool resumed;
	int64_t ids[FLOW_MAX];
	size_t n = nflows;
	if (!resumed) {
		resumed = true;
		flow_resume_all();
		n = nflows;
	}
	memcpy(ids, flows, n * sizeof(ids[0]));
	for (size_t i = 0; i < n; i++)
		flow_advance(ids[i]);
}
