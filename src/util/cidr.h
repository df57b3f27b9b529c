/*
 * cidr.h — sets of IPv4/IPv6 networks ("10.0.0.0/8,::1/128") and the
 * question "is this peer address in one of them" (the proxy's
 * --trusted-proxies, nginx's set_real_ip_from, HAProxy's `except`).
 *
 * A set is parsed once (off the request path) into masked network bytes;
 * a match is at most a few byte compares per network, no allocation.
 */
#ifndef GANTRY_UTIL_CIDR_H
#define GANTRY_UTIL_CIDR_H
#include "common.h"
#include <sys/socket.h>

struct cidr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t bits;   /* prefix length: 0..32 or 0..128 */
	uint8_t addr[16]; /* network bytes, host bits zeroed (4 used for IPv4) */
};

struct cidr_set {
	struct cidr *v; /* owned */
	size_t n;
};

#define CIDR_EXPECTED "is not an address or CIDR (e.g. 127.0.0.1/32, 10.0.0.0/8, ::1/128)"

/*
 * "ADDR" or "ADDR/BITS" (IPv4 dotted quad or IPv6) of len bytes -> *out.
 * Host bits set under the mask are accepted and cleared (10.1.2.3/8 is
 * 10.0.0.0/8), as nginx does. -1 if malformed.
 */
int cidr_parse(const char *s, size_t len, struct cidr *out);

/*
 * A comma-separated list (spaces around items allowed; "" is the empty set)
 * appended to *set. On error returns -1 with the offending item copied to
 * bad (NUL-terminated, cut to badsz) and *set unchanged.
 */
int cidr_set_add_list(struct cidr_set *set, const char *list, char *bad, size_t badsz);
void cidr_set_add(struct cidr_set *set, const struct cidr *c);
void cidr_set_release(struct cidr_set *set);

/*
 * family AF_INET (addr: 4 bytes, network order) or AF_INET6 (16 bytes).
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) also matches IPv4 networks.
 */
bool cidr_set_match(const struct cidr_set *set, int family, const uint8_t *addr);
/* the same for a struct sockaddr_in / sockaddr_in6; false for other families */
bool cidr_set_match_sa(const struct cidr_set *set, const struct sockaddr *sa);

#endif
