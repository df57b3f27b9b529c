#include "common.h"
#include "proxy/backend.h"
#include <arpa/inet.h>
#include <netinet/in.h>

const double metric_buckets[METRIC_NBUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static struct metric_series *series_head;
static struct backend *backend_head;

static const char *nz(const char *s)
{
	return s ? s : "";
}

struct metric_series *metric_series_get(const char *svc, const char *env, const char *rev)
{
	struct metric_series *s, **tail = &series_head;
	svc = nz(svc);
	env = nz(env);
	rev = nz(rev);
	for (s = series_head; s; s = s->next) {
		if (!strcmp(s->service, svc) && !strcmp(s->environment, env) &&
		    !strcmp(s->revision, rev))
			return s;
		tail = &s->next;
	}
	s = xcalloc(1, sizeof(*s));
	s->service = xstrdup(svc);
	s->environment = xstrdup(env);
	s->revision = xstrdup(rev);
	*tail = s; /* keep creation order: stable output */
	return s;
}

struct metric_series *metric_series_first(void)
{
	return series_head;
}

void metric_observe(struct metric_series *s, int status, double seconds)
{
	int cls = status / 100;
	size_t i;
	s->codes[cls >= 1 && cls <= 5 ? cls : 0]++;
	for (i = 0; i < METRIC_NBUCKETS; i++)
		if (seconds <= metric_buckets[i])
			break;
	if (i < METRIC_NBUCKETS)
		s->buckets[i]++;
	s->count++;
	s->sum += seconds;
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

struct backend *backend_get(const char *addr, const char *svc, const char *env,
			    const char *rev, struct gerr *err)
{
	struct backend *b;
	svc = nz(svc);
	env = nz(env);
	rev = nz(rev);
	for (b = backend_head; b; b = b->next) {
		if (!strcmp(b->address, addr) && !strcmp(b->service, svc) &&
		    !strcmp(b->environment, env) && !strcmp(b->revision, rev)) {
			b->refs++;
			return b;
		}
	}
	b = xcalloc(1, sizeof(*b));
	if (backend_parse_addr(addr, &b->sa) < 0) {
		free(b);
		gerr_set(err, "invalid address '%s' (want IPv4:port or [IPv6]:port)", addr);
		return NULL;
	}
	b->address = xstrdup(addr);
	b->service = xstrdup(svc);
	b->environment = xstrdup(env);
	b->revision = xstrdup(rev);
	b->refs = 1;
	b->ms = metric_series_get(svc, env, rev);
	b->pool.next = b->pool.prev = &b->pool;
	b->next = backend_head;
	if (backend_head)
		backend_head->prev = b;
	backend_head = b;
	return b;
}

void backend_ref(struct backend *b)
{
	b->refs++;
}

void backend_put(struct backend *b)
{
	if (!b || --b->refs > 0)
		return;
	BUG_ON(b->npool || b->inflight);
	if (b->prev)
		b->prev->next = b->next;
	else
		backend_head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	free(b->address);
	free(b->service);
	free(b->environment);
	free(b->revision);
	free(b);
}

struct backend *backend_first(void)
{
	return backend_head;
}

bool backend_ejected(const struct backend *b, uint64_t now_ms)
{
	return b->ejected_until && now_ms < b->ejected_until;
}

bool backend_connect_result(struct backend *b, bool ok, uint64_t now_ms)
{
	if (ok) {
		b->fails = 0;
		b->ejected_until = 0;
		return false;
	}
	if (++b->fails < BACKEND_EJECT_FAILS || backend_ejected(b, now_ms))
		return false;
	b->ejected_until = now_ms + BACKEND_EJECT_MS;
	return true;
}
