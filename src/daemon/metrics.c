/*
 * metrics.c — the controller's view of live traffic, per revision.
 *
 * The proxy exports CUMULATIVE per-revision counters on its admin listener
 * (GET /windows). We poll it every 100 ms (a libcurl GET in libuv's thread
 * pool, never on the loop) and keep snapshots: every poll for the last 10 s,
 * then one every 10 s for the last 15 minutes. A revision that no longer runs
 * anywhere is forgotten (its history with it) a minute after it stopped. Any window [now - D, now] is the
 * newest snapshot minus the newest one at or before now - D, so conditions
 * like "error_rate > 5% for 2s" are evaluated on data at most ~100 ms old.
 * A proxy restart resets its counters: a snapshot smaller than the one
 * before starts a new series (the difference would be negative).
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/metrics.h"
#include "util/log.h"
#include "util/clock.h"
#include <jansson.h>

/* ~34 KB per revision: 10 s of 100 ms snapshots (rollback_on samples the
 * trailing second), then 15 min at 10 s (analysis intervals, long windows) */
#define FINE_MS 100
#define FINE_KEEP (10000 / FINE_MS)
#define COARSE_MS 10000
#define COARSE_KEEP (15 * 60 * 1000 / COARSE_MS)

/*
 * A snapshot keeps the cumulative request counters modulo 2^32: a window is
 * a difference of two snapshots at most 15 minutes apart, and unsigned
 * subtraction is exact modulo 2^32, so it is right as long as fewer than
 * 4.29e9 requests (4.7 million a second) fall in it. Byte counters keep 64
 * bits (4 GB in 15 min is only 4.7 MB/s). Half the size of a full
 * struct rev_window, which is what the controller's memory per rollout is
 * made of (two revisions each).
 */
struct snap {
	int64_t t_ms;
	uint32_t requests;
	uint32_t status[6];
	uint32_t latency[METRIC_LATENCY_BUCKETS];
	uint64_t bytes_in, bytes_out;
};

struct series {
	char service[64], environment[64];
	int revision;
	struct snap fine[FINE_KEEP];
	int nfine, fine_head;              /* ring */
	struct snap coarse[COARSE_KEEP];
	int ncoarse, coarse_head;
	uint64_t last_requests;            /* the newest snapshot's, in full (a proxy restart goes back) */
	int64_t last_seen_ms;
	int64_t live_ms;                   /* last time the revision ran */
	struct series *next;
};

static struct series *all;
static bool busy;
static int64_t last_poll_ms;
static int64_t last_ok_ms;
static int64_t first_ok_ms;    /* the first /windows this controller read: its history starts there */


/* does the revision run (a replica, or stable/target)? always true without a daemon (tests) */
static bool revision_live(const char *svc, const char *env, int rev)
{
	struct svcenv *se;
	if (!gd)
		return true;
	se = daemon_svcenv(svc, env, false);
	if (!se)
		return false;
	if (se->row.stable_revision == rev || se->row.target_revision == rev)
		return true;
	for (struct replica *r = se->replicas; r; r = r->next)
		if (r->row.revision == rev)
			return true;
	return false;
}

static struct series *find(const char *svc, const char *env, int rev, bool create)
{
	struct series *s;
	for (s = all; s; s = s->next)
		if (s->revision == rev && !strcmp(s->service, svc) && !strcmp(s->environment, env))
			return s;
	/* the proxy reports a stopped revision's counters for ever: keep no history for it */
	if (!create || !revision_live(svc, env, rev))
		return NULL;
	s = xcalloc(1, sizeof(*s));
	strlcpy_g(s->service, svc, sizeof(s->service));
	strlcpy_g(s->environment, env, sizeof(s->environment));
	s->revision = rev;
	s->live_ms = clock_mono_ms();
	s->next = all;
	all = s;
	return s;
}

static const struct snap *fine_at(const struct series *s, int k) /* k = 0 newest */
{
	return &s->fine[(s->fine_head - 1 - k + 2 * FINE_KEEP) % FINE_KEEP];
}

static const struct snap *coarse_at(const struct series *s, int k)
{
	return &s->coarse[(s->coarse_head - 1 - k + 2 * COARSE_KEEP) % COARSE_KEEP];
}

static void pack(struct snap *p, int64_t t, const struct rev_window *w)
{
	p->t_ms = t;
	p->requests = (uint32_t)w->requests; /* modulo 2^32, on purpose */
	for (int i = 0; i < 6; i++)
		p->status[i] = (uint32_t)w->status[i];
	for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++)
		p->latency[i] = (uint32_t)w->latency[i];
	p->bytes_in = w->bytes_in;
	p->bytes_out = w->bytes_out;
}

static void add_snap(struct series *s, int64_t t, const struct rev_window *w)
{
	if (s->nfine && w->requests < s->last_requests) {
		/* the proxy restarted: its counters began again */
		s->nfine = s->ncoarse = 0;
	}
	s->last_requests = w->requests;
	pack(&s->fine[s->fine_head], t, w);
	s->fine_head = (s->fine_head + 1) % FINE_KEEP;
	if (s->nfine < FINE_KEEP)
		s->nfine++;
	if (!s->ncoarse || t - coarse_at(s, 0)->t_ms >= COARSE_MS) {
		pack(&s->coarse[s->coarse_head], t, w);
		s->coarse_head = (s->coarse_head + 1) % COARSE_KEEP;
		if (s->ncoarse < COARSE_KEEP)
			s->ncoarse++;
	}
	s->last_seen_ms = t;
}

