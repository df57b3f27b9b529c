/*
 * proxyfleet.c — the proxies of a fleet seen as one (proxyfleet.h): their
 * /windows summed. The rule for a proxy that stops reporting, and why:
 * docs/internals/fleet.md, "Proxies on every node".
 */
#include "common.h"
#include "daemon/proxyfleet.h"
#include "http/window.h"
#include <jansson.h>

/* the counters of a window, as numbers that add */
#define NCTR (1 + 6 + METRIC_LATENCY_BUCKETS + 2)

struct ctr {
	uint64_t v[NCTR]; /* requests, status[6], latency[32], bytes_in, bytes_out */
};

/* one revision as one proxy counts it */
struct prev {
	char *service, *environment, *revision;
	struct ctr offset;  /* the stitch: added to its counters */
	struct ctr last;    /* its counters in the last answer used */
	int64_t inflight;
	bool seen;          /* in that answer */
};

struct pstate {
	char *name;
	uint64_t epoch;
	int64_t last_ok_ms, generation;
	int restarts, gaps;
	bool ever, stale;   /* read once; left out of the last sum */
	struct prev *revs;
	size_t nrevs;
	bool keep;          /* in this round's reads */
};

struct fleet_sum {
	struct pstate *p;
	size_t np;
	uint64_t epoch;     /* the fleet's: made once, never changes */
};

struct fleet_sum *fleet_sum_new(void)
{
	struct fleet_sum *s = xcalloc(1, sizeof(*s));
	/* not a proxy's epoch, and stable for the controller's life */
	s->epoch = 0xf1ee7000000000ull | ((uint64_t)getpid() & 0xffffffull);
	return s;
}

static void pstate_free(struct pstate *p)
{
	for (size_t i = 0; i < p->nrevs; i++) {
		free(p->revs[i].service);
		free(p->revs[i].environment);
		free(p->revs[i].revision);
	}
	free(p->revs);
	free(p->name);
}

void fleet_sum_free(struct fleet_sum *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->np; i++)
		pstate_free(&s->p[i]);
	free(s->p);
	free(s);
}

static struct pstate *proxy_state(struct fleet_sum *s, const char *name)
{
	for (size_t i = 0; i < s->np; i++)
		if (!strcmp(s->p[i].name, name))
			return &s->p[i];
	s->p = xrealloc(s->p, (s->np + 1) * sizeof(*s->p));
	memset(&s->p[s->np], 0, sizeof(*s->p));
	s->p[s->np].name = xstrdup(name);
	s->p[s->np].generation = -1;
	return &s->p[s->np++];
}

static struct prev *rev_state(struct pstate *p, const char *svc, const char *env, const char *rev)
{
	for (size_t i = 0; i < p->nrevs; i++)
		if (!strcmp(p->revs[i].service, svc) && !strcmp(p->revs[i].environment, env) &&
		    !strcmp(p->revs[i].revision, rev))
			return &p->revs[i];
	p->revs = xrealloc(p->revs, (p->nrevs + 1) * sizeof(*p->revs));
	memset(&p->revs[p->nrevs], 0, sizeof(*p->revs));
	p->revs[p->nrevs].service = xstrdup(svc);
	p->revs[p->nrevs].environment = xstrdup(env);
	p->revs[p->nrevs].revision = xstrdup(rev);
	return &p->revs[p->nrevs++];
}

static int u64_array(const json_t *a, uint64_t *out, size_t n)
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

