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
 *
 * A proxy replacement (kill -9 and restart, a crash, an upgrade) does not
 * break a series: it is stitched. Every proxy process has an epoch (a
 * random id made at its start, "epoch" in /windows); the counters of a new
 * epoch are added to an offset, so that the snapshots keep counting up from
 * the last one of the old epoch:
 *
 *     offset = last snapshot (old epoch) - base
 *     snapshot = offset + counters (new epoch)
 *
 * where base is what the new proxy says it started from ("base" of the
 * revision: the counters the controller carried over to it with
 * --counters-from, below; 0 without a carry). A window across the
 * replacement then counts the old proxy's requests up to its last poll
 * plus the new proxy's, never a negative difference (which the modulo-2^32
 * snapshots would turn into a surge of four billion 5xx) and never a drop
 * to "no data". The gap, on purpose: requests the old proxy finished after
 * our last poll of it (at most ~100 ms of them, before it died) are counted
 * nowhere. A proxy that reports no epoch (older than this) is taken as
 * replaced when its requests go down, with no base; one that restarted and
 * counted more than its predecessor by our first poll cannot be told apart.
 *
 * The carry: the last /windows document read is kept, and written to
 * HOME/proxy-counters.json when the controller starts a proxy (spawn_proxy
 * passes it as --counters-from), so that the new proxy's /windows and
 * /metrics continue from where we last saw the old one's.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/metrics.h"
#include "daemon/proxypeers.h"
#include "util/log.h"
#include "util/clock.h"
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>

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
	uint64_t last_requests;            /* the newest document's, in full (an old proxy's restart goes back) */
	uint64_t epoch;                    /* the proxy process of the newest snapshot (0: it did not say) */
	struct snap offset;                /* added to that process's counters (t_ms unused): the stitch */
	int64_t last_seen_ms;
	int64_t live_ms;                   /* last time the revision ran */
	struct series *next;
};

static struct series *all;
static bool busy;
static int64_t last_poll_ms;
static int64_t last_ok_ms;
static int64_t first_ok_ms;    /* the first /windows this controller read: its history starts there */
static char *last_doc;         /* the last /windows document read (owned): the carry */


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

/* the snapshot of a document's counters w: w + the series' offset, modulo 2^32 for the counts */
static void pack(struct snap *p, int64_t t, const struct rev_window *w, const struct snap *off)
{
	p->t_ms = t;
	p->requests = (uint32_t)w->requests + off->requests; /* modulo 2^32, on purpose */
	for (int i = 0; i < 6; i++)
		p->status[i] = (uint32_t)w->status[i] + off->status[i];
	for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++)
		p->latency[i] = (uint32_t)w->latency[i] + off->latency[i];
	p->bytes_in = w->bytes_in + off->bytes_in;
	p->bytes_out = w->bytes_out + off->bytes_out;
}

/* a counter's base, never above the counter itself (a proxy that says so lies) */
static uint64_t base_of(uint64_t base, uint64_t v)
{
	return base < v ? base : v;
}

/*
 * A new proxy process: from now on the series is its counters w (started
 * from base, NULL: from 0) added to the newest snapshot, which is the old
 * process's last. Differences across it are never negative.
 */
static void stitch(struct series *s, const struct rev_window *w, const struct rev_window *base)
{
	static const struct rev_window zero;
	const struct snap *last = fine_at(s, 0);
	struct snap *o = &s->offset;

	if (!base)
		base = &zero;
	o->requests = last->requests - (uint32_t)base_of(base->requests, w->requests);
	for (int i = 0; i < 6; i++)
		o->status[i] = last->status[i] - (uint32_t)base_of(base->status[i], w->status[i]);
	for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++)
		o->latency[i] = last->latency[i] - (uint32_t)base_of(base->latency[i], w->latency[i]);
	o->bytes_in = last->bytes_in - base_of(base->bytes_in, w->bytes_in);
	o->bytes_out = last->bytes_out - base_of(base->bytes_out, w->bytes_out);
}

