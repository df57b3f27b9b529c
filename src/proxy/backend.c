/*
 * backend.c — the backend and metric-series registries (see backend.h for
 * the threading rules).
 */
#include "common.h"
#include "proxy/backend.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>

int proxy_nworkers = 1;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric_series *_Atomic series_head;
static struct backend *backend_head;

void proxy_set_workers(int n)
{
	BUG_ON(n < 1 || n > PROXY_MAX_WORKERS);
	proxy_nworkers = n;
}

/* zeroed, cache-line aligned; owned by the caller (free()) */
void *proxy__calloc_aligned(size_t n, size_t size)
{
	void *p = NULL;
	size_t bytes = n * size;
	if (!bytes)
		bytes = CACHELINE;
	bytes = (bytes + CACHELINE - 1) & ~(size_t)(CACHELINE - 1);
	if (posix_memalign(&p, CACHELINE, bytes)) {
		fprintf(stderr, "fatal: out of memory (%zu bytes)\n", bytes);
		abort();
	}
	memset(p, 0, bytes);
	return p;
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

struct metric_series *metric_series_get(const char *svc, const char *env, const char *rev)
{
	struct metric_series *s, *_Atomic *tail = &series_head;
	svc = nz(svc);
	env = nz(env);
	rev = nz(rev);
	pthread_mutex_lock(&reg_lock);
	for (s = atomic_load(&series_head); s; s = atomic_load(&s->next)) {
		if (!strcmp(s->service, svc) && !strcmp(s->environment, env) &&
		    !strcmp(s->revision, rev))
			goto out;
		tail = &s->next;
	}
	s = xcalloc(1, sizeof(*s));
	s->service = xstrdup(svc);
	s->environment = xstrdup(env);
	s->revision = xstrdup(rev);
	s->w = proxy__calloc_aligned((size_t)proxy_nworkers, sizeof(*s->w));
	/* published complete: readers walk the list without the lock */
	atomic_store_explicit(tail, s, memory_order_release); /* creation order: stable output */
out:
	atomic_fetch_add_explicit(&s->holds, 1, memory_order_relaxed);
	pthread_mutex_unlock(&reg_lock);
	return s;
}

void metric_series_put(struct metric_series *s)
{
	if (s)
		BUG_ON(atomic_fetch_sub_explicit(&s->holds, 1, memory_order_relaxed) < 1);
}

bool metric_series_live(const struct metric_series *s, const struct series_sum *sum)
{
	return atomic_load_explicit(&s->holds, memory_order_relaxed) > 0 || sum->inflight > 0;
}

struct metric_series *metric_series_first(void)
{
	return atomic_load_explicit(&series_head, memory_order_acquire);
}

void metric_series_seed(const char *svc, const char *env, const char *rev, const struct series_sum *base)
{
	struct metric_series *s = metric_series_get(svc, env, rev);
	s->base = *base;
	s->base.inflight = 0;
	s->has_base = true;
	metric_series_put(s);
}

void metric_series_sum(const struct metric_series *s, struct series_sum *o)
{
	*o = s->base;
	for (int w = 0; w < proxy_nworkers; w++) {
		const struct series_ctr *c = &s->w[w];
		o->requests += CTR_GET(c->requests);
		for (int i = 0; i < 6; i++)
			o->status[i] += CTR_GET(c->status[i]);
		for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++)
			o->latency[i] += CTR_GET(c->latency[i]);
		o->latency_sum_us += CTR_GET(c->latency_sum_us);
		o->bytes_in += CTR_GET(c->bytes_in);
		o->bytes_out += CTR_GET(c->bytes_out);
		o->upstream_errors += CTR_GET(c->upstream_errors);
		o->inflight += CTR_GET(c->inflight);
		o->maintenance += CTR_GET(c->maintenance);
	}
}

void metric_count_maintenance(struct metric_series *s, int worker)
{
	CTR_ADD(s->w[worker].maintenance, 1);
}

void metric_count(struct metric_series *s, int worker, int cls, uint64_t latency_us,
		  uint64_t bytes_in, uint64_t bytes_out)
{
	struct series_ctr *c = &s->w[worker];
	if (cls < 0 || cls > 5)
		cls = 5;
	CTR_ADD(c->status[cls], 1);
	if (cls && latency_us != UINT64_MAX) {
		CTR_ADD(c->latency[metric_latency_bucket(latency_us)], 1);
		CTR_ADD(c->latency_sum_us, latency_us);
	}
	CTR_ADD(c->bytes_in, bytes_in);
	CTR_ADD(c->bytes_out, bytes_out);
	/* last, so that a reader sees requests <= sum(status) at worst */
	CTR_ADD(c->requests, 1);
}

int backend_parse_addr(const char *addr, struct sockaddr_storage *sa)
{
	char host[64];
	const char *colon;
	char *end;
	size_t hl;
	long port;

	memset(sa, 0, sizeof(*sa));
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - addr - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, addr + 1, hl);
		host[hl] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - addr);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, addr, hl);
		host[hl] = 0;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return -1;
	if (addr[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
	}
	return 0;
}

/* backend_seed_checks' seeds, consumed by backend_get (under reg_lock) */
static struct check_seed {
	char *key; /* "address\nservice\nenvironment\nrevision" */
	uint64_t passed, failed;
	struct check_seed *next;
} *check_seeds;

static char *seed_key(const char *addr, const char *svc, const char *env, const char *rev)
{
	return xasprintf("%s\n%s\n%s\n%s", addr, svc, env, rev);
}