static uint64_t u64(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* a revision's counters ("base" has the same shape); -1 if they are not there */
static int parse_ctr(const json_t *r, struct ctr *c)
{
	const json_t *req = json_object_get(r, "requests");
	memset(c, 0, sizeof(*c));
	if (!json_is_integer(req) || json_integer_value(req) < 0)
		return -1;
	c->v[0] = (uint64_t)json_integer_value(req);
	if (u64_array(json_object_get(r, "status"), c->v + 1, 6) < 0 ||
	    u64_array(json_object_get(r, "latency"), c->v + 7, METRIC_LATENCY_BUCKETS) < 0)
		return -1;
	c->v[NCTR - 2] = u64(json_object_get(r, "bytes_in"));
	c->v[NCTR - 1] = u64(json_object_get(r, "bytes_out"));
	return 0;
}

static uint64_t parse_epoch(const json_t *doc)
{
	const char *e = json_string_value(json_object_get(doc, "epoch"));
	size_t n = e ? strlen(e) : 0;
	if (!n || n > 16 || strspn(e, "0123456789abcdefABCDEF") != n)
		return 0;
	return strtoull(e, NULL, 16);
}

/*
 * One fresh answer of p: its contribution to a revision (offset + last)
 * becomes
 *  - its first answer: 0 (what it counted before is before our history);
 *  - back after being left out (stale), restarted or not: unchanged (what
 *    it counted meanwhile cannot be placed in time);
 *  - restarted (a new epoch, or counters that went back): the old
 *    process's last counters plus the new one's minus the base it says it
 *    started from (a --counters-from carry);
 *  - else: offset + its counters (a revision new to it counts from 0).
 * Unsigned arithmetic modulo 2^64: an offset may "go below zero", a
 * contribution never does.
 */
static int take_answer(struct pstate *p, const json_t *doc, int64_t read_ms)
{
	const json_t *revs = json_object_get(doc, "revisions"), *r;
	uint64_t epoch = parse_epoch(doc);
	bool first = !p->ever, back = p->ever && p->stale, restarted = p->ever && epoch != p->epoch;
	size_t i;

	if (!json_is_array(revs))
		return -1;
	if (restarted)
		p->restarts++;
	if (back)
		p->gaps++;
	for (i = 0; i < p->nrevs; i++)
		p->revs[i].seen = false;
	json_array_foreach(revs, i, r) {
		const char *svc = json_string_value(json_object_get(r, "service"));
		const char *env = json_string_value(json_object_get(r, "environment"));
		const char *rev = json_string_value(json_object_get(r, "revision"));
		const json_t *jbase = json_object_get(r, "base");
		struct ctr c, base = { { 0 } };
		struct prev *pr;
		bool went_back = false;
		if (!svc || !env || !rev || parse_ctr(r, &c) < 0 || (jbase && parse_ctr(jbase, &base) < 0))
			continue;
		pr = rev_state(p, svc, env, rev);
		for (int k = 0; k < NCTR; k++)
			went_back |= c.v[k] < pr->last.v[k];
		for (int k = 0; k < NCTR; k++) {
			uint64_t before = pr->offset.v[k] + pr->last.v[k];
			if (first || back)
				pr->offset.v[k] = before - c.v[k];
			else if (restarted || went_back)
				pr->offset.v[k] = before - base.v[k];
			pr->last.v[k] = c.v[k];
		}
		if (went_back && !first && !back && !restarted)
			p->restarts++; /* the same epoch going back: a proxy too old to say its epoch */
		pr->inflight = json_integer_value(json_object_get(r, "inflight"));
		pr->seen = true;
	}
	/* a revision the new process does not list: what the old one counted stays */
	for (i = 0; i < p->nrevs; i++)
		if (!p->revs[i].seen && (restarted || back || first)) {
			for (int k = 0; k < NCTR; k++)
				p->revs[i].offset.v[k] += p->revs[i].last.v[k];
			memset(&p->revs[i].last, 0, sizeof(p->revs[i].last));
			p->revs[i].inflight = 0;
		}
	p->epoch = epoch;
	p->ever = true;
	p->stale = false;
	p->last_ok_ms = read_ms;
	p->generation = json_is_integer(json_object_get(doc, "generation"))
				? json_integer_value(json_object_get(doc, "generation"))
				: -1;
	return 0;
}

/* the sums: every proxy's offset + last, per revision (the reporting ones' inflight) */
struct sum_rev {
	const char *service, *environment, *revision;
	struct ctr c;
	int64_t inflight;
};

static int cmp_sum_rev(const void *a, const void *b)
{
	const struct sum_rev *x = a, *y = b;
	int c = strcmp(x->service, y->service);
	if (!c)
		c = strcmp(x->environment, y->environment);
	if (!c)
		c = strcmp(x->revision, y->revision);
	return c;
}

int fleet_sum_windows(struct fleet_sum *s, const struct fleet_read *reads, size_t n, int64_t now_ms,
		      int64_t stale_ms, struct hbuf *out, struct fleet_proxy *report)
{
	struct sum_rev *sums = NULL;
	size_t nsums = 0, reporting = 0, i, k;
	int64_t generation = -1;
	bool first;

	for (i = 0; i < s->np; i++)
		s->p[i].keep = false;
	for (i = 0; i < n; i++) {
		struct pstate *p = proxy_state(s, reads[i].proxy);
		json_t *doc = NULL;
		bool fresh = reads[i].doc && now_ms - reads[i].read_ms <= stale_ms;
		p->keep = true;
		if (fresh)
			doc = json_loads(reads[i].doc, 0, NULL);
		if (doc && json_is_object(doc) && take_answer(p, doc, reads[i].read_ms) == 0) {
			reporting++;
			if (generation < 0 || (p->generation >= 0 && p->generation < generation))
				generation = p->generation;
		} else if (!p->ever || now_ms - p->last_ok_ms > stale_ms) {
			p->stale = true; /* a failed read within stale_ms of a good one is not yet stale */
		} else {
			reporting++; /* its last answer is recent enough: it still counts */
		}
		json_decref(doc);
		if (report) {
			struct fleet_proxy *f = &report[i];
			memset(f, 0, sizeof(*f));
			snprintf(f->proxy, sizeof(f->proxy), "%s", p->name);
			f->reporting = !p->stale;
			f->last_ok_ms = p->last_ok_ms;
			f->generation = p->generation;
			f->epoch = p->epoch;
			f->restarts = p->restarts;
			f->gaps = p->gaps;
		}
	}
	/* proxies no longer in the fleet: forgotten, with what they counted */
	for (i = 0; i < s->np;) {
		if (s->p[i].keep) {
			i++;
			continue;
		}
		pstate_free(&s->p[i]);
		s->p[i] = s->p[--s->np];
	}
	for (i = 0; i < s->np; i++)
		for (k = 0; k < s->p[i].nrevs; k++) {
			const struct prev *pr = &s->p[i].revs[k];
			struct sum_rev *sr = NULL;
			for (size_t j = 0; j < nsums; j++)
				if (!strcmp(sums[j].service, pr->service) &&
				    !strcmp(sums[j].environment, pr->environment) &&
				    !strcmp(sums[j].revision, pr->revision))
					sr = &sums[j];
			if (!sr) {
				sums = xrealloc(sums, (nsums + 1) * sizeof(*sums));
				sr = &sums[nsums++];
				memset(sr, 0, sizeof(*sr));
				sr->service = pr->service;
				sr->environment = pr->environment;
				sr->revision = pr->revision;
			}
			for (int c = 0; c < NCTR; c++)
				sr->c.v[c] += pr->offset.v[c] + pr->last.v[c];
			if (!s->p[i].stale)
				sr->inflight += pr->inflight;
		}
	if (nsums > 1)
		qsort(sums, nsums, sizeof(*sums), cmp_sum_rev);

	hbuf_printf(out, "{\"now_ms\":%lld,\"epoch\":\"%016llx\",\"generation\":%lld,", (long long)now_ms,
		    (unsigned long long)s->epoch, (long long)generation);
	hbuf_printf(out, "\"proxies\":{\"total\":%zu,\"reporting\":%zu,\"quorum\":%s,\"stale\":[", n, reporting,
		    reporting >= fleet_quorum(n) ? "true" : "false");
	first = true;
	for (i = 0; i < n; i++) {
		const struct pstate *p = proxy_state(s, reads[i].proxy);
		if (p->stale) {
			json_t *name = json_string(p->name);
			char *q = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
			hbuf_printf(out, "%s%s", first ? "" : ",", q ? q : "\"?\"");
			free(q);
			json_decref(name);
			first = false;
		}
	}
	hbuf_addstr(out, "]},\"revisions\":[");
	for (i = 0; i < nsums; i++) {
		json_t *labels = json_pack("{s:s, s:s, s:s}", "service", sums[i].service, "environment",
					   sums[i].environment, "revision", sums[i].revision);
		char *l = json_dumps(labels, JSON_COMPACT | JSON_PRESERVE_ORDER);
		const uint64_t *v = sums[i].c.v;
		json_decref(labels);
		/* the labels' object without its closing brace, then the counters */
		hbuf_printf(out, "%s%.*s,\"requests\":%llu,\"status\":[", i ? "," : "", (int)strlen(l) - 1, l,
			    (unsigned long long)v[0]);
		free(l);
		for (k = 0; k < 6; k++)
			hbuf_printf(out, "%s%llu", k ? "," : "", (unsigned long long)v[1 + k]);
		hbuf_addstr(out, "],\"latency\":[");
		for (k = 0; k < METRIC_LATENCY_BUCKETS; k++)
			hbuf_printf(out, "%s%llu", k ? "," : "", (unsigned long long)v[7 + k]);
		hbuf_printf(out, "],\"bytes_in\":%llu,\"bytes_out\":%llu,\"inflight\":%lld}",
			    (unsigned long long)v[NCTR - 2], (unsigned long long)v[NCTR - 1],
			    (long long)sums[i].inflight);
	}
	free(sums);
	if (hbuf_addstr(out, "]}") < 0)
		return -1;
	return (int)reporting;
}
