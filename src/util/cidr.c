/*
 * cidr.c — address networks and membership (see cidr.h).
 */
#include "common.h"
#include "util/cidr.h"
#include <arpa/inet.h>
#include <netinet/in.h>

int cidr_parse(const char *s, size_t len, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	struct cidr c = { 0 };
	size_t alen;
	int max;

	if (!len || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = 0;
	slash = strchr(buf, '/');
	alen = slash ? (size_t)(slash - buf) : len;
	buf[alen] = 0;
	if (inet_pton(AF_INET, buf, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	c.bits = (uint8_t)max;
	if (slash) {
		const char *p = slash + 1;
		int bits = 0;
		if (!*p || strlen(p) > 3)
			return -1;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			bits = bits * 10 + (*p - '0');
		}
		if (bits > max)
			return -1;
		c.bits = (uint8_t)bits;
	}
	for (int i = 0; i < max / 8; i++) { /* clear host bits */
		int keep = c.bits - i * 8;
		if (keep <= 0)
			c.addr[i] = 0;
		else if (keep < 8)
			c.addr[i] &= (uint8_t)(0xff << (8 - keep));
	}
	*out = c;
	return 0;
}

void cidr_set_add(struct cidr_set *set, const struct cidr *c)
{
	set->v = xrealloc(set->v, (set->n + 1) * sizeof(*set->v));
	set->v[set->n++] = *c;
}

int cidr_set_add_list(struct cidr_set *set, const char *list, char *bad, size_t badsz)
{
	struct cidr_set add = { 0 };
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, ',');
		const char *a = p, *b = e ? e : p + strlen(p);
		struct cidr c;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (cidr_parse(a, (size_t)(b - a), &c) < 0) {
			if (badsz)
				snprintf(bad, badsz, "%.*s", (int)(b - a), a);
			cidr_set_release(&add);
			return -1;
		}
		cidr_set_add(&add, &c);
		if (!e)
			break;
		p = e + 1;
		if (!*p) { /* a trailing comma is an empty item */
			if (badsz)
				bad[0] = 0;
			cidr_set_release(&add);
			return -1;
		}
	}
	for (size_t i = 0; i < add.n; i++)
		cidr_set_add(set, &add.v[i]);
	cidr_set_release(&add);
	return 0;
}

void cidr_set_release(struct cidr_set *set)
{
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

static bool prefix_eq(const uint8_t *net, const uint8_t *a, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(net, a, full))
		return false;
	return !rest || ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool cidr_set_match(const struct cidr_set *set, int family, const uint8_t *addr)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *v4 = family == AF_INET ? addr : NULL;

	if (family == AF_INET6 && !memcmp(addr, mapped, sizeof(mapped)))
		v4 = addr + 12;
	for (size_t i = 0; i < set->n; i++) {
		const struct cidr *c = &set->v[i];
		if (c->family == AF_INET6 && family == AF_INET6 && prefix_eq(c->addr, addr, c->bits))
			return true;
		if (c->family == AF_INET && v4 && prefix_eq(c->addr, v4, c->bits))
			return true;
	}
	return false;
}

bool cidr_set_match_sa(const struct cidr_set *set, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return cidr_set_match(set, AF_INET, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6)
		return cidr_set_match(set, AF_INET6,
				      (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}
