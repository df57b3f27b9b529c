/*
 * notify_target.h — a webhook target of the spec's top-level notify: list
 * (records/notify.h delivers them):
 *   {"url": "https://hooks.example.com/gantry", "format": "standard", "secret": "HOOK",
 *    "events": ["rollout_failed"], "allow_private": false}
 *
 * Private targets: a URL whose host is loopback (127/8, ::1, localhost),
 * link-local (169.254/16, fe80::/10), private (10/8, 172.16/12,
 * 192.168/16, 100.64/10, fc00::/7, fec0::/10), unspecified (0/8, ::), or
 * those in IPv4-mapped/-compatible and NAT64 form, needs
 * `allow_private: true` on that target. Checked twice: in the spec
 * (notify_target_check, on a literal IP or localhost) and on each address
 * actually connected, whatever the name resolved to (records/notify.c).
 */
#ifndef GANTRY_CORE_NOTIFY_TARGET_H
#define GANTRY_CORE_NOTIFY_TARGET_H
#include "common.h"

struct json_t;
struct sockaddr;

#define NOTIFY_PRIVATE_RULE "loopback, link-local, private and unspecified addresses need allow_private: true"

/* validates the notify list (from the spec, sent by the CLI); err names notify[i].KEY */
int notify_config_check(const struct json_t *cfg, struct gerr *err);
/* validates target t (borrowed), the i-th of the list (spec_gates.c: one diagnostic per target) */
int notify_target_check(const struct json_t *t, size_t i, struct gerr *err);
/* a target's flag (allow_private): JSON true/false or the spec's "true"/"false"; absent: false */
int notify_flag_value(const struct json_t *v, bool *out);

/*
 * The range of a loopback, link-local, private or unspecified address
 * ("loopback", "link-local", "private", "unspecified"), looking through
 * IPv4-mapped, IPv4-compatible and NAT64 IPv6 forms; NULL when public.
 * Not an AF_INET/AF_INET6 address: "not an IP address" (refused too).
 */
const char *notify_addr_private(const struct sockaddr *sa);
/*
 * The same for a URL's host (static string or NULL): a literal IPv4 in any
 * form inet_aton takes (127.1, 0x7f000001), a literal IPv6 (bracketed or
 * not, with a zone or not), "localhost" or NAME.localhost. Any other name
 * gives NULL: only the address it resolves to at delivery can tell.
 */
const char *notify_host_private(const char *host);

#endif
