/*
 * artifact_check.c — a snapshot is checked against its digest again before
 * the first replica of it starts in this controller's life.
 *
 * The digest is checked when an artifact arrives (upload, snapshot); after
 * that HOME/artifacts/DIGEST is sealed read-only and owned by the
 * controller, and workloads run as other users. What this catches is the
 * rest: a change by root or the controller's own user between then and a
 * later start (a rollback, a scale, a promotion of the same digest), or a
 * disk that rotted. The check recomputes the digest with the store's own
 * walk and hash (artifact_verify) on libuv's thread pool, since it reads
 * every byte (docs/internals/runtime.md has the figures: about 0.25 s per
 * 100 MB here), and remembers the answer per digest for the rest of the
 * controller's life: once per digest per life, and once more after a
 * restart. Not covered: a change made after the check, in the same life,
 * is seen only at the next restart of the controller.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "artifact/artifact.h"
#include "util/log.h"
#include "util/clock.h"

struct ac_entry {
	char digest[ARTIFACT_DIGEST_HEX + 1];
	int state;                   /* ARTIFACT_CHECK_* */
	char why[400];               /* for _TAMPERED and _ERROR */
	int64_t at_ms;               /* when the answer came */
	struct ac_entry *next;
};

struct ac_job {
	uv_work_t req;
	struct ac_entry *e;          /* borrowed: entries live until artifact_check_release */
	char *home;                  /* owned */
	int r;
	char actual[ARTIFACT_DIGEST_HEX + 1];
	struct gerr err;
	int64_t took_ms;
};

static struct ac_entry *cache;

#define ERROR_RETRY_MS 5000 /* an unreadable snapshot may be there later (an upload) */

static void check_work(uv_work_t *req)
{
	struct ac_job *j = req->data;
	int64_t t0 = clock_mono_ms();
	j->r = artifact_verify(j->home, j->e->digest, j->actual, &j->err);
	j->took_ms = clock_mono_ms() - t0;
}

static void check_done(uv_work_t *req, int status)
{
	struct ac_job *j = req->data;
	struct ac_entry *e = j->e;

	e->at_ms = clock_mono_ms();
	if (status < 0) {
		e->state = ARTIFACT_CHECK_ERROR;
		snprintf(e->why, sizeof(e->why), "artifact %s could not be verified: %s", e->digest, uv_strerror(status));
	} else if (j->r == 0) {
		e->state = ARTIFACT_CHECK_OK;
	} else if (j->r == 1) {
		e->state = ARTIFACT_CHECK_TAMPERED;
		snprintf(e->why, sizeof(e->why), "artifact %s was changed after it was stored (its files now hash to "
			 "%.12s): refusing to start a replica from it", e->digest, j->actual);
	} else {
		e->state = ARTIFACT_CHECK_ERROR;
		snprintf(e->why, sizeof(e->why), "artifact %s could not be verified: %.200s", e->digest, j->err.msg);
	}
	if (e->state == ARTIFACT_CHECK_OK)
		log_info("artifact", "digest=%s verified in %lldms", e->digest, (long long)j->took_ms);
	else
		log_error("artifact", "digest=%s %s (%lldms)", e->digest,
			  e->state == ARTIFACT_CHECK_TAMPERED ? "tampered" : "unverifiable", (long long)j->took_ms);
	free(j->home);
	free(j);
	daemon_kick();
}

int artifact_check(const char *digest, const char **why)
{
	struct ac_entry *e;
	struct ac_job *j;

	*why = NULL;
	for (e = cache; e; e = e->next)
		if (!strcmp(e->digest, digest))
			break;
	if (e && e->state == ARTIFACT_CHECK_ERROR && clock_mono_ms() - e->at_ms > ERROR_RETRY_MS)
		e->state = ARTIFACT_CHECK_NONE;
	if (e && e->state != ARTIFACT_CHECK_NONE) {
		*why = e->why[0] ? e->why : NULL;
		return e->state;
	}
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		strlcpy_g(e->digest, digest, sizeof(e->digest));
		e->next = cache;
		cache = e;
	}
	e->why[0] = 0;
	e->state = ARTIFACT_CHECK_PENDING;
	j = xcalloc(1, sizeof(*j));
	j->e = e;
	j->home = xstrdup(gd->home);
	j->req.data = j;
	if (uv_queue_work(gd->loop, &j->req, check_work, check_done) < 0) {
		free(j->home);
		free(j);
		e->state = ARTIFACT_CHECK_ERROR;
		e->at_ms = clock_mono_ms();
		snprintf(e->why, sizeof(e->why), "artifact %s could not be verified: cannot queue the check", digest);
		*why = e->why;
		return e->state;
	}
	log_info("artifact", "digest=%s verifying before its first start", digest);
	return ARTIFACT_CHECK_PENDING;
}

void artifact_check_release(void)
{
	while (cache) {
		struct ac_entry *next = cache->next;
		free(cache);
		cache = next;
	}
}