static int json_u64_array(json_t *a, uint64_t *out, size_t n)
{
	size_t i;
	json_t *v;
	if (!json_is_array(a) || json_array_size(a) != n)
		return -1;
	json_array_foreach(a, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return -1;
		out[i] = (uint64_t)json_integer_value(v);
	}
	return 0;
}

/* parses the proxy's /windows document; returns how many series it fed */
int metrics__ingest(const char *body, int64_t now)
{
	json_t *doc = json_loads(body, 0, NULL), *revs, *r;
	size_t i;
	int n = 0;
	if (!doc)
		return -1;
	revs = json_object_get(doc, "revisions");
	json_array_foreach(revs, i, r) {
		const char *svc = json_string_value(json_object_get(r, "service"));
		const char *env = json_string_value(json_object_get(r, "environment"));
		const char *rev = json_string_value(json_object_get(r, "revision"));
		struct rev_window w = { 0 };
		json_t *req = json_object_get(r, "requests");
		char *end;
		long revno;
		if (!svc || !env || !rev || !json_is_integer(req))
			continue;
		revno = strtol(rev, &end, 10);
		if (*end || revno <= 0)
			continue;
		w.requests = (uint64_t)json_integer_value(req);
		if (json_u64_array(json_object_get(r, "status"), w.status, 6) < 0 ||
		    json_u64_array(json_object_get(r, "latency"), w.latency, METRIC_LATENCY_BUCKETS) < 0)
			continue;
		w.bytes_in = (uint64_t)json_integer_value(json_object_get(r, "bytes_in"));
		w.bytes_out = (uint64_t)json_integer_value(json_object_get(r, "bytes_out"));
		w.end_ms = now;
		{
			struct series *se_ = find(svc, env, (int)revno, true);
			if (se_)
				add_snap(se_, now, &w);
		}
		n++;
	}
	json_decref(doc);
	last_ok_ms = now;
	if (!first_ok_ms)
		first_ok_ms = now;
	return n;
}

/* unsigned 32-bit differences: exact modulo 2^32 (see struct snap) */
static void sub_window(const struct snap *newer, const struct snap *older, struct rev_window *out)
{
	out->requests = (uint32_t)(newer->requests - older->requests);
	for (int i = 0; i < 6; i++)
		out->status[i] = (uint32_t)(newer->status[i] - older->status[i]);
	for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++)
		out->latency[i] = (uint32_t)(newer->latency[i] - older->latency[i]);
	out->bytes_in = newer->bytes_in - older->bytes_in;
	out->bytes_out = newer->bytes_out - older->bytes_out;
}

int metrics_window(const char *svc, const char *env, int revision, int64_t duration_ms, int64_t now,
		   struct rev_window *out)
{
	const struct series *s = find(svc, env, revision, false);
	const struct snap *newest, *base = NULL;
	int64_t from = now - duration_ms;

	memset(out, 0, sizeof(*out));
	if (!s || !s->nfine)
		return -1;
	newest = fine_at(s, 0);
	/* the newest snapshot at or before `from`: fine ring first, then coarse */
	for (int k = 0; k < s->nfine; k++)
		if (fine_at(s, k)->t_ms <= from) {
			base = fine_at(s, k);
			break;
		}
	if (!base)
		for (int k = 0; k < s->ncoarse; k++)
			if (coarse_at(s, k)->t_ms <= from) {
				base = coarse_at(s, k);
				break;
			}
	if (!base) {
		/* history shorter than asked: everything since the first snapshot */
		base = s->ncoarse ? coarse_at(s, s->ncoarse - 1) : fine_at(s, s->nfine - 1);
	}
	sub_window(newest, base, out);
	out->start_ms = base->t_ms;
	out->end_ms = newest->t_ms;
	return 0;
}

int64_t metrics_history_ms(int64_t now)
{
	return first_ok_ms ? now - first_ok_ms : -1;
}

int64_t metrics_age_ms(int64_t now)
{
	return last_ok_ms ? now - last_ok_ms : -1;
}

static void poll_done(long code, const char *body, void *data)
{
	int64_t now = clock_mono_ms();
	(void)data;
	busy = false;
	if (code == 200 && body)
		metrics__ingest(body, now);
}

/* revisions that no longer run (no replica, neither stable nor target) */
static void forget_stopped(int64_t now)
{
	struct series **pp = &all;
	while (*pp) {
		struct series *s = *pp;
		if (revision_live(s->service, s->environment, s->revision))
			s->live_ms = now;
		if (now - s->live_ms > 60000) {
			*pp = s->next;
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

void metrics_tick(int64_t now)
{
	static int64_t last_forget;
	if (now - last_forget > 10000) {
		last_forget = now;
		forget_stopped(now);
	}
	if (busy || !gd->proxy_pid || now - last_poll_ms < FINE_MS)
		return;
	last_poll_ms = now;
	busy = proxyctl_admin_get("/windows", poll_done, NULL) == 0;
}

void metrics_free(void)
{
	while (all) {
		struct series *n = all->next;
		free(all);
		all = n;
	}
	first_ok_ms = last_ok_ms = 0;
}