void backend_seed_checks(const char *addr, const char *svc, const char *env, const char *rev, uint64_t passed,
			 uint64_t failed)
{
	struct check_seed *c = xcalloc(1, sizeof(*c));
	c->key = seed_key(addr, nz(svc), nz(env), nz(rev));
	c->passed = passed;
	c->failed = failed;
	pthread_mutex_lock(&reg_lock);
	c->next = check_seeds;
	check_seeds = c;
	pthread_mutex_unlock(&reg_lock);
}

/* the seed of b's checks, if any, taken (reg_lock held) */
static void take_check_seed(struct backend *b)
{
	char *key;
	if (!check_seeds)
		return;
	key = seed_key(b->address, b->service, b->environment, b->revision);
	for (struct check_seed **pp = &check_seeds, *c; (c = *pp); pp = &c->next)
		if (!strcmp(c->key, key)) {
			atomic_store(&b->hc_passed, c->passed);
			atomic_store(&b->hc_failed, c->failed);
			*pp = c->next;
			free(c->key);
			free(c);
			break;
		}
	free(key);
}

struct backend *backend_get(const char *addr, const char *svc, const char *env,
			    const char *rev, struct gerr *err)
{
	struct backend *b;
	struct sockaddr_storage sa;

	svc = nz(svc);
	env = nz(env);
	rev = nz(rev);
	if (backend_parse_addr(addr, &sa) < 0) {
		gerr_set(err, "invalid address '%s' (want IPv4:port or [IPv6]:port)", addr);
		return NULL;
	}
	pthread_mutex_lock(&reg_lock);
	for (b = backend_head; b; b = b->next) {
		int r;
		if (strcmp(b->address, addr) || strcmp(b->service, svc) ||
		    strcmp(b->environment, env) || strcmp(b->revision, rev))
			continue;
		/* a backend whose last reference is being dropped is not revived */
		r = atomic_load(&b->refs);
		while (r > 0 && !atomic_compare_exchange_weak(&b->refs, &r, r + 1))
			;
		if (r > 0)
			goto out;
	}
	pthread_mutex_unlock(&reg_lock);
	/* metric_series_get takes the lock itself */
	b = xcalloc(1, sizeof(*b));
	b->sa = sa;
	b->address = xstrdup(addr);
	b->service = xstrdup(svc);
	b->environment = xstrdup(env);
	b->revision = xstrdup(rev);
	atomic_init(&b->refs, 1);
	b->ms = metric_series_get(svc, env, rev);
	b->w = proxy__calloc_aligned((size_t)proxy_nworkers, sizeof(*b->w));
	for (int w = 0; w < proxy_nworkers; w++)
		b->w[w].pool.next = b->w[w].pool.prev = &b->w[w].pool;
	pthread_mutex_lock(&reg_lock);
	take_check_seed(b);
	b->next = backend_head;
	if (backend_head)
		backend_head->prev = b;
	backend_head = b;
out:
	pthread_mutex_unlock(&reg_lock);
	return b;
}

void backend_ref(struct backend *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void backend_put(struct backend *b)
{
	if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) > 1)
		return;
	for (int w = 0; w < proxy_nworkers; w++)
		BUG_ON(b->w[w].npool || CTR_GET(b->w[w].inflight));
	pthread_mutex_lock(&reg_lock);
	if (b->prev)
		b->prev->next = b->next;
	else
		backend_head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	pthread_mutex_unlock(&reg_lock);
	metric_series_put(b->ms);
	free(b->address);
	free(b->service);
	free(b->environment);
	free(b->revision);
	free(b->w);
	free(b);
}

void backend_lock(void)
{
	pthread_mutex_lock(&reg_lock);
}

void backend_unlock(void)
{
	pthread_mutex_unlock(&reg_lock);
}

struct backend *backend_first(void)
{
	return backend_head;
}

int64_t backend_inflight(const struct backend *b)
{
	int64_t n = 0;
	for (int w = 0; w < proxy_nworkers; w++)
		n += CTR_GET(b->w[w].inflight);
	return n;
}

bool backend_ejected(const struct backend *b, uint64_t now_ms)
{
	uint64_t until = atomic_load_explicit(&b->ejected_until, memory_order_relaxed);
	return until && now_ms < until;
}

const char *backend_health_name(const struct backend *b)
{
	switch (atomic_load_explicit(&b->hc_state, memory_order_relaxed)) {
	case BACKEND_HC_UP: return "up";
	case BACKEND_HC_DOWN: return "down";
	default: return "unchecked";
	}
}

bool backend_connect_result(struct backend *b, bool ok, uint64_t now_ms)
{
	uint64_t until;
	if (ok) {
		if (atomic_load_explicit(&b->fails, memory_order_relaxed))
			atomic_store_explicit(&b->fails, 0, memory_order_relaxed);
		if (atomic_load_explicit(&b->ejected_until, memory_order_relaxed))
			atomic_store_explicit(&b->ejected_until, 0, memory_order_relaxed);
		return false;
	}
	if (atomic_fetch_add(&b->fails, 1) + 1 < BACKEND_EJECT_FAILS)
		return false;
	until = atomic_load(&b->ejected_until);
	if (until && now_ms < until)
		return false;
	/* one thread wins the ejection (and logs it) */
	return atomic_compare_exchange_strong(&b->ejected_until, &until, now_ms + BACKEND_EJECT_MS);
}