static void add_snap(struct series *s, int64_t t, const struct rev_window *w, uint64_t epoch,
		     const struct rev_window *base)
{
	if (s->nfine && epoch != s->epoch) {
		/* another proxy process: its counters continue ours */
		stitch(s, w, base);
		log_info("metrics", "service=%s environment=%s revision=%d proxy_epoch=%016llx "
			 "previous=%016llx stitched=1 carried=%s", s->service, s->environment, s->revision,
			 (unsigned long long)epoch, (unsigned long long)s->epoch, base ? "yes" : "no");
	} else if (s->nfine && w->requests < s->last_requests) {
		/* the same epoch going back: a proxy too old to have one restarted */
		stitch(s, w, NULL);
	}
	s->epoch = epoch;
	s->last_requests = w->requests;
	pack(&s->fine[s->fine_head], t, w, &s->offset);
	s->fine_head = (s->fine_head + 1) % FINE_KEEP;
	if (s->nfine < FINE_KEEP)
		s->nfine++;
	if (!s->ncoarse || t - coarse_at(s, 0)->t_ms >= COARSE_MS) {
		pack(&s->coarse[s->coarse_head], t, w, &s->offset);
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

static uint64_t json_u64(json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* the counters of a revision (or of its "base"): 0, or -1 when they do not parse */
static int parse_counters(json_t *r, struct rev_window *w)
{
	json_t *req = json_object_get(r, "requests");
	if (!json_is_integer(req) || json_integer_value(req) < 0)
		return -1;
	w->requests = (uint64_t)json_integer_value(req);
	if (json_u64_array(json_object_get(r, "status"), w->status, 6) < 0 ||
	    json_u64_array(json_object_get(r, "latency"), w->latency, METRIC_LATENCY_BUCKETS) < 0)
		return -1;
	w->bytes_in = json_u64(json_object_get(r, "bytes_in"));
	w->bytes_out = json_u64(json_object_get(r, "bytes_out"));
	return 0;
}

/* "epoch": 1 to 16 hex digits; 0 when absent or not that */
static uint64_t parse_epoch(json_t *doc)
{
	const char *e = json_string_value(json_object_get(doc, "epoch"));
	size_t n = e ? strlen(e) : 0;
	if (!n || n > 16 || strspn(e, "0123456789abcdefABCDEF") != n)
		return 0;
	return strtoull(e, NULL, 16);
}

/* parses the proxy's /windows document; returns how many series it fed */
int metrics__ingest(const char *body, int64_t now)
{
	json_t *doc = json_loads(body, 0, NULL), *revs, *r;
	size_t i;
	int n = 0;
	uint64_t epoch;
	if (!doc)
		return -1;
	epoch = parse_epoch(doc);
	revs = json_object_get(doc, "revisions");
	json_array_foreach(revs, i, r) {
		const char *svc = json_string_value(json_object_get(r, "service"));
		const char *env = json_string_value(json_object_get(r, "environment"));
		const char *rev = json_string_value(json_object_get(r, "revision"));
		json_t *jbase = json_object_get(r, "base");
		struct rev_window w = { 0 }, base = { 0 };
		struct series *se;
		char *end;
		long revno;
		if (!svc || !env || !rev)
			continue;
		revno = strtol(rev, &end, 10);
		if (*end || revno <= 0 || parse_counters(r, &w) < 0)
			continue;
		if (jbase && parse_counters(jbase, &base) < 0)
			continue;
		w.end_ms = now;
		se = find(svc, env, (int)revno, true);
		if (se)
			add_snap(se, now, &w, epoch, jbase ? &base : NULL);
		n++;
	}
	json_decref(doc);
	free(last_doc);
	last_doc = xstrdup(body);
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

static void fleet_done(const char *doc, void *data)
{
	(void)data;
	busy = false;
	if (doc)
		metrics__ingest(doc, clock_mono_ms());
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
	if (busy || (!gd->proxy_pid && !proxypeers_count()) || now - last_poll_ms < FINE_MS)
		return;
	last_poll_ms = now;
	if (proxypeers_count()) {
		/* remote proxies too: the sum of every proxy's windows */
		busy = proxypeers_windows(fleet_done, NULL) == 0;
		return;
	}
	busy = proxyctl_admin_get("/windows", poll_done, NULL) == 0;
}

int metrics_carry_save(const char *path, struct gerr *err)
{
	char *tmp;
	size_t len, off = 0;
	int fd, ret = -1;

	if (!last_doc)
		return 0;
	tmp = xasprintf("%s.tmp", path);
	len = strlen(last_doc);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		gerr_set(err, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, last_doc + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			gerr_set(err, "%s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			goto out;
		}
		off += (size_t)w;
	}
	/* no fsync: the file only has to outlive a proxy, not the machine (a
	 * torn file after a power loss is refused by the proxy, which then
	 * starts from 0), and the loop must not wait for the disk */
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		gerr_set(err, "%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	ret = 1;
out:
	free(tmp);
	return ret;
}

void metrics_free(void)
{
	free(last_doc);
	last_doc = NULL;
	while (all) {
		struct series *n = all->next;
		free(all);
		all = n;
	}
	first_ok_ms = last_ok_ms = 0;
}
